"""The extractive answer: a span copied word for word from the best sentences.

The reader is shown only the sentences most likely to hold the answer, in a
few-shot prompt, and its decoding is constrained to copying (``CopyFrom``). The span
is then found again in its passage: verified, not trusted, since a generator that
cannot constrain decoding may paraphrase.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

from rag.answer.reading import STOP, Reading
from rag.answer.sentences import Sentence
from rag.models.generation import CopyFrom, Generator
from rag.text import content_words, find_span, squeeze
from rag.types import Hit

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
        hits: list[Hit],
        ranked: list[Sentence],
        on_token: Callable[[str], None] | None,
    ) -> Reading | None:
        if not ranked:  # headings only: no sentence to copy from
            return None
        chosen = sorted(ranked[: self.sentences], key=lambda s: (s.passage, s.start))
        reading = [s.text for s in chosen]
        extra: dict[str, CopyFrom] = {}
        if _takes_copy_from(generator):
            extra["copy_from"] = CopyFrom(reading, frozenset(content_words(question)))
        gen = generator.generate(
            build_prompt(question, " ".join(reading)),
            max_new_tokens=self.max_new_tokens,
            stop=STOP,
            on_token=on_token,
            **extra,
        )
        cited = [s.passage + 1 for s in chosen if find_span(gen.text, s.text) is not None]
        return Reading(gen, hits, list(dict.fromkeys(cited)))


def _takes_copy_from(generator: Generator) -> bool:
    """Whether ``generate`` takes ``copy_from`` (generators written before it do not)."""
    try:
        params = inspect.signature(generator.generate).parameters.values()
    except (TypeError, ValueError):
        return True
    return any(p.name == "copy_from" or p.kind is p.VAR_KEYWORD for p in params)
