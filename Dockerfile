FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 DATA_DIR=/data

RUN useradd --create-home --uid 10001 anchorshot && mkdir /data && chown anchorshot /data
WORKDIR /app
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY cogs ./cogs
RUN pip install .

USER anchorshot
VOLUME ["/data"]
CMD ["python", "-m", "bot"]
