"""Vocabulary, health, OpenAPI, CORS and the errors every route shares."""

from pathlib import Path

import yaml
from fastapi.testclient import TestClient

from app.categories.schemas import Vocabulary
from app.config import Settings
from app.main import create_app
from app.vocabulary import CAMEO, CATEGORIES
from tests.conftest import ThrowawayDatabases
from tests.helpers import assert_problem

ROOT = Path(__file__).resolve().parent.parent


class TestVocabulary:
    def test_categories_with_cameo_mapping(self, client: TestClient) -> None:
        body = Vocabulary.model_validate(client.get("/v1/categories").json())
        assert {c.slug for c in body.items} == set(CATEGORIES)
        recall = next(c for c in body.items if c.slug == "ambassador_recall")
        assert [(c.code, c.goldstein) for c in recall.cameo] == [("161", -4.0)]

    def test_code_table_matches_the_cited_seed_table(self) -> None:
        cited = yaml.safe_load((ROOT / "seed" / "cameo.yaml").read_text("utf-8"))
        assert {c["code"]: (c["name"], c["goldstein"]) for c in cited} == {
            code: (c.name, c.goldstein) for code, c in CAMEO.items()
        }

    def test_every_category_code_is_known(self) -> None:
        for category in CATEGORIES.values():
            assert set(category.cameo) <= set(CAMEO), category.slug


class TestHealth:
    def test_liveness(self, client: TestClient) -> None:
        assert client.get("/healthz").json() == {"status": "ok"}

    def test_ready_when_migrated(self, client: TestClient) -> None:
        body = client.get("/readyz").json()
        assert body["status"] == "ready"
        assert body["migration"] == body["head"]

    def test_not_ready_without_migrations(self, databases: ThrowawayDatabases) -> None:
        app = create_app(Settings(database_url=databases.new()))
        with TestClient(app) as empty:
            body = assert_problem(empty.get("/readyz"), 503)
            assert "migration" in body["detail"]


class TestProtocol:
    def test_unknown_route_is_a_problem(self, client: TestClient) -> None:
        assert_problem(client.get("/v1/nothing-here"), 404)

    def test_wrong_method_is_a_problem(self, client: TestClient) -> None:
        assert_problem(client.post("/v1/timeline"), 405)

    def test_cors_for_browser_frontends(self, client: TestClient) -> None:
        response = client.get("/v1/timeline?limit=1", headers={"Origin": "https://example.org"})
        assert response.headers["access-control-allow-origin"] == "*"
        assert "link" in response.headers["access-control-expose-headers"].lower()
        preflight = client.options(
            "/v1/timeline",
            headers={"Origin": "https://example.org", "Access-Control-Request-Method": "GET"},
        )
        assert preflight.status_code == 200


class TestOpenAPI:
    def test_docs_pages(self, client: TestClient) -> None:
        assert client.get("/docs").status_code == 200
        assert client.get("/redoc").status_code == 200

    def test_every_operation_is_described_tagged_and_lists_its_problems(
        self, client: TestClient
    ) -> None:
        spec = client.get("/openapi.json").json()
        for path, operations in spec["paths"].items():
            for method, op in operations.items():
                where = f"{method.upper()} {path}"
                assert op.get("tags"), where
                assert op.get("description") or op.get("summary"), where
                for param in op.get("parameters", []):
                    assert param.get("description") or (
                        param["in"] == "path" and param.get("schema", {}).get("pattern")
                    ), f"{where} {param['name']}"
                if path.startswith("/v1/") and op.get("parameters"):
                    assert "422" in op["responses"], where
                    assert "application/problem+json" in op["responses"]["422"]["content"], where

    def test_timeline_parameters_have_real_examples(self, client: TestClient) -> None:
        spec = client.get("/openapi.json").json()
        params = {p["name"]: p for p in spec["paths"]["/v1/timeline"]["get"]["parameters"]}
        assert {
            "from",
            "to",
            "state",
            "actor",
            "target",
            "between",
            "organisation",
            "include_members",
            "kind",
            "category",
            "tag",
            "q",
            "order",
            "limit",
            "cursor",
            "count",
        } <= set(params)
        # On the parameter, where Swagger UI and ReDoc show it (app/openapi.py).
        assert params["between"]["example"] == "MLI,DZA"
