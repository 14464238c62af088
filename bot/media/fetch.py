"""Download a URL to memory or disk with a hard size cap, checked while the bytes arrive.

A body over the cap raises `TooLarge` with what was seen of its size; each caller words it for what it asked for
(an image, a voice sample)."""

from __future__ import annotations

import os
from pathlib import Path

import aiohttp

CHUNK = 64 * 1024


class DownloadError(Exception):
    """The download failed (network, HTTP status, or the server gave nothing)."""


class TooLarge(Exception):
    """The body is larger than `max_bytes`: `size` is its length when the server said it, else None (the download
    stopped at the cap, so all that is known is that it is over it)."""

    def __init__(self, size: int | None, max_bytes: int) -> None:
        super().__init__(f"over {max_bytes} bytes" if size is None else f"{size} bytes, over {max_bytes}")
        self.size = size
        self.max_bytes = max_bytes


async def fetch_limited(session: aiohttp.ClientSession, url: str, *, max_bytes: int) -> bytes:
    """Fetch at most `max_bytes`; raise `TooLarge` as soon as the body is larger (DownloadError when it fails)."""
    try:
        async with session.get(url, timeout=aiohttp.ClientTimeout(total=60)) as resp:
            if resp.status != 200:
                raise DownloadError(f"HTTP {resp.status}")
            length = resp.content_length
            if length is not None and length > max_bytes:
                raise TooLarge(length, max_bytes)
            buf = bytearray()
            async for chunk in resp.content.iter_chunked(CHUNK):
                buf.extend(chunk)
                if len(buf) > max_bytes:
                    raise TooLarge(None, max_bytes)
            return bytes(buf)
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise DownloadError(str(exc) or type(exc).__name__) from exc


async def stream_to_file(session: aiohttp.ClientSession, url: str, dest: Path, *, max_bytes: int) -> int:
    """Stream a URL to `dest` (atomically, via a temp name) without holding it in memory; return its size."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".part")
    size = 0
    try:
        async with session.get(url, timeout=aiohttp.ClientTimeout(total=600, sock_read=120)) as resp:
            if resp.status != 200:
                raise DownloadError(f"HTTP {resp.status}")
            with tmp.open("wb") as fh:
                async for chunk in resp.content.iter_chunked(CHUNK):
                    size += len(chunk)
                    if size > max_bytes:
                        raise DownloadError(f"the file is larger than {max_bytes} bytes")
                    fh.write(chunk)
        if size == 0:
            raise DownloadError("empty file")
        os.replace(tmp, dest)
        return size
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise DownloadError(str(exc) or type(exc).__name__) from exc
    finally:
        if tmp.exists():
            tmp.unlink()
