FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 DATA_DIR=/data

# DejaVu Sans draws the names on contact sheets (Pillow's own font has basic Latin only).
RUN apt-get update && apt-get install -y --no-install-recommends fonts-dejavu-core && rm -rf /var/lib/apt/lists/*
# /data/media exists in the image, owned by the bot's user, so that a volume mounted there alone (compose.yaml's
# shared media) starts out writable: Docker fills a new named volume from the image's directory, owner included.
RUN useradd --create-home --uid 10001 anchorshot && mkdir -p /data/media && chown -R anchorshot /data
WORKDIR /app
# The pinned versions first (a layer that changes only when the lock does), then the project without resolving again.
COPY requirements.lock ./
RUN pip install -r requirements.lock
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY cogs ./cogs
RUN pip install --no-deps .

USER anchorshot
VOLUME ["/data"]
# Healthy while the bot's heartbeat file under DATA_DIR is fresh (written every 30 s while connected to Discord).
HEALTHCHECK --interval=60s --timeout=10s --start-period=60s --retries=3 CMD ["anchorshot", "health"]
CMD ["anchorshot"]
