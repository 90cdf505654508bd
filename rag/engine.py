"""The query engine: retrieve passages, read them with the generator, cite the sources.

By default the answer is a span copied from the sentence most likely to hold it
(decoding is constrained to copying), located again in its passage so that the
citation gives its exact offsets. When the documents do not seem to hold the
answer, the engine says so and returns the closest passages instead.

>>> engine = QueryEngine(Index.open("my-index"))        # doctest: +SKIP
>>> answer = engine.ask("what is a foundation model?")  # doctest: +SKIP
>>> answer.text, [c.location for c in answer.citations]  # doctest: +SKIP
"""

from __future__ import annotations

import inspect
import logging
import math
import re
import string
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from rag.confidence import MIN_CONFIDENCE, Signals, confidence
from rag.errors import InvalidValue
from rag.filters import Where
from rag.generator import CopyFrom, Generation, Generator, load_generator
from rag.index import DEFAULT_MODE, Hit, Index, location
from rag.sentences import STOPWORDS, Sentence, content_words, rank_sentences

log = logging.getLogger(__name__)

NOT_FOUND = "Not found in the indexed documents."
MAX_QUESTION_CHARS = 2000
EXTRACTIVE = "extractive"
GENERATIVE = "generative"
ANSWER_MODES = (EXTRACTIVE, GENERATIVE)
# scripts/eval_qa.py, SQuAD tune, Gemma 3 270M: extractive EM 33 / F1 48, generative 11 / 23.
DEFAULT_ANSWER_MODE = EXTRACTIVE

INSTRUCTION = (
    "Answer the question using only the numbered passages. Copy a short answer from the "
    "passages. If the passages do not hold the answer, write: not found."
)
# One worked example teaches a base model the format; it is not from any index.
EXAMPLE = (
    "Passages:\n"
    "[1] The Eiffel Tower is a wrought-iron lattice tower in Paris. It was completed in 1889 "
    "as the entrance arch of the World's Fair.\n"
    "[2] The Statue of Liberty was dedicated in New York Harbor in 1886.\n\n"
    "Question: When was the Eiffel Tower completed?\n"
    "Answer: 1889\n\n"
)
STOP = ("\n", "Question:", "Passages:", "Passage:")

EXTRACT_INSTRUCTION = (
    "Answer each question with a short span copied word for word from its passage. "
    "Use nothing but the passage."
)
# Worked examples teach a base model to copy a short span; they are not from any index.
EXTRACT_EXAMPLES = (
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


@dataclass(frozen=True)
class Citation:
    """Passage ``n`` of an answer, resolved to its source.

    ``start``/``end`` are the passage's character offsets in the source and
    ``line_start``/``line_end`` its lines. ``quote_start``/``quote_end`` are the
    offsets of the answer's text inside the source and ``quote_line`` its first line,
    when the answer occurs verbatim in the passage (always, for extractive answers).
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

    @classmethod
    def of(cls, n: int, hit: Hit, answer: str = "") -> Citation:
        """Passage ``n``; where ``answer`` occurs in it, the ``quote_*`` fields say where."""
        found = find_span(answer, hit.text) if answer else None
        quote: tuple[int | None, int | None, int | None] = (None, None, None)
        if found is not None:
            a, b = found
            quote = (hit.start + a, hit.start + b, hit.line_start + hit.text.count("\n", 0, a))
        return cls(
            n,
            hit.chunk_id,
            hit.doc_id,
            hit.source,
            hit.start,
            hit.end,
            hit.line_start,
            hit.line_end,
            hit.page_start,
            hit.page_end,
            *quote,
        )

    @property
    def location(self) -> str:
        return location(self.doc_id, self.line_start, self.line_end, self.page_start, self.page_end)


@dataclass(frozen=True)
class Answer:
    """An answer with the passages it was given and the ones it cites.

    ``passages[n - 1]`` is passage ``[n]``. When ``abstained``, ``text`` says the
    answer was not found and ``passages`` are the closest ones; the model's answer, if
    it gave one, is kept in ``generated`` only. ``supported`` is False when that answer
    could not be tied to any passage. ``confidence`` is the estimated probability that
    the indexed documents answer the question and the answer is drawn from them
    (calibrated on SQuAD); below the engine's ``min_confidence`` it abstains. ``mode``
    is ``extractive`` (a span copied from a passage) or ``generative``; ``signals``
    are what the confidence was estimated from.
    """

    question: str
    text: str
    citations: list[Citation] = field(default_factory=list)
    passages: list[Hit] = field(default_factory=list)
    abstained: bool = False
    supported: bool = True
    confidence: float = 0.0
    mode: str = EXTRACTIVE
    generated: str = ""
    signals: Signals | None = None


TokenCallback = Callable[[str], None]


class QueryEngine:
    """Answers questions from an index with a generator model (loaded on first use).

    ``answer_mode`` is ``extractive`` (default: the model copies a span from the
    passage sentences most likely to hold the answer, with decoding constrained to
    copying) or ``generative`` (the model writes an answer from whole passages; for
    answers longer than a span). ``sentences`` is how many of the best sentences the
    extractive reader is shown. Below ``min_confidence`` the engine abstains.
    """

    def __init__(
        self,
        index: Index,
        generator: Generator | str | None = None,
        *,
        k: int = 3,
        max_new_tokens: int = 48,
        max_prompt_tokens: int = 1536,
        mode: str = DEFAULT_MODE,
        where: Where | None = None,
        answer_mode: str = DEFAULT_ANSWER_MODE,
        sentences: int = 1,
        min_confidence: float = MIN_CONFIDENCE,
    ) -> None:
        if k <= 0:
            raise InvalidValue(f"k must be greater than 0, got {k}")
        if max_new_tokens <= 0:
            raise InvalidValue(f"max_new_tokens must be greater than 0, got {max_new_tokens}")
        if answer_mode not in ANSWER_MODES:
            raise InvalidValue(
                f"answer mode must be one of {', '.join(ANSWER_MODES)}, got {answer_mode!r}"
            )
        if sentences <= 0:
            raise InvalidValue(f"sentences must be greater than 0, got {sentences}")
        if not 0.0 <= min_confidence <= 1.0:
            raise InvalidValue(f"min_confidence must be between 0 and 1, got {min_confidence}")
        self.index = index
        self._generator = generator if not isinstance(generator, str) else None
        self._generator_name = generator if isinstance(generator, str) else None
        self.k = k
        self.max_new_tokens = max_new_tokens
        self.max_prompt_tokens = max_prompt_tokens
        self.mode = mode
        self.where = where
        self.answer_mode = answer_mode
        self.sentences = sentences
        self.min_confidence = min_confidence

    @property
    def generator(self) -> Generator:
        if self._generator is None:
            self._generator = load_generator(self._generator_name or self.index.settings.generator)
        return self._generator

    def ask(
        self, question: str, *, k: int | None = None, on_token: TokenCallback | None = None
    ) -> Answer:
        """Answer one question; ``on_token`` receives the answer text as it is generated."""
        question = _check_question(question)
        hits = self.index.search(question, k or self.k, self.mode, self.where)
        return self._answer(question, hits, on_token)

    def ask_batch(self, questions: Sequence[str], *, k: int | None = None) -> list[Answer]:
        """Answer many questions: one batched retrieval, then one generation each."""
        checked = [_check_question(q) for q in questions]
        if not checked:
            return []
        all_hits = self.index.search_batch(checked, k or self.k, self.mode, self.where)
        return [self._answer(q, hits, None) for q, hits in zip(checked, all_hits)]

    # -- internals ----------------------------------------------------------

    def _answer(self, question: str, hits: list[Hit], on_token: TokenCallback | None) -> Answer:
        mode = self.answer_mode
        if not hits:
            return Answer(question, NOT_FOUND, abstained=True, mode=mode)
        ranked = rank_sentences(question, [h.text for h in hits], self.index.embedder)
        best = ranked[0] if ranked else None
        signals = Signals(best.similarity, best.overlap) if best else Signals(0.0, 0.0)
        sure = confidence(signals)
        unanswered = Answer(question, NOT_FOUND, [], hits, True, True, sure, mode, "", signals)
        if sure < self.min_confidence:
            # decided before generating: nothing is streamed that would then be withdrawn
            log.info("confidence %.2f is below %.2f; not answering", sure, self.min_confidence)
            return unanswered
        if mode == EXTRACTIVE:
            if not ranked:  # headings only: no sentence to copy from
                return unanswered
            gen, cited = self._extract(question, ranked, on_token)
            passages = hits
        else:
            passages = self._fit_passages(question, hits)
            if not passages:
                return unanswered
            prompt = build_prompt(question, [p.text for p in passages])
            gen = self.generator.generate(
                prompt, max_new_tokens=self.max_new_tokens, stop=STOP, on_token=on_token
            )
            cited = attribute(gen.text, [p.text for p in passages])
        text = gen.text.strip()
        signals = replace(signals, answer_logprob=_mean(gen.token_logprobs))
        withdrawn = Answer(question, NOT_FOUND, [], passages, True, True, sure, mode, text, signals)
        if not text or _normalize(text) in {"not found", "notfound", "none", "unknown"}:
            return withdrawn
        if not cited:
            # never give an answer that cannot be cited
            log.info("answer %r could not be tied to any passage; withdrawn", text)
            return replace(withdrawn, supported=False)
        citations = [Citation.of(n, passages[n - 1], text) for n in cited]
        marked = text + "".join(f" [{n}]" for n in cited)
        return Answer(question, marked, citations, passages, False, True, sure, mode, text, signals)

    def _extract(
        self, question: str, ranked: list[Sentence], on_token: TokenCallback | None
    ) -> tuple[Generation, list[int]]:
        """A span copied from the best sentences, and the passages (1-based) holding it."""
        chosen = sorted(ranked[: self.sentences], key=lambda s: (s.passage, s.start))
        reading = [s.text for s in chosen]
        extra: dict[str, Any] = {}
        if _takes_copy_from(self.generator):
            extra["copy_from"] = CopyFrom(reading, frozenset(content_words(question)))
        gen = self.generator.generate(
            build_extract_prompt(question, " ".join(reading)),
            max_new_tokens=self.max_new_tokens,
            stop=STOP,
            on_token=on_token,
            **extra,
        )
        # verified, not trusted: a generator that cannot constrain decoding may paraphrase
        cited = [s.passage + 1 for s in chosen if find_span(gen.text, s.text) is not None]
        return gen, list(dict.fromkeys(cited))

    def _fit_passages(self, question: str, hits: list[Hit]) -> list[Hit]:
        """The passages, best first, that fit the prompt budget; none is cut."""
        window = min(self.generator.context_window, self.max_prompt_tokens + self.max_new_tokens)
        budget = window - self.max_new_tokens
        fixed, *sizes = self.generator.count_tokens(
            [build_prompt(question, []), *(f"[99] {h.text}\n" for h in hits)]
        )
        chosen: list[Hit] = []
        used = fixed
        for hit, size in zip(hits, sizes):
            if used + size > budget:
                log.info("passage %s left out: it does not fit the prompt", hit.location)
                continue
            chosen.append(hit)
            used += size
        return chosen


def build_extract_prompt(question: str, passage: str) -> str:
    """The few-shot prompt of the extractive reader; the passage is its one text."""
    shots = "".join(
        f"Passage: {text}\nQuestion: {asked}\nAnswer: {answer}\n\n"
        for text, asked, answer in EXTRACT_EXAMPLES
    )
    return (
        f"{EXTRACT_INSTRUCTION}\n\n{shots}Passage: {_one_line(passage)}\n"
        f"Question: {_one_line(question)}\nAnswer:"
    )


def find_span(answer: str, text: str) -> tuple[int, int] | None:
    """Where ``answer`` occurs in ``text`` as whole words, white space aside, if it does."""
    words = answer.split()
    if not words:
        return None
    body = r"\s+".join(re.escape(w) for w in words)
    head = r"(?<!\w)" if words[0][:1].isalnum() else ""
    tail = r"(?!\w)" if words[-1][-1:].isalnum() else ""
    m = re.search(head + body + tail, text)
    return (m.start(), m.end()) if m else None


def _takes_copy_from(generator: Generator) -> bool:
    """Whether ``generate`` takes ``copy_from`` (generators written before it do not)."""
    try:
        params = inspect.signature(generator.generate).parameters.values()
    except (TypeError, ValueError):
        return True
    return any(p.name == "copy_from" or p.kind is p.VAR_KEYWORD for p in params)


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else -math.inf


def build_prompt(question: str, passages: Sequence[str]) -> str:
    """The few-shot prompt; passages are numbered from 1 and kept apart from instructions."""
    numbered = "".join(f"[{i}] {_one_line(p)}\n" for i, p in enumerate(passages, 1))
    return (
        f"{INSTRUCTION}\n\n{EXAMPLE}Passages:\n{numbered}\nQuestion: {_one_line(question)}\nAnswer:"
    )


def attribute(answer: str, passages: Sequence[str]) -> list[int]:
    """Numbers (1-based) of the passages that support ``answer``, best first.

    A passage that contains the whole answer supports it; failing that, the passage
    holding most of the answer's words does, if it holds at least half of them.
    """
    norm = _normalize(answer)
    if not norm:
        return []
    normalized = [_normalize(p) for p in passages]
    exact = [i + 1 for i, p in enumerate(normalized) if f" {norm} " in f" {p} "]
    if exact:
        return exact[:2]
    words = set(norm.split()) - STOPWORDS or set(norm.split())
    best, best_share = 0, 0.0
    for i, p in enumerate(normalized):
        share = len(words & set(p.split())) / len(words)
        if share > best_share:
            best, best_share = i + 1, share
    return [best] if best_share >= 0.5 else []


_PUNCT = str.maketrans({c: " " for c in string.punctuation + "“”‘’–—"})
_ARTICLES = re.compile(r"\b(a|an|the)\b")


def _normalize(text: str) -> str:
    return " ".join(_ARTICLES.sub(" ", text.lower().translate(_PUNCT)).split())


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _check_question(question: str) -> str:
    if not isinstance(question, str) or not question.strip():
        raise InvalidValue("the question is empty; ask something")
    if len(question) > MAX_QUESTION_CHARS:
        raise InvalidValue(
            f"the question is {len(question)} characters long; the limit is {MAX_QUESTION_CHARS}"
        )
    return question.strip()
