"""A Server-Sent Events client for the live stream's tests: reads a stream on a thread of its
own and hands over each event (and each comment) as it arrives, so a test waits for what it
expects with a deadline instead of sleeping."""

import contextlib
import queue
import socket
import threading
import time
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

import httpx
import orjson


@dataclass
class Event:
    id: str | None
    data: dict[str, Any]


@dataclass
class Stream:
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    events: "queue.Queue[Event]" = field(default_factory=queue.Queue)
    comments: "queue.Queue[str]" = field(default_factory=queue.Queue)
    opened: threading.Event = field(default_factory=threading.Event)
    ended: threading.Event = field(default_factory=threading.Event)
    status: int | None = None
    error: BaseException | None = None
    _response: httpx.Response | None = None
    _closing: bool = False

    def start(self, timeout: float = 30.0) -> Self:
        threading.Thread(target=self._read, daemon=True).start()
        if not self.opened.wait(timeout):
            raise AssertionError(f"the stream {self.url} did not open within {timeout} s")
        if self.status != 200:
            raise AssertionError(f"the stream answered {self.status}: {self.error}")
        return self

    def _read(self) -> None:
        try:
            with (
                httpx.Client(timeout=httpx.Timeout(30.0, read=None)) as client,
                client.stream("GET", self.url, headers=self.headers) as response,
            ):
                self._response = response
                self.status = response.status_code
                if response.status_code != 200:
                    self.error = AssertionError(response.read().decode())
                    self.opened.set()
                    return
                data: list[str] = []
                event_id: str | None = None
                for line in response.iter_lines():
                    if line.startswith(":"):
                        self.comments.put(line[1:].strip())
                        if line.strip() == ": stream open":
                            self.opened.set()
                    elif line.startswith("id:"):
                        event_id = line[3:].strip()
                    elif line.startswith("data:"):
                        data.append(line[5:].strip())
                    elif line == "" and data:
                        self.events.put(Event(event_id, orjson.loads("\n".join(data))))
                        data, event_id = [], None
        except BaseException as exc:
            if not self._closing:
                self.error = exc
        finally:
            self.opened.set()
            self.ended.set()

    def take(self, n: int, seconds: float = 30.0) -> list[Event]:
        """The next `n` events, waiting at most `seconds` in all."""
        deadline = time.monotonic() + seconds
        got: list[Event] = []
        while len(got) < n:
            left = deadline - time.monotonic()
            try:
                got.append(self.events.get(timeout=max(left, 0.001)))
            except queue.Empty:
                raise AssertionError(
                    f"{len(got)} of {n} events within {seconds} s: {got} ({self.error})"
                ) from None
        return got

    def take_until(self, last: Any, seconds: float = 30.0) -> list[Event]:
        """Events up to and including the first for which `last(event)` is true."""
        deadline = time.monotonic() + seconds
        got: list[Event] = []
        while not got or not last(got[-1]):
            got += self.take(1, max(deadline - time.monotonic(), 0.001))
        return got

    def nothing_more(self) -> list[Event]:
        """Whatever arrived and was not taken."""
        out = []
        while True:
            try:
                out.append(self.events.get_nowait())
            except queue.Empty:
                return out

    def close(self) -> None:
        """Hang up, as a closed browser tab does: the reader's blocked read ends at once."""
        self._closing = True
        if self._response is not None:
            sock = self._response.extensions["network_stream"].get_extra_info("socket")
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        if not self.ended.wait(30):
            raise AssertionError(f"the stream {self.url} did not end when closed")

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def status_of(url: str, **headers: str) -> int:
    """The status a stream answers with, without reading the stream."""
    with httpx.stream("GET", url, headers=headers, timeout=30) as response:
        return response.status_code
