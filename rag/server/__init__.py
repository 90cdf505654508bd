"""The HTTP API over one index: ``rag serve`` (FastAPI on uvicorn).

A front end, like the command line: it turns requests into library calls and library
errors into JSON error responses. ``app`` builds the application from an opened
index; ``schemas`` holds the request bodies, ``errors`` the error responses,
``guards`` the token check and the body-size limit, ``generation`` the queue that lets
one answer be generated at a time, ``query`` search, ask and status, ``documents``
listing, upload, removal and source text, ``chat`` the OpenAI-compatible endpoints.
May import every package of ``rag`` except ``rag.cli``; only ``rag.cli`` imports it.
"""

from __future__ import annotations

from rag.server.app import ServeOptions, create_app

__all__ = ["ServeOptions", "create_app"]
