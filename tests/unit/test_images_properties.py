"""Image intake under hostile bytes: only the project's refusal may come out (hypothesis, 1,000+ cases each)."""

from __future__ import annotations

import importlib
import io
from collections.abc import Callable
from functools import cache

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from bot.errors import UserError

PROPS = settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@cache
def intake() -> Callable[[bytes], object]:
    """The intake function, looked up lazily so a rename in bot.media shows up as one clear failure."""
    images = importlib.import_module("bot.media.normalize")
    for name in ("normalize_image", "normalise_image", "normalize", "load_anchor_image"):
        fn = getattr(images, name, None)
        if callable(fn):
            return fn
    raise AssertionError("bot.media.normalize has no intake function (normalize_image was renamed?)")


@cache
def real_files() -> dict[str, bytes]:
    """Tiny real files of every format intake may see (small, to keep 1,000 cases fast)."""
    out = {}
    img = Image.new("RGB", (6, 5), (200, 30, 40))
    for fmt in ("PNG", "JPEG", "GIF", "WEBP", "BMP", "TIFF"):
        buf = io.BytesIO()
        img.save(buf, fmt)
        out[fmt] = buf.getvalue()
    rgba = Image.new("RGBA", (4, 7), (1, 2, 3, 4))
    buf = io.BytesIO()
    rgba.save(buf, "PNG")
    out["PNG-RGBA"] = buf.getvalue()
    return out


def _intake_ok_or_refused(data: bytes, **kwargs: object) -> None:
    try:
        intake()(data, **kwargs)
    except UserError as exc:  # ImageRejected is a UserError
        assert exc.message and "Traceback" not in exc.message


@st.composite
def garbled(draw: st.DrawFn) -> bytes:
    """A real file, then truncated, with bytes overwritten, or with junk spliced in."""
    data = bytearray(real_files()[draw(st.sampled_from(sorted(real_files())))])
    action = draw(st.sampled_from(["truncate", "flip", "splice", "header-only", "as-is"]))
    if action == "truncate":
        data = data[: draw(st.integers(0, len(data)))]
    elif action == "flip":
        for _ in range(draw(st.integers(1, 8))):
            i = draw(st.integers(0, len(data) - 1))
            data[i] = draw(st.integers(0, 255))
    elif action == "splice":
        i = draw(st.integers(0, len(data)))
        data[i:i] = draw(st.binary(max_size=64))
    elif action == "header-only":
        data = data[: draw(st.integers(1, 40))] + draw(st.binary(max_size=200))
    return bytes(data)


@st.composite
def claimed_size(draw: st.DrawFn) -> bytes:
    """A PNG whose IHDR claims an arbitrary (possibly absurd) size, with a correct CRC or not."""
    import struct
    import zlib

    width = draw(st.integers(0, 2**32 - 1))
    height = draw(st.integers(0, 2**32 - 1))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, draw(st.sampled_from([0, 2, 3, 6, 7])), 0, 0, 0)
    crc = zlib.crc32(b"IHDR" + ihdr) if draw(st.booleans()) else draw(st.integers(0, 2**32 - 1))
    chunk = struct.pack(">I", len(ihdr)) + b"IHDR" + ihdr + struct.pack(">I", crc)
    return b"\x89PNG\r\n\x1a\n" + chunk + draw(st.binary(max_size=100))


@PROPS
@given(st.binary(max_size=512))
def test_random_bytes_are_refused_politely(data):
    _intake_ok_or_refused(data)


@PROPS
@given(garbled(), st.integers(1, 64), st.integers(1, 4096))
def test_garbled_real_files_never_crash(data, min_side, max_side):
    _intake_ok_or_refused(data, min_side=min_side, max_side=max(min_side, max_side))


@PROPS
@given(claimed_size(), st.integers(1, 10_000_000))
def test_absurd_claimed_sizes_never_crash(data, max_pixels):
    _intake_ok_or_refused(data, max_pixels=max_pixels, min_side=1)


@PROPS
@given(st.sampled_from(sorted(real_files())), st.integers(0, 64))
def test_size_limits_never_crash(name, max_bytes):
    _intake_ok_or_refused(real_files()[name], max_bytes=max_bytes, min_side=1)
