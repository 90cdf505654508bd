from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from rag.cli import cli
from rag.models.registry import register_generator
from tests.conftest import run_cli as run
from tests.fakes import EchoGenerator

pytestmark = pytest.mark.usefixtures("cli_fakes")


def build(tmp_path: Path, corpus: Path) -> Path:
    index = tmp_path / "idx"
    code, out, _ = run(
        "index", str(corpus), "--index", str(index), "--embedder", "fake-hash",
        "--generator", "fake-echo",
    )  # fmt: skip
    assert code == 0, out
    return index


def test_index_search_ask_status(tmp_path: Path, corpus: Path) -> None:
    index = build(tmp_path, corpus)
    code, out, _ = run(
        "search", "variational autoencoder reparameterization trick", "--index", str(index)
    )
    assert code == 0 and "1. variational-autoencoders.md:" in out
    code, out, _ = run("ask", "what is the reparameterization trick?", "--index", str(index))
    assert code == 0 and "Sources:" in out and "*[1] " in out
    code, out, _ = run("status", "--index", str(index), "--json")
    status = json.loads(out)
    assert status["documents"] == 15 and status["chunks"] > 15
    assert status["settings"]["embedder"] == "fake-hash"


def test_reindex_summary_and_json(tmp_path: Path, corpus: Path) -> None:
    index = build(tmp_path, corpus)
    (corpus / "hallucination.md").unlink()
    code, out, _ = run("index", str(corpus), "--index", str(index), "--json")
    summary = json.loads(out)
    assert code == 0
    assert (summary["added"], summary["removed"], summary["unchanged"]) == (0, 1, 14)
    assert summary["chunks_embedded"] == 0


def test_failed_file_gives_exit_status_1_and_names_it(tmp_path: Path, corpus: Path) -> None:
    (corpus / "empty.txt").write_text("")
    code, out, err = run(
        "index", str(corpus), "--index", str(tmp_path / "i"), "--embedder", "fake-hash"
    )
    assert code == 1
    assert "empty.txt: empty file" in err
    assert "15 added" in out and "1 failed" in out


def test_batch_search_contract(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus.jsonl"
    docs = [
        {"_id": f"d{i}", "title": f"T{i}", "text": f"topic{i} " * 5 + "shared words"}
        for i in range(6)
    ]
    corpus.write_text("\n".join(json.dumps(d) for d in docs))
    index = tmp_path / "idx"
    assert run("index", str(corpus), "--index", str(index), "--embedder", "fake-hash")[0] == 0
    queries = tmp_path / "q.jsonl"
    queries.write_text('{"_id": "q1", "text": "topic3"}\n{"_id": 7, "text": "topic5 shared"}\n')
    code, out, _ = run(
        "search", "--index", str(index), "--queries", str(queries), "-k", "4", "--json"
    )
    assert code == 0
    lines = [json.loads(x) for x in out.splitlines()]
    assert [x["query_id"] for x in lines] == ["q1", "7"]
    assert lines[0]["hits"][0]["doc_id"] == "d3"
    assert lines[1]["hits"][0]["doc_id"] == "d5"
    for x in lines:
        assert len(x["hits"]) == 4
        assert set(x["hits"][0]) == {"doc_id", "score", "text"}
        assert len({h["doc_id"] for h in x["hits"]}) == 4


def test_batch_ask_contract(tmp_path: Path, corpus: Path) -> None:
    index = build(tmp_path, corpus)
    questions = tmp_path / "q.jsonl"
    questions.write_text(
        '{"id": "a", "question": "What does a GAN discriminator do?"}\n'
        '{"id": "b", "question": "What is chain-of-thought prompting?"}\n'
    )
    code, out, _ = run("ask", "--index", str(index), "--questions", str(questions), "--json")
    assert code == 0
    lines = [json.loads(x) for x in out.splitlines()]
    assert [x["id"] for x in lines] == ["a", "b"]
    for x in lines:
        assert x["answer"]
        c = x["citations"][0]
        assert {"n", "doc_id", "start", "end"} <= set(c)
        text = (corpus / c["doc_id"]).read_text()
        assert text[c["start"] : c["end"]] == x["passages"][c["n"] - 1]["text"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["search", "x", "--index", "{tmp}/missing"], "no index at"),
        (["ask", "", "--index", "{idx}"], "question is empty"),
        (["search", "x", "-k", "0", "--index", "{idx}"], "0 is not in the range"),
        (["search", "x", "--index", "{idx}", "--embedder", "other"], "was built with embedder"),
        (["ask", "--index", "{idx}"], "give either a QUESTION"),
        (["search", "--index", "{idx}", "--queries", "{tmp}/bad.jsonl"], "bad.jsonl:2: not valid"),
        (["ask", "--index", "{idx}", "--questions", "{tmp}/huge.jsonl"], "1000000 characters"),
        (["search", "y" * 100_000, "--index", "{idx}"], "the limit is 10000"),
        (["ask", "q", "--index", "{idx}", "--generator", "/no/such/model"], "no such file"),
    ],
)  # fmt: skip
def test_bad_input_gets_one_clear_line(
    tmp_path: Path, corpus: Path, args: list[str], message: str
) -> None:
    index = build(tmp_path, corpus)
    (tmp_path / "bad.jsonl").write_text('{"_id": "1", "text": "ok"}\n{oops\n')
    (tmp_path / "huge.jsonl").write_text(json.dumps({"id": "h", "question": "x" * 1_000_000}))
    result = CliRunner().invoke(
        cli, [a.format(tmp=tmp_path, idx=index) for a in args], catch_exceptions=False
    )
    assert result.exit_code != 0
    assert message in result.stderr
    assert "Traceback" not in result.output


def test_default_index_location_from_environment(tmp_path: Path, corpus: Path) -> None:
    assert run("index", str(corpus), "--embedder", "fake-hash")[0] == 0
    assert (tmp_path / "default-index" / "index.db").is_file()
    code, out, _ = run("status")
    assert code == 0 and "documents  15" in out


def test_uncitable_answer_is_withdrawn_on_the_cli(tmp_path: Path, corpus: Path) -> None:
    register_generator("fake-nonsense", lambda: EchoGenerator("Purple elephants juggle"))
    index = build(tmp_path, corpus)
    never = ("--min-confidence", "0")
    asked = ("ask", "which one?", "--index", str(index), "--generator", "fake-nonsense")
    code, out, _ = run(*asked, *never)
    assert code == 0
    assert "Purple elephants juggle" in out  # streamed as generated
    assert "withdrawn (no passage supports it)" in out
    assert "Not found in the indexed documents." in out and "Closest passages:" in out
    code, out, _ = run(
        "ask", "which one?", "--index", str(index), "--generator", "fake-nonsense", "--json", *never
    )
    answer = json.loads(out)
    assert answer["abstained"] and not answer["supported"] and answer["citations"] == []
    assert answer["generated"] == "Purple elephants juggle"


def test_batch_ask_keeps_order_across_groups(tmp_path: Path, corpus: Path) -> None:
    from rag.cli import BATCH_QUESTIONS

    index = build(tmp_path, corpus)
    n = BATCH_QUESTIONS + 5
    questions = tmp_path / "q.jsonl"
    questions.write_text(
        "".join(
            json.dumps({"id": f"q{i}", "question": f"What is topic {i}?"}) + "\n" for i in range(n)
        )
    )
    code, out, _ = run("ask", "--index", str(index), "--questions", str(questions), "--json")
    assert code == 0
    assert [json.loads(x)["id"] for x in out.splitlines()] == [f"q{i}" for i in range(n)]


def test_ask_shows_the_sentence_a_short_answer_came_from(tmp_path: Path, corpus: Path) -> None:
    register_generator("fake-echo", EchoGenerator)
    index = build(tmp_path, corpus)
    question = "which process adds noise to the data in diffusion models?"
    code, out, _ = run("ask", question, "--index", str(index), "--generator", "fake-echo",
                       "--min-confidence", "0", "--json")  # fmt: skip
    assert code == 0
    answer = json.loads(out)
    assert answer["shape"] == "factoid" and answer["sentences"]
    code, out, _ = run("ask", question, "--index", str(index), "--generator", "fake-echo",
                       "--min-confidence", "0")  # fmt: skip
    assert code == 0
    shown = next(line for line in out.splitlines() if line.startswith("from ["))
    assert f"«{answer['generated']}»" in shown


def test_span_reader_finder_answers_without_the_generator(tmp_path: Path, corpus: Path) -> None:
    register_generator("fake-nonsense", lambda: EchoGenerator("Purple elephants juggle"))
    index = build(tmp_path, corpus)
    asked = ("ask", "which network judges whether a sample is real?", "--index", str(index),
             "--generator", "fake-nonsense", "--min-confidence", "0", "--json")  # fmt: skip
    code, out, _ = run(*asked, "--span-reader", "finder")
    answer = json.loads(out)
    assert code == 0 and not answer["abstained"] and answer["shape"] == "factoid"
    assert "Purple" not in answer["generated"] and answer["citations"]
    quoted = answer["citations"][0]
    text = (corpus / quoted["doc_id"]).read_text()
    assert text[quoted["quote_start"] : quoted["quote_end"]] == answer["generated"]
    code, out, _ = run(*asked)  # a named generator reads the span by default
    assert json.loads(out)["generated"] == "Purple elephants juggle"
    code, _, err = run(*asked, "--span-reader", "oracle")
    assert code == 2 and "oracle" in err
