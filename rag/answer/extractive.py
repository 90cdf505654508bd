"""The extractive answer: words copied verbatim from the best sentences.

A factoid question gets a short span. With the answer-finder, it is the span the
finder marks in the sentence it ranks first, cut from the passage itself. Without it,
the generator is shown only the sentences most likely to hold the answer, in a
few-shot prompt, with its decoding constrained to copying (``CopyFrom``); that span
is then found again in its passage: verified, not trusted, since a generator that
cannot constrain decoding may paraphrase. A span of nothing but the question's own
words answers nothing: the next sentence is read, then the best sentence is given
whole. Other
questions (what is, how, why, lists, comparisons) get the best sentence as it stands,
run on into the neighbouring sentences that also rank high, with no generation.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable

from rag.answer.compare import compared, mentions
from rag.answer.reading import STOP, Reading, says_not_found
from rag.answer.runs import (
    described,
    following,
    is_code,
    list_intro,
    preceding,
    reads_as_sentence,
    sentence_run,
)
from rag.answer.sentences import Sentence
from rag.answer.shape import SENTENCES, asks_for_name, asks_for_set
from rag.models.generation import CopyFrom, Generation, Generator
from rag.text import (
    content_words,
    find_span,
    line_around,
    says_more,
    squeeze,
    whole_words,
)
from rag.types import Hit

# A question asking for a set is answered from a sentence announcing one ("distinguishes
# two kinds", "three steps:") among this many of the best sentences.
ANNOUNCE_RANK = 5
_ANNOUNCES = re.compile(
    r":\s*$|\b(two|three|four|five|six|seven|eight|nine|ten|several|the following|"
    r"main)\s+(\w+\s+){0,2}(kinds|types|levels|steps|ways|forms|classes|categories|"
    r"families|stages|phases|parts|components|variants|methods|approaches|modes|options|"
    r"strategies|techniques|groups|sorts)\b",
    re.IGNORECASE,
)
# A comparison's two things are looked for among this many of the best sentences.
COMPARE_RANK = 12
# Sentences read, best first, for a span that says more than the question.
SPAN_TRIES = 2
INSTRUCTION = (
    "Answer each question with a short span copied word for word from its passage. "
    "Use nothing but the passage."
)
# Worked examples teach a base model to copy a short span; they are not from any index.
EXAMPLES = (
    (
        "The Eiffel Tower was completed in 1889 as the entrance arch of the World's Fair in Paris.",
        "When was the Eiffel Tower completed?",
        "1889",
    ),
    (
        "Marie Curie, who was born in Warsaw, shared the 1903 Nobel Prize in Physics with "
        "Pierre Curie and Henri Becquerel.",
        "Who shared the 1903 physics prize with Marie Curie?",
        "Pierre Curie and Henri Becquerel",
    ),
    (
        "Because the old bridge was too narrow for modern traffic, the city council replaced "
        "it with a wider one in 1998.",
        "Why was the old bridge replaced?",
        "it was too narrow for modern traffic",
    ),
)


def build_prompt(question: str, passage: str) -> str:
    """The few-shot prompt of the extractive reader; the passage is its one text."""
    shots = "".join(
        f"Passage: {text}\nQuestion: {asked}\nAnswer: {answer}\n\n"
        for text, asked, answer in EXAMPLES
    )
    return (
        f"{INSTRUCTION}\n\n{shots}Passage: {squeeze(passage)}\n"
        f"Question: {squeeze(question)}\nAnswer:"
    )


class Extractive:
    """Copies a span from the ``sentences`` best sentences."""

    name = "extractive"

    def __init__(self, *, max_new_tokens: int, max_prompt_tokens: int, sentences: int) -> None:
        self.max_new_tokens = max_new_tokens
        self.sentences = sentences

    def read(
        self,
        generator: Generator,
        question: str,
        shape: str,
        hits: list[Hit],
        ranked: list[Sentence],
        on_token: Callable[[str], None] | None,
    ) -> Reading | None:
        if not ranked:  # headings only: no sentence to copy from
            return None
        readable = [s for s in ranked if reads_as_sentence(s)] or ranked
        if shape == SENTENCES:
            pair = compared(question)
            answer = _comparison(hits, readable, ranked, pair, on_token) if pair else None
            if answer is None and asks_for_set(question):
                answer = _announced_set(hits, readable, ranked, on_token)
            return answer or _sentences(hits, readable, ranked, on_token)
        if asks_for_name(question) and described(hits, readable[0], ranked):
            # "which function replaces ...": the description is the best sentence and
            # the name is the signature above it; both are the answer
            return _sentences(hits, readable, ranked, on_token)
        # a span of the question's own words answers nothing: the next sentence is read,
        # and if its span says nothing either, the best sentence is the answer
        for first in range(min(SPAN_TRIES, len(readable))):
            span = self._span(generator, question, hits, readable[first:], ranked)
            if says_not_found(span.generation.text):
                return span  # the engine abstains
            if says_more(span.generation.text, question):
                if on_token is not None:
                    on_token(span.generation.text)
                return span
        return _sentences(hits, readable, ranked, on_token)

    def _span(
        self,
        generator: Generator,
        question: str,
        hits: list[Hit],
        readable: list[Sentence],
        ranked: list[Sentence],
    ) -> Reading:
        """The short span a factoid question asks for, from the first of ``readable``."""
        if readable[0].span is not None:
            return _marked_span(hits, readable[0], ranked)
        chosen = sorted(readable[: self.sentences], key=lambda s: (s.passage, s.start))
        reading = [s.text for s in chosen]
        extra: dict[str, CopyFrom] = {}
        if _takes_copy_from(generator):
            extra["copy_from"] = CopyFrom(reading, frozenset(content_words(question)))
        gen = generator.generate(
            build_prompt(question, " ".join(reading)),
            max_new_tokens=self.max_new_tokens,
            stop=STOP,
            on_token=None,  # streamed once checked
            **extra,
        )
        holding = [s for s in chosen if find_span(gen.text, s.text) is not None]
        cited = list(dict.fromkeys(s.passage + 1 for s in holding))
        return Reading(gen, hits, cited, holding)


def _marked_span(hits: list[Hit], best: Sentence, ranked: list[Sentence]) -> Reading:
    """The span the answer-finder marks in ``best``, as it stands in the passage: whole
    words, and the whole line when that line is a command or a signature. A sentence
    that introduces a command with a colon ("To dump a database, run:") is answered
    with the command."""
    assert best.span is not None
    text = hits[best.passage].text
    a, b = whole_words(text, best.start + best.span[0], best.start + best.span[1])
    then = following(text, best, ranked) if best.text.rstrip().endswith(":") else None
    if then is not None:
        command = line_around(text, then.start, then.start)
        if is_code(text, command):
            a, b = command
    if is_code(text, line := line_around(text, a, b)):
        a, b = line
    answer = text[a:b]
    return Reading(Generation(answer, [], 0, 0), hits, [best.passage + 1], [best])


def _sentences(
    hits: list[Hit],
    readable: list[Sentence],
    ranked: list[Sentence],
    on_token: Callable[[str], None] | None,
) -> Reading:
    """The best sentence as it stands, with the high-ranked sentences around it.

    The answer starts from a sentence that reads as one; a list or a command block
    may follow a sentence that introduces it with a colon.
    """
    run = sentence_run(hits[readable[0].passage].text, readable[0], readable, ranked)
    return _whole(hits, run, on_token)


def _quote(hits: list[Hit], run: list[Sentence]) -> str:
    """The text ``run`` spans in its passage, as it stands."""
    return hits[run[0].passage].text[run[0].start : run[-1].end]


def _whole(hits: list[Hit], run: list[Sentence], on_token: Callable[[str], None] | None) -> Reading:
    """The answer that is ``run`` as it stands, streamed at once."""
    answer = _quote(hits, run)
    if on_token is not None:
        on_token(answer)
    return Reading(Generation(answer, [], 0, 0), hits, [run[0].passage + 1], run)


def _announced_set(
    hits: list[Hit],
    readable: list[Sentence],
    ranked: list[Sentence],
    on_token: Callable[[str], None] | None,
) -> Reading | None:
    """The answer to a question asking for a set of things, from the best-ranked
    sentence that announces one ("... distinguishes two kinds.", "... three steps:") in
    the best sentence's passage, else from one that stands right before one of the best
    sentences (an item of its set) or introduces the list one of them is an item of, run
    on into what follows it; None if there is none."""
    best = readable[0].passage  # a set announced elsewhere is another topic's
    announcing = next(
        (s for s in readable[:ANNOUNCE_RANK] if s.passage == best and _ANNOUNCES.search(s.text)),
        None,
    ) or next(
        (a for s in readable[:ANNOUNCE_RANK]
         if (a := preceding(hits[s.passage].text, s, ranked)) and _ANNOUNCES.search(a.text)),
        None,
    ) or next(
        (a for s in readable[:ANNOUNCE_RANK] if (a := list_intro(hits[s.passage].text, s, ranked))),
        None,
    )  # fmt: skip
    if announcing is None:
        return None
    run = sentence_run(
        hits[announcing.passage].text, announcing, readable, ranked, grow=False, follow=True
    )
    return _whole(hits, run, on_token)


def _comparison(
    hits: list[Hit],
    readable: list[Sentence],
    ranked: list[Sentence],
    pair: tuple[str, str],
    on_token: Callable[[str], None] | None,
) -> Reading | None:
    """The answer to a question comparing ``pair``: the usual one when it speaks of
    both; else the best-ranked sentence about each, each with its run and its citation,
    in reading order. None when the best sentences speak of only one of them."""
    usual = _sentences(hits, readable, ranked, None)
    if all(any(mentions(name, s.text) for s in usual.sentences) for name in pair):
        if on_token is not None:
            on_token(usual.generation.text)
        return usual
    top = readable[:COMPARE_RANK]
    first = next((s for s in top if mentions(pair[0], s.text)), None)
    second = next((s for s in top if mentions(pair[1], s.text) and s is not first), None)
    if first is None or second is None:
        return None
    runs = [
        sentence_run(hits[s.passage].text, s, readable, ranked, grow=False) for s in (first, second)
    ]
    runs.sort(key=lambda r: (r[0].passage, r[0].start))
    a, b = runs
    if a[0].passage == b[0].passage and b[0].start <= a[-1].end:  # they overlap: one run
        merged = sorted({*a, *b}, key=lambda s: s.start)
        runs = [merged]
    quotes = [(r[0].passage + 1, _quote(hits, r)) for r in runs]
    answer = "\n\n".join(q for _, q in quotes)
    if on_token is not None:
        on_token(answer)
    cited = list(dict.fromkeys(n for n, _ in quotes))
    sentences = [s for r in runs for s in r]
    return Reading(Generation(answer, [], 0, 0), hits, cited, sentences, quotes)


def _takes_copy_from(generator: Generator) -> bool:
    """Whether ``generate`` takes ``copy_from`` (generators written before it do not)."""
    try:
        params = inspect.signature(generator.generate).parameters.values()
    except (TypeError, ValueError):
        return True
    return any(p.name == "copy_from" or p.kind is p.VAR_KEYWORD for p in params)
