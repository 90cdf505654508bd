"""rag: offline retrieval-augmented question answering over your own documents.

>>> from rag import Index, QueryEngine
>>> index = Index.open_or_create("my-index")          # doctest: +SKIP
>>> index.add("docs/")                                 # doctest: +SKIP
>>> hits = index.search("query", k=5)                  # doctest: +SKIP
>>> answer = QueryEngine(index).ask("question")        # doctest: +SKIP

Names are imported on first use so that ``import rag`` stays cheap.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rag.engine import Answer, Citation, QueryEngine
    from rag.errors import RagError
    from rag.index import Hit, Index
    from rag.ingest import IngestReport
    from rag.settings import Settings

_EXPORTS = {
    "Answer": "rag.engine",
    "Citation": "rag.engine",
    "QueryEngine": "rag.engine",
    "Hit": "rag.index",
    "Index": "rag.index",
    "IngestReport": "rag.ingest",
    "RagError": "rag.errors",
    "Settings": "rag.settings",
}

__all__ = [
    "Answer",
    "Citation",
    "Hit",
    "Index",
    "IngestReport",
    "QueryEngine",
    "RagError",
    "Settings",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'rag' has no attribute {name!r}")
    return getattr(import_module(module), name)
