"""SIGTERM is a graceful stop: the server refuses new connections but finishes the requests in
flight, and a webhook worker finishes its delivery in flight or hands its lease back at once.

Orchestrators send SIGTERM, wait (30 s by default in Kubernetes), then SIGKILL. The worker waits
up to `SHUTDOWN_GRACE_SECONDS` for its sends; a send still waiting on a slow receiver after that
goes back to the queue, due now, so another worker resends it instead of waiting for the lease
(60 s) to expire.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import httpx
from fastapi.testclient import TestClient

from app import writes
from app.main import create_app
from app.webhooks.worker import make_worker
from tests.faults.conftest import PATIENCE, Database, wait_for
from tests.live import LiveServer
from tests.webhooks.conftest import LOCAL, Captured, Receiver, Reply, hook_settings

RECEIVE_BUFFER = 64 * 1024
LEASE_SECONDS = 60


def send_buffer_max() -> int:
    """The most a server socket buffers unsent (Linux's tcp_wmem maximum)."""
    try:
        return int(Path("/proc/sys/net/ipv4/tcp_wmem").read_text().split()[2])
    except OSError:
        return 4 * 1024 * 1024


def refused(base_url: str) -> bool:
    """True once the listening socket is closed. Until uvicorn's next tick (every 0.1 s) sees the
    signal, a probe can still be accepted; shutdown then closes it unread, and it is reset."""
    try:
        httpx.get(f"{base_url}/healthz", timeout=2)
    except httpx.ConnectError:
        return True
    except (httpx.ReadError, httpx.RemoteProtocolError):
        return False  # accepted just before the listener closed, then dropped unserved: ask again
    return False


def stopped(server: LiveServer) -> int:
    """Wait for the server to exit after SIGTERM; uvicorn re-raises the signal once done."""
    assert server.process is not None
    code = server.process.wait(timeout=PATIENCE)
    assert code in (0, -signal.SIGTERM), server.log()
    assert "Finished server process" in server.log()
    return code


def create_endpoint(database: Database, http: httpx.Client | TestClient, url: str) -> str:
    # The endpoint's webhook.ping, asked for once it exists, is the delivery in flight.
    response = http.post(
        "/v1/webhook-endpoints",
        json={"url": url, "event_types": ["webhook.ping"]},
        headers=database.auth("hooks"),
    )
    assert response.status_code == 201, response.text
    endpoint_id: str = response.json()["id"]
    ping = http.post(f"/v1/webhook-endpoints/{endpoint_id}/test", headers=database.auth("hooks"))
    assert ping.status_code == 202, ping.text
    return endpoint_id


def deliveries(database: Database, endpoint_id: str) -> list[tuple[str, str | None, int]]:
    rows = database.rows(
        "SELECT d.status, d.lease_owner, (SELECT count(*) FROM webhook_attempt a"
        " WHERE a.delivery_id = d.id) FROM webhook_delivery d WHERE d.endpoint_id = :e",
        e=endpoint_id,
    )
    return [(row[0], row[1], row[2]) for row in rows]


def test_sigterm_finishes_the_export_and_the_delivery_in_flight(
    database: Database, serve: Callable[..., LiveServer], receiver: Receiver
) -> None:
    """A streamed export (NDJSON, the largest per event) and the embedded worker's delivery to
    a slow receiver are both in flight at SIGTERM: the server stops accepting connections, and
    both complete."""
    arrived, hold = threading.Event(), threading.Event()

    def slow(_: Captured) -> Reply:
        arrived.set()
        return Reply(hold=hold)

    receiver.reply = slow
    server = serve(
        database.url,
        WEBHOOK_WORKER="embedded",
        WEBHOOK_ALLOWED_SUBNETS=",".join(LOCAL),
        WEBHOOK_TIMEOUT="60",  # the receiver, not the timeout, decides when the send ends
    )
    assert server.process is not None
    with httpx.Client(base_url=server.base_url, timeout=30) as api:
        endpoint_id = create_endpoint(database, api, receiver.url("/embedded"))
    assert arrived.wait(PATIENCE), "the embedded worker sent nothing"
    # A bounded receive window and no gzip: the export is larger than every buffer between the
    # server and this client, so while the client is not reading the server is mid-stream.
    transport = httpx.HTTPTransport(
        socket_options=[(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)]
    )
    with (
        httpx.Client(
            base_url=server.base_url,
            transport=transport,
            timeout=60,
            headers={"Accept-Encoding": "identity"},
        ) as http,
        http.stream("GET", "/v1/timeline?format=ndjson") as response,
    ):
        assert response.status_code == 200
        chunks = response.iter_bytes()
        body = bytearray(next(chunks))
        server.process.send_signal(signal.SIGTERM)
        wait_for(lambda: refused(server.base_url), 20, "new connections were still accepted")
        assert server.process.poll() is None, "the server quit with a request in flight"
        for chunk in chunks:
            body += chunk
    # The receiver answers only once the application is shutting down, within the worker's
    # grace period: the worker must wait for it rather than drop it.
    wait_for(lambda: "Waiting for application shutdown" in server.log(), 20, "no shutdown")
    hold.set()
    stopped(server)

    assert len(body) > send_buffer_max() + 2 * RECEIVE_BUFFER  # so it really was in flight
    ids = [json.loads(line)["id"] for line in body.decode().splitlines()]
    expected = {
        row[0] for row in database.rows("SELECT public_id FROM event WHERE deleted_at IS NULL")
    }
    assert len(ids) == len(expected) and set(ids) == expected

    assert deliveries(database, endpoint_id) == [("succeeded", None, 1)]
    assert len(receiver.at("/embedded")) == 1


def test_sigterm_hands_back_the_lease_of_a_send_stuck_on_a_slow_receiver(
    database: Database, receiver: Receiver
) -> None:
    """A separate worker process whose send hangs past the grace period releases the lease."""
    hold = threading.Event()

    def stuck_then_fine(_: Captured) -> Reply:
        first = len(receiver.requests) == 1
        return Reply(hold=hold) if first else Reply()

    receiver.reply = stuck_then_fine
    with TestClient(
        create_app(hook_settings(database.url)), base_url="https://timeline.example.org"
    ) as api:
        endpoint_id = create_endpoint(database, api, receiver.url("/separate"))
    environment = {
        **os.environ,
        "DATABASE_URL": database.url,
        "WEBHOOK_ALLOWED_SUBNETS": ",".join(LOCAL),
        "WEBHOOK_TIMEOUT": "30",  # the receiver, not the timeout, decides when the send ends
        "WEBHOOK_LEASE_SECONDS": str(LEASE_SECONDS),
    }

    def worker(*args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "app.webhooks.worker", "--quiet", *args],
            env=environment,
            stderr=subprocess.PIPE,
            text=True,
        )

    first = worker("--shutdown-grace", "1")
    try:
        wait_for(lambda: bool(receiver.at("/separate")), PATIENCE, "the worker sent nothing")
        first.send_signal(signal.SIGTERM)
        # After the grace second the delivery is back in the queue, long before the lease ends.
        wait_for(
            lambda: deliveries(database, endpoint_id) == [("pending", None, 0)],
            LEASE_SECONDS / 2,
            "the stopping worker kept its lease",
        )
        # Another worker (here in this process) takes it straight away.
        other = make_worker(hook_settings(database.url), writes.session_factory(database.engine))
        try:
            assert other.run_once() >= 1
        finally:
            other.close()
            other.client.close()
        assert deliveries(database, endpoint_id) == [("succeeded", None, 1)]
    finally:
        hold.set()  # the stuck send ends; the stopping worker records it and exits
        try:
            _, err = first.communicate(timeout=PATIENCE)
        except subprocess.TimeoutExpired:
            first.kill()
            first.communicate()
            raise
    assert first.returncode == 0, err
    assert "1 released at shutdown" in err

    sent = receiver.at("/separate")
    assert len(sent) == 2 and sent[0].headers["webhook-id"] == sent[1].headers["webhook-id"]
    # The late answer is logged as an attempt but does not touch the delivery's state.
    assert deliveries(database, endpoint_id) == [("succeeded", None, 2)]
