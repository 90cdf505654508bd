"""Fusing the dense and the lexical rankings into one: named strategies.

Each strategy takes the retrievers' rankings, ``[(key, score), ...]`` best first
(dense first, lexical second), and returns one ranking.

- ``relative`` (the default): ``alpha`` × the dense cosine similarity plus the rest ×
  the BM25 score divided by the best BM25 score of the list. Both parts keep their
  meaning across queries: a passage that matches every way scores near 1, a
  keyword-only match still counts, and the top hit shows how good it really is.
- ``minmax``: as ``relative``, but each list is first stretched to [0, 1] by its own
  minimum and maximum, so the last candidate of each list adds nothing and the top
  hit always scores 1.
- ``rrf``: reciprocal rank fusion; only the ranks count.

>>> rrf([[(1, 0.9), (2, 0.8)], [(2, 7.1), (3, 5.0)]])[0][0]
2
>>> [k for k, _ in relative([[(1, 0.9), (2, 0.8)], [(2, 7.1), (3, 5.0)]])]
[2, 1, 3]
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from typing import TypeVar

from rag.errors import InvalidValue

K = TypeVar("K", bound=Hashable)
Ranking = Sequence[tuple[K, float]]

RRF_K = 60
# Weight of the dense side. SciFact train, nDCG@10 (scripts/bench_retrieval.py): relative
# 0.7467 at 0.7, 0.7411 at 0.5, 0.7280 at 0.3; min-max 0.7435 at 0.5; rrf 0.7266. Cosines
# spread less than BM25 over its best, so the dense side wants the larger weight.
ALPHA = 0.7


def rrf(rankings: Sequence[Ranking[K]], k: int = RRF_K) -> list[tuple[K, float]]:
    """Reciprocal rank fusion: each list adds 1 / (k + rank) to the items it ranks."""
    fused: dict[K, float] = {}
    for ranking in rankings:
        for rank, (key, _) in enumerate(ranking, 1):
            fused[key] = fused.get(key, 0.0) + 1.0 / (k + rank)
    return _best_first(fused)


def relative(rankings: Sequence[Ranking[K]], alpha: float = ALPHA) -> list[tuple[K, float]]:
    """``alpha`` × dense cosine (negative counts as 0) + the rest × BM25 / best BM25."""
    return _weighted(rankings, alpha, _relative)


def minmax(rankings: Sequence[Ranking[K]], alpha: float = ALPHA) -> list[tuple[K, float]]:
    """``alpha`` × dense + the rest × lexical, each min-max scaled over its own list."""
    return _weighted(rankings, alpha, _stretched)


def _relative(scores: list[float], dense: bool) -> list[float]:
    if dense:
        return [max(s, 0.0) for s in scores]
    top = max(scores)
    return [s / top if top > 0 else 0.0 for s in scores]


def _stretched(scores: list[float], dense: bool) -> list[float]:
    lo, hi = min(scores), max(scores)
    span = hi - lo or 1.0
    return [(s - lo) / span for s in scores]


def _weighted(
    rankings: Sequence[Ranking[K]],
    alpha: float,
    scale: Callable[[list[float], bool], list[float]],
) -> list[tuple[K, float]]:
    if len(rankings) == 1:
        return list(rankings[0])
    if len(rankings) != 2:
        raise InvalidValue(f"fusion takes a dense and a lexical ranking, got {len(rankings)}")
    fused: dict[K, float] = {}
    sides = ((alpha, rankings[0], True), (1 - alpha, rankings[1], False))
    for weight, ranking, dense in sides:
        if not ranking:
            continue
        scaled = scale([s for _, s in ranking], dense)
        for (key, _), s in zip(ranking, scaled):
            fused[key] = fused.get(key, 0.0) + weight * s
    return _best_first(fused)


def _best_first(fused: dict[K, float]) -> list[tuple[K, float]]:
    return sorted(fused.items(), key=lambda kv: -kv[1])


Fusion = Callable[[Sequence[Ranking[K]]], list[tuple[K, float]]]
FUSION_MODES: dict[str, Fusion] = {"relative": relative, "minmax": minmax, "rrf": rrf}
DEFAULT_FUSION = "relative"


def fusion(name: str) -> Fusion:
    """The strategy called ``name``; one of ``FUSION_MODES``."""
    try:
        return FUSION_MODES[name]
    except KeyError:
        raise InvalidValue(
            f"fusion must be one of {', '.join(FUSION_MODES)}, got {name!r}"
        ) from None


def best_per_group(ranking: Ranking[int], group: dict[int, K]) -> list[tuple[K, float]]:
    """A ranking of groups (documents) from a ranking of members (chunks): each group
    takes the score of its best member. Members without a group are skipped."""
    out: dict[K, float] = {}
    for member, score in ranking:
        g = group.get(member)
        if g is not None and g not in out:
            out[g] = score
    return list(out.items())
