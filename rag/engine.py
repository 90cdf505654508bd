"""The query engine: retrieve passages, prompt the generator, cite the sources.

>>> engine = QueryEngine(Index.open("my-index"))        # doctest: +SKIP
>>> answer = engine.ask("what is a foundation model?")  # doctest: +SKIP
>>> answer.text, [c.location for c in answer.citations]  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import math
import re
import string
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from rag.errors import InvalidValue
from rag.filters import Where
from rag.generator import Generator, load_generator
from rag.index import DEFAULT_MODE, Hit, Index, location

log = logging.getLogger(__name__)

NOT_FOUND = "Not found in the indexed documents."
MAX_QUESTION_CHARS = 2000

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
STOP = ("\n", "Question:", "Passages:")


@dataclass(frozen=True)
class Citation:
    """Passage ``n`` of an answer, resolved to its source."""

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

    @classmethod
    def of(cls, n: int, hit: Hit) -> Citation:
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
        )

    @property
    def location(self) -> str:
        return location(self.doc_id, self.line_start, self.line_end, self.page_start, self.page_end)


@dataclass(frozen=True)
class Answer:
    """An answer with the passages it was given and the ones it cites.

    ``passages[n - 1]`` is passage ``[n]``. When ``abstained``, ``text`` says the
    answer was not found and ``passages`` are the closest ones. ``supported`` is False
    when the model did answer but its answer could not be tied to any passage; that
    answer is withdrawn (the engine abstains) and kept in ``generated`` only.
    """

    question: str
    text: str
    citations: list[Citation] = field(default_factory=list)
    passages: list[Hit] = field(default_factory=list)
    abstained: bool = False
    supported: bool = True
    confidence: float = 0.0
    mode: str = "generative"
    generated: str = ""


TokenCallback = Callable[[str], None]


class QueryEngine:
    """Answers questions from an index with a generator model (loaded on first use)."""

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
    ) -> None:
        if k <= 0:
            raise InvalidValue(f"k must be greater than 0, got {k}")
        if max_new_tokens <= 0:
            raise InvalidValue(f"max_new_tokens must be greater than 0, got {max_new_tokens}")
        self.index = index
        self._generator = generator if not isinstance(generator, str) else None
        self._generator_name = generator if isinstance(generator, str) else None
        self.k = k
        self.max_new_tokens = max_new_tokens
        self.max_prompt_tokens = max_prompt_tokens
        self.mode = mode
        self.where = where

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
        passages = self._fit_passages(question, hits)
        if not passages:
            return Answer(question, NOT_FOUND, abstained=True, supported=True)
        prompt = build_prompt(question, [p.text for p in passages])
        gen = self.generator.generate(
            prompt, max_new_tokens=self.max_new_tokens, stop=STOP, on_token=on_token
        )
        text = gen.text.strip()
        confidence = (
            math.exp(sum(gen.token_logprobs) / len(gen.token_logprobs))
            if gen.token_logprobs
            else 0.0
        )
        if not text or _normalize(text) in {"not found", "notfound", "none", "unknown"}:
            return Answer(question, NOT_FOUND, [], passages, True, True, confidence, generated=text)
        cited = attribute(text, [p.text for p in passages])
        if not cited:
            # never give an answer that cannot be cited
            log.info("answer %r could not be tied to any passage; withdrawn", text)
            return Answer(
                question, NOT_FOUND, [], passages, True, False, confidence, generated=text
            )
        citations = [Citation.of(n, passages[n - 1]) for n in cited]
        marked = text + "".join(f" [{n}]" for n in cited)
        return Answer(
            question, marked, citations, passages, False, True, confidence, generated=text
        )

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
    words = set(norm.split()) - _STOPWORDS or set(norm.split())
    best, best_share = 0, 0.0
    for i, p in enumerate(normalized):
        share = len(words & set(p.split())) / len(words)
        if share > best_share:
            best, best_share = i + 1, share
    return [best] if best_share >= 0.5 else []


_PUNCT = str.maketrans({c: " " for c in string.punctuation + "“”‘’–—"})
_ARTICLES = re.compile(r"\b(a|an|the)\b")
_STOPWORDS = frozenset(
    [
        "a",
        "an",
        "the",
        "of",
        "in",
        "on",
        "at",
        "to",
        "for",
        "by",
        "with",
        "and",
        "or",
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "it",
        "its",
        "this",
        "that",
        "as",
        "from",
    ]
)


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
