"""The embed page and its oEmbed answer, built from a timeline address.

An address of the page (`/?…`) or of the embed (`/embed?…`) carries the timeline's filters by the
API's names plus the page's own state (`event`, `lanes`, `zoom`, and `view=story` on the embed);
the embed shows the same view, so an address turns into the other by its path alone.
"""

import html
from string import Template
from typing import Any
from urllib.parse import urlencode, urlsplit
from xml.sax.saxutils import escape as xml_escape

from pydantic import ValidationError

from app.config import PROJECT_ROOT
from app.timeline.formats import NAME, query_title
from app.timeline.schemas import TimelineQuery

TEMPLATE = Template((PROJECT_ROOT / "app" / "static" / "embed.html").read_text("utf-8"))
# Query parameters that are the page's, not filters.
PAGE_STATE = frozenset({"event", "lanes", "zoom", "view"})
# The paths whose addresses embed: the page and the embed itself.
EMBEDDABLE = frozenset({"/", "/embed"})
LISTS = frozenset(name for name, field in TimelineQuery.model_fields.items() if field.default == [])
# Sizes of the frame: the drawn timeline's lanes, or TimelineJS's slides, need the room.
SIZES = {"drawn": (800, 600), "story": (800, 650)}
CACHE_AGE = 3600


def view_title(params: list[tuple[str, str]]) -> str:
    """The name of the view these query parameters show, from its filters; the service's name
    when they are not valid filters (the embed itself shows the API's answer)."""
    data: dict[str, Any] = {}
    for name, value in params:
        if name in PAGE_STATE or not value.strip():
            continue
        key = "from_" if name == "from" else name
        if key in LISTS:
            data.setdefault(key, []).append(value)
        else:
            data[key] = value
    try:
        return query_title(TimelineQuery.model_validate(data))
    except ValidationError:
        return NAME


def view_kind(params: list[tuple[str, str]]) -> str:
    return "story" if ("view", "story") in params else "drawn"


def ours(url: str, base: str) -> tuple[str, str] | None:
    """The path and query of `url` when it is an address of this service's page or embed."""
    parts = urlsplit(url.strip())
    root = urlsplit(base)
    if parts.scheme not in ("http", "https") or parts.netloc.lower() != root.netloc.lower():
        return None
    path = parts.path or "/"
    prefix = root.path.rstrip("/")
    if prefix:
        if not path.startswith(prefix):
            return None
        path = path[len(prefix) :] or "/"
    if path not in EMBEDDABLE:
        return None
    return path, parts.query


def addresses(base: str, params: list[tuple[str, str]]) -> tuple[str, str]:
    """The embed's address and the full page's for one view."""
    page = [(k, v) for k, v in params if k != "view"]
    query = urlencode(params, safe=",")
    return (
        f"{base}/embed" + (f"?{query}" if query else ""),
        f"{base}/" + (f"?{urlencode(page, safe=',')}" if page else ""),
    )


def oembed(
    base: str,
    params: list[tuple[str, str]],
    *,
    licence: str,
    maxwidth: int | None,
    maxheight: int | None,
) -> dict[str, Any]:
    """The oEmbed `rich` answer for a view: its embed in a frame of the requested size at most,
    and a quotation that links to it and names the source and the licence."""
    width, height = SIZES[view_kind(params)]
    if maxwidth is not None:
        width = min(width, maxwidth)
    if maxheight is not None:
        height = min(height, maxheight)
    title = view_title(params)
    embed, page = addresses(base, params)
    e = html.escape
    snippet = (
        f'<iframe src="{e(embed)}" width="{width}" height="{height}" title="{e(title)}"'
        ' frameborder="0" loading="lazy"></iframe>'
        f'<blockquote><a href="{e(page)}">{e(title)}</a> (data {e(licence)};'
        " each event cites its sources)</blockquote>"
    )
    return {
        "type": "rich",
        "version": "1.0",
        "title": title,
        "provider_name": NAME,
        "provider_url": f"{base}/",
        "html": snippet,
        "width": width,
        "height": height,
        "cache_age": CACHE_AGE,
    }


def as_xml(answer: dict[str, Any]) -> bytes:
    """The answer in the oEmbed specification's XML form: an `oembed` element with one child
    per field."""
    fields = "".join(f"<{k}>{xml_escape(str(v))}</{k}>" for k, v in answer.items())
    return (
        f'<?xml version="1.0" encoding="utf-8" standalone="yes"?><oembed>{fields}</oembed>'.encode()
    )


def discovery_link(base: str, address: str) -> str:
    """The `<link>` that lets a content system find the oEmbed answer for this address."""
    href = f"{base}/oembed?{urlencode({'url': address, 'format': 'json'})}"
    return (
        f'<link rel="alternate" type="application/json+oembed" href="{html.escape(href)}"'
        ' title="oEmbed">'
    )


def embed_page(base: str, address: str, params: list[tuple[str, str]], *, licence: str) -> str:
    title = view_title(params)
    _, page = addresses(base, params)
    story = view_kind(params) == "story"
    e = html.escape
    head = (
        '<link rel="stylesheet" href="/static/vendor/timelinejs/css/timeline.css">\n'
        '  <script src="/static/vendor/timelinejs/js/timeline.js" defer></script>'
        if story
        else '<script src="/static/timeline.js" defer></script>'
    )
    return TEMPLATE.substitute(
        title=e(title),
        page=e(page),
        licence=e(licence),
        view="story" if story else "drawn",
        head=head,
        oembed=discovery_link(base, address),
    )
