from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from app.db import reconcile
from app.errors import InvalidParameter, NotFound
from app.models import Place, PlaceAlias, State
from app.places.schemas import PlaceCreate
from app.revisions import service as revision_service
from app.schemas import Outcome, fold, unknown_code


def _read(place: Place) -> dict[str, Any]:
    return {
        "code": place.code,
        "name": place.name,
        "state": place.state.code if place.state else None,
        "lat": place.lat,
        "lon": place.lon,
        "aliases": sorted(a.alias for a in place.aliases),
        "url": f"/v1/places/{place.code}",
    }


def _options() -> list[Any]:
    return [selectinload(Place.aliases), selectinload(Place.state)]


def list_places(session: Session) -> list[dict[str, Any]]:
    return [
        _read(p) for p in session.scalars(select(Place).options(*_options()).order_by(Place.code))
    ]


def get_place(session: Session, code: str) -> dict[str, Any]:
    place = session.scalars(
        select(Place).where(Place.code == code).options(*_options())
    ).one_or_none()
    if place is None:
        raise NotFound(f"No place with code {code!r}; see GET /v1/places.")
    return _read(place)


def input_rows(session: Session, ids: Sequence[int]) -> Sequence[Place]:
    """These places loaded for `as_input` (an archive import checks them)."""
    return session.scalars(select(Place).where(Place.id.in_(ids)).options(*_options())).all()


def as_input(place: Place) -> PlaceCreate:
    return PlaceCreate.model_validate(
        {
            "code": place.code,
            "name": place.name,
            "state": place.state.code if place.state else None,
            "lat": place.lat,
            "lon": place.lon,
            "aliases": [a.alias for a in place.aliases if a.alias != place.name],
        }
    )


def upsert(session: Session, data: PlaceCreate, actor: str) -> Outcome:
    state_id = None
    if data.state is not None:
        state_id = session.scalar(select(State.id).where(State.code == data.state))
        if state_id is None:
            raise InvalidParameter(["body", "state"], unknown_code("state", data.state))
    aliases = data.stored_aliases()
    place = session.scalars(
        select(Place).where(Place.code == data.code).options(*_options())
    ).one_or_none()
    if place is not None:
        if as_input(place).canonical() == data.canonical():
            return Outcome.unchanged
        outcome = Outcome.updated
    else:
        before = None
        place = Place(code=data.code, aliases=[])
        session.add(place)
        outcome = Outcome.created
    place.name = data.name
    place.state_id = state_id
    place.lat = data.lat
    place.lon = data.lon
    if sorted(a.alias for a in place.aliases) != aliases:
        place.aliases = reconcile(
            place.aliases, aliases, lambda a: a.alias, lambda a: PlaceAlias(alias=a, folded=fold(a))
        )
    session.flush()
    session.refresh(place, ["state"])
    revision_service.record(
        session,
        resource="place",
        key=place.code,
        # Places are written only by the seed loader and carry no version column of their own.
        version=revision_service.count(session, "place", place.code) + 1,
        operation="create" if outcome is Outcome.created else "update",
        actor=actor,
        before=before,
        after=_read(place),
    )
    return outcome


def revisions(session: Session, code: str) -> list[dict[str, Any]]:
    get_place(session, code)
    return revision_service.history(session, "place", code)
