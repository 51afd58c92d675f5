"""Webhooks as an integrator receives them: every type in the catalogue is produced through the
API, delivered by the app's own embedded worker to a real HTTP receiver on 127.0.0.1, and each
request received is checked with the libraries a receiver uses: `standardwebhooks` verifies its
signature and `jsonschema` validates its body against the schema that
`GET /v1/webhook-event-types` publishes for its type."""

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import pytest
from fastapi.testclient import TestClient
from standardwebhooks import Webhook

from app import writes
from app.auth import service as auth_service
from app.callers import Scope
from app.config import Settings
from app.db import create_db_engine
from app.main import create_app
from tests.conftest import ThrowawayDatabases
from tests.webhooks.conftest import Captured, Receiver

# Only these come from the API under test; the receiver's address is allowlisted, as a
# newsroom's internal receiver would be.
ALLOWED = ["127.0.0.0/8"]
SOURCE = {"url": "https://example.org/consumers/webhooks", "publisher": "Consumer Suite"}
# The embedded worker delivers within milliseconds of each commit; this bounds a broken run.
DELIVERY_DEADLINE_SECONDS = 60.0


@dataclass
class Live:
    client: TestClient
    receiver: Receiver
    tokens: dict[str, str]

    def auth(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}

    def ok(self, response: Any, status: int = 200) -> dict[str, Any]:
        assert response.status_code == status, response.text
        return response.json() if response.content else {}


@pytest.fixture(scope="module")
def live(databases: ThrowawayDatabases, seeded_template: str) -> Iterator[Live]:
    url = databases.copy_of(seeded_template)
    engine = create_db_engine(url)
    tokens = {}
    with writes.session_factory(engine).begin() as session:
        for name, scope in (("editor", Scope.editor), ("hooks", Scope.webhooks)):
            _, tokens[name] = auth_service.create_key(session, f"consumer-{name}", [scope])
    engine.dispose()
    receiver = Receiver()
    settings = Settings(
        database_url=url,
        cursor_secret="test-secret",
        webhook_worker="embedded",
        webhook_allowed_subnets=ALLOWED,
        webhook_poll_interval=0.02,
        # Stated, not read from the environment: `data.url` is checked against them.
        public_base_url=None,
        host="127.0.0.1",
        port=8000,
    )
    app = create_app(settings)
    try:
        with TestClient(app) as client:  # the lifespan starts the embedded worker
            yield Live(client, receiver, tokens)
    finally:
        receiver.close()


def produce_every_type(live: Live) -> None:
    """Create, change and delete one resource of each kind through the public API."""
    c, editor = live.client, live.auth("editor")

    def match(version: int) -> dict[str, str]:
        return {**editor, "If-Match": f'"{version}"'}

    # Events: one that links to another, so the payloads carry links.
    first = {
        "id": "2025-04-20-consumer-suite-statement",
        "kind": "diplomatic_action",
        "category": "denial",
        "date": "2025-04-20",
        "date_precision": "day",
        "title": "Consumer suite statement",
        "summary": "Written by the webhook consumer suite.",
        "participants": [{"state": "MLI", "role": "initiator"}],
        "sources": [SOURCE],
    }
    reply = {
        **first,
        "id": "2025-04-21-consumer-suite-reply",
        "date": "2025-04-21",
        "title": "Consumer suite reply",
        "participants": [{"state": "DZA", "role": "initiator"}],
        "links": [{"type": "in_response_to", "event": first["id"]}],
    }
    live.ok(c.post("/v1/events", json=first, headers=editor), 201)
    live.ok(c.post("/v1/events", json=reply, headers=editor), 201)
    live.ok(c.patch(f"/v1/events/{reply['id']}", json={"title": "Reply, edited"}, headers=match(1)))
    live.ok(c.delete(f"/v1/events/{reply['id']}", headers=match(2)), 204)

    state = {"code": "SEN", "alpha2": "SN", "name": "Senegal", "aliases": ["Sénégal"]}
    live.ok(c.post("/v1/states", json=state, headers=editor), 201)
    live.ok(c.patch("/v1/states/SEN", json={"capital": "Dakar"}, headers=match(1)))

    org = {
        "code": "CONSUMER-ORG",
        "name": "Consumer Suite Organisation",
        "kind": "international_organisation",
        "sources": [SOURCE],
    }
    live.ok(c.post("/v1/organisations", json=org, headers=editor), 201)
    live.ok(
        c.patch("/v1/organisations/CONSUMER-ORG", json={"headquarters": "Dakar"}, headers=match(1))
    )
    member = {
        "organisation": "CONSUMER-ORG",
        "state": "SEN",
        "status": "member",
        "start_on": "2024-01-01",
        "start_precision": "day",
        "end": "open",
        "sources": [SOURCE],
    }
    made = live.ok(c.post("/v1/memberships", json=member, headers=editor), 201)
    path = f"/v1/memberships/{made['id']}"
    ended = {"end": "dated", "end_on": "2024-03-01", "end_precision": "day"}
    live.ok(c.patch(path, json=ended, headers=match(1)))
    live.ok(c.delete(path, headers=match(2)), 204)
    live.ok(c.delete("/v1/organisations/CONSUMER-ORG", headers={**editor, "If-Match": "*"}), 204)
    live.ok(c.delete("/v1/states/SEN", headers={**editor, "If-Match": "*"}), 204)


def settled_deliveries(live: Live, endpoint_id: str) -> list[dict[str, Any]]:
    """The endpoint's delivery log once nothing is pending or in flight."""
    deadline = time.monotonic() + DELIVERY_DEADLINE_SECONDS
    items: list[dict[str, Any]] = []
    while True:
        response = live.client.get(
            f"/v1/webhook-endpoints/{endpoint_id}/deliveries",
            params={"limit": 500},
            headers=live.auth("hooks"),
        )
        # A 503 says "retry", and an integrator polling the log does: on SQLite a keyed read
        # also records the key's last use, a write that can collide with the worker's.
        if response.status_code != 503:
            items = live.ok(response)["items"]
            if items and all(d["status"] not in ("pending", "in_flight") for d in items):
                return items
        assert time.monotonic() < deadline, f"deliveries still queued: {items}"
        time.sleep(0.05)


@pytest.fixture(scope="module")
def delivered(live: Live) -> tuple[dict[str, Any], list[Captured], list[dict[str, Any]]]:
    """An endpoint subscribed to everything, its ping, one change of every kind, and what
    the receiver got."""
    endpoint = live.ok(
        live.client.post(
            "/v1/webhook-endpoints",
            json={"url": live.receiver.url("/everything"), "event_types": ["*"]},
            headers=live.auth("hooks"),
        ),
        201,
    )
    live.ok(
        live.client.post(
            f"/v1/webhook-endpoints/{endpoint['id']}/test", headers=live.auth("hooks")
        ),
        202,
    )
    produce_every_type(live)
    log = settled_deliveries(live, endpoint["id"])
    return endpoint, live.receiver.at("/everything"), log


def published_schemas(live: Live) -> dict[str, dict[str, Any]]:
    items = live.ok(live.client.get("/v1/webhook-event-types"))["items"]
    return {item["type"]: item["payload_schema"] for item in items}


def test_format_checker_checks_dates() -> None:
    """`jsonschema` checks `format: date-time` only with rfc3339-validator installed; without
    it every timestamp would pass unchecked."""
    checker = jsonschema.FormatChecker()
    assert "date-time" in checker.checkers
    assert not checker.conforms("2025-04-01 noon", "date-time")
    assert checker.conforms("2025-04-01T12:00:00Z", "date-time")


def test_every_catalogue_type_is_delivered(live: Live, delivered: Any) -> None:
    _, received, log = delivered
    types = {r.headers["x-timeline-event-type"] for r in received}
    assert types == set(published_schemas(live))
    assert {d["status"] for d in log} == {"succeeded"}
    assert len(received) == len(log)


def test_every_signature_verifies(delivered: Any) -> None:
    endpoint, received, _ = delivered
    webhook = Webhook(endpoint["secret"])
    for request in received:
        payload = webhook.verify(request.body, request.headers)
        assert payload["type"] == request.headers["x-timeline-event-type"]


def test_every_payload_validates_against_its_published_schema(live: Live, delivered: Any) -> None:
    _, received, _ = delivered
    schemas = published_schemas(live)
    checker = jsonschema.FormatChecker()
    failures = []
    for request in received:
        payload = json.loads(request.body)
        schema = schemas[payload["type"]]
        validator_class = jsonschema.validators.validator_for(schema)
        validator_class.check_schema(schema)
        validator = validator_class(schema, format_checker=checker)
        failures += [
            f"{payload['type']}: {'/'.join(map(str, e.absolute_path))}: {e.message}"
            for e in validator.iter_errors(payload)
        ]
    assert not failures, "\n".join(failures)


def test_the_log_holds_the_exact_bodies_received(live: Live, delivered: Any) -> None:
    _, received, log = delivered
    bodies = []
    for item in log:
        detail = live.ok(
            live.client.get(f"/v1/webhook-deliveries/{item['id']}", headers=live.auth("hooks"))
        )
        bodies.append(detail["payload"].encode())
    assert sorted(bodies) == sorted(r.body for r in received)


def test_every_data_url_is_absolute_and_answers(live: Live, delivered: Any) -> None:
    """A receiver follows `data.url` for the full document: an absolute URL (here the
    API's own address, PUBLIC_BASE_URL being unset) that answers 200, or 410 once deleted."""
    _, received, _ = delivered
    payloads = [json.loads(r.body) for r in received]
    changes = [p for p in payloads if p["type"] != "webhook.ping"]
    deleted = {p["data"]["url"] for p in changes if p["type"].endswith(".deleted")}
    for payload in changes:
        url = urlsplit(payload["data"]["url"])
        assert (url.scheme, url.netloc) == ("http", "127.0.0.1:8000"), payload["data"]["url"]
        followed = live.client.get(url.path)
        expected = 410 if payload["data"]["url"] in deleted else 200
        assert followed.status_code == expected, (url.path, followed.text)
