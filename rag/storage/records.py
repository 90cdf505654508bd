"""What the store hands out and takes in: rows as typed records."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from rag.types import Chunk, Document

log = logging.getLogger(__name__)

# Ids bound into one IN (...) clause at most; SQLite limits the variables of a statement.
IN_BATCH = 900


@dataclass(frozen=True)
class StoredDocument:
    pk: int
    root: str
    doc_id: str
    source: str
    type: str
    content_hash: str


@dataclass(frozen=True)
class DocumentSummary:
    """One indexed document as a listing shows it: where it came from, how many chunks."""

    doc_id: str
    source: str
    title: str
    type: str
    chunks: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class StoredChunk:
    """A chunk row joined with its document, as search results need it."""

    id: int
    doc_pk: int
    doc_id: str
    root: str
    source: str
    title: str
    type: str
    metadata: dict[str, Any]
    text: str
    start: int
    end: int
    line_start: int
    line_end: int
    page_start: int | None
    page_end: int | None
    heading: str
    part: str = "page"
    part_name: str = ""  # the name of the part the chunk starts in, if the format names parts


@dataclass(frozen=True)
class DocumentWrite:
    """A new or changed document with its chunks and their embeddings."""

    document: Document
    root: str
    chunks: Sequence[Chunk]
    embeddings: np.ndarray
    pk: int | None = None  # the row it replaces, when the document was indexed before


@dataclass(frozen=True)
class SourceState:
    path: str
    root: str
    size: int
    mtime_ns: int


def batches(items: Sequence[Any], size: int = IN_BATCH) -> Iterator[list[Any]]:
    """``items`` in runs of at most ``size``, each bound into one IN clause."""
    for k in range(0, len(items), size):
        yield list(items[k : k + size])


def unpack_embeddings(rows: Sequence[Any], dim: int) -> tuple[np.ndarray, np.ndarray]:
    """(ids, vectors) of the rows whose blob holds ``dim`` float32 values; others are skipped."""
    good = [r for r in rows if r[1] is not None and len(r[1]) == dim * 4]
    if len(good) < len(rows):
        log.warning("skipped %d chunks with unusable embeddings", len(rows) - len(good))
    ids = np.fromiter((r[0] for r in good), dtype=np.int64, count=len(good))
    if not good:
        return ids, np.zeros((0, dim), dtype=np.float32)
    return ids, np.frombuffer(b"".join(r[1] for r in good), dtype=np.float32).reshape(-1, dim)


def part_of(parts: dict[str, Any] | None, page: int | None) -> tuple[str, str]:
    """(unit, name of part ``page``) from a document's stored parts (NULL: pages)."""
    if not isinstance(parts, dict):
        return "page", ""
    names = parts.get("names") or []
    name = names[page - 1] if page is not None and 0 < page <= len(names) else ""
    return str(parts.get("unit") or "page"), str(name or "")
