"""The indexed documents: a paged list, uploads, removal, and the text a citation cites.

Uploads are saved under one folder, by their base name only, then indexed
incrementally; one upload or removal writes at a time, while searches go on. The text
of a document is read from the file the index recorded for it, never from a path a
request names.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
from pathlib import Path, PurePosixPath
from typing import Annotated, Any

from fastapi import APIRouter, File, Query, UploadFile

from rag.errors import InvalidValue
from rag.formats import FILE_TYPES
from rag.index import Index
from rag.ingest.source import document_text
from rag.server.errors import NotFound, errors

log = logging.getLogger(__name__)

# How long a write waits for another process writing the index.
WRITE_WAIT = 60.0
MAX_PAGE = 1000
MAX_NAME = 255
# The largest offset a database takes (a signed 64-bit integer).
MAX_OFFSET = 2**63 - 1


def safe_name(raw: str | None) -> str:
    """The base name an upload is saved under; refuses names that are no plain file name.

    >>> safe_name("../../evil.md"), safe_name("C:\\\\docs\\\\notes.txt")
    ('evil.md', 'notes.txt')
    """
    name = PurePosixPath((raw or "").replace("\\", "/")).name
    if not name or name.startswith(".") or "\0" in name or len(name) > MAX_NAME:
        raise InvalidValue(f"cannot save an upload named {raw!r}: give the file a plain name")
    if Path(name).suffix.lower() not in FILE_TYPES:
        raise InvalidValue(
            f"{name}: unsupported file type; upload one of {', '.join(sorted(FILE_TYPES))}"
        )
    return name


def router(index: Index, uploads: Path) -> APIRouter:
    api = APIRouter(prefix="/v1/documents")
    writing = threading.Lock()  # one upload or removal at a time, in this process

    @api.get("", responses=errors(400, 401, 422, 503))
    def list_documents(
        offset: Annotated[int, Query(le=MAX_OFFSET)] = 0, limit: int = 100
    ) -> dict[str, Any]:
        """Indexed documents ``offset:offset + limit`` (at most 1000), oldest first."""
        page = index.store.document_page(offset, min(limit, MAX_PAGE))
        total = index.store.counts()["documents"]
        return {
            "documents": [d.to_dict() for d in page],
            "total": total,
            "offset": offset,
            "limit": min(limit, MAX_PAGE),
        }

    @api.post("", status_code=201, responses=errors(400, 401, 409, 413, 422, 503))
    def upload(files: list[UploadFile] = File(...)) -> dict[str, Any]:  # noqa: B008
        """Save the files under the uploads folder and index them: the ``rag index
        --json`` summary, whose ``failures`` name the files that could not be read (400
        when none could)."""
        names = [safe_name(f.filename) for f in files]
        if len(set(names)) != len(names):
            raise InvalidValue(f"two uploads have the same name: {', '.join(names)}")
        with writing:
            saved = [_save(f, uploads, name) for f, name in zip(files, names)]
            report = index.add(*saved, lock_timeout=WRITE_WAIT)
        failed = {f.path for f in report.failed}  # whole files, or a JSONL file's lines
        unread = [path for path in saved if str(path) in failed]
        for path in unread:  # nothing of it is indexed: do not keep it
            path.unlink(missing_ok=True)
        if len(unread) == len(saved):  # else the report lists the ones that failed
            reasons = "; ".join(f"{Path(f.path).name}: {f.reason}" for f in report.failed)
            raise InvalidValue(f"could not index {reasons}")
        return {"files": names, **report.to_dict()}

    @api.get("/{doc_id:path}/text", responses=errors(400, 401, 404, 409, 422, 503))
    def text(doc_id: str, start: int = 0, end: int | None = None) -> dict[str, Any]:
        """Characters ``start:end`` of the document's text, read from its file: what a
        citation's or a hit's offsets point at."""
        stored = index.store.documents_with_id(doc_id)
        if not stored:
            raise NotFound(f"no document has the id {doc_id!r}")
        doc = stored[0]
        full = document_text(doc.source, doc.doc_id, doc.content_hash)
        end = len(full) if end is None else end
        if not 0 <= start <= end <= len(full):
            raise InvalidValue(
                f"start and end must satisfy 0 <= start <= end <= {len(full)} (the text's "
                f"length), got start={start}, end={end}"
            )
        return {"doc_id": doc.doc_id, "source": doc.source, "start": start, "end": end,
                "text": full[start:end]}  # fmt: skip

    @api.delete("/{doc_id:path}", responses=errors(401, 404, 422, 503))
    def delete(doc_id: str) -> dict[str, Any]:
        """Remove a document by its id (``rag rm --json``); an uploaded file goes too."""
        with writing:
            report = index.remove([doc_id], lock_timeout=WRITE_WAIT, by_id=True)
        if not report.ok:
            raise NotFound(f"no document has the id {doc_id!r}")
        home = uploads.resolve()
        for removed in report.documents:
            source = Path(removed.source)
            if source.parent == home:
                source.unlink(missing_ok=True)
        return report.to_dict()

    return api


def _save(upload: UploadFile, folder: Path, name: str) -> Path:
    """Write an upload to ``folder/name`` whole or not at all (a new file replaces it)."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder.resolve() / name
    if target.parent != folder.resolve():  # safe_name makes this impossible; be sure
        raise InvalidValue(f"cannot save an upload named {name!r}")
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".upload-")
    try:
        with os.fdopen(fd, "wb") as out:
            shutil.copyfileobj(upload.file, out)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    log.info("saved upload %s", target)
    return target
