"""Watching indexed folders and files: file-system events, filtered and gathered into bursts.

Events come from ``watchfiles`` (inotify, FSEvents or ReadDirectoryChangesW). A
folder is watched recursively; a single file through its parent folder, not
recursively, so that an editor saving by writing a new file and renaming it over the
old one is still seen. Events the ingest would not act on are dropped: hidden files
and folders, ``__pycache__`` and ``node_modules``, files of a type no reader takes,
and anything inside the index folder (its own writes would otherwise wake it).

Watching starts when a :class:`Watcher` is entered, so changes made while the first
ingest runs are seen: they make the first burst.

>>> burst_settings()
'a burst ends after 200 ms without a change, or after 1600 ms'
"""

from __future__ import annotations

import logging
import os
import queue
import stat
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import TracebackType

# The notifier itself, not watchfiles.watch(): watch() starts watching only when first
# iterated, and changes made while the first ingest runs must not be missed.
from watchfiles._rust_notify import RustNotify

from rag.errors import ReadError
from rag.ingest.discovery import left_out
from rag.types import FILE_TYPES

log = logging.getLogger(__name__)

# watchfiles gathers the changes of one burst until none came for STEP_MS, or for
# DEBOUNCE_MS at most (its default), then hands them over together: a folder being
# copied or a file saved in several writes becomes one update.
DEBOUNCE_MS = 1600
STEP_MS = 200


def burst_settings() -> str:
    return f"a burst ends after {STEP_MS} ms without a change, or after {DEBOUNCE_MS} ms"


class Watcher:
    """The changes under some folders and files, a burst at a time.

    >>> with Watcher([Path("docs")], ignore=Path("docs/.rag")) as w:  # doctest: +SKIP
    ...     for changed in w.bursts():
    ...         print(sorted(changed))
    """

    def __init__(
        self,
        roots: Sequence[Path],
        ignore: Path | None = None,
        debounce_ms: int = DEBOUNCE_MS,
        step_ms: int = STEP_MS,
    ) -> None:
        self.roots = list(roots)
        self.ignore = ignore
        self.debounce_ms = debounce_ms
        self.step_ms = step_ms
        self._folders: list[Path] = []
        self._files: list[Path] = []
        self._stop = threading.Event()
        self._queue: queue.SimpleQueue[set[str] | Exception] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        # each root: its resolved path, and the folder's (device, inode) to notice one
        # deleted and made again, which the watch of the old one no longer sees
        self._identity: dict[Path, tuple[Path, tuple[int, int] | None]] = {}
        self._ignore: Path | None = None

    def __enter__(self) -> Watcher:
        for root in self.roots:
            try:
                real = root.resolve(strict=True)
                self._identity[root] = (real, _identity(real))
            except FileNotFoundError:
                raise ReadError(str(root), "no such file or folder") from None
            except OSError as e:
                raise ReadError(str(root), e.strerror or str(e)) from None
        resolved = [real for real, _ in self._identity.values()]
        self._folders = [r for r in resolved if r.is_dir()]
        self._files = [r for r in resolved if not r.is_dir()]
        self._ignore = self.ignore.resolve() if self.ignore is not None else None
        try:
            self._start(self._folders, recursive=True)
            self._start(sorted({f.parent for f in self._files}), recursive=False)
        except (OSError, RuntimeError) as e:
            self.close()
            raise ReadError(", ".join(str(r) for r in self.roots), f"cannot watch: {e}") from e
        log.info("watching %s (%s)", ", ".join(map(str, resolved)), burst_settings())
        return self

    def _start(self, paths: list[Path], recursive: bool) -> None:
        """Watch ``paths`` from now on, in a thread that hands over each burst."""
        if not paths:
            return
        notify = RustNotify([str(p) for p in paths], False, False, 300, recursive, False)
        thread = threading.Thread(target=self._pump, args=(notify,), name="rag-watch", daemon=True)
        thread.start()
        self._threads.append(thread)

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=5 * self.step_ms / 1000)
        self._threads = []

    def _pump(self, notify: RustNotify) -> None:
        """Hand each burst of relevant changes to the consumer, until stopped."""
        with notify:
            while not self._stop.is_set():
                try:
                    # no timeout: watchfiles drops changes that arrive as one runs out
                    raw = notify.watch(self.debounce_ms, self.step_ms, 0, self._stop)
                except Exception as e:  # the watcher broke (e.g. the inotify watch limit)
                    self._queue.put(e)
                    return
                if isinstance(raw, set):
                    changed = {path for _, path in raw if self._relevant(path)}
                    log.debug("%d changes, %d relevant", len(raw), len(changed))
                    if changed:
                        self._queue.put(changed)

    def _relevant(self, path: str) -> bool:
        p = Path(path)
        if self._ignore is not None and (p == self._ignore or self._ignore in p.parents):
            return False
        if p in self._files:
            return True
        for folder in self._folders:
            if p == folder:
                return True  # the folder itself went or came back
            if folder not in p.parents:
                continue
            if any(left_out(part) for part in p.relative_to(folder).parts):
                return False
            return not p.suffix or p.suffix.lower() in FILE_TYPES or os.path.isdir(p)
        return False

    def bursts(self) -> Iterator[set[str]]:
        """Each burst of changed paths, as it comes; blocks in between.

        Raises ``ReadError`` when a watched folder or file is gone, or watching fails.
        """
        while True:
            items = [self._queue.get()]
            while not self._queue.empty():  # bursts of both watchers, or queued meanwhile
                items.append(self._queue.get())
            changed: set[str] = set()
            for item in items:
                if isinstance(item, Exception):
                    raise ReadError(", ".join(map(str, self.roots)), f"watching failed: {item}")
                changed |= item
            for root, (real, identity) in self._identity.items():
                try:
                    gone = _identity(real) != identity
                except OSError:
                    gone = True
                if gone:
                    raise ReadError(
                        str(root),
                        "the watched folder or file is gone; what was indexed from it "
                        "stays in the index (rag rm removes it)",
                    )
            yield changed


def _identity(path: Path) -> tuple[int, int] | None:
    """A folder's (device, inode); None for a file, which is watched through its folder.
    Raises ``OSError`` when nothing is there."""
    st = path.stat()
    return (st.st_dev, st.st_ino) if stat.S_ISDIR(st.st_mode) else None
