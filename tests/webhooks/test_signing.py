"""Signatures: our own HMAC code, checked by the independent `standardwebhooks` library."""

import datetime as dt

import pytest
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from app.db import utcnow
from app.webhooks import signing
from tests.webhooks.conftest import (
    PUBLIC_BASE_URL,
    Hooks,
    Receiver,
    create_event,
    drain,
    settled,
)

# The Standard Webhooks specification's own example, also published in our README.
VECTOR_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"  # noqa: S105 - published
VECTOR_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
VECTOR_TIMESTAMP = 1614265330
VECTOR_BODY = b'{"test": 2432232314}'
VECTOR_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_fixed_test_vector() -> None:
    assert signing.sign(VECTOR_SECRET, VECTOR_ID, VECTOR_TIMESTAMP, VECTOR_BODY) == (
        VECTOR_SIGNATURE
    )
    at = dt.datetime.fromtimestamp(VECTOR_TIMESTAMP, dt.UTC)
    assert Webhook(VECTOR_SECRET).sign(VECTOR_ID, at, VECTOR_BODY.decode()) == VECTOR_SIGNATURE


def test_secret_format() -> None:
    secret = signing.new_secret()
    assert secret.startswith("whsec_")
    assert len(Webhook(secret)._whsecret) == 32


def test_every_request_verifies_and_a_changed_byte_fails(hooks: Hooks, receiver: Receiver) -> None:
    endpoint = hooks.endpoint(receiver.url("/sig"), event_types=["event.*"])
    create_event(hooks, "2025-04-02-test-signed", ["MLI", "DZA"])
    drain(hooks.worker(), settled(hooks, endpoint["id"]))
    # One batch is sent concurrently, so arrival order is not guaranteed.
    requests = sorted(receiver.at("/sig"), key=lambda r: r.headers["webhook-id"])
    assert [r.headers["x-timeline-event-type"] for r in requests] == [
        "webhook.ping",
        "event.created",
    ]
    wh = Webhook(endpoint["secret"])
    for request in requests:
        payload = wh.verify(request.body, request.headers)
        assert request.headers["webhook-id"].startswith("msg_")
        assert request.headers["content-type"] == "application/json"
        tampered = bytearray(request.body)
        tampered[len(tampered) // 2] ^= 0x01
        with pytest.raises(WebhookVerificationError):
            wh.verify(bytes(tampered), request.headers)
    data = payload["data"]
    assert payload["type"] == "event.created"
    assert data["id"] == "2025-04-02-test-signed"
    assert data["url"] == f"{PUBLIC_BASE_URL}/v1/events/2025-04-02-test-signed"
    assert data["sequence"] == 1
    assert data["resource"]["title"] == "Test incident 2025-04-02-test-signed"
    assert isinstance(data["revision"], int)
    # Compact JSON, exactly as stored in the outbox.
    delivery = hooks.deliveries(endpoint["id"])[-1]
    detail = hooks.client.get(f"/v1/webhook-deliveries/{delivery.id}", headers=hooks.auth("hooks"))
    assert detail.json()["payload"].encode() == requests[-1].body
    assert requests[-1].headers["webhook-id"] == delivery.message_id


class TestRotation:
    def test_overlap_then_only_the_new_secret(self, hooks: Hooks, receiver: Receiver) -> None:
        endpoint = hooks.endpoint(receiver.url("/rotate"), event_types=["webhook.ping"])
        old = endpoint["secret"]
        rotated = hooks.client.post(
            f"/v1/webhook-endpoints/{endpoint['id']}/secret/rotate", headers=hooks.auth("hooks")
        )
        assert rotated.status_code == 200, rotated.text
        new = rotated.json()["secret"]
        assert new != old
        drain(hooks.worker(), settled(hooks, endpoint["id"]))
        (during,) = receiver.at("/rotate")
        assert len(during.headers["webhook-signature"].split(" ")) == 2
        Webhook(old).verify(during.body, during.headers)
        Webhook(new).verify(during.body, during.headers)

        # 25 hours later, the overlap is over: one signature, from the new secret only. The
        # library refuses timestamps that far from its own clock, so compare signatures.
        later = lambda: utcnow() + dt.timedelta(hours=25)  # noqa: E731
        test = hooks.client.post(
            f"/v1/webhook-endpoints/{endpoint['id']}/test", headers=hooks.auth("hooks")
        )
        assert test.status_code == 202, test.text
        drain(hooks.worker(clock=later), settled(hooks, endpoint["id"]))
        after = receiver.at("/rotate")[-1]
        sent = after.headers["webhook-signature"].split(" ")
        at = dt.datetime.fromtimestamp(int(after.headers["webhook-timestamp"]), dt.UTC)
        msg_id = after.headers["webhook-id"]
        assert sent == [Webhook(new).sign(msg_id, at, after.body.decode())]
        assert Webhook(old).sign(msg_id, at, after.body.decode()) not in sent

    def test_revoke_previous_ends_the_overlap(self, hooks: Hooks, receiver: Receiver) -> None:
        endpoint = hooks.endpoint(receiver.url("/revoke"), event_types=["webhook.ping"])
        path = f"/v1/webhook-endpoints/{endpoint['id']}"
        new = hooks.client.post(f"{path}/secret/rotate", headers=hooks.auth("hooks")).json()
        revoked = hooks.client.post(f"{path}/secret/revoke-previous", headers=hooks.auth("hooks"))
        assert revoked.json()["previous_secret_expires_at"] == []
        drain(hooks.worker(), settled(hooks, endpoint["id"]))
        (request,) = receiver.at("/revoke")
        Webhook(new["secret"]).verify(request.body, request.headers)
        with pytest.raises(WebhookVerificationError):
            Webhook(endpoint["secret"]).verify(request.body, request.headers)
