"""`rag serve` under load: concurrent clients on localhost, searches and asks mixed.

Starts `rag serve` on an index (the packaged models, loaded once), then runs
``--clients`` threads that share a work list of ``--searches`` searches and ``--asks``
asks (questions from a BEIR ``queries.jsonl``), for at most ``--seconds``. Prints per
endpoint the p50 / p95 latency seen by the clients, the errors (any status but 200,
and 503 for asks, which the bounded ask queue answers on purpose), the share of asks
refused with 503, and the server's peak RSS.

    python scripts/bench_serve.py --index IDX --queries ../shared/data/scifact/queries.jsonl
"""

from __future__ import annotations

import argparse
import json
import random
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def post(url: str, body: dict[str, object], timeout: float = 300) -> int:
    request = urllib.request.Request(
        url, json.dumps(body).encode(), {"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            response.read()
            return int(response.status)
    except urllib.error.HTTPError as e:
        e.read()
        return int(e.code)


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def wait_up(url: str, proc: subprocess.Popen[bytes], seconds: float = 300) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit("rag serve exited before answering")
        try:
            with urllib.request.urlopen(url + "/v1/status", timeout=2):
                return
        except OSError:
            time.sleep(0.3)
    raise SystemExit("rag serve did not answer in time")


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return 1000 * xs[int(p * (len(xs) - 1))] if xs else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--index", required=True, help="index folder or URL to serve")
    ap.add_argument("--queries", type=Path, required=True, help="BEIR queries.jsonl")
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--searches", type=int, default=200)
    ap.add_argument("--asks", type=int, default=30)
    ap.add_argument("--seconds", type=float, default=600, help="stop the clients after this")
    ap.add_argument("--ask-queue", type=int, default=4, help="rag serve --ask-queue")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    texts = [json.loads(line)["text"] for line in args.queries.open() if line.strip()]
    rng = random.Random(args.seed)
    work = [("search", t) for t in rng.sample(texts, min(args.searches, len(texts)))]
    work += [("ask", t) for t in rng.sample(texts, min(args.asks, len(texts)))]
    rng.shuffle(work)

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    rag = Path(sys.executable).parent / "rag"
    command = [str(rag), "serve", "--index", args.index,
               "--port", str(port), "--ask-queue", str(args.ask_queue)]  # fmt: skip
    started = time.perf_counter()
    proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_up(url, proc)
        print(f"rag serve up in {time.perf_counter() - started:.1f}s (models loaded once); "
              f"{args.clients} clients, {len(work)} requests "
              f"({args.searches} searches, {args.asks} asks)")  # fmt: skip
        latency: dict[str, list[float]] = defaultdict(list)
        statuses: dict[str, list[int]] = defaultdict(list)
        lock = threading.Lock()
        deadline = time.monotonic() + args.seconds

        def client() -> None:
            while time.monotonic() < deadline:
                with lock:
                    if not work:
                        return
                    kind, text = work.pop()
                body = {"query": text, "k": 10} if kind == "search" else {"question": text}
                t = time.perf_counter()
                try:
                    status = post(f"{url}/v1/{kind}", body)
                except OSError:
                    status = -1  # the connection failed: a lost request
                took = time.perf_counter() - t
                with lock:
                    statuses[kind].append(status)
                    if status == 200:
                        latency[kind].append(took)

        t0 = time.perf_counter()
        threads = [threading.Thread(target=client) for _ in range(args.clients)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        wall = time.perf_counter() - t0
        for kind in ("search", "ask"):
            got = statuses[kind]
            busy = got.count(503) if kind == "ask" else 0
            errors = len(got) - got.count(200) - busy
            print(f"{kind:6s} {len(got):4d} requests | p50 {pct(latency[kind], .5):8.1f} ms "
                  f"p95 {pct(latency[kind], .95):8.1f} ms | errors {errors} | "
                  f"503 (queue full) {busy} = {100 * busy / max(1, len(got)):.0f} %")  # fmt: skip
        left = len(work)
        print(f"{wall:.1f}s in all; {left} requests not sent (time bound); "
              f"server peak RSS {peak_rss_mib(proc.pid):.0f} MiB")  # fmt: skip
    finally:
        proc.terminate()
        proc.wait(60)


if __name__ == "__main__":
    main()
