import signal
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import FrameType
from typing import Any

import anyio
import anyio.to_thread
from fastapi import FastAPI
from fastapi.middleware.gzip import GZipMiddleware
from fastapi_offline import FastAPIOffline

from app import writes
from app.archive.router import router as archive_router
from app.audit.router import router as audit_router
from app.auth.router import router as keys_router
from app.caching import GZIP_LEVEL, GZIP_MINIMUM_BYTES, Deprecation, HttpCaching
from app.categories.router import router as categories_router
from app.config import Settings, get_settings
from app.cors import Cors
from app.db import (
    SQLITE_STREAM_CACHE_KIB,
    DatabaseThreads,
    create_db_engine,
    create_session_factory,
    sqlite_file,
)
from app.docs import install_redoc
from app.embed.router import router as embed_router
from app.errors import install_problem_handlers
from app.events.router import router as events_router
from app.head import HeadAsGet
from app.health.router import router as health_router
from app.hosts import TrustedHosts
from app.limits import BodySizeLimit, document_limits
from app.observability import REQUEST_ID_HEADER, RequestObservability, configure_logging
from app.openapi import document_operations
from app.organisations.router import memberships as memberships_router
from app.organisations.router import router as organisations_router
from app.places.router import router as places_router
from app.ratelimit import RateLimit
from app.relations.router import router as relations_router
from app.responsecache import ResponseCache, SqliteDataVersion, data_version_reader
from app.revisions.router import router as changes_router
from app.security import SecurityHeaders
from app.sources.router import router as sources_router
from app.states.router import router as states_router
from app.stream import service as stream_service
from app.stream.router import router as stream_router
from app.timeline.downloads import router as downloads_router
from app.timeline.inline import InlinePages
from app.timeline.renderers import Renderers
from app.timeline.router import PlainPages
from app.timeline.router import router as timeline_router
from app.webhooks import service as webhook_service
from app.webhooks.router import router as webhooks_router
from app.webhooks.worker import EmbeddedWorker

DESCRIPTION = """
A sourced, queryable timeline of relations between states: diplomatic actions (ambassador
recalls and summons, complaints, withdrawals from organisations, airspace closures) and
incidents (coups, battles, a drone shoot-down), from Mali's coup of 18 August 2020 to the
Algeria-AES crisis of April 2025.

* **Every event has sources**: URL, publisher and, where known, the publication date.
* **Contested facts are claims**, each made by a named party with its own source. Where
  Algeria and Mali disagree about where the drone was hit, both positions are shown side by
  side; the API never picks a winner.
* **Dates carry a precision** (day, month or year): `2024-10-01` with precision `month` means
  "some time in October 2024".
* **Errors** are RFC 9457 problem details (`application/problem+json`) that name the parameter
  at fault.

## Guide for journalists

**Finding events.** `GET /v1/timeline` takes filters that combine: `state=DZA` (any role),
`actor=MLI&target=DZA` (who did what to whom), `between=MLI,DZA` (both involved),
`organisation=AES&include_members=true`, `category=ambassador_recall` (see `GET /v1/categories`),
`from=2025-04&to=2025-04`, and `q=` for words in titles, summaries, claims and every spelling of
a place (`q=tinzaouatene` finds Tin Zaouatine). The same query comes as a spreadsheet
(`format=csv`), a calendar you can subscribe to (`format=ics`), a feed reader's feed
(`format=atom`), a map layer (`format=geojson`) or NDJSON. `GET /v1/timeline/facets` counts
what matches, per category, state and month.

**Citing an event.** Every event page (`GET /v1/events/{id}`) carries a `permalink` and a
ready-made `citation`, and so does the answer to a `POST` or `PATCH` of an event. The permalink
pins the version you read or just wrote (`?as_known_at=…`): it will always return the event
exactly as you saw it, even after later corrections, whose full history is at
`/v1/events/{id}/revisions`. `GET /v1/timeline?as_known_at=…` does the same for a
whole list.

**Contested facts.** Where parties disagree, the event's `claims` hold each party's position
with its claimant (a state, an organisation or a named group), an optional figure and unit, and
the source that reports it. Claims answering the same question share a `topic`
(`drone-position`). The API reports who says what; it never picks a winner.

**Sources and licence.** Every event lists its sources (URL, publisher, and the publication
date where known). The dataset's curation is published under the licence named below; the
underlying articles belong to their publishers.
"""

TAGS = [
    {"name": "Timeline", "description": "Events in date order, with filters, and single events."},
    {
        "name": "States and organisations",
        "description": "States, alliances and who belonged to what, when.",
    },
    {
        "name": "Relations",
        "description": "How two states stood with each other over time, derived from events.",
    },
    {"name": "Places", "description": "Named places and every spelling of their names."},
    {"name": "Sources", "description": "The published texts every event cites."},
    {"name": "Vocabulary", "description": "Event categories and CAMEO codes."},
    {
        "name": "Revisions and changes",
        "description": "Who changed what and when, and a feed to mirror the dataset exactly.",
    },
    {"name": "API keys", "description": "Keys for writes (admin scope)."},
    {
        "name": "Webhooks",
        "description": "Signed push notifications of every change (Standard Webhooks).",
    },
    {"name": "Embeds", "description": "oEmbed for the embed page (`/embed`) of any timeline view."},
    {"name": "Health", "description": "Liveness and readiness probes."},
    {"name": "Audit", "description": "Who wrote what, when, with which key (admin scope)."},
]


# Routes announced for removal get `Deprecation` and `Sunset` headers (docs/api-guide.md).
DEPRECATIONS: tuple[Deprecation, ...] = ()


def _end_streams_on_signal() -> None:
    """End the live streams when uvicorn is told to stop. Its graceful shutdown waits for every
    response to finish before the lifespan ends, and a stream never would: its client then
    reconnects, to another replica, from its last event id. Chained in front of uvicorn's own
    handlers, which run as before (only the main thread may set a handler: not under a test
    client)."""
    if threading.current_thread() is not threading.main_thread():
        return
    for sig in (signal.SIGINT, signal.SIGTERM):
        previous = signal.getsignal(sig)
        if not callable(previous):
            continue

        def handler(signum: int, frame: FrameType | None, previous: Any = previous) -> None:
            stream_service.hub.close()
            previous(signum, frame)

        signal.signal(sig, handler)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    configure_logging(settings.log_level, settings.log_format)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        anyio.to_thread.current_default_thread_limiter().total_tokens = settings.threads
        # One process only: with several uvicorn workers, set WEBHOOK_WORKER=off and run
        # `python -m app.webhooks.worker` instead.
        worker = EmbeddedWorker(settings).start() if settings.webhook_worker == "embedded" else None
        listener = stream_service.hub.listen(app.state.engine)
        _end_streams_on_signal()
        yield
        if listener is not None:
            stream_service.hub.unlisten(listener)
        if worker is not None:
            worker.stop()
        app.state.db_threads.shutdown()
        if app.state.inline_pages is not None:
            app.state.inline_pages.close()
        if app.state.renderers is not None:
            app.state.renderers.close()
        if isinstance(app.state.data_version, SqliteDataVersion):
            app.state.data_version.close()
        app.state.engine.dispose()
        app.state.stream_engine.dispose()

    # Swagger UI and ReDoc assets come from the fastapi-offline package, not a CDN, so /docs
    # works offline and behind a newsroom proxy.
    app = FastAPIOffline(
        title="Diplomatic Timeline API",
        version="1.0.0",
        description=DESCRIPTION,
        openapi_tags=TAGS,
        lifespan=lifespan,
        license_info={"name": f"Data: {settings.data_licence}; see each event's sources"},
        # ReDoc's bundle is served patched, so it loads nothing from a CDN (app/docs.py).
        redoc_url=None,
    )
    install_redoc(app)
    engine = create_db_engine(
        settings.database_url,
        pool_size=settings.db_pool_size,
        statement_timeout=settings.db_statement_timeout,
    )
    app.state.settings = settings
    app.state.engine = engine
    # Webhook payloads are built inside the writes' transactions, with absolute URLs.
    app.state.session_factory = writes.session_factory(
        engine, info={webhook_service.BASE_URL_INFO: webhook_service.public_base_url(settings)}
    )
    # Streamed exports read through connections of their own (SQLITE_STREAM_CACHE_KIB).
    streams = engine
    if sqlite_file(engine.url) is not None:
        streams = create_db_engine(
            settings.database_url,
            pool_size=2,
            sqlite_cache_kib=SQLITE_STREAM_CACHE_KIB,
            statement_timeout=settings.db_statement_timeout,
        )
    app.state.stream_engine = streams
    app.state.stream_session_factory = create_session_factory(streams)
    app.state.writers = anyio.Lock()  # app.db.one_writer
    app.state.stream_slots = stream_service.Slots(
        settings.stream_max_total, settings.stream_max_per_client
    )
    app.state.inline_pages = InlinePages.for_engine(engine)
    app.state.renderers = Renderers.for_database(
        settings.database_url,
        size=settings.export_processes,
        niceness=settings.export_niceness,
        statement_timeout=settings.db_statement_timeout,
    )
    app.state.db_threads = DatabaseThreads(
        settings.threads,
        own_threads=engine.dialect.name == "postgresql",
        heavy=settings.rate_limit_heavy_concurrency,
    )

    # Innermost: SQLite's plain timeline page, answered without the router (app/timeline/router.py).
    app.add_middleware(PlainPages)
    app.add_middleware(HttpCaching, deprecations=DEPRECATIONS, compressed_from=GZIP_MINIMUM_BYTES)
    app.add_middleware(GZipMiddleware, minimum_size=GZIP_MINIMUM_BYTES, compresslevel=GZIP_LEVEL)
    # Outside gzip and the ETag step, so a hit replays the finished bytes; inside CORS, the
    # limits and the request id, which differ per request.
    app.state.data_version = data_version_reader(engine, app.state.db_threads)
    app.add_middleware(
        ResponseCache,
        version=app.state.data_version,
        size=settings.response_cache_size,
        max_bytes=settings.response_cache_bytes,
    )
    # Outside the cache, gzip and the ETag step, so a HEAD gets its GET's headers (app/head.py).
    app.add_middleware(HeadAsGet)
    # The last added runs first. Size and rate limits run before anything reads the body or
    # touches the database; the rate limit is outside the size limit so an oversized request
    # still spends budget; both are inside CORS so a browser can read their 413 and 429.
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_request_bytes)
    if settings.rate_limit_enabled:
        app.add_middleware(RateLimit, settings=settings, session_factory=app.state.session_factory)
    # Before the cache and the routes: a Host that is not ours never reaches them (app/hosts.py).
    if "*" not in settings.trusted_hosts:
        app.add_middleware(TrustedHosts, hosts=settings.trusted_hosts)
    app.add_middleware(
        Cors,
        read_origins=settings.cors_origins,
        write_origins=settings.cors_write_origins,
        expose_headers=[
            *("Link", "ETag", "Location", "Last-Modified", "Deprecation", "Sunset"),
            *("RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset", "Retry-After"),
            REQUEST_ID_HEADER,
        ],
        max_age=600,
    )
    # Outermost, so 413s, 429s and CORS preflights get the headers, a request id and an
    # access-log line too (app/security.py, app/observability.py).
    app.add_middleware(SecurityHeaders)
    app.add_middleware(RequestObservability)
    install_problem_handlers(app)
    for router in (
        timeline_router,
        downloads_router,
        events_router,
        states_router,
        organisations_router,
        memberships_router,
        sources_router,
        places_router,
        changes_router,
        stream_router,
        keys_router,
        relations_router,
        categories_router,
        health_router,
        webhooks_router,
        audit_router,
        archive_router,
        embed_router,
    ):
        app.include_router(router)
    document_limits(app)
    document_operations(app, settings)
    return app


app = create_app()
