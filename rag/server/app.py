"""The application: one opened index, its engines and the rules every request meets.

>>> index = Index.open("my-index")                                        # doctest: +SKIP
>>> app = create_app(index, load_generator(), ServeOptions(Path("up")))  # doctest: +SKIP
>>> uvicorn.run(app, host="127.0.0.1", port=8000)                        # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import HTMLResponse

from rag.index import Index
from rag.models.generation import Generator
from rag.server.chat import router as chat_api
from rag.server.documents import router as documents_api
from rag.server.errors import install as install_error_handlers
from rag.server.generation import Answers
from rag.server.guards import BearerToken, BodyLimit
from rag.server.query import router as query_api
from rag.server.searches import SearchBatcher

MIB = 1024 * 1024
# The page at /: one file, no build step, no asset from elsewhere.
PAGE = Path(__file__).parent / "static" / "index.html"


@dataclass(frozen=True)
class ServeOptions:
    """How the server treats requests.

    ``uploads`` is the folder uploaded files are saved in. With a ``token`` every request
    must carry ``Authorization: Bearer TOKEN``. A request body over ``max_body_bytes`` is
    refused (413). ``ask_queue`` answers may wait while one is generated.
    ``cors_origins`` may call the API from a browser; none by default.
    """

    uploads: Path
    token: str | None = None
    max_body_bytes: int = 50 * MIB
    ask_queue: int = 4
    cors_origins: tuple[str, ...] = ()
    model_id: str = "rag"


def create_app(index: Index, generator: Generator, options: ServeOptions) -> FastAPI:
    """The API over ``index``, answering with ``generator``; the caller closes the index."""
    app = FastAPI(
        title="rag",
        version=_version(),
        summary="Search and question answering over an index, with cited sources.",
        # the interactive pages load their scripts from a CDN: not for an offline tool
        docs_url=None,
        redoc_url=None,
    )
    answers = Answers(index, generator, options.ask_queue)
    searches = SearchBatcher(index)
    app.state.answers = answers
    app.router.on_shutdown.append(searches.close)
    install_error_handlers(app)
    app.include_router(query_api(index, searches, answers))
    app.include_router(documents_api(index, options.uploads))
    app.include_router(chat_api(answers, options.model_id))
    page = PAGE.read_text(encoding="utf-8")

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def home() -> str:
        """The page: ask, read the answer as it streams, open a citation's passage with
        the quote highlighted, list, upload and delete documents, see the status."""
        return page

    # the last one added sees a request first: CORS answers preflights without a token
    app.add_middleware(BodyLimit, limit=options.max_body_bytes)
    if options.token:
        app.add_middleware(BearerToken, token=options.token)
    if options.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(options.cors_origins),
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Authorization", "Content-Type"],
        )
    return app


def _version() -> str:
    try:
        return version("rag")
    except PackageNotFoundError:
        return "0"
