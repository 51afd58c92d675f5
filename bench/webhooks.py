"""Webhook delivery benchmark (issue 4 "Benchmark", issue 7 targets); see bench/README.md.

    python -m bench.webhooks [--deliveries N] [--workers W] [--database-url URL] [--runs R]

On a fresh migrated and seeded database it subscribes one endpoint to a fast local receiver
(bench/webhook_peers.py, its own process), fills the outbox through the real write path
(`app.events.service.create`, so `revisions.record` -> `webhooks.service.emit_revision` writes
the message and delivery rows exactly as an API write does), then measures, every run:

1. throughput: N queued deliveries drained by W `python -m app.webhooks.worker` processes,
   first to last receipt at the receiver; and in the same run a bare `httpx.Client` posting the
   same N bodies to the same receiver with the worker's concurrency (the ratio is the headline);
2. idle latency, commit -> receipt: one event created and committed at a time, waiting for its
   delivery before the next, with (a) the embedded worker (a thread of this process, woken by
   the commit) and (b) one separate worker process (which polls).

Every webhook-id must arrive exactly once. Progress goes to stderr; the table, then a one-line
summary, to stdout; raw figures to bench/out/webhooks-<time>.json.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
LOGS = OUT / "logs"
PYTHON = sys.executable
LOCAL = "127.0.0.0/8"
TARGET_RATE = 1000.0  # deliveries/s per worker process (issue 7)
TARGET_P50_MS = 50.0  # commit -> receipt when idle (issue 7)
BATCH = 50  # events per transaction while filling the outbox for the throughput runs


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- the receiver


class Receiver:
    """The receiver process and a thread reading its `<webhook-id> <monotonic>` lines."""

    def __init__(self) -> None:
        self.times: dict[str, list[float]] = {}
        self.cond = threading.Condition()
        self.proc = subprocess.Popen(  # noqa: S603
            [PYTHON, "-m", "bench.webhook_peers", "receiver"],
            cwd=ROOT,
            stdout=subprocess.PIPE,
        )
        assert self.proc.stdout is not None  # noqa: S101
        ready = self.proc.stdout.readline().split()
        if ready[:1] != [b"ready"]:
            self.proc.kill()
            raise RuntimeError(f"receiver did not start: {ready!r}")
        self.url = f"http://127.0.0.1:{int(ready[1])}/hook"
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None  # noqa: S101
        for line in self.proc.stdout:
            wid, at = line.split()
            with self.cond:
                self.times.setdefault(wid.decode(), []).append(float(at))
                self.cond.notify_all()

    def wait_all(self, ids: list[str], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self.cond:
            return self.cond.wait_for(
                lambda: all(i in self.times for i in ids), deadline - time.monotonic()
            )

    def first(self, wid: str, timeout: float) -> float | None:
        with self.cond:
            if self.cond.wait_for(lambda: wid in self.times, timeout):
                return self.times[wid][0]
        return None

    def span(self, ids: list[str]) -> tuple[float, float]:
        with self.cond:
            stamps = [self.times[i][0] for i in ids]
        return min(stamps), max(stamps)

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


# ---------------------------------------------------------------- the database


@contextlib.contextmanager
def fresh_database(server: str | None) -> Iterator[str]:
    """A migrated, seeded database of our own: a temp SQLite file, or a throwaway PostgreSQL
    database created on `server` and dropped (WITH (FORCE)) afterwards."""
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from app.config import PROJECT_ROOT, normalise_database_url
    from app.db import create_db_engine, create_session_factory
    from app.seed import load

    tmp = Path(tempfile.mkdtemp(prefix="bench-webhooks-"))
    admin = None
    name = ""
    if server and not server.startswith("sqlite"):
        server = normalise_database_url(server)
        name = f"dtl_bench_webhooks_{uuid.uuid4().hex[:8]}"
        admin = create_engine(
            make_url(server).set(database="postgres"), isolation_level="AUTOCOMMIT"
        )
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        url = make_url(server).set(database=name).render_as_string(hide_password=False)
    else:
        url = f"sqlite:///{tmp / 'webhooks.db'}"
    try:
        say(f"database: migrating and seeding {url.split('@')[-1]}")
        config = Config(str(PROJECT_ROOT / "alembic.ini"))
        config.attributes["database_url"] = url
        command.upgrade(config, "head")
        engine = create_db_engine(url)
        with create_session_factory(engine)() as session:
            load(session, PROJECT_ROOT / "seed", progress=lambda _: None)
            session.commit()
        engine.dispose()
        yield url
    finally:
        if admin is not None:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()
        shutil.rmtree(tmp, ignore_errors=True)


def event_input(event_id: str) -> Any:
    from app.events.schemas import EventCreate

    return EventCreate.model_validate(
        {
            "id": event_id,
            "kind": "incident",
            "category": "shoot_down",
            "date": "2025-04-01",
            "date_precision": "day",
            "title": f"Benchmark incident {event_id}",
            "summary": "Written by bench.webhooks to fill the outbox through the real write path."
            " " + "x" * 200,
            "participants": [
                {"state": "DZA", "role": "initiator"},
                {"state": "MLI", "role": "target"},
            ],
            "sources": [{"url": f"https://example.org/bench/{event_id}", "publisher": "Bench"}],
            "tags": ["webhook-bench"],
        }
    )


class Db:
    def __init__(self, url: str) -> None:
        from app import writes
        from app.db import create_db_engine

        self.url = url
        self.engine = create_db_engine(url)
        self.factory = writes.session_factory(self.engine)

    def create_events(self, ids: list[str], per_transaction: int) -> None:
        """Through the service layer, as POST /v1/events does (one revision, one message and one
        delivery per event); `per_transaction` events share a commit."""
        from app.db import begin_write
        from app.events import service as events

        for start in range(0, len(ids), per_transaction):
            with self.factory() as session:
                begin_write(session)
                for event_id in ids[start : start + per_transaction]:
                    events.create(session, event_input(event_id), actor="bench.webhooks")
                session.commit()

    def messages(self, event_ids: list[str]) -> list[tuple[str, str]]:
        """(webhook-id, body) of the messages the events produced, in event order."""
        from sqlalchemy import select

        from app.models import WebhookMessage as M

        with self.factory() as session:
            rows = session.execute(
                select(M.resource_key, M.id, M.payload).where(M.resource_key.in_(event_ids))
            ).all()
        by_key = {r.resource_key: (r.id, r.payload) for r in rows}
        return [by_key[e] for e in event_ids]

    def statuses(self, message_ids: list[str]) -> dict[str, int]:
        from sqlalchemy import func, select

        from app.models import WebhookDelivery as D

        found: dict[str, int] = {}
        with self.factory() as session:
            for start in range(0, len(message_ids), 500):
                chunk = message_ids[start : start + 500]
                for status, n in session.execute(
                    select(D.status, func.count()).where(D.message_id.in_(chunk)).group_by(D.status)
                ):
                    found[status] = found.get(status, 0) + n
        return found

    def all_message_ids(self) -> list[str]:
        from sqlalchemy import select

        from app.models import WebhookMessage as M

        with self.factory() as session:
            return list(session.scalars(select(M.id)))

    def close(self) -> None:
        self.engine.dispose()


def subscribe(db: Db, receiver_url: str) -> str:
    from app.auth.service import Caller, Scope, create_key
    from app.webhooks import service
    from app.webhooks.schemas import EndpointCreate

    with db.factory.begin() as session:
        key, _token = create_key(session, "bench-webhooks", [Scope.webhooks])
        caller = Caller(key.id, key.name, frozenset({Scope.webhooks.value}))
        endpoint, _secret = service.create_endpoint(
            session,
            EndpointCreate(url=receiver_url, event_types=["event.*"]),
            caller,
            allowed_subnets=[LOCAL],
        )
        return endpoint.id


# ---------------------------------------------------------------- workers


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class WorkerProcess:
    """`python -m app.webhooks.worker` as deployed: configuration from the environment."""

    def __init__(self, url: str, name: str, extra: list[str]) -> None:
        LOGS.mkdir(parents=True, exist_ok=True)
        self.log_path = LOGS / f"webhook-worker-{name}.log"
        env = {
            **os.environ,
            "DATABASE_URL": url,
            "WEBHOOK_ALLOWED_SUBNETS": LOCAL,
            "WEBHOOK_WORKER": "off",
        }
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(  # noqa: S603
                [PYTHON, "-m", "app.webhooks.worker", "--quiet", "--id", name, *extra],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 60
        while b"started" not in self.log_path.read_bytes():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"worker did not start:\n{self.log_path.read_text()[-2000:]}")
            time.sleep(0.01)
        self.cpu_at_start = cpu_seconds(self.proc.pid)

    def cpu(self) -> float:
        return cpu_seconds(self.proc.pid) - self.cpu_at_start

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def drain_in_process(settings: Any, factory: Any) -> None:
    """Deliver what is queued (the endpoint's ping) with the Worker class, before measuring."""
    from app.webhooks.worker import make_worker

    worker = make_worker(settings, factory)
    try:
        while worker.run_once():
            pass
    finally:
        worker.close()
        worker.client.close()


# ---------------------------------------------------------------- measurements


def throughput(
    db: Db, receiver: Receiver, n: int, workers: int, concurrency: int, tag: str
) -> dict[str, Any]:
    event_ids = [f"2025-04-01-bench-{tag}-{i:06d}" for i in range(n)]
    t0 = time.monotonic()
    db.create_events(event_ids, BATCH)
    enqueue_s = time.monotonic() - t0
    messages = db.messages(event_ids)
    ids = [m[0] for m in messages]
    say(f"  {tag}: queued {n} deliveries in {enqueue_s:.1f} s; starting {workers} worker(s)")

    procs = [WorkerProcess(db.url, f"{tag}-w{i}", []) for i in range(workers)]
    try:
        if not receiver.wait_all(ids, timeout=max(120.0, n / 20)):
            raise RuntimeError(f"{tag}: not every delivery arrived in time")
        cpu = sum(p.cpu() for p in procs)
    finally:
        for p in procs:
            p.stop()
    first, last = receiver.span(ids)
    rate = (n - 1) / (last - first)
    statuses = db.statuses(ids)
    if statuses != {"succeeded": n}:
        raise RuntimeError(f"{tag}: delivery states {statuses}, expected {n} succeeded")

    # The ceiling, same run: the same bodies, the same receiver, the worker's concurrency.
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as fh:
        json.dump([[f"bare-{tag}-{i}", body] for i, (_, body) in enumerate(messages)], fh)
    try:
        done = subprocess.run(  # noqa: S603
            [PYTHON, "-m", "bench.webhook_peers", "bare", receiver.url, fh.name, str(concurrency)],
            cwd=ROOT,
            check=True,
            stdout=subprocess.PIPE,
        )
    finally:
        os.unlink(fh.name)
    bare_report = json.loads(done.stdout)
    bare_ids = [f"bare-{tag}-{i}" for i in range(n)]
    if bare_report["bad"] or not receiver.wait_all(bare_ids, timeout=30):
        raise RuntimeError(f"{tag}: bare client failed: {bare_report}")
    b_first, b_last = receiver.span(bare_ids)
    bare_rate = (n - 1) / (b_last - b_first)
    result = {
        "deliveries": n,
        "workers": workers,
        "enqueue_seconds": round(enqueue_s, 2),
        "rate": round(rate, 1),
        "rate_per_worker": round(rate / workers, 1),
        "worker_cpu_ms_per_delivery": round(1000 * cpu / n, 3),
        "bare_rate": round(bare_rate, 1),
        "ratio": round(rate / workers / bare_rate, 3),
        "loadavg": os.getloadavg()[0],
    }
    say(
        f"  {tag}: {rate / workers:,.0f} deliveries/s per worker ({rate:,.0f} total),"
        f" bare httpx {bare_rate:,.0f}/s, ratio {result['ratio']:.3f},"
        f" worker CPU {result['worker_cpu_ms_per_delivery']:.2f} ms/delivery"
    )
    return result


def latency(
    db: Db, receiver: Receiver, samples: int, tag: str, rng: random.Random, poll: float
) -> list[float]:
    """Create one event, commit, wait for its delivery; idle gaps in between. Milliseconds from
    just before `commit()` (so the commit itself is counted) to the receipt.

    The gap is random over one poll interval, so commits land at a uniformly random phase of a
    polling worker's sleep (as independent edits would) rather than in step with it."""
    from app.db import begin_write
    from app.events import service as events

    out = []
    for i in range(samples):
        time.sleep(0.05 + rng.uniform(0, poll))
        event_id = f"2025-04-01-bench-{tag}-{i:04d}"
        with db.factory() as session:
            begin_write(session)
            events.create(session, event_input(event_id), actor="bench.webhooks")
            t0 = time.monotonic()
            session.commit()
        (message_id, _body) = db.messages([event_id])[0]
        at = receiver.first(message_id, timeout=30)
        if at is None:
            raise RuntimeError(f"{tag}: {message_id} never arrived")
        out.append((at - t0) * 1000)
    return out


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def spread(values: list[float]) -> dict[str, float]:
    return {
        "median": round(statistics.median(values), 3),
        "min": round(min(values), 3),
        "max": round(max(values), 3),
    }


def fmt(s: dict[str, float], digits: int = 0) -> str:
    return f"{s['median']:,.{digits}f} [{s['min']:,.{digits}f}-{s['max']:,.{digits}f}]"


# ---------------------------------------------------------------- main


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.webhooks",
        description="Benchmark webhook delivery: deliveries/s per worker process against a bare"
        " httpx client in the same run, and commit -> receipt latency when idle for the embedded"
        " worker and a separate worker process. Uses a fresh migrated database and a local"
        " receiver process; progress on stderr, table and one-line summary on stdout, JSON in"
        " bench/out/.",
    )
    parser.add_argument(
        "--deliveries",
        type=int,
        default=2000,
        metavar="N",
        help="deliveries queued (one event created through the service layer each) and drained"
        " per throughput run (default 2000)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        metavar="W",
        help="`python -m app.webhooks.worker` processes draining the queue at once; the figure"
        " is divided by W (default 1; on SQLite the project supports only one)",
    )
    parser.add_argument(
        "--database-url",
        metavar="URL",
        help="a PostgreSQL server URL (e.g. postgresql://postgres@127.0.0.1:5432/postgres): a"
        " throwaway database is created on it and dropped afterwards. Default: a temporary"
        " SQLite file",
    )
    parser.add_argument(
        "--runs",
        type=int,
        default=2,
        metavar="R",
        help="repetitions of every figure; medians and [min-max] are reported (default 2)",
    )
    parser.add_argument(
        "--samples",
        type=int,
        default=60,
        metavar="K",
        help="commits per latency run, each waited for before the next (default 60)",
    )
    parser.add_argument(
        "--poll-interval",
        type=float,
        metavar="S",
        help="pass --poll-interval S to the separate latency worker (default: not passed, so"
        " WEBHOOK_POLL_INTERVAL or 0.05 s, as deployed); for what-if measurements",
    )
    parser.add_argument(
        "--skip-latency", action="store_true", help="measure throughput only (quicker)"
    )
    args = parser.parse_args(argv)
    if args.deliveries < 2 or args.workers < 1 or args.runs < 1 or args.samples < 2:
        parser.error("need --deliveries >= 2, --workers >= 1, --runs >= 1, --samples >= 2")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    os.environ.setdefault("WEBHOOK_WORKER", "off")
    from app.config import Settings
    from app.webhooks.worker import EmbeddedWorker

    started = dt.datetime.now(dt.UTC)
    rng = random.Random(7)
    runs: list[dict[str, Any]] = []
    embedded: list[list[float]] = []
    separate: list[list[float]] = []
    receiver = Receiver()
    say(f"receiver: {receiver.url}")
    try:
        with fresh_database(args.database_url) as url:
            dialect = "postgresql" if url.startswith("postgresql") else "sqlite"
            settings = Settings(
                database_url=url,
                cursor_secret="bench-cursor-secret",  # noqa: S106 - benchmark cursors only
                webhook_worker="off",
                webhook_allowed_subnets=[LOCAL],
            )
            db = Db(url)
            try:
                endpoint = subscribe(db, receiver.url)
                drain_in_process(settings, db.factory)
                say(f"endpoint {endpoint} -> {receiver.url} (ping delivered)")
                poll = args.poll_interval or settings.webhook_poll_interval
                for r in range(args.runs):
                    say(f"run {r + 1}/{args.runs} on {dialect}")
                    runs.append(
                        throughput(
                            db,
                            receiver,
                            args.deliveries,
                            args.workers,
                            settings.webhook_concurrency,
                            f"r{r}-tp",
                        )
                    )
                    if args.skip_latency:
                        continue
                    worker = EmbeddedWorker(
                        settings.model_copy(update={"webhook_worker": "embedded"})
                    ).start()
                    try:
                        embedded.append(latency(db, receiver, args.samples, f"r{r}-emb", rng, poll))
                    finally:
                        worker.stop()
                    say(f"  embedded: p50 {pct(embedded[-1], 0.5):.1f} ms")
                    extra = [] if args.poll_interval is None else ["--poll-interval"]
                    extra += [] if args.poll_interval is None else [str(args.poll_interval)]
                    proc = WorkerProcess(url, f"r{r}-sep", extra)
                    try:
                        separate.append(latency(db, receiver, args.samples, f"r{r}-sep", rng, poll))
                    finally:
                        proc.stop()
                    say(f"  separate process: p50 {pct(separate[-1], 0.5):.1f} ms")
                # Exactly once: every message of the run reached the receiver one time, and
                # nothing else did (bare-* ids are the bare client's own).
                wanted = set(db.all_message_ids())
                with receiver.cond:
                    seen = {k: len(v) for k, v in receiver.times.items()}
                ours = {k: v for k, v in seen.items() if not k.startswith("bare-")}
                # (bare-warmup is the bare client's one warm-up request per run.)
                dupes = {k: v for k, v in seen.items() if v != 1 and k != "bare-warmup"}
                missing = wanted - ours.keys()
                unknown = ours.keys() - wanted
                exactly_once = not (dupes or missing or unknown)
                check = (
                    f"{len(wanted)} webhook-ids, each received once"
                    if exactly_once
                    else f"VIOLATED: {len(dupes)} duplicated, {len(missing)} missing,"
                    f" {len(unknown)} unknown webhook-ids"
                )
                say(f"exactly once: {check}")
            finally:
                db.close()
    finally:
        receiver.close()

    table = summarise(args, dialect, runs, embedded, separate, check)
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"webhooks-{dialect}-{started:%Y%m%d-%H%M%S}.json"
    path.write_text(
        json.dumps(
            {
                "started": started.isoformat(),
                "args": vars(args),
                "database": dialect,
                "machine": {
                    "cpus": os.cpu_count(),
                    "python": platform.python_version(),
                    "platform": platform.platform(),
                    "loadavg_end": os.getloadavg(),
                },
                "targets": {"rate_per_worker": TARGET_RATE, "p50_ms": TARGET_P50_MS},
                "throughput_runs": runs,
                "latency_ms": {"embedded": embedded, "separate": separate},
                "table": table,
                "exactly_once": exactly_once,
                "exactly_once_check": check,
            },
            indent=2,
        )
    )
    say(f"wrote {path.relative_to(ROOT)}")
    return 0 if exactly_once else 1


def summarise(
    args: argparse.Namespace,
    dialect: str,
    runs: list[dict[str, Any]],
    embedded: list[list[float]],
    separate: list[list[float]],
    check: str,
) -> dict[str, Any]:
    rate = spread([r["rate_per_worker"] for r in runs])
    bare = spread([r["bare_rate"] for r in runs])
    ratio = spread([r["ratio"] for r in runs])
    cpu = spread([r["worker_cpu_ms_per_delivery"] for r in runs])
    table: dict[str, Any] = {"rate_per_worker": rate, "bare_rate": bare, "ratio": ratio}
    table["worker_cpu_ms_per_delivery"] = cpu
    rows = [
        (
            f"deliveries/s per worker process (W={args.workers})",
            fmt(rate),
            f">= {TARGET_RATE:,.0f}",
            "met" if rate["median"] >= TARGET_RATE else "MISSED",
        ),
        ("bare httpx.Client, same bodies, 8 threads", fmt(bare), "", ""),
        ("ratio ours / bare", fmt(ratio, 3), "", ""),
        ("worker CPU per delivery, ms", fmt(cpu, 2), "", ""),
    ]
    for name, samples in (("embedded worker", embedded), ("separate worker", separate)):
        if not samples:
            continue
        p50 = spread([pct(s, 0.5) for s in samples])
        p99 = spread([pct(s, 0.99) for s in samples])
        table[f"{name} p50_ms"], table[f"{name} p99_ms"] = p50, p99
        met = "met" if p50["median"] <= TARGET_P50_MS else "MISSED"
        rows.append((f"commit -> receipt p50, {name}, ms", fmt(p50, 1), "<= 50", met))
        rows.append((f"commit -> receipt p99, {name}, ms", fmt(p99, 1), "", ""))
    print(f"\nWebhook delivery on {dialect}, {len(runs)} runs, median [min-max]:\n")
    print(f"| {'figure':<46} | {'measured':<26} | {'target':<8} |        |")
    print(f"|{'-' * 48}|{'-' * 28}|{'-' * 10}|--------|")
    for name, value, target, met in rows:
        print(f"| {name:<46} | {value:<26} | {target:<8} | {met:<6} |")
    summary = (
        f"webhooks/{dialect}: {rate['median']:,.0f} deliveries/s per worker"
        f" ({ratio['median']:.2f}x bare httpx {bare['median']:,.0f}/s)"
    )
    if embedded:
        summary += (
            f"; commit->receipt p50 embedded {table['embedded worker p50_ms']['median']:.0f} ms,"
            f" separate {table['separate worker p50_ms']['median']:.0f} ms"
        )
    print(f"\nexactly once: {check}")
    print(summary + ("" if check.endswith("once") else "; EXACTLY-ONCE VIOLATED"))
    return table


if __name__ == "__main__":
    sys.exit(main())
