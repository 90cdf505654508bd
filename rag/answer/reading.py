"""What an answer strategy hands back to the engine, and what every strategy shares."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from rag.answer.sentences import Sentence
from rag.models.generation import Generation, Generator
from rag.text import normalize
from rag.types import Hit

# Where a completion ends: the next line, or the model starting another example.
STOP = ("\n", "Question:", "Passages:", "Passage:")
# What a model writes when it finds no answer, normalized.
NOT_FOUND_REPLIES = frozenset({"not found", "notfound", "none", "unknown"})


def says_not_found(text: str) -> bool:
    """Whether a model's reply says it found no answer (or is empty)."""
    return not text.strip() or normalize(text) in NOT_FOUND_REPLIES


@dataclass(frozen=True)
class Reading:
    """The answer, the passages it was numbered against (``passages[n - 1]`` is
    ``[n]``), the numbers of those that hold it (empty: none does), and the sentences
    of those passages it was taken from. An answer in pieces from different places (a
    comparison) lists them in ``quotes``: each piece verbatim, with its passage number;
    the answer's text is the pieces, one paragraph each."""

    generation: Generation
    passages: list[Hit]
    cited: list[int]
    sentences: list[Sentence] = field(default_factory=list)
    quotes: list[tuple[int, str]] = field(default_factory=list)


class Strategy(Protocol):
    """One way of reading passages into an answer (``extractive``, ``generative``)."""

    name: str

    def read(
        self,
        generator: Generator,
        question: str,
        shape: str,
        hits: list[Hit],
        ranked: list[Sentence],
        on_token: Callable[[str], None] | None,
    ) -> Reading | None:
        """The answer read from ``hits``, in the ``shape`` the question asks for
        (``rag.answer.shape``); None when they hold nothing to read."""
        ...
