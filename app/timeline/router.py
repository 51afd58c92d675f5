from email.utils import format_datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request

from app.db import SessionDep
from app.json import JSONBytes
from app.responsecache import ResponseCache
from app.revisions import service as revision_service
from app.schemas import problem_responses
from app.timeline import service
from app.timeline.schemas import TimelinePage, TimelineQuery

router = APIRouter(prefix="/v1/timeline", tags=["Timeline"])


@router.get(
    "",
    response_model=TimelinePage,
    response_class=JSONBytes,
    responses=problem_responses(422),
)
def get_timeline(
    request: Request, session: SessionDep, query: Annotated[TimelineQuery, Query()]
) -> JSONBytes:
    """Events in date order, filtered and paged.

    Every event carries its participants with their roles, its location, its sources and the
    claims of each party where facts are contested. Pages follow an opaque keyset cursor: the
    `next` link (also in the `Link` header) keeps every other parameter.

    Examples: every ambassador recall involving Algeria is
    `?state=DZA&category=ambassador_recall`; the April 2025 crisis is `?from=2025-04&to=2025-04`.
    """
    settings = request.app.state.settings
    cache: ResponseCache = request.app.state.response_cache
    version, changed_at = revision_service.data_version(session)
    key = (str(request.url.include_query_params()), version)
    cached = cache.get(key)
    if cached is not None:
        body_bytes, cached_headers = cached
        return JSONBytes.from_bytes(body_bytes, headers=cached_headers)
    result = service.page(session, query, cursor_secret=settings.cursor_secret)
    next_url = None
    headers = {}
    if changed_at is not None:
        headers["Last-Modified"] = format_datetime(changed_at, usegmt=True)
    if result.next_cursor is not None:
        next_url = str(request.url.include_query_params(cursor=result.next_cursor))
        headers["Link"] = f'<{next_url}>; rel="next"'
    body: dict[str, object] = {
        "items": result.items,
        "next_cursor": result.next_cursor,
        "links": {"next": next_url},
    }
    if result.total is not None:
        body["total"] = result.total
    response = JSONBytes(body, headers=headers)
    cache.put(key, bytes(response.body), headers)
    return response
