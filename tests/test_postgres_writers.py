"""Many writers on one PostgreSQL index, a writer killed mid-batch, readers during writes.

Real processes against a real PostgreSQL (see ``postgres_server`` in conftest.py).
"""

from __future__ import annotations

import subprocess
import textwrap
import time
from pathlib import Path

from sqlalchemy import text

from rag.index import Index
from rag.settings import Settings
from tests.conftest import with_schema
from tests.fakes import HashEmbedder
from tests.test_durability import kill_between_batches, spawn, write_corpus

SLOW = """
class Slow(HashEmbedder):
    def embed(self, texts):
        time.sleep(0.002 * len(texts))  # slow enough for writers to overlap
        return super().embed(texts)
"""


def spawn_slow(code: str) -> subprocess.Popen[str]:
    """A process running ``code`` with ``Slow``, an embedder slow enough to overlap."""
    return spawn(SLOW + textwrap.dedent(code))


def stored(url: str) -> dict[str, str]:
    with Index.open(url, HashEmbedder()) as idx, idx.store.engine.connect() as c:
        rows = c.execute(text("SELECT source, content_hash FROM documents")).fetchall()
    return {r[0]: r[1] for r in rows}


def duplicates(url: str) -> list[tuple[str, int]]:
    sql = (
        "SELECT source, count(*) FROM documents GROUP BY source HAVING count(*) > 1 "
        "UNION ALL SELECT path, count(*) FROM sources GROUP BY path HAVING count(*) > 1"
    )
    with Index.open(url, HashEmbedder()) as idx, idx.store.engine.connect() as c:
        return [(r[0], r[1]) for r in c.execute(text(sql))]


def test_writers_on_overlapping_folders_store_each_file_once(pg_url: str, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    write_corpus(docs / "a", 120, tag="a")
    write_corpus(docs / "b", 120, tag="b")
    e = HashEmbedder()
    Index.create(pg_url, Settings(embedder=e.name), e).close()
    writers = [
        spawn_slow(f"""
            rag.ingest.pipeline.BATCH_DOCS = 10
            idx = Index.open({pg_url!r}, Slow())
            start = time.time()
            report = idx.add({str(folder)!r})
            print(start, time.time(), report.added + report.updated, len(report.failed),
                  flush=True)
            """)
        for folder in (docs, docs / "a", docs / "a", docs / "b")
    ]
    spans = []
    for w in writers:
        out, err = w.communicate(timeout=240)
        assert w.returncode == 0, err
        start, end, _, failed = out.split()
        assert int(failed) == 0
        spans.append((float(start), float(end)))
    # they really ran at the same time
    assert max(s for s, _ in spans) < min(e for _, e in spans)
    assert duplicates(pg_url) == []
    got = stored(pg_url)
    assert len(got) == 240
    with Index.open(pg_url, e) as idx:
        assert idx.check() == []
        assert idx.status().chunks == idx.status().vectors
        again = idx.add(docs)
        assert (again.added, again.updated, again.unchanged) == (0, 0, 240)


def test_a_writer_killed_mid_batch_leaves_a_usable_index(
    postgres_server: str, tmp_path: Path
) -> None:
    corpus = tmp_path / "corpus"
    write_corpus(corpus, 400)
    url = with_schema(postgres_server, "killed")
    e = HashEmbedder()
    Index.create(url, Settings(embedder=e.name), e).close()
    committed = kill_between_batches(
        url,
        corpus,
        400,
        lambda: stored(url),
        embedder="Slow()",
        prelude=SLOW,
        wait=0.4,
        step=0.2,
    )
    with Index.open(url, e) as idx:
        assert idx.check() == []
        assert idx.search("w5 w6 w7", k=5)
        report = idx.add(corpus)
    assert report.unchanged >= len(committed) and report.added == 400 - len(committed)
    clean = with_schema(postgres_server, "clean")
    with Index.create(clean, Settings(embedder=e.name), e) as idx:
        idx.add(corpus)
    assert stored(url) == stored(clean)
    assert duplicates(url) == []


def test_readers_search_without_errors_during_writes(pg_url: str, tmp_path: Path) -> None:
    corpus, seed = tmp_path / "corpus", tmp_path / "seed"
    write_corpus(corpus, 300)
    write_corpus(seed, 1, tag="seed")
    e = HashEmbedder()
    with Index.create(pg_url, Settings(embedder=e.name), e) as idx:
        idx.add(seed)
    stop = tmp_path / "stop"
    readers = [
        spawn(f"""
            from pathlib import Path
            idx = Index.open({pg_url!r}, HashEmbedder())
            corpus = Path({str(corpus)!r})
            errors = bad = searches = 0
            end = time.time() + 60
            while time.time() < end and not Path({str(stop)!r}).exists():
                try:
                    for h in idx.search("w3 w4 w5", k=10):
                        if h.source.startswith(str(corpus)):
                            bad += (corpus / h.doc_id).read_text()[h.start:h.end] != h.text
                    searches += 1
                except Exception as exc:
                    errors += 1
                    print(repr(exc), file=sys.stderr)
            print(searches, errors, bad, idx.store.counts()["documents"], flush=True)
            """)
        for _ in range(2)
    ]
    time.sleep(1.0)
    writer = spawn_slow(f"""
        rag.ingest.pipeline.BATCH_DOCS = 25
        Index.open({pg_url!r}, Slow()).add({str(corpus)!r})
        """)
    _, err = writer.communicate(timeout=120)
    assert writer.returncode == 0, err
    time.sleep(0.5)
    stop.touch()
    for r in readers:
        out, err = r.communicate(timeout=60)
        searches, errors, bad, seen = map(int, out.split())
        assert (errors, bad) == (0, 0), err
        assert searches > 0
        assert seen == 301, "the reader sees the writer's commits"
