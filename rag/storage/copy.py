"""Copying an index to a new place (a folder or a PostgreSQL schema), either way.

Rows are copied as they are, ids included, embeddings included: nothing is read from
the documents or embedded again. The copy is one transaction on the destination; if
it fails, what was created there is removed again. The destination's vectors (FAISS
file or HNSW index) are built once at the end, from the copied embeddings.
"""

from __future__ import annotations

import logging
import shutil
import time
from dataclasses import dataclass

from sqlalchemy import insert, select, text
from sqlalchemy.orm import Session

from rag.errors import InvalidValue
from rag.storage import writer
from rag.storage.layout import index_exists, vectors_for, writer_lock
from rag.storage.location import Location
from rag.storage.lock import LOCK_FILE, PID_FILE
from rag.storage.pgvectors import HNSW_INDEX
from rag.storage.postgres import PostgresBackend
from rag.storage.schema import Base, Meta
from rag.storage.store import DB_FILE, Store
from rag.storage.sync import VECTORS_FILE

log = logging.getLogger(__name__)

# Rows read and written at a time.
COPY_BATCH = 2000
# What a copy may have made in a folder that existed before it.
_FOLDER_FILES = (DB_FILE, f"{DB_FILE}-wal", f"{DB_FILE}-shm", VECTORS_FILE, LOCK_FILE, PID_FILE)
# Meta facts that travel with the rows (the rest is the destination's own).
_COPIED_META = (writer.PRECISION_KEY,)


@dataclass
class CopyReport:
    source: str
    destination: str
    documents: int = 0
    chunks: int = 0
    sources: int = 0
    seconds: float = 0.0

    def to_dict(self) -> dict[str, object]:
        return {
            "source": self.source,
            "destination": self.destination,
            "documents": self.documents,
            "chunks": self.chunks,
            "sources": self.sources,
            "seconds": round(self.seconds, 3),
        }


def copy_index(src: Store, dst: Location) -> CopyReport:
    """Copy the index in ``src`` to ``dst``, which must not hold an index yet."""
    started = time.perf_counter()
    if index_exists(dst):
        raise InvalidValue(f"an index already exists at {dst}; copy into a new place")
    made_folder = dst.folder is not None and not dst.folder.exists()
    made_schema = dst.folder is None and not _schema_exists(dst)
    if dst.folder is not None:
        if dst.folder.exists() and not dst.folder.is_dir():
            raise InvalidValue(f"{dst.folder} is a file, not a folder for an index")
        dst.folder.mkdir(parents=True, exist_ok=True)
    try:
        target = Store.create(dst, src.settings())  # on PostgreSQL, all or nothing
    except BaseException:
        if made_folder and dst.folder is not None:
            shutil.rmtree(dst.folder, ignore_errors=True)
        raise
    report = CopyReport(str(src.location), str(dst))
    try:
        _copy_rows(src, target, report)
        vectors = vectors_for(target, target.settings(), writer_lock(target))
        vectors.rebuild()
    except BaseException:
        target.close()
        _remove(dst, made_folder or made_schema)
        raise
    target.close()
    report.seconds = time.perf_counter() - started
    log.info("copied %d documents (%d chunks) to %s", report.documents, report.chunks, dst)
    return report


def _copy_rows(src: Store, dst: Store, report: CopyReport) -> None:
    dim = src.embedding_dim()
    with Session(dst.engine) as s, s.begin():
        if dim is not None:
            writer.record_dimension(s, dst.backend, dim)
            if isinstance(dst.backend, PostgresBackend):
                # built once at the end: faster than growing the graph row by row
                s.execute(text(f"DROP INDEX IF EXISTS {HNSW_INDEX}"))
        for key in _COPIED_META:
            value = src.meta(key)
            if value is not None:
                s.add(Meta(key=key, value=value))
        report.sources = _copy_table(src, s, "sources")
        report.documents = _copy_table(src, s, "documents")
        report.chunks = _copy_table(src, s, "chunks")
        if isinstance(dst.backend, PostgresBackend):
            for table in ("sources", "documents", "chunks"):
                s.execute(
                    text(
                        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                        f"coalesce((SELECT max(id) FROM {table}), 0) + 1, false)"
                    )
                )
        writer.bump_generation(s)


def _copy_table(src: Store, s: Session, name: str) -> int:
    table = Base.metadata.tables[name]
    n = 0
    with src.engine.connect() as conn:
        streamed = conn.execution_options(stream_results=True, yield_per=COPY_BATCH)
        result = streamed.execute(select(table).order_by(table.c.id))
        while rows := result.fetchmany(COPY_BATCH):
            s.execute(insert(table), [r._asdict() for r in rows])
            n += len(rows)
    return n


def _schema_exists(dst: Location) -> bool:
    probe = Store.connect(dst)
    try:
        with probe.engine.connect() as conn:
            found = conn.execute(
                text("SELECT 1 FROM pg_namespace WHERE nspname = :s"), {"s": dst.schema}
            )
            return found.first() is not None
    finally:
        probe.close()


def _remove(dst: Location, made: bool) -> None:
    """Undo a failed copy: what it created at ``dst`` (the folder or schema, if it made
    them; else only the index's own files or tables: creating the index refused a
    schema that already had tables of those names)."""
    if dst.folder is not None:
        if made:
            shutil.rmtree(dst.folder, ignore_errors=True)
        else:
            for name in _FOLDER_FILES:
                (dst.folder / name).unlink(missing_ok=True)
        return
    probe = Store.connect(dst)
    schema = f'"{dst.schema}"'
    try:
        with probe.engine.begin() as conn:
            if made:
                conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
            else:
                for table in ("chunks", "documents", "sources", "meta"):
                    conn.exec_driver_sql(f"DROP TABLE IF EXISTS {schema}.{table} CASCADE")
                conn.exec_driver_sql(f"DROP FUNCTION IF EXISTS {schema}.chunks_tsv()")
    finally:
        probe.close()
