"""Fit the engine's abstention model on SQuAD-style data.

Half the sampled questions (by default) lose their gold paragraph from the index.
Every question is answered with abstention off; the signals of each answer are
then scored by how well they tell the two halves apart (area under the ROC curve),
a logistic model is fitted on the signals `rag.confidence.WEIGHTS` names, and the
threshold is chosen that answers --answer-rate of the answerable questions.

    python scripts/calibrate.py --questions 758 --seed 3 --remove-gold 0.15

Questions come from the "dev" articles (scripts/squad.py), which the answer-finder
was not trained on; --no-finder fits the model used without it.
Print-only: copy the weights, bias and threshold into rag/answer/confidence.py.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import numpy as np
from squad import DEFAULT_DATA, SENTENCE_QUESTIONS, build_index, sample, sentence_questions


def auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Probability that an answerable question scores above an unanswerable one."""
    pos, neg = scores[labels == 1], scores[labels == 0]
    greater = (pos[:, None] > neg[None, :]).mean()
    ties = (pos[:, None] == neg[None, :]).mean()
    return float(greater + 0.5 * ties)


def fit_logistic(
    x: np.ndarray, y: np.ndarray, groups: np.ndarray | None = None, steps: int = 5000
) -> tuple[np.ndarray, float]:
    """Weights and bias on the raw features (fitted on standardized ones, lightly L2'd),
    the two classes weighed equally: the estimate is for a question as likely
    answerable as not, whatever the sample's mix. With ``groups`` (a label per row),
    each group weighs the same too."""
    mu, sd = x.mean(0), x.std(0) + 1e-9
    z = (x - mu) / sd
    groups = np.zeros(len(y), dtype=int) if groups is None else groups
    cells = [(g, c) for g in np.unique(groups) for c in (0, 1)]
    weight = np.zeros(len(y))
    for g, c in cells:
        mask = (groups == g) & (y == c)
        weight[mask] = 1.0 / (len(cells) * max(1, mask.sum()))
    w, b = np.zeros(z.shape[1]), 0.0
    for _ in range(steps):
        p = 1 / (1 + np.exp(-(z @ w + b)))
        g = (p - y) * weight
        w -= 0.1 * (z.T @ g + 0.001 * w)
        b -= 0.1 * float(g.sum())
    return w / sd, b - float((w * mu / sd).sum())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--questions", type=int, default=400)
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--remove-gold", type=float, default=0.5, metavar="F")
    ap.add_argument("--answer-rate", type=float, default=0.9)
    ap.add_argument("-k", type=int, default=3)
    ap.add_argument("--index", type=Path, default=None)
    ap.add_argument("--save", type=Path, default=None, help="write each answer's signals (JSONL)")
    ap.add_argument("--part", default="dev", help="dev, test, train or all")
    ap.add_argument("--no-finder", action="store_true")
    ap.add_argument("--sentence-questions", nargs="?", type=Path, const=SENTENCE_QUESTIONS,
                    help="also draw from questions answered by whole sentences, and weigh "
                    "them as much as the SQuAD ones")  # fmt: skip
    args = ap.parse_args()

    from rag.answer.confidence import FINDER_WEIGHTS, WEIGHTS, features
    from rag.answer.engine import QueryEngine

    part = None if args.part == "all" else args.part
    rows = None
    if args.sentence_questions:
        rows = [json.loads(line) for line in (args.data / "qa.jsonl").open()]
        rows += sentence_questions(args.data, args.sentence_questions)
    drawn = sample(args.data, args.questions, args.seed, args.remove_gold, part, rows)
    index = build_index(args.data, args.index, drawn.removed)
    engine = QueryEngine(index, k=args.k, min_confidence=0.0,
                         finder=False if args.no_finder else None)  # fmt: skip
    signals, labels, kinds, saved = [], [], [], []
    for q in drawn.questions:
        answer = engine.ask(q["question"])
        if answer.signals is None:  # nothing retrieved
            continue
        signals.append(answer.signals)
        labels.append(0 if q["id"] in drawn.unanswerable else 1)
        kinds.append(int("answers" not in q))
        saved.append({"question": q["question"], "answer": answer.generated,
                      "answerable": labels[-1], **dataclasses.asdict(answer.signals)})  # fmt: skip
    if args.save:
        args.save.write_text("".join(json.dumps(row) + "\n" for row in saved))
    y, kind = np.array(labels), np.array(kinds)
    print(f"{len(y)} questions, {int((y == 0).sum())} without their paragraph; "
          f"{int(kind.sum())} answered by whole sentences")  # fmt: skip
    measured = [{**features(s), "answer_logprob": s.answer_logprob} for s in signals]
    names = list(measured[0])
    table = {n: np.array([m[n] for m in measured], dtype=float) for n in names}
    for n in names:
        v = table[n]
        print(f"  {n:15s} AUC {auc(v, y):.3f}  mean answerable {v[y == 1].mean():.3f}, "
              f"unanswerable {v[y == 0].mean():.3f}")  # fmt: skip
    used = list(WEIGHTS if args.no_finder else FINDER_WEIGHTS)
    w, b = fit_logistic(np.stack([table[n] for n in used], 1), y, kind)
    z = np.stack([table[n] for n in used], 1) @ w + b
    p = 1 / (1 + np.exp(-z))
    # the threshold answers --answer-rate of the answerable questions of each kind, on average
    threshold = float(np.mean([np.quantile(p[(y == 1) & (kind == g)], 1 - args.answer_rate)
                               for g in np.unique(kind)]))  # fmt: skip
    name = "WEIGHTS" if args.no_finder else "FINDER_WEIGHTS"
    print(f"fitted: {name} = {{" + ", ".join(f'"{n}": {x:.2f}' for n, x in zip(used, w)) + "}")
    print(f"        BIAS = {b:.2f}   AUC {auc(z, y):.3f}")
    print(f"        MIN_CONFIDENCE = {threshold:.2f}:")
    for g in np.unique(kind):
        at = kind == g
        answers = np.mean(p[at & (y == 1)] >= threshold)
        abstains = np.mean(p[at & (y == 0)] < threshold)
        print(f"          {('SQuAD', 'whole-sentence')[g]:14s} questions: "
              f"AUC {auc(z[at], y[at]):.3f}, answers {answers:.1%} of answerable, "
              f"abstains on {abstains:.1%} of unanswerable")  # fmt: skip


if __name__ == "__main__":
    main()
