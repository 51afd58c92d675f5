"""The benchmark runner behind `bench/run`; see bench/README.md.

It serves the real app as deployed (`uvicorn app.main:app`, 1 and 2 workers, SQLite and
PostgreSQL), a bare FastAPI app and Datasette on the same SQLite file, drives each with wrk over
the same few hundred real queries, and prints one table with ratios to bare FastAPI and to
Datasette and to the headline page's probes (bench/probe_app.py), checked against the targets of
issue 23 as ratios to those ceilings. Every figure is repeated (`--reps`) and shown
as median [min-max]. Raw runs and the table go to bench/out/results-*.json.
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
import socket
import sqlite3
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import httpx

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
OUT = BENCH / "out"
DATA = OUT / "data"
LOGS = OUT / "logs"
VENV_BIN = ROOT / ".venv" / "bin"
DATASETTE = BENCH / ".venv-datasette" / "bin" / "datasette"
LUA = BENCH / "wrk_report.lua"
HOST = "127.0.0.1"
PG_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"
CURSOR_SECRET = "bench-cursor-secret"  # noqa: S105 - signs benchmark cursors only
SMALL = 10_000


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- data


def sqlite_file(n: int, seed: int) -> Path:
    return DATA / f"timeline-{n}-s{seed}.db"


def pg_url(server: str, n: int, seed: int) -> str:
    from sqlalchemy.engine import make_url

    return (
        make_url(server)
        .set(database=f"dtl_bench_{n}_s{seed}")
        .render_as_string(hide_password=False)
    )


def ensure_data(url: str, marker: Path, n: int, seed: int) -> None:
    """Generate once per (database, N, seed); the marker records that synth finished."""
    if marker.exists():
        say(f"data: reusing {marker.name} ({marker.read_text().strip()[:80]}...)")
        # Data made by an older version: migrate it, and store the documents it lacks.
        subprocess.run(  # noqa: S603
            [
                str(VENV_BIN / "python"),
                "-m",
                "bench.synth",
                "--upgrade-only",
                "--database-url",
                url,
            ],
            cwd=ROOT,
            check=True,
        )
        return
    say(f"data: generating {n:,} events (seed {seed}) into {url.split('@')[-1]}")
    cmd = [str(VENV_BIN / "python"), "-m", "bench.synth", "--events", str(n), "--seed", str(seed)]
    cmd += ["--database-url", url, "--reset"]
    done = subprocess.run(cmd, cwd=ROOT, check=True, stdout=subprocess.PIPE, text=True)  # noqa: S603
    marker.write_text(done.stdout)
    say(done.stdout.strip())


# ---------------------------------------------------------------- processes


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def tree_pids(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def tree_rss_mb(root: int) -> float:
    total = 0
    for pid in tree_pids(root):
        with contextlib.suppress(OSError), open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
    return total / 1024


def tree_cpu_seconds(root: int) -> float:
    ticks = 0
    for pid in tree_pids(root):
        with contextlib.suppress(OSError, IndexError, ValueError), open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])  # utime + stime
    return ticks / os.sysconf("SC_CLK_TCK")


def machine_cpu() -> tuple[int, int]:
    """Busy and total CPU time of the whole machine so far, in clock ticks (/proc/stat)."""
    with open("/proc/stat") as stat:
        ticks = [int(x) for x in stat.readline().split()[1:]]
    idle = ticks[3] + ticks[4]  # idle, iowait
    return sum(ticks) - idle, sum(ticks)


def wait_idle(root: int, limit: float = 120.0, machine_limit: float = 10.0) -> float:
    """Wait until the server has finished the requests wrk left queued when it stopped.

    uvicorn keeps working through its backlog after the client has gone; without this, a slow
    run would eat into the next one's figures. The machine should be quiet too: on PostgreSQL
    the server waits on queries that the database's own processes are still running. That is
    waited for only `machine_limit` seconds: on a machine shared with other work it never is,
    and every run waited `limit` (the load average of each run records such work).
    """
    t0 = time.monotonic()
    while (waited := time.monotonic() - t0) < limit:
        before, (busy0, total0) = tree_cpu_seconds(root), machine_cpu()
        time.sleep(0.5)
        busy1, total1 = machine_cpu()
        cores = (os.cpu_count() or 1) * (busy1 - busy0) / max(total1 - total0, 1)
        if tree_cpu_seconds(root) - before < 0.05 and (cores < 0.25 or waited > machine_limit):
            break
    return round(time.monotonic() - t0, 1)


@dataclass
class Server:
    name: str
    cmd: list[str]
    env: dict[str, str]
    ready: str
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None
    # Seconds to wait for the ready path to answer.
    start_timeout: float = 60.0

    def start(self) -> None:
        LOGS.mkdir(parents=True, exist_ok=True)
        log = open(LOGS / f"{self.name}.log", "wb")  # noqa: SIM115 - lives as long as the server
        env = {**os.environ, **self.env}
        self.proc = subprocess.Popen(self.cmd, cwd=ROOT, env=env, stdout=log, stderr=log)  # noqa: S603
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                if httpx.get(self.url(self.ready), timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        tail = (LOGS / f"{self.name}.log").read_text(errors="replace")[-2000:]
        raise RuntimeError(f"server {self.name} did not start:\n{tail}")

    def url(self, path: str) -> str:
        return f"http://{HOST}:{self.port}{path}"

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    @contextlib.contextmanager
    def running(self) -> Iterator[Server]:
        self.start()
        try:
            yield self
        finally:
            self.stop()


def uvicorn(app: str, workers: int, port: int) -> list[str]:
    # `make run` serves `uvicorn app.main:app --host --port --no-access-log` with uvicorn's
    # defaults (uvloop, httptools); the app writes its own access log (app/observability.py).
    # Only the worker count is added here.
    cmd = [str(VENV_BIN / "uvicorn"), app, "--host", HOST, "--port", str(port), "--no-access-log"]
    return [*cmd, "--workers", str(workers)] if workers > 1 else cmd


def api_server(name: str, database_url: str, workers: int, *, cache: bool = False) -> Server:
    port = free_port()
    env = {"DATABASE_URL": database_url, "CURSOR_SECRET": CURSOR_SECRET}
    if not cache:
        # wrk cycles through a few hundred queries, which the response cache would soon hold
        # in full; the page rows measure building pages, the cache has rows of its own.
        env["RESPONSE_CACHE_SIZE"] = "0"
    return Server(name, uvicorn("app.main:app", workers, port), env, "/healthz", port)


def storm_section(
    database_url: str, headline: list[str], workers: int, quiet: float, storm_seconds: float
) -> dict[str, Any]:
    """bench/storm.py on the production configuration: pages with and without the storm."""
    from bench import storm

    token = storm.storm_key(database_url)
    port = free_port()
    env = {**storm.storm_env(database_url), "CURSOR_SECRET": CURSOR_SECRET}
    server = Server(
        f"storm-{workers}w", uvicorn("app.main:app", workers, port), env, "/healthz", port
    )
    say(f"\n## storm: {storm.CLIENTS} anonymous clients on exports and facets, {workers} worker(s)")
    with server.running():
        result = storm.run(
            server,
            headline,
            token,
            quiet_seconds=quiet,
            storm_seconds=storm_seconds,
            conns=8,
            wrk=wrk,
        )
    say(storm.describe(result))
    return result


def bare_server(workers: int) -> Server:
    port = free_port()
    return Server(
        f"bare-{workers}w", uvicorn("bench.bare_app:app", workers, port), {}, "/ping", port
    )


def prototype_server(database_url: str) -> Server:
    """Issue 7's tuned prototype on the same database (bench/prototype_app.py), 1 worker."""
    port = free_port()
    cmd = uvicorn("bench.prototype_app:app", 1, port)
    return Server("prototype", cmd, {"DATABASE_URL": database_url}, "/healthz", port)


def measure_prototype(
    rows: dict[str, Row],
    db: str,
    database_url: str,
    label_n: str,
    headline: list[str],
    opts: Options,
    smoke: bool,
) -> None:
    """Issue 7's prototype design on the headline paths: a second ceiling beside bare FastAPI."""
    say(f"\n## issue 7's prototype design on {db}, {label_n} events")
    with prototype_server(database_url).running() as proto:
        warm(proto, headline, settle_on=None if smoke else headline)
        key = "proto-sqlite-1w" if db == "SQLite" else "proto-pg-1w"
        label = f"prototype {db} {label_n}, 1 worker: state+window page"
        measure(rows, key, label, proto, headline, opts)


def probe_server(database_url: str) -> Server:
    """Issue 23's ceiling for the headline page (bench/probe_app.py), 1 worker: the page's SQL
    on sqlite3 on the event loop, or on PostgreSQL on an async driver."""
    port = free_port()
    cmd = uvicorn("bench.probe_app:app", 1, port)
    return Server("probe", cmd, {"DATABASE_URL": database_url}, "/healthz", port)


def measure_beside(
    rows: dict[str, Row],
    entries: list[tuple[str, str, Server]],
    paths: list[str],
    opts: Options,
    *,
    conns: int | None = None,
) -> None:
    """Each of `entries` (key, label, server) once per repeat, in turn: figures to be divided by
    each other are taken side by side, so that the machine's other work weighs on both alike."""
    for rep in range(opts.reps):
        for key, label, server in entries:
            measure(
                rows, key, label, server, paths, replace(opts, reps=1), conns=conns, first_rep=rep
            )


# Datasette gives up on a query after 1 s (its sql_time_limit_ms): on a cold page cache the
# first headline queries can take longer, until the pages they read are cached.
DATASETTE_PROBE_SECONDS = 180.0


def datasette_probe(ds: Server, path: str) -> None:
    """Ask until Datasette answers the query in time; raise if it never does."""
    deadline = time.monotonic() + DATASETTE_PROBE_SECONDS
    while True:
        probe = httpx.get(ds.url(path), timeout=60)
        if probe.status_code == 200 and len(probe.json()) == 50:
            return
        if "took too long" not in probe.text or time.monotonic() > deadline:
            raise RuntimeError(f"Datasette query failed: {probe.status_code} {probe.text[:300]}")
        time.sleep(1)


def datasette_server(db: Path) -> Server:
    port = free_port()
    cmd = [str(DATASETTE), "serve", "-i", str(db), "--host", HOST, "--port", str(port)]
    # It counts every table of an immutable file before it answers: a scan of the 6 GB file
    # at 1M events, minutes when the file is not in the operating system's cache.
    return Server("datasette", cmd, {}, "/-/versions.json", port, start_timeout=900.0)


# ---------------------------------------------------------------- wrk


@dataclass
class Options:
    duration: float
    short: float
    connections: int
    threads: int
    reps: int


@dataclass
class Row:
    """One line of the table: a label, its runs, and what to compare it with."""

    key: str
    label: str
    conns: int
    runs: list[dict[str, Any]] = field(default_factory=list)
    note: str = ""

    def median(self, metric: str) -> float | None:
        values = [r[metric] for r in self.runs if r.get(metric) is not None]
        return statistics.median(values) if values else None

    def spread(self, metric: str) -> tuple[float, float] | None:
        values = [r[metric] for r in self.runs if r.get(metric) is not None]
        return (min(values), max(values)) if values else None

    def peak_rss(self) -> float | None:
        values = [r["peak_rss_mb"] for r in self.runs if r.get("peak_rss_mb")]
        return max(values) if values else None

    def errors(self) -> int:
        keys = ("err_connect", "err_read", "err_write", "err_status", "err_timeout")
        return sum(int(r.get(k, 0)) for r in self.runs for k in keys)


def wrk(
    server: Server,
    paths: list[str],
    *,
    conns: int,
    seconds: float,
    threads: int,
    header: str | None = None,
    drain: bool = True,
) -> dict[str, Any]:
    LOGS.mkdir(parents=True, exist_ok=True)
    path_file = LOGS / f"paths-{os.getpid()}.txt"
    path_file.write_text("\n".join(paths) + "\n")
    env = {**os.environ, "WRK_PATHS": str(path_file), "WRK_HEADER": header or ""}
    cmd = ["wrk", f"-t{min(threads, conns)}", f"-c{conns}", f"-d{max(1, round(seconds))}s"]
    cmd += ["--timeout", "10s", "-s", str(LUA), server.url(paths[0])]
    peak = [0.0]
    stop = threading.Event()
    assert server.proc is not None  # noqa: S101 - started by the caller

    def sample(pid: int) -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], tree_rss_mb(pid))
            stop.wait(0.25)

    sampler = threading.Thread(target=sample, args=(server.proc.pid,), daemon=True)
    sampler.start()
    try:
        out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout  # noqa: S603
    finally:
        stop.set()
        sampler.join()
    line = next(x for x in out.splitlines() if x.startswith("BENCHJSON "))
    result: dict[str, Any] = json.loads(line.split(" ", 1)[1])
    result["peak_rss_mb"] = round(peak[0], 1)
    # The storm keeps the server busy on purpose: there, waiting for it to drain is no use.
    result["drain_s"] = wait_idle(server.proc.pid) if drain else None
    # Other work on this machine skews figures; the 1-minute load average records it.
    result["loadavg_1m"] = round(os.getloadavg()[0], 2)
    return result


def measure(
    rows: dict[str, Row],
    key: str,
    label: str,
    server: Server,
    paths: list[str],
    opts: Options,
    *,
    conns: int | None = None,
    short: bool = False,
    header: str | None = None,
    note: str = "",
    first_rep: int = 0,
) -> Row:
    conns = conns or opts.connections
    row = rows.setdefault(key, Row(key, label, conns, note=note))
    seconds = opts.short if short or conns == 1 else opts.duration
    for rep in range(first_rep, first_rep + opts.reps):
        r = wrk(server, paths, conns=conns, seconds=seconds, threads=opts.threads, header=header)
        r["rep"] = rep + 1
        row.runs.append(r)
        errors = sum(int(r[k]) for k in r if k.startswith("err_"))
        say(
            f"  {label:<52} c={conns:<3} run {rep + 1}: {r['rps']:>8,.0f} req/s  "
            f"p50 {r['p50_ms']:7.2f} ms  p99 {r['p99_ms']:7.2f} ms  "
            f"RSS {r['peak_rss_mb']:6.0f} MB{f'  ERRORS {errors}' if errors else ''}"
        )
    return row


# This machine's page cache keeps only a few GB, less than the two 1M data sets (12 GB): a
# server started after another read its data set meets a cold one, and a short fixed warm-up
# left PostgreSQL slow with multi-second waits (bench/README.md). So the API is warmed until
# its throughput stops growing, within a limit.
WARM_STEP_SECONDS = 3.0
WARM_LIMIT_SECONDS = 90.0
WARM_STEADY = 0.1


def warm(server: Server, paths: list[str], *, settle_on: list[str] | None = None) -> None:
    """A short run over `paths`; first, with `settle_on`, runs over those until one run's req/s
    is within WARM_STEADY of the run before (or WARM_LIMIT_SECONDS have passed). Settle on one
    shape of query: a mix's throughput swings with its slowest queries."""
    if settle_on:
        started = time.monotonic()
        before = 0.0
        while True:
            r = wrk(server, settle_on, conns=8, seconds=WARM_STEP_SECONDS, threads=2)
            rps = float(r["rps"])
            if before > 0 and abs(rps - before) <= WARM_STEADY * before:
                break
            if time.monotonic() - started >= WARM_LIMIT_SECONDS:
                break
            before = rps
        say(f"  warmed in {time.monotonic() - started:.0f} s ({rps:,.0f} req/s at 8 conns)")
    wrk(server, paths, conns=4, seconds=2, threads=1)


# ---------------------------------------------------------------- queries


@dataclass
class Queries:
    """Request paths, grouped by shape. The mix is all of them."""

    headline: list[str] = field(default_factory=list)  # state + date window
    shapes: dict[str, list[str]] = field(default_factory=dict)
    datasette: list[str] = field(default_factory=list)  # headline, as Datasette asks it
    popular: str = ""
    rare_word: str = ""
    common_word: str = ""

    def mix(self) -> list[str]:
        return [p for paths in self.shapes.values() for p in paths]


def timeline(**params: Any) -> str:
    return "/v1/timeline?" + urlencode({k: v for k, v in params.items() if v is not None})


def build_queries(
    db: Path, server: Server, n_events: int, *, small: bool, seed: int, con: Any = None
) -> Queries:
    """Real queries: anchors are random events (so busy states come up more often, as in real
    traffic); windows are widened until a page is full; deep cursors come from walking the API.

    `con` is an sqlite3-shaped connection to read instead of the file `db` (bench/load.py passes
    one over PostgreSQL); it is closed at the end like the file's."""
    rng = random.Random(seed)
    con = con or sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    max_id = con.execute("SELECT max(id) FROM event").fetchone()[0]
    codes = dict(con.execute("SELECT id, code FROM state"))
    org_codes = dict(con.execute("SELECT id, code FROM organisation"))
    q = Queries()
    n_head = 60 if small else 100

    def anchor() -> tuple[int, str, str, list[tuple[Any, ...]], list[str]]:
        eid = rng.randint(1, max_id)
        row = con.execute("SELECT date, category FROM event WHERE id = ?", (eid,)).fetchone()
        parts = con.execute(
            "SELECT state_id, organisation_id, role FROM event_participant WHERE event_id = ? "
            "ORDER BY position",
            (eid,),
        ).fetchall()
        tags = [t for (t,) in con.execute("SELECT tag FROM event_tag WHERE event_id = ?", (eid,))]
        return eid, row[0], row[1], parts, tags

    def full(sql: str, args: tuple[Any, ...]) -> bool:
        count = con.execute(f"SELECT count(*) FROM ({sql} LIMIT 50)", args).fetchone()[0]  # noqa: S608
        return int(count) == 50

    def until(d0: str, years: int) -> str:
        d = dt.date.fromisoformat(d0)
        return dt.date(min(d.year + years, 2025), d.month, min(d.day, 28)).isoformat()

    # Headline: one state (any role) + a date window, a full page of 50.
    ds_paths, tries = [], 0
    while len(q.headline) < n_head and tries < n_head * 30:
        tries += 1
        _, d0, _, parts, _ = anchor()
        state_id = next(p[0] for p in parts if p[0])
        for years in (1, 3, 10, 30, 80):
            d1 = until(d0, years)
            sql = "SELECT 1 FROM event_participant WHERE state_id = ? AND date BETWEEN ? AND ?"
            if full(sql, (state_id, d0, d1)):
                break
        else:
            continue
        q.headline.append(timeline(state=codes[state_id], **{"from": d0}, to=d1))
        sub = f"select event_id from event_participant where state_id={state_id}"  # noqa: S608
        where = quote(f"id in ({sub})")
        ds_paths.append(
            f"/{db.stem}/event.json?_where={where}&date__gte={d0}&date__lte={d1}"
            "&deleted_at__isnull=1&_sort=date&_size=50&_shape=array&_nocol=search_text"
        )
    q.datasette = ds_paths
    q.shapes["state+window"] = q.headline

    pairs, orgs, cats, windows, tags = [], [], [], [], []
    for _ in range(400):
        _, d0, category, parts, event_tags = anchor()
        year = int(d0[:4])
        states = [codes[p[0]] for p in parts if p[0]]
        if len(pairs) < 40 and len(states) >= 2:
            pairs.append(timeline(between=f"{states[0]},{states[1]}", **{"from": str(year - 5)}))
        org = next((p[1] for p in parts if p[1]), None)
        if org and len(orgs) < 30:
            orgs.append(timeline(organisation=org_codes[org], **{"from": str(year)}))
        if len(cats) < 30:
            cats.append(timeline(category=category, **{"from": str(year)}, to=str(year + 2)))
        if len(windows) < 30:
            windows.append(timeline(**{"from": d0}, to=until(d0, 1)))
        if event_tags and len(tags) < 20:
            tags.append(timeline(tag=event_tags[0]))
    q.shapes["pair (between=)"] = pairs
    q.shapes["organisation"] = orgs
    q.shapes["category+window"] = cats
    q.shapes["date window"] = windows
    q.shapes["tag"] = tags

    words = ["embassy", "pipeline", "uranium", "drought", "tribunal", "curfew", "veto", "dam"]
    words += [w for (w,) in con.execute("SELECT name FROM place ORDER BY id LIMIT 12")]
    text = [timeline(q=w.lower()) for w in words]
    text += [timeline(q=w, state=codes[1 + i % 10]) for i, w in enumerate(words[:8])]
    q.shapes["q= words"] = text
    q.rare_word, q.common_word = "extradition", "ceasefire"

    # Deep pages: follow next_cursor through the API and keep cursors from deep positions.
    deep: list[str] = []
    client = httpx.Client(timeout=60)
    starts = [timeline(state=codes[1]), timeline(state=codes[2]), timeline(category="statement")]
    starts.append(timeline(**{"from": "1990"}))
    pages = 6 if small else 60
    for start in starts:
        url = start
        for page in range(pages):
            body = client.get(server.url(url)).json()
            if not body.get("next_cursor"):
                break
            url = f"{start}&cursor={body['next_cursor']}"
            if page >= pages // 3:
                deep.append(url)
    q.shapes["deep cursor page"] = deep
    q.popular = timeline(state="USA", **{"from": "2020"})

    # Every path answers 200 before it is measured; the shapes report their page sizes.
    for name, paths in q.shapes.items():
        sizes = []
        for path in paths:
            r = client.get(server.url(path))
            if r.status_code != 200:
                raise RuntimeError(f"{path} answered {r.status_code}: {r.text[:300]}")
            sizes.append(len(r.json()["items"]))
        say(
            f"  queries: {name:<20} {len(paths):>4} paths, "
            f"items/page median {statistics.median(sizes) if sizes else 0:.0f}"
        )
    client.close()
    con.close()
    return q


# ---------------------------------------------------------------- in-process search


def inprocess_search(database_url: str, words: dict[str, str], reps: int) -> list[dict[str, Any]]:
    """The timeline page for `q=word`, timed in-process (the target is stated that way)."""
    from app.config import normalise_database_url
    from app.db import create_db_engine, create_session_factory
    from app.timeline import service
    from app.timeline.schemas import TimelineQuery

    engine = create_db_engine(normalise_database_url(database_url))
    factory = create_session_factory(engine)
    out = []
    for kind, word in words.items():
        timings = []
        with factory() as session:
            # The targets: a rare word's page, and a common word's page *ranked*.
            params = {"q": word, "order": "relevance"} if kind == "common" else {"q": word}
            query = TimelineQuery.model_validate(params)
            stmt, params = service.filtered(session, query)
            from sqlalchemy import func, select

            matches = session.scalar(select(func.count()).select_from(stmt.subquery()), params)
            for _ in range(reps):
                t0 = time.perf_counter()
                page = service.page(session, query, cursor_secret=CURSOR_SECRET)
                timings.append((time.perf_counter() - t0) * 1000)
        out.append(
            {
                "kind": kind,
                "word": word,
                "matches": matches,
                "items": len(page.items),
                "first_ms": round(timings[0], 2),
                "median_ms": round(statistics.median(timings[1:] or timings), 2),
            }
        )
    engine.dispose()
    return out


# ---------------------------------------------------------------- in-process facets

# Issue 23: facets at 1M <= 100 ms in process, with no filter and with a combination of the
# filters the kept counts answer (one state, a kind, a window whose edges cut months).
FACETS = {
    "no filter": {},
    "combined": {
        "state": ["USA"],
        "kind": ["diplomatic_action"],
        "from": "2010-03-15",
        "to": "2024-09-20",
    },
}


def inprocess_facets(database_url: str, reps: int) -> list[dict[str, Any]]:
    """`GET /v1/timeline/facets`, timed in-process (the target is stated that way), beside the
    GROUP BY of every matching event that it replaced (`service.grouped`, timed once)."""
    from app.config import normalise_database_url
    from app.db import create_db_engine, create_session_factory
    from app.timeline import service
    from app.timeline.schemas import FacetsQuery

    engine = create_db_engine(normalise_database_url(database_url))
    factory = create_session_factory(engine)
    out = []
    try:
        for name, params in FACETS.items():
            query = FacetsQuery.model_validate(params)
            timings = []
            with factory() as session:
                for _ in range(reps):
                    t0 = time.perf_counter()
                    answer = service.facets(session, query)
                    timings.append((time.perf_counter() - t0) * 1000)
                t0 = time.perf_counter()
                grouped = service.grouped(session, query)
                grouped_ms = (time.perf_counter() - t0) * 1000
            out.append(
                {
                    "filter": name,
                    "params": params,
                    "total": answer["total"],
                    "exact": answer == grouped,
                    "first_ms": round(timings[0], 2),
                    "median_ms": round(statistics.median(timings[1:] or timings), 2),
                    "group_by_ms": round(grouped_ms, 1),
                }
            )
    finally:
        engine.dispose()
    return out


# ---------------------------------------------------------------- report


def fmt(value: float | None, digits: int = 0) -> str:
    if value is None:
        return "-"
    return f"{value:,.{digits}f}"


def cell(row: Row | None, metric: str, digits: int) -> str:
    if row is None or not row.runs:
        return "-"
    spread = row.spread(metric)
    med = row.median(metric)
    assert spread is not None  # noqa: S101 - runs exist
    return f"{fmt(med, digits)} [{fmt(spread[0], digits)}-{fmt(spread[1], digits)}]"


def ratio(a: Row | None, b: Row | None, metric: str = "rps") -> float | None:
    if a is None or b is None:
        return None
    x, y = a.median(metric), b.median(metric)
    return x / y if x is not None and y else None


@dataclass
class Verdict:
    what: str
    target: str
    measured: str
    ok: bool | None  # None: not measured / not implemented


def render(
    rows: dict[str, Row],
    verdicts: list[Verdict],
    search: dict[str, list[dict[str, Any]]],
    facets: dict[str, list[dict[str, Any]]] | None = None,
) -> str:
    bare1, bare2, ds = rows.get("bare-1w"), rows.get("bare-2w"), rows.get("datasette")
    lines = [
        "| what | c | req/s median [min-max] | p50 ms | p99 ms median [min-max] | peak RSS MB "
        "| x probe | x bare | x Datasette |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows.values():
        if not row.runs:
            lines.append(f"| {row.label} | - | {row.note or 'not measured'} | | | | | | |")
            continue
        bare = bare2 if "2w" in row.key else bare1
        x_bare = ratio(row, bare) if row.conns == (bare.conns if bare else 0) else None
        x_ds = ratio(row, ds) if ds and row.conns == ds.conns else None
        x_probe = against_probe(rows, row)
        lines.append(
            f"| {row.label} | {row.conns} | {cell(row, 'rps', 0)} | {fmt(row.median('p50_ms'), 2)}"
            f" | {cell(row, 'p99_ms', 1)} | {fmt(row.peak_rss())} | "
            f"{fmt(x_probe, 2) if x_probe else '-'} | "
            f"{fmt(x_bare, 3) if x_bare else '-'} | {fmt(x_ds, 2) if x_ds else '-'} |"
        )
    lines += [
        "",
        "x probe: req/s over the probe's on the same database and number of connections "
        "(bench/probe_app.py, 1 worker: the page's SQL on sqlite3 on the event loop, or on "
        "PostgreSQL's async driver), measured in turn with the headline rows.",
    ]
    against = [
        f"{db} {fmt(x, 2)}x"
        for db, api, proto in (
            ("SQLite", "sqlite-1w", "proto-sqlite-1w"),
            ("PostgreSQL", "pg-1w", "proto-pg-1w"),
        )
        if (x := ratio(rows.get(api), rows.get(proto)))
    ]
    if against:
        # Issue 7's design on this machine: how much the API's features cost beside it.
        lines += ["", f"API / issue 7's prototype, headline page: {', '.join(against)}"]
    lines += [
        "",
        "| target (issue 23; ratios to ceilings of this run) | wanted | measured | met |",
        "|---|---|---|---|",
    ]
    for v in verdicts:
        met = {True: "met", False: "**missed**", None: "-"}[v.ok]
        lines.append(f"| {v.what} | {v.target} | {v.measured} | {met} |")
    if search:
        lines += [
            "",
            "| full-text page (in-process; common word ranked) | word | matching events"
            " | first ms | median ms |",
            "|---|---|---:|---:|---:|",
        ]
        for db, results in search.items():
            for r in results:
                lines.append(
                    f"| {db} {r['kind']} | {r['word']} | {r['matches']:,} | {r['first_ms']} "
                    f"| {r['median_ms']} |"
                )
    if facets:
        lines += [
            "",
            "| facets (in-process) | matching events | median ms | GROUP BY ms | x faster |"
            " exact |",
            "|---|---:|---:|---:|---:|---|",
        ]
        for db, results in facets.items():
            for r in results:
                faster = r["group_by_ms"] / r["median_ms"] if r["median_ms"] else None
                lines.append(
                    f"| {db} {r['filter']} | {r['total']:,} | {r['median_ms']} "
                    f"| {r['group_by_ms']:,} | {fmt(faster, 0)} | {r['exact']} |"
                )
    return "\n".join(lines)


def judge(
    rows: dict[str, Row],
    search: dict[str, list[dict[str, Any]]],
    n: int,
    notes: dict[str, str],
    facets: dict[str, list[dict[str, Any]]] | None = None,
) -> list[Verdict]:
    g = rows.get
    out: list[Verdict] = []

    def add(
        what: str, target: str, checks: list[tuple[str, float | None, Callable[[float], bool]]]
    ):
        parts, oks = [], []
        for name, value, test in checks:
            if value is None:
                parts.append(f"{name} -")
                oks.append(None)
                continue
            parts.append(f"{name} {value:,.3g}")
            oks.append(test(value))
        ok = None if any(o is None for o in oks) else all(oks)
        out.append(Verdict(what, target, ", ".join(parts), ok))

    def one(results: list[dict[str, Any]], key: str, value: str) -> dict[str, Any]:
        return next((r for r in results if r.get(key) == value), {})

    # 1. Facets at 1M, in process.
    for db, results in (facets or {}).items():
        for r in results:
            add(
                f"1. facets, {db}, {r['filter']}",
                "<= 100 ms in process, equal to the GROUP BY",
                [
                    ("ms", r["median_ms"], lambda v: v <= 100),
                    ("exact", 1.0 if r["exact"] else 0.0, lambda v: v == 1.0),
                ],
            )
    # 2. Search under load, and the ranked common word in process.
    for db, prefix in (("SQLite", "sqlite"), ("PostgreSQL", "pg")):
        add(
            f"2. q= words shape / headline page, {db}, 1 worker",
            ">= 0.5x",
            [("x", ratio(g(f"{prefix}-1w-q= words"), g(f"{prefix}-1w")), lambda v: v >= 0.5)],
        )
    for db, results in search.items():
        if db.startswith("PostgreSQL"):
            add(
                f"2. common word ranked, {db}, in process",
                "<= 100 ms",
                [("ms", one(results, "kind", "common").get("median_ms"), lambda v: v <= 100)],
            )
    # 3. The hot path against the probes.
    add(
        "3. headline page / inline probe, SQLite, 1 worker",
        ">= 0.8x req/s; 1-connection p50 <= 1.25x the probe's",
        [
            ("x req/s", ratio(g("sqlite-1w"), g("probe-sqlite-1w")), lambda v: v >= 0.8),
            (
                "x p50",
                ratio(g("sqlite-1w-c1"), g("probe-sqlite-1w-c1"), "p50_ms"),
                lambda v: v <= 1.25,
            ),
        ],
    )
    add(
        "3. headline page / async probe, PostgreSQL, 1 worker",
        ">= 0.8x req/s",
        [("x req/s", ratio(g("pg-1w"), g("probe-pg-1w")), lambda v: v >= 0.8)],
    )
    # 4. Cached answers near bare FastAPI.
    add(
        "4. popular query from the response cache / bare FastAPI",
        ">= 0.85x",
        [("x", ratio(g("popular"), g("bare-1w")), lambda v: v >= 0.85)],
    )
    if g("conditional") and g("conditional").runs:  # type: ignore[union-attr]
        add(
            "4. conditional request (304) / bare FastAPI",
            ">= 0.85x",
            [("x", ratio(g("conditional"), g("bare-1w")), lambda v: v >= 0.85)],
        )
    else:
        out.append(Verdict("4. conditional request (304)", ">= 0.85x bare", notes["etag"], None))
    # 5. Data size and workers.
    add(
        f"5. data size ({n:,} vs {SMALL:,} events), SQLite headline",
        ">= 0.9x",
        [("x", ratio(g("sqlite-1w"), g("sqlite-10k-1w")), lambda v: v >= 0.9)],
    )
    for db, prefix in (("SQLite", "sqlite"), ("PostgreSQL", "pg")):
        add(
            f"5. 2 workers / 1 worker, {db} headline",
            ">= 1.8x",
            [("x", ratio(g(f"{prefix}-2w"), g(f"{prefix}-1w")), lambda v: v >= 1.8)],
        )
    # 6 and 7: measured by commands of their own.
    out.append(
        Verdict(
            "6. writes under the mixed load",
            ">= 10x the writes of 2026-12-06, p99 <= 250 ms",
            "measured by `bench/load` (bench/README.md)",
            None,
        )
    )
    out.append(
        Verdict("7. CSV export of 1M events", ">= 50,000 rows/s, flat RSS", notes["csv"], None)
    )
    out.append(
        Verdict(
            "7. webhooks",
            ">= 1,000 deliveries/s per worker, commit->receipt p50 <= 50 ms",
            notes["webhooks"],
            None,
        )
    )
    for db, results in search.items():
        add(
            f"7. rare word, {db}, in process",
            "<= 5 ms",
            [("ms", one(results, "kind", "rare").get("median_ms"), lambda v: v <= 5)],
        )
    return out


def against_probe(rows: dict[str, Row], row: Row) -> float | None:
    """A page row's req/s over the probe's on its database, at the same connections."""
    if row.key.startswith(("sqlite-", "proto-sqlite")):
        probe = rows.get("probe-sqlite-1w-c1" if row.conns == 1 else "probe-sqlite-1w")
    elif row.key.startswith(("pg-", "proto-pg")):
        probe = rows.get("probe-pg-1w-c1" if row.conns == 1 else "probe-pg-1w")
    else:
        return None
    if probe is None or probe.conns != row.conns:
        return None
    return ratio(row, probe)


def postgres_settings(url: str) -> dict[str, str]:
    """The server settings that move the PostgreSQL figures: ranking a common word reads every
    match's row, from shared_buffers or, past them, from the operating system (README)."""
    import psycopg
    from sqlalchemy.engine import make_url

    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    names = ["server_version", "shared_buffers", "work_mem", "jit"]
    with psycopg.connect(dsn) as conn:
        sql = "SELECT name, current_setting(name) FROM unnest(%s::text[]) AS name"
        return dict(conn.execute(sql, (names,)).fetchall())


def machine() -> dict[str, Any]:
    def sh(cmd: str) -> str:
        try:
            return subprocess.run(cmd, shell=True, capture_output=True, text=True).stdout.strip()  # noqa: S602
        except OSError:
            return "?"

    from importlib.metadata import version

    facts: dict[str, Any] = {
        "nproc": os.cpu_count(),
        "cpu": sh("lscpu | sed -n 's/^Model name:[ \\t]*//p'"),
        "memory": sh("free -h | awk '/Mem:/{print $2}'"),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "wrk": sh("wrk --version 2>&1 | head -1"),
        "datasette": sh(f"{DATASETTE} --version") if DATASETTE.exists() else None,
    }
    for p in ("fastapi", "starlette", "uvicorn", "sqlalchemy", "psycopg", "orjson", "pydantic"):
        facts[p] = version(p)
    return facts


def probe_features(server: Server, popular: str) -> dict[str, Any]:
    """What the service offers today: ETags, CSV export, webhooks (looked up in its OpenAPI)."""
    r = httpx.get(server.url(popular), timeout=30)
    etag = r.headers.get("etag")
    paths = list(httpx.get(server.url("/openapi.json"), timeout=30).json()["paths"])
    # CSV is a format of the timeline (`?format=csv`), not a path of its own.
    csv_probe = httpx.get(server.url("/v1/timeline?format=csv&to=1900"), timeout=30)
    csv = ["/v1/timeline?format=csv"] if csv_probe.status_code == 200 else []
    hooks = [p for p in paths if "webhook" in p or "subscription" in p]
    status304 = None
    if etag:
        again = httpx.get(server.url(popular), headers={"If-None-Match": etag}, timeout=30)
        status304 = again.status_code
    return {"etag": etag, "status_with_if_none_match": status304, "csv": csv, "webhooks": hooks}


# ---------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="bench/run",
        description="Benchmark the timeline API as deployed (uvicorn app.main:app, 1 and 2 "
        "workers, SQLite and PostgreSQL) against bare FastAPI and Datasette in the same run, "
        "and check the targets of issue 23 as ratios to ceilings of the same run. Results: a table "
        "on stdout, JSON in bench/out/.",
    )
    parser.add_argument(
        "--events",
        type=int,
        default=1_000_000,
        metavar="N",
        help="events in the benchmark database (default 1000000); generated "
        "once with bench.synth and reused",
    )
    parser.add_argument(
        "--smoke",
        "--quick",
        action="store_true",
        help="seconds-long check for CI: 10k events, 1 s runs, SQLite 1 worker, "
        "bare FastAPI and Datasette only; implies --skip-postgres",
    )
    parser.add_argument(
        "--duration",
        type=float,
        default=None,
        metavar="SECONDS",
        help="length of each throughput run (default 10; 1 with --smoke); "
        "single-connection and per-shape runs take half",
    )
    parser.add_argument(
        "--connections",
        type=int,
        default=32,
        metavar="C",
        help="concurrent connections for throughput runs (default 32)",
    )
    parser.add_argument(
        "--reps",
        type=int,
        default=2,
        metavar="R",
        help="repeats of every figure; the table shows median [min-max] (default 2)",
    )
    parser.add_argument(
        "--storm",
        action="store_true",
        help="only the storm (bench/storm.py): headline pages read by wrk, quiet and while 16 "
        "anonymous clients ask for exports and facets; SQLite, --events, --storm-workers",
    )
    parser.add_argument(
        "--storm-workers", type=int, default=2, help="uvicorn workers for --storm (default 2)"
    )
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (default 2)")
    parser.add_argument("--seed", type=int, default=42, help="synthetic data seed (default 42)")
    parser.add_argument(
        "--skip-postgres",
        action="store_true",
        help="measure SQLite only (no PostgreSQL server needed)",
    )
    parser.add_argument(
        "--skip-datasette",
        action="store_true",
        help="do not measure Datasette (its ratios are then missing)",
    )
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("BENCH_POSTGRES_URL", PG_SERVER),
        metavar="URL",
        help="PostgreSQL server to use; a database "
        "dtl_bench_<N>_s<seed> is created on it (default %(default)s)",
    )
    args = parser.parse_args(argv)
    t_start = time.perf_counter()
    if args.smoke:
        args.events, args.skip_postgres = SMALL, True
    if args.storm:
        args.skip_postgres = True  # the storm runs on SQLite only
    n = args.events
    duration = args.duration or (1.0 if args.smoke else 10.0)
    opts = Options(duration, max(1.0, duration / 2), args.connections, args.threads, args.reps)
    if shutil.which("wrk") is None:
        raise SystemExit("bench: wrk is not installed (bench/run installs it with apt-get)")
    use_datasette = not args.skip_datasette and DATASETTE.exists()
    DATA.mkdir(parents=True, exist_ok=True)

    # 1. data
    sqlite_db = sqlite_file(n, args.seed)
    sqlite_url = f"sqlite:///{sqlite_db}"
    ensure_data(sqlite_url, sqlite_db.with_suffix(".done"), n, args.seed)
    size_check = not args.smoke and not args.storm and n != SMALL
    small_db = sqlite_file(SMALL, args.seed)
    if size_check:
        ensure_data(f"sqlite:///{small_db}", small_db.with_suffix(".done"), SMALL, args.seed)
    postgres = None
    if not args.skip_postgres:
        postgres = pg_url(args.postgres_url, n, args.seed)
        ensure_data(postgres, DATA / f"postgres-{n}-s{args.seed}.done", n, args.seed)

    if args.storm:
        with api_server("storm-queries", sqlite_url, 1).running() as api:
            queries = build_queries(sqlite_db, api, n, small=n <= SMALL, seed=args.seed)
        result = storm_section(sqlite_url, queries.headline, args.storm_workers, duration, duration)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        out_file = OUT / f"storm-{stamp}.json"
        result.update(events=n, workers=args.storm_workers, machine=machine())
        out_file.write_text(json.dumps(result, indent=1, default=str))
        say(f"bench: storm results in {out_file.relative_to(ROOT)}")
        return 0 if result["ok"] else 1

    rows: dict[str, Row] = {}
    notes: dict[str, str] = {}
    search: dict[str, list[dict[str, Any]]] = {}
    label_n = f"{n // 1000}k" if n < 1_000_000 else f"{n / 1e6:g}M"

    # 2. bare FastAPI, the ceiling
    say("\n## bare FastAPI (constant JSON)")
    with bare_server(1).running() as bare:
        warm(bare, ["/ping"])
        measure(rows, "bare-1w", "bare FastAPI, 1 worker", bare, ["/ping"], opts)
        measure(rows, "bare-1w-c1", "bare FastAPI, 1 worker", bare, ["/ping"], opts, conns=1)
    if not args.smoke:
        with bare_server(2).running() as bare:
            warm(bare, ["/ping"])
            measure(rows, "bare-2w", "bare FastAPI, 2 workers", bare, ["/ping"], opts)

    # 3. the API on SQLite
    say(f"\n## API on SQLite, {label_n} events, 1 worker")
    with api_server("api-sqlite-1w", sqlite_url, 1).running() as api:
        queries = build_queries(sqlite_db, api, n, small=args.smoke, seed=args.seed)
        (OUT / f"queries-{n}.json").write_text(json.dumps(queries.__dict__, indent=1))
        warm(api, queries.mix(), settle_on=None if args.smoke else queries.headline)
        head = f"API SQLite {label_n}, 1 worker: state+window page"
        with probe_server(sqlite_url).running() as probe:
            warm(probe, queries.headline, settle_on=None if args.smoke else queries.headline)
            probe_head = f"inline probe SQLite {label_n}, 1 worker: same page"
            for conns in (opts.connections, 1):
                suffix = "-c1" if conns == 1 else ""
                measure_beside(
                    rows,
                    [
                        (f"sqlite-1w{suffix}", head, api),
                        (f"probe-sqlite-1w{suffix}", probe_head, probe),
                    ],
                    queries.headline,
                    opts,
                    conns=conns,
                )
        measure(
            rows,
            "sqlite-1w-mix",
            f"API SQLite {label_n}, 1 worker: all-shapes mix",
            api,
            queries.mix(),
            opts,
        )
        if not args.smoke:
            for shape, paths in queries.shapes.items():
                if shape != "state+window" and paths:
                    measure(
                        rows,
                        f"sqlite-1w-{shape}",
                        f"  shape: {shape}",
                        api,
                        paths,
                        opts,
                        short=True,
                    )
    measure_prototype(rows, "SQLite", sqlite_url, label_n, queries.headline, opts, args.smoke)
    say(f"\n## API on SQLite, {label_n} events, 1 worker, response cache on (the default)")
    with api_server("api-sqlite-1w-cache", sqlite_url, 1, cache=True).running() as api:
        warm(api, [queries.popular])
        measure(
            rows,
            "popular",
            f"API SQLite {label_n}, 1 worker: one popular query, repeated",
            api,
            [queries.popular],
            opts,
        )
        features = probe_features(api, queries.popular)
        if features["etag"] and features["status_with_if_none_match"] == 304:
            measure(
                rows,
                "conditional",
                "API SQLite: conditional request answered 304",
                api,
                [queries.popular],
                opts,
                header=f"If-None-Match: {features['etag']}",
            )
            notes["etag"] = "measured"
        else:
            notes["etag"] = (
                "not yet implemented: no ETag header, every request is a 200"
                if not features["etag"]
                else f"ETag present but If-None-Match gave {features['status_with_if_none_match']}"
            )
        notes["csv"] = (
            "not yet implemented: no CSV/export route in the OpenAPI"
            if not features["csv"]
            else "measured by `python -m bench.export` (bench/README.md)"
        )
        notes["webhooks"] = (
            "not yet implemented: no webhook route in the OpenAPI"
            if not features["webhooks"]
            else "measured by `python -m bench.webhooks` (bench/README.md)"
        )
    if not args.smoke:
        say(f"\n## API on SQLite, {label_n} events, 2 workers")
        with api_server("api-sqlite-2w", sqlite_url, 2).running() as api:
            warm(api, queries.mix(), settle_on=queries.headline)
            measure(
                rows,
                "sqlite-2w",
                f"API SQLite {label_n}, 2 workers: state+window page",
                api,
                queries.headline,
                opts,
            )
            measure(
                rows,
                "sqlite-2w-mix",
                f"API SQLite {label_n}, 2 workers: all-shapes mix",
                api,
                queries.mix(),
                opts,
            )
    if size_check:
        say(f"\n## API on SQLite, {SMALL // 1000}k events, 1 worker (data-size comparison)")
        with api_server("api-sqlite-10k", f"sqlite:///{small_db}", 1).running() as api:
            small_q = build_queries(small_db, api, SMALL, small=True, seed=args.seed)
            warm(api, small_q.headline, settle_on=small_q.headline)
            measure(
                rows,
                "sqlite-10k-1w",
                "API SQLite 10k, 1 worker: state+window page",
                api,
                small_q.headline,
                opts,
            )

    # 4. PostgreSQL
    if postgres:
        for workers in (1, 2):
            say(f"\n## API on PostgreSQL, {label_n} events, {workers} worker(s)")
            with api_server(f"api-pg-{workers}w", postgres, workers).running() as api:
                warm(api, queries.mix(), settle_on=None if args.smoke else queries.headline)
                key = f"pg-{workers}w"
                base = f"API PostgreSQL {label_n}, {workers} worker{'s' if workers > 1 else ''}"
                if workers == 1:
                    with probe_server(postgres).running() as probe:
                        warm(probe, queries.headline, settle_on=queries.headline)
                        driver = httpx.get(probe.url("/healthz"), timeout=10).json()["driver"]
                        for conns in (opts.connections, 1):
                            suffix = "-c1" if conns == 1 else ""
                            measure_beside(
                                rows,
                                [
                                    (f"pg-1w{suffix}", f"{base}: state+window page", api),
                                    (
                                        f"probe-pg-1w{suffix}",
                                        f"async probe PostgreSQL ({driver}) {label_n}, 1 worker:"
                                        " same page",
                                        probe,
                                    ),
                                ],
                                queries.headline,
                                opts,
                                conns=conns,
                            )
                else:
                    measure(rows, key, f"{base}: state+window page", api, queries.headline, opts)
                measure(rows, f"{key}-mix", f"{base}: all-shapes mix", api, queries.mix(), opts)
                if workers == 1:
                    for shape, paths in queries.shapes.items():
                        if shape != "state+window" and paths:
                            measure(
                                rows,
                                f"pg-1w-{shape}",
                                f"  shape: {shape}",
                                api,
                                paths,
                                opts,
                                short=True,
                            )
        measure_prototype(rows, "PostgreSQL", postgres, label_n, queries.headline, opts, False)

    # 5. Datasette on the same file, last: it reads all of the SQLite file, which evicts the
    # other data set from this machine's page cache.
    if use_datasette:
        say(f"\n## Datasette on the same SQLite file ({label_n})")
        try:
            with datasette_server(sqlite_db).running() as ds:
                datasette_probe(ds, queries.datasette[0])
                warm(ds, queries.datasette)
                measure(
                    rows,
                    "datasette",
                    f"Datasette SQLite {label_n}: same state+window page",
                    ds,
                    queries.datasette,
                    opts,
                )
                measure(
                    rows,
                    "datasette-c1",
                    f"Datasette SQLite {label_n}: same state+window page",
                    ds,
                    queries.datasette,
                    opts,
                    conns=1,
                )
        except (RuntimeError, httpx.HTTPError) as exc:
            # A side measurement that failed must not lose the table.
            say(f"  Datasette failed: {exc}")
            rows["datasette"] = Row(
                "datasette", "Datasette", opts.connections, note=f"failed: {exc}"[:200]
            )
    else:
        rows["datasette"] = Row(
            "datasette",
            "Datasette",
            opts.connections,
            note="skipped (--skip-datasette or not installed)",
        )

    # 6. full-text search, in-process
    say("\n## full-text search page (in-process)")
    words = {"rare": queries.rare_word, "common": queries.common_word}
    for db_name, db_url in ((f"SQLite {label_n}", sqlite_url), (f"PostgreSQL {label_n}", postgres)):
        if not db_url:
            continue
        try:
            search[db_name] = inprocess_search(db_url, words, 5)
        except Exception as exc:  # a failed side measurement must not lose the table
            say(f"  {db_name}: search measurement failed: {exc!r}")
    for db, results in search.items():
        for r in results:
            say(
                f"  {db} q={r['word']} ({r['matches']:,} matches): first {r['first_ms']} ms, "
                f"median {r['median_ms']} ms"
            )

    # 7. facets, in-process
    say("\n## facets (in-process)")
    facets: dict[str, list[dict[str, Any]]] = {}
    for db_name, db_url in ((f"SQLite {label_n}", sqlite_url), (f"PostgreSQL {label_n}", postgres)):
        if not db_url:
            continue
        try:
            facets[db_name] = inprocess_facets(db_url, 5)
        except Exception as exc:  # a failed side measurement must not lose the table
            say(f"  {db_name}: facets measurement failed: {exc!r}")
    for db, results in facets.items():
        for r in results:
            say(
                f"  {db} facets {r['filter']} ({r['total']:,} events): median {r['median_ms']} ms,"
                f" GROUP BY {r['group_by_ms']} ms, exact {r['exact']}"
            )

    storm_result = None
    if args.smoke:
        # Keeps the storm from rotting; its figures mean nothing at 10k events and 2 s.
        storm_result = storm_section(sqlite_url, queries.headline, 1, 2.0, 3.0)

    server_settings = postgres_settings(postgres) if postgres else None
    if server_settings:
        say(f"  PostgreSQL {server_settings['server_version']}: {server_settings}")

    rows["csv"] = Row("csv", "CSV export of all events", 0, note=notes["csv"])
    rows["webhooks"] = Row("webhooks", "webhook fan-out", 0, note=notes["webhooks"])
    if "conditional" not in rows:
        rows["conditional"] = Row("conditional", "conditional request (304)", 0, note=notes["etag"])

    verdicts = judge(rows, search, n, notes, facets)
    table = render(rows, verdicts, search, facets)
    print(table)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    result = {
        "when": stamp,
        "events": n,
        "seed": args.seed,
        "options": opts.__dict__,
        "machine": machine(),
        "postgresql": server_settings,
        "rows": {
            k: {
                **r.__dict__,
                "median_rps": r.median("rps"),
                "median_p50_ms": r.median("p50_ms"),
                "median_p99_ms": r.median("p99_ms"),
                "peak_rss_mb": r.peak_rss(),
            }
            for k, r in rows.items()
        },
        "search": search,
        "facets": facets,
        "storm": storm_result,
        "targets": [v.__dict__ for v in verdicts],
        "table_markdown": table,
        "seconds": round(time.perf_counter() - t_start, 1),
    }
    out_file = OUT / f"results-{stamp}.json"
    out_file.write_text(json.dumps(result, indent=1, default=str))
    met = sum(v.ok is True for v in verdicts)
    missed = sum(v.ok is False for v in verdicts)
    open_ = sum(v.ok is None for v in verdicts)
    say(
        f"\nbench: {n:,} events, {sum(len(r.runs) for r in rows.values())} wrk runs in "
        f"{result['seconds']:.0f} s; targets met {met}, missed {missed}, not measurable {open_}; "
        f"headline {fmt(rows['sqlite-1w'].median('rps'))} req/s; results in "
        f"{out_file.relative_to(ROOT)}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
