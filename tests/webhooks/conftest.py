"""Webhook fixtures: a real HTTP receiver on 127.0.0.1, apps with the embedded worker off, and
workers with tiny retry schedules."""

import datetime as dt
import http.server
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from app import writes
from app.config import Settings
from app.db import utcnow
from app.main import create_app
from app.models import WebhookDelivery, WebhookEndpoint, WebhookMessage
from app.webhooks import service, ssrf
from app.webhooks.worker import Policy, Worker
from tests.conftest import ThrowawayDatabases, Writable, app_settings

LOCAL = ["127.0.0.0/8"]
# Where the payloads' `data.url` point: the API's configured public address.
PUBLIC_BASE_URL = "https://timeline.example.org"


@dataclass
class Captured:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float


@dataclass
class Reply:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b"ok"
    hang: float = 0.0  # seconds to wait before answering (a slow or dead receiver)
    hold: threading.Event | None = None  # wait for this before answering


class Receiver:
    """A threaded HTTP server recording every request's raw bytes; `reply` decides answers."""

    def __init__(self) -> None:
        self.requests: list[Captured] = []
        self.connections = 0
        self.reply: Callable[[Captured], Reply] = lambda _: Reply()
        self.lock = threading.Lock()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                captured = Captured(
                    self.path,
                    {k.lower(): v for k, v in self.headers.items()},
                    self.rfile.read(length),
                    time.monotonic(),
                )
                with receiver.lock:
                    receiver.requests.append(captured)
                reply = receiver.reply(captured)
                if reply.hold is not None:
                    reply.hold.wait(30)
                if reply.hang:
                    time.sleep(reply.hang)
                try:
                    self.send_response(reply.status)
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.send_header("content-length", str(len(reply.body)))
                    self.end_headers()
                    self.wfile.write(reply.body)
                except OSError:
                    pass  # the sender gave up (timeout) or was killed

            def log_message(self, *args: Any) -> None:
                pass

        class Server(http.server.ThreadingHTTPServer):
            daemon_threads = True

            def get_request(self) -> Any:
                accepted = super().get_request()
                with receiver.lock:
                    receiver.connections += 1
                return accepted

        self.server = Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def at(self, path: str) -> list[Captured]:
        with self.lock:
            return [r for r in self.requests if r.path == path]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def hook_settings(url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "webhook_allowed_subnets": LOCAL,
        "public_base_url": PUBLIC_BASE_URL,
        # The test client's own host, beside the public one (a deployment would list its
        # internal names the same way).
        "allowed_hosts": ["timeline.example.org", "testserver"],
    }
    return app_settings(url, **(values | overrides))


class Hooks(Writable):
    """A seeded database with API keys and an app whose embedded worker is off."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.app.state.engine.dispose()
        self.app = create_app(hook_settings(url))
        self.client = TestClient(self.app)

    def worker(
        self,
        *,
        schedule: tuple[float, ...] = (0, 0.05, 0.05, 0.05, 0.05),
        timeout: float = 2.0,
        allowed: list[str] | None = None,
        clock: Callable[[], dt.datetime] = utcnow,
        **policy: Any,
    ) -> Worker:
        values: dict[str, Any] = {
            "schedule": schedule,
            "jitter": 0.0,
            "overload_min_delay": 0.0,
            "timeout": timeout,
            "max_response_bytes": 64 * 1024,
            "stored_response_bytes": 4096,
            "lease": dt.timedelta(seconds=30),
            "warn_after_failures": 2,
            "disable_after": dt.timedelta(days=5),
            **policy,
        }
        client = ssrf.guarded_client(LOCAL if allowed is None else allowed, timeout=timeout)
        return Worker(writes.session_factory(self.engine), client, Policy(**values), clock=clock)

    def endpoint(
        self, url: str, who: str = "hooks", *, ping: bool = True, **fields: Any
    ) -> dict[str, Any]:
        """Subscribe, then (`ping`) ask for a `webhook.ping`, as a receiver does once it has
        stored the secret: creating an endpoint queues nothing."""
        response = self.client.post(
            "/v1/webhook-endpoints", json={"url": url, **fields}, headers=self.auth(who)
        )
        assert response.status_code == 201, response.text
        body: dict[str, Any] = response.json()
        if ping:
            test = self.client.post(
                f"/v1/webhook-endpoints/{body['id']}/test", headers=self.auth(who)
            )
            assert test.status_code == 202, test.text
        return body

    def enqueue(self, endpoint_id: str, count: int, *, roll_back: bool = False) -> None:
        """`count` ping messages for one endpoint, written straight to the outbox (or written,
        then rolled back)."""
        with self.session() as s:
            s.begin()
            row = s.get(WebhookEndpoint, endpoint_id)
            assert row is not None
            now = utcnow()
            for n in range(count):
                message = WebhookMessage(
                    id=service.new_id("msg_"),
                    type="webhook.ping",
                    payload=service.serialise(
                        {"type": "webhook.ping", "timestamp": now.isoformat(), "data": {"n": n}}
                    ),
                    created_at=now,
                )
                service._enqueue(s, [row], message, trigger="test")
            if roll_back:
                s.rollback()
            else:
                s.commit()

    def deliveries(self, endpoint_id: str) -> list[WebhookDelivery]:
        with self.session() as s:
            return list(
                s.scalars(
                    select(WebhookDelivery)
                    .where(WebhookDelivery.endpoint_id == endpoint_id)
                    .order_by(WebhookDelivery.id)
                )
            )


def endpoint_row(hooks: Hooks, endpoint_id: str) -> WebhookEndpoint:
    with hooks.session() as s:
        row = s.get(WebhookEndpoint, endpoint_id)
        assert row is not None
        return row


def run_until(worker: Worker, until: Callable[[], bool], seconds: float = 15) -> None:
    """Run the worker until `until()` holds (retries are due within tens of milliseconds)."""
    deadline = time.monotonic() + seconds
    while not until():
        assert time.monotonic() < deadline, "the worker did not finish in time"
        if not worker.run_once():
            time.sleep(0.02)


def drain(worker: Worker, until: Callable[[], bool], seconds: float = 15) -> None:
    """`run_until`, then close the worker."""
    try:
        run_until(worker, until, seconds)
    finally:
        worker.close()
        worker.client.close()


def settled(hooks: Hooks, endpoint_id: str) -> Callable[[], bool]:
    def check() -> bool:
        return all(d.status not in ("pending", "in_flight") for d in hooks.deliveries(endpoint_id))

    return check


@pytest.fixture(scope="module")
def hooks(databases: ThrowawayDatabases, seeded_template: str) -> Iterator[Hooks]:
    h = Hooks(databases.copy_of(seeded_template))
    with h.client:
        yield h
    h.close()


def event_body(event_id: str, states: list[str], **changes: Any) -> dict[str, Any]:
    roles = ["initiator", "target", "target", "target"]
    body: dict[str, Any] = {
        "id": event_id,
        "kind": "incident",
        "category": "shoot_down",
        "date": "2025-04-01",
        "date_precision": "day",
        "title": f"Test incident {event_id}",
        "summary": "Written by the webhook tests.",
        "participants": [{"state": code, "role": roles[i]} for i, code in enumerate(states)],
        "sources": [{"url": f"https://example.org/test/{event_id}", "publisher": "Test Gazette"}],
        "tags": ["webhook-test"],
    }
    body.update(changes)
    return body


def create_event(hooks: Hooks, event_id: str, states: list[str], **changes: Any) -> None:
    response = hooks.client.post(
        "/v1/events", json=event_body(event_id, states, **changes), headers=hooks.auth("editor")
    )
    assert response.status_code == 201, response.text
