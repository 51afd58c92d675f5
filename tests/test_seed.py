import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.config import PROJECT_ROOT
from app.models import Claim, Event, Membership, Participant, Source
from app.seed import SeedError, load, main
from tests import oracle

SEED = PROJECT_ROOT / "seed"


def counts(session: Session) -> tuple[int, ...]:
    return tuple(
        session.scalar(select(func.count()).select_from(model)) or 0
        for model in (Event, Participant, Claim, Source, Membership)
    )


def copy_seed(tmp_path: Path) -> Path:
    target = tmp_path / "seed"
    shutil.copytree(SEED, target)
    return target


def edit_event(root: Path, file: str, event_id: str, **changes: object) -> None:
    path = root / "events" / file
    records = yaml.safe_load(path.read_text("utf-8"))
    record = next(r for r in records if r["id"] == event_id)
    record.update(changes)
    path.write_text(yaml.safe_dump(records, allow_unicode=True, sort_keys=False), "utf-8")


class TestLoad:
    def test_second_run_changes_nothing(self, session: Session) -> None:
        before = counts(session)
        stamps = session.scalar(select(func.max(Event.updated_at)))
        report = load(session, SEED, progress=lambda _: None)
        assert report.counts["created"] == 0
        assert report.counts["updated"] == 0
        assert report.counts["unchanged"] == sum(report.kinds.values())
        session.flush()
        assert counts(session) == before
        assert session.scalar(select(func.max(Event.updated_at))) == stamps

    def test_every_seeded_event_is_complete(self, session: Session) -> None:
        events = session.scalars(select(Event)).all()
        assert len(events) == len(oracle.events())
        for event in events:
            assert event.category and event.date_precision
            n_sources = session.scalar(
                select(func.count())
                .select_from(Event)
                .join(Event.source_links)
                .where(Event.id == event.id)
            )
            assert n_sources, event.public_id
            n_participants = session.scalar(
                select(func.count()).where(Participant.event_id == event.id)
            )
            assert n_participants, event.public_id

    def test_ids_of_fact_base_events_are_the_published_ones(self) -> None:
        published = dict(
            line.split()
            for line in (SEED / "event-ids.txt").read_text().splitlines()
            if line and not line.startswith("#")
        )
        seeded = {
            e["fact_ref"]: e["id"]
            for e in oracle.events()
            if e.get("fact_ref", "").startswith("EV-")
        }
        assert seeded == published

    def test_a_changed_record_is_updated_in_place(self, session: Session, tmp_path: Path) -> None:
        root = copy_seed(tmp_path)
        edit_event(
            root,
            "2024-2025.yaml",
            "2025-04-07-mali-closes-airspace-to-algeria",
            title="Mali closes its airspace to Algerian aircraft (edited)",
        )
        report = load(session, root, progress=lambda _: None)
        assert report.counts["updated"] == 1
        assert report.counts["created"] == 0
        title = session.scalar(
            select(Event.title).where(
                Event.public_id == "2025-04-07-mali-closes-airspace-to-algeria"
            )
        )
        assert title is not None and title.endswith("(edited)")

    def test_overlapping_children_are_reconciled(self, session: Session, tmp_path: Path) -> None:
        # Keeps some tags, sources and links, drops others and adds new ones: the rewrite must
        # not trip the unique keys on the kept rows (PostgreSQL inserts before it deletes).
        root = copy_seed(tmp_path)
        event_id = "2025-04-07-algeria-recalls-ambassadors-from-mali-and-niger"
        event = next(e for e in oracle.events() if e["id"] == event_id)
        assert len(event["sources"]) >= 2 and event["links"] and event["tags"]
        new_link = {"type": "related_to", "event": "2020-08-18-mali-coup"}
        edit_event(
            root,
            "2024-2025.yaml",
            event_id,
            tags=[*event["tags"][1:], "edited-tag"],
            sources=list(reversed(event["sources"])),
            links=[*event["links"], new_link],
        )
        report = load(session, root, progress=lambda _: None)
        assert report.counts["updated"] == 1
        from app.events.service import get_event

        detail, _version = get_event(session, event_id)
        assert detail["tags"] == sorted([*event["tags"][1:], "edited-tag"])
        assert [s["url"] for s in detail["sources"]] == [
            s["url"] for s in reversed(event["sources"])
        ]
        assert ("related_to", "2020-08-18-mali-coup") in {
            (link["type"], link["event"]["id"]) for link in detail["links"]["outgoing"]
        }
        assert load(session, root, progress=lambda _: None).counts["updated"] == 0


class TestBadSeed:
    def fails(self, session: Session, root: Path) -> str:
        before = counts(session)
        with pytest.raises(SeedError) as caught:
            load(session, root, progress=lambda _: None)
        session.rollback()
        assert counts(session) == before
        return str(caught.value)

    def test_invalid_field_names_file_record_and_field(
        self, session: Session, tmp_path: Path
    ) -> None:
        root = copy_seed(tmp_path)
        edit_event(
            root,
            "2024-2025.yaml",
            "2025-04-06-aes-recall-ambassadors-from-algiers",
            participants=[{"state": "MLI", "role": "instigator"}],
        )
        message = self.fails(session, root)
        assert "2024-2025.yaml" in message
        assert "id=2025-04-06-aes-recall-ambassadors-from-algiers" in message
        assert "participants.0.role" in message

    def test_unknown_reference(self, session: Session, tmp_path: Path) -> None:
        root = copy_seed(tmp_path)
        edit_event(
            root,
            "2020-2023.yaml",
            "2020-08-18-mali-coup",
            participants=[{"state": "XYZ", "role": "affected"}],
        )
        message = self.fails(session, root)
        assert (
            "2020-2023.yaml" in message and "participants.0.state" in message and "XYZ" in message
        )

    def test_event_without_sources(self, session: Session, tmp_path: Path) -> None:
        root = copy_seed(tmp_path)
        edit_event(root, "2020-2023.yaml", "2020-08-18-mali-coup", sources=[])
        assert "field sources" in self.fails(session, root)

    def test_conflicting_source_metadata(self, session: Session, tmp_path: Path) -> None:
        root = copy_seed(tmp_path)
        cited: dict[str, list[str]] = {}
        for e in oracle.events():
            for s in e["sources"]:
                cited.setdefault(s["url"], []).append(e["id"])
        url, (first, *_others) = next((u, ids) for u, ids in cited.items() if len(ids) > 1)
        event = next(e for e in oracle.events() if e["id"] == first)
        path = next(
            p.name
            for p in (root / "events").glob("*.yaml")
            if any(r["id"] == first for r in yaml.safe_load(p.read_text("utf-8")))
        )
        sources = [
            {**s, "publisher": "Somebody else"} if s["url"] == url else s for s in event["sources"]
        ]
        edit_event(root, path, first, sources=sources)
        message = self.fails(session, root)
        assert url in message and "publisher" in message

    def test_duplicate_id(self, session: Session, tmp_path: Path) -> None:
        root = copy_seed(tmp_path)
        records = yaml.safe_load((root / "events" / "2020-2023.yaml").read_text("utf-8"))
        (root / "events" / "zz-dup.yaml").write_text(yaml.safe_dump(records[:1]), "utf-8")
        assert "duplicate event" in self.fails(session, root)

    def test_not_yaml(self, session: Session, tmp_path: Path) -> None:
        root = copy_seed(tmp_path)
        (root / "events" / "zz-broken.yaml").write_text("- id: [unclosed", "utf-8")
        assert "zz-broken.yaml" in self.fails(session, root)


class TestCommandLine:
    def test_help_explains_every_flag(self) -> None:
        out = subprocess.run(
            [sys.executable, "-m", "app.seed", "--help"], capture_output=True, text=True, check=True
        ).stdout
        for flag in ("--dir", "--database-url", "--dry-run", "--quiet"):
            assert flag in out

    def test_dry_run_reports_and_writes_nothing(
        self, database_url: str, session: Session, capsys: pytest.CaptureFixture[str]
    ) -> None:
        before = counts(session)
        assert main(["--database-url", database_url, "--dry-run"]) == 0
        captured = capsys.readouterr()
        summary = captured.out.strip().splitlines()[-1]
        assert summary.startswith("seed: dry run")
        assert "0 created, 0 updated" in summary
        assert "seed: events:" in captured.err
        assert counts(session) == before

    def test_failure_exit_code(
        self, database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        root = copy_seed(tmp_path)
        edit_event(root, "2020-2023.yaml", "2020-08-18-mali-coup", date_precision="week")
        assert main(["--database-url", database_url, "--dir", str(root), "--quiet"]) == 1
        assert "nothing written" in capsys.readouterr().err
