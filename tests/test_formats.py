"""Every timeline format, parsed by a real parser and compared with a golden file made from the
real seed (timestamps, which change with every load, are normalised)."""

import asyncio
import csv
import io
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import feedparser
import icalendar
import jsonschema
import orjson
import pytest
from fastapi.testclient import TestClient

from app.events.csvline import csv_field
from app.timeline.router import read_ahead
from tests import oracle
from tests.helpers import assert_problem

GOLDEN = Path(__file__).parent / "golden"
CRISIS = {"between": "MLI,DZA", "from": "2025-04", "to": "2025-04"}
SHOOT_DOWN = "2025-04-01-algeria-shoots-down-malian-drone"

# A minimal JSON Schema of what RFC 7946 requires of our output.
GEOJSON_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["type", "features"],
    "properties": {
        "type": {"const": "FeatureCollection"},
        "features": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["type", "geometry", "properties"],
                "properties": {
                    "type": {"const": "Feature"},
                    "geometry": {
                        "type": ["object", "null"],
                        "required": ["type", "coordinates"],
                        "properties": {
                            "type": {"const": "Point"},
                            "coordinates": {
                                "type": "array",
                                "minItems": 2,
                                "maxItems": 3,
                                "prefixItems": [
                                    {"type": "number", "minimum": -180, "maximum": 180},
                                    {"type": "number", "minimum": -90, "maximum": 90},
                                ],
                            },
                        },
                    },
                    "properties": {"type": ["object", "null"]},
                },
            },
        },
    },
}

STAMPS = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?\+00:00|\d{8}T\d{6}Z|testserver")


def normalised(text: str) -> str:
    return STAMPS.sub("<stamp>", text)


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    # Bytes, not text: CSV and iCalendar line ends are CRLF and must stay so.
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.write_bytes(normalised(text).encode())
    assert path.exists(), f"no golden file {name}: run UPDATE_GOLDEN=1 pytest tests/test_formats.py"
    assert normalised(text).encode() == path.read_bytes(), f"{name} differs from its golden file"


def crisis_ids() -> list[str]:
    return oracle.in_order(
        [
            e
            for e in oracle.events()
            if {"MLI", "DZA"} <= oracle.codes(e) and str(e["date"]).startswith("2025-04")
        ]
    )


class TestCsv:
    def test_parses_with_one_row_per_event(self, client: TestClient) -> None:
        response = client.get("/v1/timeline", params={**CRISIS, "format": "csv"})
        assert response.headers["content-type"] == "text/csv; charset=utf-8"
        assert response.headers["x-data-licence"]
        rows = list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))))
        assert [r["id"] for r in rows] == crisis_ids()
        drone = next(r for r in rows if r["id"] == SHOOT_DOWN)
        assert "DZA:initiator" in drone["participants"]
        assert "devdiscourse" in drone["source_urls"]
        assert "DZA:" in drone["claims"] and "MLI:" in drone["claims"]
        assert drone["lat"] == "19.9486"
        check_golden("crisis.csv", response.text)

    def test_streams_every_event_ignoring_paging(self, client: TestClient) -> None:
        response = client.get("/v1/timeline", params={"format": "csv", "limit": 1})
        rows = list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))))
        assert len(rows) == len(oracle.events())
        assert response.text.endswith("\r\n")

    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            # Numbers are numbers: guarding them turned goldstein and lon into text (issue 22).
            (-2.5, "-2.5"),
            (-10, "-10"),
            (0.0, "0.0"),
            # Text is guarded against formulas and always quoted, numeric-looking or not.
            ("=HYPERLINK(1)", '"\'=HYPERLINK(1)"'),
            ("+1", '"\'+1"'),
            ("-2.5", '"\'-2.5"'),
            ("@x", '"\'@x"'),
            ("plain", '"plain"'),
            ("010", '"010"'),
            ("a; b", '"a; b"'),
            ('say "no"', '"say ""no"""'),
            ("", ""),
            (None, ""),
        ],
    )
    def test_formula_injection_is_neutralised(self, value: object, expected: str) -> None:
        assert csv_field(value) == expected

    def test_numbers_are_unguarded_and_text_is_guarded(self, client: TestClient) -> None:
        """Issue 22: every negative goldstein and western longitude came out as `'-10.0`."""
        response = client.get("/v1/timeline", params={"format": "csv"})
        rows = list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))))
        page = client.get("/v1/timeline", params={"limit": 500}).json()
        assert page["next_cursor"] is None
        events = {e["id"]: e for e in page["items"]}
        negative = 0
        for row in rows:
            event = events[row["id"]]
            for column, value in (
                ("goldstein", event["goldstein"]),
                ("lon", (event.get("location") or {}).get("lon")),
                ("lat", (event.get("location") or {}).get("lat")),
            ):
                if value is None:
                    assert row[column] == ""
                else:
                    assert float(row[column]) == value, (row["id"], column, row[column])
                    negative += value < 0
        assert negative > 20

    def test_starts_with_a_byte_order_mark_once(self, client: TestClient) -> None:
        """So that Excel reads UTF-8 (README, exports); only the header carries it."""
        response = client.get("/v1/timeline", params={**CRISIS, "format": "csv"})
        assert response.content.startswith("\ufeffid,kind,".encode())
        assert response.content.count("\ufeff".encode()) == 1

    def test_accept_header(self, client: TestClient) -> None:
        response = client.get("/v1/timeline", params=CRISIS, headers={"Accept": "text/csv"})
        assert response.text.startswith("\ufeffid,kind,category")

    def test_bad_filter_is_still_a_problem(self, client: TestClient) -> None:
        assert_problem(client.get("/v1/timeline", params={"format": "csv", "state": "XXX"}), 422)
        assert_problem(client.get("/v1/timeline", params={"format": "pdf"}), 422, "format")


class TestNdjson:
    def test_one_event_per_line(self, client: TestClient) -> None:
        response = client.get("/v1/timeline", params={**CRISIS, "format": "ndjson"})
        lines = response.text.splitlines()
        assert [orjson.loads(line)["id"] for line in lines] == crisis_ids()
        check_golden("crisis.ndjson", response.text)


class TestGeoJson:
    def test_feature_collection(self, client: TestClient) -> None:
        response = client.get("/v1/timeline", params={**CRISIS, "format": "geojson"})
        assert response.headers["content-type"] == "application/geo+json"
        body = response.json()
        jsonschema.validate(body, GEOJSON_SCHEMA)
        drone = next(f for f in body["features"] if f["id"] == SHOOT_DOWN)
        assert drone["geometry"]["coordinates"] == [2.9678, 19.9486]
        assert drone["properties"]["claims"]
        assert body["licence"] and body["attribution"]
        # Issue 22: events without coordinates were silently left out (both letters to the UN
        # Security Council here). They are features with a null geometry (RFC 7946 3.2).
        assert [f["id"] for f in body["features"]] == crisis_ids()
        events = {e["id"]: e for e in oracle.events()}
        unplaced = [
            f["id"]
            for f in body["features"]
            if (events[f["id"]].get("location") or {}).get("lat") is None
        ]
        assert "2025-04-07-mali-writes-to-unsc" in unplaced
        assert "2025-04-09-algeria-writes-to-unsc" in unplaced
        assert all((f["geometry"] is None) == (f["id"] in unplaced) for f in body["features"])
        check_golden("crisis.geojson", response.text)


class TestICalendar:
    def test_calendar_parses_with_stable_uids(self, client: TestClient) -> None:
        response = client.get("/v1/timeline", params={**CRISIS, "format": "ics"})
        assert response.headers["content-type"] == "text/calendar; charset=utf-8"
        calendar = icalendar.Calendar.from_ical(response.content)
        events = calendar.walk("VEVENT")
        assert [str(e["UID"]) for e in events] == [f"{i}@diplomatic-timeline" for i in crisis_ids()]
        drone = next(e for e in events if str(e["UID"]).startswith(SHOOT_DOWN))
        assert drone.decoded("DTSTART").isoformat() == "2025-04-01"
        assert drone.decoded("DTEND").isoformat() == "2025-04-02"
        assert "devdiscourse" in str(drone["DESCRIPTION"])
        check_golden("crisis.ics", response.text)

    def test_all_day_dates_follow_the_precision(self, client: TestClient) -> None:
        response = client.get(
            "/v1/timeline", params={"format": "ics", "from": "2024-10", "to": "2024-10"}
        )
        events = icalendar.Calendar.from_ical(response.content).walk("VEVENT")
        month = next(e for e in events if str(e["UID"]).startswith("2024-10-algeria-pantsir"))
        assert month.decoded("DTSTART").isoformat() == "2024-10-01"
        assert month.decoded("DTEND").isoformat() == "2024-11-01"


class TestAtom:
    def test_feed_of_everything_involving_algeria(self, client: TestClient) -> None:
        response = client.get("/v1/timeline", params={"state": "DZA", "format": "atom", "limit": 5})
        assert response.headers["content-type"] == "application/atom+xml; charset=utf-8"
        feed = feedparser.parse(response.content)
        assert not feed.bozo, feed.bozo_exception
        assert len(feed.entries) == 5
        updated = [e.updated_parsed for e in feed.entries]
        assert updated == sorted(updated, reverse=True)
        assert "Licence" in feed.feed.rights


class TestFacets:
    def test_counts_match_the_timeline(self, client: TestClient) -> None:
        body = client.get("/v1/timeline/facets", params={"state": "DZA"}).json()
        events = [e for e in oracle.events() if "DZA" in oracle.codes(e)]
        assert body["total"] == len(events)
        categories = {f["value"]: f["count"] for f in body["category"]}
        for category in {e["category"] for e in events}:
            assert categories[category] == sum(e["category"] == category for e in events)
        states = {f["value"]: f["count"] for f in body["state"]}
        assert states["DZA"] == len(events)
        assert states["MLI"] == sum("MLI" in oracle.codes(e) for e in events)
        months = {f["value"]: f["count"] for f in body["period"]}
        assert months["2025-04"] == sum(str(e["date"]).startswith("2025-04") for e in events)
        assert [f["value"] for f in body["period"]] == sorted(months)

    def test_yearly_and_organisations(self, client: TestClient) -> None:
        body = client.get("/v1/timeline/facets", params={"interval": "year"}).json()
        years = {f["value"]: f["count"] for f in body["period"]}
        assert years["2020"] == sum(str(e["date"]).startswith("2020") for e in oracle.events())
        orgs = {f["value"]: f["count"] for f in body["organisation"]}
        assert orgs["AES"] == sum("AES" in oracle.codes(e) for e in oracle.events())

    def test_errors(self, client: TestClient) -> None:
        assert_problem(
            client.get("/v1/timeline/facets", params={"interval": "week"}), 422, "interval"
        )
        assert_problem(client.get("/v1/timeline/facets", params={"state": "XXX"}), 422, "state")


def test_an_export_reads_one_chunk_ahead_and_no_more() -> None:
    """The next chunk is read while this one is sent, never two: memory stays one chunk ahead."""
    read: list[int] = []

    def chunks() -> Iterator[tuple[bytes, float]]:
        for i in range(6):
            read.append(i)
            yield bytes([i]), 0.0

    async def consume() -> list[int]:
        stream = chunks()
        sent: list[int] = []
        async for chunk in read_ahead(next(stream), stream):  # type: ignore[arg-type]
            await asyncio.sleep(0.02)  # time for a read ahead to run too far, if it would
            assert len(read) <= len(sent) + 2  # this chunk and the next
            sent.append(chunk[0])
        return sent

    assert asyncio.run(consume()) == list(range(6))
