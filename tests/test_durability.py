"""Crashes, concurrent readers and a second writer, with real processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from rag.index import Index
from rag.settings import Settings
from tests.conftest import ROOT
from tests.fakes import HashEmbedder

PRELUDE = f"""
import sys, time
sys.path.insert(0, {str(ROOT)!r})
from tests.fakes import HashEmbedder
import rag.ingest.pipeline
from rag.index import Index
"""


def spawn(code: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", PRELUDE + textwrap.dedent(code)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def write_corpus(folder: Path, n: int, tag: str = "") -> None:
    folder.mkdir(exist_ok=True)
    for i in range(n):
        words = " ".join(f"w{(i * 7 + j) % 97}" for j in range(60))
        (folder / f"d{i:04d}.md").write_text(f"# Doc {i} {tag}\n\n{words}.\n\n{words[::-1]}.")


def docs(index_dir: Path) -> dict[str, str]:
    with Index.open(index_dir, HashEmbedder()) as idx, idx.store.engine.connect() as c:
        return dict(c.exec_driver_sql("SELECT doc_id, content_hash FROM documents").fetchall())


def kill_between_batches(
    index: str,
    corpus: Path,
    total: int,
    committed: Callable[[], dict[str, str]],
    *,
    embedder: str = "HashEmbedder()",
    prelude: str = "",
    wait: float = 0.15,
    step: float = 0.1,
) -> dict[str, str]:
    """SIGKILL an ingest of ``corpus`` (batches of 20 documents) into ``index``, waiting
    longer each attempt, until the kill lands between two committed batches; returns
    what ``committed()`` finds stored then. ``prelude`` defines what ``embedder`` names."""
    for attempt in range(6):
        proc = spawn(
            prelude
            + textwrap.dedent(f"""
            rag.ingest.pipeline.BATCH_DOCS = 20
            idx = Index.open({index!r}, {embedder})
            print("ready", flush=True)
            idx.add({str(corpus)!r})
            """)
        )
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(wait + step * attempt)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        found = committed()
        if 0 < len(found) < total:
            return found
    raise AssertionError("the kill never landed between two committed batches")


def test_sigkill_mid_ingest_loses_no_committed_batch(tmp_path: Path) -> None:
    corpus, index_dir = tmp_path / "corpus", tmp_path / "idx"
    write_corpus(corpus, 1500)
    e = HashEmbedder()
    Index.create(index_dir, Settings(embedder=e.name), e).close()
    committed = kill_between_batches(str(index_dir), corpus, 1500, lambda: docs(index_dir))
    # right after the kill: the index opens, searches, and heals its vectors file
    with Index.open(index_dir, HashEmbedder()) as idx:
        assert idx.search("w5 w6 w7", k=5)
        assert idx.check() == []
    # the re-run keeps what was committed and finishes the rest
    with Index.open(index_dir, HashEmbedder()) as idx:
        report = idx.add(corpus)
    assert report.unchanged >= len(committed) and report.added == 1500 - len(committed)
    after = docs(index_dir)
    assert all(after[d] == h for d, h in committed.items())
    clean_dir = tmp_path / "clean"
    with Index.create(clean_dir, Settings(embedder=e.name), e) as clean:
        clean.add(corpus)
    assert after == docs(clean_dir)


def test_second_writer_process_is_told_who_writes(tmp_path: Path) -> None:
    e = HashEmbedder()
    Index.create(tmp_path / "idx", Settings(embedder=e.name), e).close()
    holder = spawn(f"""
        idx = Index.open({str(tmp_path / "idx")!r}, HashEmbedder())
        with idx.lock.hold(5):
            print("locked", flush=True)
            time.sleep(30)
        """)
    assert holder.stdout is not None
    assert holder.stdout.readline().strip() == "locked"
    try:
        corpus = tmp_path / "c"
        write_corpus(corpus, 3)
        rag = Path(sys.executable).parent / "rag"
        out = subprocess.run(
            [str(rag), "index", str(corpus), "--index", str(tmp_path / "idx"), "--wait", "0.2"],
            capture_output=True,
            text=True,
        )
        assert out.returncode == 1
        assert f"being updated by process {holder.pid}" in out.stderr
        assert "Traceback" not in out.stderr
    finally:
        holder.kill()
        holder.wait()
    # the lock dies with its holder
    with Index.open(tmp_path / "idx", e) as idx:
        assert idx.add(corpus).added == 3


def test_readers_search_without_errors_during_an_ingest(tmp_path: Path) -> None:
    corpus, index_dir = tmp_path / "corpus", tmp_path / "idx"
    write_corpus(corpus, 800)
    e = HashEmbedder()
    seed = tmp_path / "seed"
    write_corpus(seed, 1, tag="seed")
    Index.create(index_dir, Settings(embedder=e.name), e).add(seed)
    readers = [
        spawn(f"""
            from pathlib import Path
            idx = Index.open({str(index_dir)!r}, HashEmbedder())
            corpus = Path({str(corpus)!r})
            errors = bad = searches = 0
            end = time.time() + 60
            while time.time() < end and not Path({str(tmp_path / "stop")!r}).exists():
                try:
                    for h in idx.search("w3 w4 w5", k=10):
                        if h.doc_id.startswith("d") and h.source.startswith(str(corpus)):
                            bad += (corpus / h.doc_id).read_text()[h.start:h.end] != h.text
                    searches += 1
                except Exception as exc:
                    errors += 1
                    print(repr(exc), file=sys.stderr)
            print(searches, errors, bad, idx.store.counts()["documents"], flush=True)
            """)
        for _ in range(2)
    ]
    time.sleep(1.5)
    with Index.open(index_dir, e) as idx:
        idx.add(corpus)
    time.sleep(0.5)
    (tmp_path / "stop").touch()
    for r in readers:
        out, err = r.communicate(timeout=60)
        searches, errors, bad, seen = map(int, out.split())
        assert (errors, bad) == (0, 0), err
        assert searches > 0
        assert seen == 801, "the reader picked up the writer's commits"


@pytest.mark.parametrize("damage", ["truncate", "garbage"])
def test_damaged_database_gives_a_clear_error(tmp_path: Path, damage: str) -> None:
    corpus = tmp_path / "c"
    write_corpus(corpus, 50)
    e = HashEmbedder()
    with Index.create(tmp_path / "idx", Settings(embedder=e.name), e) as idx:
        idx.add(corpus)
    db = tmp_path / "idx" / "index.db"
    data = db.read_bytes()
    db.write_bytes(data[: len(data) // 3] if damage == "truncate" else b"\0" * len(data))
    rag = Path(sys.executable).parent / "rag"
    out = subprocess.run(
        [str(rag), "check", "--index", str(tmp_path / "idx")], capture_output=True, text=True
    )
    assert out.returncode != 0
    assert "Traceback" not in out.stderr
    assert "index.db" in out.stderr or "database" in out.stderr


def test_an_old_index_is_migrated_only_under_the_writer_lock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sqlite3

    import rag.storage.store
    from rag.errors import IndexLocked
    from rag.settings import FORMAT_VERSION

    e = HashEmbedder()
    corpus = tmp_path / "c"
    write_corpus(corpus, 3)
    with Index.create(tmp_path / "idx", Settings(embedder=e.name), e) as idx:
        idx.add(corpus)
    db = sqlite3.connect(tmp_path / "idx" / "index.db")
    db.execute("UPDATE meta SET value = '2' WHERE key = 'format_version'")
    db.commit()
    db.close()
    holder = spawn(f"""
        from rag.storage.lock import WriteLock
        from pathlib import Path
        with WriteLock(Path({str(tmp_path / "idx")!r})).hold(5):
            print("locked", flush=True)
            time.sleep(30)
        """)
    monkeypatch.setattr(rag.storage.store, "MIGRATION_WAIT", 0.3)
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(IndexLocked, match=f"updated by process {holder.pid}"):
            Index.open(tmp_path / "idx", e)
        db = sqlite3.connect(tmp_path / "idx" / "index.db")
        version = db.execute("SELECT value FROM meta WHERE key = 'format_version'").fetchone()
        db.close()
        assert version == ("2",), "nothing is migrated while another process writes"
    finally:
        holder.kill()
        holder.wait()
    with Index.open(tmp_path / "idx", e) as idx:
        assert idx.status().format_version == FORMAT_VERSION
        assert idx.status().documents == 3
