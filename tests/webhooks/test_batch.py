"""The batch path: one claim of many deliveries, recorded a chunk per transaction, each delivery
still recorded on its own terms (success, retry, 410, lost lease, never sent)."""

import datetime as dt
from typing import Any

from sqlalchemy import select, update

from app import writes
from app.db import utcnow
from app.models import WebhookAttempt, WebhookDelivery
from app.webhooks import ssrf
from app.webhooks.worker import Policy, Worker
from tests.webhooks.conftest import (
    LOCAL,
    Captured,
    Hooks,
    Receiver,
    Reply,
    drain,
    endpoint_row,
    settled,
)


def attempt_log(hooks: Hooks, endpoint_id: str) -> dict[int, list[WebhookAttempt]]:
    with hooks.session() as s:
        rows = s.scalars(
            select(WebhookAttempt)
            .join(WebhookDelivery, WebhookDelivery.id == WebhookAttempt.delivery_id)
            .where(WebhookDelivery.endpoint_id == endpoint_id)
            .order_by(WebhookAttempt.id)
        )
        log: dict[int, list[WebhookAttempt]] = {}
        for row in rows:
            log.setdefault(row.delivery_id, []).append(row)
        return log


def test_one_batch_with_successes_a_failure_and_a_410(hooks: Hooks, receiver: Receiver) -> None:
    answers = {"/b-ok": Reply(status=200), "/b-fail": Reply(status=500), "/b-gone": Reply(410)}
    receiver.reply = lambda r: answers.get(r.path, Reply())
    ok = hooks.endpoint(receiver.url("/b-ok"), event_types=["webhook.ping"])
    fail = hooks.endpoint(receiver.url("/b-fail"), event_types=["webhook.ping"])
    gone = hooks.endpoint(receiver.url("/b-gone"), event_types=["webhook.ping"])
    hooks.enqueue(ok["id"], 20)  # plus the ping each endpoint gets when created
    # The failure's retry is due in a minute, so it stays pending after the batch.
    worker = hooks.worker(schedule=(0, 60, 60))
    try:
        while worker.run_once():
            pass
    finally:
        worker.close()
        worker.client.close()

    sent = receiver.at("/b-ok")
    assert len(sent) == 21 and len({r.headers["webhook-id"] for r in sent}) == 21
    deliveries = hooks.deliveries(ok["id"])
    assert {
        (d.status, d.round_attempts, d.attempt_count, d.last_status_code) for d in deliveries
    } == {("succeeded", 1, 1, 200)}
    assert all(d.lease_owner is None and d.completed_at is not None for d in deliveries)
    log = attempt_log(hooks, ok["id"])
    assert sorted(log) == sorted(d.id for d in deliveries)
    assert all(
        [(a.number, a.response_status, a.error_kind) for a in attempts] == [(1, 200, None)]
        for attempts in log.values()
    )
    healthy = endpoint_row(hooks, ok["id"])
    assert healthy.consecutive_failures == 0 and healthy.last_success_at is not None

    failing = hooks.deliveries(fail["id"])
    assert len(failing) == 1 and len(receiver.at("/b-fail")) == 1
    (retry,) = failing
    assert (retry.status, retry.round_attempts, retry.last_status_code) == ("pending", 1, 500)
    assert retry.next_attempt_at is not None and retry.next_attempt_at > utcnow()
    ((attempt,),) = attempt_log(hooks, fail["id"]).values()
    assert (attempt.response_status, attempt.error_kind) == (500, "http_status")
    assert attempt.next_attempt_at == retry.next_attempt_at
    assert endpoint_row(hooks, fail["id"]).consecutive_failures == 1

    (ended,) = hooks.deliveries(gone["id"])
    assert (ended.status, ended.last_status_code) == ("failed", 410)
    disabled = endpoint_row(hooks, gone["id"])
    assert not disabled.enabled and disabled.disabled_reason == "gone"

    # Leave nothing due for the other tests of the module.
    with hooks.session() as s, s.begin():
        s.execute(
            update(WebhookDelivery).where(WebhookDelivery.id == retry.id).values(status="failed")
        )


def test_a_lease_lost_in_a_batch_only_logs_that_attempt(hooks: Hooks, receiver: Receiver) -> None:
    endpoint = hooks.endpoint(receiver.url("/b-stolen"), event_types=["webhook.ping"])
    hooks.enqueue(endpoint["id"], 9)
    stolen: list[str] = []

    def steal_the_first(captured: Captured) -> Reply:
        # Another worker takes over this one lease while the send is in flight.
        if not stolen:
            stolen.append(captured.headers["webhook-id"])
            with hooks.session() as s, s.begin():
                s.execute(
                    update(WebhookDelivery)
                    .where(
                        WebhookDelivery.endpoint_id == endpoint["id"],
                        WebhookDelivery.message_id == stolen[0],
                    )
                    .values(lease_owner="another-worker")
                )
        return Reply()

    receiver.reply = steal_the_first
    worker = hooks.worker()
    try:
        while worker.run_once():
            pass
    finally:
        worker.close()
        worker.client.close()

    deliveries = hooks.deliveries(endpoint["id"])
    assert len(deliveries) == 10 and len(receiver.at("/b-stolen")) == 10
    taken = [d for d in deliveries if d.message_id == stolen[0]]
    assert [(d.status, d.lease_owner) for d in taken] == [("in_flight", "another-worker")]
    assert {d.status for d in deliveries if d.message_id != stolen[0]} == {"succeeded"}
    log = attempt_log(hooks, endpoint["id"])
    assert sorted(log) == sorted(d.id for d in deliveries)  # the stolen one's attempt is logged
    assert worker.stats.lost_leases == 1

    with hooks.session() as s, s.begin():
        s.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id == taken[0].id)
            .values(status="failed", lease_owner=None, lease_expires_at=None)
        )


def test_a_claim_the_lease_cannot_cover_hands_the_rest_back_unsent(
    hooks: Hooks, receiver: Receiver
) -> None:
    """With one sender and a lease no longer than the timeout, only the first delivery of the
    claim may start; the others go back to the queue untouched (attempt numbers without gaps)."""
    endpoint = hooks.endpoint(receiver.url("/b-late"), event_types=["webhook.ping"])
    hooks.enqueue(endpoint["id"], 5)
    values: dict[str, Any] = {
        "schedule": (0, 0.05),
        "jitter": 0.0,
        "overload_min_delay": 0.0,
        "timeout": 2.0,
        "max_response_bytes": 64 * 1024,
        "stored_response_bytes": 4096,
        "lease": dt.timedelta(seconds=2),
        "warn_after_failures": 2,
        "disable_after": dt.timedelta(days=5),
    }
    tight = Worker(
        writes.session_factory(hooks.engine),
        ssrf.guarded_client(LOCAL, timeout=2.0),
        Policy(**values),
        concurrency=1,
    )
    try:
        assert tight.run_once() >= 6
    finally:
        tight.close()
        tight.client.close()
    assert len(receiver.at("/b-late")) <= 1
    for d in hooks.deliveries(endpoint["id"]):
        assert (d.status, d.attempt_count) in {("succeeded", 1), ("pending", 0)}
        assert d.lease_owner is None

    drain(hooks.worker(), settled(hooks, endpoint["id"]))
    deliveries = hooks.deliveries(endpoint["id"])
    assert {(d.status, d.attempt_count) for d in deliveries} == {("succeeded", 1)}
    log = attempt_log(hooks, endpoint["id"])
    assert all([a.number for a in attempts] == [1] for attempts in log.values())
    assert len(receiver.at("/b-late")) == 6
