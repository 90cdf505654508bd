"""An embedder behind an OpenAI-compatible server: text-embeddings-inference, vLLM,
Infinity, Ollama, or ``scripts/embedding_server.py``.

Named by its base URL, with the model after ``#``: ``http://localhost:8080/v1#bge-small``.
Without ``#MODEL`` the first model the server lists at ``/models`` is used, or none is
named when it lists none. An API key is read from ``$RAG_API_KEY`` (or
``$OPENAI_API_KEY``). Texts go to ``POST /embeddings`` in batches, several requests
in flight; 429, 502, 503, 504 and dropped connections are tried again after a growing,
jittered wait (or the server's ``Retry-After``). Vectors are renormalized in float32.

The knobs are environment variables, not part of the URL: the URL is the embedder's
name, which an index keeps and checks when it is opened, and how fast a server is fed
does not change what its vectors mean.

The server's tokenizer is out of reach, so ``token_offsets`` answers with
:class:`~rag.models.tokenizers.ApproximateTokenizer`; an index can name a local one
instead (``Settings.tokenizer``).
"""

from __future__ import annotations

import email.utils
import http.client
import json
import logging
import os
import random
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, TypeVar

from rag.errors import InvalidValue, ModelError
from rag.models.generation import endpoint_parts, is_endpoint, resolve_api_key
from rag.models.tokenizers import ApproximateTokenizer
from rag.text import squeeze

if TYPE_CHECKING:
    import numpy as np

log = logging.getLogger(__name__)

BATCH_ENV = "RAG_EMBED_SERVER_BATCH"
CONCURRENCY_ENV = "RAG_EMBED_SERVER_CONCURRENCY"
ATTEMPTS_ENV = "RAG_EMBED_SERVER_ATTEMPTS"
TIMEOUT_ENV = "RAG_EMBED_SERVER_TIMEOUT"
DEFAULT_BATCH = 64
DEFAULT_CONCURRENCY = 4
DEFAULT_ATTEMPTS = 6  # five waits of about 0.5, 1, 2, 4 and 8 s: 15 s at most
DEFAULT_TIMEOUT = 60.0
BACKOFF = 0.5  # the first wait before trying again, in seconds; doubled each time
MAX_WAIT = 60.0  # a longer Retry-After is cut to this
RETRY_STATUS = frozenset({429, 502, 503, 504})
# A connection the server dropped is worth another try; one it refused is not (no
# server listens there, and waiting 15 s would only delay saying so).
DROPPED = (
    ConnectionResetError,
    ConnectionAbortedError,
    BrokenPipeError,
    http.client.IncompleteRead,
)
# The OpenAI API does not say how many tokens a model reads; 512 is what BERT-sized
# embedding models take. Nothing in rag relies on it.
SERVER_MAX_TOKENS = 512
PROBE = "dimension probe"

N = TypeVar("N", int, float)


def _knob(value: N | None, label: str, env: str, default: N, kind: Callable[[str], N]) -> N:
    """``value``, else ``$env``, else ``default``; greater than 0 in any case."""
    where = ""
    if value is None:
        raw = os.environ.get(env, "").strip()
        where = f" (from ${env})"
        try:
            value = kind(raw) if raw else default
        except ValueError:
            raise InvalidValue(f"${env} must be a number greater than 0, got {raw!r}") from None
    if value <= 0:
        raise InvalidValue(f"{label} must be greater than 0, got {value}{where}")
    return value


class ServerEmbedder:
    """Embeddings from an OpenAI-compatible ``/embeddings`` endpoint.

    >>> e = ServerEmbedder("http://localhost:8080/v1#bge-small")   # nothing is sent yet
    >>> e.embed(["a sentence"]).shape                               # doctest: +SKIP
    (1, 384)
    """

    # The server computes in whatever it computes in; rag only keeps float32 copies.
    precision = "server"

    def __init__(
        self,
        name: str,
        *,
        batch_size: int | None = None,
        concurrency: int | None = None,
        attempts: int | None = None,
        timeout: float | None = None,
        backoff: float = BACKOFF,
        api_key: str | None = None,
    ) -> None:
        if not is_endpoint(name):
            raise InvalidValue(f"embedding server {name!r} must start with http:// or https://")
        self.name = name
        self.base, model = endpoint_parts(name)
        self.batch_size = _knob(batch_size, "batch_size", BATCH_ENV, DEFAULT_BATCH, int)
        self.concurrency = _knob(
            concurrency, "concurrency", CONCURRENCY_ENV, DEFAULT_CONCURRENCY, int
        )
        self.attempts = _knob(attempts, "attempts", ATTEMPTS_ENV, DEFAULT_ATTEMPTS, int)
        self.timeout = _knob(timeout, "timeout", TIMEOUT_ENV, DEFAULT_TIMEOUT, float)
        self.backoff = backoff
        self._api_key, self._key_env = resolve_api_key(api_key)
        self._model: str | None = model
        self._model_known = bool(model)
        self._dim: int | None = None
        self._lock = threading.Lock()
        self._tokenizer = ApproximateTokenizer()

    def __repr__(self) -> str:
        return f"ServerEmbedder({self.name!r})"

    @property
    def dim(self) -> int:
        """Found by embedding one short text the first time it is asked for."""
        if self._dim is None:
            self.embed([PROBE])
        assert self._dim is not None
        return self._dim

    @property
    def max_tokens(self) -> int:
        return SERVER_MAX_TOKENS

    @property
    def model(self) -> str | None:
        """The model asked for, else the first the server lists, else None (none sent)."""
        with self._lock:
            if not self._model_known:
                self._model = self._listed_model()
                self._model_known = True
        return self._model

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-length float32 vectors, one row per text, in the order of ``texts``."""
        import numpy as np

        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        model = self.model
        # Texts of similar length share a request: servers that pad a request's texts
        # to the longest (Infinity, Ollama, sentence-transformers) waste less.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        batches = [order[i : i + self.batch_size] for i in range(0, len(order), self.batch_size)]

        def run(batch: list[int]) -> np.ndarray:
            return self._embed_batch([texts[i] for i in batch], model)

        if len(batches) == 1 or self.concurrency == 1:
            parts = [run(b) for b in batches]
        else:
            workers = min(self.concurrency, len(batches))
            with ThreadPoolExecutor(workers, thread_name_prefix="rag-embed") as pool:
                futures = [pool.submit(run, b) for b in batches]
                try:
                    parts = [f.result() for f in futures]
                except BaseException:
                    for f in futures:  # the first failure ends the call; drop what waits
                        f.cancel()
                    raise
        vectors = np.empty((len(texts), parts[0].shape[1]), dtype=np.float32)
        for batch, part in zip(batches, parts):
            vectors[batch] = part
        log.debug("embedded %d texts in %d requests to %s", len(texts), len(batches), self.base)
        return vectors

    def token_offsets(self, texts: Sequence[str]) -> list[list[tuple[int, int]]]:
        """Approximate spans: the server's tokenizer is not at hand."""
        return self._tokenizer.token_offsets(texts)

    # -- one request ----------------------------------------------------------

    def _embed_batch(self, texts: list[str], model: str | None) -> np.ndarray:
        import numpy as np

        body: dict[str, Any] = {"input": texts}
        if model is not None:
            body["model"] = model
        data = self._call("POST", "/embeddings", body).get("data")
        if not isinstance(data, list) or len(data) != len(texts):
            got = len(data) if isinstance(data, list) else "no"
            raise self._bad(f"{got} embeddings for {len(texts)} texts")
        rows: list[Any] = [None] * len(texts)
        for position, item in enumerate(data):
            index = item.get("index", position) if isinstance(item, dict) else None
            if not isinstance(index, int) or not 0 <= index < len(texts) or rows[index] is not None:
                raise self._bad(f"an embedding with index {index!r} among {len(texts)} texts")
            rows[index] = item.get("embedding")
        try:
            vectors = np.asarray(rows, dtype=np.float32)
        except (TypeError, ValueError):
            raise self._bad("embeddings that are not lists of numbers of one length") from None
        if vectors.ndim != 2 or vectors.shape[1] == 0 or not np.isfinite(vectors).all():
            raise self._bad("embeddings that are empty or not finite numbers")
        self._note_dim(vectors.shape[1])
        # Renormalized here, in float32, whatever the server did: search takes the
        # inner product for the cosine.
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        np.divide(vectors, norms, out=vectors, where=norms > 0)
        return vectors

    def _note_dim(self, width: int) -> None:
        with self._lock:
            if self._dim is None:
                self._dim = width
                log.info(
                    "the embedding server at %s gives %d-dimensional vectors", self.base, width
                )
            elif width != self._dim:
                raise self._bad(f"{width}-dimensional vectors after {self._dim}-dimensional ones")

    def _listed_model(self) -> str | None:
        try:
            listed = self._call("GET", "/models", None).get("data")
        except ModelError as e:
            log.info("naming no model to %s, as its model list failed: %s", self.base, e)
            return None
        ids = [m.get("id") for m in listed or [] if isinstance(m, dict)]
        if ids and isinstance(ids[0], str):
            log.info("the embedding server at %s serves %s", self.base, ids[0])
            return ids[0]
        log.info("the embedding server at %s lists no model; naming none", self.base)
        return None

    # -- HTTP ---------------------------------------------------------------

    # urllib, as rag.models.endpoint uses: no new dependency. It opens a connection
    # per request, which costs a millisecond or two on a local network against the
    # tens of milliseconds a server takes to embed a batch.
    def _call(self, method: str, path: str, body: dict[str, Any] | None) -> dict[str, Any]:
        """The JSON object the server answers, tried again after transient failures."""
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        headers["User-Agent"] = "rag"  # some gateways refuse urllib's own
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        data = json.dumps(body).encode() if body is not None else None
        started = time.monotonic()
        for attempt in range(1, self.attempts + 1):
            request = urllib.request.Request(self.base + path, data, headers, method=method)
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    raw = response.read()
                break
            except urllib.error.HTTPError as e:
                if e.code not in RETRY_STATUS or attempt == self.attempts:
                    raise self._answered(e, attempt, time.monotonic() - started) from e
                wait = _retry_after(e.headers.get("Retry-After")) or self._wait(attempt)
                what = f"{e.code} {e.reason}"
                e.close()
            except TimeoutError as e:
                raise self._timed_out() from e
            except urllib.error.URLError as e:
                if isinstance(e.reason, TimeoutError):
                    raise self._timed_out() from e
                if not isinstance(e.reason, DROPPED) or attempt == self.attempts:
                    raise ModelError(
                        f"cannot reach the embedding server at {self.base}: {e.reason}; "
                        "is the server running?"
                    ) from e
                wait, what = self._wait(attempt), str(e.reason)
            except DROPPED as e:
                if attempt == self.attempts:
                    raise ModelError(
                        f"the embedding server at {self.base} dropped the connection "
                        f"{attempt} times: {e!r}"
                    ) from e
                wait, what = self._wait(attempt), f"a dropped connection ({e!r})"
            except (OSError, http.client.HTTPException) as e:
                raise ModelError(f"the embedding server at {self.base} failed: {e!r}") from e
            log.info(
                "the embedding server at %s answered %s; trying again in %.2f s (attempt %d of %d)",
                self.base, what, wait, attempt + 1, self.attempts,
            )  # fmt: skip
            time.sleep(wait)
        try:
            reply = json.loads(raw)
        except ValueError:
            raise self._bad(f"something that is not JSON: {squeeze(repr(raw[:200]))}") from None
        if not isinstance(reply, dict):
            raise self._bad(squeeze(repr(reply))[:200])
        return reply

    def _wait(self, attempt: int) -> float:
        """Exponential backoff with jitter, so that many clients do not retry in step."""
        return min(MAX_WAIT, self.backoff * 2 ** (attempt - 1)) * random.uniform(0.5, 1.0)

    def _answered(self, e: urllib.error.HTTPError, attempts: int, seconds: float) -> ModelError:
        message = f"the embedding server at {self.base} answered {e.code} {e.reason}: "
        message += _error_detail(e)
        if attempts > 1:
            message += f" (after {attempts} attempts over {seconds:.1f} s)"
        if e.code in (401, 403):
            message += (
                f"; check ${self._key_env}" if self._key_env
                else "; check the API key given" if self._api_key
                else "; set $RAG_API_KEY"
            )  # fmt: skip
        elif e.code == 404:
            message += "; is it the API's base URL (often ending in /v1)?"
        elif e.code == 413:
            message += f"; send fewer texts a request with ${BATCH_ENV}"
        elif e.code in RETRY_STATUS:
            message += f"; try again later, or send fewer requests at once (${CONCURRENCY_ENV})"
        return ModelError(message)

    def _timed_out(self) -> ModelError:
        return ModelError(
            f"the embedding server at {self.base} did not answer within {self.timeout:g} s; "
            f"check the server, or allow more time with ${TIMEOUT_ENV}"
        )

    def _bad(self, what: str) -> ModelError:
        return ModelError(f"the embedding server at {self.base} sent {what}")


def _retry_after(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (seconds or a date), at most MAX_WAIT."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = when.timestamp() - time.time()
    return min(max(seconds, 0.0), MAX_WAIT) or None


def _error_detail(e: urllib.error.HTTPError) -> str:
    """The server's own words: OpenAI's ``{"error": {"message"}}``, TEI's ``{"error"}``,
    FastAPI's ``{"detail"}``, or the raw body."""
    try:
        raw = e.read()[:2000].decode("utf-8", "replace")
    except OSError:
        raw = ""
    detail: Any = raw
    try:
        reply = json.loads(raw)
        if isinstance(reply, dict):
            detail = reply.get("error") or reply.get("detail") or reply.get("message") or raw
            if isinstance(detail, dict):
                detail = detail.get("message", detail)
    except ValueError:
        pass
    return squeeze(str(detail))[:300] or "no reason given"
