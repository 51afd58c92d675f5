"""`GET /embed`, a timeline view made to sit in an article's `<iframe>`, and `GET /oembed`, the
oEmbed answer that lets a content system (WordPress, Ghost) embed it from a page address.

The embed is the one page that may be framed, by the origins of EMBED_FRAME_ANCESTORS (any by
default); every other page keeps `frame-ancestors 'none'` and `X-Frame-Options: DENY`
(app/security.py). Like the page, it loads nothing from another origin: with `view=story` it is
TimelineJS, served from this process (app/static/vendor/timelinejs).
"""

import base64
import hashlib
from pathlib import Path as FilePath
from typing import Annotated, Any, Literal
from urllib.parse import parse_qsl

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, Response

from app.embed import service
from app.embed.schemas import OEmbed
from app.errors import NotFound
from app.hosts import base_url, public_url
from app.json import JSONBytes
from app.routing import StrictQueryRoute
from app.schemas import problem_responses

router = APIRouter(route_class=StrictQueryRoute)

VENDOR = FilePath(__file__).resolve().parent.parent / "static" / "vendor" / "timelinejs"
# TimelineJS 3.9.11 (MPL-2.0), copied from its npm package: the files its story view loads.
VENDOR_FILES = {
    "js/timeline.js": "text/javascript; charset=utf-8",
    "js/locale/en.json": "application/json",
    "css/timeline.css": "text/css; charset=utf-8",
    # The first format its stylesheet lists that browsers read.
    "css/icons/tl-icons.ttf": "font/ttf",
    "LICENSE": "text/plain; charset=utf-8",
}


# TimelineJS writes `onclick='void(0)'` into the links it makes of URLs in text: that exact
# handler, by its hash, and no other.
TIMELINEJS_HANDLER = (
    "'unsafe-hashes' 'sha256-"
    + base64.b64encode(hashlib.sha256(b"void(0)").digest()).decode()
    + "'"
)


def embed_policy(frame_ancestors: list[str], *, story: bool) -> str:
    # TimelineJS writes style attributes into the markup it builds, which only
    # 'unsafe-inline' allows; scripts stay this server's own in both views.
    styles = "'self' 'unsafe-inline'" if story else "'self'"
    scripts = f"'self' {TIMELINEJS_HANDLER}" if story else "'self'"
    return (
        f"default-src 'none'; script-src {scripts}; "
        f"style-src {styles}; font-src 'self'; connect-src 'self'; img-src 'self' data:; "
        "base-uri 'none'; form-action 'self'; "
        f"frame-ancestors {' '.join(frame_ancestors)}"
    )


@router.get("/embed", include_in_schema=False)
def embed(request: Request) -> HTMLResponse:
    """The view of any timeline address (the page's parameters), for an `<iframe>`."""
    params = request.query_params.multi_items()
    settings = request.app.state.settings
    body = service.embed_page(
        base_url(request.scope), public_url(request), params, licence=settings.data_licence
    )
    story = service.view_kind(params) == "story"
    return HTMLResponse(
        body,
        headers={
            "Content-Security-Policy": embed_policy(settings.embed_frame_ancestors, story=story),
            "Cache-Control": "no-cache",
        },
    )


@router.get(
    "/oembed",
    response_model=OEmbed,
    response_class=JSONBytes,
    tags=["Embeds"],
    summary="oEmbed: the embed snippet for a timeline address",
    responses={
        200: {"content": {"text/xml": {"schema": {"type": "string"}}}},
        # It reads no table: an address and its query string are all it needs.
        **problem_responses(404, 422, database=False),
    },
)
def oembed(
    request: Request,
    url: Annotated[
        str,
        Query(
            max_length=4000,
            description="An address of the timeline page (`/?…`) or of an embed (`/embed?…`) on"
            " this service; its filters, window and lanes are the embed's.",
            examples=["https://timeline.example.org/?between=MLI,DZA&from=2025-04&to=2025-04"],
        ),
    ],
    format: Annotated[
        Literal["json", "xml"],
        Query(description="`json`, or `xml` (the oEmbed specification's XML form)."),
    ] = "json",
    maxwidth: Annotated[
        int | None, Query(ge=1, le=10000, description="The widest the frame may be, in pixels.")
    ] = None,
    maxheight: Annotated[
        int | None, Query(ge=1, le=10000, description="The tallest the frame may be, in pixels.")
    ] = None,
) -> Response:
    """An oEmbed 1.0 `rich` answer (https://oembed.com/): an `<iframe>` of the embed for the
    address, no wider than `maxwidth` and no taller than `maxheight`, and a `<blockquote>`
    linking to the view with its attribution. Pages name it in a `<link rel="alternate"
    type="application/json+oembed">`, so content systems find it from the address alone."""
    base = base_url(request.scope)
    found = service.ours(url, base)
    if found is None:
        raise NotFound(
            f"{url!r} is not a timeline address of this service: give an address of {base}/"
            f" or {base}/embed."
        )
    answer: dict[str, Any] = service.oembed(
        base,
        parse_qsl(found[1], keep_blank_values=True),
        licence=request.app.state.settings.data_licence,
        maxwidth=maxwidth,
        maxheight=maxheight,
    )
    headers = {"Cache-Control": f"max-age={service.CACHE_AGE}"}
    if format == "xml":
        return Response(service.as_xml(answer), media_type="text/xml", headers=headers)
    return JSONBytes(answer, headers=headers)


@router.get("/static/vendor/timelinejs/{path:path}", include_in_schema=False)
def timelinejs_asset(path: Annotated[str, Path(max_length=60)]) -> FileResponse:
    if path not in VENDOR_FILES:
        raise NotFound(f"No TimelineJS file {path!r}.")
    return FileResponse(
        VENDOR / path, media_type=VENDOR_FILES[path], headers={"Cache-Control": "no-cache"}
    )
