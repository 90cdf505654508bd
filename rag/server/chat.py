"""OpenAI-compatible endpoints: ``/v1/chat/completions`` and ``/v1/models``.

The last user message is the question; earlier messages are not read (each answer
comes from the documents alone). The reply's text ends with the numbered sources its
``[n]`` markers point to, and the response carries them in an extra ``sources`` field:
the passages the answer was given, each with ``n`` and whether it is ``cited``.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter

from rag.answer.engine import NOT_FOUND
from rag.errors import InvalidValue
from rag.server.errors import describe, errors
from rag.server.generation import Answers, Event
from rag.server.query import STREAMED, EventStream
from rag.server.schemas import ChatMessage, ChatRequest
from rag.types import Answer


def router(answers: Answers, model_id: str) -> APIRouter:
    api = APIRouter(prefix="/v1")
    created = int(time.time())

    @api.get("/models", responses=errors(401))
    def models() -> dict[str, Any]:
        """The one model this server answers as."""
        model = {"id": model_id, "object": "model", "created": created, "owned_by": "rag"}
        return {"object": "list", "data": [model]}

    @api.post(
        "/chat/completions",
        response_model=None,
        responses={**STREAMED, **errors(400, 401, 413, 422, 503)},
    )
    def chat(body: ChatRequest) -> dict[str, Any] | EventStream:
        """Answer the last user message from the documents, citing them."""
        question = last_question(body.messages)
        reply = Reply(model_id)
        if not body.stream:
            return reply.completion(answers.ask(question))
        events = answers.stream(question)
        return EventStream(reply.chunks(events), events)

    return api


def last_question(messages: list[ChatMessage]) -> str:
    for message in reversed(messages):
        if message.role == "user":
            return message.text
    raise InvalidValue("the messages hold no user message; the last one is the question")


def sources(answer: Answer) -> list[dict[str, Any]]:
    cited = {c.n for c in answer.citations}
    return [{**p, "cited": p["n"] in cited} for p in answer.to_dict()["passages"]]


def source_list(answer: Answer) -> str:
    """The numbered sources after the answer: the cited ones, or the closest passages."""
    if answer.abstained:
        lines = [f"[{n}] {p.location}" for n, p in enumerate(answer.passages, 1)]
        return "\n\nClosest passages:\n" + "\n".join(lines) if lines else ""
    return "\n\nSources:\n" + "\n".join(f"[{c.n}] {c.location}" for c in answer.citations)


class Reply:
    """One answer as an OpenAI chat completion, whole or in chunks."""

    def __init__(self, model_id: str) -> None:
        self.id = f"chatcmpl-{uuid.uuid4().hex}"
        self.model = model_id
        self.created = int(time.time())

    def completion(self, answer: Answer) -> dict[str, Any]:
        message = {"role": "assistant", "content": answer.text + source_list(answer)}
        return {
            "id": self.id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
            "sources": sources(answer),
        }

    def chunk(self, delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
        body = {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            **extra,
        }
        return f"data: {json.dumps(body)}\n\n"

    def chunks(self, events: Iterator[Event]) -> Iterator[str]:
        """The streamed tokens, then the citation markers and sources, then ``[DONE]``."""
        yield self.chunk({"role": "assistant", "content": ""})
        streamed = False
        for kind, value in events:
            if kind == "token":
                streamed = True
                yield self.chunk({"content": value})
            elif kind == "answer":
                yield self.chunk({"content": _tail(value, streamed)})
                yield self.chunk({}, "stop", sources=sources(value))
            else:
                yield f"data: {json.dumps(describe(value)[1])}\n\n"
        yield "data: [DONE]\n\n"


def _tail(answer: Answer, streamed: bool) -> str:
    """What follows the streamed text: its markers and sources, or why it does not stand."""
    if not answer.abstained:
        return "".join(f" [{c.n}]" for c in answer.citations) + source_list(answer)
    withdrawn = "\n\nThe answer above is withdrawn.\n\n" if streamed else ""
    return withdrawn + NOT_FOUND + source_list(answer)
