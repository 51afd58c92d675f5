"""HEAD on every GET route (app/head.py): the GET's status and headers, and no content.

A link checker, a feed reader or a cache asks HEAD for a resource's type, size, ETag or
Last-Modified before fetching it. Each answer here is compared with the GET of the same target,
header for header; the last tests ask a real uvicorn with the standard library's HTTP client,
which reads no body after a HEAD: a stray byte would corrupt the next answer on the connection.
"""

import http.client
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from app.errors import allow_head
from app.main import create_app
from app.observability import REQUEST_ID_HEADER
from tests.conftest import app_settings
from tests.live import LiveServer

EVENT = "/v1/events/2025-04-01-algeria-shoots-down-malian-drone"
# One of each kind of GET: pages, a document, exports, feeds, the description, HTML and files.
TARGETS = [
    "/v1/timeline?state=DZA&limit=2",
    "/v1/timeline?state=MLI&q=drone",
    "/v1/timeline?format=csv&state=DZA",
    "/v1/timeline?format=ics&state=DZA",
    "/v1/timeline?format=atom&state=DZA",
    "/v1/timeline/facets?state=MLI",
    EVENT,
    f"{EVENT}/revisions",
    "/v1/states",
    "/v1/changes?limit=5",
    "/openapi.json",
    "/",
    "/static/app.js",
    "/healthz",
]
# Headers that differ between any two requests.
PER_REQUEST = {REQUEST_ID_HEADER.lower(), "date", "ratelimit-remaining", "ratelimit-reset"}


def headers_of(response: httpx.Response) -> list[tuple[str, str]]:
    return [(k, v) for k, v in response.headers.multi_items() if k not in PER_REQUEST]


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("encoding", ["identity", "gzip"])
def test_head_answers_as_get_without_content(
    client: TestClient, target: str, encoding: str
) -> None:
    sent = {"Accept-Encoding": encoding, "Origin": "https://newsroom.example"}
    get = client.get(target, headers=sent)
    head = client.head(target, headers=sent)
    assert get.status_code == 200, get.text
    assert get.content
    assert head.status_code == 200
    assert head.content == b""
    assert headers_of(head) == headers_of(get)


def test_a_head_is_conditional_as_its_get(client: TestClient) -> None:
    etag = client.get(EVENT).headers["ETag"]
    head = client.head(EVENT, headers={"If-None-Match": etag})
    assert head.status_code == 304
    assert head.headers["ETag"] == etag
    assert head.content == b""


def test_a_refused_head_has_the_problems_headers(client: TestClient) -> None:
    target = "/v1/timeline?state=XXX"
    get, head = client.get(target), client.head(target)
    assert get.status_code == head.status_code == 422
    assert head.headers["Content-Type"] == "application/problem+json"
    assert head.content == b""
    assert headers_of(head) == headers_of(get)
    missing = client.head("/v1/events/no-such-event")
    assert missing.status_code == 404
    assert missing.content == b""


def test_a_405_lists_head_beside_get(client: TestClient) -> None:
    refused = client.post("/v1/timeline")
    assert refused.status_code == 405
    assert refused.headers["Allow"] == "GET, HEAD"
    # A route without GET has no HEAD either.
    post_only = client.head("/v1/webhook-endpoints/1/disable")
    assert post_only.status_code == 405
    assert post_only.headers["Allow"] == "POST"
    assert allow_head("POST") == "POST"
    assert allow_head("GET, POST") == "GET, HEAD, POST"
    assert allow_head("GET, HEAD") == "GET, HEAD"


def test_a_head_of_the_live_stream_ends_at_once(database_url: str) -> None:
    # One stream per client: a HEAD that left its stream open would hold the only place.
    with TestClient(create_app(app_settings(database_url, stream_max_per_client=1))) as client:
        for _ in range(3):
            head = client.head("/v1/changes/stream")
            assert head.status_code == 200
            assert head.headers["Content-Type"].startswith("text/event-stream")
            assert head.content == b""
        with client.stream("GET", "/v1/changes/stream") as stream:
            assert stream.status_code == 200
            # The place is now taken, and a HEAD asks for it as its GET would.
            assert client.head("/v1/changes/stream").status_code == 429


@pytest.fixture(scope="module")
def live(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    log: Path = tmp_path_factory.mktemp("head") / "server.log"
    with LiveServer(database_url, log) as server:
        yield server


def test_head_over_the_wire_keeps_the_connection_usable(live: LiveServer) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", live.port, timeout=30)
    try:
        for target in ["/v1/timeline?state=DZA&limit=2", "/v1/timeline?format=csv&state=DZA"]:
            connection.request("GET", target)
            get = connection.getresponse()
            body = get.read()
            connection.request("HEAD", target)
            head = connection.getresponse()
            assert head.status == get.status == 200
            assert head.read() == b""
            assert head.getheader("Content-Type") == get.getheader("Content-Type")
            assert head.getheader("ETag") == get.getheader("ETag")
            assert head.getheader("Content-Length") == get.getheader("Content-Length")
            # The same connection, next: a body sent after the HEAD would be read as this
            # answer's status line.
            connection.request("GET", target)
            again = connection.getresponse()
            assert again.status == 200
            assert again.read() == body
    finally:
        connection.close()
    assert "Traceback" not in live.log()
