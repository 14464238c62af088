"""Cropping: centred crops to an aspect ratio, start images that always meet the video model's limits, and face
crops (a character's portrait for a Kling element).

fal checks a start image before Kling sees it (the `x-fal` block of the endpoint's published schema): at least
300 px on each side, an aspect ratio (width / height) between 0.4 and 2.5, at most 10 MiB. A start image outside
them fails the job at fal, so `fit_start_image` makes every one fit: centred crop to the shape asked for (or to
the nearest allowed ratio), Lanczos upscale when the crop is under the minimum side, and a lower JPEG quality (then
a smaller size) in the rare case the file is too large. `face_crop` cuts a tight portrait around a face box and
makes it meet the same limits.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass

from PIL import Image

from bot.media.normalize import _to_rgb8, encode_jpeg

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


# ----------------------------------------------------------------------------------------- face crops
# dlib's face box (bot.media.faces) runs from about the brows to the chin and across the cheeks. The crop grows it
# to a 4:5 portrait of the head: 2 box heights tall, its centre 0.1 box height above the box's, so it keeps about
# 0.6 box height above the box (forehead and hair), 0.4 under it (chin and neck) and 0.3 at each side (ears).
FACE_CROP_HEIGHT = 2.0  # the crop's height in face box heights
FACE_CROP_LIFT = 0.1  # how far the crop's centre sits above the box's, in face box heights
FACE_CROP_ASPECT = 4 / 5  # width / height
FACE_CROP_MAX_SIDE = 2048  # a larger crop is scaled down to this (the stored anchors are at most 2048 px too)

_Window = tuple[float, float, float, float]  # left, top, right, bottom; fractional, may reach past the image

# EXIF orientation -> the transposition that turns the stored pixels upright (ImageOps.exif_transpose's table).
_UPRIGHT = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


def face_crop(
    data: bytes, box: tuple[int, int, int, int] | None, limits: StartImageLimits = KLING_V3_START
) -> bytes:
    """A tight portrait of the face in `box` (left, top, right, bottom in the upright image's pixels, as
    `bot.media.faces` finds it in a stored anchor), as a JPEG that meets `limits`.

    The box grows to take in the hair and the chin (FACE_CROP_*), is moved, not shrunk, to stay inside the image
    (cut to the image only where the image is smaller), kept within the allowed ratios, scaled down to
    FACE_CROP_MAX_SIDE or up (Lanczos) to `min_side`, and encoded under `max_bytes`. Without a box, or with one
    that misses the image, it is a centred square of the top two thirds (a portrait's face area). Grey, CMYK,
    16-bit and transparent pictures (flattened on white) and EXIF orientations are taken.

    Pure CPU work (decoding, resampling, encoding): call it through `asyncio.to_thread` from async code.
    """
    picture, window = _decode_for_crop(data, box)
    work = _to_rgb8(picture.crop(_fit_window(window, picture.size, limits)), [], False)
    long_side, short_side = max(work.size), min(work.size)
    scale = max(FACE_CROP_MAX_SIDE / long_side, limits.min_side / short_side)
    if scale < 1:
        size = (max(1, round(work.width * scale)), max(1, round(work.height * scale)))
        work = work.resize(size, Image.Resampling.LANCZOS)
    return _encode_within(_upscale_to_min(work, limits.min_side), limits)


def _decode_for_crop(data: bytes, box: tuple[int, int, int, int] | None) -> tuple[Image.Image, _Window]:
    """The picture, upright, and the crop's window in its pixels. A JPEG is decoded at 1/2, 1/4 or 1/8 of its
    size when the crop stays over FACE_CROP_MAX_SIDE that way (a 24-megapixel photo's face needs no more)."""
    with Image.open(io.BytesIO(data)) as im:
        orientation = _orientation(im)
        raw_w, raw_h = im.size
        size = (raw_h, raw_w) if orientation in (5, 6, 7, 8) else (raw_w, raw_h)
        window = (_face_window(size, box) if box is not None else None) or _portrait_window(size)
        long_side = max(min(window[2] - window[0], size[0]), min(window[3] - window[1], size[1]))
        if long_side > FACE_CROP_MAX_SIDE:
            shrink = FACE_CROP_MAX_SIDE / long_side
            im.draft(None, (math.ceil(raw_w * shrink), math.ceil(raw_h * shrink)))
        im.load()
        picture = im.transpose(_UPRIGHT[orientation]) if orientation in _UPRIGHT else im.copy()
    sx, sy = picture.width / size[0], picture.height / size[1]
    return picture, (window[0] * sx, window[1] * sy, window[2] * sx, window[3] * sy)


def _orientation(im: Image.Image) -> int:
    """The EXIF orientation (1 = upright; 1 too when the EXIF block is missing or broken)."""
    try:
        value = im.getexif().get(0x0112, 1)
    except Exception:  # a damaged EXIF block: take the pixels as they are
        return 1
    return value if isinstance(value, int) else 1


def _face_window(size: tuple[int, int], box: tuple[int, int, int, int]) -> _Window | None:
    """The wanted portrait around a face `box` in an image of `size`, not yet moved inside it; None when the box
    is empty or lies wholly outside the image."""
    width, height = size
    left, right = sorted((float(box[0]), float(box[2])))
    top, bottom = sorted((float(box[1]), float(box[3])))
    if right - left < 1 or bottom - top < 1 or right <= 0 or bottom <= 0 or left >= width or top >= height:
        return None
    face = max(right - left, bottom - top)  # dlib's boxes are square; a long box is judged by its long side
    crop_h = FACE_CROP_HEIGHT * face
    crop_w = crop_h * FACE_CROP_ASPECT
    cx, cy = (left + right) / 2, (top + bottom) / 2 - FACE_CROP_LIFT * face
    return cx - crop_w / 2, cy - crop_h / 2, cx + crop_w / 2, cy + crop_h / 2


def _portrait_window(size: tuple[int, int]) -> _Window:
    """A centred square of the top two thirds of an image of `size` (where a portrait's face is)."""
    width, height = size
    area = height * 2 / 3
    side = min(width, area)
    return (width - side) / 2, (area - side) / 2, (width + side) / 2, (area + side) / 2


def _fit_window(
    window: _Window, size: tuple[int, int], limits: StartImageLimits
) -> tuple[int, int, int, int]:
    """`window` in whole pixels inside an image of `size`: cut to the image where it is larger, narrowed (never
    widened) into the allowed ratios, then moved, keeping its centre as near as it can, to lie inside."""
    width, height = size
    crop_w = max(1, min(width, math.floor(window[2] - window[0])))
    crop_h = max(1, min(height, math.floor(window[3] - window[1])))
    if crop_w > crop_h * limits.max_ratio:
        crop_w = max(1, math.floor(crop_h * limits.max_ratio))
    elif crop_w < crop_h * limits.min_ratio:
        crop_h = max(1, math.floor(crop_w / limits.min_ratio))
    cx, cy = (window[0] + window[2]) / 2, (window[1] + window[3]) / 2
    left = min(max(0, round(cx - crop_w / 2)), width - crop_w)
    top = min(max(0, round(cy - crop_h / 2)), height - crop_h)
    return left, top, left + crop_w, top + crop_h
