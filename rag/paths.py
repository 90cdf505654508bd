"""Where the tool keeps its files: the model cache and the default index folder.

Both come from environment variables first, so tests and users can move them:
``RAG_CACHE=/tmp/c rag ...`` keeps converted models in ``/tmp/c``, and
``RAG_INDEX=/tmp/idx rag ...`` reads and writes the index in ``/tmp/idx``.
"""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """The folder for converted models and other derived files, created if missing.

    ``$RAG_CACHE`` if set, else ``$XDG_CACHE_HOME/rag``, else ``~/.cache/rag``.
    """
    explicit = os.environ.get("RAG_CACHE")
    if explicit:
        path = Path(explicit).expanduser()
    else:
        xdg = os.environ.get("XDG_CACHE_HOME")
        base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
        path = base / "rag"
    path.mkdir(parents=True, exist_ok=True)
    return path


def default_index_dir() -> str:
    """Where the index is when none is given: ``$RAG_INDEX`` if set, else ``.rag``.

    A folder, or a ``postgresql://`` URL. Not created here; building an index creates it.
    """
    explicit = os.environ.get("RAG_INDEX")
    if not explicit:
        return ".rag"
    return explicit if "://" in explicit else str(Path(explicit).expanduser())
