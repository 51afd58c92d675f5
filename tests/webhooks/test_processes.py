"""Worker processes: a kill -9 mid-delivery loses nothing; many workers never double-send;
workers are woken by commits, in their own process and in others."""

import os
import pathlib
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, select

from app.main import create_app
from app.models import WebhookDelivery
from app.webhooks.wake import CommitListener
from tests.conftest import ON_POSTGRES
from tests.webhooks.conftest import Hooks, Receiver, Reply, create_event, hook_settings


def start_worker(hooks: Hooks, *args: str, **env: str) -> subprocess.Popen[str]:
    environment = {
        **os.environ,
        "DATABASE_URL": hooks.url,
        "WEBHOOK_ALLOWED_SUBNETS": "127.0.0.0/8",
        "WEBHOOK_RETRY_SCHEDULE": "0,0.05,0.05,0.05,0.05",
        "WEBHOOK_OVERLOAD_MIN_DELAY": "0",
        "WEBHOOK_POLL_INTERVAL": "0.1",
        **env,
    }
    return subprocess.Popen(
        [sys.executable, "-m", "app.webhooks.worker", "--quiet", *args],
        env=environment,
        stderr=subprocess.PIPE,
        text=True,
    )


def stop_worker(process: subprocess.Popen[str]) -> str:
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=20)
    assert process.returncode == 0, err
    return err


def wait_for(check: Any, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def statuses(hooks: Hooks, endpoint_id: str) -> Counter[str]:
    return Counter(d.status for d in hooks.deliveries(endpoint_id))


def test_kill_9_mid_delivery_loses_nothing(hooks: Hooks, receiver: Receiver) -> None:
    hold = threading.Event()
    first: list[str] = []

    def reply(r: Any) -> Reply:
        if not first:
            first.append(r.headers["webhook-id"])
            return Reply(hold=hold)  # hangs until the worker is dead
        return Reply()

    receiver.reply = reply
    endpoint = hooks.endpoint(receiver.url("/crash"), event_types=["event.created"])
    for n in range(20):
        create_event(hooks, f"2025-04-06-test-crash-{n:02d}", ["MLI", "DZA"])
    # Lease 4 s: long enough for the timeout (1 s) and for the survivor's own sends on a loaded
    # machine (a send outliving its lease is claimed and sent again, a duplicate this test
    # would count), short enough for the test.
    env = {"WEBHOOK_LEASE_SECONDS": "4", "WEBHOOK_TIMEOUT": "1", "WEBHOOK_CONCURRENCY": "4"}
    doomed = start_worker(hooks, **env)
    wait_for(lambda: first, 20, "the first worker never sent anything")
    doomed.send_signal(signal.SIGKILL)
    doomed.wait(10)
    doomed.stderr.close()  # type: ignore[union-attr]
    with receiver.lock:
        seen_before_kill = {r.headers["webhook-id"] for r in receiver.requests}
    hold.set()

    survivor = start_worker(hooks, **env)
    try:
        wait_for(
            lambda: statuses(hooks, endpoint["id"]) == Counter(succeeded=21),
            30,
            "not every delivery succeeded after the crash",
        )
    finally:
        summary = stop_worker(survivor)
    assert "stopped after" in summary
    received = Counter(r.headers["webhook-id"] for r in receiver.at("/crash"))
    with hooks.session() as s:
        expected = set(
            s.scalars(
                select(WebhookDelivery.message_id).where(
                    WebhookDelivery.endpoint_id == endpoint["id"]
                )
            )
        )
    assert set(received) == expected  # none lost
    assert first[0] in expected and received[first[0]] >= 2  # the killed one, resent
    assert {i for i, n in received.items() if n > 1} <= seen_before_kill


@pytest.mark.skipif(
    not ON_POSTGRES, reason="many concurrent workers need PostgreSQL (SKIP LOCKED); SQLite runs one"
)
def test_four_workers_send_each_message_exactly_once(hooks: Hooks, receiver: Receiver) -> None:
    endpoint = hooks.endpoint(receiver.url("/many"), event_types=["webhook.ping"])
    hooks.enqueue(endpoint["id"], 499)
    workers = [start_worker(hooks, "--concurrency", "8") for _ in range(4)]
    try:
        wait_for(
            lambda: statuses(hooks, endpoint["id"]) == Counter(succeeded=500),
            60,
            "500 deliveries were not all made",
        )
    finally:
        for w in workers:
            stop_worker(w)
    received = Counter(r.headers["webhook-id"] for r in receiver.at("/many"))
    assert len(received) == 500
    assert set(received.values()) == {1}


def test_embedded_worker_is_woken_by_the_commit(hooks: Hooks, receiver: Receiver) -> None:
    # It polls once an hour: a delivery before the test gives up was woken by the commit.
    app = create_app(
        hook_settings(hooks.url, webhook_worker="embedded", webhook_poll_interval=3600)
    )
    with TestClient(app) as client:
        response = client.post(
            "/v1/webhook-endpoints",
            json={"url": receiver.url("/embedded")},
            headers=hooks.auth("hooks"),
        )
        assert response.status_code == 201
        ping = client.post(
            f"/v1/webhook-endpoints/{response.json()['id']}/test", headers=hooks.auth("hooks")
        )
        assert ping.status_code == 202
        wait_for(lambda: receiver.at("/embedded"), 60, "the commit did not wake the worker")


def test_a_commit_in_another_process_wakes_a_worker_process(
    hooks: Hooks, receiver: Receiver
) -> None:
    # It polls once an hour: a delivery before the test gives up was woken by the commit.
    worker = start_worker(hooks, WEBHOOK_POLL_INTERVAL="3600")
    try:
        # The first may be found by the worker's first look at the queue, as it starts.
        first = hooks.endpoint(receiver.url("/wake-first"))
        wait_for(lambda: receiver.at("/wake-first"), 60, "the worker did not deliver at all")
        # Recorded: the worker's turn is over, and the next one finds the queue empty and waits.
        wait_for(
            lambda: statuses(hooks, first["id"])["succeeded"] == 1, 60, "the first was not recorded"
        )
        hooks.endpoint(receiver.url("/wake-second"))
        wait_for(lambda: receiver.at("/wake-second"), 60, "the commit did not wake the worker")
    finally:
        stop_worker(worker)


def test_the_listener_wakes_on_commit_and_not_on_rollback(hooks: Hooks) -> None:
    endpoint = hooks.endpoint("http://127.0.0.1:9/never", event_types=["webhook.ping"])
    wake = threading.Event()
    listener = CommitListener(hooks.engine, wake).start()
    try:
        assert listener.listening.wait(10)
        assert wake.wait(1)  # set on start: commits made before it listened are looked for
        wake.clear()
        hooks.enqueue(endpoint["id"], 1, roll_back=True)
        assert not wake.wait(0.5)
        hooks.enqueue(endpoint["id"], 1)
        assert wake.wait(5)
    finally:
        listener.stop()
        hooks.client.delete(f"/v1/webhook-endpoints/{endpoint['id']}", headers=hooks.auth("hooks"))


def test_the_listener_keeps_trying_until_the_database_answers(
    hooks: Hooks, tmp_path: pathlib.Path
) -> None:
    # A database that is not there yet: a SQLite file whose folder is missing, a PostgreSQL
    # database not yet created. The worker's poll covers the gap; the listener must not give up.
    url = hooks.engine.url
    if ON_POSTGRES:
        url = url.set(database=f"dtl_wake_later_{os.getpid()}")
    else:
        url = url.set(database=str(tmp_path / "later" / "timeline.db"))
    engine = create_engine(url)
    wake = threading.Event()
    listener = CommitListener(engine, wake).start()
    try:
        assert not listener.listening.wait(0.5)
        if ON_POSTGRES:
            with hooks.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.exec_driver_sql(f'CREATE DATABASE "{url.database}"')
        else:
            (tmp_path / "later").mkdir()
        assert listener.listening.wait(10)
        assert wake.wait(1)
    finally:
        listener.stop()
        engine.dispose()
        if ON_POSTGRES:
            with hooks.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{url.database}"')
