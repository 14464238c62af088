"""A free local stand-in for fal that makes real outputs for every model kind.

* video (Kling image-to-video): an H.264 mp4, a slow zoom over the start image (FFmpeg);
* image (Seedream, its edit, qwen angles): PNGs, the reference image (or a gradient) tinted per candidate with the
  candidate number drawn on it, `num_images` honoured;
* voice (Kling create-voice): a voice id; audio: a short WAV tone.

Every job's endpoint and arguments are written beside its outputs and its result payload when it finishes, so a
restarted bot picks dry-run jobs up again (`status`/`result` of a job made by an earlier process).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import shutil
import struct
import time
import uuid
import wave
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from bot.fal.errors import FailureKind, GenerationError
from bot.fal.gateway import MAX_CLIP_BYTES, CancelOutcome, Status

_TINTS = (
    (255, 120, 120),
    (120, 200, 255),
    (140, 230, 140),
    (250, 210, 110),
    (200, 150, 255),
    (120, 230, 220),
)
_SIZES = {
    "square_hd": (768, 768),
    "square": (512, 512),
    "portrait_4_3": (576, 768),
    "portrait_16_9": (432, 768),
    "landscape_4_3": (768, 576),
    "landscape_16_9": (768, 432),
    "auto_2K": (768, 768),
    "auto_4K": (768, 768),
}


def local_path(ref: str) -> Path:
    """A dry-run reference (a path or a file:// URI) as a path."""
    return Path(unquote(urlparse(ref).path)) if ref.startswith("file://") else Path(ref)


class DryRunGateway:
    """Free, local, deterministic enough for tests; outputs are file:// URIs under `work_dir`."""

    name = "dry-run"
    needs_upload = False
    dry_run = True

    def __init__(self, work_dir: Path, *, queued_s: float = 0.0) -> None:
        self.work_dir = Path(work_dir)
        self.queued_s = queued_s
        self._jobs: dict[str, asyncio.Task[dict[str, Any]]] = {}
        self._submitted_at: dict[str, float] = {}

    # -- files
    def _spec_path(self, request_id: str) -> Path:
        return self.work_dir / f"{request_id}.json"

    def _result_path(self, request_id: str) -> Path:
        return self.work_dir / f"{request_id}.result.json"

    async def upload(self, data: bytes, content_type: str, file_name: str) -> str:
        folder = self.work_dir / "uploads"
        folder.mkdir(parents=True, exist_ok=True)
        safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in file_name)[-80:] or "upload.bin"
        path = folder / f"{uuid.uuid4().hex[:12]}_{safe}"
        await asyncio.to_thread(path.write_bytes, data)
        return path.resolve().as_uri()

    async def submit(
        self, endpoint: str, arguments: dict[str, Any], *, webhook_url: str | None = None
    ) -> str:
        from bot.fal.models import model

        try:
            spec = model(endpoint)
        except KeyError:
            raise GenerationError(FailureKind.REJECTED, "The dry run does not know this model.") from None
        if spec.output_kind == "video" and not isinstance(arguments.get(spec.image_arg or ""), str):
            raise GenerationError(
                FailureKind.REJECTED, "The dry run needs a start image.", field=spec.image_arg
            )
        request_id = f"dry-{uuid.uuid4().hex}"
        self.work_dir.mkdir(parents=True, exist_ok=True)
        record = json.dumps({"endpoint": endpoint, "arguments": arguments})
        await asyncio.to_thread(self._spec_path(request_id).write_text, record, "utf-8")
        self._start(request_id, endpoint, arguments)
        return request_id

    def _start(
        self, request_id: str, endpoint: str, arguments: dict[str, Any]
    ) -> asyncio.Task[dict[str, Any]]:
        async def run() -> dict[str, Any]:
            if self.queued_s:
                await asyncio.sleep(self.queued_s)
            done = self._result_path(request_id)
            if done.exists():
                stored: dict[str, Any] = json.loads(done.read_text("utf-8"))
                return stored
            payload = await self._make(request_id, endpoint, arguments)
            tmp = done.with_name(done.name + ".tmp")
            await asyncio.to_thread(tmp.write_text, json.dumps(payload), "utf-8")
            tmp.replace(done)
            return payload

        job = asyncio.create_task(run(), name=f"dry-run {request_id}")
        self._jobs[request_id] = job
        self._submitted_at[request_id] = time.monotonic()
        return job

    async def _make(self, request_id: str, endpoint: str, arguments: dict[str, Any]) -> dict[str, Any]:
        from bot.fal.models import model

        spec = model(endpoint)
        if spec.output_kind == "video":
            from bot.media.video import make_dry_run_clip

            out = self.work_dir / f"{request_id}.mp4"
            source = local_path(str(arguments[spec.image_arg or "start_image_url"]))
            await make_dry_run_clip(source, out, duration_s=int(str(arguments.get("duration", "5"))))
            video = {"url": out.resolve().as_uri(), "content_type": "video/mp4", "file_name": out.name}
            return {"video": {**video, "file_size": out.stat().st_size}}
        if spec.output_kind == "image":
            images = await asyncio.to_thread(self._make_images, request_id, arguments)
            return {"images": images, "seed": int(hashlib.sha256(request_id.encode()).hexdigest()[:8], 16)}
        if spec.output_kind == "voice":
            voice = local_path(str(arguments.get("voice_url", "")))
            if not voice.exists():
                raise GenerationError(FailureKind.REJECTED, "The dry run could not read the voice sample.")
            return {"voice_id": f"dry-voice-{request_id[4:16]}"}
        out = self.work_dir / f"{request_id}.wav"
        await asyncio.to_thread(write_tone, out)
        return {"audio": {"url": out.resolve().as_uri(), "content_type": "audio/wav", "file_name": out.name}}

    def _make_images(self, request_id: str, arguments: dict[str, Any]) -> list[dict[str, Any]]:
        from PIL import Image, ImageDraw, ImageOps

        refs = arguments.get("image_urls") or []
        base: Image.Image | None = None
        if refs:
            with Image.open(local_path(str(refs[0]))) as im:
                base = ImageOps.exif_transpose(im).convert("RGB")
                base.thumbnail((768, 768))
        size = arguments.get("image_size")
        if isinstance(size, dict):
            w, h = int(size.get("width", 512)), int(size.get("height", 512))
            scale = min(1.0, 768 / max(w, h))
            dims = (max(64, int(w * scale)), max(64, int(h * scale)))
        elif isinstance(size, str) and size in _SIZES:
            dims = _SIZES[size]
        else:
            dims = base.size if base is not None else (576, 768)
        if base is None:
            base = Image.linear_gradient("L").resize(dims).convert("RGB")
        elif base.size != dims and not refs:
            base = base.resize(dims)
        count = int(arguments.get("num_images", 1) or 1)
        out = []
        for n in range(1, count + 1):
            tint = Image.new("RGB", base.size, _TINTS[(n - 1) % len(_TINTS)])
            img = Image.blend(base, tint, 0.35)
            draw = ImageDraw.Draw(img)
            side = max(24, min(img.size) // 6)
            draw.rectangle((8, 8, 8 + side, 8 + side), fill=(0, 0, 0))
            draw.text((8 + side // 3, 8 + side // 4), str(n), fill=(255, 255, 255), font_size=side // 2)
            path = self.work_dir / f"{request_id}-{n}.png"
            img.save(path, "PNG")
            out.append(
                {
                    "url": path.resolve().as_uri(),
                    "width": img.width,
                    "height": img.height,
                    "content_type": "image/png",
                    "file_name": path.name,
                }
            )
        return out

    def _job(self, endpoint: str, request_id: str) -> asyncio.Task[dict[str, Any]]:
        job = self._jobs.get(request_id)
        if job is not None:
            return job
        spec_path = self._spec_path(request_id)
        if not request_id.startswith("dry-") or not spec_path.exists():
            raise GenerationError(
                FailureKind.GONE, "The dry-run job is unknown; it may have been made by another install."
            )
        record = json.loads(spec_path.read_text("utf-8"))
        if isinstance(record, dict) and "arguments" in record and "endpoint" in record:
            endpoint, arguments = record["endpoint"], record["arguments"]
        else:  # written by the old dry-run backend: the arguments alone
            arguments = record
        return self._start(request_id, endpoint, arguments)  # resumed after a restart

    async def status(self, endpoint: str, request_id: str) -> Status:
        job = self._job(endpoint, request_id)
        if not job.done():
            waited = time.monotonic() - self._submitted_at[request_id]
            return Status("queued", position=0) if waited < self.queued_s else Status("running")
        if job.cancelled():
            return Status(
                "completed",
                error=GenerationError(
                    FailureKind.CANCELLED, "The job was cancelled.", error_type="client_cancelled"
                ),
            )
        if job.exception() is not None:
            return Status("completed", error=self._failure(job.exception()))
        return Status("completed")

    @staticmethod
    def _failure(exc: BaseException | None) -> GenerationError:
        if isinstance(exc, GenerationError):
            return exc
        return GenerationError(
            FailureKind.REJECTED, f"The dry run could not make this ({type(exc).__name__})."
        )

    async def result(self, endpoint: str, request_id: str) -> dict[str, Any]:
        job = self._job(endpoint, request_id)
        if not job.done():
            raise GenerationError(FailureKind.SERVER, "The dry-run job is not finished.")
        if job.cancelled():
            raise GenerationError(FailureKind.CANCELLED, "The job was cancelled.")
        if job.exception() is not None:
            raise self._failure(job.exception())
        return job.result()

    async def cancel(self, endpoint: str, request_id: str) -> CancelOutcome:
        job = self._jobs.get(request_id)
        if job is None:
            if self._result_path(request_id).exists():
                return CancelOutcome.ALREADY_DONE
            return CancelOutcome.NOT_FOUND
        if job.done():
            return CancelOutcome.ALREADY_DONE if not job.cancelled() else CancelOutcome.CANCELLED
        job.cancel()
        return CancelOutcome.CANCELLED

    async def download(self, url: str, dest: Path, *, max_bytes: int = MAX_CLIP_BYTES) -> int:
        src = local_path(url)
        if not src.exists():
            raise GenerationError(FailureKind.GONE, "The dry-run output is gone.")
        if src.stat().st_size > max_bytes:
            raise GenerationError(FailureKind.BAD_OUTPUT, "The dry-run output is larger than expected.")
        dest.parent.mkdir(parents=True, exist_ok=True)
        await asyncio.to_thread(shutil.copyfile, src, dest)
        return dest.stat().st_size

    async def close(self) -> None:
        for job in self._jobs.values():
            job.cancel()


def write_tone(path: Path, *, seconds: float = 1.0, hz: float = 440.0, rate: int = 16_000) -> None:
    """A short mono 16-bit sine WAV."""
    frames = b"".join(
        struct.pack("<h", int(12_000 * math.sin(2 * math.pi * hz * n / rate)))
        for n in range(int(seconds * rate))
    )
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(frames)
