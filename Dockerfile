# agent-stream: one replica. Several of them share PostgreSQL, Redis and database blobs (docker-compose.yml).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    WEB_SERVER_HOST=0.0.0.0 \
    WEB_SERVER_PORT=8000 \
    DATA_DIR=/app/data

WORKDIR /app

# Dependencies first (cached while only the code changes), pinned by the lock file.
COPY requirements.lock ./
RUN pip install -r requirements.lock

COPY pyproject.toml README.md alembic.ini ./
COPY domain ./domain
COPY application ./application
COPY adapters ./adapters
COPY entrypoints ./entrypoints
COPY migrations ./migrations
RUN pip install --no-deps . \
    && useradd --system --uid 10001 --no-create-home --home-dir /app app \
    && mkdir -p /app/data \
    && chown app /app/data

USER app
EXPOSE 8000
VOLUME ["/app/data"]

HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD python -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('WEB_SERVER_PORT', '8000'), timeout=2)" || exit 1

# SIGTERM: stop accepting, let replies finish within SHUTDOWN_GRACE_S, then interrupt and store the rest.
STOPSIGNAL SIGTERM
CMD ["python", "-m", "entrypoints.main"]
