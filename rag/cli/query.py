"""Commands that query an index: search and ask."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import click

from rag.cli.options import (
    handle_errors,
    indent,
    index_option,
    k_option,
    mode_option,
    open_index,
    read_jsonl,
    reranker_option,
    shorten,
    where_option,
)

if TYPE_CHECKING:
    from rag.types import Answer

# The fields of each hit in `search --queries` output, one line per query.
BATCH_HIT_FIELDS = ("doc_id", "score", "text")
# Questions retrieved together in `ask --questions`; answers print after each group.
BATCH_QUESTIONS = 32


@click.command()
@click.argument("query", required=False)
@index_option
@k_option(5)
@click.option(
    "--queries",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help='JSONL file of {"_id", "text"} queries: one JSON line of ranked documents each.',
)
@click.option("--embedder", help="Refuse to run unless the index was built with this embedder.")
@mode_option
@where_option
@reranker_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@handle_errors
def search(
    query: str | None,
    index_dir: str | None,
    k: int,
    queries: Path | None,
    embedder: str | None,
    mode: str,
    where: tuple[str, ...],
    reranker: str | None,
    as_json: bool,
) -> None:
    """Show the passages that best match QUERY (or rank documents for --queries)."""
    from rag.types import Where

    if (query is None) == (queries is None):
        raise click.UsageError("give either a QUERY or --queries FILE")
    condition = Where.parse(where)
    with open_index(index_dir, embedder, reranker) as idx:
        if queries is not None:
            rows = list(read_jsonl(queries, "_id", "text"))
            results = idx.search_documents([text for _, text in rows], k, mode, condition)
            for (qid, _), hits in zip(rows, results):
                click.echo(
                    json.dumps(
                        {
                            "query_id": qid,
                            "hits": [
                                {f: v for f, v in h.to_dict().items() if f in BATCH_HIT_FIELDS}
                                for h in hits
                            ],
                        }
                    )
                )
            return
        assert query is not None
        hits = idx.search(query, k, mode, condition)
        if as_json:
            click.echo(json.dumps({"query": query, "hits": [h.to_dict() for h in hits]}))
            return
        if not hits:
            click.echo(
                "no results" + (" match the filter" if condition else ": the index is empty")
            )
        for rank, h in enumerate(hits, 1):
            click.secho(f"{rank}. {h.location}  score {h.score:.3f}", bold=True)
            if h.heading:
                click.echo(f"   {h.heading}")
            click.echo(indent(shorten(h.text, 400)))


@click.command()
@click.argument("question", required=False)
@index_option
@k_option(3)
@click.option(
    "--questions",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help='JSONL file of {"id", "question"}: one JSON answer line each.',
)
@click.option("--generator", help="Generator model: a packaged name, a folder, or a hub name.")
@click.option("--max-new-tokens", type=click.IntRange(min=1), default=48, show_default=True)
@mode_option
@where_option
@reranker_option
@click.option(
    "--answer-mode",
    type=click.Choice(["extractive", "generative"]),
    default="extractive",
    show_default=True,
    help="Copy a short answer span from the passages, or let the model write a longer one.",
)
@click.option(
    "--span-reader",
    type=click.Choice(["generator", "finder"]),
    default=None,
    help="Who reads a short answer from the best sentence: the generator (default), or "
    "the answer-finder (no generator loads: faster, terser answers).",
)
@click.option(
    "--min-confidence",
    type=click.FloatRange(0.0, 1.0),
    default=None,
    help="Abstain below this confidence (default: the calibrated 0.29; 0 never abstains).",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print {answer, mode, citations, passages, abstained, confidence, ...}.",
)
@handle_errors
def ask(
    question: str | None,
    index_dir: str | None,
    k: int,
    questions: Path | None,
    generator: str | None,
    max_new_tokens: int,
    mode: str,
    where: tuple[str, ...],
    reranker: str | None,
    answer_mode: str,
    span_reader: str | None,
    min_confidence: float | None,
    as_json: bool,
) -> None:
    """Answer QUESTION from the indexed documents, citing the passages used.

    When the documents do not seem to hold the answer, says so and shows the closest
    passages instead.
    """
    from rag.answer.confidence import MIN_CONFIDENCE
    from rag.answer.engine import QueryEngine
    from rag.types import Where

    if (question is None) == (questions is None):
        raise click.UsageError("give either a QUESTION or --questions FILE")
    condition = Where.parse(where)
    with open_index(index_dir, reranker=reranker) as idx:
        engine = QueryEngine(
            idx,
            generator,
            k=k,
            max_new_tokens=max_new_tokens,
            search_mode=mode,
            where=condition,
            answer_mode=answer_mode,
            min_confidence=MIN_CONFIDENCE if min_confidence is None else min_confidence,
            span_reader=span_reader,
        )
        _ = engine.generator  # a bad generator name fails now, whatever the questions
        if questions is not None:
            rows = list(read_jsonl(questions, "id", "question"))
            for start in range(0, len(rows), BATCH_QUESTIONS):
                group = rows[start : start + BATCH_QUESTIONS]
                for (qid, _), answer in zip(group, engine.ask_batch([q for _, q in group])):
                    click.echo(json.dumps({"id": qid, **answer.to_dict()}))
            return
        assert question is not None
        if as_json:
            click.echo(json.dumps(engine.ask(question).to_dict()))
            return
        answer = engine.ask(question, on_token=lambda t: click.echo(t, nl=False))
        _print_answer(answer)


def _marked(answer: Answer) -> str:
    """The sentence a short answer came from, on one line, with the answer in «»."""
    from rag.text import find_span, squeeze

    sentence = answer.sentences[0].text
    found = find_span(answer.generated, sentence)
    if found is not None:
        a, b = found
        sentence = f"{sentence[:a]}«{sentence[a:b]}»{sentence[b:]}"
    return squeeze(sentence)


def _print_answer(answer: Answer) -> None:
    from rag.answer.engine import NOT_FOUND

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
    if answer.shape == "factoid" and answer.sentences:
        click.echo(f"\nfrom [{answer.sentences[0].n}]: {_marked(answer)}")
    click.echo("\nSources:")
    cited = {c.n: c for c in answer.citations}
    for n, p in enumerate(answer.passages, 1):
        c = cited.get(n)
        mark = "*" if c else " "
        quote = f"  answer at line {c.quote_line}" if c and c.quote_line else ""
        heading = f"  ({p.heading})" if p.heading else ""
        click.echo(f"{mark}[{n}] {p.location}{heading}{quote}")
