"""Search: the dense and lexical retrievers, fused, filtered, optionally reranked.

Batch first: every call takes many queries, embeds them in one call and searches
the vectors in one call; the single-query call is a wrapper over it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from rag.errors import InvalidValue
from rag.models.embedder import Embedder, check_dim
from rag.models.reranker import Reranker
from rag.retrieval.fusion import best_per_group, fusion
from rag.storage.records import StoredChunk
from rag.storage.store import Store
from rag.storage.sync import DenseIndex, Vectors
from rag.types import Hit, Where

# The embedder reads a few hundred tokens at most; longer queries are a mistake.
MAX_QUERY_CHARS = 10_000
SEARCH_MODES = ("hybrid", "dense", "lexical")
DEFAULT_MODE = "hybrid"
# How deep each retriever's ranking goes before fusion.
CANDIDATES = 100
# How many fused candidates a reranker rescores before the top k are kept.
RERANK_DEPTH = 50

Rankings = list[list[list[tuple[int, float]]]]  # per query, per retriever: (chunk id, score)


@dataclass(frozen=True)
class _Scope:
    """One search call's queries, embedded once, and the chunks it may return."""

    texts: list[str]
    mode: str
    where: Where | None
    among: np.ndarray | None  # allowed chunk ids, when filtered
    vectors: np.ndarray | None  # query vectors, when the mode searches vectors
    size: int  # how many chunks can be returned at most
    dense: DenseIndex | None  # the vectors as the call found them, searched every round


class Searcher:
    """Searches one index: its store, its synced vectors and its embedder."""

    def __init__(
        self,
        store: Store,
        vectors: Vectors,
        embedder: Callable[[], Embedder],
        reranker: Callable[[], Reranker | None],
    ) -> None:
        self.store = store
        self.vectors = vectors
        self._embedder = embedder
        self._reranker = reranker

    def passages(
        self, queries: Sequence[str], k: int, mode: str, where: Where | None, fuse: str
    ) -> list[list[Hit]]:
        """Per query, the ``k`` best passages."""
        check_queries(queries, k, mode)
        combine = fusion(fuse)
        self.vectors.refresh()
        keep = self._keep(k)
        depth = max(keep, CANDIDATES) if mode == "hybrid" else keep
        scope = self._scope(queries, mode, where)
        rankings = [combine(parts)[:keep] for parts in self._rankings(scope, None, depth)]
        rows = self.store.chunks(sorted({i for r in rankings for i, _ in r}))
        hits = [_ranked([_hit(rows[i], s) for i, s in r if i in rows]) for r in rankings]
        return [self._rerank(q, h, k) for q, h in zip(queries, hits)]

    def documents(
        self, queries: Sequence[str], k: int, mode: str, where: Where | None, fuse: str
    ) -> list[list[Hit]]:
        """Per query, up to ``k`` documents ranked by their best chunk (that chunk's hit).

        In hybrid mode each retriever's chunk ranking becomes a document ranking first,
        and the document rankings are fused.
        """
        check_queries(queries, k, mode)
        combine = fusion(fuse)
        self.vectors.refresh()
        scope = self._scope(queries, mode, where)
        picks: list[list[tuple[int, float]]] = [[] for _ in queries]  # (best chunk, score)
        todo = list(range(len(queries)))
        keep = self._keep(k)
        depth = max(keep * 4, CANDIDATES)
        while todo:
            rankings = self._rankings(scope, todo, depth)
            owner = self.store.chunk_documents(
                sorted({i for parts in rankings for part in parts for i, _ in part})
            )
            again = []
            for qi, parts in zip(todo, rankings):
                best_chunk: dict[int, int] = {}
                for part in parts:
                    for chunk_id, _ in part:
                        if chunk_id in owner:
                            best_chunk.setdefault(owner[chunk_id], chunk_id)
                ranked = combine([best_per_group(part, owner) for part in parts])[:keep]
                picks[qi] = [(best_chunk[doc], score) for doc, score in ranked]
                if len(ranked) < keep and depth < scope.size:
                    again.append(qi)
            todo = again
            depth *= 4
        rows = self.store.chunks(sorted({c for p in picks for c, _ in p}))
        hits = [_ranked([_hit(rows[c], s) for c, s in p if c in rows]) for p in picks]
        return [self._rerank(q, h, k) for q, h in zip(queries, hits)]

    def _keep(self, k: int) -> int:
        """How many fused candidates to keep: ``k``, or more for a reranker to rescore."""
        return max(k, RERANK_DEPTH) if self._reranker() is not None else k

    def _rerank(self, query: str, hits: list[Hit], k: int) -> list[Hit]:
        """The top ``k`` hits, rescored by the reranker when there is one."""
        reranker = self._reranker()
        if reranker is None or not hits:
            return hits[:k]
        scores = reranker.score(query, [h.text for h in hits])
        return _ranked([replace(h, score=s) for h, s in zip(hits, scores)])[:k]

    def _scope(self, queries: Sequence[str], mode: str, where: Where | None) -> _Scope:
        """What every retrieval round of one call shares: query vectors, allowed chunks."""
        among = self.store.chunk_ids_where(where) if where is not None else None
        vecs = self.vectors.current
        size = len(among) if among is not None else len(vecs) if vecs is not None else 0
        dense = mode in ("dense", "hybrid") and vecs is not None and len(vecs) > 0
        vectors: np.ndarray | None = None
        if dense and vecs is not None:
            embedder = self._embedder()
            vectors = embedder.embed(list(queries))
            check_dim(embedder.name, vectors.shape[1], vecs.dim)
        return _Scope(list(queries), mode, where, among, vectors, size, vecs)

    def _rankings(self, scope: _Scope, rows: list[int] | None, depth: int) -> Rankings:
        """Per query (all, or those at ``rows``), the chunk rankings of the retrievers
        that the mode uses, each ``depth`` deep."""
        picked = range(len(scope.texts)) if rows is None else rows
        out: Rankings = [[] for _ in picked]
        if scope.mode in ("dense", "hybrid"):
            vecs = scope.dense
            if scope.vectors is None or vecs is None:
                for ranking in out:
                    ranking.append([])
            else:
                scores, ids = vecs.search(
                    scope.vectors[list(picked)], max(1, min(depth, scope.size)), scope.among
                )
                for q, (srow, irow) in enumerate(zip(scores, ids)):
                    out[q].append([(int(i), float(s)) for s, i in zip(srow, irow) if i >= 0])
        if scope.mode in ("lexical", "hybrid"):
            for q, row in enumerate(picked):
                out[q].append(self.store.lexical_search(scope.texts[row], depth, scope.where))
        return out


def _hit(row: StoredChunk, score: float) -> Hit:
    return Hit(
        chunk_id=row.id,
        score=score,
        doc_id=row.doc_id,
        source=row.source,
        title=row.title,
        text=row.text,
        start=row.start,
        end=row.end,
        line_start=row.line_start,
        line_end=row.line_end,
        heading=row.heading,
        page_start=row.page_start,
        page_end=row.page_end,
        metadata=row.metadata,
        part=row.part,
        part_name=row.part_name,
    )


def _ranked(hits: list[Hit]) -> list[Hit]:
    """Best first; equal scores in document order, so the ranking never depends on the
    order in which chunks happened to be added."""
    return sorted(hits, key=lambda h: (-round(h.score, 6), h.doc_id, h.start))


def check_queries(queries: Sequence[str], k: int, mode: str = DEFAULT_MODE) -> None:
    if isinstance(k, bool) or not isinstance(k, int) or k <= 0:
        raise InvalidValue(f"k must be a whole number greater than 0, got {k!r}")
    if mode not in SEARCH_MODES:
        raise InvalidValue(f"search mode must be one of {', '.join(SEARCH_MODES)}, got {mode!r}")
    if not queries:
        raise InvalidValue("give at least one query")
    for q in queries:
        if not isinstance(q, str) or not q.strip():
            raise InvalidValue("a query must be non-empty text")
        if len(q) > MAX_QUERY_CHARS:
            raise InvalidValue(
                f"a query is {len(q)} characters long; the limit is {MAX_QUERY_CHARS}"
            )
