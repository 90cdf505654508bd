"""Shared by the SQuAD-style evaluation scripts: sampling, scoring, the index.

A sample of questions is drawn with a seed; for a fraction of them the gold
paragraph is left out of the index, so that they have no answer in it. A removed
paragraph is never the gold one of a question kept as answerable.
"""

from __future__ import annotations

import collections
import json
import random
import re
import string
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "squad-tune"


def normalize(text: str) -> str:
    """SQuAD answer normalization: lower case, no punctuation or articles, single spaces."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in set(string.punctuation))
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def f1(prediction: str, gold: str) -> float:
    p, g = normalize(prediction).split(), normalize(gold).split()
    common = sum((collections.Counter(p) & collections.Counter(g)).values())
    if not p or not g or common == 0:
        return float(p == g)
    precision, recall = common / len(p), common / len(g)
    return 2 * precision * recall / (precision + recall)


def exact(prediction: str, golds: list[str]) -> float:
    return max(float(normalize(prediction) == normalize(g)) for g in golds)


def best_f1(prediction: str, golds: list[str]) -> float:
    return max(f1(prediction, g) for g in golds)


@dataclass
class Sample:
    questions: list[dict[str, Any]]  # unanswerable ones first
    unanswerable: set[str]  # question ids
    removed: set[str]  # paragraph ids left out of the index


def sample(
    data: Path,
    n: int,
    seed: int,
    remove: float,
    part: str | None = None,
    rows: list[dict[str, Any]] | None = None,
) -> Sample:
    """``n`` questions drawn with ``seed`` (of the articles of split ``part`` if given)
    from ``rows``, by default the SQuAD questions of ``data``."""
    if rows is None:
        rows = [json.loads(line) for line in (data / "qa.jsonl").open()]
    if part is not None:
        split = split_articles(data)
        rows = [q for q in rows if split[q["title"]] == part]
    drawn = random.Random(seed).sample(rows, min(n, len(rows)))
    unanswerable = {q["id"] for q in drawn[: int(len(drawn) * remove)]}
    removed = {q["context_id"] for q in drawn if q["id"] in unanswerable}
    kept = [q for q in drawn if q["id"] in unanswerable] + [
        q for q in drawn if q["id"] not in unanswerable and q["context_id"] not in removed
    ]
    return Sample(kept, unanswerable, removed)


def build_index(data: Path, folder: Path | None, removed: set[str]) -> Any:
    """The index of every paragraph not in ``removed`` (a temporary folder if None)."""
    from rag.index import Index

    folder = folder or Path(tempfile.mkdtemp(prefix="rag-qa-")) / "index"
    corpus = folder.parent / "corpus.jsonl"
    folder.parent.mkdir(parents=True, exist_ok=True)
    with (data / "corpus.jsonl").open() as src, corpus.open("w") as dst:
        for line in src:
            if json.loads(line)["_id"] not in removed:
                dst.write(line)
    index = Index.open_or_create(folder)
    t0 = time.perf_counter()
    index.add(corpus)
    print(f"indexed {index.status().documents} paragraphs in {time.perf_counter() - t0:.0f}s")
    return index


# Whole articles held out from training the answer-finder: "dev" calibrates it, "test"
# is what every quoted figure is measured on. Fixed here so that every script agrees.
SPLIT_SEED = 7
TEST_SHARE, DEV_SHARE = 0.18, 0.12


def split_articles(data: Path, seed: int = SPLIT_SEED) -> dict[str, str]:
    """Article title → "train", "dev" or "test", shuffled with ``seed``, by question share."""
    rows = [json.loads(line) for line in (data / "qa.jsonl").open()]
    counts = collections.Counter(q["title"] for q in rows)
    titles = sorted(counts)
    random.Random(seed).shuffle(titles)
    split, taken = {}, 0
    for title in titles:
        share = taken / len(rows)
        test, dev = share < TEST_SHARE, share < TEST_SHARE + DEV_SHARE
        split[title] = "test" if test else "dev" if dev else "train"
        taken += counts[title] if split[title] != "train" else 0
    return split


# Questions the project wrote over the same SQuAD paragraphs, of the kinds SQuAD lacks
# (why, how, definition, list, compare, broad what), each answered by one to three
# whole sentences of its paragraph, stored as character offsets into the paragraph
# (the text stays in ../shared). Split by article like the rest.
SENTENCE_QUESTIONS = ROOT / "scripts" / "data" / "squad-sentence-questions.jsonl"


def sentence_questions(
    data: Path, path: Path = SENTENCE_QUESTIONS, part: str | None = None
) -> list[dict[str, Any]]:
    """The questions of ``path`` (of split ``part`` if given), each with ``answer_text``:
    the paragraph's text at each answer offset pair."""
    paragraphs = {}
    for line in (data / "corpus.jsonl").open():
        row = json.loads(line)
        paragraphs[row["_id"]] = row["text"]
    split = split_articles(data)
    found = []
    for line in path.open(encoding="utf-8"):
        q = json.loads(line)
        if part is not None and split[q["title"]] != part:
            continue
        text = paragraphs[q["context_id"]]
        found.append({**q, "answer_text": [text[s:e] for s, e in q["answer"]]})
    return found


def holds(sentence: str, answers: list[str]) -> str | None:
    """The first gold answer that occurs in ``sentence``."""
    return next((a for a in answers if a and a in sentence), None)


def answered_by(q: dict[str, Any], text: str) -> bool:
    """Whether ``text`` holds ``q``'s answer: a gold span of a SQuAD question; for a
    question answered by whole sentences, one of them whole, or the greater part of one
    (a sentence split elsewhere still counts)."""
    if "answers" in q:
        return holds(text, q["answers"]) is not None
    text = " ".join(text.split())
    for answer in q["answer_text"]:
        answer = " ".join(answer.split())
        if answer in text or (text in answer and len(text) > 0.5 * len(answer)):
            return True
    return False
