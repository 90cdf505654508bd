"""What every request passes before it reaches an endpoint: the token and the size limit.

Both are plain ASGI middleware, so they hold for every path, unknown ones included,
and a refused request never reaches the endpoints or their body parsing.
"""

from __future__ import annotations

import hmac

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rag.server.errors import TooLarge, error_response

# Open without a token: the page itself holds no data; its requests carry the token,
# which the page reads from its address (``/#token=TOKEN``), never sent to the server.
PUBLIC = frozenset({("GET", "/")})


class BearerToken:
    """Refuse (401) every request but the page's that lacks ``Authorization: Bearer
    TOKEN``."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self.expected = f"Bearer {token}".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope["headers"]).get(b"authorization", b"")
        public = (scope.get("method"), scope.get("path")) in PUBLIC
        if public or hmac.compare_digest(given, self.expected):
            await self.app(scope, receive, send)
            return
        why = "a wrong token" if given else "no token"
        response = error_response(
            401,
            f"the request carries {why}; send the header Authorization: Bearer TOKEN "
            "with the token the server was started with",
            "unauthorized",
            {"WWW-Authenticate": "Bearer"},
        )
        await response(scope, receive, send)


class BodyLimit:
    """Refuse (413) a request body over ``limit`` bytes: at once when its length is
    declared, else as soon as the bytes received pass the limit."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            response = error_response(413, str(TooLarge(self.limit).detail), "too_large")
            await response(scope, receive, send)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.limit:
                # raised inside the endpoint's body parsing: answered as a 413
                raise TooLarge(self.limit)
            return message

        await self.app(scope, counted, send)
