"""Removing documents on request: what each target names, and the report of a removal.

A target is a path or a document id. As a path it is resolved the way the ingest
stores files (the file need not exist any more) and names the documents read from
that file, from files under that folder, or indexed from it, with the files recorded
as read there. A target that names nothing by path is taken as a document id, as
search results show it (for a JSONL corpus, the line's id): it names every document
stored under that id, and their files.

>>> removed = RemoveReport([RemovedDocument("a.md", "/docs/a.md")], chunks=3)
>>> removed.to_dict()["chunks"], removed.ok
(3, True)
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rag.storage.records import StoredDocument
from rag.storage.store import Store
from rag.storage.sync import Vectors

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RemovedDocument:
    doc_id: str
    source: str


@dataclass
class RemoveReport:
    """What a removal did. ``files`` were forgotten: the next ingest of their folder
    reads them again. ``unmatched`` lists the targets that named nothing."""

    documents: list[RemovedDocument] = field(default_factory=list)
    chunks: int = 0
    files: list[str] = field(default_factory=list)
    unmatched: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.unmatched

    def to_dict(self) -> dict[str, Any]:
        return {
            "removed": len(self.documents),
            "chunks": self.chunks,
            "documents": [asdict(d) for d in self.documents],
            "files": self.files,
            "unmatched": self.unmatched,
            "seconds": round(self.seconds, 3),
        }


@dataclass
class Removal:
    """The rows a list of targets names in one store, each once."""

    documents: dict[int, StoredDocument] = field(default_factory=dict)
    files: set[str] = field(default_factory=set)
    unmatched: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.documents or self.files)

    def report(self) -> RemoveReport:
        docs = sorted(self.documents.values(), key=lambda d: (d.source, d.doc_id))
        return RemoveReport(
            documents=[RemovedDocument(d.doc_id, d.source) for d in docs],
            files=sorted(self.files),
            unmatched=list(self.unmatched),
        )


def remove_targets(
    store: Store, vectors: Vectors, targets: Sequence[str], by_id: bool = False
) -> RemoveReport:
    """Remove what ``targets`` name in one transaction, and their vectors; the caller
    holds the writer lock. The vectors file is kept in step as an ingest keeps it."""
    vectors.sync()
    found = find(store, targets, by_id)
    report = found.report()
    if found:
        chunks, _ = store.write(
            [], remove_documents=sorted(found.documents), remove_sources=sorted(found.files)
        )
        vectors.committed(chunks, [], np.zeros((0, 1), dtype=np.float32))
        vectors.reshape()
        vectors.save()
        report.chunks = len(chunks)
    return report


def find(store: Store, targets: Sequence[str], by_id: bool = False) -> Removal:
    """What ``targets`` name in ``store``: by path first, else by document id (only by
    id with ``by_id``: a target from a remote caller never names a path)."""
    found = Removal()
    for target in targets:
        docs, files = ([], set()) if by_id else _by_path(store, target)
        if not (docs or files):
            docs = store.documents_with_id(target)
            files = store.recorded(d.source for d in docs)
        if not (docs or files):
            found.unmatched.append(target)
            continue
        log.debug("%r names %d documents and %d files", target, len(docs), len(files))
        found.documents.update((d.pk, d) for d in docs)
        found.files.update(files)
    return found


def _by_path(store: Store, target: str) -> tuple[list[StoredDocument], set[str]]:
    """The documents and recorded files at or under ``target`` taken as a path."""
    if not target.strip():
        return [], set()
    try:
        path = str(Path(target).expanduser().resolve())
    except (OSError, RuntimeError):  # a symbolic link loop names no indexed file
        return [], set()
    docs = store.documents(path)
    files = set(store.sources(path)) | store.recorded(d.source for d in docs)
    return docs, files
