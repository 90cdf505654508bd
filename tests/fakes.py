"""Deterministic stand-ins for the models, for fast unit tests."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence

import numpy as np

from rag.models.generation import CopyFrom, Generation

_TOKEN = re.compile(r"\w+|[^\w\s]")


class HashEmbedder:
    """Bag of words hashed into a vector: texts that share words are similar."""

    def __init__(self, name: str = "fake-hash", dim: int = 256) -> None:
        self.name = name
        self._dim = dim
        self.calls = 0
        self.texts_embedded = 0

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def max_tokens(self) -> int:
        return 256

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        self.calls += 1
        self.texts_embedded += len(texts)
        out = np.zeros((len(texts), self._dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"\w+", text.lower()):
                h = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=8).digest(), "little")
                out[row, h % self._dim] += 1.0 if (h >> 32) & 1 else -1.0
            norm = np.linalg.norm(out[row])
            out[row] = out[row] / norm if norm else out[row]
            if not norm:
                out[row, 0] = 1.0
        return out

    def token_offsets(self, texts: Sequence[str]) -> list[list[tuple[int, int]]]:
        return [[(m.start(), m.end()) for m in _TOKEN.finditer(t)] for t in texts]


class EchoGenerator:
    """Answers with the first sentence of the first passage in the prompt.

    Asked to copy (``copy_from``), it answers with the first sentence of the first
    source instead, or the reply it was given, which it does not check: the engine must.
    """

    name = "fake-echo"

    def __init__(self, reply: str | None = None) -> None:
        self.reply = reply
        self.prompts: list[str] = []
        self.copied: list[CopyFrom | None] = []

    @property
    def context_window(self) -> int:
        return 2048

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return [len(_TOKEN.findall(t)) for t in texts]

    def generate(
        self,
        prompt: str,
        *,
        max_new_tokens: int = 64,
        stop: Sequence[str] = (),
        on_token: Callable[[str], None] | None = None,
        copy_from: CopyFrom | None = None,
    ) -> Generation:
        self.prompts.append(prompt)
        self.copied.append(copy_from)
        if self.reply is not None:
            text = self.reply
        elif copy_from is not None:
            text = re.split(r"(?<=[.!?])\s", copy_from.sources[0].strip())[0]
        else:
            text = _first_passage_sentence(prompt)
        words = text.split(" ")[:max_new_tokens]
        for i, w in enumerate(words):
            if on_token:
                on_token(w if i == 0 else " " + w)
        text = " ".join(words)
        return Generation(text, [-0.1] * len(words), len(_TOKEN.findall(prompt)), len(words))


def _first_passage_sentence(prompt: str) -> str:
    block = prompt.rsplit("Passages:\n", 1)[-1]
    m = re.search(r"^\[1\] (.+)$", block, re.M)
    text = m.group(1) if m else ""
    return re.split(r"(?<=[.!?])\s", text.strip())[0]
