"""HTML: the visible text of a page, blocks on their own lines, site navigation left out."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

from bs4 import BeautifulSoup, NavigableString, PageElement, Tag

from rag.errors import ReadError
from rag.ingest.readers.files import decode, read_bytes
from rag.types import Document


def read_html(path: Path, doc_id: str) -> Document:
    title, text = html_text(path, decode(path, read_bytes(path)))
    if not text.strip():
        raise ReadError(str(path), "no visible text in the page")
    return Document(doc_id, str(path), text, "html", title)


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
_HEADINGS = {f"h{n}": "#" * n + " " for n in range(1, 7)}
# The end of a table cell, when cells are joined by something other than a space.
_CELL = "\x1d"
_CELL_ENDS = re.compile(r"[ \t\x1d]*\x1d[ \t\x1d]*(?=[\n\x1e\x1f]|$)")
_CELLS = re.compile(r"[ \t]*\x1d[ \t\x1d]*")
_SPACES = re.compile(r"\s+")
_BREAKS = re.compile(r"[ \t]*[\n\x1e\x1f](?:[ \t]*[\n\x1e\x1f])*")


def html_text(path: Path, html: str, headings: bool = False, cells: str = " ") -> tuple[str, str]:
    """(title, visible text) of an HTML page, blocks on their own lines.

    With ``headings``, ``<h1>``-``<h6>`` become Markdown heading lines (``## Text``);
    ``cells`` goes between the cells of a table row.
    """
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
                stack.append(_CELL if mark == " " and cells != " " else mark)
            if headings and node.name in _HEADINGS and node.get_text(strip=True):
                out.append(_HEADINGS[node.name])
            inner_pre = pre or node.name in ("pre", "textarea")
            stack.extend((child, inner_pre) for child in reversed(node.contents))
        elif type(node) is NavigableString:  # not comments, doctypes, CDATA
            piece = str(node).replace("\r", "\n") if pre else _SPACES.sub(" ", str(node))
            if not pre and (not out or out[-1][-1] in " \n\x1e\x1f\x1d"):
                piece = piece.lstrip(" ")
            if piece:
                out.append(piece)
    text = "".join(out)
    if cells != " ":
        text = _CELL_ENDS.sub("", text)  # after a row's last cell
        text = _CELLS.sub(cells, text)
    text = _BREAKS.sub(_resolve_break, text)
    return title or path.stem, text.strip()


def _is_navigation(tag: Tag) -> bool:
    if tag.name == "nav" or tag.get("role") == "navigation":
        return True
    classes = tag.get("class") or ()
    return not _NAV_CLASSES.isdisjoint(classes)


def _resolve_break(match: re.Match[str]) -> str:
    run = match.group()
    return "\n\n" if _PARAGRAPH in run or run.count("\n") > 1 else "\n"
