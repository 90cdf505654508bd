from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode, urlsplit, urlunsplit

import pytest
from click.testing import CliRunner

from rag.cli import cli
from rag.models.registry import register_embedder, register_generator
from tests.fakes import EchoGenerator, HashEmbedder

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "corpora" / "foundation-models"


@pytest.fixture
def embedder() -> HashEmbedder:
    return HashEmbedder()


@pytest.fixture
def generator() -> EchoGenerator:
    return EchoGenerator()


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    """A private copy of the default corpus that a test may change."""
    dest = tmp_path / "docs"
    shutil.copytree(CORPUS, dest, ignore=shutil.ignore_patterns("questions.jsonl"))
    return dest


@pytest.fixture
def cli_fakes(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """The fake models registered under names the command line can be given."""
    register_embedder("fake-hash", HashEmbedder)
    register_generator("fake-echo", EchoGenerator)
    monkeypatch.setenv("RAG_INDEX", str(tmp_path / "default-index"))
    yield


def run_cli(*args: str) -> tuple[int, str, str]:
    """``rag ARGS...`` in process: (exit code, stdout, stderr)."""
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URL of a real PostgreSQL with pgvector: ``$RAG_TEST_POSTGRES_URL``, else one
    that pgserver starts in a temporary folder for this test session."""
    explicit = os.environ.get("RAG_TEST_POSTGRES_URL")
    if explicit:
        yield explicit
        return
    import pgserver

    server = pgserver.get_server(tmp_path_factory.mktemp("pg"), cleanup_mode="stop")
    try:
        yield server.get_uri()
    finally:
        server.cleanup()


def with_schema(url: str, schema: str) -> str:
    """``url`` naming the index in ``schema``."""
    parts = urlsplit(url)
    query = "&".join(p for p in (parts.query, urlencode({"schema": schema})) if p)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))


@pytest.fixture
def pg_url(postgres_server: str) -> str:
    """A URL naming a new index of its own (a fresh schema) in the test database."""
    return with_schema(postgres_server, f"t_{uuid.uuid4().hex[:12]}")
