"""How sure the engine is that the indexed documents answer a question.

A logistic model over signals measured for each answer, fitted on SQuAD tune
questions of which half had their gold paragraph removed from the index
(``scripts/calibrate.py``). Its value estimates the probability that the answer is
in the documents, for a question as likely answerable as not.

Signals measured and left out because they did not separate the two halves (area
under the ROC curve near 0.5): the mean and first-token log-probability of the
model's answer, and agreement between answers read from different sentences.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# fitted weights (scripts/calibrate.py on 400 SQuAD tune questions, seed 3; AUC 0.80)
WEIGHTS = {"similarity": 5.10, "overlap": 4.30}
BIAS = -4.78
# Below this the engine abstains: it then answers about 90 % of answerable questions.
MIN_CONFIDENCE = 0.30


@dataclass(frozen=True)
class Signals:
    """What is measured of one answer.

    ``similarity`` is the cosine similarity of the question and the best sentence,
    ``overlap`` the rarity-weighted share of the question's words in that sentence,
    ``answer_logprob`` the mean log-probability of the answer's tokens (kept for
    reporting; it does not enter the estimate).
    """

    similarity: float
    overlap: float
    answer_logprob: float = 0.0


def confidence(signals: Signals) -> float:
    """The estimated probability, between 0 and 1, that the documents hold the answer."""
    z = BIAS + sum(w * getattr(signals, name) for name, w in WEIGHTS.items())
    return 1.0 / (1.0 + math.exp(-z))
