"""Building a document out of parts (paragraphs, slides, sheets, chapters, cells,
messages): each part's start offset and name, within a cap on the text taken.

The cap matters for zipped formats: a few megabytes of Office file can unpack to
gigabytes of text (a zip bomb, or a sheet of a million rows).

>>> parts = Parts(Path("deck.pptx"), "slide")
>>> parts.add("# Plan\\n\\nShip it", "Plan") and parts.add("# Risks", "Risks")
True
>>> doc = parts.document("deck.pptx", "pptx", "Deck")
>>> doc.text, doc.pages, doc.part, doc.part_names
('# Plan\\n\\nShip it\\n\\n# Risks', (0, 17), 'slide', ('Plan', 'Risks'))
"""

from __future__ import annotations

import logging
from pathlib import Path

from rag.errors import ReadError
from rag.types import Document

logger = logging.getLogger(__name__)

# Characters of text taken from one file at most; the rest is left out with a warning.
MAX_TEXT_CHARS = 20_000_000


class Parts:
    """Text built one part at a time, parts joined by ``separator``."""

    def __init__(self, path: Path, unit: str, separator: str = "\n\n") -> None:
        self.path = path
        self.unit = unit
        self.separator = separator
        self.limit = MAX_TEXT_CHARS
        self.full = False  # the cap was reached: what follows is left out
        self._pieces: list[str] = []
        self._starts: list[int] = []
        self._names: list[str] = []
        self._length = 0

    def __len__(self) -> int:
        return len(self._starts)

    def add(self, text: str, name: str = "") -> bool:
        """Append one part (an empty one keeps its number); False once the cap is
        reached, when the caller should stop reading."""
        if self.full:
            return False
        text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\v", "\n").strip("\n")
        if text and self._length:
            self._pieces.append(self.separator)
            self._length += len(self.separator)
        self._starts.append(self._length)
        self._names.append(" ".join(name.split()))
        room = self.limit - self._length
        if len(text) > room:
            text = text[:room]
            self.full = True
            logger.warning(
                "%s: over %s characters of text; only %s %s(s) are indexed, the last cut short",
                self.path,
                f"{self.limit:,}",
                len(self._starts),
                self.unit,
            )
        self._pieces.append(text)
        self._length += len(text)
        return not self.full

    @property
    def room(self) -> int:
        """Characters that can still be added before the cap."""
        return max(0, self.limit - self._length)

    def text(self) -> str:
        """The text of the parts added so far."""
        return "".join(self._pieces)

    def document(self, doc_id: str, kind: str, title: str, empty: str = "") -> Document:
        """The document of the parts added; ``ReadError(empty)`` when they hold no text."""
        text = self.text()
        if not text.strip():
            raise ReadError(str(self.path), empty or f"no text in the {kind} file")
        names = tuple(self._names) if any(self._names) else ()
        return Document(
            doc_id,
            str(self.path),
            text,
            kind,
            title or self.path.stem,
            pages=tuple(self._starts),
            part=self.unit,
            part_names=names,
        )
