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
    from rag.answer.engine import QueryEngine
    from rag.errors import RagError
    from rag.index import Index
    from rag.ingest.pipeline import IngestReport
    from rag.models.generation import CopyFrom
    from rag.settings import Settings
    from rag.storage.removal import RemoveReport
    from rag.types import Answer, Citation, Document, Hit, Where

_EXPORTS = {
    "Answer": "rag.types",
    "Citation": "rag.types",
    "CopyFrom": "rag.models.generation",
    "Document": "rag.types",
    "Hit": "rag.types",
    "Index": "rag.index",
    "IngestReport": "rag.ingest.pipeline",
    "QueryEngine": "rag.answer.engine",
    "RagError": "rag.errors",
    "RemoveReport": "rag.storage.removal",
    "Settings": "rag.settings",
    "Where": "rag.types",
}

__all__ = [
    "Answer",
    "Citation",
    "CopyFrom",
    "Document",
    "Hit",
    "Index",
    "IngestReport",
    "QueryEngine",
    "RagError",
    "RemoveReport",
    "Settings",
    "Where",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'rag' has no attribute {name!r}")
    return getattr(import_module(module), name)
