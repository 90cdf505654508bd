"""Rerankers: rescore retrieved passages against the query with a stronger model.

Off by default, because no reranker ships offline. With a network or a local model
folder, any sentence-transformers cross-encoder works:

>>> index.reranker = CrossEncoderReranker("cross-encoder/ms-marco-MiniLM-L-6-v2")  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from rag.errors import InvalidValue, ModelError
from rag.hub import quiet_hf

log = logging.getLogger(__name__)

# How many fused candidates a reranker rescored before the top k are kept.
RERANK_DEPTH = 50


class Reranker(Protocol):
    name: str

    def score(self, query: str, passages: Sequence[str]) -> list[float]:
        """One relevance score per passage; higher is better."""
        ...


class CrossEncoderReranker:
    """A sentence-transformers CrossEncoder, loaded on first use."""

    def __init__(self, name: str, *, batch_size: int = 32) -> None:
        if not name.strip():
            raise InvalidValue("reranker name must not be empty")
        self.name = name
        self.batch_size = batch_size
        self._model: Any = None
        self._lock = threading.Lock()

    def _load(self) -> Any:
        with self._lock:
            if self._model is None:
                from sentence_transformers import CrossEncoder

                quiet_hf()
                try:
                    self._model = CrossEncoder(self.name, device="cpu", trust_remote_code=False)
                except Exception as e:
                    raise ModelError(
                        f"cannot load reranker {self.name!r}: {e}. Give a cross-encoder folder "
                        "or a model name reachable from this machine"
                    ) from e
        return self._model

    def score(self, query: str, passages: Sequence[str]) -> list[float]:
        if not passages:
            return []
        model = self._load()
        scores = model.predict(
            [(query, p) for p in passages], batch_size=self.batch_size, show_progress_bar=False
        )
        return [float(s) for s in scores]


_REGISTRY: dict[str, Callable[[], Reranker]] = {}


def register_reranker(name: str, factory: Callable[[], Reranker]) -> None:
    """Make ``name`` resolve to ``factory()`` instead of a cross-encoder."""
    _REGISTRY[name] = factory


def load_reranker(name: str) -> Reranker:
    factory = _REGISTRY.get(name)
    return factory() if factory is not None else CrossEncoderReranker(name)
