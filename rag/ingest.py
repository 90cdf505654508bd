"""Ingest: reading files into an index's store, embedding only what changed.

Files whose size and mtime are unchanged are not read at all. Of the rest, content
hashes decide which documents are new, changed or unchanged, and documents gone from
an indexed folder are removed. Work is committed in batches, each in one transaction.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rag import readers
from rag.chunking import Chunk, chunk_documents
from rag.documents import Document
from rag.embedder import Embedder
from rag.errors import ReadError
from rag.settings import Settings
from rag.store import DocumentWrite, SourceState, Store, StoredDocument

log = logging.getLogger(__name__)

# A batch is embedded and committed together; a crash loses at most the batch in flight.
BATCH_CHARS = 1_000_000
BATCH_DOCS = 2000


@dataclass(frozen=True)
class Failure:
    path: str
    reason: str


@dataclass
class IngestReport:
    added: int = 0
    updated: int = 0
    removed: int = 0
    unchanged: int = 0
    chunks: int = 0
    skipped: list[readers.Skipped] = field(default_factory=list)
    failed: list[Failure] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failed


@dataclass(frozen=True)
class Progress:
    files_done: int
    files_total: int
    chunks_embedded: int


ProgressCallback = Callable[[Progress], None]
CommitCallback = Callable[[list[int], list[int], np.ndarray], None]


class Ingest:
    """Adds folders, files and JSONL corpora to a store.

    ``on_commit(removed_ids, added_ids, vectors)`` is called after each committed
    batch, so the caller can mirror it in its vector index.
    """

    def __init__(
        self, store: Store, embedder: Embedder, settings: Settings, on_commit: CommitCallback
    ) -> None:
        self.store = store
        self.embedder = embedder
        self.settings = settings
        self.on_commit = on_commit

    def add_root(
        self, target: Path, report: IngestReport, progress: ProgressCallback | None
    ) -> None:
        try:
            root = target.resolve(strict=True)
            files, skipped = readers.discover(root)
        except (ReadError, OSError) as e:
            report.failed.append(Failure(str(target), getattr(e, "reason", None) or str(e)))
            return
        report.skipped += skipped
        key = str(root)
        base = root if root.is_dir() else root.parent
        known_sources = self.store.sources(key)
        known_docs = self.store.documents(key)
        docs_per_source = Counter(d.source for d in known_docs.values())
        kept_sources: set[str] = set()  # unchanged or unreadable: keep their documents
        seen: dict[str, str] = {}  # doc_id -> source, for this run
        batch = _Batch()
        for n, file in enumerate(files, 1):
            spath = str(file)
            try:
                st = file.stat()
            except OSError as e:
                report.failed.append(Failure(spath, e.strerror or str(e)))
                kept_sources.add(spath)
                continue
            state = SourceState(spath, key, st.st_size, st.st_mtime_ns)
            prev = known_sources.get(spath)
            if prev is not None and (prev.size, prev.mtime_ns) == (state.size, state.mtime_ns):
                kept_sources.add(spath)
                report.unchanged += docs_per_source[spath]
            elif self._read_into(batch, file, base, key, seen, known_docs, report):
                batch.finish_source(state)
            else:
                kept_sources.add(spath)
            if progress:
                progress(Progress(n, len(files), report.chunks))
        gone = [
            d.pk
            for d in known_docs.values()
            if d.doc_id not in seen and d.source not in kept_sources
        ]
        gone_sources = [
            p for p in known_sources if p not in kept_sources and p not in batch.sources_seen
        ]
        batch.remove_documents = gone
        batch.remove_sources = gone_sources
        self._flush(batch, key, report)
        report.removed += len(gone)

    def _read_into(
        self,
        batch: _Batch,
        file: Path,
        base: Path,
        root: str,
        seen: dict[str, str],
        known_docs: dict[str, StoredDocument],
        report: IngestReport,
    ) -> bool:
        """Queue the new and changed documents of one file; False if it could not be read."""
        spath = str(file)
        try:
            for item in readers.read(file, file.relative_to(base).as_posix()):
                if isinstance(item, ReadError):
                    report.failed.append(Failure(item.path, item.reason))
                    continue
                if item.doc_id in seen:
                    report.failed.append(
                        Failure(
                            spath,
                            f"duplicate document id {item.doc_id!r} "
                            f"(also in {seen[item.doc_id]}); the first one is kept",
                        )
                    )
                    continue
                seen[item.doc_id] = spath
                old = known_docs.get(item.doc_id)
                if old is not None and old.content_hash == item.content_hash:
                    report.unchanged += 1
                    continue
                batch.add(item, updated=old is not None)
                if batch.full():
                    self._flush(batch, root, report)
        except ReadError as e:
            report.failed.append(Failure(e.path, e.reason))
            return False
        return True

    def _flush(self, batch: _Batch, root: str, report: IngestReport) -> None:
        if batch.empty():
            return
        embedder = self.embedder
        all_chunks = chunk_documents(
            batch.docs, embedder, self.settings.chunk_tokens, self.settings.chunk_overlap
        )
        texts = [embed_text(d, c) for d, cs in zip(batch.docs, all_chunks) for c in cs]
        vectors = embedder.embed(texts) if texts else np.zeros((0, 0), dtype=np.float32)
        writes = []
        offset = 0
        for doc, chunks in zip(batch.docs, all_chunks):
            writes.append(DocumentWrite(doc, root, chunks, vectors[offset : offset + len(chunks)]))
            offset += len(chunks)
        removed, added = self.store.write(
            writes, batch.sources, batch.remove_documents, batch.remove_sources
        )
        self.on_commit(removed, added, vectors)
        report.added += batch.added
        report.updated += batch.updated
        report.chunks += len(texts)
        batch.clear()


class _Batch:
    """Documents waiting to be chunked, embedded and committed together."""

    def __init__(self) -> None:
        self.sources_seen: set[str] = set()
        self.clear()

    def clear(self) -> None:
        self.docs: list[Document] = []
        self.sources: list[SourceState] = []
        self.remove_documents: list[int] = []
        self.remove_sources: list[str] = []
        self.added = 0
        self.updated = 0
        self.chars = 0

    def add(self, doc: Document, *, updated: bool) -> None:
        self.docs.append(doc)
        self.chars += len(doc.text)
        if updated:
            self.updated += 1
        else:
            self.added += 1

    def finish_source(self, state: SourceState) -> None:
        """Record a file as read; committed with the batch holding its last document."""
        self.sources.append(state)
        self.sources_seen.add(state.path)

    def full(self) -> bool:
        return len(self.docs) >= BATCH_DOCS or self.chars >= BATCH_CHARS

    def empty(self) -> bool:
        return not (self.docs or self.sources or self.remove_documents or self.remove_sources)


def embed_text(doc: Document, chunk: Chunk) -> str:
    """What the embedder sees: the chunk with its document title and section heading."""
    context = [doc.title] if doc.title else []
    if chunk.heading:
        parts = chunk.heading.split(" > ")
        if parts and parts[0] == doc.title:
            parts = parts[1:]
        context += parts
    context_line = " > ".join(context)
    if context_line and not chunk.text.startswith(context_line):
        return f"{context_line}\n{chunk.text}"
    return chunk.text
