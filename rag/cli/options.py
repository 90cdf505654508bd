"""What the commands share: options, error handling, opening the index, JSONL input."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from functools import wraps
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from rag.errors import RagError
from rag.paths import default_index_dir
from rag.text import squeeze

if TYPE_CHECKING:
    from rag.index import Index

F = TypeVar("F", bound=Callable[..., Any])


def handle_errors(func: F) -> F:
    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except RagError as e:
            raise click.ClickException(str(e)) from e
        except KeyboardInterrupt:
            raise click.Abort() from None
        except Exception as e:
            # damage found after the index opened (a bad page read mid-query)
            if "sqlalchemy" in sys.modules:
                from sqlalchemy.exc import DatabaseError

                if isinstance(e, DatabaseError) and "psycopg" in type(e.orig).__module__:
                    # a server's refusal or a dropped connection, not a damaged file
                    reason = str(e.orig).strip().splitlines()[0] if e.orig else str(e)
                    raise click.ClickException(f"the database failed: {reason}") from e
                if isinstance(e, DatabaseError):
                    raise click.ClickException(
                        f"the index database is damaged ({e.orig}); "
                        "run `rag check` on it, then `rag repair` or index again"
                    ) from e
            raise

    return wrapper  # type: ignore[return-value]


def index_option(func: F) -> F:
    return click.option(
        "--index",
        "index_dir",
        metavar="FOLDER|URL",
        default=None,
        help="Index folder, or a postgresql://USER@HOST/DB?schema=NAME URL. "
        "Default: $RAG_INDEX, else ./.rag",
    )(func)


def resolve_index_dir(index_dir: str | None) -> str:
    return index_dir if index_dir is not None else default_index_dir()


def open_index(
    index_dir: str | None, embedder: str | None = None, reranker: str | None = None
) -> Index:
    from rag.index import Index
    from rag.models.registry import load_reranker

    index = Index.open(resolve_index_dir(index_dir), embedder)
    if reranker:
        index.reranker = load_reranker(reranker)
    return index


def mode_option(func: F) -> F:
    return click.option(
        "--mode",
        type=click.Choice(["hybrid", "dense", "lexical"]),
        default="hybrid",
        show_default=True,
        help="Retrieval: dense and lexical (BM25) rankings fused, or either alone.",
    )(func)


def where_option(func: F) -> F:
    return click.option(
        "--where",
        "where",
        multiple=True,
        metavar="FIELD=VALUE",
        help="Only documents matching all of these: path=GLOB, type=pdf, or a metadata "
        "field such as year=2020. Repeatable.",
    )(func)


def reranker_option(func: F) -> F:
    return click.option(
        "--reranker",
        metavar="MODEL",
        help="Rescore the top candidates with this cross-encoder (a folder or a hub name).",
    )(func)


def k_option(default: int) -> Callable[[F], F]:
    return click.option(
        "-k",
        "--top-k",
        "k",
        type=click.IntRange(min=1),
        default=default,
        show_default=True,
        help="How many results (documents for --queries, passages otherwise).",
    )


def read_jsonl(path: Path, id_key: str, text_key: str) -> Iterator[tuple[str, str]]:
    """(id, text) pairs; a malformed line stops the run before any model loads."""
    rows = []
    with path.open(encoding="utf-8-sig") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise click.ClickException(f"{path}:{lineno}: not valid JSON ({e.msg})") from e
            if not isinstance(obj, dict):
                raise click.ClickException(f"{path}:{lineno}: expected a JSON object")
            qid = obj.get(id_key, obj.get("id" if id_key == "_id" else "_id"))
            text = obj.get(text_key)
            if qid is None or not isinstance(text, str) or not text.strip():
                raise click.ClickException(
                    f"{path}:{lineno}: needs {id_key!r} and a non-empty {text_key!r}"
                )
            rows.append((str(qid), text))
    return iter(rows)


def shorten(text: str, limit: int) -> str:
    flat = squeeze(text)
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def indent(text: str) -> str:
    return "\n".join("   " + line for line in text.splitlines())


def mib(n: int) -> str:
    return f"{n / 1048576:.1f} MiB"


def counted(n: int, noun: str) -> str:
    """``1 chunk``, ``3 chunks``."""
    return f"{n} {noun}{'' if n == 1 else 's'}"
