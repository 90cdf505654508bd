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
from typing import Any, Protocol

import numpy as np
from sqlalchemy import Engine, Integer, String, delete, func, insert, select, tuple_, update
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
# (root, doc_id) pairs bound into one IN clause: two variables each.
PAIR_BATCH = 400
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
        pks, clashing = _replaced(s, writes)
        if clashing:
            # another row holds a document's id under its root: the document replaces it
            removed += _drop_documents(s, clashing)
        replaced = [pk for pk in pks if pk is not None]
        for part in batches(replaced):
            removed += _drop_chunks(s, part)
        values = [_document_values(w, now) for w in writes]
        updates = [dict(v, id=pk) for v, pk in zip(values, pks) if pk is not None]
        if updates:
            s.execute(update(DocumentRow), updates)
        new = [v for v, pk in zip(values, pks) if pk is None]
        if new:
            made = iter(
                s.scalars(
                    insert(DocumentRow).returning(DocumentRow.id, sort_by_parameter_order=True),
                    new,
                ).all()
            )
            pks = [pk if pk is not None else next(made) for pk in pks]
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
            for w, pk in zip(writes, pks)
            for c, v in zip(w.chunks, w.embeddings)
        ]
        if rows:
            if s.get(Meta, "dim") is None:
                record_dimension(s, backend, int(writes_dim(writes)))
            added += s.scalars(
                insert(ChunkRow).returning(ChunkRow.id, sort_by_parameter_order=True), rows
            ).all()
            _note_precision(s, backend, precision)
        _record_sources(s, engine, sources)
        for part in batches(list(remove_sources)):
            s.execute(delete(SourceRow).where(SourceRow.path.in_(part)))
        bump_generation(s)
    return removed, added


def writes_dim(writes: Sequence[DocumentWrite]) -> int:
    """The width of the vectors written (of the first write that has any)."""
    return next(int(w.embeddings.shape[1]) for w in writes if len(w.chunks))


def _document_values(w: DocumentWrite, now: float) -> dict[str, Any]:
    doc = w.document
    return dict(
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


def _replaced(s: Session, writes: Sequence[DocumentWrite]) -> tuple[list[int | None], list[int]]:
    """The row each write replaces, locked, or None for a new one; and the rows that
    hold a written document's root and id but are replaced by another row.

    A write replaces the row its ingest named if that still exists, else the row
    stored for its file by now (another writer may have added it), else the row with
    its root and id.
    """
    named = [w.pk for w in writes if w.pk is not None]
    alive: set[int] = set()
    for part in batches(sorted(named)):
        mine = select(DocumentRow.id).where(DocumentRow.id.in_(part))
        alive.update(s.scalars(mine.order_by(DocumentRow.id).with_for_update()))
    by_file: dict[tuple[str, str], int] = {}
    wanted = sorted({w.document.source for w in writes if w.pk not in alive})
    for part in batches(wanted):
        files = (
            select(DocumentRow.id, DocumentRow.source, DocumentRow.doc_id, DocumentRow.type)
            .where(DocumentRow.source.in_(part))
            .order_by(DocumentRow.id)
            .with_for_update()
        )
        for row, source, doc_id, kind in s.execute(files):
            # a JSONL file holds many documents, known by their ids; any other file one
            by_file.setdefault((source, doc_id if kind == "jsonl" else ""), row)
    by_id: dict[tuple[str, str], int] = {}
    pairs = sorted({(w.root, w.document.doc_id) for w in writes})
    for part in batches(pairs, PAIR_BATCH):
        clause = tuple_(DocumentRow.root, DocumentRow.doc_id).in_(part)
        found = (
            select(DocumentRow.id, DocumentRow.root, DocumentRow.doc_id)
            .where(clause)
            .order_by(DocumentRow.id)
            .with_for_update()
        )
        by_id.update({(root, doc_id): row for row, root, doc_id in s.execute(found)})
    pks: list[int | None] = []
    clashing: list[int] = []
    for w in writes:
        doc = w.document
        same_id = by_id.get((w.root, doc.doc_id))
        pk: int | None = w.pk if w.pk in alive else None
        if pk is None:
            pk = by_file.get((doc.source, doc.doc_id if doc.type == "jsonl" else ""), same_id)
        if same_id is not None and same_id != pk:
            clashing.append(same_id)
        pks.append(pk)
    return pks, clashing


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
