import json
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SQLITE_PATH = PROJECT_ROOT / "var" / "timeline.db"


def normalise_database_url(url: str) -> str:
    """Accept plain `postgresql://` URLs and point them at psycopg 3, the driver we ship."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


class Settings(BaseSettings):
    """Configuration, read from the environment (and a `.env` file if present)."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    database_url: str = Field(
        default=f"sqlite:///{DEFAULT_SQLITE_PATH}",
        description="SQLAlchemy URL; plain postgresql:// URLs are accepted.",
    )
    host: str = "127.0.0.1"
    port: int = 8000
    # Browser origins that may read (GET, HEAD) through CORS, and those that may also write
    # (POST, PATCH, DELETE): reads are open, writes are not CORS-enabled unless listed
    # (app/cors.py). Comma-separated or a JSON list.
    cors_origins: Annotated[list[str], NoDecode] = Field(default=["*"])
    cors_write_origins: Annotated[list[str], NoDecode] = Field(default=[])
    # Signs pagination cursors so a forged or edited cursor is rejected instead of
    # silently paging from an arbitrary position.
    cursor_secret: str = "dev-cursor-secret-change-me"  # noqa: S105 - integrity, not secrecy
    # Bounding DB concurrency near the core count beats a deep thread pool on 2 cores
    # (research/performance-baseline.md).
    db_pool_size: int = 4
    # Threads that run requests' database work (AnyIO's default is 40); unset, 1 on SQLite and
    # 2 on PostgreSQL (`threads`); there, timeline pages have as many threads of their own
    # (`app.db.DatabaseThreads`). Requests beyond this wait in the event loop instead of
    # contending for the GIL: SQLite's work is this process's own CPU, so on 2 cores one
    # thread served the most pages a second. PostgreSQL's work runs in its own processes, and a
    # second thread overlaps the round trips, so two served the most (bench/README.md).
    threadpool_size: int | None = Field(default=None, ge=1)
    # Rendered anonymous GET responses kept in memory per process, keyed by request and data
    # version (app/responsecache.py); 0 turns the cache off.
    response_cache_size: int = 512
    response_cache_bytes: int = Field(default=64 * 1024 * 1024, ge=0)
    # The address clients use, e.g. https://timeline.example.org: every absolute link is built
    # from it, and only its host is answered unless ALLOWED_HOSTS says otherwise. Unset (local
    # development), links follow each request's Host and every host is answered (app/hosts.py).
    public_base_url: str | None = None
    # Host names answered (`*` any, `*.example.org` its subdomains); unset, the host of
    # PUBLIC_BASE_URL, or any host when that is unset too. Comma-separated or a JSON list.
    allowed_hosts: Annotated[list[str], NoDecode] | None = None
    # Longest run of one database statement in the API's engines: PostgreSQL's
    # statement_timeout, a progress handler on SQLite (app/db.py). Past it the statement is
    # cancelled and the request gets a 503 problem saying to narrow it or retry, so no request
    # holds a thread or a connection longer. Operator tools (migrations, import, export) have none.
    db_statement_timeout: float = Field(default=10.0, gt=0)
    data_licence: str = "CC BY 4.0"
    # Who may frame the embed (`/embed`): CSP frame-ancestors sources, `*` for any site (the
    # default: it is made for articles anywhere), or e.g. `https://*.newsroom.example`. Every
    # other page may be framed by no one. Comma-separated or a JSON list.
    embed_frame_ancestors: Annotated[list[str], NoDecode] = Field(default=["*"])

    # --- webhooks (app/webhooks); every delay is in seconds so tests can shrink them ---
    # Wait before attempt 1, 2, …: immediately, then 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h,
    # 20 h, 24 h (ten attempts over about 3.15 days).
    webhook_retry_schedule: Annotated[list[float], NoDecode] = Field(
        default=[0, 5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400]
    )
    webhook_retry_jitter: float = Field(default=0.2, ge=0, lt=1)
    # After a 429, 502, 504 or a timeout the receiver is overloaded: wait at least this long.
    webhook_overload_min_delay: float = 60.0
    webhook_timeout: float = 15.0
    webhook_max_response_bytes: int = 64 * 1024
    webhook_stored_response_bytes: int = 4 * 1024
    # Must exceed the timeout comfortably: an expired lease means "that worker died".
    webhook_lease_seconds: float = 60.0
    # A separate worker looks for due work this often (a cheap read): commit -> receipt stays
    # within about one interval without LISTEN/NOTIFY. The embedded worker is also woken on commit.
    webhook_poll_interval: float = 0.05
    webhook_concurrency: int = Field(default=8, ge=1)
    webhook_warn_after_failures: int = 4
    webhook_disable_after_days: float = 5.0
    webhook_rotation_overlap_hours: float = 24.0
    # Subnets that may receive webhooks although they are not public, and over plain http.
    webhook_allowed_subnets: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # `embedded` runs the delivery worker in a thread of the API process (one process only);
    # `off` leaves delivery to `python -m app.webhooks.worker` processes.
    webhook_worker: Literal["embedded", "off"] = "embedded"
    webhook_retention_days: int = 90
    webhook_attempt_retention_days: int = 30

    # --- request limits and rate limits (app/limits.py, app/ratelimit.py) ---
    # Bodies larger than this are refused with 413 before they are read in full.
    max_request_bytes: int = Field(default=1024 * 1024, ge=1024)
    # Off for `make run` and the tests; the Dockerfile turns it on (docs/operations.md).
    rate_limit_enabled: bool = False
    # Requests per window: anonymous callers are counted per client IP, keyed callers per key.
    rate_limit_anonymous: int = Field(default=300, ge=1)
    rate_limit_keyed: int = Field(default=1200, ge=1)
    rate_limit_window_seconds: int = Field(default=60, ge=1)
    # Heavy requests (exports, facets, count=true, order=relevance) running at once in one
    # process, and per key or client address in one process (app/ratelimit.py).
    rate_limit_heavy_concurrency: int = Field(default=1, ge=1)
    rate_limit_heavy_per_caller: int = Field(default=1, ge=1)
    # The share of one core a streamed export may keep busy while it runs, per kind of caller
    # (1 = as fast as it can): the export waits between its chunks to stay under it, so a few
    # exports cannot starve the pages served beside them (app/timeline/router.py, read_ahead).
    rate_limit_export_share_anonymous: float = Field(default=0.2, gt=0, le=1)
    rate_limit_export_share_keyed: float = Field(default=1.0, gt=0, le=1)
    # Streamed exports (CSV, NDJSON, GeoJSON, iCalendar) are read and rendered in up to this
    # many processes per worker, at this niceness (0-19) above the worker's, so pages come
    # first on the CPU (app/timeline/renderers.py). 0 renders them in the worker's threads.
    export_processes: int = Field(default=2, ge=0)
    export_niceness: int = Field(default=19, ge=0, le=19)
    # `memory` counts per process (each uvicorn worker and replica has its own budget);
    # `redis` shares counters between processes and replicas.
    rate_limit_store: Literal["memory", "redis"] = "memory"
    redis_url: str = "redis://127.0.0.1:6379/0"
    # Prepended to every counter's key, so several deployments can share one Redis.
    rate_limit_redis_prefix: str = "dtl:ratelimit:"
    # Seconds to connect or answer; beyond it the process counts in memory for a few seconds.
    rate_limit_redis_timeout: float = Field(default=0.25, gt=0)

    # --- the live stream of changes (GET /v1/changes/stream, app/stream) ---
    # A comment line this often on an idle stream, so proxies and clients see it is alive.
    stream_heartbeat_seconds: float = Field(default=15.0, gt=0)
    # Streams re-read the change feed at least this often while nothing wakes them: when the
    # PostgreSQL channel is down, and on SQLite for writes made by other processes (an import).
    stream_poll_seconds: float = Field(default=5.0, gt=0)
    # Open streams per API key or client address (as the rate limiter counts callers), and in
    # all, in one process; beyond them a 429 or a 503 with Retry-After.
    stream_max_per_client: int = Field(default=16, ge=1)
    stream_max_total: int = Field(default=200, ge=1)
    # A client that has not taken what was sent within this many seconds (the process's send
    # buffer stays full) is disconnected: nothing is buffered for it without end.
    stream_send_timeout: float = Field(default=10.0, gt=0)
    # A stream ends after this many seconds; the client reconnects from its last event id
    # (EventSource does so by itself), losing nothing. It spreads long-lived clients over the
    # replicas started since, and bounds the life of anything a stream holds.
    stream_max_seconds: float = Field(default=1800.0, gt=0)

    # --- logs and audit (app/observability.py, app/audit) ---
    log_level: str = "INFO"
    # `json` writes one JSON object per line with the request id; `text` is for a terminal.
    log_format: Literal["json", "text"] = "json"

    @property
    def threads(self) -> int:
        if self.threadpool_size is not None:
            return self.threadpool_size
        return 1 if self.database_url.startswith("sqlite") else 2

    @property
    def trusted_hosts(self) -> frozenset[str]:
        if self.allowed_hosts:
            return frozenset(host.strip().lower() for host in self.allowed_hosts)
        if self.public_base_url:
            return frozenset({urlsplit(self.public_base_url).netloc.lower()})
        return frozenset({"*"})

    @field_validator(
        "webhook_allowed_subnets",
        "webhook_retry_schedule",
        "cors_origins",
        "cors_write_origins",
        "allowed_hosts",
        "embed_frame_ancestors",
        mode="before",
    )
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        # Lists are comma-separated in the environment: WEBHOOK_ALLOWED_SUBNETS=127.0.0.0/8,::1/128
        # (a JSON list, as CORS_ORIGINS once had to be, still works).
        if isinstance(value, str):
            if value.lstrip().startswith("["):
                return json.loads(value)
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("embed_frame_ancestors")
    @classmethod
    def _sources(cls, value: list[str]) -> list[str]:
        # Each value becomes one source of a header: nothing that could end the directive.
        for source in value:
            if not source or any(c in source for c in ' ;,"\r\n\t'):
                raise ValueError(
                    f"EMBED_FRAME_ANCESTORS: {source!r} is not a CSP source such as * or"
                    " https://news.example"
                )
        return value or ["'none'"]

    @field_validator("public_base_url")
    @classmethod
    def _absolute_base(cls, value: str | None) -> str | None:
        if not value:
            return None
        parts = urlsplit(value.strip())
        if (
            parts.scheme not in ("http", "https")
            or not parts.hostname
            or parts.query
            or "@" in parts.netloc
        ):
            raise ValueError(
                "PUBLIC_BASE_URL must be an absolute http(s) URL such as"
                " https://timeline.example.org, with no query or user name"
            )
        return value.strip().rstrip("/")

    @field_validator("database_url")
    @classmethod
    def _normalise(cls, value: str) -> str:
        return normalise_database_url(value)


@lru_cache
def get_settings() -> Settings:
    return Settings()
