"""The tables of an index database, and the FTS5 lexical index kept in step with them.

The same tables serve SQLite and PostgreSQL. On PostgreSQL keys and file sizes are
64-bit, metadata is JSONB, and an embedding is a pgvector ``vector`` when the database
has the extension (see :class:`Embedding`); the lexical index there is a ``tsvector``
column (``rag.storage.postgres``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sqlalchemy import (
    JSON,
    BigInteger,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeEngine

# Integer in SQLite (so a key is the rowid), 64-bit in PostgreSQL.
Key = BigInteger().with_variant(Integer(), "sqlite")
Json = JSON().with_variant(JSONB(), "postgresql")
# A dialect an engine marks with this attribute stores embeddings as pgvector vectors.
PGVECTOR_FLAG = "rag_pgvector"


class Embedding(TypeDecorator[bytes]):
    """A chunk's embedding: ``dim`` float32 values as bytes, wherever it is stored.

    A blob in SQLite (and in PostgreSQL without pgvector); a ``vector`` column where the
    engine's dialect is flagged with ``PGVECTOR_FLAG``. Either way the store reads and
    writes bytes, so one code path serves both.
    """

    impl = LargeBinary
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if getattr(dialect, PGVECTOR_FLAG, False):
            from pgvector.sqlalchemy import Vector

            return dialect.type_descriptor(Vector())
        return dialect.type_descriptor(LargeBinary())

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None or not getattr(dialect, PGVECTOR_FLAG, False):
            return value
        return np.frombuffer(value, dtype=np.float32)

    def process_result_value(self, value: Any, dialect: Dialect) -> bytes | None:
        if value is None or not getattr(dialect, PGVECTOR_FLAG, False):
            return value
        return np.asarray(value, dtype=np.float32).tobytes()


class Base(DeclarativeBase):
    pass


class Meta(Base):
    """Key-value facts about the index: format version, settings, write generation."""

    __tablename__ = "meta"
    key: Mapped[str] = mapped_column(String, primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class SourceRow(Base):
    """A file that was read: its size and mtime let a re-run skip it unread.

    ``path`` is the file's resolved path, so a file is one source however it was
    reached (through a parent folder, a subfolder or a symbolic link).
    """

    __tablename__ = "sources"
    id: Mapped[int] = mapped_column(Key, primary_key=True)
    path: Mapped[str] = mapped_column(String, unique=True)
    root: Mapped[str] = mapped_column(String, index=True)
    size: Mapped[int] = mapped_column(Key)
    mtime_ns: Mapped[int] = mapped_column(Key)


class DocumentRow(Base):
    __tablename__ = "documents"
    __table_args__ = (UniqueConstraint("root", "doc_id"), {"sqlite_autoincrement": True})
    id: Mapped[int] = mapped_column(Key, primary_key=True)
    root: Mapped[str] = mapped_column(String)
    doc_id: Mapped[str] = mapped_column(String)
    source: Mapped[str] = mapped_column(String, index=True)
    type: Mapped[str] = mapped_column("kind", String)
    title: Mapped[str] = mapped_column(String)
    content_hash: Mapped[str] = mapped_column(String)
    chars: Mapped[int] = mapped_column(Integer)
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", Json)
    indexed_at: Mapped[float] = mapped_column(Float)
    # {"unit": "slide", "names": [...]}: what a chunk's page_start/page_end count
    # (Document.parts); NULL for PDF pages and documents without parts.
    parts: Mapped[dict[str, Any] | None] = mapped_column(Json, nullable=True)


class ChunkRow(Base):
    __tablename__ = "chunks"
    __table_args__ = (Index("ix_chunks_document", "document_id"), {"sqlite_autoincrement": True})
    id: Mapped[int] = mapped_column(Key, primary_key=True)
    document_id: Mapped[int] = mapped_column(Key, ForeignKey("documents.id", ondelete="CASCADE"))
    ordinal: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text)
    start: Mapped[int] = mapped_column(Integer)
    end: Mapped[int] = mapped_column(Integer)
    line_start: Mapped[int] = mapped_column(Integer)
    line_end: Mapped[int] = mapped_column(Integer)
    page_start: Mapped[int | None] = mapped_column(Integer, nullable=True)
    page_end: Mapped[int | None] = mapped_column(Integer, nullable=True)
    heading: Mapped[str] = mapped_column(String)
    embedding: Mapped[bytes] = mapped_column(Embedding)


# The lexical index: FTS5 over each chunk's title, heading and text. Triggers keep it
# in the same transaction as the chunk rows, so the two can never disagree.
FTS_DDL = (
    "CREATE VIRTUAL TABLE IF NOT EXISTS chunks_fts USING fts5("
    "title, heading, text, tokenize='porter unicode61 remove_diacritics 2')",
    "CREATE TRIGGER IF NOT EXISTS chunks_fts_insert AFTER INSERT ON chunks BEGIN "
    "INSERT INTO chunks_fts(rowid, title, heading, text) VALUES (new.id, "
    "(SELECT title FROM documents WHERE id = new.document_id), new.heading, new.text); END",
    "CREATE TRIGGER IF NOT EXISTS chunks_fts_delete AFTER DELETE ON chunks BEGIN "
    "DELETE FROM chunks_fts WHERE rowid = old.id; END",
)
