"""Load and soak test of the service as deployed (issue 8); see bench/README.md, "Load and soak".

    python -m bench.load [--quick] [--events N] [--duration S] [--soak [MINUTES]] ...

It creates a scratch PostgreSQL database on the given server (dropped at the end), fills it with
`bench.synth` and the curated seed, serves it as deployed (`uvicorn app.main:app --workers 2`,
WEBHOOK_WORKER=off) with separate `python -m app.webhooks.worker` processes delivering to a local
receiver (`bench.webhook_peers`) subscribed through the API, and drives it with wrk
(`bench/load.lua`) over a realistic mix: timeline queries (the few hundred real queries of
`bench.runner.build_queries`), single event reads, bounded CSV/ICS exports, and ~5 % writes (POST
and If-Match PATCH with an editor key) that fan out to the webhooks.

It reports throughput, p50/p99/p99.9, errors (any status >= 400 or socket error; there must be
none), peak RSS of the server and webhook worker processes, and the webhook backlog, which must
drain. `--soak` repeats the mix in intervals and checks that memory and latency do not drift.
Progress on stderr; the table and a one-line summary on stdout; JSON in bench/out/.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import httpx

from bench.runner import (
    CURSOR_SECRET,
    LOGS,
    OUT,
    PG_SERVER,
    ROOT,
    Server,
    build_queries,
    free_port,
    machine,
    say,
    timeline,
    tree_pids,
    uvicorn,
    wait_idle,
)
from bench.webhooks import LOCAL, Receiver, WorkerProcess, pct

LUA = ROOT / "bench" / "load.lua"
PYTHON = sys.executable
DEFAULT_MIX = "timeline=70,event=22,export=3,post=2,patch=3"
KINDS = ("timeline", "event", "export", "post", "patch")
PATCH_SLICES = 3  # consecutive wrk runs PATCH disjoint events (see Plan.patch_slice)


# ---------------------------------------------------------------- the database


def pg_admin_url(server: str) -> str:
    from sqlalchemy.engine import make_url

    return (
        make_url(server.replace("postgresql+psycopg://", "postgresql://"))
        .set(database="postgres")
        .render_as_string(hide_password=False)
    )


@contextlib.contextmanager
def scratch_database(server: str, events: int, seed: int) -> Iterator[str]:
    """A database of our own on `server`: synthetic data, then the seed; dropped afterwards.

    Only CREATE/DROP DATABASE of our own name is sent to the server, which is shared."""
    import psycopg
    from sqlalchemy.engine import make_url

    name = f"dtl_load_{time.strftime('%Y%m%d%H%M%S')}_{uuid.uuid4().hex[:6]}"
    url = (
        make_url(server.replace("postgresql+psycopg://", "postgresql://"))
        .set(database=name)
        .render_as_string(hide_password=False)
    )
    admin = pg_admin_url(server)
    try:
        t0 = time.monotonic()
        say(f"database: {name}: generating {events:,} synthetic events (seed {seed})")
        # bench.synth creates the database, migrates it and bulk-loads it.
        cmd = [PYTHON, "-m", "bench.synth", "--events", str(events), "--seed", str(seed)]
        done = subprocess.run(  # noqa: S603
            [*cmd, "--database-url", url, "--quiet"],
            cwd=ROOT,
            check=True,
            stdout=subprocess.PIPE,
            text=True,
        )
        say(done.stdout.strip())
        load_seed(url)
        say(f"database: ready in {time.monotonic() - t0:.0f} s")
        yield url
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        say(f"database: dropped {name}")


def load_seed(url: str) -> None:
    # After synth (which empties every table first): the seed upserts by natural key, so its
    # states and organisations merge with the synthetic ones and its 81 events are added.
    from app import writes
    from app.config import PROJECT_ROOT, normalise_database_url
    from app.db import create_db_engine
    from app.seed import load

    engine = create_db_engine(normalise_database_url(url))
    try:
        with writes.session_factory(engine)() as session:
            load(session, PROJECT_ROOT / "seed", progress=lambda _: None)
            session.commit()
    finally:
        engine.dispose()


class _Rows:
    def __init__(self, rows: list[tuple[Any, ...]]) -> None:
        self.rows = rows

    def fetchone(self) -> tuple[Any, ...] | None:
        return self.rows[0] if self.rows else None

    def fetchall(self) -> list[tuple[Any, ...]]:
        return self.rows

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        return iter(self.rows)


class PgForQueries:
    """What `bench.runner.build_queries` needs of an sqlite3 connection, over PostgreSQL: `?`
    placeholders, dates as ISO strings, and an alias on the subquery PostgreSQL 15 requires.

    `max(id)` answers the last *synthetic* id: anchors must be synthetic events, which all have
    a state among their participants (a few seed events have only organisations)."""

    def __init__(self, url: str, synthetic_events: int) -> None:
        import psycopg

        self.conn = psycopg.connect(url, autocommit=True)
        self.synthetic_events = synthetic_events

    def execute(self, sql: str, args: tuple[Any, ...] = ()) -> _Rows:
        if sql.strip() == "SELECT max(id) FROM event":
            return _Rows([(self.synthetic_events,)])
        sql = re.sub(r"LIMIT 50\)$", "LIMIT 50) AS page", sql.replace("?", "%s"))
        rows = self.conn.execute(sql, args).fetchall()  # type: ignore[call-overload]
        return _Rows(
            [tuple(v.isoformat() if isinstance(v, dt.date) else v for v in row) for row in rows]
        )

    def close(self) -> None:
        self.conn.close()


class Db:
    """The few reads the harness makes itself: the plan's events, versions and the outbox."""

    def __init__(self, url: str) -> None:
        import psycopg

        self.conn = psycopg.connect(url, autocommit=True)

    def one(self, sql: str, args: tuple[Any, ...] = ()) -> tuple[Any, ...]:
        row = self.conn.execute(sql, args).fetchone()  # type: ignore[call-overload]
        assert row is not None  # noqa: S101 - aggregates always answer
        return tuple(row)

    def all(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        return [tuple(r) for r in self.conn.execute(sql, args).fetchall()]  # type: ignore[call-overload]

    def versions(self, ids: list[str]) -> dict[str, int]:
        rows = self.all("SELECT public_id, version FROM event WHERE public_id = ANY(%s)", (ids,))
        return {str(r[0]): int(r[1]) for r in rows}

    def outbox(self) -> dict[str, int]:
        """Deliveries by status, and messages with a delivery still to make."""
        found = {
            s: int(n)
            for s, n in self.all("SELECT status, count(*) FROM webhook_delivery GROUP BY status")
        }
        found["messages_waiting"] = int(
            self.one(
                "SELECT count(DISTINCT message_id) FROM webhook_delivery"
                " WHERE status IN ('pending', 'in_flight')"
            )[0]
        )
        found["backlog"] = found.get("pending", 0) + found.get("in_flight", 0)
        return found

    def close(self) -> None:
        self.conn.close()


# ---------------------------------------------------------------- the plan


@dataclass
class Plan:
    """Request templates for bench/load.lua; see the head of that file for the format."""

    timeline: list[str] = field(default_factory=list)
    events: list[str] = field(default_factory=list)
    exports: list[str] = field(default_factory=list)
    posts: list[str] = field(default_factory=list)
    patchable: list[str] = field(default_factory=list)

    def patch_slice(self, run: int) -> list[str]:
        """The events run `run` may PATCH. Consecutive runs use disjoint slices, so a PATCH
        still in the server when wrk stopped can never make the next run's If-Match stale."""
        return self.patchable[run % PATCH_SLICES :: PATCH_SLICES]

    def write(self, path: Path, versions: dict[str, int], run: int) -> None:
        lines = [f"T\t{p}" for p in self.timeline]
        lines += [f"E\t{p}" for p in self.events]
        lines += [f"X\t{p}" for p in self.exports]
        lines += [f"P\t{b}" for b in self.posts]
        lines += [f"U\t{e}\t{versions[e]}" for e in self.patch_slice(run) if e in versions]
        path.write_text("\n".join(lines) + "\n")


def post_bodies(rng: random.Random, codes: list[str], n: int) -> list[str]:
    """Valid POST /v1/events bodies (checked with the API's own schema); `@ID@` becomes a
    unique slug in the id and the source URL, so concurrent POSTs never share a new row."""
    from app.events.schemas import EventCreate
    from app.vocabulary import CATEGORIES

    categories = list(CATEGORIES.values())
    out = []
    for i in range(n):
        cat = rng.choice(categories)
        day = dt.date(2024, 1, 1) + dt.timedelta(days=rng.randrange(700))
        a, b = rng.sample(codes, 2)
        body = {
            "id": f"{day.isoformat()}-load-@ID@",
            "kind": cat.kind.value,
            "category": cat.slug,
            "date": day.isoformat(),
            "date_precision": "day",
            "title": f"{cat.label}: {a} and {b} (load test {i})",
            "summary": f"Written by bench.load under load: {cat.label.lower()} involving {a}"
            f" and {b}, reported by one source. " + "Background of the dispute. " * 6,
            "participants": [{"state": a, "role": "initiator"}, {"state": b, "role": "target"}],
            "sources": [{"url": "https://example.org/load/@ID@", "publisher": "Bench load"}],
            "tags": ["load-test"],
        }
        text = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
        EventCreate.model_validate_json(text.replace("@ID@", "x-1"))
        out.append(text)
    return out


def build_plan(
    url: str, server: Server, events: int, seed: int, n_event_reads: int, n_patch: int
) -> Plan:
    rng = random.Random(seed)
    plan = Plan()
    queries = build_queries(
        Path("load"),
        server,
        events,
        small=events <= 10_000,
        seed=seed,
        con=PgForQueries(url, events),
    )
    plan.timeline = queries.mix()

    db = Db(url)
    try:
        live = [
            str(r[0])
            for r in db.all("SELECT public_id FROM event WHERE deleted_at IS NULL ORDER BY id")
        ]
        picked = rng.sample(live, min(len(live), n_event_reads + n_patch))
        plan.patchable = picked[:n_patch]
        plan.events = [f"/v1/events/{e}" for e in picked[n_patch:]]
        codes = [str(r[0]) for r in db.all("SELECT code FROM state ORDER BY code")]
        plan.posts = post_bodies(rng, codes, 100)

        # Exports of bounded ranges: a state over a window, or every event of a few days,
        # narrowed until at most 300 events match; half CSV, half iCalendar.
        anchors = db.all(
            "SELECT e.date, s.code FROM event e"
            " JOIN event_participant p ON p.event_id = e.id AND p.position = 0"
            " JOIN state s ON s.id = p.state_id"
            " WHERE e.id = ANY(%s)",
            ([rng.randint(1, events) for _ in range(120)],),
        )
        for i, (day, code) in enumerate(anchors[:60]):
            for days in (365, 90, 30, 7, 1):
                end = day + dt.timedelta(days=days)
                if i % 2:
                    n = db.one(
                        "SELECT count(*) FROM event WHERE date BETWEEN %s AND %s"
                        " AND deleted_at IS NULL",
                        (day, end),
                    )[0]
                    params: dict[str, Any] = {"from": day.isoformat(), "to": end.isoformat()}
                else:
                    n = db.one(
                        "SELECT count(*) FROM event_participant p JOIN state s"
                        " ON s.id = p.state_id WHERE s.code = %s AND p.date BETWEEN %s AND %s",
                        (code, day, end),
                    )[0]
                    params = {"state": code, "from": day.isoformat(), "to": end.isoformat()}
                if n <= 300:
                    break
            plan.exports.append(timeline(**params, format="ics" if i % 4 < 2 else "csv"))
    finally:
        db.close()

    # Every path answers 200 before it is measured (build_queries checked its own).
    with httpx.Client(base_url=server.url(""), timeout=60) as client:
        for path in plan.events + plan.exports:
            r = client.get(path)
            if r.status_code != 200:
                raise RuntimeError(f"{path} answered {r.status_code}: {r.text[:300]}")
    say(
        f"plan: {len(plan.timeline)} timeline queries, {len(plan.events)} event reads,"
        f" {len(plan.exports)} exports, {len(plan.posts)} POST bodies,"
        f" {len(plan.patchable)} events to PATCH"
    )
    return plan


# ---------------------------------------------------------------- processes and memory


def rss_kb(pid: int, field_name: str = "VmRSS:") -> int:
    with contextlib.suppress(OSError), open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith(field_name):
                return int(line.split()[1])
    return 0


class Sampler:
    """RSS of the server tree and of each webhook worker, every `every` seconds.

    `take()` returns and resets the peaks since the last call (for soak intervals); `overall`
    keeps the peaks of the whole run."""

    def __init__(self, server_pid: int, worker_pids: list[int], every: float = 0.5) -> None:
        self.server_pid, self.worker_pids, self.every = server_pid, worker_pids, every
        self.lock = threading.Lock()
        self.peak: dict[str, float] = {}
        self.overall: dict[str, float] = {}
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def now(self) -> dict[str, float]:
        procs = [rss_kb(p) / 1024 for p in tree_pids(self.server_pid)]
        workers = [rss_kb(p) / 1024 for p in self.worker_pids]
        return {
            "server_tree_mb": sum(procs),
            "server_largest_mb": max(procs, default=0.0),
            "webhook_workers_mb": sum(workers),
            "webhook_worker_largest_mb": max(workers, default=0.0),
        }

    def _run(self) -> None:
        while not self.stop_event.is_set():
            sample = self.now()
            with self.lock:
                for k, v in sample.items():
                    self.peak[k] = max(self.peak.get(k, 0.0), v)
                    self.overall[k] = max(self.overall.get(k, 0.0), v)
            self.stop_event.wait(self.every)

    def start(self) -> Sampler:
        self.thread.start()
        return self

    def take(self) -> dict[str, float]:
        with self.lock:
            out, self.peak = dict(self.peak), {}
        return {k: round(v, 1) for k, v in out.items()}

    def high_water_marks(self) -> dict[str, float]:
        """The kernel's own peak (VmHWM) of every process: nothing between samples is missed."""
        server = [rss_kb(p, "VmHWM:") / 1024 for p in tree_pids(self.server_pid)]
        workers = [rss_kb(p, "VmHWM:") / 1024 for p in self.worker_pids]
        return {
            "server_processes_hwm_mb": [round(x, 1) for x in server],
            "webhook_workers_hwm_mb": [round(x, 1) for x in workers],
        }

    def stop(self) -> None:
        self.stop_event.set()
        self.thread.join()


class Probe:
    """One client beside wrk, timing a request of each kind in turn every `every` seconds.

    wrk's latency histogram covers the whole mix; this gives each kind's latency under the same
    load (few samples, so its p99 is rough). POSTs only: a PATCH here could race wrk's."""

    ROTATION = ("timeline", "event", "export", "post")

    def __init__(self, server: Server, plan: Plan, token: str, every: float = 0.5) -> None:
        self.server, self.plan, self.token, self.every = server, plan, token, every
        self.samples: dict[str, list[float]] = {k: [] for k in self.ROTATION}
        self.errors: list[str] = []
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        rng = random.Random(1)
        paths = {"timeline": self.plan.timeline, "event": self.plan.events}
        paths["export"] = self.plan.exports
        auth = {"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"}
        with httpx.Client(base_url=self.server.url(""), timeout=60) as client:
            i = 0
            while not self.stop_event.wait(self.every):
                kind = self.ROTATION[i % len(self.ROTATION)]
                i += 1
                t0 = time.perf_counter()
                try:
                    if kind == "post":
                        slug = f"probe{os.getpid()}-{i}"
                        body = rng.choice(self.plan.posts).replace("@ID@", slug)
                        r = client.post("/v1/events", content=body.encode(), headers=auth)
                    else:
                        r = client.get(rng.choice(paths[kind]))
                except httpx.HTTPError as exc:
                    self.errors.append(f"{kind}: {exc!r}")
                    continue
                self.samples[kind].append((time.perf_counter() - t0) * 1000)
                if r.status_code >= 400:
                    self.errors.append(f"{kind} {r.status_code} {r.text[:200]}")

    def start(self) -> Probe:
        self.thread.start()
        return self

    def stop(self) -> dict[str, Any]:
        self.stop_event.set()
        self.thread.join()
        out: dict[str, Any] = {"errors": self.errors}
        for kind, ms in self.samples.items():
            out[kind] = {
                "n": len(ms),
                "p50_ms": round(pct(ms, 0.5), 1) if ms else None,
                "p99_ms": round(pct(ms, 0.99), 1) if ms else None,
                "max_ms": round(max(ms), 1) if ms else None,
            }
        return out


def api_server(url: str, workers: int, extra: dict[str, str] | None = None) -> Server:
    port = free_port()
    env = {
        "DATABASE_URL": url,
        "CURSOR_SECRET": CURSOR_SECRET,
        "WEBHOOK_WORKER": "off",
        "WEBHOOK_ALLOWED_SUBNETS": LOCAL,
        **(extra or {}),
    }
    return Server("load-api", uvicorn("app.main:app", workers, port), env, "/healthz", port)


def make_keys(url: str) -> tuple[str, str]:
    """An admin key (to subscribe the receiver) and an editor key (to write)."""
    from app.auth.service import Scope, create_key
    from app.config import normalise_database_url
    from app.db import create_db_engine, create_session_factory

    engine = create_db_engine(normalise_database_url(url))
    try:
        with create_session_factory(engine).begin() as session:
            _, admin = create_key(session, "bench-load-admin", [Scope.admin])
            _, editor = create_key(session, "bench-load-editor", [Scope.editor])
    finally:
        engine.dispose()
    return admin, editor


def subscribe(server: Server, token: str, receiver_url: str, n: int) -> list[str]:
    ids = []
    for i in range(n):
        r = httpx.post(
            server.url("/v1/webhook-endpoints"),
            headers={"Authorization": f"Bearer {token}"},
            json={
                "url": f"{receiver_url}?endpoint={i}",
                "event_types": ["event.*"],
                "description": f"bench.load receiver {i}",
            },
            timeout=30,
        )
        if r.status_code != 201:
            raise RuntimeError(f"subscribing the receiver failed: {r.status_code} {r.text[:300]}")
        ids.append(r.json()["id"])
    return ids


# ---------------------------------------------------------------- wrk


@dataclass
class Options:
    connections: int
    threads: int
    mix: str
    timeout: float
    rate: float | None


def run_wrk(
    server: Server, plan: Plan, db: Db, token: str, opts: Options, seconds: float, run: int
) -> dict[str, Any]:
    LOGS.mkdir(parents=True, exist_ok=True)
    plan_file = LOGS / f"load-plan-{os.getpid()}.tsv"
    plan.write(plan_file, db.versions(plan.patch_slice(run)), run)
    threads = min(opts.threads, opts.connections)
    env = {
        **os.environ,
        "LOAD_PLAN": str(plan_file),
        "LOAD_MIX": opts.mix,
        "LOAD_TOKEN": token,
        "LOAD_TAG": f"r{os.getpid()}x{run}",
        "LOAD_THREADS": str(threads),
        "LOAD_DELAY_MS": f"{1000 * opts.connections / opts.rate:.3f}" if opts.rate else "0",
    }
    cmd = ["wrk", f"-t{threads}", f"-c{opts.connections}", f"-d{max(1, round(seconds))}s"]
    cmd += ["--timeout", f"{opts.timeout:g}s", "-s", str(LUA), server.url("/healthz")]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, errors="replace")  # noqa: S603
    line = next((x for x in done.stdout.splitlines() if x.startswith("LOADJSON ")), None)
    if done.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    result: dict[str, Any] = json.loads(line.split(" ", 1)[1])
    if not isinstance(result.get("error_samples"), list):
        result["error_samples"] = []  # Lua encodes an empty table as {}
    statuses = {int(k): int(v) for k, v in result["statuses"].items()}
    result["statuses"] = {str(k): v for k, v in sorted(statuses.items())}
    sockets = sum(int(result[k]) for k in ("err_connect", "err_read", "err_write", "err_timeout"))
    result["errors"] = sum(v for k, v in statuses.items() if k >= 400) + sockets
    result["loadavg_1m"] = round(os.getloadavg()[0], 2)
    return result


# ---------------------------------------------------------------- soak criterion


def judge_drift(intervals: list[dict[str, Any]], max_rss: float, max_p99: float) -> dict[str, Any]:
    """The soak criterion: the last interval against a reference interval one third of the way
    in (at least the second; the 10th of 30 one-minute intervals by default). Before it the
    bounded in-memory state fills up (the response cache of 512 pages per process, SQLAlchemy's
    statement cache, connection pools), which is growth but not drift. Then:

    - RSS of the server tree and of the webhook workers at the end of the last interval may be
      at most `max_rss` % above the reference's;
    - p99 of the last interval may be at most `max_p99` % above the reference's, plus 5 ms (so a
      2 ms p99 does not fail on 1 ms of jitter);
    - the webhook backlog at the end of the last interval may be at most the reference's plus
      100 deliveries (workers that keep up do not let it grow).
    """
    n = len(intervals)
    if n < 3:
        return {
            "ok": False,
            "reference": None,
            "checks": [{"what": "need >= 3 intervals", "ok": False}],
        }
    ref_i = max(1, round(n / 3) - 1)
    ref, last = intervals[ref_i], intervals[-1]
    checks = []
    for key in ("server_tree_mb", "webhook_workers_mb"):
        a, b = ref["rss_end"][key], last["rss_end"][key]
        limit = a * (1 + max_rss / 100)
        checks.append(
            {"what": f"RSS {key}", "ref": a, "last": b, "limit": round(limit, 1), "ok": b <= limit}
        )
    a, b = ref["p99_ms"], last["p99_ms"]
    limit = a * (1 + max_p99 / 100) + 5
    checks.append(
        {
            "what": "p99 ms",
            "ref": round(a, 1),
            "last": round(b, 1),
            "limit": round(limit, 1),
            "ok": b <= limit,
        }
    )
    a, b = ref["backlog_end"], last["backlog_end"]
    checks.append(
        {"what": "webhook backlog", "ref": a, "last": b, "limit": a + 100, "ok": b <= a + 100}
    )
    after = [r["rss_end"]["server_tree_mb"] for r in intervals[ref_i:]]
    return {
        "ok": all(c["ok"] for c in checks),
        "reference": ref_i + 1,
        "server_rss_mb_per_interval_after_reference": round(
            (after[-1] - after[0]) / max(len(after) - 1, 1), 2
        ),
        "checks": checks,
    }


# ---------------------------------------------------------------- report


def fmt(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def render(result: dict[str, Any]) -> str:
    m, hooks, rss = result["measured"], result["webhooks"], result["rss_peak"]
    sent = m["sent"]
    total_sent = sum(sent.values()) or 1
    mix = ", ".join(f"{k} {100 * sent.get(k, 0) / total_sent:.1f} %" for k in KINDS)
    rows = [
        (
            "duration",
            f"{m['duration_us'] / 1e6:.1f} s, {result['options']['connections']}"
            f" connections, {result['options']['threads']} wrk threads"
            + (f", offered <= ~{rate:g} req/s" if (rate := result["options"].get("rate")) else ""),
        ),
        ("requests", f"{m['requests']:,} ({mix})"),
        ("throughput", f"{m['rps']:,.0f} req/s"),
        ("latency p50 / p90", f"{m['p50_ms']:.1f} / {m['p90_ms']:.1f} ms"),
        (
            "latency p99 / p99.9 / max",
            f"{m['p99_ms']:.1f} / {m['p999_ms']:.1f} / {m['max_ms']:.0f} ms",
        ),
        ("statuses", ", ".join(f"{k}: {v:,}" for k, v in m["statuses"].items())),
        (
            "errors (status >= 400, socket errors)",
            f"{m['errors']}{'' if m['errors'] == 0 else '  **FAIL**'}",
        ),
        (
            "peak RSS, server (uvicorn master + workers)",
            f"{fmt(rss['server_tree_mb'])} MB total, largest process"
            f" {fmt(rss['server_largest_mb'])} MB",
        ),
        (
            "peak RSS, webhook workers",
            f"{fmt(rss['webhook_workers_mb'])} MB total ({result['options']['webhook_workers']}"
            f" processes), largest {fmt(rss['webhook_worker_largest_mb'])} MB",
        ),
        (
            "writes sent (POST + PATCH, probe's POSTs) -> webhook messages",
            f"{hooks['writes']:,} -> {hooks['messages']:,} messages x"
            f" {hooks['endpoints']} endpoints",
        ),
        (
            "webhook backlog when load stopped",
            f"{hooks['backlog_at_stop']:,} deliveries ({hooks['messages_waiting_at_stop']:,}"
            " messages)",
        ),
        (
            "backlog drained",
            f"{'yes' if hooks['drained'] else '**NO**'} in {hooks['drain_s']:.1f} s;"
            f" left {hooks['backlog_end']:,}; failed {hooks['failed']}",
        ),
        (
            "deliveries/s",
            f"{hooks['deliveries_per_s']:,.1f} over load + drain"
            f" ({hooks['delivered']:,} delivered, {hooks['received']:,} received); draining"
            f" the backlog: {fmt(hooks['drain_deliveries_per_s'], 1)}/s",
        ),
        (
            "delivery lag (write commit -> delivered) p50 / p99 / max",
            f"{fmt(hooks['lag_p50_ms'])} / {fmt(hooks['lag_p99_ms'])} / {fmt(hooks['lag_max_ms'])}"
            " ms",
        ),
    ]
    probe = result.get("probe", {})
    for kind in Probe.ROTATION:
        p = probe.get(kind)
        if p and p["n"]:
            rows.append(
                (
                    f"probe beside wrk: {kind} p50 / p99 / max",
                    f"{p['p50_ms']:,.1f} / {p['p99_ms']:,.1f} / {p['max_ms']:,.0f} ms (n={p['n']})",
                )
            )
    lines = ["| figure | value |", "|---|---|"]
    lines += [f"| {a} | {b} |" for a, b in rows]
    if result.get("intervals"):
        lines += [
            "",
            "| interval | req/s | p50 ms | p99 ms | p99.9 ms | errors | server RSS"
            " end / peak MB | webhook workers RSS end MB | backlog at end |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for i, r in enumerate(result["intervals"], 1):
            lines.append(
                f"| {i} | {r['rps']:,.0f} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f}"
                f" | {r['p999_ms']:.1f} | {r['errors']} | {r['rss_end']['server_tree_mb']:.0f}"
                f" / {r['rss_peak'].get('server_tree_mb', 0):.0f}"
                f" | {r['rss_end']['webhook_workers_mb']:.0f} | {r['backlog_end']:,} |"
            )
        drift = result["drift"]
        lines += [
            "",
            f"| drift check (last interval vs interval {drift['reference']}) | reference | last"
            " | limit | ok |",
            "|---|---:|---:|---:|---|",
        ]
        rate = drift["server_rss_mb_per_interval_after_reference"]
        for c in drift["checks"]:
            lines.append(
                f"| {c['what']} | {c.get('ref', '-')} | {c.get('last', '-')} |"
                f" {c.get('limit', '-')} | {'yes' if c['ok'] else '**NO**'} |"
            )
        lines += ["", f"Server RSS after the reference interval: {rate:+.1f} MB per interval."]
    return "\n".join(lines)


# ---------------------------------------------------------------- main


def env_pair(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    return name, value


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.load",
        description="Load (and soak) test the service as deployed on a scratch PostgreSQL"
        " database: uvicorn with 2 workers, separate webhook worker processes delivering to a"
        " local receiver, and wrk driving a realistic read/write mix. Exits non-zero on any"
        " error, an undrained webhook backlog, or (with --soak) drift. Progress on stderr;"
        " table and one-line summary on stdout; JSON in bench/out/.",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="validate the tool: 10,000 events, a 10 s run after a 2 s warm-up (explicit"
        " --events/--duration still win)",
    )
    parser.add_argument(
        "--events",
        type=int,
        metavar="N",
        help="synthetic events generated with bench.synth, plus the seed (default 100000)",
    )
    parser.add_argument(
        "--duration",
        type=float,
        metavar="S",
        help="length of the measured run in seconds (default 60; 10 with --quick); ignored"
        " with --soak",
    )
    parser.add_argument(
        "--warmup",
        type=float,
        metavar="S",
        help="unmeasured run before the measured one, in seconds (default 5; 2 with --quick;"
        " none with --soak, whose first interval is the warm-up)",
    )
    parser.add_argument(
        "--soak",
        type=float,
        nargs="?",
        const=30.0,
        metavar="MINUTES",
        help="soak mode: run the mix for MINUTES (default 30) in intervals of --interval,"
        " report each interval, and check that memory and latency do not drift (see"
        " --max-rss-growth, --max-p99-growth)",
    )
    parser.add_argument(
        "--interval",
        type=float,
        default=60.0,
        metavar="S",
        help="soak interval in seconds (default 60); each is one wrk run with its own percentiles",
    )
    parser.add_argument(
        "--max-rss-growth",
        type=float,
        default=10.0,
        metavar="PCT",
        help="soak: most the server's and the webhook workers' RSS may grow from the end of"
        " the reference interval (one third of the way in, at least the second) to the end of"
        " the last (default 10)",
    )
    parser.add_argument(
        "--max-p99-growth",
        type=float,
        default=50.0,
        metavar="PCT",
        help="soak: most the p99 latency may grow from the reference interval to the last,"
        " plus 5 ms (default 50; the machine is shared, so latency is noisy)",
    )
    parser.add_argument(
        "--connections",
        type=int,
        default=16,
        metavar="C",
        help="concurrent wrk connections (default 16)",
    )
    parser.add_argument(
        "--rate",
        type=float,
        metavar="R",
        help="offer at most about R requests/s in total (each connection pauses a random time of"
        " mean C/R s before each request) instead of as many as the server answers; latency"
        " then shows service time rather than queueing (default: unthrottled)",
    )
    parser.add_argument(
        "--threads", type=int, default=2, metavar="T", help="wrk threads (default 2)"
    )
    parser.add_argument(
        "--mix",
        default=DEFAULT_MIX,
        metavar="SPEC",
        help="weights of the request kinds (default %(default)s): timeline queries, single"
        " event reads, CSV/ICS exports, POST and PATCH of events",
    )
    parser.add_argument(
        "--patch-events",
        type=int,
        default=600,
        metavar="K",
        help="events each wrk run may PATCH (default 600); a wrk thread never has two PATCHes"
        " of one event in flight and follows its ETags, so a small K (e.g. 4) edits the same"
        " events over and over and checks the If-Match chain",
    )
    parser.add_argument(
        "--server-workers",
        type=int,
        default=2,
        metavar="W",
        help="uvicorn worker processes (default 2, as the Dockerfile's WEB_CONCURRENCY)",
    )
    parser.add_argument(
        "--webhook-workers",
        type=int,
        default=2,
        metavar="W",
        help="separate `python -m app.webhooks.worker` processes (default 2)",
    )
    parser.add_argument(
        "--endpoints",
        type=int,
        default=2,
        metavar="E",
        help="webhook endpoints subscribed to event.* (each write fans out to E deliveries;"
        " default 2)",
    )
    parser.add_argument(
        "--server-env",
        action="append",
        default=[],
        type=env_pair,
        metavar="NAME=VALUE",
        help="an extra setting for the API server's environment, for what-if runs (e.g."
        " RESPONSE_CACHE_SIZE=0 or DB_POOL_SIZE=8); repeat for several; default: none, the"
        " service's own defaults",
    )
    parser.add_argument(
        "--drain-timeout",
        type=float,
        default=120.0,
        metavar="S",
        help="how long the webhook backlog may take to drain after the load (default 120)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=10.0,
        metavar="S",
        help="wrk request timeout; a slower answer is an error (default 10)",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=42,
        help="seed of the synthetic data and of the query plan (default 42)",
    )
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("BENCH_POSTGRES_URL", PG_SERVER),
        metavar="URL",
        help="PostgreSQL server; a scratch database dtl_load_<time>_<random> is created on it"
        " and dropped at the end (default %(default)s)",
    )
    args = parser.parse_args(argv)
    args.events = args.events or (10_000 if args.quick else 100_000)
    args.duration = args.duration or (10.0 if args.quick else 60.0)
    if args.warmup is None:
        args.warmup = 0.0 if args.soak else (2.0 if args.quick else 5.0)
    weights = dict(re.findall(r"(\w+)=(\d+(?:\.\d+)?)", args.mix))
    if not weights or set(weights) - set(KINDS):
        parser.error(f"--mix: give weights for {', '.join(KINDS)}, e.g. {DEFAULT_MIX}")
    if args.events < 1000 or args.connections < 1 or args.endpoints < 1:
        parser.error("need --events >= 1000, --connections >= 1, --endpoints >= 1")
    if args.soak is not None and args.soak * 60 < 3 * args.interval:
        parser.error(
            "--soak needs at least 3 intervals (the first warms up, the second is the reference)"
        )
    return args


def _terminate(signum: int, frame: FrameType | None) -> None:
    # SIGTERM unwinds like Ctrl-C, so the scratch database and the processes are cleaned up.
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if shutil.which("wrk") is None:
        raise SystemExit("bench.load: wrk is not installed (apt-get install wrk)")
    signal.signal(signal.SIGTERM, _terminate)
    t_start = time.monotonic()
    stamp = time.strftime("%Y%m%d-%H%M%S")
    opts = Options(args.connections, args.threads, args.mix, args.timeout, args.rate)
    mode = "soak" if args.soak else "load"
    result: dict[str, Any] = {
        "when": stamp,
        "mode": mode,
        "events": args.events,
        "seed": args.seed,
        "options": {**vars(args), "connections": opts.connections, "threads": opts.threads},
        "machine": machine(),
    }
    workers: list[WorkerProcess] = []
    receiver = Receiver()
    say(f"receiver: {receiver.url}")
    try:
        with scratch_database(args.postgres_url, args.events, args.seed) as url:
            admin_token, editor_token = make_keys(url)
            server = api_server(url, args.server_workers, dict(args.server_env))
            with server.running():
                say(f"server: {' '.join(server.cmd[1:])} (WEBHOOK_WORKER=off)")
                endpoints = subscribe(server, admin_token, receiver.url, args.endpoints)
                try:
                    for i in range(args.webhook_workers):
                        workers.append(WorkerProcess(url, f"load-{i}", []))
                    say(f"webhooks: {len(endpoints)} endpoints, {len(workers)} worker processes")
                    plan = build_plan(
                        url, server, args.events, args.seed, 400, args.patch_events * PATCH_SLICES
                    )
                    db = Db(url)
                    try:
                        measured = drive(
                            args, opts, server, plan, db, editor_token, workers, receiver, result
                        )
                    finally:
                        db.close()
                finally:
                    # Before the database is dropped, so they stop cleanly.
                    for w in workers:
                        w.stop()
    except KeyboardInterrupt:
        say("bench.load: interrupted; cleaned up")
        return 130
    finally:
        receiver.close()

    table = render(result)
    print(table)
    result["table_markdown"] = table
    result["seconds"] = round(time.monotonic() - t_start, 1)
    OUT.mkdir(parents=True, exist_ok=True)
    out_file = OUT / f"{mode}-{stamp}.json"
    out_file.write_text(json.dumps(result, indent=1, default=str))
    hooks = result["webhooks"]
    failures = []
    if measured["errors"]:
        failures.append(f"{measured['errors']} errors")
    if not hooks["drained"]:
        failures.append(f"backlog of {hooks['backlog_end']} not drained")
    if hooks["failed"]:
        failures.append(f"{hooks['failed']} failed deliveries")
    if result.get("drift") and not result["drift"]["ok"]:
        failures.append("drift")
    print(
        f"bench.load {mode}: {args.events:,} events, {measured['rps']:,.0f} req/s,"
        f" p50 {measured['p50_ms']:.1f} ms, p99 {measured['p99_ms']:.1f} ms,"
        f" p99.9 {measured['p999_ms']:.1f} ms, {measured['errors']} errors,"
        f" server RSS peak {fmt(result['rss_peak']['server_tree_mb'])} MB, webhook backlog"
        f" {hooks['backlog_at_stop']} drained in {hooks['drain_s']:.1f} s"
        f" ({hooks['deliveries_per_s']:,.0f} deliveries/s); "
        + ("FAILED: " + ", ".join(failures) if failures else "OK")
        + f"; {out_file.relative_to(ROOT)}"
    )
    return 1 if failures else 0


def drive(
    args: argparse.Namespace,
    opts: Options,
    server: Server,
    plan: Plan,
    db: Db,
    token: str,
    workers: list[WorkerProcess],
    receiver: Receiver,
    result: dict[str, Any],
) -> dict[str, Any]:
    """Warm up, run the load (or the soak intervals), then wait for the webhooks to drain."""
    assert server.proc is not None  # noqa: S101 - running
    sampler = Sampler(server.proc.pid, [w.proc.pid for w in workers]).start()
    probe: Probe | None = None
    run = 0
    try:
        if args.warmup:
            say(f"warm-up: {args.warmup:g} s")
            run_wrk(server, plan, db, token, opts, args.warmup, run)
            run += 1
            wait_idle(server.proc.pid, limit=30)
        before = db.outbox()
        messages_before = db.one("SELECT count(*) FROM webhook_message")[0]
        started_at = db.one("SELECT now()")[0]
        t0 = time.monotonic()
        sampler.take()
        probe = Probe(server, plan, token).start()
        if args.soak:
            n = max(3, round(args.soak * 60 / args.interval))
            say(f"soak: {n} intervals of {args.interval:g} s, {opts.connections} connections")
            intervals = []
            for i in range(n):
                r = run_wrk(server, plan, db, token, opts, args.interval, run)
                run += 1
                r["rss_end"] = {k: round(v, 1) for k, v in sampler.now().items()}
                r["rss_peak"] = {k: max(v, r["rss_end"][k]) for k, v in sampler.take().items()}
                r["backlog_end"] = db.outbox()["backlog"]
                intervals.append(r)
                say(
                    f"  interval {i + 1}/{n}: {r['rps']:,.0f} req/s, p50 {r['p50_ms']:.1f} ms,"
                    f" p99 {r['p99_ms']:.1f} ms, p99.9 {r['p999_ms']:.1f} ms, errors"
                    f" {r['errors']}, server RSS {r['rss_end']['server_tree_mb']:.0f} MB,"
                    f" webhook workers {r['rss_end']['webhook_workers_mb']:.0f} MB, backlog"
                    f" {r['backlog_end']}"
                )
            result["intervals"] = intervals
            result["drift"] = judge_drift(intervals, args.max_rss_growth, args.max_p99_growth)
            measured = combine(intervals)
        else:
            say(f"load: {args.duration:g} s, {opts.connections} connections, mix {opts.mix}")
            measured = run_wrk(server, plan, db, token, opts, args.duration, run)
        t_stop = time.monotonic()
        result["probe"] = probe.stop()
        measured["errors"] += len(result["probe"]["errors"])
        measured["error_samples"] += result["probe"]["errors"][:4]
        say(
            f"  {measured['rps']:,.0f} req/s, p50 {measured['p50_ms']:.1f} ms, p99"
            f" {measured['p99_ms']:.1f} ms, p99.9 {measured['p999_ms']:.1f} ms, errors"
            f" {measured['errors']}"
        )
        for sample in measured["error_samples"][:5]:
            say(f"  error: {sample[:200]}")
        at_stop = db.outbox()
        # The server may still be answering requests wrk gave up on; they can write too.
        wait_idle(server.proc.pid, limit=30)
        say(f"webhooks: backlog {at_stop['backlog']} at stop; draining")
        deadline = time.monotonic() + args.drain_timeout
        now = db.outbox()
        while now["backlog"] and time.monotonic() < deadline:
            time.sleep(0.25)
            now = db.outbox()
        t_drained = time.monotonic()
        messages_after = db.one("SELECT count(*) FROM webhook_message")[0]
        lag = db.one(
            "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY s),"
            " percentile_cont(0.99) WITHIN GROUP (ORDER BY s), max(s) FROM ("
            "SELECT extract(epoch FROM completed_at - created_at) * 1000 AS s"
            " FROM webhook_delivery WHERE status = 'succeeded' AND created_at >= %s) AS d",
            (started_at,),
        )
        result["rss_peak"] = {k: round(v, 1) for k, v in sampler.overall.items()}
        result["rss_hwm"] = sampler.high_water_marks()
    finally:
        sampler.stop()
        if probe is not None:
            probe.stop_event.set()
    delivered = now.get("succeeded", 0) - before.get("succeeded", 0)
    sent = measured["sent"]
    with receiver.cond:
        received = sum(len(v) for v in receiver.times.values())
    result["measured"] = measured
    result["webhooks"] = {
        "endpoints": args.endpoints,
        "writes": sent.get("post", 0) + sent.get("patch", 0) + result["probe"]["post"]["n"],
        "messages": messages_after - messages_before,
        "outbox_before": before,
        "outbox_at_stop": at_stop,
        "outbox_end": now,
        "backlog_at_stop": at_stop["backlog"],
        "messages_waiting_at_stop": at_stop["messages_waiting"],
        "backlog_end": now["backlog"],
        "drained": now["backlog"] == 0,
        "drain_s": round(t_drained - t_stop, 2),
        "delivered": delivered,
        "failed": now.get("failed", 0),
        "received": received,
        "deliveries_per_s": round(delivered / max(t_drained - t0, 1e-9), 1),
        "drain_deliveries_per_s": round(at_stop["backlog"] / (t_drained - t_stop), 1)
        if at_stop["backlog"] and now["backlog"] == 0
        else None,
        # commit -> delivered (the delivery row is written in the write's transaction)
        "lag_p50_ms": None if lag[0] is None else round(float(lag[0]), 1),
        "lag_p99_ms": None if lag[1] is None else round(float(lag[1]), 1),
        "lag_max_ms": None if lag[2] is None else round(float(lag[2]), 1),
    }
    say(
        f"webhooks: {'drained' if now['backlog'] == 0 else 'NOT drained'} in"
        f" {t_drained - t_stop:.1f} s; {delivered:,} delivered"
    )
    return measured


def combine(intervals: list[dict[str, Any]]) -> dict[str, Any]:
    """The whole soak as one figure: sums, and for percentiles the worst interval's."""
    out: dict[str, Any] = {"sent": {}, "statuses": {}, "error_samples": []}
    for r in intervals:
        for k in ("sent", "statuses"):
            for key, v in r[k].items():
                out[k][key] = out[k].get(key, 0) + v
        out["error_samples"] += r["error_samples"]
    for k in ("requests", "duration_us", "bytes", "errors"):
        out[k] = sum(r[k] for r in intervals)
    out["rps"] = out["requests"] / (out["duration_us"] / 1e6)
    for k in ("p50_ms", "p90_ms", "p99_ms", "p999_ms", "max_ms"):
        out[k] = max(r[k] for r in intervals)
    out["p50_median_ms"] = statistics.median(r["p50_ms"] for r in intervals)
    return out


if __name__ == "__main__":
    raise SystemExit(main())
