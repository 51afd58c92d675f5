"""Rate limits: a fixed budget per window, per API key or per client address, spent by what
requests cost; and how many expensive requests may run at once.

A pure ASGI middleware (the hot path pays a dictionary update, or one Redis round trip). Rules:

* Requests cost what they make the database do (`request_cost`): a page 1 unit; `q=` adds 2
  (a search may walk far to fill its page), `count=true` 5 (a second query over every match),
  `order=relevance` 10 (every match scored); facets cost 20 (every match grouped five ways) and
  an export 50 (every match read and rendered). A request is let in only if its cost fits in
  what is left of the caller's budget; a refused request spends nothing.
* Heavy requests (exports, facets, counts, ranked searches) also take one of a few slots for as
  long as they run, the whole streamed body included: RATE_LIMIT_HEAVY_CONCURRENCY per process
  (beyond it a 503 with Retry-After: the server is busy) and RATE_LIMIT_HEAVY_PER_CALLER per key
  or address (beyond it a 429). While they run, their database work goes to threads of their own
  (`app.db.HEAVY`), so pages never queue behind a grouping of the whole table.
* A streamed export also keeps at most a share of a core busy (RATE_LIMIT_EXPORT_SHARE_ANONYMOUS,
  RATE_LIMIT_EXPORT_SHARE_KEYED): it pauses between its chunks in proportion to the CPU time
  each took. A slot bounds how many exports run; the share bounds what each costs the pages
  served beside it, since rendering holds the interpreter those pages need.

* A request with a known, live API key (`Authorization: Bearer dtl_…`) spends the key's budget
  (RATE_LIMIT_KEYED). Keys are recognised by the token's SHA-256, as stored, through a small
  per-process cache, so the database is asked about a token at most once a minute.
* Everything else spends the budget of the client address (RATE_LIMIT_ANONYMOUS): anonymous
  callers, and callers whose token is unknown, revoked or malformed, so a stream of random
  tokens cannot mint fresh budgets. Verifying a token the cache does not know spends a second
  budget of the address, of the same size, which bounds the database lookups random tokens can
  cause without locking real keys out of an address whose anonymous budget is spent.
* The address is the ASGI client (uvicorn --proxy-headers rewrites it behind a trusted proxy;
  X-Forwarded-For is never read here). IPv6 clients are counted per /64, the block one
  subscriber usually holds, so rotating addresses inside it does not multiply the budget.
* Windows are fixed and aligned on the epoch (every replica agrees on them). A client can spend
  a whole budget at the end of one window and another at the start of the next; that burst is
  the price of one atomic counter per request.
* Health probes (/healthz, /readyz) are never limited: an orchestrator must not be refused.

Stores: `memory` counts per process; `redis` shares the counters between processes and replicas
(INCR and EXPIRE in one Lua script: atomic, one round trip). If Redis cannot be reached, the
middleware counts in process memory for a few seconds before trying again and logs a warning:
limits stay in force per process (looser by the number of processes) instead of failing open or
refusing every request because a cache is down.
"""

import logging
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

import anyio.to_thread
import redis.asyncio
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.callers import CALLER, TOKEN_PREFIX, client_bucket, hash_token
from app.config import Settings
from app.db import EXPORT_SHARE, HEAVY
from app.errors import problem
from app.models import ApiKey
from app.timeline.formats import MEDIA_TYPES, negotiate

logger = logging.getLogger("app.ratelimit")

EXEMPT_PATHS = frozenset({"/healthz", "/readyz"})
MAX_TOKEN_LENGTH = 200
LIMIT_HEADERS = ("RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset")
_RAW = tuple(name.lower().encode() for name in LIMIT_HEADERS)
# How long a verified (or refused) token is remembered per process. A revoked key keeps its
# keyed budget this long; writes still check the key in the database on every request.
KEY_CACHE_SECONDS = 60.0
KEY_CACHE_SIZE = 10_000
# Counters kept per process in one window: beyond it the least recently seen caller's counter
# is forgotten (it starts again from zero), so memory stays bounded whatever the traffic and a
# flood from many addresses can never lock a new caller out.
MAX_BUCKETS = 100_000
REDIS_RETRY_SECONDS = 5.0
# Seconds a caller refused a heavy slot is told to wait: slots free as requests finish.
HEAVY_RETRY_SECONDS = 2


@dataclass(frozen=True, slots=True)
class Cost:
    units: int
    heavy: bool = False


PAGE = Cost(1)
SEARCH_UNITS = 2
COUNT_UNITS = 5
RELEVANCE_UNITS = 10
FACETS = Cost(20, heavy=True)
EXPORT = Cost(50, heavy=True)
_TRUE = frozenset({"1", "true", "t", "yes", "y", "on"})
_EXPORTS = frozenset(MEDIA_TYPES) - {"json"}


def request_cost(scope: Scope) -> Cost:
    """What a request costs, from its path and query string alone (before anything runs)."""
    path = scope["path"]
    if path == "/v1/timeline/facets":
        return FACETS
    if path != "/v1/timeline":
        return PAGE
    params = dict(parse_qsl(scope["query_string"].decode("latin-1")))
    fmt = params.get("format")
    if fmt is None:
        for name, value in scope["headers"]:
            if name == b"accept":
                fmt = negotiate(value.decode("latin-1"))
                break
    if fmt in _EXPORTS:
        return EXPORT
    units, heavy = PAGE.units, False
    if params.get("q", "").strip():
        units += SEARCH_UNITS
    if params.get("count", "").strip().lower() in _TRUE:
        units, heavy = units + COUNT_UNITS, True
    if params.get("order", "").strip() == "relevance":
        units, heavy = units + RELEVANCE_UNITS, True
    return Cost(units, heavy)


_HEADER_DOCS = {
    "RateLimit-Limit": "Requests allowed per window for this caller.",
    "RateLimit-Remaining": "Requests left in the current window.",
    "RateLimit-Reset": "Seconds until the current window ends.",
}
RATE_LIMITED_RESPONSE: dict[str, Any] = {
    "description": "Too many requests: the caller's budget for this window is spent. Anonymous"
    " callers are counted per IP address, callers with an API key per key; wait `Retry-After`"
    " seconds.",
    "headers": {
        "Retry-After": {
            "description": "Seconds to wait before the budget is renewed.",
            "schema": {"type": "integer"},
        },
        **{
            name: {"description": text, "schema": {"type": "integer"}}
            for name, text in _HEADER_DOCS.items()
        },
    },
}

# KEYS[1] the counter; ARGV: seconds it lives, the request's cost, the limit. Spends the cost
# only if it fits; returns what the counter would hold with it, spent or not.
_SPEND = """
local count = tonumber(redis.call('GET', KEYS[1]) or '0') + tonumber(ARGV[2])
if count <= tonumber(ARGV[3]) then
    if count == tonumber(ARGV[2]) then
        redis.call('SET', KEYS[1], count, 'EX', ARGV[1])
    else
        redis.call('INCRBY', KEYS[1], ARGV[2])
    end
end
return count
"""


class MemoryStore:
    """Counters for the current window only: a new window drops the previous one whole, so
    windows cost nothing per request; within one, the least recently seen counter goes first
    when there are `max_buckets`. A lock keeps it correct for threaded callers too."""

    def __init__(self, max_buckets: int = MAX_BUCKETS) -> None:
        self.max_buckets = max_buckets
        self._lock = threading.Lock()
        self._window = -1
        self._counts: OrderedDict[str, int] = OrderedDict()

    def hit(self, bucket: str, window: int, cost: int = 1, limit: int | None = None) -> int:
        """Spend `cost` if it fits in `limit`; what the counter would hold with it."""
        with self._lock:
            if window > self._window:
                self._window = window
                self._counts = OrderedDict()
            # A request that read the clock just before a rollover lands in the new window:
            # counting it there errs towards the limit, never past it.
            counts = self._counts
            count = counts.get(bucket, 0) + cost
            if limit is None or count <= limit:
                counts[bucket] = count
            if bucket in counts:
                # Refused callers stay recent too: one that keeps knocking stays counted.
                counts.move_to_end(bucket)
                if len(counts) > self.max_buckets:
                    counts.popitem(last=False)
            return count

    def __len__(self) -> int:
        return len(self._counts)


class RedisStore:
    """Counters shared by every process that uses the same Redis and key prefix."""

    def __init__(self, url: str, prefix: str, timeout: float, window_seconds: int) -> None:
        self.prefix = prefix
        # Keys outlive their window a little, so replicas whose clocks differ slightly still
        # find the same counter; the window number in the key keeps windows apart.
        self.ttl = window_seconds * 2
        # Short timeouts and no retries: a slow Redis must not slow every request down.
        self.client = redis.asyncio.Redis.from_url(
            url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 0),
        )
        self._spend = self.client.register_script(_SPEND)

    async def hit(self, bucket: str, window: int, cost: int, limit: int) -> int:
        key = f"{self.prefix}{bucket}:{window}"
        count = await self._spend(keys=[key], args=[self.ttl, cost, limit])
        return int(count)

    async def aclose(self) -> None:
        await self.client.aclose()


class HeavySlots:
    """Heavy requests running in this process: at most `total`, at most `per_caller` each."""

    def __init__(self, total: int, per_caller: int) -> None:
        self.total = total
        self.per_caller = per_caller
        self._lock = threading.Lock()
        self._running = 0
        self._by_caller: dict[str, int] = {}

    def take(self, caller: str) -> str | None:
        """None if a slot was taken, else who is full: "caller" or "process"."""
        with self._lock:
            mine = self._by_caller.get(caller, 0)
            if mine >= self.per_caller:
                return "caller"
            if self._running >= self.total:
                return "process"
            self._running += 1
            self._by_caller[caller] = mine + 1
            return None

    def give(self, caller: str) -> None:
        with self._lock:
            self._running -= 1
            left = self._by_caller[caller] - 1
            if left:
                self._by_caller[caller] = left
            else:
                del self._by_caller[caller]

    @property
    def running(self) -> int:
        return self._running


def key_lookup(session_factory: sessionmaker[Session]) -> Callable[[str], int | None]:
    """token hash -> id of the live key holding it, from the database."""

    def lookup(digest: str) -> int | None:
        with session_factory() as session:
            key_id: int | None = session.scalar(
                select(ApiKey.id).where(ApiKey.token_hash == digest, ApiKey.revoked_at.is_(None))
            )
            return key_id

    return lookup


class KeyCache:
    """Which token hashes belong to live keys, remembered for a while (bounded, LRU)."""

    def __init__(
        self,
        lookup: Callable[[str], int | None],
        ttl: float = KEY_CACHE_SECONDS,
        size: int = KEY_CACHE_SIZE,
    ) -> None:
        self.lookup = lookup
        self.ttl = ttl
        self.size = size
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, tuple[int | None, float]] = OrderedDict()

    def cached(self, digest: str) -> tuple[bool, int | None]:
        """(known, key id): a known digest with no key id was refused recently."""
        with self._lock:
            entry = self._entries.get(digest)
            if entry is None or entry[1] < time.monotonic():
                return False, None
            self._entries.move_to_end(digest)
            return True, entry[0]

    async def resolve(self, digest: str) -> int | None:
        try:
            key_id = await anyio.to_thread.run_sync(self.lookup, digest)
        except SQLAlchemyError:
            # The request itself will meet the same database; here the caller simply stays
            # anonymous, and nothing is remembered.
            logger.warning("rate limit: could not look up an API key", exc_info=True)
            return None
        with self._lock:
            self._entries[digest] = (key_id, time.monotonic() + self.ttl)
            self._entries.move_to_end(digest)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)
        return key_id


def bearer_token(headers: list[tuple[bytes, bytes]]) -> str | None:
    for name, value in headers:
        if name == b"authorization":
            scheme, _, token = value.strip().partition(b" ")
            if scheme.lower() == b"bearer" and token.strip():
                return token.strip().decode("latin-1")
            return None
    return None


class RateLimit:
    def __init__(
        self,
        app: ASGIApp,
        settings: Settings,
        session_factory: sessionmaker[Session] | None = None,
        lookup: Callable[[str], int | None] | None = None,
    ) -> None:
        self.app = app
        self.window_seconds = settings.rate_limit_window_seconds
        self.anonymous = settings.rate_limit_anonymous
        self.keyed = settings.rate_limit_keyed
        if lookup is None:
            if session_factory is None:
                raise ValueError("RateLimit needs a session_factory or a lookup")
            lookup = key_lookup(session_factory)
        self.keys = KeyCache(lookup)
        self.memory = MemoryStore()
        self.heavy = HeavySlots(
            settings.rate_limit_heavy_concurrency, settings.rate_limit_heavy_per_caller
        )
        self.export_share_anonymous = settings.rate_limit_export_share_anonymous
        self.export_share_keyed = settings.rate_limit_export_share_keyed
        self.redis: RedisStore | None = None
        if settings.rate_limit_store == "redis":
            self.redis = RedisStore(
                settings.redis_url,
                settings.rate_limit_redis_prefix,
                settings.rate_limit_redis_timeout,
                self.window_seconds,
            )
        self._redis_retry_at = 0.0
        self._degraded = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, self._closing(receive), send)
            return
        if scope["type"] != "http" or scope["path"] in EXEMPT_PATHS:
            await self.app(scope, receive, send)
            return
        now = time.time()
        window = int(now // self.window_seconds)
        reset = max(1, math.ceil((window + 1) * self.window_seconds - now))

        token = bearer_token(scope["headers"])
        key_id: int | None = None
        if token is not None and token.startswith(TOKEN_PREFIX) and len(token) <= MAX_TOKEN_LENGTH:
            digest = hash_token(token)
            known, key_id = self.keys.cached(digest)
            if not known:
                # Verifying costs a database query, so the address pays for it from a budget
                # of its own: made-up tokens cannot hammer the database, and a real key is
                # still verified when its address has spent its anonymous budget (a NAT).
                verify = "verify:" + client_bucket(scope)
                count = await self._count(verify, window, 1, self.anonymous)
                if count > self.anonymous:
                    await self._refuse(scope, receive, send, self.anonymous, reset, keyed=False)
                    return
                key_id = await self.keys.resolve(digest)
        if key_id is not None:
            bucket, limit = f"key:{key_id}", self.keyed
        else:
            # No key, or a token that is unknown, revoked or malformed: the address pays.
            bucket, limit = client_bucket(scope), self.anonymous
        # Who the caller is, for limits counted further in (the live stream's, app/stream).
        scope.setdefault("state", {})[CALLER] = bucket
        cost = request_cost(scope)
        if cost.heavy:
            # Before the budget, so a request refused here spends nothing.
            full = self.heavy.take(bucket)
            if full is not None:
                await self._busy(scope, receive, send, full, keyed=key_id is not None)
                return
        try:
            # A budget smaller than a request's cost still lets one such request in per window.
            count = await self._count(bucket, window, min(cost.units, limit), limit)
            if count > limit:
                await self._refuse(
                    scope, receive, send, limit, reset, keyed=key_id is not None, cost=cost
                )
                return

            values = (limit, max(0, limit - count), reset)
            added = [(name, str(value).encode()) for name, value in zip(_RAW, values, strict=True)]

            async def send_with_headers(message: Message) -> None:
                if message["type"] == "http.response.start":
                    message["headers"] = [*message.get("headers", ()), *added]
                await send(message)

            if not cost.heavy:
                await self.app(scope, receive, send_with_headers)
                return
            lane = HEAVY.set(True)
            share = EXPORT_SHARE.set(
                self.export_share_keyed if key_id is not None else self.export_share_anonymous
            )
            try:
                await self.app(scope, receive, send_with_headers)
            finally:
                EXPORT_SHARE.reset(share)
                HEAVY.reset(lane)
        finally:
            if cost.heavy:
                self.heavy.give(bucket)

    async def _count(self, bucket: str, window: int, cost: int, limit: int) -> int:
        if self.redis is not None and time.monotonic() >= self._redis_retry_at:
            try:
                count = await self.redis.hit(bucket, window, cost, limit)
            except Exception as exc:
                # Usually RedisError or OSError; anything else from the store (a client used
                # from another event loop) must not turn into a 500 either.
                self._redis_retry_at = time.monotonic() + REDIS_RETRY_SECONDS
                if not self._degraded:
                    self._degraded = True
                    logger.warning(
                        "rate limit: Redis failed (%r); counting per process until it"
                        " answers again",
                        exc,
                    )
            else:
                if self._degraded:
                    self._degraded = False
                    logger.warning("rate limit: Redis answers again; counters are shared")
                return count
        return self.memory.hit(bucket, window, cost, limit)

    async def _refuse(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        limit: int,
        reset: int,
        *,
        keyed: bool,
        cost: Cost = PAGE,
    ) -> None:
        per = f"{self.window_seconds} s"
        if keyed:
            detail = f"This API key may spend {limit} units per {per}"
        else:
            detail = f"Callers without an API key may spend {limit} units per {per} from one"
            detail += " address"
        detail += (
            f" (a page costs {PAGE.units}; q= adds {SEARCH_UNITS}, count=true {COUNT_UNITS},"
            f" order=relevance {RELEVANCE_UNITS}; facets cost {FACETS.units}, an export"
            f" {EXPORT.units}); this request costs {min(cost.units, limit)}, more than is left;"
            f" retry in {reset} s"
        )
        detail += "." if keyed else ", or send an API key for a higher limit."
        response = problem(
            Request(scope),
            429,
            "rate-limited",
            "Too many requests",
            detail,
            headers={
                "Retry-After": str(reset),
                "RateLimit-Limit": str(limit),
                "RateLimit-Remaining": "0",
                "RateLimit-Reset": str(reset),
                "Cache-Control": "no-store",
            },
        )
        await response(scope, receive, send)

    async def _busy(
        self, scope: Scope, receive: Receive, send: Send, full: str, *, keyed: bool
    ) -> None:
        heavy = "exports, facets, counts (count=true) and ranked searches (order=relevance)"
        if full == "caller":
            per = self.heavy.per_caller
            who = "This API key" if keyed else "One address without an API key"
            status, slug, title = 429, "rate-limited", "Too many requests"
            detail = (
                f"{who} may run {per} of {heavy} at a time, and already runs {per}; let it"
                f" finish, then retry (in {HEAVY_RETRY_SECONDS} s). Pages are not affected."
            )
        else:
            status, slug, title = 503, "busy", "Too busy for this request"
            detail = (
                f"The server is answering as many {heavy} as it can at once; retry in"
                f" {HEAVY_RETRY_SECONDS} s. Pages are not affected."
            )
        response = problem(
            Request(scope),
            status,
            slug,
            title,
            detail,
            headers={"Retry-After": str(HEAVY_RETRY_SECONDS), "Cache-Control": "no-store"},
        )
        await response(scope, receive, send)

    def _closing(self, receive: Receive) -> Receive:
        """Close the Redis connections on shutdown, in the event loop that opened them."""

        async def wrapped() -> Message:
            message = await receive()
            if message["type"] == "lifespan.shutdown" and self.redis is not None:
                await self.redis.aclose()
            return message

        return wrapped
