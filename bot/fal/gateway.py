"""The generation gateway: one interface, two backends (fal and a free local dry run).

Nothing here imports discord. Errors come out as `GenerationError` with a kind and a plain-words message, so the
shot engine never has to know fal_client's exception types.
"""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol
from urllib.parse import urlparse

import aiohttp

from bot.media.fetch import DownloadError, stream_to_file

log = logging.getLogger(__name__)

ErrorKind = Literal["rejected", "content_policy", "server", "timeout", "gone", "cancelled", "network"]


class GenerationError(Exception):
    """A generation step failed; `message` is plain words for the channel, `kind` drives what happens next."""

    def __init__(self, kind: ErrorKind, message: str, *, retryable: bool = False) -> None:
        super().__init__(f"{kind}: {message}")
        self.kind = kind
        self.message = message
        self.retryable = retryable


@dataclass(frozen=True)
class JobStatus:
    """Where a submitted job stands."""

    state: Literal["queued", "running", "completed"]
    position: int | None = None
    error: str | None = None
    error_type: str | None = None


class Generator(Protocol):
    """What the shot engine needs from a backend."""

    name: str
    needs_upload: bool

    async def upload(self, data: bytes, content_type: str, file_name: str) -> str: ...
    async def submit(self, endpoint: str, arguments: dict[str, object]) -> str: ...
    async def status(self, endpoint: str, request_id: str) -> JobStatus: ...
    async def result_video_url(self, endpoint: str, request_id: str) -> str: ...
    async def cancel(self, endpoint: str, request_id: str) -> bool: ...
    async def download(self, url: str, dest: Path, *, max_bytes: int) -> int: ...
    async def close(self) -> None: ...


MAX_CLIP_BYTES = 2 * 1024 * 1024 * 1024


def _detail_text(detail: object) -> str:
    """Flatten fal's `detail` (a string, or a list of {loc, msg, type}) into one short sentence."""
    if isinstance(detail, list):
        parts = []
        for item in detail:
            if isinstance(item, dict):
                loc = item.get("loc")
                field = loc[-1] if isinstance(loc, list) and loc else None
                msg = str(item.get("msg", "")).strip()
                parts.append(f"{field}: {msg}" if field and field != "body" else msg)
            else:
                parts.append(str(item))
        text = "; ".join(p for p in parts if p)
    else:
        text = str(detail or "")
    text = " ".join(text.split())
    return text[:300] or "no details given"


def _is_content_policy(detail: object, error_type: str | None) -> bool:
    if error_type and "content_policy" in error_type:
        return True
    if isinstance(detail, list):
        return any(isinstance(d, dict) and "content_policy" in str(d.get("type", "")) for d in detail)
    return "content_policy" in str(detail)


def classify_fal_error(exc: Exception) -> GenerationError:
    """Turn a fal_client exception into a GenerationError with plain words."""
    import fal_client

    if isinstance(exc, GenerationError):
        return exc
    if isinstance(exc, fal_client.FalClientHTTPError):
        status = exc.status_code
        detail = exc.message if hasattr(exc, "message") else str(exc)
        error_type = getattr(exc, "error_type", None)
        text = _detail_text(detail)
        if _is_content_policy(detail, error_type):
            return GenerationError(
                "content_policy",
                "fal refused this prompt or image under its content policy. Try a different prompt.",
            )
        if error_type == "client_cancelled":
            return GenerationError("cancelled", "The job was cancelled at fal.")
        if error_type in ("request_timeout", "startup_timeout") or status in (504,):
            return GenerationError("timeout", f"fal timed out on this job ({text}).")
        if status == 404:
            return GenerationError(
                "gone", "fal no longer holds this job's result (results are kept about an hour)."
            )
        if status in (408, 409, 429):
            return GenerationError("network", f"fal asked the bot to slow down ({status}).", retryable=True)
        if status in (401, 403):
            return GenerationError("rejected", "fal refused the bot's key; an admin should check FAL_KEY.")
        if status == 422 or 400 <= status < 500:
            return GenerationError("rejected", f"fal rejected the request: {text}.")
        return GenerationError("server", f"fal had a server error ({status}: {text}).", retryable=True)
    if isinstance(exc, TimeoutError | asyncio.TimeoutError):
        return GenerationError("network", "fal did not answer in time.", retryable=True)
    return GenerationError("network", f"Could not reach fal ({type(exc).__name__}).", retryable=True)


class FalGenerator:
    """Calls fal through fal_client's AsyncClient; one HTTP session for downloads."""

    name = "fal"
    needs_upload = True

    def __init__(self, key: str, *, session: aiohttp.ClientSession) -> None:
        import fal_client

        self._client = fal_client.AsyncClient(key=key, default_timeout=60.0)
        self._session = session

    async def upload(self, data: bytes, content_type: str, file_name: str) -> str:
        try:
            return await self._client.upload(data, content_type, file_name)
        except Exception as exc:
            raise classify_fal_error(exc) from exc

    async def submit(self, endpoint: str, arguments: dict[str, object]) -> str:
        try:
            handle = await self._client.submit(endpoint, arguments)
        except Exception as exc:
            raise classify_fal_error(exc) from exc
        return handle.request_id

    async def status(self, endpoint: str, request_id: str) -> JobStatus:
        import fal_client

        try:
            st = await self._client.status(endpoint, request_id, with_logs=False)
        except Exception as exc:
            raise classify_fal_error(exc) from exc
        if isinstance(st, fal_client.Queued):
            return JobStatus("queued", position=st.position)
        if isinstance(st, fal_client.InProgress):
            return JobStatus("running")
        return JobStatus(
            "completed", error=getattr(st, "error", None), error_type=getattr(st, "error_type", None)
        )

    async def result_video_url(self, endpoint: str, request_id: str) -> str:
        try:
            result = await self._client.result(endpoint, request_id)
        except Exception as exc:
            raise classify_fal_error(exc) from exc
        video = result.get("video") if isinstance(result, dict) else None
        url = video.get("url") if isinstance(video, dict) else None
        if not isinstance(url, str) or not url:
            raise GenerationError("server", "fal finished but returned no video.")
        return url

    async def cancel(self, endpoint: str, request_id: str) -> bool:
        """Ask fal to cancel; False only when fal says the job already finished (its clip is coming)."""
        try:
            await self._client.cancel(endpoint, request_id)
        except Exception as exc:
            answer = f"{getattr(exc, 'message', '')} {exc}"
            if "ALREADY_COMPLETED" in answer:
                return False
            # "not found" and transport errors: the job is gone or unreachable; treat it as cancelled.
            log.info("fal cancel of %s answered %s", request_id, classify_fal_error(exc))
        return True

    async def download(self, url: str, dest: Path, *, max_bytes: int = MAX_CLIP_BYTES) -> int:
        try:
            return await stream_to_file(self._session, url, dest, max_bytes=max_bytes)
        except DownloadError as exc:
            if "HTTP 404" in str(exc) or "HTTP 410" in str(exc):
                raise GenerationError("gone", "fal no longer holds the clip file.") from exc
            raise GenerationError("network", f"Could not download the clip ({exc}).", retryable=True) from exc

    async def close(self) -> None:
        return None


class DryRunGenerator:
    """A free local stand-in: makes a real short mp4 (a slow zoom over the start image) with FFmpeg."""

    name = "dry-run"
    needs_upload = False

    def __init__(self, work_dir: Path, *, queued_s: float = 0.0) -> None:
        self.work_dir = work_dir
        self.queued_s = queued_s
        self._jobs: dict[str, asyncio.Task[Path]] = {}
        self._submitted_at: dict[str, float] = {}

    async def upload(self, data: bytes, content_type: str, file_name: str) -> str:
        raise NotImplementedError("the dry-run backend reads images from disk")

    async def submit(self, endpoint: str, arguments: dict[str, object]) -> str:
        image = next((v for k, v in arguments.items() if k.endswith("image_url")), None)
        if not isinstance(image, str):
            raise GenerationError("rejected", "the dry run needs a start image")
        request_id = f"dry-{uuid.uuid4().hex}"
        self.work_dir.mkdir(parents=True, exist_ok=True)
        # The job's arguments are written down, so a restarted bot can pick the job up again.
        spec = self.work_dir / f"{request_id}.json"
        await asyncio.to_thread(spec.write_text, json.dumps(arguments), "utf-8")
        self._start(request_id, arguments)
        return request_id

    def _start(self, request_id: str, arguments: dict[str, object]) -> asyncio.Task[Path]:
        from bot.media.video import make_dry_run_clip

        image = str(next(v for k, v in arguments.items() if k.endswith("image_url")))
        path = Path(urlparse(image).path) if image.startswith("file://") else Path(image)
        duration = int(str(arguments.get("duration", "5")))
        out = self.work_dir / f"{request_id}.mp4"

        async def run() -> Path:
            if self.queued_s:
                await asyncio.sleep(self.queued_s)
            if not out.exists():
                await make_dry_run_clip(path, out, duration_s=duration)
            return out

        job = asyncio.create_task(run(), name=f"dry-run {request_id}")
        self._jobs[request_id] = job
        self._submitted_at[request_id] = time.monotonic()
        return job

    def _job(self, request_id: str) -> asyncio.Task[Path]:
        job = self._jobs.get(request_id)
        if job is not None:
            return job
        spec = self.work_dir / f"{request_id}.json"
        if not request_id.startswith("dry-") or not spec.exists():
            raise GenerationError(
                "gone", "The dry-run job is unknown; it may have been made by another install."
            )
        return self._start(request_id, json.loads(spec.read_text("utf-8")))  # resumed after a restart

    async def status(self, endpoint: str, request_id: str) -> JobStatus:
        job = self._job(request_id)
        if not job.done():
            waited = time.monotonic() - self._submitted_at[request_id]
            return JobStatus("queued", position=0) if waited < self.queued_s else JobStatus("running")
        if job.cancelled():
            return JobStatus("completed", error="cancelled", error_type="client_cancelled")
        if job.exception() is not None:
            return JobStatus("completed", error=str(job.exception()), error_type="runner_error")
        return JobStatus("completed")

    async def result_video_url(self, endpoint: str, request_id: str) -> str:
        job = self._job(request_id)
        if not job.done():
            raise GenerationError("server", "the dry-run job is not finished")
        if job.cancelled():
            raise GenerationError("cancelled", "The job was cancelled.")
        exc = job.exception()
        if exc is not None:
            raise GenerationError("server", f"The dry run could not make a clip ({exc}).")
        return job.result().as_uri()

    async def cancel(self, endpoint: str, request_id: str) -> bool:
        job = self._jobs.get(request_id)
        if job is not None and job.done() and not job.cancelled() and job.exception() is None:
            return False
        if job is not None:
            job.cancel()
        return True

    async def download(self, url: str, dest: Path, *, max_bytes: int = MAX_CLIP_BYTES) -> int:
        src = Path(urlparse(url).path)
        if not src.exists():
            raise GenerationError("gone", "The dry-run clip is gone.")
        dest.parent.mkdir(parents=True, exist_ok=True)
        await asyncio.to_thread(shutil.copyfile, src, dest)
        return dest.stat().st_size

    async def close(self) -> None:
        for job in self._jobs.values():
            job.cancel()
