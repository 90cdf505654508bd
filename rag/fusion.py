"""Fusing ranked lists from the dense and the lexical retrievers.

>>> rrf([[(1, 0.9), (2, 0.8)], [(2, 7.1), (3, 5.0)]])[0][0]
2
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import TypeVar

K = TypeVar("K", bound=Hashable)

RRF_K = 60


def rrf(rankings: Sequence[Sequence[tuple[K, float]]], k: int = RRF_K) -> list[tuple[K, float]]:
    """Reciprocal rank fusion: each list adds 1 / (k + rank) to the items it ranks."""
    fused: dict[K, float] = {}
    for ranking in rankings:
        for rank, (key, _) in enumerate(ranking, 1):
            fused[key] = fused.get(key, 0.0) + 1.0 / (k + rank)
    return sorted(fused.items(), key=lambda kv: -kv[1])


def convex(
    dense: Sequence[tuple[K, float]], lexical: Sequence[tuple[K, float]], alpha: float = 0.5
) -> list[tuple[K, float]]:
    """``alpha`` times the dense score plus the rest times the lexical score, each first
    scaled to [0, 1] by min-max over its own list; an item missing from a list gets 0."""
    fused: dict[K, float] = {}
    for weight, ranking in ((alpha, dense), (1.0 - alpha, lexical)):
        if not ranking:
            continue
        scores = [s for _, s in ranking]
        lo, hi = min(scores), max(scores)
        span = hi - lo or 1.0
        for key, s in ranking:
            fused[key] = fused.get(key, 0.0) + weight * (s - lo) / span
    return sorted(fused.items(), key=lambda kv: -kv[1])


def best_per_group(
    ranking: Sequence[tuple[int, float]], group: dict[int, K]
) -> list[tuple[K, float]]:
    """A ranking of groups (documents) from a ranking of members (chunks): each group
    takes the score of its best member. Members without a group are skipped."""
    out: dict[K, float] = {}
    for member, score in ranking:
        g = group.get(member)
        if g is not None and g not in out:
            out[g] = score
    return list(out.items())
