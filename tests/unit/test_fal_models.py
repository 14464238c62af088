"""Endpoint schemas, prices and how fal's errors become plain words."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from fal_client import FalClientHTTPError

from bot.fal.errors import from_exception as classify_fal_error
from bot.fal.models import endpoint_spec
from bot.fal.pricing import PriceTable

V3 = "fal-ai/kling-video/v3/pro/image-to-video"
TURBO = "fal-ai/kling-video/v2.5-turbo/pro/image-to-video"


def test_kling_v3_arguments_use_start_image_url_and_string_duration():
    args = endpoint_spec(V3).arguments(
        image_url="u", prompt="p", duration_s=7, audio=False, negative_prompt=None
    )
    assert args == {"start_image_url": "u", "prompt": "p", "duration": "7", "generate_audio": False}


def test_turbo_arguments_use_image_url_and_no_audio_flag():
    args = endpoint_spec(TURBO).arguments(
        image_url="u", prompt="p", duration_s=10, audio=True, negative_prompt="blur"
    )
    assert args == {"image_url": "u", "prompt": "p", "duration": "10", "negative_prompt": "blur"}


def test_unknown_endpoint_names_the_known_ones():
    with pytest.raises(KeyError, match="v3/pro"):
        endpoint_spec("fal-ai/nope")


def test_endpoint_spec_is_an_image_to_video_model_of_the_catalogue():
    from bot.fal import models

    known = (
        "fal-ai/kling-video/v2.5-turbo/pro/image-to-video, fal-ai/kling-video/v3/pro/image-to-video, "
        "fal-ai/kling-video/v3/standard/image-to-video"
    )
    # an image model's endpoint, and a catalogue key (endpoint_spec takes endpoint ids only)
    for other in ("fal-ai/bytedance/seedream/v4.5/text-to-image", "kling-v3-pro"):
        with pytest.raises(KeyError) as err:
            endpoint_spec(other)
        assert err.value.args[0] == f"unknown FAL_ENDPOINT {other!r}; known endpoints: {known}"
    assert endpoint_spec(V3) is models.CATALOGUE[V3] and endpoint_spec(V3).key == "kling-v3-pro"
    try:
        models.configure({"kling-v3-pro": "my/kling-v3"})
        assert endpoint_spec("my/kling-v3").key == "kling-v3-pro"
        with pytest.raises(KeyError, match="my/kling-v3"):
            endpoint_spec(V3)
    finally:
        models.configure()
    assert endpoint_spec(V3).key == "kling-v3-pro"


def test_quotes_at_list_price_and_with_overrides():
    table = PriceTable({})
    assert table.quote(endpoint_spec(V3), duration_s=5, audio=False) == 560_000
    assert table.quote(endpoint_spec(V3), duration_s=5, audio=True) == 840_000
    assert table.quote(endpoint_spec(TURBO), duration_s=5, audio=False) == 350_000
    assert table.quote(endpoint_spec(TURBO), duration_s=10, audio=False) == 700_000
    doubled = PriceTable({V3: 224_000, f"{V3}#audio": 336_000})
    assert doubled.quote(endpoint_spec(V3), duration_s=5, audio=False) == 1_120_000
    assert doubled.quote(endpoint_spec(V3), duration_s=5, audio=True) == 1_680_000


def _http_error(status: int, body: dict, headers: dict | None = None) -> FalClientHTTPError:
    response = httpx.Response(status, json=body, headers=headers or {})
    return FalClientHTTPError(
        body.get("detail"),
        status,
        dict(response.headers),
        response=response,
        error_type=body.get("error_type"),
    )


@pytest.mark.parametrize(
    ("status", "body", "kind", "words"),
    [
        (
            422,
            {"detail": [{"loc": ["body", "prompt"], "msg": "too long", "type": "value_error"}]},
            "rejected",
            "prompt: too long",
        ),
        (
            422,
            {"detail": [{"loc": ["body"], "msg": "unsafe", "type": "content_policy_violation"}]},
            "content_policy",
            "content policy",
        ),
        (500, {"detail": "runner crashed", "error_type": "runner_server_error"}, "server", "server error"),
        (504, {"detail": "Request timed out", "error_type": "request_timeout"}, "timeout", "timed out"),
        (404, {"detail": "Request not found"}, "gone", "no longer holds"),
        (401, {"detail": "No user found for Key ID and Secret"}, "auth", "FAL_KEY"),
    ],
)
def test_fal_errors_become_plain_words(status, body, kind, words):
    err = classify_fal_error(_http_error(status, body))
    assert err.kind == kind
    assert words in err.message


def test_transport_errors_are_retryable():
    err = classify_fal_error(httpx.ConnectError("refused"))
    assert err.kind == "network" and err.retryable


async def test_dry_run_job_survives_a_restart(tmp_path):
    from PIL import Image

    from bot.fal.dryrun import DryRunGateway
    from bot.fal.errors import GenerationError
    from bot.fal.models import CATALOGUE

    image = tmp_path / "anchor.jpg"
    Image.new("RGB", (320, 480), (120, 90, 80)).save(image, "JPEG")
    first = DryRunGateway(tmp_path / "dry", queued_s=60)  # still waiting when the "crash" comes
    request_id = await first.submit(V3, {"start_image_url": str(image), "prompt": "p", "duration": "3"})
    await first.close()

    second = DryRunGateway(tmp_path / "dry")  # a new process: same work dir, no memory of the job
    while (status := await second.status(V3, request_id)).state != "completed":
        await asyncio.sleep(0.05)
    assert status.error is None
    [video] = CATALOGUE[V3].outputs(await second.result(V3, request_id))
    size = await second.download(video.url, tmp_path / "clip.mp4", max_bytes=10**8)
    assert size > 1000 and (tmp_path / "clip.mp4").read_bytes()[4:8] == b"ftyp"
    with pytest.raises(GenerationError) as err:
        await second.status(V3, "dry-unknown")
    assert err.value.kind == "gone"


# ------------------------------------------------------------------------------------ price rules

from bot.fal.errors import FailureKind, GenerationError, classify_completed, classify_http  # noqa: E402
from bot.fal.models import CATALOGUE, PriceRule, Pricing, build_catalogue, megapixels, model  # noqa: E402


def test_price_rules_are_exact_integer_micros():
    per_s = Pricing(PriceRule.PER_SECOND, 112_000, audio_micros=168_000)
    assert per_s.quote(seconds=7) == 784_000 and per_s.quote(seconds=7, audio=True) == 1_176_000
    turbo = Pricing(PriceRule.PER_SECOND, 70_000, base_micros=350_000, base_seconds=5)
    assert turbo.quote(seconds=5) == 350_000 and turbo.quote(seconds=10) == 700_000
    assert Pricing(PriceRule.PER_IMAGE, 35_000).quote(images=6) == 210_000
    assert Pricing(PriceRule.PER_CALL, 7_000).quote() == 7_000
    per_k = Pricing(PriceRule.PER_1K_CHARS, 100_000)
    assert [per_k.quote(chars=n) for n in (0, 1, 1000, 1001, 2500)] == [0, 100_000, 100_000, 200_000, 300_000]
    with pytest.raises(ValueError):
        per_s.quote(seconds=-1)


def test_catalogue_prices_and_overrides():
    assert model("fal-ai/bytedance/seedream/v4.5/text-to-image").quote(images=3) == 120_000
    assert model("seedream-v5-lite-edit").quote(images=2) == 70_000
    assert model("fal-ai/kling-video/create-voice").quote() == 7_000
    assert model("qwen-multiple-angles").pricing == Pricing(PriceRule.PER_MEGAPIXEL, 35_000)  # fal's page
    assert model(TURBO).quote(seconds=10, audio=True) == 700_000  # no audio on turbo
    table = PriceTable({"fal-ai/bytedance/seedream/v4.5/edit": 50_000, f"{TURBO}#base": 400_000})
    assert table.quote(model("seedream-v4.5-edit"), images=2) == 100_000
    assert table.quote(endpoint_spec(TURBO), duration_s=10) == 750_000
    assert table.quote(endpoint_spec(V3), duration_s=3, audio=True) == 504_000


def test_per_megapixel_bills_every_started_megapixel_of_the_image_sent():
    per_mp = Pricing(PriceRule.PER_MEGAPIXEL, 35_000)
    sizes = [(1, 1), (1000, 1000), (1000, 1001), (768, 1024), (1536, 2048), (2048, 2048)]
    assert [megapixels(w * h) for w, h in sizes] == [1, 1, 2, 1, 4, 5]
    quotes = [per_mp.quote(pixels=w * h) for w, h in sizes]
    assert quotes == [35_000, 35_000, 70_000, 35_000, 140_000, 175_000]
    # never below fal's bill, whether fal counts 10^6 or 2^20 pixels a megapixel, in fractions or whole ones
    for w, h in sizes:
        assert per_mp.quote(pixels=w * h) * 10**6 >= w * h * 35_000
    with pytest.raises(ValueError, match="size in pixels"):
        per_mp.quote(images=1)  # a forgotten size is an error, never a free call
    with pytest.raises(ValueError):
        per_mp.quote(pixels=-1)
    qwen = model("qwen-multiple-angles")
    assert qwen.quote(pixels=2048 * 2048) == 175_000 and qwen.quote(images=1, pixels=768 * 1024) == 35_000


def test_per_megapixel_overrides_and_rate_text():
    qwen = model("qwen-multiple-angles")
    listed = PriceTable({})
    assert listed.quote(qwen, pixels=1536 * 2048) == 140_000
    assert listed.rate_text(qwen) == "$0.035 per megapixel"
    table = PriceTable({qwen.endpoint: 50_000, f"{qwen.endpoint}#audio": 1})  # #audio means nothing here
    assert table.pricing(qwen) == Pricing(PriceRule.PER_MEGAPIXEL, 50_000)
    assert table.quote(qwen, pixels=1536 * 2048) == 200_000 and table.quote(qwen, pixels=10**6) == 50_000
    assert table.rate_text(qwen) == "$0.05 per megapixel"
    assert listed.rate_text(model("seedream-v4.5-edit")) == "$0.04 per image"
    assert listed.rate_text(model("kling-create-voice")) == "$0.007 a call"
    assert listed.rate_text(endpoint_spec(V3)) == "$0.112 per second ($0.168 with sound)"
    assert listed.rate_text(endpoint_spec(TURBO)) == "$0.35 for the first 5 s, then $0.07 per second"


def test_model_ids_are_configurable():
    cat = build_catalogue({"seedream-v5-lite": "bytedance/seedream/v5/lite/text-to-image"})
    assert "bytedance/seedream/v5/lite/text-to-image" in cat
    assert "fal-ai/bytedance/seedream/v5/lite/text-to-image" not in cat
    with pytest.raises(KeyError, match="known"):
        build_catalogue({"nope": "x"})
    assert "fal-ai/bytedance/seedream/v5/lite/text-to-image" in CATALOGUE  # the module default is untouched


def test_arguments_per_model():
    v3 = model(V3)
    element = {"frontal_image_url": "f", "reference_image_urls": ["r1", "r2"]}
    args = v3.arguments(image_url="u", prompt="@Element1", duration_s=15, audio=True, elements=[element])
    assert args["elements"] == [element] and args["duration"] == "15" and args["generate_audio"] is True
    with pytest.raises(ValueError):
        model(TURBO).arguments(image_url="u", prompt="p", duration_s=5, elements=[element])
    with pytest.raises(ValueError):
        v3.arguments(image_url="u", prompt="p", duration_s=5, elements=[{"frontal_image_url": "f"}])
    with pytest.raises(ValueError):
        model(TURBO).arguments(image_url="u", prompt="p", duration_s=7)
    seedream = model("seedream-v4.5-edit").arguments(
        prompt="p", image_urls=["a"], num_images=4, image_size="square"
    )
    assert seedream == {"prompt": "p", "num_images": 4, "image_size": "square", "image_urls": ["a"]}
    with pytest.raises(ValueError):
        model("seedream-v4.5").arguments(prompt="p", num_images=7)
    angles = model("qwen-multiple-angles").arguments(
        image_url="a", horizontal_angle=270, vertical_angle=-30, zoom=2
    )
    assert angles == {"image_urls": ["a"], "horizontal_angle": 270, "vertical_angle": -30, "zoom": 2}
    assert model("kling-create-voice").arguments(voice_url="v") == {"voice_url": "v"}
    with pytest.raises(TypeError):
        v3.arguments(image_url="u", prompt="p", duration_s=5, aspect_ratio="16:9")  # Kling v3 has none


def test_outputs_extracted_or_bad_output():
    [img] = model("seedream-v4.5").outputs({"images": [{"url": "u", "width": 2, "height": 3}], "seed": 1})
    assert (img.kind, img.url, img.width, img.height) == ("image", "u", 2, 3)
    assert model("kling-create-voice").outputs({"voice_id": "v1"})[0].voice_id == "v1"
    for spec, payload in [
        (model(V3), {"video": {"url": ""}}),
        (model(V3), "not json"),
        (model("seedream-v4.5"), {"images": [{"width": 1}]}),
        (model("kling-create-voice"), {}),
    ]:
        with pytest.raises(GenerationError) as err:
            spec.outputs(payload)
        assert err.value.kind is FailureKind.BAD_OUTPUT


# -------------------------------------------------------------------------------- classification


@pytest.mark.parametrize(
    ("status", "body", "headers", "kind", "field", "error_type"),
    [
        (
            422,
            {
                "detail": [
                    {
                        "loc": ["body", "start_image_url"],
                        "msg": "could not download",
                        "type": "file_download_error",
                    }
                ]
            },
            {},
            FailureKind.REJECTED,
            "start_image_url",
            None,
        ),
        (
            422,
            {"detail": [{"loc": ["body", "prompt"], "msg": "x", "type": "content_policy_violation"}]},
            {},
            FailureKind.CONTENT_POLICY,
            "prompt",
            None,
        ),
        (
            504,
            {"detail": "t"},
            {"X-Fal-Error-Type": "request_timeout"},
            FailureKind.TIMEOUT,
            None,
            "request_timeout",
        ),
        (
            503,
            {"detail": "t", "error_type": "startup_timeout"},
            {},
            FailureKind.TIMEOUT,
            None,
            "startup_timeout",
        ),
        (
            400,
            {"detail": "c", "error_type": "client_cancelled"},
            {},
            FailureKind.CANCELLED,
            None,
            "client_cancelled",
        ),
        (
            500,
            {"detail": "r", "error_type": "runner_disconnected"},
            {},
            FailureKind.SERVER,
            None,
            "runner_disconnected",
        ),
        (401, {"detail": "no user"}, {}, FailureKind.AUTH, None, None),
        (403, {}, {}, FailureKind.AUTH, None, None),
        (404, {"detail": "Request not found"}, {}, FailureKind.GONE, None, None),
        (410, None, {}, FailureKind.GONE, None, None),
        (429, {}, {}, FailureKind.RATE_LIMITED, None, None),
        (502, "<html>nginx</html>", {}, FailureKind.SERVER, None, None),
        (400, {"detail": "Request is still in progress"}, {}, FailureKind.REJECTED, None, None),
    ],
)
def test_http_answers_classified_by_structure(status, body, headers, kind, field, error_type):
    err = classify_http(status, body, headers)
    assert (err.kind, err.field, err.error_type, err.status) == (kind, field, error_type, status)
    assert err.retryable == (kind in (FailureKind.SERVER, FailureKind.RATE_LIMITED, FailureKind.NETWORK))


def test_message_words_never_decide_and_urls_are_scrubbed():
    sneaky = {
        "detail": [
            {
                "loc": ["body", "prompt"],
                "msg": "content_policy timeout https://x/?token=s",
                "type": "value_error",
            }
        ]
    }
    err = classify_http(422, sneaky)
    assert err.kind is FailureKind.REJECTED and "token=s" not in err.message
    assert classify_completed("content policy!", None).kind is FailureKind.REJECTED
    assert classify_completed("x", "client_cancelled").kind is FailureKind.CANCELLED
    assert classify_completed("x", "runner_server_error").retryable


def test_the_kind_alone_decides_and_must_be_a_failure_kind():
    err = GenerationError(FailureKind.NETWORK, "down")
    assert err.kind == "network" and err.kind is FailureKind.NETWORK and err.retryable
    gone = GenerationError(FailureKind.GONE, "x")
    assert gone.kind == "gone" and not gone.retryable
    with pytest.raises(TypeError, match="FailureKind"):
        GenerationError("gone", "x")  # type: ignore[arg-type]  # the old string kind is gone
    with pytest.raises(TypeError):
        GenerationError(FailureKind.NETWORK, "down", retryable=False)  # type: ignore[call-arg]  # no override


# ------------------------------------------------------------------------------------- dry run


async def test_dry_run_makes_real_outputs_per_kind(tmp_path):
    from PIL import Image

    from bot.fal.dryrun import DryRunGateway
    from bot.fal.gateway import CancelOutcome

    image = tmp_path / "anchor.png"
    Image.new("RGB", (320, 480), (120, 90, 80)).save(image)
    gw = DryRunGateway(tmp_path / "dry")
    ref = await gw.upload(image.read_bytes(), "image/png", "anchor.png")
    edit = model("seedream-v4.5-edit")
    rid = await gw.submit(edit.endpoint, edit.arguments(prompt="p", image_urls=[ref], num_images=3))
    while (await gw.status(edit.endpoint, rid)).state != "completed":
        await asyncio.sleep(0.02)
    outs = edit.outputs(await gw.result(edit.endpoint, rid))
    assert len(outs) == 3 and (outs[0].width, outs[0].height) == (320, 480)
    size = await gw.download(outs[2].url, tmp_path / "c3.png", max_bytes=10**7)
    assert size > 100 and (tmp_path / "c3.png").read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(GenerationError) as err:
        await gw.download(outs[2].url, tmp_path / "c3b.png", max_bytes=10)
    assert err.value.kind is FailureKind.BAD_OUTPUT

    t2i = model("seedream-v5-lite")
    rid = await gw.submit(t2i.endpoint, t2i.arguments(prompt="p", image_size="landscape_16_9", num_images=2))
    while (await gw.status(t2i.endpoint, rid)).state != "completed":
        await asyncio.sleep(0.02)
    assert [(o.width, o.height) for o in t2i.outputs(await gw.result(t2i.endpoint, rid))] == [(768, 432)] * 2

    voice = model("kling-create-voice")
    sample = tmp_path / "v.wav"
    from bot.fal.dryrun import write_tone

    write_tone(sample)
    rid = await gw.submit(voice.endpoint, voice.arguments(voice_url=str(sample)))
    while (await gw.status(voice.endpoint, rid)).state != "completed":
        await asyncio.sleep(0.02)
    assert voice.outputs(await gw.result(voice.endpoint, rid))[0].voice_id.startswith("dry-voice-")
    assert await gw.cancel(voice.endpoint, rid) is CancelOutcome.ALREADY_DONE
    assert await gw.cancel(voice.endpoint, "dry-unknown") is CancelOutcome.NOT_FOUND
    await gw.close()

    restarted = DryRunGateway(tmp_path / "dry")  # results kept on disk
    assert (await restarted.status(voice.endpoint, rid)).state in ("queued", "running", "completed")
    while (await restarted.status(voice.endpoint, rid)).state != "completed":
        await asyncio.sleep(0.02)
    assert (await restarted.result(voice.endpoint, rid))["voice_id"].startswith("dry-voice-")
