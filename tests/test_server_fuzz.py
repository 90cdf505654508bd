"""``rag serve`` fuzzed from its own OpenAPI document with schemathesis.

Every operation gets generated requests, valid ones and invalid ones, against a real
server on an index of its own (so ``DELETE``, fuzzed last, may remove what it finds).
Every answer must have a status the document declares, a body of the declared shape, and
never a 5xx. Seeded: a run gives the same requests every time.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.strategies import SearchStrategy
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import positive_data_acceptance
from schemathesis.specs.openapi.schemas import OpenApiSchema

from tests.conftest import CORPUS
from tests.test_server import Server, build, refused

# Every operation of the API, the one that deletes last.
OPERATIONS = (
    "GET /v1/status",
    "GET /v1/models",
    "GET /v1/documents",
    "GET /v1/documents/{doc_id}/text",
    "POST /v1/search",
    "POST /v1/ask",
    "POST /v1/chat/completions",
    "POST /v1/documents",
    "DELETE /v1/documents/{doc_id}",
)
EXAMPLES = 40

pytestmark = pytest.mark.usefixtures("cli_fakes")


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    folder = tmp_path_factory.mktemp("fuzz")
    docs = folder / "docs"
    shutil.copytree(CORPUS, docs, ignore=shutil.ignore_patterns("questions.jsonl"))
    srv = Server(folder, "--index", str(build(folder, docs)), "--max-upload-mb", "2")
    yield srv
    assert srv.stop() == 0, srv.log.read_text()


# The schema comes from the live server, so each operation is fuzzed through its own
# strategy; schemathesis.pytest.from_fixture does not run under pytest 9.
@pytest.fixture(scope="module")
def api(fuzzed: Server) -> OpenApiSchema:
    return schemathesis.openapi.from_url(fuzzed.url + "/openapi.json")


def test_an_offset_past_a_64_bit_integer_is_refused_not_failed(fuzzed: Server) -> None:
    # found by the fuzz: SQLite raised OverflowError, answered 500
    error = refused(422, "GET", f"{fuzzed.url}/v1/documents?offset={2**63}")
    assert error["type"] == "invalid_request" and "offset" in error["message"]
    assert refused(400, "GET", f"{fuzzed.url}/v1/documents?offset=-1")["type"] == "invalid_value"


def test_every_operation_is_fuzzed(api: OpenApiSchema) -> None:
    declared = {result.ok().label for result in api.get_all_operations()}
    assert declared == set(OPERATIONS)
    # every error is declared in the one shape, FastAPI's own 422 body nowhere
    spec = api.raw_schema
    assert "HTTPValidationError" not in spec["components"]["schemas"]
    for path in spec["paths"].values():
        for operation in path.values():
            error = operation["responses"]["401"]["content"]["application/json"]["schema"]
            assert error == {"$ref": "#/components/schemas/ErrorBody"}


# Status and models take no input, a document id is any string: nothing to get wrong.
NO_INPUT = {"GET /v1/status", "GET /v1/models"}
NO_WRONG_INPUT = {*NO_INPUT, "DELETE /v1/documents/{doc_id}"}
# A document of the index, for the operations on one: random ids find none.
INDEXED = "diffusion-models.md"
RUNS = [
    *[(op, GenerationMode.POSITIVE, None) for op in OPERATIONS],
    *[(op, GenerationMode.NEGATIVE, None) for op in OPERATIONS if op not in NO_WRONG_INPUT],
    ("GET /v1/documents/{doc_id}/text", GenerationMode.POSITIVE, INDEXED),
    ("GET /v1/documents/{doc_id}/text", GenerationMode.NEGATIVE, INDEXED),
    ("DELETE /v1/documents/{doc_id}", GenerationMode.POSITIVE, INDEXED),
]
# DELETE last: what the others search and read stays indexed while they run
RUNS.sort(key=lambda run: run[0].startswith("DELETE"))


@pytest.mark.parametrize(
    ("label", "mode", "doc_id"),
    RUNS,
    ids=[f"{op}-{mode.value}" + (f"-{doc}" if doc else "") for op, mode, doc in RUNS],
)
def test_every_operation_answers_as_declared(
    api: OpenApiSchema, fuzzed: Server, label: str, mode: GenerationMode, doc_id: str | None
) -> None:
    operation = api.find_operation_by_label(label)
    assert operation is not None, label
    statuses = fuzz(
        operation.as_strategy(mode, path_parameters={"doc_id": doc_id} if doc_id else None), fuzzed
    )
    # the fuzz did run: one request when there is nothing to vary
    fixed = label in NO_INPUT or (doc_id is not None and label in NO_WRONG_INPUT)
    assert len(statuses) >= (1 if fixed else EXAMPLES // 2), statuses


def test_chat_questions_reach_the_answer(api: OpenApiSchema, fuzzed: Server) -> None:
    # A generated chat practically never has a user message, so the last message is
    # made the user's: its fuzzed content, text or parts, is the question asked.
    operation = api.find_operation_by_label("POST /v1/chat/completions")
    assert operation is not None

    def asked(case: schemathesis.Case) -> schemathesis.Case:
        case.body["messages"][-1]["role"] = "user"
        return case

    statuses = fuzz(operation.as_strategy(GenerationMode.POSITIVE).map(asked), fuzzed)
    assert len(statuses) >= EXAMPLES // 2 and 200 in statuses, statuses


def fuzz(strategy: SearchStrategy[schemathesis.Case], fuzzed: Server) -> list[int]:
    """The statuses of the requests ``strategy`` makes, each checked as declared."""

    @given(case=strategy)
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def answers_as_declared(case: schemathesis.Case) -> None:
        # Every check but positive_data_acceptance, which wants every request the schema
        # allows answered 2xx: the API refuses (400, declared) what no JSON schema says,
        # as an empty query, a question over 2000 characters, an unknown search mode, a
        # chat without a user message or an upload of an unsupported type.
        response = case.call_and_validate(
            base_url=fuzzed.url, timeout=30, excluded_checks=[positive_data_acceptance]
        )
        statuses.append(response.status_code)

    statuses: list[int] = []
    answers_as_declared()
    return statuses
