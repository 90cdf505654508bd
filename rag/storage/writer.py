"""Writing one batch of documents, their chunks and sources, in one transaction.

Several writers may run at once (on PostgreSQL). A batch decides from what is stored
now, not from what its ingest saw when it started, which row each document replaces,
and locks that row first. Two writers adding the same new file meet at a unique index
(one document per file; ``rag.storage.postgres``): the second waits for the first to
commit, fails, and runs its batch again, now replacing the first's row. A deadlock
between two batches ends the same way. On SQLite the one writer holds the file lock.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Sequence
from typing import Protocol

import numpy as np
from sqlalchemy import Engine, Integer, String, delete, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from rag.storage.records import DocumentWrite, SourceState, batches
from rag.storage.schema import ChunkRow, DocumentRow, Meta, SourceRow

log = logging.getLogger(__name__)

PRECISION_KEY = "precision"
META_LOCK = "meta"
# A batch that met another writer's at a unique index, or in a deadlock, runs again.
WRITE_ATTEMPTS = 8
# SQLSTATEs of those meetings: unique violation, deadlock, serialization failure.
_CONFLICTS = {"23505", "40P01", "40001"}


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
    for attempt in range(1, WRITE_ATTEMPTS + 1):
        try:
            return _write(engine, backend, writes, sources, remove_documents, remove_sources,
                          precision)  # fmt: skip
        except DBAPIError as e:
            state = getattr(e.orig, "sqlstate", None)
            if state not in _CONFLICTS or attempt == WRITE_ATTEMPTS:
                raise
            log.info("batch met another writer's (%s); writing it again", state)
            time.sleep(random.uniform(0, 0.05 * 2**attempt))
    raise AssertionError("unreachable")


def _write(
    engine: Engine,
    backend: Backend,
    writes: Sequence[DocumentWrite],
    sources: Sequence[SourceState],
    remove_documents: Sequence[int],
    remove_sources: Sequence[str],
    precision: str,
) -> tuple[list[int], list[int]]:
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
        _record_sources(s, engine, sources)
        for part in batches(list(remove_sources)):
            s.execute(delete(SourceRow).where(SourceRow.path.in_(part)))
        bump_generation(s)
    return removed, added


def _replaced(s: Session, w: DocumentWrite, same_id: int | None) -> int | None:
    """The row ``w`` replaces, locked: the one its ingest named if it still exists,
    else the one stored for its file by now (another writer may have added it), else
    one under the same root and id."""
    if w.pk is not None:
        mine = select(DocumentRow.id).where(DocumentRow.id == w.pk).with_for_update()
        if s.scalar(mine) is not None:
            return w.pk
    doc = w.document
    same_file = select(DocumentRow.id).where(DocumentRow.source == doc.source)
    if doc.type == "jsonl":  # a JSONL file holds many documents, known by their ids
        same_file = same_file.where(DocumentRow.doc_id == doc.doc_id)
    else:
        same_file = same_file.where(DocumentRow.type != "jsonl")
    found = s.scalar(same_file.order_by(DocumentRow.id).limit(1).with_for_update())
    return found if found is not None else same_id


def _record_sources(s: Session, engine: Engine, sources: Sequence[SourceState]) -> None:
    """Record files as read: one row per path, whoever wrote it last."""
    if not sources:
        return
    dialect = postgresql if engine.dialect.name == "postgresql" else sqlite
    rows = [dict(path=x.path, root=x.root, size=x.size, mtime_ns=x.mtime_ns) for x in sources]
    for part in batches(rows):
        stmt = dialect.insert(SourceRow).values(part)
        latest = {k: stmt.excluded[k] for k in ("root", "size", "mtime_ns")}
        s.execute(stmt.on_conflict_do_update(index_elements=[SourceRow.path], set_=latest))


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
