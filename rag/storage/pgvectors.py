"""Dense search inside PostgreSQL with pgvector: HNSW over unit vectors.

The same face as the FAISS vectors (``rag.storage.sync``), so search code does not
care where vectors live; but nothing here is derived or saved: the ``embedding``
column is the vectors, and the HNSW index is PostgreSQL's, updated in the writer's
transaction. A filtered search is exact over the chunks that pass the filter, so its
results are the best ``k`` of them, as on SQLite.
"""

from __future__ import annotations

import os
import re

import numpy as np
from sqlalchemy import Engine, text

from rag.errors import InvalidValue
from rag.storage.postgres import HNSW_INDEX, PostgresBackend
from rag.storage.store import Store

HNSW = "hnsw"
# Candidates the HNSW graph keeps while searching (at least ``k``). At 1M synthetic
# chunks (scripts/bench_scale.py --postgres; m 16, ef_construction 64), recall@10
# against exact search: 0.78 at 100, 0.88 at 200, 0.96 at 400, 0.97 at 800; the
# search p50 6 to 20 ms throughout.
EF_SEARCH = 400
MAX_EF_SEARCH = 1000  # pgvector's limit
# Memory for building the HNSW graph (PostgreSQL's maintenance_work_mem, for that build
# only): 1M 384-dimensional vectors need about 2.5 GB to be built in memory.
BUILD_MEMORY = "1GB"
BUILD_MEMORY_ENV = "RAG_PG_BUILD_MEMORY"


class PgVectorSearch:
    """Inner-product search over the ``embedding`` column of one index's chunks."""

    kind = HNSW
    lists = 0

    def __init__(self, engine: Engine, dim: int, count: int) -> None:
        self.engine = engine
        self.dim = dim
        self._count = count

    def __len__(self) -> int:
        return self._count

    def search(
        self, queries: np.ndarray, k: int, among: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(scores, ids) of shape (n_queries, k); missing results have id -1."""
        if k <= 0:
            raise InvalidValue(f"k must be greater than 0, got {k}")
        n = len(queries)
        scores = np.full((n, k), -np.inf, dtype=np.float32)
        ids = np.full((n, k), -1, dtype=np.int64)
        if among is not None and len(among) == 0:
            return scores, ids
        restrict = "" if among is None else "WHERE id = ANY(CAST(:among AS bigint[]))"
        sql = text(
            "SELECT id, -(embedding <#> CAST(:q AS vector)) FROM chunks "
            f"{restrict} ORDER BY embedding <#> CAST(:q AS vector) LIMIT :k"
        )
        params: dict[str, object] = {"k": k}
        if among is not None:
            params["among"] = [int(i) for i in among]
        with self.engine.connect() as conn, conn.begin():
            ef = min(max(EF_SEARCH, k), MAX_EF_SEARCH)
            conn.exec_driver_sql(f"SET LOCAL hnsw.ef_search = {ef}")
            if among is not None:
                # exact over the allowed chunks: an HNSW walk would stop at ef_search
                # candidates, most of them filtered out
                conn.exec_driver_sql("SET LOCAL enable_indexscan = off")
            for row, q in enumerate(np.asarray(queries, dtype=np.float32)):
                params["q"] = "[" + ",".join(f"{x:.8g}" for x in q) + "]"
                found = conn.execute(sql, params).fetchall()
                for col, (chunk_id, score) in enumerate(found):
                    ids[row, col] = chunk_id
                    scores[row, col] = score
        return scores, ids


class PgVectors:
    """The dense side of a PostgreSQL index with pgvector, in the FAISS vectors' shape."""

    def __init__(self, store: Store, backend: PostgresBackend) -> None:
        self.store = store
        self.backend = backend
        self._dim: int | None = None  # fixed once the first vectors are written

    @property
    def current(self) -> PgVectorSearch | None:
        """The vectors as committed now (None while the index holds none)."""
        if self._dim is None:
            self._dim = self.store.embedding_dim()
            if self._dim is None:
                return None
        return PgVectorSearch(
            self.store.engine, self._dim, self.backend.chunk_count(self.store.engine)
        )

    def refresh(self) -> None:
        """Nothing to catch up with: every committed write is already searchable."""

    def sync(self) -> bool:
        return False

    def committed(self, removed: list[int], added: list[int], vectors: np.ndarray) -> None:
        """Nothing to mirror: the writer's transaction updated the HNSW index."""

    def reshape(self) -> bool:
        return False

    def save(self) -> None:
        """Nothing to save: PostgreSQL holds the vectors."""

    def rebuild(self) -> None:
        """Build the HNSW index again from the stored vectors."""
        if self.store.embedding_dim() is None:
            return
        memory = os.environ.get(BUILD_MEMORY_ENV, BUILD_MEMORY)
        if not re.fullmatch(r"\d+\s*(kB|MB|GB)", memory):
            raise InvalidValue(f"${BUILD_MEMORY_ENV} must be a size such as 2GB, got {memory!r}")
        with self.store.engine.begin() as conn:
            # the graph is built in memory when it fits, several times faster than on disk
            conn.exec_driver_sql(f"SET LOCAL maintenance_work_mem = '{memory}'")
            conn.exec_driver_sql(f"DROP INDEX IF EXISTS {HNSW_INDEX}")
            conn.exec_driver_sql(
                f"CREATE INDEX {HNSW_INDEX} ON chunks USING hnsw (embedding vector_ip_ops)"
            )

    def file_kind(self) -> str:
        return HNSW

    def problems(self) -> list[str]:
        """What is wrong with the HNSW index (empty when it is there and valid)."""
        if self.store.embedding_dim() is None:
            return []
        sql = (
            "SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relname = :name AND n.nspname = :schema"
        )
        with self.store.engine.connect() as conn:
            valid = conn.execute(
                text(sql), {"name": HNSW_INDEX, "schema": self.backend.schema}
            ).scalar()
        if valid is None:
            return [f"the HNSW index {HNSW_INDEX} is missing; run rag repair"]
        if not valid:
            return [f"the HNSW index {HNSW_INDEX} is not valid; run rag repair"]
        return []

    def bytes_used(self) -> int:
        sql = "SELECT coalesce(pg_relation_size(to_regclass(:name)), 0)"
        with self.store.engine.connect() as conn:
            return int(conn.execute(text(sql), {"name": HNSW_INDEX}).scalar() or 0)
