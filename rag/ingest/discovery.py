"""Finding the files to index under a folder: what is read, what is left out and why."""

from __future__ import annotations

import errno
import logging
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from rag.errors import ReadError
from rag.formats import FILE_TYPES

logger = logging.getLogger(__name__)

_SKIPPED_DIRS = frozenset({"__pycache__", "node_modules"})


@dataclass(frozen=True)
class Skipped:
    """A file ``discover`` left out, and why."""

    path: str
    reason: str


def left_out(name: str) -> bool:
    """Whether a file or folder called ``name`` is left out silently (hidden, or a
    ``__pycache__`` or ``node_modules`` folder)."""
    return name.startswith(".") or name in _SKIPPED_DIRS


def discover(root: Path) -> tuple[list[Path], list[Skipped]]:
    """Readable files under ``root`` (or ``root`` itself if it is a file), sorted.

    Hidden files and folders, ``__pycache__`` and ``node_modules`` are left out
    silently; other files left out are listed in the second value with the reason.
    Symbolic links to folders are never followed, so link loops cannot recurse.
    """
    if not root.exists():
        raise ReadError(str(root), "no such file or folder")
    found: list[Path] = []
    skipped: list[Skipped] = []
    if not root.is_dir():
        _consider(root, found, skipped)
        return found, skipped

    def on_error(err: OSError) -> None:
        skipped.append(Skipped(str(err.filename), f"cannot list folder: {err.strerror}"))

    for dirpath, dirnames, filenames in os.walk(root, onerror=on_error, followlinks=False):
        kept = []
        for name in sorted(dirnames):
            sub = Path(dirpath, name)
            if left_out(name):
                continue
            if sub.is_symlink():
                skipped.append(Skipped(str(sub), "symbolic link to a folder (not followed)"))
                continue
            kept.append(name)
        dirnames[:] = kept
        for name in filenames:
            if not name.startswith("."):
                _consider(Path(dirpath, name), found, skipped)
    for s in skipped:
        logger.debug("skipped %s: %s", s.path, s.reason)
    return sorted(found), sorted(skipped, key=lambda s: s.path)


def _consider(path: Path, found: list[Path], skipped: list[Skipped]) -> None:
    suffix = path.suffix.lower()
    if suffix not in FILE_TYPES:
        what = f"'{path.suffix}'" if path.suffix else "(no suffix)"
        skipped.append(Skipped(str(path), f"unsupported file type {what}"))
        return
    try:
        mode = path.stat().st_mode
    except OSError as err:
        skipped.append(Skipped(str(path), _link_problem(path, err)))
        return
    if stat.S_ISREG(mode):
        found.append(path)
    else:
        skipped.append(Skipped(str(path), "not a regular file"))


def _link_problem(path: Path, err: OSError) -> str:
    if err.errno == errno.ELOOP:
        return "symbolic link loop"
    if path.is_symlink():
        return "broken symbolic link (its target does not exist)"
    return f"cannot read file: {err.strerror}"
