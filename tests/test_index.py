from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import pytest

from rag.errors import IndexCorrupt, IndexLocked, IndexMismatch, IndexNotFound, InvalidValue
from rag.index import VECTORS_FILE, Index
from rag.settings import Settings
from tests.fakes import HashEmbedder


def make(tmp_path: Path, embedder: HashEmbedder, **settings: int) -> Index:
    return Index.create(tmp_path / "idx", Settings(embedder=embedder.name, **settings), embedder)


def chunk_ids(index: Index) -> set[int]:
    return set(index.store.chunk_ids().tolist())


def test_index_and_search_a_folder(tmp_path: Path, corpus: Path, embedder: HashEmbedder) -> None:
    with make(tmp_path, embedder) as index:
        report = index.add(corpus)
        assert report.ok and report.added == 15 and report.chunks > 15
        hits = index.search("denoising diffusion reverse process noise", k=3)
        assert hits[0].doc_id == "diffusion-models.md"
        top = hits[0]
        source_text = (corpus / top.doc_id).read_text()
        assert source_text[top.start : top.end] == top.text
        lines = source_text.splitlines()[top.line_start - 1 : top.line_end]
        assert lines[0] in top.text or top.text.startswith(lines[0].strip())
        assert hits == sorted(hits, key=lambda h: -h.score)


def test_rerun_on_unchanged_corpus_embeds_nothing(
    tmp_path: Path, corpus: Path, embedder: HashEmbedder
) -> None:
    index = make(tmp_path, embedder)
    index.add(corpus)
    before = chunk_ids(index)
    embedded = embedder.texts_embedded
    report = index.add(corpus)
    assert (report.added, report.updated, report.removed, report.unchanged) == (0, 0, 0, 15)
    assert embedder.texts_embedded == embedded
    assert chunk_ids(index) == before
    # touching a file without changing it re-reads but does not re-embed
    os.utime(corpus / "hallucination.md")
    report = index.add(corpus)
    assert report.unchanged == 15 and embedder.texts_embedded == embedded


def test_changed_and_deleted_files_are_reindexed_and_ids_are_never_reused(
    tmp_path: Path, corpus: Path, embedder: HashEmbedder
) -> None:
    index = make(tmp_path, embedder)
    index.add(corpus)
    before = chunk_ids(index)
    hallu = corpus / "hallucination.md"
    hallu.write_text(hallu.read_text() + "\n\nZebras hallucinate quietly in the moonlight.\n")
    (corpus / "risks-and-ethics.md").unlink()
    (corpus / "new.txt").write_text("Quokkas are small marsupials from Rottnest Island.")
    report = index.add(corpus)
    assert (report.added, report.updated, report.removed, report.unchanged) == (1, 1, 1, 13)
    after = chunk_ids(index)
    new_ids = after - before
    assert new_ids and min(new_ids) > max(before), "new chunks get fresh ids"
    assert index.status().documents == 15
    assert index.search("quokkas marsupials Rottnest", k=1)[0].doc_id == "new.txt"
    assert all(h.doc_id != "risks-and-ethics.md" for h in index.search("bias privacy", k=50))
    # the vectors file agrees with the database after reopening
    index.close()
    reopened = Index.open(tmp_path / "idx", embedder)
    reopened.search("anything", k=1)
    assert set(reopened.vectors.current.ids().tolist()) == after  # type: ignore[union-attr]


def test_unreadable_file_is_reported_and_its_old_documents_kept(
    tmp_path: Path, corpus: Path, embedder: HashEmbedder
) -> None:
    index = make(tmp_path, embedder)
    index.add(corpus)
    bad = corpus / "hallucination.md"
    bad.write_bytes(b"\x00\x01garbage\x00\x00" * 10)  # now binary
    (corpus / "broken.html").write_bytes(b"")
    report = index.add(corpus)
    failed = {Path(f.path).name for f in report.failed}
    assert failed == {"hallucination.md", "broken.html"}
    assert all(f.reason for f in report.failed)
    assert report.removed == 0
    hits = index.search("hallucination grounding fabricated", k=5)
    assert any(h.doc_id == "hallucination.md" for h in hits)


def test_jsonl_corpus_uses_line_ids(tmp_path: Path, embedder: HashEmbedder) -> None:
    corpus = tmp_path / "corpus.jsonl"
    lines = [
        {"_id": "a1", "title": "Cats", "text": "Cats purr when content.", "year": 2020},
        {"_id": "b2", "title": "Dogs", "text": "Dogs bark at the mail carrier."},
        {"id": 3, "text": "Parrots can mimic human speech."},
    ]
    corpus.write_text("\n".join(json.dumps(x) for x in lines) + "\n{not json\n")
    index = make(tmp_path, embedder)
    report = index.add(corpus)
    assert report.added == 3
    assert [f.path for f in report.failed] == [f"{corpus}:4"]
    docs = index.search_documents(["dogs bark mail", "parrots mimic speech"], k=2)
    assert docs[0][0].doc_id == "b2" and docs[1][0].doc_id == "3"
    assert index.search("cats purr", k=1)[0].metadata == {"year": 2020}
    # one line changes, one disappears
    lines[0]["text"] = "Cats sleep most of the day."
    corpus.write_text("\n".join(json.dumps(x) for x in lines[:1] + lines[2:]) + "\n")
    report = index.add(corpus)
    assert (report.added, report.updated, report.removed, report.unchanged) == (0, 1, 1, 1)


def test_search_documents_ranks_documents_not_chunks(
    tmp_path: Path, embedder: HashEmbedder
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "long.md").write_text(
        "\n\n".join(f"Volcano lava eruption note {i}." for i in range(80))
    )
    for i in range(6):
        (docs / f"short{i}.md").write_text(f"Volcano fact number {i} about magma.")
    index = Index.create(
        tmp_path / "idx", Settings(embedder="fake-hash", chunk_tokens=16, chunk_overlap=0), embedder
    )
    index.add(docs)
    assert index.status().chunks > 10
    [ranked] = index.search_documents(["volcano lava eruption"], k=5)
    ids = [h.doc_id for h in ranked]
    assert len(ids) == 5 and len(set(ids)) == 5
    assert ids[0] == "long.md"
    assert [h.score for h in ranked] == sorted((h.score for h in ranked), reverse=True)


def test_missing_or_damaged_vectors_are_rebuilt_without_reembedding(
    tmp_path: Path, corpus: Path, embedder: HashEmbedder
) -> None:
    index = make(tmp_path, embedder)
    index.add(corpus)
    expected = [h.chunk_id for h in index.search("attention heads", k=5)]
    index.close()
    vectors = tmp_path / "idx" / VECTORS_FILE
    for damage in (lambda: vectors.write_bytes(b"not faiss"), vectors.unlink):
        damage()
        fresh = HashEmbedder()
        reopened = Index.open(tmp_path / "idx", fresh)
        assert [h.chunk_id for h in reopened.search("attention heads", k=5)] == expected
        assert fresh.texts_embedded == 1, "only the query was embedded"
        assert reopened.check() == [], "the healed file was saved"
        reopened.close()


def test_opening_refuses_another_embedder_and_missing_index(
    tmp_path: Path, corpus: Path, embedder: HashEmbedder
) -> None:
    make(tmp_path, embedder).add(corpus)
    with pytest.raises(IndexMismatch, match="fake-hash"):
        Index.open(tmp_path / "idx", HashEmbedder(name="other-model"))
    with pytest.raises(IndexMismatch, match="chunk_tokens"):
        Index.open_or_create(tmp_path / "idx", embedder="fake-hash", chunk_tokens=99)
    with pytest.raises(IndexNotFound, match="rag index"):
        Index.open(tmp_path / "nowhere")
    with pytest.raises(InvalidValue, match="already exists"):
        make(tmp_path, embedder)


def test_not_an_index_database(tmp_path: Path) -> None:
    folder = tmp_path / "idx"
    folder.mkdir()
    (folder / "index.db").write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(IndexCorrupt, match=r"index\.db"):
        Index.open(folder)
    sqlite3.connect(folder / "other.db").execute("create table t (x)").connection.commit()
    os.replace(folder / "other.db", folder / "index.db")
    with pytest.raises(IndexCorrupt, match="not made by rag"):
        Index.open(folder)


def test_bad_search_arguments(tmp_path: Path, corpus: Path, embedder: HashEmbedder) -> None:
    index = make(tmp_path, embedder)
    index.add(corpus)
    with pytest.raises(InvalidValue, match="k must"):
        index.search("x", k=0)
    with pytest.raises(InvalidValue, match="non-empty"):
        index.search("   ")
    with pytest.raises(InvalidValue, match="at least one folder or file"):
        index.add()


def test_second_writer_is_told_who_holds_the_lock(
    tmp_path: Path, corpus: Path, embedder: HashEmbedder
) -> None:
    from filelock import FileLock

    index = make(tmp_path, embedder)
    holder = FileLock(str(tmp_path / "idx" / "write.lock"))
    with holder:
        (tmp_path / "idx" / "writer.pid").write_text("4242")
        with pytest.raises(IndexLocked, match="process 4242"):
            index.add(corpus, lock_timeout=0.1)
    assert index.add(corpus).added == 15


def test_empty_index_searches_to_nothing(tmp_path: Path, embedder: HashEmbedder) -> None:
    index = make(tmp_path, embedder)
    assert index.search("anything") == []
    assert index.search_documents(["anything"], 3) == [[]]


def test_check_finds_problems_and_repair_fixes_them(
    tmp_path: Path, corpus: Path, embedder: HashEmbedder
) -> None:
    index = make(tmp_path, embedder)
    index.add(corpus)
    assert index.check() == []
    vectors = tmp_path / "idx" / VECTORS_FILE
    vectors.unlink()
    assert any("missing" in p for p in index.check())
    vectors.write_bytes(b"\0" * 100)
    assert any("not a readable FAISS index" in p for p in index.check())
    done = index.repair()
    assert any("rebuilt" in d for d in done)
    assert index.check() == []

    # a chunk whose stored embedding is damaged: its document is dropped, then re-read
    db = sqlite3.connect(tmp_path / "idx" / "index.db")
    db.execute("UPDATE chunks SET embedding = x'00' WHERE id = (SELECT min(id) FROM chunks)")
    db.commit()
    db.close()
    assert any("without a valid embedding" in p for p in index.check())
    index.repair()
    assert index.check() == []
    assert index.status().documents == 14
    report = index.add(corpus)
    assert report.added == 1 and index.status().documents == 15
    assert index.check() == []


def test_each_vector_belongs_to_its_chunk(
    tmp_path: Path, corpus: Path, embedder: HashEmbedder
) -> None:
    from rag.ingest.pipeline import embed_text
    from rag.types import Chunk, Document

    index = make(tmp_path, embedder, chunk_tokens=48, chunk_overlap=8)
    index.add(corpus)
    ids = index.store.chunk_ids().tolist()
    rows = index.store.chunks(ids[:: max(1, len(ids) // 25)])
    for row in rows.values():
        text = embed_text(
            Document(row.doc_id, row.source, "", row.type, title=row.title),
            Chunk(0, row.text, row.start, row.end, row.line_start, row.line_end, row.heading),
        )
        top = index.search(text, k=1, mode="dense")[0]
        assert top.chunk_id == row.id and top.score == pytest.approx(1.0, abs=1e-5)


def test_jsonl_ids_that_look_like_paths_are_only_ids(
    tmp_path: Path, embedder: HashEmbedder
) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP SECRET CONTENT")
    corpus = tmp_path / "c.jsonl"
    corpus.write_text(
        json.dumps({"_id": str(secret), "text": "harmless text one"})
        + "\n"
        + json.dumps({"_id": "../../secret.txt", "text": "harmless text two"})
        + "\n"
    )
    index = make(tmp_path, embedder)
    index.add(corpus)
    hits = index.search("harmless text", k=5)
    assert {h.doc_id for h in hits} == {str(secret), "../../secret.txt"}
    assert all("SECRET" not in h.text for h in hits)
    assert all(h.source == str(corpus) for h in hits)


def test_deepening_document_search_embeds_the_queries_once(
    tmp_path: Path, embedder: HashEmbedder
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    # one document whose many chunks fill the first rounds, so the search must go deeper
    (docs / "big.md").write_text("\n\n".join(f"Volcano lava note {i}." for i in range(600)))
    for i in range(4):
        (docs / f"s{i}.md").write_text(f"Glacier ice fact {i}.")
    settings = Settings(embedder=embedder.name, chunk_tokens=16, chunk_overlap=0)
    index = Index.create(tmp_path / "idx", settings, embedder)
    index.add(docs)
    assert index.status().chunks > 150
    before = embedder.calls
    [ranked] = index.search_documents(["volcano lava note"], k=5, mode="dense")
    assert embedder.calls == before + 1
    assert len({h.doc_id for h in ranked}) == 5 and ranked[0].doc_id == "big.md"


def _no_passage_twice(index: Index) -> None:
    hits = index.search("models trained on data", k=60)
    assert len(hits) == 60
    assert len({h.text for h in hits}) == len(hits), "a passage comes back twice"


def test_a_subfolder_then_its_parent_store_each_file_once(
    tmp_path: Path, corpus: Path, embedder: HashEmbedder
) -> None:
    sub = corpus / "sub"
    sub.mkdir()
    for name in ("diffusion-models.md", "hallucination.md"):
        (corpus / name).rename(sub / name)
    index = make(tmp_path, embedder)
    assert index.add(sub).added == 2
    embedded = embedder.texts_embedded
    report = index.add(corpus)
    # the files of sub/ were not embedded again
    assert embedder.texts_embedded - embedded == index.status().chunks - _chunks_of(index, sub)
    assert (report.added, report.unchanged, report.removed) == (13, 2, 0)
    status = index.status()
    assert (status.documents, status.sources) == (15, 15)
    _no_passage_twice(index)
    # back through the subfolder: nothing changes, nothing is removed
    report = index.add(sub)
    assert (report.added, report.updated, report.removed, report.unchanged) == (0, 0, 0, 2)
    assert index.status().documents == 15
    # an edited file reached through the parent is one document, re-keyed to the parent
    (sub / "hallucination.md").write_text("# Hallucination\n\nZebras hallucinate quietly.\n")
    report = index.add(corpus)
    assert (report.added, report.updated, report.removed) == (0, 1, 0)
    assert index.status().documents == 15
    assert index.search("zebras hallucinate", k=1)[0].doc_id == "sub/hallucination.md"
    # a file deleted from the subfolder goes, whichever folder is indexed next
    (sub / "diffusion-models.md").unlink()
    assert index.add(corpus).removed == 1
    assert (index.status().documents, index.status().sources) == (14, 14)


def test_a_parent_then_its_subfolder_keep_each_file_once(
    tmp_path: Path, corpus: Path, embedder: HashEmbedder
) -> None:
    sub = corpus / "sub"
    sub.mkdir()
    (corpus / "hallucination.md").rename(sub / "hallucination.md")
    index = make(tmp_path, embedder)
    index.add(corpus)
    report = index.add(sub)
    assert (report.added, report.removed, report.unchanged) == (0, 0, 1)
    assert index.status().documents == 15
    assert index.search("hallucination", k=1, mode="lexical")[0].doc_id == "sub/hallucination.md"
    _no_passage_twice(index)


def test_a_symbolic_link_to_an_indexed_file_is_the_same_document(
    tmp_path: Path, corpus: Path, embedder: HashEmbedder
) -> None:
    index = make(tmp_path, embedder)
    index.add(corpus)
    outside = tmp_path / "link.md"
    outside.symlink_to(corpus / "hallucination.md")
    report = index.add(outside)
    assert (report.added, report.unchanged) == (0, 1)
    inside = corpus / "alias.md"
    inside.symlink_to(corpus / "hallucination.md")
    report = index.add(corpus)
    assert report.added == 0
    assert [s.reason for s in report.skipped if s.path == str(inside)] == [
        f"same file as {corpus / 'hallucination.md'}"
    ]
    assert index.status().documents == 15
    _no_passage_twice(index)


def test_opening_an_index_that_stored_a_file_twice_keeps_one_copy(
    tmp_path: Path, corpus: Path, embedder: HashEmbedder
) -> None:
    index = make(tmp_path, embedder)
    index.add(corpus)
    chunks = index.status().chunks
    index.close()
    # what earlier versions stored after `rag index docs/sub` then `rag index docs`
    db = sqlite3.connect(tmp_path / "idx" / "index.db")
    db.executescript(
        "INSERT INTO documents (root, doc_id, source, kind, title, content_hash, chars, "
        "metadata, indexed_at) SELECT root || '/sub', 'copy.md', source, kind, title, "
        "content_hash, chars, metadata, indexed_at FROM documents "
        "WHERE doc_id = 'hallucination.md';"
        "INSERT INTO chunks (document_id, ordinal, text, start, end, line_start, line_end, "
        "page_start, page_end, heading, embedding) SELECT (SELECT max(id) FROM documents), "
        "ordinal, text, start, end, line_start, line_end, page_start, page_end, heading, "
        "embedding FROM chunks WHERE document_id = (SELECT id FROM documents WHERE doc_id = "
        "'hallucination.md');"
        "UPDATE meta SET value = '2' WHERE key = 'format_version';"
    )
    db.close()
    with Index.open(tmp_path / "idx", embedder) as reopened:
        assert reopened.status().documents == 15
        assert reopened.status().chunks == chunks
        assert [h.doc_id for h in reopened.search("hallucination", k=40, mode="lexical")].count(
            "copy.md"
        ) == 0
        assert reopened.check() == [] or all("vectors" in p for p in reopened.check())
        _no_passage_twice(reopened)


def _chunks_of(index: Index, folder: Path) -> int:
    with index.store.engine.connect() as c:
        return int(
            c.exec_driver_sql(
                "SELECT count(*) FROM chunks JOIN documents d ON d.id = document_id "
                "WHERE d.source LIKE ?",
                (str(folder.resolve()) + "/%",),
            ).scalar_one()
        )


def test_looking_up_more_chunks_than_sqlite_binds_at_once(
    tmp_path: Path, corpus: Path, embedder: HashEmbedder
) -> None:
    index = make(tmp_path, embedder)
    index.add(corpus)
    ids = index.store.chunk_ids().tolist()
    db = sqlite3.connect(":memory:")
    limit = db.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) if hasattr(db, "getlimit") else 32766
    db.close()
    asked = list(range(1, limit + 2))  # past SQLite's limit on the variables of one statement
    found = index.store.chunks(asked)
    assert sorted(found) == ids
    assert sorted(index.store.chunk_documents(asked)) == ids


def test_a_removed_file_is_forgotten_as_a_source(
    tmp_path: Path, corpus: Path, embedder: HashEmbedder
) -> None:
    index = make(tmp_path, embedder)
    index.add(corpus)
    (corpus / "hallucination.md").unlink()
    assert index.add(corpus).removed == 1
    status = index.status()
    assert (status.documents, status.sources) == (14, 14)
