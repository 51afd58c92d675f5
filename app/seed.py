"""Load the curated seed data: `python -m app.seed`.

Every record is validated with the API's own schemas, then upserted by natural key in one
transaction. A second run finds everything unchanged and writes nothing.
"""

import argparse
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from app import writes
from app.config import PROJECT_ROOT, get_settings
from app.db import create_db_engine
from app.errors import InvalidParameter
from app.events import documents
from app.events import service as event_service
from app.events.schemas import EventCreate
from app.events.service import Refs
from app.models import Event
from app.organisations import service as organisation_service
from app.organisations.schemas import MembershipCreate, OrganisationCreate
from app.places import service as place_service
from app.places.schemas import PlaceCreate
from app.schemas import Outcome
from app.seed_checks import check_events, check_text
from app.sources.schemas import SourceIn
from app.states import service as state_service
from app.states.schemas import StateCreate

DEFAULT_DIR = PROJECT_ROOT / "seed"
SEED_ACTOR = "seed"
# Keys of an event record that are curators' metadata, checked here but not part of the API's
# event: `sources_note` says why no source is known to be published on or after the event's date.
EVENT_SEED_ONLY = ("sources_note",)
SeedModel = TypeVar("SeedModel", bound=BaseModel)


class SeedError(Exception):
    """A seed file is wrong; the message names the file, the record and the field."""


@dataclass(frozen=True)
class Item:
    file: Path
    index: int
    key: str
    data: Any
    meta: dict[str, Any] = field(default_factory=dict)

    def where(self, root: Path) -> str:
        try:
            name = self.file.relative_to(root.parent)
        except ValueError:
            name = self.file
        return f"{name}: record {self.index + 1} ({self.key})"


@dataclass
class Report:
    counts: Counter[str] = field(default_factory=Counter)
    kinds: Counter[str] = field(default_factory=Counter)
    event_outcomes: dict[str, Outcome] = field(default_factory=dict)

    def add(self, kind: str, outcome: Outcome) -> None:
        self.counts[outcome.value] += 1
        self.kinds[kind] += 1


def _field(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(p) for p in loc if p != "body"]
    return ".".join(parts) or "(record)"


def _read(path: Path) -> list[Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise SeedError(f"{path}: not valid YAML: {exc}") from None
    if data is None:
        return []
    if not isinstance(data, list):
        raise SeedError(f"{path}: expected a list of records at the top level")
    return data


def _validate(
    path: Path,
    model: type[SeedModel],
    key: Callable[[dict[str, Any]], str],
    seed_only: tuple[str, ...] = (),
) -> list[Item]:
    items = []
    for index, raw in enumerate(_read(path)):
        label = key(raw) if isinstance(raw, dict) else "?"
        meta = {name: raw.pop(name) for name in seed_only if isinstance(raw, dict) and name in raw}
        try:
            data = model.model_validate(raw)
        except ValidationError as exc:
            problems = "; ".join(
                f"field {_field(e['loc'])}: {str(e['msg']).removeprefix('Value error, ')}"
                for e in exc.errors()
            )
            raise SeedError(f"{path}: record {index + 1} ({label}): {problems}") from None
        items.append(Item(path, index, label, data, meta))
    return items


def _unique(items: list[Item], what: str, root: Path) -> None:
    seen: dict[str, Item] = {}
    for item in items:
        if item.key in seen:
            raise SeedError(
                f"{item.where(root)}: duplicate {what} {item.key!r}, first in "
                f"{seen[item.key].where(root)}"
            )
        seen[item.key] = item


def _walk_sources(value: Any) -> Iterator[SourceIn]:
    if isinstance(value, SourceIn):
        yield value
    elif isinstance(value, BaseModel):
        for name in type(value).model_fields:
            yield from _walk_sources(getattr(value, name))
    elif isinstance(value, list):
        for element in value:
            yield from _walk_sources(element)


def _merge_sources(items: list[Item], root: Path) -> None:
    """Give every citation of a URL the same metadata, or fail on a real disagreement.

    One curator may know a source's title and another not; that is not a conflict. Two
    different titles for the same URL are.
    """
    merged: dict[str, dict[str, Any]] = {}
    origin: dict[tuple[str, str], Item] = {}
    for item in items:
        for source in _walk_sources(item.data):
            known = merged.setdefault(source.url, {})
            for name, value in source.model_dump().items():
                if value is None:
                    continue
                if name in known and known[name] != value:
                    first = origin[(source.url, name)]
                    raise SeedError(
                        f"{item.where(root)}: source {source.url} has {name}={value!r}, but "
                        f"{first.where(root)} gives {known[name]!r}"
                    )
                known[name] = value
                origin.setdefault((source.url, name), item)
    for item in items:
        for source in _walk_sources(item.data):
            for name, value in merged[source.url].items():
                object.__setattr__(source, name, value)


def _check(
    organisations: list[Item], memberships: list[Item], events: list[Item], root: Path
) -> None:
    """The editorial checks of app/seed_checks.py, on the validated records, before any write."""
    problems = check_events(
        (item.data.model_dump() for item in events),
        {item.data.id: [link.model_dump() for link in item.data.links] for item in events},
        {item.data.id: item.meta["sources_note"] for item in events if "sources_note" in item.meta},
    )
    for item in organisations:
        problems += check_text(item.where(root), item.data.description)
    for item in memberships:
        problems += check_text(item.where(root), item.data.note)
    if problems:
        shown = "\n  ".join(str(p) for p in problems[:50])
        more = f"\n  … and {len(problems) - 50} more" if len(problems) > 50 else ""
        raise SeedError(f"{len(problems)} data check(s) failed:\n  {shown}{more}")


def load(session: Session, root: Path, *, progress: Callable[[str], None]) -> Report:
    files = {
        "states": root / "states.yaml",
        "organisations": root / "organisations.yaml",
        "places": root / "places.yaml",
        "memberships": root / "memberships.yaml",
    }
    for path in files.values():
        if not path.exists():
            raise SeedError(f"{path}: missing")
    states = _validate(files["states"], StateCreate, lambda r: f"code={r.get('code')}")
    organisations = _validate(
        files["organisations"], OrganisationCreate, lambda r: f"code={r.get('code')}"
    )
    places = _validate(files["places"], PlaceCreate, lambda r: f"code={r.get('code')}")
    memberships = _validate(
        files["memberships"],
        MembershipCreate,
        lambda r: f"{r.get('organisation')}/{r.get('state')}/{r.get('status')}/{r.get('start_on')}",
    )
    events: list[Item] = []
    for path in sorted((root / "events").glob("*.yaml")):
        events.extend(_validate(path, EventCreate, lambda r: f"id={r.get('id')}", EVENT_SEED_ONLY))
    progress(
        f"validated {len(states)} states, {len(organisations)} organisations, {len(places)} "
        f"places, {len(memberships)} memberships, {len(events)} events"
    )
    for group, what in (
        (states, "state"),
        (organisations, "organisation"),
        (places, "place"),
        (memberships, "membership"),
        (events, "event"),
    ):
        _unique(group, what, root)
    _merge_sources([*organisations, *memberships, *events], root)
    _check(organisations, memberships, events, root)

    report = Report()
    refs = Refs(session)

    def run(kind: str, group: list[Item], upsert: Callable[[Any], Outcome]) -> None:
        for n, item in enumerate(group, 1):
            try:
                report.add(kind, upsert(item.data))
            except InvalidParameter as exc:
                problems = "; ".join(
                    f"field {_field(e['loc'])}: {e['msg']}" for e in (exc.errors or [])
                )
                raise SeedError(f"{item.where(root)}: {problems or exc.detail}") from None
            if n % 25 == 0 or n == len(group):
                progress(f"{kind}: {n}/{len(group)}")

    run("states", states, lambda d: state_service.upsert(session, d, SEED_ACTOR))
    run(
        "organisations",
        organisations,
        lambda d: organisation_service.upsert_organisation(session, d, SEED_ACTOR),
    )
    run("places", places, lambda d: place_service.upsert(session, d, SEED_ACTOR))
    run(
        "memberships",
        memberships,
        lambda d: organisation_service.upsert_membership(session, d, SEED_ACTOR),
    )

    # Links may point forwards in the load order, so every event exists before any is linked.
    befores: dict[str, dict[str, Any]] = {}

    def upsert_event(data: EventCreate) -> Outcome:
        before: dict[str, Any] = {}
        outcome = event_service.upsert(
            session, data, refs, SEED_ACTOR, with_links=False, record=False, before_out=before
        )
        report.event_outcomes[f"id={data.id}"] = outcome
        if before:
            befores[data.id] = before
        return outcome

    run("events", events, upsert_event)
    created = {
        item.key for item in events if report.event_outcomes.get(item.key) is Outcome.created
    }
    for item in events:
        # Linking a just-created event is part of creating it, not an update.
        relinked = event_service.upsert_links(session, item.data, refs) is Outcome.updated
        if (
            relinked
            and item.key not in created
            and report.event_outcomes[item.key] is Outcome.unchanged
        ):
            report.counts[Outcome.unchanged.value] -= 1
            report.counts[Outcome.updated.value] += 1
            report.event_outcomes[item.key] = Outcome.updated
    progress(f"links: {len(events)}/{len(events)}")
    # Revisions are recorded once each event is complete, links included.
    for item in events:
        outcome = report.event_outcomes[item.key]
        if outcome is not Outcome.unchanged:
            event = session.scalars(select(Event).where(Event.public_id == item.data.id)).one()
            event_service.record_change(
                session, event, outcome, befores.get(item.data.id), SEED_ACTOR
            )
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m app.seed",
        description="Validate the seed files and upsert them by natural key in one transaction.",
    )
    parser.add_argument(
        "--dir",
        type=Path,
        default=DEFAULT_DIR,
        help="folder holding states.yaml, organisations.yaml, places.yaml, memberships.yaml and "
        "events/*.yaml (default: the project's seed/)",
    )
    parser.add_argument(
        "--database-url",
        default=None,
        help="SQLAlchemy URL to load into (default: DATABASE_URL, else the local SQLite file)",
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="validate and apply everything, then roll back: reports what a real run would change",
    )
    parser.add_argument("--quiet", action="store_true", help="print only the final summary line")
    args = parser.parse_args(argv)

    def progress(message: str) -> None:
        if not args.quiet:
            print(f"seed: {message}", file=sys.stderr, flush=True)

    url = args.database_url or get_settings().database_url
    engine = create_db_engine(url)
    started = time.perf_counter()
    try:
        with writes.session_factory(engine)() as session:
            try:
                report = load(session, args.dir.resolve(), progress=progress)
            except SeedError as exc:
                session.rollback()
                print(f"seed: FAILED, nothing written: {exc}", file=sys.stderr)
                return 1
            if args.dry_run:
                session.rollback()
            else:
                session.commit()
                # Stored documents that an upgrade or a bulk load left missing or outdated.
                for done, total in documents.fill(session):
                    session.commit()
                    progress(f"event documents: {done}/{total}")
    finally:
        engine.dispose()
    c = report.counts
    k = report.kinds
    print(
        f"seed: {'dry run, rolled back: ' if args.dry_run else ''}{k['states']} states, "
        f"{k['organisations']} organisations, {k['places']} places, {k['memberships']} "
        f"memberships, {k['events']} events: {c['created']} created, {c['updated']} updated, "
        f"{c['unchanged']} unchanged in {time.perf_counter() - started:.1f}s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
