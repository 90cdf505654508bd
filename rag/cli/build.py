"""Commands that build and look after an index: index, rm, status, check, repair."""

from __future__ import annotations

import json
import signal
import sys
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, NoReturn

import click

from rag.cli.options import (
    counted,
    handle_errors,
    index_option,
    mib,
    open_index,
    resolve_index_dir,
)

if TYPE_CHECKING:
    from rag.index import Index
    from rag.ingest.pipeline import IngestReport, Progress


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@index_option
@click.option("--embedder", help="Embedding model name or folder, or an OpenAI-compatible "
              "server http://host:port/v1#MODEL (new index only).")  # fmt: skip
@click.option("--generator", help="Default generator model name or folder for answers.")
@click.option("--tokenizer",
              help="Hugging Face tokenizer name or folder that sizes the chunks of an embedder "
              "behind a server (new index only); default: an approximation.")  # fmt: skip
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
@click.option("--watch", is_flag=True,
              help="Then keep the index in step with PATHS until Ctrl-C: one update per "
              "burst of changes, holding the writer lock only while it runs.")  # fmt: skip
@click.option("--json", "as_json", is_flag=True,
              help="Print the summary as JSON (with --watch, one line per update).")  # fmt: skip
@handle_errors
def index(
    paths: tuple[Path, ...],
    index_dir: str | None,
    embedder: str | None,
    generator: str | None,
    tokenizer: str | None,
    chunk_tokens: int | None,
    chunk_overlap: int | None,
    vector_index: str | None,
    wait: float,
    watch: bool,
    as_json: bool,
) -> None:
    """Index folders, files or JSONL corpora. Re-runs embed only what changed.

    A JSONL corpus has one document a line: {"_id" or "id", "text", "title"?, ...}.

    With --watch, the index follows the paths after the first run: each burst of
    changes (new, edited, deleted files) becomes one incremental update, printed as
    one line. Other processes may write to the index between updates. Ctrl-C or
    SIGTERM stops it (exit status 0); a watched folder that is deleted stops it with
    exit status 1, leaving its documents in the index.
    """
    from rag.index import Index

    idx = Index.open_or_create(
        resolve_index_dir(index_dir),
        embedder=embedder,
        generator=generator,
        tokenizer=tokenizer,
        chunk_tokens=chunk_tokens,
        chunk_overlap=chunk_overlap,
        vector_index=vector_index,
    )
    if watch:
        with idx:
            follow(idx, paths, str(idx.location), wait, as_json)
        return
    with idx, ProgressBar(not as_json) as progress:
        report = idx.add(*paths, progress=progress, lock_timeout=wait)
    print_report(report, str(idx.location), as_json)
    if not report.ok:
        sys.exit(1)


def follow(idx: Index, paths: tuple[Path, ...], folder: str, wait: float, as_json: bool) -> None:
    """Index ``paths``, then print one line per update until Ctrl-C or SIGTERM."""
    bar = ProgressBar(not as_json)
    updates = idx.watch(*paths, progress=bar, lock_timeout=wait)
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        with bar:
            first = next(updates)
        print_report(first, folder, as_json, {"update": 0} if as_json else None)
        if not as_json:
            click.echo(f"watching {', '.join(map(str, paths))} for changes; Ctrl-C stops", err=True)
        for n, report in enumerate(updates, 1):
            if as_json:
                print_report(report, folder, True, {"update": n})
                continue
            for f in report.failed:
                click.echo(f"failed  {f.path}: {f.reason}", err=True)
            click.echo(
                f"updated: +{report.added} ~{report.updated} -{report.removed} "
                f"({counted(report.chunks, 'chunk')}) in {report.seconds:.1f} s"
            )
    except KeyboardInterrupt:
        click.echo("stopped watching", err=True)
    finally:
        updates.close()
        signal.signal(signal.SIGTERM, previous)


def _interrupt(signum: int, frame: object) -> NoReturn:
    raise KeyboardInterrupt


def print_report(
    report: IngestReport, folder: str, as_json: bool, extra: dict[str, Any] | None = None
) -> None:
    summary = report.to_dict()
    failures = summary.pop("failures")
    if as_json:
        click.echo(json.dumps({**(extra or {}), **summary, "index": folder, "failures": failures}))
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


class ProgressBar:
    """A progress bar on stderr while files are indexed (only on a terminal)."""

    def __init__(self, show: bool) -> None:
        self.show = show and sys.stderr.isatty()
        self.bar: Any = None
        self.done = 0

    def __enter__(self) -> ProgressBar:
        return self

    def __call__(self, progress: Progress) -> None:
        if not self.show:
            return
        if self.bar is None:
            self.bar = click.progressbar(
                length=progress.files_total, label="indexing", file=sys.stderr
            )
            self.bar.__enter__()
        self.bar.update(progress.files_done - self.done)
        self.done = progress.files_done

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.bar is not None:
            self.bar.__exit__(kind, exc, tb)


@click.command("rm")
@click.argument("targets", nargs=-1, required=True, metavar="PATH|DOC_ID...")
@index_option
@click.option("--wait", type=click.FloatRange(min=0), default=5.0, show_default=True,
              help="Seconds to wait for another process writing the index.")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@handle_errors
def rm(targets: tuple[str, ...], index_dir: str | None, wait: float, as_json: bool) -> None:
    """Remove documents from the index, by file, folder or document id.

    A file removes the documents read from it (it need not exist any more); a folder,
    every document under it. A target that names no indexed file by path is taken as
    a document id, as `rag search` shows it (for JSONL corpora, the line's id).
    Nothing is re-indexed. The files are forgotten too: the next `rag index` of their
    folder reads them again, so delete or move a file to keep it out. Exit status 1
    if a target matches nothing; the others are removed all the same.
    """
    with open_index(index_dir) as idx:
        report = idx.remove(targets, lock_timeout=wait)
    if as_json:
        click.echo(json.dumps(report.to_dict()))
    else:
        for target in report.unmatched:
            click.echo(f"no document or indexed file matches {target!r}", err=True)
        click.echo(
            f"removed {counted(len(report.documents), 'document')} "
            f"({counted(report.chunks, 'chunk')})"
        )
    if not report.ok:
        sys.exit(1)


@click.command()
@index_option
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@handle_errors
def status(index_dir: str | None, as_json: bool) -> None:
    """Show what is indexed, with which models and settings."""
    from dataclasses import asdict

    with open_index(index_dir) as idx:
        st = idx.status()
    data = asdict(st)
    if as_json:
        click.echo(json.dumps(data))
        return
    click.echo(f"index      {st.path} (format {st.format_version})")
    click.echo(f"documents  {st.documents} from {st.sources} files")
    click.echo(f"chunks     {st.chunks}")
    click.echo(f"vectors    {st.vector_index} index ({st.settings.vector_index} setting)")
    precision = " + ".join(st.embed_precision) or "nothing embedded yet"
    click.echo(f"embedder   {st.settings.embedder} ({precision})")
    click.echo(f"generator  {st.settings.generator}")
    click.echo(f"chunking   {st.settings.chunk_tokens} tokens, {st.settings.chunk_overlap} overlap")
    click.echo(f"tokenizer  {st.chunk_tokenizer}")
    click.echo(f"size       {mib(st.database_bytes)} database, {mib(st.vectors_bytes)} vectors")
    for root in st.roots:
        click.echo(f"root       {root}")


@click.command()
@index_option
@handle_errors
def check(index_dir: str | None) -> None:
    """Verify the index: database sound, every chunk has its vector, files agree."""
    with open_index(index_dir) as idx:
        problems = idx.check()
        counts = idx.store.counts()
        folder = str(idx.location)
    if problems:
        for p in problems:
            click.echo(f"problem: {p}", err=True)
        raise click.ClickException(
            f"the index at {folder} needs repair: rag repair --index {folder}"
        )
    click.echo(f"{folder}: ok ({counts['documents']} documents, {counts['chunks']} chunks)")


@click.command()
@index_option
@click.option("--wait", type=click.FloatRange(min=0), default=5.0, show_default=True,
              help="Seconds to wait for another process writing the index.")  # fmt: skip
@handle_errors
def repair(index_dir: str | None, wait: float) -> None:
    """Restore consistency: rebuild the vectors from the stored embeddings."""
    with open_index(index_dir) as idx:
        folder = str(idx.location)
        for line in idx.repair(lock_timeout=wait):
            click.echo(line)
        problems = idx.check()
    if problems:
        raise click.ClickException("still wrong after repair: " + "; ".join(problems))
    click.echo(f"{folder}: ok")


@click.command()
@click.argument("source", metavar="SRC")
@click.argument("destination", metavar="DST")
@click.option("--wait", type=click.FloatRange(min=0), default=5.0, show_default=True,
              help="Seconds to wait for another process writing SRC.")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@handle_errors
def copy(source: str, destination: str, wait: float, as_json: bool) -> None:
    """Copy an index to a new place, without embedding anything again.

    SRC and DST are index folders or postgresql:// URLs, either way round; DST must
    not hold an index yet. Its vectors (FAISS file or HNSW index) are built from the
    copied embeddings.
    """
    with open_index(source) as idx:
        report = idx.copy_to(destination, lock_timeout=wait)
    if as_json:
        click.echo(json.dumps(report.to_dict()))
        return
    click.echo(
        f"copied {counted(report.documents, 'document')} "
        f"({counted(report.chunks, 'chunk')}) from {report.source} to {report.destination} "
        f"in {report.seconds:.1f}s"
    )
