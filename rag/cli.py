"""The ``rag`` command line: index, search, ask, status, check, repair.

Heavy modules (torch, transformers, faiss) are imported inside the commands, so
``rag --help`` starts fast. Library errors become one-line messages here.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable, Iterator
from functools import wraps
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from rag.errors import RagError
from rag.paths import default_index_dir

if TYPE_CHECKING:
    from rag.engine import Answer
    from rag.index import Hit, Index
    from rag.ingest import IngestReport

F = TypeVar("F", bound=Callable[..., Any])

# Questions retrieved together in `ask --questions`; answers print after each group.
BATCH_QUESTIONS = 32


def _handle_errors(func: F) -> F:
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

                if isinstance(e, DatabaseError):
                    raise click.ClickException(
                        f"the index database is damaged ({e.orig}); "
                        "run `rag check` on it, then `rag repair` or index again"
                    ) from e
            raise

    return wrapper  # type: ignore[return-value]


def _index_option(func: F) -> F:
    return click.option(
        "--index",
        "index_dir",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        help="Index folder. Default: $RAG_INDEX, else ./.rag",
    )(func)


def _resolve_index_dir(index_dir: Path | None) -> Path:
    return index_dir if index_dir is not None else default_index_dir()


def _open(
    index_dir: Path | None, embedder: str | None = None, reranker: str | None = None
) -> Index:
    from rag.index import Index

    index = Index.open(_resolve_index_dir(index_dir), embedder)
    if reranker:
        from rag.reranker import load_reranker

        index.reranker = load_reranker(reranker)
    return index


def _mode_option(func: F) -> F:
    return click.option(
        "--mode",
        type=click.Choice(["hybrid", "dense", "lexical"]),
        default="hybrid",
        show_default=True,
        help="Retrieval: dense and lexical (BM25) rankings fused, or either alone.",
    )(func)


def _where_option(func: F) -> F:
    return click.option(
        "--where",
        "where",
        multiple=True,
        metavar="FIELD=VALUE",
        help="Only documents matching all of these: path=GLOB, type=pdf, or a metadata "
        "field such as year=2020. Repeatable.",
    )(func)


def _reranker_option(func: F) -> F:
    return click.option(
        "--reranker",
        metavar="MODEL",
        help="Rescore the top candidates with this cross-encoder (a folder or a hub name).",
    )(func)


def _k_option(default: int) -> Callable[[F], F]:
    return click.option(
        "-k",
        "--top-k",
        "k",
        type=click.IntRange(min=1),
        default=default,
        show_default=True,
        help="How many results (documents for --queries, passages otherwise).",
    )


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="rag")
@click.option("-v", "--verbose", count=True, help="Log progress (-v) or everything (-vv).")
def cli(verbose: int) -> None:
    """Index your documents and ask questions about them, offline, with cited sources."""
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@_index_option
@click.option("--embedder", help="Embedding model name or folder (new index only).")
@click.option("--generator", help="Default generator model name or folder for answers.")
@click.option("--chunk-tokens", type=click.IntRange(min=16), help="Chunk size in tokens.")
@click.option("--chunk-overlap", type=click.IntRange(min=0), help="Overlap in tokens.")
@click.option("--vector-index", type=click.Choice(["auto", "flat", "ivf"]),
              help="Vector index (new index only); auto: exact below 100,000 chunks.")  # fmt: skip
@click.option(
    "--wait",
    type=click.FloatRange(min=0),
    default=5.0,
    show_default=True,
    help="Seconds to wait for another process writing the index.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@_handle_errors
def index(
    paths: tuple[Path, ...],
    index_dir: Path | None,
    embedder: str | None,
    generator: str | None,
    chunk_tokens: int | None,
    chunk_overlap: int | None,
    vector_index: str | None,
    wait: float,
    as_json: bool,
) -> None:
    """Index folders, files or JSONL corpora. Re-runs embed only what changed.

    A JSONL corpus has one document a line: {"_id" or "id", "text", "title"?, ...}.
    """
    from rag.index import Index
    from rag.ingest import Progress

    folder = _resolve_index_dir(index_dir)
    idx = Index.open_or_create(
        folder,
        embedder=embedder,
        generator=generator,
        chunk_tokens=chunk_tokens,
        chunk_overlap=chunk_overlap,
        vector_index=vector_index,
    )
    with idx, _progress_bar(not as_json) as update:

        def progress(p: Progress) -> None:
            update(p.files_done, p.files_total)

        report = idx.add(*paths, progress=progress, lock_timeout=wait)
    _print_report(report, folder, as_json)
    if not report.ok:
        sys.exit(1)


def _print_report(report: IngestReport, folder: Path, as_json: bool) -> None:
    summary = {
        "added": report.added,
        "updated": report.updated,
        "removed": report.removed,
        "unchanged": report.unchanged,
        "skipped": len(report.skipped),
        "failed": len(report.failed),
        "chunks_embedded": report.chunks,
        "seconds": round(report.seconds, 3),
    }
    if as_json:
        failures = [{"path": f.path, "reason": f.reason} for f in report.failed]
        click.echo(json.dumps({**summary, "index": str(folder), "failures": failures}))
        return
    for s in report.skipped:
        click.echo(f"skipped {s.path}: {s.reason}", err=True)
    for f in report.failed:
        click.echo(f"failed  {f.path}: {f.reason}", err=True)
    click.echo(
        f"{folder}: {report.added} added, {report.updated} updated, {report.removed} removed, "
        f"{report.unchanged} unchanged, {len(report.skipped)} skipped, "
        f"{len(report.failed)} failed ({report.chunks} chunks embedded in {report.seconds:.1f}s)"
    )


class _ProgressBar:
    def __init__(self, show: bool) -> None:
        self.show = show and sys.stderr.isatty()
        self.bar: Any = None
        self.done = 0

    def update(self, done: int, total: int) -> None:
        if not self.show:
            return
        if self.bar is None:
            self.bar = click.progressbar(length=total, label="indexing", file=sys.stderr)
            self.bar.__enter__()
        self.bar.update(done - self.done)
        self.done = done

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)


class _progress_bar:
    def __init__(self, show: bool) -> None:
        self.bar = _ProgressBar(show)

    def __enter__(self) -> Callable[[int, int], None]:
        return self.bar.update

    def __exit__(self, *exc: object) -> None:
        self.bar.close()


@cli.command()
@click.argument("query", required=False)
@_index_option
@_k_option(5)
@click.option(
    "--queries",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help='JSONL file of {"_id", "text"} queries: one JSON line of ranked documents each.',
)
@click.option("--embedder", help="Refuse to run unless the index was built with this embedder.")
@_mode_option
@_where_option
@_reranker_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@_handle_errors
def search(
    query: str | None,
    index_dir: Path | None,
    k: int,
    queries: Path | None,
    embedder: str | None,
    mode: str,
    where: tuple[str, ...],
    reranker: str | None,
    as_json: bool,
) -> None:
    """Show the passages that best match QUERY (or rank documents for --queries)."""
    from rag.filters import Where

    if (query is None) == (queries is None):
        raise click.UsageError("give either a QUERY or --queries FILE")
    condition = Where.parse(where)
    with _open(index_dir, embedder, reranker) as idx:
        if queries is not None:
            rows = list(_read_jsonl(queries, "_id", "text"))
            results = idx.search_documents([text for _, text in rows], k, mode, condition)
            for (qid, _), hits in zip(rows, results):
                click.echo(
                    json.dumps(
                        {
                            "query_id": qid,
                            "hits": [
                                {"doc_id": h.doc_id, "score": round(h.score, 6), "text": h.text}
                                for h in hits
                            ],
                        }
                    )
                )
            return
        assert query is not None
        hits = idx.search(query, k, mode, condition)
        if as_json:
            click.echo(json.dumps({"query": query, "hits": [_hit_json(h) for h in hits]}))
            return
        if not hits:
            click.echo(
                "no results" + (" match the filter" if condition else ": the index is empty")
            )
        for rank, h in enumerate(hits, 1):
            click.secho(f"{rank}. {h.location}  score {h.score:.3f}", bold=True)
            if h.heading:
                click.echo(f"   {h.heading}")
            click.echo(_indent(_shorten(h.text, 400)))


@cli.command()
@click.argument("question", required=False)
@_index_option
@_k_option(3)
@click.option(
    "--questions",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help='JSONL file of {"id", "question"}: one JSON answer line each.',
)
@click.option("--generator", help="Generator model: a packaged name, a folder, or a hub name.")
@click.option("--max-new-tokens", type=click.IntRange(min=1), default=48, show_default=True)
@_mode_option
@_where_option
@_reranker_option
@click.option(
    "--answer-mode",
    type=click.Choice(["extractive", "generative"]),
    default="extractive",
    show_default=True,
    help="Copy a short answer span from the passages, or let the model write a longer one.",
)
@click.option(
    "--min-confidence",
    type=click.FloatRange(0.0, 1.0),
    default=None,
    help="Abstain below this confidence (default: the calibrated 0.25; 0 never abstains).",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print {answer, mode, citations, passages, abstained, confidence, ...}.",
)
@_handle_errors
def ask(
    question: str | None,
    index_dir: Path | None,
    k: int,
    questions: Path | None,
    generator: str | None,
    max_new_tokens: int,
    mode: str,
    where: tuple[str, ...],
    reranker: str | None,
    answer_mode: str,
    min_confidence: float | None,
    as_json: bool,
) -> None:
    """Answer QUESTION from the indexed documents, citing the passages used.

    When the documents do not seem to hold the answer, says so and shows the closest
    passages instead.
    """
    from rag.confidence import MIN_CONFIDENCE
    from rag.engine import QueryEngine
    from rag.filters import Where

    if (question is None) == (questions is None):
        raise click.UsageError("give either a QUESTION or --questions FILE")
    condition = Where.parse(where)
    with _open(index_dir, reranker=reranker) as idx:
        engine = QueryEngine(
            idx,
            generator,
            k=k,
            max_new_tokens=max_new_tokens,
            mode=mode,
            where=condition,
            answer_mode=answer_mode,
            min_confidence=MIN_CONFIDENCE if min_confidence is None else min_confidence,
        )
        _ = engine.generator  # a bad generator name fails now, whatever the questions
        if questions is not None:
            rows = list(_read_jsonl(questions, "id", "question"))
            for start in range(0, len(rows), BATCH_QUESTIONS):
                group = rows[start : start + BATCH_QUESTIONS]
                for (qid, _), answer in zip(group, engine.ask_batch([q for _, q in group])):
                    click.echo(json.dumps({"id": qid, **_answer_json(answer)}))
            return
        assert question is not None
        if as_json:
            click.echo(json.dumps(_answer_json(engine.ask(question))))
            return
        answer = engine.ask(question, on_token=lambda t: click.echo(t, nl=False))
        _print_answer(answer)


def _print_answer(answer: Answer) -> None:
    from rag.engine import NOT_FOUND

    if answer.abstained:
        if answer.generated:  # it was streamed above: say why it does not stand
            why = "" if answer.supported else " (no passage supports it)"
            click.echo(f"\nThe answer above is withdrawn{why}.")
        click.echo(NOT_FOUND)
        if answer.passages:
            click.echo("\nClosest passages:")
            for n, p in enumerate(answer.passages, 1):
                click.echo(f"[{n}] {p.location}")
        return
    click.echo("".join(f" [{c.n}]" for c in answer.citations))
    click.echo("\nSources:")
    cited = {c.n: c for c in answer.citations}
    for n, p in enumerate(answer.passages, 1):
        c = cited.get(n)
        mark = "*" if c else " "
        quote = f"  answer at line {c.quote_line}" if c and c.quote_line else ""
        heading = f"  ({p.heading})" if p.heading else ""
        click.echo(f"{mark}[{n}] {p.location}{heading}{quote}")


@cli.command()
@_index_option
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@_handle_errors
def status(index_dir: Path | None, as_json: bool) -> None:
    """Show what is indexed, with which models and settings."""
    from dataclasses import asdict

    with _open(index_dir) as idx:
        st = idx.status()
    data = asdict(st)
    if as_json:
        click.echo(json.dumps(data))
        return
    click.echo(f"index      {st.path} (format {st.format_version})")
    click.echo(f"documents  {st.documents} from {st.sources} files")
    click.echo(f"chunks     {st.chunks}")
    click.echo(f"vectors    {st.vector_index} index ({st.settings.vector_index} setting)")
    click.echo(f"embedder   {st.settings.embedder}")
    click.echo(f"generator  {st.settings.generator}")
    click.echo(f"chunking   {st.settings.chunk_tokens} tokens, {st.settings.chunk_overlap} overlap")
    click.echo(f"size       {_mib(st.database_bytes)} database, {_mib(st.vectors_bytes)} vectors")
    for root in st.roots:
        click.echo(f"root       {root}")


@cli.command()
@_index_option
@_handle_errors
def check(index_dir: Path | None) -> None:
    """Verify the index: database sound, every chunk has its vector, files agree."""
    folder = _resolve_index_dir(index_dir)
    with _open(folder) as idx:
        problems = idx.check()
        counts = idx.store.counts()
    if problems:
        for p in problems:
            click.echo(f"problem: {p}", err=True)
        raise click.ClickException(
            f"the index at {folder} needs repair: rag repair --index {folder}"
        )
    click.echo(f"{folder}: ok ({counts['documents']} documents, {counts['chunks']} chunks)")


@cli.command()
@_index_option
@click.option("--wait", type=click.FloatRange(min=0), default=5.0, show_default=True,
              help="Seconds to wait for another process writing the index.")  # fmt: skip
@_handle_errors
def repair(index_dir: Path | None, wait: float) -> None:
    """Restore consistency: rebuild the vectors from the stored embeddings."""
    folder = _resolve_index_dir(index_dir)
    with _open(folder) as idx:
        for line in idx.repair(lock_timeout=wait):
            click.echo(line)
        problems = idx.check()
    if problems:
        raise click.ClickException("still wrong after repair: " + "; ".join(problems))
    click.echo(f"{folder}: ok")


def _read_jsonl(path: Path, id_key: str, text_key: str) -> Iterator[tuple[str, str]]:
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


def _hit_json(h: Hit) -> dict[str, Any]:
    return {
        "doc_id": h.doc_id,
        "score": round(h.score, 6),
        "text": h.text,
        "source": h.source,
        "start": h.start,
        "end": h.end,
        "line_start": h.line_start,
        "line_end": h.line_end,
        "page_start": h.page_start,
        "page_end": h.page_end,
        "heading": h.heading,
        "chunk_id": h.chunk_id,
    }


def _answer_json(a: Answer) -> dict[str, Any]:
    return {
        "answer": a.text,
        "citations": [
            {
                "n": c.n,
                "doc_id": c.doc_id,
                "start": c.start,
                "end": c.end,
                "line_start": c.line_start,
                "line_end": c.line_end,
                "source": c.source,
                "quote_start": c.quote_start,
                "quote_end": c.quote_end,
                "quote_line": c.quote_line,
            }
            for c in a.citations
        ],
        "passages": [{"n": n, **_hit_json(p)} for n, p in enumerate(a.passages, 1)],
        "abstained": a.abstained,
        "supported": a.supported,
        "confidence": round(a.confidence, 4),
        "mode": a.mode,
        "generated": a.generated,
    }


def _shorten(text: str, limit: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def _indent(text: str) -> str:
    return "\n".join("   " + line for line in text.splitlines())


def _mib(n: int) -> str:
    return f"{n / 1048576:.1f} MiB"


def main() -> None:
    cli(prog_name="rag")
