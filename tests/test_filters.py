from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from rag.cli import cli
from rag.errors import InvalidValue
from rag.index import Index
from rag.models.registry import register_embedder
from rag.settings import Settings
from rag.types import Where
from tests.fakes import HashEmbedder


@pytest.fixture
def index(tmp_path: Path, embedder: HashEmbedder) -> Index:
    docs = tmp_path / "docs"
    (docs / "guides").mkdir(parents=True)
    (docs / "notes").mkdir()
    # many strong matches outside the filter, one weak match inside it
    for i in range(30):
        (docs / "notes" / f"n{i}.md").write_text(f"# Note {i}\n\nSalmon salmon salmon river {i}.")
    (docs / "guides" / "fish.md").write_text("# Fish\n\nA short remark on salmon among trout.")
    (docs / "guides" / "birds.txt").write_text("Herons wade in shallow water.")
    (docs / "corpus.jsonl").write_text(
        "\n".join(
            json.dumps(x)
            for x in [
                {"_id": "p1", "text": "Salmon prices rose.", "year": 2020, "lang": "en"},
                {"_id": "p2", "text": "Salmon prices fell.", "year": 2021, "lang": "en"},
                {"_id": "p3", "text": "Le saumon est cher.", "year": 2020, "lang": "fr"},
            ]
        )
    )
    idx = Index.create(tmp_path / "idx", Settings(embedder=embedder.name), embedder)
    idx.add(docs)
    return idx


@pytest.mark.parametrize("mode", ["dense", "lexical", "hybrid"])
def test_filter_returns_top_k_among_matching_documents(index: Index, mode: str) -> None:
    # without a filter the notes crowd out the guide
    assert "guides/fish.md" not in [h.doc_id for h in index.search("salmon", k=5, mode=mode)]
    hits = index.search("salmon", k=5, mode=mode, where=Where(path="guides/*"))
    assert [h.doc_id for h in hits][:1] == ["guides/fish.md"]
    assert all(h.doc_id.startswith("guides/") for h in hits)


def test_filter_by_type_and_metadata(index: Index) -> None:
    hits = index.search("salmon", k=10, mode="hybrid", where={"type": "jsonl", "year": 2020})
    assert {h.doc_id for h in hits} <= {"p1", "p3"} and "p1" in {h.doc_id for h in hits}
    hits = index.search("salmon", k=10, where={"year": 2020, "lang": "en"})
    assert [h.doc_id for h in hits] == ["p1"]
    txt = index.search("water", k=10, where=Where(type="txt"))
    assert [h.doc_id for h in txt] == ["guides/birds.txt"]
    docs = index.search_documents(["salmon"], k=20, where=Where(path="notes/n1*"))[0]
    assert {h.doc_id for h in docs} == {"notes/n1.md"} | {f"notes/n1{i}.md" for i in range(10)}


def test_filter_matching_nothing_returns_nothing(index: Index) -> None:
    for mode in ("dense", "lexical", "hybrid"):
        assert index.search("salmon", k=5, mode=mode, where=Where(path="nowhere/*")) == []
        assert index.search("salmon", k=5, mode=mode, where={"year": 1999}) == []
    assert index.search_documents(["salmon"], k=5, where=Where(path="x*")) == [[]]


def test_where_parsing_and_errors() -> None:
    w = Where.parse(["path=a/*.md", "year=2020", "flag=true", "name=bob", "type=md"])
    assert w == Where(
        path="a/*.md", type="markdown", metadata={"year": 2020, "flag": True, "name": "bob"}
    )
    assert Where.parse([]) is None
    with pytest.raises(InvalidValue, match="FIELD=VALUE"):
        Where.parse(["nonsense"])
    with pytest.raises(InvalidValue, match="unknown file type"):
        Where(type="video")
    with pytest.raises(InvalidValue, match="metadata field"):
        Where(metadata={"a'); drop table x; --": 1})


def test_cli_where(index: Index) -> None:
    register_embedder("fake-hash", HashEmbedder)
    run = CliRunner().invoke
    out = run(
        cli, ["search", "salmon", "--index", str(index.path), "--where", "path=guides/*", "--json"]
    )
    assert out.exit_code == 0, out.output
    assert {h["doc_id"] for h in json.loads(out.stdout)["hits"]} <= {
        "guides/fish.md",
        "guides/birds.txt",
    }
    out = run(cli, ["search", "salmon", "--index", str(index.path), "--where", "year=1999"])
    assert out.exit_code == 0 and "no results match the filter" in out.stdout
    out = run(cli, ["search", "salmon", "--index", str(index.path), "--where", "bad"])
    assert out.exit_code == 1 and "FIELD=VALUE" in out.stderr
