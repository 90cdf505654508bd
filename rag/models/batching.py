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
from typing import Any

MAX_PADDING = 2.0  # a batch's padded size over its texts' own, at most
SMALL_BATCH_CHARS = 4096  # a batch padded to this size or less is cheaper than another call
# For OpenVINO, token lengths are padded to a multiple of PAD_TO, and batches filled up
# to a multiple of PAD_ROWS texts: see shaped_features.
PAD_TO = 32
PAD_ROWS = 8


def by_length(texts: Sequence[str], *, max_items: int) -> list[list[int]]:
    """Indices of ``texts`` in batches, shortest first, at most ``max_items`` a batch."""
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    batches: list[list[int]] = []
    size = 0  # characters in the last batch
    for i in order:
        n = len(texts[i])
        last = batches[-1] if batches else None
        padded = n * (len(last) + 1) if last else 0
        if (
            last
            and len(last) < max_items
            and (padded <= SMALL_BATCH_CHARS or padded <= MAX_PADDING * (size + n))
        ):
            last.append(i)
            size += n
        else:
            batches.append([i])
            size = n
    return batches


def shaped_features(model: Any, texts: Sequence[str]) -> dict[str, Any]:
    """A sentence-transformers model's input for ``texts``, in few distinct shapes.

    OpenVINO keeps compiled kernels per input shape. With every token length and batch
    size its own, an ingest's memory grew with the corpus (5,528 SciFact chunks: 640 ->
    1,830 MiB; so shaped, 1,450 MiB, no slower). Lengths are padded (masked out) to a
    multiple of ``PAD_TO`` tokens, within the model's limit; batches are filled up to a
    multiple of ``PAD_ROWS`` texts with copies of the first. Rows past
    ``len(texts)`` are filler, to be dropped from the output.
    """
    import torch

    prepare = getattr(model, "preprocess", None) or model.tokenize
    features = dict(prepare(list(texts)))
    rows, n = features["input_ids"].shape
    length = min(-(-n // PAD_TO) * PAD_TO, max(n, int(model.max_seq_length)))
    filled = -(-rows // PAD_ROWS) * PAD_ROWS
    for key, value in features.items():
        if isinstance(value, torch.Tensor) and value.ndim == 2:
            if length > n:
                value = torch.nn.functional.pad(value, (0, length - n))
            if filled > rows:
                value = torch.cat([value, value[:1].expand(filled - rows, -1)])
            features[key] = value
    return features
