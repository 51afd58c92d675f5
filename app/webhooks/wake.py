"""Waking webhook workers in other processes when a commit queues deliveries.

A worker in the API's own process is woken by the commit itself (`service.wakeup`). A worker
process of its own (`python -m app.webhooks.worker`) only polled, so an idle one delivered on
average half a poll interval late, and every idle worker asked the database many times a
second. Issue 7 asks for commit -> receipt within 50 ms when idle by waking on the commit, not
by polling faster. The poll stays as the fallback: it finds retries that fall due, leases that
expire, and any commit made while the listener was reconnecting.

- PostgreSQL: the transaction that queues deliveries calls `pg_notify` (`service.queued`), which
  the server delivers at commit (never on rollback) to every connection listening on
  `CHANNEL`, in any process or on any machine. The listener holds one connection of its own,
  outside the pool, so it never takes a connection from the requests.
- SQLite has no channel between processes. `PRAGMA data_version` changes whenever another
  connection commits; it reads the WAL index in shared memory (no I/O, no lock), so reading it
  every `SQLITE_WATCH_SECONDS` costs microseconds, and any commit wakes the worker, which then
  looks at the queue as it would have on its next poll.
"""

import contextlib
import logging
import select
import socket
import sqlite3
import threading
from typing import Protocol

from sqlalchemy import Engine

from app.db import CONNECT_TIMEOUT_SECONDS, sqlite_file

logger = logging.getLogger("app.webhooks")

CHANNEL = "dtl_webhook_deliveries"
# How long the listener waits before reconnecting after its connection failed.
RECONNECT_SECONDS = 1.0
SQLITE_WATCH_SECONDS = 0.005


class Wakeable(Protocol):
    def set(self) -> None: ...


class CommitListener:
    """A daemon thread that sets `wake` whenever a commit may have queued deliveries (or, on
    another `channel`, whatever its senders announce: the live stream's new changes)."""

    def __init__(
        self,
        engine: Engine,
        wake: Wakeable,
        channel: str = CHANNEL,
        name: str = "webhook-wake",
    ) -> None:
        self.engine = engine
        self.wake = wake
        self.channel = channel
        self._stop = threading.Event()
        # Written to by `stop`: the listener waits on its connection's socket and on this one,
        # so it stops at once instead of at its next look at the flag. A process's shutdown
        # (and every test app's) would otherwise wait out a polling interval per listener.
        self._stopping, self._stop_signal = socket.socketpair()
        # Set once the listener would see the next commit (tests wait for it).
        self.listening = threading.Event()
        target = self._listen if engine.dialect.name == "postgresql" else self._watch
        self._thread = threading.Thread(target=target, name=name, daemon=True)

    @staticmethod
    def supported(engine: Engine) -> bool:
        # An in-memory SQLite database is private to its process: nothing else can commit.
        return engine.dialect.name == "postgresql" or sqlite_file(engine.url) is not None

    def start(self) -> "CommitListener":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        # Raises once the sockets are closed: a second stop.
        with contextlib.suppress(OSError):
            self._stop_signal.send(b"\0")
        if self._thread.ident is not None:
            self._thread.join(timeout=5)
        self._stopping.close()
        self._stop_signal.close()

    def _listen(self) -> None:
        dialect = self.engine.dialect
        cargs, cparams = dialect.create_connect_args(self.engine.url)
        cparams.setdefault("connect_timeout", CONNECT_TIMEOUT_SECONDS)
        while not self._stop.is_set():
            try:
                conn = dialect.connect(*cargs, **cparams)
                try:
                    conn.autocommit = True
                    conn.execute(f"LISTEN {self.channel}")
                    self.listening.set()
                    # Whatever was committed while nobody listened (start, reconnect).
                    self.wake.set()
                    while not self._stop.is_set():
                        ready, _, _ = select.select([conn.fileno(), self._stopping], [], [])
                        if self._stopping in ready:
                            break
                        # What the socket holds, without waiting; a closed connection raises.
                        for _ in conn.notifies(timeout=0):
                            self.wake.set()
                finally:
                    self.listening.clear()
                    conn.close()
            except Exception:
                # The database is down or restarting: the worker's poll carries on meanwhile.
                logger.warning("%s: listening failed; retrying", self._thread.name, exc_info=True)
                self._stop.wait(RECONNECT_SECONDS)

    def _watch(self) -> None:
        while not self._stop.is_set():
            try:
                self._watch_once()
            except sqlite3.Error:
                # The file cannot be opened (yet) or read: the worker's poll carries on meanwhile.
                logger.warning("webhook wake: watching failed; retrying", exc_info=True)
                self._stop.wait(RECONNECT_SECONDS)

    def _watch_once(self) -> None:
        probe = sqlite3.connect(self.engine.url.database or "", isolation_level=None)
        try:
            version = probe.execute("PRAGMA data_version").fetchone()
            self.listening.set()
            self.wake.set()
            while not self._stop.wait(SQLITE_WATCH_SECONDS):
                now = probe.execute("PRAGMA data_version").fetchone()
                if now != version:
                    version = now
                    self.wake.set()
        finally:
            self.listening.clear()
            probe.close()
