"""The FAISS vectors of an index kept in step with its database.

The database is the source of truth; ``vectors.faiss`` is derived from it (on
PostgreSQL without pgvector there is no file: each reader builds the vectors in
memory from the stored embeddings and keeps them in step the same way). Before a
search the in-memory vectors catch up with committed writes: what the database has
and the vectors lack is added from the stored embeddings, what the vectors have and
the database lost is dropped. A stale or damaged file is healed, never re-embedded.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Protocol

import numpy as np

from rag.errors import IndexCorrupt
from rag.settings import Settings
from rag.storage.lock import Lock
from rag.storage.store import Store
from rag.storage.vectors import FLAT, IVF, VectorIndex, ivf_lists

log = logging.getLogger(__name__)

VECTORS_FILE = "vectors.faiss"


class DenseIndex(Protocol):
    """What a search needs of the vectors: their kind, number, and a search."""

    @property
    def kind(self) -> str: ...

    @property
    def dim(self) -> int: ...

    def __len__(self) -> int: ...

    def search(
        self, queries: np.ndarray, k: int, among: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]: ...


class Vectors(Protocol):
    """The dense side of an index, kept in step with its database: FAISS in a file or
    in memory (``SyncedVectors``), or pgvector inside PostgreSQL."""

    @property
    def current(self) -> DenseIndex | None: ...

    def refresh(self) -> None: ...

    def sync(self) -> bool: ...

    def committed(self, removed: list[int], added: list[int], vectors: np.ndarray) -> None: ...

    def reshape(self) -> bool: ...

    def save(self) -> None: ...

    def rebuild(self) -> None: ...

    def file_kind(self) -> str: ...

    def problems(self) -> list[str]: ...

    def bytes_used(self) -> int: ...


class SyncedVectors:
    """FAISS vectors loaded on first use and kept in sync: from ``file`` when there is
    one (an index folder), else built in memory from the stored embeddings."""

    def __init__(self, file: Path | None, store: Store, settings: Settings, lock: Lock) -> None:
        self.file = file
        self.store = store
        self.settings = settings
        self.lock = lock
        self._vectors: VectorIndex | None = None
        self._generation = -1
        self._guard = threading.RLock()

    @property
    def current(self) -> VectorIndex | None:
        """The vectors as last synced (None while the index holds no chunk)."""
        return self._vectors

    def committed(self, removed: list[int], added: list[int], vectors: np.ndarray) -> None:
        """Mirror one committed write batch in the in-memory vectors."""
        if self.file is None:
            # other processes may write too (PostgreSQL): the next search compares ids
            self._generation = -1
            return
        with self._guard:
            if self._vectors is None and len(added):
                self._vectors = VectorIndex(vectors.shape[1])
            if self._vectors is not None:
                self._vectors.remove(np.asarray(removed, dtype=np.int64))
                self._vectors.add(np.asarray(added, dtype=np.int64), vectors)
            self._generation = self.store.generation()

    def refresh(self) -> None:
        """Catch up with committed writes before a search.

        If the vectors file turned out stale or damaged (a writer was killed), the
        healed copy is saved when no writer holds the lock, so the next process
        starts from a good file.
        """
        if not self.sync() or self.file is None:
            return
        with self.lock.try_hold() as held:
            if not held:
                return  # a writer is at work; it saves the file when it is done
            try:
                self.sync()
                self.reshape()
                self.save()
                log.info("saved the healed %s", self.file.name)
            except OSError as e:  # a read-only index folder still searches
                log.warning("could not save the healed %s: %s", self.file.name, e)

    def bytes_used(self) -> int:
        return self.file.stat().st_size if self.file is not None and self.file.exists() else 0

    def sync(self) -> bool:
        """Make the in-memory vectors match the database.

        Loads the FAISS file when there is one, then adds what the database has and
        the file lacks and drops what the file has and the database lost. Returns True
        when the file, as first loaded, had to be healed.
        """
        with self._guard:
            initial = self._vectors is None
            generation = self.store.generation()
            if self._vectors is not None and generation == self._generation:
                return False
            db_ids = self.store.chunk_ids()
            dim = self.store.embedding_dim()
            if dim is None:
                self._vectors = None
                self._generation = generation
                return False
            changed = False
            if self._vectors is None:
                if self.file is not None and self.file.exists():
                    try:
                        self._vectors = VectorIndex.load(self.file, dim)
                    except IndexCorrupt as e:
                        log.warning("%s; rebuilding it from the database", e)
                if self._vectors is None:
                    self._vectors = VectorIndex(dim)
                    changed = True
            have = self._vectors.ids()
            missing = np.setdiff1d(db_ids, have, assume_unique=True)
            extra = np.setdiff1d(have, db_ids, assume_unique=True)
            if len(extra):
                self._vectors.remove(extra)
            for ids, vecs in self.store.embeddings(missing.tolist()) if len(missing) else ():
                self._vectors.add(ids, vecs)
            if len(missing) or len(extra):
                log.info("vectors synced: %d added, %d dropped", len(missing), len(extra))
                changed = True
            self._generation = generation
            return initial and changed

    def _wanted_kind(self, n: int) -> str:
        setting = self.settings.vector_index
        if setting != "auto":
            return setting
        threshold = self.settings.ivf_threshold
        current = self._vectors.kind if self._vectors is not None else FLAT
        # hysteresis: an index near the threshold does not flip back and forth
        if current == IVF:
            return IVF if n >= threshold // 2 else FLAT
        return IVF if n >= threshold else FLAT

    def reshape(self) -> bool:
        """Rebuild the vectors as the kind their number calls for; True if rebuilt.

        An IVF index is also retrained when the corpus has grown to need twice as many
        clusters as it was trained with. Vectors come from the database; nothing is
        embedded again.
        """
        with self._guard:
            vecs = self._vectors
            if vecs is None:
                return False
            n, want = len(vecs), self._wanted_kind(len(vecs))
            if want == vecs.kind and (want == FLAT or ivf_lists(n) < 2 * vecs.lists):
                return False
            started = time.perf_counter()
            if want == IVF:
                lists = ivf_lists(n)
                new = VectorIndex.ivf(vecs.dim, self.store.sample_embeddings(64 * lists), lists)
            else:
                new = VectorIndex(vecs.dim)
            for ids, batch in self.store.embeddings():
                new.add(ids, batch)
            self._vectors = new
            log.info(
                "vectors rebuilt as %s (%d vectors, %d lists) in %.1fs",
                want, len(new), new.lists, time.perf_counter() - started,
            )  # fmt: skip
            return True

    def save(self) -> None:
        if self.file is None:
            return
        with self._guard:
            if self._vectors is None:
                self.file.unlink(missing_ok=True)
            else:
                self._vectors.save(self.file)

    def rebuild(self) -> None:
        """Forget the file and build the vectors anew from the stored embeddings."""
        with self._guard:
            self._vectors = None
            self._generation = -1
            if self.file is not None:
                self.file.unlink(missing_ok=True)
            self.sync()
            self.reshape()
            self.save()

    def file_kind(self) -> str:
        """The kind of the saved vectors file, read from its header without loading it."""
        if self.file is None:
            return self._vectors.kind if self._vectors is not None else FLAT
        try:
            with self.file.open("rb") as f:
                head = f.read(4)
        except OSError:
            return "none"
        return IVF if head.startswith(b"IwF") else FLAT

    def problems(self) -> list[str]:
        """How the saved file disagrees with the database (empty when it agrees)."""
        if self.file is None:
            return []
        db_ids = self.store.chunk_ids()
        dim = self.store.embedding_dim()
        name = self.file.name
        if not self.file.exists():
            if len(db_ids) == 0:
                return []
            return [f"{name} is missing ({len(db_ids)} chunks have no vector)"]
        if dim is None:
            return []
        try:
            stored = VectorIndex.load(self.file, dim).ids()
        except IndexCorrupt as e:
            return [str(e)]
        problems = []
        missing = np.setdiff1d(db_ids, stored).size
        extra = np.setdiff1d(stored, db_ids).size
        if missing:
            problems.append(f"{name} lacks the vectors of {missing} chunks")
        if extra:
            problems.append(f"{name} holds {extra} vectors of chunks that no longer exist")
        return problems
