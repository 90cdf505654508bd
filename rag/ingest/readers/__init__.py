"""Readers: turning one document file into ``Document``s, one module per format family.

Plain text, Markdown, reStructuredText and source code are read as decoded text
(``text``); HTML is reduced to its visible text (``html``); PDF text comes from its text
layer, page by page (``pdf``); a JSONL corpus holds one document per line (``jsonl``).
Word and PowerPoint files (``office``), spreadsheets (``sheets``), e-books (``ebook``),
Jupyter notebooks (``notebook``) and e-mail (``mail``) are read through their libraries,
imported on first use, into text in parts (paragraphs, slides, sheets, chapters, cells,
messages) that citations point to. Whole-file failures raise ``ReadError``; a bad JSONL
line is yielded as a ``ReadError`` so the rest still loads.

>>> docs = list(read(Path("docs/guide.md"), "guide.md"))  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

from rag.errors import ReadError
from rag.formats import FILE_TYPES
from rag.ingest.readers.ebook import read_epub
from rag.ingest.readers.html import read_html
from rag.ingest.readers.jsonl import read_jsonl
from rag.ingest.readers.mail import read_eml, read_mbox
from rag.ingest.readers.notebook import read_notebook
from rag.ingest.readers.office import read_docx, read_pptx
from rag.ingest.readers.pdf import read_pdf
from rag.ingest.readers.sheets import read_csv, read_xlsx
from rag.ingest.readers.text import read_text
from rag.types import Document

Reader = Callable[[Path, str], Iterator[Document | ReadError]]
FileReader = Callable[[Path, str], Document]


def _one(read_file: FileReader) -> Reader:
    """A reader of formats that hold one document per file."""

    def reader(path: Path, doc_id: str) -> Iterator[Document | ReadError]:
        return iter([read_file(path, doc_id)])  # read now: a failure raises from read()

    return reader


# Document type -> its reader; a type read from formats that differ goes by suffix.
_BY_TYPE: dict[str, Reader] = {
    "text": _one(read_text),
    "markdown": _one(read_text),
    "rst": _one(read_text),
    "code": _one(read_text),
    "html": _one(read_html),
    "pdf": _one(read_pdf),
    "jsonl": read_jsonl,
    "docx": _one(read_docx),
    "pptx": _one(read_pptx),
    "epub": _one(read_epub),
    "notebook": _one(read_notebook),
}
_BY_SUFFIX: dict[str, Reader] = {
    ".xlsx": _one(read_xlsx),
    ".csv": _one(read_csv),
    ".eml": _one(read_eml),
    ".mbox": _one(read_mbox),
}


def reader_for(path: Path) -> Reader | None:
    """The reader of files like ``path`` (by suffix), or None for an unsupported one."""
    suffix = path.suffix.lower()
    return _BY_SUFFIX.get(suffix) or _BY_TYPE.get(FILE_TYPES.get(suffix, ""))


def read(path: Path, doc_id: str) -> Iterator[Document | ReadError]:
    """The documents in one file: exactly one, except for JSONL (one per good line).

    Raises ``ReadError`` when the whole file cannot be read. For JSONL, each bad line
    is yielded as a ``ReadError`` naming ``path:line`` and reading goes on; each
    document's ``doc_id`` then comes from the line's ``_id``/``id``, not ``doc_id``.
    """
    reader = reader_for(path)
    if reader is None:
        raise ReadError(str(path), f"unsupported file type '{path.suffix}'")
    return reader(path, doc_id)
