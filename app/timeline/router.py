import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from email.utils import format_datetime
from typing import Annotated, Any
from urllib.parse import parse_qsl, urlencode

import orjson
from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send

from app.db import EXPORT_SHARE, DatabaseThreads, SessionDep, transaction
from app.errors import InvalidParameter
from app.hosts import base_url, public_url
from app.json import JSONBytes
from app.routing import QueryModelRoute, StrictQueryRoute
from app.schemas import problem_responses
from app.timeline import formats, service, timelinejs
from app.timeline.inline import PLAIN_FIELDS, InlinePages
from app.timeline.renderers import Chunks, Export, Renderers, in_thread
from app.timeline.schemas import (
    Facets,
    FacetsQuery,
    TimelineJSDocument,
    TimelinePage,
    TimelineQuery,
)

router = APIRouter(prefix="/v1/timeline", tags=["Timeline"], route_class=StrictQueryRoute)
# Parameters of the export itself, not of the query a feed's page shows.
PAGE_ONLY = {"format", "limit", "cursor", "count", "group_by", "order"}


# A JSON body, so it is documented (and checked by schema validators) as an object.
GEOJSON: dict[str, Any] = {
    "type": "object",
    "required": ["type", "features"],
    "properties": {
        "type": {"const": "FeatureCollection"},
        "features": {
            "type": "array",
            "items": {"type": "object"},
            "description": "One feature per matching event; an event without coordinates has"
            " `geometry: null` (RFC 7946, 3.2).",
        },
    },
}
FORMAT_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The page as JSON, or the whole query in the format asked for.",
        # application/json keeps the page's schema (TimelineJS output shares the media type).
        "content": {
            media.split(";")[0]: {"schema": GEOJSON if "geo+json" in media else {"type": "string"}}
            for media in formats.MEDIA_TYPES.values()
            if not media.startswith("application/json")
        },
    },
    **problem_responses(422),
}


async def get_timeline(request: Request, query: Annotated[TimelineQuery, Query()]) -> Response:
    """Events in date order, filtered and paged.

    Every event carries its participants with their roles, its location, its sources and the
    claims of each party where facts are contested. Pages follow an opaque keyset cursor: the
    `next` link (also in the `Link` header) keeps every other parameter.

    Examples: every ambassador recall involving Algeria is
    `?state=DZA&category=ambassador_recall`; the April 2025 crisis is `?from=2025-04&to=2025-04`.
    """
    # The hot path (issue 7): the whole transaction in one trip to a database thread
    # (`DatabaseThreads`). A sync endpoint with SessionDep makes three (session in, endpoint,
    # session out), and each trip costs as much as reading the page (bench/README.md). SQLite's
    # plain page never gets here: PlainPages answers it below the middlewares.
    fmt = _format(request, query)
    threads: DatabaseThreads = request.app.state.db_threads
    return await threads.run(_timeline, request, query, fmt)


def _format(request: Request, query: TimelineQuery) -> str:
    return query.format or formats.negotiate(request.headers.get("accept"))


router.add_api_route(
    "",
    get_timeline,
    methods=["GET"],
    # A page, or with format=timelinejs the TimelineJS document (same media type).
    response_model=TimelinePage | TimelineJSDocument,
    response_class=JSONBytes,
    responses=FORMAT_RESPONSES,
    # The hot path (issue 7): the query string validated in one call, not field by field.
    route_class_override=QueryModelRoute,
)


def _timeline(request: Request, query: TimelineQuery, fmt: str) -> Response:
    with transaction(request.app.state.session_factory, write=False) as session:
        if fmt != "json":
            return _export(request, session, query, fmt)
        return _page(request, session, query)


def _page(request: Request, session: SessionDep, query: TimelineQuery) -> Response:
    settings = request.app.state.settings
    result = service.page(session, query, cursor_secret=settings.cursor_secret)
    return _page_response(request, query, result)


def _page_response(
    request: Request,
    query: TimelineQuery,
    result: service.Page,
    pairs: list[tuple[str, str]] | None = None,
) -> Response:
    """The page's response, the same whichever path read it; `pairs` are the query string's,
    where the caller has parsed them already."""
    next_url = None
    headers = {}
    if result.changed_at is not None:
        headers["Last-Modified"] = format_datetime(result.changed_at, usegmt=True)
    if result.next_cursor is not None:
        if pairs is None:
            pairs = parse_qsl(request.scope["query_string"].decode(), keep_blank_values=True)
        next_url = public_url(request, query=_with_cursor(pairs, result.next_cursor))
        headers["Link"] = f'<{next_url}>; rel="next"'
    body: dict[str, object] = {
        "items": result.items,
        "next_cursor": result.next_cursor,
        "links": {"next": next_url},
    }
    if result.total is not None:
        body["total"] = result.total
    return JSONBytes(body, headers=headers)


def _with_cursor(pairs: list[tuple[str, str]], cursor: str) -> str:
    """A query string's parameters with `cursor` set, every other one kept in its order: what
    Starlette's `URL.include_query_params` gives, without building two URLs to get it."""
    return urlencode([*(pair for pair in pairs if pair[0] != "cursor"), ("cursor", cursor)])


class PlainPages:
    """SQLite's plain page (app/timeline/inline.py), answered below every middleware and above
    the router.

    With the read itself on the event loop, what is left of such a request is mostly the
    framework's: matching the routes, a Request, FastAPI's handler and its exception layers, the
    query model's validation field by field. None of that can change this page's answer, so this
    layer, the innermost middleware, takes the requests whose query string names only the plain
    page's parameters, each once, validates them with the route's own model, reads the page
    through `InlinePages` and builds the response with the route's own function. The
    middlewares outside (ETags, CORS, limits, the response cache, gzip, the request id and the
    access log) see that response as they would the route's. Anything else, and any request
    this layer cannot answer exactly as the route would (an invalid value, a bad cursor, another
    format, an unknown state, a page the inline read hands back), goes on to the router
    untouched, which answers it, problems included (tests/test_inline_page.py compares both).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET" and _routed(scope) == PAGE_PATH:
            response = _plain_page(scope)
            if response is not None:
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


PAGE_PATH = "/v1/timeline"
# The query string's names of the fields InlinePages answers (its PLAIN_FIELDS).
PLAIN_PARAMETERS = frozenset(
    TimelineQuery.model_fields[name].alias or name for name in PLAIN_FIELDS
)


def _routed(scope: Scope) -> str:
    """The path the router would match: the request's, without the root path it is mounted at."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path


def _plain_page(scope: Scope) -> Response | None:
    app = scope["app"]
    inline: InlinePages | None = app.state.inline_pages
    if inline is None:
        return None
    try:
        pairs = parse_qsl(scope["query_string"].decode(), keep_blank_values=True)
    except UnicodeDecodeError:
        return None
    data: dict[str, Any] = dict(pairs)
    if len(data) != len(pairs) or not data.keys() <= PLAIN_PARAMETERS:
        return None
    if "state" in data:
        data["state"] = [data["state"]]
    try:
        query = TimelineQuery.model_validate(data)
    except ValidationError:
        return None
    request = Request(scope)
    if _format(request, query) != "json":
        return None
    try:
        result = inline.page(query, cursor_secret=app.state.settings.cursor_secret)
    except InvalidParameter:
        return None
    if result is None:
        return None
    return _page_response(request, query, result, pairs)


@router.get("/facets", response_model=Facets, responses=problem_responses(422))
async def get_facets(request: Request, query: Annotated[FacetsQuery, Query()]) -> dict[str, Any]:
    """How the events matching the timeline filters are distributed: counts per kind, category,
    state, organisation and month (or year), for charts. Paging parameters are ignored."""
    # On `DatabaseThreads`, like pages: as a heavy request its grouping runs on threads of its
    # own there (app.db.HEAVY), never on the one SQLite pages wait for.
    threads: DatabaseThreads = request.app.state.db_threads
    return await threads.run(_facets, request, query)


def _facets(request: Request, query: FacetsQuery) -> dict[str, Any]:
    with transaction(request.app.state.session_factory, write=False) as session:
        return service.facets(session, query)


def _export(request: Request, session: SessionDep, query: TimelineQuery, fmt: str) -> Response:
    settings = request.app.state.settings
    # Validate now, with the request's session, so bad parameters are a 422 problem and not an
    # error in the middle of a streamed body.
    service.check(session, query)
    base = base_url(request.scope)
    licence = settings.data_licence
    headers = {
        "Link": f'<{base}/docs>; rel="describedby"',
        "X-Data-Licence": licence,
        "Content-Disposition": f'inline; filename="timeline.{formats.EXTENSIONS[fmt]}"',
    }
    media = formats.MEDIA_TYPES[fmt]
    if fmt == "timelinejs":
        # Built whole (capped at timelinejs.MAX_EVENTS, else a 422 problem), not streamed.
        document = timelinejs.build(
            session, query, licence=licence, base_url=base, query_string=request.url.query
        )
        return Response(orjson.dumps(document), media_type=media, headers=headers)
    title = formats.query_title(query)
    if fmt == "atom":
        docs = service.newest_changes(session, query)
        # The page takes the timeline's filters by the same names.
        filters = [(k, v) for k, v in request.query_params.multi_items() if k not in PAGE_ONLY]
        page = f"{base}/" + (f"?{urlencode(filters)}" if filters else "")
        body = formats.render_atom(docs, public_url(request), base, title, licence, page)
        return Response(body, media_type=media, headers=headers)
    pool: Renderers | None = request.app.state.renderers
    export = Export(
        query, fmt, licence, base, title, gzip=pool is not None and accepts_gzip(request)
    )
    stream = pool.open(export) if pool is not None else None
    if stream is None:
        export = replace(export, gzip=False)  # GZipMiddleware's, then
        stream = in_thread(request.app.state.stream_session_factory, export)
    if export.gzip:
        headers["Content-Encoding"] = "gzip"
        headers["Vary"] = "Accept-Encoding"
    # The first chunk is read now, before the response starts: a database that cannot answer
    # is a 503 problem, not a 200 whose body stops short.
    try:
        first = next(stream, None)
    except BaseException:
        stream.close()
        raise
    return StreamingResponse(read_ahead(first, stream), media_type=media, headers=headers)


def accepts_gzip(request: Request) -> bool:
    # GZipMiddleware's own test, so an export is compressed exactly when a page would be.
    return "gzip" in request.headers.get("accept-encoding", "")


async def read_ahead(first: tuple[bytes, float] | None, chunks: Chunks) -> AsyncIterator[bytes]:
    """The chunks of a streamed export, each next one read in the thread pool while this one is
    sent.

    Iterated one chunk at a time (as Starlette does a sync iterator), the reading and the
    sending took turns, each waiting for the other (bench/README.md). One read at a time,
    never two: the chunks and their session or renderer serve one thread at a time.

    Paced to the caller's share of a core (`EXPORT_SHARE`, set by the rate limiter): each read
    waits in proportion to the CPU time the one before took. CPU time, not wall time, so a
    busy machine does not slow an export down twice."""
    share = EXPORT_SHARE.get()
    upcoming: asyncio.Future[tuple[bytes, float] | None] | None = None

    async def read(pause: float) -> tuple[bytes, float] | None:
        if pause > 0:
            await asyncio.sleep(pause)
        return await run_in_threadpool(next, chunks, None)

    try:
        item = first
        while item is not None:
            chunk, cpu = item
            upcoming = asyncio.ensure_future(read(cpu * (1 / share - 1)))
            yield chunk
            # Shielded: a cancelled request must not cancel the read, which goes on in its
            # thread whatever happens here (closed after it, below).
            item = await asyncio.shield(upcoming)
    finally:
        # Ended early (the client went away, a read failed): close the export, but never beside
        # a read still under way on a thread, and without waiting for it here, since a
        # cancelled request cannot wait. An export left open would keep its renderer busy.
        def close(read: asyncio.Future[Any] | None = None) -> None:
            if read is not None and not read.cancelled():
                read.exception()  # retrieved: a failed read ends here, not in a warning
            chunks.close()

        if upcoming is None or upcoming.done():
            close(upcoming)
        else:
            upcoming.add_done_callback(close)
