"""The database of an index: sources, documents, chunks with their embeddings.

The database is the source of truth. Every chunk row keeps its embedding, so the
vectors can always be rebuilt from here without re-embedding. Chunk ids come from an
AUTOINCREMENT key (a sequence on PostgreSQL), so an id is never reused, and they are
the FAISS vector ids. What differs between SQLite and PostgreSQL is the backend's
(``rag.storage.sqlite``, ``rag.storage.postgres``).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator, Sequence
from contextlib import nullcontext
from typing import Any

import numpy as np
from sqlalchemy import Engine, func, or_, select, text
from sqlalchemy.exc import DatabaseError, OperationalError
from sqlalchemy.orm import Session

from rag.errors import IndexCorrupt, IndexNotFound, InvalidValue
from rag.settings import FORMAT_VERSION, Settings
from rag.storage import writer
from rag.storage.location import Location
from rag.storage.lock import Lock
from rag.storage.migrations import migrate
from rag.storage.postgres import PostgresBackend
from rag.storage.records import (
    DocumentSummary,
    DocumentWrite,
    SourceState,
    StoredChunk,
    StoredDocument,
    batches,
    part_of,
    unpack_embeddings,
)
from rag.storage.schema import Base, ChunkRow, DocumentRow, Meta, SourceRow
from rag.storage.sqlite import SqliteBackend
from rag.types import Where

log = logging.getLogger(__name__)

DB_FILE = "index.db"
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

Backend = SqliteBackend | PostgresBackend


def backend_for(location: Location) -> Backend:
    """The backend that keeps an index at ``location``."""
    if location.folder is not None:
        return SqliteBackend(location.folder / DB_FILE)
    return PostgresBackend(location)


class Store:
    """Typed access to one index database."""

    def __init__(self, engine: Engine, location: Location, backend: Backend) -> None:
        self.engine = engine
        self.location = location
        self.backend = backend

    @property
    def name(self) -> str:
        """How messages name the database: its file, or its URL without the password."""
        if isinstance(self.backend, SqliteBackend):
            return str(self.backend.path)
        return self.location.display

    @classmethod
    def connect(cls, location: Location) -> Store:
        backend = backend_for(location)
        return cls(backend.connect(), location, backend)

    def exists(self) -> bool:
        """Whether the database holds an index (any format)."""
        try:
            return self.backend.has_index(self.engine)
        except (DatabaseError, OperationalError):
            return True  # something is there; opening it says what is wrong

    @classmethod
    def create(cls, location: Location, settings: Settings) -> Store:
        store = cls.connect(location)
        try:
            meta = {
                "format_version": str(FORMAT_VERSION),
                "settings": settings.to_json(),
                "generation": "0",
            }
            store.backend.create(store.engine, Base.metadata, meta)
        except BaseException:
            store.close()
            raise
        return store

    @classmethod
    def open(cls, location: Location, lock: Lock | None = None) -> Store:
        """Open an index database, upgrading an older format first.

        The upgrade runs while holding ``lock`` (the index's writer lock), so that two
        processes opening an old index never both migrate it.
        """
        store = cls.connect(location)
        try:
            version = store._format_version()
            if version < FORMAT_VERSION:
                with lock.hold(MIGRATION_WAIT) if lock is not None else nullcontext():
                    version = store._format_version()  # another process may have done it
                    if version < FORMAT_VERSION:
                        store._migrate(version)
        except BaseException:
            store.close()
            raise
        return store

    def _format_version(self) -> int:
        try:
            has_meta = self.backend.has_index(self.engine)
            version = self.meta("format_version") if has_meta else None
        except (DatabaseError, OperationalError) as e:
            raise IndexCorrupt(
                f"{self.name} is not a readable index database ({e.orig}); it cannot be "
                "repaired in place: index your documents again into a new folder"
            ) from e
        if not has_meta and isinstance(self.backend, PostgresBackend):
            raise IndexNotFound(f"no index at {self.name}")  # a schema holds no index
        if version is None or self.meta("settings") is None:
            raise IndexCorrupt(f"{self.name} has no index settings; it was not made by rag")
        if int(version) > FORMAT_VERSION:
            raise IndexCorrupt(
                f"{self.name} has index format {version}, newer than this rag reads "
                f"({FORMAT_VERSION}); upgrade rag"
            )
        return int(version)

    def close(self) -> None:
        self.engine.dispose()

    def _migrate(self, version: int) -> None:
        """Bring an index of an older format up to this one, in one transaction."""
        log.info("upgrading %s from index format %d to %d", self.name, version, FORMAT_VERSION)
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

    def document_page(self, offset: int = 0, limit: int = 100) -> list[DocumentSummary]:
        """The indexed documents ``offset:offset + limit``, in the order they were added."""
        if offset < 0:
            raise InvalidValue(f"offset must be 0 or more, got {offset}")
        if limit <= 0:
            raise InvalidValue(f"limit must be greater than 0, got {limit}")
        stmt = (
            select(DocumentRow.doc_id, DocumentRow.source, DocumentRow.title, DocumentRow.type,
                   func.count(ChunkRow.id))
            .outerjoin(ChunkRow, ChunkRow.document_id == DocumentRow.id)
            .group_by(DocumentRow.id)
            .order_by(DocumentRow.id)
            .offset(offset)
            .limit(limit)
        )  # fmt: skip
        with Session(self.engine) as s:
            return [DocumentSummary(*r) for r in s.execute(stmt)]

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
                    yield unpack_embeddings(rows, dim)
            else:
                for part in batches(wanted):
                    rows = s.execute(
                        select(ChunkRow.id, ChunkRow.embedding).where(ChunkRow.id.in_(part))
                    ).all()
                    if rows:
                        yield unpack_embeddings(rows, dim)

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
                    unit, part_name = part_of(d.parts, c.page_start)
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
        cond, params = self.backend.document_filter(where)
        sql = f"SELECT c.id FROM chunks c JOIN documents d ON d.id = c.document_id WHERE {cond}"
        with self.engine.connect() as conn:
            ids = conn.execute(text(sql + " ORDER BY c.id"), params).scalars().all()
        return np.asarray(ids, dtype=np.int64)

    def lexical_search(
        self, query: str, limit: int, where: Where | None = None
    ) -> list[tuple[int, float]]:
        """(chunk id, lexical score) of the best ``limit`` chunks, best first."""
        return self.backend.lexical_search(self.engine, query, limit, where)

    def lexical_ids(self) -> np.ndarray:
        """Ids of the chunks the lexical index holds (all of them, when in step)."""
        return self.backend.lexical_ids(self.engine)

    def integrity_problems(self) -> list[str]:
        """What the database finds wrong with itself (empty when healthy)."""
        return self.backend.integrity_problems(self.engine)

    def bytes_used(self) -> int:
        return self.backend.bytes_used(self.engine)

    def documents_with_bad_embeddings(self, dim: int) -> list[int]:
        """Documents having a chunk whose stored embedding is not ``dim`` float32 values."""
        wrong = (
            func.vector_dims(ChunkRow.embedding) != dim
            if self.backend.pgvector
            else func.length(ChunkRow.embedding) != dim * 4
        )
        stmt = select(ChunkRow.document_id).where(wrong).distinct()
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
            self.engine, self.backend, writes, sources, remove_documents, remove_sources,
            precision,
        )  # fmt: skip

    def precisions(self) -> list[str]:
        """What the stored embeddings were computed in (float32 before this was kept)."""
        raw = self.meta(writer.PRECISION_KEY)
        if raw:
            return raw.split(",")
        return ["float32"] if self.embedding_dim() is not None else []


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
