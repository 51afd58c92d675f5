"""The storm: 16 anonymous clients ask for exports and facets in a loop while wrk reads headline
pages (issue 24). `bench/run --storm` runs it on --events; `bench/run --smoke` runs it briefly.

The server is the production configuration (rate limits on, response cache on, `--workers`).
wrk reads the headline pages with an API key whose budget is out of reach (RATE_LIMIT_KEYED), so
it measures pages, not refusals; keyed requests skip the response cache, so every page is built.
Each storm client has an address of its own (X-Forwarded-For, which uvicorn believes from
127.0.0.1 as under `make run`) and its own anonymous budget; it streams every export to the end
and, when refused, waits half a second (less than the Retry-After it is told) and asks again.

Passes when page p99 during the storm is at most twice page p99 when quiet, no storm request
timed out, and every refusal was a 429 or 503 problem with Retry-After.
"""

from __future__ import annotations

import itertools
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx

if TYPE_CHECKING:
    from bench.runner import Server

CLIENTS = 16
STORM_PATHS = ("/v1/timeline?format=csv", "/v1/timeline/facets", "/v1/timeline?format=ndjson")
CLIENT_TIMEOUT = 30.0
PAUSE_AFTER_REFUSAL = 0.5
TARGET_RATIO = 2.0


@dataclass
class Storm:
    statuses: Counter[int] = field(default_factory=Counter)
    timeouts: int = 0
    errors: list[str] = field(default_factory=list)
    refusals_without_retry_after: int = 0
    bytes: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


def storm_key(database_url: str) -> str:
    """An API key for wrk's page reads (created once per data set; the name is reused)."""
    from sqlalchemy import delete

    from app.auth import service as auth_service
    from app.auth.service import Scope
    from app.db import create_db_engine, create_session_factory
    from app.models import ApiKey

    engine = create_db_engine(database_url)
    with create_session_factory(engine).begin() as session:
        session.execute(delete(ApiKey).where(ApiKey.name == "bench-storm"))
        _, token = auth_service.create_key(session, "bench-storm", [Scope.editor])
    engine.dispose()
    return token


def storm_env(database_url: str) -> dict[str, str]:
    return {
        "DATABASE_URL": database_url,
        "RATE_LIMIT_ENABLED": "true",
        # wrk's key: out of reach. Anonymous callers keep the production defaults.
        "RATE_LIMIT_KEYED": "1000000000",
        "WEBHOOK_WORKER": "off",
    }


def client_loop(base_url: str, n: int, stop: threading.Event, storm: Storm) -> None:
    headers = {"X-Forwarded-For": f"198.51.100.{n + 1}"}
    paths = itertools.cycle(STORM_PATHS[n % len(STORM_PATHS) :] + STORM_PATHS)
    with httpx.Client(base_url=base_url, timeout=CLIENT_TIMEOUT, headers=headers) as http:
        while not stop.is_set():
            path = next(paths)
            try:
                with http.stream("GET", path) as response:
                    size = 0
                    for chunk in response.iter_raw():
                        size += len(chunk)
                        if stop.is_set():
                            break
                    status = response.status_code
                    problem = response.headers.get("content-type", "").startswith(
                        "application/problem+json"
                    )
                    retry_after = response.headers.get("retry-after")
            except httpx.TimeoutException:
                with storm.lock:
                    storm.timeouts += 1
                continue
            except httpx.HTTPError as exc:
                with storm.lock:
                    storm.errors.append(f"{path}: {exc!r}")
                continue
            with storm.lock:
                storm.statuses[status] += 1
                storm.bytes += size
                if status in (429, 503) and not (problem and retry_after):
                    storm.refusals_without_retry_after += 1
            if status != 200:
                stop.wait(PAUSE_AFTER_REFUSAL)


def run(
    server: Server,
    headline: list[str],
    token: str,
    *,
    quiet_seconds: float,
    storm_seconds: float,
    conns: int,
    wrk: Any,
) -> dict[str, Any]:
    """Quiet pages, then pages during the storm; `wrk` is bench.runner.wrk."""
    header = f"Authorization: Bearer {token}"

    def pages(seconds: float) -> dict[str, Any]:
        result: dict[str, Any] = wrk(
            server, headline, conns=conns, seconds=seconds, threads=2, header=header, drain=False
        )
        return result

    pages(2)  # warm
    quiet = pages(quiet_seconds)
    storm = Storm()
    stop = threading.Event()
    base = server.url("")
    clients = [
        threading.Thread(target=client_loop, args=(base, n, stop, storm), daemon=True)
        for n in range(CLIENTS)
    ]
    for thread in clients:
        thread.start()
    stop.wait(1.0)  # let the storm start before measuring
    during = pages(storm_seconds)
    stop.set()
    for thread in clients:
        thread.join(timeout=CLIENT_TIMEOUT + 5)
    ratio = during["p99_ms"] / quiet["p99_ms"] if quiet["p99_ms"] else None
    ok = (
        ratio is not None
        and ratio <= TARGET_RATIO
        and storm.timeouts == 0
        and not storm.errors
        and storm.refusals_without_retry_after == 0
    )
    return {
        "quiet": quiet,
        "storm": during,
        "p99_ratio": round(ratio, 2) if ratio is not None else None,
        "storm_statuses": dict(storm.statuses),
        "storm_timeouts": storm.timeouts,
        "storm_errors": storm.errors[:10],
        "storm_refusals_without_retry_after": storm.refusals_without_retry_after,
        "storm_megabytes": round(storm.bytes / 1e6, 1),
        "ok": ok,
    }


def describe(result: dict[str, Any]) -> str:
    q, s = result["quiet"], result["storm"]
    return (
        f"  quiet: {q['rps']:,.0f} req/s, p99 {q['p99_ms']:.1f} ms; storm: {s['rps']:,.0f} req/s,"
        f" p99 {s['p99_ms']:.1f} ms; ratio {result['p99_ratio']} (target <= {TARGET_RATIO:g});"
        f" storm answers {result['storm_statuses']}, {result['storm_megabytes']} MB,"
        f" timeouts {result['storm_timeouts']}, errors {len(result['storm_errors'])},"
        f" refusals without Retry-After {result['storm_refusals_without_retry_after']}:"
        f" {'PASS' if result['ok'] else 'FAIL'}"
    )
