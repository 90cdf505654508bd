"""Plain text, Markdown, reStructuredText and source code: the file's decoded text."""

from __future__ import annotations

import re
from pathlib import Path

from rag.errors import ReadError
from rag.formats import FILE_TYPES
from rag.ingest.readers.files import decode, read_bytes
from rag.types import Document


def read_text(path: Path, doc_id: str) -> Document:
    kind = FILE_TYPES[path.suffix.lower()]
    text = decode(path, read_bytes(path))
    title = (markdown_title(text) if kind == "markdown" else "") or path.stem
    if not text.strip():
        raise ReadError(str(path), "empty file (no text)")
    return Document(doc_id, str(path), text, kind, title)


_FENCE = re.compile(r" {0,3}(```|~~~)")
_H1 = re.compile(r" {0,3}# +(.*?)(?: +#+)? *$")


def markdown_title(text: str) -> str:
    """The first level-1 ATX heading outside code fences, or ''."""
    in_fence = False
    for line in text.split("\n"):
        if _FENCE.match(line):
            in_fence = not in_fence
        elif not in_fence and (m := _H1.match(line)) and m.group(1).strip():
            return m.group(1).strip()
    return ""
