"""bot.media.fetch against a real HTTP server on loopback: the size cap, and how each caller words a refusal."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from bot.media.audio import too_large_text
from bot.media.fetch import TooLarge, fetch_limited
from bot.media.intake import MAX_UPLOAD_BYTES, too_large_refusal

BODY = b"\x89PNG" + b"\0" * int(20.3 * 1024 * 1024)  # 20.3 MiB and 4 bytes: "20.4 MB", never "20 MB"


@pytest.fixture
async def server() -> AsyncIterator[str]:
    async def handle(request: web.Request) -> web.StreamResponse:
        if request.path == "/chunked":  # no Content-Length: the cap is found while the bytes arrive
            resp = web.StreamResponse()
            await resp.prepare(request)
            for at in range(0, len(BODY), 1 << 20):
                await resp.write(BODY[at : at + (1 << 20)])
            return resp
        return web.Response(body=BODY if request.path == "/big" else b"small")

    app = web.Application()
    app.router.add_get("/{name}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()


async def test_a_body_over_the_cap_raises_a_neutral_error_with_its_size(server: str) -> None:
    """Found in review: fetch_limited raised the image refusal ("upload a PNG, JPEG or WebP") for whatever it
    fetched, voice samples too, and its "20 MB" was rounded to the nearest whole MB. It now says only what it saw."""
    async with aiohttp.ClientSession() as session:
        assert await fetch_limited(session, f"{server}/small", max_bytes=MAX_UPLOAD_BYTES) == b"small"
        with pytest.raises(TooLarge) as declared:
            await fetch_limited(session, f"{server}/big", max_bytes=MAX_UPLOAD_BYTES)
        with pytest.raises(TooLarge) as streamed:
            await fetch_limited(session, f"{server}/chunked", max_bytes=MAX_UPLOAD_BYTES)
    assert (declared.value.size, declared.value.max_bytes) == (len(BODY), MAX_UPLOAD_BYTES)
    assert (streamed.value.size, streamed.value.max_bytes) == (None, MAX_UPLOAD_BYTES)


def test_each_caller_words_it_for_what_it_asked_for_with_the_size_rounded_up() -> None:
    assert (
        too_large_refusal(len(BODY)).message
        == "That file is 20.4 MB; upload a PNG, JPEG or WebP under 20 MB."
    )
    assert (
        too_large_refusal(None).message == "That file is over 20 MB; upload a PNG, JPEG or WebP under 20 MB."
    )
    assert too_large_text(len(BODY)) == "That file is 20.4 MB; a voice sample may be 20 MB at most."
    assert too_large_text(None) == "That file is over 20 MB; a voice sample may be 20 MB at most."
    assert (
        too_large_text(int(20.3 * 1024 * 1024))
        == "That file is 20.3 MB; a voice sample may be 20 MB at most."
    )
