"""The precision the embedder computes in: chosen from the CPU, overridable, recorded."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from rag.cli import cli
from rag.errors import InvalidValue
from rag.index import Index
from rag.models import openvino_encoder
from rag.models.embedder import (
    PRECISION_ENV,
    SentenceTransformerEmbedder,
    native_bfloat16,
    resolve_precision,
)
from rag.models.openvino_encoder import BACKEND_ENV
from rag.models.registry import register_embedder
from rag.settings import Settings
from tests.fakes import HashEmbedder


def cpuinfo(tmp_path: Path, flags: str) -> str:
    path = tmp_path / "cpuinfo"
    path.write_text(f"processor\t: 0\nmodel name\t: Some CPU\nflags\t\t: fpu sse2 {flags}\n\n")
    return str(path)


def test_bfloat16_is_native_only_with_avx512_bf16_or_amx(tmp_path: Path) -> None:
    assert native_bfloat16(cpuinfo(tmp_path, "avx2 avx512f avx512_bf16 avx512_vnni"))
    assert native_bfloat16(cpuinfo(tmp_path, "avx2 amx_tile amx_bf16"))
    assert not native_bfloat16(cpuinfo(tmp_path, "avx2 avx512f avx512bw avx512_vnni"))
    assert not native_bfloat16(str(tmp_path / "missing"))


def test_precision_is_given_or_from_the_environment_or_auto(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(PRECISION_ENV, raising=False)
    auto = "bfloat16" if native_bfloat16() else "float32"
    assert resolve_precision() == auto
    assert resolve_precision("Float32") == "float32"
    monkeypatch.setenv(PRECISION_ENV, "bfloat16")
    assert resolve_precision() == "bfloat16"
    assert SentenceTransformerEmbedder().precision == "bfloat16"  # nothing loads yet
    assert resolve_precision("float32") == "float32"  # an argument wins over the environment
    monkeypatch.setenv(PRECISION_ENV, "fp8")
    with pytest.raises(InvalidValue, match=r"one of auto, float32, bfloat16, got 'fp8' \(from \$"):
        resolve_precision()
    with pytest.raises(InvalidValue, match="got 'half'"):
        SentenceTransformerEmbedder(precision="half")


class Bf16HashEmbedder(HashEmbedder):
    precision = "bfloat16"


def test_status_says_what_the_vectors_were_computed_in(tmp_path: Path, corpus: Path) -> None:
    folder = tmp_path / "idx"
    with Index.create(folder, Settings(embedder="fake-hash"), HashEmbedder()) as idx:
        assert idx.status().embed_precision == []
        first = sorted(corpus.glob("*.md"))[0]
        idx.add(first)
        assert idx.status().embed_precision == ["float32"]
    with Index.open(folder, Bf16HashEmbedder()) as idx:
        idx.add(first)  # unchanged: nothing embedded, nothing recorded
        assert idx.status().embed_precision == ["float32"]
        idx.add(corpus)
        assert idx.status().embed_precision == ["bfloat16", "float32"]
    register_embedder("fake-hash", HashEmbedder)
    out = CliRunner().invoke(cli, ["status", "--index", str(folder)])
    assert out.exit_code == 0, out.output
    assert "embedder   fake-hash (bfloat16 + float32)" in out.output


@pytest.mark.models
def test_bfloat16_vectors_match_float32_ones() -> None:
    texts = [
        "Masked language modelling hides 15 % of the tokens and predicts them.",
        "LoRA trains two small low-rank matrices instead of the full weight matrices.",
        "def connect(url: str, timeout: float = 5.0) -> Connection:",
        "Die Diskriminator-Netzwerk entscheidet, ob ein Bild echt ist.",
    ] * 3
    full = SentenceTransformerEmbedder(precision="float32").embed(texts)
    half = SentenceTransformerEmbedder(precision="bfloat16").embed(texts)
    assert half.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(half, axis=1), 1.0, atol=1e-5)
    assert float((full * half).sum(axis=1).min()) >= 0.995


def test_the_bulk_backend_is_chosen_by_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(BACKEND_ENV, "torch")
    assert not openvino_encoder.wanted()
    monkeypatch.setenv(BACKEND_ENV, "onnx")
    with pytest.raises(InvalidValue, match=r"one of auto, torch, openvino, got 'onnx'"):
        openvino_encoder.wanted()
    monkeypatch.setenv(BACKEND_ENV, "auto")
    assert openvino_encoder.wanted() == (importlib.util.find_spec("openvino") is not None)


@pytest.mark.models
def test_openvino_encodes_bulk_batches_like_torch(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("openvino")
    monkeypatch.delenv(BACKEND_ENV, raising=False)
    words = "masked tokens predict weights low rank adapter discriminator image real".split()
    texts = [" ".join(words[(i * 7 + j) % 10] for j in range(3 + i % 40)) for i in range(300)]
    bulk = SentenceTransformerEmbedder()
    vectors = bulk.embed(texts)
    assert bulk._bulk.get()[0] is not None  # the batch went through OpenVINO
    monkeypatch.setenv(BACKEND_ENV, "torch")
    plain = SentenceTransformerEmbedder(precision="float32")
    reference = plain.embed(texts)
    assert plain._bulk.get()[0] is None
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert float((vectors * reference).sum(axis=1).min()) >= 0.995
