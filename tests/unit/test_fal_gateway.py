"""FalGateway against the fake fal over loopback, with the real fal_client 1.0.3: submit once, classification by
structure, cancel outcomes, bounded calls, downloads, and the image endpoints."""

from __future__ import annotations

import asyncio
import io
import json
import socket
import time

import aiohttp
import fal_client.client as fc
import pytest
from PIL import Image

from bot.fal.errors import FailureKind, GenerationError
from bot.fal.gateway import CancelOutcome, FalGateway
from bot.fal.models import model
from tests.fakes import fal_schema
from tests.fakes.fal_fake import FakeFal, Outcome
from tests.fakes.media_samples import speech_wav

V3 = "fal-ai/kling-video/v3/pro/image-to-video"
V3_STD = "fal-ai/kling-video/v3/standard/image-to-video"
TURBO = "fal-ai/kling-video/v2.5-turbo/pro/image-to-video"
SEEDREAM = "fal-ai/bytedance/seedream/v4.5/text-to-image"
SEEDREAM_EDIT = "fal-ai/bytedance/seedream/v4.5/edit"
ANGLES = "fal-ai/qwen-image-edit-2511-multiple-angles"
VOICE = "fal-ai/kling-video/create-voice"

needs_specs = pytest.mark.skipif(not fal_schema.load_schemas(), reason=fal_schema.SPECS_MISSING)


def png(w: int = 480, h: int = 640) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (w, h), (150, 110, 90)).save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture
async def fal():
    fake = FakeFal()
    await fake.start()
    fake.install()
    try:
        yield fake
    finally:
        fake.restore()
        await fake.close()
    assert fake.errors == []


@pytest.fixture
async def gw(fal):
    async with aiohttp.ClientSession() as session:
        gateway = FalGateway("test-key", session=session, call_timeout_s=5.0, submit_timeout_s=5.0)
        yield gateway
        await gateway.close()


@pytest.fixture
async def anchor(gw) -> str:
    return await gw.upload(png(), "image/png", "anchor.png")


def posts(fal: FakeFal, endpoint: str = V3) -> int:
    return fal.requests.count(("POST", f"/queue/{endpoint}"))


def args(image: str, **extra) -> dict:
    return {"start_image_url": image, "prompt": "she waves", "duration": "5", **extra}


async def wait_completed(gw, endpoint, rid):
    for _ in range(20):
        st = await gw.status(endpoint, rid)
        if st.state == "completed":
            return st
    raise AssertionError("never completed")


# ---------------------------------------------------------------------------------------- submit once


async def test_submit_returns_the_request_id_and_reads_the_whole_result(fal, gw, anchor):
    fal.script(Outcome.complete(queued_polls=1, progress_polls=1))
    rid = await gw.submit(V3, args(anchor))
    assert fal.submission(rid).arguments == args(anchor)
    st = await wait_completed(gw, V3, rid)
    assert st.error is None
    gets_before = [r for r in fal.requests if r[0] == "GET" and "/requests/" in r[1]]
    payload = await gw.result(V3, rid)
    gets = [r for r in fal.requests if r[0] == "GET" and "/requests/" in r[1]][len(gets_before) :]
    assert gets == [("GET", f"/queue/fal-ai/kling-video/requests/{rid}")]  # one GET, no status re-poll
    [out] = model(V3).outputs(payload)
    assert out.kind == "video" and out.url.startswith(fal.base_url)


async def test_reset_after_fal_accepted_is_unknown_outcome_and_never_resent(fal, gw, anchor):
    fal.reset_after_submit()
    with pytest.raises(GenerationError) as err:
        await gw.submit(V3, args(anchor))
    assert err.value.kind is FailureKind.UNKNOWN_OUTCOME and not err.value.retryable
    assert posts(fal) == 1 and len(fal.submissions) == 1  # the job exists at fal; it was sent once
    assert fal.duplicate_runs() == []


async def test_reset_before_fal_accepted_is_still_unknown_to_the_bot(fal, gw, anchor):
    fal.reset_before_submit()
    with pytest.raises(GenerationError) as err:
        await gw.submit(V3, args(anchor))
    assert err.value.kind is FailureKind.UNKNOWN_OUTCOME
    assert posts(fal) == 1 and fal.submissions == []


async def test_slow_submit_answer_is_unknown_outcome_not_a_resend(fal, anchor):
    fal.slow_next("submit", 1.5)  # past the 0.5 s answer timeout; the fake shuts down after it
    async with aiohttp.ClientSession() as session:
        gw = FalGateway("test-key", session=session, submit_timeout_s=0.5)
        with pytest.raises(GenerationError) as err:
            await gw.submit(V3, args(anchor))
        await gw.close()
    assert err.value.kind is FailureKind.UNKNOWN_OUTCOME
    assert posts(fal) == 1 and len(fal.submissions) == 1


async def test_connect_refused_means_nothing_was_sent(fal, gw, anchor):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    fc.QUEUE_URL_FORMAT = f"http://127.0.0.1:{port}/queue/"  # restored by fal.restore()
    with pytest.raises(GenerationError) as err:
        await gw.submit(V3, args(anchor))
    assert err.value.kind is FailureKind.NETWORK and err.value.retryable


async def test_a_domain_that_cannot_be_reached_is_tried_once_on_its_backup(fal, gw, anchor, monkeypatch):
    """As fal_client's transport did (queue.fal.run -> queue.falrun.com): no connection to the first domain, so
    nothing was sent there; the one POST goes to the backup. Here 127.0.0.2 refuses and 127.0.0.1 is the fake."""
    monkeypatch.setitem(fc._BACKUP_DOMAINS, "127.0.0.2", "127.0.0.1")
    fc.QUEUE_URL_FORMAT = fal.queue_url.replace("127.0.0.1", "127.0.0.2")  # restored by fal.restore()
    rid = await gw.submit(V3, args(anchor))
    assert fal.submission(rid).arguments == args(anchor)
    assert posts(fal) == 1 and len(fal.submissions) == 1
    # Neither domain reachable: still nothing sent, so retryable.
    monkeypatch.setitem(fc._BACKUP_DOMAINS, "127.0.0.2", "127.0.0.3")
    with pytest.raises(GenerationError) as err:
        await gw.submit(V3, args(anchor))
    assert err.value.kind is FailureKind.NETWORK and err.value.retryable
    assert posts(fal) == 1


async def test_the_submit_body_is_what_httpx_sent(fal, gw, anchor):
    """The arguments reach fal as the compact UTF-8 JSON fal_client's httpx client sent; NaN is refused unsent."""
    import httpx

    body = args(anchor, prompt="she waves — «bonjour»", elements=[{"n": 1.5}])
    rid = await gw.submit(V3, body)
    assert fal.submission(rid).arguments == body
    from bot.fal.gateway import _json_body

    _, stream = httpx._content.encode_json(body)
    assert _json_body(body) == b"".join(stream)
    with pytest.raises(ValueError):
        await gw.submit(V3, args(anchor, cfg_scale=float("nan")))
    assert posts(fal) == 1


@pytest.mark.parametrize(
    ("status", "kind", "ingress"),
    [
        (429, FailureKind.RATE_LIMITED, False),
        (408, FailureKind.RATE_LIMITED, False),
        (409, FailureKind.RATE_LIMITED, False),
        (500, FailureKind.SERVER, False),
        (503, FailureKind.SERVER, False),
        (502, FailureKind.SERVER, True),
    ],
)
async def test_answered_refusals_are_retryable_and_sent_once(fal, gw, anchor, status, kind, ingress):
    fal.fail_next("submit", 3, status=status, ingress=ingress)
    with pytest.raises(GenerationError) as err:
        await gw.submit(V3, args(anchor))
    assert err.value.kind is kind and err.value.retryable and err.value.status == status
    assert posts(fal) == 1 and fal.submissions == []


async def test_wrong_key_is_auth(fal, gw, anchor):
    fal.valid_key = "another"
    with pytest.raises(GenerationError) as err:
        await gw.submit(V3, args(anchor))
    assert err.value.kind is FailureKind.AUTH and not err.value.retryable
    assert "test-key" not in err.value.message


# ------------------------------------------------------------------------------ inputs refused by fal


@needs_specs
@pytest.mark.parametrize(
    ("endpoint", "change", "field"),
    [
        (V3, {"start_image_url": None, "image_url": "IMG"}, "start_image_url"),  # v2.5's name on v3
        (V3, {"duration": "16"}, "duration"),
        (V3, {"duration": 5}, "duration"),
        (V3, {"cfg_scale": 1.5}, "cfg_scale"),
        (V3, {"generate_audio": "yes"}, "generate_audio"),
        (V3_STD, {"duration": "2"}, "duration"),
        (TURBO, {"start_image_url": None, "image_url": "IMG", "duration": "7"}, "duration"),
        (TURBO, {}, "image_url"),  # start_image_url is v3's name
    ],
)
async def test_published_schema_refusals_name_the_field(fal, gw, anchor, endpoint, change, field):
    body = args(anchor)
    for key, value in change.items():
        if value is None:
            body.pop(key)
        else:
            body[key] = anchor if value == "IMG" else value
    with pytest.raises(GenerationError) as err:
        await gw.submit(endpoint, body)
    assert err.value.kind is FailureKind.REJECTED and err.value.status == 422
    assert err.value.field == field
    assert [s.state for s in fal.submissions] == ["REJECTED"]


async def test_anchor_fal_cannot_fetch_is_rejected_on_the_image_field(fal, gw, anchor):
    fal.expire_upload(anchor)
    with pytest.raises(GenerationError) as err:
        await gw.submit(V3, args(anchor))
    assert err.value.kind is FailureKind.REJECTED and err.value.field == "start_image_url"
    assert anchor not in err.value.message  # no storage URL in channel words
    fresh = await gw.upload(png(), "image/png", "anchor.png")
    assert await gw.submit(V3, args(fresh))


@needs_specs
@pytest.mark.parametrize(("w", "h"), [(299, 600), (400, 1100), (1100, 400)])
async def test_start_image_outside_xfal_limits_fails_the_job(fal, gw, w, h):
    url = await gw.upload(png(w, h), "image/png", "small.png")
    rid = await gw.submit(V3, args(url))  # fal accepts, then the job fails (x-fal checks at run time)
    st = await wait_completed(gw, V3, rid)
    assert st.error is not None and st.error.kind is FailureKind.REJECTED
    assert st.error.field == "start_image_url" and st.error.status == 422


@needs_specs
async def test_elements_pass_the_v3_schema(fal, gw, anchor):
    ref = await gw.upload(png(), "image/png", "side.png")
    body = model(V3).arguments(
        image_url=anchor,
        prompt="@Element1 waves",
        duration_s=5,
        audio=True,
        elements=[{"frontal_image_url": anchor, "reference_image_urls": [ref]}],
    )
    rid = await gw.submit(V3, body)
    assert fal.submission(rid).arguments["elements"][0]["reference_image_urls"] == [ref]
    assert fal.unknown_arguments == []


# ------------------------------------------------------------------------- completed / result errors


@pytest.mark.parametrize(
    ("outcome", "kind", "error_type"),
    [
        (
            Outcome.completed_with_error("GPU fell over", "runner_server_error"),
            FailureKind.SERVER,
            "runner_server_error",
        ),
        (Outcome.timeout(), FailureKind.TIMEOUT, "request_timeout"),
    ],
)
async def test_completed_with_error_is_classified_in_status(fal, gw, anchor, outcome, kind, error_type):
    fal.script(outcome)
    rid = await gw.submit(V3, args(anchor))
    st = await wait_completed(gw, V3, rid)
    assert st.error is not None and st.error.kind is kind and st.error.error_type == error_type


async def test_result_errors_by_structure(fal, gw, anchor):
    fal.script(Outcome.content_policy(at="result"), Outcome.result_gone())
    first = await gw.submit(V3, args(anchor))
    second = await gw.submit(V3, args(anchor, prompt="other"))
    await wait_completed(gw, V3, first)
    with pytest.raises(GenerationError) as err:
        await gw.result(V3, first)
    assert err.value.kind is FailureKind.CONTENT_POLICY and err.value.field == "prompt"
    await wait_completed(gw, V3, second)
    with pytest.raises(GenerationError) as err:
        await gw.result(V3, second)
    assert err.value.kind is FailureKind.GONE


async def test_result_that_fails_once_then_succeeds(fal, gw, anchor):
    fal.script(Outcome.complete(queued_polls=0, progress_polls=0))
    rid = await gw.submit(V3, args(anchor))
    fal.fail_result_once(500)
    with pytest.raises(GenerationError) as err:
        await gw.result(V3, rid)
    assert err.value.kind is FailureKind.SERVER and err.value.retryable
    assert model(V3).outputs(await gw.result(V3, rid))[0].url


async def test_slow_status_is_bounded_by_the_call_timeout(fal, anchor):
    async with aiohttp.ClientSession() as session:
        gw = FalGateway("test-key", session=session, call_timeout_s=0.5)
        rid = await gw.submit(V3, args(anchor))
        fal.slow_next("status", 1.5)  # past the 0.5 s call timeout
        started = time.monotonic()
        with pytest.raises(GenerationError) as err:
            await gw.status(V3, rid)
        assert time.monotonic() - started < 3
        assert err.value.kind is FailureKind.NETWORK
        # One GET per call: the 429 comes out retryable and the engine waits.
        fal.fail_next("status", 1, status=429)
        with pytest.raises(GenerationError) as err:
            await gw.status(V3, rid)
        assert err.value.kind is FailureKind.RATE_LIMITED and err.value.retryable
        assert (await gw.status(V3, rid)).state in ("queued", "running", "completed")
        await gw.close()


async def test_bad_output_when_the_promised_output_is_missing():
    with pytest.raises(GenerationError) as err:
        model(V3).outputs({"images": []})
    assert err.value.kind is FailureKind.BAD_OUTPUT


# ------------------------------------------------------------------------------------------- cancel


async def test_cancel_outcomes(fal, gw, anchor):
    fal.script(
        Outcome.hold(), Outcome.complete(queued_polls=0, progress_polls=0), Outcome.hold(), Outcome.hold()
    )
    held = await gw.submit(V3, args(anchor, prompt="a"))
    done = await gw.submit(V3, args(anchor, prompt="b"))
    refused = await gw.submit(V3, args(anchor, prompt="c"))
    reset = await gw.submit(V3, args(anchor, prompt="d"))
    assert await gw.cancel(V3, held) is CancelOutcome.CANCELLED and fal.submission(held).cancelled
    assert await gw.cancel(V3, done) is CancelOutcome.ALREADY_DONE
    assert await gw.cancel(V3, "no-such-request") is CancelOutcome.NOT_FOUND
    fal.refuse_next_cancel(500)
    assert await gw.cancel(V3, refused) is CancelOutcome.UNCONFIRMED and not fal.submission(refused).cancelled
    fal.refuse_next_cancel("ALREADY_COMPLETED")
    assert (
        await gw.cancel(V3, refused) is CancelOutcome.ALREADY_DONE and not fal.submission(refused).cancelled
    )
    fal.reset_next("cancel", 10, after=False)  # fal_client repeats a reset PUT; every try is reset
    assert await gw.cancel(V3, reset) is CancelOutcome.UNCONFIRMED and not fal.submission(reset).cancelled


async def test_cancel_reset_after_fal_cancelled_is_still_confirmed(fal, gw, anchor):
    fal.script(Outcome.hold())
    rid = await gw.submit(V3, args(anchor))
    fal.reset_next(
        "cancel", 1, after=True
    )  # cancelled, then reset; fal_client's re-send hears ALREADY_COMPLETED
    assert await gw.cancel(V3, rid) is CancelOutcome.CANCELLED and fal.submission(rid).cancelled


# ---------------------------------------------------------------------------------------- downloads


async def _output_url(fal, gw, anchor) -> str:
    fal.script(Outcome.complete(queued_polls=0, progress_polls=0))
    rid = await gw.submit(V3, args(anchor))
    return model(V3).outputs(await gw.result(V3, rid))[0].url


async def test_download_streams_to_the_file(fal, gw, anchor, tmp_path):
    url = await _output_url(fal, gw, anchor)
    size = await gw.download(url, tmp_path / "clip.mp4", max_bytes=10**7)
    assert (
        size == (tmp_path / "clip.mp4").stat().st_size
        and (tmp_path / "clip.mp4").read_bytes()[4:8] == b"ftyp"
    )


@pytest.mark.parametrize(
    ("fault", "kind"),
    [
        ("oversized", FailureKind.BAD_OUTPUT),
        ("endless", FailureKind.BAD_OUTPUT),
        ("cut", FailureKind.NETWORK),
        ("expired", FailureKind.GONE),
        ("503", FailureKind.SERVER),
    ],
)
async def test_download_failures(fal, gw, anchor, tmp_path, fault, kind):
    url = await _output_url(fal, gw, anchor)
    if fault == "expired":
        fal.expire_outputs()
    elif fault == "503":
        fal.fail_next("download", status=503)
    else:
        fal.break_downloads(fault)
    dest = tmp_path / "clip.mp4"
    with pytest.raises(GenerationError) as err:
        await gw.download(url, dest, max_bytes=2 * 1024 * 1024)
    assert err.value.kind is kind
    assert list(tmp_path.iterdir()) == []  # nothing left behind, not even the .part file


# ---------------------------------------------------------------------------------- image endpoints


async def test_seedream_text_to_image_returns_real_pngs(fal, gw, tmp_path):
    spec = model(SEEDREAM)
    rid = await gw.submit(
        SEEDREAM, spec.arguments(prompt="a portrait", image_size="portrait_4_3", num_images=3)
    )
    await wait_completed(gw, SEEDREAM, rid)
    outs = spec.outputs(await gw.result(SEEDREAM, rid))
    assert len(outs) == 3 and all(o.kind == "image" and o.width == 768 and o.height == 1024 for o in outs)
    await gw.download(outs[0].url, tmp_path / "c1.png", max_bytes=10**7)
    with Image.open(tmp_path / "c1.png") as im:
        assert im.format == "PNG" and im.size == (768, 1024)


async def test_seedream_edit_and_angles_need_and_use_the_reference(fal, gw, anchor):
    with pytest.raises(GenerationError) as err:
        await gw.submit(SEEDREAM_EDIT, {"prompt": "x", "num_images": 7, "image_urls": [anchor]})
    assert err.value.field == "num_images"
    rid = await gw.submit(SEEDREAM_EDIT, model(SEEDREAM_EDIT).arguments(prompt="x", image_urls=[anchor]))
    await wait_completed(gw, SEEDREAM_EDIT, rid)
    [out] = model(SEEDREAM_EDIT).outputs(await gw.result(SEEDREAM_EDIT, rid))
    assert (out.width, out.height) == (480, 640)
    rid = await gw.submit(ANGLES, model(ANGLES).arguments(image_urls=[anchor], horizontal_angle=90))
    await wait_completed(gw, ANGLES, rid)
    assert model(ANGLES).outputs(await gw.result(ANGLES, rid))[0].kind == "image"


async def test_create_voice_returns_a_voice_id(fal, gw):
    sample = await gw.upload(speech_wav(10), "audio/wav", "voice.wav")
    with pytest.raises(GenerationError) as err:
        await gw.submit(VOICE, {"voice_url": fal.base_url + "/cdn/files/nope.wav"})
    assert err.value.field == "voice_url"
    rid = await gw.submit(VOICE, model(VOICE).arguments(voice_url=sample))
    await wait_completed(gw, VOICE, rid)
    [out] = model(VOICE).outputs(await gw.result(VOICE, rid))
    assert out.kind == "voice" and out.voice_id


async def test_polls_are_one_get_each_and_faults_come_out_retryable(fal, anchor):
    """Status and result go out as one aiohttp GET each: an nginx 502 page, a 429, a 5xx and a 200 page that is
    not fal's JSON are retryable answers for the engine (which waits and asks again), never a failed take."""
    async with aiohttp.ClientSession() as session:
        gw = FalGateway("test-key", session=session, call_timeout_s=5)
        rid = await gw.submit(V3, args(anchor))
        fal.fail_next("status", status=502, ingress=True)
        fal.fail_next("status", status=429)
        fal.fail_next("result", status=500)
        fal.fail_next("result", status=200, ingress=True)
        for _ in range(2):
            with pytest.raises(GenerationError) as err:
                await gw.status(V3, rid)
            assert err.value.retryable, err.value
        assert (await gw.status(V3, rid)).state in ("queued", "running", "completed")
        for _ in range(2):
            with pytest.raises(GenerationError) as err:
                await gw.result(V3, rid)
            assert err.value.retryable, err.value
        await gw.close()


async def test_a_result_that_arrives_in_pieces_is_read_whole(monkeypatch):
    """A result body sent in several chunks (as TLS records and proxies deliver it) is read to its end."""
    from aiohttp import web

    payload = {"video": {"url": "https://v3.fal.media/files/x/clip.mp4"}, "note": "x" * 200_000}
    body = json.dumps(payload).encode()

    async def result(request: web.Request) -> web.StreamResponse:
        assert request.headers["Authorization"] == "Key test-key"
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        for start in range(0, len(body), 50_000):
            await response.write(body[start : start + 50_000])
            await asyncio.sleep(0.01)
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_get("/fal-ai/kling-video/requests/{rid}", result)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    monkeypatch.setattr(fc, "QUEUE_URL_FORMAT", f"http://127.0.0.1:{port}/")
    try:
        async with aiohttp.ClientSession() as session:
            gw = FalGateway("test-key", session=session, call_timeout_s=5)
            assert await gw.result(V3, "rid-1") == payload
            await gw.close()
    finally:
        await runner.cleanup()
