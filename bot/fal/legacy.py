"""TEMPORARY: the old `Generator` API on top of the new gateway, until the take engine moves to `Gateway`.

`result_video_url`, a bool `cancel` (False only when fal said ALREADY_COMPLETED), the old `JobStatus` with string
error fields, and the old class names `FalGenerator` / `DryRunGenerator`. Delete this module once nothing imports it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import aiohttp

from bot.fal.errors import FailureKind, GenerationError, from_exception
from bot.fal.gateway import MAX_CLIP_BYTES, CancelOutcome, FalGateway, Gateway

classify_fal_error = from_exception


@dataclass(frozen=True)
class JobStatus:
    """Where a submitted job stands (old shape: the error as words and fal's error type)."""

    state: Literal["queued", "running", "completed"]
    position: int | None = None
    error: str | None = None
    error_type: str | None = None


class Generator(Protocol):
    name: str
    needs_upload: bool

    async def upload(self, data: bytes, content_type: str, file_name: str) -> str: ...
    async def submit(self, endpoint: str, arguments: dict[str, object]) -> str: ...
    async def status(self, endpoint: str, request_id: str) -> JobStatus: ...
    async def result_video_url(self, endpoint: str, request_id: str) -> str: ...
    async def cancel(self, endpoint: str, request_id: str) -> bool: ...
    async def download(self, url: str, dest: Path, *, max_bytes: int) -> int: ...
    async def close(self) -> None: ...


class LegacyGenerator:
    """Adapts a `Gateway` to the old `Generator` API."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.name = gateway.name
        self.needs_upload = gateway.needs_upload
        self.dry_run = gateway.dry_run

    async def upload(self, data: bytes, content_type: str, file_name: str) -> str:
        return await self.gateway.upload(data, content_type, file_name)

    async def submit(self, endpoint: str, arguments: dict[str, Any]) -> str:
        return await self.gateway.submit(endpoint, arguments)

    async def status(self, endpoint: str, request_id: str) -> JobStatus:
        st = await self.gateway.status(endpoint, request_id)
        if st.error is None:
            return JobStatus(st.state, position=st.position)
        err = st.error
        return JobStatus(
            st.state, position=st.position, error=err.message, error_type=err.error_type or err.kind
        )

    async def result(self, endpoint: str, request_id: str) -> dict[str, Any]:
        return await self.gateway.result(endpoint, request_id)

    async def result_video_url(self, endpoint: str, request_id: str) -> str:
        from bot.fal.models import CATALOGUE

        payload = await self.gateway.result(endpoint, request_id)
        spec = CATALOGUE.get(endpoint)
        if spec is not None and spec.output_kind == "video":
            url = spec.outputs(payload)[0].url
        else:
            video = payload.get("video")
            url = video.get("url") if isinstance(video, dict) else None
        if not isinstance(url, str) or not url:
            raise GenerationError(FailureKind.BAD_OUTPUT, "fal finished but returned no video.")
        return url

    async def cancel(self, endpoint: str, request_id: str) -> bool:
        return await self.gateway.cancel(endpoint, request_id) is not CancelOutcome.ALREADY_DONE

    async def download(self, url: str, dest: Path, *, max_bytes: int = MAX_CLIP_BYTES) -> int:
        return await self.gateway.download(url, dest, max_bytes=max_bytes)

    async def close(self) -> None:
        await self.gateway.close()


class FalGenerator(LegacyGenerator):
    def __init__(self, key: str, *, session: aiohttp.ClientSession) -> None:
        super().__init__(FalGateway(key, session=session))


class DryRunGenerator(LegacyGenerator):
    def __init__(self, work_dir: Path, *, queued_s: float = 0.0) -> None:
        from bot.fal.dryrun import DryRunGateway

        super().__init__(DryRunGateway(work_dir, queued_s=queued_s))
