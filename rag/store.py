"""The SQLite database of an index: sources, documents, chunks with their embeddings.

SQLite is the source of truth. Every chunk row keeps its embedding, so the FAISS file
can always be rebuilt from here without re-embedding. Chunk ids come from an
AUTOINCREMENT key, so an id is never reused, and they are the FAISS vector ids.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import (
    JSON,
    Engine,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    create_engine,
    delete,
    event,
    func,
    insert,
    inspect,
    select,
    update,
)
from sqlalchemy.exc import DatabaseError, OperationalError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from rag.chunking import Chunk
from rag.documents import Document
from rag.errors import IndexCorrupt
from rag.filters import Where
from rag.settings import FORMAT_VERSION, Settings

log = logging.getLogger(__name__)


class Base(DeclarativeBase):
    pass


class Meta(Base):
    __tablename__ = "meta"
    key: Mapped[str] = mapped_column(String, primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class SourceRow(Base):
    """A file that was read: its size and mtime let a re-run skip it unread."""

    __tablename__ = "sources"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    path: Mapped[str] = mapped_column(String, unique=True)
    root: Mapped[str] = mapped_column(String, index=True)
    size: Mapped[int] = mapped_column(Integer)
    mtime_ns: Mapped[int] = mapped_column(Integer)


class DocumentRow(Base):
    __tablename__ = "documents"
    __table_args__ = (UniqueConstraint("root", "doc_id"), {"sqlite_autoincrement": True})
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    root: Mapped[str] = mapped_column(String)
    doc_id: Mapped[str] = mapped_column(String)
    source: Mapped[str] = mapped_column(String, index=True)
    kind: Mapped[str] = mapped_column(String)
    title: Mapped[str] = mapped_column(String)
    content_hash: Mapped[str] = mapped_column(String)
    chars: Mapped[int] = mapped_column(Integer)
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", JSON)
    indexed_at: Mapped[float] = mapped_column(Float)


class ChunkRow(Base):
    __tablename__ = "chunks"
    __table_args__ = (Index("ix_chunks_document", "document_id"), {"sqlite_autoincrement": True})
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id", ondelete="CASCADE"))
    ordinal: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text)
    start: Mapped[int] = mapped_column(Integer)
    end: Mapped[int] = mapped_column(Integer)
    line_start: Mapped[int] = mapped_column(Integer)
    line_end: Mapped[int] = mapped_column(Integer)
    page_start: Mapped[int | None] = mapped_column(Integer, nullable=True)
    page_end: Mapped[int | None] = mapped_column(Integer, nullable=True)
    heading: Mapped[str] = mapped_column(String)
    embedding: Mapped[bytes] = mapped_column(LargeBinary)


@dataclass(frozen=True)
class StoredDocument:
    pk: int
    doc_id: str
    source: str
    content_hash: str


@dataclass(frozen=True)
class StoredChunk:
    """A chunk row joined with its document, as search results need it."""

    id: int
    doc_pk: int
    doc_id: str
    root: str
    source: str
    title: str
    kind: str
    metadata: dict[str, Any]
    text: str
    start: int
    end: int
    line_start: int
    line_end: int
    page_start: int | None
    page_end: int | None
    heading: str


@dataclass(frozen=True)
class DocumentWrite:
    """A new or changed document with its chunks and their embeddings."""

    document: Document
    root: str
    chunks: Sequence[Chunk]
    embeddings: np.ndarray


@dataclass(frozen=True)
class SourceState:
    path: str
    root: str
    size: int
    mtime_ns: int


# The lexical index: FTS5 over each chunk's title, heading and text. Triggers keep it
# in the same transaction as the chunk rows, so the two can never disagree.
_FTS_DDL = (
    "CREATE VIRTUAL TABLE IF NOT EXISTS chunks_fts USING fts5("
    "title, heading, text, tokenize='porter unicode61 remove_diacritics 2')",
    "CREATE TRIGGER IF NOT EXISTS chunks_fts_insert AFTER INSERT ON chunks BEGIN "
    "INSERT INTO chunks_fts(rowid, title, heading, text) VALUES (new.id, "
    "(SELECT title FROM documents WHERE id = new.document_id), new.heading, new.text); END",
    "CREATE TRIGGER IF NOT EXISTS chunks_fts_delete AFTER DELETE ON chunks BEGIN "
    "DELETE FROM chunks_fts WHERE rowid = old.id; END",
)
# Column weights for bm25(): title, heading, text.
_BM25_WEIGHTS = (1.0, 1.0, 1.0)
_STOPWORDS = frozenset(
    """
    a about above after again against all am an and any are as at be because been before
    being below between both but by can did do does doing down during each few for from
    further had has have having he her here hers herself him himself his how i if in into
    is it its itself just me more most my myself no nor not now of off on once only or
    other our ours ourselves out over own same she should so some such than that the their
    theirs them themselves then there these they this those through to too under until up
    very was we were what when where which while who whom why will with you your yours
    yourself yourselves
    """.split()
)


def lexical_query(text: str) -> str:
    """An FTS5 query matching any of the text's words (stopwords dropped), each quoted."""
    words = dict.fromkeys(w for w in re.findall(r"\w+", text.lower()) if w not in _STOPWORDS)
    return " OR ".join('"' + w.replace('"', '""') + '"' for w in words)


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
    def open(cls, path: Path) -> Store:
        store = cls.connect(path)
        try:
            has_meta = inspect(store.engine).has_table("meta")
            version = store.meta("format_version") if has_meta else None
        except (DatabaseError, OperationalError) as e:
            store.close()
            raise IndexCorrupt(
                f"{path} is not a readable index database ({e.orig}); it cannot be repaired "
                "in place: index your documents again into a new folder"
            ) from e
        if version is None or store.meta("settings") is None:
            store.close()
            raise IndexCorrupt(f"{path} has no index settings; it was not made by rag")
        if int(version) < FORMAT_VERSION:
            store._migrate(int(version))
        if int(version) > FORMAT_VERSION:
            store.close()
            raise IndexCorrupt(
                f"{path} has index format {version}, newer than this rag reads "
                f"({FORMAT_VERSION}); upgrade rag"
            )
        return store

    def close(self) -> None:
        self.engine.dispose()

    def _ensure_lexical(self) -> None:
        with self.engine.begin() as conn:
            for stmt in _FTS_DDL:
                conn.exec_driver_sql(stmt)

    def _migrate(self, version: int) -> None:
        """Bring an index of an older format up to this one, in one transaction."""
        log.info("upgrading %s from index format %d to %d", self.path, version, FORMAT_VERSION)
        with self.engine.begin() as conn:
            if version < 2:  # format 2 added the lexical index
                for stmt in _FTS_DDL:
                    conn.exec_driver_sql(stmt)
                conn.exec_driver_sql(
                    "INSERT INTO chunks_fts(rowid, title, heading, text) "
                    "SELECT c.id, d.title, c.heading, c.text FROM chunks c "
                    "JOIN documents d ON d.id = c.document_id"
                )
            conn.exec_driver_sql(
                "UPDATE meta SET value = ? WHERE key = 'format_version'", (str(FORMAT_VERSION),)
            )

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

    def sources(self, root: str) -> dict[str, SourceState]:
        with Session(self.engine) as s:
            rows = s.scalars(select(SourceRow).where(SourceRow.root == root))
            return {r.path: SourceState(r.path, r.root, r.size, r.mtime_ns) for r in rows}

    def documents(self, root: str) -> dict[str, StoredDocument]:
        stmt = select(
            DocumentRow.id, DocumentRow.doc_id, DocumentRow.source, DocumentRow.content_hash
        ).where(DocumentRow.root == root)
        with Session(self.engine) as s:
            return {
                r.doc_id: StoredDocument(r.id, r.doc_id, r.source, r.content_hash)
                for r in s.execute(stmt)
            }

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
                for k in range(0, len(wanted), 500):
                    part = wanted[k : k + 500]
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
        if not ids:
            return {}
        stmt = (
            select(ChunkRow, DocumentRow)
            .join(DocumentRow, ChunkRow.document_id == DocumentRow.id)
            .where(ChunkRow.id.in_([int(i) for i in ids]))
        )
        out: dict[int, StoredChunk] = {}
        with Session(self.engine) as s:
            for c, d in s.execute(stmt):
                out[c.id] = StoredChunk(
                    id=c.id,
                    doc_pk=d.id,
                    doc_id=d.doc_id,
                    root=d.root,
                    source=d.source,
                    title=d.title,
                    kind=d.kind,
                    metadata=d.meta or {},
                    text=c.text,
                    start=c.start,
                    end=c.end,
                    line_start=c.line_start,
                    line_end=c.line_end,
                    page_start=c.page_start,
                    page_end=c.page_end,
                    heading=c.heading,
                )
        return out

    def chunk_documents(self, ids: Sequence[int]) -> dict[int, int]:
        """Chunk id -> document row id, for the chunks that still exist among ``ids``."""
        out: dict[int, int] = {}
        with Session(self.engine) as s:
            for k in range(0, len(ids), 900):
                part = [int(i) for i in ids[k : k + 900]]
                stmt = select(ChunkRow.id, ChunkRow.document_id).where(ChunkRow.id.in_(part))
                out.update({r[0]: r[1] for r in s.execute(stmt)})
        return out

    @staticmethod
    def _document_filter(where: Where) -> tuple[str, list[Any]]:
        """A SQL condition on ``documents d`` and its parameters."""
        conds, params = ["1"], list[Any]()
        if where.path is not None:
            conds.append("d.doc_id GLOB ?")
            params.append(where.path)
        if where.kind is not None:
            conds.append("d.kind = ?")
            params.append(where.kind)
        for key, value in where.metadata.items():
            conds.append(f"json_extract(d.metadata, '$.\"{key}\"') = ?")
            params.append(json.dumps(value) if isinstance(value, (list, dict)) else value)
        return " AND ".join(conds), params

    def chunk_ids_where(self, where: Where) -> np.ndarray:
        """Ids of the chunks of the documents that meet ``where``."""
        cond, params = self._document_filter(where)
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
        match = lexical_query(query)
        if not match:
            return []
        weights = ", ".join(str(w) for w in _BM25_WEIGHTS)
        restrict, params = "", list[Any]()
        if where is not None:
            cond, params = self._document_filter(where)
            restrict = (
                " AND rowid IN (SELECT c.id FROM chunks c JOIN documents d "
                f"ON d.id = c.document_id WHERE {cond})"
            )
        sql = (
            f"SELECT rowid, -bm25(chunks_fts, {weights}) AS score FROM chunks_fts "
            f"WHERE chunks_fts MATCH ?{restrict} ORDER BY bm25(chunks_fts, {weights}) LIMIT ?"
        )
        with self.engine.connect() as conn:
            rows = conn.exec_driver_sql(sql, (match, *params, limit))
            return [(int(r[0]), float(r[1])) for r in rows]

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
        with Session(self.engine) as s:
            return sorted(
                set(
                    s.scalars(
                        select(DocumentRow.source).where(DocumentRow.id.in_(list(document_pks)))
                    )
                )
            )

    # -- writes -----------------------------------------------------------

    def write(
        self,
        writes: Sequence[DocumentWrite],
        sources: Sequence[SourceState] = (),
        remove_documents: Sequence[int] = (),
        remove_sources: Sequence[str] = (),
    ) -> tuple[list[int], list[int]]:
        """Apply one batch in one transaction; returns (removed chunk ids, added chunk ids).

        A changed document keeps its row id; its old chunks are replaced by new ones
        with new ids.
        """
        now = time.time()
        removed: list[int] = []
        added: list[int] = []
        with Session(self.engine) as s, s.begin():
            if remove_documents:
                removed += self._drop_documents(s, remove_documents)
            for w in writes:
                doc = w.document
                values = dict(
                    root=w.root,
                    doc_id=doc.doc_id,
                    source=doc.source,
                    kind=doc.kind,
                    title=doc.title,
                    content_hash=doc.content_hash,
                    chars=len(doc.text),
                    meta=doc.metadata,
                    indexed_at=now,
                )
                pk = s.scalar(
                    select(DocumentRow.id).where(
                        DocumentRow.root == w.root, DocumentRow.doc_id == doc.doc_id
                    )
                )
                if pk is None:
                    pk = s.scalar(insert(DocumentRow).values(**values).returning(DocumentRow.id))
                else:
                    removed += self._drop_chunks(s, [pk])
                    s.execute(update(DocumentRow).where(DocumentRow.id == pk).values(**values))
                assert pk is not None
                rows = [
                    dict(
                        document_id=pk,
                        ordinal=c.ordinal,
                        text=c.text,
                        start=c.start,
                        end=c.end,
                        line_start=c.line_start,
                        line_end=c.line_end,
                        page_start=c.page_start,
                        page_end=c.page_end,
                        heading=c.heading,
                        embedding=np.asarray(v, dtype=np.float32).tobytes(),
                    )
                    for c, v in zip(w.chunks, w.embeddings)
                ]
                if rows and s.get(Meta, "dim") is None:
                    s.add(Meta(key="dim", value=str(w.embeddings.shape[1])))
                    s.flush()
                if rows:
                    added += s.scalars(
                        insert(ChunkRow).returning(ChunkRow.id, sort_by_parameter_order=True), rows
                    ).all()
            for src in sources:
                s.execute(delete(SourceRow).where(SourceRow.path == src.path))
                s.add(SourceRow(path=src.path, root=src.root, size=src.size, mtime_ns=src.mtime_ns))
            if remove_sources:
                s.execute(delete(SourceRow).where(SourceRow.path.in_(list(remove_sources))))
            self._bump_generation(s)
        return removed, added

    @staticmethod
    def _drop_chunks(s: Session, document_pks: Sequence[int]) -> list[int]:
        """Delete the chunks of these documents; returns their ids."""
        ids = list(s.scalars(select(ChunkRow.id).where(ChunkRow.document_id.in_(document_pks))))
        s.execute(delete(ChunkRow).where(ChunkRow.document_id.in_(document_pks)))
        return ids

    @classmethod
    def _drop_documents(cls, s: Session, pks: Sequence[int]) -> list[int]:
        removed: list[int] = []
        for k in range(0, len(pks), 500):
            part = list(pks[k : k + 500])
            removed += cls._drop_chunks(s, part)
            s.execute(delete(DocumentRow).where(DocumentRow.id.in_(part)))
        return removed

    @staticmethod
    def _bump_generation(s: Session) -> None:
        s.execute(
            update(Meta)
            .where(Meta.key == "generation")
            .values(value=func.cast(func.cast(Meta.value, Integer) + 1, String))
        )


def _unpack(rows: Sequence[Any], dim: int) -> tuple[np.ndarray, np.ndarray]:
    """(ids, vectors) of the rows whose blob holds ``dim`` float32 values; others are skipped."""
    good = [r for r in rows if r[1] is not None and len(r[1]) == dim * 4]
    if len(good) < len(rows):
        log.warning("skipped %d chunks with unusable embeddings", len(rows) - len(good))
    ids = np.fromiter((r[0] for r in good), dtype=np.int64, count=len(good))
    if not good:
        return ids, np.zeros((0, dim), dtype=np.float32)
    return ids, np.frombuffer(b"".join(r[1] for r in good), dtype=np.float32).reshape(-1, dim)
