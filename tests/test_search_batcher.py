"""Searches handed to the server's batcher from many threads: batched, and each caller
gets what ``Index.search`` gives it, its own error included."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from rag.errors import InvalidValue
from rag.index import Index
from rag.server.searches import SearchBatcher
from rag.settings import Settings
from rag.types import Hit, Where
from tests.fakes import HashEmbedder

QUERIES = [
    "salmon in the river", "herons wade", "trout and salmon", "prices of fish",
    "shallow water birds", "river note", "salmon prices rose", "a remark on trout",
]  # fmt: skip


class SlowEmbedder(HashEmbedder):
    """Takes a while per call, as a real model does, and records its batch sizes."""

    def __init__(self) -> None:
        super().__init__()
        self.batches: list[int] = []

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if any("boom" in t for t in texts):
            raise RuntimeError("the embedder failed")
        self.batches.append(len(texts))
        time.sleep(0.05)
        return super().embed(texts)


@pytest.fixture
def index(tmp_path: Path) -> Index:
    docs = tmp_path / "docs"
    docs.mkdir()
    for i in range(20):
        (docs / f"n{i}.md").write_text(f"# Note {i}\n\nSalmon and trout in river {i}.")
    (docs / "birds.txt").write_text("Herons wade in shallow water.")
    (docs / "prices.md").write_text("Salmon prices rose this year; fish prices fell.")
    embedder = SlowEmbedder()
    idx = Index.create(tmp_path / "idx", Settings(embedder=embedder.name), embedder)
    idx.add(docs)
    return idx


def side_by_side(calls: list[tuple[str, int, str, Where | None]], batcher: SearchBatcher) -> list:
    """Every call at once, each from its own thread; its hits or its error."""
    out: list[list[Hit] | BaseException | None] = [None] * len(calls)
    start = threading.Barrier(len(calls))

    def one(n: int) -> None:
        start.wait()
        try:
            out[n] = batcher.search(*calls[n])
        except BaseException as e:
            out[n] = e

    threads = [threading.Thread(target=one, args=(n,)) for n in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out


def ranked(hits: list[Hit]) -> list[tuple[int, float]]:
    return [(h.chunk_id, round(h.score, 5)) for h in hits]


def test_concurrent_searches_are_batched_and_match_single_searches(index: Index) -> None:
    calls = [
        (q, 3 + n % 2, ("hybrid", "dense", "lexical")[n % 3], None) for n, q in enumerate(QUERIES)
    ]
    calls += [(q, 3, "hybrid", Where(path="n1*")) for q in QUERIES[:4]]
    batcher = SearchBatcher(index, workers=1)
    embedder = index.embedder
    assert isinstance(embedder, SlowEmbedder)
    try:
        embedder.batches.clear()
        got = side_by_side(calls, batcher)
    finally:
        batcher.close()
    batches = list(embedder.batches)
    for call, hits in zip(calls, got):
        assert isinstance(hits, list), hits
        assert ranked(hits) == ranked(index.search(*call)), call
    dense_calls = sum(1 for c in calls if c[2] != "lexical")
    # one worker, 12 threads at once: the waiting searches went in fewer, larger calls
    assert sum(batches) == dense_calls
    assert len(batches) < dense_calls and max(batches) > 1


def test_a_bad_search_fails_alone(index: Index) -> None:
    calls = [(q, 3, "hybrid", None) for q in QUERIES[:5]]
    calls += [("   ", 3, "hybrid", None), (QUERIES[0], 0, "hybrid", None)]
    calls += [("boom goes the model", 3, "dense", None)]
    batcher = SearchBatcher(index)
    try:
        got = side_by_side(calls, batcher)
    finally:
        batcher.close()
    assert all(isinstance(h, list) and h for h in got[:5])
    assert isinstance(got[5], InvalidValue) and "non-empty" in str(got[5])
    assert isinstance(got[6], InvalidValue) and "k must be" in str(got[6])
    assert isinstance(got[7], RuntimeError) and "embedder failed" in str(got[7])


def test_after_close_a_search_still_answers(index: Index) -> None:
    batcher = SearchBatcher(index, workers=2)
    batcher.close()
    assert ranked(batcher.search("herons wade", 2, "hybrid")) == ranked(
        index.search("herons wade", 2, "hybrid")
    )
