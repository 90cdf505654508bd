"""What a text generator is to the rest of the package: its protocol and its results.

Every backend (``huggingface``, ``endpoint``, or one registered by a user) takes a
prompt and returns a ``Generation``; ``CopyFrom`` asks it to copy a span of given
texts instead of writing freely. Stop strings are handled the same way by all.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

# The longest prompt plus completion a local or remote generator is given. Gemma 3
# claims 32768; the prompts here are small and a laptop's memory is not.
CONTEXT_WINDOW = 8192


def is_endpoint(name: str) -> bool:
    """Whether ``name`` is the URL of an OpenAI-compatible endpoint."""
    return name.startswith(("http://", "https://"))


# Where a key for an OpenAI-compatible endpoint is read from, first found first.
API_KEY_ENVS = ("RAG_API_KEY", "OPENAI_API_KEY")


def endpoint_parts(name: str) -> tuple[str, str | None]:
    """(base URL, model or None) of an endpoint named ``http://host:port/v1#MODEL``."""
    base, _, model = name.partition("#")
    return base.rstrip("/"), model or None


def resolve_api_key(given: str | None = None) -> tuple[str | None, str | None]:
    """(the key, the environment variable it came from): ``given``, else the first of
    ``API_KEY_ENVS`` that is set."""
    if given:
        return given, None
    env = next((v for v in API_KEY_ENVS if os.environ.get(v)), None)
    return (os.environ[env], env) if env else (None, None)


@dataclass(frozen=True)
class CopyFrom:
    """Constrains a completion to a span copied from one of ``sources``.

    Words in ``discouraged`` (compared whole, case-folded) cost ``penalty`` logits,
    for instance the question's own words, which an answer rarely repeats.
    """

    sources: Sequence[str]
    discouraged: frozenset[str] = frozenset()
    penalty: float = 2.0


@dataclass(frozen=True)
class Generation:
    """What one ``generate`` call produced.

    ``token_logprobs`` has one entry per generated token, including the token that
    completed a stop string or the end-of-sequence token, so ``len(token_logprobs) ==
    completion_tokens``. They are the model's own log-probabilities, before any
    constraint (``copy_from``) narrowed the choice: a copied span the model would not
    have written gets low ones. A remote generator may report none.
    """

    text: str
    token_logprobs: list[float]
    prompt_tokens: int
    completion_tokens: int


class Generator(Protocol):
    """A text generation model; the engine needs nothing more."""

    name: str

    @property
    def context_window(self) -> int:
        """The most tokens a prompt and its completion may hold together."""
        ...

    def count_tokens(self, texts: Sequence[str]) -> list[int]: ...

    def generate(
        self,
        prompt: str,
        *,
        max_new_tokens: int = 64,
        stop: Sequence[str] = (),
        on_token: Callable[[str], None] | None = None,
        copy_from: CopyFrom | None = None,
    ) -> Generation: ...


def cut_at_stop(text: str, stops: Sequence[str]) -> tuple[str, bool]:
    """``text`` up to the first stop string, and whether there was one."""
    ends = [i for i in (text.find(s) for s in stops) if i >= 0]
    return (text[: min(ends)], True) if ends else (text, False)


def _held(text: str, stops: Sequence[str]) -> int:
    """Length of the longest end of ``text`` that could be the start of a stop string."""
    return max((k for s in stops for k in range(1, len(s)) if text.endswith(s[:k])), default=0)


class StopFilter:
    """Passes streamed text on, but never a stop string or anything after it.

    Text that may begin a stop string waits until the next piece settles it. Leading
    whitespace is dropped, as the returned text is stripped.
    """

    def __init__(self, stops: Sequence[str], on_token: Callable[[str], None]) -> None:
        self.stops = stops
        self.on_token = on_token
        self.text = ""
        self.sent = 0
        self.started = False
        self.stopped = False

    def feed(self, piece: str, final: bool = False) -> None:
        if self.stopped:
            return
        self.text += piece
        safe, self.stopped = cut_at_stop(self.text, self.stops)
        end = len(safe) if self.stopped or final else len(safe) - _held(safe, self.stops)
        start = self.sent if self.started else len(safe) - len(safe.lstrip())
        if end > start:
            self.on_token(safe[start:end])
            self.sent, self.started = end, True
