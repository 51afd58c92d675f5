"""CORS: reads open to every browser origin, writes only to the origins configured for them.

A public dataset is meant to be read from any newsroom's page, so GET and HEAD (and their
preflights) answer `Access-Control-Allow-Origin: *` (`CORS_ORIGINS`). Writes are another
matter: an editor key pasted into a page on some other site is a key that site can read, so
POST, PATCH and DELETE are not CORS-enabled unless their origin is listed in
`CORS_WRITE_ORIGINS` (empty by default): a browser's preflight for them is refused, and the
browser never sends the write. Servers and scripts, which do not use CORS, write as before.
No policy allows credentials: the API uses no cookies, and a key travels in `Authorization`,
which a page must set itself.

A refused preflight is a 403 problem saying which setting would allow it (browsers hide the
body from the page's script, but it shows in the network panel).
"""

from collections.abc import Sequence

from fastapi.middleware.cors import CORSMiddleware
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import problem

READS = ("GET", "HEAD")
WRITES = ("POST", "PATCH", "DELETE")


class Cors:
    def __init__(
        self,
        app: ASGIApp,
        *,
        read_origins: Sequence[str],
        write_origins: Sequence[str],
        expose_headers: Sequence[str],
        max_age: int = 600,
    ) -> None:
        self.app = app
        # Writes go through the write policy's preflight only; a listed write origin may read.
        self.reads = CORSMiddleware(
            app,
            allow_origins=[*read_origins, *write_origins],
            allow_methods=[*READS, "OPTIONS"],
            allow_headers=["*"],
            expose_headers=expose_headers,
            max_age=max_age,
        )
        self.writes = CORSMiddleware(
            app,
            allow_origins=write_origins,
            allow_methods=[*READS, "OPTIONS", *WRITES],
            allow_headers=["*"],
            expose_headers=expose_headers,
            max_age=max_age,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if all(name != b"origin" for name, _ in scope["headers"]):
            # Not a browser's cross-origin request: all either policy would do is add `Origin`
            # to `Vary`. Done here on the raw list, as Starlette does it, without building
            # Headers twice and a partial per request (most requests, every response-cache hit).
            await self.app(scope, receive, _vary_origin(send))
            return
        headers = Headers(scope=scope)
        origin = headers.get("origin")
        requested = headers.get("access-control-request-method")
        preflight = scope["method"] == "OPTIONS" and origin is not None and requested is not None
        method = (requested or "").upper() if preflight else scope["method"]
        policy = self.reads if method in READS or method == "OPTIONS" else self.writes
        if preflight and origin is not None and not policy.is_allowed_origin(origin):
            setting = "CORS_ORIGINS" if policy is self.reads else "CORS_WRITE_ORIGINS"
            response = problem(
                Request(scope),
                403,
                "cors-refused",
                "Cross-origin request refused",
                f"{method} requests from the origin {origin!r} are not enabled for browsers"
                f" (CORS). The operator can list the origin in {setting}; scripts and servers"
                " need no CORS and can call the API directly.",
            )
            await response(scope, receive, send)
            return
        await policy(scope, receive, send)


def _vary_origin(send: Send) -> Send:
    """`send` with `Origin` appended to the response's `Vary`, exactly as Starlette's
    CORSMiddleware does for a request without an `Origin`: every `Vary` joined into the first
    one's place, or one added at the end."""

    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            raw = message.get("headers", [])
            values = [value for name, value in raw if name == b"vary"]
            if not values:
                headers = [*raw, (b"vary", b"Origin")]
            else:
                joined: tuple[bytes, bytes] | None = (b"vary", b", ".join([*values, b"Origin"]))
                headers = []
                for name, value in raw:
                    if name != b"vary":
                        headers.append((name, value))
                    elif joined is not None:
                        headers.append(joined)
                        joined = None
            message = {**message, "headers": headers}
        await send(message)

    return wrapped
