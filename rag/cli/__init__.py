"""The ``rag`` command line: index, rm, search, ask, status, check, repair, copy, serve.

A front end: it parses options, calls the library and prints. Heavy modules (torch,
transformers, faiss) are imported inside the commands, so ``rag --help`` starts
fast. Library errors become one-line messages here. May import every package of
``rag``; nothing imports it.
"""

from __future__ import annotations

import logging

import click

from rag.cli.build import check, copy, index, repair, rm, status
from rag.cli.query import BATCH_QUESTIONS, ask, search
from rag.cli.serve import serve

__all__ = ["BATCH_QUESTIONS", "cli", "main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="rag")
@click.option("-v", "--verbose", count=True, help="Log progress (-v) or everything (-vv).")
def cli(verbose: int) -> None:
    """Index your documents and ask questions about them, offline, with cited sources."""
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")


for command in (index, rm, search, ask, status, check, repair, copy, serve):
    cli.add_command(command)


def main() -> None:
    cli(prog_name="rag")
