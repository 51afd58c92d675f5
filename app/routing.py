"""A route whose query parameters are one pydantic model, validated in one call."""

import types
from collections.abc import Callable, Coroutine, Iterable
from typing import Any, Union, get_args, get_origin

from fastapi import Request, Response
from fastapi.dependencies.utils import get_flat_dependant
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import BaseModel, ValidationError

SEQUENCES = (list, set, frozenset, tuple)


def unknown_parameter(accepted: Iterable[str]) -> str:
    names = sorted(accepted)
    if not names:
        return "unknown parameter: this endpoint takes no query parameters"
    return "unknown parameter: this endpoint takes " + ", ".join(names)


def _query_names(route: APIRoute) -> frozenset[str]:
    """The query parameters an endpoint reads, its dependencies' included, by the names a client
    sends (aliases); a query model's by its fields."""
    names: set[str] = set()
    for param in get_flat_dependant(route.dependant, skip_repeats=True).query_params:
        model = param.field_info.annotation
        if isinstance(model, type) and issubclass(model, BaseModel):
            names.update(f.alias or key for key, f in model.model_fields.items())
        else:
            names.add(param.alias)
    return frozenset(names)


class StrictQueryRoute(APIRoute):
    """Refuses a query parameter the endpoint does not read, as a 422 naming it, where FastAPI
    would ignore it: a typo such as `stat=MLI`, or a parameter of another endpoint
    (`format=csv` on facets), must not quietly give an answer to another question.

    Pages outside the API (`include_in_schema=False`: the timeline page reads its own filters
    from the URL in the browser) are left alone.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        if not self.include_in_schema:
            return handler
        accepted = _query_names(self)

        async def strict(request: Request) -> Response:
            unknown = [key for key in request.query_params if key not in accepted]
            if unknown:
                msg = unknown_parameter(accepted)
                raise RequestValidationError(
                    [
                        {"loc": ("query", key), "msg": msg, "type": "extra_forbidden"}
                        for key in unknown
                    ]
                )
            return await handler(request)

        return strict


def _repeatable(annotation: Any) -> bool:
    """A list of values (`list[str]`, also inside `| None`), which FastAPI reads with getlist."""
    if get_origin(annotation) in (Union, types.UnionType):
        return any(_repeatable(arg) for arg in get_args(annotation))
    return get_origin(annotation) in SEQUENCES or annotation in SEQUENCES


class QueryModelRoute(APIRoute):
    """For an endpoint `(request, query: Annotated[Model, Query()])` and nothing else.

    FastAPI reads a query model field by field on every request, inspecting each field's
    annotation as it goes: for the timeline's twenty fields, as long as reading a page
    (bench/README.md). This hands the model the whole query string in one
    validation instead. Values, errors (422, each `loc` under "query") and the OpenAPI
    description (made from the endpoint's signature, as for any route) are FastAPI's: a
    repeatable field takes every value given, any other field the last, and a parameter the
    model does not know is passed on for it to refuse.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        dependant = self.dependant
        params = dependant.query_params
        if (
            len(params) != 1
            or dependant.request_param_name is None
            or dependant.dependencies
            or dependant.path_params
            or dependant.header_params
            or dependant.cookie_params
            or dependant.body_params
        ):
            raise TypeError(f"{self.path}: QueryModelRoute needs (request, query model) only")
        name = params[0].name
        model: type[BaseModel] = params[0].field_info.annotation  # type: ignore[assignment]
        # By the name in the query string, as FastAPI matches them: a field's alias if it has one.
        keys = {field.alias or key: field for key, field in model.model_fields.items()}
        repeatable = frozenset(key for key, field in keys.items() if _repeatable(field.annotation))
        unknown = unknown_parameter(keys)
        request_name = dependant.request_param_name
        endpoint = dependant.call
        assert endpoint is not None  # noqa: S101 - a route always has one

        async def handler(request: Request) -> Response:
            values = request.query_params
            data: dict[str, Any] = {}
            for key in values:
                if key in repeatable:
                    data[key] = values.getlist(key)
                    continue
                given = values.getlist(key)
                # Known: the last value, as FastAPI takes it. Unknown: as given, for the model
                # to refuse by name.
                data[key] = given[-1] if key in keys or len(given) == 1 else given
            try:
                query = model.model_validate(data)
            except ValidationError as exc:
                raise RequestValidationError(
                    [
                        {**e, "loc": ("query", *e["loc"])}
                        | ({"msg": unknown} if e["type"] == "extra_forbidden" else {})
                        for e in exc.errors(include_url=False)
                    ]
                ) from None
            response: Response = await endpoint(**{request_name: request, name: query})
            return response

        return handler
