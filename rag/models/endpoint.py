"""A generator behind an OpenAI-compatible HTTP endpoint: llama.cpp server, Ollama, vLLM.

Named by its base URL, with the model after ``#``: ``http://localhost:8080/v1#qwen2.5-7b``.
Without ``#MODEL`` the first model the server lists at ``/models`` is used. An API key
is read from ``$RAG_API_KEY`` (or ``$OPENAI_API_KEY``). Requests go to
``/completions`` with greedy settings; answers stream as server-sent events.

A server cannot be asked to constrain decoding to copying, so in extractive mode its
answer is checked against the passages instead, like any other, and withdrawn when
it is not a span of one of them.
"""

from __future__ import annotations

import json
import logging
import math
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from rag.errors import InvalidValue, ModelError
from rag.models.generation import (
    CONTEXT_WINDOW,
    CopyFrom,
    Generation,
    StopFilter,
    cut_at_stop,
    endpoint_parts,
    is_endpoint,
    resolve_api_key,
)

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 120.0
CHARS_PER_TOKEN = 3.0  # a cautious estimate: the server's tokenizer is not at hand
MAX_STOPS = 4  # the OpenAI API takes at most four stop strings


class RemoteGenerator:
    """Text generation by an OpenAI-compatible server (``/v1/completions``)."""

    def __init__(
        self,
        name: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        context_window: int = CONTEXT_WINDOW,
        api_key: str | None = None,
    ) -> None:
        if not is_endpoint(name):
            raise InvalidValue(f"generator endpoint {name!r} must start with http:// or https://")
        if timeout <= 0:
            raise InvalidValue(f"timeout must be greater than 0 seconds, got {timeout}")
        self.name = name
        self.base, self._model = endpoint_parts(name)
        self.timeout = timeout
        self._context_window = context_window
        self._api_key = resolve_api_key(api_key)[0]

    def __repr__(self) -> str:
        return f"RemoteGenerator({self.name!r})"

    @property
    def context_window(self) -> int:
        return self._context_window

    @property
    def model(self) -> str:
        """The model asked for, or the first one the server lists."""
        if self._model is None:
            listed = self._request("GET", "/models", None)
            models = [m.get("id") for m in listed.get("data", []) if isinstance(m, dict)]
            if not models or not isinstance(models[0], str):
                raise ModelError(
                    f"generator endpoint {self.base} lists no model at /models; "
                    f"name one: {self.base}#MODEL"
                )
            self._model = models[0]
        return self._model

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Estimated from the length of each text, erring on the side of more."""
        return [math.ceil(len(t) / CHARS_PER_TOKEN) + 1 for t in texts]

    def generate(
        self,
        prompt: str,
        *,
        max_new_tokens: int = 64,
        stop: Sequence[str] = (),
        on_token: Callable[[str], None] | None = None,
        copy_from: CopyFrom | None = None,
    ) -> Generation:
        """Greedy completion of ``prompt``; ``copy_from`` is not enforced (see the module)."""
        if max_new_tokens < 1:
            raise InvalidValue(f"max_new_tokens must be at least 1, got {max_new_tokens}")
        if not prompt:
            raise InvalidValue("prompt must not be empty")
        stops = [s for s in stop if s]
        body: dict[str, Any] = {
            "model": self.model,
            "prompt": prompt,
            "max_tokens": max_new_tokens,
            "temperature": 0.0,
            "stream": on_token is not None,
        }
        if stops:
            body["stop"] = stops[:MAX_STOPS]
        if on_token is None:
            reply = self._request("POST", "/completions", body)
            text = _choice_text(reply, self.base)
            usage = reply.get("usage") or {}
        else:
            sink = StopFilter(stops, on_token)
            pieces = []
            for event in self._stream("/completions", body):
                piece = _choice_text(event, self.base)
                pieces.append(piece)
                sink.feed(piece)
            sink.feed("", final=True)
            text, usage = "".join(pieces), {}
        text = cut_at_stop(text, stops)[0].strip()
        prompt_tokens = int(usage.get("prompt_tokens") or self.count_tokens([prompt])[0])
        completion_tokens = int(usage.get("completion_tokens") or self.count_tokens([text])[0])
        return Generation(text, [], prompt_tokens, completion_tokens)

    # -- HTTP ---------------------------------------------------------------

    def _open(self, method: str, path: str, body: dict[str, Any] | None) -> Any:
        url = self.base + path
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(url, data=data, headers=headers, method=method)
        try:
            return urllib.request.urlopen(request, timeout=self.timeout)
        except urllib.error.HTTPError as exc:
            raise ModelError(
                f"generator endpoint {url} answered HTTP {exc.code}: {_error_message(exc)}"
            ) from exc
        except TimeoutError as exc:
            raise self._timed_out(url) from exc
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, TimeoutError):
                raise self._timed_out(url) from exc
            raise ModelError(
                f"cannot reach generator endpoint {url}: {exc.reason}; is the server running?"
            ) from exc

    def _timed_out(self, url: str) -> ModelError:
        return ModelError(
            f"generator endpoint {url} did not answer within {self.timeout:g} s; "
            "check the server, or allow more time"
        )

    def _request(self, method: str, path: str, body: dict[str, Any] | None) -> dict[str, Any]:
        try:
            with self._open(method, path, body) as response:
                raw = response.read()
        except TimeoutError as exc:
            raise self._timed_out(self.base + path) from exc
        try:
            reply = json.loads(raw)
        except ValueError as exc:
            raise ModelError(
                f"generator endpoint {self.base + path} sent something that is not JSON: "
                f"{raw[:200]!r}"
            ) from exc
        if not isinstance(reply, dict):
            raise ModelError(f"generator endpoint {self.base + path} sent {reply!r}")
        return reply

    def _stream(self, path: str, body: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """The JSON events of a server-sent event stream, up to ``[DONE]``."""
        url = self.base + path
        try:
            with self._open("POST", path, body) as response:
                for line in response:
                    line = line.strip()
                    if not line.startswith(b"data:"):
                        continue
                    payload = line[5:].strip()
                    if payload == b"[DONE]":
                        return
                    try:
                        event = json.loads(payload)
                    except ValueError as exc:
                        raise ModelError(
                            f"generator endpoint {url} streamed an event that is not JSON: "
                            f"{payload[:200]!r}"
                        ) from exc
                    if isinstance(event, dict):
                        yield event
        except TimeoutError as exc:
            raise self._timed_out(url) from exc


def _choice_text(reply: dict[str, Any], base: str) -> str:
    if "error" in reply:
        raise ModelError(f"generator endpoint {base} reported an error: {reply['error']}")
    choices = reply.get("choices")
    if not isinstance(choices, list):
        raise ModelError(f"generator endpoint {base} sent no choices: {str(reply)[:200]}")
    if not choices:
        return ""
    text = choices[0].get("text") if isinstance(choices[0], dict) else None
    return text if isinstance(text, str) else ""


def _error_message(exc: urllib.error.HTTPError) -> str:
    try:
        raw = exc.read()[:500].decode("utf-8", "replace")
    except OSError:
        return exc.reason or "no reason given"
    try:
        detail = json.loads(raw).get("error", raw)
        if isinstance(detail, dict):
            detail = detail.get("message", detail)
        return str(detail)
    except (ValueError, AttributeError):
        return raw.strip() or str(exc.reason)
