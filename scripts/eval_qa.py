"""Open-corpus question answering evaluation (SQuAD-style data).

Indexes every paragraph of the corpus, asks a seeded sample of its questions through
`QueryEngine`, and prints exact match and token F1 (SQuAD answer normalization, best
over the gold answers), recall@k of the gold paragraph, how often the engine
abstained, how often an answer's citations include the gold paragraph, and the
median time per question.

    python scripts/eval_qa.py --data ../shared/data/squad-tune --questions 150

With --remove-gold F, the gold paragraphs of a fraction F of the sampled questions
are left out of the index, so those questions have no answer in it: the script then
reports abstention on them and on the answerable rest separately.
"""

from __future__ import annotations

import argparse
import collections
import json
import random
import re
import statistics
import string
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def normalize(text: str) -> str:
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


def strip_citations(text: str) -> str:
    return re.sub(r"\s*\[\d+\]", "", text).strip()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "squad-tune")
    ap.add_argument("--questions", type=int, default=150)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("-k", type=int, default=3, help="passages given to the generator")
    ap.add_argument("--mode", default="hybrid")
    ap.add_argument("--generator", default=None)
    ap.add_argument("--remove-gold", type=float, default=0.0, metavar="F")
    ap.add_argument("--index", type=Path, default=None)
    args = ap.parse_args()

    from rag.engine import QueryEngine
    from rag.index import Index

    rows = [json.loads(line) for line in (args.data / "qa.jsonl").open()]
    rng = random.Random(args.seed)
    sample = rng.sample(rows, min(args.questions, len(rows)))
    unanswerable = {q["id"] for q in sample[: int(len(sample) * args.remove_gold)]}
    removed = {q["context_id"] for q in sample if q["id"] in unanswerable}
    # a removed paragraph must not be the gold one of an answerable question
    keep_answerable = [q for q in sample if q["id"] not in unanswerable]
    sample = [q for q in sample if q["id"] in unanswerable] + [
        q for q in keep_answerable if q["context_id"] not in removed
    ]

    folder = args.index or Path(tempfile.mkdtemp(prefix="rag-qa-")) / "index"
    corpus = folder.parent / "corpus.jsonl"
    folder.parent.mkdir(parents=True, exist_ok=True)
    with (args.data / "corpus.jsonl").open() as src, corpus.open("w") as dst:
        for line in src:
            if json.loads(line)["_id"] not in removed:
                dst.write(line)
    index = Index.open_or_create(folder)
    t0 = time.perf_counter()
    index.add(corpus)
    print(f"indexed {index.status().documents} paragraphs in {time.perf_counter() - t0:.0f}s; "
          f"{len(sample)} questions, {len(unanswerable)} with their paragraph removed")  # fmt: skip

    texts = [q["question"] for q in sample]
    retrieved = index.search_documents(texts, args.k, args.mode)
    engine = QueryEngine(index, args.generator, k=args.k, mode=args.mode)
    engine.ask("warm-up question?")  # load the generator before timing
    ems, f1s, hits, cited_gold, abstained, seconds = [], [], [], [], [], []
    abstain_unanswerable = []
    for q, docs in zip(sample, retrieved):
        t = time.perf_counter()
        answer = engine.ask(q["question"])
        seconds.append(time.perf_counter() - t)
        if q["id"] in unanswerable:
            abstain_unanswerable.append(answer.abstained)
            continue
        text = "" if answer.abstained else strip_citations(answer.text)
        ems.append(max(float(normalize(text) == normalize(g)) for g in q["answers"]))
        f1s.append(max(f1(text, g) for g in q["answers"]))
        hits.append(q["context_id"] in [d.doc_id for d in docs])
        cited_gold.append(q["context_id"] in [c.doc_id for c in answer.citations])
        abstained.append(answer.abstained)

    def pct(xs: list[bool] | list[float]) -> float:
        return 100 * statistics.fmean(xs) if xs else float("nan")

    print(f"answerable questions: {len(ems)}")
    print(f"  EM {pct(ems):.1f}  F1 {pct(f1s):.1f}  (targets: EM >= 30, F1 >= 42; "
          "gold paragraph given, Gemma-3-270M: EM 27 / F1 42)")  # fmt: skip
    print(f"  gold paragraph retrieved in top {args.k}: {pct(hits):.1f}%  "
          f"cited: {pct(cited_gold):.1f}%  abstained: {pct(abstained):.1f}%")  # fmt: skip
    if abstain_unanswerable:
        print(f"unanswerable questions: {len(abstain_unanswerable)}, "
              f"abstained on {pct(abstain_unanswerable):.1f}% (target >= 80%; answering >= 90% "
              f"of the answerable ones)")  # fmt: skip
    p95 = sorted(seconds)[int(0.95 * (len(seconds) - 1))]
    print(f"time per question: median {statistics.median(seconds):.2f}s, "
          f"p95 {p95:.2f}s (target median <= 3s)")  # fmt: skip


if __name__ == "__main__":
    main()
