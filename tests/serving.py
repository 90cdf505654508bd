"""``rag`` with the fake models registered, for tests that run ``rag serve`` as a process.

``python -m tests.serving serve --index IDX --port N`` is ``rag serve`` in a process that
knows ``fake-hash`` (slow on texts marked ``SLOW_MARK``), ``fake-echo``, ``fake-slow``
(an echo that takes its time) and ``fake-drip`` (tokens that come slowly).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import numpy as np

from rag.cli import main
from rag.models.generation import CopyFrom, Generation
from rag.models.registry import register_embedder, register_generator
from tests.fakes import EchoGenerator, HashEmbedder

# How long the slow generator takes to answer, in seconds.
SLOW_SECONDS = 2.0
# Text holding this takes the embedder SLOW_SECONDS to embed: an ingest to stop a server in.
SLOW_MARK = "slow-to-embed"
# The dripping generator's tokens, and the seconds before each.
DRIP_TOKENS, DRIP_SECONDS = 20, 0.2


class SlowHashEmbedder(HashEmbedder):
    """``fake-hash``, but slow on texts that hold ``SLOW_MARK``."""

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if any(SLOW_MARK in t for t in texts):
            time.sleep(SLOW_SECONDS)
        return super().embed(texts)


class SlowGenerator(EchoGenerator):
    name = "fake-slow"

    def generate(
        self,
        prompt: str,
        *,
        max_new_tokens: int = 64,
        stop: Sequence[str] = (),
        on_token: Callable[[str], None] | None = None,
        copy_from: CopyFrom | None = None,
    ) -> Generation:
        time.sleep(SLOW_SECONDS)
        return super().generate(
            prompt, max_new_tokens=max_new_tokens, stop=stop, on_token=on_token,
            copy_from=copy_from,
        )  # fmt: skip


class DripGenerator(EchoGenerator):
    """``fake-drip``: DRIP_TOKENS tokens, one every DRIP_SECONDS, whoever reads them."""

    name = "fake-drip"

    def generate(
        self,
        prompt: str,
        *,
        max_new_tokens: int = 64,
        stop: Sequence[str] = (),
        on_token: Callable[[str], None] | None = None,
        copy_from: CopyFrom | None = None,
    ) -> Generation:
        words = [f"word{n}" for n in range(DRIP_TOKENS)]
        for n, word in enumerate(words):
            time.sleep(DRIP_SECONDS)
            if on_token is not None:
                on_token(word if n == 0 else " " + word)
        text = " ".join(words)
        return Generation(text, [], len(prompt.split()), len(words))


def register() -> None:
    register_embedder("fake-hash", SlowHashEmbedder)
    register_generator("fake-echo", EchoGenerator)
    register_generator("fake-slow", SlowGenerator)
    register_generator("fake-drip", DripGenerator)


if __name__ == "__main__":
    register()
    main()
