"""HTTP behaviour for frontends: strong ETags, 304s, Cache-Control, deprecation headers.

A pure ASGI middleware rather than BaseHTTPMiddleware: it buffers only complete, non-streamed
GET bodies (those with a Content-Length), so streamed exports pass straight through.
"""

from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any

import xxhash
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

READ_CACHE_CONTROL = "public, max-age=60, stale-while-revalidate=300"
NO_STORE = "no-store"
PRIVATE_PREFIXES = ("/v1/keys", "/v1/webhook", "/v1/audit", "/v1/archive")
# Starlette's default, 9, takes longer to compress a page than to build it, and slows a CSV
# export; level 1 is several times faster for output only a little larger than level 4's
# (figures in bench/README.md). Exports rendered in processes of their own compress there, at
# the same level (app/timeline/renderers.py).
GZIP_LEVEL = 1
GZIP_MINIMUM_BYTES = 1024


@dataclass(frozen=True, slots=True)
class Deprecation:
    """Announced for a path prefix: RFC 9745 `Deprecation` and RFC 8594 `Sunset` headers."""

    prefix: str
    deprecated_at: str  # an IMF-fixdate, e.g. "Sun, 01 Mar 2026 00:00:00 GMT"
    sunset_at: str | None = None
    link: str | None = None


def content_etag(body: bytes, version_tag: str | None) -> str:
    # An ETag only has to change when the body does; it guards nothing, so it needs no
    # cryptographic hash. xxh3 is far faster than blake2b (bench/README.md), and this runs on
    # the event loop for every 200.
    digest = xxhash.xxh3_64_hexdigest(body)
    # A resource's own ETag is its version, which If-Match checks. Its representation can also
    # change without a new version (another event starts linking to it), so the served ETag
    # carries both: "<version>-<hash>". app/web.py reads the version part back.
    if version_tag:
        return f'"{version_tag.strip(chr(34))}-{digest}"'
    return f'"{digest}"'


def _matches(if_none_match: str, etag: str) -> bool:
    if if_none_match == etag:
        return True
    if if_none_match.strip() == "*":
        return True
    candidates = [tag.strip().removeprefix("W/") for tag in if_none_match.split(",")]
    return etag in candidates


def _not_modified_since(since: str | None, last_modified: str | None) -> bool:
    if since is None or last_modified is None:
        return False
    try:
        return parsedate_to_datetime(last_modified) <= parsedate_to_datetime(since)
    except (TypeError, ValueError):
        return False


NOT_MODIFIED_KEEPS = frozenset({"etag", "cache-control", "last-modified", "vary", "link"})


def is_not_modified(
    if_none_match: str | None,
    if_modified_since: str | None,
    etag: str | None,
    last_modified: str | None,
) -> bool:
    """Whether a conditional GET may be answered 304 for a 200 with this ETag and
    Last-Modified: If-None-Match decides when it is sent (RFC 9110, 13.2.2)."""
    if if_none_match is not None:
        return etag is not None and _matches(if_none_match, etag)
    return _not_modified_since(if_modified_since, last_modified)


def not_modified(request_headers: Headers, response_headers: Headers) -> bool:
    """Whether a conditional GET may be answered 304 for this 200 response."""
    return is_not_modified(
        request_headers.get("if-none-match"),
        request_headers.get("if-modified-since"),
        response_headers.get("etag"),
        response_headers.get("last-modified"),
    )


def not_modified_headers(response_headers: Headers) -> list[tuple[bytes, bytes]]:
    return [
        (k.encode("latin-1"), v.encode("latin-1"))
        for k, v in response_headers.items()
        if k.lower() in NOT_MODIFIED_KEEPS
    ]


class HttpCaching:
    def __init__(
        self,
        app: ASGIApp,
        deprecations: tuple[Deprecation, ...] = (),
        *,
        compressed_from: int | None = None,
    ) -> None:
        self.app = app
        self.deprecations = deprecations
        # A 304 carries the Vary its 200 would have had (RFC 9110, 15.4.5). GZipMiddleware,
        # outside this one, adds Accept-Encoding to bodies of at least this size, and never to
        # an empty 304; the response cache replays the 200's own, so both 304s are alike.
        self.compressed_from = compressed_from

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method = scope["method"]
        path: str = scope["path"]
        request_headers = Headers(scope=scope)
        deprecation = next((d for d in self.deprecations if path.startswith(d.prefix)), None)
        cacheable = method in ("GET", "HEAD")
        start: Message | None = None
        chunks: list[bytes] = []

        def decorate(headers: MutableHeaders, status: int) -> None:
            if deprecation is not None:
                headers["Deprecation"] = deprecation.deprecated_at
                if deprecation.sunset_at:
                    headers["Sunset"] = deprecation.sunset_at
                if deprecation.link:
                    headers.append("Link", f'<{deprecation.link}>; rel="deprecation"')
            if "cache-control" in headers:
                return
            if not cacheable or path.startswith(PRIVATE_PREFIXES) or status >= 400:
                headers["Cache-Control"] = NO_STORE
            else:
                headers["Cache-Control"] = READ_CACHE_CONTROL

        async def wrapped(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                decorate(headers, message["status"])
                buffer = cacheable and message["status"] == 200 and "content-length" in headers
                if not buffer:
                    await send(message)
                    return
                start = message
                return
            if start is None:
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body", False):
                return
            await self._finish(start, b"".join(chunks), request_headers, send)

        await self.app(scope, receive, wrapped)

    async def _finish(
        self, start: Message, body: bytes, request_headers: Headers, send: Send
    ) -> None:
        headers = MutableHeaders(scope=start)
        headers["ETag"] = content_etag(body, headers.get("etag"))
        if not_modified(request_headers, headers):
            kept = MutableHeaders(raw=not_modified_headers(headers))
            if self.compressed_from is not None and len(body) >= self.compressed_from:
                kept.add_vary_header("Accept-Encoding")
            reply: dict[str, Any] = {
                "type": "http.response.start",
                "status": 304,
                "headers": kept.raw,
            }
            await send(reply)
            await send({"type": "http.response.body", "body": b""})
            return
        await send(start)
        await send({"type": "http.response.body", "body": body})
