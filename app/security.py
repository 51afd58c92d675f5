"""Security headers, as a pure ASGI middleware.

Every response gets `X-Content-Type-Options: nosniff`, `X-Frame-Options: DENY` (except the
embed, `/embed`, which its own policy lets the sites of EMBED_FRAME_ANCESTORS frame) and
`Referrer-Policy: no-referrer`; the API's own answers also get a Content-Security-Policy that
allows nothing (a JSON body opened in a tab can load nothing and be framed by no one).

HTML pages (the timeline page at `/`, Swagger UI at /docs, ReDoc at /redoc) get a policy that
lets them work and nothing more: their own scripts and styles (fastapi-offline serves the
Swagger UI and ReDoc assets from this process), inline scripts only by their SHA-256 hash
(computed from the page itself, so the hashes follow a FastAPI upgrade), calls to this API only,
no framing, no plugins. A page that sets its own policy (the timeline page does) keeps it.
ReDoc is the one exception: it injects `<style>` elements at run time (styled-components), so
its page allows inline styles; scripts stay hash-only everywhere.

`Strict-Transport-Security` is sent only when the request came over HTTPS (directly, or through
a proxy that says so in `X-Forwarded-Proto`, which the Docker image trusts): browsers ignore it
over plain HTTP, and sending it from a development server on http://127.0.0.1 would be noise.
"""

import base64
import gzip
import hashlib
import re

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

HSTS = (b"strict-transport-security", b"max-age=31536000")
EVERY_RESPONSE = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
)
API_POLICY = (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'")
HTML_PAGES = (
    (
        b"permissions-policy",
        b"accelerometer=(), camera=(), geolocation=(), gyroscope=(), magnetometer=(),"
        b" microphone=(), payment=(), usb=()",
    ),
    # A page opened from another site cannot reach back into ours through window.opener.
    (b"cross-origin-opener-policy", b"same-origin"),
)
# Pages whose script injects <style> elements at run time (ReDoc's styled-components).
INLINE_STYLE_PATHS = frozenset({"/redoc"})
# Pages made to be framed by other sites, whose own policy says by which (app/embed).
FRAMEABLE_PATHS = frozenset({"/embed"})
NOT_FRAMEABLE = tuple(h for h in EVERY_RESPONSE if h[0] != b"x-frame-options")

_INLINE_SCRIPT = re.compile(rb"<script(?![^>]*\bsrc=)[^>]*>(.*?)</script>", re.S | re.I)
_INLINE_STYLE = re.compile(rb"<style[^>]*>(.*?)</style>", re.S | re.I)


def _hashes(pattern: re.Pattern[bytes], html: bytes) -> str:
    found = dict.fromkeys(
        "'sha256-" + base64.b64encode(hashlib.sha256(body).digest()).decode() + "'"
        for body in pattern.findall(html)
    )
    return "".join(" " + source for source in found)


def page_policy(html: bytes, *, inline_styles: bool) -> str:
    """The Content-Security-Policy for this HTML page."""
    styles = " 'unsafe-inline'" if inline_styles else _hashes(_INLINE_STYLE, html)
    return (
        "default-src 'none'; "
        f"script-src 'self'{_hashes(_INLINE_SCRIPT, html)}; "
        f"style-src 'self'{styles}; "
        "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; "
        # ReDoc runs its search index in a worker made from a Blob.
        "worker-src 'self' blob:; "
        "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        https = scope.get("scheme") == "https"
        held: Message | None = None
        chunks: list[bytes] = []

        async def secured(message: Message) -> None:
            nonlocal held
            if message["type"] == "http.response.start":
                # One pass over the raw list (Starlette lowercases names): this runs on every
                # response of the throughput benchmark.
                raw = list(message.get("headers", ()))
                has_policy = html = False
                for name, value in raw:
                    if name == b"content-security-policy":
                        has_policy = True
                    elif name == b"content-type":
                        html = value.startswith(b"text/html")
                raw.extend(NOT_FRAMEABLE if scope["path"] in FRAMEABLE_PATHS else EVERY_RESPONSE)
                if https:
                    raw.append(HSTS)
                if html:
                    raw.extend(HTML_PAGES)
                # A new message: the response cache replays the messages it keeps.
                message = {**message, "headers": raw}
                if has_policy or message["status"] == 304:
                    # A 304's headers update the stored response's (RFC 9111, 4.3.4): with no
                    # type of its own it would get the API's policy, which then replaced the
                    # page's in the browser and blocked every script of a revalidated page.
                    await send(message)
                elif html:
                    # The policy hashes the page's inline scripts: hold the start until the
                    # (small, never streamed) page has been read.
                    held = message
                else:
                    raw.append(API_POLICY)
                    await send(message)
                return
            if held is None or message["type"] != "http.response.body":
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body", False):
                return
            body = b"".join(chunks)
            headers = MutableHeaders(scope=held)
            # Compressed by GZipMiddleware, which runs inside this one.
            gzipped = bool(body) and headers.get("content-encoding") == "gzip"
            page = gzip.decompress(body) if gzipped else body
            headers["Content-Security-Policy"] = page_policy(
                page, inline_styles=scope["path"] in INLINE_STYLE_PATHS
            )
            await send(held)
            await send({"type": "http.response.body", "body": body})

        await self.app(scope, receive, secured)
