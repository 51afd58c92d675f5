from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, selectinload

from app.db import reconcile
from app.errors import NotFound
from app.models import State, StateAlias
from app.organisations import service as organisation_service
from app.schemas import Outcome, fold
from app.states.schemas import StateCreate

FIELDS = (
    "alpha2",
    "numeric",
    "name",
    "official_name",
    "capital",
    "capital_lat",
    "capital_lon",
    "wikidata_qid",
)


def _read(state: State) -> dict[str, Any]:
    location = None
    if state.capital_lat is not None and state.capital_lon is not None:
        location = {"lat": state.capital_lat, "lon": state.capital_lon}
    return {
        "code": state.code,
        "alpha2": state.alpha2,
        "numeric": state.numeric,
        "name": state.name,
        "official_name": state.official_name,
        "capital": state.capital,
        "capital_location": location,
        "wikidata_qid": state.wikidata_qid,
        "aliases": sorted(a.alias for a in state.aliases),
        "url": f"/v1/states/{state.code}",
    }


def list_states(session: Session, q: str | None) -> list[dict[str, Any]]:
    """All states, optionally those whose code, name or any alias contains `q`."""
    stmt = select(State).options(selectinload(State.aliases)).order_by(State.code)
    if q:
        needle = f"%{_escape_like(fold(q))}%"
        stmt = stmt.where(
            or_(
                State.code == q.upper(),
                State.id.in_(
                    select(StateAlias.state_id).where(StateAlias.folded.like(needle, escape="\\"))
                ),
            )
        )
    return [_read(s) for s in session.scalars(stmt)]


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def get_state(session: Session, code: str) -> dict[str, Any]:
    state = session.scalars(
        select(State).where(State.code == code).options(selectinload(State.aliases))
    ).one_or_none()
    if state is None:
        raise NotFound(f"No state with code {code!r}; codes are ISO 3166-1 alpha-3, like MLI.")
    return {
        **_read(state),
        "memberships": organisation_service.memberships_of_state(session, state.id),
    }


def _folded_aliases(data: StateCreate) -> list[str]:
    # The name is an alias too, so one alias lookup finds a state by any of its names.
    names = dict.fromkeys([data.name, *(data.official_name or "",), *data.aliases])
    return [n for n in names if n]


def upsert(session: Session, data: StateCreate) -> Outcome:
    state = session.scalars(
        select(State).where(State.code == data.code).options(selectinload(State.aliases))
    ).one_or_none()
    aliases = _folded_aliases(data)
    if state is not None:
        same = all(getattr(state, f) == getattr(data, f) for f in FIELDS)
        if same and sorted(a.alias for a in state.aliases) == sorted(aliases):
            return Outcome.unchanged
        outcome = Outcome.updated
    else:
        state = State(code=data.code, aliases=[])
        session.add(state)
        outcome = Outcome.created
    for field in FIELDS:
        setattr(state, field, getattr(data, field))
    if sorted(a.alias for a in state.aliases) != sorted(aliases):
        state.aliases = reconcile(
            state.aliases,
            sorted(aliases),
            lambda a: a.alias,
            lambda a: StateAlias(alias=a, folded=fold(a)),
        )
    session.flush()
    return outcome
