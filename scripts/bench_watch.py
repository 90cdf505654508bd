"""How fast `rag index --watch` follows a folder, and what a re-index of an unchanged one costs.

Copies corpora/ to a temporary folder and indexes it with the default (packaged)
embedder, as `rag index` would. Prints:

- the full ingest and a re-index of the unchanged folder (as a share of the full one),
  both as the wall time of the `rag index` command and as the ingest time it reports;
- with `rag index --watch` running, N times: a unique sentence is appended to one
  file, and the seconds from that write until a search in this process finds it
  (median and max), with the update time the watcher reported.

    python scripts/bench_watch.py [-n 10]
"""

from __future__ import annotations

import argparse
import json
import queue
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RAG = str(Path(sys.executable).parent / "rag")
TIMEOUT = 120.0


def timed_index(folder: Path, index_dir: Path) -> tuple[float, dict[str, Any]]:
    """(wall seconds, the JSON summary) of one `rag index` command."""
    started = time.perf_counter()
    out = subprocess.run([RAG, "index", str(folder), "--index", str(index_dir), "--json"],
                         capture_output=True, text=True)  # fmt: skip
    wall = time.perf_counter() - started
    if out.returncode not in (0, 1):  # 1: some lines of the question files are no documents
        sys.exit(f"rag index failed: {out.stderr}")
    return wall, json.loads(out.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-n", type=int, default=10, help="Appends to time (default 10).")
    args = parser.parse_args()

    from rag.index import Index
    from rag.ingest.watch import burst_settings

    with tempfile.TemporaryDirectory(prefix="bench-watch-") as tmp:
        folder, index_dir = Path(tmp) / "corpora", Path(tmp) / "idx"
        shutil.copytree(ROOT / "corpora", folder)
        full_wall, full = timed_index(folder, index_dir)
        again_wall, again = timed_index(folder, index_dir)
        assert again["chunks_embedded"] == 0, again
        print(f"corpus: copy of corpora/ ({full['added']} documents, "
              f"{full['chunks_embedded']} chunks; {full['failed']} JSONL lines are questions, "
              "not documents)")  # fmt: skip
        print(f"full ingest:        {full_wall:6.2f} s wall, {full['seconds']:6.2f} s ingest "
              "(loading the embedder included)")  # fmt: skip
        share_wall = 100 * again_wall / full_wall
        share_ingest = 100 * again["seconds"] / full["seconds"]
        print(f"unchanged re-index: {again_wall:6.2f} s wall, {again['seconds']:6.2f} s ingest "
              f"({share_wall:.0f}% and {share_ingest:.1f}% of the full ingest)")  # fmt: skip

        watcher = subprocess.Popen(
            [RAG, "index", str(folder), "--index", str(index_dir), "--watch", "--json"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        lines: queue.Queue[dict[str, Any]] = queue.Queue()

        def read() -> None:
            assert watcher.stdout is not None
            for line in watcher.stdout:
                lines.put(json.loads(line))

        threading.Thread(target=read, daemon=True).start()
        try:
            lines.get(timeout=TIMEOUT)  # the watcher's first run
            target = folder / "foundation-models" / "hallucination.md"
            latencies, updates = [], []
            with Index.open(index_dir) as index:
                for i in range(args.n):
                    word = f"zq{uuid.uuid4().hex[:12]}"
                    time.sleep(0.5)  # let the watcher sit idle
                    started = time.perf_counter()
                    with target.open("a") as f:
                        f.write(f"\n\nMarker sentence {i} holds the word {word}.\n")
                    while not any(word in h.text for h in index.search(word, 3, "lexical")):
                        if time.perf_counter() - started > TIMEOUT:
                            sys.exit(f"the change was not found within {TIMEOUT} s")
                        time.sleep(0.01)
                    latencies.append(time.perf_counter() - started)
                    updates.append(lines.get(timeout=TIMEOUT)["seconds"])
        finally:
            watcher.send_signal(signal.SIGINT)
            code = watcher.wait(timeout=TIMEOUT)
        print(f"watch ({burst_settings()}), {args.n} appends to one file:")
        print(f"  write -> found by search: median {statistics.median(latencies):.2f} s, "
              f"max {max(latencies):.2f} s")  # fmt: skip
        print(f"  update (re-index) itself: median {statistics.median(updates):.2f} s, "
              f"max {max(updates):.2f} s")  # fmt: skip
        print(f"  watcher exit status after SIGINT: {code}")


if __name__ == "__main__":
    main()
