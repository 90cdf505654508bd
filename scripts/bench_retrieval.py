"""Ingest and retrieval benchmark on a BEIR-format corpus (SciFact by default).

Prints: ingest throughput against raw SentenceTransformer.encode on the same chunk
texts, re-index time of the unchanged corpus, nDCG@10 / Recall@100 / MRR@10, warm
search latency, and `rag --help` wall time.

    python scripts/bench_retrieval.py --data ../shared/data/scifact
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def load_qrels(path: Path) -> dict[str, dict[str, int]]:
    qrels: dict[str, dict[str, int]] = {}
    with path.open() as f:
        next(f)
        for line in f:
            qid, did, score = line.rstrip("\n").split("\t")
            if int(score) > 0:
                qrels.setdefault(qid, {})[did] = int(score)
    return qrels


def load_queries(path: Path) -> dict[str, str]:
    out = {}
    with path.open() as f:
        for line in f:
            obj = json.loads(line)
            out[str(obj["_id"])] = obj["text"]
    return out


def ndcg_at(ranked: list[str], rels: dict[str, int], k: int = 10) -> float:
    dcg = sum(rels.get(d, 0) / math.log2(i + 2) for i, d in enumerate(ranked[:k]))
    ideal = sorted(rels.values(), reverse=True)[:k]
    idcg = sum(r / math.log2(i + 2) for i, r in enumerate(ideal))
    return dcg / idcg if idcg else 0.0


def evaluate(runs: dict[str, list[str]], qrels: dict[str, dict[str, int]]) -> dict[str, float]:
    ndcg, recall, mrr = [], [], []
    for qid, rels in qrels.items():
        ranked = runs.get(qid, [])
        ndcg.append(ndcg_at(ranked, rels))
        recall.append(len(set(ranked[:100]) & set(rels)) / len(rels))
        rr = next((1 / (i + 1) for i, d in enumerate(ranked[:10]) if d in rels), 0.0)
        mrr.append(rr)
    return {
        "nDCG@10": statistics.fmean(ndcg),
        "Recall@100": statistics.fmean(recall),
        "MRR@10": statistics.fmean(mrr),
        "queries": len(qrels),
    }


def help_wall_time(runs: int = 7) -> float:
    rag = Path(sys.executable).parent / "rag"
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run([str(rag), "--help"], check=True, capture_output=True)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "scifact")
    ap.add_argument("--split", default="train")
    ap.add_argument("--chunk-tokens", type=int, default=None)
    ap.add_argument("--chunk-overlap", type=int, default=None)
    ap.add_argument("--index", type=Path, default=None, help="index folder (default: temporary)")
    ap.add_argument("--skip-raw", action="store_true", help="skip the raw encode comparison")
    args = ap.parse_args()

    from rag.embedder import SentenceTransformerEmbedder
    from rag.index import Index
    from rag.settings import Settings

    corpus = args.data / "corpus.jsonl"
    qrels = load_qrels(args.data / "qrels" / f"{args.split}.tsv")
    queries = {q: t for q, t in load_queries(args.data / "queries.jsonl").items() if q in qrels}
    folder = args.index or Path(tempfile.mkdtemp(prefix="rag-bench-")) / "index"
    settings = Settings().with_changes(
        chunk_tokens=args.chunk_tokens, chunk_overlap=args.chunk_overlap
    )
    embedder = SentenceTransformerEmbedder(settings.embedder)
    _ = embedder.dim  # load the model before timing

    print(f"corpus {corpus} | {len(queries)} queries with judgements ({args.split})")
    print(f"settings: {settings}")
    index = Index.create(folder, settings, embedder)
    report = index.add(corpus)
    chunks = index.status().chunks
    ingest_rate = chunks / report.seconds
    print(f"ingest: {report.added} documents, {chunks} chunks in {report.seconds:.1f}s "
          f"= {ingest_rate:.1f} chunks/s")  # fmt: skip

    if not args.skip_raw:
        from sqlalchemy import select
        from sqlalchemy.orm import Session

        from rag.index import _embed_text
        from rag.store import ChunkRow, DocumentRow

        with Session(index.store.engine) as s:
            rows = s.execute(
                select(DocumentRow.title, ChunkRow.text, ChunkRow.heading)
                .join(DocumentRow, ChunkRow.document_id == DocumentRow.id)
                .order_by(ChunkRow.id)
            ).all()
        from rag.chunking import Chunk
        from rag.documents import Document

        texts = [
            _embed_text(Document("", "", "", "", title=t), Chunk(0, x, 0, 0, 1, 1, h))
            for t, x, h in rows
        ]
        model = embedder.model
        t0 = time.perf_counter()
        model.encode(texts, batch_size=embedder.batch_size, normalize_embeddings=True,
                     show_progress_bar=False)  # fmt: skip
        raw = time.perf_counter() - t0
        raw_rate = len(texts) / raw
        print(f"raw SentenceTransformer.encode on the same {len(texts)} chunk texts: "
              f"{raw:.1f}s = {raw_rate:.1f} chunks/s")  # fmt: skip
        print(f"ingest / raw encode throughput: {ingest_rate / raw_rate:.2f}x (target >= 0.9x)")

    report2 = index.add(corpus)
    print(f"re-index unchanged: {report2.seconds:.2f}s = "
          f"{100 * report2.seconds / report.seconds:.1f}% of full ingest (target <= 3%); "
          f"{report2.unchanged} unchanged, {report2.chunks} chunks embedded")  # fmt: skip

    qids = list(queries)
    t0 = time.perf_counter()
    results = index.search_documents([queries[q] for q in qids], 100)
    batch_s = time.perf_counter() - t0
    runs = {q: [h.doc_id for h in hits] for q, hits in zip(qids, results)}
    metrics = evaluate(runs, qrels)
    print("retrieval (dense): " + ", ".join(
        f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in metrics.items()
    ) + f" | batch search {len(qids) / batch_s:.0f} queries/s")  # fmt: skip
    print("  reference (SciFact test split): all-MiniLM-L6-v2 nDCG@10 0.645, BM25 0.679")

    lat = []
    for q in qids[:200]:
        t = time.perf_counter()
        index.search(queries[q], 10)
        lat.append(time.perf_counter() - t)
    lat.sort()
    print(f"search latency warm (k=10, {len(lat)} queries): p50 {1000 * lat[len(lat) // 2]:.1f} ms,"
          f" p95 {1000 * lat[int(len(lat) * 0.95)]:.1f} ms")  # fmt: skip
    print(f"`rag --help` wall time: {help_wall_time():.3f}s median of 7 (target <= 0.5s)")


if __name__ == "__main__":
    main()
