"""The OpenAPI document as its readers use it (app/openapi.py), and the export operations of their
own (app/timeline/downloads.py). The outside tools themselves (Redocly, Spectral, a generated
client) run in tests/consumers/."""

import re
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.config import Settings
from app.main import create_app
from app.openapi import OPERATIONS
from app.timeline import formats
from tests.helpers import assert_problem

METHODS = {"get", "post", "patch", "put", "delete"}
QUERY = {"actor": "MLI", "target": "DZA"}
FORMATS = ["csv", "ndjson", "geojson", "ics", "atom", "timelinejs"]


def operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, op)
        for path, item in spec["paths"].items()
        for method, op in item.items()
        if method in METHODS
    ]


@pytest.fixture(scope="module")
def spec(client: TestClient) -> dict[str, Any]:
    document: dict[str, Any] = client.get("/openapi.json").json()
    return document


def test_every_operation_has_a_chosen_id_and_summary(spec: dict[str, Any]) -> None:
    ops = operations(spec)
    assert len(ops) >= 60
    missing = [f"{m} {p}" for m, p, _ in ops if (m, p) not in OPERATIONS]
    assert not missing, f"add these operations to app.openapi.OPERATIONS: {missing}"
    ids = [op["operationId"] for _, _, op in ops]
    assert len(ids) == len(set(ids))
    for method, path, op in ops:
        assert (op["operationId"], op["summary"]) == OPERATIONS[(method, path)]
        assert re.fullmatch(r"[a-z]+(?:[A-Z][a-z0-9]*)*", op["operationId"]), op["operationId"]
    assert {op["operationId"] for _, _, op in ops} >= {
        "listTimeline",
        "getEvent",
        "listTimelineFacets",
        "createEvent",
        "updateEvent",
    }


def test_public_operations_say_they_need_no_key(spec: dict[str, Any]) -> None:
    keyed = (
        "/v1/keys",
        "/v1/webhook-endpoints",
        "/v1/webhook-deliveries",
        "/v1/audit",
        "/v1/archive",
    )
    for method, path, op in operations(spec):
        if method in {"POST", "PATCH", "DELETE"} or path.startswith(keyed):
            assert op["security"] == [{"ApiKey": []}], f"{method} {path}"
        else:
            assert op["security"] == [], f"{method} {path}"


def test_servers_are_this_host_or_the_public_base_url(spec: dict[str, Any]) -> None:
    assert spec["servers"] == [{"url": "/", "description": "This server"}]
    public = create_app(Settings(public_base_url="https://timeline.example.org")).openapi()
    assert public["servers"][0]["url"] == "https://timeline.example.org"


def test_examples_are_where_swagger_ui_and_redoc_show_them(spec: dict[str, Any]) -> None:
    with_examples = 0
    for method, path, op in operations(spec):
        for param in op.get("parameters", []):
            where = f"{method} {path} {param['name']}"
            assert param.get("description"), where
            assert "examples" not in param["schema"], where
            assert "anyOf" not in param["schema"], where  # a query string has no null
            with_examples += "example" in param or "examples" in param
        for media in op.get("requestBody", {}).get("content", {}).values():
            assert "examples" not in media["schema"], f"{method} {path}"
    assert with_examples >= 40
    # Every problem response shows a problem of its own status, not the schema's 404 sample.
    for method, path, op in operations(spec):
        for status, response in op["responses"].items():
            problem = response.get("content", {}).get("application/problem+json")
            if problem is not None:
                assert problem["example"]["status"] == int(status), f"{method} {path} {status}"
    timeline = {p["name"]: p for p in spec["paths"]["/v1/timeline"]["get"]["parameters"]}
    assert timeline["from"]["example"] == "2025-04"
    assert timeline["state"]["example"] == ["DZA"]
    patch = spec["paths"]["/v1/memberships/{membership_id}"]["patch"]["requestBody"]
    example = patch["content"]["application/merge-patch+json"]["example"]
    assert "end_on" in example  # a membership's field, not an organisation's
    place = spec["paths"]["/v1/places/{code}"]["get"]["parameters"][0]
    assert place["name"] == "code" and place["description"]


def test_each_export_operation_documents_one_media_type(spec: dict[str, Any]) -> None:
    for fmt in FORMATS:
        op = spec["paths"][f"/v1/timeline.{fmt}"]["get"]
        media = formats.MEDIA_TYPES[fmt].split(";")[0]
        assert list(op["responses"]["200"]["content"]) == [media], fmt
        names = {p["name"] for p in op["parameters"]}
        assert {"from", "to", "state", "actor", "target", "q", "as_known_at"} <= names
        assert not names & {"format", "cursor", "count"}, fmt


@pytest.mark.parametrize("fmt", FORMATS)
def test_an_export_operation_answers_as_format_does(client: TestClient, fmt: str) -> None:
    own = client.get(f"/v1/timeline.{fmt}", params=QUERY)
    given = client.get("/v1/timeline", params={**QUERY, "format": fmt})
    assert own.status_code == given.status_code == 200, own.text
    assert own.headers["content-type"] == given.headers["content-type"]
    assert own.headers["content-type"].startswith(formats.MEDIA_TYPES[fmt].split(";")[0])
    if fmt == "atom":
        # The feed names its own URL; the entries are the same.
        def entries(text: str) -> list[str]:
            return re.findall(r"<entry>.*?</entry>", text, re.S)

        assert entries(own.text) == entries(given.text) != []
    elif fmt == "ics":
        # DTSTAMP is the time of the request.
        def events(text: str) -> list[str]:
            return [line for line in text.splitlines() if not line.startswith("DTSTAMP")]

        assert events(own.text) == events(given.text)
    else:
        assert own.content == given.content


def test_an_export_operation_refuses_parameters_it_does_not_use(client: TestClient) -> None:
    assert_problem(client.get("/v1/timeline.csv", params={"cursor": "x"}), 422, "cursor")
    assert_problem(client.get("/v1/timeline.ndjson", params={"format": "csv"}), 422, "format")
    assert_problem(client.get("/v1/timeline.ics", params={"limit": "3"}), 422, "limit")
    # The timeline's own validators run too.
    assert_problem(
        client.get("/v1/timeline.csv", params={"category": "no_such_category"}), 422, "category"
    )
    assert_problem(client.get("/v1/timeline.geojson", params={"from": "2025-13"}), 422, "from")


@pytest.mark.parametrize("fmt", ["csv", "ndjson", "geojson", "ics"])
def test_a_streamed_export_without_a_database_is_a_503_not_a_cut_body(
    tmp_path: Path, fmt: str
) -> None:
    """Found by schemathesis on /v1/timeline.csv: the stream's first read failed after the 200
    had been sent, so the client got a body that stopped short."""
    empty = tmp_path / "never-migrated.db"
    empty.touch()
    app = create_app(Settings(database_url=f"sqlite:///{empty}", webhook_worker="off"))
    with TestClient(app, raise_server_exceptions=False) as c:
        for url in (f"/v1/timeline.{fmt}", f"/v1/timeline?format={fmt}"):
            assert_problem(c.get(url), 503)
