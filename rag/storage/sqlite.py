"""The SQLite backend of the store: one file, FTS5 for lexical search, one writer.

Filters and BM25 are in ``rag.storage.lexical``; this module owns connecting (WAL,
foreign keys, a busy timeout) and what only SQLite can say about itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import Engine, MetaData, create_engine, event, insert, inspect
from sqlalchemy.orm import Session

from rag.storage.lexical import bm25_search, document_filter
from rag.storage.schema import FTS_DDL, Meta
from rag.types import Where

SQLITE = "sqlite"


def _on_connect(dbapi_connection: Any, _record: Any) -> None:
    cur = dbapi_connection.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=60000")
    cur.close()


class SqliteBackend:
    """What differs on SQLite: it is one file, written by one process at a time."""

    kind = SQLITE
    pgvector = False

    def __init__(self, path: Path) -> None:
        self.path = path

    def connect(self) -> Engine:
        engine = create_engine(f"sqlite:///{self.path}", connect_args={"timeout": 60})
        event.listen(engine, "connect", _on_connect)
        return engine

    def has_index(self, engine: Engine) -> bool:
        return inspect(engine).has_table("meta")

    def create(self, engine: Engine, metadata: MetaData, meta: dict[str, str]) -> None:
        """Make the tables, the lexical index and the ``meta`` rows."""
        metadata.create_all(engine)
        with engine.begin() as conn:
            for stmt in FTS_DDL:
                conn.exec_driver_sql(stmt)
            conn.execute(insert(Meta), [{"key": k, "value": v} for k, v in meta.items()])

    def lexical_search(
        self, engine: Engine, query: str, limit: int, where: Where | None
    ) -> list[tuple[int, float]]:
        return bm25_search(engine, query, limit, where)

    def document_filter(self, where: Where) -> tuple[str, dict[str, Any]]:
        return document_filter(where)

    def lexical_ids(self, engine: Engine) -> np.ndarray:
        with engine.connect() as conn:
            rows = conn.exec_driver_sql("SELECT rowid FROM chunks_fts ORDER BY rowid").fetchall()
        return np.asarray([r[0] for r in rows], dtype=np.int64)

    def integrity_problems(self, engine: Engine) -> list[str]:
        with engine.connect() as conn:
            rows = [r[0] for r in conn.exec_driver_sql("PRAGMA quick_check").fetchall()]
        return [] if rows == ["ok"] else [f"database: {r}" for r in rows]

    def lock(self, session: Session, keys: Sequence[str]) -> None:
        """Nothing to do: a writer holds the index's file lock for the whole run."""

    def first_vectors(self, session: Session, dim: int) -> None:
        """Nothing to do: the vectors live in the FAISS file."""

    def bytes_used(self, engine: Engine) -> int:
        files = self.path.parent.glob(self.path.name + "*")
        return sum(p.stat().st_size for p in files if p.is_file())
