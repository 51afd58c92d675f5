"""The response cache answers as the app would: a hit and a 304 from the cache carry the same
headers and body as the answer rendered afresh (CORS, security headers, ETags, Vary), and still
spend the caller's rate-limit budget; on PostgreSQL, requests waiting at once share one read of
the data version, and none takes a read that started before it arrived."""

import asyncio
from collections.abc import Iterator

import httpx
import pytest
from fastapi.testclient import TestClient

from app.config import Settings
from app.main import create_app
from app.responsecache import SharedRead

PAGE = "/v1/timeline?state=DZA&limit=7"
# Differ per request by design: who asked, and when.
PER_REQUEST = {"x-request-id", "date"}


def comparable(response: httpx.Response) -> list[tuple[str, str]]:
    return [(k, v) for k, v in response.headers.multi_items() if k not in PER_REQUEST]


@pytest.fixture(scope="module")
def limited(database_url: str) -> Iterator[TestClient]:
    """The shared seeded database, served with rate limits on (in memory) and the cache on."""
    settings = Settings(
        database_url=database_url,
        cursor_secret="test-secret",
        webhook_worker="off",
        rate_limit_enabled=True,
        rate_limit_anonymous=1000,
        rate_limit_window_seconds=3600,
    )
    with TestClient(create_app(settings)) as client:
        yield client


class TestAHitIsTheRenderedAnswer:
    @pytest.mark.parametrize(
        "headers",
        [
            {},
            {"Origin": "https://newsroom.example"},
            {"Accept-Encoding": "gzip"},
            {"Accept": "text/csv"},
            {"Origin": "https://newsroom.example", "Accept-Encoding": "gzip"},
        ],
    )
    def test_a_hit_has_the_headers_and_body_of_a_fresh_answer(
        self, client: TestClient, uncached_client: TestClient, headers: dict[str, str]
    ) -> None:
        fresh = uncached_client.get(PAGE, headers=headers)
        client.get(PAGE, headers=headers)
        hit = client.get(PAGE, headers=headers)
        assert fresh.status_code == hit.status_code == 200
        assert hit.content == fresh.content
        assert comparable(hit) == comparable(fresh)
        if "Origin" in headers:
            assert hit.headers["access-control-allow-origin"] == "*"
        else:
            assert "Origin" in hit.headers["vary"]
        assert hit.headers["x-content-type-options"] == "nosniff"

    @pytest.mark.parametrize("origin", [None, "https://newsroom.example"])
    def test_a_304_from_the_cache_is_the_304_the_app_gives(
        self, client: TestClient, uncached_client: TestClient, origin: str | None
    ) -> None:
        base = {"Origin": origin} if origin else {}
        etag = uncached_client.get(PAGE, headers=base).headers["etag"]
        conditional = {**base, "If-None-Match": etag}
        fresh = uncached_client.get(PAGE, headers=conditional)
        client.get(PAGE, headers=base)
        hit = client.get(PAGE, headers=conditional)
        assert fresh.status_code == hit.status_code == 304
        assert hit.content == fresh.content == b""
        assert comparable(hit) == comparable(fresh)

    @pytest.mark.parametrize(
        "condition",
        [
            {"If-None-Match": '"other", W/{etag}'},
            {"If-None-Match": "*"},
            {"If-Modified-Since": "{last_modified}"},
        ],
    )
    def test_every_form_of_condition_is_answered_alike(
        self, client: TestClient, uncached_client: TestClient, condition: dict[str, str]
    ) -> None:
        first = uncached_client.get(PAGE)
        values = {"etag": first.headers["etag"], "last_modified": first.headers["last-modified"]}
        headers = {k: v.format(**values) for k, v in condition.items()}
        client.get(PAGE)
        hit = client.get(PAGE, headers=headers)
        fresh = uncached_client.get(PAGE, headers=headers)
        assert hit.status_code == fresh.status_code == 304
        assert comparable(hit) == comparable(fresh)

    def test_a_stale_condition_gets_the_page(self, client: TestClient) -> None:
        client.get(PAGE)
        stale = client.get(PAGE, headers={"If-None-Match": '"not-this-one"'})
        assert stale.status_code == 200
        assert stale.content == client.get(PAGE).content

    def test_links_follow_the_host_asked_for(self, client: TestClient) -> None:
        # The key carries the Host the links are built from: a page rendered for one host is
        # never replayed to another (app/hosts.py).
        path = "/v1/timeline?limit=1"
        mine = client.get(path, headers={"Host": "one.example"})
        theirs = client.get(path, headers={"Host": "two.example"})
        again = client.get(path, headers={"Host": "one.example"})
        assert "one.example" in mine.headers["link"]
        assert "two.example" in theirs.headers["link"]
        assert again.headers["link"] == mine.headers["link"]


class TestRateLimits:
    def test_a_hit_spends_the_budget_and_says_so(self, limited: TestClient) -> None:
        limited.get(PAGE)
        remaining = []
        for _ in range(3):
            hit = limited.get(PAGE)
            assert hit.status_code == 200
            remaining.append(int(hit.headers["ratelimit-remaining"]))
        conditional = limited.get(PAGE, headers={"If-None-Match": hit.headers["etag"]})
        assert conditional.status_code == 304
        remaining.append(int(conditional.headers["ratelimit-remaining"]))
        assert remaining == list(range(remaining[0], remaining[0] - 4, -1))


class TestSharedRead:
    def test_waiters_share_a_read_that_started_after_they_came(self) -> None:
        async def scenario() -> tuple[list[str], int]:
            reads = 0
            gate = asyncio.Event()

            async def read() -> str:
                nonlocal reads
                reads += 1
                seen = reads
                await gate.wait()
                gate.clear()
                return f"v{seen}"

            shared = SharedRead(read)
            first = asyncio.ensure_future(shared())
            await asyncio.sleep(0)  # the first read is now on its way
            # These came while it was: they must not take its answer, only the next one's.
            later = [asyncio.ensure_future(shared()) for _ in range(5)]
            await asyncio.sleep(0)
            gate.set()
            await first
            await asyncio.sleep(0)
            gate.set()
            got = await asyncio.gather(first, *later)
            return got, reads

        got, reads = asyncio.run(scenario())
        assert got == ["v1"] + ["v2"] * 5
        assert reads == 2

    def test_a_failed_read_fails_its_waiters_and_the_next_read_is_tried(self) -> None:
        async def scenario() -> list[str]:
            answers = iter([RuntimeError("database down"), "v2"])

            async def read() -> str:
                await asyncio.sleep(0)
                answer = next(answers)
                if isinstance(answer, Exception):
                    raise answer
                return answer

            shared = SharedRead(read)
            outcomes = []
            for _ in range(2):
                try:
                    outcomes.append(await shared())
                except RuntimeError as exc:
                    outcomes.append(str(exc))
            return outcomes

        assert asyncio.run(scenario()) == ["database down", "v2"]

    def test_a_waiter_that_goes_away_leaves_the_read_to_the_others(self) -> None:
        async def scenario() -> str:
            gate = asyncio.Event()

            async def read() -> str:
                await gate.wait()
                return "v1"

            shared = SharedRead(read)
            gone = asyncio.ensure_future(shared())
            stays = asyncio.ensure_future(shared())
            await asyncio.sleep(0)
            gone.cancel()
            gate.set()
            return await stays

        assert asyncio.run(scenario()) == "v1"
