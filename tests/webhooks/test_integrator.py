"""What an integrator meets (issue 22, defects 6 to 11): the first ping after the secret,
absolute URLs, a revoked key's endpoints, other keys' deliveries, what the delivery log shows
of a receiver's answer, and the SSRF rules at registration and at connect time."""

import ipaddress
from collections.abc import Iterator
from typing import Any

import httpcore
import pytest
from alembic import command
from fastapi.testclient import TestClient
from sqlalchemy import select, text
from standardwebhooks import Webhook

from app import addresses, writes
from app import keys as keys_cli
from app.auth import service as auth_service
from app.callers import Scope
from app.config import Settings
from app.db import create_db_engine, utcnow
from app.main import create_app
from app.models import AuditEntry, WebhookEndpoint, WebhookMessage
from app.webhooks import service, ssrf
from tests.conftest import ThrowawayDatabases, alembic_config, revision_before
from tests.helpers import assert_problem
from tests.webhooks.conftest import (
    PUBLIC_BASE_URL,
    Hooks,
    Receiver,
    Reply,
    create_event,
    drain,
    endpoint_row,
    event_body,
    hook_settings,
    settled,
)


def new_hooks_key(hooks: Hooks, name: str) -> tuple[int, dict[str, str]]:
    with hooks.session() as s, s.begin():
        key, token = auth_service.create_key(s, name, [Scope.webhooks])
        return key.id, {"Authorization": f"Bearer {token}"}


# --- defect 6: the ping never races the secret ---------------------------------------------


def test_creating_an_endpoint_sends_nothing_until_asked(hooks: Hooks, receiver: Receiver) -> None:
    endpoint = hooks.endpoint(receiver.url("/quiet"), event_types=["webhook.ping"], ping=False)
    assert hooks.deliveries(endpoint["id"]) == []
    drain(hooks.worker(), lambda: True)
    assert receiver.at("/quiet") == []
    # The receiver has stored the secret from the 201; now it asks for its first message.
    asked = hooks.client.post(
        f"/v1/webhook-endpoints/{endpoint['id']}/test", headers=hooks.auth("hooks")
    )
    assert asked.status_code == 202, asked.text
    drain(hooks.worker(), settled(hooks, endpoint["id"]))
    (ping,) = receiver.at("/quiet")
    payload = Webhook(endpoint["secret"]).verify(ping.body, ping.headers)
    assert payload["type"] == "webhook.ping"
    assert payload["data"] == {"endpoint": endpoint["id"], "reason": "test"}


# --- defect 7: absolute URLs, from configuration only ----------------------------------------


def test_data_url_is_absolute_whatever_the_host_header(hooks: Hooks, receiver: Receiver) -> None:
    endpoint = hooks.endpoint(receiver.url("/absolute"), event_types=["event.created"])
    # A deployment answering any host (ALLOWED_HOSTS=*): a write's Host header must still not
    # reach every subscriber's payload.
    anyhost = TestClient(create_app(hook_settings(hooks.url, allowed_hosts=["*"])))
    response = anyhost.post(
        "/v1/events",
        json=event_body("2025-04-06-test-absolute", ["MLI", "DZA"]),
        headers={**hooks.auth("editor"), "Host": "evil.example"},
    )
    anyhost.app.state.engine.dispose()
    anyhost.app.state.stream_engine.dispose()
    assert response.status_code == 201, response.text
    drain(hooks.worker(), settled(hooks, endpoint["id"]))
    (created,) = [
        r for r in receiver.at("/absolute") if r.headers["x-timeline-event-type"] != "webhook.ping"
    ]
    data = Webhook(endpoint["secret"]).verify(created.body, created.headers)["data"]
    assert data["url"] == f"{PUBLIC_BASE_URL}/v1/events/2025-04-06-test-absolute"


@pytest.mark.parametrize(
    ("settings", "base"),
    [
        (
            {"public_base_url": "https://api.example.org/timeline/"},
            "https://api.example.org/timeline",
        ),
        ({}, "http://127.0.0.1:8000"),
        ({"host": "0.0.0.0", "port": 8080}, "http://127.0.0.1:8080"),  # noqa: S104
        ({"host": "::", "port": 8080}, "http://[::1]:8080"),
    ],
)
def test_the_base_url_comes_from_settings(settings: dict[str, Any], base: str) -> None:
    values = {"public_base_url": None, "host": "127.0.0.1", "port": 8000, **settings}
    assert service.public_base_url(Settings(database_url="sqlite://", **values)) == base


# --- defect 8: revoking a key disables its endpoints -----------------------------------------


def test_revoking_a_key_disables_its_endpoints(hooks: Hooks, receiver: Receiver) -> None:
    key_id, auth = new_hooks_key(hooks, "test-revoked-subscriber")
    made = hooks.client.post(
        "/v1/webhook-endpoints",
        json={"url": receiver.url("/revoked"), "event_types": ["event.*"]},
        headers=auth,
    )
    assert made.status_code == 201, made.text
    endpoint_id = made.json()["id"]
    # Queued before the revocation, not yet sent.
    create_event(hooks, "2025-04-07-test-before-revocation", ["MLI", "DZA"])
    assert [d.status for d in hooks.deliveries(endpoint_id)] == ["pending"]

    revoked = hooks.client.delete(f"/v1/keys/{key_id}", headers=hooks.auth("admin"))
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["webhook_endpoints_disabled"] == [endpoint_id]
    with hooks.session() as s:
        entry = s.scalars(
            select(AuditEntry).where(AuditEntry.request_id == revoked.headers["x-request-id"])
        ).one()
    assert entry.action == "revoke_key"
    assert entry.target == f"key_id={key_id}, webhook-endpoint/{endpoint_id} disabled"
    again = hooks.client.delete(f"/v1/keys/{key_id}", headers=hooks.auth("admin"))
    assert again.json()["webhook_endpoints_disabled"] == [endpoint_id]

    create_event(hooks, "2025-04-07-test-after-revocation", ["MLI", "DZA"])
    drain(hooks.worker(), settled(hooks, endpoint_id))
    assert receiver.at("/revoked") == []
    assert [d.status for d in hooks.deliveries(endpoint_id)] == ["skipped", "skipped"]
    read = hooks.client.get(
        f"/v1/webhook-endpoints/{endpoint_id}", headers=hooks.auth("admin")
    ).json()
    assert (read["enabled"], read["disabled_reason"]) == (False, "revoked")
    refused = hooks.client.post(
        f"/v1/webhook-endpoints/{endpoint_id}/enable", headers=hooks.auth("admin")
    )
    assert "revoked" in assert_problem(refused, 409)["detail"]
    assert endpoint_row(hooks, endpoint_id).enabled is False


def test_revoking_from_the_command_line_disables_too(
    hooks: Hooks, receiver: Receiver, capsys: pytest.CaptureFixture[str]
) -> None:
    key_id, auth = new_hooks_key(hooks, "test-cli-revoked-subscriber")
    made = hooks.client.post(
        "/v1/webhook-endpoints", json={"url": receiver.url("/cli-revoked")}, headers=auth
    )
    endpoint_id = made.json()["id"]
    assert keys_cli.main(["--database-url", hooks.url, "revoke", str(key_id)]) == 0
    assert f"disabled its webhook endpoint {endpoint_id}" in capsys.readouterr().out
    row = endpoint_row(hooks, endpoint_id)
    assert (row.enabled, row.disabled_reason) == (False, "revoked")


def test_a_delivery_queued_for_a_disabled_endpoint_is_never_sent(
    hooks: Hooks, receiver: Receiver
) -> None:
    """A change that committed just after its endpoint was disabled (it still saw it
    enabled) leaves a pending delivery: the worker skips it."""
    endpoint = hooks.endpoint(receiver.url("/late"), event_types=["webhook.ping"], ping=False)
    with hooks.session() as s, s.begin():
        row = s.get(WebhookEndpoint, endpoint["id"])
        assert row is not None
        message = WebhookMessage(
            id=service.new_id("msg_"), type="webhook.ping", payload="{}", created_at=utcnow()
        )
        service._enqueue(s, [row], message, trigger="test")
        # As `service.disable` leaves it, the delivery queued after it aside.
        row.enabled, row.disabled_reason, row.disabled_at = False, "manual", utcnow()
    assert [d.status for d in hooks.deliveries(endpoint["id"])] == ["pending"]
    drain(hooks.worker(), settled(hooks, endpoint["id"]))
    assert receiver.connections == 0
    (delivery,) = hooks.deliveries(endpoint["id"])
    assert (delivery.status, delivery.attempt_count) == ("skipped", 0)


# --- defect 9: another key's delivery is an unknown id ---------------------------------------


def test_another_keys_delivery_answers_as_an_unknown_id(hooks: Hooks, receiver: Receiver) -> None:
    endpoint = hooks.endpoint(receiver.url("/private"), event_types=["webhook.ping"])
    (delivery,) = hooks.deliveries(endpoint["id"])
    _, stranger = new_hooks_key(hooks, "test-stranger")
    unknown = 2_000_000_000
    for template, method in [
        ("/v1/webhook-deliveries/{}", "GET"),
        ("/v1/webhook-deliveries/{}/redeliver", "POST"),
    ]:
        theirs = hooks.client.request(method, template.format(delivery.id), headers=stranger)
        missing = hooks.client.request(method, template.format(unknown), headers=stranger)
        body, expected = assert_problem(theirs, 404), assert_problem(missing, 404)
        assert body["detail"] == expected["detail"].replace(str(unknown), str(delivery.id))
        assert "whep_" not in theirs.text
    mine = hooks.client.get(f"/v1/webhook-deliveries/{delivery.id}", headers=hooks.auth("hooks"))
    assert mine.status_code == 200


# --- defect 10: what the log keeps of a receiver's answer ------------------------------------

SECRET_ANSWER = b"db_password=hunter2\nredis=10.0.0.7:6379"


def test_an_internal_receivers_answer_keeps_only_status_time_and_length(
    hooks: Hooks, receiver: Receiver
) -> None:
    receiver.reply = lambda r: Reply(
        status=500, body=SECRET_ANSWER, headers={"Location": "http://10.0.0.7/admin"}
    )
    endpoint = hooks.endpoint(receiver.url("/internal"), event_types=["webhook.ping"])
    drain(hooks.worker(schedule=(0,)), settled(hooks, endpoint["id"]))
    (delivery,) = hooks.deliveries(endpoint["id"])
    detail = hooks.client.get(f"/v1/webhook-deliveries/{delivery.id}", headers=hooks.auth("hooks"))
    (attempt,) = detail.json()["attempts"]
    assert attempt["response_status"] == 500
    assert attempt["response_bytes"] == len(SECRET_ANSWER)
    assert attempt["duration_ms"] >= 0
    assert attempt["response_body"] is None
    assert "location" not in attempt["response_headers"]
    assert "hunter2" not in detail.text and "10.0.0.7" not in detail.text


def test_a_public_receivers_answer_is_kept(
    hooks: Hooks, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rule is the address the answer came from: here 127.0.0.1 is taken for public, so
    the excerpt is kept; every other address stays internal."""
    loopback = ipaddress.ip_address("127.0.0.1")
    monkeypatch.setattr(addresses, "is_public", lambda ip: ip == loopback)
    receiver.reply = lambda r: Reply(status=400, body=b"missing field")
    endpoint = hooks.endpoint(receiver.url("/public"), event_types=["webhook.ping"])
    drain(hooks.worker(schedule=(0,)), settled(hooks, endpoint["id"]))
    (delivery,) = hooks.deliveries(endpoint["id"])
    detail = hooks.client.get(f"/v1/webhook-deliveries/{delivery.id}", headers=hooks.auth("hooks"))
    (attempt,) = detail.json()["attempts"]
    assert (attempt["response_status"], attempt["response_body"]) == (400, "missing field")
    assert attempt["response_bytes"] == len(b"missing field")


# --- defect 11: SSRF through IPv6 forms of IPv4 addresses, and plain http at connect time -----

EMBEDDED_IPV4 = [
    "https://[::127.0.0.1]/",
    "https://[::ffff:0:127.0.0.1]/",
    "https://[::169.254.169.254]/",
    "https://[::10.0.0.1]/",
    "https://[::8.8.8.8]/",
    "https://[64:ff9b::127.0.0.1]/",
    "https://[64:ff9b:1::a00:1]/",
    "https://[2002:7f00:1::1]/",
]


@pytest.fixture
def strict_client(hooks: Hooks) -> Iterator[TestClient]:
    """The API with nothing allowlisted."""
    app = create_app(hook_settings(hooks.url, webhook_allowed_subnets=[]))
    yield TestClient(app)
    app.state.engine.dispose()
    app.state.stream_engine.dispose()


@pytest.mark.parametrize("url", EMBEDDED_IPV4)
def test_ipv6_forms_of_ipv4_are_refused_when_saved(
    hooks: Hooks, strict_client: TestClient, url: str
) -> None:
    for client in (strict_client, hooks.client):  # nothing, then 127.0.0.0/8, allowlisted
        response = client.post(
            "/v1/webhook-endpoints", json={"url": url}, headers=hooks.auth("hooks")
        )
        body = assert_problem(response, 422)
        assert body["errors"][0]["loc"] == ["body", "url"]
        assert "public address" in body["detail"]


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("8.8.8.8", True),
        ("2001:4860:4860::8888", True),
        ("::ffff:8.8.8.8", True),  # an IPv4-mapped address is its IPv4 address
        ("::ffff:127.0.0.1", False),
        ("::127.0.0.1", False),
        ("::8.8.8.8", False),
        ("::ffff:0:127.0.0.1", False),
        ("::ffff:0:8.8.8.8", False),
        ("64:ff9b::808:808", False),
        ("2002:808:808::1", False),
        ("2001:0:4136:e378:8000:63bf:3fff:fdd2", False),  # Teredo
        ("5f00::1", False),
        ("3fff::1", False),
        ("fd00::1", False),
        ("100.64.0.1", False),
    ],
)
def test_which_addresses_are_public(address: str, public: bool) -> None:
    assert addresses.is_public(ipaddress.ip_address(address)) is public


class NoNetwork:
    """Stands in for the socket layer under the guard: records where a connection would have
    gone, and never opens one (an address the old rules let through may route off this
    machine)."""

    def __init__(self) -> None:
        self.attempts: list[tuple[str, int]] = []

    def __call__(self, backend: Any, host: str, port: int, *args: Any, **kwargs: Any) -> Any:
        self.attempts.append((host, port))
        raise httpcore.ConnectError("no network in this test")


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> NoNetwork:
    recorder = NoNetwork()
    monkeypatch.setattr(httpcore.SyncBackend, "connect_tcp", recorder)
    return recorder


def saved_then_changed(hooks: Hooks, receiver: Receiver, path: str, url: str) -> str:
    """An endpoint saved with an allowed URL, whose URL then changed under the guard's feet (as
    DNS or the allowlist can change)."""
    endpoint = hooks.endpoint(receiver.url(path), event_types=["webhook.ping"])
    with hooks.session() as s, s.begin():
        row = s.get(WebhookEndpoint, endpoint["id"])
        assert row is not None
        row.url = url
    return str(endpoint["id"])


@pytest.mark.parametrize("url", EMBEDDED_IPV4[:4])
def test_ipv6_forms_of_ipv4_are_refused_when_connecting(
    hooks: Hooks, receiver: Receiver, no_network: NoNetwork, url: str
) -> None:
    endpoint_id = saved_then_changed(hooks, receiver, "/embedded-v4", url)
    drain(hooks.worker(schedule=(0,)), settled(hooks, endpoint_id))
    assert no_network.attempts == []
    (delivery,) = hooks.deliveries(endpoint_id)
    assert (delivery.status, delivery.last_error_kind) == ("failed", "ssrf_blocked")


def test_plain_http_is_refused_when_connecting_to_a_public_address(
    hooks: Hooks, receiver: Receiver, no_network: NoNetwork, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Saved as http:// while its name pointed into the allowlist; the name now points at a
    public address, where only https:// may go."""
    public = ipaddress.ip_address("8.8.8.8")
    original = ssrf.resolve
    monkeypatch.setattr(
        ssrf,
        "resolve",
        lambda host, port: [public] if host == "hooks.example.org" else original(host, port),
    )
    endpoint_id = saved_then_changed(hooks, receiver, "/plain", "http://hooks.example.org/timeline")
    drain(hooks.worker(schedule=(0,)), settled(hooks, endpoint_id))
    assert no_network.attempts == []
    (delivery,) = hooks.deliveries(endpoint_id)
    assert (delivery.status, delivery.last_error_kind) == ("failed", "ssrf_blocked")
    detail = hooks.client.get(
        f"/v1/webhook-deliveries/{delivery.id}", headers=hooks.auth("hooks")
    ).json()
    assert "https://" in detail["attempts"][0]["error_message"]
    assert "8.8.8.8" not in detail["attempts"][0]["error_message"]


def test_the_migration_down_keeps_revoked_endpoints_disabled(
    databases: ThrowawayDatabases,
) -> None:
    url = databases.new()
    config = alembic_config(url)
    command.upgrade(config, "head")
    engine = create_db_engine(url)
    try:
        with writes.session_factory(engine).begin() as s:
            key, _ = auth_service.create_key(s, "migrated", [Scope.webhooks])
            s.add(
                WebhookEndpoint(
                    id="whep_migrated",
                    owner_key_id=key.id,
                    url="https://example.org/hook",
                    event_types=["*"],
                    secret="whsec_x",
                    previous_secrets=[],
                    enabled=False,
                    disabled_reason="revoked",
                    consecutive_failures=0,
                )
            )
        command.downgrade(config, revision_before(config, "fbd1ac3f2072"))
        with engine.connect() as conn:
            row = conn.execute(text("SELECT enabled, disabled_reason FROM webhook_endpoint")).one()
        assert (bool(row.enabled), row.disabled_reason) == (False, "manual")
        command.upgrade(config, "head")
    finally:
        engine.dispose()
