"""Self-tests for tests/fakes/fal_fake.py: a real fal_client.AsyncClient (1.0.3) against the fake."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import time

import aiohttp
import fal_client
import fal_client.client as fc
import pytest

from tests.fakes import fal_schema
from tests.fakes.fal_fake import FakeFal, Outcome
from tests.fakes.media_samples import ffmpeg_exe, large_mp4, silent_mp4, small_mp4, speech_mp4, speech_wav

APP = "fal-ai/kling-video/v3/pro/image-to-video"
ARGS = {"start_image_url": "https://example.invalid/a.png", "prompt": "she waves", "duration": "5"}


@pytest.fixture
async def fal():
    fake = FakeFal()
    fake.foreign_images_ok = True  # these self-tests send an example.invalid image URL
    await fake.start()
    fake.install()
    try:
        yield fake
    finally:
        fake.restore()
        await fake.close()
    assert fake.errors == []


@pytest.fixture
async def client(fal):
    c = fal_client.AsyncClient(key="test-key")
    yield c
    if "_client" in c.__dict__:
        await (await c._client).aclose()


async def _get(url: str, **kw) -> tuple[int, bytes, dict]:
    async with aiohttp.ClientSession() as s, s.get(url, **kw) as r:
        return r.status, await r.read(), dict(r.headers)


async def _poll_until_completed(client, request_id, *, max_polls=20):
    seen = []
    for _ in range(max_polls):
        st = await client.status(APP, request_id, with_logs=True)
        seen.append(st)
        if isinstance(st, fal_client.Completed):
            return seen
    raise AssertionError(f"never completed: {seen}")


# ------------------------------------------------------------------------------------------- queue


async def test_complete_happy_path(fal, client):
    handle = await client.submit(APP, ARGS)
    assert handle.status_url == f"{fal.base_url}/queue/fal-ai/kling-video/requests/{handle.request_id}/status"
    assert handle.response_url == f"{fal.base_url}/queue/fal-ai/kling-video/requests/{handle.request_id}"
    assert handle.cancel_url.endswith(f"/fal-ai/kling-video/requests/{handle.request_id}/cancel")

    out = await handle.get()
    video = out["video"]
    assert video["content_type"] == "video/mp4" and video["file_name"] == "output.mp4"
    status, body, headers = await _get(video["url"])
    assert status == 200 and body == small_mp4() and video["file_size"] == len(body)
    assert headers["Content-Type"] == "video/mp4"

    sub = fal.submission(handle.request_id)
    assert fal.submissions == [sub]
    assert sub.endpoint == APP and sub.arguments == ARGS
    assert sub.headers["authorization"] == "Key test-key" == sub.headers["Authorization"]
    assert sub.state == "COMPLETED" and sub.status_polls == 3 and sub.result_fetches == 1
    assert not sub.cancelled
    assert set(fal.auth_headers_seen) == {"Key test-key"}
    assert fal.requests.count(("GET", f"/queue/fal-ai/kling-video/requests/{sub.request_id}/status")) == 3


async def test_status_sequence_and_restart_by_id(fal, client):
    custom = b"not really a video"
    fal.script(Outcome.complete(queued_polls=3, progress_polls=2, video=custom))
    handle = await client.submit(APP, ARGS)

    # a "restarted bot": a brand-new client that only knows the endpoint id and the request id
    other = fal_client.AsyncClient(key="test-key")
    seen = await _poll_until_completed(other, handle.request_id)
    assert [type(s).__name__ for s in seen] == ["Queued"] * 3 + ["InProgress"] * 2 + ["Completed"]
    assert [s.position for s in seen[:3]] == [2, 1, 0]
    assert seen[3].logs and seen[3].logs[0]["message"]
    assert seen[-1].error is None and seen[-1].metrics["inference_time"] > 0

    out = await other.result(APP, handle.request_id)
    assert (await _get(out["video"]["url"]))[1] == custom
    await (await other._client).aclose()

    st = await client.status(APP, handle.request_id)  # logs not requested
    assert isinstance(st, fal_client.Completed)


async def test_output_override_and_default(fal, client):
    fal.default = Outcome.complete(queued_polls=0, progress_polls=0, output={"images": [{"url": "x"}]})
    out = await client.subscribe("fal-ai/bytedance/seedream/v4.5/text-to-image", {"prompt": "p"})
    assert out == {"images": [{"url": "x"}]}
    assert fal.submissions[0].status_polls == 1


async def test_validation_error(fal, client):
    fal.script(Outcome.validation_error())
    with pytest.raises(fal_client.FalClientHTTPError) as ei:
        await client.submit(APP, ARGS)
    err = ei.value
    assert err.status_code == 422
    assert isinstance(err.message, list) and err.message[0]["type"] == "value_error"
    assert err.response.headers["content-type"].startswith("application/json")
    assert fal.submissions[0].state == "REJECTED"
    # next submit uses the default outcome
    assert (await client.subscribe(APP, ARGS))["video"]["url"]


async def test_content_policy_at_result_and_submit(fal, client):
    fal.script(Outcome.content_policy(), Outcome.content_policy(at="submit"))
    handle = await client.submit(APP, ARGS)
    with pytest.raises(fal_client.FalClientHTTPError) as ei:
        await handle.get()
    assert ei.value.status_code == 422
    assert ei.value.message[0]["type"] == "content_policy_violation"
    assert fal.submission(handle.request_id).state == "COMPLETED"

    with pytest.raises(fal_client.FalClientHTTPError) as ei:
        await client.submit(APP, ARGS)
    assert ei.value.status_code == 422 and ei.value.message[0]["type"] == "content_policy_violation"


async def test_server_error_not_retried(fal, client):
    fal.script(
        Outcome.server_error(), Outcome.server_error(status=503, at="submit", error_type="startup_timeout")
    )
    handle = await client.submit(APP, ARGS)
    with pytest.raises(fal_client.FalClientHTTPError) as ei:
        await handle.get()
    err = ei.value
    assert err.status_code == 500 and err.error_type == "runner_server_error"
    assert err.response_headers["x-fal-error-type"] == "runner_server_error"
    assert isinstance(err.message, str)
    assert fal.submission(handle.request_id).result_fetches == 1  # 500 is not retried

    with pytest.raises(fal_client.FalClientHTTPError) as ei:
        await client.submit(APP, ARGS)
    assert ei.value.status_code == 503 and ei.value.error_type == "startup_timeout"
    assert len(fal.submissions) == 2  # 503 with x-fal-request-id and no "nginx" body: not retried


async def test_429_is_retried_by_fal_client(fal, client):
    # fal_client retries 408/409/429 (and transport errors) itself: the retry consumes the next outcome
    fal.script(Outcome.server_error(status=429, at="submit", error_type="rate_limited"))
    t0 = time.monotonic()
    handle = await client.submit(APP, ARGS)
    assert time.monotonic() - t0 < 2
    assert [s.state for s in fal.submissions] == ["REJECTED", "IN_QUEUE"]
    assert handle.request_id == fal.submissions[1].request_id


async def test_hold_and_release(fal, client):
    fal.script(Outcome.hold())
    handle = await client.submit(APP, ARGS)
    sub = fal.submission(handle.request_id)
    assert sub.outcome.kind == "hold" and sub.held
    states = [type(await client.status(APP, handle.request_id)).__name__ for _ in range(6)]
    assert states == ["Queued"] + ["InProgress"] * 5
    assert sub.state == "IN_PROGRESS"
    fal.release(handle.request_id)
    assert isinstance(await client.status(APP, handle.request_id), fal_client.Completed)
    assert (await handle.get())["video"]["file_size"] == len(small_mp4())


async def test_hold_submit_failure_blocks_submit(fal, client):
    fal.script(Outcome.hold(then=Outcome.validation_error()))
    task = asyncio.create_task(client.submit(APP, ARGS))
    for _ in range(100):
        if fal.submissions:
            break
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.05)
    assert not task.done()
    fal.release()
    with pytest.raises(fal_client.FalClientHTTPError) as ei:
        await task
    assert ei.value.status_code == 422


async def test_result_gone(fal, client):
    fal.script(Outcome.result_gone(), Outcome.result_gone(status_gone=True))
    handle = await client.submit(APP, ARGS)
    with pytest.raises(fal_client.FalClientHTTPError) as ei:
        await client.result(APP, handle.request_id)
    assert ei.value.status_code == 404 and ei.value.message == "Request not found"

    handle = await client.submit(APP, ARGS)
    with pytest.raises(fal_client.FalClientHTTPError) as ei:
        await client.status(APP, handle.request_id)
    assert ei.value.status_code == 404


async def test_completed_with_error(fal, client):
    fal.script(Outcome.completed_with_error("CUDA out of memory", "runner_server_error"))
    handle = await client.submit(APP, ARGS)
    seen = await _poll_until_completed(client, handle.request_id)
    assert seen[-1].error == "CUDA out of memory" and seen[-1].error_type == "runner_server_error"
    with pytest.raises(fal_client.FalClientHTTPError) as ei:
        await handle.get()
    assert ei.value.status_code == 500 and ei.value.message == "CUDA out of memory"
    assert ei.value.error_type == "runner_server_error"


async def test_timeout(fal, client):
    fal.script(Outcome.timeout())
    handle = await client.submit(APP, ARGS)
    seen = await _poll_until_completed(client, handle.request_id)
    assert seen[-1].error_type == "request_timeout"
    with pytest.raises(fal_client.FalClientHTTPError) as ei:
        await handle.get()
    assert ei.value.status_code == 504 and ei.value.error_type == "request_timeout"
    assert ei.value.message == "Request timed out"
    assert fal.submission(handle.request_id).result_fetches == 1  # 504 not retried


async def test_cancel(fal, client):
    fal.script(Outcome.hold())
    handle = await client.submit(APP, ARGS)
    await handle.cancel()
    sub = fal.submission(handle.request_id)
    assert sub.cancelled and sub.state == "CANCELLED"
    st = await client.status(APP, handle.request_id)
    assert isinstance(st, fal_client.Completed) and st.error_type == "client_cancelled"
    with pytest.raises(fal_client.FalClientHTTPError) as ei:
        await handle.get()
    assert ei.value.status_code == 400 and ei.value.error_type == "client_cancelled"

    with pytest.raises(fal_client.FalClientHTTPError) as ei:  # cancel again
        await client.cancel(APP, handle.request_id)
    assert ei.value.status_code == 400 and "ALREADY_COMPLETED" in ei.value.message

    done = await client.submit(APP, ARGS)
    await done.get()
    with pytest.raises(fal_client.FalClientHTTPError) as ei:
        await done.cancel()
    assert ei.value.status_code == 400 and "ALREADY_COMPLETED" in ei.value.message

    with pytest.raises(fal_client.FalClientHTTPError) as ei:
        await client.cancel(APP, "no-such-id")
    assert ei.value.status_code == 404 and "NOT_FOUND" in ei.value.message


async def test_a_job_that_finished_unasked_cannot_be_cancelled(fal, client):
    """A job with nothing left to run is finished on fal whether or not a status request said so yet: a cancel
    then answers ALREADY_COMPLETED (and the output is there), as it does for a job seen COMPLETED."""
    fal.script(Outcome.hold(then=Outcome.complete(queued_polls=0, progress_polls=0)), Outcome.hold())
    finished = await client.submit(APP, ARGS)
    fal.release(finished.request_id)
    with pytest.raises(fal_client.FalClientHTTPError) as ei:
        await finished.cancel()
    assert ei.value.status_code == 400 and "ALREADY_COMPLETED" in ei.value.message
    assert "video" in await finished.get()
    running = await client.submit(APP, ARGS)  # still queued and running at fal when released: cancellable
    fal.release(running.request_id)
    await running.cancel()
    assert fal.submission(running.request_id).cancelled


async def test_result_before_completion_and_unknown_ids(fal, client):
    fal.script(Outcome.hold())
    handle = await client.submit(APP, ARGS)
    status, body, headers = await _get(handle.response_url, headers={"Authorization": "Key test-key"})
    assert status == 400 and b"still in progress" in body
    assert headers["Content-Type"].startswith("application/json")

    with pytest.raises(fal_client.FalClientHTTPError) as ei:
        await client.status(APP, "no-such-id")
    assert ei.value.status_code == 404
    with pytest.raises(fal_client.FalClientHTTPError) as ei:  # right id, wrong app
        await client.status("fal-ai/other-app", handle.request_id)
    assert ei.value.status_code == 404
    full_path = f"{fal.base_url}/queue/{APP}/requests/{handle.request_id}/status"
    assert (await _get(full_path, headers={"Authorization": "Key test-key"}))[0] == 404


async def test_auth_required(fal):
    url = f"{fal.base_url}/queue/{APP}"
    async with aiohttp.ClientSession() as s:
        async with s.post(url, json=ARGS) as r:
            assert r.status == 401 and (await r.json())["detail"] == "No user found for Key ID and Secret"
        async with s.post(url, json=ARGS, headers={"Authorization": "Bearer x"}) as r:
            assert r.status == 401
        async with s.post(url, data=b"{not json", headers={"Authorization": "Key k"}) as r:
            assert r.status == 400 and r.content_type == "application/json"
        async with s.post(url, data=b"[1]", headers={"Authorization": "Key k"}) as r:
            assert r.status == 400
        async with s.get(f"{fal.base_url}/nope") as r:
            assert r.status == 404 and r.content_type == "application/json"
        async with s.post(f"{fal.base_url}/cdn/files/upload", data=b"x") as r:
            assert r.status == 401
        async with s.post(f"{fal.base_url}/rest/storage/auth/token?storage_type=fal-cdn-v3", json={}) as r:
            assert r.status == 401
    assert fal.submissions == []
    assert "" in fal.auth_headers_seen


async def test_wrong_key_rejected_when_valid_key_set(fal):
    fal.valid_key = "right"
    bad = fal_client.AsyncClient(key="wrong")
    with pytest.raises(fal_client.FalClientHTTPError) as ei:
        await bad.submit(APP, ARGS)
    assert ei.value.status_code == 401
    await (await bad._client).aclose()


async def test_module_level_functions_use_fake(fal, monkeypatch):
    monkeypatch.setenv("FAL_KEY", "env-key")
    fal_client.async_client.__dict__.pop("_auth", None)
    try:
        out = await fal_client.subscribe_async(APP, ARGS)
        assert out["video"]["url"].startswith(fal.base_url)
        assert fal.auth_headers_seen[-1] == "Key env-key"
    finally:
        if "_client" in fal_client.async_client.__dict__:
            await (await fal_client.async_client._client).aclose()
        fal_client.async_client.__dict__.pop("_client", None)
        fal_client.async_client.__dict__.pop("_auth", None)


def test_install_restore():
    fake = FakeFal()
    fake.base_url = "http://127.0.0.1:1"
    orig = (fc.QUEUE_URL_FORMAT, fc.REST_URL, fc.CDN_URL, fc.RUN_URL_FORMAT)
    fake.install()
    assert fc.QUEUE_URL_FORMAT == "http://127.0.0.1:1/queue/"
    assert fc.REST_URL == "http://127.0.0.1:1/rest" and fc.CDN_URL == "http://127.0.0.1:1/cdn"
    fake.restore()
    assert orig == (fc.QUEUE_URL_FORMAT, fc.REST_URL, fc.CDN_URL, fc.RUN_URL_FORMAT)
    assert fc.QUEUE_URL_FORMAT == "https://queue.fal.run/"


# ----------------------------------------------------------------------------------------- storage


async def test_upload_fetch_and_expire(fal, client):
    png = b"\x89PNG\r\n\x1a\nfake-png"
    url = await client.upload(png, "image/png", file_name="anchor.png")
    assert url.startswith(fal.base_url + "/cdn/files/") and url.endswith("_anchor.png")
    up = fal.uploads[0]
    assert (up.url, up.data, up.content_type, up.file_name, up.repository) == (
        url,
        png,
        "image/png",
        "anchor.png",
        "fal_v3",
    )
    assert fal.fetch_upload(url) == png
    status, body, headers = await _get(url)
    assert status == 200 and body == png and headers["Content-Type"] == "image/png"
    status, body, _ = await _get(url, headers={"Range": "bytes=0-3"})
    assert status == 206 and body == png[:4]

    fal.expire_uploads()
    assert (await _get(url))[0] == 404
    assert fal.fetch_upload(url) == png
    with pytest.raises(KeyError):
        fal.fetch_upload(fal.base_url + "/cdn/files/nope")

    url2 = await client.upload(png, "image/png")  # re-upload works, new url
    assert url2 != url and (await _get(url2))[1] == png and fal.uploads[1].file_name is None
    token_calls = [r for r in fal.requests if r[1] == "/rest/storage/auth/token"]
    assert len(token_calls) == 1  # fal_client caches the CDN token (1 h)


async def test_upload_image_pil(fal, client):
    from PIL import Image

    url = await client.upload_image(Image.new("RGB", (8, 8), "red"), format="png")
    assert fal.uploads[-1].content_type == "image/png" and fal.fetch_upload(url).startswith(b"\x89PNG")


async def test_multipart_upload(fal, client, monkeypatch):
    monkeypatch.setattr(fc, "MULTIPART_THRESHOLD", 256 * 1024)
    monkeypatch.setattr(fc, "MULTIPART_CHUNK_SIZE", 100 * 1024)
    data = bytes(range(256)) * 1300  # 325 KiB -> 4 parts of <= 100 KiB
    url = await client.upload(data, "video/mp4", file_name="clip.mp4")
    up = fal.uploads[-1]
    assert up.repository == "fal_v3_multipart" and up.data == data and up.url == url
    assert sum(1 for m, p in fal.requests if m == "PUT" and "/multipart/" in p) == 4
    assert (await _get(url))[1] == data


async def test_v3_failure_falls_back_to_legacy_storage(fal, client):
    await client.upload(b"one", "text/plain")
    fal._tokens.clear()  # the cached CDN token is now rejected (401) -> fal_client silently falls back
    url = await client.upload(b"two", "text/plain", file_name="two.txt")
    assert fal.uploads[-1].repository == "fal" and fal.fetch_upload(url) == b"two"
    assert (await _get(url))[1] == b"two"


# ------------------------------------------------------------------------------------------- media


def _probe(data: bytes, tmp_path) -> str:
    path = tmp_path / "probe.mp4"
    path.write_bytes(data)
    proc = subprocess.run([ffmpeg_exe(), "-hide_banner", "-i", str(path)], capture_output=True, check=False)
    return proc.stderr.decode()


def test_small_mp4(tmp_path):
    data = small_mp4()
    assert data is small_mp4()  # cached per process
    assert 1_000 < len(data) < 300_000
    assert data[4:8] == b"ftyp" and data.find(b"moov") < data.find(b"mdat")  # +faststart
    info = _probe(data, tmp_path)
    assert "h264" in info and "yuv420p" in info and "320x240" in info and "aac" in info
    path = tmp_path / "probe.mp4"
    decode = subprocess.run(
        [ffmpeg_exe(), "-v", "error", "-i", str(path), "-f", "null", "-"], capture_output=True, check=False
    )
    assert decode.returncode == 0 and decode.stderr == b""


def test_large_mp4(tmp_path):
    min_bytes = 11 * 1024 * 1024
    data = large_mp4()
    assert len(data) > min_bytes
    assert data[4:8] == b"ftyp" and data.find(b"moov") < data.find(b"mdat")
    info = _probe(data, tmp_path)
    assert "h264" in info and "yuv420p" in info and "1280x720" in info


# ------------------------------------------------------------------------------------ faults on cue


def _png(w: int = 400, h: int = 600) -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (w, h), (10, 20, 30)).save(buf, "PNG")
    return buf.getvalue()


async def test_fault_reset_after_submit_makes_fal_client_run_the_take_twice(fal, client):
    """Why the gateway bypasses fal_client's submit: fal_client re-sends after a reset and fal runs it twice."""
    fal.reset_after_submit()
    handle = await client.submit(APP, ARGS)
    assert len(fal.submissions) == 2 and handle.request_id == fal.submissions[1].request_id
    assert fal.duplicate_runs() == [json.dumps([APP, ARGS], sort_keys=True)]
    assert fal.runs_per_arguments()[json.dumps([APP, ARGS], sort_keys=True)] == 2


async def test_fault_reset_before_submit_creates_no_job(fal, client):
    fal.reset_before_submit()
    await client.submit(APP, ARGS)  # fal_client re-sends; only the second try reaches the queue
    assert len(fal.submissions) == 1 and fal.duplicate_runs() == []


@pytest.mark.parametrize("kind", ["submit", "status", "result", "cancel"])
async def test_fault_fail_next_per_kind(fal, client, kind):
    handle = None if kind == "submit" else await client.submit(APP, ARGS)
    fal.fail_next(kind, 1, status=500)
    with pytest.raises(fal_client.FalClientHTTPError) as err:
        if kind == "submit":
            await client.submit(APP, ARGS)
        elif kind == "status":
            await client.status(APP, handle.request_id)
        elif kind == "result":
            await client.result(APP, handle.request_id)
        else:
            await client.cancel(APP, handle.request_id)
    assert err.value.status_code == 500 and "x-fal-request-id" in err.value.response_headers
    assert len(fal.submissions) == (0 if kind == "submit" else 1) and fal.pending_faults == []
    if handle is not None:
        assert not fal.submission(handle.request_id).cancelled


async def test_fault_429_is_repeated_by_fal_client_and_counted(fal, client):
    fal.fail_next("status", 2, status=429)
    handle = await client.submit(APP, ARGS)
    await client.status(APP, handle.request_id)
    assert fal.requests.count(("GET", f"/queue/fal-ai/kling-video/requests/{handle.request_id}/status")) == 3


async def test_fault_slow_next(fal, client):
    handle = await client.submit(APP, ARGS)
    fal.slow_next("status", 0.6)
    started = time.monotonic()
    await client.status(APP, handle.request_id)
    assert time.monotonic() - started >= 0.6


async def test_fault_reset_after_cancel_still_cancels(fal, client):
    fal.script(Outcome.hold())
    handle = await client.submit(APP, ARGS)
    fal.reset_next("cancel", 1, after=True)
    with pytest.raises(fal_client.FalClientHTTPError) as err:  # fal_client re-sends the PUT after the reset
        await client.cancel(APP, handle.request_id)
    assert err.value.response.json() == {"status": "ALREADY_COMPLETED"}  # ... and hears "already completed"
    assert fal.submission(handle.request_id).cancelled  # although the first PUT did cancel it


@pytest.mark.parametrize(("answer", "code"), [("ALREADY_COMPLETED", 400), ("NOT_FOUND", 404), (500, 500)])
async def test_fault_refuse_next_cancel(fal, client, answer, code):
    fal.script(Outcome.hold())
    handle = await client.submit(APP, ARGS)
    fal.refuse_next_cancel(answer)
    with pytest.raises(fal_client.FalClientHTTPError) as err:
        await client.cancel(APP, handle.request_id)
    assert err.value.status_code == code and not fal.submission(handle.request_id).cancelled


async def test_fault_upload_fails_on_both_paths(fal, client):
    fal.fail_next("upload", 2, status=503)
    with pytest.raises(Exception):  # noqa: B017 (fal_client surfaces the fallback's error)
        await client.upload(b"x", "image/png", "a.png")
    assert fal.uploads == []
    assert await client.upload(b"x", "image/png", "a.png")


@pytest.mark.parametrize("mode", ["html", "truncated", "cut", "endless", "oversized"])
async def test_fault_break_downloads(fal, client, mode):
    handle = await client.submit(APP, ARGS)
    url = (await client.result(APP, handle.request_id))["video"]["url"]
    whole = fal._outputs[url][0]
    fal.break_downloads(mode)
    async with aiohttp.ClientSession() as s, s.get(url) as r:
        if mode == "html":
            assert r.content_type == "text/html" and b"<html>" in await r.read()
        elif mode == "truncated":
            assert await r.read() == whole[: len(whole) // 2]
        elif mode == "cut":
            with pytest.raises(aiohttp.ClientPayloadError):
                await r.read()
        else:
            assert (r.content_length or 0) > 2**30 or r.content_length is None
            got = 0
            async for chunk in r.content.iter_chunked(65536):
                got += len(chunk)
                if got > 2 * 1024 * 1024:
                    break
            assert got > 2 * 1024 * 1024
    assert (await _get(url))[1] == whole  # only the next n downloads were broken


async def test_fault_expire_one_upload_makes_the_submit_422_on_that_field(fal, client):
    fal.foreign_images_ok = False
    keep = await client.upload(_png(), "image/png", "a.png")
    gone = await client.upload(_png(), "image/png", "b.png")
    fal.expire_upload(gone)
    with pytest.raises(fal_client.FalClientHTTPError) as err:
        await client.submit(APP, {**ARGS, "start_image_url": gone})
    assert err.value.status_code == 422
    assert err.value.message[0]["loc"] == ["body", "start_image_url"]
    assert err.value.message[0]["type"] == "file_download_error"
    await client.submit(APP, {**ARGS, "start_image_url": keep})
    assert [s.state for s in fal.submissions] == ["REJECTED", "IN_QUEUE"]


# ---------------------------------------------------------------------------- published schemas


needs_specs = pytest.mark.skipif(not fal_schema.load_schemas(), reason=fal_schema.SPECS_MISSING)


@needs_specs
def test_schemas_come_from_the_shared_specs():
    schemas = fal_schema.load_schemas()
    assert schemas[APP].source == fal_schema.PLATFORM_FILE  # the primary source wins
    assert schemas["fal-ai/kling-video/v2.5-turbo/pro/image-to-video"].source == fal_schema.ZOD_FILE
    limits = schemas[APP].schema["properties"]["start_image_url"]["x-fal"]
    assert limits["min_width"] == 300 and limits["max_file_size"] == 10 * 1024 * 1024


@needs_specs
async def test_fake_refuses_what_the_schema_refuses(fal, client):
    bad = {"image_url": ARGS["start_image_url"], "prompt": "p", "duration": "20", "cfg_scale": 3}
    with pytest.raises(fal_client.FalClientHTTPError) as err:
        await client.submit(APP, bad)
    locs = {tuple(d["loc"]): d["type"] for d in err.value.message}
    assert locs == {
        ("body", "start_image_url"): "missing",
        ("body", "duration"): "literal_error",
        ("body", "cfg_scale"): "less_than_equal",
    }
    assert fal.pending_script == []


@needs_specs
async def test_fake_fails_the_job_for_a_start_image_outside_xfal_limits(fal, client):
    fal.foreign_images_ok = False
    url = await client.upload(_png(250, 600), "image/png", "thin.png")
    handle = await client.submit(APP, {**ARGS, "start_image_url": url})
    [*_, done] = await _poll_until_completed(client, handle.request_id)
    assert done.error == "Unprocessable Entity"
    with pytest.raises(fal_client.FalClientHTTPError) as err:
        await client.result(APP, handle.request_id)
    assert err.value.status_code == 422 and err.value.message[0]["type"] == "image_too_small"


def test_without_the_specs_the_fake_validates_nothing_extra(monkeypatch, caplog):
    monkeypatch.setattr(fal_schema, "specs_dir", lambda: None)
    fal_schema.load_schemas.cache_clear()
    try:
        assert fal_schema.load_schemas() == {}
        assert "validates no published schema" in caplog.text
    finally:
        monkeypatch.undo()
        fal_schema.load_schemas.cache_clear()


# ------------------------------------------------------------------ Kling v3: multi_prompt, end image, clip length


def _decode_indexes(data: bytes, tmp_path) -> tuple[list[tuple[int, int]], dict]:
    """(tag, frame number) of every frame of an mp4 the fake served, and its streams' lengths by type."""
    import av

    from tests.fakes.media_samples import read_index

    path = tmp_path / f"clip-{len(data)}.mp4"
    path.write_bytes(data)
    with av.open(str(path)) as container:
        lengths = {s.type: float(s.duration * s.time_base) for s in container.streams}
        size = (container.streams.video[0].width, container.streams.video[0].height)
        return [read_index(f) for f in container.decode(video=0)], {**lengths, "size": size}


SHOTS = [
    {"prompt": "she enters", "duration": "4"},
    {"prompt": "she sits", "duration": "3"},
    {"prompt": "she waves"},
]
STORYBOARD = {"start_image_url": ARGS["start_image_url"], "multi_prompt": SHOTS, "duration": "12"}


@needs_specs
async def test_multi_prompt_is_checked_against_the_published_schema(fal, client):
    bad = [{"prompt": "ok", "duration": "16"}, {"duration": "3"}, {"prompt": 7, "duration": 3}]
    with pytest.raises(fal_client.FalClientHTTPError) as err:
        await client.submit(APP, {**STORYBOARD, "multi_prompt": bad})
    locs = {tuple(d["loc"]): d["type"] for d in err.value.message}
    assert locs == {
        ("body", "multi_prompt", 0, "duration"): "literal_error",  # "1".."15"
        ("body", "multi_prompt", 1, "prompt"): "missing",
        ("body", "multi_prompt", 2, "prompt"): "string_type",
        ("body", "multi_prompt", 2, "duration"): "string_type",  # a string, as the top-level duration
    }
    with pytest.raises(fal_client.FalClientHTTPError) as err:
        await client.submit(APP, {**STORYBOARD, "multi_prompt": "one shot"})
    assert err.value.message[0]["loc"] == ["body", "multi_prompt"]
    assert {s.state for s in fal.submissions} == {"REJECTED"}


@needs_specs
@pytest.mark.parametrize(
    "prompts",
    [{"prompt": "she waves", "multi_prompt": SHOTS}, {}, {"prompt": None, "multi_prompt": None}],
    ids=["both", "neither", "both-null"],
)
async def test_exactly_one_of_prompt_and_multi_prompt(fal, client, prompts):
    """fal's schema makes both optional and says "Either prompt or multi_prompt must be provided, but not both"."""
    body = {"start_image_url": ARGS["start_image_url"], "duration": "12", **prompts}
    with pytest.raises(fal_client.FalClientHTTPError) as err:
        await client.submit(APP, body)
    assert err.value.status_code == 422
    (item,) = err.value.message
    assert item["loc"] == ["body"] and item["type"] == "value_error"
    assert "Either prompt or multi_prompt" in item["msg"]
    assert fal.submissions[0].state == "REJECTED"
    # A null prompt beside multi_prompt is no prompt; on the standard endpoint the same rule holds.
    await client.submit(APP, {**STORYBOARD, "prompt": None})
    with pytest.raises(fal_client.FalClientHTTPError):
        await client.submit("fal-ai/kling-video/v3/standard/image-to-video", body)


@needs_specs
async def test_a_multi_prompt_take_is_one_clip_of_the_total_length_changing_at_each_shot(
    fal, client, tmp_path
):
    fal.foreign_images_ok = False
    start = await client.upload(_png(400, 600), "image/png", "start.png")
    handle = await client.submit(APP, {**STORYBOARD, "start_image_url": start})
    out = await client.result(APP, handle.request_id)
    status, data, _ = await _get(out["video"]["url"])
    assert status == 200 and out["video"]["file_size"] == len(data)
    frames, info = _decode_indexes(data, tmp_path)
    assert len(frames) == 12 * 24 and abs(info["video"] - 12) < 1e-6  # 4 + 3 + 5 ("5" is the default) s
    assert abs(info["audio"] - 12) <= 0.05  # generate_audio defaults to true
    assert info["size"] == (214, 320)  # the start image's shape (400x600), long side 320
    tags = [tag for tag, _ in frames]
    assert [i for i in range(1, len(tags)) if tags[i] != tags[i - 1]] == [96, 168]  # the shot boundaries
    assert [n for _, n in frames] == list(range(288))
    assert fal.kling_rule_breaks == []

    # The bot's cut at the planned lengths gives one shot per part.
    from bot.media.cuts import cut

    clip = tmp_path / "storyboard.mp4"
    clip.write_bytes(data)
    parts = await asyncio.to_thread(cut, clip, [4, 3, 5], tmp_path / "parts")
    for k, part in enumerate(parts):
        got, _ = _decode_indexes(part.read_bytes(), tmp_path)
        assert {tag for tag, _ in got} == {k}

    fal.foreign_images_ok = True  # a start image fal fetches but the fake does not look at: 320x240
    silent = {**STORYBOARD, "generate_audio": False, "multi_prompt": SHOTS[:2], "duration": "7"}
    out = await client.subscribe(APP, silent)
    frames, info = _decode_indexes((await _get(out["video"]["url"]))[1], tmp_path)
    assert len(frames) == 7 * 24 and "audio" not in info and info["size"] == (320, 240)


async def test_kling_rules_beyond_the_schema_are_recorded_not_refused(fal, client):
    seven = [{"prompt": "x" * 513, "duration": "1"}] + [{"prompt": "p", "duration": "1"}] * 6
    handle = await client.submit(
        APP, {**STORYBOARD, "multi_prompt": seven, "end_image_url": ARGS["start_image_url"]}
    )
    assert fal.submission(handle.request_id).state != "REJECTED"
    assert [rule for rid, rule in fal.kling_rule_breaks if rid == handle.request_id] == [
        "7 shots: Kling takes 1 to 6",
        "shot 1's prompt is over 512 characters",
        "the shots last 7 s in all, the duration says 12 s",
        "an end image with multi_prompt",
    ]
    await client.submit(APP, ARGS)
    assert len(fal.kling_rule_breaks) == 4  # a one-prompt take is not a multi-shot call


@needs_specs
async def test_the_end_image_is_fetched_and_checked_like_the_start_image(fal, client):
    fal.foreign_images_ok = False
    start = await client.upload(_png(), "image/png", "start.png")
    gone = await client.upload(_png(), "image/png", "end.png")
    fal.expire_upload(gone)
    with pytest.raises(fal_client.FalClientHTTPError) as err:
        await client.submit(APP, {**ARGS, "start_image_url": start, "end_image_url": gone})
    assert err.value.status_code == 422
    assert [(d["loc"], d["type"]) for d in err.value.message] == [
        (["body", "end_image_url"], "file_download_error")
    ]

    for bad, kind in [(_png(400, 250), "image_too_small"), (_png(1200, 400), "image_aspect_ratio_error")]:
        end = await client.upload(bad, "image/png", "end.png")
        handle = await client.submit(APP, {**ARGS, "start_image_url": start, "end_image_url": end})
        [*_, done] = await _poll_until_completed(client, handle.request_id)
        assert done.error == "Unprocessable Entity"
        with pytest.raises(fal_client.FalClientHTTPError) as err:
            await client.result(APP, handle.request_id)
        assert [(d["loc"], d["type"]) for d in err.value.message] == [(["body", "end_image_url"], kind)]

    end = await client.upload(_png(400, 600), "image/png", "end.png")
    out = await client.subscribe(APP, {**ARGS, "start_image_url": start, "end_image_url": end})
    assert out["video"]["url"]


async def test_a_one_prompt_take_is_the_small_clip_unless_real_durations(fal, client, tmp_path):
    out = await client.subscribe(APP, {**ARGS, "duration": "7"})
    assert (await _get(out["video"]["url"]))[1] == small_mp4()  # what the other tests rely on
    fal.real_durations = True
    out = await client.subscribe(APP, {**ARGS, "duration": "7"})
    frames, info = _decode_indexes((await _get(out["video"]["url"]))[1], tmp_path)
    assert len(frames) == 7 * 24 and {tag for tag, _ in frames} == {0} and abs(info["audio"] - 7) <= 0.05


# ------------------------------------------------------------------------------------- voices and elements

VOICE = "fal-ai/kling-video/create-voice"


async def _voice_job(client, data: bytes, name: str, content_type: str = "audio/wav"):
    """Upload a voice file to the fake's storage, submit create-voice with it, poll until COMPLETED."""
    url = await client.upload(data, content_type, name)
    handle = await client.submit(VOICE, {"voice_url": url})
    for _ in range(20):
        done = await client.status(VOICE, handle.request_id)
        if isinstance(done, fal_client.Completed):
            return handle.request_id, done
    raise AssertionError("the voice job never completed")


async def test_create_voice_with_a_real_sample_returns_a_voice_id_the_fake_remembers(fal, client):
    fal.foreign_images_ok = False
    for data, name, kind in [
        (speech_wav(10), "voice.wav", "audio/wav"),
        (speech_mp4(8), "clip.mp4", "video/mp4"),
    ]:
        rid, done = await _voice_job(client, data, name, kind)
        assert done.error is None
        out = await client.result(VOICE, rid)
        assert isinstance(out["voice_id"], str) and out["voice_id"] in fal.voice_ids
    assert len(fal.voice_ids) == 2
    assert [s.state for s in fal.submissions_to("create-voice")] == ["COMPLETED", "COMPLETED"]
    assert fal.submissions_to("image-to-video") == []


@pytest.mark.parametrize(
    ("data", "name", "kind"),
    [
        (speech_wav(2), "short.wav", "audio_duration_error"),
        (speech_wav(31), "long.wav", "audio_duration_error"),
        (silent_mp4(8), "silent.mp4", "audio_load_error"),
        (b"hello, this is not a sound\n" * 40, "notes.wav", "audio_load_error"),
    ],
    ids=["2s", "31s", "no-audio-track", "text"],
)
async def test_create_voice_fails_the_job_for_an_unusable_voice_file(fal, client, data, name, kind):
    """Like a start image outside its x-fal limits: accepted at submit, COMPLETED with an error, the result a 422."""
    fal.foreign_images_ok = False
    rid, done = await _voice_job(client, data, name)
    assert done.error == "Unprocessable Entity"
    with pytest.raises(fal_client.FalClientHTTPError) as err:
        await client.result(VOICE, rid)
    assert err.value.status_code == 422
    [item] = err.value.message
    assert item["loc"] == ["body", "voice_url"] and item["type"] == kind
    if kind == "audio_duration_error":
        assert ("2.0s" if name == "short.wav" else "31.0s") in item["msg"]
    assert fal.voice_ids == set()  # no voice was made


async def test_create_voice_still_needs_a_voice_url(fal, client):
    with pytest.raises(fal_client.FalClientHTTPError) as err:
        await client.submit(VOICE, {"audio_url": "x"})
    assert err.value.status_code == 422 and err.value.message[0]["loc"] == ["body", "voice_url"]
    assert fal.submissions_to(VOICE)[0].state == "REJECTED"


def _element(front: str, refs: list[str] | None, **extra) -> dict:
    element = {"frontal_image_url": front, **extra}
    if refs is not None:
        element["reference_image_urls"] = refs
    return element


@needs_specs
@pytest.mark.parametrize("refs", [None, [], ["r1", "r2", "r3", "r4"]], ids=["absent", "empty", "four"])
async def test_an_element_needs_one_to_three_reference_images(fal, client, refs):
    """fal's schema: "1-3 images supported. At least one image is required"."""
    img = ARGS["start_image_url"]
    ok = _element(img, [img])
    body = {**ARGS, "prompt": "@Element1 waves", "elements": [ok, _element(img, refs)]}
    with pytest.raises(fal_client.FalClientHTTPError) as err:
        await client.submit(APP, body)
    assert err.value.status_code == 422
    [item] = err.value.message
    assert item["loc"] == ["body", "elements", 1, "reference_image_urls"] and item["type"] == "value_error"
    assert "At least one image is required" in item["msg"]
    assert fal.submissions_to("v3/pro")[0].state == "REJECTED"
    three = {**body, "elements": [ok, _element(img, [img] * 3)]}
    assert fal.submission((await client.submit(APP, three)).request_id).state != "REJECTED"


@needs_specs
async def test_only_one_element_may_carry_a_video(fal, client):
    video = {"video_url": "https://example.invalid/ref.mp4"}
    body = {**ARGS, "prompt": "@Element1 and @Element2", "elements": [video, dict(video)]}
    with pytest.raises(fal_client.FalClientHTTPError) as err:
        await client.submit("fal-ai/kling-video/v3/standard/image-to-video", body)
    [item] = err.value.message
    assert err.value.status_code == 422 and item["loc"] == ["body", "elements"]
    assert "only have one element with a video" in item["msg"]


async def test_an_element_voice_must_be_one_the_fake_issued(fal, client):
    fal.foreign_images_ok = False
    front = await client.upload(_png(), "image/png", "front.png")
    side = await client.upload(_png(), "image/png", "side.png")
    unknown = {**ARGS, "start_image_url": front, "elements": [_element(front, [side], voice_id="made-up")]}
    with pytest.raises(fal_client.FalClientHTTPError) as err:
        await client.submit(APP, {**unknown, "prompt": "@Element1 says hello"})
    assert err.value.status_code == 422
    [item] = err.value.message
    assert item["loc"] == ["body", "elements", 0, "voice_id"] and item["msg"] == "Voice not found"
    assert fal.submissions[-1].state == "REJECTED"

    rid, _ = await _voice_job(client, speech_wav(10), "voice.wav")
    voice_id = (await client.result(VOICE, rid))["voice_id"]
    voiced = {**unknown, "elements": [_element(front, [side], voice_id=voice_id)]}
    out = await client.subscribe(APP, {**voiced, "prompt": "@Element1 says hello"})
    assert out["video"]["url"]
    [take] = fal.submissions_to("image-to-video")[-1:]
    assert take.state == "COMPLETED" and take.arguments["elements"][0]["voice_id"] == voice_id
    assert [s.state for s in fal.submissions_to("image-to-video")] == ["REJECTED", "COMPLETED"]


async def test_settle_counts_what_a_client_sent_before_it_went_away(fal):
    """The crash test's case: a client writes a whole submit and dies while the test's event loop is blocked
    waiting for it; the fake has not read the request yet, and `settle()` is what makes it count."""
    host, port = fal.base_url.removeprefix("http://").split(":")
    body = json.dumps(ARGS).encode()
    head = (
        f"POST /queue/{APP} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Key k\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    with socket.create_connection((host, int(port))) as sock:  # blocking: the loop does not run meanwhile
        sock.sendall(head.encode() + body)
    assert fal.submissions == []  # sent, but not read while the loop was blocked
    await fal.settle()
    assert [sub.arguments["prompt"] for sub in fal.submissions] == ["she waves"]
