"""The live stream across replicas: a change written through one API process reaches the
streams of every other, woken by PostgreSQL's NOTIFY at commit (app/stream/service.py), also
through nginx (which must not buffer the stream)."""

import httpx

from app.stream.service import CHANNEL
from tests.cluster.conftest import PATIENCE, Cluster
from tests.faults.conftest import event_body
from tests.live import LiveServer
from tests.sse import Stream


def test_a_write_through_a_reaches_the_streams_of_b_and_of_the_proxy(cluster: Cluster) -> None:
    a = cluster.replicas["a"].base_url
    b = cluster.replicas["b"].base_url
    assert cluster.proxy is not None
    path = "/v1/changes/stream?state=MLI"
    ids = [f"2025-08-0{n}-cluster-stream" for n in range(1, 4)]
    with (
        Stream(f"{b}{path}") as on_b,
        Stream(f"{cluster.proxy.base_url}{path}") as through_proxy,
        httpx.Client(base_url=a, headers=cluster.auth(), timeout=60) as http,
    ):
        for event_id in ids:
            response = http.post("/v1/events", json=event_body(event_id))
            assert response.status_code == 201, response.text
        for stream in (on_b, through_proxy):
            got = stream.take(len(ids), seconds=60)
            assert [(e.data["id"], e.data["operation"]) for e in got] == [
                (event_id, "create") for event_id in ids
            ]
        assert on_b.nothing_more() == through_proxy.nothing_more() == []


def test_a_change_made_while_the_channel_is_down_still_arrives(cluster: Cluster) -> None:
    # A replica of its own whose streams poll often: its listening connection is cut, and a
    # change committed meanwhile (its NOTIFY lost) reaches the stream anyway, from the revision
    # table, when the stream polls or the listener reconnects.
    server = LiveServer(
        cluster.url,
        cluster.folder / "replica-polling.log",
        **{**cluster.env, "STREAM_POLL_SECONDS": "0.5", "STREAM_HEARTBEAT_SECONDS": "0.5"},
    ).start(timeout=PATIENCE)
    a = cluster.replicas["a"].base_url
    try:
        with (
            Stream(f"{server.base_url}/v1/changes/stream?state=MLI") as stream,
            httpx.Client(base_url=a, headers=cluster.auth(), timeout=60) as http,
        ):
            cut = cluster.scalar(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE datname = current_database() AND query = :listen",
                listen=f"LISTEN {CHANNEL}",
            )
            assert cut >= 1  # every replica's listener, this one's included
            response = http.post("/v1/events", json=event_body("2025-08-10-channel-down"))
            assert response.status_code == 201, response.text
            got = stream.take(1, seconds=60)
            assert [(e.data["id"], e.data["operation"]) for e in got] == [
                ("2025-08-10-channel-down", "create")
            ]
    finally:
        server.kill()
