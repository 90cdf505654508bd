"""Numbered migrations: each brings an index database from one format to the next.

``MIGRATIONS[n]`` upgrades format ``n`` to ``n + 1``. They run in one transaction,
under the index's writer lock (see ``Store.open``), so two processes opening an old
index never both migrate it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from sqlalchemy import Connection

from rag.storage.schema import FTS_DDL

log = logging.getLogger(__name__)


def _add_lexical_index(conn: Connection) -> None:
    """Format 2 added the FTS5 lexical index; fill it from the existing chunks."""
    for stmt in FTS_DDL:
        conn.exec_driver_sql(stmt)
    conn.exec_driver_sql(
        "INSERT INTO chunks_fts(rowid, title, heading, text) "
        "SELECT c.id, d.title, c.heading, c.text FROM chunks c "
        "JOIN documents d ON d.id = c.document_id"
    )


def _one_document_per_file(conn: Connection) -> None:
    """Format 3 keys a file's document by the file, whatever folder it was indexed from.

    Before it, indexing ``docs/sub`` and then ``docs`` stored the files of ``sub/``
    twice. The oldest copy of each is kept; the vectors of the others are dropped
    when the vectors file next syncs with the database.
    """
    dupes = (
        "SELECT id FROM documents d WHERE kind != 'jsonl' AND EXISTS (SELECT 1 FROM "
        "documents o WHERE o.source = d.source AND o.kind != 'jsonl' AND o.id < d.id)"
    )
    removed = conn.exec_driver_sql(f"DELETE FROM chunks WHERE document_id IN ({dupes})").rowcount
    conn.exec_driver_sql(f"DELETE FROM documents WHERE id IN ({dupes})")
    conn.exec_driver_sql(
        "UPDATE meta SET value = CAST(CAST(value AS INTEGER) + 1 AS TEXT) WHERE key = 'generation'"
    )
    if removed:
        log.info("dropped %d chunks of files that were indexed twice", removed)


def _document_parts(conn: Connection) -> None:
    """Format 4 stores what a document's parts are (slides, sheets, chapters...) and
    their names; the documents indexed before it are in pages or have no parts (NULL)."""
    columns = {row[1] for row in conn.exec_driver_sql("PRAGMA table_info(documents)")}
    if "parts" not in columns:
        conn.exec_driver_sql("ALTER TABLE documents ADD COLUMN parts JSON")


MIGRATIONS: dict[int, Callable[[Connection], None]] = {
    1: _add_lexical_index,
    2: _one_document_per_file,
    3: _document_parts,
}


def migrate(conn: Connection, version: int, target: int) -> None:
    """Run the migrations from ``version`` up to ``target`` on ``conn`` (one transaction)."""
    for n in range(version, target):
        MIGRATIONS[n](conn)
    conn.exec_driver_sql("UPDATE meta SET value = ? WHERE key = 'format_version'", (str(target),))
