"""Ingest and retrieval benchmark on a BEIR-format corpus (SciFact by default).

Prints: ingest throughput against raw SentenceTransformer.encode on the same chunk
texts, re-index time of the unchanged corpus, nDCG@10 / Recall@100 / MRR@10, warm
search latency, and `rag --help` wall time.

    python scripts/bench_retrieval.py --data ../shared/data/scifact
    python scripts/bench_retrieval.py --index IDX --postgres postgresql://localhost/rag

With ``--postgres URL`` the folder index is also copied into that database (schema
``bench_<split>``, replaced if there; nothing is embedded again) and the default
modes are evaluated on both, side by side.
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
from functools import partial
from pathlib import Path
from typing import Any

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


def chunk_texts(index: Any) -> tuple[list[int], list[str]]:
    """(chunk ids, what the embedder saw for each chunk), in id order."""
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from rag.ingest.pipeline import embed_text
    from rag.storage.schema import ChunkRow, DocumentRow
    from rag.types import Chunk, Document

    with Session(index.store.engine) as s:
        rows = s.execute(
            select(ChunkRow.id, DocumentRow.title, ChunkRow.text, ChunkRow.heading)
            .join(DocumentRow, ChunkRow.document_id == DocumentRow.id)
            .order_by(ChunkRow.id)
        ).all()
    texts = [
        embed_text(Document("", "", "", "", title=t), Chunk(0, x, 0, 0, 1, 1, h))
        for _, t, x, h in rows
    ]
    return [r[0] for r in rows], texts


def measure_ingest(index: Any, corpus: Path, embedder: Any, skip_raw: bool) -> None:
    report = index.add(corpus)
    chunks = index.status().chunks
    ingest_rate = chunks / report.seconds
    print(f"ingest: {report.added} documents, {chunks} chunks in {report.seconds:.1f}s "
          f"= {ingest_rate:.1f} chunks/s")  # fmt: skip
    if not skip_raw:
        _, texts = chunk_texts(index)
        t0 = time.perf_counter()
        embedder.model.encode(texts, batch_size=embedder.batch_size, normalize_embeddings=True,
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "scifact")
    ap.add_argument("--split", default="train")
    ap.add_argument("--chunk-tokens", type=int, default=None)
    ap.add_argument("--chunk-overlap", type=int, default=None)
    ap.add_argument("--index", type=Path, default=None, help="index folder (default: temporary)")
    ap.add_argument("--skip-raw", action="store_true", help="skip the raw encode comparison")
    ap.add_argument("--latency-mode", default="hybrid", help="search mode timed for latency")
    ap.add_argument("--postgres", metavar="URL", help="also evaluate a copy in this database")
    ap.add_argument("--limit-docs", type=int, default=None,
                    help="ingest only the first N documents; measure throughput only")  # fmt: skip
    args = ap.parse_args()

    from rag.index import Index
    from rag.models.embedder import SentenceTransformerEmbedder
    from rag.retrieval.fusion import ALPHA, DEFAULT_FUSION, FUSION_MODES, minmax, relative
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

    if args.limit_docs:
        subset = folder.parent / "subset.jsonl"
        folder.parent.mkdir(parents=True, exist_ok=True)
        with corpus.open() as src, subset.open("w") as dst:
            for _, line in zip(range(args.limit_docs), src):
                dst.write(line)
        print(f"throughput only, on the first {args.limit_docs} documents of {corpus}")
        measure_ingest(Index.create(folder, settings, embedder), subset, embedder, args.skip_raw)
        return
    print(f"corpus {corpus} | {len(queries)} queries with judgements ({args.split})")
    if (folder / "index.db").exists():
        index = Index.open(folder, embedder)
        print(f"reusing the index at {folder}: {index.settings}")
    else:
        print(f"settings: {settings}")
        index = Index.create(folder, settings, embedder)
        measure_ingest(index, corpus, embedder, skip_raw=args.skip_raw)

    qids = list(queries)
    texts = [queries[q] for q in qids]
    print("retrieval, documents ranked by their best chunk (reference, SciFact test split: "
          "BM25 0.679, all-MiniLM-L6-v2 0.645, txtai hybrid 0.713):")  # fmt: skip
    variants: list[tuple[str, str, str]] = [
        ("dense", "dense", DEFAULT_FUSION),
        ("lexical (FTS5 BM25)", "lexical", DEFAULT_FUSION),
    ]
    weighted = {relative.__name__, minmax.__name__}
    variants += [
        (
            f"hybrid, {name}{f' alpha={ALPHA}' if name in weighted else ''}"
            f"{' (default)' if name == DEFAULT_FUSION else ''}",
            "hybrid",
            name,
        )
        for name in FUSION_MODES
    ]
    for a in [w for w in (0.3, 0.5, 0.7) if w != ALPHA]:  # the weight of the dense side
        for strategy in (relative, minmax):
            name = f"{strategy.__name__}-alpha{a}"
            FUSION_MODES[name] = partial(strategy, alpha=a)
            variants.append((f"hybrid, {strategy.__name__} alpha={a}", "hybrid", name))
    for label, mode, fusion in variants:
        t0 = time.perf_counter()
        results = index.search_documents(texts, 100, mode, fusion=fusion)
        secs = time.perf_counter() - t0
        m = evaluate({q: [h.doc_id for h in hits] for q, hits in zip(qids, results)}, qrels)
        print(f"  {label:34s} nDCG@10 {m['nDCG@10']:.4f}  Recall@100 {m['Recall@100']:.4f}  "
              f"MRR@10 {m['MRR@10']:.4f}  ({len(qids) / secs:.0f} queries/s)")  # fmt: skip
    top = [h.score for hits in index.search_batch(texts[:200], 1) for h in hits]
    print(f"  top hit's score, default hybrid, 200 queries: min {min(top):.3f}, "
          f"median {statistics.median(top):.3f}, max {max(top):.3f}")  # fmt: skip

    print_latency(index, [queries[q] for q in qids[:200]], args.latency_mode)
    if args.postgres:
        compare_postgres(index, args.postgres, args.split, texts, qids, qrels, args.latency_mode)
    print(f"`rag --help` wall time: {help_wall_time():.3f}s median of 7 (target <= 0.5s)")


def print_latency(index: Any, texts: list[str], mode: str, label: str = "") -> None:
    lat = []
    for text in texts:
        t = time.perf_counter()
        index.search(text, 10, mode)
        lat.append(time.perf_counter() - t)
    lat.sort()
    p50, p95 = 1000 * lat[len(lat) // 2], 1000 * lat[int(len(lat) * 0.95)]
    print(f"{label}search latency warm ({mode}, k=10, {len(lat)} queries): "
          f"p50 {p50:.1f} ms, p95 {p95:.1f} ms")  # fmt: skip


def compare_postgres(
    index: Any,
    url: str,
    split: str,
    texts: list[str],
    qids: list[str],
    qrels: dict[str, dict[str, int]],
    latency_mode: str,
) -> None:
    """Copy ``index`` into PostgreSQL and evaluate the default modes on both."""
    from rag.index import Index
    from rag.storage.location import Location
    from rag.storage.store import Store

    sep = "&" if "?" in url else "?"
    where = Location.of(f"{url}{sep}schema=bench_{split}")
    probe = Store.connect(where)
    with probe.engine.begin() as conn:
        conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{where.schema}" CASCADE')
    probe.close()
    report = index.copy_to(where)
    print(f"copied to {where}: {report.chunks} chunks in {report.seconds:.1f}s")
    copy = Index.open(where, index.embedder)
    print("SQLite (FTS5, FAISS) against PostgreSQL (tsvector, pgvector HNSW), same rows:")
    for mode in ("dense", "lexical", "hybrid"):
        m = {}
        for name, idx in (("sqlite", index), ("postgresql", copy)):
            results = idx.search_documents(texts, 100, mode)
            runs = {q: [h.doc_id for h in hits] for q, hits in zip(qids, results)}
            m[name] = evaluate(runs, qrels)
        a, b = m["sqlite"], m["postgresql"]
        print(f"  {mode:8s} nDCG@10 sqlite {a['nDCG@10']:.4f}  postgresql {b['nDCG@10']:.4f}  "
              f"(difference {b['nDCG@10'] - a['nDCG@10']:+.4f})  Recall@100 "
              f"{a['Recall@100']:.4f} / {b['Recall@100']:.4f}")  # fmt: skip
    print_latency(copy, texts[:200], latency_mode, "postgresql ")
    copy.close()


if __name__ == "__main__":
    main()
