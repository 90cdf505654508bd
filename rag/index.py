"""An index folder: ingest documents into it incrementally and search it.

Layout of an index folder::

    index.db        SQLite: settings, sources, documents, chunks and their embeddings
    vectors.faiss   FAISS vectors keyed by chunk id (derived; rebuilt from index.db)
    write.lock      held by the one process writing

>>> index = Index.create("my-index")            # doctest: +SKIP
>>> index.add("docs/")                          # doctest: +SKIP
>>> index.search("how is BERT trained?", k=5)   # doctest: +SKIP
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from rag.embedder import Embedder, load_embedder
from rag.errors import (
    IndexCorrupt,
    IndexLocked,
    IndexMismatch,
    IndexNotFound,
    InvalidValue,
)
from rag.filters import Where
from rag.fusion import best_per_group, convex
from rag.ingest import Ingest, IngestReport, ProgressCallback
from rag.reranker import RERANK_DEPTH, Reranker
from rag.settings import Settings
from rag.store import Store, StoredChunk
from rag.vectors import FLAT, IVF, VectorIndex, ivf_lists

log = logging.getLogger(__name__)

DB_FILE = "index.db"
VECTORS_FILE = "vectors.faiss"
LOCK_FILE = "write.lock"
PID_FILE = "writer.pid"

# The embedder reads a few hundred tokens at most; longer queries are a mistake.
MAX_QUERY_CHARS = 10_000
SEARCH_MODES = ("hybrid", "dense", "lexical")
DEFAULT_MODE = "hybrid"
# How deep each retriever's ranking goes before fusion.
CANDIDATES = 100
# Weight of the dense side in hybrid fusion.
FUSION_ALPHA = 0.5


@dataclass(frozen=True)
class Hit:
    """A retrieved passage with where it came from."""

    chunk_id: int
    score: float
    doc_id: str
    source: str
    title: str
    text: str
    start: int
    end: int
    line_start: int
    line_end: int
    heading: str = ""
    page_start: int | None = None
    page_end: int | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def location(self) -> str:
        """``path:12-30`` (lines), with ``p.3`` for paged documents."""
        return location(self.doc_id, self.line_start, self.line_end, self.page_start, self.page_end)


def location(
    doc_id: str, line_start: int, line_end: int, page_start: int | None, page_end: int | None
) -> str:
    """Where a passage sits: ``doc:12-30``, with ``(p.3)`` or ``(pp.3-4)`` for pages."""
    lines = f"{line_start}" if line_start == line_end else f"{line_start}-{line_end}"
    where = f"{doc_id}:{lines}"
    if page_start is not None:
        pages = f"p.{page_start}" if page_start == page_end else f"pp.{page_start}-{page_end}"
        where += f" ({pages})"
    return where


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


WhereLike = Where | Mapping[str, Any] | None


class Index:
    """A folder holding one index. Use :meth:`create` or :meth:`open`.

    Reads (search, status) are safe from many threads and processes at once,
    including while another process writes. Writes take a per-folder file lock.
    """

    def __init__(self, path: Path, store: Store, embedder: Embedder | None = None) -> None:
        self.path = path
        self.store = store
        self.settings = store.settings()
        self._embedder = embedder
        self._vectors: VectorIndex | None = None
        self._generation = -1
        self._sync_lock = threading.RLock()
        # Rescores the fused candidates when set; see rag.reranker.
        self.reranker: Reranker | None = None

    # -- opening ------------------------------------------------------------

    @classmethod
    def create(
        cls,
        path: str | os.PathLike[str],
        settings: Settings | None = None,
        embedder: Embedder | None = None,
    ) -> Index:
        """Make a new, empty index folder (it may exist but must hold no index)."""
        folder = Path(path)
        if (folder / DB_FILE).exists():
            raise InvalidValue(f"an index already exists at {folder}; open it instead")
        if folder.exists() and not folder.is_dir():
            raise InvalidValue(f"{folder} is a file, not a folder for an index")
        settings = settings or Settings()
        if embedder is not None and embedder.name != settings.embedder:
            settings = settings.with_changes(embedder=embedder.name)
        folder.mkdir(parents=True, exist_ok=True)
        return cls(folder, Store.create(folder / DB_FILE, settings), embedder)

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        embedder: Embedder | str | None = None,
    ) -> Index:
        """Open an existing index; refuses an embedder other than the one that built it."""
        folder = Path(path)
        if not (folder / DB_FILE).is_file():
            raise IndexNotFound(
                f"no index at {folder}; create one with: rag index FOLDER --index {folder}"
            )
        store = Store.open(folder / DB_FILE)
        built_with = store.settings().embedder
        asked = embedder if isinstance(embedder, str) or embedder is None else embedder.name
        if asked is not None and asked != built_with:
            store.close()
            raise IndexMismatch(
                f"the index at {folder} was built with embedder {built_with!r}, not {asked!r}; "
                f"search it with {built_with!r} or index into a new folder"
            )
        return cls(folder, store, None if isinstance(embedder, str) else embedder)

    @classmethod
    def open_or_create(cls, path: str | os.PathLike[str], **settings: Any) -> Index:
        """Open the index at ``path``, or create it with ``Settings(**settings)``.

        For an existing index, the embedder and chunking given must match the ones it
        was built with; ``generator`` (only a default for answers) is then ignored.
        Settings passed as None are ignored.
        """
        given = {k: v for k, v in settings.items() if v is not None}
        if not (Path(path) / DB_FILE).is_file():
            return cls.create(path, Settings(**given))
        index = cls.open(path, given.get("embedder"))
        identity = index.settings.vector_identity()
        wrong = {k: v for k, v in given.items() if k in identity and identity[k] != v}
        if wrong:
            index.close()
            raise IndexMismatch(
                f"the index at {path} was built with {identity}, not {wrong}; "
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
        was indexed from it before is kept.
        """
        if not paths:
            raise InvalidValue("give at least one folder or file to index")
        started = time.perf_counter()
        report = IngestReport()
        with self._write_lock(lock_timeout):
            self._sync_vectors()
            ingest = Ingest(self.store, self.embedder, self.settings, self._committed)
            for target in paths:
                ingest.add_root(Path(target), report, progress)
            self._reshape_vectors()
            self._save_vectors()
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

    def _committed(self, removed: list[int], added: list[int], vectors: np.ndarray) -> None:
        """Mirror one committed ingest batch in the in-memory vectors."""
        with self._sync_lock:
            vecs = self._ensure_vector_index(vectors.shape[1] if len(added) else None)
            if vecs is not None:
                vecs.remove(np.asarray(removed, dtype=np.int64))
                vecs.add(np.asarray(added, dtype=np.int64), vectors)
            self._generation = self.store.generation()

    @contextmanager
    def _write_lock(self, timeout: float) -> Iterator[None]:
        from filelock import FileLock, Timeout

        lock = FileLock(str(self.path / LOCK_FILE), timeout=timeout)
        try:
            lock.acquire()
        except Timeout:
            pid = _read_pid(self.path / PID_FILE)
            raise IndexLocked(
                f"the index at {self.path} is being updated by process {pid}; "
                "wait for it to finish and try again"
            ) from None
        try:
            (self.path / PID_FILE).write_text(str(os.getpid()))
            yield
        finally:
            (self.path / PID_FILE).unlink(missing_ok=True)
            lock.release()

    # -- vectors ------------------------------------------------------------

    def _dim(self) -> int | None:
        return self.store.embedding_dim()

    def _ensure_vector_index(self, dim: int | None = None) -> VectorIndex | None:
        if self._vectors is None:
            dim = dim or self._dim()
            if dim is not None:
                self._vectors = VectorIndex(dim)
        return self._vectors

    def _refresh(self) -> None:
        """Catch up with committed writes before a search.

        If the vectors file turned out stale or damaged (a writer was killed), the
        healed copy is saved when no writer holds the lock, so the next process
        starts from a good file.
        """
        if not self._sync_vectors():
            return
        from filelock import FileLock, Timeout

        lock = FileLock(str(self.path / LOCK_FILE), timeout=0)
        try:
            lock.acquire()
        except Timeout:
            return  # a writer is at work; it saves the file when it is done
        try:
            self._sync_vectors()
            self._reshape_vectors()
            self._save_vectors()
            log.info("saved the healed %s", VECTORS_FILE)
        except OSError as e:  # a read-only index folder still searches
            log.warning("could not save the healed %s: %s", VECTORS_FILE, e)
        finally:
            lock.release()

    def _sync_vectors(self) -> bool:
        """Make the in-memory vectors match the database.

        Loads the FAISS file when there is one, then adds what the database has and
        the file lacks and drops what the file has and the database lost. Returns True
        when the file, as first loaded, had to be healed.
        """
        with self._sync_lock:
            initial = self._vectors is None
            generation = self.store.generation()
            if self._vectors is not None and generation == self._generation:
                return False
            db_ids = self.store.chunk_ids()
            dim = self._dim()
            if dim is None:
                self._vectors = None
                self._generation = generation
                return False
            changed = False
            if self._vectors is None:
                file = self.path / VECTORS_FILE
                if file.exists():
                    try:
                        self._vectors = VectorIndex.load(file, dim)
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

    def _reshape_vectors(self) -> bool:
        """Rebuild the vectors as the kind their number calls for; True if rebuilt.

        An IVF index is also retrained when the corpus has grown to need twice as many
        clusters as it was trained with. Vectors come from the database; nothing is
        embedded again.
        """
        with self._sync_lock:
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

    def _save_vectors(self) -> None:
        with self._sync_lock:
            file = self.path / VECTORS_FILE
            if self._vectors is None:
                file.unlink(missing_ok=True)
            else:
                self._vectors.save(file)

    def _file_kind(self) -> str:
        """The kind of the saved vectors file, read from its header without loading it."""
        file = self.path / VECTORS_FILE
        try:
            with file.open("rb") as f:
                head = f.read(4)
        except OSError:
            return "none"
        return IVF if head.startswith(b"IwF") else FLAT

    # -- search -------------------------------------------------------------

    def search(
        self, query: str, k: int = 5, mode: str = DEFAULT_MODE, where: WhereLike = None
    ) -> list[Hit]:
        """The ``k`` passages that best match ``query``, best first.

        ``mode`` is ``hybrid`` (dense and lexical rankings fused), ``dense`` (cosine
        similarity of embeddings) or ``lexical`` (BM25). Scores are comparable only
        within one mode. ``where`` (a :class:`Where` or a dict such as
        ``{"path": "guides/*.md", "type": "pdf", "year": 2020}``) restricts the search
        to the documents that match; the results are the best ``k`` among them.
        """
        return self.search_batch([query], k, mode, where)[0]

    def search_batch(
        self,
        queries: Sequence[str],
        k: int = 5,
        mode: str = DEFAULT_MODE,
        where: WhereLike = None,
    ) -> list[list[Hit]]:
        _check_queries(queries, k, mode)
        self._refresh()
        keep = max(k, RERANK_DEPTH) if self.reranker is not None else k
        depth = max(keep, CANDIDATES) if mode == "hybrid" else keep
        scope = self._scope(queries, mode, Where.of(where))
        rankings = [self.fuse(parts)[:keep] for parts in self._rankings(scope, None, depth)]
        rows = self.store.chunks(sorted({i for r in rankings for i, _ in r}))
        hits = [_ranked([_hit(rows[i], s) for i, s in r if i in rows]) for r in rankings]
        return [self._rerank(q, h, k) for q, h in zip(queries, hits)]

    def search_documents(
        self,
        queries: Sequence[str],
        k: int = 10,
        mode: str = DEFAULT_MODE,
        where: WhereLike = None,
    ) -> list[list[Hit]]:
        """Per query, up to ``k`` documents ranked by their best chunk (that chunk's hit).

        In hybrid mode each retriever's chunk ranking becomes a document ranking first,
        and the document rankings are fused.
        """
        _check_queries(queries, k, mode)
        self._refresh()
        scope = self._scope(queries, mode, Where.of(where))
        picks: list[list[tuple[int, float]]] = [[] for _ in queries]  # (best chunk, score)
        todo = list(range(len(queries)))
        keep = max(k, RERANK_DEPTH) if self.reranker is not None else k
        depth = max(keep * 4, CANDIDATES)
        while todo:
            rankings = self._rankings(scope, todo, depth)
            owner = self.store.chunk_documents(
                sorted({i for parts in rankings for part in parts for i, _ in part})
            )
            again = []
            for qi, parts in zip(todo, rankings):
                best_chunk: dict[int, int] = {}
                for part in parts:
                    for chunk_id, _ in part:
                        if chunk_id in owner:
                            best_chunk.setdefault(owner[chunk_id], chunk_id)
                ranked = self.fuse([best_per_group(part, owner) for part in parts])[:keep]
                picks[qi] = [(best_chunk[doc], score) for doc, score in ranked]
                if len(ranked) < keep and depth < scope.size:
                    again.append(qi)
            todo = again
            depth *= 4
        rows = self.store.chunks(sorted({c for p in picks for c, _ in p}))
        hits = [_ranked([_hit(rows[c], s) for c, s in p if c in rows]) for p in picks]
        return [self._rerank(q, h, k) for q, h in zip(queries, hits)]

    def _rerank(self, query: str, hits: list[Hit], k: int) -> list[Hit]:
        """The top ``k`` hits, rescored by the reranker when there is one."""
        if self.reranker is None or not hits:
            return hits[:k]
        scores = self.reranker.score(query, [h.text for h in hits])
        return _ranked([replace(h, score=s) for h, s in zip(hits, scores)])[:k]

    def fuse(self, parts: list[list[tuple[Any, float]]]) -> list[tuple[Any, float]]:
        """One ranking from the retrievers' rankings (one part: returned as it is).

        Dense and lexical scores are each scaled to [0, 1] over the candidates and
        averaged (``FUSION_ALPHA`` weighs the dense side). On SciFact train this beat
        reciprocal rank fusion: nDCG@10 0.744 against 0.727 (scripts/bench_retrieval.py).
        """
        if len(parts) == 1:
            return parts[0]
        dense, lexical = parts
        return convex(dense, lexical, FUSION_ALPHA)

    def _scope(self, queries: Sequence[str], mode: str, where: Where | None) -> _Scope:
        """What every retrieval round of one call shares: query vectors, allowed chunks."""
        among = self.store.chunk_ids_where(where) if where is not None else None
        vecs = self._vectors
        size = len(among) if among is not None else len(vecs) if vecs is not None else 0
        dense = mode in ("dense", "hybrid") and vecs is not None and len(vecs) > 0
        vectors = self.embedder.embed(list(queries)) if dense else None
        return _Scope(list(queries), mode, where, among, vectors, size)

    def _rankings(
        self, scope: _Scope, rows: list[int] | None, depth: int
    ) -> list[list[list[tuple[int, float]]]]:
        """Per query (all, or those at ``rows``), the chunk rankings of the retrievers
        that the mode uses, each ``depth`` deep."""
        picked = range(len(scope.texts)) if rows is None else rows
        out: list[list[list[tuple[int, float]]]] = [[] for _ in picked]
        if scope.mode in ("dense", "hybrid"):
            if scope.vectors is None or self._vectors is None:
                for ranking in out:
                    ranking.append([])
            else:
                scores, ids = self._vectors.search(
                    scope.vectors[list(picked)], max(1, min(depth, scope.size)), scope.among
                )
                for q, (srow, irow) in enumerate(zip(scores, ids)):
                    out[q].append([(int(i), float(s)) for s, i in zip(srow, irow) if i >= 0])
        if scope.mode in ("lexical", "hybrid"):
            for q, row in enumerate(picked):
                out[q].append(self.store.lexical_search(scope.texts[row], depth, scope.where))
        return out

    # -- health ---------------------------------------------------------------

    def check(self) -> list[str]:
        """Problems found in the index; empty when SQLite and FAISS agree and are sound."""
        problems = self.store.integrity_problems()
        if problems:
            return problems
        dim = self._dim()
        if dim is not None:
            bad = self.store.documents_with_bad_embeddings(dim)
            if bad:
                problems.append(f"{len(bad)} documents have chunks without a valid embedding")
        db_ids = self.store.chunk_ids()
        file = self.path / VECTORS_FILE
        if not file.exists():
            if len(db_ids):
                problems.append(f"{VECTORS_FILE} is missing ({len(db_ids)} chunks have no vector)")
            return problems
        if dim is None:
            return problems
        try:
            stored = VectorIndex.load(file, dim).ids()
        except IndexCorrupt as e:
            return [*problems, str(e)]
        missing = np.setdiff1d(db_ids, stored).size
        extra = np.setdiff1d(stored, db_ids).size
        if missing:
            problems.append(f"{VECTORS_FILE} lacks the vectors of {missing} chunks")
        if extra:
            problems.append(f"{VECTORS_FILE} holds {extra} vectors of chunks that no longer exist")
        return problems

    def repair(self, lock_timeout: float = 5.0) -> list[str]:
        """Restore consistency; returns what was done.

        The vectors file is rebuilt from the stored embeddings. Documents whose stored
        embeddings are unusable are dropped, and their files forgotten, so the next
        ``add`` of their folder reads and embeds them again.
        """
        damage = self.store.integrity_problems()
        if damage:
            raise IndexCorrupt(
                f"the database of {self.path} is damaged ({damage[0]}); it cannot be repaired "
                "in place: index the documents again into a new folder"
            )
        done: list[str] = []
        with self._write_lock(lock_timeout):
            dim = self._dim()
            bad = self.store.documents_with_bad_embeddings(dim) if dim is not None else []
            if bad:
                self.store.write(
                    [], remove_documents=bad, remove_sources=self.store.sources_of(bad)
                )
                done.append(f"dropped {len(bad)} documents with unusable embeddings; "
                            "index their folder again to restore them")  # fmt: skip
            with self._sync_lock:
                self._vectors = None
                self._generation = -1
                (self.path / VECTORS_FILE).unlink(missing_ok=True)
                self._sync_vectors()
                self._reshape_vectors()
                self._save_vectors()
            done.append(
                f"rebuilt {VECTORS_FILE} from {len(self.store.chunk_ids())} stored embeddings"
            )
        return done

    # -- status -------------------------------------------------------------

    def status(self) -> IndexStatus:
        counts = self.store.counts()
        vfile = self.path / VECTORS_FILE
        db_bytes = sum(p.stat().st_size for p in self.path.glob(DB_FILE + "*") if p.is_file())
        return IndexStatus(
            path=str(self.path),
            format_version=int(self.store.meta("format_version") or 0),
            settings=self.settings,
            documents=counts["documents"],
            chunks=counts["chunks"],
            sources=counts["sources"],
            roots=self.store.roots(),
            vectors=len(self._vectors) if self._vectors is not None else None,
            vector_index=self._vectors.kind if self._vectors is not None else self._file_kind(),
            database_bytes=db_bytes,
            vectors_bytes=vfile.stat().st_size if vfile.exists() else 0,
        )


@dataclass(frozen=True)
class _Scope:
    """One search call's queries, embedded once, and the chunks it may return."""

    texts: list[str]
    mode: str
    where: Where | None
    among: np.ndarray | None  # allowed chunk ids, when filtered
    vectors: np.ndarray | None  # query vectors, when the mode searches vectors
    size: int  # how many chunks can be returned at most


def _hit(row: StoredChunk, score: float) -> Hit:
    return Hit(
        chunk_id=row.id,
        score=score,
        doc_id=row.doc_id,
        source=row.source,
        title=row.title,
        text=row.text,
        start=row.start,
        end=row.end,
        line_start=row.line_start,
        line_end=row.line_end,
        heading=row.heading,
        page_start=row.page_start,
        page_end=row.page_end,
        metadata=row.metadata,
    )


def _ranked(hits: list[Hit]) -> list[Hit]:
    """Best first; equal scores in document order, so the ranking never depends on the
    order in which chunks happened to be added."""
    return sorted(hits, key=lambda h: (-round(h.score, 6), h.doc_id, h.start))


def _check_queries(queries: Sequence[str], k: int, mode: str = DEFAULT_MODE) -> None:
    if isinstance(k, bool) or not isinstance(k, int) or k <= 0:
        raise InvalidValue(f"k must be a whole number greater than 0, got {k!r}")
    if mode not in SEARCH_MODES:
        raise InvalidValue(f"search mode must be one of {', '.join(SEARCH_MODES)}, got {mode!r}")
    if not queries:
        raise InvalidValue("give at least one query")
    for q in queries:
        if not isinstance(q, str) or not q.strip():
            raise InvalidValue("a query must be non-empty text")
        if len(q) > MAX_QUERY_CHARS:
            raise InvalidValue(
                f"a query is {len(q)} characters long; the limit is {MAX_QUERY_CHARS}"
            )


def _read_pid(path: Path) -> str:
    try:
        return path.read_text().strip() or "unknown"
    except OSError:
        return "unknown"
