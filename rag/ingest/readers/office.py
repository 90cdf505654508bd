"""Word and PowerPoint files (python-docx, python-pptx), as Markdown-headed text.

A .docx is read in body order: each paragraph and each table row is a part (unit
``paragraph``); paragraphs styled Title or Heading N become ``#`` heading lines, so the
chunker cuts at them. A .pptx is read slide by slide, each slide a part (unit
``slide``, named by its title): the title as a ``#`` heading (``# Slide 3`` when it has
none), then its text frames, tables and speaker notes. Table rows are their cells
joined by `` | ``. The libraries are imported on first use.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rag.ingest.readers.archive import read_package
from rag.ingest.readers.files import parsing
from rag.ingest.readers.parts import Parts
from rag.types import Document

if TYPE_CHECKING:
    from pptx.shapes.base import BaseShape
    from pptx.slide import Slide

_HEADING_STYLE = re.compile(r"heading ([1-9])$", re.IGNORECASE)


def read_docx(path: Path, doc_id: str) -> Document:
    data, _ = read_package(path, "DOCX")
    with parsing(path, "DOCX"):
        import docx
        from docx.table import Table

        document = docx.Document(io.BytesIO(data))
        title = (document.core_properties.title or "").strip()
        parts = Parts(path, "paragraph")
        for block in document.iter_inner_content():
            if isinstance(block, Table):
                rows = [row_text(_row_cells(row)) for row in block.rows]
            else:
                text = block.text.strip()
                level = _heading_level(block.style.name if block.style is not None else "")
                if level and text:
                    text = "#" * level + " " + " ".join(text.split())
                    if not title and level == 1:
                        title = text[2:]
                rows = [text]
            if not all(parts.add(r) for r in rows if r):
                break
    return parts.document(doc_id, "docx", title, "no text in the document")


def _heading_level(style: str) -> int:
    """1 for Title, N for Heading N, 0 for any other paragraph style."""
    if style.lower() == "title":
        return 1
    m = _HEADING_STYLE.match(style.strip())
    return min(int(m.group(1)), 6) if m else 0


def _row_cells(row: Any) -> list[str]:
    """The texts of a Word table row, a cell merged across columns once."""
    texts: list[str] = []
    previous = None
    for cell in row.cells:
        if previous is None or cell._tc is not previous._tc:
            texts.append(cell.text)
        previous = cell
    return texts


def row_text(cells: Iterable[str]) -> str:
    """A table row on one line: its non-empty cells joined by `` | ``."""
    return " | ".join(t for t in (" ".join(c.split()) for c in cells) if t)


def read_pptx(path: Path, doc_id: str) -> Document:
    data, _ = read_package(path, "PPTX")
    with parsing(path, "PPTX"):
        import pptx

        deck = pptx.Presentation(io.BytesIO(data))
        title = (deck.core_properties.title or "").strip()
        parts = Parts(path, "slide")
        for number, slide in enumerate(deck.slides, 1):
            name, text = _slide_text(slide, number)
            title = title or name
            if not parts.add(text, name):
                break
    return parts.document(doc_id, "pptx", title, "no text on any slide")


def _slide_text(slide: Slide, number: int) -> tuple[str, str]:
    """(title, text) of one slide: its title as a heading, then the rest in shape order."""
    from pptx.shapes.autoshape import Shape
    from pptx.shapes.graphfrm import GraphicFrame

    title_shape = slide.shapes.title
    title = " ".join(title_shape.text_frame.text.split()) if title_shape is not None else ""
    blocks = [f"# {title or f'Slide {number}'}"]
    for shape in _shapes(slide.shapes):
        if title_shape is not None and shape.shape_id == title_shape.shape_id:
            continue
        if isinstance(shape, Shape) and shape.has_text_frame:
            blocks.append(shape.text_frame.text.strip())
        elif isinstance(shape, GraphicFrame) and shape.has_table:
            rows = (row_text(c.text for c in row.cells) for row in shape.table.rows)
            blocks.append("\n".join(r for r in rows if r))
    if slide.has_notes_slide:
        notes = slide.notes_slide.notes_text_frame
        if notes is not None and notes.text.strip():
            blocks.append("Notes: " + notes.text.strip())
    return title, "\n\n".join(b for b in blocks if b)


def _shapes(shapes: Iterable[BaseShape]) -> Iterator[BaseShape]:
    """The shapes in document order, those inside groups included."""
    from pptx.shapes.group import GroupShape

    stack = [iter(shapes)]
    while stack:
        shape = next(stack[-1], None)
        if shape is None:
            stack.pop()
        elif isinstance(shape, GroupShape):
            stack.append(iter(shape.shapes))
        else:
            yield shape
