"""The FAISS vector index: chunk ids to unit vectors, inner-product search.

The vector id is the chunk's SQLite primary key. The file is a derived artifact,
replaced atomically, and rebuilt from the database when it is missing or stale.
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


class VectorIndex:
    """Exact inner-product search over id-mapped vectors (cosine on unit vectors)."""

    def __init__(self, dim: int, index: Any = None) -> None:
        import faiss

        if dim <= 0:
            raise InvalidValue(f"vector dimension must be greater than 0, got {dim}")
        self.dim = dim
        self._index: Any = index if index is not None else faiss.IndexIDMap2(faiss.IndexFlatIP(dim))

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

        return np.sort(faiss.vector_to_array(self._index.id_map)).astype(np.int64)

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
        if among is None:
            scores, ids = self._index.search(queries, k)
        else:
            selector = faiss.IDSelectorBatch(np.ascontiguousarray(among, dtype=np.int64))
            params = faiss.SearchParameters()
            params.sel = selector
            scores, ids = self._index.search(queries, k, params=params)
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
        if not hasattr(index, "id_map"):
            raise IndexCorrupt(f"{path} is not an id-mapped FAISS index")
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
