"""The production shape of compose.yaml, as processes on this machine: a PostgreSQL database,
Redis, two API replicas (uvicorn, one worker each, on ports of their own), nginx in front of
them with the repository's proxy settings, and two webhook worker processes.

It always runs on PostgreSQL, like compose.yaml (replicas need a database server), also when the
rest of the suite runs on SQLite: the database is a throwaway one on the server of DATABASE_URL,
or on 127.0.0.1:5432, created and dropped here. Redis is the running server, under a key prefix
of the package's own, deleted afterwards. Nothing here is ever skipped.
"""

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis
from alembic import command
from sqlalchemy import Engine, create_engine, make_url, text
from sqlalchemy.exc import OperationalError

from app import writes
from app.auth import service as auth_service
from app.callers import Scope
from app.config import PROJECT_ROOT, normalise_database_url
from app.db import create_db_engine
from app.seed import load
from tests.cluster.nginx import Nginx, stop
from tests.conftest import alembic_config
from tests.live import LiveServer
from tests.webhooks.conftest import LOCAL, Receiver

POSTGRES_SERVER = (
    normalise_database_url(os.environ["DATABASE_URL"])
    if os.environ.get("DATABASE_URL", "").startswith("postgres")
    else normalise_database_url("postgresql://postgres@127.0.0.1:5432/postgres")
)
REDIS_URL = "redis://127.0.0.1:6379/0"
PATIENCE = 120.0
# Anonymous callers (through nginx, all of this test's traffic is 127.0.0.1) and keys.
ANONYMOUS_BUDGET = 200
KEYED_BUDGET = 1_000_000
WINDOW_SECONDS = 3600
WEBHOOK_CONCURRENCY = 8


def admin_engine() -> Engine:
    return create_engine(
        make_url(POSTGRES_SERVER).set(database="postgres"), isolation_level="AUTOCOMMIT"
    )


@dataclass
class Worker:
    """`python -m app.webhooks.worker` in a process of its own."""

    name: str
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> "Worker":
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "app.webhooks.worker", "--id", self.name],
            cwd=PROJECT_ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        return self

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def stop(self) -> None:
        stop(self.process)


@dataclass
class Cluster:
    url: str
    name: str
    engine: Engine
    tokens: dict[str, str]
    prefix: str
    folder: Path
    env: dict[str, str]
    receiver: Receiver
    replicas: dict[str, LiveServer] = field(default_factory=dict)
    workers: list[Worker] = field(default_factory=list)
    proxy: Nginx | None = None

    def auth(self, who: str = "editor") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}

    def scalar(self, sql: str, **params: Any) -> Any:
        with self.engine.connect() as conn:
            return conn.execute(text(sql), params).scalar()

    def replica(self, name: str, port: int | None = None) -> LiveServer:
        """Start replica `name` (again, on `port` if given, as after a crash)."""
        server = LiveServer(self.url, self.folder / f"replica-{name}.log", **self.env)
        if port is not None:
            server.port, server.base_url = port, f"http://127.0.0.1:{port}"
        self.replicas[name] = server.start(timeout=PATIENCE)
        return server

    def worker(self, n: int) -> Worker:
        env = {
            **os.environ,
            **self.env,
            "DATABASE_URL": self.url,
            "WEBHOOK_CONCURRENCY": str(WEBHOOK_CONCURRENCY),
            # A killed worker's deliveries go back to the queue when its leases run out.
            "WEBHOOK_LEASE_SECONDS": "4",
            "WEBHOOK_TIMEOUT": "2",
            "WEBHOOK_RETRY_SCHEDULE": "0,1,1,1,1,1,1,1,1,1",
            "WEBHOOK_RETRY_JITTER": "0",
            "WEBHOOK_OVERLOAD_MIN_DELAY": "1",
        }
        worker = Worker(f"worker-{n}", env, self.folder / f"worker-{n}.log").start()
        if n < len(self.workers):
            self.workers[n] = worker
        else:
            self.workers.append(worker)
        return worker

    def logs(self) -> str:
        parts = [f"--- {s.log_path.name}\n{s.log()[-3000:]}" for s in self.replicas.values()]
        parts += [f"--- {w.log_path.name}\n{w.log_path.read_text()[-3000:]}" for w in self.workers]
        if self.proxy is not None:
            parts.append(f"--- nginx\n{self.proxy.log()[-3000:]}")
        return "\n".join(parts)


def seeded(url: str) -> dict[str, str]:
    command.upgrade(alembic_config(url), "head")
    engine = create_db_engine(url)
    tokens: dict[str, str] = {}
    with writes.session_factory(engine)() as session:
        load(session, PROJECT_ROOT / "seed", progress=lambda _: None)
        session.commit()
    with writes.session_factory(engine).begin() as session:
        for name, scopes in {
            "editor": [Scope.editor],
            "hooks": [Scope.webhooks],
            "budget": [Scope.editor],
        }.items():
            _, tokens[name] = auth_service.create_key(session, f"cluster-{name}", scopes)
    engine.dispose()
    return tokens


@pytest.fixture(scope="package")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    admin = admin_engine()
    name = f"dtl_cluster_{uuid.uuid4().hex[:10]}"
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except OperationalError as exc:
        admin.dispose()
        pytest.fail(f"the cluster tests need PostgreSQL at {POSTGRES_SERVER}: {exc}")
    url = make_url(POSTGRES_SERVER).set(database=name).render_as_string(hide_password=False)
    prefix = f"dtl-cluster:{uuid.uuid4().hex}:"
    folder = tmp_path_factory.mktemp("cluster")
    folder.chmod(0o755)
    receiver = Receiver()
    env = {
        "CURSOR_SECRET": "cluster-cursor-secret",
        "WEBHOOK_WORKER": "off",
        "WEBHOOK_ALLOWED_SUBNETS": ",".join(LOCAL),
        "RATE_LIMIT_ENABLED": "true",
        "RATE_LIMIT_STORE": "redis",
        "REDIS_URL": REDIS_URL,
        "RATE_LIMIT_REDIS_PREFIX": prefix,
        "RATE_LIMIT_ANONYMOUS": str(ANONYMOUS_BUDGET),
        "RATE_LIMIT_KEYED": str(KEYED_BUDGET),
        "RATE_LIMIT_WINDOW_SECONDS": str(WINDOW_SECONDS),
        # nginx at 127.0.0.1 is the proxy whose X-Forwarded-For the replicas believe.
        "FORWARDED_ALLOW_IPS": "127.0.0.1",
        # Live streams re-read only when woken: a change reaches another replica's streams by
        # PostgreSQL's NOTIFY or not at all (tests/cluster/test_stream.py).
        "STREAM_POLL_SECONDS": "3600",
        "STREAM_HEARTBEAT_SECONDS": "3600",
    }
    cluster = Cluster(url, name, create_db_engine(url), seeded(url), prefix, folder, env, receiver)
    try:
        cluster.replica("a")
        cluster.replica("b")
        ports = [server.port for server in cluster.replicas.values()]
        cluster.proxy = Nginx(folder, ports).start()
        cluster.worker(0)
        cluster.worker(1)
        yield cluster
    finally:
        sys.stdout.write(cluster.logs())
        if cluster.proxy is not None:
            cluster.proxy.stop()
        for worker in cluster.workers:
            worker.stop()
        for server in cluster.replicas.values():
            server.kill()
        receiver.close()
        cluster.engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS true'))
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
        client = redis.Redis.from_url(REDIS_URL)
        stale = list(client.scan_iter(match=prefix + "*"))
        if stale:
            client.delete(*stale)
        client.close()
