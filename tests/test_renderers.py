"""Streamed exports made in renderer processes (app/timeline/renderers.py): the same bytes as
a worker's own thread makes, gzip a client can decode, a lower CPU priority, a bounded pool that
falls back to a thread, and a pool that survives a renderer killed mid-export."""

import asyncio
import contextlib
import gzip
import multiprocessing
import os
import signal
import time
from collections.abc import AsyncIterator, Iterator

import pytest
from fastapi.testclient import TestClient

from app.config import Settings
from app.db import create_db_engine, create_session_factory
from app.main import create_app
from app.timeline.renderers import Export, Renderers, in_thread
from app.timeline.router import read_ahead
from app.timeline.schemas import TimelineQuery

FORMATS = ("csv", "ndjson", "geojson", "ics")
QUERY = "state=MLI&from=2021&to=2024"
NICENESS = 7


def client_with(database_url: str, processes: int) -> TestClient:
    settings = Settings(
        database_url=database_url,
        cursor_secret="test-secret",
        webhook_worker="off",
        response_cache_size=0,
        export_processes=processes,
        export_niceness=NICENESS,
    )
    return TestClient(create_app(settings))


@pytest.fixture(scope="module")
def in_processes(database_url: str) -> Iterator[TestClient]:
    with client_with(database_url, 1) as client:
        yield client


@pytest.fixture(scope="module")
def in_threads(database_url: str) -> Iterator[TestClient]:
    with client_with(database_url, 0) as client:
        yield client


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_renderer_makes_the_export_a_thread_makes(
    in_processes: TestClient, in_threads: TestClient, fmt: str
) -> None:
    for encoding in ("gzip", "identity"):
        headers = {"Accept-Encoding": encoding}
        made = in_processes.get(f"/v1/timeline?format={fmt}&{QUERY}", headers=headers)
        expected = in_threads.get(f"/v1/timeline?format={fmt}&{QUERY}", headers=headers)
        assert made.status_code == expected.status_code == 200
        assert made.content == expected.content
        assert len(made.content) > 1000  # several events, not an empty export
        for header in ("content-type", "content-disposition", "link", "x-data-licence"):
            assert made.headers[header] == expected.headers[header]
        assert made.headers.get("content-encoding") == expected.headers.get("content-encoding")
    assert in_processes.app.state.renderers is not None
    assert in_threads.app.state.renderers is None


def test_a_renderers_gzip_is_one_stream_gzip_decodes(in_processes: TestClient) -> None:
    """What a client's gzip decoder sees: the raw bytes, not httpx's decoding of them."""
    with in_processes.stream(
        "GET", f"/v1/timeline?format=csv&{QUERY}", headers={"Accept-Encoding": "gzip"}
    ) as response:
        raw = b"".join(response.iter_raw())
        assert response.headers["content-encoding"] == "gzip"
        assert "Accept-Encoding" in response.headers["vary"].split(", ")
    plain = in_processes.get(
        f"/v1/timeline?format=csv&{QUERY}", headers={"Accept-Encoding": "identity"}
    )
    assert "content-encoding" not in plain.headers
    assert gzip.decompress(raw) == plain.content


def test_renderers_run_at_a_lower_cpu_priority(in_processes: TestClient) -> None:
    assert in_processes.get(f"/v1/timeline?format=ndjson&{QUERY}").status_code == 200
    pool = in_processes.app.state.renderers
    assert pool.pids, "the export was not made in a renderer"
    ours = os.getpriority(os.PRIO_PROCESS, 0)
    for pid in pool.pids:
        assert pid != os.getpid()
        assert os.getpriority(os.PRIO_PROCESS, pid) == min(ours + NICENESS, 19)


def export(fmt: str = "ndjson") -> Export:
    query = TimelineQuery.model_validate({"state": ["MLI"]})
    return Export(query, fmt, "CC-BY-4.0", "http://testserver", "Mali")


def drain(chunks: object) -> bytes:
    return b"".join(chunk for chunk, _ in chunks)  # type: ignore[attr-defined]


def test_a_pool_of_one_refuses_a_second_export_until_the_first_ends(
    database_url: str,
) -> None:
    pool = Renderers(database_url, size=1, niceness=10, statement_timeout=None)
    try:
        first = pool.open(export())
        assert first is not None
        next(first)
        # Every renderer busy: the router makes this one in its own thread instead.
        assert pool.open(export()) is None
        pid = pool.pids
        first.close()  # a client that went away mid-export
        again = pool.open(export())
        assert again is not None
        assert pool.pids == pid  # the same renderer, reused
        engine = create_db_engine(database_url)
        try:
            expected = drain(in_thread(create_session_factory(engine), export()))
        finally:
            engine.dispose()
        assert drain(again) == expected
    finally:
        pool.close()
    assert not [p for p in multiprocessing.active_children() if p.pid in pid]


def test_a_renderer_killed_mid_export_breaks_that_export_only(database_url: str) -> None:
    pool = Renderers(database_url, size=1, niceness=10, statement_timeout=None)
    try:
        chunks = pool.open(export())
        assert chunks is not None
        next(chunks)
        (pid,) = pool.pids
        os.kill(pid, signal.SIGKILL)
        with pytest.raises(RuntimeError, match="renderer process exited"):
            drain(chunks)
        # The pool starts a new renderer for the next export, which is whole.
        again = pool.open(export("csv"))
        assert again is not None
        assert pool.pids != [pid]
        body = drain(again).decode()
        assert body.startswith("\ufeffid,") and body.count("\n") > 5
    finally:
        pool.close()


def test_a_renderer_whose_pipe_breaks_as_it_is_handed_an_export_leaves_it_to_a_thread(
    database_url: str,
) -> None:
    """Its death seen only when the export is sent to it: `open` answers None, as for a busy
    pool, so the router makes the export in a thread instead of answering 500."""
    pool = Renderers(database_url, size=1, niceness=10, statement_timeout=None)
    try:
        first = pool.open(export("csv"))
        assert first is not None
        drain(first)
        (idle,) = pool._idle
        (pid,) = pool.pids
        # The pipe's end closed under the idle renderer: the next send fails, as a send to a
        # renderer that died after its liveness check does.
        idle.conn.close()
        assert pool.open(export("csv")) is None
        assert pool.pids == []
        again = pool.open(export("csv"))
        assert again is not None
        assert pool.pids not in ([], [pid])
        assert drain(again).decode().startswith("\ufeffid,")
    finally:
        pool.close()


def test_an_export_whose_client_went_away_is_closed_once_its_last_read_ends() -> None:
    """The request is cancelled while the next chunk is read on a thread: the export is closed
    (its renderer given back) when that read ends, not beside it, and not never."""
    events: list[str] = []

    def chunks() -> Iterator[tuple[bytes, float]]:
        try:
            for i in range(5):
                events.append(f"read {i}")
                time.sleep(0.1)
                events.append(f"made {i}")
                yield bytes([i]), 0.0
        finally:
            events.append("closed")

    async def consume(body: AsyncIterator[bytes]) -> None:
        async for _ in body:
            pass

    async def client_goes_away() -> None:
        stream = chunks()
        task = asyncio.create_task(consume(read_ahead(next(stream), stream)))  # type: ignore[arg-type]
        await asyncio.sleep(0.05)  # the first chunk sent, the second being read
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        assert "closed" not in events  # not beside the read under way
        await asyncio.sleep(0.3)

    asyncio.run(client_goes_away())
    assert events == ["read 0", "made 0", "read 1", "made 1", "closed"]
