"""Generators run locally by transformers on the CPU: packaged GGUF models, model
folders, ``.gguf`` files and Hugging Face hub ids.

A generator continues a prompt greedily and reports how sure it was of each token.
Models load on first use.

>>> gen = HFGenerator("gemma-3-270m")
>>> shot = "Eiffel completed the tower in 1889.\\nQ: When was the tower completed?\\nA: 1889\\n\\n"
>>> ask = "Guido van Rossum created Python.\\nQ: Who created Python?\\nA:"
>>> gen.generate(shot + ask, max_new_tokens=16, stop=["\\n"]).text
'Guido van Rossum'
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from rag.errors import InvalidValue, ModelError
from rag.models.constrained import copy_constraint
from rag.models.generation import CONTEXT_WINDOW, CopyFrom, Generation, StopFilter, cut_at_stop
from rag.models.gguf import PACKAGED, converted
from rag.models.lazy import Lazy, quiet_transformers
from rag.settings import DEFAULT_GENERATOR

log = logging.getLogger(__name__)

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")


class HFGenerator:
    """A causal language model run by transformers on the CPU, decoding greedily.

    ``name`` is a packaged name (see ``PACKAGED``), a folder holding a transformers
    model, a ``.gguf`` file, or a Hugging Face hub id. Nothing loads until first use.
    ``dtype`` is ``"bfloat16"`` or ``"float32"``; by default bfloat16 where the CPU
    computes it natively (about twice as fast here), float32 elsewhere.
    """

    def __init__(
        self,
        name: str = DEFAULT_GENERATOR,
        *,
        threads: int | None = None,
        dtype: str | None = None,
    ) -> None:
        if not name.strip():
            raise InvalidValue("generator name must not be empty")
        if threads is not None and threads < 1:
            raise InvalidValue(f"threads must be at least 1, got {threads}")
        if dtype not in (None, "float32", "bfloat16"):
            raise InvalidValue(f"dtype must be 'float32' or 'bfloat16', got {dtype!r}")
        self.name = name
        self.threads = threads
        self.dtype = dtype
        self._source = _locate(name)
        self._loaded = Lazy(self._load_now)

    def __repr__(self) -> str:
        return f"HFGenerator({self.name!r})"

    @property
    def context_window(self) -> int:
        model, _ = self._load()
        size = getattr(model.config.get_text_config(), "max_position_embeddings", None)
        return min(int(size or CONTEXT_WINDOW), CONTEXT_WINDOW)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Tokens in each text when given as a prompt (special tokens such as BOS included)."""
        if not texts:
            return []
        _, tokenizer = self._load()
        return [len(ids) for ids in tokenizer(list(texts))["input_ids"]]

    def generate(
        self,
        prompt: str,
        *,
        max_new_tokens: int = 64,
        stop: Sequence[str] = (),
        on_token: Callable[[str], None] | None = None,
        copy_from: CopyFrom | None = None,
    ) -> Generation:
        """Continue ``prompt`` greedily until EOS, a stop string or ``max_new_tokens``.

        The text returned ends before the first stop string and is stripped.
        ``on_token`` receives the text as whole words, never a stop string or what
        follows it, nor leading whitespace; text held back because it might begin a
        stop string is sent when it turns out not to.

        With ``copy_from``, decoding is constrained: the completion (up to a stop
        string) is a contiguous span of one of its sources, white space aside. At each
        step only tokens that keep it so are allowed, so the greedy choice is the
        model's best span, not a paraphrase.
        """
        import torch

        if max_new_tokens < 1:
            raise InvalidValue(f"max_new_tokens must be at least 1, got {max_new_tokens}")
        stops = [s for s in stop if s]
        model, tokenizer = self._load()
        encoded = tokenizer(prompt, return_tensors="pt")
        inputs = {k: encoded[k] for k in ("input_ids", "attention_mask") if k in encoded}
        prompt_tokens = int(inputs["input_ids"].shape[1])
        if prompt_tokens == 0:
            raise InvalidValue("prompt must not be empty")
        if prompt_tokens + max_new_tokens > self.context_window:
            raise InvalidValue(
                f"prompt of {prompt_tokens} tokens plus max_new_tokens {max_new_tokens} exceeds "
                f"the context window of {self.context_window} tokens of {self.name}"
            )
        extra: dict[str, Any] = {}
        if stops:
            extra["stopping_criteria"] = _stop_criteria(tokenizer, prompt_tokens, stops)
        if on_token is not None:
            extra["streamer"] = _streamer(tokenizer, StopFilter(stops, on_token))
        if copy_from is not None:
            extra["logits_processor"] = copy_constraint(tokenizer, prompt_tokens, copy_from, stops)
        pad = tokenizer.pad_token_id
        with torch.inference_mode():
            out = model.generate(
                **inputs,
                max_new_tokens=max_new_tokens,
                do_sample=False,
                output_logits=True,
                return_dict_in_generate=True,
                pad_token_id=tokenizer.eos_token_id if pad is None else pad,
                **extra,
            )
        new = out.sequences[0, prompt_tokens:]
        # the model's own probabilities, before any constraint renormalized them
        logprobs = [
            float(torch.log_softmax(step[0].float(), dim=-1)[token])
            for step, token in zip(out.logits, new.tolist())
        ]
        text = tokenizer.decode(new, skip_special_tokens=True)
        return Generation(
            cut_at_stop(text, stops)[0].strip(), logprobs, prompt_tokens, len(logprobs)
        )

    def _load(self) -> tuple[Any, Any]:
        """The model and tokenizer, loaded once however many threads ask."""
        return self._loaded.get()

    def _load_now(self) -> tuple[Any, Any]:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        quiet_transformers()
        if self.threads is not None:
            torch.set_num_threads(self.threads)
        dtype = getattr(torch, self.dtype) if self.dtype else _fast_dtype()
        source = self._source
        stored = "bfloat16" if dtype == torch.bfloat16 else "float32"
        is_converted = False
        if isinstance(source, str) and source in PACKAGED:
            source, is_converted = converted(PACKAGED[source](), source, stored), True
        elif isinstance(source, Path) and source.suffix == ".gguf":
            source, is_converted = converted(source, source.stem, stored), True
        if isinstance(source, Path):
            try:
                tokenizer = (
                    _converted_tokenizer(source)
                    if is_converted
                    else AutoTokenizer.from_pretrained(source, local_files_only=True)
                )
                model = AutoModelForCausalLM.from_pretrained(
                    source, local_files_only=True, dtype=dtype
                )
            except (OSError, ValueError, KeyError) as exc:
                raise ModelError(
                    f"could not load generator {self.name!r} from {source}: {exc}; "
                    "check that the folder holds a complete transformers causal language model "
                    "(for a converted GGUF, delete the folder to convert again)"
                ) from exc
        else:
            tokenizer, model = _from_hub(source, dtype)
        log.info("loaded generator %s (%s)", self.name, dtype)
        return model.eval(), tokenizer


def _locate(name: str) -> Path | str:
    """The GGUF file or model folder ``name`` names, else the packaged name or hub id it is.

    Only cheap checks: a packaged GGUF is found (and assembled) when the model loads.
    """
    if name in PACKAGED:
        return name
    path = Path(name).expanduser()
    if path.is_file():
        if path.suffix != ".gguf":
            raise ModelError(f"generator {name!r} is a file but not a .gguf model file")
        return path.resolve()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelError(
                f"generator folder {name!r} holds no config.json; give a folder saved by "
                "transformers save_pretrained, a .gguf file, or one of: " + ", ".join(PACKAGED)
            )
        return path.resolve()
    if name.endswith(".gguf") or name.startswith(("/", "./", "../", "~")):
        raise ModelError(f"generator {name!r}: no such file or folder")
    if not _HUB_ID.match(name):
        raise ModelError(
            f"generator {name!r} is neither a packaged model, a local path nor a hub id; "
            "packaged models: " + ", ".join(PACKAGED)
        )
    return name


def _converted_tokenizer(folder: Path) -> Any:
    """The tokenizer a GGUF conversion saved in ``folder``, read straight from its
    ``tokenizer.json`` with the special tokens of its ``tokenizer_config.json``: the same
    tokens as ``AutoTokenizer``, which rebuilds Gemma 3's 262,000-token vocabulary in
    Python first (0.9 s against 2.5 s on a 2-core EPYC)."""
    from transformers import PreTrainedTokenizerFast

    config = json.loads((folder / "tokenizer_config.json").read_text(encoding="utf-8"))
    special = {
        key: value
        for key in ("bos_token", "eos_token", "pad_token", "unk_token", "mask_token")
        if isinstance(value := config.get(key), str)
    }
    return PreTrainedTokenizerFast(tokenizer_file=str(folder / "tokenizer.json"), **special)


def _fast_dtype() -> Any:
    """bfloat16 where the CPU has native bfloat16 arithmetic, else float32."""
    import torch

    probes = [
        getattr(torch.cpu, n, None) for n in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    ]
    return torch.bfloat16 if any(p is not None and p() for p in probes) else torch.float32


def _from_hub(name: str, dtype: Any) -> tuple[Any, Any]:
    """Tokenizer and model for a hub id: from the hub cache, else downloaded."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    failure: Exception | None = None
    for local_only in (True, False):
        try:
            tokenizer = AutoTokenizer.from_pretrained(name, local_files_only=local_only)
            model = AutoModelForCausalLM.from_pretrained(
                name, local_files_only=local_only, dtype=dtype
            )
            return model, tokenizer
        except (OSError, ValueError) as exc:
            failure = exc
    reason = str(failure).strip().splitlines()[0] if failure else "unknown reason"
    raise ModelError(
        f"generator {name!r} could not be found locally nor downloaded from the Hugging Face "
        f"hub ({reason}); use a packaged model ({', '.join(PACKAGED)}), a model folder or a "
        ".gguf file"
    ) from failure


def _streamer(tokenizer: Any, sink: StopFilter) -> Any:
    """A transformers streamer that hands whole words of the completion to ``sink``."""
    from transformers import TextStreamer

    class _Streamer(TextStreamer):
        def on_finalized_text(self, text: str, stream_end: bool = False) -> None:
            sink.feed(text, final=stream_end)

    return _Streamer(tokenizer, skip_prompt=True, skip_special_tokens=True)


def _stop_criteria(tokenizer: Any, start: int, stops: Sequence[str]) -> Any:
    """Stops generation once the completion's decoded tail holds a stop string.

    transformers' own ``stop_strings`` precomputes tables over the whole vocabulary on
    every call, about 1.5 s for Gemma's 262k tokens; decoding a short tail costs nothing.
    """
    import torch
    from transformers import StoppingCriteria, StoppingCriteriaList

    window = 4 * max(len(s) for s in stops) + 8  # byte-level tokens: a character is <= 4

    class _StopStrings(StoppingCriteria):
        def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
            tail = input_ids[0, max(start, input_ids.shape[1] - window) :]
            hit = cut_at_stop(tokenizer.decode(tail, skip_special_tokens=True), stops)[1]
            return torch.full((input_ids.shape[0],), hit, dtype=torch.bool, device=input_ids.device)

    return StoppingCriteriaList([_StopStrings()])
