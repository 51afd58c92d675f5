"""Rate limits per API key and per client address, in process memory and in the real Redis.

Each app here is one "replica". The Redis tests use the server at 127.0.0.1:6379 with a key
prefix of their own, deleted afterwards. Windows are long (an hour) unless a test is about the
window ending, and `fresh_window` waits out a boundary that is about to pass, so no count is
split by a window change.
"""

import asyncio
import logging
import math
import time
import uuid
from collections.abc import Generator, Iterator
from typing import Any

import pytest
import redis
from alembic import command
from fastapi.testclient import TestClient

from app import writes
from app.auth import service as auth_service
from app.callers import Scope, hash_token
from app.config import Settings
from app.db import EXPORT_SHARE, create_db_engine
from app.main import create_app
from app.ratelimit import (
    Cost,
    HeavySlots,
    MemoryStore,
    RateLimit,
    bearer_token,
    client_bucket,
    request_cost,
)
from app.timeline.renderers import timed
from app.timeline.router import read_ahead
from tests.conftest import ThrowawayDatabases, alembic_config
from tests.helpers import assert_problem
from tests.live import free_port

REDIS_URL = "redis://127.0.0.1:6379/0"
HOUR = 3600
PATH = "/v1/categories"
KNOWN_TOKEN = "dtl_known-token-for-the-share-test"  # noqa: S105 - a test token


class Keys:
    """A migrated database (the limits need no seed) holding two live keys and a revoked one."""

    def __init__(self, url: str) -> None:
        command.upgrade(alembic_config(url), "head")
        self.url = url
        self.tokens: dict[str, str] = {}
        self.ids: dict[str, int] = {}
        engine = create_db_engine(url)
        with writes.session_factory(engine).begin() as session:
            for name in ("one", "two", "revoked"):
                key, token = auth_service.create_key(session, f"rl-{name}", [Scope.editor])
                self.tokens[name] = token
                self.ids[name] = key.id
                if name == "revoked":
                    auth_service.revoke_key(session, key.id)
        engine.dispose()

    def auth(self, name: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[name]}"}


@pytest.fixture(scope="module")
def keys(databases: ThrowawayDatabases) -> Keys:
    return Keys(databases.new())


@pytest.fixture
def prefix() -> Iterator[str]:
    """A Redis key prefix for one test; its keys are deleted afterwards."""
    value = f"dtl-test:{uuid.uuid4().hex}:"
    yield value
    client = redis.Redis.from_url(REDIS_URL)
    stale = list(client.scan_iter(match=value + "*"))
    if stale:
        client.delete(*stale)
    client.close()


class Replicas:
    """Apps (replicas) over one database; each is served by its own TestClient."""

    def __init__(self, keys: Keys) -> None:
        self.keys = keys
        self.apps: list[Any] = []
        self.clients: list[TestClient] = []

    def start(self, address: str = "203.0.113.7", **overrides: Any) -> TestClient:
        settings: dict[str, Any] = {
            "database_url": self.keys.url,
            "cursor_secret": "test-secret",
            "webhook_worker": "off",
            "rate_limit_enabled": True,
            "rate_limit_anonymous": 3,
            "rate_limit_keyed": 5,
            "rate_limit_window_seconds": HOUR,
            **overrides,
        }
        app = create_app(Settings(**settings))
        client = TestClient(app, client=(address, 40000))
        client.__enter__()
        self.apps.append(app)
        self.clients.append(client)
        return client

    def close(self) -> None:
        for client in self.clients:
            client.__exit__(None, None, None)
        for app in self.apps:
            app.state.engine.dispose()


@pytest.fixture
def replicas(keys: Keys) -> Iterator[Replicas]:
    started = Replicas(keys)
    yield started
    started.close()


def fresh_window(seconds: int, needed: float = 10.0) -> None:
    """Wait for the next window if the current one ends within `needed` seconds."""
    left = seconds - time.time() % seconds
    if left < needed:
        time.sleep(left + 0.05)


def limit_headers(response: Any) -> tuple[int, int, int]:
    h = response.headers
    return int(h["ratelimit-limit"]), int(h["ratelimit-remaining"]), int(h["ratelimit-reset"])


def assert_limited(response: Any, limit: int) -> dict[str, Any]:
    body = assert_problem(response, 429)
    assert body["type"].endswith("/rate-limited")
    assert body["instance"] == PATH
    retry_after = int(response.headers["retry-after"])
    assert 1 <= retry_after <= HOUR
    assert limit_headers(response) == (limit, 0, retry_after)
    assert response.headers["cache-control"] == "no-store"
    return body


def spend(client: TestClient, n: int, headers: dict[str, str] | None = None) -> list[int]:
    """Make n requests; the RateLimit-Remaining of each."""
    remaining = []
    for _ in range(n):
        response = client.get(PATH, headers=headers)
        assert response.status_code == 200, response.text
        remaining.append(limit_headers(response)[1])
    return remaining


class TestOffByDefault:
    def test_the_default_settings_do_not_limit(self, client: TestClient) -> None:
        settings = Settings(_env_file=None)
        assert settings.rate_limit_enabled is False
        assert settings.rate_limit_store == "memory"
        response = client.get(PATH)
        assert response.status_code == 200
        assert "ratelimit-limit" not in response.headers


class TestMemoryStore:
    def test_an_address_gets_its_budget_then_429(self, replicas: Replicas) -> None:
        fresh_window(HOUR)
        client = replicas.start()
        assert spend(client, 3) == [2, 1, 0]
        limit, _, reset = limit_headers(client.get("/v1/states"))  # any route, one budget
        body = assert_limited(client.get(PATH), 3)
        assert "3 units per 3600 s" in body["detail"]
        assert "API key" in body["detail"]
        assert limit == 3 and 1 <= reset <= HOUR

    def test_each_process_counts_alone(self, replicas: Replicas) -> None:
        fresh_window(HOUR)
        first, second = replicas.start(), replicas.start()
        spend(first, 3)
        assert_limited(first.get(PATH), 3)
        assert spend(second, 1) == [2]

    def test_addresses_have_separate_budgets(self, replicas: Replicas) -> None:
        fresh_window(HOUR)
        here = replicas.start("198.51.100.1")
        spend(here, 3)
        assert_limited(here.get(PATH), 3)
        # The same app seen from another address: a budget of its own.
        there = TestClient(replicas.apps[0], client=("198.51.100.2", 40000))
        assert limit_headers(there.get(PATH))[:2] == (3, 2)

    def test_health_probes_are_never_limited(self, replicas: Replicas) -> None:
        client = replicas.start(rate_limit_anonymous=1)
        for _ in range(4):
            for probe in ("/healthz", "/readyz"):
                response = client.get(probe)
                assert response.status_code == 200, response.text
                assert "ratelimit-limit" not in response.headers

    def test_a_browser_can_read_the_429(self, replicas: Replicas) -> None:
        fresh_window(HOUR)
        client = replicas.start(rate_limit_anonymous=1)
        origin = {"Origin": "https://newsroom.example"}
        exposed = client.get(PATH, headers=origin).headers["access-control-expose-headers"]
        for name in ("RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset", "Retry-After"):
            assert name.lower() in exposed.lower()
        refused = client.get(PATH, headers=origin)
        assert refused.status_code == 429
        assert refused.headers["access-control-allow-origin"] == "*"


class TestKeys:
    def test_keys_and_addresses_have_separate_budgets(self, replicas: Replicas, keys: Keys) -> None:
        fresh_window(HOUR)
        client = replicas.start()
        spend(client, 3)
        assert_limited(client.get(PATH), 3)
        # The address has spent its anonymous budget; its keys still have theirs.
        assert spend(client, 5, keys.auth("one")) == [4, 3, 2, 1, 0]
        refused = client.get(PATH, headers=keys.auth("one"))
        assert "This API key may spend 5 units" in assert_limited(refused, 5)["detail"]
        assert limit_headers(client.get(PATH, headers=keys.auth("two")))[:2] == (5, 4)
        assert_limited(client.get(PATH), 3)

    def test_a_key_has_one_budget_across_addresses(self, replicas: Replicas, keys: Keys) -> None:
        fresh_window(HOUR)
        here = replicas.start("192.0.2.1")
        there = TestClient(replicas.apps[0], client=("192.0.2.2", 40000))
        spend(here, 3, keys.auth("one"))
        assert spend(there, 2, keys.auth("one")) == [1, 0]
        assert_limited(there.get(PATH, headers=keys.auth("one")), 5)

    @pytest.mark.parametrize(
        "sent",
        [
            "random",  # a fresh made-up dtl_ token on every request
            "revoked",
            "not-ours",  # not shaped like our keys at all
        ],
    )
    def test_a_token_that_is_not_a_live_key_spends_the_address_budget(
        self, replicas: Replicas, keys: Keys, sent: str
    ) -> None:
        fresh_window(HOUR)
        client = replicas.start()

        def headers() -> dict[str, str]:
            if sent == "random":
                return {"Authorization": f"Bearer dtl_{uuid.uuid4().hex}"}
            if sent == "revoked":
                return keys.auth("revoked")
            return {"Authorization": "Bearer some-other-service-token"}

        assert [limit_headers(client.get(PATH, headers=headers()))[:2] for _ in range(3)] == [
            (3, 2),
            (3, 1),
            (3, 0),
        ]
        assert_limited(client.get(PATH, headers=headers()), 3)
        assert_limited(client.get(PATH), 3)  # and anonymously: the same budget

    def test_verifying_unknown_tokens_has_a_budget_of_its_own(
        self, replicas: Replicas, keys: Keys
    ) -> None:
        fresh_window(HOUR)
        client = replicas.start()
        # Three made-up tokens spend the address's budget and its verification budget ...
        for _ in range(3):
            client.get(PATH, headers={"Authorization": f"Bearer dtl_{uuid.uuid4().hex}"})
        # ... so a fourth is refused before any lookup, and so is a real key not yet verified.
        forged = {"Authorization": f"Bearer dtl_{uuid.uuid4().hex}"}
        assert_limited(client.get(PATH, headers=forged), 3)
        assert_limited(client.get(PATH, headers=keys.auth("two")), 3)


class TestWindows:
    def test_the_budget_renews_when_the_window_ends(self, replicas: Replicas) -> None:
        window = 2
        client = replicas.start(rate_limit_anonymous=1, rate_limit_window_seconds=window)
        # On a slow machine a window may end between two requests: go on until one is refused.
        for _ in range(20):
            refused = client.get(PATH)
            if refused.status_code == 429:
                break
        assert refused.status_code == 429
        retry_after = int(refused.headers["retry-after"])
        assert 1 <= retry_after <= window
        time.sleep(retry_after)
        renewed = client.get(PATH)
        assert renewed.status_code == 200
        assert limit_headers(renewed)[:2] == (1, 0)


class TestRedis:
    def test_replicas_share_one_budget(self, replicas: Replicas, prefix: str) -> None:
        fresh_window(HOUR)
        shared = {"rate_limit_store": "redis", "redis_url": REDIS_URL}
        first = replicas.start(rate_limit_redis_prefix=prefix, **shared)
        second = replicas.start(rate_limit_redis_prefix=prefix, **shared)
        assert spend(first, 2) == [2, 1]
        assert spend(second, 1) == [0]
        assert_limited(first.get(PATH), 3)
        assert_limited(second.get(PATH), 3)
        # A replica with another prefix (another deployment) counts apart.
        other = replicas.start(rate_limit_redis_prefix=prefix + "other:", **shared)
        assert spend(other, 1) == [2]

    def test_counters_are_prefixed_and_expire(
        self, replicas: Replicas, keys: Keys, prefix: str
    ) -> None:
        fresh_window(HOUR)
        client = replicas.start(
            rate_limit_store="redis", redis_url=REDIS_URL, rate_limit_redis_prefix=prefix
        )
        spend(client, 1)
        spend(client, 2, keys.auth("one"))
        server = redis.Redis.from_url(REDIS_URL, decode_responses=True)
        counters = {key: server.get(key) for key in server.scan_iter(match=prefix + "*")}
        ttls = [server.ttl(key) for key in counters]
        server.close()
        window = math.floor(time.time() / HOUR)
        assert counters == {
            f"{prefix}ip:203.0.113.7:{window}": "1",
            f"{prefix}verify:ip:203.0.113.7:{window}": "1",
            f"{prefix}key:{keys.ids['one']}:{window}": "2",
        }
        # Every counter expires (INCR and EXPIRE run as one script), after at most two windows.
        assert all(0 < ttl <= 2 * HOUR for ttl in ttls)

    def test_an_unreachable_redis_falls_back_to_counting_per_process(
        self, replicas: Replicas, caplog: pytest.LogCaptureFixture
    ) -> None:
        fresh_window(HOUR)
        closed = f"redis://127.0.0.1:{free_port()}/0"
        with caplog.at_level(logging.WARNING, logger="app.ratelimit"):
            client = replicas.start(rate_limit_store="redis", redis_url=closed)
            assert spend(client, 3) == [2, 1, 0]
            assert_limited(client.get(PATH), 3)
        warnings = [r for r in caplog.records if r.name == "app.ratelimit"]
        assert len(warnings) == 1  # once per outage, not once per request
        assert "Redis failed" in warnings[0].getMessage()


class TestPieces:
    def test_ipv6_clients_are_counted_per_64(self) -> None:
        def bucket(host: str) -> str:
            return client_bucket({"client": (host, 1)})

        assert bucket("2001:db8:1:2::1") == bucket("2001:db8:1:2:ffff::9") == "ip:2001:db8:1:2::/64"
        assert bucket("2001:db8:1:3::1") != bucket("2001:db8:1:2::1")
        assert bucket("::ffff:192.0.2.9") == bucket("192.0.2.9") == "ip:192.0.2.9"
        assert client_bucket({"client": None}) == "ip:unknown"

    def test_bearer_token_parsing(self) -> None:
        assert bearer_token([(b"authorization", b"Bearer dtl_abc")]) == "dtl_abc"
        assert bearer_token([(b"authorization", b"bearer  dtl_abc ")]) == "dtl_abc"
        assert bearer_token([(b"authorization", b"Basic dXNlcjpwYXNz")]) is None
        assert bearer_token([(b"authorization", b"Bearer")]) is None
        assert bearer_token([(b"accept", b"*/*")]) is None

    def test_the_memory_store_is_bounded_and_never_locks_a_newcomer_out(self) -> None:
        store = MemoryStore(max_buckets=3)
        assert [store.hit(f"ip:{n}", 7) for n in range(3)] == [1, 1, 1]
        assert store.hit("ip:0", 7) == 2  # ip:0 is now the most recently seen
        # A flood of new addresses: each newcomer gets a counter of its own (it used to share
        # one "overflow" budget with every other newcomer, which a flood spent for everyone).
        assert [store.hit(f"flood:{n}", 7) for n in range(1000)] == [1] * 1000
        assert len(store) == 3
        assert store.hit("ip:new", 7) == 1
        # The least recently seen counters went first: the newest callers are still counted.
        assert store.hit("ip:new", 7) == 2
        assert store.hit("flood:999", 7) == 2
        # A new window drops the old one whole.
        assert store.hit("ip:9", 8) == 1
        assert len(store) == 1
        # A request that read the clock just before the rollover counts in the new window.
        assert store.hit("ip:9", 7) == 2

    def test_the_memory_store_spends_a_cost_only_if_it_fits(self) -> None:
        store = MemoryStore()
        assert store.hit("ip:1", 1, cost=20, limit=30) == 20
        assert store.hit("ip:1", 1, cost=50, limit=30) == 70  # refused: nothing spent
        assert store.hit("ip:1", 1, cost=10, limit=30) == 30
        assert store.hit("ip:1", 1, cost=1, limit=30) == 31
        # A caller that keeps knocking stays the most recent, so it is not forgotten.
        small = MemoryStore(max_buckets=2)
        small.hit("ip:loud", 1, cost=5, limit=5)
        small.hit("ip:a", 1)
        small.hit("ip:loud", 1, cost=1, limit=5)  # refused, but seen
        small.hit("ip:b", 1)  # evicts ip:a, not ip:loud
        assert small.hit("ip:loud", 1, cost=1, limit=5) == 6


def scope(path: str, query: str = "", accept: str | None = None) -> dict[str, Any]:
    headers = [(b"accept", accept.encode())] if accept else []
    return {"path": path, "query_string": query.encode(), "headers": headers}


class TestCosts:
    @pytest.mark.parametrize(
        ("path", "query", "accept", "units", "heavy"),
        [
            ("/v1/timeline", "state=MLI&limit=50", None, 1, False),
            ("/v1/events/x", "count=true", None, 1, False),
            ("/v1/timeline", "q=drone", None, 3, False),
            ("/v1/timeline", "q=%20", None, 1, False),
            ("/v1/timeline", "count=true", None, 6, True),
            ("/v1/timeline", "count=false", None, 1, False),
            ("/v1/timeline", "q=drone&order=relevance&count=1", None, 18, True),
            ("/v1/timeline/facets", "from=2020", None, 20, True),
            ("/v1/timeline", "format=csv", None, 50, True),
            ("/v1/timeline", "format=json&count=true", None, 6, True),
            ("/v1/timeline", "", "text/csv", 50, True),
            ("/v1/timeline", "format=json", "text/csv", 1, False),
            ("/v1/timeline", "format=ics&q=coup", None, 50, True),
            ("/v1/timeline", "", "application/json", 1, False),
        ],
    )
    def test_what_a_request_costs(
        self, path: str, query: str, accept: str | None, units: int, heavy: bool
    ) -> None:
        assert request_cost(scope(path, query, accept)) == Cost(units, heavy)

    def test_expensive_requests_spend_more_of_the_budget(self, replicas: Replicas) -> None:
        fresh_window(HOUR)
        client = replicas.start(rate_limit_anonymous=30)
        facets = client.get("/v1/timeline/facets")
        assert facets.status_code == 200, facets.text
        assert limit_headers(facets)[:2] == (30, 10)
        # An export (50, capped at the whole budget of 30) does not fit in the 10 left: refused,
        # and it spends nothing, so the caller can still read pages.
        refused = client.get("/v1/timeline?format=csv")
        body = assert_problem(refused, 429)
        assert "this request costs 30, more than is left" in body["detail"]
        assert "an export 50" in body["detail"]
        searched = client.get("/v1/timeline?q=coup")
        assert searched.status_code == 200
        assert limit_headers(searched)[:2] == (30, 7)
        assert limit_headers(client.get(PATH))[:2] == (30, 6)

    def test_a_budget_smaller_than_a_cost_still_admits_one(self, replicas: Replicas) -> None:
        fresh_window(HOUR)
        client = replicas.start(rate_limit_anonymous=3)
        exported = client.get("/v1/timeline?format=ndjson")
        assert exported.status_code == 200, exported.text
        assert limit_headers(exported)[:2] == (3, 0)
        assert_problem(client.get("/v1/timeline?format=ndjson"), 429)

    def test_redis_spends_costs_too(self, replicas: Replicas, prefix: str) -> None:
        fresh_window(HOUR)
        shared = {"rate_limit_store": "redis", "redis_url": REDIS_URL}
        first = replicas.start(rate_limit_anonymous=30, rate_limit_redis_prefix=prefix, **shared)
        second = replicas.start(rate_limit_anonymous=30, rate_limit_redis_prefix=prefix, **shared)
        assert limit_headers(first.get("/v1/timeline/facets"))[:2] == (30, 10)
        assert_problem(second.get("/v1/timeline/facets"), 429)  # 20 more do not fit
        assert limit_headers(second.get("/v1/timeline?count=true"))[:2] == (30, 4)


class TestHeavySlots:
    def test_slots_per_caller_and_per_process(self) -> None:
        slots = HeavySlots(total=2, per_caller=1)
        assert slots.take("ip:a") is None
        assert slots.take("ip:a") == "caller"
        assert slots.take("ip:b") is None
        assert slots.take("ip:c") == "process"
        slots.give("ip:a")
        assert slots.take("ip:c") is None
        assert slots.running == 2
        slots.give("ip:b")
        slots.give("ip:c")
        assert slots.running == 0
        assert slots.take("ip:a") is None


class TestExportShare:
    """A streamed export keeps at most a share of a core busy: anonymous callers a fifth by
    default, keyed ones a whole core (RATE_LIMIT_EXPORT_SHARE_*)."""

    def shares_seen(self, token: str | None, path: str, query: str) -> list[float]:
        seen: list[float] = []

        async def inner(scope: Any, receive: Any, send: Any) -> None:
            seen.append(EXPORT_SHARE.get())
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b""})

        settings = Settings(
            cursor_secret="test-secret",
            rate_limit_enabled=True,
            rate_limit_export_share_anonymous=0.25,
            rate_limit_export_share_keyed=0.5,
        )
        known = hash_token(KNOWN_TOKEN)
        limiter = RateLimit(inner, settings, lookup=lambda digest: 1 if digest == known else None)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        # No lifespan (no `with`): `inner` is a bare ASGI app.
        response = TestClient(limiter).get(f"{path}?{query}", headers=headers)
        assert response.status_code == 200
        return seen

    def test_the_rate_limiter_sets_the_callers_share_for_heavy_requests(self) -> None:
        assert self.shares_seen(None, "/v1/timeline", "format=csv") == [0.25]
        assert self.shares_seen(KNOWN_TOKEN, "/v1/timeline", "format=csv") == [0.5]
        # A page is not heavy: it runs at the default, unpaced.
        assert self.shares_seen(None, "/v1/timeline", "") == [1.0]
        assert EXPORT_SHARE.get() == 1.0

    def test_an_export_waits_between_chunks_in_proportion_to_their_cpu_time(self) -> None:
        def burn(seconds: float) -> None:
            started = time.thread_time()
            while time.thread_time() - started < seconds:
                pass

        def chunks() -> Generator[bytes]:
            for _ in range(4):
                burn(0.02)
                yield b"x"

        async def drain() -> tuple[list[bytes], float]:
            token = EXPORT_SHARE.set(0.1)
            try:
                started = time.monotonic()
                stream = timed(chunks())
                got = [chunk async for chunk in read_ahead(next(stream), stream)]
                return got, time.monotonic() - started
            finally:
                EXPORT_SHARE.reset(token)

        got, took = asyncio.run(drain())
        assert got == [b"x"] * 4
        # Each of the four chunks used at least 20 ms of CPU; at a tenth of a core each is
        # followed by a pause of nine times that. Pauses never end early, so this lower bound
        # holds on any machine, however busy (unpaced, the chunks take 80 ms of CPU).
        assert took >= 4 * 0.02 * 9
