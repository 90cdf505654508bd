"""Plain-text helpers every stage shares: words, stop words, sentences, verbatim spans.

>>> find_span("cat sat", "the concat cat\\n sat down")
(11, 19)
>>> sorted(content_words("What does LoRA train?"))
['lora', 'train']
>>> sorted(content_stems("Why are transformers faster to train than RNNs?"))
['faster', 'rnn', 'train', 'transform']
>>> content_stems("a transformer processes all positions in training") >= {"transform", "train"}
True
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable
from functools import lru_cache

import snowballstemmer

# One list for every use: words too common to tell texts apart (lexical queries,
# sentence ranking) or to stand alone as an answer (copied spans).
STOPWORDS = frozenset(
    """
    a about above after again against all am an and any are as at be because been before
    being below between both but by can could did do does doing down during each few for
    from further had has have having he her here hers herself him himself his how i if in
    into is it its itself just may me might more most my myself no nor not now of off on
    once only or other our ours ourselves out over own same she should so some such than
    that the their theirs them themselves then there these they this those through to too
    under until up very was we were what when where which while who whom whose why will
    with would you your yours yourself yourselves
    """.split()
)

WORD = re.compile(r"\w+")
# Markdown: a heading line (ATX style) and the end of a sentence.
MD_HEADING = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t#]*$")
SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+")
# a heading line, or a run of text up to a blank line or a heading line
_BLOCK_OR_HEADING = re.compile(
    r"^#{1,6}[ \t][^\n]*|(?:(?!\n[ \t]*\n|\n#{1,6}[ \t]).)+", re.M | re.S
)


def squeeze(text: str) -> str:
    """``text`` on one line: every run of white space becomes one space, ends stripped."""
    return " ".join(text.split())


_PUNCT = str.maketrans({c: " " for c in string.punctuation + "“”‘’–—"})
_ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalize(text: str) -> str:
    """Lower-cased words without punctuation and articles, as answers are compared."""
    return " ".join(_ARTICLES.sub(" ", text.lower().translate(_PUNCT)).split())


def content_words(text: str) -> set[str]:
    """The lower-cased words of ``text`` that are not stop words or single characters."""
    return {w for w in WORD.findall(text.lower()) if w not in STOPWORDS and len(w) > 1}


@lru_cache(maxsize=1)
def _stemmer() -> snowballstemmer.stemmer:
    return snowballstemmer.stemmer("english")


_ACRONYM_PLURAL = re.compile(r"\b([A-Z][A-Z0-9]+)s\b")


def stems(words: Iterable[str]) -> set[str]:
    """The stems (Snowball, English) of ``words``."""
    return set(_stemmer().stemWords(list(words)))


def content_stems(text: str) -> set[str]:
    """The stems (Snowball, English) of ``text``'s content words: "trains" and "training"
    match "train", and an acronym's plural ("RNNs") its singular."""
    return stems(content_words(_ACRONYM_PLURAL.sub(r"\1", text)))


def says_something(text: str) -> bool:
    """Whether ``text`` holds a word that is not a stop word (``the`` alone says nothing)."""
    return any(w not in STOPWORDS for w in WORD.findall(text.lower()))


_SECTION_NUMBER = re.compile(r"^\d+(?:\.\d+)+\.?$")


def is_section_number(text: str) -> bool:
    """Whether ``text`` is a section number and nothing else (``1.4.4.``, ``30.4.``)."""
    return _SECTION_NUMBER.match(text.strip()) is not None


def says_more(answer: str, question: str) -> bool:
    """Whether ``answer`` holds a word (by stem) that is neither a stop word nor in
    ``question``: "strings" says nothing to "how do I concatenate two strings?".

    >>> says_more("strings", "how do I concatenate two strings?")
    False
    >>> says_more("8", "how many heads does the model have?")
    True

    A section number ("1.4.4.") says nothing either.

    >>> says_more("1.4.4.", "which tool copies text to the clipboard?")
    False
    """
    if is_section_number(answer):
        return False
    words = [w for w in WORD.findall(answer.lower()) if w not in STOPWORDS]
    return bool(stems(words) - content_stems(question))


def span_pattern(span: str, *, whole: bool = True) -> re.Pattern[str]:
    """A pattern for ``span`` as words of a text, white space aside.

    It starts at a word boundary, and ends at one too when ``whole`` (otherwise the
    span may be the start of a longer word, as while it is being written). A number is
    whole too: "1" is not a span of "Table 13.1", nor "1" of "1,000".

    >>> find_span("1", "described in Table 13.1.") is None
    True
    >>> find_span("13.1", "described in Table 13.1.")
    (19, 23)
    """
    words = span.split()
    first, last = (words[0][:1], words[-1][-1:]) if words else ("", "")
    head = (r"(?<!\w)" if first.isalnum() else "") + (r"(?<!\d[.,])" if first.isdigit() else "")
    tail = (r"(?!\w)" if whole and last.isalnum() else "") + (
        r"(?![.,]\d)" if whole and last.isdigit() else ""
    )
    return re.compile(head + r"\s+".join(re.escape(w) for w in words) + tail)


def find_span(answer: str, text: str) -> tuple[int, int] | None:
    """Where ``answer`` occurs in ``text`` as whole words, white space aside, if it does."""
    if not answer.split():
        return None
    m = span_pattern(answer).search(text)
    return (m.start(), m.end()) if m else None


def strip_span(text: str, start: int, end: int) -> tuple[int, int]:
    """``start:end`` narrowed to leave out white space at either end."""
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each sentence of ``text``, white space around it left out.

    Blank lines end a sentence too. Markdown heading lines are not sentences: they
    are left out.
    """
    spans: list[tuple[int, int]] = []
    for block in _BLOCK_OR_HEADING.finditer(text):
        start, stop = block.start(), block.end()
        if text.startswith("#", start) and MD_HEADING.match(block.group()):
            continue
        for m in SENTENCE_END.finditer(text, start, stop):
            spans.append(strip_span(text, start, m.start()))
            start = m.end()
        spans.append(strip_span(text, start, stop))
    return [(s, e) for s, e in spans if s < e]


# What only code has: shell prompts, backslash commands, operators, calls, statements.
_CODE = re.compile(
    r"^\s*[$#>]\s|\\[a-z]|->|::|\|\||[=;{}<>]|\w\(|^\s*[A-Z]{3,}\s+[A-Z]{2,}|\)\s*→\s*\w"
)
_OPENERS = {")": "(", "]": "[", "}": "{", "'": "'", '"': '"'}


def looks_like_code(line: str) -> bool:
    """Whether ``line`` reads as a command, a signature or a statement, not as prose.

    >>> looks_like_code("$ createdb mydb"), looks_like_code("ALTER TABLE t RENAME COLUMN a TO b;")
    (True, True)
    >>> looks_like_code("replace ( string text, from text, to text ) → text")  # a signature
    True
    >>> looks_like_code("The discriminator judges whether an image is real.")
    False
    """
    return bool(_CODE.search(line)) and not line.rstrip().endswith((". ", "."))


def whole_words(text: str, start: int, end: int) -> tuple[int, int]:
    """``start:end`` widened to whole white-space-separated words, with trailing
    punctuation dropped unless it closes something the span opens.

    >>> text = "run pg_dump mydb > db.sql, then stop."
    >>> a, b = whole_words(text, 5, 9)
    >>> text[a:b]
    'pg_dump'
    >>> text[slice(*whole_words(text, 20, 22))]
    'db.sql'
    >>> text2 = "the size (in bytes) is (pg_database_size)."
    >>> text2[slice(*whole_words(text2, 25, 30))]
    '(pg_database_size)'

    """
    while start > 0 and not text[start - 1].isspace():
        start -= 1
    while end < len(text) and not text[end].isspace():
        end += 1
    while end > start and text[end - 1] in ".,;:!?)]}'\"":
        closer, inside = text[end - 1], text[start : end - 1]
        opener = _OPENERS.get(closer)
        if opener == closer and inside.count(closer) % 2 == 1:
            break  # a closing quote
        if opener not in (None, closer) and inside.count(opener) > inside.count(closer):
            break  # a closing bracket
        end -= 1
    return start, end


def line_around(text: str, start: int, end: int) -> tuple[int, int]:
    """The line (or lines) of ``text`` holding ``start:end``, white space left out."""
    a = text.rfind("\n", 0, start) + 1
    b = text.find("\n", end)
    return strip_span(text, a, len(text) if b < 0 else b)


_LIST_ITEM = re.compile(r"[ \t]*(?:[-*+•◦▪]|\d{1,3}[.)])[ \t]+\S")


def in_list_item(text: str, offset: int) -> bool:
    """Whether ``text[offset]`` is on a line that opens a list item.

    >>> text = "Kinds:\\n- **Adapters** insert layers. They are small.\\nDone."
    >>> in_list_item(text, text.index("They")), in_list_item(text, text.index("Done"))
    (True, False)

    A bullet, as in text taken from a PDF ("• Item"), opens one too.

    >>> in_list_item("It is:\\n\\n• Free software\\n", 9)
    True
    """
    return _LIST_ITEM.match(text, text.rfind("\n", 0, offset) + 1) is not None


def list_block_end(text: str, start: int) -> int | None:
    """Where the list that begins at or after ``start`` (past white space) ends: its
    items, their continuation lines, and blank lines between items. None when no list
    item begins there.

    >>> text = "Three steps:\\n\\n1. Collect.\\n2. Train\\n   a model.\\n\\nThen stop."
    >>> text[13:list_block_end(text, 13)]
    '\\n1. Collect.\\n2. Train\\n   a model.'
    """
    lines = text[start:].split("\n")
    pos, end, seen, blank = start, None, False, False
    for line in lines:
        if _LIST_ITEM.match(line):
            seen, blank = True, False
            end = pos + len(line)
        elif not line.strip():
            blank = True
        elif seen and not blank and line[:1] in " \t":
            end = pos + len(line)  # an item's continuation line
        elif seen or line.strip():
            break
        pos += len(line) + 1
    return end
