"""`python -m app.webhooks.worker`: deliver queued webhooks from a process of its own.

The worker itself (claiming, sending, recording) is app/webhooks/worker.py; this module is its
command line: flags, logging, signals, and the hand-back of leases on shutdown.
"""

import argparse
import logging
import signal
import sys
import threading
import time

from app.config import get_settings
from app.db import create_db_engine, create_session_factory
from app.observability import configure_logging
from app.webhooks.wake import CommitListener
from app.webhooks.worker import SHUTDOWN_GRACE_SECONDS, Worker, make_worker, retention_job

logger = logging.getLogger("app.webhooks")


def say(line: str) -> None:
    """Progress for the person running the command; stderr, so stdout stays clean."""
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m app.webhooks.worker",
        description="Deliver queued webhooks until stopped (Ctrl-C or SIGTERM). Configuration"
        " comes from the environment (DATABASE_URL, WEBHOOK_*); flags override it. Safe to run"
        " several at once on PostgreSQL; on SQLite run one.",
    )
    parser.add_argument(
        "--concurrency", type=int, help="requests in flight at once (WEBHOOK_CONCURRENCY, 8)"
    )
    parser.add_argument(
        "--poll-interval",
        type=float,
        help="seconds between queue checks when idle (WEBHOOK_POLL_INTERVAL, 0.05); a commit"
        " that queues deliveries wakes the worker sooner (app/webhooks/wake.py)",
    )
    parser.add_argument(
        "--lease",
        type=float,
        help="seconds a claimed delivery stays ours; after that another worker resends it"
        " (WEBHOOK_LEASE_SECONDS, 60)",
    )
    parser.add_argument(
        "--shutdown-grace",
        type=float,
        default=SHUTDOWN_GRACE_SECONDS,
        help="on SIGTERM or Ctrl-C, seconds to let deliveries in flight finish before their"
        f" leases go back to the queue for another worker ({SHUTDOWN_GRACE_SECONDS:g})",
    )
    parser.add_argument("--id", help="worker name in the delivery log (host-pid-random)")
    parser.add_argument("--once", action="store_true", help="deliver what is due now, then exit")
    parser.add_argument(
        "--retention-only",
        action="store_true",
        help="only delete messages, deliveries and attempts past retention, then exit",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress lines, only the summary")
    args = parser.parse_args(argv)

    overrides: dict[str, object] = {}
    if args.concurrency:
        overrides["webhook_concurrency"] = args.concurrency
    if args.poll_interval is not None:
        overrides["webhook_poll_interval"] = args.poll_interval
    if args.lease is not None:
        overrides["webhook_lease_seconds"] = args.lease
    settings = get_settings().model_copy(update=overrides)
    # JSON lines with secrets redacted, as the API logs; configure_logging sets every level.
    configure_logging(settings.log_level, settings.log_format)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    engine = create_db_engine(settings.database_url, pool_size=2)
    worker = make_worker(
        settings, create_session_factory(engine), **({"worker_id": args.id} if args.id else {})
    )
    retention = retention_job(settings, worker)
    started = time.monotonic()
    stop = threading.Event()
    wake = threading.Event()
    listener = CommitListener(engine, wake) if CommitListener.supported(engine) else None

    def _stop(signum: int, _frame: object) -> None:
        stop.set()
        wake.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)

    def progress(w: Worker) -> None:
        if not args.quiet:
            say(f"[{w.id}] {w.stats.summary()}")

    say(f"webhook worker {worker.id} started")
    try:
        if args.retention_only:
            retention()
        elif args.once:
            while worker.run_once():
                progress(worker)
        else:
            # The loop runs in a thread so that this one, which receives the signals, can hand
            # back the leases of sends still waiting on a slow receiver.
            if listener is not None:
                listener.start()
            loop = threading.Thread(
                target=worker.run,
                args=(stop,),
                kwargs={
                    "wake": wake,
                    "poll_interval": settings.webhook_poll_interval,
                    "retention": retention,
                    "progress": progress,
                },
                name="webhook-worker",
            )
            loop.start()
            while not stop.wait(0.5):
                pass
            say(f"webhook worker {worker.id} stopping")
            try:
                worker.release_in_flight(args.shutdown_grace)
            except Exception:
                logger.exception("webhook worker %s: could not release its leases", worker.id)
            loop.join()
    finally:
        if listener is not None:
            listener.stop()
        worker.close()
        worker.client.close()
        engine.dispose()
        elapsed = time.monotonic() - started
        say(f"webhook worker {worker.id} stopped after {elapsed:.1f} s: {worker.stats.summary()}")
    return 0
