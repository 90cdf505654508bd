"""Crash stress test: SIGKILL an ingest at random moments and check nothing breaks.

Each round rewrites a third of a corpus of a few thousand files, starts `Index.add` in a
child process, kills it with SIGKILL at a random moment, opens the index, checks it
and searches it, then re-runs the ingest to completion. At the end, the index is
compared with one built in a single clean run over the final corpus: the same
documents, chunks and search results.

    python scripts/stress_crash.py --rounds 50 --docs 3000

The embedder is a deterministic hashing stand-in (tests/fakes.py) so that 50 rounds
take minutes; storage, locking and recovery are the same code as with a real model.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rag.index import Index  # noqa: E402
from rag.settings import Settings  # noqa: E402
from tests.fakes import HashEmbedder  # noqa: E402

WORDS = [
    "model",
    "data",
    "train",
    "token",
    "layer",
    "vector",
    "index",
    "search",
    "query",
    "answer",
    "passage",
    "source",
    "chunk",
    "embed",
    "attention",
    "weight",
    "gradient",
    "loss",
    "batch",
    "memory",
    "disk",
    "crash",
    "lock",
    "write",
    "read",
    "commit",
    "owl",
    "heron",
    "crane",
    "stork",
    "egret",
    "river",
    "valley",
    "mountain",
    "forest",
    "desert",
    "ocean",
    "island",
    "city",
]

WORKER = """
import sys
sys.path.insert(0, {root!r})
from tests.fakes import HashEmbedder
from rag.index import Index
from rag.settings import Settings
import rag.ingest.pipeline
rag.ingest.pipeline.BATCH_DOCS = 100  # small batches: many commits for a kill to fall between
e = HashEmbedder()
try:
    idx = Index.open({index!r}, e)
except Exception:
    idx = Index.create({index!r}, Settings(embedder=e.name), e)
print("ready", flush=True)
idx.add({corpus!r}, lock_timeout=60)
print("done", flush=True)
"""


def write_doc(path: Path, rng: random.Random) -> None:
    paras = []
    for _ in range(rng.randint(1, 6)):
        paras.append(" ".join(rng.choice(WORDS) for _ in range(rng.randint(20, 120))) + ".")
    path.write_text(
        f"# {rng.choice(WORDS).title()} {rng.randint(0, 10**6)}\n\n" + "\n\n".join(paras)
    )


def mutate(corpus: Path, rng: random.Random, next_id: list[int]) -> None:
    files = sorted(corpus.glob("*.md"))
    for f in rng.sample(files, k=max(1, len(files) // 3)):
        write_doc(f, rng)
    for f in rng.sample(files, k=max(1, len(files) // 100)):
        f.unlink(missing_ok=True)
    for _ in range(max(1, len(files) // 100)):
        write_doc(corpus / f"doc{next_id[0]:06d}.md", rng)
        next_id[0] += 1


def snapshot(index: Index) -> dict[str, str]:
    with index.store.engine.connect() as c:
        rows = c.exec_driver_sql("SELECT doc_id, content_hash FROM documents").fetchall()
    return {r[0]: r[1] for r in rows}


def chunks_of(index: Index) -> set[tuple[str, int, int, str]]:
    with index.store.engine.connect() as c:
        rows = c.exec_driver_sql(
            "SELECT d.doc_id, c.start, c.end, c.text FROM chunks c JOIN documents d "
            "ON c.document_id = d.id"
        ).fetchall()
    return {(r[0], r[1], r[2], r[3]) for r in rows}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--rounds", type=int, default=50)
    ap.add_argument("--docs", type=int, default=3000)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    work = Path(tempfile.mkdtemp(prefix="rag-crash-"))
    corpus, index_dir = work / "corpus", work / "index"
    corpus.mkdir()
    for i in range(args.docs):
        write_doc(corpus / f"doc{i:06d}.md", rng)
    next_id = [args.docs]

    def run_worker(kill_after: float | None) -> float:
        """Seconds the ingest ran; killed after ``kill_after`` seconds unless None."""
        code = WORKER.format(root=str(ROOT), index=str(index_dir), corpus=str(corpus))
        proc = subprocess.Popen(
            [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        assert proc.stdout is not None
        proc.stdout.readline()  # "ready": imports done, the ingest starts now
        t = time.perf_counter()
        try:
            proc.wait(timeout=kill_after)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            return -1.0
        if proc.returncode != 0:
            assert proc.stderr is not None
            raise SystemExit(f"ingest failed: {proc.stderr.read().decode()[-2000:]}")
        return time.perf_counter() - t

    started = time.perf_counter()
    full_seconds = run_worker(None)
    print(f"corpus: {args.docs} files; first full ingest {full_seconds:.1f}s")

    kills = unusable = lost = errors = vector_heals = 0
    for r in range(1, args.rounds + 1):
        embedder = HashEmbedder()
        with Index.open(index_dir, embedder) as before_idx:
            before = snapshot(before_idx)
        mutate(corpus, rng, next_id)
        on_disk = {p.name for p in corpus.glob("*.md")}
        killed = run_worker(rng.uniform(0.0, full_seconds * 0.5)) < 0
        kills += killed
        # open, check, search: the index must be usable right after the kill
        try:
            with Index.open(index_dir, embedder) as idx:
                problems = idx.check()
                db_problems = [p for p in problems if "vectors.faiss" not in p]
                if db_problems:
                    unusable += 1
                    print(f"round {r}: problems {db_problems}")
                vector_heals += bool(problems) and not db_problems
                hits = idx.search("owl heron river", k=10)
                if not hits:
                    unusable += 1
                after = snapshot(idx)
        except Exception as e:
            unusable += 1
            errors += 1
            print(f"round {r}: cannot use index after kill: {e!r}")
            continue
        # a document committed before the run and still on disk must still be there
        missing = [d for d in before if d in on_disk and d not in after]
        lost += len(missing)
        if missing:
            print(f"round {r}: lost {missing[:5]}")
        run_worker(None)
        with Index.open(index_dir, embedder) as idx:
            if idx.check():
                errors += 1
                print(f"round {r}: after re-run: {idx.check()}")
        print(f"round {r}: {'killed' if killed else 'finished first'}; "
              f"{len(after)} documents right after, {len(before)} before")  # fmt: skip

    # compare with a clean single run over the final corpus
    clean_dir = work / "clean"
    embedder = HashEmbedder()
    clean = Index.create(clean_dir, Settings(embedder=embedder.name), embedder)
    clean.add(corpus)
    final = Index.open(index_dir, embedder)
    same_docs = snapshot(final) == snapshot(clean)
    same_chunks = chunks_of(final) == chunks_of(clean)
    queries = [" ".join(rng.choice(WORDS) for _ in range(3)) for _ in range(100)]
    a = [[h.doc_id for h in hs] for hs in final.search_documents(queries, 10)]
    b = [[h.doc_id for h in hs] for hs in clean.search_documents(queries, 10)]
    same_results = a == b
    print()
    print(f"rounds {args.rounds}, SIGKILLs landed mid-ingest {kills}, "
          f"unusable indexes {unusable}, errors {errors}, committed documents lost {lost}, "
          f"stale vector files healed on open {vector_heals}")  # fmt: skip
    print(f"final index vs clean single run: documents equal {same_docs}, "
          f"chunks equal {same_chunks}, search results equal {same_results} "
          f"({len(snapshot(final))} documents)")  # fmt: skip
    print(f"total {time.perf_counter() - started:.0f}s; work folder {work}")
    ok = unusable == 0 and lost == 0 and errors == 0 and same_docs and same_chunks and same_results
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
