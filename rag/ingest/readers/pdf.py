"""PDF: the text layer, page by page, each page a part.

pypdf reads the text: it is fast. Where a PDF draws no space between two words but moves
the pen across the gap (an offset in a TJ array), pypdf sees a word break only if the gap
is nearly half as wide as the font's space or wider. A subset font without a space glyph,
as XeTeX writes the Debian Reference, has pypdf measure another glyph instead: the
quarter-em gaps between words pass for kerning and the words run together
("Replaceitwiththefollowingtotrack"). pdfminer.six lays out every glyph on the page and
breaks words wherever a gap is wider than a tenth of the glyphs' size, so it finds them,
but at several times pypdf's cost (about 90 ms a page against 20 ms on the Debian
Reference). So only the pages whose pypdf text is space-starved (``space_starved``) are
read again by pdfminer.six, and its text is kept only when it is no longer starved and
holds the same letters. pdfminer.six is imported on first use.
"""

from __future__ import annotations

import io
import logging
import re
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from pypdf import PasswordType, PdfReader

from rag.errors import ReadError
from rag.ingest.readers.files import MAX_DOCUMENT_BYTES, library_reason, parsing, read_bytes
from rag.types import Document

if TYPE_CHECKING:
    from pdfminer.pdfinterp import PDFResourceManager
    from pdfminer.pdfpage import PDFPage

logger = logging.getLogger(__name__)
# pypdf and pdfminer.six log a warning for every small flaw they repair; those say nothing a
# user can act on.
logging.getLogger("pypdf").setLevel(logging.ERROR)
logging.getLogger("pdfminer").setLevel(logging.ERROR)

# Letters of scripts that put spaces between words: Latin, Greek, Cyrillic. CJK, Thai and
# the other scripts written without spaces are not counted, so a page in them is never
# taken for space-starved. A run is cut before a capital that follows a small letter, so
# that a camelCase identifier counts as its words.
_UPPER = "A-Z\u00c0-\u00d6\u00d8-\u00de"
_LOWER = "a-z\u00df-\u00f6\u00f8-\u024f\u0370-\u03ff\u0400-\u052f\u1e00-\u1eff\ufb00-\ufb06"
_RUN = re.compile(f"[{_UPPER}]*[{_LOWER}]+|[{_UPPER}]+")
# Measured on real text. Space-starved: 254 of the 261 pages of the Debian Reference as
# pypdf reads them hold 8% or more of their letters in runs of 25 letters or more (page
# 100: 16%); none does as pdfminer.six reads them. Not starved: 2,500-character pieces of
# German and Dutch manual pages, whose compound words are long, reach 8% in 3 of 1,124;
# 512 pages of English, German, Finnish, Hungarian and Turkish PDFs (groff, Ghostscript,
# pdfTeX), Russian manual pages and Python source never did.
_GLUED_RUN = 25
_STARVED_SHARE = 0.08
_MIN_LETTERS = 40  # fewer letters than this say too little either way
# pdfminer.six's text replaces pypdf's only if they share this much of their letters: the
# same page, read with other spaces.
_SAME_LETTERS = 0.9


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
    texts = respaced(path, data, texts)
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


def space_starved(text: str) -> bool:
    """Whether a page's text lost the spaces between its words: a large share of its
    letters sit in runs far longer than words.

    >>> space_starved("Replaceitwiththefollowingtotrack testing. " * 3)
    True
    >>> space_starved("Replace it with the following to track testing. " * 3)
    False
    >>> space_starved("Konfigurationsdateien für Laufzeitbibliotheken ändern. " * 3)
    False
    >>> space_starved("createTextNodeFromDocumentFragment(https://example.org/a/b) " * 3)
    False
    >>> space_starved("日本語の文章は単語の間に空白を置かずに書きます。" * 3)
    False
    """
    runs = [len(run) for run in _RUN.findall(text)]
    letters = sum(runs)
    glued = sum(n for n in runs if n >= _GLUED_RUN)
    return letters >= _MIN_LETTERS and glued >= _STARVED_SHARE * letters


def respaced(path: Path, data: bytes, texts: list[str]) -> list[str]:
    """The pages' ``texts`` (from pypdf), each space-starved one read again by pdfminer.six
    from the PDF's ``data`` where that gives it its spaces back."""
    starved = [i for i, text in enumerate(texts) if space_starved(text)]
    if not starved:
        return texts
    logger.debug("%s: %s pages without spaces between words", path, len(starved))
    out = list(texts)
    for i, text in pdfminer_texts(data, starved):
        if isinstance(text, Exception):
            logger.warning(
                "%s: page %s keeps words run together; pdfminer.six cannot read it: %s",
                path,
                i + 1,
                text,
            )
        elif not space_starved(text) and _same_letters(texts[i], text):
            out[i] = text
    return out


def _same_letters(a: str, b: str) -> bool:
    """Whether two readings of a page hold the same letters, in whatever order and spacing."""
    letters_a = Counter(c for c in a if c.isalpha())
    letters_b = Counter(c for c in b if c.isalpha())
    shared = sum((letters_a & letters_b).values())
    return shared >= _SAME_LETTERS * max(letters_a.total(), letters_b.total())


def pdfminer_texts(data: bytes, pages: Sequence[int]) -> Iterator[tuple[int, str | Exception]]:
    """pdfminer.six's text of each of the ``pages`` (0-based) of the PDF in ``data``, or
    the exception that it raised on the page. The document is parsed once."""
    from pdfminer.pdfdocument import PDFDocument
    from pdfminer.pdfinterp import PDFResourceManager
    from pdfminer.pdfpage import PDFPage
    from pdfminer.pdfparser import PDFParser

    pending = sorted(set(pages), reverse=True)
    if not pending:
        return
    failure: Exception = ValueError("the document has fewer pages for pdfminer.six")
    try:
        document = PDFDocument(PDFParser(io.BytesIO(data)))
        resources = PDFResourceManager()  # shared: fonts are parsed once
        for number, page in enumerate(PDFPage.create_pages(document)):
            if number == pending[-1]:
                pending.pop()
                yield number, _page_text(resources, page)
                if not pending:
                    return
    except Exception as err:  # the document or its page tree: no later page can be read
        failure = err
    for number in reversed(pending):
        yield number, failure


def _page_text(resources: PDFResourceManager, page: PDFPage) -> str | Exception:
    from pdfminer.converter import TextConverter
    from pdfminer.layout import LAParams
    from pdfminer.pdfinterp import PDFPageInterpreter

    out = io.StringIO()
    device = TextConverter(resources, out, laparams=LAParams())
    try:
        PDFPageInterpreter(resources, device).process_page(page)
    except Exception as err:
        return err
    return out.getvalue().rstrip("\x0c").rstrip()  # the form feed ends every page
