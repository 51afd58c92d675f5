import logging
import time
from collections.abc import Iterator
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Header, Query, Request, Response
from starlette.types import Message, Receive, Scope, Send

from app.callers import caller_of
from app.config import Settings
from app.db import DatabaseThreads, transaction
from app.routing import StrictQueryRoute
from app.schemas import problem_responses
from app.stream import service
from app.stream.schemas import EXAMPLE, StreamQuery

logger = logging.getLogger("app.stream")
router = APIRouter(
    prefix="/v1/changes", tags=["Revisions and changes"], route_class=StrictQueryRoute
)
MEDIA_TYPE = "text/event-stream"
# EventSource waits this long before reconnecting after the stream ends.
RETRY_MILLISECONDS = 2000
OPENING = f": stream open\nretry: {RETRY_MILLISECONDS}\n\n".encode()
HEARTBEAT = b": heartbeat\n\n"
# Events are sent in chunks of about this size: the server's send buffer pauses a send between
# two chunks when the client reads too slowly, so a batch is never buffered whole.
CHUNK_BYTES = 64 * 1024
_RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before opening a stream again.",
        "schema": {"type": "integer", "minimum": 0},
    }
}


def _problems() -> dict[int | str, dict[str, Any]]:
    # Without `model`: FastAPI would add a copy of each problem's schema under the route's own
    # media type, as if a refusal came as text/event-stream. Problems are problem+json.
    entries = {
        status: {k: v for k, v in entry.items() if k != "model"}
        for status, entry in problem_responses(422, 503).items()
    }
    entries[503]["description"] = (
        "The database is unavailable, or this server has as many streams open as it allows"
        " (STREAM_MAX_TOTAL); retry after `Retry-After` seconds"
    )
    entries[503]["headers"] = _RETRY_AFTER
    entries[429] = {
        "description": "Too many requests: this API key or address has as many streams open"
        " as it may (STREAM_MAX_PER_CLIENT), or has spent its rate-limit budget; retry after"
        " `Retry-After` seconds",
        "content": entries[422]["content"],
        "headers": {
            **_RETRY_AFTER,
            # Sent with a refusal of the rate limit (app/ratelimit.py), not of the stream limit.
            **{
                name: {"description": text, "schema": {"type": "integer"}}
                for name, text in (
                    ("RateLimit-Limit", "Requests allowed per window for this caller."),
                    ("RateLimit-Remaining", "What is left of this window's budget."),
                    ("RateLimit-Reset", "Seconds until the budget is renewed."),
                )
            },
        },
    }
    return entries


RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "An endless stream of Server-Sent Events, one per change.",
        "content": {MEDIA_TYPE: {"schema": {"type": "string"}, "example": EXAMPLE}},
    },
    **_problems(),
}


class EventStream(Response):
    """The stream itself, as a raw ASGI response: each send must finish within
    STREAM_SEND_TIMEOUT (else the client is not reading and is disconnected), and the slot is
    given back however the stream ends."""

    media_type = MEDIA_TYPE

    def __init__(
        self, request: Request, query: StreamQuery, after: int, caller: str, slots: service.Slots
    ) -> None:
        # No body and so no Content-Length (as StreamingResponse): a response with one would be
        # held back whole by the ETag step (app/caching.py).
        self.status_code = 200
        self.background = None
        self.init_headers(
            {
                "Cache-Control": "no-store",
                # nginx would otherwise hold the events back in its buffer.
                "X-Accel-Buffering": "no",
            }
        )
        self.request = request
        self.query = query
        self.after = after
        self.caller = caller
        self.slots = slots
        settings: Settings = request.app.state.settings
        self.heartbeat = settings.stream_heartbeat_seconds
        self.poll = settings.stream_poll_seconds
        self.send_timeout = settings.stream_send_timeout
        self.max_seconds = settings.stream_max_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        waiter = service.hub.subscribe()
        try:
            async with anyio.create_task_group() as group:

                async def until_disconnect() -> None:
                    while (await receive())["type"] != "http.disconnect":
                        pass
                    group.cancel_scope.cancel()

                group.start_soon(until_disconnect)
                await self._run(send, waiter)
                group.cancel_scope.cancel()
        finally:
            service.hub.unsubscribe(waiter)
            self.slots.give(self.caller)

    async def _send(self, send: Send, message: Message) -> bool:
        with anyio.move_on_after(self.send_timeout):
            await send(message)
            return True
        # The response is abandoned unfinished: uvicorn closes the connection, logging "ASGI
        # callable returned without completing response" (ASGI has no other way to drop one).
        logger.warning("stream: the client took nothing for %s s; disconnected", self.send_timeout)
        return False

    async def _body(self, send: Send, chunk: bytes) -> bool:
        return await self._send(
            send, {"type": "http.response.body", "body": chunk, "more_body": True}
        )

    async def _run(self, send: Send, waiter: service.Waiter) -> None:
        start = {"type": "http.response.start", "status": 200, "headers": self.raw_headers}
        if not await self._send(send, start) or not await self._body(send, OPENING):
            return
        threads: DatabaseThreads = self.request.app.state.db_threads
        factory = self.request.app.state.session_factory
        last_sent = time.monotonic()
        end_at = last_sent + self.max_seconds
        while not service.hub.closing and time.monotonic() < end_at:
            try:
                batch = await threads.run(self._read, factory)
            except Exception:
                # The database is down or timed out: end the stream, and the client reconnects
                # from its last id after `retry` (a problem can no longer be sent: the stream
                # has started).
                logger.warning("stream: reading changes failed; ending the stream", exc_info=True)
                break
            self.after = batch.last
            for chunk in _chunks(batch.events):
                if not await self._body(send, chunk):
                    return
                last_sent = time.monotonic()
            if batch.more:
                continue
            now = time.monotonic()
            if now - last_sent >= self.heartbeat:
                if not await self._body(send, HEARTBEAT):
                    return
                last_sent = now
            wait = min(self.heartbeat - (now - last_sent), end_at - now)
            if not service.hub.pushed:
                wait = min(wait, self.poll)
            await waiter.wait(max(wait, 0.0))
        # Shutting down, or the stream's time is up: end the response cleanly; the client
        # reconnects from its last id.
        await self._send(send, {"type": "http.response.body", "body": b"", "more_body": False})

    def _read(self, factory: Any) -> service.Batch:
        with transaction(factory, write=False) as session:
            return service.read(session, self.after, self.query)


def _chunks(events: list[bytes]) -> Iterator[bytes]:
    chunk: list[bytes] = []
    size = 0
    for event in events:
        chunk.append(event)
        size += len(event)
        if size >= CHUNK_BYTES:
            yield b"".join(chunk)
            chunk, size = [], 0
    if chunk:
        yield b"".join(chunk)


@router.get(
    "/stream",
    response_class=EventStream,
    status_code=200,
    responses=RESPONSES,
)
async def stream_changes(
    request: Request,
    query: Annotated[StreamQuery, Query()],
    last_event_id: Annotated[
        str | None,
        Header(
            alias="Last-Event-ID",
            max_length=100,
            description="The `id` of the last event received; the stream resumes right after"
            " it. Browsers' EventSource sends it by itself when it reconnects.",
        ),
    ] = None,
) -> Response:
    """The changes of `GET /v1/changes` as they are committed, as Server-Sent Events.

    Each event's `id` is the change's feed position and its `data` the change as
    `GET /v1/changes` serves it. The timeline's filters select events: with any filter, only
    changes of matching events are sent (an event that matched before or after the change, so
    an update that moves an event out of the filter is sent too), each with `in_filter`:
    whether the event matches after the change (false: remove it from a view). A reconnect with
    `Last-Event-ID` (or `since=`) receives every later change exactly once. Idle streams get a
    comment line every STREAM_HEARTBEAT_SECONDS. Streams are limited per API key or client
    address and per server (429 or 503 with `Retry-After`), and a client that stops reading
    is disconnected. See the guide's "Live stream" section.
    """
    threads: DatabaseThreads = request.app.state.db_threads
    after = await threads.run(_start, request, query, last_event_id)
    caller = caller_of(request.scope)
    slots: service.Slots = request.app.state.stream_slots
    slots.take(caller, keyed=caller.startswith("key:"))
    return EventStream(request, query, after, caller, slots)


def _start(request: Request, query: StreamQuery, last_event_id: str | None) -> int:
    with transaction(request.app.state.session_factory, write=False) as session:
        return service.start(session, query, last_event_id)
