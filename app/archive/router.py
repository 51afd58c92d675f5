"""`GET /v1/archive`: the whole dataset as a backup archive, for administrators."""

from collections.abc import Iterator

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, StreamingResponse

from app.access import AUDITED, AdminCaller
from app.archive.schemas import ArchiveDocument
from app.archive.service import ArchiveExport
from app.routing import StrictQueryRoute
from app.schemas import problem_responses

router = APIRouter(
    prefix="/v1/archive",
    tags=["Revisions and changes"],
    route_class=StrictQueryRoute,
    dependencies=AUDITED,
)


class ArchiveResponse(StreamingResponse):
    media_type = "application/json"


@router.get(
    "",
    # Documents the body as JSON (the streamed response class would add a "string" type).
    response_class=JSONResponse,
    responses={
        200: {"model": ArchiveDocument, "description": "The archive, streamed"},
        **problem_responses(401, 403),
    },
)
def download_archive(request: Request, _: AdminCaller) -> StreamingResponse:
    """The whole dataset as a `diplomatic-timeline-archive` (version 1), the same bytes as
    `python -m app.export` writes: restore it with `python -m app.import FILE` into an empty
    database. Read from one consistent snapshot and streamed, whatever the size. API keys,
    webhook subscriptions and other operational state are not included (see `excluded`).
    Needs the `admin` scope: the archive holds every revision, including who made it."""
    factory = request.app.state.session_factory

    def body() -> Iterator[bytes]:
        # A streamed body outlives the request's session, so the export reads in its own.
        with factory() as session:
            yield from ArchiveExport(session)

    return ArchiveResponse(
        body(),
        headers={"Content-Disposition": 'attachment; filename="diplomatic-timeline-archive.json"'},
    )
