"""Rerankers: rescore retrieved passages against the query with a stronger model.

Off by default, because no reranker ships offline. With a network or a local model
folder, any sentence-transformers cross-encoder works:

>>> index.reranker = CrossEncoderReranker("cross-encoder/ms-marco-MiniLM-L-6-v2")  # doctest: +SKIP
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Protocol

from rag.errors import InvalidValue, ModelError
from rag.models.lazy import Lazy, quiet_transformers

log = logging.getLogger(__name__)


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
        self._model: Lazy[Any] = Lazy(self._load)

    def _load(self) -> Any:
        from sentence_transformers import CrossEncoder

        quiet_transformers()
        try:
            return CrossEncoder(self.name, device="cpu", trust_remote_code=False)
        except Exception as e:
            raise ModelError(
                f"cannot load reranker {self.name!r}: {e}. Give a cross-encoder folder "
                "or a model name reachable from this machine"
            ) from e

    def score(self, query: str, passages: Sequence[str]) -> list[float]:
        if not passages:
            return []
        scores = self._model.get().predict(
            [(query, p) for p in passages], batch_size=self.batch_size, show_progress_bar=False
        )
        return [float(s) for s in scores]
