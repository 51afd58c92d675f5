from collections.abc import Sequence
from typing import Any

from sqlalchemy import exists, or_, select
from sqlalchemy.orm import Session, selectinload

from app.db import reconcile, utcnow
from app.errors import Conflict, Gone, NotFound
from app.models import Claim, Event, Membership, Participant, State, StateAlias
from app.organisations import service as organisation_service
from app.revisions import service as revision_service
from app.schemas import Outcome, fold, patched
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


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def list_states(session: Session, q: str | None) -> list[dict[str, Any]]:
    """All live states, optionally those whose code, name or any alias contains `q`."""
    stmt = (
        select(State)
        .where(State.deleted_at.is_(None))
        .options(selectinload(State.aliases))
        .order_by(State.code)
    )
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


def _load_state(session: Session, code: str, *, lock: bool = False) -> State:
    stmt = select(State).where(State.code == code).options(selectinload(State.aliases))
    if lock:
        stmt = stmt.with_for_update(of=State)
    state = session.scalars(stmt).one_or_none()
    if state is None:
        raise NotFound(f"No state with code {code!r}; codes are ISO 3166-1 alpha-3, like MLI.")
    return state


def get_state(session: Session, code: str) -> tuple[dict[str, Any], int]:
    state = _load_state(session, code)
    if state.deleted_at is not None:
        raise Gone(f"State {code!r} was deleted on {state.deleted_at.isoformat()}.")
    memberships = organisation_service.memberships_of_state(session, state.id)
    return {**_read(state), "memberships": memberships}, state.version


def as_input(state: State) -> StateCreate:
    automatic = {state.name, state.official_name}
    return StateCreate.model_validate(
        {
            "code": state.code,
            **{f: getattr(state, f) for f in FIELDS},
            "aliases": [a.alias for a in state.aliases if a.alias not in automatic],
        }
    )


def input_rows(session: Session, ids: Sequence[int]) -> Sequence[State]:
    """These states loaded for `as_input`, deleted ones too (an archive import checks them)."""
    return session.scalars(
        select(State).where(State.id.in_(ids)).options(selectinload(State.aliases))
    ).all()


def upsert(session: Session, data: StateCreate, actor: str) -> Outcome:
    state = session.scalars(
        select(State).where(State.code == data.code).options(selectinload(State.aliases))
    ).one_or_none()
    aliases = data.stored_aliases()
    # alpha2 is unique too: name the holder, rather than fail at flush like a concurrent write.
    holder = session.scalar(
        select(State.code).where(State.alpha2 == data.alpha2, State.code != data.code)
    )
    if holder is not None:
        raise Conflict(f"alpha2 {data.alpha2!r} already belongs to state {holder!r}.")
    before = None
    if state is not None:
        if as_input(state).canonical() == data.canonical():
            return Outcome.unchanged
        before = _read(state)
        outcome = Outcome.updated
    else:
        state = State(code=data.code, aliases=[])
        session.add(state)
        outcome = Outcome.created
    for field in FIELDS:
        setattr(state, field, getattr(data, field))
    state.aliases = reconcile(
        state.aliases, aliases, lambda a: a.alias, lambda a: StateAlias(alias=a, folded=fold(a))
    )
    # Touching the row bumps its version even when only the aliases changed.
    state.updated_at = utcnow()
    session.flush()
    revision_service.record(
        session,
        resource="state",
        key=state.code,
        version=state.version,
        operation="create" if outcome is Outcome.created else "update",
        actor=actor,
        before=before,
        after=_read(state),
    )
    return outcome


def create(session: Session, data: StateCreate, actor: str) -> tuple[dict[str, Any], int]:
    if session.scalar(select(State.id).where(State.code == data.code)) is not None:
        raise Conflict(f"A state with code {data.code!r} already exists (codes are never reused).")
    upsert(session, data, actor)
    return get_state(session, data.code)


def update(
    session: Session, code: str, patch: dict[str, Any], expected: int | None, actor: str
) -> tuple[dict[str, Any], int]:
    state = _load_state(session, code, lock=True)
    revision_service.guard(
        "State", code, deleted_at=state.deleted_at, version=state.version, expected=expected
    )
    merged = patched(as_input(state), patch, fixed=("code",), what="a state")
    upsert(session, StateCreate.model_validate(merged), actor)
    return get_state(session, code)


def delete(session: Session, code: str, expected: int | None, actor: str) -> None:
    state = _load_state(session, code, lock=True)
    revision_service.guard(
        "State", code, deleted_at=state.deleted_at, version=state.version, expected=expected
    )
    live_event = select(Event.id).where(Event.deleted_at.is_(None))
    in_use = session.scalar(
        select(
            exists().where(Participant.state_id == state.id, Participant.event_id.in_(live_event))
            | exists().where(Claim.claimant_state_id == state.id, Claim.event_id.in_(live_event))
            | exists().where(Membership.state_id == state.id, Membership.deleted_at.is_(None))
        )
    )
    if in_use:
        raise Conflict(
            f"State {code!r} is still referenced by events, claims or memberships; delete or"
            " change those first."
        )
    before = _read(state)
    revision_service.soft_delete(
        session, state, resource="state", key=code, before=before, actor=actor
    )


def revisions(session: Session, code: str) -> list[dict[str, Any]]:
    _load_state(session, code)
    return revision_service.history(session, "state", code)
