"""`format=timelinejs`: Knight Lab TimelineJS JSON, checked against a JSON Schema of the format,
parsed with a real HTML parser, and compared with a golden file made from the real seed. The real
library loads it in tests/browser/timelinejs.mjs."""

import datetime as dt
import html
from html.parser import HTMLParser
from typing import Any

import jsonschema
import orjson
import pytest
from fastapi.testclient import TestClient

from app.timeline import timelinejs
from tests import oracle
from tests.helpers import assert_problem
from tests.test_formats import CRISIS, SHOOT_DOWN, check_golden, crisis_ids

PANTSIR = "2024-10-algeria-pantsir-deployment-reports"
BATTLE = "2024-07-25-battle-of-tinzaouaten"

DATE: dict[str, Any] = {
    "type": "object",
    "required": ["year"],
    "additionalProperties": False,
    "properties": {
        "year": {"type": "integer"},
        "month": {"type": "integer", "minimum": 1, "maximum": 12},
        "day": {"type": "integer", "minimum": 1, "maximum": 31},
    },
    # A day needs its month (TimelineJS would otherwise read it as January).
    "dependentRequired": {"day": ["month"]},
}
TEXT: dict[str, Any] = {
    "type": "object",
    "required": ["headline"],
    "properties": {"headline": {"type": "string"}, "text": {"type": "string"}},
}
# What https://timeline.knightlab.com/docs/json-format.html requires of our output.
TIMELINEJS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["events", "title"],
    "properties": {
        "scale": {"const": "human"},
        "title": {
            "type": "object",
            "required": ["text"],
            "not": {"required": ["start_date"]},
            "properties": {"text": TEXT},
        },
        "events": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["start_date", "text", "unique_id", "group"],
                "properties": {
                    "start_date": DATE,
                    "end_date": DATE,
                    "text": TEXT,
                    "group": {"type": "string", "minLength": 1},
                    "unique_id": {"type": "string", "minLength": 1},
                    "media": {
                        "type": "object",
                        "required": ["url"],
                        "properties": {
                            "url": {"type": "string"},
                            "caption": {"type": "string"},
                            "credit": {"type": "string"},
                            "link": {"type": "string", "pattern": "^https?://"},
                        },
                    },
                },
            },
        },
        "eras": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["start_date", "end_date", "text"],
                "properties": {"start_date": DATE, "end_date": DATE, "text": TEXT},
            },
        },
    },
}


class Links(HTMLParser):
    """The hrefs and the text of an HTML fragment, read by the standard library's parser."""

    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []
        self.cells: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self.hrefs.append(dict(attrs)["href"] or "")
        if tag == "th":
            self.cells.append("")

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self.cells and self.lasttag == "th":
            self.cells[-1] += data


def parsed(fragment: str) -> Links:
    parser = Links()
    parser.feed(fragment)
    parser.close()
    return parser


def timeline(client: TestClient, **params: str | list[str]) -> dict[str, Any]:
    response = client.get("/v1/timeline", params={**params, "format": "timelinejs"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    body: dict[str, Any] = response.json()
    jsonschema.validate(body, TIMELINEJS_SCHEMA)
    return body


def ymd(day: dt.date) -> dict[str, int]:
    return {"year": day.year, "month": day.month, "day": day.day}


def seed_event(event_id: str) -> dict[str, Any]:
    return next(e for e in oracle.events() if e["id"] == event_id)


class TestCrisis:
    def test_one_slide_per_event_with_our_ids(self, client: TestClient) -> None:
        response = client.get("/v1/timeline", params={**CRISIS, "format": "timelinejs"})
        assert response.headers["x-data-licence"]
        assert "timeline.json" in response.headers["content-disposition"]
        body = timeline(client, **CRISIS)
        ids = [e["unique_id"] for e in body["events"]]
        assert ids == crisis_ids()
        assert len(set(ids)) == len(ids)
        assert "title" not in ids

    def test_slide_text_sources_claims_and_media(self, client: TestClient) -> None:
        body = timeline(client, **CRISIS)
        drone = next(e for e in body["events"] if e["unique_id"] == SHOOT_DOWN)
        seed = seed_event(SHOOT_DOWN)
        assert drone["start_date"] == ymd(seed["date"])
        assert "end_date" not in drone
        assert html.unescape(drone["text"]["headline"]) == seed["title"]
        text = parsed(drone["text"]["text"])
        source_urls = [s["url"] for s in seed["sources"]]
        assert text.hrefs[: len(source_urls)] == source_urls
        assert seed["summary"] in "".join(text.text)
        # The claims of each topic side by side: one column per claimant.
        assert text.cells[:2] == ["DZA", "MLI"]
        assert "9.5 km inside mali" in "".join(text.text)
        main = seed["sources"][0]
        assert drone["media"]["link"] == main["url"]
        assert drone["media"]["credit"] == main["publisher"]
        assert "<blockquote>" in drone["media"]["url"]
        assert drone["group"] == seed["kind"].replace("_", " ")
        assert drone["media"]["caption"].startswith("Main source")

    def test_text_is_escaped(self) -> None:
        doc = {
            "id": "x",
            "kind": "incident",
            "category": "shoot_down",
            "date": "2025-04-01",
            "date_precision": "day",
            "end_date": None,
            "title": "A <b>bold</b> & odd title",
            "summary": "<script>alert(1)</script>",
            "sources": [{"url": "https://example.org/?a=1&b=<2>", "publisher": "P<>"}],
            "claims": [],
            "tags": [],
            "url": "/v1/events/x",
        }
        body = timelinejs.render(
            [doc], description="Events", query_url=None, base_url="", licence="CC BY 4.0"
        )
        slide = body["events"][0]
        assert slide["text"]["headline"] == "A &lt;b&gt;bold&lt;/b&gt; &amp; odd title"
        assert "<script>" not in slide["text"]["text"]
        assert parsed(slide["text"]["text"]).hrefs[0] == "https://example.org/?a=1&b=<2>"
        assert slide["media"]["credit"] == "P&lt;&gt;"

    def test_title_slide_names_the_query_attribution_and_licence(self, client: TestClient) -> None:
        title = timeline(client, **CRISIS)["title"]
        text = "".join(parsed(title["text"]["text"]).text)
        assert title["text"]["headline"] == "Diplomatic Timeline"
        assert "between MLI and DZA" in text
        assert "from 2025-04 to 2025-04" in text
        assert f"({len(crisis_ids())} events)" in text
        assert "Diplomatic Timeline API; every event cites its own sources" in text
        assert "Data licence: CC BY 4.0" in text
        (query,) = parsed(title["text"]["text"]).hrefs
        assert query.endswith("/v1/timeline?between=MLI%2CDZA&from=2025-04&to=2025-04")

    def test_era_of_the_named_crisis(self, client: TestClient) -> None:
        body = timeline(client, **CRISIS)
        tagged = [
            e
            for e in oracle.events()
            if e["id"] in crisis_ids() and "april-2025-crisis" in e["tags"]
        ]
        assert body["eras"] == [
            {
                "unique_id": "era-april-2025-crisis-1",
                "start_date": ymd(min(e["date"] for e in tagged)),
                "end_date": ymd(max(e["date"] for e in tagged)),
                "text": {"headline": "April 2025 crisis"},
            }
        ]

    def test_golden(self, client: TestClient) -> None:
        body = timeline(client, **CRISIS)
        check_golden(
            "crisis.timelinejs.json", orjson.dumps(body, option=orjson.OPT_INDENT_2).decode()
        )


class TestDates:
    def test_month_precision_has_no_day_and_no_invented_end(self, client: TestClient) -> None:
        body = timeline(client, **{"from": "2024-10", "to": "2024-10"})
        pantsir = next(e for e in body["events"] if e["unique_id"] == PANTSIR)
        assert seed_event(PANTSIR)["date_precision"] == "month"
        assert pantsir["start_date"] == {"year": 2024, "month": 10}
        assert "end_date" not in pantsir

    def test_day_precision_keeps_its_end_date(self, client: TestClient) -> None:
        body = timeline(client, **{"from": "2024-07", "to": "2024-07"})
        battle = next(e for e in body["events"] if e["unique_id"] == BATTLE)
        seed = seed_event(BATTLE)
        assert battle["start_date"] == ymd(seed["date"])
        assert battle["end_date"] == ymd(seed["end_date"])

    @pytest.mark.parametrize(
        ("precision", "end_date", "start", "end"),
        [
            ("year", None, {"year": 2019}, None),
            ("year", "2019-12-31", {"year": 2019}, None),
            ("year", "2021-03-01", {"year": 2019}, {"year": 2021}),
            ("month", "2019-01-20", {"year": 2019, "month": 1}, None),
            ("month", "2019-03-02", {"year": 2019, "month": 1}, {"year": 2019, "month": 3}),
            ("day", "2019-01-03", {"year": 2019, "month": 1, "day": 1}, ymd(dt.date(2019, 1, 3))),
        ],
    )
    def test_dates_never_claim_more_than_the_precision(
        self,
        precision: str,
        end_date: str | None,
        start: dict[str, int],
        end: dict[str, int] | None,
    ) -> None:
        doc = {"date": "2019-01-01", "date_precision": precision, "end_date": end_date}
        assert timelinejs.date_object(doc["date"], precision) == start
        assert timelinejs._end_object(doc) == end


class TestGroups:
    def test_group_by_kind_is_the_default(self, client: TestClient) -> None:
        body = timeline(client, **CRISIS)
        kinds = {e["id"]: e["kind"].replace("_", " ") for e in oracle.events()}
        assert all(e["group"] == kinds[e["unique_id"]] for e in body["events"])
        assert {e["group"] for e in body["events"]} == {"incident", "diplomatic action"}

    def test_group_by_category(self, client: TestClient) -> None:
        body = timeline(client, **CRISIS, group_by="category")
        categories = {e["id"]: e["category"].replace("_", " ") for e in oracle.events()}
        assert all(e["group"] == categories[e["unique_id"]] for e in body["events"])
        assert len({e["group"] for e in body["events"]}) > 2
        assert "grouped by category" in body["title"]["text"]["text"]

    def test_bad_group_by_is_a_problem(self, client: TestClient) -> None:
        response = client.get("/v1/timeline", params={"format": "timelinejs", "group_by": "state"})
        assert_problem(response, 422, "group_by")

    def test_group_by_does_not_invalidate_a_cursor(self, client: TestClient) -> None:
        first = client.get("/v1/timeline", params={**CRISIS, "limit": 2}).json()
        response = client.get(
            "/v1/timeline",
            params={**CRISIS, "limit": 2, "cursor": first["next_cursor"], "group_by": "category"},
        )
        assert response.status_code == 200, response.text
        assert [i["id"] for i in response.json()["items"]] == crisis_ids()[2:4]


class TestCap:
    def test_a_query_past_the_cap_is_refused(
        self, client: TestClient, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(timelinejs, "MAX_EVENTS", 3)
        # A fresh answer: the response cache may hold this query's page, made under the real cap.
        response = client.get(
            "/v1/timeline",
            params={**CRISIS, "format": "timelinejs"},
            headers={"Cache-Control": "no-cache"},
        )
        body = assert_problem(response, 422, "format")
        assert "3 events" in body["detail"]
        assert "narrow the filters" in body["detail"]
        assert "csv" in body["detail"] and "ndjson" in body["detail"]

    def test_exactly_the_cap_is_served(
        self, client: TestClient, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(timelinejs, "MAX_EVENTS", len(crisis_ids()))
        assert len(timeline(client, **CRISIS)["events"]) == len(crisis_ids())

    def test_paging_parameters_are_ignored(self, client: TestClient) -> None:
        body = timeline(client, **CRISIS, limit="1")
        assert len(body["events"]) == len(crisis_ids())

    def test_the_cap_is_documented(self, client: TestClient) -> None:
        spec = client.get("/openapi.json").json()
        params = {p["name"]: p for p in spec["paths"]["/v1/timeline"]["get"]["parameters"]}
        assert timelinejs.MAX_EVENTS == 500
        assert "capped at 500 events" in params["format"]["description"]
        assert "timelinejs" in str(params["format"]["schema"])
        assert params["group_by"]["description"]

    def test_bad_filter_is_a_problem(self, client: TestClient) -> None:
        response = client.get("/v1/timeline", params={"format": "timelinejs", "state": "XXX"})
        assert_problem(response, 422, "state")


class TestMembershipEras:
    def test_eras_are_the_members_periods_clipped_to_the_events(self, client: TestClient) -> None:
        body = timeline(client, organisation="AES")
        events = [e for e in oracle.events() if "AES" in oracle.codes(e)]
        first = min(e["date"] for e in events)
        last = max(e.get("end_date") or e["date"] for e in events)
        members = [m for m in oracle.memberships() if m["organisation"] == "AES"]
        assert len(body["eras"]) == len(members)
        names = {"MLI": "Mali", "BFA": "Burkina Faso", "NER": "Niger"}
        for era, m in zip(body["eras"], members, strict=True):
            assert era["text"]["headline"] == f"{names[m['state']]} in AES"
            assert era["start_date"] == ymd(max(m["start_on"], first))
            assert era["end_date"] == ymd(last)  # open memberships end with the events

    def test_ended_and_unknown_periods(self, client: TestClient) -> None:
        body = timeline(client, organisation="G5-SAHEL", include_members="true")
        mali = next(e for e in body["eras"] if e["text"]["headline"] == "Mali in G5-SAHEL")
        withdrawal = next(
            m
            for m in oracle.memberships()
            if m["organisation"] == "G5-SAHEL" and m["state"] == "MLI"
        )
        assert withdrawal["end_precision"] == "month"
        assert mali["end_date"] == {
            "year": withdrawal["end_on"].year,
            "month": withdrawal["end_on"].month,
        }
        unknown = [
            m["state"]
            for m in oracle.memberships()
            if m["organisation"] == "G5-SAHEL" and m["end"] == "unknown"
        ]
        assert unknown and len(body["eras"]) == 5 - len(unknown)
        assert "end the data does not record are not drawn" in body["title"]["text"]["text"]

    def test_two_organisations_fall_back_to_crises(self, client: TestClient) -> None:
        body = timeline(client, organisation=["AES", "ECOWAS"], **{"from": "2025-04"})
        assert [e["text"]["headline"] for e in body["eras"]] == ["April 2025 crisis"]
