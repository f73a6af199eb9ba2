# revpulse worker image. Build: docker build -t revpulse .
# Configure with REVPULSE_* environment variables (streams/settings.py), e.g.
#   REVPULSE_KAFKA_BOOTSTRAP=kafka:9092  REVPULSE_REDIS_URL=redis://redis:6379/0
#   REVPULSE_WEB_PORT=6066 (serves /metrics)
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    REVPULSE_WEB_HOST=0.0.0.0 \
    REVPULSE_WEB_PORT=6066 \
    REVPULSE_DATA_DIR=/var/lib/revpulse

WORKDIR /src
COPY . .
RUN pip install . \
    && useradd --system --uid 10001 --home-dir /var/lib/revpulse --create-home revpulse

USER revpulse
WORKDIR /var/lib/revpulse
VOLUME ["/var/lib/revpulse"]
EXPOSE 6066

# Liveness: the web server answers /metrics. (No curl in the slim image.)
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=4 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/metrics' % os.environ.get('REVPULSE_WEB_PORT', '6066'), timeout=4)"]

CMD ["revpulse", "worker"]
