from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

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
