"""Retries, exhaustion, auto-disable, the 410 rule, recovery, SSRF and filters."""

import datetime as dt
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from standardwebhooks import Webhook

from app.db import begin_write, utcnow
from app.main import create_app
from app.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookMessage
from app.revisions import service as revision_service
from tests.helpers import assert_problem
from tests.webhooks.conftest import (
    Hooks,
    Receiver,
    Reply,
    create_event,
    drain,
    hook_settings,
    run_until,
    settled,
)


def attempts(hooks: Hooks, delivery_id: int) -> list[dict[str, Any]]:
    response = hooks.client.get(
        f"/v1/webhook-deliveries/{delivery_id}", headers=hooks.auth("hooks")
    )
    assert response.status_code == 200, response.text
    result: list[dict[str, Any]] = response.json()["attempts"]
    return result


def test_fail_three_times_then_succeed(hooks: Hooks, receiver: Receiver) -> None:
    script = [
        Reply(status=500, body=b"boom"),
        Reply(hang=1.5),  # past the 0.5 s timeout
        Reply(status=503, headers={"Retry-After": "1"}),
        Reply(status=200),
    ]
    receiver.reply = lambda r: script.pop(0) if r.path == "/retry" else Reply()
    endpoint = hooks.endpoint(receiver.url("/retry"), event_types=["webhook.ping"])
    drain(hooks.worker(timeout=0.5), settled(hooks, endpoint["id"]))

    requests = receiver.at("/retry")
    assert len(requests) == 4
    assert len({r.headers["webhook-id"] for r in requests}) == 1
    assert len({r.body for r in requests}) == 1
    wh = Webhook(endpoint["secret"])
    for r in requests:
        wh.verify(r.body, r.headers)
    stamps = [int(r.headers["webhook-timestamp"]) for r in requests]
    assert stamps == sorted(stamps)
    (delivery,) = hooks.deliveries(endpoint["id"])
    assert delivery.status == "succeeded"
    log = attempts(hooks, delivery.id)
    assert [a["response_status"] for a in log] == [500, None, 503, 200]
    assert [a["error_kind"] for a in log] == ["http_status", "timeout", "http_status", None]
    # An allowlisted receiver's answer: its length is kept, never its words.
    assert (log[0]["response_bytes"], log[0]["response_body"]) == (4, None)
    assert log[2]["response_headers"]["retry-after"] == "1"
    assert all(a["duration_ms"] >= 0 for a in log)
    health = hooks.client.get(
        f"/v1/webhook-endpoints/{endpoint['id']}", headers=hooks.auth("hooks")
    ).json()["health"]
    assert health["failing_since"] is None
    assert health["consecutive_failures"] == 0


def test_exhaustion_auto_disable_and_recovery(hooks: Hooks, receiver: Receiver) -> None:
    failing = True
    receiver.reply = lambda r: Reply(status=500) if failing else Reply()
    endpoint = hooks.endpoint(receiver.url("/exhaust"), event_types=["webhook.ping"])
    path = f"/v1/webhook-endpoints/{endpoint['id']}"
    drain(hooks.worker(schedule=(0, 0.01, 0.01)), settled(hooks, endpoint["id"]))
    (first,) = hooks.deliveries(endpoint["id"])
    assert first.status == "failed"
    assert len(receiver.at("/exhaust")) == 3
    read = hooks.client.get(path, headers=hooks.auth("hooks")).json()
    assert read["enabled"] is True
    assert read["health"]["warned_at"] is not None  # warned after 2 failures in tests

    # Five days of nothing but failures: the next failure disables the endpoint and skips
    # what was still queued.
    assert hooks.client.post(f"{path}/test", headers=hooks.auth("hooks")).status_code == 202
    later = lambda: utcnow() + dt.timedelta(days=5, hours=1)  # noqa: E731
    drain(hooks.worker(clock=later), settled(hooks, endpoint["id"]))
    read = hooks.client.get(path, headers=hooks.auth("hooks")).json()
    assert (read["enabled"], read["disabled_reason"]) == (False, "failing")
    second = hooks.deliveries(endpoint["id"])[1]
    assert second.status == "skipped"
    assert_problem(hooks.client.post(f"{path}/test", headers=hooks.auth("hooks")), 409)

    # Re-enable with recovery: the skipped delivery is sent, with its webhook-id.
    failing = False
    enabled = hooks.client.post(
        f"{path}/enable", json={"recover": True}, headers=hooks.auth("hooks")
    )
    assert enabled.status_code == 200, enabled.text
    assert enabled.json()["requeued"] == 1
    drain(hooks.worker(), settled(hooks, endpoint["id"]))
    assert hooks.deliveries(endpoint["id"])[1].status == "succeeded"
    assert receiver.at("/exhaust")[-1].headers["webhook-id"] == second.message_id

    # Recover a window: the first, failed delivery is sent again with the same webhook-id.
    since = (utcnow() - dt.timedelta(hours=1)).isoformat()
    recovered = hooks.client.post(
        f"{path}/recover", json={"since": since}, headers=hooks.auth("hooks")
    )
    assert recovered.json() == {"requeued": 1}
    drain(hooks.worker(), settled(hooks, endpoint["id"]))
    assert receiver.at("/exhaust")[-1].headers["webhook-id"] == first.message_id


def test_410_disables_at_once(hooks: Hooks, receiver: Receiver) -> None:
    receiver.reply = lambda r: Reply(status=410)
    endpoint = hooks.endpoint(receiver.url("/gone"), event_types=["event.*"])
    drain(hooks.worker(), settled(hooks, endpoint["id"]))
    create_event(hooks, "2025-04-03-test-gone", ["MLI", "DZA"])
    drain(hooks.worker(), settled(hooks, endpoint["id"]))
    assert len(receiver.at("/gone")) == 1  # the ping; the event was skipped, not sent
    read = hooks.client.get(
        f"/v1/webhook-endpoints/{endpoint['id']}", headers=hooks.auth("hooks")
    ).json()
    assert (read["enabled"], read["disabled_reason"]) == (False, "gone")
    assert sorted(d.status for d in hooks.deliveries(endpoint["id"])) == ["failed", "skipped"]


def test_redeliver_keeps_the_webhook_id(hooks: Hooks, receiver: Receiver) -> None:
    endpoint = hooks.endpoint(receiver.url("/again"), event_types=["webhook.ping"])
    drain(hooks.worker(), settled(hooks, endpoint["id"]))
    (delivery,) = hooks.deliveries(endpoint["id"])
    response = hooks.client.post(
        f"/v1/webhook-deliveries/{delivery.id}/redeliver", headers=hooks.auth("hooks")
    )
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "pending"
    drain(hooks.worker(), settled(hooks, endpoint["id"]))
    first, second = receiver.at("/again")
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == delivery.message_id
    assert first.body == second.body
    Webhook(endpoint["secret"]).verify(second.body, second.headers)
    listed = hooks.client.get(
        f"/v1/webhook-endpoints/{endpoint['id']}/deliveries",
        params={"status": "succeeded", "event_type": "webhook.ping"},
        headers=hooks.auth("hooks"),
    ).json()
    assert [d["id"] for d in listed["items"]] == [delivery.id]
    assert [a["trigger"] for a in attempts(hooks, delivery.id)] == ["test", "manual"]


def test_a_redirect_is_a_failure_and_not_followed(hooks: Hooks, receiver: Receiver) -> None:
    receiver.reply = lambda r: (
        Reply(status=302, headers={"Location": "/elsewhere"}) if r.path == "/moved" else Reply()
    )
    endpoint = hooks.endpoint(receiver.url("/moved"), event_types=["webhook.ping"])
    drain(hooks.worker(schedule=(0,)), settled(hooks, endpoint["id"]))
    assert receiver.at("/elsewhere") == []
    (delivery,) = hooks.deliveries(endpoint["id"])
    (attempt,) = attempts(hooks, delivery.id)
    assert (attempt["response_status"], attempt["error_kind"]) == (302, "redirect")
    # Where an internal receiver redirects to is not the subscriber's to read.
    assert "location" not in attempt["response_headers"]


def test_a_receiver_cookie_is_never_sent_back(hooks: Hooks, receiver: Receiver) -> None:
    """Deliveries are stateless: a cookie one answer sets is not kept for the next delivery,
    to that receiver or to another endpoint on the same host."""
    receiver.reply = lambda r: Reply(headers={"Set-Cookie": "session=abc; Path=/"})
    worker = hooks.worker()
    first = hooks.endpoint(receiver.url("/cookie-first"), event_types=["webhook.ping"])
    run_until(worker, settled(hooks, first["id"]))
    second = hooks.endpoint(receiver.url("/cookie-second"), event_types=["webhook.ping"])
    drain(worker, settled(hooks, second["id"]))
    (sent_first,) = receiver.at("/cookie-first")
    (sent_second,) = receiver.at("/cookie-second")
    assert "cookie" not in sent_first.headers and "cookie" not in sent_second.headers


class TestOutbox:
    def test_a_rolled_back_change_leaves_nothing(self, hooks: Hooks, receiver: Receiver) -> None:
        hooks.endpoint(receiver.url("/rollback"), event_types=["*"])

        def count(model: Any) -> int:
            with hooks.session() as s:
                return s.scalar(select(func.count()).select_from(model)) or 0

        def change(key: str, *, commit: bool) -> None:
            with hooks.session() as session:
                begin_write(session)
                revision_service.record(
                    session,
                    resource="state",
                    key=key,
                    version=1,
                    operation="create",
                    actor="test",
                    before=None,
                    after={"code": key},
                )
                if commit:
                    session.commit()
                else:
                    session.rollback()

        before = (count(WebhookMessage), count(WebhookDelivery))
        change("XXX", commit=False)
        assert (count(WebhookMessage), count(WebhookDelivery)) == before
        # The same change committed is queued: the rollback, not a missing subscription, is why
        # nothing was.
        change("XXY", commit=True)
        assert (count(WebhookMessage), count(WebhookDelivery)) == (before[0] + 1, before[1] + 1)

    def test_queued_without_a_worker_then_sent(self, hooks: Hooks, receiver: Receiver) -> None:
        endpoint = hooks.endpoint(receiver.url("/later"), event_types=["event.created"])
        for n in range(3):
            create_event(hooks, f"2025-04-04-test-later-{n}", ["MLI", "DZA"])
        assert receiver.at("/later") == []
        assert [d.status for d in hooks.deliveries(endpoint["id"])] == ["pending"] * 4
        drain(hooks.worker(), settled(hooks, endpoint["id"]))
        assert len(receiver.at("/later")) == 4
        assert {d.status for d in hooks.deliveries(endpoint["id"])} == {"succeeded"}


class TestSSRF:
    @pytest.mark.parametrize(
        ("url", "why"),
        [
            ("http://127.0.0.1:8080/hook", "public"),
            ("https://127.0.0.1/hook", "public"),
            ("https://[::1]/hook", "public"),
            ("https://169.254.169.254/latest/meta-data", "public"),
            ("https://10.0.0.1/hook", "public"),
            ("https://192.168.1.10/hook", "public"),
            ("https://100.64.0.1/hook", "public"),
            ("https://[::ffff:127.0.0.1]/hook", "public"),
            ("https://[::ffff:10.0.0.1]/hook", "public"),
            ("https://user:pw@8.8.8.8/hook", "user name"),
            ("https://localhost/hook", "this machine"),
            ("http://8.8.8.8/hook", "https"),
            ("ftp://8.8.8.8/hook", "https"),
        ],
    )
    def test_refused_when_saved(self, hooks: Hooks, url: str, why: str) -> None:
        strict = TestClient(create_app(hook_settings(hooks.url, webhook_allowed_subnets=[])))
        response = strict.post(
            "/v1/webhook-endpoints", json={"url": url}, headers=hooks.auth("hooks")
        )
        body = assert_problem(response, 422)
        assert body["errors"][0]["loc"] == ["body", "url"]
        assert why in body["detail"]
        strict.app.state.engine.dispose()  # type: ignore[attr-defined]

    @pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
    def test_refused_when_connecting(
        self, hooks: Hooks, receiver: Receiver, host: str, caplog: pytest.LogCaptureFixture
    ) -> None:
        endpoint = hooks.endpoint(receiver.url("/ssrf"), event_types=["webhook.ping"])
        with hooks.session() as s, s.begin():
            # Saved while allowed; the name now points somewhere the worker must not go.
            row = s.get(WebhookEndpoint, endpoint["id"])
            assert row is not None
            row.url = f"http://{host}:{receiver.port}/ssrf"
        drain(hooks.worker(allowed=[], schedule=(0,)), settled(hooks, endpoint["id"]))
        assert receiver.connections == 0
        (delivery,) = hooks.deliveries(endpoint["id"])
        assert (delivery.status, delivery.last_error_kind) == ("failed", "ssrf_blocked")
        assert "ssrf_blocked" in caplog.text
        with hooks.session() as s:
            attempt = s.scalars(
                select(WebhookAttempt).where(WebhookAttempt.delivery_id == delivery.id)
            ).one()
        assert "127.0.0.1" not in (attempt.error_message or "")


def test_filter_between_mali_and_algeria(hooks: Hooks, receiver: Receiver) -> None:
    endpoint = hooks.endpoint(
        receiver.url("/between"), event_types=["event.*"], filter={"between": "MLI,DZA"}
    )
    create_event(hooks, "2025-04-05-test-drone-shot-down", ["DZA", "MLI"])
    create_event(hooks, "2025-04-05-test-drone-wreck-found", ["MLI", "DZA", "NER"])
    create_event(hooks, "2025-04-05-test-burkina-alone", ["BFA"])
    create_event(hooks, "2025-04-05-test-mali-burkina", ["MLI", "BFA"])
    drain(hooks.worker(), settled(hooks, endpoint["id"]))
    received = [
        r for r in receiver.at("/between") if r.headers["x-timeline-event-type"] != "webhook.ping"
    ]
    ids = sorted(
        Webhook(endpoint["secret"]).verify(r.body, r.headers)["data"]["id"] for r in received
    )
    assert ids == ["2025-04-05-test-drone-shot-down", "2025-04-05-test-drone-wreck-found"]
