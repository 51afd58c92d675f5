"""What-if measurements behind the recommendations in bench/README.md (webhooks section).

    python -m bench.webhook_whatif [--deliveries N] [--database-url URL] [--runs R]

Drains N queued deliveries in this process with variants of the worker and prints deliveries/s
(first to last receipt) for each. Nothing in app/ is changed: the variants are subclasses here.

- `as-is`: `app.webhooks.worker.make_worker` exactly as deployed (concurrency 8);
- `as-is, concurrency 1`: the same with one sender thread, so no two record() transactions
  fight for SQLite's write lock;
- `batched`: claim 64 at a time, send them on the same 8 threads, then write every attempt of
  the batch in ONE transaction (executemany), with one endpoint-health UPDATE per batch instead
  of a SELECT ... FOR UPDATE + UPDATE per delivery, and reap at most once a second. Failures
  still go through the original per-delivery `record()`.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import time
from typing import Any

from bench.webhooks import LOCAL, Db, Receiver, drain_in_process, fresh_database, say, subscribe


def batched_worker_class() -> type:
    from sqlalchemy import bindparam, insert, update

    from app.db import begin_write
    from app.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
    from app.webhooks.worker import Job, Result, Worker

    deliveries = WebhookDelivery.__table__
    attempts = WebhookAttempt.__table__
    endpoints = WebhookEndpoint.__table__

    class BatchedWorker(Worker):
        batch = 64
        last_reap = 0.0

        def run_once(self) -> int:
            if not self.has_work():
                return 0
            if time.monotonic() - self.last_reap > 1.0:
                self.reap()
                self.last_reap = time.monotonic()
            jobs = self.claim(self.batch)
            results = list(self._pool.map(self.send, jobs))
            ok = [(j, r) for j, r in zip(jobs, results, strict=True) if r.ok]
            for job, result in zip(jobs, results, strict=True):
                if not result.ok:
                    self.record_batch([(job, result)])
            if ok:
                self.record_ok(ok)
            return len(jobs)

        def record_ok(self, done: list[tuple[Job, Result]]) -> None:
            with self.session_factory() as session, session.begin():
                begin_write(session)
                now = self.clock()
                conn = session.connection()
                conn.execute(
                    update(deliveries)
                    .where(
                        deliveries.c.id == bindparam("b_id"),
                        deliveries.c.status == "in_flight",
                        deliveries.c.lease_owner == self.id,
                        deliveries.c.attempt_count == bindparam("b_count"),
                    )
                    .values(
                        status="succeeded",
                        round_attempts=bindparam("b_round"),
                        next_attempt_at=None,
                        lease_owner=None,
                        lease_expires_at=None,
                        last_status_code=bindparam("b_status"),
                        last_error_kind=None,
                        completed_at=now,
                    ),
                    [
                        {
                            "b_id": j.delivery_id,
                            "b_count": j.attempt_count,
                            "b_round": j.round_attempts + 1,
                            "b_status": r.status,
                        }
                        for j, r in done
                    ],
                )
                conn.execute(
                    insert(attempts),
                    [
                        {
                            "delivery_id": j.delivery_id,
                            "number": j.attempt_count,
                            "trigger": j.trigger,
                            "worker": self.id,
                            "started_at": r.started_at,
                            "duration_ms": r.duration_ms,
                            "webhook_timestamp": r.timestamp,
                            "response_status": r.status,
                            "response_headers": r.headers,
                            "response_body": r.body,
                            "error_kind": None,
                            "error_message": None,
                            "next_attempt_at": None,
                        }
                        for j, r in done
                    ],
                )
                conn.execute(
                    update(endpoints)
                    .where(endpoints.c.id.in_({j.endpoint.id for j, _ in done}))
                    .values(
                        consecutive_failures=0,
                        failing_since=None,
                        warned_at=None,
                        last_success_at=now,
                    )
                )
            with self.stats.lock:
                self.stats.attempts += len(done)
                self.stats.succeeded += len(done)

    return BatchedWorker


def drain(db: Db, receiver: Receiver, worker: Any, n: int, tag: str) -> float:
    event_ids = [f"2025-04-01-whatif-{tag}-{i:06d}" for i in range(n)]
    db.create_events(event_ids, 50)
    ids = [m[0] for m in db.messages(event_ids)]
    try:
        deadline = time.monotonic() + max(120.0, n / 20)
        while worker.run_once():
            if time.monotonic() > deadline:
                raise RuntimeError("drain too slow")
    finally:
        worker.close()
        worker.client.close()
    if not receiver.wait_all(ids, timeout=30):
        raise RuntimeError(f"{tag}: not everything arrived")
    statuses = db.statuses(ids)
    if statuses != {"succeeded": n}:
        raise RuntimeError(f"{tag}: {statuses}")
    first, last = receiver.span(ids)
    return (n - 1) / (last - first)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.webhook_whatif", description=__doc__)
    parser.add_argument("--deliveries", type=int, default=1000, metavar="N", help="default 1000")
    parser.add_argument("--database-url", metavar="URL", help="PostgreSQL server; default SQLite")
    parser.add_argument("--runs", type=int, default=2, metavar="R", help="default 2")
    args = parser.parse_args(argv)
    logging.getLogger("httpx").setLevel(logging.WARNING)

    from app.config import Settings
    from app.webhooks import ssrf
    from app.webhooks.worker import Policy, make_worker

    batched = batched_worker_class()
    figures: dict[str, list[float]] = {}
    receiver = Receiver()
    try:
        with fresh_database(args.database_url) as url:
            settings = Settings(
                database_url=url,
                cursor_secret="bench-cursor-secret",  # noqa: S106 - benchmark cursors only
                webhook_worker="off",
                webhook_allowed_subnets=[LOCAL],
            )
            db = Db(url)
            try:
                subscribe(db, receiver.url)
                drain_in_process(settings, db.factory)

                def variants() -> dict[str, Any]:
                    client = ssrf.guarded_client([LOCAL], timeout=15)
                    return {
                        "as-is (make_worker, concurrency 8)": lambda: make_worker(
                            settings, db.factory
                        ),
                        "as-is, concurrency 1": lambda: make_worker(
                            settings.model_copy(update={"webhook_concurrency": 1}), db.factory
                        ),
                        "batched record (64 a claim, 8 threads)": lambda: batched(
                            db.factory,
                            client,
                            Policy.from_settings(settings),
                            concurrency=8,
                        ),
                    }

                for r in range(args.runs):
                    for i, (name, make) in enumerate(variants().items()):
                        rate = drain(db, receiver, make(), args.deliveries, f"r{r}v{i}")
                        figures.setdefault(name, []).append(rate)
                        say(f"run {r + 1}: {name}: {rate:,.0f} deliveries/s")
            finally:
                db.close()
    finally:
        receiver.close()
    for name, rates in figures.items():
        med = statistics.median(rates)
        print(f"| {name:<42} | {med:,.0f} [{min(rates):,.0f}-{max(rates):,.0f}] |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
