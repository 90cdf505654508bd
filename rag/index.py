"""An index: the facade that opens it, locks it for writing, and delegates.

An index lives in a folder or in a PostgreSQL database (``postgresql://...``, see
:mod:`rag.storage.location`). Layout of an index folder::

    index.db        SQLite: settings, sources, documents, chunks and their embeddings
    vectors.faiss   FAISS vectors keyed by chunk id (derived; rebuilt from index.db)
    write.lock      held by the one process writing

In PostgreSQL the same tables live in the index's schema, with a ``tsvector`` and a
pgvector HNSW index in place of FTS5 and the FAISS file; many processes may write.

Ingest is ``rag.ingest``, search ``rag.retrieval``, the database and the vectors
``rag.storage``; this class holds them together.

>>> index = Index.create("my-index")            # doctest: +SKIP
>>> index.add("docs/")                          # doctest: +SKIP
>>> index.search("how is BERT trained?", k=5)   # doctest: +SKIP
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Generator, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rag.errors import IndexCorrupt, IndexMismatch, IndexNotFound, InvalidValue
from rag.models.embedder import Embedder
from rag.models.registry import load_embedder
from rag.models.reranker import Reranker
from rag.models.tokenizers import describe_chunk_tokenizer
from rag.retrieval.fusion import DEFAULT_FUSION
from rag.retrieval.search import DEFAULT_MODE, Searcher
from rag.settings import Settings
from rag.storage.copy import CopyReport, copy_index
from rag.storage.layout import vectors_for, writer_lock
from rag.storage.location import Location
from rag.storage.lock import WriteLock
from rag.storage.removal import RemoveReport, remove_targets
from rag.storage.store import DB_FILE, Store
from rag.storage.sync import VECTORS_FILE
from rag.types import Hit, Where

if TYPE_CHECKING:
    from rag.ingest.pipeline import IngestReport, ProgressCallback

log = logging.getLogger(__name__)

# An update of a watched folder waits for another writer as long as it takes.
WAIT_FOREVER = -1.0

WhereLike = Where | Mapping[str, Any] | None
IndexLocation = str | os.PathLike[str] | Location


@dataclass(frozen=True)
class IndexStatus:
    path: str
    format_version: int
    settings: Settings
    documents: int
    chunks: int
    sources: int
    roots: list[str]
    vectors: int | None
    vector_index: str
    database_bytes: int
    vectors_bytes: int
    # what the stored vectors were computed in: ["bfloat16"], ["float32"] or both;
    # ["server"] when a server computed them
    embed_precision: list[str]
    # which tokenizer sized the chunks (rag.models.tokenizers.describe_chunk_tokenizer)
    chunk_tokenizer: str = ""


class Index:
    """One index, in a folder or a PostgreSQL schema. Use :meth:`create` or :meth:`open`.

    Reads (search, status) are safe from many threads and processes at once,
    including while another process writes. Writes to a folder take its file lock;
    in PostgreSQL many processes may write at once (see :mod:`rag.storage.postgres`).
    """

    def __init__(self, store: Store, embedder: Embedder | None = None) -> None:
        self.location = store.location
        # the index folder; None for an index in PostgreSQL
        self.path: Path | None = self.location.folder
        self.store = store
        self.settings = store.settings()
        self._embedder = embedder
        self.lock = writer_lock(store)
        self.vectors = vectors_for(store, self.settings, self.lock)
        # Rescores the fused candidates when set; see rag.models.reranker.
        self.reranker: Reranker | None = None
        self._searcher = Searcher(store, self.vectors, lambda: self.embedder, lambda: self.reranker)

    # -- opening ------------------------------------------------------------

    @classmethod
    def create(
        cls,
        path: IndexLocation,
        settings: Settings | None = None,
        embedder: Embedder | None = None,
    ) -> Index:
        """Make a new, empty index: in a folder (it may exist but must hold no index) or
        in a PostgreSQL schema (a URL; refused, as it is made, if it holds an index)."""
        location = Location.of(path)
        folder = location.folder
        if folder is not None:
            if (folder / DB_FILE).exists():
                raise InvalidValue(f"an index already exists at {folder}; open it instead")
            if folder.exists() and not folder.is_dir():
                raise InvalidValue(f"{folder} is a file, not a folder for an index")
        settings = settings or Settings()
        if embedder is not None and embedder.name != settings.embedder:
            settings = settings.with_changes(embedder=embedder.name)
        if folder is not None:
            folder.mkdir(parents=True, exist_ok=True)
        return cls(Store.create(location, settings), embedder)

    @classmethod
    def open(cls, path: IndexLocation, embedder: Embedder | str | None = None) -> Index:
        """Open an existing index; refuses an embedder other than the one that built it.

        An index of an older format is upgraded first, under the writer lock.
        """
        location = Location.of(path)
        missing = f"no index at {location}; create one with: rag index FOLDER --index {location}"
        if location.folder is not None and not (location.folder / DB_FILE).is_file():
            raise IndexNotFound(missing)  # connecting would make the file
        lock = WriteLock(location.folder) if location.folder is not None else None
        try:
            store = Store.open(location, lock)
        except IndexNotFound:
            raise IndexNotFound(missing) from None
        built_with = store.settings().embedder
        asked = embedder if isinstance(embedder, str) or embedder is None else embedder.name
        if asked is not None and asked != built_with:
            store.close()
            raise IndexMismatch(
                f"the index at {location} was built with embedder {built_with!r}, not "
                f"{asked!r}; search it with {built_with!r} or index into a new "
                f"{'folder' if location.folder is not None else 'schema'}"
            )
        return cls(store, None if isinstance(embedder, str) else embedder)

    @classmethod
    def open_or_create(cls, path: IndexLocation, **settings: Any) -> Index:
        """Open the index at ``path``, or create it with ``Settings(**settings)``.

        For an existing index, the embedder and chunking given must match the ones it
        was built with; ``generator`` (only a default for answers) is then ignored.
        Settings passed as None are ignored.
        """
        given = {k: v for k, v in settings.items() if v is not None}
        try:
            index = cls.open(path, given.get("embedder"))
        except IndexNotFound:
            return cls.create(path, Settings(**given))
        identity = index.settings.vector_identity()
        wrong = {k: v for k, v in given.items() if k in identity and identity[k] != v}
        if wrong:
            index.close()
            raise IndexMismatch(
                f"the index at {index.location} was built with {identity}, not {wrong}; "
                "index into a new folder to change them"
            )
        return index

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Index:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            self._embedder = load_embedder(self.settings.embedder)
        return self._embedder

    # -- ingest -------------------------------------------------------------

    def add(
        self,
        *paths: str | os.PathLike[str],
        progress: ProgressCallback | None = None,
        lock_timeout: float = 5.0,
    ) -> IngestReport:
        """Index folders, files or JSONL corpora; only new and changed documents are embedded.

        Documents that were indexed from one of ``paths`` and are gone now are removed.
        A file that cannot be read is reported in ``IngestReport.failed`` and whatever
        was indexed from it before is kept. A file is one document however it is
        reached: through a parent folder, a subfolder or a symbolic link.
        """
        # Imported here, not above: the readers pull in PDF and HTML libraries that
        # a search never needs.
        from rag.ingest.pipeline import Ingest, IngestReport

        if not paths:
            raise InvalidValue("give at least one folder or file to index")
        started = time.perf_counter()
        report = IngestReport()
        with self.lock.writing(lock_timeout):
            self.vectors.sync()
            ingest = Ingest(self.store, self.embedder, self.settings, self.vectors.committed)
            for target in paths:
                ingest.add_root(Path(target), report, progress)
            self.vectors.reshape()
            self.vectors.save()
        report.seconds = time.perf_counter() - started
        log.info(
            "indexed: %d added, %d updated, %d removed, %d unchanged, %d failed in %.1fs",
            report.added,
            report.updated,
            report.removed,
            report.unchanged,
            len(report.failed),
            report.seconds,
        )
        return report

    def watch(
        self,
        *paths: str | os.PathLike[str],
        progress: ProgressCallback | None = None,
        lock_timeout: float = 5.0,
    ) -> Generator[IngestReport, None, None]:
        """Index ``paths`` as ``add`` does, then again after each burst of changes under them.

        Yields the report of the first ingest, then one per update; runs until the
        generator is closed or interrupted. Updates go through ``add``, so only what
        changed is read and embedded, by the embedder loaded once, up front. The writer
        lock is held only while an ingest runs, so other processes may write to the
        index while the watch waits; an update waits for them as long as it takes.
        Raises ``ReadError`` when a watched path is gone. See :mod:`rag.ingest.watch`
        for what counts as a change.
        """
        from rag.ingest.watch import Watcher

        with Watcher([Path(p) for p in paths], ignore=self.path) as watcher:
            first = self.add(*paths, progress=progress, lock_timeout=lock_timeout)
            # Load the embedder now (its dimension needs the model), not at the first
            # update: the first run may have embedded nothing.
            log.debug("watching with a %d-dimensional embedder", self.embedder.dim)
            yield first
            for changed in watcher.bursts():
                log.info("%d paths changed under the watched ones", len(changed))
                yield self.add(*paths, lock_timeout=WAIT_FOREVER)

    def remove(
        self,
        targets: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
        lock_timeout: float = 5.0,
        by_id: bool = False,
    ) -> RemoveReport:
        """Remove documents by file, folder or document id; nothing is read or embedded.

        A target names documents by path first, else by document id (see
        :mod:`rag.storage.removal`). Their files are forgotten too, so the next ``add``
        of their folder reads them again. Targets that name nothing are listed in
        ``RemoveReport.unmatched``; the others are removed all the same, in one
        transaction. With ``by_id`` a target is only ever a document id.
        """
        if isinstance(targets, (str, os.PathLike)):
            targets = [targets]
        names = [os.fspath(t) for t in targets]
        if not names:
            raise InvalidValue("give at least one file, folder or document id to remove")
        started = time.perf_counter()
        with self.lock.writing(lock_timeout):
            report = remove_targets(self.store, self.vectors, names, by_id)
        report.seconds = time.perf_counter() - started
        log.info(
            "removed %d documents (%d chunks) and forgot %d files; %d targets matched nothing",
            len(report.documents), report.chunks, len(report.files), len(report.unmatched),
        )  # fmt: skip
        return report

    def copy_to(self, destination: IndexLocation, lock_timeout: float = 5.0) -> CopyReport:
        """Copy this index to a new folder or PostgreSQL schema; nothing is embedded."""
        with self.lock.hold(lock_timeout):
            return copy_index(self.store, Location.of(destination))

    # -- search -------------------------------------------------------------

    def search(
        self,
        query: str,
        k: int = 5,
        mode: str = DEFAULT_MODE,
        where: WhereLike = None,
        *,
        fusion: str = DEFAULT_FUSION,
    ) -> list[Hit]:
        """The ``k`` passages that best match ``query``, best first.

        ``mode`` is ``hybrid`` (dense and lexical rankings fused by the ``fusion``
        strategy, see :mod:`rag.retrieval.fusion`), ``dense`` (cosine similarity of
        embeddings) or ``lexical`` (BM25). Scores are comparable only within one mode.
        ``where`` (a :class:`Where` or a dict such as ``{"path": "guides/*.md", "type":
        "pdf", "year": 2020}``) restricts the search to the documents that match; the
        results are the best ``k`` among them.
        """
        return self.search_batch([query], k, mode, where, fusion=fusion)[0]

    def search_batch(
        self,
        queries: Sequence[str],
        k: int = 5,
        mode: str = DEFAULT_MODE,
        where: WhereLike = None,
        *,
        fusion: str = DEFAULT_FUSION,
    ) -> list[list[Hit]]:
        return self._searcher.passages(queries, k, mode, Where.of(where), fusion)

    def search_documents(
        self,
        queries: Sequence[str],
        k: int = 10,
        mode: str = DEFAULT_MODE,
        where: WhereLike = None,
        *,
        fusion: str = DEFAULT_FUSION,
    ) -> list[list[Hit]]:
        """Per query, up to ``k`` documents ranked by their best chunk (that chunk's hit)."""
        return self._searcher.documents(queries, k, mode, Where.of(where), fusion)

    # -- health ---------------------------------------------------------------

    def check(self) -> list[str]:
        """Problems found in the index; empty when SQLite and FAISS agree and are sound."""
        problems = self.store.integrity_problems()
        if problems:
            return problems
        dim = self.store.embedding_dim()
        if dim is not None:
            bad = self.store.documents_with_bad_embeddings(dim)
            if bad:
                problems.append(f"{len(bad)} documents have chunks without a valid embedding")
        return problems + self.vectors.problems()

    def repair(self, lock_timeout: float = 5.0) -> list[str]:
        """Restore consistency; returns what was done.

        The vectors file is rebuilt from the stored embeddings. Documents whose stored
        embeddings are unusable are dropped, and their files forgotten, so the next
        ``add`` of their folder reads and embeds them again.
        """
        damage = self.store.integrity_problems()
        if damage:
            raise IndexCorrupt(
                f"the database of {self.location} is damaged ({damage[0]}); it cannot be repaired "
                "in place: index the documents again into a new folder"
            )
        done: list[str] = []
        with self.lock.hold(lock_timeout):
            dim = self.store.embedding_dim()
            bad = self.store.documents_with_bad_embeddings(dim) if dim is not None else []
            if bad:
                self.store.write(
                    [], remove_documents=bad, remove_sources=self.store.sources_of(bad)
                )
                done.append(f"dropped {len(bad)} documents with unusable embeddings; "
                            "index their folder again to restore them")  # fmt: skip
            self.vectors.rebuild()
            what = VECTORS_FILE if self.path is not None else "the vector index"
            done.append(f"rebuilt {what} from {len(self.store.chunk_ids())} stored embeddings")
        return done

    # -- status -------------------------------------------------------------

    def status(self) -> IndexStatus:
        counts = self.store.counts()
        vecs = self.vectors.current
        return IndexStatus(
            path=str(self.location),
            format_version=int(self.store.meta("format_version") or 0),
            settings=self.settings,
            documents=counts["documents"],
            chunks=counts["chunks"],
            sources=counts["sources"],
            roots=self.store.roots(),
            vectors=len(vecs) if vecs is not None else None,
            vector_index=vecs.kind if vecs is not None else self.vectors.file_kind(),
            database_bytes=self.store.bytes_used(),
            vectors_bytes=self.vectors.bytes_used(),
            embed_precision=self.store.precisions(),
            chunk_tokenizer=describe_chunk_tokenizer(self.settings),
        )
