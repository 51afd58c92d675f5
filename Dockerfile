# Production image: slim, non-root, migrates on start, then serves with uvicorn.
# Build: docker build -t diplomatic-timeline .
# Run:   docker run -p 8000:8000 -e PUBLIC_BASE_URL=https://timeline.example.org \
#          -e DATABASE_URL=postgresql://user:pass@db:5432/timeline diplomatic-timeline
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY app ./app
# Only the dependencies stay installed: the code runs from /srv/app, next to alembic.ini,
# migrations/ and seed/, which the service finds relative to its own package.
RUN python -m venv /opt/venv \
 && /opt/venv/bin/pip install --upgrade pip \
 && /opt/venv/bin/pip install . \
 && /opt/venv/bin/pip uninstall -y diplomatic-timeline

FROM python:3.11-slim
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOST=0.0.0.0 \
    PORT=8000 \
    WEB_CONCURRENCY=2 \
    SEED_ON_START=false \
    WEBHOOK_WORKER=off \
    FORWARDED_ALLOW_IPS=127.0.0.1
# uvicorn believes X-Forwarded-For only from FORWARDED_ALLOW_IPS: set it to your proxy's
# address(es). Never '*' unless the proxy overwrites the header, or any client could claim a
# fresh address, and a fresh rate-limit budget, with every request.
# Limits are on in production (docs/operations.md, "Request size and rate limits"): bodies up
# to 1 MiB; per minute, 300 units per client address without a key and 1200 per API key (a page
# costs 1, facets 20, an export 50); one heavy request (export, facets, count, ranked search) at
# a time per process and per caller; no database statement longer than DB_STATEMENT_TIMEOUT
# (10 s). `memory` counts in each uvicorn worker, so with WEB_CONCURRENCY=2 an address may get up
# to twice its budget: to share one budget between workers and replicas, set
# RATE_LIMIT_STORE=redis and REDIS_URL (compose.yaml does).
ENV MAX_REQUEST_BYTES=1048576 \
    RATE_LIMIT_ENABLED=true \
    RATE_LIMIT_ANONYMOUS=300 \
    RATE_LIMIT_KEYED=1200 \
    RATE_LIMIT_WINDOW_SECONDS=60 \
    RATE_LIMIT_STORE=memory
RUN groupadd --system app && useradd --system --gid app --home-dir /srv/app --create-home app
COPY --from=build /opt/venv /opt/venv
WORKDIR /srv/app
COPY --chown=app:app alembic.ini ./
COPY --chown=app:app migrations ./migrations
COPY --chown=app:app seed ./seed
COPY --chown=app:app app ./app
USER app
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s --start-period=20s --retries=3 \
  CMD python -c "import os, urllib.request; urllib.request.urlopen(f'http://127.0.0.1:{os.environ.get(\"PORT\", \"8000\")}/readyz', timeout=2)" || exit 1
# DATABASE_URL comes from the environment; without it the image uses a SQLite file in /srv/app/var.
# One worker per core (WEB_CONCURRENCY); set SEED_ON_START=true to load seed/ after migrating.
# app.events.documents stores the event documents an upgrade left missing (a no-op otherwise).
# Webhooks are delivered by separate containers of the same image running
# `python -m app.webhooks.worker` (as many as you like on PostgreSQL).
# PUBLIC_BASE_URL is required here: every absolute link (next pages, permalinks, feeds) is built
# from it, and requests for any other Host get a 400 (ALLOWED_HOSTS widens that; README,
# "Public address and Host header"). The health probes answer on any address.
CMD ["sh", "-c", ": \"${PUBLIC_BASE_URL:?set PUBLIC_BASE_URL to the address clients use, e.g. https://timeline.example.org}\" && alembic upgrade head && if [ \"$SEED_ON_START\" = true ]; then python -m app.seed; fi && python -m app.events.documents --quiet && exec uvicorn app.main:app --host \"$HOST\" --port \"$PORT\" --workers \"$WEB_CONCURRENCY\" --proxy-headers --no-access-log"]
