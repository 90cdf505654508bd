"""The request bodies the API takes (responses are the library's ``to_dict()``)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from rag.retrieval.search import DEFAULT_MODE

# The most passages a request may ask for; more is a mistake or an attack.
MAX_K = 1000


class SearchRequest(BaseModel):
    query: str = Field(description="What to look for.")
    k: int = Field(5, le=MAX_K, description="How many passages, best first.")
    mode: str = Field(DEFAULT_MODE, description="hybrid, dense or lexical.")
    where: dict[str, Any] | None = Field(
        None, description='Only documents matching all of these: {"path": "guides/*.md", '
        '"type": "pdf", "year": 2020}.',
    )  # fmt: skip


class AskRequest(BaseModel):
    question: str
    k: int | None = Field(None, le=MAX_K, description="How many passages to answer from.")
    answer_mode: str | None = Field(None, description="extractive (default) or generative.")
    stream: bool = Field(False, description="Send text/event-stream: tokens, then the answer.")


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: str
    content: str | list[dict[str, Any]] | None = None

    @property
    def text(self) -> str:
        """The message's text, whether given as a string or as a list of parts."""
        if isinstance(self.content, str):
            return self.content
        parts = self.content or []
        return "\n".join(str(p.get("text", "")) for p in parts if p.get("type") == "text")


class ChatRequest(BaseModel):
    """An OpenAI chat completion request; sampling options are accepted and ignored."""

    model_config = ConfigDict(extra="allow")

    model: str | None = None
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = False
