"""The SQLite database of an index: sources, documents, chunks with their embeddings.

SQLite is the source of truth. Every chunk row keeps its embedding, so the FAISS file
can always be rebuilt from here without re-embedding. Chunk ids come from an
AUTOINCREMENT key, so an id is never reused, and they are the FAISS vector ids.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import (
    Engine,
    create_engine,
    event,
    func,
    inspect,
    or_,
    select,
)
from sqlalchemy.exc import DatabaseError, OperationalError
from sqlalchemy.orm import Session

from rag.errors import IndexCorrupt
from rag.settings import FORMAT_VERSION, Settings
from rag.storage import writer
from rag.storage.lexical import bm25_search, document_filter
from rag.storage.lock import WriteLock
from rag.storage.migrations import migrate
from rag.storage.records import (
    DocumentWrite,
    SourceState,
    StoredChunk,
    StoredDocument,
    batches,
)
from rag.storage.schema import FTS_DDL, Base, ChunkRow, DocumentRow, Meta, SourceRow
from rag.types import Where

log = logging.getLogger(__name__)

# How long opening an index of an older format waits for a writer before migrating it.
MIGRATION_WAIT = 60.0
# The columns of a document row that a StoredDocument holds, in its field order.
_STORED_DOCUMENT = (
    DocumentRow.id,
    DocumentRow.root,
    DocumentRow.doc_id,
    DocumentRow.source,
    DocumentRow.type,
    DocumentRow.content_hash,
)


def _on_connect(dbapi_connection: Any, _record: Any) -> None:
    cur = dbapi_connection.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=60000")
    cur.close()


class Store:
    """Typed access to one index database file."""

    def __init__(self, engine: Engine, path: Path) -> None:
        self.engine = engine
        self.path = path

    @classmethod
    def connect(cls, path: Path) -> Store:
        engine = create_engine(f"sqlite:///{path}", connect_args={"timeout": 60})
        event.listen(engine, "connect", _on_connect)
        return cls(engine, path)

    @classmethod
    def create(cls, path: Path, settings: Settings) -> Store:
        store = cls.connect(path)
        Base.metadata.create_all(store.engine)
        store._ensure_lexical()
        with Session(store.engine) as s, s.begin():
            s.add_all(
                [
                    Meta(key="format_version", value=str(FORMAT_VERSION)),
                    Meta(key="settings", value=settings.to_json()),
                    Meta(key="generation", value="0"),
                ]
            )
        return store

    @classmethod
    def open(cls, path: Path, lock: WriteLock | None = None) -> Store:
        """Open an index database, upgrading an older format first.

        The upgrade runs while holding ``lock`` (the index's writer lock), so that two
        processes opening an old index never both migrate it.
        """
        store = cls.connect(path)
        try:
            version = store._format_version()
            if version < FORMAT_VERSION:
                with lock.hold(MIGRATION_WAIT) if lock is not None else _nothing():
                    version = store._format_version()  # another process may have done it
                    if version < FORMAT_VERSION:
                        store._migrate(version)
        except BaseException:
            store.close()
            raise
        return store

    def _format_version(self) -> int:
        try:
            has_meta = inspect(self.engine).has_table("meta")
            version = self.meta("format_version") if has_meta else None
        except (DatabaseError, OperationalError) as e:
            raise IndexCorrupt(
                f"{self.path} is not a readable index database ({e.orig}); it cannot be "
                "repaired in place: index your documents again into a new folder"
            ) from e
        if version is None or self.meta("settings") is None:
            raise IndexCorrupt(f"{self.path} has no index settings; it was not made by rag")
        if int(version) > FORMAT_VERSION:
            raise IndexCorrupt(
                f"{self.path} has index format {version}, newer than this rag reads "
                f"({FORMAT_VERSION}); upgrade rag"
            )
        return int(version)

    def close(self) -> None:
        self.engine.dispose()

    def _ensure_lexical(self) -> None:
        with self.engine.begin() as conn:
            for stmt in FTS_DDL:
                conn.exec_driver_sql(stmt)

    def _migrate(self, version: int) -> None:
        """Bring an index of an older format up to this one, in one transaction."""
        log.info("upgrading %s from index format %d to %d", self.path, version, FORMAT_VERSION)
        with self.engine.begin() as conn:
            migrate(conn, version, FORMAT_VERSION)

    # -- meta -------------------------------------------------------------

    def meta(self, key: str) -> str | None:
        with Session(self.engine) as s:
            row = s.get(Meta, key)
            return row.value if row else None

    def settings(self) -> Settings:
        raw = self.meta("settings")
        assert raw is not None
        return Settings.from_json(raw)

    def generation(self) -> int:
        return int(self.meta("generation") or 0)

    # -- what is indexed --------------------------------------------------

    def sources(self, root: str, paths: Iterable[str] = ()) -> dict[str, SourceState]:
        """The files recorded as read: those indexed from ``root``, those inside it
        (whatever folder they were indexed from) and those at ``paths``."""
        found: dict[str, SourceState] = {}
        with Session(self.engine) as s:
            for cond in _reached(SourceRow.root, SourceRow.path, root, paths):
                for r in s.scalars(select(SourceRow).where(cond)):
                    found[r.path] = SourceState(r.path, r.root, r.size, r.mtime_ns)
        return found

    def recorded(self, paths: Iterable[str]) -> set[str]:
        """Which of ``paths`` are recorded as read files."""
        found: set[str] = set()
        with Session(self.engine) as s:
            for part in batches(sorted(set(paths))):
                found.update(s.scalars(select(SourceRow.path).where(SourceRow.path.in_(part))))
        return found

    def documents(self, root: str, sources: Iterable[str] = ()) -> list[StoredDocument]:
        """The documents indexed from ``root``, from files inside it, or from ``sources``."""
        found: dict[int, StoredDocument] = {}
        with Session(self.engine) as s:
            for cond in _reached(DocumentRow.root, DocumentRow.source, root, sources):
                for r in s.execute(select(*_STORED_DOCUMENT).where(cond)):
                    found[r[0]] = StoredDocument(*r)
        return sorted(found.values(), key=lambda d: d.pk)

    def documents_with_id(self, doc_id: str) -> list[StoredDocument]:
        """The documents stored under ``doc_id``, whatever folder they were indexed from."""
        with Session(self.engine) as s:
            stmt = select(*_STORED_DOCUMENT).where(DocumentRow.doc_id == doc_id)
            return [StoredDocument(*r) for r in s.execute(stmt.order_by(DocumentRow.id))]

    def counts(self) -> dict[str, int]:
        with Session(self.engine) as s:
            return {
                "documents": s.scalar(select(func.count()).select_from(DocumentRow)) or 0,
                "chunks": s.scalar(select(func.count()).select_from(ChunkRow)) or 0,
                "sources": s.scalar(select(func.count()).select_from(SourceRow)) or 0,
            }

    def roots(self) -> list[str]:
        with Session(self.engine) as s:
            return sorted(s.scalars(select(DocumentRow.root).distinct()))

    def chunk_ids(self) -> np.ndarray:
        with Session(self.engine) as s:
            ids = s.scalars(select(ChunkRow.id).order_by(ChunkRow.id)).all()
        return np.asarray(ids, dtype=np.int64)

    def embedding_dim(self) -> int | None:
        """Length of the stored vectors, recorded with the first chunks written."""
        raw = self.meta("dim")
        return int(raw) if raw else None

    def embeddings(
        self, ids: Iterable[int] | None = None, batch: int = 4096
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(ids, vectors) in batches, for all chunks or the given ones."""
        dim = self.embedding_dim()
        if dim is None:
            return
        wanted = None if ids is None else sorted(int(i) for i in ids)
        with Session(self.engine) as s:
            if wanted is None:
                result = s.execute(select(ChunkRow.id, ChunkRow.embedding).order_by(ChunkRow.id))
                while rows := result.fetchmany(batch):
                    yield _unpack(rows, dim)
            else:
                for part in batches(wanted):
                    rows = s.execute(
                        select(ChunkRow.id, ChunkRow.embedding).where(ChunkRow.id.in_(part))
                    ).all()
                    if rows:
                        yield _unpack(rows, dim)

    def sample_embeddings(self, n: int, seed: int = 0) -> np.ndarray:
        """Up to ``n`` stored vectors picked at random, e.g. to train a clustering."""
        ids = self.chunk_ids()
        if len(ids) > n:
            ids = np.random.default_rng(seed).choice(ids, size=n, replace=False)
        parts = [v for _, v in self.embeddings(ids.tolist())]
        dim = self.embedding_dim() or 0
        return np.vstack(parts) if parts else np.zeros((0, dim), dtype=np.float32)

    def chunks(self, ids: Sequence[int]) -> dict[int, StoredChunk]:
        """The chunks that still exist among ``ids``, with their documents."""
        out: dict[int, StoredChunk] = {}
        with Session(self.engine) as s:
            for part in batches([int(i) for i in ids]):
                stmt = (
                    select(ChunkRow, DocumentRow)
                    .join(DocumentRow, ChunkRow.document_id == DocumentRow.id)
                    .where(ChunkRow.id.in_(part))
                )
                for c, d in s.execute(stmt):
                    unit, part_name = _part_of(d.parts, c.page_start)
                    out[c.id] = StoredChunk(
                        id=c.id,
                        doc_pk=d.id,
                        doc_id=d.doc_id,
                        root=d.root,
                        source=d.source,
                        title=d.title,
                        type=d.type,
                        metadata=d.meta or {},
                        text=c.text,
                        start=c.start,
                        end=c.end,
                        line_start=c.line_start,
                        line_end=c.line_end,
                        page_start=c.page_start,
                        page_end=c.page_end,
                        heading=c.heading,
                        part=unit,
                        part_name=part_name,
                    )
        return out

    def chunk_documents(self, ids: Sequence[int]) -> dict[int, int]:
        """Chunk id -> document row id, for the chunks that still exist among ``ids``."""
        out: dict[int, int] = {}
        with Session(self.engine) as s:
            for part in batches([int(i) for i in ids]):
                stmt = select(ChunkRow.id, ChunkRow.document_id).where(ChunkRow.id.in_(part))
                out.update({r[0]: r[1] for r in s.execute(stmt)})
        return out

    def chunk_ids_where(self, where: Where) -> np.ndarray:
        """Ids of the chunks of the documents that meet ``where``."""
        cond, params = document_filter(where)
        sql = (
            "SELECT c.id FROM chunks c JOIN documents d ON d.id = c.document_id "
            f"WHERE {cond} ORDER BY c.id"
        )
        with self.engine.connect() as conn:
            rows = conn.exec_driver_sql(sql, tuple(params)).fetchall()
        return np.asarray([r[0] for r in rows], dtype=np.int64)

    def lexical_search(
        self, query: str, limit: int, where: Where | None = None
    ) -> list[tuple[int, float]]:
        """(chunk id, BM25 score) of the best ``limit`` chunks, best first."""
        return bm25_search(self.engine, query, limit, where)

    def lexical_ids(self) -> np.ndarray:
        with self.engine.connect() as conn:
            rows = conn.exec_driver_sql("SELECT rowid FROM chunks_fts ORDER BY rowid").fetchall()
        return np.asarray([r[0] for r in rows], dtype=np.int64)

    def integrity_problems(self) -> list[str]:
        """What SQLite's own quick check finds wrong with the file (empty when healthy)."""
        with self.engine.connect() as conn:
            rows = [r[0] for r in conn.exec_driver_sql("PRAGMA quick_check").fetchall()]
        return [] if rows == ["ok"] else [f"database: {r}" for r in rows]

    def documents_with_bad_embeddings(self, dim: int) -> list[int]:
        """Documents having a chunk whose stored embedding is not ``dim`` float32 values."""
        stmt = (
            select(ChunkRow.document_id)
            .where(func.length(ChunkRow.embedding) != dim * 4)
            .distinct()
        )
        with Session(self.engine) as s:
            return list(s.scalars(stmt))

    def sources_of(self, document_pks: Sequence[int]) -> list[str]:
        found: set[str] = set()
        with Session(self.engine) as s:
            for part in batches(list(document_pks)):
                found.update(s.scalars(select(DocumentRow.source).where(DocumentRow.id.in_(part))))
        return sorted(found)

    # -- writes -----------------------------------------------------------
    def write(
        self,
        writes: Sequence[DocumentWrite],
        sources: Sequence[SourceState] = (),
        remove_documents: Sequence[int] = (),
        remove_sources: Sequence[str] = (),
        precision: str = "float32",
    ) -> tuple[list[int], list[int]]:
        """One batch in one transaction: see :func:`rag.storage.writer.write`."""
        return writer.write(
            self.engine, writes, sources, remove_documents, remove_sources, precision
        )

    def precisions(self) -> list[str]:
        """What the stored embeddings were computed in (float32 before this was kept)."""
        raw = self.meta(writer.PRECISION_KEY)
        if raw:
            return raw.split(",")
        return ["float32"] if self.embedding_dim() is not None else []


def _unpack(rows: Sequence[Any], dim: int) -> tuple[np.ndarray, np.ndarray]:
    """(ids, vectors) of the rows whose blob holds ``dim`` float32 values; others are skipped."""
    good = [r for r in rows if r[1] is not None and len(r[1]) == dim * 4]
    if len(good) < len(rows):
        log.warning("skipped %d chunks with unusable embeddings", len(rows) - len(good))
    ids = np.fromiter((r[0] for r in good), dtype=np.int64, count=len(good))
    if not good:
        return ids, np.zeros((0, dim), dtype=np.float32)
    return ids, np.frombuffer(b"".join(r[1] for r in good), dtype=np.float32).reshape(-1, dim)


def _part_of(parts: dict[str, Any] | None, page: int | None) -> tuple[str, str]:
    """(unit, name of part ``page``) from a document's stored parts (NULL: pages)."""
    if not isinstance(parts, dict):
        return "page", ""
    names = parts.get("names") or []
    name = names[page - 1] if page is not None and 0 < page <= len(names) else ""
    return str(parts.get("unit") or "page"), str(name or "")


def _reached(root_column: Any, path_column: Any, root: str, paths: Iterable[str]) -> list[Any]:
    """SQL conditions, one query each: indexed from ``root``, or a path inside it; then
    the path is one of ``paths`` (in batches)."""
    inside = _inside(path_column, root)
    batched = [path_column.in_(part) for part in batches(sorted(set(paths)))]
    return [or_(root_column == root, inside), *batched]


def _inside(column: Any, root: str) -> Any:
    """SQL: ``column`` is the path ``root`` or a path inside the folder ``root``."""
    prefix = root.rstrip(os.sep) + os.sep
    return or_(column == root, func.substr(column, 1, len(prefix)) == prefix)


@contextmanager
def _nothing() -> Iterator[None]:
    yield
