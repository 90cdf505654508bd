"""Writing one batch of documents, their chunks and sources, in one transaction.

Several writers may run at once (on PostgreSQL): a batch first locks the files it
touches (``Backend.lock``; nothing to do on SQLite, whose one writer holds the file
lock) and then decides from what is stored now, not from what its ingest saw when it
started, which row each document replaces.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Protocol

import numpy as np
from sqlalchemy import Engine, Integer, String, delete, func, insert, select, update
from sqlalchemy.orm import Session

from rag.storage.records import DocumentWrite, SourceState, batches
from rag.storage.schema import ChunkRow, DocumentRow, Meta, SourceRow

PRECISION_KEY = "precision"
META_LOCK = "meta"


class Backend(Protocol):
    def lock(self, session: Session, keys: Sequence[str]) -> None: ...

    def first_vectors(self, session: Session, dim: int) -> None: ...


def write(
    engine: Engine,
    backend: Backend,
    writes: Sequence[DocumentWrite],
    sources: Sequence[SourceState] = (),
    remove_documents: Sequence[int] = (),
    remove_sources: Sequence[str] = (),
    precision: str = "float32",
) -> tuple[list[int], list[int]]:
    """Apply one batch in one transaction; returns (removed chunk ids, added chunk ids).

    A document written with ``pk``, or stored before under the same root and id,
    replaces that row: the row id stays, its old chunks are replaced by new ones with
    new ids. ``precision`` is what the embeddings were computed in; the index keeps
    the set of precisions its vectors were made in (meta ``precision``).
    """
    now = time.time()
    removed: list[int] = []
    added: list[int] = []
    with Session(engine) as s, s.begin():
        touched = [w.document.source for w in writes] + [src.path for src in sources]
        touched += list(remove_sources)
        for part in batches(list(remove_documents)):
            touched += s.scalars(select(DocumentRow.source).where(DocumentRow.id.in_(part)))
        backend.lock(s, touched)
        if remove_documents:
            removed += _drop_documents(s, remove_documents)
        for w in writes:
            doc = w.document
            values = dict(
                root=w.root,
                doc_id=doc.doc_id,
                source=doc.source,
                type=doc.type,
                title=doc.title,
                content_hash=doc.content_hash,
                chars=len(doc.text),
                meta=doc.metadata,
                indexed_at=now,
                parts=doc.parts,
            )
            same_id = s.scalar(
                select(DocumentRow.id).where(
                    DocumentRow.root == w.root, DocumentRow.doc_id == doc.doc_id
                )
            )
            pk = _replaced(s, w, same_id)
            if same_id is not None and same_id != pk:
                # another row holds this id under this root: this document replaces it
                removed += _drop_documents(s, [same_id])
            if pk is None:
                pk = s.scalar(insert(DocumentRow).values(**values).returning(DocumentRow.id))
            else:
                removed += _drop_chunks(s, [pk])
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
                record_dimension(s, backend, int(w.embeddings.shape[1]))
            if rows:
                added += s.scalars(
                    insert(ChunkRow).returning(ChunkRow.id, sort_by_parameter_order=True), rows
                ).all()
        if added:
            _note_precision(s, backend, precision)
        for src in sources:
            s.execute(delete(SourceRow).where(SourceRow.path == src.path))
            s.add(SourceRow(path=src.path, root=src.root, size=src.size, mtime_ns=src.mtime_ns))
        for part in batches(list(remove_sources)):
            s.execute(delete(SourceRow).where(SourceRow.path.in_(part)))
        bump_generation(s)
    return removed, added


def _replaced(s: Session, w: DocumentWrite, same_id: int | None) -> int | None:
    """The row ``w`` replaces: the one its ingest named if it still exists, else the
    one stored for its file by now (another writer may have added it), else one under
    the same root and id."""
    if w.pk is not None and s.get(DocumentRow, w.pk) is not None:
        return w.pk
    doc = w.document
    same_file = select(DocumentRow.id).where(DocumentRow.source == doc.source)
    if doc.type == "jsonl":  # a JSONL file holds many documents, known by their ids
        same_file = same_file.where(DocumentRow.doc_id == doc.doc_id)
    else:
        same_file = same_file.where(DocumentRow.type != "jsonl")
    found = s.scalar(same_file.order_by(DocumentRow.id).limit(1))
    return found if found is not None else same_id


def record_dimension(s: Session, backend: Backend, dim: int) -> None:
    """Record the vectors' dimension with the first ones written (once, whoever is first)."""
    backend.lock(s, [META_LOCK])
    if s.scalar(select(Meta.value).where(Meta.key == "dim")) is None:
        backend.first_vectors(s, dim)
        s.add(Meta(key="dim", value=str(dim)))
        s.flush()


def _note_precision(s: Session, backend: Backend, precision: str) -> None:
    row = s.get(Meta, PRECISION_KEY)
    if row is not None and precision in row.value.split(","):
        return
    backend.lock(s, [META_LOCK])
    s.expire_all()
    row = s.get(Meta, PRECISION_KEY)
    if row is None:
        s.add(Meta(key=PRECISION_KEY, value=precision))
    elif precision not in row.value.split(","):
        row.value = ",".join(sorted({*row.value.split(","), precision}))


def _drop_chunks(s: Session, document_pks: Sequence[int]) -> list[int]:
    """Delete the chunks of these documents; returns their ids."""
    ids = list(s.scalars(select(ChunkRow.id).where(ChunkRow.document_id.in_(document_pks))))
    s.execute(delete(ChunkRow).where(ChunkRow.document_id.in_(document_pks)))
    return ids


def _drop_documents(s: Session, pks: Sequence[int]) -> list[int]:
    removed: list[int] = []
    for part in batches(list(pks)):
        removed += _drop_chunks(s, part)
        s.execute(delete(DocumentRow).where(DocumentRow.id.in_(part)))
    return removed


def bump_generation(s: Session) -> None:
    s.execute(
        update(Meta)
        .where(Meta.key == "generation")
        .values(value=func.cast(func.cast(Meta.value, Integer) + 1, String))
    )
