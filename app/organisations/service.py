import datetime as dt
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session, selectinload

from app.db import reconcile
from app.errors import InvalidParameter, NotFound
from app.models import Membership, Organisation, OrganisationAlias, OrganisationName, State
from app.organisations.schemas import MembershipCreate, OrganisationCreate
from app.schemas import Outcome, fold
from app.sources import service as source_service
from app.sources.schemas import SourceIn
from app.vocabulary import MembershipEnd, MembershipStatus

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
MEMBER_STATUSES = (MembershipStatus.founding_member.value, MembershipStatus.member.value)


def _value(v: Any) -> Any:
    return v.value if hasattr(v, "value") else v


def _sources_key(sources: list[SourceIn]) -> list[dict[str, Any]]:
    return sorted((s.model_dump(mode="json") for s in sources), key=lambda s: s["url"])


def _source_read(sources: Any) -> list[dict[str, Any]]:
    return [
        {
            "url": s.url,
            "publisher": s.publisher,
            "title": s.title,
            "published_on": s.published_on,
            "language": s.language,
        }
        for s in sources
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
    stmt = select(Organisation).options(*_org_options()).order_by(Organisation.code)
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


def _get(session: Session, code: str) -> Organisation:
    org = session.scalars(
        select(Organisation).where(Organisation.code == code).options(*_org_options())
    ).one_or_none()
    if org is None:
        raise NotFound(f"No organisation with code {code!r}; see GET /v1/organisations.")
    return org


def get_organisation(session: Session, code: str) -> dict[str, Any]:
    return _org_read(_get(session, code))


def _org_aliases(data: OrganisationCreate) -> list[str]:
    names = dict.fromkeys([data.code, data.name, *(n.name for n in data.names), *data.aliases])
    return sorted(names)


def upsert_organisation(session: Session, data: OrganisationCreate) -> Outcome:
    org = session.scalars(
        select(Organisation).where(Organisation.code == data.code).options(*_org_options())
    ).one_or_none()
    aliases = _org_aliases(data)
    names = [n.model_dump() for n in data.names]
    if org is not None:
        current = OrganisationCreate.model_construct(
            **{f: getattr(org, f) for f in ORG_FIELDS},
        )
        same = (
            all(_value(getattr(current, f)) == _value(getattr(data, f)) for f in ORG_FIELDS)
            and org.kind == data.kind.value
            and sorted(a.alias for a in org.aliases) == aliases
            and [
                {
                    "name": n.name,
                    "valid_from": n.valid_from,
                    "valid_from_precision": n.valid_from_precision,
                    "valid_to": n.valid_to,
                    "valid_to_precision": n.valid_to_precision,
                }
                for n in org.names
            ]
            == [{k: _value(v) for k, v in n.items()} for n in names]
            and _sources_key([source_service.as_input(s) for s in org.sources])
            == _sources_key(data.sources)
        )
        if same:
            return Outcome.unchanged
        outcome = Outcome.updated
    else:
        org = Organisation(code=data.code, names=[], aliases=[], sources=[])
        session.add(org)
        outcome = Outcome.created
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
    org.sources = [source_service.upsert(session, s) for s in data.sources]
    session.flush()
    return outcome


# --- memberships ---------------------------------------------------------------------------


def _membership_read(m: Membership) -> dict[str, Any]:
    return {
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
        .where(Membership.state_id == state_id)
        .options(*_membership_options())
        .order_by(Membership.start_on, Membership.id)
    )
    return [_membership_read(m) for m in rows]


def holds_on(day: dt.date) -> Any:
    """SQL condition: the membership period covers `day` (end exclusive; unknown ends excluded)."""
    return and_(
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
    org = _get(session, code)
    periods = session.scalars(
        select(Membership)
        .where(Membership.organisation_id == org.id, Membership.start_on <= as_of)
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
                    "suspension": _membership_read(suspension) if suspension else None,
                    "sources": _source_read(m.sources),
                }
            )
    uncertain = [_membership_read(m) for m in periods if m.end_kind == MembershipEnd.unknown.value]
    return {
        "organisation": org.code,
        "name_as_of": name_on(org, as_of),
        "as_of": as_of,
        "members": sorted(members, key=lambda m: m["state"]),
        "uncertain": uncertain,
    }


def upsert_membership(session: Session, data: MembershipCreate, index: int = 0) -> Outcome:
    org_id = session.scalar(select(Organisation.id).where(Organisation.code == data.organisation))
    if org_id is None:
        raise InvalidParameter(
            ["body", "organisation"], f"unknown organisation {data.organisation!r}"
        )
    state_id = session.scalar(select(State.id).where(State.code == data.state))
    if state_id is None:
        raise InvalidParameter(["body", "state"], f"unknown state {data.state!r}")
    m = session.scalars(
        select(Membership)
        .where(
            Membership.organisation_id == org_id,
            Membership.state_id == state_id,
            Membership.status == data.status.value,
            Membership.start_on == data.start_on,
        )
        .options(selectinload(Membership.sources))
    ).one_or_none()
    wanted = {
        "start_precision": data.start_precision.value,
        "end_on": data.end_on,
        "end_precision": _value(data.end_precision),
        "end_kind": data.end.value,
        "note": data.note,
    }
    if m is not None:
        if all(getattr(m, k) == v for k, v in wanted.items()) and _sources_key(
            [source_service.as_input(s) for s in m.sources]
        ) == _sources_key(data.sources):
            return Outcome.unchanged
        outcome = Outcome.updated
    else:
        m = Membership(
            organisation_id=org_id,
            state_id=state_id,
            status=data.status.value,
            start_on=data.start_on,
            sources=[],
        )
        session.add(m)
        outcome = Outcome.created
    for k, v in wanted.items():
        setattr(m, k, v)
    m.sources = [source_service.upsert(session, s) for s in data.sources]
    session.flush()
    return outcome
