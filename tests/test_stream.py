"""The live stream of changes (GET /v1/changes/stream): a real server process, real writes
through the API, and an SSE client reading as a browser's EventSource does (tests/sse.py)."""

import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.events import service as events
from app.events.schemas import EventCreate
from app.revisions import service as revisions
from app.revisions.service import encode_position
from tests.conftest import Writable
from tests.helpers import assert_problem
from tests.live import LiveServer
from tests.sse import Event, Stream, status_of

SOURCE = {"url": "https://example.org/test/stream", "publisher": "Stream Test"}
PER_CLIENT = 2
SEND_TIMEOUT = 1.0
# Each about 20 KB: 8 MB of changes in all.
BULK_EVENTS = 400


def body(event_id: str, state: str, title: str = "Streamed") -> dict[str, Any]:
    return {
        "id": event_id,
        "kind": "diplomatic_action",
        "category": "statement",
        "date": event_id[:10],
        "date_precision": "day",
        "title": title,
        "summary": "Written by the live stream tests.",
        "participants": [{"state": state, "role": "initiator"}],
        "sources": [SOURCE],
    }


@pytest.fixture
def live(writable: Writable, tmp_path: Path) -> Iterator[LiveServer]:
    with LiveServer(
        writable.url,
        tmp_path / "server.log",
        STREAM_HEARTBEAT_SECONDS="0.3",
        STREAM_MAX_PER_CLIENT=str(PER_CLIENT),
        STREAM_SEND_TIMEOUT=str(SEND_TIMEOUT),
    ) as server:
        yield server


class Writer:
    def __init__(self, base_url: str, token: str) -> None:
        self.http = httpx.Client(
            base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=30
        )

    def create(self, event_id: str, state: str) -> None:
        r = self.http.post("/v1/events", json=body(event_id, state))
        assert r.status_code == 201, r.text

    def update(self, event_id: str, **changes: Any) -> None:
        r = self.http.patch(f"/v1/events/{event_id}", json=changes, headers={"If-Match": "*"})
        assert r.status_code == 200, r.text

    def delete(self, event_id: str) -> None:
        r = self.http.delete(f"/v1/events/{event_id}", headers={"If-Match": "*"})
        assert r.status_code == 204, r.text


@pytest.fixture
def writer(live: LiveServer, writable: Writable) -> Iterator[Writer]:
    w = Writer(live.base_url, writable.tokens["editor"])
    yield w
    w.http.close()


def seen(events: list[Event]) -> list[tuple[str, str]]:
    return [(e.data["id"], e.data["operation"]) for e in events]


def test_a_filtered_stream_receives_exactly_the_matching_changes(
    live: LiveServer, writer: Writer
) -> None:
    w = writer
    url = f"{live.base_url}/v1/changes/stream"
    with Stream(f"{url}?state=NER") as ner, Stream(url) as everything:
        w.create("2025-06-01-stream-a", "NER")  # matches
        w.create("2025-06-02-stream-b", "DZA")  # does not
        w.update("2025-06-01-stream-a", title="Still Niger")  # matches before and after
        w.update(  # moves into the filter
            "2025-06-02-stream-b", participants=[{"state": "NER", "role": "initiator"}]
        )
        w.update(  # moves out of it: sent, matched before
            "2025-06-01-stream-a", participants=[{"state": "DZA", "role": "initiator"}]
        )
        w.update("2025-06-01-stream-a", title="Algeria only")  # matches neither
        w.create("2025-06-03-stream-c", "DZA")
        w.delete("2025-06-03-stream-c")  # never matched
        w.delete("2025-06-02-stream-b")  # matched before: the tombstone is sent
        w.create("2025-06-04-stream-end", "NER")  # the last one: nothing after it is due
        expected = [
            ("2025-06-01-stream-a", "create"),
            ("2025-06-01-stream-a", "update"),
            ("2025-06-02-stream-b", "update"),
            ("2025-06-01-stream-a", "update"),
            ("2025-06-02-stream-b", "delete"),
            ("2025-06-04-stream-end", "create"),
        ]
        got = ner.take(len(expected))
        assert seen(got) == expected
        assert [e.data["in_filter"] for e in got] == [True, True, True, False, False, True]
        assert got[-2].data["data"] is None
        all_changes = everything.take_until(lambda e: e.data["id"] == "2025-06-04-stream-end")
        assert ner.nothing_more() == []

    # The unfiltered stream is the change feed itself, event for event.
    first = all_changes[0].data["revision"] - 1
    feed = httpx.get(
        f"{live.base_url}/v1/changes",
        params={"since": encode_position(first), "limit": len(all_changes)},
    ).json()["items"]
    assert [e.data for e in all_changes] == feed
    assert [e.id for e in all_changes] == [item["position"] for item in feed]
    # Each filtered event is the same as the feed's.
    by_position = {item["position"]: item for item in feed}
    for e in got:
        assert by_position[e.id] == {k: v for k, v in e.data.items() if k != "in_filter"}


def test_a_reconnect_with_last_event_id_gets_the_rest_exactly_once(
    live: LiveServer, writer: Writer
) -> None:
    w = writer
    url = f"{live.base_url}/v1/changes/stream?state=NER"
    burst = [f"2025-06-{day:02d}-burst" for day in range(1, 21)]
    with Stream(url) as first:
        for event_id in burst[:5]:
            w.create(event_id, "NER")
        received = first.take(5)
    # The connection is gone; the burst goes on without it.
    last_id = received[-1].id
    assert last_id is not None
    for event_id in burst[5:12]:
        w.create(event_id, "NER")
    with Stream(url, headers={"Last-Event-ID": last_id}) as again:
        for event_id in burst[12:]:
            w.create(event_id, "NER")
        rest = again.take(len(burst) - 5)
        w.create("2025-06-30-burst-end", "NER")
        assert seen(again.take(1)) == [("2025-06-30-burst-end", "create")]
        assert again.nothing_more() == []
    assert [e.data["id"] for e in received + rest] == burst
    # `since=` is the same position, for clients that cannot send the header.
    with Stream(f"{url}&since={last_id}") as since:
        assert [e.data["id"] for e in since.take(len(burst) - 5)] == burst[5:]


def test_bad_parameters_are_refused_before_the_stream_starts(live: LiveServer) -> None:
    url = f"{live.base_url}/v1/changes/stream"
    for params, param in [
        ({"stat": "MLI"}, "stat"),
        ({"state": "XXX"}, "state"),
        ({"from": "2025-13"}, "from"),
        ({"from": "2025-05", "to": "2025-04"}, "from"),
        ({"since": "not-a-position"}, "since"),
        ({"include_members": "true"}, "include_members"),
    ]:
        assert_problem(httpx.get(url, params=params), 422, param)
    assert_problem(httpx.get(url, headers={"Last-Event-ID": "nope"}), 422, "Last-Event-ID")


def test_a_client_gets_a_limited_number_of_streams(live: LiveServer) -> None:
    url = f"{live.base_url}/v1/changes/stream"
    streams = [Stream(url).start() for _ in range(PER_CLIENT)]
    try:
        refused = httpx.get(url)
        problem = assert_problem(refused, 429)
        assert "streams" in problem["detail"]
        assert int(refused.headers["Retry-After"]) > 0
    finally:
        for s in streams:
            s.close()
    # Closed streams give their places back as soon as the server sees the connections end.
    deadline = time.monotonic() + 30
    while (status := status_of(url)) == 429 and time.monotonic() < deadline:
        time.sleep(0.05)  # polling with a deadline
    assert status == 200


def test_a_reader_that_stops_reading_is_disconnected(live: LiveServer, writable: Writable) -> None:
    # Changes far larger than the socket buffers (the kernel's grow to a few MB on loopback),
    # written in one transaction through the services, as the API writes them.
    with writable.session() as session:
        start = revisions.data_version(session)[0]
        for n in range(BULK_EVENTS):
            data = EventCreate.model_validate(
                {**body(f"2025-07-01-bulk-{n}", "NER"), "summary": "x " * 10_000}
            )
            events.create(session, data, "test")
        session.commit()
    path = f"/v1/changes/stream?since={encode_position(start)}"
    sock = socket.socket()
    # A small window, so the server's buffers fill soon.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", live.port))
    try:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
        deadline = time.monotonic() + 60
        while "took nothing" not in live.log():
            assert time.monotonic() < deadline, live.log()[-3000:]
            time.sleep(0.05)  # polling a log file with a deadline
        # Its place is free again: the client's two streams are both available.
        url = f"{live.base_url}/v1/changes/stream"
        with Stream(url), Stream(url):
            pass
        # What was sent before the disconnect can still be read, then the connection ends.
        sock.settimeout(30)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
        assert received.startswith(b"HTTP/1.1 200")
        assert not received.endswith(b"0\r\n\r\n")  # cut off, not a finished response
    finally:
        sock.close()


def test_sigterm_ends_the_open_streams_and_the_server_stops(live: LiveServer) -> None:
    # uvicorn's graceful shutdown waits for every response to end; a stream would never end by
    # itself, so the server ends them (app/main.py) and its clients reconnect elsewhere.
    stream = Stream(f"{live.base_url}/v1/changes/stream").start()
    try:
        # uvicorn re-raises SIGTERM once its graceful shutdown is done; a shutdown waiting for
        # the stream would instead run into the deadline (TimeoutExpired).
        assert live.terminate(timeout=60) == -signal.SIGTERM
        assert stream.ended.wait(30)
        assert stream.error is None  # the response ended, it was not cut off
        assert "Shutting down" in live.log() and "Cancel" not in live.log()
    finally:
        stream.close()


def test_a_full_server_refuses_a_stream_with_503(writable: Writable, tmp_path: Path) -> None:
    with LiveServer(writable.url, tmp_path / "full.log", STREAM_MAX_TOTAL="1") as server:
        url = f"{server.base_url}/v1/changes/stream"
        with Stream(url):
            refused = httpx.get(
                url, headers={"Authorization": f"Bearer {writable.tokens['editor']}"}
            )
            assert_problem(refused, 503)
            assert int(refused.headers["Retry-After"]) > 0
