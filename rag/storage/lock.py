"""The writer lock of an index, across processes.

A folder index has one writer at a time: a file lock (``WriteLock``). A PostgreSQL
index takes many writers at once, each batch in its own transaction; what must run
alone there (repair, an upgrade) takes an advisory lock that writers share
(``AdvisoryLock``).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Protocol

from filelock import FileLock, Timeout
from sqlalchemy import Engine, text

from rag.errors import IndexLocked

LOCK_FILE = "write.lock"
PID_FILE = "writer.pid"
# How often a wait for an advisory lock asks again.
POLL_SECONDS = 0.1


class Lock(Protocol):
    def hold(self, timeout: float) -> AbstractContextManager[None]:
        """Alone: no other writer, waiting up to ``timeout`` seconds (< 0: forever)."""
        ...

    def writing(self, timeout: float) -> AbstractContextManager[None]:
        """To add or remove documents: alone on a folder, alongside others in PostgreSQL."""
        ...

    def try_hold(self) -> AbstractContextManager[bool]:
        """Alone, if that is possible right now; yields whether it is held."""
        ...


class WriteLock:
    """Held by the one process writing an index; others wait or are told who holds it."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    @contextmanager
    def hold(self, timeout: float) -> Iterator[None]:
        """Hold the lock, waiting up to ``timeout`` seconds; raises ``IndexLocked``."""
        lock = FileLock(str(self.folder / LOCK_FILE), timeout=timeout)
        try:
            lock.acquire()
        except Timeout:
            raise IndexLocked(
                f"the index at {self.folder} is being updated by process {self.holder()}; "
                "wait for it to finish and try again"
            ) from None
        try:
            (self.folder / PID_FILE).write_text(str(os.getpid()))
            yield
        finally:
            (self.folder / PID_FILE).unlink(missing_ok=True)
            lock.release()

    def writing(self, timeout: float) -> AbstractContextManager[None]:
        return self.hold(timeout)

    @contextmanager
    def try_hold(self) -> Iterator[bool]:
        """Hold the lock if it is free right now; yields whether it is held."""
        lock = FileLock(str(self.folder / LOCK_FILE), timeout=0)
        try:
            lock.acquire()
        except Timeout:
            yield False
            return
        try:
            yield True
        finally:
            lock.release()

    def holder(self) -> str:
        """The process id of the writer, as it recorded it, or ``unknown``."""
        try:
            return (self.folder / PID_FILE).read_text().strip() or "unknown"
        except OSError:
            return "unknown"


class AdvisoryLock:
    """A session advisory lock on one PostgreSQL index: shared by writers, exclusive for
    what must run alone. It lives as long as the connection holding it, so a killed
    process never leaves it held."""

    def __init__(self, engine: Engine, name: str, display: str) -> None:
        self.engine = engine
        self.name = name
        self.display = display

    def _sql(self, verb: str, shared: bool) -> str:
        return f"SELECT pg_{verb}{'_shared' if shared else ''}(hashtextextended(:k, 0))"

    @contextmanager
    def _held(self, timeout: float | None, shared: bool) -> Iterator[bool]:
        """Yields whether the lock is held; ``timeout`` None: only if free now."""
        key = {"k": f"{self.name}:writers"}
        deadline = time.monotonic() + (timeout or 0.0)
        with self.engine.connect() as conn:
            while not conn.execute(text(self._sql("try_advisory_lock", shared)), key).scalar():
                conn.rollback()
                if timeout is None:
                    yield False
                    return
                if timeout >= 0 and time.monotonic() >= deadline:
                    raise IndexLocked(
                        f"the index at {self.display} is being "
                        f"{'repaired or copied' if shared else 'updated'} by another process; "
                        "wait for it to finish and try again"
                    )
                time.sleep(POLL_SECONDS)
            conn.commit()
            try:
                yield True
            finally:
                conn.execute(text(self._sql("advisory_unlock", shared)), key)
                conn.commit()

    @contextmanager
    def hold(self, timeout: float) -> Iterator[None]:
        with self._held(timeout, shared=False):
            yield

    @contextmanager
    def writing(self, timeout: float) -> Iterator[None]:
        with self._held(timeout, shared=True):
            yield

    def try_hold(self) -> AbstractContextManager[bool]:
        return self._held(None, shared=False)
