"""The editorial write API: keys and scopes, validation, idempotency, ETags, soft deletes."""

import datetime as dt
import subprocess
import sys
import threading
import time
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from app.errors import PreconditionFailed
from app.events import service as event_service
from app.events.schemas import EventDetail
from app.models import Event, Revision
from tests import oracle
from tests.conftest import Writable
from tests.helpers import assert_problem, ids

SHOOT_DOWN = "2025-04-01-algeria-shoots-down-malian-drone"
# Read at collection, before any test runs (test_oracle_unchanged).
SEED_FILES = sorted(p for p in oracle.SEED.rglob("*") if p.is_file())
SEED_AT_START = {path: path.read_bytes() for path in SEED_FILES}
SOURCE = {
    "url": "https://example.org/test/a-new-report",
    "publisher": "Test Gazette",
    "published_on": "2025-04-20",
    "language": "en",
}


# Three states in three roles: three pairs of states.
THREE_STATES = [
    {"state": "MLI", "role": "initiator"},
    {"state": "DZA", "role": "target"},
    {"state": "NER", "role": "affected"},
]


def new_event(event_id: str = "2025-04-20-test-statement", **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": event_id,
        "kind": "diplomatic_action",
        "category": "statement",
        "date": "2025-04-20",
        "date_precision": "day",
        "title": "A test statement",
        "summary": "Written by the test suite.",
        "participants": [{"state": "MLI", "role": "initiator"}, {"state": "DZA", "role": "target"}],
        "sources": [SOURCE],
        "tags": ["test"],
    }
    body.update(changes)
    return body


# What a GET, and the answer to a write, add to the event its revision records.
CITED = {"permalink", "citation"}


def version_of(response: Any) -> int:
    """The resource version in a served ETag ("<version>-<content hash>")."""
    return int(response.headers["etag"].strip('"').split("-")[0])


def counts(w: Writable) -> tuple[int, int]:
    with w.session() as s:
        return (
            s.scalar(select(func.count()).select_from(Event)) or 0,
            s.scalar(select(func.count()).select_from(Revision)) or 0,
        )


def create(w: Writable, body: dict[str, Any]) -> Any:
    response = w.client.post("/v1/events", json=body, headers=w.auth())
    assert response.status_code == 201, response.text
    return response


class TestAuthentication:
    def test_no_key(self, writable: Writable) -> None:
        response = writable.client.post("/v1/events", json=new_event())
        assert_problem(response, 401)
        assert response.headers["www-authenticate"].startswith("Bearer")

    @pytest.mark.parametrize("token", ["dtl_notarealkey", "nonsense", ""])
    def test_unknown_key(self, writable: Writable, token: str) -> None:
        response = writable.client.post(
            "/v1/events", json=new_event(), headers={"Authorization": f"Bearer {token}"}
        )
        body = assert_problem(response, 401)
        assert token not in body["detail"] or not token

    def test_revoked_key(self, writable: Writable) -> None:
        response = writable.client.post(
            "/v1/events", json=new_event(), headers=writable.auth("revoked")
        )
        assert_problem(response, 401)

    def test_key_without_the_scope(self, writable: Writable) -> None:
        response = writable.client.post(
            "/v1/events", json=new_event(), headers=writable.auth("hooks")
        )
        body = assert_problem(response, 403)
        assert "editor" in body["detail"]
        assert writable.tokens["hooks"] not in response.text

    def test_reads_need_no_key(self, writable: Writable) -> None:
        assert writable.client.get("/v1/timeline?limit=1").status_code == 200


class TestKeys:
    def test_admin_lists_creates_and_revokes(self, writable: Writable) -> None:
        c = writable.client
        assert_problem(c.get("/v1/keys", headers=writable.auth("editor")), 403)
        created = c.post(
            "/v1/keys",
            json={"name": "api-made", "scopes": ["editor"]},
            headers=writable.auth("admin"),
        )
        assert created.status_code == 201
        token = created.json()["token"]
        assert token.startswith("dtl_") and len(token) > 40
        listed = c.get("/v1/keys", headers=writable.auth("admin")).json()["items"]
        assert "api-made" in [k["name"] for k in listed]
        assert token not in str(listed)
        ok = c.post(
            "/v1/events",
            json=new_event("2025-04-21-made-with-api-key"),
            headers={"Authorization": f"Bearer {token}"},
        )
        assert ok.status_code == 201
        key_id = created.json()["id"]
        assert c.delete(f"/v1/keys/{key_id}", headers=writable.auth("admin")).json()["revoked_at"]
        after = c.post(
            "/v1/events",
            json=new_event("2025-04-22-after-revoke"),
            headers={"Authorization": f"Bearer {token}"},
        )
        assert_problem(after, 401)
        assert_problem(
            c.post(
                "/v1/keys",
                json={"name": "api-made", "scopes": ["editor"]},
                headers=writable.auth("admin"),
            ),
            409,
        )
        assert_problem(c.delete("/v1/keys/999999", headers=writable.auth("admin")), 404)

    def test_command_line(self, writable: Writable) -> None:
        def run(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [sys.executable, "-m", "app.keys", "--database-url", writable.url, *args],
                capture_output=True,
                text=True,
                check=False,
            )

        made = run("create", "--name", "cli-key", "--scope", "editor", "--scope", "webhooks")
        assert made.returncode == 0, made.stderr
        token = made.stdout.strip()
        assert token.startswith("dtl_")
        listing = run("list")
        assert "cli-key" in listing.stdout and "editor webhooks" in listing.stdout
        assert token not in listing.stdout
        response = writable.client.post(
            "/v1/events",
            json=new_event("2025-04-23-made-with-cli-key"),
            headers={"Authorization": f"Bearer {token}"},
        )
        assert response.status_code == 201
        assert run("create", "--name", "cli-key", "--scope", "editor").returncode == 1
        assert "--scope" in run("create", "--help").stdout


class TestCreate:
    def test_created_event_is_served(self, writable: Writable) -> None:
        response = create(writable, new_event("2025-04-20-created-and-served"))
        assert response.headers["location"] == "/v1/events/2025-04-20-created-and-served"
        assert version_of(response) == 1
        EventDetail.model_validate(response.json())
        got = writable.client.get("/v1/events/2025-04-20-created-and-served")
        assert version_of(got) == 1
        timeline = writable.client.get("/v1/timeline", params={"tag": "test", "limit": 500})
        assert "2025-04-20-created-and-served" in [i["id"] for i in timeline.json()["items"]]

    def test_links_and_claims(self, writable: Writable) -> None:
        body = new_event(
            "2025-04-20-with-links",
            links=[{"type": "in_response_to", "event": SHOOT_DOWN}],
            claims=[
                {
                    "topic": "test-topic",
                    "claimant": {"group": "Test group"},
                    "statement": "Something contested.",
                    "value": 3,
                    "unit": "km",
                    "source": SOURCE,
                }
            ],
        )
        doc = create(writable, body).json()
        assert doc["links"]["outgoing"][0]["event"]["id"] == SHOOT_DOWN
        assert doc["claims"][0]["claimant"] == {"group": "Test group"}
        incoming = writable.client.get(f"/v1/events/{SHOOT_DOWN}").json()["links"]["incoming"]
        assert "2025-04-20-with-links" in [i["event"]["id"] for i in incoming]

    @pytest.mark.parametrize(
        ("changes", "field"),
        [
            ({"participants": [{"state": "XXX", "role": "initiator"}]}, "participants.0.state"),
            (
                {"participants": [{"organisation": "NOPE", "role": "target"}]},
                "participants.0.organisation",
            ),
            ({"category": "war"}, "category"),
            ({"category": "coup"}, "category"),
            ({"end_date": "2025-04-01"}, "end_date"),
            ({"date_precision": "month"}, "date"),
            (
                {"location": {"name": "Nowhere", "lat": 91, "lon": 0, "precision": "point"}},
                "location.lat",
            ),
            ({"sources": []}, "sources"),
            ({"colour": "red"}, "colour"),
            (
                {"links": [{"type": "in_response_to", "event": "2099-01-01-nothing"}]},
                "links.0.event",
            ),
            ({"cameo_code": "999"}, "cameo_code"),
            ({"date": "2025-02-30"}, "date"),
        ],
    )
    def test_invalid_body_is_a_422_naming_the_field_and_writes_nothing(
        self, writable: Writable, changes: dict[str, Any], field: str
    ) -> None:
        before = counts(writable)
        response = writable.client.post(
            "/v1/events", json=new_event("2025-04-20-invalid", **changes), headers=writable.auth()
        )
        body = assert_problem(response, 422)
        locs = [".".join(str(p) for p in e["loc"][1:]) for e in body["errors"]]
        head = field.split(".")[0]
        assert any(loc == field or loc.startswith(head) for loc in locs), (field, locs)
        assert counts(writable) == before

    def test_duplicate_id(self, writable: Writable) -> None:
        assert_problem(
            writable.client.post("/v1/events", json=new_event(SHOOT_DOWN), headers=writable.auth()),
            409,
        )

    def test_not_json(self, writable: Writable) -> None:
        response = writable.client.post(
            "/v1/events",
            content=b"{not json",
            headers={**writable.auth(), "Content-Type": "application/json"},
        )
        assert_problem(response, 422)


class TestIdempotency:
    def test_retry_returns_the_first_response(self, writable: Writable) -> None:
        body = new_event("2025-04-24-idempotent")
        headers = {**writable.auth(), "Idempotency-Key": "retry-1"}
        first = writable.client.post("/v1/events", json=body, headers=headers)
        before = counts(writable)
        second = writable.client.post("/v1/events", json=body, headers=headers)
        assert first.status_code == second.status_code == 201
        assert second.content == first.content
        assert second.headers["etag"] == first.headers["etag"]
        assert second.headers["idempotent-replayed"] == "true"
        assert counts(writable) == before

    def test_same_key_other_body(self, writable: Writable) -> None:
        headers = {**writable.auth(), "Idempotency-Key": "retry-2"}
        assert (
            writable.client.post(
                "/v1/events", json=new_event("2025-04-25-one"), headers=headers
            ).status_code
            == 201
        )
        response = writable.client.post(
            "/v1/events", json=new_event("2025-04-25-two"), headers=headers
        )
        assert_problem(response, 422, "Idempotency-Key")

    def test_keys_are_per_api_key(self, writable: Writable) -> None:
        body = new_event("2025-04-26-per-key")
        a = writable.client.post(
            "/v1/events",
            json=body,
            headers={**writable.auth("editor"), "Idempotency-Key": "shared"},
        )
        b = writable.client.post(
            "/v1/events", json=body, headers={**writable.auth("admin"), "Idempotency-Key": "shared"}
        )
        assert a.status_code == 201
        assert_problem(b, 409)  # not a replay of someone else's response: the id is taken


class TestUpdate:
    def patch(self, w: Writable, event_id: str, body: Any, etag: str | None) -> Any:
        headers = {**w.auth(), "Content-Type": "application/merge-patch+json"}
        if etag is not None:
            headers["If-Match"] = etag
        return w.client.patch(f"/v1/events/{event_id}", json=body, headers=headers)

    def test_fix_a_typo_with_if_match(self, writable: Writable) -> None:
        create(writable, new_event("2025-04-27-typo", title="A tset statement"))
        etag = writable.client.get("/v1/events/2025-04-27-typo").headers["etag"]
        response = self.patch(writable, "2025-04-27-typo", {"title": "A test statement"}, etag)
        assert response.status_code == 200, response.text
        assert response.json()["title"] == "A test statement"
        assert response.json()["tags"] == ["test"]  # untouched fields stay
        assert version_of(response) == 2

    def test_a_patch_may_change_the_kind(self, writable: Writable) -> None:
        """An editor who filed a clash as a statement corrects it: the event keeps its id and
        history, reads back as an incident, and its facets count it as one."""
        create(writable, new_event("2025-04-27-rekind"))
        response = self.patch(
            writable, "2025-04-27-rekind", {"kind": "incident", "category": "protest"}, '"1"'
        )
        assert response.status_code == 200, response.text
        assert (response.json()["kind"], response.json()["category"]) == ("incident", "protest")
        read = writable.client.get("/v1/events/2025-04-27-rekind").json()
        assert (read["kind"], read["category"]) == ("incident", "protest")
        day = {"from": "2025-04-20", "to": "2025-04-20"}
        facets = writable.client.get("/v1/timeline/facets", params=day).json()
        assert facets["kind"] == [{"value": "incident", "count": 1}]
        history = writable.client.get("/v1/events/2025-04-27-rekind/revisions").json()
        changed = history["items"][-1]
        assert (changed["before"]["kind"], changed["after"]["kind"]) == (
            "diplomatic_action",
            "incident",
        )

    def test_missing_if_match(self, writable: Writable) -> None:
        assert_problem(self.patch(writable, SHOOT_DOWN, {"title": "x"}, None), 428)

    def test_stale_if_match_writes_nothing(self, writable: Writable) -> None:
        create(writable, new_event("2025-04-27-stale"))
        assert (
            self.patch(writable, "2025-04-27-stale", {"title": "First"}, '"1"').status_code == 200
        )
        before = counts(writable)
        assert_problem(self.patch(writable, "2025-04-27-stale", {"title": "Second"}, '"1"'), 412)
        assert counts(writable) == before
        assert writable.client.get("/v1/events/2025-04-27-stale").json()["title"] == "First"

    def test_null_removes_and_arrays_replace(self, writable: Writable) -> None:
        create(
            writable, new_event("2025-04-27-merge", location={"name": "Bamako", "place": "bamako"})
        )
        response = self.patch(
            writable, "2025-04-27-merge", {"location": None, "tags": ["other"]}, '"1"'
        )
        assert response.json()["location"] is None
        assert response.json()["tags"] == ["other"]

    def test_pairs_of_states_follow_the_participants(self, writable: Writable) -> None:
        """`between=` reads a table of state pairs derived from the participants: a new
        participant, one removed and a new date all show in its pages at once."""

        def between(pair: str) -> list[str]:
            response = writable.client.get("/v1/timeline", params={"between": pair, "limit": 500})
            return ids(response)

        event_id = "2025-04-27-three-states"
        parts = THREE_STATES
        create(writable, new_event(event_id, participants=parts))
        assert event_id in between("NER,DZA")
        assert event_id in between("DZA,MLI,NER")
        response = self.patch(
            writable, event_id, {"participants": parts[:2], "date": "2025-04-26"}, '"1"'
        )
        assert response.status_code == 200, response.text
        assert event_id not in between("NER,DZA")
        page = writable.client.get(
            "/v1/timeline", params={"between": "MLI,DZA", "from": "2025-04-26", "to": "2025-04-26"}
        )
        assert event_id in ids(page)

    @pytest.mark.parametrize(
        "patch",
        [
            {"summary": "Checked against its sources again."},
            {
                "participants": [
                    {"state": "DZA", "role": "initiator"},
                    {"state": "NER", "role": "target"},
                ]
            },
            {"date": "2025-04-26", "tags": ["test", "moved"]},
            {"kind": "incident", "category": "protest"},
        ],
        ids=["summary", "participants", "date", "kind"],
    )
    def test_a_writes_answer_is_what_a_read_then_serves(
        self, writable: Writable, patch: dict[str, Any]
    ) -> None:
        """The answer to a POST and to a PATCH is built from what the write's revision recorded,
        not read again: it must be the very body and ETag a GET serves afterwards, down to the
        permalink and citation of the version just recorded."""
        event_id = "2025-04-27-answered"

        def served(response: Any) -> tuple[dict[str, Any], int]:
            return response.json(), version_of(response)

        created = create(
            writable, new_event(event_id, links=[{"type": "in_response_to", "event": SHOOT_DOWN}])
        )
        assert served(created) == served(writable.client.get(f"/v1/events/{event_id}"))
        assert "version 1," in created.json()["citation"]
        linking = new_event(
            "2025-04-28-answering", links=[{"type": "follows_up", "event": event_id}]
        )
        create(writable, linking)  # an incoming link, which the revision does not record
        etag = writable.client.get(f"/v1/events/{event_id}").headers["etag"]
        patched = self.patch(writable, event_id, patch, etag)
        assert patched.status_code == 200, patched.text
        assert served(patched) == served(writable.client.get(f"/v1/events/{event_id}"))
        assert patched.json()["links"]["incoming"][0]["event"]["id"] == linking["id"]
        assert patched.json()["permalink"] != created.json()["permalink"]
        assert "version 2," in patched.json()["citation"]
        # Each answer's permalink serves the version that write made, as it was answered.
        for answer in (created, patched):
            pinned = writable.client.get(answer.json()["permalink"])
            assert pinned.status_code == 200, pinned.text
            assert pinned.json() == {k: v for k, v in answer.json().items() if k not in CITED}
        # A PATCH that changes nothing records nothing: its answer cites the version it left.
        again = self.patch(writable, event_id, patch, f'"{version_of(patched)}"')
        assert served(again) == served(patched)
        # The revision, and so the change feed and webhooks, keep the event without them.
        recorded = writable.client.get(f"/v1/events/{event_id}/revisions").json()["items"][-1]
        assert "incoming" not in recorded["after"]["links"]
        assert not CITED & recorded["after"].keys()

    def test_an_edit_that_leaves_the_actors_keeps_their_rows(self, writable: Writable) -> None:
        """Participants and pairs of states are kept, not deleted and inserted again, when an
        edit leaves them as they were; a date change still reaches them."""
        event_id = "2025-04-27-kept-actors"
        parts = THREE_STATES
        create(writable, new_event(event_id, participants=parts))

        def rows() -> list[tuple[Any, ...]]:
            with writable.session() as s:
                event = s.scalars(
                    select(Event)
                    .where(Event.public_id == event_id)
                    .options(selectinload(Event.participants), selectinload(Event.state_pairs))
                ).one()
                kept = [(p.id, p.date) for p in event.participants]
                return kept + [(pair.id, pair.date) for pair in event.state_pairs]

        before = rows()
        response = self.patch(writable, event_id, {"summary": "Read again."}, '"1"')
        assert response.status_code == 200, response.text
        assert rows() == before
        response = self.patch(writable, event_id, {"date": "2025-04-25"}, '"2"')
        assert response.status_code == 200, response.text
        moved = rows()
        assert [row_id for row_id, _ in moved] == [row_id for row_id, _ in before]
        assert {day for _, day in moved} == {dt.date(2025, 4, 25)}
        response = self.patch(writable, event_id, {"participants": parts[1:]}, '"3"')
        assert response.status_code == 200, response.text
        served = [(p["state"], p["role"]) for p in response.json()["participants"]]
        assert served == [("DZA", "target"), ("NER", "affected")]
        pairs = writable.client.get("/v1/timeline", params={"between": "MLI,NER"})
        assert event_id not in ids(pairs)

    @pytest.mark.parametrize(
        ("patch", "field"),
        [
            ({"id": "2025-04-27-renamed"}, "id"),
            ({"sources": []}, "sources"),
            ({"date": "2026-13-01"}, "date"),
            ({"participants": [{"state": "ZZZ", "role": "target"}]}, "participants"),
        ],
    )
    def test_invalid_patch(self, writable: Writable, patch: dict[str, Any], field: str) -> None:
        event_id = f"2025-04-28-invalid-patch-{field}"
        create(writable, new_event(event_id))
        before = counts(writable)
        body = assert_problem(self.patch(writable, event_id, patch, '"1"'), 422)
        assert field in body["detail"]
        assert counts(writable) == before

    def test_bad_if_match(self, writable: Writable) -> None:
        assert_problem(
            self.patch(writable, SHOOT_DOWN, {"title": "x"}, "yesterday"), 422, "If-Match"
        )

    def test_unknown_event(self, writable: Writable) -> None:
        assert_problem(self.patch(writable, "2099-01-01-nothing", {"title": "x"}, '"1"'), 404)

    def test_no_change_is_not_a_revision(self, writable: Writable) -> None:
        create(writable, new_event("2025-04-29-same"))
        before = counts(writable)
        response = self.patch(writable, "2025-04-29-same", {"title": "A test statement"}, '"1"')
        assert response.status_code == 200
        assert version_of(response) == 1
        assert counts(writable) == before


class TestDelete:
    def test_soft_delete(self, writable: Writable) -> None:
        c = writable.client
        create(writable, new_event("2025-04-30-to-delete"))
        assert_problem(c.delete("/v1/events/2025-04-30-to-delete", headers=writable.auth()), 428)
        assert_problem(
            c.delete(
                "/v1/events/2025-04-30-to-delete", headers={**writable.auth(), "If-Match": '"7"'}
            ),
            412,
        )
        response = c.delete(
            "/v1/events/2025-04-30-to-delete", headers={**writable.auth(), "If-Match": '"1"'}
        )
        assert response.status_code == 204
        assert_problem(c.get("/v1/events/2025-04-30-to-delete"), 410)
        timeline = c.get("/v1/timeline", params={"from": "2025-04-30", "to": "2025-04-30"})
        assert "2025-04-30-to-delete" not in [i["id"] for i in timeline.json()["items"]]
        revisions = c.get("/v1/events/2025-04-30-to-delete/revisions").json()["items"]
        assert [r["operation"] for r in revisions] == ["create", "delete"]
        assert revisions[-1]["after"] is None and revisions[-1]["actor"] == "test-editor"
        again = c.delete(
            "/v1/events/2025-04-30-to-delete", headers={**writable.auth(), "If-Match": '"2"'}
        )
        assert_problem(again, 410)
        assert_problem(
            c.post("/v1/events", json=new_event("2025-04-30-to-delete"), headers=writable.auth()),
            409,
        )


class TestRevisions:
    def test_seed_revisions(self, writable: Writable) -> None:
        items = writable.client.get(f"/v1/events/{SHOOT_DOWN}/revisions").json()["items"]
        assert items[0]["operation"] == "create"
        assert items[0]["actor"] == "seed"
        assert items[0]["after"]["id"] == SHOOT_DOWN
        seeded = next(e for e in oracle.events() if e["id"] == SHOOT_DOWN)
        # One revision for the whole event: recorded once its links were set.
        assert sorted(
            (x["type"], x["event"]["id"]) for x in items[0]["after"]["links"]["outgoing"]
        ) == sorted((x["type"], x["event"]) for x in seeded["links"])

    def test_unknown(self, writable: Writable) -> None:
        assert_problem(writable.client.get("/v1/events/2099-01-01-nothing/revisions"), 404)

    def test_as_known_at_reproduces_what_was_served(self, writable: Writable) -> None:
        c = writable.client
        created = create(writable, new_event("2025-05-01-as-known", title="First title")).json()
        time.sleep(0.01)
        between = dt.datetime.now(dt.UTC)
        time.sleep(0.01)
        c.patch(
            "/v1/events/2025-05-01-as-known",
            json={"title": "Second title"},
            headers={**writable.auth(), "If-Match": '"1"'},
        )
        old = c.get("/v1/events/2025-05-01-as-known", params={"as_known_at": between.isoformat()})
        assert old.status_code == 200
        assert old.json()["title"] == "First title"
        # A pinned version is served as recorded: without a permalink and citation of its own.
        assert {k: v for k, v in old.json().items() if k != "links"} == {
            k: v for k, v in created.items() if k != "links" and k not in CITED
        }
        assert c.get("/v1/events/2025-05-01-as-known").json()["title"] == "Second title"
        before_creation = c.get(
            "/v1/events/2025-05-01-as-known", params={"as_known_at": "2020-01-01T00:00:00Z"}
        )
        assert_problem(before_creation, 404)
        assert_problem(
            c.get(f"/v1/events/{SHOOT_DOWN}", params={"as_known_at": "not-a-time"}),
            422,
            "as_known_at",
        )

    def test_timeline_as_known_at(self, writable: Writable) -> None:
        c = writable.client
        now = dt.datetime.now(dt.UTC).isoformat()
        current = c.get("/v1/timeline", params={"limit": 500}).json()["items"]
        then = c.get("/v1/timeline", params={"limit": 500, "as_known_at": now}).json()["items"]
        assert [i["id"] for i in then] == [i["id"] for i in current]
        create(writable, new_event("2025-05-02-later"))
        again = c.get("/v1/timeline", params={"limit": 500, "as_known_at": now}).json()["items"]
        assert "2025-05-02-later" not in [i["id"] for i in again]
        filtered = c.get(
            "/v1/timeline",
            params={"as_known_at": now, "state": "DZA", "category": "ambassador_recall"},
        ).json()["items"]
        assert "2025-04-06-aes-recall-ambassadors-from-algiers" in [i["id"] for i in filtered]
        paged = c.get("/v1/timeline", params={"as_known_at": now, "limit": 2})
        nxt = c.get(paged.json()["links"]["next"]).json()["items"]
        assert nxt and nxt[0]["id"] not in [i["id"] for i in paged.json()["items"]]


class TestOtherResources:
    def test_state_lifecycle(self, writable: Writable) -> None:
        c, auth = writable.client, writable.auth()
        made = c.post(
            "/v1/states",
            json={"code": "SEN", "alpha2": "SN", "name": "Senegal", "aliases": ["Sénégal"]},
            headers=auth,
        )
        assert made.status_code == 201 and version_of(made) == 1
        assert_problem(
            c.post("/v1/states", json={"code": "SEN", "alpha2": "SN", "name": "x"}, headers=auth),
            409,
        )
        patched = c.patch(
            "/v1/states/SEN", json={"capital": "Dakar"}, headers={**auth, "If-Match": '"1"'}
        )
        assert patched.json()["capital"] == "Dakar" and version_of(patched) == 2
        assert_problem(
            c.patch("/v1/states/SEN", json={"code": "SNN"}, headers={**auth, "If-Match": '"2"'}),
            422,
            "code",
        )
        assert_problem(c.delete("/v1/states/MLI", headers={**auth, "If-Match": "*"}), 409)
        assert c.delete("/v1/states/SEN", headers={**auth, "If-Match": '"2"'}).status_code == 204
        assert_problem(c.get("/v1/states/SEN"), 410)
        ops = [r["operation"] for r in c.get("/v1/states/SEN/revisions").json()["items"]]
        assert ops == ["create", "update", "delete"]

    def test_organisation_and_membership_lifecycle(self, writable: Writable) -> None:
        c, auth = writable.client, writable.auth()
        org = {
            "code": "TEST-ORG",
            "name": "Test Organisation",
            "kind": "international_organisation",
            "sources": [SOURCE],
        }
        assert c.post("/v1/organisations", json=org, headers=auth).status_code == 201
        member = {
            "organisation": "TEST-ORG",
            "state": "NER",
            "status": "member",
            "start_on": "2024-01-01",
            "start_precision": "day",
            "end": "open",
            "sources": [SOURCE],
        }
        made = c.post("/v1/memberships", json=member, headers=auth)
        assert made.status_code == 201, made.text
        mid = made.json()["id"]
        assert made.headers["location"] == f"/v1/memberships/{mid}"
        members = c.get("/v1/organisations/TEST-ORG/members", params={"as_of": "2024-06-01"})
        assert [m["state"] for m in members.json()["members"]] == ["NER"]
        bad = c.patch(
            f"/v1/memberships/{mid}", json={"end": "dated"}, headers={**auth, "If-Match": '"1"'}
        )
        assert_problem(bad, 422)
        ended = c.patch(
            f"/v1/memberships/{mid}",
            json={"end": "dated", "end_on": "2024-03-01", "end_precision": "day"},
            headers={**auth, "If-Match": '"1"'},
        )
        assert ended.status_code == 200, ended.text
        members = c.get("/v1/organisations/TEST-ORG/members", params={"as_of": "2024-06-01"})
        assert members.json()["members"] == []
        assert_problem(
            c.patch(
                f"/v1/memberships/{mid}", json={"state": "MLI"}, headers={**auth, "If-Match": '"2"'}
            ),
            422,
            "state",
        )
        assert_problem(
            c.delete("/v1/organisations/TEST-ORG", headers={**auth, "If-Match": "*"}), 409
        )
        assert (
            c.delete(f"/v1/memberships/{mid}", headers={**auth, "If-Match": '"2"'}).status_code
            == 204
        )
        assert (
            c.delete("/v1/organisations/TEST-ORG", headers={**auth, "If-Match": '"1"'}).status_code
            == 204
        )
        assert_problem(c.get("/v1/organisations/TEST-ORG"), 410)
        assert_problem(
            c.post("/v1/memberships", json={**member, "organisation": "NOPE"}, headers=auth),
            422,
            "organisation",
        )

    def test_source_lifecycle(self, writable: Writable) -> None:
        c, auth = writable.client, writable.auth()
        made = c.post(
            "/v1/sources",
            json={"url": "https://example.org/test/s1", "publisher": "P"},
            headers=auth,
        )
        assert made.status_code == 201
        sid = made.json()["id"]
        fixed = c.patch(
            f"/v1/sources/{sid}", json={"title": "A title"}, headers={**auth, "If-Match": '"1"'}
        )
        assert fixed.json()["title"] == "A title"
        assert_problem(
            c.patch(
                f"/v1/sources/{sid}",
                json={"url": "https://example.org/other"},
                headers={**auth, "If-Match": '"2"'},
            ),
            422,
            "url",
        )
        cited = c.get("/v1/sources", params={"q": "devdiscourse"}).json()["items"][0]["id"]
        assert_problem(c.delete(f"/v1/sources/{cited}", headers={**auth, "If-Match": "*"}), 409)
        assert (
            c.delete(f"/v1/sources/{sid}", headers={**auth, "If-Match": '"2"'}).status_code == 204
        )
        assert_problem(c.get(f"/v1/sources/{sid}"), 410)
        assert_problem(c.get("/v1/sources/999999"), 404)


class TestChangeFeed:
    def test_feed_in_order_with_tombstones(self, writable: Writable) -> None:
        c = writable.client
        first = c.get("/v1/changes", params={"limit": 5}).json()
        assert [i["revision"] for i in first["items"]] == sorted(
            i["revision"] for i in first["items"]
        )
        follow = c.get("/v1/changes", params={"since": first["next_since"], "limit": 5}).json()
        assert follow["items"][0]["revision"] > first["items"][-1]["revision"]
        create(writable, new_event("2025-05-03-feed"))
        c.delete("/v1/events/2025-05-03-feed", headers={**writable.auth(), "If-Match": '"1"'})
        everything: list[dict[str, Any]] = []
        since = None
        while True:
            page = c.get(
                "/v1/changes", params={"limit": 1000, **({"since": since} if since else {})}
            ).json()
            everything.extend(page["items"])
            since = page["next_since"]
            if not page["has_more"]:
                break
        mine = [i for i in everything if i["id"] == "2025-05-03-feed"]
        assert [i["operation"] for i in mine] == ["create", "delete"]
        assert mine[-1]["data"] is None

    def test_bad_position(self, writable: Writable) -> None:
        assert_problem(
            writable.client.get("/v1/changes", params={"since": "garbage!"}), 422, "since"
        )


class TestConcurrency:
    def test_two_writers_with_the_same_etag_one_wins(self, writable: Writable) -> None:
        """Two real connections: A holds its write open while B tries with the same ETag."""
        from app.db import begin_write

        create(writable, new_event("2025-05-04-race"))
        a, b = writable.session(), writable.session()
        begin_write(a)
        event_service.update(a, "2025-05-04-race", {"title": "A wins"}, 1, "writer-a")
        outcome: dict[str, Any] = {}

        b_started = threading.Event()

        def writer_b() -> None:
            try:
                b_started.set()
                begin_write(b)
                event_service.update(b, "2025-05-04-race", {"title": "B wins"}, 1, "writer-b")
                b.commit()
                outcome["b"] = "committed"
            except PreconditionFailed:
                b.rollback()
                outcome["b"] = "412"

        thread = threading.Thread(target=writer_b)
        thread.start()
        assert b_started.wait(30)
        blocked_on_a(writable, thread)
        a.commit()
        thread.join(timeout=10)
        a.close()
        b.close()
        assert outcome == {"b": "412"}
        got = writable.client.get("/v1/events/2025-05-04-race")
        assert got.json()["title"] == "A wins"
        assert version_of(got) == 2

    def test_more_writers_than_threads_all_commit(self, writable: Writable) -> None:
        """Six writers at once through one thread: none may hold the database's write lock
        while waiting for the thread (app.db.one_writer). Without that, the second writer sat
        in BEGIN IMMEDIATE on the only thread until SQLite's lock wait ran out: a 503."""
        from fastapi.testclient import TestClient

        from app.config import Settings
        from app.main import create_app

        settings = Settings(
            database_url=writable.url,
            cursor_secret="test-secret",
            webhook_worker="off",
            threadpool_size=1,
        )
        statuses: list[int] = []
        with TestClient(create_app(settings)) as client:

            def write(n: int) -> None:
                body = new_event(f"2025-05-05-writer-{n}")
                response = client.post("/v1/events", json=body, headers=writable.auth())
                statuses.append(response.status_code)

            threads = [threading.Thread(target=write, args=(n,)) for n in range(6)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=60)
        assert statuses == [201] * 6


def test_seed_reload_after_writes_records_nothing_new(writable: Writable) -> None:
    from app.config import PROJECT_ROOT
    from app.seed import load

    with writable.session() as s:
        load(s, PROJECT_ROOT / "seed", progress=lambda _: None)
        s.flush()
        before = s.scalar(select(func.count()).select_from(Revision))
        report = load(s, PROJECT_ROOT / "seed", progress=lambda _: None)
        assert report.counts["created"] == report.counts["updated"] == 0
        assert s.scalar(select(func.count()).select_from(Revision)) == before
        s.rollback()


def test_a_revisions_before_is_the_event_as_served_just_before(writable: Writable) -> None:
    """What an update or a delete records as `before` is the event as it was served just before
    (its own fields and outgoing links), read from its stored document: also after a write to
    another event changed a source it cites, and across a change of kind."""
    w, event_id = writable, "2025-04-28-before"
    create(w, new_event(event_id))

    def served() -> dict[str, Any]:
        doc: dict[str, Any] = w.client.get(f"/v1/events/{event_id}").json()
        doc["links"].pop("incoming")
        return {key: value for key, value in doc.items() if key not in CITED}

    def last_before() -> Any:
        return w.client.get(f"/v1/events/{event_id}/revisions").json()["items"][-1]["before"]

    def patch(body: dict[str, Any]) -> None:
        headers = {**w.auth(), "Content-Type": "application/merge-patch+json", "If-Match": "*"}
        response = w.client.patch(f"/v1/events/{event_id}", json=body, headers=headers)
        assert response.status_code == 200, response.text

    was = served()
    patch({"title": "A test statement, corrected"})
    assert last_before() == was
    # Another event cites the same source with a new title: this event's document changes.
    create(w, new_event("2025-04-28-other", sources=[{**SOURCE, "title": "A retitled report"}]))
    was = served()
    assert was["sources"][0]["title"] == "A retitled report"
    patch({"summary": "Edited after its source was."})
    assert last_before() == was
    was = served()
    patch({"kind": "incident", "category": "protest"})
    assert last_before() == was
    was = served()
    deleted = w.client.delete(f"/v1/events/{event_id}", headers={**w.auth(), "If-Match": "*"})
    assert deleted.status_code == 204, deleted.text
    assert last_before() == was


def test_oracle_unchanged() -> None:
    """The write tests use their own database: the seed files the other tests compare the API
    against are as they were when the run began, and the oracle's cached copy of them (shared by
    every test, and mutable) still says what the files say."""
    assert {path: path.read_bytes() for path in SEED_FILES} == SEED_AT_START
    assert oracle.events() == oracle.events.__wrapped__()
    assert oracle.memberships() == oracle.memberships.__wrapped__()


def blocked_on_a(writable: Writable, b: threading.Thread) -> None:
    """Until writer B waits on writer A's lock. PostgreSQL shows the wait (a backend waiting on
    a lock); SQLite does not, so there B must still be running a moment after it started: its
    BEGIN IMMEDIATE cannot pass A's."""
    if writable.engine.dialect.name != "postgresql":
        b.join(timeout=0.2)
        assert b.is_alive(), "B finished while A held the lock"
        return
    deadline = time.monotonic() + 30
    with writable.engine.connect() as conn:
        while not conn.exec_driver_sql(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND wait_event_type = 'Lock'"
        ).scalar_one():
            assert time.monotonic() < deadline, "B never waited on A's lock"
            conn.rollback()
            time.sleep(0.01)
