"""The subscription API: ownership, validation, the catalogue, retention."""

import datetime as dt

from sqlalchemy import select

from app.db import begin_write, utcnow
from app.models import WebhookAttempt, WebhookDelivery
from app.webhooks import service
from tests.helpers import assert_problem
from tests.webhooks.conftest import Hooks, Receiver, drain, settled


def test_ownership_and_crud(hooks: Hooks, receiver: Receiver) -> None:
    mine = hooks.endpoint(receiver.url("/own"), description="mine")
    assert mine["secret"].startswith("whsec_")
    theirs = hooks.endpoint(receiver.url("/theirs"), who="admin")
    listed = hooks.client.get("/v1/webhook-endpoints", headers=hooks.auth("hooks")).json()
    ids = {e["id"] for e in listed["items"]}
    assert mine["id"] in ids and theirs["id"] not in ids
    assert "secret" not in listed["items"][0]
    assert_problem(
        hooks.client.get(f"/v1/webhook-endpoints/{theirs['id']}", headers=hooks.auth("hooks")),
        404,
    )
    admin_view = hooks.client.get(
        f"/v1/webhook-endpoints/{mine['id']}", headers=hooks.auth("admin")
    )
    assert admin_view.status_code == 200
    assert_problem(hooks.client.get("/v1/webhook-endpoints", headers=hooks.auth("editor")), 403)
    patched = hooks.client.patch(
        f"/v1/webhook-endpoints/{mine['id']}",
        json={"event_types": ["event.*"], "filter": {"state": "MLI"}},
        headers=hooks.auth("hooks"),
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["filter"] == {"state": ["MLI"]}
    deleted = hooks.client.delete(
        f"/v1/webhook-endpoints/{mine['id']}", headers=hooks.auth("hooks")
    )
    assert deleted.status_code == 204
    assert hooks.deliveries(mine["id"]) == []


def test_filter_is_validated_when_saved(hooks: Hooks, receiver: Receiver) -> None:
    for bad, field in [({"q": "drone"}, "'q'"), ({"between": "MLI"}, "between")]:
        response = hooks.client.post(
            "/v1/webhook-endpoints",
            json={"url": receiver.url(), "filter": bad},
            headers=hooks.auth("hooks"),
        )
        body = assert_problem(response, 422)
        assert body["errors"][0]["loc"] == ["body", "filter"]
        assert field in body["detail"]
    response = hooks.client.post(
        "/v1/webhook-endpoints",
        json={"url": receiver.url(), "event_types": ["source.created"]},
        headers=hooks.auth("hooks"),
    )
    assert_problem(response, 422)


def test_catalogue_has_a_schema_per_type(hooks: Hooks) -> None:
    items = hooks.client.get("/v1/webhook-event-types").json()["items"]
    types = [i["type"] for i in items]
    assert "event.created" in types and "membership.deleted" in types and "webhook.ping" in types
    created = next(i for i in items if i["type"] == "event.created")["payload_schema"]
    assert created["properties"]["type"]["const"] == "event.created"
    # The event as its revision records it: its own links, not the incoming ones.
    links = created["$defs"]["EventRevisionLinks"]
    assert (links["required"], set(links["properties"])) == (["outgoing"], {"outgoing"})


def test_retention_keeps_pending_work(hooks: Hooks, receiver: Receiver) -> None:
    endpoint = hooks.endpoint(receiver.url("/retention"), event_types=["webhook.ping"])
    drain(hooks.worker(), settled(hooks, endpoint["id"]))
    hooks.client.post(f"/v1/webhook-endpoints/{endpoint['id']}/test", headers=hooks.auth("hooks"))
    with hooks.session() as s, s.begin():
        begin_write(s)
        removed = service.enforce_retention(
            s, utcnow() + dt.timedelta(days=91), message_days=90, attempt_days=30
        )
    assert removed["attempts"] >= 1 and removed["deliveries"] >= 1
    remaining = hooks.deliveries(endpoint["id"])
    assert [d.status for d in remaining] == ["pending"]
    with hooks.session() as s:
        assert not s.scalars(
            select(WebhookAttempt)
            .join(WebhookDelivery)
            .where(WebhookDelivery.endpoint_id == endpoint["id"])
        ).all()
