"""Security headers on every response and a working Content-Security-Policy on every page; and
API keys that are decided by a constant-time comparison of digests, never by their prefix."""

import base64
import hashlib
import hmac
import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app import callers
from app.auth import service as auth_service
from app.callers import Scope
from app.config import Settings
from app.main import create_app
from app.security import page_policy

EVERY = {"x-content-type-options": "nosniff", "x-frame-options": "DENY"}


def directives(policy: str) -> dict[str, list[str]]:
    parts = (part.split() for part in policy.split(";") if part.strip())
    return {name: sources for name, *sources in parts}


def inline_script_hashes(html: str) -> set[str]:
    bodies = re.findall(r"<script(?![^>]*\bsrc=)[^>]*>(.*?)</script>", html, re.S)
    return {
        "'sha256-" + base64.b64encode(hashlib.sha256(b.encode()).digest()).decode() + "'"
        for b in bodies
    }


@pytest.fixture(scope="module")
def https(database_url: str) -> Iterator[TestClient]:
    app = create_app(Settings(database_url=database_url, webhook_worker="off"))
    with TestClient(app, base_url="https://testserver") as client:
        yield client


class TestEveryResponse:
    @pytest.mark.parametrize("path", ["/healthz", "/v1/timeline?limit=1", "/v1/nowhere"])
    def test_api_answers(self, client: TestClient, path: str) -> None:
        response = client.get(path)
        for name, value in EVERY.items():
            assert response.headers[name] == value
        assert response.headers["referrer-policy"] == "no-referrer"
        # A JSON body opened in a tab may load nothing and be framed by no one.
        assert response.headers["content-security-policy"] == (
            "default-src 'none'; frame-ancestors 'none'"
        )
        assert response.headers.get_list("x-content-type-options") == ["nosniff"]
        assert "strict-transport-security" not in response.headers
        assert "permissions-policy" not in response.headers

    def test_answers_made_before_the_app(self, client: TestClient) -> None:
        preflight = client.options(
            "/v1/events",
            headers={"Origin": "https://newsroom.example", "Access-Control-Request-Method": "GET"},
        )
        too_large = client.post(
            "/v1/events", content=b"x" * (2 * 1024 * 1024), headers={"Content-Type": "text/plain"}
        )
        assert preflight.status_code == 200
        assert too_large.status_code == 413
        for response in (preflight, too_large):
            assert response.headers["x-content-type-options"] == "nosniff"

    def test_hsts_only_over_https(self, https: TestClient) -> None:
        response = https.get("/healthz")
        assert response.headers["strict-transport-security"] == "max-age=31536000"
        assert https.get("/docs").headers["strict-transport-security"] == "max-age=31536000"


class TestPages:
    def test_the_timeline_page_keeps_its_own_policy(self, client: TestClient) -> None:
        response = client.get("/")
        assert response.headers["content-type"].startswith("text/html")
        policy = directives(response.headers["content-security-policy"])
        assert policy["script-src"] == ["'self'"]
        assert policy["frame-ancestors"] == ["'none'"]
        assert response.headers.get_list("content-security-policy") == [
            response.headers["content-security-policy"]
        ]
        assert "camera=()" in response.headers["permissions-policy"]
        assert response.headers["cross-origin-opener-policy"] == "same-origin"
        assert response.headers["x-frame-options"] == "DENY"

    @pytest.mark.parametrize("path", ["/docs", "/docs/oauth2-redirect"])
    def test_swagger_ui_inline_scripts_by_hash_only(self, client: TestClient, path: str) -> None:
        response = client.get(path, headers={"Accept-Encoding": "gzip"})
        assert response.status_code == 200
        policy = directives(response.headers["content-security-policy"])
        hashes = inline_script_hashes(response.text)
        assert hashes  # the page really has inline scripts, and each is allowed by its hash
        assert set(policy["script-src"]) == {"'self'", *hashes}
        assert policy["style-src"] == ["'self'"]
        assert policy["default-src"] == ["'none'"]
        assert policy["connect-src"] == ["'self'"]
        assert policy["frame-ancestors"] == ["'none'"]
        assert response.headers["cross-origin-opener-policy"] == "same-origin"

    def test_a_gzipped_page_is_hashed_uncompressed(self, client: TestClient) -> None:
        response = client.get("/docs/oauth2-redirect", headers={"Accept-Encoding": "gzip"})
        assert response.headers["content-encoding"] == "gzip"
        assert inline_script_hashes(response.text) <= set(
            directives(response.headers["content-security-policy"])["script-src"]
        )

    def test_redoc_may_inject_styles_but_not_scripts(self, client: TestClient) -> None:
        response = client.get("/redoc")
        policy = directives(response.headers["content-security-policy"])
        assert policy["script-src"] == ["'self'"]
        assert policy["style-src"] == ["'self'", "'unsafe-inline'"]
        assert policy["worker-src"] == ["'self'", "blob:"]

    def test_the_assets_the_pages_load_are_served_here(self, client: TestClient) -> None:
        for page in ("/docs", "/redoc"):
            html = client.get(page).text
            for asset in re.findall(r'(?:src|href)="(/[^"]+)"', html):
                assert client.get(asset).status_code == 200, asset

    @pytest.mark.parametrize("path", ["/", "/docs", "/redoc", "/static/app.js"])
    def test_a_304_keeps_the_page_policy(self, client: TestClient, path: str) -> None:
        # A browser revalidating a page merges the 304's headers into the stored ones: a
        # policy on the 304 would replace the page's (an API policy blocked every script of
        # the timeline page on reload).
        first = client.get(path)
        again = client.get(path, headers={"If-None-Match": first.headers["etag"]})
        assert again.status_code == 304
        assert again.headers.get("content-security-policy") in (
            None,
            first.headers.get("content-security-policy"),
        )
        assert again.headers["x-content-type-options"] == "nosniff"

    def test_policy_of_a_page_with_an_inline_style(self) -> None:
        policy = directives(
            page_policy(b"<style>p{}</style><script>go()</script>", inline_styles=False)
        )
        style_hash = base64.b64encode(hashlib.sha256(b"p{}").digest()).decode()
        assert policy["style-src"] == ["'self'", f"'sha256-{style_hash}'"]
        assert "'unsafe-inline'" not in policy["script-src"]


class TestKeyComparison:
    """`authenticate` finds the candidate key by the token's public prefix, then lets
    hmac.compare_digest of the SHA-256 digests decide: never a plain `==` on secrets."""

    @pytest.fixture
    def calls(self, monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str, bool]]:
        seen: list[tuple[str, str, bool]] = []
        real = hmac.compare_digest

        def spy(a: str, b: str) -> bool:
            result = real(a, b)
            seen.append((a, b, result))
            return result

        monkeypatch.setattr(callers.hmac, "compare_digest", spy)
        return seen

    def test_the_digest_decides(self, session: Session, calls: list[tuple[str, str, bool]]) -> None:
        key, token = auth_service.create_key(session, "constant-time", [Scope.editor])
        found = callers.authenticate(session, token)
        assert found is not None and found.key_id == key.id
        assert calls == [(key.token_hash, hashlib.sha256(token.encode()).hexdigest(), True)]

    def test_a_matching_prefix_alone_is_refused(
        self, session: Session, calls: list[tuple[str, str, bool]]
    ) -> None:
        key, token = auth_service.create_key(session, "same-prefix", [Scope.editor])
        forged = token[: auth_service.DISPLAY_CHARS] + "A" * (
            len(token) - auth_service.DISPLAY_CHARS
        )
        assert forged != token
        assert callers.authenticate(session, forged) is None
        # The prefix found the row; the comparison of digests, in constant time, refused it.
        assert calls == [(key.token_hash, hashlib.sha256(forged.encode()).hexdigest(), False)]

    def test_unknown_and_revoked_tokens(
        self, session: Session, calls: list[tuple[str, str, bool]]
    ) -> None:
        key, token = auth_service.create_key(session, "soon-revoked", [Scope.editor])
        auth_service.revoke_key(session, key.id)
        assert callers.authenticate(session, token) is None
        assert callers.authenticate(session, "dtl_" + "B" * 43) is None
        assert callers.authenticate(session, "not-a-token") is None
        assert calls == []  # no live key has these prefixes: nothing to compare
