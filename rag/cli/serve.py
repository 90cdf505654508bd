"""The command that serves an index over HTTP: ``rag serve``."""

from __future__ import annotations

import ipaddress
import logging
import signal
from pathlib import Path

import click

from rag.cli.options import handle_errors, index_option, open_index, resolve_index_dir
from rag.storage.location import is_url


def is_loopback(host: str) -> bool:
    """Whether ``host`` only accepts connections from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to any address


@click.command()
@index_option
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; any but this machine's needs --token.")  # fmt: skip
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True,
              help="Port to listen on.")  # fmt: skip
@click.option("--token", envvar="RAG_API_TOKEN", metavar="TOKEN",
              help="Every request must send Authorization: Bearer TOKEN. Default: "
              "$RAG_API_TOKEN, which other users cannot read in the process list.")  # fmt: skip
@click.option("--uploads", type=click.Path(file_okay=False, path_type=Path), metavar="FOLDER",
              help="Where uploaded files are saved and indexed from. Default: "
              "INDEX/uploads (required for a PostgreSQL index).")  # fmt: skip
@click.option("--max-upload-mb", type=click.FloatRange(min=0, min_open=True), default=50.0,
              show_default=True, help="Refuse request bodies larger than this (413).")  # fmt: skip
@click.option("--ask-queue", type=click.IntRange(min=0), default=4, show_default=True,
              help="Answers that may wait while one is generated; more get 503.")  # fmt: skip
@click.option("--generator", help="Generator model: a packaged name, a folder, or a hub name.")
@click.option("--cors-origin", "cors_origins", multiple=True, metavar="ORIGIN",
              help="Let pages from this origin call the API (e.g. http://localhost:3000). "
              "Repeatable; none by default.")  # fmt: skip
@handle_errors
def serve(
    index_dir: str | None,
    host: str,
    port: int,
    token: str | None,
    uploads: Path | None,
    max_upload_mb: float,
    ask_queue: int,
    generator: str | None,
    cors_origins: tuple[str, ...],
) -> None:
    """Serve the index over HTTP: search, ask, documents, and OpenAI-style chat.

    The API is described at http://HOST:PORT/openapi.json. Models load once,
    at start. Searches run side by side; one answer is generated at a time, with
    --ask-queue more waiting. Ctrl-C or SIGTERM stops the server once the requests in
    flight are done (an upload being indexed finishes first).
    """
    if not is_loopback(host) and not token:
        raise click.ClickException(
            f"--host {host} lets other machines reach the index: give --token TOKEN "
            "(or set RAG_API_TOKEN), which every request must then send"
        )
    if uploads is None and is_url(resolve_index_dir(index_dir)):
        raise click.UsageError("an index in PostgreSQL keeps no files: give --uploads FOLDER")
    import uvicorn

    from rag.models.registry import load_generator
    from rag.server import ServeOptions, create_app

    with open_index(index_dir) as idx:
        if uploads is None:
            assert idx.path is not None  # a PostgreSQL index without --uploads is refused above
            uploads = idx.path / "uploads"
        options = ServeOptions(
            uploads=uploads,
            token=token,
            max_body_bytes=int(max_upload_mb * 1024 * 1024),
            ask_queue=ask_queue,
            cors_origins=cors_origins,
        )
        model = load_generator(generator or idx.settings.generator)
        app = create_app(idx, model, options)
        idx.embedder.embed(["warm up"])  # load the models now, not at the first request
        app.state.answers.warm_up()
        click.echo(f"serving {idx.location} at http://{host}:{port} (Ctrl-C stops)", err=True)
        quiet = not logging.getLogger().isEnabledFor(logging.INFO)
        # uvicorn stops on Ctrl-C or SIGTERM once the requests in flight are done, then
        # raises the signal again for the handler it found: a no-op, so the command ends
        # normally (exit status 0) and the index is closed
        found = {s: signal.signal(s, _stopped) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            uvicorn.run(
                app, host=host, port=port, log_level="warning" if quiet else "info",
                access_log=not quiet,
            )  # fmt: skip
        finally:
            for s, handler in found.items():
                signal.signal(s, handler)
        click.echo("stopped serving", err=True)


def _stopped(signum: int, frame: object) -> None:
    pass
