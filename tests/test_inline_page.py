"""The plain page's fast path (app/timeline/inline.py) answers exactly as the general path does:
the same status, headers and bytes, for the pages it takes, and it hands every other request
to the general path. On PostgreSQL there is no fast path: the general path answers all."""

from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from app.observability import REQUEST_ID_HEADER
from app.timeline.inline import InlinePages
from app.timeline.schemas import TimelineQuery
from tests.conftest import ON_POSTGRES, Writable

# Requests the fast path takes (on SQLite), each with the headers it is sent with.
TAKEN: list[tuple[dict[str, Any], dict[str, str]]] = [
    ({"state": "DZA"}, {}),
    ({"state": "mli", "from": "2020", "to": "2025-04"}, {}),
    ({"state": "MLI", "from": "2021-03", "limit": 3}, {}),
    ({"state": "DZA", "order": "desc", "limit": 4}, {}),
    ({"from": "2024", "limit": 5}, {}),
    ({}, {}),
    ({"state": "DZA", "format": "json", "limit": 2}, {}),
    ({"state": "DZA", "limit": 100}, {"Accept-Encoding": "gzip"}),
    ({"state": "DZA", "limit": 3}, {"Origin": "https://newsroom.example"}),
    ({"state": "DZA", "limit": 3}, {"Accept": "application/json"}),
]
# Requests it hands to the general path, whatever their answer.
HANDED_ON: list[dict[str, Any]] = [
    {"state": "XXX"},  # unknown code: the general path's 422
    {"from": "2025", "to": "2020"},  # from after to: the general path's 422
    {"state": ["DZA", "MLI"]},
    {"q": "drone"},
    {"state": "DZA", "count": "true"},
    {"state": "DZA", "category": "coup"},
    {"state": "DZA", "format": "csv"},
    {"to": "2019"},  # an empty page
    {"state": "DZA", "limit": ["2", "3"]},  # a parameter given twice: the route takes the last
    {"state": "DZA", "limit": "0"},  # out of range: the route's 422
    {"state": "DZA", "cursor": "not-a-cursor"},  # the route's 422
    {"state": "DZA", "stat": "MLI"},  # an unknown parameter: the route's 422
]


def compared(response: httpx.Response) -> tuple[int, list[tuple[str, str]], bytes]:
    headers = [(k, v) for k, v in response.headers.multi_items() if k != REQUEST_ID_HEADER.lower()]
    return response.status_code, headers, response.content


def both_ways(
    client: TestClient, params: dict[str, Any], headers: dict[str, str] | None = None
) -> tuple[httpx.Response, httpx.Response, int]:
    """The response with the fast path, the one without it, and how many pages the fast path
    served for the first."""
    # A fresh answer each time: the response cache may hold the page from another test.
    headers = {"Cache-Control": "no-cache", **(headers or {})}
    state = client.app.state  # type: ignore[attr-defined]
    inline = state.inline_pages
    served = inline.served if inline else 0
    fast = client.get("/v1/timeline", params=params, headers=headers)
    taken = (inline.served if inline else 0) - served
    state.inline_pages = None
    try:
        general = client.get("/v1/timeline", params=params, headers=headers)
    finally:
        state.inline_pages = inline
    return fast, general, taken


def test_the_fast_path_is_sqlites(client: TestClient) -> None:
    inline = client.app.state.inline_pages  # type: ignore[attr-defined]
    assert (inline is None) == ON_POSTGRES


@pytest.mark.parametrize(("params", "headers"), TAKEN)
def test_a_plain_page_is_the_same_either_way(
    client: TestClient, params: dict[str, Any], headers: dict[str, str]
) -> None:
    fast, general, taken = both_ways(client, params, headers)
    assert fast.status_code == 200, fast.text
    assert taken == (0 if ON_POSTGRES else 1)
    assert compared(fast) == compared(general)
    assert fast.json()["items"]


def test_cursors_and_conditional_requests_are_the_same_either_way(client: TestClient) -> None:
    params: dict[str, Any] = {"state": "DZA", "limit": 2}
    pages = 0
    while True:
        fast, general, taken = both_ways(client, params)
        assert taken == (0 if ON_POSTGRES else 1)
        assert compared(fast) == compared(general)
        pages += 1
        cursor = fast.json()["next_cursor"]
        if cursor is None or pages == 6:
            break
        params = {**params, "cursor": cursor}
    assert pages == 6
    etag = fast.headers["ETag"]
    fast, general, taken = both_ways(client, params, {"If-None-Match": etag})
    assert fast.status_code == 304
    assert compared(fast) == compared(general)
    # A cursor of other filters is refused the same way on both paths.
    fast, general, _ = both_ways(client, {"state": "MLI", "cursor": cursor})
    assert fast.status_code == 422
    assert compared(fast) == compared(general)


@pytest.mark.parametrize("params", HANDED_ON)
def test_other_requests_take_the_general_path(client: TestClient, params: dict[str, Any]) -> None:
    fast, general, taken = both_ways(client, params)
    assert taken == 0
    assert compared(fast) == compared(general)


def raw_both_ways(
    client: TestClient, target: str, method: str = "GET"
) -> tuple[httpx.Response, httpx.Response, int]:
    """As `both_ways`, for a request target sent exactly as written."""
    state = client.app.state  # type: ignore[attr-defined]
    inline = state.inline_pages
    served = inline.served if inline else 0
    headers = {"Cache-Control": "no-cache"}
    fast = client.request(method, target, headers=headers)
    taken = (inline.served if inline else 0) - served
    state.inline_pages = None
    try:
        general = client.request(method, target, headers=headers)
    finally:
        state.inline_pages = inline
    return fast, general, taken


def test_a_query_string_is_read_and_linked_as_the_route_would(client: TestClient) -> None:
    # Percent-encoded values and a `+`, decoded before validation and encoded again in the next
    # link exactly as the route's own `include_query_params` does.
    target = "/v1/timeline?state=%44ZA&from=2020%2D01&order=asc&limit=2&cursor="
    fast, general, taken = raw_both_ways(client, target.removesuffix("&cursor="))
    assert fast.status_code == 200, fast.text
    assert taken == (0 if ON_POSTGRES else 1)
    assert compared(fast) == compared(general)
    assert fast.headers["Link"].startswith("<http://testserver/v1/timeline?state=DZA&from=2020-01&")
    # A blank cursor is no cursor, on both paths.
    fast, general, _ = raw_both_ways(client, target)
    assert fast.status_code == 200, fast.text
    assert compared(fast) == compared(general)
    # A value that is not UTF-8 once decoded is the route's to refuse.
    fast, general, taken = raw_both_ways(client, "/v1/timeline?state=DZA&from=%FF")
    assert taken == 0
    assert fast.status_code == 422, fast.text
    assert compared(fast) == compared(general)


def test_a_head_is_the_plain_pages_too(client: TestClient) -> None:
    # HEAD reaches the layer as a GET (app/head.py): the same headers either way, no content.
    fast, general, taken = raw_both_ways(client, "/v1/timeline?state=DZA&limit=2", "HEAD")
    assert fast.status_code == 200
    assert taken == (0 if ON_POSTGRES else 1)
    assert compared(fast) == compared(general)
    assert fast.content == b""


def test_other_methods_take_the_general_path(client: TestClient) -> None:
    fast, general, taken = raw_both_ways(client, "/v1/timeline?state=DZA&limit=2", "OPTIONS")
    assert taken == 0
    assert compared(fast) == compared(general)


def test_a_page_under_a_root_path_links_under_it(client: TestClient) -> None:
    # Behind a proxy that mounts the API at /api (uvicorn --root-path): the page is still taken,
    # and its links keep the prefix.
    # Not entered: the app's lifespan is the session client's, and must not end here.
    mounted = TestClient(client.app, root_path="/api")
    fast, general, taken = raw_both_ways(mounted, "/api/v1/timeline?state=DZA&limit=2")
    assert fast.status_code == 200, fast.text
    assert taken == (0 if ON_POSTGRES else 1)
    assert compared(fast) == compared(general)
    assert fast.headers["Link"].startswith("<http://testserver/api/v1/timeline?state=DZA")


def test_the_fast_path_sees_every_commit(writable: Writable) -> None:
    w = writable
    params = {"state": "DZA", "from": "2025-04-01", "to": "2025-04-01"}
    before = w.client.get("/v1/timeline", params=params)
    item = before.json()["items"][0]
    patched = w.client.patch(
        f"/v1/events/{item['id']}",
        json={"title": "Seen at once"},
        headers={**w.auth(), "If-Match": "*"},
    )
    assert patched.status_code == 200, patched.text
    fast, general, taken = both_ways(w.client, params)
    assert taken == (0 if ON_POSTGRES else 1)
    assert fast.json()["items"][0]["title"] == "Seen at once"
    assert fast.headers["ETag"] != before.headers["ETag"]
    assert compared(fast) == compared(general)


def test_a_read_that_fails_is_handed_to_the_general_path(tmp_path: Path) -> None:
    # A file without the tables: the read fails, and the general path is to answer (and to
    # report the failure as its problem).
    inline = InlinePages(str(tmp_path / "empty.db"))
    try:
        query = TimelineQuery.model_validate({"state": ["DZA"]})
        assert inline.page(query, cursor_secret="test-secret") is None
        assert (inline.served, inline.handed_back) == (0, 1)
    finally:
        inline.close()
