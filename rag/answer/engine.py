"""The query engine: retrieve passages, read them with the generator, cite the sources.

By default the answer is a span copied from the sentence most likely to hold it
(``extractive``); ``generative`` lets the model write from whole passages. The
engine picks the strategy by name, decides from calibrated signals whether to answer
at all, and never gives an answer that no passage supports: it says the answer was
not found and returns the closest passages instead.

>>> engine = QueryEngine(Index.open("my-index"))        # doctest: +SKIP
>>> answer = engine.ask("what is a foundation model?")  # doctest: +SKIP
>>> answer.text, [c.location for c in answer.citations]  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Literal

from rag.answer.confidence import MIN_CONFIDENCE, confidence
from rag.answer.extractive import Extractive
from rag.answer.generative import Generative
from rag.answer.reading import Strategy, says_not_found
from rag.answer.sentences import Sentence, rank_sentences
from rag.answer.shape import shape
from rag.errors import InvalidValue
from rag.index import Index
from rag.models.finder import AnswerFinder
from rag.models.generation import Generator
from rag.models.registry import load_generator
from rag.retrieval.search import DEFAULT_MODE
from rag.types import Answer, Citation, Excerpt, Hit, Signals, Where

log = logging.getLogger(__name__)

NOT_FOUND = "Not found in the indexed documents."
MAX_QUESTION_CHARS = 2000
EXTRACTIVE = "extractive"
GENERATIVE = "generative"
STRATEGIES: dict[str, type[Extractive] | type[Generative]] = {
    EXTRACTIVE: Extractive,
    GENERATIVE: Generative,
}
ANSWER_MODES = tuple(STRATEGIES)
# scripts/eval_qa.py, SQuAD tune, Gemma 3 270M: extractive EM 33 / F1 48, generative 11 / 23.
DEFAULT_ANSWER_MODE = EXTRACTIVE

# The answer-finder reads this many retrieved passages and answers from the k best.
READ_DEPTH = 6
# Who reads a factoid's span from the best sentence: the finder's span head, or the
# generator with decoding constrained to copying. Held-out SQuAD articles (eval_qa.py,
# 490 answerable questions): finder EM 44.1 / F1 53.1, Gemma 3 270M 40.4 / 50.1. The
# project's own user-style questions: factoids right 6/14 with the finder, 9/14 with
# Gemma, whose spans read as answers ("the Center for Research on Foundation Models",
# not "(CRFM)"). The generator is the default: its answers read better.
FINDER_READS, GENERATOR_READS = "finder", "generator"
SPAN_READERS = (FINDER_READS, GENERATOR_READS)
DEFAULT_SPAN_READER = GENERATOR_READS

TokenCallback = Callable[[str], None]


class QueryEngine:
    """Answers questions from an index with a generator model (loaded on first use).

    ``answer_mode`` is ``extractive`` (default: the model copies a span from the
    passage sentences most likely to hold the answer, with decoding constrained to
    copying) or ``generative`` (the model writes an answer from whole passages; for
    answers longer than a span). ``sentences`` is how many of the best sentences the
    extractive reader is shown. Below ``min_confidence`` the engine abstains.
    ``search_mode`` and ``where`` are passed to the index's search. ``finder`` is the
    answer-finder that ranks sentences, marks answer spans and drives abstention: the
    packaged one by default (None), or False to rank by similarity and overlap alone
    and read spans with the generator. ``span_reader`` says who reads a factoid's span
    from the best sentence: ``finder`` or ``generator``; by default the generator when
    one is given, else ``DEFAULT_SPAN_READER``. With the finder, the
    ``read_depth`` best retrieved passages are read, and the ``k`` that hold the best
    sentences answered from.
    """

    def __init__(
        self,
        index: Index,
        generator: Generator | str | None = None,
        *,
        k: int = 3,
        max_new_tokens: int = 48,
        max_prompt_tokens: int = 1536,
        search_mode: str = DEFAULT_MODE,
        where: Where | None = None,
        answer_mode: str = DEFAULT_ANSWER_MODE,
        sentences: int = 1,
        min_confidence: float = MIN_CONFIDENCE,
        finder: AnswerFinder | Literal[False] | None = None,
        read_depth: int = READ_DEPTH,
        span_reader: str | None = None,
    ) -> None:
        if k <= 0:
            raise InvalidValue(f"k must be greater than 0, got {k}")
        if max_new_tokens <= 0:
            raise InvalidValue(f"max_new_tokens must be greater than 0, got {max_new_tokens}")
        if answer_mode not in STRATEGIES:
            raise InvalidValue(
                f"answer mode must be one of {', '.join(ANSWER_MODES)}, got {answer_mode!r}"
            )
        if sentences <= 0:
            raise InvalidValue(f"sentences must be greater than 0, got {sentences}")
        if read_depth <= 0:
            raise InvalidValue(f"read_depth must be greater than 0, got {read_depth}")
        if not 0.0 <= min_confidence <= 1.0:
            raise InvalidValue(f"min_confidence must be between 0 and 1, got {min_confidence}")
        self.index = index
        self._generator = generator if not isinstance(generator, str) else None
        self._generator_name = generator if isinstance(generator, str) else None
        if span_reader is not None and span_reader not in SPAN_READERS:
            raise InvalidValue(
                f"span reader must be one of {', '.join(SPAN_READERS)}, got {span_reader!r}"
            )
        given = GENERATOR_READS if generator is not None else DEFAULT_SPAN_READER
        self.span_reader = span_reader or given
        self.k = k
        self.search_mode = search_mode
        self.where = where
        self.answer_mode = answer_mode
        self.min_confidence = min_confidence
        self.finder = AnswerFinder() if finder is None else finder or None
        self.read_depth = read_depth
        self.strategy: Strategy = STRATEGIES[answer_mode](
            max_new_tokens=max_new_tokens, max_prompt_tokens=max_prompt_tokens, sentences=sentences
        )

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
        k = k or self.k
        hits = self.index.search(question, self._depth(k), self.search_mode, self.where)
        return self._answer(question, hits, k, on_token)

    def ask_batch(self, questions: Sequence[str], *, k: int | None = None) -> list[Answer]:
        """Answer many questions: one batched retrieval, then one generation each."""
        checked = [_check_question(q) for q in questions]
        if not checked:
            return []
        k = k or self.k
        all_hits = self.index.search_batch(checked, self._depth(k), self.search_mode, self.where)
        return [self._answer(q, hits, k, None) for q, hits in zip(checked, all_hits)]

    def _depth(self, k: int) -> int:
        """How many passages the answer-finder reads to pick the ``k`` answered from."""
        return max(k, self.read_depth) if self.finder is not None else k

    def _answer(
        self, question: str, hits: list[Hit], k: int, on_token: TokenCallback | None
    ) -> Answer:
        mode = self.strategy.name
        if not hits:
            return Answer(question, NOT_FOUND, abstained=True, mode=mode)
        ranked = rank_sentences(question, [h.text for h in hits], self.index.embedder, self.finder)
        hits, ranked = _best_passages(hits, ranked, k)
        if self.span_reader == GENERATOR_READS:
            ranked = [replace(s, span=None) for s in ranked]
        # whether to answer is judged as the abstention model was fitted (see sentences)
        best = max(ranked, key=lambda s: s.evidence) if ranked else None
        signals = (
            Signals(best.similarity, best.overlap, holds=best.holds)
            if best
            else Signals(0.0, 0.0, holds=None if self.finder is None else 0.0)
        )
        sure = confidence(signals)
        wanted = shape(question)
        unanswered = Answer(
            question, NOT_FOUND, passages=hits, abstained=True, confidence=sure, mode=mode,
            signals=signals, shape=wanted,
        )  # fmt: skip
        if sure < self.min_confidence:
            # decided before generating: nothing is streamed that would then be withdrawn
            log.info("confidence %.2f is below %.2f; not answering", sure, self.min_confidence)
            return unanswered
        reading = self.strategy.read(self.generator, question, wanted, hits, ranked, on_token)
        if reading is None:
            return unanswered
        text = reading.generation.text.strip()
        signals = replace(signals, answer_logprob=_mean(reading.generation.token_logprobs))
        withdrawn = replace(unanswered, passages=reading.passages, generated=text, signals=signals)
        if says_not_found(text):
            return withdrawn
        if not reading.cited:
            # never give an answer that cannot be cited
            log.info("answer %r could not be tied to any passage; withdrawn", text)
            return replace(withdrawn, supported=False)
        # each piece is quoted from its own passage, and marked where it ends
        quotes = reading.quotes or [(n, text) for n in reading.cited]
        quoted = {n: next(q for m, q in quotes if m == n) for n in reading.cited}
        citations = [Citation.of(n, reading.passages[n - 1], quoted[n]) for n in reading.cited]
        excerpts = [
            Excerpt.of(s.passage + 1, reading.passages[s.passage], s.start, s.end)
            for s in reading.sentences
        ]
        marked = (
            "\n\n".join(f"{q.strip()} [{n}]" for n, q in reading.quotes)
            if reading.quotes
            else text + "".join(f" [{n}]" for n in reading.cited)
        )
        return replace(
            withdrawn,
            text=marked,
            citations=citations,
            abstained=False,
            sentences=excerpts,
        )


def _best_passages(
    hits: list[Hit], ranked: list[Sentence], k: int
) -> tuple[list[Hit], list[Sentence]]:
    """The ``k`` passages whose best sentences rank highest, in that order, with the
    sentences renumbered to match (the retrieval order when there are only ``k``)."""
    if len(hits) <= k:
        return hits, ranked
    order = list(dict.fromkeys(s.passage for s in ranked))
    order += [n for n in range(len(hits)) if n not in order]  # passages with no sentence
    keep = {old: new for new, old in enumerate(order[:k])}
    chosen = [hits[old] for old in order[:k]]
    return chosen, [replace(s, passage=keep[s.passage]) for s in ranked if s.passage in keep]


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else -math.inf


def _check_question(question: str) -> str:
    if not isinstance(question, str) or not question.strip():
        raise InvalidValue("the question is empty; ask something")
    if len(question) > MAX_QUESTION_CHARS:
        raise InvalidValue(
            f"the question is {len(question)} characters long; the limit is {MAX_QUESTION_CHARS}"
        )
    return question.strip()
