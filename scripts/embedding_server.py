"""A small OpenAI-compatible embedding server, for trying and measuring ``rag`` with an
embedder behind a server.

Serves ``POST /v1/embeddings`` and ``GET /v1/models``, as text-embeddings-inference,
vLLM, Infinity and Ollama do, with the packaged all-MiniLM-L6-v2 (or any
sentence-transformers model), or with ``--fixed`` vectors that cost nothing to make
(a unit vector drawn from a hash of each text), for throughput runs where the server
must not be the bottleneck::

    python scripts/embedding_server.py --port 8089
    rag index docs/ --index idx --embedder http://127.0.0.1:8089/v1#all-MiniLM-L6-v2
    python scripts/embedding_server.py --port 8089 --fixed --dim 768

``tests/test_embedding_server.py`` imports ``EmbeddingServer`` and ``EmbeddingHandler``
from here, so the tests and users run one implementation.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import sys
import threading
from collections.abc import Callable, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

log = logging.getLogger("embedding_server")

Embed = Callable[[list[str]], np.ndarray]
FIXED_MODEL = "fixed-hash"


def hash_vectors(texts: Sequence[str], dim: int) -> np.ndarray:
    """A unit vector per text, seeded by a hash of it: the same text, the same vector."""
    out = np.empty((len(texts), dim), dtype=np.float32)
    for row, text in enumerate(texts):
        seed = int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")
        v = np.random.default_rng(seed).standard_normal(dim)
        out[row] = v / np.linalg.norm(v)
    return out


def model_embed(name: str) -> Embed:
    """``name``'s embed function; one request at a time, since the model uses every core."""
    from rag.models.embedder import SentenceTransformerEmbedder

    model = SentenceTransformerEmbedder(name)
    lock = threading.Lock()

    def embed(texts: list[str]) -> np.ndarray:
        with lock:
            return model.embed(texts)

    return embed


class EmbeddingServer(ThreadingHTTPServer):
    """Answers each request on its own thread, as a real server would."""

    daemon_threads = True

    def __init__(
        self,
        address: tuple[str, int],
        embed: Embed,
        model: str,
        api_key: str | None = None,
        handler: type[BaseHTTPRequestHandler] | None = None,
    ) -> None:
        super().__init__(address, handler or EmbeddingHandler)
        self.embed = embed
        self.model = model
        self.api_key = api_key

    @property
    def url(self) -> str:
        """The base URL to give rag, without the ``#MODEL``."""
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}/v1"


class EmbeddingHandler(BaseHTTPRequestHandler):
    """OpenAI's embeddings API, the parts embedding clients use."""

    server: EmbeddingServer

    def log_message(self, format: str, *args: Any) -> None:
        log.debug(format, *args)

    def send_json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        raw = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(raw)

    def send_error_json(
        self, status: int, message: str, headers: dict[str, str] | None = None
    ) -> None:
        self.send_json(status, {"error": {"message": message, "code": status}}, headers)

    def read_json(self) -> Any:
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            return json.loads(raw)
        except ValueError:
            return None

    def authorized(self) -> bool:
        if self.server.api_key is None:
            return True
        if self.headers.get("Authorization") == f"Bearer {self.server.api_key}":
            return True
        self.send_error_json(401, "invalid API key")
        return False

    def do_GET(self) -> None:
        if not self.authorized():
            return
        if self.path.rstrip("/") != "/v1/models":
            self.send_error_json(404, f"no route {self.path}")
            return
        model = {"id": self.server.model, "object": "model", "owned_by": "rag"}
        self.send_json(200, {"object": "list", "data": [model]})

    def do_POST(self) -> None:
        body = self.read_json()
        if not self.authorized():
            return
        if self.path.rstrip("/") != "/v1/embeddings":
            self.send_error_json(404, f"no route {self.path}")
            return
        self.answer_embeddings(body)

    def answer_embeddings(self, body: Any) -> None:
        """Embed ``body["input"]`` (a text or a list of texts) and answer as OpenAI does."""
        texts = body.get("input") if isinstance(body, dict) else None
        if isinstance(texts, str):
            texts = [texts]
        if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
            self.send_error_json(400, "input must be a text or a non-empty list of texts")
            return
        model = body.get("model")
        if model is not None and model != self.server.model:
            self.send_error_json(
                404, f"model {model!r} not found; this server has {self.server.model!r}"
            )
            return
        vectors = self.server.embed(texts)
        data = [
            {"object": "embedding", "index": i, "embedding": v.tolist()}
            for i, v in enumerate(vectors)
        ]
        words = sum(len(t.split()) for t in texts)  # a stand-in for the token count
        usage = {"prompt_tokens": words, "total_tokens": words}
        self.send_json(
            200, {"object": "list", "data": data, "model": self.server.model, "usage": usage}
        )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8089, help="port to listen on (0: any free)")
    parser.add_argument(
        "--model",
        default="all-MiniLM-L6-v2",
        help="sentence-transformers model to serve (default: the packaged one)",
    )
    parser.add_argument(
        "--fixed",
        action="store_true",
        help="serve hash vectors, made instantly, instead of a model's",
    )
    parser.add_argument("--dim", type=int, default=384, help="dimensions of the --fixed vectors")
    parser.add_argument("--api-key", help="require this Bearer key")
    parser.add_argument("-v", "--verbose", action="store_true", help="log every request")
    args = parser.parse_args(argv)
    if args.dim <= 0:
        parser.error(f"--dim must be greater than 0, got {args.dim}")
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(asctime)s %(message)s"
    )
    if args.fixed:
        dim = args.dim
        embed: Embed = lambda texts: hash_vectors(texts, dim)  # noqa: E731
        model = FIXED_MODEL
    else:
        embed, model = model_embed(args.model), args.model
        embed(["load the model before the first request"])
    server = EmbeddingServer((args.host, args.port), embed, model, args.api_key)
    log.info(
        "serving %s at %s (model name %r); Ctrl-C stops",
        "hash vectors" if args.fixed else args.model,
        server.url,
        model,
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
