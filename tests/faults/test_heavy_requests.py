"""Heavy requests (exports, facets, counts, ranked searches) take a slot for as long as they
run, the whole streamed body included: one per caller and one per process by default. A caller
past its slot gets a 429, anyone past the process's a 503, both problems with Retry-After; pages
are never refused for it.

A real server on the package's synthetic database; an NDJSON export of its thousands of events
is larger than the sockets' buffers, so a client that stops reading holds its export open.
Callers are told apart by X-Forwarded-For, which uvicorn believes from 127.0.0.1 (its default
FORWARDED_ALLOW_IPS, as under `make run`).
"""

import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import httpx

from tests.faults.conftest import Database, wait_for
from tests.helpers import assert_problem
from tests.live import LiveServer

A = {"X-Forwarded-For": "198.51.100.1"}
B = {"X-Forwarded-For": "198.51.100.2"}
RECEIVE_BUFFER = 16 * 1024


@contextmanager
def held_export(port: int, headers: dict[str, str]) -> Iterator[None]:
    """An uncompressed NDJSON export that the client starts reading and then leaves unread.

    The receive buffer is set before connecting (after it, the window is already agreed), so
    the export, larger than every buffer between server and client, stays mid-stream."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
        sock.connect(("127.0.0.1", port))
        extra = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        sock.sendall(
            "GET /v1/timeline?format=ndjson HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Accept-Encoding: identity\r\n{extra}\r\n".encode()
        )
        assert sock.recv(4096).startswith(b"HTTP/1.1 200 ")
        yield


def test_a_running_export_holds_its_slots_until_it_ends(
    database: Database, serve: Callable[..., LiveServer]
) -> None:
    server = serve(
        database.url,
        RATE_LIMIT_ENABLED="true",
        RATE_LIMIT_ANONYMOUS="100000",
        RATE_LIMIT_WINDOW_SECONDS="3600",
    )
    with httpx.Client(base_url=server.base_url, timeout=60) as http:
        with held_export(server.port, A):
            mine = http.get("/v1/timeline/facets", headers=A)
            body = assert_problem(mine, 429)
            assert "may run 1 of exports, facets" in body["detail"], body
            assert int(mine.headers["retry-after"]) == 2

            theirs = http.get("/v1/timeline", params={"format": "csv"}, headers=B)
            body = assert_problem(theirs, 503)
            assert body["type"].endswith("/busy")
            assert "retry in 2 s" in body["detail"]
            assert int(theirs.headers["retry-after"]) == 2
            # Content negotiation makes an export too.
            negotiated = http.get("/v1/timeline", headers={**B, "Accept": "text/calendar"})
            assert_problem(negotiated, 503)
            ranked = http.get("/v1/timeline?q=talks&order=relevance", headers=B)
            assert_problem(ranked, 503)

            # Pages are never refused for it, whoever asks.
            for who in (A, B):
                page = http.get("/v1/timeline?limit=5&q=talks", headers=who)
                assert page.status_code == 200, page.text
        # The client went away: its slot is given back, and B's facets run.
        wait_for(
            lambda: http.get("/v1/timeline/facets", headers=B).status_code == 200,
            30,
            "the export's slot was never given back",
        )
        done = http.get("/v1/timeline?format=csv&limit=1", headers=A)
        assert done.status_code == 200
    assert "Traceback" not in server.log()
