"""Open-corpus question answering evaluation (SQuAD-style data).

Indexes every paragraph of the corpus, asks a seeded sample of its questions through
`QueryEngine`, and prints exact match and token F1 (SQuAD answer normalization, best
over the gold answers), recall@k of the gold paragraph, how often the engine
abstained, how often an answer's citations include the gold paragraph, and the
median time per question.

    python scripts/eval_qa.py --data ../shared/data/squad-tune --questions 400

Questions are drawn from the articles the answer-finder was not trained on (the
"test" split of scripts/squad.py) unless --part says otherwise. "Sentence choice" is
how often the sentence the answer was read from holds a gold answer.

With --remove-gold F, the gold paragraphs of a fraction F of the sampled questions
are left out of the index, so those questions have no answer in it: the script then
reports abstention on them and on the answerable rest separately.

With --sentence-questions the questions are instead the project's own why, how,
definition, list and comparison questions over the same paragraphs (scripts/squad.py),
and an answer is right when it holds one of the sentences that answer it, whole or for
the greater part.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path
from typing import Any

from squad import (
    DEFAULT_DATA,
    SENTENCE_QUESTIONS,
    answered_by,
    best_f1,
    build_index,
    exact,
    sample,
    sentence_questions,
)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--questions", type=int, default=150)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("-k", type=int, default=3, help="passages given to the generator")
    ap.add_argument("--mode", default="hybrid", help="retrieval mode")
    ap.add_argument("--answer-mode", default=None, help="extractive or generative")
    ap.add_argument("--sentences", type=int, default=1, help="sentences read (extractive)")
    ap.add_argument("--generator", default=None)
    ap.add_argument("--remove-gold", type=float, default=0.0, metavar="F")
    ap.add_argument("--index", type=Path, default=None)
    ap.add_argument("--part", default="test", help="test, dev, train or all")
    ap.add_argument("--show", action="store_true", help="print every question and answer")
    ap.add_argument("--span-reader", default=None, help="finder or generator")
    ap.add_argument("--no-finder", action="store_true", help="rank sentences without the finder")
    ap.add_argument("--sentence-questions", nargs="?", type=Path, const=SENTENCE_QUESTIONS,
                    help="ask questions answered by whole sentences instead")  # fmt: skip
    args = ap.parse_args()

    from rag.answer.confidence import MIN_CONFIDENCE
    from rag.answer.engine import DEFAULT_ANSWER_MODE, QueryEngine
    from rag.text import find_span

    part = None if args.part == "all" else args.part
    rows = None
    if args.sentence_questions:
        rows = sentence_questions(args.data, args.sentence_questions)  # sample() takes part
    drawn = sample(args.data, args.questions, args.seed, args.remove_gold, part, rows)
    unanswerable = drawn.unanswerable
    index = build_index(args.data, args.index, drawn.removed)
    questions = drawn.questions
    print(f"{len(questions)} questions, {len(unanswerable)} with their paragraph removed")

    texts = [q["question"] for q in questions]
    retrieved = index.search_documents(texts, args.k, args.mode)
    # every answer is kept (min_confidence 0) so that any threshold can be scored below
    engine = QueryEngine(
        index,
        args.generator,
        k=args.k,
        search_mode=args.mode,
        answer_mode=args.answer_mode or DEFAULT_ANSWER_MODE,
        min_confidence=0.0,
        sentences=args.sentences,
        finder=False if args.no_finder else None,
        span_reader=args.span_reader,
    )
    engine.ask("warm-up question?")  # load the generator before timing
    seconds: list[float] = []
    answered: list[dict[str, Any]] = []  # one per question: what the engine said, and the truth
    for q, docs in zip(questions, retrieved):
        t = time.perf_counter()
        answer = engine.ask(q["question"])
        if args.show:
            gold = q["answers"][0] if "answers" in q else q["answer_text"][0]
            print(f"{q['question']!r} -> {answer.generated!r} gold {gold!r} "
                  f"conf {answer.confidence:.2f}")  # fmt: skip
        seconds.append(time.perf_counter() - t)
        text = "" if answer.abstained else answer.generated
        cited = {c.n for c in answer.citations}
        outside = bool(text) and not any(
            find_span(text, answer.passages[n - 1].text) for n in cited
        )
        answered.append(
            {
                "answerable": q["id"] not in unanswerable,
                "text": text,
                "confidence": answer.confidence,
                "em": score(exact, q, text),
                "f1": score(best_f1, q, text),
                "retrieved": q["context_id"] in [d.doc_id for d in docs],
                "cited_gold": q["context_id"] in [c.doc_id for c in answer.citations],
                "outside": outside,
                "sentence_right": any(answered_by(q, s.text) for s in answer.sentences),
            }
        )

    def pct(xs: list[bool] | list[float]) -> float:
        return 100 * statistics.fmean(xs) if xs else float("nan")

    def at(threshold: float) -> tuple[float, float, float, float]:
        """EM, F1, % answerable answered, % unanswerable abstained at ``threshold``."""
        ok = [a for a in answered if a["answerable"]]
        no = [a for a in answered if not a["answerable"]]
        says = [bool(a["text"]) and a["confidence"] >= threshold for a in ok]
        em = [a["em"] if s else 0.0 for a, s in zip(ok, says)]
        f = [a["f1"] if s else 0.0 for a, s in zip(ok, says)]
        quiet = [not a["text"] or a["confidence"] < threshold for a in no]
        return pct(em), pct(f), pct(says), pct(quiet)

    ok = [a for a in answered if a["answerable"]]
    em, f, says, quiet = at(MIN_CONFIDENCE)
    print(f"answer mode {engine.answer_mode}, abstaining below confidence {MIN_CONFIDENCE}")
    print(f"answerable questions: {len(ok)}")
    if args.sentence_questions:
        print(f"  right (holds an answering sentence) {em:.1f}%")
    else:
        print(f"  EM {em:.1f}  F1 {f:.1f}  (targets: EM >= 45, F1 >= 55)")
    print(f"  answered {says:.1f}% (target >= 90%); with no abstention: "
          f"EM {pct([a['em'] for a in ok]):.1f}  F1 {pct([a['f1'] for a in ok]):.1f}")  # fmt: skip
    print(f"  gold paragraph retrieved in top {args.k}: {pct([a['retrieved'] for a in ok]):.1f}%  "
          f"cited: {pct([a['cited_gold'] for a in ok]):.1f}%")  # fmt: skip
    print(f"  sentence choice: the answer's sentence holds the answer for "
          f"{pct([a['sentence_right'] for a in ok]):.1f}%")  # fmt: skip
    outside = sum(a["outside"] for a in answered)
    print(f"answers whose text is not in a cited passage: {outside} of "
          f"{sum(bool(a['text']) for a in answered)}")  # fmt: skip
    if unanswerable:
        print(f"unanswerable questions: {len(answered) - len(ok)}, abstained on {quiet:.1f}% "
              "(target >= 80%)")  # fmt: skip
        print("  threshold  EM    F1    answered  abstained-unanswerable")
        for t in (0.0, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.6):
            e, fx, sa, qu = at(t)
            print(f"  {t:9.2f}  {e:4.1f}  {fx:4.1f}  {sa:7.1f}%  {qu:7.1f}%")
    p95 = sorted(seconds)[int(0.95 * (len(seconds) - 1))]
    print(f"time per question: median {statistics.median(seconds):.2f}s, "
          f"p95 {p95:.2f}s (target median <= 1s)")  # fmt: skip


def score(metric: Any, q: dict[str, Any], text: str) -> float:
    """``metric`` (exact or best_f1) against a SQuAD question's gold answers; for a
    question answered by whole sentences, 1.0 when ``text`` holds one of them."""
    if not text:
        return 0.0
    if "answers" in q:
        return float(metric(text, q["answers"]))
    return float(answered_by(q, text))


if __name__ == "__main__":
    main()
