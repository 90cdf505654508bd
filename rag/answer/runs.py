"""Runs of sentences: where an answer made of a passage's sentences starts and ends.

An answer starts from a sentence that reads as one, runs on into the neighbouring
sentences that also rank high (within a list item, never into the next item or out of
the list), starts one sentence earlier when its first sentence leans on the one before
it or describes the signature above it, and takes with it the list or the command that
a sentence ending in a colon introduces.
"""

from __future__ import annotations

import re

from rag.answer.sentences import Sentence
from rag.text import (
    in_list_item,
    is_section_number,
    line_around,
    list_block_end,
    looks_like_code,
)
from rag.types import Hit

# A sentence answer runs to at most this many sentences, joining the best one with
# neighbours that rank among the best this many.
MAX_SENTENCES = 3
NEIGHBOUR_RANK = 8

# A list introduced by a sentence ending in a colon is answered whole up to this length.
MAX_LIST_CHARS = 1500
# A command or signature line is answered whole up to this length.
MAX_CODE_CHARS = 300

# Text without sentence punctuation this short is a title or a label, not an answer.
MIN_WORDS = 6
# A sentence that opens with one of these leans on the sentence before it ("Their main
# drawback is slow sampling", "Transformers therefore add position information"): an
# answer that starts with it starts one sentence earlier, where the text runs on.
LEANS_BACK = re.compile(
    r"^\W*(?:this|these|that|those|it|its|they|their|them|such|therefore|thus|hence|so|"
    r"however|but|instead|also|then|consequently|as a result|in contrast|for this reason|"
    r"because of this|here|he|she|his|her)\b|^\W*\w+\s+(?:therefore|thus|also|then)\b",
    re.IGNORECASE,
)


def adjoin(text: str, end: int, start: int) -> bool:
    """Only white space between ``text[:end]`` and ``text[start:]``."""
    return end <= start and not text[end:start].strip()


def runs_on(text: str, end: int, start: int) -> bool:
    """Whether ``text[start:]`` runs on from ``text[:end]`` as one text: only white space
    between them, and no line break into, out of or between list items. A list item is
    a thing of its own: the item before, or the paragraph after the list, is another."""
    if not adjoin(text, end, start):
        return False
    breaks = "\n" in text[end:start]
    return not (breaks and (in_list_item(text, start) or in_list_item(text, max(end - 1, 0))))


def following(text: str, s: Sentence, ranked: list[Sentence]) -> Sentence | None:
    """The sentence right after ``s`` in its passage ``text``, with only white space
    between them; None if there is none."""
    after = [r for r in ranked if r.passage == s.passage and r.start >= s.end]
    nearest = min(after, key=lambda r: r.start, default=None)
    return nearest if nearest is not None and adjoin(text, s.end, nearest.start) else None


def preceding(text: str, s: Sentence, ranked: list[Sentence]) -> Sentence | None:
    """The sentence right before ``s`` in its passage ``text``, with only white space
    between them; None if there is none."""
    before = [r for r in ranked if r.passage == s.passage and r.end <= s.start]
    nearest = max(before, key=lambda r: r.end, default=None)
    return nearest if nearest is not None and adjoin(text, nearest.end, s.start) else None


def list_intro(text: str, s: Sentence, ranked: list[Sentence]) -> Sentence | None:
    """The sentence ending in a colon that introduces the list whose item ``s`` is in
    (of passage ``text``), found by walking back over the items before; None when
    ``s`` is in no list item or nothing introduces its list."""
    at = s
    while in_list_item(text, at.start):
        before = preceding(text, at, ranked)
        if before is None:
            return None
        if not in_list_item(text, before.start):
            return before if before.text.rstrip().endswith(":") else None
        at = before
    return None


def describes(text: str, signature: Sentence, s: Sentence) -> bool:
    """Whether ``s`` opens a line that describes the command or signature standing on
    the line before it ("text || text → text" / "Concatenates the two strings."): the
    description answers nothing without it."""
    opens_line = not text[text.rfind("\n", 0, s.start) + 1 : s.start].strip()
    return opens_line and code_line(text, signature) and not code_line(text, s)


def code_line(text: str, s: Sentence) -> bool:
    """Whether ``s`` is a command or signature standing on a line of its own."""
    line = (s.start, s.end)
    return line_around(text, *line) == line and is_code(text, line)


def described(hits: list[Hit], s: Sentence, ranked: list[Sentence]) -> bool:
    """Whether ``s`` describes the command or signature on the line before it."""
    text = hits[s.passage].text
    before = preceding(text, s, ranked)
    return before is not None and describes(text, before, s)


def is_code(text: str, line: tuple[int, int]) -> bool:
    """Whether ``text[line[0]:line[1]]`` is a command or a signature, short enough to
    be answered whole."""
    return looks_like_code(text[line[0] : line[1]]) and line[1] - line[0] <= MAX_CODE_CHARS


def reads_as_sentence(s: Sentence) -> bool:
    """Whether ``s`` reads as a sentence, not as a title, a label, a section number, an
    entry of a table of contents (``Write-Ahead Logging (WAL)`` over the next entry's
    number ``30.4.``) or a run of four or more lines of which fewer than a quarter end
    like a sentence (a table, an index of terms): it has words, and it ends like a
    sentence or is long enough to say something (``Isolation Levels`` and ``1.2.8.`` do
    not)."""
    lines = [line for line in s.text.splitlines() if line.strip()]
    if (
        not re.search(r"[^\W\d_]{2}", s.text)
        or is_section_number(lines[-1])
        or (
            len(lines) >= 4 and sum(line.rstrip()[-1] in ".!?:;" for line in lines) < len(lines) / 4
        )
    ):
        return False
    return s.text.rstrip()[-1:] in ".!?:;)" or len(s.text.split()) >= MIN_WORDS


def sentence_run(
    text: str,
    best: Sentence,
    readable: list[Sentence],
    ranked: list[Sentence],
    *,
    grow: bool = True,
    follow: bool = False,
) -> list[Sentence]:
    """The sentences an answer starting from ``best`` (of passage ``text``) runs to:
    with ``grow``, the high-ranked sentences next to it too; with ``follow``, the
    sentences that follow it, whatever their rank."""
    run = [best]
    near = [s for s in readable[1:NEIGHBOUR_RANK] if s.passage == best.passage]
    grew = grow
    while grew and len(run) < MAX_SENTENCES:
        grew = False
        for s in near:
            if s in run or len(run) >= MAX_SENTENCES:
                continue
            if runs_on(text, run[-1].end, s.start):
                run.append(s)
                grew = True
            elif runs_on(text, s.end, run[0].start) and not code_line(text, run[0]):
                run.insert(0, s)  # not above a signature: that is another entry's
                grew = True
    before = preceding(text, run[0], ranked)
    leans = (
        before is not None
        and LEANS_BACK.match(run[0].text)
        and reads_as_sentence(before)
        and runs_on(text, before.end, run[0].start)
    )
    if before is not None and (leans or describes(text, before, run[0])):
        run.insert(0, before)
        if len(run) > MAX_SENTENCES:
            run.pop()
    while follow and len(run) < MAX_SENTENCES and not run[-1].text.rstrip().endswith(":"):
        after = following(text, run[-1], ranked)
        if after is None or not reads_as_sentence(after):
            break
        run.append(after)
    intro = next((n for n, s in enumerate(run) if s.text.rstrip().endswith(":")), None)
    if intro is not None:
        # a sentence that introduces a list or a command takes it with it, whole
        end = list_block_end(text, run[intro].end)
        if end is not None and end - run[intro].end <= MAX_LIST_CHARS:
            within = [s for s in ranked if s.passage == best.passage
                      and run[intro].end <= s.start and s.end <= end]  # fmt: skip
            run = sorted([*run[: intro + 1], *within], key=lambda s: s.start)
        elif intro == len(run) - 1 and (then := following(text, run[-1], ranked)):
            run.append(then)
    return run
