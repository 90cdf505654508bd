"""Ingest: reading files into an index's store, embedding only what changed.

Files whose size and mtime are unchanged are not read at all. Of the rest, content
hashes decide which documents are new, changed or unchanged, and documents gone from
an indexed folder are removed. Work is committed in batches, each in one transaction.

A file is known by its resolved path, so it is one document however it is reached:
through the folder it was first indexed from, a parent or a subfolder of it, or a
symbolic link. Reached through another folder, a document keeps its row (and its
vectors, when its content is unchanged); when it is read again its id becomes the
path relative to the folder it was reached from this time.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rag.errors import ReadError
from rag.ingest import readers
from rag.ingest.chunking import chunk_documents
from rag.ingest.discovery import Skipped, discover
from rag.models.embedder import Embedder, check_dim
from rag.models.tokenizers import chunk_tokenizer
from rag.settings import Settings
from rag.storage.records import DocumentWrite, SourceState, StoredDocument
from rag.storage.store import Store
from rag.types import Chunk, Document

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
    skipped: list[Skipped] = field(default_factory=list)
    failed: list[Failure] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failed

    def to_dict(self) -> dict[str, Any]:
        """The counts, then the failures, as ``rag index --json`` prints them."""
        return {
            "added": self.added,
            "updated": self.updated,
            "removed": self.removed,
            "unchanged": self.unchanged,
            "skipped": len(self.skipped),
            "failed": len(self.failed),
            "chunks_embedded": self.chunks,
            "seconds": round(self.seconds, 3),
            "failures": [{"path": f.path, "reason": f.reason} for f in self.failed],
        }


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
        self.tokenizer = chunk_tokenizer(settings, embedder)

    def add_root(
        self, target: Path, report: IngestReport, progress: ProgressCallback | None
    ) -> None:
        try:
            root = target.resolve(strict=True)
            found, skipped = discover(root)
        except (ReadError, OSError) as e:
            report.failed.append(Failure(str(target), getattr(e, "reason", None) or str(e)))
            return
        report.skipped += skipped
        key = str(root)
        base = root if root.is_dir() else root.parent
        files = self._distinct_files(found, report)
        paths = [str(real) for _, real in files]
        known_sources = self.store.sources(key, paths)
        known = self.store.documents(key, paths)
        by_source: dict[str, list[StoredDocument]] = {}
        for d in known:
            by_source.setdefault(d.source, []).append(d)
        kept_sources: set[str] = set()  # unchanged or unreadable: keep their documents
        run = _Run(seen={}, kept=set())
        batch = _Batch()
        for n, (file, real) in enumerate(files, 1):
            spath = str(real)
            try:
                st = real.stat()
            except OSError as e:
                report.failed.append(Failure(str(file), e.strerror or str(e)))
                kept_sources.add(spath)
                continue
            state = SourceState(spath, key, st.st_size, st.st_mtime_ns)
            prev = known_sources.get(spath)
            if prev is not None and (prev.size, prev.mtime_ns) == (state.size, state.mtime_ns):
                kept_sources.add(spath)
                report.unchanged += len(by_source.get(spath, ()))
            elif self._read_into(batch, file, real, base, key, run, by_source, report):
                batch.finish_source(state)
            else:
                kept_sources.add(spath)
            if progress:
                progress(Progress(n, len(files), report.chunks))
        read = set(paths)

        def gone(root_of: str, source: str) -> bool:
            # Another folder's document goes only when its file is gone from disk.
            if source in kept_sources:
                return False
            return root_of == key or source in read or not os.path.exists(source)

        batch.remove_documents = [
            d.pk for d in known if d.pk not in run.kept and gone(d.root, d.source)
        ]
        batch.remove_sources = [
            p
            for p, src in known_sources.items()
            if p not in batch.sources_seen and gone(src.root, p)
        ]
        removed = len(batch.remove_documents)
        self._flush(batch, key, report)
        report.removed += removed

    @staticmethod
    def _distinct_files(found: list[Path], report: IngestReport) -> list[tuple[Path, Path]]:
        """(path as found, resolved path) of each file, each real file once: reached by
        its own path where it was, else by the first link to it."""
        reached: dict[Path, list[Path]] = {}
        for file in found:
            try:
                reached.setdefault(file.resolve(strict=True), []).append(file)
            except OSError as e:
                report.failed.append(Failure(str(file), e.strerror or str(e)))
        files: list[tuple[Path, Path]] = []
        for real, paths in reached.items():
            chosen = real if real in paths else paths[0]
            files.append((chosen, real))
            for other in paths:
                if other != chosen:
                    report.skipped.append(Skipped(str(other), f"same file as {chosen}"))
        return sorted(files)

    def _read_into(
        self,
        batch: _Batch,
        file: Path,
        real: Path,
        base: Path,
        root: str,
        run: _Run,
        by_source: dict[str, list[StoredDocument]],
        report: IngestReport,
    ) -> bool:
        """Queue the new and changed documents of one file; False if it could not be read."""
        spath = str(real)
        stored = by_source.get(spath, [])
        try:
            for item in readers.read(real, file.relative_to(base).as_posix()):
                if isinstance(item, ReadError):
                    report.failed.append(Failure(item.path, item.reason))
                    continue
                if item.doc_id in run.seen:
                    report.failed.append(
                        Failure(
                            spath,
                            f"duplicate document id {item.doc_id!r} "
                            f"(also in {run.seen[item.doc_id]}); the first one is kept",
                        )
                    )
                    continue
                run.seen[item.doc_id] = spath
                old = _stored_as(item, stored)
                if old is not None:
                    run.kept.add(old.pk)
                    if old.content_hash == item.content_hash:
                        report.unchanged += 1
                        continue
                batch.add(item, old.pk if old is not None else None)
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
            batch.docs, self.tokenizer, self.settings.chunk_tokens, self.settings.chunk_overlap
        )
        texts = [embed_text(d, c) for d, cs in zip(batch.docs, all_chunks) for c in cs]
        if texts:  # refused before the embedding, which is the costly part
            check_dim(embedder.name, embedder.dim, self.store.embedding_dim())
        vectors = embedder.embed(texts) if texts else np.zeros((0, 0), dtype=np.float32)
        writes: list[DocumentWrite] = []
        offset = 0
        for doc, chunks in zip(batch.docs, all_chunks):
            part = vectors[offset : offset + len(chunks)]
            writes.append(DocumentWrite(doc, root, chunks, part, batch.pks[len(writes)]))
            offset += len(chunks)
        removed, added = self.store.write(
            writes,
            batch.sources,
            batch.remove_documents,
            batch.remove_sources,
            precision=getattr(embedder, "precision", "float32"),
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
        self.pks: list[int | None] = []  # the row each document replaces, if any
        self.sources: list[SourceState] = []
        self.remove_documents: list[int] = []
        self.remove_sources: list[str] = []
        self.added = 0
        self.updated = 0
        self.chars = 0

    def add(self, doc: Document, pk: int | None) -> None:
        self.docs.append(doc)
        self.pks.append(pk)
        self.chars += len(doc.text)
        if pk is not None:
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


@dataclass
class _Run:
    """What one root's ingest has met so far."""

    seen: dict[str, str]  # doc id -> the file it came from
    kept: set[int]  # rows of stored documents met again (changed or not)


def _stored_as(doc: Document, stored: list[StoredDocument]) -> StoredDocument | None:
    """The stored document that ``doc`` (read from a file) is, if it was indexed before.

    A JSONL line is known by its id within its file; any other file holds one document,
    whatever id it was stored under (the id depends on the folder it was reached from).
    """
    if doc.type == "jsonl":
        return next((d for d in stored if d.doc_id == doc.doc_id), None)
    return stored[0] if stored else None


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
