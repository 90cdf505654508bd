"""EPUB e-books (EbookLib): chapter by chapter in reading (spine) order.

Each spine document is a part (unit ``chapter``) named by its entry in the table of
contents, or by its first heading. Its XHTML goes through the HTML reader's text
extraction with headings kept as Markdown ``#`` lines and table cells joined by `` | ``.
A book whose chapters are encrypted (DRM) is refused: its text cannot be read.
"""

from __future__ import annotations

import io
import posixpath
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

from rag.errors import ReadError
from rag.ingest.readers.archive import read_package
from rag.ingest.readers.files import parsing
from rag.ingest.readers.html import html_text
from rag.ingest.readers.parts import Parts
from rag.text import MD_HEADING
from rag.types import Document

# Adobe ADEPT and Readium LCP put their licence here.
_DRM_FILES = frozenset({"META-INF/rights.xml", "META-INF/license.lcpl"})
# Font obfuscation (IDPF, Adobe) is listed in encryption.xml too but hides no text.
_FONT_OBFUSCATION = frozenset(
    {"http://www.idpf.org/2008/embedding", "http://ns.adobe.com/pdf/enc#RC"}
)
DRM = "the e-book is encrypted (DRM); only a copy without DRM can be indexed"


def read_epub(path: Path, doc_id: str) -> Document:
    data, members = read_package(path, "EPUB")
    _refuse_drm(path, data, members)
    with parsing(path, "EPUB"):
        import ebooklib
        from ebooklib import epub

        book = epub.read_epub(io.BytesIO(data), {"ignore_ncx": True})
        titles = _toc_titles(book.toc)
        parts = Parts(path, "chapter")
        for idref, _linear in book.spine:
            item = book.get_item_with_id(idref)
            if item is None or item.get_type() != ebooklib.ITEM_DOCUMENT:
                continue
            if isinstance(item, epub.EpubNav):  # the table of contents itself
                continue
            markup = item.get_content().decode("utf-8", "replace")
            _, text = html_text(path, markup, headings=True, cells=" | ")
            name = titles.get(posixpath.normpath(item.get_name()), "")
            first = MD_HEADING.match(text.split("\n", 1)[0])
            if first is None and text and name:
                text = f"# {name}\n\n{text}"  # the chapter's own heading, for the chunker
            if not parts.add(text, name or (first.group(2) if first else "")):
                break
        meta = book.get_metadata("DC", "title")
        title = str(meta[0][0]).strip() if meta and meta[0] and meta[0][0] else ""
    return parts.document(doc_id, "epub", title, "no text in any chapter")


def _toc_titles(toc: Iterable[Any]) -> dict[str, str]:
    """File (relative to the package) -> the first table-of-contents title pointing into it."""
    titles: dict[str, str] = {}
    stack = [iter(toc)]
    while stack:
        entry = next(stack[-1], None)
        if entry is None:
            stack.pop()
            continue
        if isinstance(entry, tuple):  # (section, [children])
            entry, children = entry[0], entry[1]
            stack.append(iter(children))
        href = getattr(entry, "href", "") or ""
        title = " ".join(str(getattr(entry, "title", "") or "").split())
        if href and title:
            titles.setdefault(posixpath.normpath(href.split("#", 1)[0]), title)
    return titles


def _refuse_drm(path: Path, data: bytes, members: list[zipfile.ZipInfo]) -> None:
    names = {m.filename for m in members}
    if names & _DRM_FILES:
        raise ReadError(str(path), DRM)
    if "META-INF/encryption.xml" not in names:
        return
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as package:
            root = ElementTree.fromstring(package.read("META-INF/encryption.xml"))
    except Exception:
        return  # damaged: left to the library to report
    methods = (e for e in root.iter() if e.tag.rpartition("}")[2] == "EncryptionMethod")
    if any(m.get("Algorithm", "") not in _FONT_OBFUSCATION for m in methods):
        raise ReadError(str(path), DRM)
