"""The one-writer lock of an index folder, across processes."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

from rag.errors import IndexLocked

LOCK_FILE = "write.lock"
PID_FILE = "writer.pid"


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
