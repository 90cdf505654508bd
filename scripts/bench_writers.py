"""Many writers into one PostgreSQL index: one writer's rate against two writers' at once.

Embeddings come from a stub OpenAI-compatible server that answers at once with fixed
vectors (rendered once), so what is measured is our write path and PostgreSQL, not a
model. A synthetic corpus is split in two halves. First one writer indexes both halves
into a fresh schema; then two writer processes index one half each, at the same time,
into another. Each writer reports where its time went (reading files, chunking,
embedding requests, database writes, the rest) and the run reports how busy the
machine's cores were.

    python scripts/bench_writers.py --docs 8000
    python scripts/bench_writers.py --postgres postgresql://localhost/rag

Without ``--postgres`` a PostgreSQL is started with pgserver in a temporary folder.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DIM = 384
WORDS = (
    "river stone cloud paper engine signal market garden winter silver orbit matrix "
    "vector planet forest ocean crystal bridge desert lantern violin harbor meadow"
).split()

WRITER = """
import json, sys, time
sys.path.insert(0, {root!r})
import rag.ingest.pipeline as pipeline
import rag.ingest.readers as readers
from rag.index import Index

spent = dict(read=0.0, chunk=0.0, embed=0.0, write=0.0)

def timed(key, fn):
    def run(*a, **k):
        t = time.perf_counter()
        try:
            return fn(*a, **k)
        finally:
            spent[key] += time.perf_counter() - t
    return run

def timed_iter(key, fn):
    def run(*a, **k):
        it = iter(fn(*a, **k))
        while True:
            t = time.perf_counter()
            try:
                item = next(it)
            except StopIteration:
                spent[key] += time.perf_counter() - t
                return
            spent[key] += time.perf_counter() - t
            yield item
    return run

readers.read = timed_iter("read", readers.read)
pipeline.chunk_documents = timed("chunk", pipeline.chunk_documents)
idx = Index.open({url!r})
idx.embedder.embed = timed("embed", idx.embedder.embed)
idx.store.write = timed("write", idx.store.write)
print("ready", flush=True)
sys.stdin.readline()
start = time.perf_counter()
cpu = time.process_time()
report = idx.add({path!r})
wall = time.perf_counter() - start
print(json.dumps(dict(spent, wall=wall, cpu=time.process_time() - cpu,
                      docs=report.added, chunks=report.chunks, failed=len(report.failed))))
"""


def write_corpus(folder: Path, n: int, chars: int, rng: np.random.Generator) -> None:
    folder.mkdir(parents=True)
    for i in range(n):
        words = rng.choice(WORDS, size=chars // 7)
        body = " ".join(words)
        (folder / f"doc{i:05d}.md").write_text(f"# Document {folder.name} {i}\n\n{body}.\n")


def stub_server() -> ThreadingHTTPServer:
    """An embeddings endpoint answering at once: each text gets one of a fixed set of
    random unit vectors (rendered once), picked by a hash of the text, so the HNSW
    index sees distinct vectors as it would from a model."""
    rng = np.random.default_rng(1)
    pool = rng.standard_normal((1024, DIM)).astype(np.float32)
    pool /= np.linalg.norm(pool, axis=1, keepdims=True)
    rendered = [json.dumps([round(float(x), 6) for x in v]) for v in pool]

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            self._send(b'{"object": "list", "data": [{"id": "fixed", "object": "model"}]}')

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
            data = ",".join(
                f'{{"object": "embedding", "index": {i}, '
                f'"embedding": {rendered[hash(t) % len(rendered)]}}}'
                for i, t in enumerate(texts)
            )
            self._send(f'{{"object": "list", "model": "fixed", "data": [{data}]}}'.encode())

        def _send(self, raw: bytes) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def cpu_busy() -> tuple[int, int]:
    """(busy, total) jiffies of all cores so far, from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    idle = fields[3] + fields[4]
    return sum(fields) - idle, sum(fields)


def run_writers(url: str, paths: list[Path]) -> tuple[float, list[dict[str, float]], float]:
    """Writers, one per path, started together: (wall seconds, their reports, CPU busy)."""
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER.format(root=str(ROOT), url=url, path=str(p))],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for p in paths
    ]
    for p in procs:
        assert p.stdout is not None and p.stdout.readline().strip() == "ready"
    busy0, total0 = cpu_busy()
    start = time.perf_counter()
    for p in procs:
        assert p.stdin is not None
        p.stdin.write("go\n")
        p.stdin.flush()
    reports = []
    for p in procs:
        out, _ = p.communicate(timeout=3600)
        reports.append(json.loads(out.strip().splitlines()[-1]))
    wall = time.perf_counter() - start
    busy1, total1 = cpu_busy()
    return wall, reports, (busy1 - busy0) / max(1, total1 - total0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--postgres", metavar="URL", help="database to use (default: pgserver)")
    ap.add_argument("--docs", type=int, default=8000, help="documents in all (two halves)")
    ap.add_argument("--chars", type=int, default=2000, help="characters per document")
    args = ap.parse_args()

    from rag.index import Index
    from rag.settings import Settings
    from rag.storage.location import Location

    tmp = Path(tempfile.mkdtemp(prefix="rag-writers-"))
    url = args.postgres
    server_pg = None
    if url is None:
        import pgserver

        server_pg = pgserver.get_server(tmp / "pg", cleanup_mode="stop")
        url = server_pg.get_uri()
    rng = np.random.default_rng(0)
    halves = [tmp / "corpus" / "a", tmp / "corpus" / "b"]
    for h in halves:
        write_corpus(h, args.docs // 2, args.chars, rng)
    stub = stub_server()
    embedder = f"http://127.0.0.1:{stub.server_address[1]}/v1#fixed"
    print(f"{args.docs} documents of {args.chars} characters; embeddings from a stub server "
          f"answering at once; PostgreSQL at {Location.of(url)}")  # fmt: skip
    sep = "&" if "?" in url else "?"
    rates = {}
    for label, paths in (("one writer", [tmp / "corpus"]), ("two writers", halves)):
        schema_url = f"{url}{sep}schema=writers_{len(paths)}_{int(time.time())}"
        Index.create(schema_url, Settings(embedder=embedder)).close()
        wall, reports, busy = run_writers(schema_url, paths)
        docs = sum(r["docs"] for r in reports)
        assert all(r["failed"] == 0 for r in reports) and docs == args.docs, reports
        rates[label] = docs / wall
        print(
            f"{label}: {docs} documents, {sum(r['chunks'] for r in reports)} chunks in "
            f"{wall:.1f}s = {docs / wall:.0f} documents/s; cores busy {100 * busy:.0f} %"
        )
        for n, r in enumerate(reports, 1):
            other = r["wall"] - r["read"] - r["chunk"] - r["embed"] - r["write"]
            print(
                f"  writer {n}: wall {r['wall']:.1f}s (its own CPU {r['cpu']:.1f}s) = read "
                f"{r['read']:.1f}s + chunk {r['chunk']:.1f}s + embed requests "
                f"{r['embed']:.1f}s + database writes {r['write']:.1f}s + rest {other:.1f}s"
            )
        with Index.open(schema_url) as idx:
            st = idx.status()
            assert st.documents == args.docs and idx.check() == [], idx.check()
    ratio = rates["two writers"] / rates["one writer"]
    print(f"two writers against one: {ratio:.2f}x (target >= 1.7x)")
    stub.shutdown()
    if server_pg is not None:
        server_pg.cleanup()


if __name__ == "__main__":
    main()
