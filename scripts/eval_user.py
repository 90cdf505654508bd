"""Score answers to user-style questions: right content, right file cited, abstained when due.

An evaluation set is JSONL, one question a line:

    {"id", "question", "type", "answerable", "file", "also"?, "must_contain": [...], "on_topic"?}

An answer is right when it was given (not abstained) and holds every ``must_contain``
phrase (case and white space aside). Its file is right when a citation points into
``file`` or one of ``also``. An unanswerable question is handled right when the engine
abstains. For each answerable question it also tells whether one of the passages the
engine answered from holds every phrase: where none does, the passages failed, not the
reading of them. Of the right answers it counts the sentences shown (a span counts its
sentence) and those holding none of the phrases: a rough measure of what a reader wades
through, since a sentence of context holds none either. A first line
``{"_meta": true, "index": FOLDER}`` names the folder to index; otherwise pass ``--docs``.

    python scripts/eval_user.py --set corpora/foundation-models.eval.jsonl \\
        --docs corpora/foundation-models
    python scripts/eval_user.py --set scripts/evalsets/postgresql-doc-15.jsonl --show
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def load_set(path: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    meta: dict[str, Any] = {}
    rows = []
    with path.open(encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            obj = json.loads(line)
            if obj.get("_meta"):
                meta = obj
            else:
                rows.append(obj)
    return meta, rows


def squeezed(text: str) -> str:
    return " ".join(text.lower().split())


def judge(row: dict[str, Any], answer: Any) -> dict[str, Any]:
    """What the user would say of this answer."""
    text = squeezed(answer.generated if not answer.abstained else "")
    files = {row["file"], *row.get("also", [])} if row.get("file") else set()
    cited = [c.doc_id for c in answer.citations]
    hit = any(any(c == f or c.endswith("/" + f) for f in files) for c in cited)
    # whether one passage the engine answered from holds every phrase: if not, retrieval
    # (or the choice of passages) failed, not the reading
    read = [squeezed(p.text) for p in answer.passages]
    held = bool(row["answerable"]) and any(
        all(squeezed(p) in t for p in row["must_contain"]) for t in read
    )
    if row["answerable"]:
        right = not answer.abstained and all(squeezed(p) in text for p in row["must_contain"])
    else:
        right = answer.abstained
    # of a right answer, the sentences shown and those that hold none of the phrases
    shown = answer.sentences if right and row["answerable"] else []
    spare = sum(
        not any(squeezed(p) in squeezed(e.text) for p in row["must_contain"]) for e in shown
    )
    return {"right": right, "file_right": hit, "cited": cited, "in_passages": held,
            "spare": spare, "shown": len(shown)}  # fmt: skip


def print_sweep(swept: list[tuple[str, bool, float, bool]]) -> None:
    """Right answers and abstentions had the engine abstained below each threshold."""
    print("\nif abstaining below t (answers given at any confidence):")
    for shape in [*sorted({s for s, *_ in swept}), "all"]:
        rows = [r for r in swept if shape in ("all", r[0])]
        ok = [r for r in rows if r[1]]
        no = [r for r in rows if not r[1]]
        cells = []
        for t in (0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.29, 0.35):
            right = sum(r[3] and r[2] >= t for r in ok)
            quiet = sum(r[2] < t for r in no)
            cells.append(f"{t:.2f}: {right}/{len(ok)} {quiet}/{len(no)}")
        print(f"  {shape:9s} right/answerable abstained/unanswerable  " + "  ".join(cells))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--set", type=Path, required=True, help="evaluation set (JSONL)")
    ap.add_argument("--docs", type=Path, help="folder to index (default: the set's _meta)")
    ap.add_argument("--index", type=Path, help="index folder to build or reuse")
    ap.add_argument("--answer-mode", default="extractive")
    ap.add_argument("--generator", default=None)
    ap.add_argument("-k", type=int, default=3)
    ap.add_argument("--show", action="store_true", help="print every question and answer")
    ap.add_argument("--no-finder", action="store_true", help="rank sentences without the finder")
    ap.add_argument("--span-reader", default=None, help="finder or generator")
    ap.add_argument("--min-confidence", type=float, default=None,
                    help="abstain below this (default: the engine's)")  # fmt: skip
    ap.add_argument("--sweep", action="store_true",
                    help="answer all, then score abstention thresholds by shape")  # fmt: skip
    args = ap.parse_args()

    from rag.answer.engine import QueryEngine
    from rag.index import Index

    meta, rows = load_set(args.set)
    docs = args.docs or (Path(meta["index"]) if meta.get("index") else None)
    if docs is None:
        ap.error("give --docs: the set names no folder to index")
    folder = args.index or Path(tempfile.mkdtemp(prefix="rag-eval-")) / "index"
    index = Index.open_or_create(folder)
    started = time.perf_counter()
    report = index.add(docs)
    print(f"indexed {docs}: {report.added} added, {report.unchanged} unchanged, "
          f"{len(report.failed)} failed in {time.perf_counter() - started:.0f}s")  # fmt: skip
    engine = QueryEngine(index, args.generator, k=args.k, answer_mode=args.answer_mode,
                         finder=False if args.no_finder else None,
                         span_reader=args.span_reader,
                         **({"min_confidence": 0.0} if args.sweep else {}
                            if args.min_confidence is None
                            else {"min_confidence": args.min_confidence}))  # fmt: skip
    engine.ask(rows[0]["question"])  # warm: models load outside the timings

    by_type: dict[str, Counter[str]] = defaultdict(Counter)
    seconds = []
    failures = []
    swept: list[tuple[str, bool, float, bool]] = []  # shape, answerable, confidence, right
    for row in rows:
        t0 = time.perf_counter()
        answer = engine.ask(row["question"])
        seconds.append(time.perf_counter() - t0)
        verdict = judge(row, answer)
        swept.append((answer.shape or "", row["answerable"], answer.confidence,
                      verdict["right"] if row["answerable"] else False))  # fmt: skip
        kind = row["type"] if row["answerable"] else (
            "unanswerable, on topic" if row.get("on_topic") else "unanswerable, off topic"
        )  # fmt: skip
        tally = by_type[kind]
        tally["n"] += 1
        tally["right"] += verdict["right"]
        tally["file_right"] += verdict["file_right"]
        tally["answered"] += not answer.abstained
        tally["in_passages"] += verdict["in_passages"]
        tally["spare"] += verdict["spare"]
        tally["shown"] += verdict["shown"]
        line = (f"{row['id']} [{kind}] {row['question']}\n    -> "
                f"{'(abstained) ' if answer.abstained else ''}{answer.generated!r} "
                f"conf {answer.confidence:.2f} cites {verdict['cited']}; "
                f"want {row.get('must_contain')} in {row.get('file')}")  # fmt: skip
        if args.show:
            print(("ok   " if verdict["right"] else "MISS ") + line)
        if not verdict["right"]:
            failures.append(line)

    answerable = [t for k, t in by_type.items() if not k.startswith("unanswerable")]
    unanswerable = [t for k, t in by_type.items() if k.startswith("unanswerable")]
    n_ans = sum(t["n"] for t in answerable)
    n_un = sum(t["n"] for t in unanswerable)
    print(f"\n{args.set} | {len(rows)} questions | answer mode {args.answer_mode} | k={args.k}")
    print(f"{'type':26s} {'n':>3s} {'right':>7s} {'file right':>11s} {'answered':>9s}")
    for kind in sorted(by_type):
        t = by_type[kind]
        shares = [100 * t[key] / t["n"] for key in ("right", "file_right", "answered")]
        print(f"{kind:26s} {t['n']:3d} {shares[0]:6.1f}% {shares[1]:10.1f}% {shares[2]:8.1f}%")
    if n_ans:
        right = sum(t["right"] for t in answerable)
        cited = sum(t["file_right"] for t in answerable)
        read = sum(t["in_passages"] for t in answerable)
        print(f"answerable: {100 * right / n_ans:.1f}% right ({right}/{n_ans}), "
              f"{100 * cited / n_ans:.1f}% cite the right file; "
              f"{100 * read / n_ans:.1f}% ({read}/{n_ans}) had a passage read holding "
              "every phrase")  # fmt: skip
        shown = sum(t["shown"] for t in answerable)
        spare = sum(t["spare"] for t in answerable)
        if shown:
            print(f"right answers show {shown} sentences, {spare} ({100 * spare / shown:.0f}%) "
                  "holding none of the phrases")  # fmt: skip
    if n_un:
        held = sum(t["right"] for t in unanswerable)
        print(f"unanswerable: {100 * held / n_un:.1f}% abstained ({held}/{n_un})")
    print(f"time per question, warm: median {statistics.median(seconds):.2f}s, "
          f"p95 {sorted(seconds)[int(0.95 * (len(seconds) - 1))]:.2f}s")  # fmt: skip
    if args.sweep:
        print_sweep(swept)
    if not args.show and failures:
        print("\nnot right:")
        for line in failures:
            print(line)


if __name__ == "__main__":
    main()
