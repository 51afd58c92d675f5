"""HTTP behaviour for frontends: ETags and 304s, Last-Modified, Cache-Control, gzip, offline
docs, deprecation headers, and the response cache."""

import re
from email.utils import format_datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event
from sqlalchemy.orm import Session

from app.caching import Deprecation
from app.config import Settings
from app.main import create_app
from app.revisions import service as revision_service
from tests.conftest import ON_POSTGRES, Writable

SHOOT_DOWN = "/v1/events/2025-04-01-algeria-shoots-down-malian-drone"


class TestConditionalRequests:
    @pytest.mark.parametrize(
        "path",
        ["/v1/timeline?state=DZA", SHOOT_DOWN, "/v1/states/MLI", "/v1/categories", "/v1/places"],
    )
    def test_strong_etag_and_304(self, client: TestClient, path: str) -> None:
        first = client.get(path)
        etag = first.headers["etag"]
        assert etag.startswith('"') and not etag.startswith("W/")
        again = client.get(path, headers={"If-None-Match": etag})
        assert again.status_code == 304
        assert again.content == b""
        assert again.headers["etag"] == etag
        other = client.get(path, headers={"If-None-Match": '"something-else"'})
        assert other.status_code == 200

    def test_last_modified_and_if_modified_since(self, client: TestClient) -> None:
        first = client.get("/v1/timeline?limit=5")
        stamp = first.headers["last-modified"]
        assert stamp.endswith("GMT")
        again = client.get("/v1/timeline?limit=5", headers={"If-Modified-Since": stamp})
        assert again.status_code == 304
        old = client.get(
            "/v1/timeline?limit=5", headers={"If-Modified-Since": "Mon, 01 Jan 2001 00:00:00 GMT"}
        )
        assert old.status_code == 200

    def test_last_modified_is_the_latest_change_on_every_kind_of_page(
        self, client: TestClient, session: Session
    ) -> None:
        # The plain page reads the time with its rows; an empty page, a ranked page and a
        # historical page ask for it on their own.
        _, changed_at = revision_service.data_version(session)
        assert changed_at is not None
        expected = format_datetime(changed_at, usegmt=True)
        for query in (
            "limit=5",
            "from=2099",
            "q=drone&order=relevance",
            "as_known_at=2100-01-01T00:00:00Z",
        ):
            response = client.get(f"/v1/timeline?{query}")
            assert response.status_code == 200, response.text
            assert response.headers["last-modified"] == expected, query

    def test_cache_control(self, client: TestClient) -> None:
        assert "max-age" in client.get("/v1/timeline?limit=1").headers["cache-control"]
        assert client.get("/v1/events/2099-01-01-nothing").headers["cache-control"] == "no-store"


class TestResponseCache:
    def test_a_write_is_seen_at_once(self, writable: Writable) -> None:
        c = writable.client
        params = {"tag": "cache-probe"}
        assert c.get("/v1/timeline", params=params).json()["items"] == []
        assert c.get("/v1/timeline", params=params).json()["items"] == []  # now cached
        body = {
            "id": "2025-06-10-cache-probe",
            "kind": "diplomatic_action",
            "category": "statement",
            "date": "2025-06-10",
            "date_precision": "day",
            "title": "Cache probe",
            "summary": "Checks the response cache.",
            "tags": ["cache-probe"],
            "participants": [{"state": "MLI", "role": "initiator"}],
            "sources": [{"url": "https://example.org/test/cache", "publisher": "Test"}],
        }
        assert c.post("/v1/events", json=body, headers=writable.auth()).status_code == 201
        items = c.get("/v1/timeline", params=params).json()["items"]
        assert [i["id"] for i in items] == ["2025-06-10-cache-probe"]

    def test_a_hit_skips_the_route_and_answers_conditional_requests(
        self, writable: Writable
    ) -> None:
        c = writable.client
        statements: list[str] = []
        in_autocommit: list[bool | None] = []
        engine = writable.app.state.engine

        def count(conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
            statements.append(statement)
            in_autocommit.append(getattr(conn.connection.driver_connection, "autocommit", None))

        url = "/v1/timeline?state=DZA&limit=7"
        # The route's SQL is counted through the engine: SQLite's fast path for this page reads
        # past it (app/timeline/inline.py).
        writable.app.state.inline_pages = None
        first = c.get(url)
        event.listen(engine, "before_cursor_execute", count)
        try:
            # On PostgreSQL the version is the cluster's snapshot, which a write anywhere in the
            # cluster (another database, autovacuum's analyze) moves: allow a retry or two.
            for _ in range(3):
                statements.clear()
                in_autocommit.clear()
                again = c.get(url)
                hit = len(statements)
                if hit <= 1:
                    break
            conditional = c.get(url, headers={"If-None-Match": first.headers["etag"]})
            before_keyed = len(statements)
            keyed = c.get(url, headers=writable.auth())
            keyed_ran = len(statements) - before_keyed
            before_reload = len(statements)
            reload = c.get(url, headers={"Cache-Control": "no-cache"})
            reloaded = len(statements) - before_reload
        finally:
            event.remove(engine, "before_cursor_execute", count)
        assert again.content == first.content
        assert again.headers["etag"] == first.headers["etag"]
        # SQLite reads its data version without SQL; PostgreSQL asks for the current snapshot.
        assert hit == (1 if ON_POSTGRES else 0), statements
        # ... in autocommit: no BEGIN and ROLLBACK around it (app/responsecache.py).
        assert in_autocommit[:hit] == [True] * hit
        assert conditional.status_code == 304
        assert conditional.headers["etag"] == first.headers["etag"]
        # A caller with a key is never served from (or stored in) the shared cache.
        assert keyed.status_code == 200
        assert keyed_ran >= 1  # the page's own statement at least
        # A reload (`Cache-Control: no-cache`) renders afresh.
        assert reload.content == first.content
        assert reloaded > hit

    def test_a_write_through_another_replica_is_seen_at_once(self, writable: Writable) -> None:
        url = SHOOT_DOWN
        before = writable.client.get(url)
        assert writable.client.get(url).content == before.content  # cached
        other = create_app(
            Settings(database_url=writable.url, cursor_secret="test-secret", webhook_worker="off")
        )
        with TestClient(other) as replica:
            patch = {"summary": before.json()["summary"] + " (edited by another replica)"}
            headers = {**writable.auth(), "If-Match": before.headers["etag"]}
            changed = replica.patch(
                url,
                json=patch,
                headers={**headers, "Content-Type": "application/merge-patch+json"},
            )
            assert changed.status_code == 200, changed.text
        other.state.engine.dispose()
        after = writable.client.get(url)
        assert after.json()["summary"].endswith("(edited by another replica)")


class TestTransport:
    def test_gzip_over_1kb(self, client: TestClient) -> None:
        response = client.get("/v1/timeline?limit=20", headers={"Accept-Encoding": "gzip"})
        assert response.headers["content-encoding"] == "gzip"
        small = client.get("/healthz", headers={"Accept-Encoding": "gzip"})
        assert "content-encoding" not in small.headers
        assert response.json()["items"]  # and the client decodes it

    def test_docs_are_served_without_a_cdn(self, client: TestClient) -> None:
        for page in ("/docs", "/redoc"):
            html = client.get(page).text
            assert "cdn." not in html and "fonts.googleapis" not in html
        assert client.get("/static-offline-docs/swagger-ui-bundle.js").status_code == 200
        # The ReDoc bundle the page loads draws no logo from cdn.redoc.ly (the browser test
        # records every request the pages make).
        [script] = re.findall(r'<script src="([^"]+)"', client.get("/redoc").text)
        bundle = client.get(script)
        assert bundle.status_code == 200
        assert bundle.headers["content-type"].startswith("text/javascript")
        assert b"Redoc" in bundle.content and b"cdn.redoc.ly" not in bundle.content

    def test_deprecation_headers(self, database_url: str) -> None:
        import app.main as main

        saved = main.DEPRECATIONS
        main.DEPRECATIONS = (
            Deprecation(
                prefix="/v1/places",
                deprecated_at="Sun, 01 Mar 2026 00:00:00 GMT",
                sunset_at="Tue, 01 Sep 2026 00:00:00 GMT",
                link="https://diplomatic-timeline.example/changelog",
            ),
        )
        try:
            with TestClient(create_app(Settings(database_url=database_url))) as c:
                response = c.get("/v1/places")
                assert response.headers["deprecation"] == "Sun, 01 Mar 2026 00:00:00 GMT"
                assert response.headers["sunset"] == "Tue, 01 Sep 2026 00:00:00 GMT"
                assert 'rel="deprecation"' in response.headers["link"]
                assert "deprecation" not in c.get("/v1/states").headers
        finally:
            main.DEPRECATIONS = saved
