"""A mirror rebuilt from the change feed alone equals what the read API serves, whatever the
sequence of writes."""

from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import ThrowawayDatabases, Writable

EVENT_IDS = [f"2025-06-0{i}-mirror-{i}" for i in range(1, 5)]
STATES = ["MLI", "DZA", "NER"]
SOURCE = {"url": "https://example.org/test/mirror", "publisher": "Mirror Test"}


@pytest.fixture(scope="module")
def mirror_db(databases: ThrowawayDatabases, seeded_template: str) -> Iterator[Writable]:
    w = Writable(databases.copy_of(seeded_template))
    with w.client:
        yield w
    w.close()


def event_body(event_id: str, title: str, tags: list[str]) -> dict[str, Any]:
    return {
        "id": event_id,
        "kind": "diplomatic_action",
        "category": "statement",
        "date": event_id[:10],
        "date_precision": "day",
        "title": title,
        "summary": "Made by the mirror test.",
        "participants": [{"state": "MLI", "role": "initiator"}],
        "sources": [SOURCE],
        "tags": tags,
        "links": [{"type": "related_to", "event": "2025-04-01-algeria-shoots-down-malian-drone"}],
    }


titles = st.text(alphabet="abcdefgh ", min_size=1, max_size=12).map(lambda t: t.strip() or "t")
tags = st.lists(st.sampled_from(["a", "b", "c"]), unique=True, max_size=3)
operations = st.lists(
    st.one_of(
        st.tuples(st.just("create"), st.sampled_from(EVENT_IDS), titles, tags),
        st.tuples(st.just("patch"), st.sampled_from(EVENT_IDS), titles, tags),
        st.tuples(st.just("delete"), st.sampled_from(EVENT_IDS), titles, tags),
        st.tuples(st.just("state"), st.sampled_from(STATES), titles, tags),
    ),
    min_size=1,
    max_size=8,
)


def apply(w: Writable, op: tuple[str, str, str, list[str]]) -> None:
    kind, key, title, tag_list = op
    c, auth = w.client, w.auth()
    if kind == "create":
        response = c.post("/v1/events", json=event_body(key, title, tag_list), headers=auth)
        assert response.status_code in {201, 409}, response.text
        return
    path = f"/v1/states/{key}" if kind == "state" else f"/v1/events/{key}"
    current = c.get(path)
    if current.status_code in {404, 410}:
        return
    headers = {**auth, "If-Match": current.headers["etag"]}
    if kind == "delete":
        assert c.delete(path, headers=headers).status_code == 204
    elif kind == "state":
        assert c.patch(path, json={"capital": title}, headers=headers).status_code == 200
    else:
        patch = {"title": title, "tags": tag_list}
        assert c.patch(path, json=patch, headers=headers).status_code == 200


def read_feed(w: Writable) -> dict[tuple[str, str], Any]:
    mirror: dict[tuple[str, str], Any] = {}
    since: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 1000}
        if since:
            params["since"] = since
        page = w.client.get("/v1/changes", params=params).json()
        for change in page["items"]:
            key = (change["resource"], change["id"])
            if change["data"] is None:
                mirror.pop(key, None)
            else:
                mirror[key] = change["data"]
        since = page["next_since"]
        if not page["has_more"]:
            return mirror


def assert_mirror_matches_api(w: Writable) -> None:
    mirror = read_feed(w)
    c = w.client
    events = {k[1]: v for k, v in mirror.items() if k[0] == "event"}
    served: list[str] = []
    params: dict[str, Any] = {"limit": 500}
    while True:
        page = c.get("/v1/timeline", params=params).json()
        served.extend(i["id"] for i in page["items"])
        if not page["next_cursor"]:
            break
        params["cursor"] = page["next_cursor"]
    assert sorted(events) == sorted(served)
    for event_id in EVENT_IDS:
        if event_id in events:
            detail = c.get(f"/v1/events/{event_id}").json()
            detail["links"].pop("incoming")
            detail.pop("permalink")
            detail.pop("citation")
            assert events[event_id] == detail
        else:
            assert c.get(f"/v1/events/{event_id}").status_code in {404, 410}
    states = {k[1]: v for k, v in mirror.items() if k[0] == "state"}
    assert states == {s["code"]: s for s in c.get("/v1/states").json()["items"]}
    organisations = {k[1]: v for k, v in mirror.items() if k[0] == "organisation"}
    assert organisations == {o["code"]: o for o in c.get("/v1/organisations").json()["items"]}
    sources = {k[1]: v for k, v in mirror.items() if k[0] == "source"}
    listed = c.get("/v1/sources", params={"limit": 500}).json()
    assert listed["total"] <= 500
    assert sources == {str(s["id"]): s for s in listed["items"]}
    places = {k[1]: v for k, v in mirror.items() if k[0] == "place"}
    assert places == {p["code"]: p for p in c.get("/v1/places").json()["items"]}
    for (resource, key), data in mirror.items():
        if resource == "membership":
            assert c.get(f"/v1/memberships/{key}").json() == data


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
    derandomize=True,
)
@given(ops=operations)
def test_mirror_from_the_feed_equals_the_api(mirror_db: Writable, ops: list[Any]) -> None:
    for op in ops:
        apply(mirror_db, op)
    assert_mirror_matches_api(mirror_db)
