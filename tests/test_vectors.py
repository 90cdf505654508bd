from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rag.errors import IndexCorrupt
from rag.index import Index
from rag.settings import Settings
from rag.storage.vectors import FLAT, IVF, VectorIndex, ivf_lists
from tests.fakes import HashEmbedder


def unit(rng: np.random.Generator, n: int, d: int = 32) -> np.ndarray:
    centers = rng.standard_normal((20, d))
    x = centers[rng.integers(0, 20, n)] + 0.3 * rng.standard_normal((n, d))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def build(kind: str, x: np.ndarray, ids: np.ndarray) -> VectorIndex:
    v = VectorIndex(x.shape[1]) if kind == FLAT else VectorIndex.ivf(x.shape[1], x, 16)
    v.nprobe = 16  # all lists: exact, so results can be compared
    v.add(ids, x)
    return v


@pytest.mark.parametrize("kind", [FLAT, IVF])
def test_add_delete_search_save_load(tmp_path: Path, kind: str) -> None:
    rng = np.random.default_rng(0)
    x = unit(rng, 2000)
    ids = np.arange(10, 2010, dtype=np.int64) * 3  # sparse, large ids
    v = build(kind, x, ids)
    assert v.kind == kind and len(v) == 2000
    assert v.ids().tolist() == sorted(ids.tolist())
    scores, found = v.search(x[:5], 1)
    assert found[:, 0].tolist() == ids[:5].tolist()
    assert np.allclose(scores[:, 0], 1.0, atol=1e-4)
    # delete: gone from ids and results
    gone = ids[:100]
    assert v.remove(gone) == 100
    assert len(v) == 1900 and not set(gone.tolist()) & set(v.ids().tolist())
    _, found = v.search(x[:100], 5)
    assert not set(found.ravel().tolist()) & set(gone.tolist())
    # filter inside the search
    among = ids[500:520]
    _, found = v.search(x[:3], 5, among)
    assert set(found.ravel().tolist()) <= set(among.tolist())
    # save and load keep everything
    v.save(tmp_path / "v.faiss")
    w = VectorIndex.load(tmp_path / "v.faiss", 32)
    w.nprobe = 16
    assert w.kind == kind and w.ids().tolist() == v.ids().tolist()
    assert np.array_equal(w.search(x[200:210], 3)[1], v.search(x[200:210], 3)[1])
    with pytest.raises(IndexCorrupt, match="64"):
        VectorIndex.load(tmp_path / "v.faiss", 64)


def test_ivf_recall_against_exact() -> None:
    rng = np.random.default_rng(1)
    x = unit(rng, 20000, 64)
    ids = np.arange(len(x), dtype=np.int64)
    exact = build(FLAT, x, ids)
    approx = VectorIndex.ivf(64, x, ivf_lists(len(x)))
    assert approx.nprobe < approx.lists // 5
    approx.add(ids, x)
    q = unit(rng, 200, 64)
    truth = exact.search(q, 10)[1]
    got = approx.search(q, 10)[1]
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(truth, got)])
    assert recall >= 0.95


def test_index_switches_kind_with_its_size(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    for i in range(1200):
        (docs / f"d{i}.txt").write_text(f"Entry {i} about topic {i % 37} and item {i % 11}.")
    e = HashEmbedder()
    settings = Settings(embedder=e.name, ivf_threshold=1000)
    index = Index.create(tmp_path / "idx", settings, e)
    index.add(docs)
    assert index.status().vector_index == IVF
    assert index.check() == []
    hit = index.search("Entry 77 about topic 3 and item 0.", k=1, mode="dense")[0]
    assert hit.doc_id == "d77.txt"
    # deletions keep working; far below the threshold it goes back to exact search
    for i in range(1200):
        if i % 4:
            (docs / f"d{i}.txt").unlink()
    report = index.add(docs)
    assert report.removed == 900
    assert index.status().vector_index == FLAT and index.check() == []
    index.close()
    reopened = Index.open(tmp_path / "idx", e)
    hit = reopened.search("Entry 80 about topic 6 and item 3.", k=1, mode="dense")[0]
    assert hit.doc_id == "d80.txt"
