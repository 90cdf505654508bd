"""Writing one batch of documents, their chunks and sources, in one transaction."""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np
from sqlalchemy import Engine, Integer, String, delete, func, insert, select, update
from sqlalchemy.orm import Session

from rag.storage.records import DocumentWrite, SourceState, batches
from rag.storage.schema import ChunkRow, DocumentRow, Meta, SourceRow

PRECISION_KEY = "precision"


def write(
    engine: Engine,
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
            pk = w.pk if w.pk is not None else same_id
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
                s.add(Meta(key="dim", value=str(w.embeddings.shape[1])))
                s.flush()
            if rows:
                added += s.scalars(
                    insert(ChunkRow).returning(ChunkRow.id, sort_by_parameter_order=True), rows
                ).all()
        if added:
            _note_precision(s, precision)
        for src in sources:
            s.execute(delete(SourceRow).where(SourceRow.path == src.path))
            s.add(SourceRow(path=src.path, root=src.root, size=src.size, mtime_ns=src.mtime_ns))
        for part in batches(list(remove_sources)):
            s.execute(delete(SourceRow).where(SourceRow.path.in_(part)))
        _bump_generation(s)
    return removed, added

def _note_precision(s: Session, precision: str) -> None:
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

def _bump_generation(s: Session) -> None:
    s.execute(
        update(Meta)
        .where(Meta.key == "generation")
        .values(value=func.cast(func.cast(Meta.value, Integer) + 1, String))
    )
