"""How the state of relations between two states is derived from the sourced events.

Nothing here is typed in by hand: every status is the result of the rules below applied, in date
order, to the events in which both states take part as participants. A state acts through its
role on the event: the `initiator` does the act and the `target` undergoes it. An organisation
among the participants (such as the AES on the joint recall of April 2025) changes nothing by
itself; each state listed as initiator counts, so a recall announced by the AES for Mali, Niger
and Burkina Faso recalls each of their ambassadors.

**Representation** is tracked in each direction: "S → R" is the ambassador of the sending
state S in the receiving state R.

| event category | roles | effect |
|---|---|---|
| `ambassador_recall` | S initiator, R target | S → R `recalled` (1) |
| `ambassador_expulsion` | R initiator, S target | S → R `expelled` (1) |
| `ambassador_return` | S initiator, R target | S → R `in_post` (2) |
| `ambassador_summons` | R initiator, S target | S → R `in_post` if it was `unknown` (3) |
| `severance_of_relations` | S and R, either way round | both directions `severed` |
| `airspace_closure` | O initiator, X target | O's airspace `closed` to X's aircraft (1) |
| any other category | | no change; listed in latest events, counted in the tension |

1. The same act twice with no undoing event between (a recall after a recall, an expulsion
   after an expulsion, a closure after a closure, a recall or expulsion after a severance)
   means the first was undone on a date the data lacks: the period between them is `unknown`.
   No return or reopening is invented. A recall after an expulsion is not such a case: the
   sending state withdraws the envoy it was told to remove.
2. An ambassador returns, or a new one takes up the post. After a severance this also
   restores relations, and the other direction becomes `unknown` until an event sets it.
3. Someone was in post to be summoned. Otherwise a summons changes nothing: one made during a
   recall reaches the chargé d'affaires.

Before the first event that applies, representation is `unknown` (the data records no
accreditations) and airspace is `open` (the default for civil aviation; a closure is a recorded
act, and none is recorded). `charge_d_affaires` is part of the vocabulary, but no event
category records a chargé d'affaires taking charge yet, so no rule sets it.

**Diplomatic relations** follow from the two directions on each day: `severed` if a severance
is in force; `downgraded` if either ambassador is recalled or expelled (or a chargé d'affaires
leads the mission); `normal` if both ambassadors are in post; `unknown` otherwise.

**Memberships** come from the membership records (`seed/memberships.yaml`), not from events:
withdrawal and suspension events are dated when they are announced, the records when they take
effect.

**Tension indicator.** `goldstein_sum = Σ goldstein(e)` over the events `e` in which both
states take part, dated in the trailing window `as_of - window_days < e.date <= as_of` (default
90 days). Scores are those of each event's CAMEO code, from -10 (armed force) to +10; the
more negative the sum, the more hostile the period. Events without a CAMEO code count in
`unscored` and add nothing. An event with month or year precision counts from its stored date,
the first day of its month or year.
"""

import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from app.errors import Gone, InvalidParameter, NotFound
from app.events import documents
from app.models import Event, EventLink, Membership, Organisation, Participant, State

# The organisations service's reader, so a membership record has one shape everywhere.
from app.organisations.service import membership_read, name_on
from app.relations.schemas import Airspace, MembershipStanding, Relations, Representation
from app.vocabulary import MEMBER_STATUSES, MembershipEnd, MembershipStatus, ParticipantRole

DEFAULT_WINDOW_DAYS = 90


IN_ORGANISATION = {
    MembershipStanding.founding_member,
    MembershipStanding.member,
    MembershipStanding.suspended,
}
REDUCED = {Representation.recalled, Representation.expelled, Representation.charge_d_affaires}


# --- states and events of a pair -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PairEvent:
    public_id: str
    date: dt.date
    date_precision: str
    kind: str
    category: str
    title: str
    cameo_code: str | None
    goldstein: float | None
    roles: dict[int, frozenset[str]]

    def ref(self) -> dict[str, Any]:
        return {
            "id": self.public_id,
            "date": self.date,
            "date_precision": self.date_precision,
            "category": self.category,
            "title": self.title,
            "url": f"/v1/events/{self.public_id}",
        }

    def has(self, state_id: int, role: ParticipantRole) -> bool:
        return role.value in self.roles.get(state_id, frozenset())


def _state(session: Session, code: str) -> State:
    state = session.scalars(select(State).where(State.code == code)).one_or_none()
    if state is None:
        raise NotFound(f"No state with code {code!r}; codes are ISO 3166-1 alpha-3, like MLI.")
    if state.deleted_at is not None:
        raise Gone(f"State {code!r} was deleted on {state.deleted_at.isoformat()}.")
    return state


def _pair(session: Session, a: str, b: str) -> tuple[State, State]:
    if a == b:
        raise InvalidParameter(["path", "b"], f"give two different states, not {a} twice")
    return _state(session, a), _state(session, b)


def _pair_events(session: Session, a: State, b: State) -> list[PairEvent]:
    """Every live event in which both states take part, oldest first."""
    participant = Participant.__table__.c
    both = (
        select(participant.event_id)
        .where(participant.state_id.in_([a.id, b.id]))
        .group_by(participant.event_id)
        .having(func.count(func.distinct(participant.state_id)) == 2)
    )
    event = Event.__table__.c
    rows = session.execute(
        select(
            event.id,
            event.public_id,
            event.date,
            event.date_precision,
            event.kind,
            event.category,
            event.title,
            event.cameo_code,
            event.goldstein,
        )
        .where(event.id.in_(both), event.deleted_at.is_(None))
        .order_by(event.date, event.public_id)
    ).all()
    roles: dict[int, dict[int, set[str]]] = defaultdict(lambda: defaultdict(set))
    for event_id, state_id, role in session.execute(
        select(participant.event_id, participant.state_id, participant.role).where(
            participant.event_id.in_([r.id for r in rows]), participant.state_id.in_([a.id, b.id])
        )
    ):
        roles[event_id][state_id].add(role)
    return [
        PairEvent(
            public_id=r.public_id,
            date=r.date,
            date_precision=r.date_precision,
            kind=r.kind,
            category=r.category,
            title=r.title,
            cameo_code=r.cameo_code,
            goldstein=r.goldstein,
            roles={sid: frozenset(rs) for sid, rs in roles[r.id].items()},
        )
        for r in rows
    ]


def _data_start(session: Session) -> dt.date | None:
    return session.scalar(select(func.min(Event.date)).where(Event.deleted_at.is_(None)))


# --- step functions ------------------------------------------------------------------------


@dataclass(slots=True)
class Period:
    """One status from `start_on` up to (not including) `end_on`; `end_on` None: still in force."""

    status: str
    start_on: dt.date | None
    start_precision: str | None
    opened_by: PairEvent | None
    note: str | None = None
    end_on: dt.date | None = None
    end_precision: str | None = None
    closed_by: PairEvent | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "start_on": self.start_on,
            "start_precision": self.start_precision,
            "end_on": self.end_on,
            "end_precision": self.end_precision,
            "opened_by": self.opened_by.ref() if self.opened_by else None,
            "closed_by": self.closed_by.ref() if self.closed_by else None,
            "note": self.note,
        }


@dataclass(slots=True)
class Track:
    """A step function built event by event."""

    periods: list[Period] = field(default_factory=list)

    @property
    def current(self) -> Period:
        return self.periods[-1]

    def move(self, status: str, event: PairEvent, note: str | None = None) -> None:
        last = self.current
        last.end_on, last.end_precision, last.closed_by = event.date, event.date_precision, event
        self.periods.append(Period(status, event.date, event.date_precision, event, note))

    def lose_track(self, again: PairEvent, undone: str) -> None:
        """`again` repeats the act that opened the current period, so that act was `undone` on a
        date the data lacks: the period becomes unknown rather than a guess."""
        first = self.current
        act = again.category.replace("_", " ")
        first.note = (
            f"{first.status.capitalize()} on {first.start_on}; the {act} of {again.date} implies"
            f" {undone} on a date the data lacks."
        )
        # Every track spells "the data cannot tell" the same way.
        first.status = Representation.unknown.value

    def finished(self) -> list[Period]:
        # Two events on one day leave a zero-length period between them; it never held.
        kept = [p for p in self.periods if p.start_on is None or p.end_on != p.start_on]
        for earlier, later in pairwise(kept):
            earlier.end_on, earlier.end_precision = later.start_on, later.start_precision
            earlier.closed_by = later.opened_by
        return kept


def _start(status: str, data_start: dt.date | None, note: str) -> Track:
    return Track([Period(status, data_start, "day" if data_start else None, None, note)])


def representation_periods(
    events: Sequence[PairEvent], sender: State, receiver: State, data_start: dt.date | None
) -> list[Period]:
    """The ambassador of `sender` in `receiver`, period by period (rules in the module doc)."""
    track = _start(
        Representation.unknown.value,
        data_start,
        "No earlier event records this ambassador's posting.",
    )
    s, r = sender.id, receiver.id
    initiator, target = ParticipantRole.initiator, ParticipantRole.target
    for e in events:
        now = Representation(track.current.status)
        by_sender = e.has(s, initiator) and e.has(r, target)
        by_receiver = e.has(r, initiator) and e.has(s, target)
        if e.category == "ambassador_recall" and by_sender:
            if now in (Representation.recalled, Representation.severed):
                track.lose_track(e, "a return")
            track.move(Representation.recalled.value, e)
        elif e.category == "ambassador_expulsion" and by_receiver:
            if now in (Representation.expelled, Representation.severed):
                track.lose_track(e, "a return")
            track.move(Representation.expelled.value, e)
        elif e.category == "ambassador_return" and by_sender:
            if now is not Representation.in_post:
                track.move(Representation.in_post.value, e)
        elif e.category == "ambassador_return" and by_receiver:
            # The other side's return restores severed relations; this side is not recorded.
            if now is Representation.severed:
                track.move(
                    Representation.unknown.value,
                    e,
                    "Relations were restored; this ambassador's return is not recorded.",
                )
        elif e.category == "ambassador_summons" and by_receiver:
            if now is Representation.unknown:
                track.move(
                    Representation.in_post.value,
                    e,
                    "An ambassador was in post to be summoned.",
                )
        elif (
            e.category == "severance_of_relations"
            and (by_sender or by_receiver)
            and now is not Representation.severed
        ):
            track.move(Representation.severed.value, e)
    return track.finished()


def airspace_periods(
    events: Sequence[PairEvent], owner: State, other: State, data_start: dt.date | None
) -> list[Period]:
    """Whether `owner` lets `other`'s aircraft use its airspace, period by period."""
    track = _start(Airspace.open.value, data_start, "No closure recorded.")
    for e in events:
        if not (
            e.category == "airspace_closure"
            and e.has(owner.id, ParticipantRole.initiator)
            and e.has(other.id, ParticipantRole.target)
        ):
            continue
        if track.current.status == Airspace.closed.value:
            track.lose_track(e, "a reopening")
        track.move(Airspace.closed.value, e)
    return track.finished()


def _level(one: Representation, other: Representation) -> Relations:
    if Representation.severed in (one, other):
        return Relations.severed
    if one in REDUCED or other in REDUCED:
        return Relations.downgraded
    if one is other is Representation.in_post:
        return Relations.normal
    return Relations.unknown


def relations_periods(ab: list[Period], ba: list[Period]) -> list[Period]:
    """The level of relations, from the two directions' step functions."""
    starts = sorted({p.start_on for p in (*ab, *ba) if p.start_on is not None})
    if not starts:
        return [Period(_level(_at(ab, None), _at(ba, None)).value, None, None, None)]
    out: list[Period] = []
    for day in starts:
        level = _level(_at(ab, day), _at(ba, day)).value
        if out and out[-1].status == level:
            continue
        # The change is credited to the first event (by id) that opened a period that day.
        openers = sorted(
            ((p.opened_by, p.start_precision) for p in (*ab, *ba) if p.start_on == day),
            key=lambda pair: pair[0].public_id if pair[0] else "\uffff",
        )
        opener, precision = openers[0] if openers else (None, "day")
        out.append(Period(level, day, precision, opener))
    return Track(out).finished()


def _at(periods: Sequence[Period], day: dt.date | None) -> Representation:
    return Representation((_covering(periods, day) or periods[0]).status)


def _covering(periods: Sequence[Period], day: dt.date | None) -> Period | None:
    """The period in force on `day`; None for a day before the first period starts."""
    if day is None or periods[0].start_on is None:
        # No events at all: one period, with no start.
        return periods[0]
    found = None
    for p in periods:
        if p.start_on is not None and p.start_on <= day:
            found = p
    return found


# --- memberships over time -----------------------------------------------------------------


def _records(session: Session, *where: Any) -> list[Membership]:
    return list(
        session.scalars(
            select(Membership)
            .where(*where, Membership.deleted_at.is_(None))
            .options(
                selectinload(Membership.organisation).selectinload(Organisation.names),
                selectinload(Membership.state),
                selectinload(Membership.sources),
            )
            .order_by(Membership.start_on, Membership.id)
        )
    )


def _in_force(m: Membership, day: dt.date) -> bool | None:
    """True if the record covers `day`, None if it began and its end is unknown, else False."""
    if m.start_on > day:
        return False
    if m.end_kind == MembershipEnd.open.value:
        return True
    if m.end_kind == MembershipEnd.unknown.value:
        return None
    return m.end_on is not None and day < m.end_on


def standing(records: Sequence[Membership]) -> list[dict[str, Any]]:
    """One state's standing in one organisation as periods that never overlap.

    The records overlap (a suspension interrupts a membership); the periods do not: each day
    falls in at most one, so a frontend can draw them directly. `certain` is false when the
    standing rests on a record whose end the sources do not give: it held from `start_on` and
    may have ended at any time before `end_on`.
    """
    if not records:
        return []
    precision: dict[dt.date, str] = {}
    for m in records:
        if m.end_on is not None and m.end_precision is not None:
            precision.setdefault(m.end_on, m.end_precision)
    for m in records:
        precision[m.start_on] = m.start_precision
    members = [m for m in records if m.status in MEMBER_STATUSES]
    suspensions = [m for m in records if m.status == MembershipStatus.suspended.value]
    exits = [m for m in records if m.status == MembershipStatus.withdrawn.value]

    def latest(items: Iterable[Membership]) -> Membership | None:
        return max(items, key=lambda m: (m.start_on, m.id), default=None)

    # A later record supersedes an earlier one of the same kind, so each day is read from the
    # latest membership (and the latest suspension within it) that began by then.
    steps: list[tuple[dt.date, MembershipStanding, bool, tuple[Membership, ...]]] = []
    for day in sorted(precision):
        base = latest(m for m in members if m.start_on <= day)
        held = _in_force(base, day) if base is not None else False
        if base is not None and held is not False:
            certain = held is True
            suspension = latest(s for s in suspensions if base.start_on <= s.start_on <= day)
            suspended = _in_force(suspension, day) if suspension is not None else False
            if suspension is not None and suspended is not False:
                certain = certain and suspended is True
                steps.append((day, MembershipStanding.suspended, certain, (base, suspension)))
            else:
                steps.append((day, MembershipStanding(base.status), certain, (base,)))
            continue
        exit_record = latest(m for m in exits if m.start_on <= day)
        if exit_record is not None:
            certain = _in_force(exit_record, day) is True
            steps.append((day, MembershipStanding.left, certain, (exit_record,)))
        elif base is not None:
            steps.append((day, MembershipStanding.left, True, (base,)))

    merged: list[tuple[dt.date, MembershipStanding, bool, tuple[Membership, ...]]] = []
    for step in steps:
        if merged and merged[-1][1:] == step[1:]:
            continue
        merged.append(step)
    out = []
    for i, (day, status, certain, basis) in enumerate(merged):
        end_on = merged[i + 1][0] if i + 1 < len(merged) else None
        out.append(
            {
                "status": status.value,
                "certain": certain,
                "start_on": day,
                "start_precision": precision[day],
                "end_on": end_on,
                "end_precision": precision[end_on] if end_on else None,
                "end": (
                    MembershipEnd.dated.value
                    if end_on
                    else (MembershipEnd.open.value if certain else MembershipEnd.unknown.value)
                ),
                "basis": [membership_read(m) for m in basis],
            }
        )
    return out


def _on(periods: Sequence[dict[str, Any]], day: dt.date) -> dict[str, Any] | None:
    for p in periods:
        if p["start_on"] <= day and (p["end_on"] is None or day < p["end_on"]):
            return p
    return None


def membership_history(session: Session, code: str) -> dict[str, Any]:
    """Every state's joins, suspensions and exits in one organisation, as periods."""
    org = session.scalars(
        select(Organisation)
        .where(Organisation.code == code)
        .options(selectinload(Organisation.names))
    ).one_or_none()
    if org is None:
        raise NotFound(f"No organisation with code {code!r}; see GET /v1/organisations.")
    if org.deleted_at is not None:
        raise Gone(f"Organisation {code!r} was deleted on {org.deleted_at.isoformat()}.")
    by_state: dict[str, list[Membership]] = defaultdict(list)
    for m in _records(session, Membership.organisation_id == org.id):
        by_state[m.state.code].append(m)
    return {
        "organisation": org.code,
        "name": org.name,
        "states": [
            {
                "state": state,
                "state_name": records[0].state.name,
                "periods": standing(records),
            }
            for state, records in sorted(by_state.items())
        ],
    }


def _standing_by_organisation(
    session: Session, state: State
) -> dict[str, tuple[Organisation, list[dict[str, Any]]]]:
    by_org: dict[str, list[Membership]] = defaultdict(list)
    for m in _records(session, Membership.state_id == state.id):
        by_org[m.organisation.code].append(m)
    return {
        code: (records[0].organisation, standing(records))
        for code, records in sorted(by_org.items())
    }


def state_memberships(session: Session, code: str, as_of: dt.date) -> dict[str, Any]:
    """Where a state stood in each organisation on `as_of`, organisations it had left included."""
    state = _state(session, code)
    memberships = []
    for org_code, (org, periods) in _standing_by_organisation(session, state).items():
        period = _on(periods, as_of)
        if period is None:
            continue
        memberships.append(
            {
                "organisation": org_code,
                "organisation_name": name_on(org, as_of),
                "status": period["status"],
                "certain": period["certain"],
                "since": period["start_on"],
                "since_precision": period["start_precision"],
                "until": period["end_on"],
                "until_precision": period["end_precision"],
                "end": period["end"],
                "basis": period["basis"],
            }
        )
    return {
        "state": state.code,
        "state_name": state.name,
        "as_of": as_of,
        "memberships": memberships,
    }


def _overlap(
    ours: Sequence[dict[str, Any]], theirs: Sequence[dict[str, Any]], before: dt.date
) -> bool:
    """Both were in the organisation together on some day before `before`."""
    for p in ours:
        for q in theirs:
            if {p["status"], q["status"]} - {s.value for s in IN_ORGANISATION}:
                continue
            start = max(p["start_on"], q["start_on"])
            ends = [x for x in (p["end_on"], q["end_on"]) if x is not None]
            if start < before and (not ends or start < min(ends)):
                return True
    return False


def _shared_memberships(
    session: Session, a: State, b: State, as_of: dt.date
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    ours, theirs = _standing_by_organisation(session, a), _standing_by_organisation(session, b)
    shared, former = [], []
    for code in sorted(ours.keys() & theirs.keys()):
        org, a_periods = ours[code]
        b_periods = theirs[code][1]
        on = {a.code: _on(a_periods, as_of), b.code: _on(b_periods, as_of)}
        standing_of = {
            s: {
                "state": s,
                "status": p["status"],
                "certain": p["certain"],
                "since": p["start_on"],
                "since_precision": p["start_precision"],
            }
            for s, p in on.items()
            if p is not None
        }
        inside = [
            s
            for s, p in on.items()
            if p is not None and MembershipStanding(p["status"]) in IN_ORGANISATION
        ]
        item = {"organisation": code, "name": name_on(org, as_of)}
        if len(inside) == 2:
            shared.append({**item, "states": list(standing_of.values())})
        elif _overlap(a_periods, b_periods, as_of):
            left = [v for v in standing_of.values() if v["status"] == MembershipStanding.left]
            former.append({**item, "left": left, "states": list(standing_of.values())})
    return shared, former


# --- the pair ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PairHistory:
    a: State
    b: State
    data_start: dt.date | None
    events: list[PairEvent]
    a_in_b: list[Period]
    b_in_a: list[Period]
    a_airspace: list[Period]
    b_airspace: list[Period]
    relations: list[Period]


def _history(session: Session, a_code: str, b_code: str) -> PairHistory:
    a, b = _pair(session, a_code, b_code)
    events = _pair_events(session, a, b)
    start = _data_start(session)
    a_in_b = representation_periods(events, a, b, start)
    b_in_a = representation_periods(events, b, a, start)
    return PairHistory(
        a=a,
        b=b,
        data_start=start,
        events=events,
        a_in_b=a_in_b,
        b_in_a=b_in_a,
        a_airspace=airspace_periods(events, a, b, start),
        b_airspace=airspace_periods(events, b, a, start),
        relations=relations_periods(a_in_b, b_in_a),
    )


def _state_ref(state: State) -> dict[str, str]:
    return {"code": state.code, "name": state.name, "url": f"/v1/states/{state.code}"}


def history(session: Session, a: str, b: str) -> dict[str, Any]:
    """Every status of the pair as periods, from the first day of the data."""
    h = _history(session, a, b)

    def periods(items: list[Period]) -> list[dict[str, Any]]:
        return [p.as_dict() for p in items]

    return {
        "a": _state_ref(h.a),
        "b": _state_ref(h.b),
        "data_start": h.data_start,
        "representation": [
            {"sending_state": h.a.code, "receiving_state": h.b.code, "periods": periods(h.a_in_b)},
            {"sending_state": h.b.code, "receiving_state": h.a.code, "periods": periods(h.b_in_a)},
        ],
        "airspace": [
            {"airspace_of": h.a.code, "aircraft_of": h.b.code, "periods": periods(h.a_airspace)},
            {"airspace_of": h.b.code, "aircraft_of": h.a.code, "periods": periods(h.b_airspace)},
        ],
        "relations": periods(h.relations),
        "events": [_event_summary(e) for e in h.events],
    }


def _status_on(periods: Sequence[Period], day: dt.date, before: str) -> dict[str, Any]:
    p = _covering(periods, day)
    if p is None:
        return {
            "status": before,
            "since": None,
            "since_precision": None,
            "set_by": None,
            "note": "The date comes before the first recorded event.",
        }
    return {
        "status": p.status,
        "since": p.start_on if p.opened_by else None,
        "since_precision": p.start_precision if p.opened_by else None,
        "set_by": p.opened_by.ref() if p.opened_by else None,
        "note": p.note,
    }


def _event_summary(e: PairEvent) -> dict[str, Any]:
    return {
        **e.ref(),
        "kind": e.kind,
        "cameo_code": e.cameo_code,
        "goldstein": e.goldstein,
    }


def _tension(events: Sequence[PairEvent], as_of: dt.date, window_days: int) -> dict[str, Any]:
    # Clamped at 1 January of year 1: an early as_of gets a shorter window, not an OverflowError.
    start = as_of - dt.timedelta(days=min(window_days - 1, (as_of - dt.date.min).days))
    inside = [e for e in events if start <= e.date <= as_of]
    scored = [e.goldstein for e in inside if e.goldstein is not None]
    return {
        "goldstein_sum": round(sum(scored), 2),
        "window_days": window_days,
        "window_start": start,
        "window_end": as_of,
        "events": len(scored),
        "unscored": len(inside) - len(scored),
        "formula": "sum of goldstein(e) for events e of both states,"
        " as_of - window_days < e.date <= as_of",
    }


def relations_as_of(
    session: Session, a: str, b: str, as_of: dt.date, *, window_days: int, latest: int
) -> dict[str, Any]:
    """The derived state of relations between `a` and `b` on `as_of`."""
    h = _history(session, a, b)
    shared, former = _shared_memberships(session, h.a, h.b, as_of)
    past = [e for e in h.events if e.date <= as_of]
    return {
        "a": _state_ref(h.a),
        "b": _state_ref(h.b),
        "as_of": as_of,
        "representation": [
            {
                "sending_state": h.a.code,
                "receiving_state": h.b.code,
                **_status_on(h.a_in_b, as_of, Representation.unknown.value),
            },
            {
                "sending_state": h.b.code,
                "receiving_state": h.a.code,
                **_status_on(h.b_in_a, as_of, Representation.unknown.value),
            },
        ],
        "airspace": [
            {
                "airspace_of": h.a.code,
                "aircraft_of": h.b.code,
                **_status_on(h.a_airspace, as_of, Airspace.open.value),
            },
            {
                "airspace_of": h.b.code,
                "aircraft_of": h.a.code,
                **_status_on(h.b_airspace, as_of, Airspace.open.value),
            },
        ],
        "relations": _status_on(h.relations, as_of, Relations.unknown.value),
        "shared_organisations": shared,
        "formerly_shared_organisations": former,
        "latest_events": [_event_summary(e) for e in reversed(past[-latest:] if latest else [])],
        "tension": _tension(h.events, as_of, window_days),
        "history_url": f"/v1/relations/{h.a.code}/{h.b.code}/history",
    }


# --- event threads -------------------------------------------------------------------------


def _walk(start: int, step: Callable[[list[int]], Iterable[tuple[int, int]]]) -> dict[int, int]:
    """Breadth-first over links: every event reachable from `start`, with its distance."""
    depth = {start: 0}
    frontier = [start]
    while frontier:
        reached_now = []
        for origin, reached in step(frontier):
            if reached not in depth:
                depth[reached] = depth[origin] + 1
                reached_now.append(reached)
        frontier = reached_now
    return depth


def thread(session: Session, public_id: str) -> dict[str, Any]:
    """The chain of linked events around one event: what it answered (upstream, transitively)
    and what answered it (downstream, transitively), in date order, with every link's type."""
    row = session.execute(
        select(Event.id, Event.deleted_at).where(Event.public_id == public_id)
    ).one_or_none()
    if row is None:
        raise NotFound(f"No event with id {public_id!r}.")
    if row.deleted_at is not None:
        raise Gone(f"Event {public_id!r} was deleted on {row.deleted_at.isoformat()}.")
    link = EventLink.__table__.c
    live = select(Event.id).where(Event.deleted_at.is_(None))

    def upstream(ids: list[int]) -> Iterable[tuple[int, int]]:
        return session.execute(
            select(link.from_event_id, link.to_event_id).where(
                link.from_event_id.in_(ids), link.to_event_id.in_(live)
            )
        ).tuples()

    def downstream(ids: list[int]) -> Iterable[tuple[int, int]]:
        return session.execute(
            select(link.to_event_id, link.from_event_id).where(
                link.to_event_id.in_(ids), link.from_event_id.in_(live)
            )
        ).tuples()

    position: dict[int, tuple[str, int]] = {}
    position.update((k, ("downstream", d)) for k, d in _walk(row.id, downstream).items())
    position.update((k, ("upstream", d)) for k, d in _walk(row.id, upstream).items())
    position[row.id] = ("self", 0)
    rows = session.execute(
        select(Event.id, Event.public_id, Event.date).where(Event.id.in_(list(position)))
    ).all()
    edges = session.execute(
        select(link.from_event_id, link.to_event_id, link.link_type).where(
            link.from_event_id.in_(list(position)), link.to_event_id.in_(list(position))
        )
    ).all()
    ids = _date_order(rows, [(f, t) for f, t, _ in edges])
    public = {r.id: r.public_id for r in rows}
    items = [
        {**doc, "thread": {"position": position[i][0], "depth": position[i][1]}}
        for i, doc in zip(ids, documents.documents(session, ids), strict=True)
    ]
    rank = {event_id: n for n, event_id in enumerate(ids)}
    links = [
        {"from": public[f], "type": kind, "to": public[t]}
        for f, t, kind in sorted(edges, key=lambda e: (rank[e[0]], rank[e[1]], e[2]))
    ]
    return {"event": public_id, "items": items, "links": links}


def _date_order(rows: Sequence[Any], edges: Sequence[tuple[int, int]]) -> list[int]:
    """Event ids by date; on the same day an event comes after the events it answers, then by id.

    Links point from the later event to the earlier one, so on a shared date they give the order
    the day's events happened in (the accusation before the recall that answers it).
    """
    key = {r.id: (r.date, r.public_id) for r in rows}
    waits: dict[int, set[int]] = defaultdict(set)
    for answer, answered in edges:
        if key[answer][0] == key[answered][0]:
            waits[answer].add(answered)
    done: list[int] = []
    pending = sorted(key, key=key.__getitem__)
    while pending:
        # The earliest event whose same-day predecessors are all placed; a cycle of links,
        # which the data should not hold, falls back to plain date and id order.
        ready = next((i for i in pending if waits[i] <= set(done)), pending[0])
        done.append(ready)
        pending.remove(ready)
    return done
