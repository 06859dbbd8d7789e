"""What ``insvp serve`` checks before an application route reads a byte of the body: the token and the body's size.

An ASGI middleware, so that a request without the token, or with a body over the limit, costs no upload: a
``Content-Length`` over the limit is refused at once, and a body without one (chunked) is counted as it arrives and
refused as soon as it passes the limit.
"""

from __future__ import annotations

import secrets
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse

COOKIE = "insvp_token"  # the page's token, set by GET /?token=TOKEN
OPEN_PATHS = ("/health",)


def one_line(text: str) -> str:
    """``text`` with every run of white space (line breaks included) as one space."""
    return " ".join(str(text).split())


class BodyTooLarge(HTTPException):
    """A body that passed the upload limit while it was read (an HTTPException, so FastAPI answers it as it is)."""

    def __init__(self, limit: int):
        super().__init__(413, f"the request body is over the upload limit of {limit / 2**20:g} MiB (--max-upload)")


class Guard:
    """The token (when one is set) on every route but ``/health``, and the upload limit on every body.

    The token is accepted as ``Authorization: Bearer TOKEN``, as the cookie :data:`COOKIE` (which ``GET /?token=``
    sets for the page), or as ``?token=`` on ``GET /`` itself.

    Args:
        app: the application.
        token: the token; ``None``: none is required.
        max_body: the largest body in bytes.
    """

    def __init__(self, app: Any, token: str | None, max_body: int):
        self.app, self.token, self.max_body = app, token, max_body

    def authorized(self, request: Request) -> bool:
        scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
        given = [credentials.strip()] if scheme.lower() == "bearer" else []
        given.append(request.cookies.get(COOKIE, ""))
        if request.url.path == "/" and request.method == "GET":
            given.append(request.query_params.get("token", ""))
        expected = self.token.encode()
        return any(secrets.compare_digest(g.encode(), expected) for g in given if g)

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        request = Request(scope)
        if self.token and scope["path"] not in OPEN_PATHS and not self.authorized(request):
            message = ("missing or wrong token: send the header 'Authorization: Bearer TOKEN' (a browser: open "
                       "/?token=TOKEN once)")
            response = JSONResponse({"detail": message}, status_code=401, headers={"WWW-Authenticate": "Bearer"})
            return await response(scope, receive, send)
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_body):
            problem = (BodyTooLarge(self.max_body) if length.isdigit() else
                       HTTPException(400, f"Content-Length {length!r} is not a number of bytes"))
            response = JSONResponse({"detail": problem.detail}, status_code=problem.status_code)
            return await response(scope, receive, send)
        received = 0

        async def limited() -> dict:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body:
                    raise BodyTooLarge(self.max_body)
            return message

        await self.app(scope, limited, send)
