"""The delivery worker: claim due deliveries under a lease, POST them, record each attempt.

Runs embedded in the API process (a thread; the default for `make run` on SQLite) or as its own
process, `python -m app.webhooks.worker`; on PostgreSQL start as many as you like. No database
transaction is ever open while a request is in flight.

Throughput (bench/README.md, webhook section): a turn claims up to `CLAIM_BATCH` deliveries in
one statement, sends them on `concurrency` threads, and records the results from the loop's own
thread a chunk at a time, each chunk in one transaction: one UPDATE for the successes (fenced on
the lease, per delivery), one multi-row INSERT of their attempts, one endpoint-health UPDATE; a
failure keeps its own fenced UPDATE, retry schedule and health rules, in the same transaction.
A claimed delivery whose send could no longer finish within its lease (the earlier ones were
slow) is not sent but handed straight back, so a big claim never turns into a lapsed lease.

Stopping (SIGTERM, or the API process shutting down) claims nothing more, gives the deliveries in
flight a grace period to finish and be recorded, then hands the leases of those still waiting on
a slow receiver back to the queue, due at once, so another worker resends them without waiting
for the lease to expire.
"""

import datetime as dt
import email.utils
import logging
import os
import random
import secrets
import socket
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from queue import Empty, SimpleQueue
from typing import TypeVar, cast

import httpx
from sqlalchemy import (
    BindParameter,
    Select,
    Table,
    and_,
    bindparam,
    insert,
    or_,
    select,
    tuple_,
    update,
)
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.sql.dml import ReturningUpdate

from app import addresses
from app.config import Settings
from app.db import begin_write, create_db_engine, create_session_factory, utcnow
from app.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookMessage
from app.webhooks import service, signing, ssrf

# httpx logs every request at INFO: one line per delivery is noise at volume, and costs time.
logging.getLogger("httpx").setLevel(logging.WARNING)
logger = logging.getLogger("app.webhooks")

USER_AGENT = "DiplomaticTimeline-Webhooks/1.0"
# Response headers kept in the delivery log; a redirect's Location only from public receivers.
SHOWN_HEADERS = ("content-type", "retry-after", "location")
SHOWN_HEADERS_INTERNAL = ("content-type", "retry-after")
OVERLOADED = frozenset({429, 502, 504})
RETENTION_EVERY = dt.timedelta(hours=1)
# A stopping worker waits this long for its deliveries in flight before releasing their leases.
SHUTDOWN_GRACE_SECONDS = 5.0
# While the database is down, a turn fails at once; wait longer after each failure, up to this.
MAX_FAILURE_BACKOFF_SECONDS = 5.0
# Deliveries claimed in one statement (at least the concurrency). One claim, and one recording
# transaction per chunk of results, instead of one transaction per delivery, is most of the
# worker's throughput.
CLAIM_BATCH = 64
# Results wait at most this long to be recorded together with others, so a slow send in the
# batch never holds back the record of the fast ones (nor a shutdown's grace period).
RECORD_WITHIN_SECONDS = 0.02
# Expired leases are reclaimed at most this often while there is work (and whenever a claim
# comes back empty), not with a write transaction on every turn.
REAP_EVERY_SECONDS = 1.0
Item = TypeVar("Item")
# Claims and results are written on the tables, not the entities: the ORM's bulk UPDATE and
# INSERT paths cost a noticeable share of the worker's CPU per delivery, for nothing the session
# needs (bench/README.md, webhook section).
_DELIVERY_TABLE = cast(Table, WebhookDelivery.__table__)
_ATTEMPT_TABLE = cast(Table, WebhookAttempt.__table__)
_ENDPOINT_TABLE = cast(Table, WebhookEndpoint.__table__)
# Their columns: one ORM attribute in a statement (`WebhookDelivery.id` in a WHERE) sends the whole
# statement down the ORM's bulk path again.
_DC = _DELIVERY_TABLE.c
# Built once: an idle worker asks this many times a second, in the API's process too.
_now: BindParameter[dt.datetime] = bindparam("now")
_DUE = (
    select(WebhookDelivery.id)
    .where(
        or_(
            and_(WebhookDelivery.status == "pending", WebhookDelivery.next_attempt_at <= _now),
            and_(WebhookDelivery.status == "in_flight", WebhookDelivery.lease_expires_at < _now),
        )
    )
    .limit(1)
)
# The hot path's statements are built once, with what varies as bound parameters. Built on each
# call with the claim's ids or the lease fence's (id, attempt) pairs as literal lists, building
# and cache-keying them cost more CPU than running them (bench/README.md, webhook section).
_ids: BindParameter[list[int]] = bindparam("ids", expanding=True)
# The lease fence: these deliveries (`fence`: (id, attempt_count) pairs, the attempt we claimed),
# still in flight and leased to `owner`.
_STILL_OURS = (
    tuple_(_DC.id, _DC.attempt_count).in_(bindparam("fence", expanding=True)),
    _DC.status == "in_flight",
    _DC.lease_owner == bindparam("owner"),
)
_CLAIM_DUE = (
    select(_DC.id)
    .where(_DC.status == "pending", _DC.next_attempt_at <= _now)
    .order_by(_DC.next_attempt_at, _DC.id)
    .limit(bindparam("limit"))
)


def _claim_statement(due: Select[tuple[int]]) -> ReturningUpdate[tuple[int]]:
    return (
        update(_DELIVERY_TABLE)
        .where(_DC.id.in_(due))
        .values(
            status="in_flight",
            lease_owner=bindparam("owner"),
            lease_expires_at=bindparam("lease_until"),
            attempt_count=_DC.attempt_count + 1,
        )
        .returning(_DC.id)
    )


# On PostgreSQL SKIP LOCKED hands each row to exactly one worker; SQLite has a single writer.
_CLAIM = {
    "postgresql": _claim_statement(_CLAIM_DUE.with_for_update(skip_locked=True)),
    "sqlite": _claim_statement(_CLAIM_DUE),
}
_CLAIMED_JOBS = (
    select(
        WebhookDelivery.id,
        WebhookDelivery.attempt_count,
        WebhookDelivery.round_attempts,
        WebhookDelivery.trigger,
        WebhookMessage.id,
        WebhookMessage.type,
        WebhookMessage.payload,
        WebhookDelivery.endpoint_id,
    )
    .join(WebhookMessage, WebhookMessage.id == WebhookDelivery.message_id)
    .where(WebhookDelivery.id.in_(_ids))
    .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
)
_ENDPOINTS = select(WebhookEndpoint).where(WebhookEndpoint.id.in_(_ids))
_SUCCEEDED = (
    update(_DELIVERY_TABLE)
    .where(*_STILL_OURS)
    .values(
        status="succeeded",
        # == job.round_attempts + 1: the fence proves the row is unchanged.
        round_attempts=_DC.round_attempts + 1,
        next_attempt_at=None,
        lease_owner=None,
        lease_expires_at=None,
        last_status_code=bindparam("code"),
        last_error_kind=None,
        completed_at=bindparam("at"),
    )
    .returning(_DC.id)
)
# A success only resets the health columns: one UPDATE, no read, and no row lock held beyond it
# (bench/README.md, webhook section).
_HEALTHY = (
    update(_ENDPOINT_TABLE)
    .where(_ENDPOINT_TABLE.c.id.in_(_ids))
    .values(
        consecutive_failures=0,
        failing_since=None,
        warned_at=None,
        last_success_at=bindparam("at"),
    )
)
_SKIPPED = (
    update(_DELIVERY_TABLE)
    .where(_DC.id.in_(_ids))
    .values(
        status="skipped",
        lease_owner=None,
        lease_expires_at=None,
        next_attempt_at=None,
        attempt_count=_DC.attempt_count - 1,
        completed_at=bindparam("at"),
    )
)
_UNCLAIMED = (
    update(_DELIVERY_TABLE)
    .where(*_STILL_OURS)
    .values(
        status="pending",
        lease_owner=None,
        lease_expires_at=None,
        attempt_count=_DC.attempt_count - 1,
    )
)


@dataclass(frozen=True, slots=True)
class Policy:
    """The retry and HTTP rules, from Settings; tests pass tiny values."""

    schedule: tuple[float, ...]
    jitter: float
    overload_min_delay: float
    timeout: float
    max_response_bytes: int
    stored_response_bytes: int
    lease: dt.timedelta
    warn_after_failures: int
    disable_after: dt.timedelta

    @classmethod
    def from_settings(cls, s: Settings) -> "Policy":
        return cls(
            schedule=tuple(s.webhook_retry_schedule),
            jitter=s.webhook_retry_jitter,
            overload_min_delay=s.webhook_overload_min_delay,
            timeout=s.webhook_timeout,
            max_response_bytes=s.webhook_max_response_bytes,
            stored_response_bytes=s.webhook_stored_response_bytes,
            lease=dt.timedelta(seconds=s.webhook_lease_seconds),
            warn_after_failures=s.webhook_warn_after_failures,
            disable_after=dt.timedelta(days=s.webhook_disable_after_days),
        )


@dataclass(frozen=True, slots=True)
class Job:
    delivery_id: int
    attempt_count: int
    round_attempts: int
    trigger: str
    webhook_id: str
    event_type: str
    payload: str | None
    endpoint: WebhookEndpoint


@dataclass(slots=True)
class Result:
    started_at: dt.datetime
    timestamp: int
    duration_ms: int = 0
    status: int | None = None
    headers: dict[str, str] | None = None
    length: int | None = None
    body: str | None = None
    error_kind: str | None = None
    error_message: str | None = None
    retry_after: float | None = None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


@dataclass(slots=True)
class Stats:
    attempts: int = 0
    succeeded: int = 0
    failed: int = 0
    lost_leases: int = 0
    reaped: int = 0
    released: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def summary(self) -> str:
        return (
            f"{self.attempts} attempts, {self.succeeded} succeeded, {self.failed} failed,"
            f" {self.lost_leases} lost leases, {self.reaped} expired leases reclaimed,"
            f" {self.released} released at shutdown"
        )


def retry_after_seconds(value: str | None, now: dt.datetime) -> float | None:
    """`Retry-After` as seconds (a number or an HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - now).total_seconds())


class Worker:
    def __init__(
        self,
        session_factory: sessionmaker[Session],
        client: ssrf.WebhookClient,
        policy: Policy,
        *,
        clock: Callable[[], dt.datetime] = utcnow,
        worker_id: str | None = None,
        concurrency: int = 8,
        batch: int = CLAIM_BATCH,
        rng: random.Random | None = None,
    ) -> None:
        self.session_factory = session_factory
        self.client = client
        self.policy = policy
        self.clock = clock
        self.id = worker_id or f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"
        self.concurrency = concurrency
        self.batch = max(batch, concurrency)
        self._next_reap = 0.0
        self.rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography
        self.stats = Stats()
        self._pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="webhook")
        # Claimed deliveries not yet recorded, and those handed back by `release_in_flight`.
        self._in_flight: dict[int, Job] = {}
        self._released: set[int] = set()
        self._settled = threading.Condition()
        self._stopping = False

    def close(self) -> None:
        self._pool.shutdown(wait=True)

    def release_in_flight(self, grace: float = SHUTDOWN_GRACE_SECONDS) -> int:
        """Wait up to `grace` seconds for the deliveries in flight to be recorded, then hand the
        rest back to the queue, due now. Called when stopping; returns how many were released.

        A released send may still be answered later: that result goes to the attempt log only
        (`record` is fenced on the lease), and the receiver may see the message twice, with the
        same webhook-id, which at-least-once delivery allows.
        """
        with self._settled:
            self._stopping = True
            self._settled.wait_for(lambda: not self._in_flight, timeout=grace)
            jobs = list(self._in_flight.values())
            self._released.update(job.delivery_id for job in jobs)
        if not jobs:
            return 0
        with self.session_factory() as session, session.begin():
            begin_write(session)
            released = int(
                session.execute(
                    update(WebhookDelivery)
                    .where(
                        WebhookDelivery.id.in_([job.delivery_id for job in jobs]),
                        WebhookDelivery.status == "in_flight",
                        WebhookDelivery.lease_owner == self.id,
                    )
                    .values(
                        status="pending",
                        lease_owner=None,
                        lease_expires_at=None,
                        next_attempt_at=self.clock(),
                    )
                    .execution_options(synchronize_session=False)
                ).rowcount  # type: ignore[attr-defined]
            )
        logger.warning("webhook_leases_released worker=%s count=%s", self.id, released)
        with self.stats.lock:
            self.stats.released += released
        return released

    # --- the queue ---------------------------------------------------------------------

    def reap(self) -> int:
        """Return deliveries whose worker died (lease expired) to the queue, same webhook-id."""
        with self.session_factory() as session, session.begin():
            begin_write(session)
            now = self.clock()
            result = session.execute(
                update(WebhookDelivery)
                .where(
                    WebhookDelivery.status == "in_flight", WebhookDelivery.lease_expires_at < now
                )
                .values(status="pending", lease_owner=None, lease_expires_at=None)
                .execution_options(synchronize_session=False)
            )
            reaped = int(result.rowcount)  # type: ignore[attr-defined]
        if reaped:
            logger.warning("webhook_leases_expired count=%s", reaped)
            self.stats.reaped += reaped
        return reaped

    def claim(self, limit: int) -> list[Job]:
        """Take up to `limit` due deliveries in one statement (`_CLAIM`)."""
        with self.session_factory() as session, session.begin():
            begin_write(session)
            now = self.clock()
            claimed = session.execute(
                _CLAIM[session.get_bind().dialect.name],
                {
                    "now": now,
                    "limit": limit,
                    "owner": self.id,
                    "lease_until": now + self.policy.lease,
                },
            ).scalars()
            ids = list(claimed)
            if not ids:
                return []
            rows = session.execute(_CLAIMED_JOBS, {"ids": ids}).all()
            # Each endpoint once, not once a row: a claim's deliveries share a few endpoints, and
            # converting an endpoint's dates and JSON columns for every row was a large share of
            # the claim's CPU (bench/README.md, webhook section).
            endpoint_ids = sorted({row.endpoint_id for row in rows})
            endpoints = {e.id: e for e in session.scalars(_ENDPOINTS, {"ids": endpoint_ids})}
            # Disabling an endpoint skips its pending deliveries, but one queued by a change
            # that committed just after (it saw the endpoint still enabled) is pending still:
            # skipped here, never sent. A revoked key's endpoints get nothing more.
            off = [row[0] for row in rows if not endpoints[row.endpoint_id].enabled]
            if off:
                session.execute(_SKIPPED, {"ids": off, "at": now})
            return [
                Job(delivery, count, rounds, trigger, webhook_id, kind, payload, endpoints[to])
                for delivery, count, rounds, trigger, webhook_id, kind, payload, to in rows
                if endpoints[to].enabled
            ]

    # --- one attempt -------------------------------------------------------------------

    def send(self, job: Job) -> Result:
        now = self.clock()
        result = Result(started_at=now, timestamp=int(now.timestamp()))
        if job.payload is None:
            result.error_kind, result.error_message = "expired", "payload archived"
            return result
        body = job.payload.encode()
        headers = {
            "content-type": "application/json",
            "user-agent": USER_AGENT,
            "webhook-id": job.webhook_id,
            "webhook-timestamp": str(result.timestamp),
            "webhook-signature": signing.signature_header(
                service.signing_secrets(job.endpoint, now), job.webhook_id, result.timestamp, body
            ),
            "x-timeline-event-type": job.event_type,
        }
        start = time.monotonic()
        try:
            with self.client.post(job.endpoint.url, content=body, headers=headers) as r:
                received = bytearray()
                # Raw bytes, capped: a receiver cannot make us buffer or decompress a bomb.
                for chunk in r.iter_raw():
                    received += chunk
                    if len(received) >= self.policy.max_response_bytes:
                        break
                    if time.monotonic() - start > self.policy.timeout:
                        raise httpx.ReadTimeout("total timeout exceeded")
                result.status = r.status_code
                result.length = min(len(received), self.policy.max_response_bytes)
                # The subscriber reads the log: what an internal service answered (an
                # allowlisted address) is none of its business, beyond status and length.
                peer = ssrf.peer_address(r)
                public = peer is not None and addresses.is_public(peer)
                result.headers = {
                    k: r.headers[k]
                    for k in (SHOWN_HEADERS if public else SHOWN_HEADERS_INTERNAL)
                    if k in r.headers
                }
                if public:
                    stored = bytes(received[: self.policy.stored_response_bytes])
                    result.body = stored.decode("utf-8", errors="replace").replace("\x00", "")
                result.retry_after = retry_after_seconds(r.headers.get("retry-after"), now)
                if not result.ok:
                    result.error_kind = "redirect" if 300 <= r.status_code < 400 else "http_status"
        except httpx.TimeoutException as exc:
            result.error_kind, result.error_message = "timeout", str(exc) or "timed out"
        except httpx.ConnectError as exc:
            blocked = isinstance(exc.__cause__, ssrf.SSRFBlocked)
            result.error_kind = "ssrf_blocked" if blocked else "connect"
            # The guard's own words, which never name the resolved (internal) addresses.
            result.error_message = str(exc.__cause__) if blocked else str(exc)[:500]
        except httpx.HTTPError as exc:
            result.error_kind, result.error_message = "network", str(exc)[:500]
        result.duration_ms = int((time.monotonic() - start) * 1000)
        return result

    def _delay(self, round_attempts: int, result: Result) -> float:
        scheduled = self.policy.schedule[round_attempts]
        delay = scheduled * (1 + self.rng.uniform(-self.policy.jitter, self.policy.jitter))
        if result.retry_after is not None:
            # Honoured, but clamped: a receiver may slow us down, not park a message forever.
            delay = min(max(result.retry_after, delay), 2 * delay)
        if result.status in OVERLOADED or result.error_kind == "timeout":
            delay = max(delay, self.policy.overload_min_delay)
        return delay

    def record_batch(self, done: list[tuple[Job, Result]]) -> None:
        """Write the attempts and the deliveries' new states in one transaction, each fenced on
        our lease: if a lease was lost (we were too slow and another worker took over) only its
        log row is kept. Successes are written in bulk; a failure goes through `_record_failure`
        (retry schedule, 410, warnings, auto-disable), after the successes, so that a failure is
        never hidden by a success of the same endpoint in the same chunk."""
        ok = [(job, result) for job, result in done if result.ok]
        with self.session_factory() as session, session.begin():
            begin_write(session)
            now = self.clock()
            fenced: set[int] = set()
            # One statement per status code (almost always a single one).
            by_status: dict[int | None, list[Job]] = {}
            for job, result in ok:
                by_status.setdefault(result.status, []).append(job)
            for code, jobs in by_status.items():
                fenced.update(
                    session.execute(
                        _SUCCEEDED, {**self._fence(jobs), "code": code, "at": now}
                    ).scalars()
                )
            if ok:
                session.execute(
                    insert(_ATTEMPT_TABLE),
                    [self._attempt_row(job, result, None) for job, result in ok],
                )
            healthy = {job.endpoint.id for job, _ in ok if job.delivery_id in fenced}
            if healthy:
                session.execute(_HEALTHY, {"ids": sorted(healthy), "at": now})
            lost = len(ok) - len(fenced)
            for job, result in done:
                if not result.ok and not self._record_failure(session, job, result, now):
                    lost += 1
        with self.stats.lock:
            self.stats.attempts += len(done)
            self.stats.succeeded += len(ok)
            self.stats.failed += len(done) - len(ok)
            self.stats.lost_leases += lost

    def _attempt_row(
        self, job: Job, result: Result, next_at: dt.datetime | None
    ) -> dict[str, object]:
        return {
            "delivery_id": job.delivery_id,
            "number": job.attempt_count,
            "trigger": job.trigger,
            "worker": self.id,
            "started_at": result.started_at,
            "duration_ms": result.duration_ms,
            "webhook_timestamp": result.timestamp,
            "response_status": result.status,
            "response_headers": result.headers,
            "response_bytes": result.length,
            "response_body": result.body,
            "error_kind": result.error_kind,
            "error_message": result.error_message,
            "next_attempt_at": next_at,
        }

    def _record_failure(self, session: Session, job: Job, result: Result, now: dt.datetime) -> bool:
        """Schedule the retry (or fail the delivery) and update the endpoint's health; False if
        the lease was lost, in which case only the attempt is logged."""
        done = job.round_attempts + 1
        next_at: dt.datetime | None = None
        if (
            result.status == 410
            or job.trigger == "manual"  # a manual redelivery is one attempt, never retried
            or job.payload is None
            or done >= len(self.policy.schedule)
        ):
            status = "failed"
        else:
            status = "pending"
            next_at = now + dt.timedelta(seconds=self._delay(done, result))
        fenced = session.execute(
            update(WebhookDelivery)
            .where(
                WebhookDelivery.id == job.delivery_id,
                WebhookDelivery.status == "in_flight",
                WebhookDelivery.lease_owner == self.id,
                WebhookDelivery.attempt_count == job.attempt_count,
            )
            .values(
                status=status,
                round_attempts=done,
                next_attempt_at=next_at,
                lease_owner=None,
                lease_expires_at=None,
                last_status_code=result.status,
                last_error_kind=result.error_kind,
                completed_at=None if status == "pending" else now,
            )
            .execution_options(synchronize_session=False)
        )
        session.add(WebhookAttempt(**self._attempt_row(job, result, next_at)))
        if fenced.rowcount != 1:  # type: ignore[attr-defined]
            return False
        endpoint = session.get(WebhookEndpoint, job.endpoint.id, with_for_update=True)
        if endpoint is not None:
            self._failed(session, endpoint, result, now)
        return True

    def _failed(
        self, session: Session, endpoint: WebhookEndpoint, result: Result, now: dt.datetime
    ) -> None:
        """The endpoint's health after a failed attempt: count it, warn once, disable an
        endpoint that answered 410 or has failed for too long. (Successes reset the count in
        bulk, in `record_batch`.)"""
        endpoint.consecutive_failures += 1
        endpoint.failing_since = endpoint.failing_since or now
        endpoint.last_failure_at = now
        if (
            endpoint.consecutive_failures >= self.policy.warn_after_failures
            and endpoint.warned_at is None
        ):
            endpoint.warned_at = now
            logger.warning(
                "webhook_endpoint_failing endpoint=%s owner_key=%s failures=%s",
                endpoint.id,
                endpoint.owner_key_id,
                endpoint.consecutive_failures,
            )
        if not endpoint.enabled:
            return
        if result.status == 410:
            service.disable(session, endpoint, "gone", now)
        elif now - endpoint.failing_since >= self.policy.disable_after:
            service.disable(session, endpoint, "failing", now)

    def attempt(self, job: Job, send_by: float | None) -> Result | None:
        """Send, unless we are stopping, the lease was handed back, or (`send_by`, monotonic) a
        send started now might outlive the lease: then None, and the caller hands it back."""
        with self._settled:
            if self._stopping or job.delivery_id in self._released:
                return None
        if send_by is not None and time.monotonic() > send_by:
            return None
        return self.send(job)

    def _fence(self, jobs: list[Job]) -> dict[str, object]:
        """The parameters of `_STILL_OURS` for these deliveries."""
        return {
            "fence": [(job.delivery_id, job.attempt_count) for job in jobs],
            "owner": self.id,
        }

    def unclaim(self, jobs: list[Job]) -> int:
        """Hand claimed deliveries that were never sent back to the queue as they were."""
        with self.session_factory() as session, session.begin():
            begin_write(session)
            return int(
                session.execute(_UNCLAIMED, self._fence(jobs)).rowcount  # type: ignore[attr-defined]
            )

    def _settle(self, jobs: list[Job]) -> None:
        with self._settled:
            for job in jobs:
                self._in_flight.pop(job.delivery_id, None)
            self._settled.notify_all()

    # --- the loop ----------------------------------------------------------------------

    def has_work(self) -> bool:
        """A read-only look, so an idle worker never takes SQLite's write lock."""
        with self.session_factory() as session:
            return session.scalar(_DUE, {"now": self.clock()}) is not None

    def run_once(self) -> int:
        """Claim one batch, deliver it concurrently, record the results a chunk at a time as
        they come in. Returns how many were claimed."""
        if self._stopping or not self.has_work():
            return 0
        reaped = time.monotonic() >= self._next_reap
        if reaped:
            self.reap()
            self._next_reap = time.monotonic() + REAP_EVERY_SECONDS
        jobs = self.claim(self.batch)
        if not jobs and not reaped:
            # What `has_work` saw may be only expired leases.
            self.reap()
            self._next_reap = time.monotonic() + REAP_EVERY_SECONDS
            jobs = self.claim(self.batch)
        if not jobs:
            return 0
        with self._settled:
            self._in_flight.update((job.delivery_id, job) for job in jobs)
        # The first `concurrency` start at once, as with a claim of that size; a later one is
        # sent only if it can still end (timeout, plus a margin) before the lease does.
        claimed_at = time.monotonic()
        lease = self.policy.lease.total_seconds()
        send_by = claimed_at + lease - self.policy.timeout - max(1.0, 0.1 * lease)
        futures: dict[Future[Result | None], Job] = {
            self._pool.submit(self.attempt, job, None if i < self.concurrency else send_by): job
            for i, job in enumerate(jobs)
        }
        # Each send reports itself here as it ends. `wait(FIRST_COMPLETED)` on the pending set
        # instead walks all of them on every wake-up: quadratic in the claim
        # (bench/README.md, webhook section).
        ended: SimpleQueue[Future[Result | None]] = SimpleQueue()
        for future in futures:
            future.add_done_callback(ended.put)
        try:
            self._record_as_they_end(futures, ended)
        finally:
            # On a database error the sends still running end within their timeout; their
            # deliveries stay in flight until the lease expires, then are resent.
            wait(futures)
            self._settle(jobs)
        return len(jobs)

    def _record_as_they_end(
        self,
        futures: dict[Future[Result | None], Job],
        ended: "SimpleQueue[Future[Result | None]]",
    ) -> None:
        """Record the sends' results as they end, a chunk per transaction: a chunk is written
        once its first result has waited `RECORD_WITHIN_SECONDS`, or when the last send ends.
        A send that was never made (we are stopping, or it could not end within its lease) is
        handed back to the queue at once."""
        pending = set(futures)
        results: list[tuple[Job, Result]] = []
        waiting_since = 0.0
        while pending:
            finished = _ended_within(ended, RECORD_WITHIN_SECONDS)
            pending.difference_update(finished)
            unsent: list[Job] = []
            for future in finished:
                result = future.result()
                if result is None:
                    unsent.append(futures[future])
                else:
                    if not results:
                        waiting_since = time.monotonic()
                    results.append((futures[future], result))
            if unsent:
                self.unclaim(unsent)
                self._settle(unsent)
            if results and (
                not pending or time.monotonic() - waiting_since >= RECORD_WITHIN_SECONDS
            ):
                self.record_batch(results)
                self._settle([job for job, _ in results])
                results = []

    def run(
        self,
        stop: threading.Event,
        *,
        wake: threading.Event | None = None,
        poll_interval: float = 0.5,
        retention: Callable[[], None] | None = None,
        progress: Callable[["Worker"], None] | None = None,
    ) -> None:
        last_retention = dt.datetime.min.replace(tzinfo=dt.UTC)
        failures = 0
        while not stop.is_set():
            try:
                if retention and self.clock() - last_retention >= RETENTION_EVERY:
                    last_retention = self.clock()
                    retention()
                claimed = self.run_once()
            except Exception:
                # A database outage must not kill the worker, nor flood the log: back off, and
                # keep retrying until the database answers again.
                failures += 1
                if failures == 1:
                    logger.exception("webhook worker %s: turn failed", self.id)
                else:
                    logger.warning("webhook worker %s: turn failed %s times", self.id, failures)
                stop.wait(min(poll_interval * 2 ** min(failures, 10), MAX_FAILURE_BACKOFF_SECONDS))
                continue
            if failures:
                logger.info("webhook worker %s: database answers again", self.id)
                failures = 0
            if claimed and progress:
                progress(self)
            if claimed:
                continue
            if wake is None:
                stop.wait(poll_interval)
            else:
                wake.wait(poll_interval)
                wake.clear()


def _ended_within(ended: "SimpleQueue[Item]", timeout: float) -> list[Item]:
    """What has ended, waiting up to `timeout` for the first."""
    try:
        out = [ended.get(timeout=timeout)]
    except Empty:
        return []
    while True:
        try:
            out.append(ended.get_nowait())
        except Empty:
            return out


def make_worker(
    settings: Settings, session_factory: sessionmaker[Session], **kwargs: object
) -> Worker:
    client = ssrf.guarded_client(settings.webhook_allowed_subnets, timeout=settings.webhook_timeout)
    return Worker(
        session_factory,
        client,
        Policy.from_settings(settings),
        concurrency=settings.webhook_concurrency,
        **kwargs,  # type: ignore[arg-type]
    )


def retention_job(settings: Settings, worker: Worker) -> Callable[[], None]:
    def run() -> None:
        with worker.session_factory() as session, session.begin():
            begin_write(session)
            removed = service.enforce_retention(
                session,
                worker.clock(),
                message_days=settings.webhook_retention_days,
                attempt_days=settings.webhook_attempt_retention_days,
            )
        if any(removed.values()):
            logger.info("webhook_retention %s", removed)

    return run


class EmbeddedWorker:
    """The worker as a daemon thread of the API process, woken by commits that queue work."""

    def __init__(self, settings: Settings) -> None:
        self.engine = create_db_engine(settings.database_url, pool_size=2)
        self.worker = make_worker(settings, create_session_factory(self.engine))
        self.stop_event = threading.Event()
        self.thread = threading.Thread(
            target=self.worker.run,
            args=(self.stop_event,),
            kwargs={
                "wake": service.wakeup,
                "poll_interval": settings.webhook_poll_interval,
                "retention": retention_job(settings, self.worker),
            },
            name="webhook-worker",
            daemon=True,
        )

    def start(self) -> "EmbeddedWorker":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stop_event.set()
        service.wakeup.set()
        try:
            self.worker.release_in_flight()
        except Exception:
            # The database is down: the leases expire and another worker resends.
            logger.exception("webhook worker %s: could not release its leases", self.worker.id)
        self.thread.join(timeout=self.worker.policy.timeout + 5)
        self.worker.close()
        self.worker.client.close()
        self.engine.dispose()


if __name__ == "__main__":
    # `python -m app.webhooks.worker` is the documented command; the command line itself lives
    # in app/webhooks/cli.py.
    from app.webhooks.cli import main

    sys.exit(main())
