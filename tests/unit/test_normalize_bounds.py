"""normalize_image's bounds on big pictures (memory, CPU) and what it says of multi-picture JPEGs, on real images."""

from __future__ import annotations

import io
import json
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bot.errors import ImageRejected
from bot.media.normalize import normalize_image
from tests import faces_samples as fs

ROOT = Path(__file__).resolve().parents[2]


def _chunk(kind: bytes, body: bytes) -> bytes:
    return (
        struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
    )


def big_png(side: int, *, bit_depth: int, colour_type: int) -> bytes:
    """A side×side PNG written by hand, every row a ramp (it compresses to about 1/300: a small upload)."""
    channels = {2: 3, 6: 4}[colour_type] * bit_depth // 8
    row = b"\x00" + (bytes(range(256)) * (side * channels // 256 + 1))[: side * channels]
    comp = zlib.compressobj(1)
    idat = b"".join(comp.compress(row) for _ in range(side)) + comp.flush()
    ihdr = struct.pack(">IIBBBBB", side, side, bit_depth, colour_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")


def encode(im: Image.Image, fmt: str, **params: object) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **params)
    return buf.getvalue()


# ------------------------------------------------------------------------------------------ 16-bit budget


def test_a_16_bit_rgba_picture_is_weighed_at_8_bytes_a_pixel_and_refused_before_decoding() -> None:
    """Found in review: a 1.2 MB 16-bit RGBA PNG of 40 megapixels cost ~1 GB of RAM and seconds of CPU. Its samples
    are 8 bytes a pixel, twice an 8-bit RGBA picture's, so it may have half the pixels (20 megapixels)."""
    data = big_png(4600, bit_depth=16, colour_type=6)  # 21 megapixels
    assert len(data) < 2 * 1024 * 1024
    with pytest.raises(ImageRejected) as refused:
        normalize_image(data)
    assert refused.value.message == (
        "That image is 4600×4600 (21 megapixels) in 16-bit colour with transparency, more than the "
        "20-megapixel limit for 16-bit colour with transparency; upload a smaller PNG, JPEG or WebP, or save it "
        "in 8-bit colour."
    )
    with pytest.raises(
        ImageRejected, match="in 16-bit colour, more than the 26-megapixel limit for 16-bit colour;"
    ):
        normalize_image(big_png(5300, bit_depth=16, colour_type=2))  # 28 megapixels of 16-bit RGB


def test_16_bit_pictures_under_their_budget_and_8_bit_ones_of_the_same_size_still_pass() -> None:
    norm = normalize_image(big_png(4400, bit_depth=16, colour_type=6))  # 19.4 megapixels
    assert (norm.width, norm.height) == (2048, 2048)
    assert "Converted 16-bit colour to 8-bit." in norm.notes
    assert "Scaled down from 4400×4400 to 2048×2048." in norm.notes
    assert normalize_image(big_png(4600, bit_depth=8, colour_type=6)).width == 2048


# ------------------------------------------------------------------------------------ shrinking early


_PEAK_PROBE = """
import json, re, sys
from pathlib import Path
from bot.media.normalize import normalize_image


def peak_mb():  # this process's own high-water RSS (ru_maxrss would carry the parent's over from fork)
    return int(re.search(r"VmHWM:\\s+(\\d+) kB", Path("/proc/self/status").read_text()).group(1)) / 1024


data = Path(sys.argv[1]).read_bytes()
before = peak_mb()
norm = normalize_image(data)
print(json.dumps({"size": [norm.width, norm.height], "grew_mb": peak_mb() - before}))
"""


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads VmHWM from /proc")
def test_a_40_megapixel_rgba_png_is_shrunk_before_its_conversions(tmp_path: Path) -> None:
    """Found in review: alpha flattening, 16-bit narrowing and rotation each copied the full-size picture (a
    40-megapixel RGBA PNG peaked at 940 MB). Shrunk by a whole factor first, in its own mode, it peaks near the
    decoded picture itself (160 MB) plus a little. Measured as the growth of a fresh process's own peak RSS."""
    path = tmp_path / "big.png"
    path.write_bytes(big_png(6300, bit_depth=8, colour_type=6))
    run = subprocess.run(  # noqa: S603 (our own interpreter and script)
        [sys.executable, "-c", _PEAK_PROBE, str(path)], cwd=ROOT, capture_output=True, text=True, check=True
    )
    result = json.loads(run.stdout)
    assert result["size"] == [2048, 2048]
    assert result["grew_mb"] < 400, result  # 910 MB before the fix


def test_the_early_shrink_keeps_the_picture_and_names_its_own_size() -> None:
    """A picture shrunk by blocks then resampled looks like one resampled at once; the note names the size the
    member sent (upright), and a JPEG rotated by EXIF comes out upright."""
    photo = fs.astronaut().resize((4200, 2856), Image.Resampling.BICUBIC)  # over twice 2048: shrunk
    exif = Image.Exif()
    exif[0x0112] = 6  # stored on its side: "rotate 90° clockwise to view"
    data = encode(photo.transpose(Image.Transpose.ROTATE_90), "JPEG", quality=95, exif=exif.tobytes())
    norm = normalize_image(data)
    assert (norm.width, norm.height) == (2048, 1393)
    assert "Scaled down from 4200×2856 to 2048×1393." in norm.notes
    direct = np.asarray(photo.resize((2048, 1393), Image.Resampling.LANCZOS), dtype=np.int16)
    out = np.asarray(Image.open(io.BytesIO(norm.data)).convert("RGB"), dtype=np.int16)
    assert np.abs(out - direct).mean() < 3.0
    png = normalize_image(encode(photo, "PNG", compress_level=1))
    assert np.abs(np.asarray(Image.open(io.BytesIO(png.data)), dtype=np.int16) - direct).mean() < 3.0
    # a PNG on its side, shrunk by blocks (a JPEG's draft decode never needs it): upright all the same
    sideways = normalize_image(
        encode(photo.transpose(Image.Transpose.ROTATE_90), "PNG", compress_level=1, exif=exif.tobytes())
    )
    assert (sideways.width, sideways.height) == (2048, 1393)
    assert "Rotated upright using the photo's EXIF orientation." in sideways.notes
    turned = np.asarray(Image.open(io.BytesIO(sideways.data)).convert("RGB"), dtype=np.int16)
    assert np.abs(turned - direct).mean() < 3.0


def test_a_long_thin_picture_is_judged_on_its_own_size_not_the_shrunk_one() -> None:
    wide = normalize_image(encode(Image.new("RGB", (9000, 600), (90, 120, 150)), "PNG"))
    assert (wide.width, wide.height) == (2048, 137)
    with pytest.raises(ImageRejected, match="That image is 9000×250; anchors need at least 300 px"):
        normalize_image(encode(Image.new("RGB", (9000, 250), (90, 120, 150)), "PNG"))


# ------------------------------------------------------------------------------------ multi-picture JPEG


def test_a_phone_photo_with_a_depth_map_is_not_called_animated() -> None:
    """Found in review: every MPO (a phone's JPEG carrying a depth or gain map as a second picture) was reported
    "Used the first frame of the animated JPEG." The main picture is used and nothing is said of the map."""
    photo = fs.hopper_portrait()
    depth = photo.convert("L").resize((220, 290)).convert("RGB")
    data = encode(photo, "MPO", save_all=True, append_images=[depth], quality=95)
    assert Image.open(io.BytesIO(data)).format == "MPO"
    norm = normalize_image(data)
    assert norm.source_format == "JPEG" and (norm.width, norm.height) == photo.size
    assert not any("animated" in n for n in norm.notes), norm.notes
    out = np.asarray(Image.open(io.BytesIO(norm.data)), dtype=np.int16)
    assert np.abs(out - np.asarray(photo, dtype=np.int16)).mean() < 3.0  # the photo, not its depth map


def test_animations_still_say_their_first_frame_was_used() -> None:
    frames = [Image.new("RGB", (400, 400), c) for c in ((255, 0, 0), (0, 0, 255))]
    apng = encode(frames[0], "PNG", save_all=True, append_images=frames[1:], duration=100)
    assert "Used the first frame of the animated PNG." in normalize_image(apng).notes
    gif = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100)
    assert "Used the first frame of the animated GIF." in normalize_image(gif).notes
