"""Does a reranker help retrieval? nDCG@10 on a BEIR corpus with and without it.

Searches an index already built by bench_retrieval.py (--index), the same queries
twice: hybrid retrieval alone, then with the reranker rescoring the top
RERANK_DEPTH chunks. The default reranker is rag's answer-finder.

    python scripts/bench_rerank.py --index /tmp/scifact-idx --queries 200
"""

from __future__ import annotations

import argparse
import random
import time
from pathlib import Path

from bench_retrieval import ROOT, evaluate, load_qrels, load_queries


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "scifact")
    ap.add_argument("--split", default="train")
    ap.add_argument("--index", type=Path, required=True)
    ap.add_argument("--queries", type=int, default=200, help="a seeded sample (0: all)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--reranker", default=None, help="a cross-encoder (default: answer-finder)")
    args = ap.parse_args()

    from rag.index import Index
    from rag.models.finder import AnswerFinder
    from rag.models.registry import load_reranker

    qrels = load_qrels(args.data / "qrels" / f"{args.split}.tsv")
    queries = {q: t for q, t in load_queries(args.data / "queries.jsonl").items() if q in qrels}
    ids = sorted(queries)
    if args.queries:
        ids = random.Random(args.seed).sample(ids, min(args.queries, len(ids)))
    texts = [queries[q] for q in ids]
    with Index.open(args.index) as index:
        for name in ("hybrid", "hybrid + reranker"):
            if name != "hybrid":
                index.reranker = load_reranker(args.reranker) if args.reranker else AnswerFinder()
            t0 = time.perf_counter()
            hits = index.search_documents(texts, k=10)
            seconds = (time.perf_counter() - t0) / len(texts)
            runs = {q: [h.doc_id for h in hs] for q, hs in zip(ids, hits)}
            scores = evaluate(runs, {q: qrels[q] for q in ids})
            shown = f"nDCG@10 {scores['nDCG@10']:.4f}  MRR@10 {scores['MRR@10']:.4f}"
            print(f"{name:18s} {shown}  ({seconds:.2f}s per query)")
    print(f"{len(ids)} queries of the {args.split} split")


if __name__ == "__main__":
    main()
