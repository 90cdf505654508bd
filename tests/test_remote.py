"""The OpenAI-compatible endpoint generator, against a small server on localhost."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from rag.answer.engine import QueryEngine
from rag.cli import cli
from rag.errors import ModelError
from rag.index import Index
from rag.models.endpoint import RemoteGenerator
from rag.models.registry import load_generator, register_embedder
from rag.settings import Settings
from tests.fakes import EchoGenerator, HashEmbedder


@dataclass
class Behaviour:
    """What the fake server does; tests change it between requests."""

    reply: str = " 1889\nQuestion: more"
    quote: bool = False  # reply with three words of the prompt's last passage instead
    status: int = 200
    delay: float = 0.0
    models: list[str] = field(default_factory=lambda: ["tiny-model"])
    requests: list[tuple[str, dict[str, Any] | None, dict[str, str]]] = field(default_factory=list)


def _handler(behaviour: Behaviour) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _send(self, status: int, payload: bytes, kind: str = "application/json") -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def do_GET(self) -> None:
            behaviour.requests.append((self.path, None, dict(self.headers)))
            if self.path == "/v1/models":
                data = [{"id": m, "object": "model"} for m in behaviour.models]
                self._send(200, json.dumps({"object": "list", "data": data}).encode())
            else:
                self._send(404, b'{"error": {"message": "no such route"}}')

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            behaviour.requests.append((self.path, body, dict(self.headers)))
            time.sleep(behaviour.delay)
            if behaviour.status != 200:
                error = {"error": {"message": "model is overloaded", "code": behaviour.status}}
                self._send(behaviour.status, json.dumps(error).encode())
                return
            text = behaviour.reply
            if behaviour.quote:
                passage = body["prompt"].rsplit("Passage: ", 1)[-1].split("\n", 1)[0]
                text = " " + " ".join(passage.split()[1:4]) + "\n"
            if not body.get("stream"):
                reply = {
                    "object": "text_completion",
                    "choices": [{"index": 0, "text": text, "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": 42, "completion_tokens": 3},
                }
                self._send(200, json.dumps(reply).encode())
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            for piece in text.split(" "):
                event = {"choices": [{"index": 0, "text": piece + " "}]}
                self.wfile.write(f"data: {json.dumps(event)}\n\n".encode())
                self.wfile.flush()
            self.wfile.write(b"data: [DONE]\n\n")

    return Handler


@pytest.fixture
def server() -> Iterator[tuple[str, Behaviour]]:
    behaviour = Behaviour()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(behaviour))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/v1", behaviour
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_completion_is_greedy_cut_at_the_stop_and_names_the_model(
    server: tuple[str, Behaviour],
) -> None:
    url, behaviour = server
    gen = load_generator(f"{url}#tiny-model")
    assert isinstance(gen, RemoteGenerator)
    out = gen.generate("Q: when?\nA:", max_new_tokens=8, stop=["\n", "Question:"])
    assert out.text == "1889" and out.prompt_tokens == 42 and out.completion_tokens == 3
    path, body, _ = behaviour.requests[-1]
    assert path == "/v1/completions" and body is not None
    assert body["model"] == "tiny-model" and body["prompt"] == "Q: when?\nA:"
    assert body["max_tokens"] == 8 and body["temperature"] == 0.0
    assert body["stop"] == ["\n", "Question:"] and body["stream"] is False


def test_model_defaults_to_the_first_the_server_lists(
    server: tuple[str, Behaviour], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, behaviour = server
    monkeypatch.setenv("RAG_API_KEY", "sekrit")
    gen = RemoteGenerator(url)
    gen.generate("x", max_new_tokens=2)
    assert [p for p, _, _ in behaviour.requests] == ["/v1/models", "/v1/completions"]
    body, headers = behaviour.requests[-1][1], behaviour.requests[-1][2]
    assert body is not None and body["model"] == "tiny-model"
    assert headers["Authorization"] == "Bearer sekrit"
    behaviour.models = []
    with pytest.raises(ModelError, match=r"lists no model at /models; name one: .*#MODEL"):
        RemoteGenerator(url).generate("x")


def test_streaming_sends_the_answer_but_not_the_stop(server: tuple[str, Behaviour]) -> None:
    url, behaviour = server
    behaviour.reply = "Gustave Eiffel built it\nQuestion: next"
    pieces: list[str] = []
    out = RemoteGenerator(f"{url}#m").generate("p", stop=["\n"], on_token=pieces.append)
    assert out.text == "Gustave Eiffel built it"
    assert "".join(pieces) == "Gustave Eiffel built it"
    body = behaviour.requests[-1][1]
    assert body is not None and body["stream"] is True


def test_server_errors_and_timeouts_give_clear_messages(server: tuple[str, Behaviour]) -> None:
    url, behaviour = server
    behaviour.status = 503
    with pytest.raises(ModelError, match=r"answered HTTP 503: model is overloaded"):
        RemoteGenerator(f"{url}#m").generate("p")
    behaviour.status, behaviour.delay = 200, 1.0
    with pytest.raises(ModelError, match=r"did not answer within 0.2 s"):
        RemoteGenerator(f"{url}#m", timeout=0.2).generate("p")


def test_unreachable_server_is_named() -> None:
    with pytest.raises(ModelError, match=r"cannot reach generator endpoint http://127.0.0.1:9/"):
        RemoteGenerator("http://127.0.0.1:9/v1#m", timeout=2).generate("p")


@pytest.fixture
def index(tmp_path: Path, corpus: Path, embedder: HashEmbedder) -> Index:
    idx = Index.create(tmp_path / "idx", Settings(embedder=embedder.name), embedder)
    idx.add(corpus)
    return idx


def test_engine_verifies_what_the_server_says(index: Index, server: tuple[str, Behaviour]) -> None:
    url, behaviour = server
    question = "What does the forward process of a diffusion model add to the data?"
    engine = QueryEngine(index, RemoteGenerator(f"{url}#m"), min_confidence=0.0)
    behaviour.quote = True
    answer = engine.ask(question)
    assert not answer.abstained and answer.citations, "a span of the passages is cited"
    c = answer.citations[0]
    assert c.quote_start is not None and c.quote_end is not None
    quoted = answer.passages[c.n - 1].text[c.quote_start - c.start : c.quote_end - c.start]
    assert " ".join(quoted.split()) == answer.generated and len(answer.generated.split()) == 3
    behaviour.quote, behaviour.reply = False, " sprinkles of magic dust\n"
    answer = engine.ask(question)
    assert answer.abstained and not answer.supported and answer.citations == []


def test_cli_takes_an_endpoint_as_the_generator(
    tmp_path: Path, corpus: Path, server: tuple[str, Behaviour]
) -> None:
    url, behaviour = server
    register_embedder("fake-hash", HashEmbedder)
    runner = CliRunner()
    idx = str(tmp_path / "idx")
    assert (
        runner.invoke(
            cli, ["index", str(corpus), "--index", idx, "--embedder", "fake-hash"]
        ).exit_code
        == 0
    )
    behaviour.quote = True
    question = "What does the forward process of a diffusion model add to the data?"
    result = runner.invoke(
        cli,
        ["ask", question, "--index", idx, "--generator", f"{url}#m", "--min-confidence", "0",
         "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["answer"].endswith("]") and out["mode"] == "extractive"
    assert not out["abstained"]
    with Index.open(idx, HashEmbedder()) as opened:  # the confidence does not depend on the model
        expected = QueryEngine(opened, EchoGenerator(), min_confidence=0.0).ask(question)
    assert out["confidence"] == round(expected.confidence, 4) and expected.confidence > 0.0
    assert out["citations"][0]["quote_start"] is not None
    behaviour.status = 500
    result = runner.invoke(
        cli,
        ["ask", "What does the forward process add?", "--index", idx,
         "--generator", f"{url}#m", "--min-confidence", "0"],
    )  # fmt: skip
    assert result.exit_code != 0 and "answered HTTP 500: model is overloaded" in result.output
