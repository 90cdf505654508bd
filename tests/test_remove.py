"""Removing documents on request: by file, folder or document id, with real SQLite,
FAISS and files, through the library, the command line and a killed process."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from rag.cli import cli
from rag.errors import InvalidValue
from rag.index import Index
from rag.models.registry import register_embedder
from rag.settings import Settings
from rag.storage.removal import RemovedDocument
from tests.fakes import HashEmbedder
from tests.test_durability import spawn, write_corpus


@pytest.fixture
def index(tmp_path: Path, corpus: Path, embedder: HashEmbedder) -> Iterator[Index]:
    with Index.create(tmp_path / "idx", Settings(embedder=embedder.name), embedder) as idx:
        assert idx.add(corpus).added == 15
        yield idx


def doc_ids(index: Index) -> set[str]:
    with index.store.engine.connect() as c:
        return {r[0] for r in c.exec_driver_sql("SELECT doc_id FROM documents")}


def sources(index: Index) -> set[str]:
    with index.store.engine.connect() as c:
        return {r[0] for r in c.exec_driver_sql("SELECT path FROM sources")}


def found(index: Index, query: str, mode: str = "hybrid") -> set[str]:
    return {h.doc_id for h in index.search(query, k=50, mode=mode)}


def test_remove_a_file(index: Index, corpus: Path) -> None:
    other = Index.open(index.path, HashEmbedder())  # a reader opened before the removal
    assert "hallucination.md" in found(other, "hallucination")
    chunks = index.status().chunks
    report = index.remove(corpus / "hallucination.md")
    path = str((corpus / "hallucination.md").resolve())
    assert report.documents == [RemovedDocument("hallucination.md", path)]
    assert report.files == [path] and report.ok and report.chunks > 0
    assert index.status().chunks == chunks - report.chunks
    assert "hallucination.md" not in doc_ids(index) and path not in sources(index)
    for idx in (index, other):
        for mode in ("dense", "lexical", "hybrid"):
            assert "hallucination.md" not in found(idx, "hallucination", mode)
    assert index.check() == []
    other.close()


def test_a_removed_file_comes_back_when_its_folder_is_indexed_again(
    index: Index, corpus: Path, embedder: HashEmbedder
) -> None:
    index.remove(str(corpus / "diffusion-models.md"))
    embedded = embedder.texts_embedded
    again = index.add(corpus)
    assert (again.added, again.unchanged, again.removed) == (1, 14, 0)
    assert embedder.texts_embedded > embedded
    assert "diffusion-models.md" in found(index, "denoising diffusion")
    assert index.check() == []


def test_a_file_gone_from_disk_is_removed_by_its_path(index: Index, corpus: Path) -> None:
    (corpus / "hallucination.md").unlink()
    report = index.remove(str(corpus / "hallucination.md"))
    assert [d.doc_id for d in report.documents] == ["hallucination.md"]
    assert index.add(corpus).removed == 0  # nothing left to notice


def test_remove_a_folder_and_a_relative_path(
    tmp_path: Path, corpus: Path, embedder: HashEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    (corpus / "sub" / "deeper").mkdir(parents=True)
    (corpus / "sub" / "a.md").write_text("# A\n\nAardvarks dig burrows.")
    (corpus / "sub" / "deeper" / "b.md").write_text("# B\n\nBadgers dig setts.")
    (corpus / "subway.md").write_text("# Subway\n\nTrains run under the city.")
    with Index.create(tmp_path / "idx", Settings(embedder=embedder.name), embedder) as idx:
        idx.add(corpus)
        monkeypatch.chdir(corpus)
        report = idx.remove(["sub/"])
        assert sorted(d.doc_id for d in report.documents) == ["sub/a.md", "sub/deeper/b.md"]
        assert len(report.files) == 2
        assert "subway.md" in doc_ids(idx) and len(doc_ids(idx)) == 16
        assert not found(idx, "badgers aardvarks", "lexical")
        assert idx.check() == []


def test_remove_jsonl_lines_by_document_id(tmp_path: Path, embedder: HashEmbedder) -> None:
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text(
        "\n".join(json.dumps({"_id": f"d{i}", "text": f"topic{i} words"}) for i in range(6))
    )
    with Index.create(tmp_path / "idx", Settings(embedder=embedder.name), embedder) as idx:
        idx.add(corpus)
        report = idx.remove(["d3", "d4"])
        assert [d.doc_id for d in report.documents] == ["d3", "d4"]
        assert report.files == [str(corpus.resolve())]
        assert doc_ids(idx) == {"d0", "d1", "d2", "d5"}
        assert not found(idx, "topic3", "lexical")
        again = idx.add(corpus)  # the file was forgotten, so it is read again
        assert (again.added, again.unchanged) == (2, 4)
        assert found(idx, "topic3", "lexical") == {"d3"}


def test_a_target_is_a_path_when_it_names_indexed_files_else_a_document_id(
    tmp_path: Path, embedder: HashEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "same.md").write_text(f"# Same\n\nFolder {name} text.")
    with Index.create(tmp_path / "idx", Settings(embedder=embedder.name), embedder) as idx:
        idx.add(tmp_path / "a", tmp_path / "b")
        monkeypatch.chdir(tmp_path / "a")  # here, same.md is a path: folder a's file
        report = idx.remove("same.md")
        assert [d.source for d in report.documents] == [str((tmp_path / "a/same.md").resolve())]
        monkeypatch.chdir(tmp_path)  # no indexed file here: a document id
        report = idx.remove("same.md")
        assert [d.source for d in report.documents] == [str((tmp_path / "b/same.md").resolve())]
        assert doc_ids(idx) == set()


def test_a_target_that_matches_nothing_is_reported_and_the_rest_removed(
    index: Index, corpus: Path
) -> None:
    generation = index.store.generation()
    report = index.remove(["no-such-doc", str(corpus / "missing.md")])
    assert report.unmatched == ["no-such-doc", str(corpus / "missing.md")] and not report.ok
    assert report.documents == [] and index.store.generation() == generation  # no write
    report = index.remove(["hallucination.md", "nope"])
    assert [d.doc_id for d in report.documents] == ["hallucination.md"]
    assert report.unmatched == ["nope"]
    assert report.to_dict()["removed"] == 1 and report.to_dict()["unmatched"] == ["nope"]
    with pytest.raises(InvalidValue, match="at least one"):
        index.remove([])


def test_removing_everything_leaves_an_empty_searchable_index(index: Index, corpus: Path) -> None:
    report = index.remove(corpus)
    assert len(report.documents) == 15 and len(report.files) == 15
    assert index.status().documents == index.status().chunks == index.status().sources == 0
    assert index.search("diffusion", k=3) == []
    assert index.check() == []
    assert index.add(corpus).added == 15


# -- the command line ------------------------------------------------------------


def rag(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_rm_command_output_and_exit_status(tmp_path: Path, corpus: Path) -> None:
    register_embedder("fake-hash", HashEmbedder)
    idx = str(tmp_path / "idx")
    assert rag("index", str(corpus), "--index", idx, "--embedder", "fake-hash")[0] == 0
    code, out, err = rag("rm", str(corpus / "hallucination.md"), "--index", idx)
    assert code == 0 and err == ""
    assert out.startswith("removed 1 document (") and out.rstrip().endswith("chunks)")
    code, out, err = rag("rm", "diffusion-models.md", "nothing-here", "--index", idx)
    assert code == 1
    assert "no document or indexed file matches 'nothing-here'" in err
    assert out.startswith("removed 1 document")
    code, out, _ = rag("rm", str(corpus), "--index", idx, "--json")
    report = json.loads(out)
    assert code == 0 and report["removed"] == 13 and report["unmatched"] == []
    assert {d["doc_id"] for d in report["documents"]} >= {"transformers-and-attention.md"}
    assert report["chunks"] > 13 and len(report["files"]) == 13
    code, out, _ = rag("check", "--index", idx)
    assert code == 0 and "ok (0 documents, 0 chunks)" in out
    code, _, err = rag("rm", "x", "--index", str(tmp_path / "none"))
    assert code == 1 and "no index at" in err


def test_rm_waits_for_the_writer_then_says_who_it_is(tmp_path: Path, corpus: Path) -> None:
    e = HashEmbedder()
    with Index.create(tmp_path / "idx", Settings(embedder=e.name), e) as idx:
        idx.add(corpus)
    holder = spawn(f"""
        idx = Index.open({str(tmp_path / "idx")!r}, HashEmbedder())
        with idx.lock.hold(5):
            print("locked", flush=True)
            time.sleep(30)
        """)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        code, _, err = rag("rm", "hallucination.md", "--index", str(tmp_path / "idx"),
                           "--wait", "0.2")  # fmt: skip
        assert code == 1 and f"being updated by process {holder.pid}" in err
    finally:
        holder.kill()
        holder.wait()


# -- crashes -----------------------------------------------------------------------


def test_sigkill_during_removals_leaves_whole_documents_and_their_files(
    tmp_path: Path,
) -> None:
    corpus, index_dir = tmp_path / "corpus", tmp_path / "idx"
    write_corpus(corpus, 400)
    e = HashEmbedder()
    with Index.create(index_dir, Settings(embedder=e.name), e) as idx:
        idx.add(corpus)
        chunks_of = _chunks_per_document(idx)
    killed_mid_way = False
    for attempt in range(6):
        proc = spawn(f"""
            from pathlib import Path
            idx = Index.open({str(index_dir)!r}, HashEmbedder())
            files = sorted(Path({str(corpus)!r}).iterdir())
            print("ready", flush=True)
            for f in files:
                idx.remove(f)
            """)
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        time.sleep(0.3 + 0.2 * attempt)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        with Index.open(index_dir, HashEmbedder()) as idx:
            left = _chunks_per_document(idx)
            files = sources(idx)
        if 0 < len(left) < 400:
            killed_mid_way = True
            break
        shutil.rmtree(index_dir)  # start again with everything indexed
        with Index.create(index_dir, Settings(embedder=e.name), e) as idx:
            idx.add(corpus)
    assert killed_mid_way, "the kill never landed between two removals"
    # each document is there whole, with its file, or gone with its file
    assert all(left[d] == chunks_of[d] for d in left)
    assert files == {str((corpus / d).resolve()) for d in left}
    rag_cli = Path(sys.executable).parent / "rag"
    with Index.open(index_dir, HashEmbedder()) as idx:
        assert idx.search("w5 w6 w7", k=5)  # the first search heals a stale vectors file
        assert idx.check() == []
    out = subprocess.run([str(rag_cli), "check", "--index", str(index_dir)],
                         capture_output=True, text=True)  # fmt: skip
    assert out.returncode == 0, out.stderr
    with Index.open(index_dir, HashEmbedder()) as idx:
        again = idx.add(corpus)
    assert (again.added, again.unchanged) == (400 - len(left), len(left))


def _chunks_per_document(index: Index) -> dict[str, int]:
    db = sqlite3.connect(index.path / "index.db")
    try:
        rows = db.execute(
            "SELECT d.doc_id, count(c.id) FROM documents d "
            "LEFT JOIN chunks c ON c.document_id = d.id GROUP BY d.id"
        ).fetchall()
    finally:
        db.close()
    return dict(rows)
