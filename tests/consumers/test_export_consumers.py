"""The timeline's exports read by the tools their users read them with (issue 22): pandas and
Python's csv module on the CSV, the `geojson` package, `icalendar` and `feedparser`; and one
query gives the same events in every format."""

import csv
import io
from typing import Any
from urllib.parse import urlencode

import feedparser
import geojson
import icalendar
import orjson
import pandas
import pytest
from fastapi.testclient import TestClient
from pandas.api.types import is_float_dtype, is_numeric_dtype

from app.events.csvline import CSV_COLUMNS

# Real queries of the seed. `between=MLI,DZA` holds both letters to the UN Security Council,
# which have no coordinates; April 2025 is the 22 negative cells.
QUERIES: list[dict[str, Any]] = [
    {"between": "MLI,DZA"},
    {"from": "2025-04", "to": "2025-04"},
    {"state": "DZA", "category": ["ambassador_recall", "airspace_closure"]},
    {"organisation": "AES", "include_members": "true"},
    {"q": "ambassador"},
    {},
]
NUMERIC = ["lat", "lon", "goldstein", "casualties_killed", "casualties_wounded"]
BASE = "http://testserver"


def label(params: dict[str, Any]) -> str:
    return urlencode(params, doseq=True, safe=",") or "everything"


def json_items(client: TestClient, params: dict[str, Any]) -> list[dict[str, Any]]:
    """Every event of the query as JSON, paged to the end by the cursor."""
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = client.get(
            "/v1/timeline", params={**params, "limit": 7, **({"cursor": cursor} if cursor else {})}
        ).json()
        items.extend(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return items


def export(client: TestClient, params: dict[str, Any], fmt: str, **extra: Any) -> bytes:
    response = client.get("/v1/timeline", params={**params, "format": fmt, **extra})
    assert response.status_code == 200, response.text
    return response.content


def event_id(url: str) -> str:
    return url.rsplit("/", 1)[1]


@pytest.mark.parametrize("params", QUERIES, ids=label)
def test_every_format_holds_the_same_events(client: TestClient, params: dict[str, Any]) -> None:
    """Issue 22: GeoJSON left out the events without coordinates (17 of 81). Every format in
    timeline order holds the JSON's events in its order; Atom, the latest changes, holds them
    all within its cap (`limit`, at most 500), and the `limit` most recently changed below it."""
    items = json_items(client, params)
    expected = [item["id"] for item in items]
    assert expected

    frame = pandas.read_csv(io.BytesIO(export(client, params, "csv")))
    ndjson = export(client, params, "ndjson").splitlines()
    collection = geojson.loads(export(client, params, "geojson"))
    calendar = icalendar.Calendar.from_ical(export(client, params, "ics"))
    timelinejs = orjson.loads(export(client, params, "timelinejs"))
    found = {
        "csv": list(frame["id"]),
        "ndjson": [orjson.loads(line)["id"] for line in ndjson],
        "geojson": [feature["id"] for feature in collection["features"]],
        "ics": [
            str(e["UID"]).removesuffix("@diplomatic-timeline") for e in calendar.walk("VEVENT")
        ],
        "timelinejs": [slide["unique_id"] for slide in timelinejs["events"]],
    }
    assert found == dict.fromkeys(found, expected)

    feed = feedparser.parse(export(client, params, "atom", limit=500))
    assert not feed.bozo, feed.bozo_exception
    assert sorted(event_id(entry.id) for entry in feed.entries) == sorted(expected)
    latest = sorted(items, key=lambda item: item["id"])
    latest.sort(key=lambda item: item["updated_at"], reverse=True)
    few = feedparser.parse(export(client, params, "atom", limit=3))
    assert [event_id(entry.id) for entry in few.entries] == [i["id"] for i in latest[:3]]


def test_the_queries_hold_events_without_coordinates(client: TestClient) -> None:
    unplaced = [
        item["id"]
        for item in json_items(client, QUERIES[0])
        if (item["location"] or {}).get("lat") is None
    ]
    assert "2025-04-07-mali-writes-to-unsc" in unplaced
    assert "2025-04-09-algeria-writes-to-unsc" in unplaced


class TestCsv:
    @pytest.mark.parametrize("params", QUERIES, ids=label)
    def test_pandas_reads_numbers_as_numbers(
        self, client: TestClient, params: dict[str, Any]
    ) -> None:
        """Issue 22: the formula guard made `goldstein` and `lon` text, and
        `df.goldstein.mean()` raised TypeError."""
        items = {item["id"]: item for item in json_items(client, params)}
        frame = pandas.read_csv(io.BytesIO(export(client, params, "csv")))
        assert list(frame.columns) == CSV_COLUMNS  # the byte order mark is not in `id`
        for column in NUMERIC:
            assert is_numeric_dtype(frame[column]), (column, frame[column].dtype)
        assert is_float_dtype(frame["goldstein"])
        scores = [i["goldstein"] for i in items.values() if i["goldstein"] is not None]
        assert frame["goldstein"].mean() == pytest.approx(sum(scores) / len(scores))
        for row in frame.itertuples():
            item = items[row.id]
            location = item["location"] or {}
            for column, value in (
                ("goldstein", item["goldstein"]),
                ("lat", location.get("lat")),
                ("lon", location.get("lon")),
            ):
                read = getattr(row, column)
                assert pandas.isna(read) if value is None else read == value, (row.id, column)
            assert row.title == item["title"]
            assert row.summary == item["summary"]

    def test_codes_keep_their_leading_zeros_read_as_text(self, client: TestClient) -> None:
        """`cameo_code` is a code ("010"): read as text, as the docs say, it is the JSON's."""
        items = {item["id"]: item for item in json_items(client, {})}
        frame = pandas.read_csv(
            io.BytesIO(export(client, {}, "csv")), dtype={"cameo_code": str}, keep_default_na=False
        )
        assert {row.id: row.cameo_code for row in frame.itertuples()} == {
            i: item["cameo_code"] or "" for i, item in items.items()
        }
        assert "010" in set(frame["cameo_code"])

    def test_accents_read_by_pandas_and_by_the_csv_module(self, client: TestClient) -> None:
        """The byte order mark (for Excel) costs pandas nothing, with or without `utf-8-sig`;
        the csv module reads the file opened as `utf-8-sig`, as the docs say."""
        body = export(client, {}, "csv")
        plain = pandas.read_csv(io.BytesIO(body))
        pandas.testing.assert_frame_equal(
            plain, pandas.read_csv(io.BytesIO(body), encoding="utf-8-sig")
        )
        rows = list(csv.DictReader(io.StringIO(body.decode("utf-8-sig"))))
        assert [row["id"] for row in rows] == list(plain["id"])
        publishers = " | ".join(plain["source_publishers"])
        assert "Maghreb Émergent" in publishers
        assert "Akıncı" in " ".join(plain["summary"])
        items = json_items(client, {})
        accented = {
            field
            for item in items
            for field in (item["title"], item["summary"], (item["location"] or {}).get("name"))
            if field and not field.isascii()
        }
        assert accented
        read = set(plain["title"]) | set(plain["summary"]) | set(plain["location"].dropna())
        assert accented <= read


class TestGeoJson:
    @pytest.mark.parametrize("params", QUERIES, ids=label)
    def test_valid_with_null_geometries(self, client: TestClient, params: dict[str, Any]) -> None:
        items = {item["id"]: item for item in json_items(client, params)}
        collection = geojson.loads(export(client, params, "geojson"))
        assert isinstance(collection, geojson.FeatureCollection)
        assert collection.is_valid, collection.errors()
        for feature in collection["features"]:
            location = items[feature["id"]]["location"] or {}
            if location.get("lat") is None:
                assert feature["geometry"] is None
            else:
                assert feature["geometry"]["coordinates"] == [location["lon"], location["lat"]]


class TestFeedsAndCalendars:
    @pytest.mark.parametrize("params", QUERIES, ids=label)
    def test_atom_entries_open_the_page_with_the_json_as_alternate(
        self, client: TestClient, params: dict[str, Any]
    ) -> None:
        """Issue 22: a feed reader opened the raw JSON of each entry."""
        feed = feedparser.parse(export(client, params, "atom"))
        assert not feed.bozo, feed.bozo_exception
        assert feed.entries
        for entry in feed.entries:
            event = event_id(entry.id)
            assert entry.link == f"{BASE}/?event={event}"
            links = {(link.rel, link.type): link.href for link in entry.links}
            assert links == {
                ("alternate", "text/html"): entry.link,
                ("alternate", "application/json"): f"{BASE}/v1/events/{event}",
            }

    def test_the_feed_links_to_the_page_of_its_query(self, client: TestClient) -> None:
        feed = feedparser.parse(export(client, {"between": "MLI,DZA", "from": "2025"}, "atom"))
        assert feed.feed.link == f"{BASE}/?between=MLI%2CDZA&from=2025"

    @pytest.mark.parametrize("params", QUERIES, ids=label)
    def test_calendar_events_open_the_page_and_attach_the_json(
        self, client: TestClient, params: dict[str, Any]
    ) -> None:
        """Issue 22: URL was the raw JSON. Apple Calendar shows URL; Google Calendar and Outlook
        show only the description, which names both."""
        calendar = icalendar.Calendar.from_ical(export(client, params, "ics"))
        events = calendar.walk("VEVENT")
        assert events
        for event in events:
            page = f"{BASE}/?event={str(event['UID']).removesuffix('@diplomatic-timeline')}"
            data = page.replace("/?event=", "/v1/events/")
            assert str(event["URL"]) == page
            assert str(event["ATTACH"]) == data
            assert event["ATTACH"].params["FMTTYPE"] == "application/json"
            description = str(event["DESCRIPTION"])
            assert f"Event page: {page}\n" in description
            assert f"Data (JSON): {data}\n" in description

    @pytest.mark.parametrize(
        ("params", "title"),
        [
            ({}, "Diplomatic Timeline"),
            ({"state": "DZA"}, "Diplomatic Timeline: DZA"),
            (
                {"between": "MLI,DZA", "from": "2025-04", "to": "2025-04"},
                "Diplomatic Timeline: MLI and DZA · 2025-04",
            ),
            ({"actor": "MLI", "target": "DZA"}, "Diplomatic Timeline: MLI → DZA"),
            ({"target": "DZA"}, "Diplomatic Timeline: targeting DZA"),
            (
                {"organisation": "AES", "include_members": "true", "from": "2024"},
                "Diplomatic Timeline: AES and members · 2024 onwards",
            ),
            (
                {"state": ["MLI", "NER"], "category": "ambassador_recall", "to": "2025-06"},
                "Diplomatic Timeline: MLI or NER · ambassador recall · to 2025-06",
            ),
            (
                {"kind": "incident", "tag": "april-2025-crisis", "q": "drone"},
                "Diplomatic Timeline: incident · #april-2025-crisis · “drone”",
            ),
            (
                {"state": "DZA", "as_known_at": "2026-01-01T00:00:00Z"},
                "Diplomatic Timeline: DZA · as known at 2026-01-01T00:00:00+00:00",
            ),
        ],
    )
    def test_feed_and_calendar_names_name_the_query(
        self, client: TestClient, params: dict[str, Any], title: str
    ) -> None:
        """Issue 22: every feed and calendar was called "Diplomatic Timeline"."""
        assert feedparser.parse(export(client, params, "atom")).feed.title == title
        calendar = icalendar.Calendar.from_ical(export(client, params, "ics"))
        assert str(calendar["X-WR-CALNAME"]) == title
        assert calendar.calendar_name == title
