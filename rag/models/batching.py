"""Batches of texts of similar length, so that one long text does not pad a whole batch.

A transformer pads every text of a batch to the longest: one 250-token code block among
63 ten-token sentences makes the batch cost as much as 64 code blocks. Sorting by
length, and starting a new batch when padding would more than double a batch's size,
keeps the cost near the texts' own. Small batches are merged anyway: each call costs
a few tens of milliseconds of its own.

>>> by_length(["a" * 9000, "b", "cc", "d" * 3], max_items=3)
[[1, 2, 3], [0]]
"""

from __future__ import annotations

from collections.abc import Sequence

MAX_PADDING = 2.0  # a batch's padded size over its texts' own, at most
SMALL_BATCH_CHARS = 4096  # a batch padded to this size or less is cheaper than another call


def by_length(texts: Sequence[str], *, max_items: int) -> list[list[int]]:
    """Indices of ``texts`` in batches, shortest first, at most ``max_items`` a batch."""
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    batches: list[list[int]] = []
    size = 0  # characters in the last batch
    for i in order:
        n = len(texts[i])
        last = batches[-1] if batches else None
        padded = n * (len(last) + 1) if last else 0
        if last and len(last) < max_items and (
            padded <= SMALL_BATCH_CHARS or padded <= MAX_PADDING * (size + n)
        ):
            last.append(i)
            size += n
        else:
            batches.append([i])
            size = n
    return batches
