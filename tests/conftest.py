from __future__ import annotations

import shutil
from pathlib import Path

import pytest

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
