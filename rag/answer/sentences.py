"""Sentences of retrieved passages, ranked by how likely they are to hold the answer.

A small generator reads one sentence far better than three passages: on SQuAD it
finds the answer span in the best sentence about as often as in the gold paragraph
itself. A sentence's score adds its embedding similarity to the question and the
share of the question's words it holds, each word weighed by how rare it is among
the candidate sentences. With the answer-finder (``rag.models.finder``), its log-odds
that the sentence holds the answer are added (see ``FINDER_BLEND``), and each sentence
carries the answer span the finder marks in it. A sentence of a passage retrieved
lower is marked down a little (``RANK_WEIGHT``): retrieval judged the whole passage,
its title and heading, where a sentence alone is judged out of its context. Whether to
answer at all is judged from the sentence with the most ``evidence`` (its score without
that mark), as the abstention model was fitted.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace

from rag.answer.confidence import log_odds
from rag.answer.define import defined_terms, defines
from rag.models.embedder import Embedder
from rag.models.finder import AnswerFinder
from rag.text import content_words, sentence_spans

OVERLAP_WEIGHT = 1.0  # cosine similarity counts 1; SQuAD tune: best sentence holds the answer 73 %
# With the finder a sentence scores its log-odds of holding the answer plus this many
# times the score above. The best sentence held the answer for 78.3 % of 300 questions
# of the dev articles (scripts/squad.py) with the finder alone, 74.2 % without it, and
# 82.9 % blended like this (top 3 paragraphs by dense retrieval, the gold one among them).
FINDER_BLEND = 4.0
# A sentence of the passage retrieved n-th (0-based) loses RANK_WEIGHT * log(1 + n). With
# the finder, the best of the top 6 passages' sentences held the answer for 75.8 % of 400
# questions of the SQuAD dev articles at 2 (74.2 % at 0, 73.8 % at 3, 71.0 % at 6).
RANK_WEIGHT = 2.0
# A sentence that defines the term a definition question asks about (rag.answer.define)
# gains this much. User-style questions right: Debian Reference (the development set)
# 8 -> 9 of 33 at 3 and at 5; PostgreSQL manual 15 -> 16 at 3, 17 at 5 ("what is
# autovacuum?" needs 5); the default corpus 38 of 67 either way.
DEFINES_BONUS = 5.0


@dataclass(frozen=True)
class Sentence:
    """Sentence ``text`` of passage ``passage`` (0-based), at ``start:end`` of its text.

    ``holds`` is the answer-finder's probability that it holds the answer, and
    ``span`` where in ``text`` it marks the answer (None without a finder); ``rank``
    is its passage's place in the retrieval order (0-based).
    """

    passage: int
    start: int
    end: int
    text: str
    similarity: float
    overlap: float
    rank: int = 0
    defines: bool = False
    holds: float | None = None
    span: tuple[int, int] | None = None

    @property
    def evidence(self) -> float:
        """How likely the sentence itself is to hold the answer, its passage's rank aside."""
        plain = self.similarity + OVERLAP_WEIGHT * self.overlap
        if self.holds is None:
            return plain
        return log_odds(self.holds) + FINDER_BLEND * plain

    @property
    def score(self) -> float:
        """Its ``evidence``, marked down by its passage's rank (with the finder), and
        raised when it defines the term asked about."""
        bonus = DEFINES_BONUS if self.defines else 0.0
        if self.holds is None:
            return self.evidence + bonus
        return self.evidence - RANK_WEIGHT * math.log1p(self.rank) + bonus


def rank_sentences(
    question: str,
    passages: Sequence[str],
    embedder: Embedder,
    finder: AnswerFinder | None = None,
) -> list[Sentence]:
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
    found_by = finder.find(question, texts) if finder is not None else None
    terms = defined_terms(question)
    defining = [bool(terms) and defines(t, terms) for t in texts]
    sentences = [
        Sentence(n, s, e, t, float(sim), sum(weight[w] for w in ws & asked) / total, n, d)
        for (n, s, e), t, sim, ws, d in zip(found, texts, similarity, words, defining)
    ]
    if found_by is not None:
        sentences = [
            replace(s, holds=p, span=(span.start, span.end))
            for s, (p, span) in zip(sentences, found_by)
        ]
    order = sorted(range(len(sentences)), key=lambda i: (-sentences[i].score, i))
    return [sentences[i] for i in order]
