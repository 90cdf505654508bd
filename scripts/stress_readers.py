"""Concurrency stress test: reader processes search in a loop during a full ingest.

Four reader processes open the index and search it again and again while another
process ingests a corpus of a few thousand files into it. Every hit is checked
against the file it names: its text must be exactly the file's text between its
offsets. Readers must see no error ("database is locked" included) and must pick up
the new documents as the writer commits them. A second writer started meanwhile
must be told who holds the lock.

    python scripts/stress_readers.py --readers 4 --docs 3000
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rag.index import Index  # noqa: E402
from rag.settings import Settings  # noqa: E402
from scripts.stress_crash import WORDS, write_doc  # noqa: E402
from tests.fakes import HashEmbedder  # noqa: E402

WRITER = """
import sys
sys.path.insert(0, {root!r})
from tests.fakes import HashEmbedder
import rag.ingest.pipeline
from rag.index import Index
rag.ingest.pipeline.BATCH_DOCS = 100
report = Index.open({index!r}, HashEmbedder()).add({corpus!r}, lock_timeout=30)
print(report.added, flush=True)
"""

READER = """
import json, random, sys, time
from pathlib import Path
sys.path.insert(0, {root!r})
from tests.fakes import HashEmbedder
from rag.index import Index
words = {words!r}
rng = random.Random({seed})
stats = {{"searches": 0, "hits": 0, "errors": 0, "bad_hits": 0, "max_docs_seen": 0,
          "first_error": None}}
index = Index.open({index!r}, HashEmbedder())
deadline = time.time() + {seconds}
while time.time() < deadline and not Path({stop!r}).exists():
    try:
        for hits in index.search_documents([" ".join(rng.sample(words, 3))], 10):
            stats["searches"] += 1
            for h in hits:
                stats["hits"] += 1
                text = Path(h.source).read_text()
                if text[h.start:h.end] != h.text:
                    stats["bad_hits"] += 1
        stats["max_docs_seen"] = max(stats["max_docs_seen"], index.store.counts()["documents"])
    except Exception as e:
        stats["errors"] += 1
        stats["first_error"] = stats["first_error"] or repr(e)
print(json.dumps(stats), flush=True)
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--readers", type=int, default=4)
    ap.add_argument("--docs", type=int, default=3000)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    work = Path(tempfile.mkdtemp(prefix="rag-readers-"))
    corpus, index_dir, stop = work / "corpus", work / "index", work / "stop"
    corpus.mkdir()
    for i in range(args.docs):
        write_doc(corpus / f"doc{i:06d}.md", rng)
    # start from a small index so that readers have something from the first moment
    e = HashEmbedder()
    seed_docs = work / "seed"
    seed_docs.mkdir()
    write_doc(seed_docs / "seed.md", rng)
    Index.create(index_dir, Settings(embedder=e.name), e).add(seed_docs)

    fmt = dict(root=str(ROOT), index=str(index_dir), corpus=str(corpus), stop=str(stop))
    readers = [
        subprocess.Popen(
            [sys.executable, "-c", READER.format(**fmt, words=WORDS, seed=i, seconds=600)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(args.readers)
    ]
    time.sleep(2)  # readers are up and searching
    started = time.perf_counter()
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER.format(**fmt)], stdout=subprocess.PIPE, text=True
    )
    time.sleep(1.5)
    second = subprocess.run(
        [sys.executable, "-c", WRITER.format(**fmt).replace("lock_timeout=30", "lock_timeout=0.5")],
        capture_output=True, text=True,
    )  # fmt: skip
    refused = "is being updated by process" in second.stderr
    out, _ = writer.communicate()
    ingest = time.perf_counter() - started
    time.sleep(2)  # readers see the final state
    stop.touch()
    stats = []
    for r in readers:
        out_r, err_r = r.communicate(timeout=120)
        if r.returncode != 0:
            print(err_r[-2000:])
        stats.append(json.loads(out_r.strip().splitlines()[-1]))
    total = {k: sum(s[k] for s in stats) for k in ("searches", "hits", "errors", "bad_hits")}
    final_docs = args.docs + 1
    print(f"writer: {out.strip()} documents added in {ingest:.1f}s while {args.readers} "
          f"readers searched")  # fmt: skip
    print(f"second writer refused with a clear message: {refused}"
          + ("" if refused else f" (stderr: {second.stderr[-300:]!r})"))  # fmt: skip
    print(f"readers: {total['searches']} searches, {total['hits']} hits checked against "
          f"their files, {total['errors']} errors, {total['bad_hits']} hits not matching "
          f"their source")  # fmt: skip
    print(
        "documents seen by each reader at the end: "
        + ", ".join(str(s["max_docs_seen"]) for s in stats)
        + f" (expected {final_docs})"
    )
    for s in stats:
        if s["first_error"]:
            print(f"first error: {s['first_error']}")
    ok = (
        total["errors"] == 0
        and total["bad_hits"] == 0
        and refused
        and all(s["max_docs_seen"] == final_docs for s in stats)
    )
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
