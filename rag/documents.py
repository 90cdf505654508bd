"""The Document: one unit of source text as the readers produce it."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Document:
    """Text of one document with where it came from.

    ``doc_id`` is the path relative to the indexed folder (posix separators) or, for
    a JSONL corpus, the line's ``_id``/``id``. ``source`` is the file the text was read
    from. ``pages`` holds, for paged formats (PDF), the character offset at which each
    page starts, so page ``n`` (1-based) begins at ``pages[n - 1]``.
    """

    doc_id: str
    source: str
    text: str
    kind: str
    title: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    pages: tuple[int, ...] = ()

    @property
    def content_hash(self) -> str:
        """A hash of everything that affects the chunks and their embeddings."""
        h = hashlib.sha256()
        h.update(self.title.encode("utf-8", "surrogatepass"))
        h.update(b"\0")
        h.update(self.text.encode("utf-8", "surrogatepass"))
        h.update(b"\0")
        h.update(json.dumps(self.metadata, sort_keys=True, default=str).encode())
        h.update(b"\0")
        h.update(",".join(map(str, self.pages)).encode())
        return h.hexdigest()
