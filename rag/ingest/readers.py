"""Readers: turning one document file into ``Document``s.

Plain text, Markdown, reStructuredText and source code are read as decoded text;
HTML is reduced to its visible text; PDF text comes from its text layer, page by
page; a JSONL corpus holds one document per line. Whole-file failures raise
``ReadError``; a bad JSONL line is yielded as a ``ReadError`` so the rest still loads.

>>> docs = list(read(Path("docs/guide.md"), "guide.md"))  # doctest: +SKIP
"""

from __future__ import annotations

import codecs
import io
import json
import logging
import os
import re
import stat
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from bs4 import BeautifulSoup, NavigableString, PageElement, Tag
from pypdf import PasswordType, PdfReader

from rag.errors import ReadError
from rag.types import FILE_TYPES, Document

logger = logging.getLogger(__name__)
# pypdf logs a warning for every small flaw it repairs; those say nothing a user can act on.
logging.getLogger("pypdf").setLevel(logging.ERROR)

MAX_FILE_BYTES = 20 * 1024 * 1024
# PDF bytes are mostly fonts and images, so a PDF may be far larger than its text.
MAX_PDF_BYTES = 200 * 1024 * 1024
_SNIFF_BYTES = 8 * 1024


def read(path: Path, doc_id: str) -> Iterator[Document | ReadError]:
    """The documents in one file: exactly one, except for JSONL (one per good line).

    Raises ``ReadError`` when the whole file cannot be read. For JSONL, each bad line
    is yielded as a ``ReadError`` naming ``path:line`` and reading goes on; each
    document's ``doc_id`` then comes from the line's ``_id``/``id``, not ``doc_id``.
    """
    kind = FILE_TYPES.get(path.suffix.lower())
    if kind is None:
        raise ReadError(str(path), f"unsupported file type '{path.suffix}'")
    if kind == "jsonl":
        _stat_file(path)
        return _read_jsonl(path)
    if kind == "pdf":
        return iter([_read_pdf(path, doc_id)])
    text = _decode(path, _read_bytes(path, MAX_FILE_BYTES))
    title = path.stem
    if kind == "html":
        title, text = _html_text(path, text)
    elif kind == "markdown":
        title = _markdown_title(text) or title
    if not text.strip():
        reason = "no visible text in the page" if kind == "html" else "empty file (no text)"
        raise ReadError(str(path), reason)
    return iter([Document(doc_id, str(path), text, kind, title)])


def _stat_file(path: Path) -> os.stat_result:
    try:
        st = path.stat()
    except FileNotFoundError:
        raise ReadError(str(path), "no such file") from None
    except OSError as err:
        raise ReadError(str(path), _os_reason(err)) from None
    if not stat.S_ISREG(st.st_mode):
        raise ReadError(str(path), "not a regular file")
    return st


def _os_reason(err: OSError) -> str:
    if isinstance(err, PermissionError):
        return "permission denied; check the file's read permission"
    return f"cannot read file: {err.strerror or err}"


def _read_bytes(path: Path, limit: int) -> bytes:
    """The whole file, refusing files over ``limit`` before reading them into memory."""
    size = _stat_file(path).st_size
    too_big = f"file is {size:,} bytes, over the {limit:,} byte limit; split it into smaller files"
    if size > limit:
        raise ReadError(str(path), too_big)
    try:
        with path.open("rb") as f:
            data = f.read(limit + 1)
    except OSError as err:
        raise ReadError(str(path), _os_reason(err)) from None
    if len(data) > limit:  # the file grew after stat
        raise ReadError(str(path), too_big)
    return data


_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


def _decode(path: Path, data: bytes) -> str:
    """Text of ``data``: by its byte-order mark if it has one, else strict UTF-8."""
    encoding = next((enc for bom, enc in _BOMS if data.startswith(bom)), "utf-8")
    if encoding in ("utf-8", "utf-8-sig") and b"\0" in data[:_SNIFF_BYTES]:
        raise ReadError(str(path), "binary content, not text")
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as err:
        name = encoding.upper().removesuffix("-SIG")
        raise ReadError(
            str(path), f"not valid {name} text (byte offset {err.start}); convert it to UTF-8"
        ) from None
    return text.replace("\r\n", "\n").replace("\r", "\n")


_FENCE = re.compile(r" {0,3}(```|~~~)")
_H1 = re.compile(r" {0,3}# +(.*?)(?: +#+)? *$")


def _markdown_title(text: str) -> str:
    """The first level-1 ATX heading outside code fences, or ''."""
    in_fence = False
    for line in text.split("\n"):
        if _FENCE.match(line):
            in_fence = not in_fence
        elif not in_fence and (m := _H1.match(line)) and m.group(1).strip():
            return m.group(1).strip()
    return ""


_DROP_TAGS = frozenset({"script", "style", "noscript", "template", "svg", "head", "title"})
# Site navigation ("Prev Up Next", breadcrumbs) repeats on every page and answers
# nothing: <nav>, ARIA navigation landmarks, and DocBook's navigation header and footer.
_NAV_CLASSES = frozenset({"navheader", "navfooter"})
# Break markers put in during the walk and resolved after it, so that adjacent blocks
# share one break: a paragraph-like block gets a blank line, any other block a newline.
_LINE, _PARAGRAPH = "\x1f", "\x1e"
_PARAGRAPH_NAMES = (
    "address article aside blockquote details dl fieldset figure footer form h1 h2 h3 h4 h5"
    " h6 header hr main nav ol p pre section table ul"
)
_LINE_NAMES = "body caption dd dialog div dt figcaption hgroup html li summary tbody tfoot thead tr"
_MARKS = {
    **dict.fromkeys(_PARAGRAPH_NAMES.split(), _PARAGRAPH),
    **dict.fromkeys(_LINE_NAMES.split(), _LINE),
    "td": " ",
    "th": " ",
}
_SPACES = re.compile(r"\s+")
_BREAKS = re.compile(r"[ \t]*[\n\x1e\x1f](?:[ \t]*[\n\x1e\x1f])*")


def _html_text(path: Path, html: str) -> tuple[str, str]:
    """(title, visible text) of an HTML page, blocks on their own lines."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # bs4 warns about markup that looks like a URL
            soup = BeautifulSoup(html, "html.parser")
    except Exception as err:
        raise ReadError(str(path), f"cannot parse HTML: {err}") from None
    title_tag = soup.find("title")
    title = _SPACES.sub(" ", title_tag.get_text()).strip() if title_tag else ""
    out: list[str] = []
    # An explicit stack, not recursion: deeply nested markup must not overflow.
    stack: list[tuple[PageElement, bool] | str] = [(soup, False)]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            out.append(item)
            continue
        node, pre = item
        if isinstance(node, Tag):
            if node.name in _DROP_TAGS or _is_navigation(node):
                continue
            if node.name == "br":
                out.append("\n")
                continue
            mark = _MARKS.get(node.name, "")
            if mark in (_LINE, _PARAGRAPH):
                out.append(mark)
            if mark:
                stack.append(mark)
            inner_pre = pre or node.name in ("pre", "textarea")
            stack.extend((child, inner_pre) for child in reversed(node.contents))
        elif type(node) is NavigableString:  # not comments, doctypes, CDATA
            piece = str(node).replace("\r", "\n") if pre else _SPACES.sub(" ", str(node))
            if not pre and (not out or out[-1][-1] in " \n\x1e\x1f"):
                piece = piece.lstrip(" ")
            if piece:
                out.append(piece)
    text = _BREAKS.sub(_resolve_break, "".join(out))
    return title or path.stem, text.strip()


def _is_navigation(tag: Tag) -> bool:
    if tag.name == "nav" or tag.get("role") == "navigation":
        return True
    classes = tag.get("class") or ()
    return not _NAV_CLASSES.isdisjoint(classes)


def _resolve_break(match: re.Match[str]) -> str:
    run = match.group()
    return "\n\n" if _PARAGRAPH in run or run.count("\n") > 1 else "\n"


def _read_pdf(path: Path, doc_id: str) -> Document:
    data = _read_bytes(path, MAX_PDF_BYTES)
    texts: list[str] = []
    failures: list[Exception] = []
    try:
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
    except ReadError:
        raise
    except Exception as err:  # pypdf raises many exception types for damaged files
        raise ReadError(str(path), _unreadable_pdf(err)) from None
    texts = [t.replace("\r\n", "\n").replace("\r", "\n") for t in texts]
    if not any(t.strip() for t in texts):
        if failures and len(failures) == len(texts):
            raise ReadError(str(path), _unreadable_pdf(failures[0]))
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


def _unreadable_pdf(err: Exception) -> str:
    message = str(err).strip() or type(err).__name__
    message = message if len(message) <= 200 else message[:197] + "..."
    return f"cannot parse PDF ({message}); the file may be damaged or truncated"


def _read_jsonl(path: Path) -> Iterator[Document | ReadError]:
    try:
        f = path.open("rb")
    except OSError as err:
        raise ReadError(str(path), _os_reason(err)) from None
    seen: dict[str, int] = {}
    with f:
        for lineno, raw in enumerate(_lines(f, MAX_FILE_BYTES), 1):
            where = f"{path}:{lineno}"
            if raw is None:
                yield ReadError(where, f"line is over the {MAX_FILE_BYTES:,} byte limit")
                continue
            if lineno == 1:
                raw = raw.removeprefix(codecs.BOM_UTF8)
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as err:
                yield ReadError(where, f"not valid UTF-8 (byte offset {err.start} in the line)")
                continue
            if not line.strip():
                continue
            try:
                doc = _jsonl_document(line, path)
            except ValueError as err:
                yield ReadError(where, str(err))
                continue
            if doc.doc_id in seen:
                yield ReadError(
                    where, f"duplicate id {doc.doc_id!r} (first on line {seen[doc.doc_id]})"
                )
                continue
            seen[doc.doc_id] = lineno
            yield doc


def _lines(f: BinaryIO, limit: int) -> Iterator[bytes | None]:
    """Lines of ``f``, with ``None`` in place of a line longer than ``limit`` bytes."""
    while line := f.readline(limit + 1):
        if len(line) > limit and not line.endswith(b"\n"):
            while line and not line.endswith(b"\n"):  # skip the rest without holding it
                line = f.readline(1024 * 1024)
            yield None
        else:
            yield line


_JSON_TYPES = {dict: "object", list: "array", str: "string", int: "number", float: "number"}


def _json_type(value: Any) -> str:
    if value is None or isinstance(value, bool):
        return "null" if value is None else "boolean"
    return _JSON_TYPES.get(type(value), type(value).__name__)


def _jsonl_document(line: str, path: Path) -> Document:
    """The document of one JSONL line; ValueError says what is wrong with the line."""
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as err:
        raise ValueError(f"invalid JSON: {err.msg} (column {err.colno})") from None
    except RecursionError:
        raise ValueError("invalid JSON: nested too deeply") from None
    if not isinstance(obj, dict):
        raise ValueError(f"expected a JSON object, got {_json_type(obj)}")
    key = "_id" if "_id" in obj else "id"
    if key not in obj:
        raise ValueError("missing '_id' or 'id'")
    doc_id = obj[key]
    if isinstance(doc_id, int) and not isinstance(doc_id, bool):
        doc_id = str(doc_id)
    if not isinstance(doc_id, str):
        raise ValueError(f"'{key}' must be a string or integer, got {_json_type(doc_id)}")
    if not doc_id.strip():
        raise ValueError(f"empty '{key}'")
    if "text" not in obj:
        raise ValueError("missing 'text'")
    text = obj["text"]
    if not isinstance(text, str):
        raise ValueError(f"'text' must be a string, got {_json_type(text)}")
    if not text.strip():
        raise ValueError("empty text")
    title = obj.get("title")
    if title is None:
        title = ""
    if not isinstance(title, str):
        raise ValueError(f"'title' must be a string, got {_json_type(title)}")
    metadata = {k: v for k, v in obj.items() if k not in (key, "text", "title")}
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return Document(doc_id, str(path), text, "jsonl", title, metadata)
