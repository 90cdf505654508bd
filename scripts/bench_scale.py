"""Scale benchmark: synthetic vectors and texts at 100k and 1M chunks.

For each size it builds a real index (SQLite rows with FTS5 and embeddings, then the
FAISS index the settings call for), and prints build time, memory, single-query
search latency p50/p95 (the FAISS call alone and a whole dense `Index.search`, rows
included) and recall@10 against exact search.

    python scripts/bench_scale.py --sizes 100000 1000000
    python scripts/bench_scale.py --sizes 1000000 --postgres postgresql://localhost/rag

With ``--postgres URL`` the index is built in PostgreSQL (a schema per size) with
pgvector: rows are written through the store as an ingest writes them, the HNSW index
is built once after the load (timed on its own), and the size printed is the
database's per chunk.

Vectors are drawn around a few thousand random centres on the unit sphere, as real
sentence embeddings cluster by topic; queries are perturbed copies of indexed vectors.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rag.index import Index  # noqa: E402
from rag.settings import Settings  # noqa: E402
from rag.storage.location import Location  # noqa: E402
from rag.storage.pgvectors import HNSW_INDEX  # noqa: E402
from rag.storage.records import DocumentWrite  # noqa: E402
from rag.storage.store import Store  # noqa: E402
from rag.types import Chunk, Document  # noqa: E402

DIM = 384
WORDS = np.array(
    "alpha beta gamma delta river stone cloud paper engine signal market garden winter "
    "silver orbit matrix vector planet forest ocean crystal bridge desert lantern violin".split()
)


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def synthetic(n: int, rng: np.random.Generator) -> np.ndarray:
    centres = rng.standard_normal((max(100, n // 300), DIM)).astype(np.float32)
    out = np.empty((n, DIM), dtype=np.float32)
    for start in range(0, n, 100_000):
        m = min(100_000, n - start)
        x = centres[rng.integers(0, len(centres), m)]
        x += rng.standard_normal((m, DIM)).astype(np.float32) * rng.uniform(0.3, 0.6, (m, 1))
        out[start : start + m] = x / np.linalg.norm(x, axis=1, keepdims=True)
    return out


class LookupEmbedder:
    """Maps the query text 'q<i>' to the i-th query vector."""

    name = "synthetic"

    def __init__(self, queries: np.ndarray) -> None:
        self.queries = queries

    @property
    def dim(self) -> int:
        return DIM

    @property
    def max_tokens(self) -> int:
        return 256

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        return self.queries[[int(t[1:]) for t in texts]]

    def token_offsets(self, texts: Sequence[str]) -> list[list[tuple[int, int]]]:
        return [[(0, len(t))] for t in texts]


def run(
    n: int, kind: str, n_queries: int, seed: int, url: str | None = None, reuse: bool = False
) -> None:
    rng = np.random.default_rng(seed)
    vectors = synthetic(n, rng)
    picks = rng.integers(0, n, n_queries)
    noise = rng.standard_normal((n_queries, DIM)).astype(np.float32) * (0.5 / np.sqrt(DIM))
    q = vectors[picks] + noise
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    settings = Settings(embedder="synthetic", vector_index=kind)
    if url is None:
        folder = Path(tempfile.mkdtemp(prefix=f"rag-scale-{n}-")) / "index"
        folder.mkdir(parents=True)
        where = Location.of(folder)
    else:
        sep = "&" if "?" in url else "?"
        where = Location.of(f"{url}{sep}schema=scale_{n}_{kind}")
        drop = Store.connect(where)
        if not reuse:
            with drop.engine.begin() as conn:
                conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{where.schema}" CASCADE')
        drop.close()

    t0 = time.perf_counter()
    store = Store.open(where) if reuse else Store.create(where, settings)
    batch = 20_000
    for start in range(0, 0 if reuse else n, batch):
        writes = []
        for i in range(start, min(n, start + batch)):
            text = " ".join(WORDS[(i * 7 + j * 13) % len(WORDS)] for j in range(24)) + f" {i}."
            doc = Document(f"doc{i}", f"synthetic/doc{i}", text, "text", title=f"Doc {i}")
            chunk = Chunk(0, text, 0, len(text), 1, 1)
            writes.append(DocumentWrite(doc, "synthetic", [chunk], vectors[i : i + 1]))
        store.write(writes)
        if url is not None and start == 0:
            # the first batch made the HNSW index; it is built once, after the load
            with store.engine.begin() as conn:
                conn.exec_driver_sql(f"DROP INDEX {HNSW_INDEX}")
    store.close()
    db_seconds = time.perf_counter() - t0

    embedder = LookupEmbedder(q)
    before = rss_mb()
    t0 = time.perf_counter()
    index = Index.open(where, embedder)
    if url is not None:
        index.vectors.rebuild()
    index.search("q0", k=10, mode="dense")  # loads: builds vectors from the database
    build_seconds = time.perf_counter() - t0
    vecs = index.vectors.current
    assert vecs is not None
    mem = rss_mb() - before
    index.vectors.save()
    vfile = index.vectors.bytes_used()
    dbfile = index.store.bytes_used()

    faiss_lat, full_lat, found = [], [], []
    for i in range(n_queries):
        t = time.perf_counter()
        _, ids = vecs.search(q[i : i + 1], 10)
        faiss_lat.append(time.perf_counter() - t)
        found.append(ids[0])
        t = time.perf_counter()
        index.search(f"q{i}", k=10, mode="dense")
        full_lat.append(time.perf_counter() - t)
    truth = np.argsort(-(q @ vectors.T), axis=1)[:, :10]
    # chunk ids are 1..n in insertion order
    recall = np.mean([len(set(t + 1) & set(f)) / 10 for t, f in zip(truth, found)])

    def pct(xs: list[float], p: float) -> float:
        return 1000 * sorted(xs)[int(p * (len(xs) - 1))]

    nprobe = getattr(vecs, "nprobe", "-")
    if reuse:
        print(f"(the rows were written by an earlier run: {n:,} chunks, reused)")
    print(f"{n:>9,} chunks | {vecs.kind:4s} ({vecs.lists} lists, nprobe {nprobe}) | "
          f"{index.store.backend.kind} write {db_seconds:.0f}s, "
          f"vector build {build_seconds:.1f}s | "
          f"vector memory {mem:.0f} MiB = {1024 * 1024 * mem / n:.0f} B/chunk, "
          f"vectors {vfile / 2**20:.0f} MiB, database {dbfile / 2**20:.0f} MiB "
          f"= {dbfile / n:.0f} B/chunk | "
          f"{'FAISS' if url is None else 'pgvector'} p50 {pct(faiss_lat, .5):.2f} ms "
          f"p95 {pct(faiss_lat, .95):.2f} ms | "
          f"search p50 {pct(full_lat, .5):.2f} ms p95 {pct(full_lat, .95):.2f} ms | "
          f"recall@10 {recall:.3f}", flush=True)  # fmt: skip
    index.close()


def real_recall(index_dir: Path, queries_file: Path) -> None:
    """IVF against exact search on the stored embeddings of a real index."""
    import json

    from rag.models.embedder import SentenceTransformerEmbedder
    from rag.storage.vectors import VectorIndex, ivf_lists

    store = Store.open(Location.of(index_dir))
    ids, vecs = zip(*store.embeddings())
    all_ids, all_vecs = np.concatenate(ids), np.vstack(vecs)
    texts = [json.loads(line)["text"] for line in queries_file.open()]
    q = SentenceTransformerEmbedder(store.settings().embedder).embed(texts)
    exact = VectorIndex(all_vecs.shape[1])
    exact.add(all_ids, all_vecs)
    lists = ivf_lists(len(all_ids))
    approx = VectorIndex.ivf(all_vecs.shape[1], store.sample_embeddings(64 * lists), lists)
    approx.add(all_ids, all_vecs)
    truth, got = exact.search(q, 10)[1], approx.search(q, 10)[1]
    recall = np.mean([len(set(t) & set(g)) / 10 for t, g in zip(truth, got)])
    print(f"real embeddings ({index_dir}): {len(all_ids):,} chunks, {len(texts)} queries | "
          f"ivf {approx.lists} lists, nprobe {approx.nprobe} | recall@10 {recall:.3f}")  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument("--kinds", nargs="+", default=["auto"], help="auto, flat, ivf")
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--real-index", type=Path, help="also measure IVF recall on this index")
    ap.add_argument("--real-queries", type=Path, help="JSONL queries for --real-index")
    ap.add_argument("--postgres", metavar="URL", help="build the index in this database")
    ap.add_argument("--reuse", action="store_true",
                    help="with --postgres: keep an earlier run's rows (same --seed)")  # fmt: skip
    args = ap.parse_args()
    if args.real_index:
        real_recall(args.real_index, args.real_queries)
        return
    print("targets: p50 <= 20 ms at 100k, <= 50 ms at 1M, recall@10 >= 0.95 (2 cores)")
    for n in args.sizes:
        for kind in args.kinds:
            run(n, kind, args.queries, args.seed, args.postgres, args.reuse)


if __name__ == "__main__":
    main()
