"""The two processes `bench.webhooks` runs next to the worker; see bench/README.md.

    python -m bench.webhook_peers receiver           # "ready <port>", then a line per request
    python -m bench.webhook_peers bare URL BODIES C  # posts every body in BODIES, C threads

The receiver is asyncio + uvloop + httptools, answers every POST with 204 and writes
`<webhook-id> <time.monotonic()>` to stdout for each request, so the benchmark can match every
delivery to its commit. `time.monotonic()` is CLOCK_MONOTONIC, one clock for every process on
the machine. Lines are flushed once per event-loop turn, not per request, to stay cheap.

`bare` is the ceiling the worker is compared against: one `httpx.Client` (default settings)
shared by C threads, posting the same bodies to the same receiver, without a database, a
signature or a lease.
"""

from __future__ import annotations

import asyncio
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httptools
import httpx
import orjson

RESPONSE = b"HTTP/1.1 204 No Content\r\nserver: bench\r\n\r\n"


class _Out:
    """stdout lines, flushed once per loop turn."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.lines: list[bytes] = []
        self.scheduled = False

    def add(self, line: bytes) -> None:
        self.lines.append(line)
        if not self.scheduled:
            self.scheduled = True
            self.loop.call_soon(self.flush)

    def flush(self) -> None:
        self.scheduled = False
        sys.stdout.buffer.write(b"".join(self.lines))
        sys.stdout.buffer.flush()
        self.lines.clear()


class _Protocol(asyncio.Protocol):
    def __init__(self, out: _Out) -> None:
        self.out = out
        self.parser = httptools.HttpRequestParser(self)
        self.webhook_id = b"-"
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            if self.transport is not None:
                self.transport.close()

    # httptools callbacks
    def on_message_begin(self) -> None:
        self.webhook_id = b"-"

    def on_header(self, name: bytes, value: bytes) -> None:
        if name.lower() == b"webhook-id":
            self.webhook_id = value

    def on_message_complete(self) -> None:
        at = time.monotonic()
        assert self.transport is not None  # noqa: S101 - set before any data arrives
        self.transport.write(RESPONSE)
        self.out.add(b"%s %.6f\n" % (self.webhook_id, at))


async def _serve() -> None:
    loop = asyncio.get_running_loop()
    out = _Out(loop)
    server = await loop.create_server(lambda: _Protocol(out), "127.0.0.1", 0, backlog=1024)
    port = server.sockets[0].getsockname()[1]
    sys.stdout.buffer.write(b"ready %d\n" % port)
    sys.stdout.buffer.flush()
    async with server:
        await server.serve_forever()


def receiver() -> None:
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover - uvicorn[standard] ships it
        pass
    asyncio.run(_serve())


def bare(url: str, bodies_file: Path, threads: int) -> None:
    """Post every (webhook-id, body) of the JSON file; print elapsed seconds on stdout."""
    items = orjson.loads(bodies_file.read_bytes())
    with httpx.Client(timeout=15) as client:

        def post(item: list[str]) -> int:
            headers = {"content-type": "application/json", "webhook-id": item[0]}
            return client.post(url, content=item[1].encode(), headers=headers).status_code

        client.post(url, content=b"{}", headers={"webhook-id": "bare-warmup"})
        start = time.monotonic()
        with ThreadPoolExecutor(max_workers=threads) as pool:
            statuses = list(pool.map(post, items))
        elapsed = time.monotonic() - start
    bad = sum(1 for s in statuses if s != 204)
    print(orjson.dumps({"elapsed": elapsed, "posted": len(statuses), "bad": bad}).decode())


if __name__ == "__main__":
    if sys.argv[1:2] == ["receiver"]:
        receiver()
    elif sys.argv[1:2] == ["bare"] and len(sys.argv) == 5:
        bare(sys.argv[2], Path(sys.argv[3]), int(sys.argv[4]))
    else:
        sys.exit(__doc__)
