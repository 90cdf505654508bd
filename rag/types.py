"""The records that cross stage boundaries, each able to serialize itself.

``Document`` (ingest → storage), ``Chunk`` (ingest → storage), ``Where`` (callers →
retrieval → storage), ``Hit`` (retrieval → answer → front ends), ``Citation``,
``Signals`` and ``Answer`` (answer → front ends). ``to_dict()`` gives what the command
line prints with ``--json``, so every front end shows the same fields.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from rag.errors import InvalidValue
from rag.formats import FILE_TYPES
from rag.text import find_span


@dataclass(frozen=True)
class Document:
    """Text of one document with where it came from.

    ``doc_id`` is the path relative to the indexed folder (posix separators) or, for
    a JSONL corpus, the line's ``_id``/``id``. ``source`` is the file the text was read
    from. ``type`` is one of the values of ``FILE_TYPES``. For formats in parts (PDF
    pages, slides, sheets, chapters, cells, messages...) part ``n`` (1-based) begins at
    offset ``pages[n - 1]``; ``part`` is the unit (``page``, ``slide``...) and
    ``part_names``, if the format names parts, one name per part (``""``: unnamed).
    """

    doc_id: str
    source: str
    text: str
    type: str
    title: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    pages: tuple[int, ...] = ()
    part: str = "page"
    part_names: tuple[str, ...] = ()

    @property
    def content_hash(self) -> str:
        """A hash of everything that affects the chunks, their embeddings and locations."""
        h = hashlib.sha256()
        h.update(self.title.encode("utf-8", "surrogatepass"))
        h.update(b"\0")
        h.update(self.text.encode("utf-8", "surrogatepass"))
        h.update(b"\0")
        h.update(json.dumps(self.metadata, sort_keys=True, default=str).encode())
        h.update(b"\0")
        h.update(",".join(map(str, self.pages)).encode())
        if self.parts is not None:  # only then: documents read before parts keep their hash
            h.update(b"\0")
            h.update(json.dumps(self.parts, ensure_ascii=False).encode("utf-8", "surrogatepass"))
        return h.hexdigest()

    @property
    def parts(self) -> dict[str, Any] | None:
        """Unit and names of the parts, as stored; None for unnamed pages or no parts."""
        if self.part == "page" and not self.part_names:
            return None
        return {"unit": self.part, "names": list(self.part_names)}


@dataclass(frozen=True)
class Chunk:
    """One passage: its text and where it sits in the document (1-based lines and pages).

    ``text == document.text[start:end]`` always holds.
    """

    ordinal: int
    text: str
    start: int
    end: int
    line_start: int
    line_end: int
    heading: str = ""
    page_start: int | None = None
    page_end: int | None = None
    tokens: int = 0


_FIELD = re.compile(r"^[A-Za-z_][\w.-]*$")


@dataclass(frozen=True)
class Where:
    """Conditions a document must meet, all of them.

    ``path`` is a glob over the document id (the path relative to the indexed folder,
    or a JSONL id): ``*`` matches any run of characters, ``/`` included, ``?`` one.
    ``type`` is a document type (``markdown``, ``pdf``, ``html``, ... or a suffix such as
    ``md``). ``metadata`` maps JSONL fields to the value they must equal.

    >>> Where.parse(["path=guides/*.md", "year=2020"])
    Where(path='guides/*.md', type=None, metadata={'year': 2020})
    """

    path: str | None = None
    type: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for key in self.metadata:
            if not _FIELD.match(key):
                raise InvalidValue(f"metadata field names are letters, digits, _ . -; got {key!r}")
        if self.type is not None:
            object.__setattr__(self, "type", _file_type(self.type))

    @classmethod
    def of(cls, value: Where | Mapping[str, Any] | None) -> Where | None:
        """A Where from a Where, or a dict with ``path``, ``type`` and metadata fields."""
        if value is None or isinstance(value, Where):
            return value
        rest = dict(value)
        path, kind = rest.pop("path", None), rest.pop("type", rest.pop("kind", None))
        return cls(path, kind, rest)

    @classmethod
    def parse(cls, clauses: Sequence[str]) -> Where | None:
        """From ``field=value`` clauses; a value that reads as JSON (numbers, true) is one."""
        if not clauses:
            return None
        values: dict[str, Any] = {}
        for clause in clauses:
            key, sep, raw = clause.partition("=")
            if not sep or not key.strip():
                raise InvalidValue(
                    f"a filter is FIELD=VALUE (path=*.md, type=pdf, year=2020), got {clause!r}"
                )
            try:
                value: Any = json.loads(raw)
            except json.JSONDecodeError:
                value = raw
            if key.strip() in ("path", "type", "kind"):
                value = raw
            values[key.strip()] = value
        return cls.of(values)


def _file_type(value: str) -> str:
    types = set(FILE_TYPES.values())
    if value in types:
        return value
    suffix = "." + value.lstrip(".").lower()
    if suffix in FILE_TYPES:
        return FILE_TYPES[suffix]
    raise InvalidValue(f"unknown file type {value!r}; use one of {', '.join(sorted(types))}")


# Part unit -> how a location names one part and a range of them: (p.3), (pp.3-4); any
# other unit by its name: (slide 3), (slides 3-4), (sheet 2 "Sales").
_PART_LABELS = {"page": ("p.", "pp."), "paragraph": ("¶ ", "¶ ")}


def location(
    doc_id: str,
    line_start: int,
    line_end: int,
    page_start: int | None,
    page_end: int | None,
    part: str = "page",
    part_name: str = "",
) -> str:
    """Where a passage sits: ``doc:12-30``, then its part or range of parts, if any.

    >>> location("paper.pdf", 12, 30, 3, 4), location("deck.pptx", 40, 52, 3, 4, "slide")
    ('paper.pdf:12-30 (pp.3-4)', 'deck.pptx:40-52 (slides 3-4)')
    >>> location("book.xlsx", 10, 20, 2, 2, "sheet", "Sales")
    'book.xlsx:10-20 (sheet 2 "Sales")'
    """
    lines = f"{line_start}" if line_start == line_end else f"{line_start}-{line_end}"
    where = f"{doc_id}:{lines}"
    if page_start is not None:
        one, several = _PART_LABELS.get(part, (f"{part} ", f"{part}s "))
        if page_start == page_end:
            parts = f"{one}{page_start}" + (f' "{part_name}"' if part_name else "")
        else:
            parts = f"{several}{page_start}-{page_end}"
        where += f" ({parts})"
    return where


@dataclass(frozen=True)
class Hit:
    """A retrieved passage with where it came from."""

    chunk_id: int
    score: float
    doc_id: str
    source: str
    title: str
    text: str
    start: int
    end: int
    line_start: int
    line_end: int
    heading: str = ""
    page_start: int | None = None
    page_end: int | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    part: str = "page"
    part_name: str = ""

    @property
    def location(self) -> str:
        """``path:12-30`` (lines), with ``(p.3)``, ``(slide 3)``... for documents in parts."""
        parts = (self.page_start, self.page_end, self.part, self.part_name)
        return location(self.doc_id, self.line_start, self.line_end, *parts)

    def line_of(self, offset: int) -> int:
        """The line of the document (1-based) that ``text[offset]`` is on."""
        return self.line_start + self.text.count("\n", 0, offset)

    def to_dict(self) -> dict[str, Any]:
        return {
            "doc_id": self.doc_id,
            "score": round(self.score, 6),
            "text": self.text,
            "source": self.source,
            "start": self.start,
            "end": self.end,
            "line_start": self.line_start,
            "line_end": self.line_end,
            "page_start": self.page_start,
            "page_end": self.page_end,
            "part": self.part if self.page_start is not None else None,
            "part_name": self.part_name or None,
            "heading": self.heading,
            "chunk_id": self.chunk_id,
        }


@dataclass(frozen=True)
class Citation:
    """Passage ``n`` of an answer, resolved to its source.

    ``start``/``end`` are the passage's character offsets in the source and
    ``line_start``/``line_end`` its lines. ``quote_start``/``quote_end`` are the
    offsets of the answer's text inside the source and ``quote_line`` its first line,
    when the answer occurs verbatim in the passage (always, for extractive answers).
    ``page_start``/``page_end`` are the parts the passage spans, ``part`` their unit
    (``page``, ``slide``, ``sheet``, ...) and ``part_name`` the name of the first one.
    """

    n: int
    chunk_id: int
    doc_id: str
    source: str
    start: int
    end: int
    line_start: int
    line_end: int
    page_start: int | None = None
    page_end: int | None = None
    quote_start: int | None = None
    quote_end: int | None = None
    quote_line: int | None = None
    part: str = "page"
    part_name: str = ""

    @classmethod
    def of(cls, n: int, hit: Hit, answer: str = "") -> Citation:
        """Passage ``n``; where ``answer`` occurs in it, the ``quote_*`` fields say where."""
        found = find_span(answer, hit.text) if answer else None
        quote_start = quote_end = quote_line = None
        if found is not None:
            a, b = found
            quote_start, quote_end = hit.start + a, hit.start + b
            quote_line = hit.line_of(a)
        return cls(
            n=n,
            chunk_id=hit.chunk_id,
            doc_id=hit.doc_id,
            source=hit.source,
            start=hit.start,
            end=hit.end,
            line_start=hit.line_start,
            line_end=hit.line_end,
            page_start=hit.page_start,
            page_end=hit.page_end,
            quote_start=quote_start,
            quote_end=quote_end,
            quote_line=quote_line,
            part=hit.part,
            part_name=hit.part_name,
        )

    @property
    def location(self) -> str:
        parts = (self.page_start, self.page_end, self.part, self.part_name)
        return location(self.doc_id, self.line_start, self.line_end, *parts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "doc_id": self.doc_id,
            "start": self.start,
            "end": self.end,
            "line_start": self.line_start,
            "line_end": self.line_end,
            "source": self.source,
            "quote_start": self.quote_start,
            "quote_end": self.quote_end,
            "quote_line": self.quote_line,
            "page_start": self.page_start,
            "page_end": self.page_end,
            "part": self.part if self.page_start is not None else None,
            "part_name": self.part_name or None,
        }


@dataclass(frozen=True)
class Excerpt:
    """A sentence an answer was taken from: in passage ``n``, at ``start:end`` of the
    source document, beginning on line ``line``."""

    n: int
    doc_id: str
    start: int
    end: int
    line: int
    text: str

    @classmethod
    def of(cls, n: int, hit: Hit, start: int, end: int) -> Excerpt:
        """The excerpt at ``start:end`` of ``hit.text`` (passage ``n``)."""
        text = hit.text[start:end]
        return cls(n, hit.doc_id, hit.start + start, hit.start + end, hit.line_of(start), text)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Signals:
    """What is measured of one answer to estimate its confidence.

    ``similarity`` is the cosine similarity of the question and the best sentence,
    ``overlap`` the rarity-weighted share of the question's words in that sentence,
    ``answer_logprob`` the mean log-probability of the answer's tokens (kept for
    reporting; it does not enter the estimate), ``holds`` the answer-finder's
    probability that the best sentence holds the answer (None without a finder).
    """

    similarity: float
    overlap: float
    answer_logprob: float = 0.0
    holds: float | None = None


@dataclass(frozen=True)
class Answer:
    """An answer with the passages it was given and the ones it cites.

    ``passages[n - 1]`` is passage ``[n]``. When ``abstained``, ``text`` says the
    answer was not found and ``passages`` are the closest ones; the model's answer, if
    it gave one, is kept in ``generated`` only. ``supported`` is False when that answer
    could not be tied to any passage. ``confidence`` is the estimated probability that
    the indexed documents answer the question and the answer is drawn from them
    (calibrated on SQuAD); below the engine's ``min_confidence`` it abstains. ``mode``
    is the answer mode, ``extractive`` (a span copied from a passage) or
    ``generative``; ``signals`` are what the confidence was estimated from.
    ``shape`` is the shape of answer the question asked for: ``factoid`` (a short
    span) or ``sentences`` (whole sentences). ``sentences`` are the sentences the
    answer was taken from, each with its place in the source.
    """

    question: str
    text: str
    citations: list[Citation] = field(default_factory=list)
    passages: list[Hit] = field(default_factory=list)
    abstained: bool = False
    supported: bool = True
    confidence: float = 0.0
    mode: str = "extractive"
    generated: str = ""
    signals: Signals | None = None
    shape: str = ""
    sentences: list[Excerpt] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "answer": self.text,
            "citations": [c.to_dict() for c in self.citations],
            "passages": [{"n": n, **p.to_dict()} for n, p in enumerate(self.passages, 1)],
            "abstained": self.abstained,
            "supported": self.supported,
            "confidence": round(self.confidence, 4),
            "mode": self.mode,
            "generated": self.generated,
            "shape": self.shape,
            "sentences": [e.to_dict() for e in self.sentences],
        }
