"""Cropping: centred crops to an aspect ratio, and start images that always meet the video model's limits.

fal checks a start image before Kling sees it (the `x-fal` block of the endpoint's published schema): at least
300 px on each side, an aspect ratio (width / height) between 0.4 and 2.5, at most 10 MiB. A start image outside
them fails the job at fal, so `fit_start_image` makes every one fit: centred crop to the shape asked for (or to
the nearest allowed ratio), Lanczos upscale when the crop is under the minimum side, and a lower JPEG quality (then
a smaller size) in the rare case the file is too large.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass

from PIL import Image

from bot.media.normalize import encode_jpeg

_MIB = 1024 * 1024


@dataclass(frozen=True)
class StartImageLimits:
    """What a video model accepts as a start image."""

    min_side: int
    min_ratio: float
    max_ratio: float
    max_bytes: int


# fal-ai/kling-video/v3/pro/image-to-video, `start_image_url` x-fal limits (checked against the published
# schema in tests/unit/test_images.py).
KLING_V3_START = StartImageLimits(min_side=300, min_ratio=0.4, max_ratio=2.5, max_bytes=10 * _MIB)

_QUALITY_STEPS = (90, 85, 80, 75)  # tried after JPEG_QUALITY when a start image is over max_bytes
_SHRINK_STEP = 0.85  # then the long side shrinks by this factor per try (never under min_side)


def ratio_text(width: int, height: int) -> str:
    """A shape as people say it: "3.1:1" for wide, "1:3.1" for tall, "1:1" for square."""
    if width >= height:
        return f"{_short(width / height)}:1"
    return f"1:{_short(height / width)}"


def _short(value: float) -> str:
    # Rounded away from 1, so a shape just past a limit never reads as the limit itself.
    if value >= 10:
        return f"{math.ceil(round(value, 6)):.0f}"
    return f"{math.ceil(round(value * 10, 6)) / 10:.1f}".removesuffix(".0")


def start_image_problem(width: int, height: int, limits: StartImageLimits = KLING_V3_START) -> str | None:
    """One polite sentence when an image's shape can't make a start image, else None.

    Only the ratio is judged here: a small image is upscaled, a large file is re-encoded.
    """
    ratio = width / height
    if limits.min_ratio <= ratio <= limits.max_ratio:
        return None
    lo = ratio_text(round(limits.min_ratio * 1000), 1000)
    hi = ratio_text(round(limits.max_ratio * 1000), 1000)
    return (
        f"This image is {ratio_text(width, height)}; fal's video models need between {lo} and {hi}. "
        "Crop it closer to the character."
    )


def _centred_crop_box(w: int, h: int, target: float) -> tuple[int, int, int, int]:
    """Largest centred box of ratio `target` (rounded down, so a limit is never passed by rounding)."""
    if w / h > target:
        new_w, new_h = max(1, math.floor(h * target)), h
    else:
        new_w, new_h = w, max(1, math.floor(w / target))
    left, top = (w - new_w) // 2, (h - new_h) // 2
    return left, top, left + new_w, top + new_h


def crop_to_aspect(data: bytes, ratio: tuple[int, int]) -> bytes:
    """Centred crop of a (normalised) image to `ratio` = (w, h); JPEG q95 out, deterministic.

    If the image already has that ratio (within 1 %), `data` is returned unchanged.
    """
    rw, rh = ratio
    if rw <= 0 or rh <= 0:
        raise ValueError(f"bad aspect ratio {ratio!r}")
    target = rw / rh
    with Image.open(io.BytesIO(data)) as im:
        w, h = im.size
        if abs((w / h) / target - 1) <= 0.01:
            return data
        if w / h > target:
            new_w, new_h = max(1, round(h * target)), h
        else:
            new_w, new_h = w, max(1, round(w / target))
        left = (w - new_w) // 2
        top = (h - new_h) // 2
        im.load()
        cropped = im.convert("RGB").crop((left, top, left + new_w, top + new_h))
    return encode_jpeg(cropped)


def _upscale_to_min(im: Image.Image, min_side: int) -> Image.Image:
    w, h = im.size
    short = min(w, h)
    if short >= min_side:
        return im
    # Integer arithmetic: the short side lands on min_side exactly, the long side rounds up.
    new = (-(-w * min_side // short), -(-h * min_side // short))
    return im.resize(new, Image.Resampling.LANCZOS)


def _encode_within(im: Image.Image, limits: StartImageLimits) -> bytes:
    out = encode_jpeg(im)
    for quality in _QUALITY_STEPS:
        if len(out) <= limits.max_bytes:
            return out
        out = encode_jpeg(im, quality)
    while len(out) > limits.max_bytes:
        w, h = im.size
        scale = max(_SHRINK_STEP, limits.min_side / min(w, h))
        if scale >= 1:
            raise ValueError("cannot make the start image small enough without going under the minimum side")
        im = im.resize((max(limits.min_side, round(w * scale)), max(limits.min_side, round(h * scale))))
        out = encode_jpeg(im, _QUALITY_STEPS[-1])
    return out


def fit_start_image(
    data: bytes, ratio: tuple[int, int] | None = None, limits: StartImageLimits = KLING_V3_START
) -> bytes:
    """A start image that meets `limits`: cropped to `ratio` (None: the image's own shape, brought inside the
    allowed ratios), upscaled (Lanczos) to at least `min_side` on each side, at most `max_bytes`.

    Returns `data` itself when it already meets every limit and needs no crop.
    """
    if ratio is not None:
        target = ratio[0] / ratio[1]
        if not limits.min_ratio <= target <= limits.max_ratio:
            raise ValueError(f"aspect ratio {ratio!r} is outside {limits.min_ratio}-{limits.max_ratio}")
    with Image.open(io.BytesIO(data)) as im:
        w, h = im.size
        own = w / h
        if ratio is None:
            target = min(max(own, limits.min_ratio), limits.max_ratio)
            needs_crop = target != own
        else:
            needs_crop = abs(own / target - 1) > 0.01
        fits = (
            not needs_crop
            and min(w, h) >= limits.min_side
            and limits.min_ratio <= own <= limits.max_ratio
            and len(data) <= limits.max_bytes
            and im.format == "JPEG"
        )
        if fits:
            return data
        im.load()
        work = im.convert("RGB")
    if needs_crop:
        work = work.crop(_centred_crop_box(w, h, target))
    work = _upscale_to_min(work, limits.min_side)
    return _encode_within(work, limits)
