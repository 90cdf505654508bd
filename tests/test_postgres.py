"""An index in PostgreSQL behaves as one in a folder: same commands, results, repairs.

Against a real PostgreSQL 16 with pgvector (``postgres_server`` in conftest.py:
pgserver, or ``$RAG_TEST_POSTGRES_URL``). Each test gets a schema of its own.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy

from rag.errors import DatabaseUnavailable, IndexLocked, IndexNotFound, InvalidValue
from rag.index import Index
from rag.settings import Settings
from rag.storage.location import Location
from rag.storage.postgres import glob_regex
from tests.conftest import run_cli, with_schema
from tests.fakes import HashEmbedder


@pytest.fixture(params=["folder", "postgresql"])
def where(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An index location of each kind."""
    if request.param == "folder":
        return str(tmp_path / "idx")
    return str(request.getfixturevalue("pg_url"))


def make(where: str, embedder: HashEmbedder) -> Index:
    return Index.create(where, Settings(embedder=embedder.name), embedder)


def ids(hits: list) -> list[tuple[str, int]]:  # type: ignore[type-arg]
    return [(h.doc_id, h.start) for h in hits]


# -- locations ---------------------------------------------------------------------


def test_a_url_names_a_schema_and_hides_its_password() -> None:
    loc = Location.of("postgresql://u:pw@db.example:5433/team?sslmode=require&schema=papers")
    assert loc.kind == "postgresql" and loc.schema == "papers"
    assert loc.url == "postgresql+psycopg://u:pw@db.example:5433/team?sslmode=require"
    assert "pw" not in str(loc) and "schema=papers" in str(loc)
    assert Location.of("postgres://h/db").schema == "rag"
    assert Location.of("some/folder").folder == Path("some/folder")
    with pytest.raises(InvalidValue, match="schema must be a plain name"):
        Location.of("postgresql://h/db?schema=a;drop")


def test_glob_filters_translate_to_regular_expressions() -> None:
    import re

    for pattern, yes, no in [
        ("guides/*.md", "guides/a/b.md", "guides.md"),
        ("d?.txt", "d1.txt", "d12.txt"),
        ("[ab]*", "apple", "cherry"),
        ("[^ab]*", "cherry", "apple"),
        ("a+b(c).md", "a+b(c).md", "aab(c).md"),
    ]:
        rx = re.compile(glob_regex(pattern))
        assert rx.search(yes) and not rx.search(no), pattern


# -- the same behaviour on both ---------------------------------------------------


def test_ingest_search_and_incremental_updates(where: str, corpus: Path) -> None:
    e = HashEmbedder()
    with make(where, e) as index:
        first = index.add(corpus)
        assert first.added == 15 and not first.failed
        for mode in ("hybrid", "dense", "lexical"):
            hits = index.search("low-rank adaptation of weight matrices", k=5, mode=mode)
            assert len(hits) == 5
            for h in hits:  # every hit is an exact slice of its source file
                assert (corpus / h.doc_id).read_text()[h.start : h.end] == h.text
        lexical = index.search("discriminator generator minimax", k=3, mode="lexical")
        assert lexical[0].doc_id == "generative-adversarial-networks.md"
        again = index.add(corpus)
        assert (again.added, again.updated, again.unchanged) == (0, 0, 15)
        (corpus / "hallucination.md").write_text("# Hallucination\n\nZebras quietly confabulate.\n")
        (corpus / "diffusion-models.md").unlink()
        third = index.add(corpus)
        assert (third.updated, third.removed, third.unchanged) == (1, 1, 13)
        top = index.search("zebras confabulate", k=1, mode="lexical")[0]
        assert top.doc_id == "hallucination.md" and "Zebras" in top.text
        assert all(h.doc_id != "diffusion-models.md" for h in index.search("noise", k=20))
        st = index.status()
        assert (st.documents, st.sources) == (14, 14)
        assert st.vectors == st.chunks > 0
        assert index.check() == []


def test_status_has_the_same_fields_on_both(tmp_path: Path, pg_url: str, corpus: Path) -> None:
    e = HashEmbedder()
    shapes = []
    for where in (str(tmp_path / "idx"), pg_url):
        with make(where, e) as index:
            index.add(corpus)
            st = asdict(index.status())
        assert st["documents"] == 15 and st["database_bytes"] > 0 and st["vectors_bytes"] > 0
        shapes.append(set(st))
    assert shapes[0] == shapes[1]


def test_filters(where: str, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    (docs / "guides").mkdir(parents=True)
    (docs / "guides" / "salmon.md").write_text("# Salmon\n\nSalmon swim upstream to spawn.\n")
    (docs / "notes.txt").write_text("Salmon are also smoked and eaten.\n")
    (docs / "papers.jsonl").write_text(
        json.dumps({"_id": "p1", "text": "Salmon populations in 1999.", "year": 1999}) + "\n"
        + json.dumps({"_id": "p2", "text": "Salmon farming in 2020.", "year": 2020}) + "\n"
    )  # fmt: skip
    with make(where, HashEmbedder()) as index:
        index.add(docs)
        for mode in ("hybrid", "dense", "lexical"):
            found = {h.doc_id for h in index.search("salmon", 10, mode, {"path": "guides/*"})}
            assert found == {"guides/salmon.md"}, mode
            found = {h.doc_id for h in index.search("salmon", 10, mode, {"type": "txt"})}
            assert found == {"notes.txt"}, mode
            found = {h.doc_id for h in index.search("salmon", 10, mode, {"year": 2020})}
            assert found == {"p2"}, mode
        assert index.search("salmon", 10, "hybrid", {"year": 1850}) == []


def test_removal(where: str, corpus: Path) -> None:
    with make(where, HashEmbedder()) as index:
        index.add(corpus)
        report = index.remove([str(corpus / "hallucination.md"), "no-such-doc"])
        assert [d.doc_id for d in report.documents] == ["hallucination.md"]
        assert report.unmatched == ["no-such-doc"]
        assert all(h.doc_id != "hallucination.md" for h in index.search("hallucination", 20))
        assert index.add(corpus).added == 1  # forgotten, so read again


# -- PostgreSQL only --------------------------------------------------------------


def test_the_vector_index_is_checked_and_repaired(pg_url: str, corpus: Path) -> None:
    with make(pg_url, HashEmbedder()) as index:
        index.add(corpus)
        before = ids(index.search("transformer attention heads", 5, "dense"))
        with index.store.engine.begin() as conn:
            conn.exec_driver_sql("DROP INDEX chunks_embedding_hnsw")
        assert any("HNSW index" in p for p in index.check())
        assert any("rebuilt" in line for line in index.repair())
        assert index.check() == []
        assert ids(index.search("transformer attention heads", 5, "dense")) == before


def test_several_indexes_share_one_database(postgres_server: str, tmp_path: Path) -> None:
    a_docs, b_docs = tmp_path / "a", tmp_path / "b"
    a_docs.mkdir()
    b_docs.mkdir()
    (a_docs / "owls.md").write_text("# Owls\n\nOwls hunt at night.\n")
    (b_docs / "bees.md").write_text("# Bees\n\nBees make honey.\n")
    e = HashEmbedder()
    with make(with_schema(postgres_server, "shared_a"), e) as a:
        a.add(a_docs)
    with make(with_schema(postgres_server, "shared_b"), e) as b:
        b.add(b_docs)
    with Index.open(with_schema(postgres_server, "shared_a"), e) as a:
        assert {h.doc_id for h in a.search("owls bees honey night", 10)} == {"owls.md"}
        assert a.status().documents == 1
    with pytest.raises(InvalidValue, match="already exists"):
        make(with_schema(postgres_server, "shared_b"), e)
    with pytest.raises(IndexNotFound, match="schema=nothing_here"):
        Index.open(with_schema(postgres_server, "nothing_here"), e)


def test_without_pgvector_dense_search_is_exact_in_memory(
    postgres_server: str, corpus: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # a role that may not create extensions, in a database that has none: a real
    # PostgreSQL without pgvector as far as this index can tell
    admin = sqlalchemy.create_engine(Location.of(postgres_server).url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql("DROP DATABASE IF EXISTS plain")
        conn.exec_driver_sql("DROP ROLE IF EXISTS plain_user")
        conn.exec_driver_sql("CREATE ROLE plain_user LOGIN")
        conn.exec_driver_sql("CREATE DATABASE plain OWNER plain_user")
    admin.dispose()
    server = sqlalchemy.engine.make_url(Location.of(postgres_server).url)
    url = with_schema(
        server.set(username="plain_user", password=None, database="plain")
        .render_as_string(hide_password=False)
        .replace("postgresql+psycopg://", "postgresql://"),
        "docs",
    )
    e = HashEmbedder()
    with caplog.at_level(logging.WARNING):
        index = make(url, e)
    assert "has no pgvector extension" in caplog.text
    folder = make(str(tmp_path / "idx"), e)
    with index, folder:
        index.add(corpus)
        folder.add(corpus)
        assert index.status().vector_index == "flat"
        for q in ("variational autoencoder latent space", "retrieval augmented generation"):
            assert ids(index.search(q, 8, "dense")) == ids(folder.search(q, 8, "dense"))
        # a second process's writes are seen by this reader at its next search
        (corpus / "extra.md").write_text("# Extra\n\nQuokkas smile in photographs.\n")
        with Index.open(url, e) as writer:
            writer.add(corpus)
        assert index.search("quokkas smile", 1, "dense")[0].doc_id == "extra.md"
        assert index.check() == []


def test_an_unreachable_database_is_one_clear_line(cli_fakes: None) -> None:
    url = "postgresql://nobody@127.0.0.1:1/nothing"
    with pytest.raises(DatabaseUnavailable, match=r"cannot reach the database at postgresql://"):
        Index.open(url)
    code, _, err = run_cli("status", "--index", url)
    assert code == 1 and "cannot reach the database" in err and "Traceback" not in err
    code, _, err = run_cli("status", "--index", "postgresql://u:secret@127.0.0.1:1/x")
    assert code == 1 and "secret" not in err


def test_the_command_line_takes_a_url(
    cli_fakes: None, pg_url: str, corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, err = run_cli("index", str(corpus), "--index", pg_url, "--embedder", "fake-hash",
                             "--json")  # fmt: skip
    assert code == 0, err
    assert json.loads(out)["added"] == 15
    code, out, _ = run_cli("search", "generator and discriminator", "--index", pg_url, "--json")
    hits = json.loads(out)["hits"]
    assert code == 0 and hits[0]["doc_id"] == "generative-adversarial-networks.md"
    monkeypatch.setenv("RAG_INDEX", pg_url)  # the environment variable takes a URL too
    code, out, _ = run_cli("status", "--json")
    assert code == 0 and json.loads(out)["documents"] == 15
    assert json.loads(out)["vector_index"] == "hnsw"
    code, out, _ = run_cli("rm", str(corpus / "hallucination.md"))
    assert code == 0 and "removed 1 document" in out
    code, out, _ = run_cli("check")
    assert code == 0 and "ok (14 documents" in out
    code, out, _ = run_cli("repair")
    assert code == 0 and out.strip().endswith("ok")


def test_copy_between_a_folder_and_a_url_embeds_nothing(
    cli_fakes: None, pg_url: str, corpus: Path, tmp_path: Path
) -> None:
    folder, back = tmp_path / "idx", tmp_path / "back"
    e = HashEmbedder()
    with make(str(folder), e) as index:
        index.add(corpus)
        queries = ["mode collapse in GANs", "what is BERT", "scaling laws"]
        want = {m: [ids(index.search(q, 5, m)) for q in queries] for m in ("dense", "hybrid")}
        lexical = [[h.doc_id for h in index.search(q, 3, "lexical")] for q in queries]
    code, out, err = run_cli("copy", str(folder), pg_url, "--json")
    assert code == 0, err
    assert json.loads(out)["chunks"] > 0 and json.loads(out)["documents"] == 15
    code, out, err = run_cli("copy", pg_url, str(back))
    assert code == 0 and "copied 15 documents" in out, err

    class Counting(HashEmbedder):
        texts = 0

        def embed(self, texts):  # type: ignore[no-untyped-def]
            Counting.texts += len(texts)
            return super().embed(texts)

    for where in (pg_url, str(back)):
        with Index.open(where, Counting()) as copy:
            for m, expected in want.items():  # lexical ranking differs in PostgreSQL
                if m == "dense" or where == str(back):
                    assert [ids(copy.search(q, 5, m)) for q in queries] == expected, (where, m)
            assert copy.check() == []
            assert copy.add(corpus).unchanged == 15  # sources came along: nothing re-read
            got = [[h.doc_id for h in copy.search(q, 3, "lexical")] for q in queries]
            if where == str(back):
                assert got == lexical
    assert Counting.texts == 3 * len(queries)  # the queries, nothing else
    code, _, err = run_cli("copy", str(folder), pg_url)
    assert code == 1 and "already exists" in err


def test_chunk_ids_continue_after_a_copy(pg_url: str, corpus: Path, tmp_path: Path) -> None:
    e = HashEmbedder()
    with make(str(tmp_path / "idx"), e) as index:
        index.add(corpus)
        index.copy_to(pg_url)
        top = int(index.store.chunk_ids().max())
    (corpus / "new.md").write_text("# New\n\nAn entirely new file about axolotls.\n")
    with Index.open(pg_url, e) as copy:
        copy.add(corpus)
        assert int(np.max(copy.store.chunk_ids())) > top
        assert copy.search("axolotls", 1, "lexical")[0].doc_id == "new.md"


def test_writers_share_the_lock_and_repair_waits_for_them(pg_url: str, corpus: Path) -> None:
    e = HashEmbedder()
    with make(pg_url, e) as first, Index.open(pg_url, e) as second:
        first.add(corpus)
        updated = pytest.raises(IndexLocked, match="being updated by another process")
        # writers do not wait for each other; repair waits for them
        with first.lock.writing(1), second.lock.writing(1), updated:
            second.repair(lock_timeout=0.3)
        with first.lock.hold(1), pytest.raises(IndexLocked, match="being repaired"):
            second.add(corpus, lock_timeout=0.3)
        assert second.repair(lock_timeout=1)


def test_the_index_keeps_to_its_schema(postgres_server: str, corpus: Path) -> None:
    admin = sqlalchemy.create_engine(Location.of(postgres_server).url)
    with admin.begin() as conn:  # an application's own tables, in public and in a schema
        conn.exec_driver_sql("CREATE TABLE IF NOT EXISTS public.documents (note text)")
        conn.exec_driver_sql("CREATE SCHEMA IF NOT EXISTS app")
        conn.exec_driver_sql("CREATE TABLE IF NOT EXISTS app.chunks (note text)")
        conn.exec_driver_sql("INSERT INTO app.chunks VALUES ('mine')")
    e = HashEmbedder()
    with make(with_schema(postgres_server, "kept_apart"), e) as index:
        assert index.add(corpus).added == 15
    with pytest.raises(InvalidValue, match="already has tables named chunks"):
        make(with_schema(postgres_server, "app"), e)
    code, _, err = run_cli("copy", with_schema(postgres_server, "kept_apart"),
                           with_schema(postgres_server, "app"))  # fmt: skip
    assert code == 1 and "already has tables named chunks" in err
    with admin.connect() as conn:
        assert conn.exec_driver_sql("SELECT note FROM app.chunks").scalar() == "mine"
        assert conn.exec_driver_sql("SELECT count(*) FROM public.documents").scalar() == 0
    admin.dispose()
    with pytest.raises(InvalidValue, match="lower-case"):
        Location.of("postgresql://h/db?schema=Papers")
    loc = Location.of("postgresql://u@h/db?password=hunter2&sslmode=require")
    assert "hunter2" not in str(loc) and "sslmode=require" in str(loc)


@pytest.mark.models
def test_the_packaged_embedder_in_postgresql(pg_url: str, corpus: Path) -> None:
    from rag.models.embedder import SentenceTransformerEmbedder

    e = SentenceTransformerEmbedder()
    with Index.create(pg_url, Settings(), e) as index:
        assert index.add(corpus).added == 15
        top = index.search("which network judges whether an image is real or fake?", k=3)
        assert top[0].doc_id == "generative-adversarial-networks.md"
        assert "discriminator" in " ".join(h.text for h in top).lower()
        st = index.status()
        assert st.vector_index == "hnsw" and st.vectors == st.chunks


def test_metadata_filters_match_alike_on_both(where: str, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    rows = [
        {"_id": "t", "text": "Herons wade.", "flag": True, "tags": ["a", "b"]},
        {"_id": "one", "text": "Herons fish.", "flag": 1, "tags": ["b"]},
        {"_id": "f", "text": "Herons fly.", "flag": False, "score": 2.5},
        {"_id": "s", "text": "Herons nest.", "flag": "1", "score": 2},
    ]
    (docs / "h.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    with make(where, HashEmbedder()) as index:
        index.add(docs)

        def found(**cond: object) -> set[str]:
            return {h.doc_id for h in index.search("herons", 10, "lexical", cond)}

        assert found(flag=True) == found(flag=1) == {"t", "one"}
        assert found(flag=False) == found(flag=0) == {"f"}
        assert found(flag="1") == {"s"}
        assert found(score=2) == {"s"} and found(score=2.5) == {"f"}
        assert found(tags=["a", "b"]) == {"t"}


def test_glob_classes_translate_like_sqlite() -> None:
    import re

    for pattern, yes, no in [("[]]x", "]x", "ax"), ("[^]]x", "ax", "]x")]:
        rx = re.compile(glob_regex(pattern))
        assert rx.search(yes) and not rx.search(no), pattern
    assert not re.search(glob_regex("a[b"), "a[b")  # SQLite: an unclosed class, no match
