"""Relations between two states over time, memberships over time, event threads, and the page.

Paths sit under the existing resources (`/v1/states/{code}/memberships`,
`/v1/organisations/{code}/members/history`, `/v1/events/{id}/thread`) so each one is found
where a reader of the API looks for it; they add a path segment, so none shadows an existing
route.
"""

import datetime as dt
import inspect
from pathlib import Path as FilePath
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import FileResponse, HTMLResponse

from app.db import SessionDep
from app.embed.service import discovery_link
from app.errors import NotFound
from app.hosts import base_url, public_url
from app.json import JSONBytes
from app.relations import service
from app.relations.schemas import (
    MembershipHistory,
    RelationsHistory,
    RelationsRead,
    StateMemberships,
    Thread,
)
from app.routing import StrictQueryRoute
from app.schemas import EventIdText, OrganisationCode, StateCode, problem_responses

router = APIRouter(route_class=StrictQueryRoute)

STATIC = FilePath(__file__).resolve().parent.parent / "static"
# Only these files are served: a fixed list rather than a directory mount, so nothing else in the
# folder is ever exposed and unknown paths still answer with a problem+json 404.
ASSETS = {
    "app.js": "text/javascript; charset=utf-8",
    "common.js": "text/javascript; charset=utf-8",
    "embed.js": "text/javascript; charset=utf-8",
    "filters.js": "text/javascript; charset=utf-8",
    "timeline.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
}
# The page may load only its own files and call only this API: no CDN, no external font.
PAGE_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self' data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)

RULES = inspect.getdoc(service) or ""

StateCodePath = Annotated[
    StateCode, Path(description="ISO 3166-1 alpha-3 code, in any case.", examples=["MLI"])
]
OtherStatePath = Annotated[
    StateCode, Path(description="The other state (alpha-3, in any case).", examples=["DZA"])
]
OrgCodePath = Annotated[
    OrganisationCode, Path(description="Organisation code, in any case.", examples=["CEMOC"])
]
AsOf = Annotated[
    dt.date | None,
    Query(
        description="The day to look at (YYYY-MM-DD). Defaults to today (UTC).",
        examples=["2025-04-10"],
    ),
]


def _today(as_of: dt.date | None) -> dt.date:
    return as_of or dt.datetime.now(dt.UTC).date()


@router.get(
    "/v1/relations/{a}/{b}",
    response_model=RelationsRead,
    tags=["Relations"],
    responses=problem_responses(404, 410, 422),
    summary="The state of relations between two states on a date",
    description=RULES,
)
def get_relations(
    a: StateCodePath,
    b: OtherStatePath,
    session: SessionDep,
    as_of: AsOf = None,
    window_days: Annotated[
        int,
        Query(ge=1, le=3650, description="Days of the tension indicator's trailing window."),
    ] = service.DEFAULT_WINDOW_DAYS,
    latest: Annotated[
        int, Query(ge=0, le=100, description="How many of the latest events to list.")
    ] = 10,
) -> dict[str, Any]:
    return service.relations_as_of(
        session, a, b, _today(as_of), window_days=window_days, latest=latest
    )


@router.get(
    "/v1/relations/{a}/{b}/history",
    response_model=RelationsHistory,
    tags=["Relations"],
    responses=problem_responses(404, 410, 422),
    summary="Every status of a pair of states as periods, from the start of the data",
    description="A step function per status, each period with the events that opened and"
    " closed it; derived by the rules below.\n\n" + RULES,
)
def get_relations_history(
    a: StateCodePath, b: OtherStatePath, session: SessionDep
) -> dict[str, Any]:
    return service.history(session, a, b)


@router.get(
    "/v1/organisations/{code}/members/history",
    response_model=MembershipHistory,
    tags=["States and organisations"],
    responses=problem_responses(404, 410, 422),
)
def get_membership_history(code: OrgCodePath, session: SessionDep) -> dict[str, Any]:
    """Each state's joins, suspensions and exits as periods that never overlap, with the records
    and sources behind each one."""
    return service.membership_history(session, code)


@router.get(
    "/v1/states/{code}/memberships",
    response_model=StateMemberships,
    tags=["States and organisations"],
    responses=problem_responses(404, 410, 422),
)
def get_state_memberships(
    code: StateCodePath, session: SessionDep, as_of: AsOf = None
) -> dict[str, Any]:
    """Where a state stood on a date in every organisation it had joined: member, suspended or
    left, and whether the sources make that certain."""
    return service.state_memberships(session, code, _today(as_of))


@router.get(
    "/v1/events/{id}/thread",
    response_model=Thread,
    response_class=JSONBytes,
    tags=["Timeline"],
    responses=problem_responses(404, 410, 422),
)
def get_thread(
    id: Annotated[
        EventIdText,
        Path(
            description="The event's stable id.",
            examples=["2025-04-01-algeria-shoots-down-malian-drone"],
        ),
    ],
    session: SessionDep,
) -> JSONBytes:
    """The chain of linked events around one event, in date order: upstream what it answered,
    downstream what answered it (each transitively), and every link between them with its type."""
    return JSONBytes(service.thread(session, id))


PAGE = (STATIC / "index.html").read_text("utf-8")


@router.get("/", include_in_schema=False)
def page(request: Request) -> HTMLResponse:
    """The timeline page: plain HTML, CSS and JS that call this API. Its head names the oEmbed
    answer for its address, for content systems that read the page, not run it."""
    link = discovery_link(base_url(request.scope), public_url(request))
    return HTMLResponse(
        PAGE.replace("<!--oembed-->", link, 1),
        headers={"Content-Security-Policy": PAGE_POLICY, "Cache-Control": "no-cache"},
    )


@router.get("/static/{name}", include_in_schema=False, responses=problem_responses(404))
def asset(name: Annotated[str, Path(max_length=40)]) -> FileResponse:
    if name not in ASSETS:
        raise NotFound(f"No static file {name!r}.")
    return FileResponse(
        STATIC / name, media_type=ASSETS[name], headers={"Cache-Control": "no-cache"}
    )
