"""Hostile input, written by hand: each request gets a clear 4xx problem (or a correct 200 where
the input is in fact valid, such as punctuation in `q`), never a 5xx, and leaves the database
exactly as it was.

The database is fingerprinted before and after the module's tests (`tests.helpers.fingerprint`).
"""

import base64
import socket
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from app.models import Event
from tests.conftest import Writable
from tests.helpers import assert_problem, event_body, writes_nothing
from tests.live import LiveServer

SHOOT_DOWN = "2025-04-01-algeria-shoots-down-malian-drone"


@pytest.fixture(scope="module", autouse=True)
def unchanged(module_writable: Writable) -> Iterator[None]:
    """Once around the module (per test, it was most of the module's run time)."""
    with writes_nothing(module_writable.engine, "hostile requests"):
        yield


@pytest.fixture
def c(module_writable: Writable) -> TestClient:
    return module_writable.client


def refused(response: Any, status: int = 422, param: str | None = None) -> dict[str, Any]:
    """A 4xx problem naming `param`; never a 5xx."""
    assert response.status_code < 500, response.text
    return assert_problem(response, status, param)


class TestLongStrings:
    @pytest.mark.parametrize(
        "param",
        ["q", "state", "actor", "between", "organisation", "tag", "cursor", "from", "category"],
    )
    def test_timeline_query_parameter(self, c: TestClient, param: str) -> None:
        refused(c.get("/v1/timeline", params={param: "A" * 20_000}), param=param)

    @pytest.mark.parametrize(
        ("path", "param"),
        [("/v1/states", "q"), ("/v1/organisations", "q"), ("/v1/sources", "q")],
    )
    def test_search_parameter(self, c: TestClient, path: str, param: str) -> None:
        refused(c.get(path, params={param: "x" * 20_000}), param=param)

    def test_path_segment(self, c: TestClient) -> None:
        refused(c.get("/v1/events/" + "a" * 10_000), param="id")

    @pytest.mark.parametrize("field", ["title", "summary", "id"])
    def test_body_field(self, module_writable: Writable, field: str) -> None:
        body = event_body(**{field: "a" * 500_000})
        refused(
            module_writable.client.post("/v1/events", json=body, headers=module_writable.auth()),
            422,
            field,
        )

    def test_body_over_the_size_limit(self, module_writable: Writable) -> None:
        body = event_body(summary="a" * (2 * 1024 * 1024))
        response = module_writable.client.post(
            "/v1/events", json=body, headers=module_writable.auth()
        )
        refused(response, 413)


class TestNulAndInvalidUtf8:
    @pytest.mark.parametrize("param", ["q", "state", "tag", "cursor", "from"])
    def test_nul_in_timeline_query(self, c: TestClient, param: str) -> None:
        response = c.get(f"/v1/timeline?{param}=a%00b")
        refused(response, param=param)

    @pytest.mark.parametrize("path", ["/v1/states", "/v1/organisations", "/v1/sources"])
    def test_nul_in_search(self, c: TestClient, path: str) -> None:
        refused(c.get(f"{path}?q=mali%00"), param="q")

    @pytest.mark.parametrize(
        "path",
        [
            "/v1/events/2025%00-04",
            "/v1/states/ML%00",
            "/v1/organisations/AE%00",
            "/v1/places/tin%00",
            "/v1/relations/MLI/DZ%00",
        ],
    )
    def test_nul_in_path(self, c: TestClient, path: str) -> None:
        refused(c.get(path))

    def test_nul_in_keyed_lookups(self, module_writable: Writable) -> None:
        hooks = module_writable.auth("hooks")
        get = module_writable.client.get
        refused(get("/v1/webhook-endpoints/whep_%00", headers=hooks), param="id")
        deliveries = "/v1/webhook-endpoints/whep_x/deliveries?event_type=event.%00"
        refused(get(deliveries, headers=hooks), param="event_type")
        refused(get("/v1/changes?since=%00"), param="since")

    def test_nul_in_body_field(self, module_writable: Writable) -> None:
        body = event_body(title="A title\x00with a NUL")
        response = module_writable.client.post(
            "/v1/events", json=body, headers=module_writable.auth()
        )
        refused(response, 422, "title")

    def test_nul_in_patch(self, module_writable: Writable) -> None:
        response = module_writable.client.patch(
            f"/v1/events/{SHOOT_DOWN}",
            json={"summary": "\x00"},
            headers={**module_writable.auth(), "If-Match": "*"},
        )
        refused(response, 422, "summary")

    def test_invalid_utf8_in_query_is_text(self, c: TestClient) -> None:
        # Percent-decoding replaces the invalid byte (U+FFFD): a word nothing matches.
        response = c.get("/v1/timeline?q=caf%C3%28%FF")
        assert response.status_code == 200, response.text
        assert response.json()["items"] == []

    @pytest.mark.parametrize("path", ["/v1/events/%FF%FE", "/v1/states/%C3%28A"])
    def test_invalid_utf8_in_path(self, c: TestClient, path: str) -> None:
        refused(c.get(path))

    def test_invalid_utf8_body(self, module_writable: Writable) -> None:
        response = module_writable.client.post(
            "/v1/events",
            content=b'{"id": "caf\xc3\x28", "title": "\xff\xfe"}',
            headers={**module_writable.auth(), "Content-Type": "application/json"},
        )
        body = refused(response, 422, "body")
        assert "UTF-8" in body["detail"]

    def test_raw_bytes_on_the_wire(self, module_writable: Writable, tmp_path: Any) -> None:
        """Bytes no client library would send (a raw NUL, a raw 0xFF in the request line) are
        refused by the server, which keeps serving."""
        with LiveServer(module_writable.url, tmp_path / "server.log") as server:
            for target in (b"/v1/events/a\x00b", b"/v1/timeline?q=\xff\xfe", b"/v1/states/\xc3("):
                status = raw_status(server.port, target)
                assert 400 <= status < 500, (target, status)
            assert raw_status(server.port, b"/healthz") == 200


class TestDeepNesting:
    @pytest.mark.parametrize("depth", [100, 100_000])
    def test_nested_arrays(self, module_writable: Writable, depth: int) -> None:
        response = module_writable.client.post(
            "/v1/events",
            content=b"[" * depth + b"]" * depth,
            headers={**module_writable.auth(), "Content-Type": "application/json"},
        )
        refused(response, 422)

    @pytest.mark.parametrize("depth", [50, 900, 100_000])
    def test_nested_objects_in_a_merge_patch(self, module_writable: Writable, depth: int) -> None:
        nested = b'{"a":' * depth + b"1" + b"}" * depth
        response = module_writable.client.patch(
            f"/v1/events/{SHOOT_DOWN}",
            content=b'{"summary": ' + nested + b"}",
            headers={
                **module_writable.auth(),
                "If-Match": "*",
                "Content-Type": "application/merge-patch+json",
            },
        )
        refused(response, 422)

    def test_nested_claims_field(self, module_writable: Writable) -> None:
        nested: Any = "x"
        for _ in range(200):
            nested = {"statement": nested}
        body = event_body(claims=[nested])
        response = module_writable.client.post(
            "/v1/events", json=body, headers=module_writable.auth()
        )
        refused(response, 422, "claims")


class TestLimits:
    @pytest.mark.parametrize("value", ["0", "-1", "501", str(10**30), "-" + str(10**30), "1e3"])
    def test_timeline_limit(self, c: TestClient, value: str) -> None:
        refused(c.get("/v1/timeline", params={"limit": value}), param="limit")

    @pytest.mark.parametrize(
        ("path", "param", "value"),
        [
            ("/v1/sources", "limit", str(10**30)),
            ("/v1/sources", "offset", "-1"),
            ("/v1/sources", "offset", str(10**30)),
            ("/v1/changes", "limit", "-5"),
            ("/v1/relations/MLI/DZA", "window_days", str(10**30)),
            ("/v1/relations/MLI/DZA", "latest", "-1"),
        ],
    )
    def test_other_limits(self, c: TestClient, path: str, param: str, value: str) -> None:
        refused(c.get(path, params={param: value}), param=param)


class TestCursors:
    @staticmethod
    def next_cursor(c: TestClient, **params: str) -> str:
        response = c.get("/v1/timeline", params={"limit": "2", **params})
        assert response.status_code == 200, response.text
        cursor: str = response.json()["next_cursor"]
        assert cursor
        return cursor

    def test_forged(self, c: TestClient) -> None:
        forged = base64.urlsafe_b64encode(b'{"d":"2025-04-01","i":"x","o":"asc"}').decode()
        refused(c.get("/v1/timeline", params={"cursor": forged}), param="cursor")

    @pytest.mark.parametrize("junk", ["!!!", "=", "a", "%00", "\u00e9\u00e9"])
    def test_garbage(self, c: TestClient, junk: str) -> None:
        refused(c.get("/v1/timeline", params={"cursor": junk}), param="cursor")

    def test_truncated(self, c: TestClient) -> None:
        cursor = self.next_cursor(c, state="DZA")
        for cut in (1, len(cursor) // 2, len(cursor) - 1):
            response = c.get("/v1/timeline", params={"state": "DZA", "cursor": cursor[:cut]})
            refused(response, param="cursor")

    def test_edited(self, c: TestClient) -> None:
        cursor = self.next_cursor(c, state="DZA")
        flipped = cursor[:-2] + ("A" if cursor[-2] != "A" else "B") + cursor[-1]
        refused(c.get("/v1/timeline", params={"state": "DZA", "cursor": flipped}), param="cursor")

    @pytest.mark.parametrize(
        "other", [{"state": "MLI"}, {"state": "DZA", "order": "desc"}, {"state": "DZA", "q": "x"}]
    )
    def test_replayed_on_another_query(self, c: TestClient, other: dict[str, str]) -> None:
        cursor = self.next_cursor(c, state="DZA")
        refused(c.get("/v1/timeline", params={**other, "cursor": cursor}), param="cursor")

    def test_the_same_query_accepts_it(self, c: TestClient) -> None:
        cursor = self.next_cursor(c, state="DZA")
        response = c.get("/v1/timeline", params={"state": "DZA", "limit": "2", "cursor": cursor})
        assert response.status_code == 200, response.text

    def test_the_next_link_keeps_the_filters(self, c: TestClient) -> None:
        response = c.get("/v1/timeline", params={"state": "DZA", "limit": "2"})
        query = parse_qs(urlsplit(response.json()["links"]["next"]).query)
        assert query["state"] == ["DZA"]


class TestDates:
    @pytest.mark.parametrize(
        "value", ["0000-00-00", "2025-02-30", "2025-13", "2025-00", "99999", "2025-4-1", "today"]
    )
    @pytest.mark.parametrize("param", ["from", "to"])
    def test_impossible(self, c: TestClient, param: str, value: str) -> None:
        refused(c.get("/v1/timeline", params={param: value}), param=param)

    def test_last_representable_day_is_valid(self, c: TestClient) -> None:
        response = c.get("/v1/timeline", params={"from": "9999-12-31", "to": "9999-12-31"})
        assert response.status_code == 200, response.text
        assert response.json()["items"] == []

    def test_first_year_is_valid(self, c: TestClient) -> None:
        response = c.get("/v1/timeline", params={"from": "0001", "to": "9999"})
        assert response.status_code == 200, response.text
        assert response.json()["items"]

    def test_from_after_to(self, c: TestClient) -> None:
        body = refused(c.get("/v1/timeline", params={"from": "2025-05", "to": "2025-04"}))
        assert "after" in body["detail"]

    @pytest.mark.parametrize(
        ("path", "param"),
        [
            ("/v1/organisations/CEMOC/members", "as_of"),
            ("/v1/relations/MLI/DZA", "as_of"),
            ("/v1/states/MLI/memberships", "as_of"),
            ("/v1/timeline", "as_known_at"),
            (f"/v1/events/{SHOOT_DOWN}", "as_known_at"),
        ],
    )
    @pytest.mark.parametrize("value", ["0000-00-00", "2025-02-30", "9999-99-99T99:99"])
    def test_other_date_parameters(self, c: TestClient, path: str, param: str, value: str) -> None:
        refused(c.get(path, params={param: value}), param=param)

    @pytest.mark.parametrize(
        ("path", "param"),
        [("/v1/relations/MLI/DZA", "as_of"), ("/v1/organisations/CEMOC/members", "as_of")],
    )
    def test_far_dates_are_valid(self, c: TestClient, path: str, param: str) -> None:
        for value in ("0001-01-01", "9999-12-31"):
            response = c.get(path, params={param: value})
            assert response.status_code == 200, (value, response.text)

    def test_far_instants_are_valid(self, c: TestClient) -> None:
        for value in ("0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z"):
            response = c.get("/v1/timeline", params={"as_known_at": value})
            assert response.status_code == 200, (value, response.text)

    @pytest.mark.parametrize("date", ["0000-00-00", "2025-02-30", "2025-02-29"])
    def test_event_date_in_a_body(self, module_writable: Writable, date: str) -> None:
        response = module_writable.client.post(
            "/v1/events", json=event_body(date=date), headers=module_writable.auth()
        )
        refused(response, 422, "date")


QUERY_SYNTAX = [
    "' OR 1=1 --",
    "'; DROP TABLE event; --",
    '"',
    '""',
    '"drone',
    "*",
    "drone*",
    "NEAR(",
    "NEAR(drone algeria, 2)",
    "AND OR NOT",
    "NOT drone",
    "(",
    ")",
    "(drone",
    "-",
    "-drone",
    ":",
    "title:drone",
    "drone & algeria | !mali",
    "<->",
    "\\",
    "%",
    "_",
    "^",
    "{}",
    "drone:*",
]


class TestSearchSyntaxIsText:
    @pytest.mark.parametrize("syntax", QUERY_SYNTAX)
    def test_timeline(self, c: TestClient, syntax: str) -> None:
        for order in ("asc", "relevance"):
            response = c.get("/v1/timeline", params={"q": f"drone {syntax}", "order": order})
            assert response.status_code == 200, (order, response.text)

    @pytest.mark.parametrize("syntax", QUERY_SYNTAX)
    def test_syntax_alone(self, c: TestClient, syntax: str) -> None:
        """Text, never an operator: it matches its words, or, with none, is refused by name."""
        response = c.get("/v1/timeline", params={"q": syntax})
        if response.status_code != 200:
            body = refused(response, param="q")
            assert "word" in body["detail"]

    @pytest.mark.parametrize("syntax", QUERY_SYNTAX)
    def test_facets_and_lists(self, c: TestClient, syntax: str) -> None:
        response = c.get("/v1/timeline/facets", params={"q": f"drone {syntax}"})
        assert response.status_code == 200, response.text
        for path in ("/v1/states", "/v1/organisations", "/v1/sources"):
            response = c.get(path, params={"q": syntax})
            assert response.status_code == 200, (path, response.text)

    def test_words_around_syntax_still_match(self, c: TestClient) -> None:
        plain = c.get("/v1/timeline", params={"q": "drone"}).json()["items"]
        noisy = c.get("/v1/timeline", params={"q": '"drone" -- ( : * ^'}).json()["items"]
        assert plain and [e["id"] for e in noisy] == [e["id"] for e in plain]

    def test_sql_in_a_filter(self, c: TestClient) -> None:
        refused(c.get("/v1/timeline", params={"state": "MLI' OR 1=1 --"}), param="state")
        # A tag is free text: a tag nobody uses, so nothing matches.
        response = c.get("/v1/timeline", params={"tag": "x' OR 1=1 --"})
        assert response.status_code == 200, response.text
        assert response.json()["items"] == []


CONFUSABLE_CODES = [
    "\u041cLI",  # Cyrillic capital EM
    "M\u0406I",  # Cyrillic capital I (Ukrainian)
    "\uff2d\uff2c\uff29",  # fullwidth MLI
    "\uff4dli",  # fullwidth small m
    "ml\u0131",  # dotless i: upper-cases to I, so it must not be upper-cased
    "ML",
    "MLII",
    "M-I",
    "M LI",
    "MLI\u200b",  # zero-width space: not whitespace, so not stripped
]
# Every input string has its surrounding whitespace stripped (InputModel), so these mean MLI.
PADDED_CODES = ["MLI ", " MLI", "MLI\t", "\u2003MLI"]


class TestConfusableCodes:
    @pytest.mark.parametrize("code", CONFUSABLE_CODES)
    @pytest.mark.parametrize("param", ["state", "actor", "target"])
    def test_timeline_filter(self, c: TestClient, param: str, code: str) -> None:
        refused(c.get("/v1/timeline", params={param: code}), param=param)

    @pytest.mark.parametrize("code", PADDED_CODES)
    @pytest.mark.parametrize("param", ["state", "actor"])
    def test_padding_is_stripped(self, c: TestClient, param: str, code: str) -> None:
        padded = c.get("/v1/timeline", params={param: code})
        plain = c.get("/v1/timeline", params={param: "MLI"})
        assert padded.status_code == 200, padded.text
        assert padded.json()["items"] == plain.json()["items"]

    @pytest.mark.parametrize("code", CONFUSABLE_CODES)
    def test_between(self, c: TestClient, code: str) -> None:
        refused(c.get("/v1/timeline", params={"between": f"{code},DZA"}), param="between")

    @pytest.mark.parametrize("code", [*CONFUSABLE_CODES, *PADDED_CODES])
    @pytest.mark.parametrize(
        "template", ["/v1/states/{}", "/v1/relations/{}/DZA", "/v1/states/{}/memberships"]
    )
    def test_path(self, c: TestClient, template: str, code: str) -> None:
        # Path segments are not stripped: a padded code is as wrong as a confusable one.
        refused(c.get(template.format(quote(code))), param="code" if "states" in template else "a")

    @pytest.mark.parametrize("code", ["\u0410\u0415S", "\uff21\uff25\uff33", "\u00e6s", "A ES"])
    def test_organisation(self, c: TestClient, code: str) -> None:
        refused(c.get("/v1/timeline", params={"organisation": code}), param="organisation")

    @pytest.mark.parametrize("code", CONFUSABLE_CODES)
    def test_in_a_body(self, module_writable: Writable, code: str) -> None:
        body = event_body(participants=[{"state": code, "role": "initiator"}])
        response = module_writable.client.post(
            "/v1/events", json=body, headers=module_writable.auth()
        )
        refused(response, 422, "participants")

    def test_a_new_state_with_a_confusable_code(self, module_writable: Writable) -> None:
        body = {"code": "\u041cLI", "alpha2": "\u041cL", "name": "Mali, again"}
        response = module_writable.client.post(
            "/v1/states", json=body, headers=module_writable.auth()
        )
        refused(response, 422, "code")

    def test_accented_search_still_finds_the_real_state(self, c: TestClient) -> None:
        # Search, unlike codes, folds case and accents on purpose.
        response = c.get("/v1/states", params={"q": "ALGÉRIE"})
        assert [s["code"] for s in response.json()["items"]] == ["DZA"]


def raw_status(port: int, target: bytes) -> int:
    """The status of a GET whose request line carries `target` byte for byte."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"GET " + target + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        head = b""
        while b"\r\n" not in head:
            chunk = sock.recv(4096)
            if not chunk:
                break
            head += chunk
    return int(head.split(b" ", 2)[1])


def test_nothing_was_written(module_writable: Writable) -> None:
    with module_writable.session() as session:
        assert session.get(Event, 1) is not None
        assert (
            session.scalar(select(Event).where(Event.public_id == "2025-04-21-hostile-statement"))
            is None
        )
