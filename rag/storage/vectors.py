"""The FAISS vector index: chunk ids to unit vectors, inner-product search.

The vector id is the chunk's SQLite primary key. The file is a derived artifact,
replaced atomically, and rebuilt from the database when it is missing or stale.

Two kinds: ``flat`` searches exactly (best for small indexes); ``ivf`` clusters the
vectors and searches only the ``nprobe`` nearest clusters (for large ones). Both add
and remove vectors by id.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from rag.errors import IndexCorrupt, InvalidValue

log = logging.getLogger(__name__)


FLAT = "flat"
IVF = "ivf"
KINDS = (FLAT, IVF)
# Share of the clusters probed per query, so that recall@10 against exact search stays
# >= 0.95 (tests/test_vectors.py, scripts/bench_scale.py).
PROBE_SHARE = 10
MIN_NPROBE = 16


def ivf_lists(n: int) -> int:
    """Number of IVF clusters for ``n`` vectors: about 4 sqrt(n)."""
    return int(min(65536, max(64, 4 * np.sqrt(max(n, 1)))))


class VectorIndex:
    """Inner-product search over id-keyed unit vectors (so scores are cosines)."""

    def __init__(self, dim: int, index: Any = None, nprobe: int | None = None) -> None:
        import faiss

        if dim <= 0:
            raise InvalidValue(f"vector dimension must be greater than 0, got {dim}")
        self.dim = dim
        self._index: Any = index if index is not None else faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
        self.nprobe = nprobe or max(MIN_NPROBE, self.lists // PROBE_SHARE)

    @classmethod
    def ivf(cls, dim: int, training: np.ndarray, lists: int) -> VectorIndex:
        """An empty IVF index with ``lists`` clusters trained on ``training`` vectors."""
        import faiss

        lists = max(1, min(lists, len(training) // 8 or 1))
        index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, lists, faiss.METRIC_INNER_PRODUCT)
        index.train(np.ascontiguousarray(training, dtype=np.float32))
        return cls(dim, index)

    @property
    def kind(self) -> str:
        return IVF if hasattr(self._index, "invlists") else FLAT

    @property
    def lists(self) -> int:
        return int(self._index.nlist) if self.kind == IVF else 0

    def __len__(self) -> int:
        return int(self._index.ntotal)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        if len(ids) == 0:
            return
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[1] != self.dim:
            raise InvalidValue(f"vectors must have shape (n, {self.dim}), got {vectors.shape}")
        self._index.add_with_ids(vectors, np.asarray(ids, dtype=np.int64))

    def remove(self, ids: np.ndarray | list[int]) -> int:
        import faiss

        ids = np.asarray(ids, dtype=np.int64)
        if len(ids) == 0:
            return 0
        return int(self._index.remove_ids(faiss.IDSelectorBatch(ids)))

    def ids(self) -> np.ndarray:
        import faiss

        if self.kind == FLAT:
            return np.sort(faiss.vector_to_array(self._index.id_map)).astype(np.int64)
        inv = self._index.invlists
        parts = [
            faiss.rev_swig_ptr(inv.get_ids(i), inv.list_size(i)).copy()
            for i in range(self._index.nlist)
            if inv.list_size(i)
        ]
        return np.sort(np.concatenate(parts)).astype(np.int64) if parts else np.zeros(0, np.int64)

    def search(
        self, queries: np.ndarray, k: int, among: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(scores, ids) of shape (n_queries, k); missing results have id -1.

        With ``among``, only those ids are searched (the filter is applied inside the
        search, so the results are the best ``k`` of them).
        """
        import faiss

        if k <= 0:
            raise InvalidValue(f"k must be greater than 0, got {k}")
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        n = len(queries)
        if len(self) == 0 or (among is not None and len(among) == 0):
            return np.full((n, k), -np.inf, dtype=np.float32), np.full((n, k), -1, dtype=np.int64)
        params: Any = faiss.SearchParametersIVF() if self.kind == IVF else faiss.SearchParameters()
        if self.kind == IVF:
            params.nprobe = self.nprobe
        if among is not None:
            selector = faiss.IDSelectorBatch(np.ascontiguousarray(among, dtype=np.int64))
            params.sel = selector
        if n >= faiss.cvar.distance_compute_blas_threshold:
            return self._index.search(queries, k, params=params)
        # A few queries run on one thread. FAISS shares the work of a small batch
        # among threads that then spin in its own OpenMP runtime, next to torch's: on
        # 2 cores with torch loaded, one query over 10k vectors took 4.4 ms on two
        # threads against 0.3 ms on one (54 against 68 ms over 1M vectors), and the
        # search and embedding after it slowed down too. The setting is this thread's.
        threads = faiss.omp_get_max_threads()
        faiss.omp_set_num_threads(1)
        try:
            scores, ids = self._index.search(queries, k, params=params)
        finally:
            faiss.omp_set_num_threads(threads)
        return scores, ids

    def save(self, path: Path) -> None:
        """Write atomically: a temporary file in the same folder, fsync, rename."""
        import faiss

        fd, tmp = tempfile.mkstemp(prefix=".vectors-", suffix=".tmp", dir=path.parent)
        os.close(fd)
        try:
            faiss.write_index(self._index, tmp)
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
            os.replace(tmp, path)
            _fsync_dir(path.parent)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    @classmethod
    def load(cls, path: Path, dim: int) -> VectorIndex:
        import faiss

        try:
            index = faiss.read_index(str(path))
        except RuntimeError as e:
            raise IndexCorrupt(f"{path} is not a readable FAISS index") from e
        if index.d != dim:
            raise IndexCorrupt(f"{path} holds {index.d}-dimensional vectors, expected {dim}")
        if not (hasattr(index, "id_map") or hasattr(index, "invlists")):
            raise IndexCorrupt(f"{path} is not an id-keyed FAISS index")
        return cls(dim, index)


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - not every platform opens folders
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
