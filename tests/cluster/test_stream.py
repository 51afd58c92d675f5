"""The live stream across replicas: a change written through one API process reaches the
streams of every other, woken by PostgreSQL's NOTIFY at commit (app/stream/service.py), also
through nginx (which must not buffer the stream)."""

import httpx

from tests.cluster.conftest import Cluster
from tests.faults.conftest import event_body
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
