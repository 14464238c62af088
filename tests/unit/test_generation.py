"""Endpoint schemas, prices and how fal's errors become plain words."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from fal_client import FalClientHTTPError

from bot.fal.gateway import classify_fal_error
from bot.fal.models import ENDPOINTS, endpoint_spec
from bot.fal.pricing import PriceTable

V3 = "fal-ai/kling-video/v3/pro/image-to-video"
TURBO = "fal-ai/kling-video/v2.5-turbo/pro/image-to-video"


def test_kling_v3_arguments_use_start_image_url_and_string_duration():
    args = ENDPOINTS[V3].arguments(image_url="u", prompt="p", duration_s=7, audio=False, negative_prompt=None)
    assert args == {"start_image_url": "u", "prompt": "p", "duration": "7", "generate_audio": False}


def test_turbo_arguments_use_image_url_and_no_audio_flag():
    args = ENDPOINTS[TURBO].arguments(
        image_url="u", prompt="p", duration_s=10, audio=True, negative_prompt="blur"
    )
    assert args == {"image_url": "u", "prompt": "p", "duration": "10", "negative_prompt": "blur"}


def test_unknown_endpoint_names_the_known_ones():
    with pytest.raises(KeyError, match="v3/pro"):
        endpoint_spec("fal-ai/nope")


def test_quotes_at_list_price_and_with_overrides():
    table = PriceTable({})
    assert table.quote(ENDPOINTS[V3], duration_s=5, audio=False) == 560_000
    assert table.quote(ENDPOINTS[V3], duration_s=5, audio=True) == 840_000
    assert table.quote(ENDPOINTS[TURBO], duration_s=5, audio=False) == 350_000
    assert table.quote(ENDPOINTS[TURBO], duration_s=10, audio=False) == 700_000
    doubled = PriceTable({V3: 224_000, f"{V3}#audio": 336_000})
    assert doubled.quote(ENDPOINTS[V3], duration_s=5, audio=False) == 1_120_000
    assert doubled.quote(ENDPOINTS[V3], duration_s=5, audio=True) == 1_680_000


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

    from bot.fal.gateway import DryRunGenerator, GenerationError

    image = tmp_path / "anchor.jpg"
    Image.new("RGB", (320, 480), (120, 90, 80)).save(image, "JPEG")
    first = DryRunGenerator(tmp_path / "dry", queued_s=60)  # still waiting when the "crash" comes
    request_id = await first.submit(V3, {"start_image_url": str(image), "prompt": "p", "duration": "3"})
    await first.close()

    second = DryRunGenerator(tmp_path / "dry")  # a new process: same work dir, no memory of the job
    while (status := await second.status(V3, request_id)).state != "completed":
        await asyncio.sleep(0.05)
    assert status.error is None
    url = await second.result_video_url(V3, request_id)
    size = await second.download(url, tmp_path / "clip.mp4")
    assert size > 1000 and (tmp_path / "clip.mp4").read_bytes()[4:8] == b"ftyp"
    with pytest.raises(GenerationError) as err:
        await second.status(V3, "dry-unknown")
    assert err.value.kind == "gone"
