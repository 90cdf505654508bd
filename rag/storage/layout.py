"""What an index is made of, by where it lives: its writer lock and its vectors.

A folder: a file lock and FAISS vectors in ``vectors.faiss``. PostgreSQL: an advisory
lock that writers share, and pgvector's HNSW index, or, without pgvector, FAISS
vectors that each reader builds in memory from the stored embeddings.
"""

from __future__ import annotations

from rag.settings import Settings
from rag.storage.location import Location
from rag.storage.lock import AdvisoryLock, Lock, WriteLock
from rag.storage.pgvectors import PgVectors
from rag.storage.postgres import PostgresBackend
from rag.storage.store import DB_FILE, Store
from rag.storage.sync import VECTORS_FILE, SyncedVectors, Vectors


def index_exists(location: Location) -> bool:
    """Whether an index is at ``location`` (without creating anything there)."""
    if location.folder is not None:
        return (location.folder / DB_FILE).is_file()
    probe = Store.connect(location)
    try:
        return probe.exists()
    finally:
        probe.close()


def writer_lock(store: Store) -> Lock:
    if store.location.folder is not None:
        return WriteLock(store.location.folder)
    return AdvisoryLock(store.engine, store.location.schema, str(store.location))


def vectors_for(store: Store, settings: Settings, lock: Lock) -> Vectors:
    """FAISS in the folder's file, pgvector in PostgreSQL, or else FAISS in memory."""
    if store.location.folder is not None:
        return SyncedVectors(store.location.folder / VECTORS_FILE, store, settings, lock)
    if isinstance(store.backend, PostgresBackend) and store.backend.pgvector:
        return PgVectors(store, store.backend)
    return SyncedVectors(None, store, settings, lock)
