"""One registry for every kind of model: a name resolves to a backend.

A name registered with ``register_*`` resolves to its factory (tests and users plug
in their own models this way). Any other name goes to the kind's default backend:
a sentence-transformers model for rerankers; for embedders and generators an
OpenAI-compatible server when the name is a URL (``http://host:port/v1#MODEL``), else
a local sentence-transformers or transformers model.
Nothing loads here: backends load their weights on first use.

>>> register_generator("echo", EchoGenerator)                # doctest: +SKIP
>>> load_generator("echo")                                   # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from rag.errors import InvalidValue
from rag.models.embedder import Embedder, SentenceTransformerEmbedder
from rag.models.embedding_server import ServerEmbedder
from rag.models.endpoint import RemoteGenerator
from rag.models.generation import Generator, is_endpoint
from rag.models.huggingface import HFGenerator
from rag.models.reranker import CrossEncoderReranker, Reranker
from rag.settings import DEFAULT_GENERATOR

T = TypeVar("T")


class Registry(Generic[T]):
    """Names of one kind of model, each with the factory that makes it."""

    def __init__(self, kind: str, default: Callable[[str], T]) -> None:
        self.kind = kind
        self._default = default
        self._factories: dict[str, Callable[[], T]] = {}

    def register(self, name: str, factory: Callable[[], T]) -> None:
        """Make ``name`` resolve to ``factory()`` instead of the default backend."""
        if not name.strip():
            raise InvalidValue(f"a registered {self.kind} needs a name")
        self._factories[name] = factory

    def load(self, name: str) -> T:
        """The model called ``name``; its weights load on first use."""
        factory = self._factories.get(name)
        return factory() if factory is not None else self._default(name)


def _embedder(name: str) -> Embedder:
    return ServerEmbedder(name) if is_endpoint(name) else SentenceTransformerEmbedder(name)


def _generator(name: str) -> Generator:
    return RemoteGenerator(name) if is_endpoint(name) else HFGenerator(name)


embedders: Registry[Embedder] = Registry("embedder", _embedder)
generators: Registry[Generator] = Registry("generator", _generator)
rerankers: Registry[Reranker] = Registry("reranker", CrossEncoderReranker)

register_embedder = embedders.register
register_generator = generators.register
register_reranker = rerankers.register
load_embedder = embedders.load
load_reranker = rerankers.load


def load_generator(name: str | None = None) -> Generator:
    """The generator called ``name`` (the default if None); it loads on first use.

    ``name`` is a registered or packaged name, a model folder, a ``.gguf`` file, a
    Hugging Face hub id, or the URL of an OpenAI-compatible endpoint
    (``http://host:port/v1#MODEL``, see :mod:`rag.models.endpoint`).
    """
    return generators.load(name or DEFAULT_GENERATOR)
