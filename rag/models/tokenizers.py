"""The tokenizer chunking uses when the embedder's own is not at hand.

A local embedder chunks with its own tokenizer. An embedder behind a server (see
:mod:`rag.models.embedding_server`) has its tokenizer on the server, so chunks are
sized by ``Settings.tokenizer`` instead: a Hugging Face tokenizer loaded here
(``LocalTokenizer``), or, when that is empty, ``ApproximateTokenizer``, a regex that
errs towards counting more tokens than a WordPiece or BPE tokenizer would.

>>> ApproximateTokenizer().token_offsets(["Encoders, 2017"])
[[(0, 4), (4, 8), (8, 9), (10, 12), (12, 14)]]
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import Any, Protocol

from rag.errors import ModelError
from rag.models.embedder import is_packaged_embedder, packaged_embedder_path, token_spans
from rag.models.generation import is_endpoint
from rag.models.lazy import Lazy, quiet_transformers
from rag.settings import Settings

log = logging.getLogger(__name__)

# Chinese, Japanese and Korean characters: one token each (BERT's tokenizer splits
# ideographs so; counting kana and hangul the same way errs on the side of more).
_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff"
_PIECE = re.compile(rf"(?P<word>[^\W\d_{_CJK}]+)|(?P<number>\d+)|[{_CJK}]|[^\w\s]|_")
# A run of letters up to WORD_LETTERS long is one token; a longer one is cut every
# SPLIT_LETTERS letters, a number every SPLIT_DIGITS digits. Measured against the
# packaged all-MiniLM-L6-v2's WordPiece tokenizer on 1,231 pieces of 800 characters
# (the foundation-models corpus, 300 SciFact abstracts, 300 SQuAD paragraphs and 30
# of this package's Python files): 1.19x as many tokens in all, 1.00x or more for
# 95 % of the pieces, at worst 0.87x (code and Wikipedia names that WordPiece cuts
# finely). Splitting every word every 4 letters would never count under 0.93x but
# makes chunks a third smaller than asked for; keeping words of up to 8 letters
# whole counts under for a quarter of the pieces. tests/test_embedding_server.py
# checks the ratio on the foundation-models corpus.
WORD_LETTERS = 6
SPLIT_LETTERS = 4
SPLIT_DIGITS = 2
MEASURED_RATIO = 1.19
APPROXIMATE = (
    f"approximate (words and punctuation, a word over {WORD_LETTERS} letters cut every "
    f"{SPLIT_LETTERS}; ~{MEASURED_RATIO:g}x all-MiniLM-L6-v2's count)"
)


class Tokenizer(Protocol):
    """What chunking needs: the character spans of each text's tokens."""

    def token_offsets(self, texts: Sequence[str]) -> list[list[tuple[int, int]]]: ...


class ApproximateTokenizer:
    """Words and punctuation as tokens, long words and numbers cut into pieces.

    Every span is an exact slice of its text: no span holds white space, and every
    other character is in exactly one span.
    """

    def token_offsets(self, texts: Sequence[str]) -> list[list[tuple[int, int]]]:
        return [_spans(t) for t in texts]


def _spans(text: str) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for m in _PIECE.finditer(text):
        start, end = m.span()
        if m.lastgroup == "number":
            step = SPLIT_DIGITS
        elif m.lastgroup == "word" and end - start > WORD_LETTERS:
            step = SPLIT_LETTERS
        else:
            out.append((start, end))
            continue
        out.extend((s, min(s + step, end)) for s in range(start, end, step))
    return out


class LocalTokenizer:
    """A Hugging Face tokenizer (name or folder), loaded on first use.

    ``all-MiniLM-L6-v2`` is the packaged model's tokenizer and loads offline; other
    names load through the Hugging Face cache.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._tokenizer: Lazy[Any] = Lazy(self._load)

    def _load(self) -> Any:
        from transformers import AutoTokenizer

        quiet_transformers()
        packaged = is_packaged_embedder(self.name)
        location = packaged_embedder_path() if packaged else self.name
        log.info("loading tokenizer %s from %s", self.name, location)
        try:
            tokenizer = AutoTokenizer.from_pretrained(location, local_files_only=packaged)
        except Exception as e:
            raise ModelError(
                f"cannot load tokenizer {self.name!r}: {e}. Give a Hugging Face tokenizer "
                "name reachable from this machine, a folder holding one, or "
                "'all-MiniLM-L6-v2' (packaged, works offline)"
            ) from e
        if not getattr(tokenizer, "is_fast", False):
            raise ModelError(
                f"tokenizer {self.name!r} has no fast (Rust) version, which chunking needs "
                "for character offsets; give another, or none for the approximation"
            )
        return tokenizer

    def token_offsets(self, texts: Sequence[str]) -> list[list[tuple[int, int]]]:
        return token_spans(self._tokenizer.get(), texts) if texts else []


def chunk_tokenizer(settings: Settings, embedder: Tokenizer) -> Tokenizer:
    """What sizes the chunks of an index: ``settings.tokenizer`` if named, else the
    embedder itself (an embedder behind a server answers with the approximation)."""
    return LocalTokenizer(settings.tokenizer) if settings.tokenizer else embedder


def describe_chunk_tokenizer(settings: Settings) -> str:
    """One line for ``rag status``: which tokenizer sized the chunks."""
    if settings.tokenizer:
        return f"{settings.tokenizer} (local)"
    if is_endpoint(settings.embedder):
        return APPROXIMATE
    return "the embedder's own"
