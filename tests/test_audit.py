"""The audit log: a row for every acknowledged write and admin action, in the write's own
transaction; a structured log line for every refused or failed attempt; GET /v1/audit."""

import datetime as dt
import json
from typing import Any

import pytest
from alembic import command
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy import select, text

from app import writes
from app.auth import service as auth_service
from app.callers import Scope
from app.config import Settings
from app.db import create_db_engine
from app.main import create_app
from app.models import ApiKey, AuditEntry
from app.observability import configure_logging
from tests.conftest import ThrowawayDatabases, Writable, alembic_config
from tests.helpers import assert_problem

CAPTURED = pytest.CaptureFixture[str]
EVENT = "2025-04-20-audited-statement"


def new_event(event_id: str = EVENT) -> dict[str, Any]:
    return {
        "id": event_id,
        "kind": "diplomatic_action",
        "category": "statement",
        "date": "2025-04-20",
        "date_precision": "day",
        "title": "An audited statement",
        "summary": "Written by the audit tests.",
        "participants": [{"state": "MLI", "role": "initiator"}],
        "sources": [{"url": "https://example.org/test/audit", "publisher": "Test Gazette"}],
    }


def entries(w: Writable) -> list[AuditEntry]:
    with w.session() as s:
        return list(s.scalars(select(AuditEntry).order_by(AuditEntry.id)))


def entry_for(w: Writable, response: Any) -> AuditEntry:
    """The one audit row of this response, found by its request id."""
    request_id = response.headers["x-request-id"]
    with w.session() as s:
        [row] = s.scalars(select(AuditEntry).where(AuditEntry.request_id == request_id)).all()
        return row


def audit_lines(capsys: CAPTURED) -> list[dict[str, Any]]:
    lines = [json.loads(x) for x in capsys.readouterr().err.splitlines() if x.startswith("{")]
    return [x for x in lines if x.get("audit") is True]


def key_id(w: Writable, name: str) -> int:
    with w.session() as s:
        found = s.scalar(select(ApiKey.id).where(ApiKey.name == f"test-{name}"))
        assert found is not None
        return found


@pytest.fixture(autouse=True)
def json_logs() -> None:
    configure_logging("INFO", "json")


class TestAcknowledgedWrites:
    def test_create_update_delete_an_event(self, writable: Writable) -> None:
        c = writable.client
        created = c.post("/v1/events", json=new_event(), headers=writable.auth("editor"))
        assert created.status_code == 201, created.text
        row = entry_for(writable, created)
        assert (row.method, row.path, row.action) == ("POST", "/v1/events", "create_event")
        # Every resource the write created: the event, and the source it cites for the first time.
        targets = (row.target or "").split(", ")
        assert f"event/{EVENT}" in targets
        assert any(target.startswith("source/") for target in targets)
        assert row.status == 201
        assert row.key_id == key_id(writable, "editor")
        assert (row.key_name, row.scopes) == ("test-editor", "editor")
        assert row.client_ip == "testclient"
        assert row.at <= dt.datetime.now(dt.UTC)

        etag = created.headers["etag"]
        patched = c.patch(
            f"/v1/events/{EVENT}",
            json={"title": "An audited statement, corrected"},
            headers={
                **writable.auth("editor"),
                "If-Match": etag,
                "Content-Type": "application/merge-patch+json",
            },
        )
        assert patched.status_code == 200, patched.text
        row = entry_for(writable, patched)
        assert (row.action, row.target, row.status) == ("update_event", f"event/{EVENT}", 200)

        deleted = c.delete(
            f"/v1/events/{EVENT}",
            headers={**writable.auth("editor"), "If-Match": patched.headers["etag"]},
        )
        assert deleted.status_code == 204
        row = entry_for(writable, deleted)
        assert (row.action, row.target, row.status) == ("delete_event", f"event/{EVENT}", 204)

    def test_keys_and_admin_reads(self, writable: Writable) -> None:
        c = writable.client
        created = c.post(
            "/v1/keys",
            json={"name": "audited-key", "scopes": ["editor"]},
            headers=writable.auth("admin"),
        )
        assert created.status_code == 201
        new_id = created.json()["id"]
        row = entry_for(writable, created)
        assert (row.action, row.target, row.status) == ("create_key", f"key/{new_id}", 201)
        assert row.scopes == "admin"
        assert created.json()["token"] not in str(vars(row))

        revoked = c.delete(f"/v1/keys/{new_id}", headers=writable.auth("admin"))
        row = entry_for(writable, revoked)
        assert (row.action, row.target, row.status) == ("revoke_key", f"key_id={new_id}", 200)

        # Reading the keys needs the admin scope: an admin action, recorded.
        listed = c.get("/v1/keys", headers=writable.auth("admin"))
        row = entry_for(writable, listed)
        assert (row.method, row.action, row.target, row.status) == ("GET", "list_keys", None, 200)

    def test_webhook_endpoints(self, writable: Writable) -> None:
        c = writable.client
        # This module's own app: let it accept a local receiver URL (never contacted).
        writable.app.state.settings.webhook_allowed_subnets = ["127.0.0.0/8"]
        made = c.post(
            "/v1/webhook-endpoints",
            json={"url": "http://127.0.0.1:9/audit"},
            headers=writable.auth("hooks"),
        )
        assert made.status_code == 201, made.text
        endpoint = made.json()["id"]
        row = entry_for(writable, made)
        assert (row.action, row.target) == ("create_endpoint", f"webhook-endpoint/{endpoint}")
        assert made.json()["secret"] not in str(vars(row))
        # Its own endpoints, read with the webhooks scope: a plain read, not recorded.
        before = len(entries(writable))
        assert c.get("/v1/webhook-endpoints", headers=writable.auth("hooks")).status_code == 200
        assert len(entries(writable)) == before

    def test_public_reads_record_nothing(self, writable: Writable) -> None:
        before = len(entries(writable))
        assert writable.client.get("/v1/timeline?limit=1").status_code == 200
        # A key sent with a public read is not even looked at.
        assert writable.client.get("/v1/states/MLI", headers=writable.auth()).status_code == 200
        assert len(entries(writable)) == before


class TestRefusedAndFailedAttempts:
    """They roll back, so they leave no row: a JSON log line with "audit": true instead."""

    def test_each_is_logged_not_recorded(self, writable: Writable, capsys: CAPTURED) -> None:
        c = writable.client
        made = c.post(
            "/v1/events", json=new_event("2025-04-21-audit-fail"), headers=writable.auth()
        )
        assert made.status_code == 201
        before = len(entries(writable))
        capsys.readouterr()
        attempts = {
            "no-key": c.post("/v1/events", json=new_event("2025-04-22-x")),
            "revoked": c.post(
                "/v1/events", json=new_event("2025-04-22-x"), headers=writable.auth("revoked")
            ),
            "scope": c.post(
                "/v1/keys", json={"name": "x", "scopes": ["admin"]}, headers=writable.auth()
            ),
            "invalid": c.post("/v1/events", json={"id": "bad id"}, headers=writable.auth()),
            "stale": c.patch(
                "/v1/events/2025-04-21-audit-fail",
                json={"title": "Too late"},
                headers={
                    **writable.auth(),
                    "If-Match": '"999"',
                    "Content-Type": "application/merge-patch+json",
                },
            ),
            "conflict": c.post(
                "/v1/events", json=new_event("2025-04-21-audit-fail"), headers=writable.auth()
            ),
        }
        expected = {"no-key": 401, "revoked": 401, "scope": 403, "invalid": 422, "stale": 412}
        expected["conflict"] = 409
        assert {k: r.status_code for k, r in attempts.items()} == expected
        assert len(entries(writable)) == before

        lines = {line["request_id"]: line for line in audit_lines(capsys)}
        for name, response in attempts.items():
            line = lines[response.headers["x-request-id"]]
            assert line["status"] == response.status_code, name
            assert line["level"] == "warning"
            outcome = "refused" if response.status_code in (401, 403) else "failed"
            assert line["outcome"] == outcome, name
            assert line["method"] in {"POST", "PATCH"} and line["path"].startswith("/v1/")
            assert line["client_ip"] == "testclient"
        assert lines[attempts["no-key"].headers["x-request-id"]]["key_id"] is None
        scope = lines[attempts["scope"].headers["x-request-id"]]
        assert (scope["key_name"], scope["scopes"], scope["action"]) == (
            "test-editor",
            ["editor"],
            "create_key",
        )
        stale = lines[attempts["stale"].headers["x-request-id"]]
        assert stale["target"] == "id=2025-04-21-audit-fail"

    def test_a_failed_audit_insert_fails_the_write(self, databases: ThrowawayDatabases) -> None:
        """The row and the write share one transaction: if the row cannot be written, the write
        is not acknowledged and not committed."""
        url = databases.new()
        command.upgrade(alembic_config(url), "head")
        engine = create_db_engine(url)
        with writes.session_factory(engine).begin() as session:
            _, token = auth_service.create_key(session, "lonely-admin", [Scope.admin])
        with engine.begin() as conn:
            conn.execute(text("DROP TABLE audit_entry"))
        app = create_app(Settings(database_url=url, webhook_worker="off"))
        with TestClient(app, raise_server_exceptions=False) as client:
            response = client.post(
                "/v1/keys",
                json={"name": "never-made", "scopes": ["editor"]},
                headers={"Authorization": f"Bearer {token}"},
            )
        assert response.status_code >= 500
        with writes.session_factory(engine)() as session:
            names = set(session.scalars(select(ApiKey.name)))
        assert names == {"lonely-admin"}
        app.state.engine.dispose()
        engine.dispose()


class TestAuditEndpoint:
    def test_admin_only_and_never_cached(self, writable: Writable) -> None:
        c = writable.client
        assert_problem(c.get("/v1/audit"), 401)
        assert_problem(c.get("/v1/audit", headers=writable.auth("editor")), 403)
        response = c.get("/v1/audit", headers=writable.auth("admin"))
        assert response.status_code == 200
        assert response.headers["cache-control"] == "no-store"

    def test_newest_first_with_a_cursor(self, writable: Writable) -> None:
        c = writable.client
        for n in range(3):
            made = c.post(
                "/v1/events", json=new_event(f"2025-04-2{3 + n}-paged"), headers=writable.auth()
            )
            assert made.status_code == 201
        every = [e.id for e in entries(writable)]
        seen: list[int] = []
        cursor: str | None = None
        while True:
            params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
            page = c.get("/v1/audit", params=params, headers=writable.auth("admin")).json()
            seen += [item["id"] for item in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        # Reading the audit log is itself an admin action, recorded after each page.
        assert seen == sorted(every, reverse=True)

    def test_filters(self, writable: Writable) -> None:
        c = writable.client
        admin = writable.auth("admin")
        made = c.post("/v1/events", json=new_event("2025-04-26-filtered"), headers=writable.auth())
        assert made.status_code == 201
        editor_id = key_id(writable, "editor")
        by_key = c.get(f"/v1/audit?key={editor_id}&limit=500", headers=admin).json()["items"]
        assert by_key and {e["key_name"] for e in by_key} == {"test-editor"}
        created = c.get("/v1/audit?action=create_event", headers=admin).json()["items"]
        assert created and {e["action"] for e in created} == {"create_event"}
        assert {"id", "at", "request_id", "scopes", "method", "path", "target", "status"} <= set(
            created[0]
        )
        latest = created[0]["at"]
        since = c.get("/v1/audit", params={"since": latest}, headers=admin).json()["items"]
        assert since and all(e["at"] >= latest for e in since)
        naive = latest.removesuffix("Z")
        assert c.get("/v1/audit", params={"since": naive}, headers=admin).json()["items"]
        future = c.get("/v1/audit?since=2999-01-01T00:00:00Z", headers=admin).json()
        assert future == {"items": [], "next_cursor": None}
        assert_problem(c.get("/v1/audit?limit=0", headers=admin), 422, "limit")

    def test_documented(self, writable: Writable) -> None:
        spec = writable.client.get("/openapi.json").json()
        op = spec["paths"]["/v1/audit"]["get"]
        assert op["tags"] == ["Audit"]
        assert {"ApiKey": []} in op["security"]
        assert {"401", "403", "422"} <= set(op["responses"])
        assert {p["name"] for p in op["parameters"]} == {
            "key",
            "action",
            "since",
            "limit",
            "cursor",
        }


def test_every_operation_has_a_distinct_action_name() -> None:
    """`action` is the route's name, so it must identify one operation."""
    names = [
        route.name
        for route in create_app().routes
        if isinstance(route, APIRoute) and route.include_in_schema
        for _ in route.methods
    ]
    assert "create_event" in names and "list_audit" in names
    assert len(names) == len(set(names)), sorted(names)
