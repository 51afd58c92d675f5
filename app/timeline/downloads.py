"""Each export format as an operation of its own: `/v1/timeline.csv` answers exactly what
`/v1/timeline?format=csv` answers.

`/v1/timeline` negotiates seven formats, so it documents seven media types for one 200, and a
client generated from the document parses every answer the one way it picked (as JSON: a CSV
then fails to parse). Here each format has one documented media type, and only the parameters
it uses, so a generated client reads it as text, JSON or bytes as the format needs.
"""

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError, create_model
from pydantic.fields import FieldInfo

from app.json import JSONBytes
from app.routing import QueryModelRoute
from app.schemas import InputModel, problem_responses
from app.timeline import formats
from app.timeline.router import GEOJSON, _timeline
from app.timeline.schemas import TimelineJSDocument, TimelineQuery

router = APIRouter(prefix="/v1", tags=["Timeline"])

FILTERS = (
    *("from_", "to", "state", "actor", "target", "between", "organisation", "include_members"),
    *("kind", "category", "tag", "q", "as_known_at"),
)
TEXT = {"type": "string"}
# format -> (the parameters it reads besides the filters, the 200 response's schema, description)
DOWNLOADS: dict[str, tuple[tuple[str, ...], dict[str, Any] | None, str]] = {
    "csv": (
        ("order",),
        TEXT,
        "Every matching event, one row each, streamed whole (no paging). Multi-valued cells"
        " (participants, sources, claims) are joined in one cell.",
    ),
    "ndjson": (
        ("order",),
        TEXT,
        "Every matching event as one JSON document per line (the items of `/v1/timeline`),"
        " streamed whole (no paging).",
    ),
    "geojson": (
        ("order",),
        GEOJSON,
        "Every matching event as a feature of one FeatureCollection, for a map.",
    ),
    "ics": (
        (),
        TEXT,
        "Every matching event as a calendar entry: a calendar application can subscribe to this"
        " URL.",
    ),
    "atom": (
        ("limit",),
        TEXT,
        "The `limit` matching events most recently added or changed, newest first, for a feed"
        " reader.",
    ),
    "timelinejs": (
        ("group_by",),
        None,
        "Every matching event as a slide of a Knight Lab TimelineJS document (the same document"
        " as `/v1/timeline?format=timelinejs`, with the same cap).",
    ),
}
FIELD_DESCRIPTIONS = {
    ("atom", "limit"): "How many events the feed holds, 1 to 500.",
    ("timelinejs", "group_by"): "The row (TimelineJS `group`) each event is drawn in: by its"
    " `kind` or its `category`.",
}


def query_model(fmt: str, names: tuple[str, ...]) -> type[BaseModel]:
    """The timeline's query model narrowed to `names`: the same types, limits and descriptions,
    and any other parameter refused as unknown."""
    fields: dict[str, Any] = {}
    for name in names:
        field = TimelineQuery.model_fields[name]
        description = FIELD_DESCRIPTIONS.get((fmt, name))
        if description is not None:
            field = FieldInfo.merge_field_infos(field, description=description)
        fields[name] = (field.annotation, field)
    model: type[BaseModel] = create_model(
        f"{fmt.capitalize()}Query", __base__=InputModel, __doc__=TimelineQuery.__doc__, **fields
    )
    return model


def endpoint(fmt: str, model: type[BaseModel]) -> Callable[..., Awaitable[Response]]:
    async def download(request: Request, query: Annotated[model, Query()]) -> Response:  # type: ignore[valid-type]
        given = query.model_dump(by_alias=True, exclude_unset=True)  # type: ignore[attr-defined]
        try:
            # The timeline's own validators (dates, categories, …) run here, on the same values.
            full = TimelineQuery.model_validate({**given, "format": fmt})
        except ValidationError as exc:
            raise RequestValidationError(
                [{**e, "loc": ("query", *e["loc"])} for e in exc.errors(include_url=False)]
            ) from None
        threads = request.app.state.db_threads
        response: Response = await threads.run(_timeline, request, full, fmt)
        return response

    return download


for _fmt, (_extra, _schema, _description) in DOWNLOADS.items():
    _media = formats.MEDIA_TYPES[_fmt].split(";")[0]
    _json = _schema is None
    router.add_api_route(
        f"/timeline.{_fmt}",
        endpoint(_fmt, query_model(_fmt, (*FILTERS, *_extra))),
        methods=["GET"],
        # The route's name is the audit log's `action`: one per operation.
        name=f"export_timeline_{_fmt}",
        description=_description
        + f" Takes the filters of `/v1/timeline`; the same as `/v1/timeline?format={_fmt}`.",
        response_model=TimelineJSDocument if _json else None,
        response_class=JSONBytes if _json else Response,
        responses={
            200: {
                "description": f"The matching events as {_media}.",
                **({} if _json else {"content": {_media: {"schema": _schema}}}),
            },
            **problem_responses(422),
        },
        route_class_override=QueryModelRoute,
    )
