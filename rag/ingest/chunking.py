"""Splitting documents into chunks sized in the embedder's tokens.

A chunk is a contiguous slice of its document's text: ``doc.text[chunk.start:chunk.end]
== chunk.text`` always holds, so every passage can be shown and cited exactly where it
came from. Cuts fall, in order of preference, at headings, paragraph ends, sentence
ends, line ends (code and lists), and only for an overlong sentence inside it.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from rag.formats import LINE_TYPES, MARKDOWN_TYPES
from rag.settings import check_chunking
from rag.text import MD_HEADING, SENTENCE_END, strip_span
from rag.types import Chunk, Document


class Tokenizer(Protocol):
    def token_offsets(self, texts: Sequence[str]) -> list[list[tuple[int, int]]]: ...


@dataclass
class _Unit:
    start: int
    end: int
    new_block: bool  # first unit of a paragraph or block
    heading: str  # heading path in force for this unit
    is_heading: bool
    tokens: int = 0


_BLOCK_BREAK = re.compile(r"\n[ \t]*\n\s*")
_FENCE = re.compile(r"^\s*(```|~~~)")
_LIST_ITEM = re.compile(r"^\s*(?:[-*+•]|\d{1,3}[.)])\s+")
_HEADING_SEP = " > "


def chunk_documents(
    docs: Sequence[Document], tokenizer: Tokenizer, max_tokens: int = 200, overlap: int = 32
) -> list[list[Chunk]]:
    """Chunks of each document, tokenizing every piece of every document in one call."""
    check_chunking(max_tokens, overlap)
    units_per_doc = [_split_units(d) for d in docs]
    flat = [(d, u) for d, units in zip(docs, units_per_doc) for u in units]
    offsets = tokenizer.token_offsets([d.text[u.start : u.end] for d, u in flat])
    out: list[list[Chunk]] = []
    i = 0
    for doc, units in zip(docs, units_per_doc):
        sized: list[_Unit] = []
        for u in units:
            sized.extend(_fit(u, offsets[i], max_tokens))
            i += 1
        out.append(_pack(doc, sized, max_tokens, overlap))
    return out


def chunk_document(
    doc: Document, tokenizer: Tokenizer, max_tokens: int = 200, overlap: int = 32
) -> list[Chunk]:
    return chunk_documents([doc], tokenizer, max_tokens, overlap)[0]


def _split_units(doc: Document) -> list[_Unit]:
    """Sentence-or-line units with stripped spans, marked with their block and heading."""
    text = doc.text
    markdown = doc.type in MARKDOWN_TYPES
    by_line = doc.type == "code"  # a line of code is never cut into sentences
    records = doc.type in LINE_TYPES
    units: list[_Unit] = []
    stack: list[tuple[int, str]] = []
    in_fence = False
    pos = 0
    for m in [*_BLOCK_BREAK.finditer(text), None]:
        block_end = m.start() if m else len(text)
        first = True
        line_start = pos
        for line in text[pos:block_end].split("\n"):
            line_end = line_start + len(line)
            s, e = strip_span(text, line_start, line_end)
            if s < e:
                heading_match = MD_HEADING.match(line) if markdown and not in_fence else None
                if markdown and _FENCE.match(line):
                    in_fence = not in_fence
                if heading_match:
                    level = len(heading_match.group(1))
                    while stack and stack[-1][0] >= level:
                        stack.pop()
                    stack.append((level, heading_match.group(2).strip()))
                    path = _HEADING_SEP.join(h for _, h in stack)
                    units.append(_Unit(s, e, True, path, True))
                    first = True  # what follows a heading starts a new block
                    line_start = line_end + 1
                    continue
                path = _HEADING_SEP.join(h for _, h in stack)
                own_line = records or in_fence or _LIST_ITEM.match(line) is not None
                if own_line or first or not units or units[-1].is_heading:
                    units.append(_Unit(s, e, first, path, False))
                else:  # a wrapped prose line continues the previous unit
                    units[-1].end = e
                first = False
            line_start = line_end + 1
        pos = m.end() if m else len(text)
    return [piece for u in units for piece in _sentences(text, u, by_line)]


def _sentences(text: str, unit: _Unit, by_line: bool) -> list[_Unit]:
    if by_line or unit.is_heading:
        return [unit]
    pieces: list[_Unit] = []
    s = unit.start
    for m in SENTENCE_END.finditer(text, unit.start, unit.end):
        pieces.append(_Unit(s, m.start(), unit.new_block and not pieces, unit.heading, False))
        s = m.end()
    pieces.append(_Unit(s, unit.end, unit.new_block and not pieces, unit.heading, False))
    return [p for p in pieces if p.start < p.end]


def _fit(unit: _Unit, spans: list[tuple[int, int]], max_tokens: int) -> list[_Unit]:
    """The unit with its token count, or cut into pieces of at most max_tokens."""
    if len(spans) <= max_tokens:
        unit.tokens = max(1, len(spans))
        return [unit]
    pieces = []
    for k in range(0, len(spans), max_tokens):
        window = spans[k : k + max_tokens]
        start = unit.start + window[0][0] if k else unit.start
        end = unit.start + window[-1][1] if k + max_tokens < len(spans) else unit.end
        pieces.append(
            _Unit(start, end, unit.new_block and k == 0, unit.heading, False, len(window))
        )
    return pieces


def _pack(doc: Document, units: list[_Unit], max_tokens: int, overlap: int) -> list[Chunk]:
    text = doc.text
    newlines = [m.start() for m in re.finditer("\n", text)]
    chunks: list[Chunk] = []
    current: list[_Unit] = []
    size = 0

    def emit() -> None:
        first, last = current[0], current[-1]
        start, end = first.start, last.end
        page_start = bisect_right(doc.pages, start) if doc.pages else None
        page_end = bisect_right(doc.pages, end - 1) if doc.pages else None
        chunks.append(
            Chunk(
                ordinal=len(chunks),
                text=text[start:end],
                start=start,
                end=end,
                line_start=bisect_left(newlines, start) + 1,
                line_end=bisect_left(newlines, end - 1) + 1,
                heading=first.heading,
                page_start=page_start or None,
                page_end=page_end or None,
                tokens=size,
            )
        )

    for i, unit in enumerate(units):
        if current and _should_cut(current, size, unit, units, i, max_tokens):
            emit()
            carried = _overlap_tail(current, unit, overlap, max_tokens)
            current, size = carried, sum(u.tokens for u in carried)
        current.append(unit)
        size += unit.tokens
    if current:
        emit()
    return chunks


def _should_cut(
    current: list[_Unit], size: int, unit: _Unit, units: list[_Unit], i: int, max_tokens: int
) -> bool:
    if size + unit.tokens > max_tokens:
        return True
    if current[-1].is_heading:
        return False  # never leave a heading alone at the end of a chunk
    if unit.is_heading:
        return size >= max_tokens // 4
    if unit.new_block and size >= max_tokens // 2:
        # cut at a paragraph end rather than split the next paragraph, if it won't fit
        block = unit.tokens
        for nxt in units[i + 1 :]:
            if nxt.new_block or nxt.is_heading:
                break
            block += nxt.tokens
        return size + block > max_tokens
    return False


def _overlap_tail(current: list[_Unit], nxt: _Unit, overlap: int, max_tokens: int) -> list[_Unit]:
    """The last units of the finished chunk to repeat at the start of the next one."""
    if overlap <= 0 or nxt.is_heading:
        return []
    tail: list[_Unit] = []
    total = 0
    for u in reversed(current):
        if u.is_heading or total + u.tokens > overlap or u.heading != nxt.heading:
            break
        tail.insert(0, u)
        total += u.tokens
    if total + nxt.tokens > max_tokens:
        return []
    return tail
