"""PDF: the text layer, page by page, each page a part."""

from __future__ import annotations

import io
import logging
from pathlib import Path

from pypdf import PasswordType, PdfReader

from rag.errors import ReadError
from rag.ingest.readers.files import MAX_DOCUMENT_BYTES, library_reason, parsing, read_bytes
from rag.types import Document

logger = logging.getLogger(__name__)
# pypdf logs a warning for every small flaw it repairs; those say nothing a user can act on.
logging.getLogger("pypdf").setLevel(logging.ERROR)


def read_pdf(path: Path, doc_id: str) -> Document:
    data = read_bytes(path, MAX_DOCUMENT_BYTES)
    texts: list[str] = []
    failures: list[Exception] = []
    with parsing(path, "PDF"):
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and reader.decrypt("") == PasswordType.NOT_DECRYPTED:
            raise ReadError(str(path), "PDF is encrypted with a password; decrypt it first")
        for number, page in enumerate(reader.pages, 1):
            try:
                texts.append(page.extract_text() or "")
            except Exception as err:  # one broken page should not lose the others
                logger.warning("%s: no text from page %s: %s", path, number, err)
                failures.append(err)
                texts.append("")
        meta_title = reader.metadata.title if reader.metadata else None
    texts = [t.replace("\r\n", "\n").replace("\r", "\n") for t in texts]
    if not any(t.strip() for t in texts):
        if failures and len(failures) == len(texts):
            raise ReadError(str(path), library_reason("PDF", failures[0]))
        raise ReadError(str(path), "no text layer (scanned PDF?); run OCR on it first")
    starts: list[int] = []
    offset = 0
    for t in texts:
        starts.append(offset)
        offset += len(t) + 2
    title = str(meta_title).strip() if meta_title else ""
    return Document(
        doc_id, str(path), "\n\n".join(texts), "pdf", title or path.stem, pages=tuple(starts)
    )
