"""`rag index --watch`: a real watcher process, real files, searched from other processes.

Nothing here times the watcher: each change is awaited by polling with a generous
deadline, so a loaded machine makes the tests slower, not red.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

from rag.errors import ReadError
from rag.index import Index
from rag.ingest.watch import Watcher
from rag.models.registry import register_embedder
from rag.settings import Settings
from tests.conftest import ROOT
from tests.fakes import HashEmbedder

DEADLINE = 60.0  # seconds to wait for anything the watcher should do
RAG = str(Path(sys.executable).parent / "rag")
# The real command line, with the fake embedder registered (the `rag` script is used
# where no embedder is needed: lexical search, rm, check).
CLI = f"""
import sys
sys.path.insert(0, {str(ROOT)!r})
from tests.fakes import HashEmbedder
from rag.models.registry import register_embedder
import rag.ingest.pipeline
register_embedder("fake-hash", HashEmbedder)
if sys.argv[1] == "--small-batches":
    rag.ingest.pipeline.BATCH_DOCS = 10
    del sys.argv[1]
from rag.cli import cli
cli(sys.argv[1:], prog_name="rag")
"""


class Watching:
    """A `rag index DIR --watch --json` process and the JSON lines it has printed."""

    def __init__(self, docs: Path, index_dir: Path, *extra: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", CLI, *extra, "index", str(docs), "--index", str(index_dir),
             "--embedder", "fake-hash", "--watch", "--json"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        self.lines: queue.Queue[dict[str, Any]] = queue.Queue()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(json.loads(line))

    def next_update(self) -> dict[str, Any]:
        try:
            return self.lines.get(timeout=DEADLINE)
        except queue.Empty:
            self.stop(signal.SIGKILL)
            raise AssertionError(f"no update within {DEADLINE} s: {self.stderr()}") from None

    def stop(self, sig: int) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        code = self.proc.wait(timeout=DEADLINE)
        self.reader.join(timeout=DEADLINE)  # every line printed is in self.lines
        return code

    def stderr(self) -> str:
        if self.proc.poll() is None:
            return "(still running)"
        assert self.proc.stderr is not None
        return self.proc.stderr.read()


@pytest.fixture
def watching(tmp_path: Path, corpus: Path) -> Iterator[Watching]:
    w = Watching(corpus, tmp_path / "idx")
    first = w.next_update()
    assert (first["update"], first["added"]) == (0, 15), first
    yield w
    w.stop(signal.SIGKILL)


def search(index_dir: Path, query: str) -> set[str]:
    """The documents a lexical search in another process finds (no embedder needed)."""
    out = subprocess.run(
        [RAG, "search", query, "--index", str(index_dir), "--mode", "lexical", "-k", "50",
         "--json"], capture_output=True, text=True, timeout=DEADLINE,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    return {h["doc_id"] for h in json.loads(out.stdout)["hits"]}


def eventually(what: str, holds: Callable[[], bool]) -> None:
    end = time.monotonic() + DEADLINE
    while not holds():
        assert time.monotonic() < end, f"not within {DEADLINE} s: {what}"
        time.sleep(0.2)


def check(index_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([RAG, "check", "--index", str(index_dir)], capture_output=True,
                          text=True, timeout=DEADLINE)  # fmt: skip


def put(path: Path, text: str) -> None:
    """Write a file whole, as an editor saving by renaming does: one change, never empty."""
    tmp = path.with_name(f".{path.name}.tmp")  # hidden: the watcher ignores it
    tmp.write_text(text)
    os.replace(tmp, path)


def test_watch_follows_new_edited_and_deleted_files(corpus: Path) -> None:
    idx = corpus / "idx"  # inside the watched folder: its own writes must not wake it
    watching = Watching(corpus, idx)
    try:
        assert watching.next_update()["added"] == 15
        put(corpus / "zebras.md", "# Zebras\n\nZebras graze on the quuxplain.")
        eventually("the new file is found", lambda: search(idx, "quuxplain") == {"zebras.md"})
        with (corpus / "hallucination.md").open("a") as f:
            f.write("\n\nModels also invent okapiwords.\n")
        eventually("the edit is found", lambda: search(idx, "okapiwords") == {"hallucination.md"})
        (corpus / "diffusion-models.md").unlink()
        gone = "the deleted file is gone"
        eventually(gone, lambda: "diffusion-models.md" not in search(idx, "diffusion denoising"))
        updates = [watching.next_update() for _ in range(3)]
        # a burst of writes is gathered into one update (a very few on a loaded machine)
        for i in range(10):
            put(corpus / f"burst{i}.md", f"# Burst {i}\n\nBurst file quuxburst {i}.")
        burst = [watching.next_update()]
        while sum(u["added"] for u in burst) < 10:
            burst.append(watching.next_update())
        assert len(burst) <= 3, burst
        assert watching.stop(signal.SIGINT) == 0
        assert "stopped watching" in watching.stderr()
    finally:
        watching.stop(signal.SIGKILL)
    while not watching.lines.empty():
        updates.append(watching.lines.get())
    updates += burst
    totals = {key: sum(u[key] for u in updates) for key in ("added", "updated", "removed")}
    assert totals == {"added": 11, "updated": 1, "removed": 1}, updates
    assert all(u["failed"] == 0 for u in updates)
    assert len(updates) <= 6, "the watcher woke up without a change"
    out = check(idx)
    assert out.returncode == 0 and "ok (25 documents" in out.stdout, out.stdout + out.stderr


def test_other_writers_run_while_the_watcher_waits(
    tmp_path: Path, corpus: Path, watching: Watching
) -> None:
    idx = tmp_path / "idx"
    # --wait 0: each fails at once if the idle watcher held the writer lock
    again = subprocess.run(
        [sys.executable, "-c", CLI, "index", str(corpus), "--index", str(idx), "--wait", "0",
         "--json"], capture_output=True, text=True, timeout=DEADLINE,
    )  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["unchanged"] == 15
    rm = subprocess.run([RAG, "rm", "hallucination.md", "--index", str(idx), "--wait", "0"],
                        capture_output=True, text=True, timeout=DEADLINE)  # fmt: skip
    assert rm.returncode == 0, rm.stderr
    assert rm.stdout.startswith("removed 1 document")
    assert "hallucination.md" not in search(idx, "hallucination")
    # the watcher is still there and picks up the next change, over the removal
    assert watching.proc.poll() is None
    put(corpus / "zebras.md", "# Zebras\n\nZebras graze on the quuxplain.")
    update = watching.next_update()  # the removed file is read again, as rag rm warns
    assert (update["added"], update["failed"]) == (2, 0), update
    assert search(idx, "quuxplain") == {"zebras.md"}
    assert watching.stop(signal.SIGTERM) == 0
    assert "stopped watching" in watching.stderr()
    assert check(idx).returncode == 0


def test_a_deleted_watched_folder_stops_the_watcher_and_keeps_the_index(
    tmp_path: Path, corpus: Path, watching: Watching
) -> None:
    shutil.rmtree(corpus)
    code = watching.proc.wait(timeout=DEADLINE)
    err = watching.stderr()
    assert code == 1 and "the watched folder or file is gone" in err and "Traceback" not in err
    out = check(tmp_path / "idx")
    assert out.returncode == 0, out.stderr


def test_sigkill_during_an_update_leaves_a_usable_index(tmp_path: Path, corpus: Path) -> None:
    killed_mid_way = False
    for attempt in range(4):
        docs, idx = tmp_path / f"docs{attempt}", tmp_path / f"idx{attempt}"
        shutil.copytree(corpus, docs)
        watcher = Watching(docs, idx, "--small-batches")
        assert watcher.next_update()["added"] == 15
        for i in range(600):  # copied in as one burst, committed 10 documents at a time
            (docs / f"n{i:03d}.md").write_text(f"# N {i}\n\nw{i} " + "words " * 40)
        end = time.monotonic() + DEADLINE
        while time.monotonic() < end and _documents(idx) <= 15:
            time.sleep(0.01)
        time.sleep(0.05 * attempt)
        watcher.stop(signal.SIGKILL)
        if 15 < _documents(idx) < 615:
            killed_mid_way = True
            break
    assert killed_mid_way, "the kill never landed in the middle of an update"
    with Index.open(idx, HashEmbedder()) as index:
        assert index.search("w5 words", k=5)  # the first search heals a stale vectors file
        assert index.check() == []
        report = index.add(docs)
    assert (report.added + report.unchanged, report.failed) == (615, [])
    assert _documents(idx) == 615


def _documents(index_dir: Path) -> int:
    try:
        db = sqlite3.connect(index_dir / "index.db", timeout=10)
    except sqlite3.Error:
        return 0
    try:
        return int(db.execute("SELECT count(*) FROM documents").fetchone()[0])
    except sqlite3.Error:
        return 0
    finally:
        db.close()


# -- in process --------------------------------------------------------------------


def next_within(updates: Generator[Any, None, None], seconds: float = DEADLINE) -> Any:
    got: list[Any] = []
    thread = threading.Thread(target=lambda: got.append(next(updates)), daemon=True)
    thread.start()
    thread.join(seconds)
    assert got, f"no update within {seconds} s"
    return got[0]


def test_index_watch_loads_the_embedder_once_and_frees_the_lock_between_updates(
    tmp_path: Path, corpus: Path
) -> None:
    made: list[HashEmbedder] = []

    def make() -> HashEmbedder:
        made.append(HashEmbedder("fake-counted"))
        return made[-1]

    register_embedder("fake-counted", make)
    Index.create(tmp_path / "idx", Settings(embedder="fake-counted")).close()
    with Index.open(tmp_path / "idx") as index:
        updates = index.watch(corpus)
        assert next_within(updates).added == 15
        for n in range(3):
            with index.lock.try_hold() as free:
                assert free, "the watcher holds the writer lock while it waits"
            (corpus / f"new{n}.md").write_text(f"# New {n}\n\nFresh text {n}.")
            report = next_within(updates)
            assert (report.added, report.unchanged) == (1, 15 + n)
        updates.close()
    assert len(made) == 1


def test_which_changes_wake_the_watcher(tmp_path: Path) -> None:
    top = tmp_path.resolve()
    docs, corpus = top / "docs", top / "corpus.jsonl"
    (docs / "sub").mkdir(parents=True)
    corpus.write_text('{"_id": "a", "text": "x"}\n')
    with Watcher([docs, corpus], ignore=docs / "idx") as w:
        relevant = w._relevant
        assert relevant(str(docs / "a.md")) and relevant(str(docs / "sub" / "b.PDF"))
        assert relevant(str(docs / "sub")) and relevant(str(docs))  # folders come and go
        assert relevant(str(corpus))
        assert not relevant(str(top / "other.jsonl"))  # beside the watched file
        assert not relevant(str(docs / ".hidden.md"))
        assert not relevant(str(docs / ".git" / "notes.md"))
        assert not relevant(str(docs / "node_modules" / "x.md"))
        assert not relevant(str(docs / "idx" / "index.db"))
        assert not relevant(str(docs / "picture.png"))
        assert not relevant(str(top / "elsewhere.md"))
    with pytest.raises(ReadError, match="no such file"):
        Watcher([top / "missing"]).__enter__()
