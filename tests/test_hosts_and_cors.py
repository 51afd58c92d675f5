"""The public address, the Host header and CORS (issue 22, defects 20 and 21).

Each app here is made fresh, so its response cache starts empty: the order of the requests is
the attack (a forged Host first, then an honest client asking the same question).
"""

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any, ClassVar

import feedparser
import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from app.config import Settings
from app.main import create_app
from tests.helpers import assert_problem

PAGE = "/v1/timeline?state=NER&limit=3"
EVENT = "/v1/events/2025-04-01-algeria-shoots-down-malian-drone"
EVIL = {"Host": "evil.example"}
App = Callable[..., AbstractContextManager[TestClient]]


@pytest.fixture
def app(database_url: str) -> App:
    @contextmanager
    def make(**settings: Any) -> Iterator[TestClient]:
        base = {"database_url": database_url, "webhook_worker": "off", **settings}
        with TestClient(create_app(Settings(**base))) as client:
            yield client

    return make


def atom_links(body: bytes) -> list[str]:
    """Every link a feed reader sees: the feed's own and each entry's."""
    feed = feedparser.parse(body)
    assert not feed.bozo, feed.bozo_exception
    entries = [link.href for entry in feed.entries for link in entry.links]
    assert entries
    return [link.href for link in feed.feed.links] + entries


def next_link(response: Any) -> str:
    link: str = response.headers["link"]
    assert link.endswith('>; rel="next"'), link
    assert response.json()["links"]["next"] == link[1 : -len('>; rel="next"')]
    return response.json()["links"]["next"]  # type: ignore[no-any-return]


class TestWithoutPublicBaseUrl:
    """`make run`: links follow each request's Host, and no host sees another's links."""

    def test_a_forged_host_is_not_served_to_the_next_client(self, app: App) -> None:
        with app() as client:
            forged = client.get(PAGE, headers=EVIL)
            assert next_link(forged).startswith("http://evil.example/v1/timeline?")
            honest = client.get(PAGE)
            assert next_link(honest).startswith("http://testserver/v1/timeline?")
            assert b"evil.example" not in honest.content

    @pytest.mark.parametrize(
        "path",
        [
            "/v1/timeline?state=NER&format=atom",
            "/v1/timeline?state=NER&format=timelinejs",
            EVENT,
        ],
    )
    def test_nor_its_feed_export_or_permalink(self, app: App, path: str) -> None:
        with app() as client:
            forged = client.get(path, headers=EVIL)
            assert forged.status_code == 200
            assert b"evil.example" in forged.content
            honest = client.get(path)
            assert honest.status_code == 200
            assert b"evil.example" not in honest.content
            assert b"http://testserver/" in honest.content

    def test_the_atom_feed_is_on_the_honest_host(self, app: App) -> None:
        with app() as client:
            client.get("/v1/timeline?format=atom&limit=5", headers=EVIL)
            links = atom_links(client.get("/v1/timeline?format=atom&limit=5").content)
            assert links
            assert all(link.startswith("http://testserver/") for link in links), links


class TestWithPublicBaseUrl:
    """Production: every link names PUBLIC_BASE_URL, and only its host is answered."""

    BASE = "https://timeline.example.org"
    HOST: ClassVar[dict[str, str]] = {"Host": "timeline.example.org"}

    def test_every_link_is_on_the_public_address(self, app: App) -> None:
        with app(public_base_url=self.BASE + "/") as client:
            page = client.get(PAGE, headers=self.HOST)
            assert next_link(page).startswith(f"{self.BASE}/v1/timeline?state=NER&limit=3&cursor=")
            event = client.get(EVENT, headers=self.HOST).json()
            assert event["permalink"].startswith(f"{self.BASE}/v1/events/")
            assert event["citation"].count(self.BASE) == 1
            feed = client.get("/v1/timeline?format=atom&limit=5", headers=self.HOST)
            links = atom_links(feed.content)
            assert links
            assert all(link.startswith(self.BASE + "/") for link in links), links
            assert f"{self.BASE}/v1/timeline?format=atom&amp;limit=5" in feed.text

    def test_a_base_with_a_path_prefixes_every_link(self, app: App) -> None:
        base = "https://news.example.org/timeline"
        with app(public_base_url=base) as client:
            page = client.get(PAGE, headers={"Host": "news.example.org"})
            assert next_link(page).startswith(f"{base}/v1/timeline?state=NER&limit=3&cursor=")

    @pytest.mark.parametrize("path", [PAGE, EVENT, "/v1/timeline?format=atom", "/", "/docs"])
    def test_another_host_is_refused(self, app: App, path: str) -> None:
        with app(public_base_url=self.BASE) as client:
            assert_problem(client.get(path, headers=EVIL), 400, "Host")
            # The port is not part of the check: the proxy in front decides ports.
            assert client.get(path, headers={"Host": "timeline.example.org:8443"}).is_success

    def test_health_probes_answer_on_any_address(self, app: App) -> None:
        with app(public_base_url=self.BASE) as client:
            for probe in ("/healthz", "/readyz"):
                assert client.get(probe, headers={"Host": "10.0.3.7:8000"}).status_code == 200

    def test_allowed_hosts_widens_the_check(self, app: App) -> None:
        allowed = ["timeline.example.org", "*.mirror.example.net", "[::1]"]
        with app(public_base_url=self.BASE, allowed_hosts=allowed) as client:
            for host in ("timeline.example.org", "eu.mirror.example.net", "[::1]:8000"):
                response = client.get(PAGE, headers={"Host": host})
                assert response.status_code == 200, host
                # Whatever the host, the links name the public address.
                assert next_link(response).startswith(self.BASE + "/")
            for host in ("mirror.example.net", "evilmirror.example.net", "evil.example", ""):
                assert_problem(client.get(PAGE, headers={"Host": host}), 400, "Host")


class TestSettings:
    @pytest.mark.parametrize(
        "value",
        ["timeline.example.org", "ftp://timeline.example.org", "https://", "https://x.org/?a=1"],
    )
    def test_public_base_url_must_be_an_absolute_http_url(self, value: str) -> None:
        with pytest.raises(ValidationError, match="PUBLIC_BASE_URL"):
            Settings(public_base_url=value)

    def test_lists_from_the_environment(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("ALLOWED_HOSTS", "api.example.org, *.example.net")
        monkeypatch.setenv("CORS_ORIGINS", '["https://a.example"]')
        monkeypatch.setenv("CORS_WRITE_ORIGINS", "https://desk.example,https://b.example")
        settings = Settings()
        assert settings.trusted_hosts == {"api.example.org", "*.example.net"}
        assert settings.cors_origins == ["https://a.example"]
        assert settings.cors_write_origins == ["https://desk.example", "https://b.example"]

    def test_default_hosts(self) -> None:
        assert Settings().trusted_hosts == {"*"}
        public = Settings(public_base_url="https://timeline.example.org:8443/x")
        assert public.trusted_hosts == {"timeline.example.org:8443"}


def preflight(client: TestClient, method: str, origin: str, path: str = "/v1/events") -> Any:
    return client.options(
        path,
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": "authorization, content-type, if-match",
        },
    )


class TestCors:
    """Reads are open to every origin; writes only to CORS_WRITE_ORIGINS (empty by default)."""

    NEWSROOM = "https://newsroom.example"
    DESK = "https://desk.example"

    @pytest.mark.parametrize("method", ["GET", "HEAD"])
    def test_reads_from_any_origin(self, app: App, method: str) -> None:
        with app() as client:
            response = preflight(client, method, self.NEWSROOM, "/v1/timeline")
            assert response.status_code == 200
            assert response.headers["access-control-allow-origin"] == "*"
            assert "authorization" in response.headers["access-control-allow-headers"]
            assert "access-control-allow-credentials" not in response.headers
            read = client.get("/v1/timeline?limit=1", headers={"Origin": self.NEWSROOM})
            assert read.headers["access-control-allow-origin"] == "*"

    @pytest.mark.parametrize("method", ["POST", "PATCH", "DELETE", "patch"])
    def test_writes_are_not_cors_enabled_by_default(self, app: App, method: str) -> None:
        with app() as client:
            response = preflight(client, method, self.NEWSROOM)
            assert_problem(response, 403)
            assert "CORS_WRITE_ORIGINS" in response.json()["detail"]
            assert "access-control-allow-origin" not in response.headers
            assert "access-control-allow-methods" not in response.headers
            # The write itself (sent by a script, not a browser) carries no CORS grant either.
            write = client.post("/v1/events", json={}, headers={"Origin": self.NEWSROOM})
            assert write.status_code == 401
            assert "access-control-allow-origin" not in write.headers

    @pytest.mark.parametrize("method", ["POST", "PATCH", "DELETE"])
    def test_writes_from_a_configured_origin(self, app: App, method: str) -> None:
        with app(cors_write_origins=[self.DESK]) as client:
            response = preflight(client, method, self.DESK)
            assert response.status_code == 200
            assert response.headers["access-control-allow-origin"] == self.DESK
            assert method in response.headers["access-control-allow-methods"]
            assert "if-match" in response.headers["access-control-allow-headers"]
            assert "Origin" in response.headers["vary"]
            write = client.post("/v1/events", json={}, headers={"Origin": self.DESK})
            assert write.status_code == 401
            assert write.headers["access-control-allow-origin"] == self.DESK
            assert_problem(preflight(client, method, self.NEWSROOM), 403)
            # Reads stay open to everyone.
            read = preflight(client, "GET", self.NEWSROOM, "/v1/timeline")
            assert read.headers["access-control-allow-origin"] == "*"

    def test_reads_limited_to_configured_origins(self, app: App) -> None:
        with app(cors_origins=[self.NEWSROOM]) as client:
            allowed = preflight(client, "GET", self.NEWSROOM, "/v1/timeline")
            assert allowed.headers["access-control-allow-origin"] == self.NEWSROOM
            refused = preflight(client, "GET", "https://elsewhere.example", "/v1/timeline")
            assert_problem(refused, 403)
            assert "CORS_ORIGINS" in refused.json()["detail"]
