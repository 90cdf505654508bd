"""The generative answer: the model writes from whole passages, then is cited.

For answers longer than a span. As many whole passages as fit the prompt budget are
numbered in a few-shot prompt; the answer is cited to the passages that contain it,
or failing that, to the one holding at least half of its words.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from rag.answer.reading import STOP, Reading
from rag.answer.sentences import Sentence
from rag.models.generation import Generator
from rag.text import STOPWORDS, normalize, squeeze
from rag.types import Hit

log = logging.getLogger(__name__)

INSTRUCTION = (
    "Answer the question in one or two sentences, using only the numbered passages. "
    "If the passages do not hold the answer, write: not found."
)
# One worked example teaches a base model the format; it is not from any index.
EXAMPLE = (
    "Passages:\n"
    "[1] The Eiffel Tower is a wrought-iron lattice tower in Paris. It was completed in 1889 "
    "as the entrance arch of the World's Fair.\n"
    "[2] The Statue of Liberty was dedicated in New York Harbor in 1886.\n\n"
    "Question: When was the Eiffel Tower completed?\n"
    "Answer: The Eiffel Tower was completed in 1889, as the entrance arch of the World's "
    "Fair.\n\n"
)


def build_prompt(question: str, passages: Sequence[str]) -> str:
    """The few-shot prompt; passages are numbered from 1 and kept apart from instructions."""
    numbered = "".join(f"[{i}] {squeeze(p)}\n" for i, p in enumerate(passages, 1))
    return (
        f"{INSTRUCTION}\n\n{EXAMPLE}Passages:\n{numbered}\nQuestion: {squeeze(question)}\nAnswer:"
    )


def attribute(answer: str, passages: Sequence[str]) -> list[int]:
    """Numbers (1-based) of the passages that support ``answer``, best first.

    A passage that contains the whole answer supports it; failing that, the passage
    holding most of the answer's words does, if it holds at least half of them.
    """
    norm = normalize(answer)
    if not norm:
        return []
    normalized = [normalize(p) for p in passages]
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


class Generative:
    """Writes an answer from as many whole passages as the prompt budget holds."""

    name = "generative"

    def __init__(self, *, max_new_tokens: int, max_prompt_tokens: int, sentences: int) -> None:
        self.max_new_tokens = max_new_tokens
        self.max_prompt_tokens = max_prompt_tokens

    def read(
        self,
        generator: Generator,
        question: str,
        shape: str,
        hits: list[Hit],
        ranked: list[Sentence],
        on_token: Callable[[str], None] | None,
    ) -> Reading | None:
        passages = self.fit(generator, question, hits)
        if not passages:
            return None
        texts = [p.text for p in passages]
        gen = generator.generate(
            build_prompt(question, texts),
            max_new_tokens=self.max_new_tokens,
            stop=STOP,
            on_token=on_token,
        )
        return Reading(gen, passages, attribute(gen.text, texts))

    def fit(self, generator: Generator, question: str, hits: list[Hit]) -> list[Hit]:
        """The passages, best first, that fit the prompt budget; none is cut."""
        window = min(generator.context_window, self.max_prompt_tokens + self.max_new_tokens)
        budget = window - self.max_new_tokens
        fixed, *sizes = generator.count_tokens(
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
