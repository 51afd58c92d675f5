import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import and_, exists, or_, select
from sqlalchemy.orm import Session, selectinload

from app.db import reconcile, utcnow
from app.errors import Conflict, Gone, InvalidParameter, NotFound
from app.models import (
    Claim,
    Event,
    Membership,
    Organisation,
    OrganisationAlias,
    OrganisationName,
    Participant,
    State,
)
from app.organisations.schemas import MembershipCreate, OrganisationCreate
from app.revisions import service as revision_service
from app.schemas import Outcome, fold, patched, unknown_code
from app.sources import service as source_service
from app.vocabulary import MEMBER_STATUSES, MembershipEnd, MembershipStatus

ORG_FIELDS = (
    "name",
    "headquarters",
    "wikidata_qid",
    "description",
    "founded_on",
    "founded_precision",
    "dissolved_on",
    "dissolved_precision",
)


def _value(v: Any) -> Any:
    return v.value if hasattr(v, "value") else v


def _source_read(sources: Any) -> list[dict[str, Any]]:
    # Sorted by URL so the representation is the same before and after a reload from the database.
    return [
        {
            "url": s.url,
            "publisher": s.publisher,
            "title": s.title,
            "published_on": s.published_on,
            "language": s.language,
        }
        for s in sorted(sources, key=lambda s: s.url)
    ]


# --- organisations -------------------------------------------------------------------------


def _org_options() -> list[Any]:
    return [
        selectinload(Organisation.names),
        selectinload(Organisation.aliases),
        selectinload(Organisation.sources),
    ]


def _org_read(org: Organisation) -> dict[str, Any]:
    return {
        "code": org.code,
        "name": org.name,
        "kind": org.kind,
        "headquarters": org.headquarters,
        "wikidata_qid": org.wikidata_qid,
        "description": org.description,
        "founded_on": org.founded_on,
        "founded_precision": org.founded_precision,
        "dissolved_on": org.dissolved_on,
        "dissolved_precision": org.dissolved_precision,
        "names": [
            {
                "name": n.name,
                "valid_from": n.valid_from,
                "valid_from_precision": n.valid_from_precision,
                "valid_to": n.valid_to,
                "valid_to_precision": n.valid_to_precision,
            }
            for n in org.names
        ],
        "aliases": sorted(a.alias for a in org.aliases),
        "sources": _source_read(org.sources),
        "url": f"/v1/organisations/{org.code}",
    }


def list_organisations(session: Session, q: str | None) -> list[dict[str, Any]]:
    stmt = (
        select(Organisation)
        .where(Organisation.deleted_at.is_(None))
        .options(*_org_options())
        .order_by(Organisation.code)
    )
    if q:
        needle = "%" + fold(q).replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        stmt = stmt.where(
            or_(
                Organisation.code == q.upper(),
                Organisation.id.in_(
                    select(OrganisationAlias.organisation_id).where(
                        OrganisationAlias.folded.like(needle, escape="\\")
                    )
                ),
            )
        )
    return [_org_read(o) for o in session.scalars(stmt)]


def _load_organisation(
    session: Session, code: str, *, lock: bool = False, live: bool = True
) -> Organisation:
    stmt = select(Organisation).where(Organisation.code == code).options(*_org_options())
    if lock:
        stmt = stmt.with_for_update(of=Organisation)
    org = session.scalars(stmt).one_or_none()
    if org is None:
        raise NotFound(f"No organisation with code {code!r}; see GET /v1/organisations.")
    if live and org.deleted_at is not None:
        raise Gone(f"Organisation {code!r} was deleted on {org.deleted_at.isoformat()}.")
    return org


def get_organisation(session: Session, code: str) -> tuple[dict[str, Any], int]:
    org = _load_organisation(session, code)
    return _org_read(org), org.version


def as_input(org: Organisation) -> OrganisationCreate:
    automatic = {org.code, org.name, *(n.name for n in org.names)}
    return OrganisationCreate.model_validate(
        {
            "code": org.code,
            "kind": org.kind,
            **{f: getattr(org, f) for f in ORG_FIELDS},
            "names": [
                {
                    "name": n.name,
                    "valid_from": n.valid_from,
                    "valid_from_precision": n.valid_from_precision,
                    "valid_to": n.valid_to,
                    "valid_to_precision": n.valid_to_precision,
                }
                for n in org.names
            ],
            "aliases": [a.alias for a in org.aliases if a.alias not in automatic],
            "sources": [source_service.as_input(src).model_dump() for src in org.sources],
        }
    )


def organisation_input_rows(session: Session, ids: Sequence[int]) -> Sequence[Organisation]:
    """These organisations loaded for `as_input`, deleted ones too (an archive import checks
    them)."""
    return session.scalars(
        select(Organisation).where(Organisation.id.in_(ids)).options(*_org_options())
    ).all()


def upsert_organisation(session: Session, data: OrganisationCreate, actor: str) -> Outcome:
    org = session.scalars(
        select(Organisation).where(Organisation.code == data.code).options(*_org_options())
    ).one_or_none()
    aliases = data.stored_aliases()
    names = [n.model_dump() for n in data.names]
    if org is not None:
        if as_input(org).canonical() == data.canonical():
            return Outcome.unchanged
        before: dict[str, Any] | None = _org_read(org)
        outcome = Outcome.updated
    else:
        before = None
        org = Organisation(code=data.code, names=[], aliases=[], sources=[])
        outcome = Outcome.created
    # Sources first (each may flush), then the organisation in a single flush.
    sources = [source_service.upsert(session, s, actor) for s in data.sources]
    for field in ORG_FIELDS:
        setattr(org, field, _value(getattr(data, field)))
    org.kind = data.kind.value
    org.names = reconcile(
        org.names,
        [n["name"] for n in names],
        lambda n: n.name,
        lambda name: OrganisationName(name=name),
    )
    for position, (row, n) in enumerate(zip(org.names, names, strict=True)):
        row.position = position
        for k, v in n.items():
            setattr(row, k, _value(v))
    org.aliases = reconcile(
        org.aliases,
        aliases,
        lambda a: a.alias,
        lambda a: OrganisationAlias(alias=a, folded=fold(a)),
    )
    org.sources = sources
    if outcome is Outcome.created:
        session.add(org)
    # Touching the row bumps its version even when only names, aliases or sources changed.
    org.updated_at = utcnow()
    session.flush()
    revision_service.record(
        session,
        resource="organisation",
        key=org.code,
        version=org.version,
        operation="create" if outcome is Outcome.created else "update",
        actor=actor,
        before=before,
        after=_org_read(org),
    )
    return outcome


def create_organisation(
    session: Session, data: OrganisationCreate, actor: str
) -> tuple[dict[str, Any], int]:
    if session.scalar(select(Organisation.id).where(Organisation.code == data.code)) is not None:
        raise Conflict(f"An organisation with code {data.code!r} already exists.")
    upsert_organisation(session, data, actor)
    return get_organisation(session, data.code)


def update_organisation(
    session: Session, code: str, patch: dict[str, Any], expected: int | None, actor: str
) -> tuple[dict[str, Any], int]:
    org = _load_organisation(session, code, lock=True, live=False)
    revision_service.guard(
        "Organisation", code, deleted_at=org.deleted_at, version=org.version, expected=expected
    )
    merged = patched(as_input(org), patch, fixed=("code",), what="an organisation")
    upsert_organisation(session, OrganisationCreate.model_validate(merged), actor)
    return get_organisation(session, code)


def delete_organisation(session: Session, code: str, expected: int | None, actor: str) -> None:
    org = _load_organisation(session, code, lock=True, live=False)
    revision_service.guard(
        "Organisation", code, deleted_at=org.deleted_at, version=org.version, expected=expected
    )
    live_event = select(Event.id).where(Event.deleted_at.is_(None))
    in_use = session.scalar(
        select(
            exists().where(
                Participant.organisation_id == org.id, Participant.event_id.in_(live_event)
            )
            | exists().where(
                Claim.claimant_organisation_id == org.id, Claim.event_id.in_(live_event)
            )
            | exists().where(Membership.organisation_id == org.id, Membership.deleted_at.is_(None))
        )
    )
    if in_use:
        raise Conflict(
            f"Organisation {code!r} is still referenced by events, claims or memberships; delete"
            " or change those first."
        )
    before = _org_read(org)
    revision_service.soft_delete(
        session, org, resource="organisation", key=code, before=before, actor=actor
    )


def organisation_revisions(session: Session, code: str) -> list[dict[str, Any]]:
    _load_organisation(session, code, live=False)
    return revision_service.history(session, "organisation", code)


# --- memberships ---------------------------------------------------------------------------


def membership_read(m: Membership) -> dict[str, Any]:
    return {
        "id": m.id,
        "organisation": m.organisation.code,
        "organisation_name": m.organisation.name,
        "state": m.state.code,
        "state_name": m.state.name,
        "status": m.status,
        "start_on": m.start_on,
        "start_precision": m.start_precision,
        "end_on": m.end_on,
        "end_precision": m.end_precision,
        "end": m.end_kind,
        "note": m.note,
        "sources": _source_read(m.sources),
    }


def _membership_options() -> list[Any]:
    return [
        selectinload(Membership.organisation),
        selectinload(Membership.state),
        selectinload(Membership.sources),
    ]


def memberships_of_state(session: Session, state_id: int) -> list[dict[str, Any]]:
    rows = session.scalars(
        select(Membership)
        .where(Membership.state_id == state_id, Membership.deleted_at.is_(None))
        .options(*_membership_options())
        .order_by(Membership.start_on, Membership.id)
    )
    return [membership_read(m) for m in rows]


def holds_on(day: dt.date) -> Any:
    """SQL condition: the membership period covers `day` (end exclusive; unknown ends excluded)."""
    return and_(
        Membership.deleted_at.is_(None),
        Membership.start_on <= day,
        or_(
            Membership.end_kind == MembershipEnd.open.value,
            and_(Membership.end_kind == MembershipEnd.dated.value, Membership.end_on > day),
        ),
    )


def name_on(org: Organisation, day: dt.date) -> str:
    for n in org.names:
        if (n.valid_from is None or n.valid_from <= day) and (
            n.valid_to is None or day < n.valid_to
        ):
            return n.name
    return org.name


def members_as_of(session: Session, code: str, as_of: dt.date) -> dict[str, Any]:
    """Who belonged on `as_of`, who was suspended, and what the data cannot say."""
    org = _load_organisation(session, code)
    periods = session.scalars(
        select(Membership)
        .where(
            Membership.organisation_id == org.id,
            Membership.start_on <= as_of,
            Membership.deleted_at.is_(None),
        )
        .options(*_membership_options())
        .order_by(Membership.start_on, Membership.id)
    ).all()

    def covers(m: Membership) -> bool:
        if m.end_kind == MembershipEnd.open.value:
            return True
        return m.end_kind == MembershipEnd.dated.value and m.end_on is not None and as_of < m.end_on

    suspensions: dict[int, Membership] = {}
    for m in periods:
        if m.status != MembershipStatus.suspended.value:
            continue
        if covers(m) or (
            m.end_kind == MembershipEnd.unknown.value and m.state_id not in suspensions
        ):
            suspensions[m.state_id] = m
    members = []
    for m in periods:
        if m.status in MEMBER_STATUSES and covers(m):
            suspension = suspensions.get(m.state_id)
            suspended = (
                None
                if suspension is not None and not covers(suspension)
                else (suspension is not None)
            )
            members.append(
                {
                    "state": m.state.code,
                    "state_name": m.state.name,
                    "status": m.status,
                    "since": m.start_on,
                    "since_precision": m.start_precision,
                    "until": m.end_on,
                    "end": m.end_kind,
                    "suspended": suspended,
                    "suspension": membership_read(suspension) if suspension else None,
                    "sources": _source_read(m.sources),
                }
            )
    uncertain = [membership_read(m) for m in periods if m.end_kind == MembershipEnd.unknown.value]
    return {
        "organisation": org.code,
        "name_as_of": name_on(org, as_of),
        "as_of": as_of,
        "members": sorted(members, key=lambda m: m["state"]),
        "uncertain": uncertain,
    }


def _membership_refs(session: Session, data: MembershipCreate) -> tuple[int, int]:
    org_id = session.scalar(
        select(Organisation.id).where(
            Organisation.code == data.organisation, Organisation.deleted_at.is_(None)
        )
    )
    if org_id is None:
        raise InvalidParameter(
            ["body", "organisation"], unknown_code("organisation", data.organisation)
        )
    state_id = session.scalar(
        select(State.id).where(State.code == data.state, State.deleted_at.is_(None))
    )
    if state_id is None:
        raise InvalidParameter(["body", "state"], unknown_code("state", data.state))
    return org_id, state_id


def _membership_values(data: MembershipCreate) -> dict[str, Any]:
    return {
        "status": data.status.value,
        "start_on": data.start_on,
        "start_precision": data.start_precision.value,
        "end_on": data.end_on,
        "end_precision": _value(data.end_precision),
        "end_kind": data.end.value,
        "note": data.note,
    }


def _write_membership(
    session: Session, m: Membership, data: MembershipCreate, outcome: Outcome, actor: str
) -> None:
    before = membership_read(m) if outcome is Outcome.updated else None
    # Sources first (each may flush), then the membership in a single flush: one version step.
    sources = [source_service.upsert(session, s, actor) for s in data.sources]
    with session.no_autoflush:
        for k, v in _membership_values(data).items():
            setattr(m, k, v)
        m.sources = sources
        m.updated_at = utcnow()
    if outcome is Outcome.created:
        session.add(m)
    session.flush()
    session.refresh(m, ["organisation", "state"])
    revision_service.record(
        session,
        resource="membership",
        key=str(m.id),
        version=m.version,
        operation="create" if outcome is Outcome.created else "update",
        actor=actor,
        before=before,
        after=membership_read(m),
    )


def membership_input_rows(session: Session, ids: Sequence[int]) -> Sequence[Membership]:
    """These memberships loaded for `membership_as_input`, deleted ones too (an archive import
    checks them)."""
    return session.scalars(
        select(Membership).where(Membership.id.in_(ids)).options(*_membership_options())
    ).all()


def upsert_membership(session: Session, data: MembershipCreate, actor: str) -> Outcome:
    """Create or update the period with this natural key (organisation, state, status, start)."""
    org_id, state_id = _membership_refs(session, data)
    m = session.scalars(
        select(Membership)
        .where(
            Membership.organisation_id == org_id,
            Membership.state_id == state_id,
            Membership.status == data.status.value,
            Membership.start_on == data.start_on,
        )
        .options(*_membership_options())
    ).one_or_none()
    if m is not None:
        if membership_as_input(m).canonical() == data.canonical() and m.deleted_at is None:
            return Outcome.unchanged
        m.deleted_at = None
        outcome = Outcome.updated
    else:
        m = Membership(organisation_id=org_id, state_id=state_id, sources=[])
        outcome = Outcome.created
    _write_membership(session, m, data, outcome, actor)
    return outcome


def _load_membership(session: Session, membership_id: int, *, lock: bool = False) -> Membership:
    stmt = select(Membership).where(Membership.id == membership_id).options(*_membership_options())
    if lock:
        stmt = stmt.with_for_update(of=Membership)
    m = session.scalars(stmt).one_or_none()
    if m is None:
        raise NotFound(f"No membership with id {membership_id}.")
    return m


def get_membership(session: Session, membership_id: int) -> tuple[dict[str, Any], int]:
    m = _load_membership(session, membership_id)
    if m.deleted_at is not None:
        raise Gone(f"Membership {membership_id} was deleted on {m.deleted_at.isoformat()}.")
    return membership_read(m), m.version


def _refuse_clash(
    session: Session,
    org_id: int,
    state_id: int,
    data: MembershipCreate,
    advice: str,
    *,
    other_than: int | None = None,
) -> None:
    """A named 409 where the unique (organisation, state, status, start) constraint would
    otherwise fail at flush with a message about a concurrent write."""
    query = select(Membership.id).where(
        Membership.organisation_id == org_id,
        Membership.state_id == state_id,
        Membership.status == data.status.value,
        Membership.start_on == data.start_on,
    )
    if other_than is not None:
        query = query.where(Membership.id != other_than)
    clash = session.scalar(query)
    if clash is not None:
        raise Conflict(
            f"Membership {clash} already records this state, organisation, status and start;"
            f" {advice}."
        )


def create_membership(
    session: Session, data: MembershipCreate, actor: str
) -> tuple[dict[str, Any], int]:
    org_id, state_id = _membership_refs(session, data)
    _refuse_clash(session, org_id, state_id, data, "change it with PATCH instead")
    m = Membership(organisation_id=org_id, state_id=state_id, sources=[])
    _write_membership(session, m, data, Outcome.created, actor)
    return get_membership(session, m.id)


def membership_as_input(m: Membership) -> MembershipCreate:
    """The period as the input that would create it."""
    return MembershipCreate.model_validate(
        {
            "organisation": m.organisation.code,
            "state": m.state.code,
            "status": m.status,
            "start_on": m.start_on,
            "start_precision": m.start_precision,
            "end_on": m.end_on,
            "end_precision": m.end_precision,
            "end": m.end_kind,
            "note": m.note,
            "sources": [source_service.as_input(s).model_dump() for s in m.sources],
        }
    )


def update_membership(
    session: Session, membership_id: int, patch: dict[str, Any], expected: int | None, actor: str
) -> tuple[dict[str, Any], int]:
    m = _load_membership(session, membership_id, lock=True)
    revision_service.guard(
        "Membership",
        str(membership_id),
        deleted_at=m.deleted_at,
        version=m.version,
        expected=expected,
    )
    merged = patched(
        membership_as_input(m), patch, fixed=("organisation", "state"), what="a membership"
    )
    data = MembershipCreate.model_validate(merged)
    if membership_as_input(m).canonical() != data.canonical():
        _refuse_clash(
            session, m.organisation_id, m.state_id, data, "change that one", other_than=m.id
        )
        _write_membership(session, m, data, Outcome.updated, actor)
    return get_membership(session, membership_id)


def delete_membership(
    session: Session, membership_id: int, expected: int | None, actor: str
) -> None:
    m = _load_membership(session, membership_id, lock=True)
    revision_service.guard(
        "Membership",
        str(membership_id),
        deleted_at=m.deleted_at,
        version=m.version,
        expected=expected,
    )
    before = membership_read(m)
    revision_service.soft_delete(
        session, m, resource="membership", key=str(membership_id), before=before, actor=actor
    )


def membership_revisions(session: Session, membership_id: int) -> list[dict[str, Any]]:
    _load_membership(session, membership_id)
    return revision_service.history(session, "membership", str(membership_id))
