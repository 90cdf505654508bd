"""Search, ask and status: the same objects ``rag search/ask/status --json`` print."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import asdict
from typing import Any

from fastapi import APIRouter
from fastapi.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from rag.index import Index
from rag.server.errors import describe, errors
from rag.server.generation import Answers, AnswerStream, Event
from rag.server.schemas import AskRequest, SearchRequest
from rag.server.searches import SearchBatcher
from rag.types import Where

# Headers that keep proxies from holding back the events of a stream.
STREAM_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
# One server-sent event: its kind (none in an OpenAI stream) and its JSON data.
EVENT: dict[str, Any] = {
    "type": "object",
    "properties": {"event": {"type": "string"}, "data": {"type": "string"}},
    "required": ["data"],
}
# A 200 that may be JSON or, when asked for, a stream of server-sent events.
STREAMED: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The whole answer as JSON, or with ``stream`` its events.",
        "content": {"text/event-stream": {"schema": EVENT}},
    }
}


def router(index: Index, searches: SearchBatcher, answers: Answers) -> APIRouter:
    api = APIRouter(prefix="/v1")

    @api.post("/search", responses=errors(400, 401, 413, 422, 503))
    def search(body: SearchRequest) -> dict[str, Any]:
        """The passages that best match the query (``rag search --json``)."""
        hits = searches.search(body.query, body.k, body.mode, Where.of(body.where))
        return {"hits": [h.to_dict() for h in hits]}

    @api.post(
        "/ask", response_model=None, responses={**STREAMED, **errors(400, 401, 413, 422, 503)}
    )
    def ask(body: AskRequest) -> dict[str, Any] | EventStream:
        """An answer with its citations (``rag ask --json``), or a stream of
        ``token`` events then one ``answer`` event."""
        if not body.stream:
            return answers.ask(body.question, body.k, body.answer_mode).to_dict()
        events = answers.stream(body.question, body.k, body.answer_mode)
        return EventStream(_server_sent(events), events)

    @api.get("/status", responses=errors(401, 503))
    def status() -> dict[str, Any]:
        """What is indexed, with which models and settings (``rag status --json``)."""
        return asdict(index.status())

    return api


class EventStream(StreamingResponse):
    """Server-sent events of an answer being generated. However the response ends, sent
    whole or its client gone, the answer is closed: a generation nobody reads stops."""

    def __init__(self, content: Iterator[str], answer: AnswerStream) -> None:
        super().__init__(content, media_type="text/event-stream", headers=STREAM_HEADERS)
        self.answer = answer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.answer.close()


def sse(event: str, data: Any) -> str:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n"


def _server_sent(events: Iterator[Event]) -> Iterator[str]:
    for kind, value in events:
        if kind == "token":
            yield sse("token", {"text": value})
        elif kind == "answer":
            yield sse("answer", value.to_dict())
        else:
            yield sse("error", describe(value)[1])
