"""The live stream of changes (`GET /v1/changes/stream`): what wakes streams, how many may be
open, and what each reads.

A stream never trusts a notification to carry a change: it always re-reads the revisions after
its own cursor (`read`), so a lost or merged notification only delays a change, never loses it,
and resuming from any cursor is exact.

- A transaction that records revisions announces them (`announce`, from the write step in
  app/writes.py). On PostgreSQL it calls `pg_notify(CHANNEL)`, which the server delivers at
  commit (never on rollback) to every listening connection, in any process or replica: one
  listener connection per process (`Hub.listen`, the webhook worker's `CommitListener` on a
  channel of its own) fans the wake out to every stream of the process. In this process the
  commit also wakes them directly (`committed`).
- SQLite has a single API process: the after-commit hook wakes its streams.
- While no wake can come (the PostgreSQL listener is reconnecting; on SQLite, a write by another
  process such as an import) streams re-read every STREAM_POLL_SECONDS.
"""

import asyncio
import contextlib
import dataclasses
import logging
import threading
from typing import ClassVar

import orjson
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from app.db import utcnow
from app.errors import AppError, InvalidParameter
from app.models import Revision
from app.revisions import service as revisions
from app.stream.schemas import StreamQuery
from app.timeline import filters
from app.timeline import service as timeline
from app.timeline.schemas import TimelineQuery
from app.webhooks.wake import CommitListener

logger = logging.getLogger("app.stream")

CHANNEL = "dtl_changes"
# Revisions read per trip to the database; a stream far behind reads again at once.
BATCH = 500
# Seconds a refused client is told to wait: slots free as streams close.
RETRY_AFTER_SECONDS = 5
_NOTIFY = select(func.pg_notify(CHANNEL, ""))
_ANNOUNCED = "app.stream.announced"


class TooManyStreams(AppError):
    status = 429
    slug = "too-many-streams"
    title = "Too many streams"
    headers: ClassVar[dict[str, str]] = {
        "Retry-After": str(RETRY_AFTER_SECONDS),
        "Cache-Control": "no-store",
    }


class StreamsFull(AppError):
    status = 503
    slug = "streams-full"
    title = "No stream available"
    headers: ClassVar[dict[str, str]] = {
        "Retry-After": str(RETRY_AFTER_SECONDS),
        "Cache-Control": "no-store",
    }


# --- waking streams ----------------------------------------------------------------------


def announce(session: Session) -> None:
    """Before the commit of a transaction that recorded revisions: its commit wakes the
    streams, in this process (`committed`) and, on PostgreSQL, in every other."""
    if session.info.get(_ANNOUNCED):
        return
    session.info[_ANNOUNCED] = True
    if session.get_bind().dialect.name == "postgresql":
        session.execute(_NOTIFY)


def committed(session: Session) -> None:
    if session.info.pop(_ANNOUNCED, False):
        hub.set()


def forget(session: Session) -> None:
    session.info.pop(_ANNOUNCED, None)


class Waiter:
    """One stream's wake-up: set from any thread, awaited in the stream's event loop."""

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.event = asyncio.Event()

    def wake(self) -> None:
        # A RuntimeError: the loop has closed, and its stream is gone.
        with contextlib.suppress(RuntimeError):
            self.loop.call_soon_threadsafe(self.event.set)

    async def wait(self, timeout: float) -> None:
        """Until woken or `timeout` seconds; clears the wake-up for the next round."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.event.wait(), timeout)
        self.event.clear()


class Hub:
    """The streams open in this process, woken together."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiters: set[Waiter] = set()
        self._listeners: list[CommitListener] = []
        # Set when the process is shutting down: every stream ends, and clients reconnect
        # (to another replica) from their last event id.
        self.closing = False

    def subscribe(self) -> Waiter:
        waiter = Waiter()
        with self._lock:
            self._waiters.add(waiter)
        return waiter

    def unsubscribe(self, waiter: Waiter) -> None:
        with self._lock:
            self._waiters.discard(waiter)

    @property
    def open_streams(self) -> int:
        return len(self._waiters)

    def set(self) -> None:
        """Wake every stream (from any thread): there may be new changes."""
        with self._lock:
            waiters = list(self._waiters)
        for waiter in waiters:
            waiter.wake()

    def close(self) -> None:
        self.closing = True
        self.set()

    def listen(self, engine: Engine) -> CommitListener | None:
        """On PostgreSQL, one connection listening on CHANNEL for this process."""
        if engine.dialect.name != "postgresql":
            return None
        listener = CommitListener(engine, self, CHANNEL, name="stream-wake").start()
        with self._lock:
            self._listeners.append(listener)
        return listener

    def unlisten(self, listener: CommitListener) -> None:
        listener.stop()
        with self._lock:
            self._listeners.remove(listener)

    @property
    def pushed(self) -> bool:
        """Whether a commit in another process would wake the streams now."""
        return any(listener.listening.is_set() for listener in self._listeners)


hub = Hub()


# --- how many --------------------------------------------------------------------------


class Slots:
    """Open streams in this process: at most `total`, at most `per_client` per caller."""

    def __init__(self, total: int, per_client: int) -> None:
        self.total = total
        self.per_client = per_client
        self._lock = threading.Lock()
        self._open = 0
        self._by_caller: dict[str, int] = {}

    def take(self, caller: str, *, keyed: bool) -> None:
        with self._lock:
            mine = self._by_caller.get(caller, 0)
            if mine >= self.per_client:
                who = "This API key" if keyed else "One address without an API key"
                raise TooManyStreams(
                    f"{who} may keep {self.per_client} streams open at a time, and already"
                    f" has {mine}; close one, or retry in {RETRY_AFTER_SECONDS} s. One stream"
                    " carries every change its filters match."
                )
            if self._open >= self.total:
                raise StreamsFull(
                    f"This server keeps {self.total} streams open at most, and has no more"
                    f" room; retry in {RETRY_AFTER_SECONDS} s, or poll GET /v1/changes."
                )
            self._open += 1
            self._by_caller[caller] = mine + 1

    def give(self, caller: str) -> None:
        with self._lock:
            self._open -= 1
            left = self._by_caller[caller] - 1
            if left:
                self._by_caller[caller] = left
            else:
                del self._by_caller[caller]


# --- what a stream reads -----------------------------------------------------------------


def filtered(query: StreamQuery) -> bool:
    return bool(query.model_dump(exclude_defaults=True, exclude={"since"}))


def start(session: Session, query: StreamQuery, last_event_id: str | None) -> int:
    """The revision id the stream starts after; raises InvalidParameter (422) for filters the
    timeline would refuse (unknown codes, `from` after `to`, …) or a position it never issued."""
    timeline.check(
        session,
        TimelineQuery.model_validate(
            query.model_dump(by_alias=True, exclude_defaults=True, exclude={"since"})
        ),
    )
    if last_event_id is not None:
        try:
            return revisions.decode_position(last_event_id)
        except InvalidParameter:
            raise InvalidParameter(
                ["header", "Last-Event-ID"], "not an event id sent by this stream"
            ) from None
    if query.since is not None:
        return revisions.decode_position(query.since)
    return revisions.position_now(session)


@dataclasses.dataclass(frozen=True, slots=True)
class Batch:
    events: list[bytes]
    last: int
    more: bool


def event(revision: Revision, in_filter: bool | None = None) -> bytes:
    """One change as a Server-Sent Event: its feed position is the event's id, so a client's
    Last-Event-ID resumes right after it. In a filtered stream the change also says whether the
    event matches the filters after it (`in_filter`: false when it left them or was deleted)."""
    item = revisions.change_item(revision)
    if in_filter is not None:
        item["in_filter"] = in_filter
    position: str = item["position"]
    data = orjson.dumps(item, option=orjson.OPT_NON_STR_KEYS)
    return b"id: " + position.encode() + b"\ndata: " + data + b"\n\n"


def read(session: Session, after: int, query: StreamQuery) -> Batch:
    """The changes after revision `after` that the query matches, as events, and the id of the
    last revision looked at. With filters, only changes of events are sent: those whose event
    matched before or after the change (the definition webhook subscriptions use,
    app/timeline/filters.py)."""
    rows = revisions.feed(session, after, BATCH)
    last = rows[-1].id if rows else after
    if not filtered(query):
        return Batch([event(r) for r in rows], last, len(rows) == BATCH)
    memberships, names = timeline.filter_context(session, query, utcnow())
    events = []
    for r in rows:
        if r.resource == "event" and filters.change_matches(
            r.before, r.after, query, memberships, names
        ):
            stays = r.after is not None and filters.matches(r.after, query, memberships, names)
            events.append(event(r, in_filter=stays))
    return Batch(events, last, len(rows) == BATCH)
