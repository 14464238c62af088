"""bot.media (intake, normalize, crop) and bot.anchors.checklist against real images generated with Pillow (no mocks)."""

from __future__ import annotations

import io
import json
import random
import re
import struct
import zlib
from pathlib import Path

import pytest
from PIL import Image, ImageDraw, ImageOps

from bot.anchors.checklist import _subject_centre, analyse, anchor_checklist
from bot.anchors.models import CheckItem
from bot.errors import ImageRejected
from bot.media.crop import (
    KLING_V3_START,
    StartImageLimits,
    crop_to_aspect,
    fit_start_image,
    start_image_problem,
)
from bot.media.intake import MAX_UPLOAD_BYTES, check_declared, image_size
from bot.media.normalize import NormalizedImage, normalize_image
from bot.media.outputs import BadOutput, Reason, check_image
from bot.media.sheet import contact_sheet

# --------------------------------------------------------------------------------------------- helpers


def encode(im: Image.Image, fmt: str, **params: object) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **params)
    return buf.getvalue()


def scene(size: tuple[int, int] = (800, 600)) -> Image.Image:
    """A non-trivial RGB picture: gradient plus a few shapes."""
    w, h = size
    gradient = Image.linear_gradient("L").resize(size)
    im = Image.merge(
        "RGB",
        (gradient, ImageOps.invert(gradient), gradient.transpose(Image.Transpose.ROTATE_90).resize(size)),
    )
    d = ImageDraw.Draw(im)
    d.ellipse((w * 0.3, h * 0.2, w * 0.7, h * 0.8), fill=(200, 160, 130))
    d.rectangle((w * 0.1, h * 0.1, w * 0.2, h * 0.3), fill=(20, 40, 200))
    return im


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return (
        struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
    )


def hand_png(
    width: int, height: int, *, bit_depth: int, colour_type: int, row: bytes, palette: bytes = b""
) -> bytes:
    """A PNG written by hand: every row is the filter byte 0 + `row`, streamed through zlib."""
    comp = zlib.compressobj(9)
    parts = []
    line = b"\x00" + row
    for _ in range(height):
        parts.append(comp.compress(line))
    parts.append(comp.flush())
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    out = b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr)
    if palette:
        out += png_chunk(b"PLTE", palette)
    return out + png_chunk(b"IDAT", b"".join(parts)) + png_chunk(b"IEND", b"")


def portrait(
    size: tuple[int, int] = (1200, 1500),
    centre: tuple[float, float] = (0.5, 0.38),
    bg: Image.Image | None = None,
) -> Image.Image:
    """A face-like head with shoulders, on a plain light wall unless `bg` is given."""
    w, h = size
    im = bg.copy() if bg is not None else Image.new("RGB", size, (225, 225, 220))
    d = ImageDraw.Draw(im)
    x, y = centre[0] * w, centre[1] * h
    rx, ry = w * 0.16, h * 0.17
    d.ellipse((x - w * 0.33, y + ry * 0.9, x + w * 0.33, y + ry * 0.9 + h * 0.6), fill=(50, 60, 90))
    d.ellipse((x - rx, y - ry, x + rx, y + ry), fill=(70, 50, 40))
    d.ellipse((x - rx * 0.8, y - ry * 0.7, x + rx * 0.8, y + ry * 0.9), fill=(200, 160, 130))
    d.ellipse((x - rx * 0.4, y - ry * 0.2, x - rx * 0.2, y), fill=(30, 30, 30))
    d.ellipse((x + rx * 0.2, y - ry * 0.2, x + rx * 0.4, y), fill=(30, 30, 30))
    return im


def dark_ellipse(bg: Image.Image, centre: tuple[float, float]) -> Image.Image:
    im = bg.copy()
    w, h = im.size
    x, y = centre[0] * w, centre[1] * h
    ImageDraw.Draw(im).ellipse((x - w * 0.15, y - h * 0.15, x + w * 0.15, y + h * 0.15), fill=(40, 30, 30))
    return im


def busy_background(kind: str, size: tuple[int, int] = (1200, 1500), seed: int = 7) -> Image.Image:
    w, h = size
    rnd = random.Random(seed)
    if kind == "noise":
        return Image.frombytes("RGB", size, rnd.randbytes(w * h * 3))
    if kind == "stripes":
        im = Image.new("RGB", size, "white")
        d = ImageDraw.Draw(im)
        for x in range(0, w, 40):
            d.rectangle((x, 0, x + 19, h), fill=(20, 20, 20))
        return im
    if kind == "shapes":
        im = Image.new("RGB", size, (128, 128, 128))
        d = ImageDraw.Draw(im)
        for _ in range(400):
            x, y, s = rnd.randrange(w), rnd.randrange(h), rnd.randrange(20, 120)
            d.rectangle((x, y, x + s, y + s), fill=tuple(rnd.randrange(256) for _ in range(3)))
        return im
    raise ValueError(kind)


def by_rule(items: list[CheckItem]) -> dict[str, CheckItem]:
    return {item.key: item for item in items}


def reopen(norm: NormalizedImage) -> Image.Image:
    im = Image.open(io.BytesIO(norm.data))
    im.load()
    return im


# -------------------------------------------------------------------------------------------- accepted


@pytest.mark.parametrize(
    ("fmt", "params", "expected"),
    [
        ("PNG", {}, "PNG"),
        ("JPEG", {"quality": 90}, "JPEG"),
        ("WEBP", {"quality": 90}, "WEBP"),
        ("GIF", {}, "GIF"),
    ],
)
def test_accepts_common_formats(fmt: str, params: dict, expected: str) -> None:
    norm = normalize_image(encode(scene(), fmt, **params))
    assert norm.source_format == expected
    assert (norm.width, norm.height) == (800, 600)
    im = reopen(norm)
    assert im.format == "JPEG" and im.mode == "RGB" and im.size == (800, 600)
    assert norm.data.startswith(b"\xff\xd8\xff")
    import hashlib

    assert norm.sha256 == hashlib.sha256(norm.data).hexdigest()
    assert norm.notes == ()
    # Colours survive: the blue rectangle is still blue.
    r, g, b = im.getpixel((120, 120))
    assert b > 150 and r < 80


def test_same_input_gives_identical_bytes() -> None:
    data = encode(scene((3000, 2000)), "PNG")
    a = normalize_image(data)
    b = normalize_image(data)
    assert a.data == b.data and a.sha256 == b.sha256


def test_output_is_quality_95_444_without_metadata() -> None:
    norm = normalize_image(encode(scene(), "PNG"))
    im = reopen(norm)
    assert im.info.get("icc_profile") is None
    assert "exif" not in im.info and "comment" not in im.info
    # 4:4:4: every component has the same sampling factors.
    assert len({c[1:3] for c in im.layer}) == 1


def test_rgba_is_flattened_on_white() -> None:
    im = Image.new("RGBA", (400, 400), (0, 0, 0, 0))
    ImageDraw.Draw(im).rectangle((100, 100, 300, 300), fill=(255, 0, 0, 255))
    norm = normalize_image(encode(im, "PNG"))
    out = reopen(norm)
    assert all(v >= 250 for v in out.getpixel((10, 10)))
    r, g, b = out.getpixel((200, 200))
    assert r > 240 and g < 15 and b < 15
    assert "Filled transparent areas with white." in norm.notes


def test_paletted_png_with_transparency() -> None:
    im = Image.new("P", (400, 400), 0)
    im.putpalette([0, 0, 0, 0, 128, 0] + [0] * 762)
    ImageDraw.Draw(im).rectangle((0, 0, 199, 399), fill=1)
    norm = normalize_image(encode(im, "PNG", transparency=0))
    out = reopen(norm)
    assert all(v >= 250 for v in out.getpixel((300, 200)))
    assert out.getpixel((100, 200))[1] > 100


# --------------------------------------------------------------------------------------------- refused


def test_text_named_png_is_refused() -> None:
    with pytest.raises(ImageRejected, match="text file"):
        normalize_image(b"hello, this is definitely an image, trust me\n" * 20)


def test_svg_is_refused() -> None:
    svg = (
        b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="800" height="800">'
        b'<circle cx="400" cy="400" r="300"/></svg>'
    )
    with pytest.raises(ImageRejected, match="SVG") as err:
        normalize_image(svg)
    assert err.value.message.count(".") >= 1 and "PNG" in err.value.message


def test_tiff_is_refused() -> None:
    with pytest.raises(ImageRejected, match="TIFF"):
        normalize_image(encode(scene(), "TIFF"))


def test_bmp_and_pdf_are_named() -> None:
    with pytest.raises(ImageRejected, match="BMP"):
        normalize_image(encode(scene(), "BMP"))
    with pytest.raises(ImageRejected, match="PDF"):
        normalize_image(encode(scene(), "PDF"))


def test_unknown_binary_and_empty_are_refused() -> None:
    with pytest.raises(ImageRejected):
        normalize_image(bytes(range(256)) * 10)
    with pytest.raises(ImageRejected, match="empty"):
        normalize_image(b"")


def test_truncated_jpeg_is_refused() -> None:
    noisy = Image.frombytes("RGB", (800, 600), random.Random(1).randbytes(800 * 600 * 3))
    data = encode(noisy, "JPEG", quality=90)
    with pytest.raises(ImageRejected, match=r"damaged or incomplete \(.+\); re-export it and upload again\."):
        normalize_image(data[: len(data) // 2])


def test_truncated_png_is_refused() -> None:
    noisy = Image.frombytes("RGB", (800, 600), random.Random(2).randbytes(800 * 600 * 3))
    data = encode(noisy, "PNG")
    with pytest.raises(ImageRejected, match="damaged or incomplete"):
        normalize_image(data[: len(data) // 3])


def test_a_gif_cut_inside_its_second_frame_header_is_refused() -> None:
    """Found by hypothesis (test_garbled_real_files_never_crash): Pillow reads the second frame's header to tell
    whether a GIF is animated, and this one ends one byte into it (struct.error inside Pillow)."""
    data = (
        b"GIF87a\x06\x00\x05\x00\x81\x00\x00\xc8\x1e(\x00\x00\x00\x00\x00\x00\x00\x00\x00,\x00\x00\x00\x00"
        b"\x06\x00\x05\x00\x00\x08\x0c\x00\x01\x08\x1cH\xb0\xa0\xc1\x83\x02\x03\x02\x00,;"
    )
    with pytest.raises(ImageRejected, match=r"damaged or incomplete \(its GIF frames can't be read\)"):
        normalize_image(data, min_side=1)


def test_decompression_bomb_png_is_refused_from_the_header() -> None:
    # 20000×20000 1-bit PNG: 400 megapixels in a file of a few dozen KB.
    bomb = hand_png(20000, 20000, bit_depth=1, colour_type=0, row=bytes(2500))
    assert len(bomb) < 100_000
    with pytest.raises(ImageRejected, match="20000×20000") as err:
        normalize_image(bomb)
    assert "megapixel" in err.value.message


def test_bomb_below_pillow_limit_but_above_ours_is_refused() -> None:
    # 8000×6000 = 48 MP: Pillow would open it quietly, our 40 MP limit refuses it.
    bomb = hand_png(8000, 6000, bit_depth=8, colour_type=3, row=bytes(8000), palette=b"\x00\x00\x00")
    with pytest.raises(ImageRejected, match="8000×6000"):
        normalize_image(bomb)
    # ...and a lower limit passed by the caller is honoured too.
    small = hand_png(1000, 1000, bit_depth=8, colour_type=0, row=bytes(1000))
    with pytest.raises(ImageRejected, match="1000×1000"):
        normalize_image(small, max_pixels=500_000)


def test_jpeg_and_webp_bombs_are_refused_from_the_header() -> None:
    jpeg = encode(Image.new("L", (64, 64)), "JPEG")
    # Patch the SOF0 frame size to 30000×30000 without touching the (tiny) scan data.
    sof = jpeg.index(b"\xff\xc0")
    patched = jpeg[: sof + 5] + struct.pack(">HH", 30000, 30000) + jpeg[sof + 9 :]
    with pytest.raises(ImageRejected, match="30000×30000"):
        normalize_image(patched)
    webp = encode(Image.new("RGB", (64, 64)), "WEBP", lossless=True)
    assert webp[12:16] == b"VP8L"
    bits = int.from_bytes(webp[21:25], "little")
    bits = (bits & ~((1 << 28) - 1)) | 16382 | (16382 << 14)  # width-1 and height-1, 14 bits each
    webp = webp[:21] + bits.to_bytes(4, "little") + webp[25:]
    with pytest.raises(ImageRejected, match="16383×16383"):
        normalize_image(webp)


def test_file_over_size_limit_is_refused() -> None:
    data = encode(scene(), "PNG")
    with pytest.raises(ImageRejected, match="upload a PNG, JPEG or WebP under"):
        normalize_image(data, max_bytes=len(data) - 1)


def test_too_small_is_refused_with_the_figure() -> None:
    with pytest.raises(ImageRejected) as err:
        normalize_image(encode(scene((200, 150)), "PNG"))
    assert err.value.message == (
        "That image is 200×150; anchors need at least 300 px on the short side, ideally 1024 or more."
    )


# ----------------------------------------------------------------------------------------- conversions


def test_cmyk_jpeg_becomes_rgb() -> None:
    im = Image.new("CMYK", (600, 600), (0, 255, 255, 0))  # red in CMYK
    norm = normalize_image(encode(im, "JPEG", quality=95))
    out = reopen(norm)
    assert out.mode == "RGB"
    r, g, b = out.getpixel((300, 300))
    assert r > 200 and g < 60 and b < 60
    assert "Converted from CMYK to RGB." in norm.notes


def test_16bit_grey_png_is_scaled_not_clipped() -> None:
    data = hand_png(512, 400, bit_depth=16, colour_type=0, row=b"\x80\x00" * 256 + b"\xff\xff" * 256)
    assert Image.open(io.BytesIO(data)).mode.startswith("I")
    norm = normalize_image(data)
    out = reopen(norm)
    assert out.mode == "RGB"
    assert 120 <= out.getpixel((100, 200))[0] <= 136  # half grey stays half grey (clipping would give 255)
    assert out.getpixel((400, 200))[0] >= 250
    assert "Converted 16-bit colour to 8-bit." in norm.notes


def test_16bit_rgb_png_is_converted() -> None:
    # Colour type 2, 16 bits per sample: pure green, written by hand (Pillow can't write 48-bit PNG).
    data = hand_png(400, 300, bit_depth=16, colour_type=2, row=b"\x00\x00\xff\xff\x00\x00" * 400)
    norm = normalize_image(data)
    r, g, b = reopen(norm).getpixel((200, 150))
    assert g > 240 and r < 15 and b < 15
    assert "Converted 16-bit colour to 8-bit." in norm.notes


def test_exif_orientation_6_is_stored_upright() -> None:
    im = Image.new("RGB", (800, 600), (90, 90, 90))
    ImageDraw.Draw(im).rectangle((0, 0, 99, 99), fill=(255, 0, 0))  # marker in the top-left corner
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to view"
    norm = normalize_image(encode(im, "JPEG", quality=95, exif=exif.tobytes()))
    out = reopen(norm)
    assert (norm.width, norm.height) == out.size == (600, 800)
    r, g, b = out.getpixel((600 - 50, 50))  # top-right corner now
    assert r > 200 and g < 60 and b < 60
    assert out.getpixel((50, 50))[0] < 150
    assert "Rotated upright using the photo's EXIF orientation." in norm.notes
    assert not out.getexif()


def test_gps_exif_is_removed() -> None:
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"
    exif[0x8825] = {1: "N", 2: (52.0, 22.0, 11.5), 3: "E", 4: (4.0, 53.0, 2.0)}
    data = encode(scene(), "JPEG", quality=95, exif=exif.tobytes(), comment=b"shot at home")
    assert b"Exif" in data and Image.open(io.BytesIO(data)).getexif().get_ifd(0x8825)
    norm = normalize_image(data)
    out = reopen(norm)
    assert len(out.getexif()) == 0
    assert b"Exif" not in norm.data
    assert b"shot at home" not in norm.data and b"PhoneMaker" not in norm.data
    assert any(n.startswith("Removed photo metadata (EXIF/GPS") for n in norm.notes)


def test_png_text_and_icc_are_dropped() -> None:
    from PIL import ImageCms, PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", "a secret prompt")
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    norm = normalize_image(encode(scene(), "PNG", pnginfo=info, icc_profile=icc))
    assert b"secret prompt" not in norm.data
    assert reopen(norm).info.get("icc_profile") is None
    assert "Removed photo metadata (text)." in norm.notes


def test_animated_gif_uses_first_frame() -> None:
    frames = [Image.new("RGB", (400, 400), c) for c in ((255, 0, 0), (0, 0, 255), (0, 255, 0))]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    norm = normalize_image(data)
    r, g, b = reopen(norm).getpixel((200, 200))
    assert r > 240 and g < 15 and b < 15
    assert norm.source_format == "GIF"
    assert "Used the first frame of the animated GIF." in norm.notes


def test_animated_webp_uses_first_frame() -> None:
    frames = [Image.new("RGB", (400, 400), c) for c in ((0, 0, 255), (255, 0, 0))]
    data = encode(frames[0], "WEBP", save_all=True, append_images=frames[1:], duration=100, lossless=True)
    norm = normalize_image(data)
    r, g, b = reopen(norm).getpixel((200, 200))
    assert b > 240 and r < 15
    assert "Used the first frame of the animated WebP." in norm.notes


def test_large_image_is_scaled_to_2048() -> None:
    norm = normalize_image(encode(scene((5000, 3000)), "JPEG", quality=90))
    assert (norm.width, norm.height) == (2048, 1229)
    assert reopen(norm).size == (2048, 1229)
    assert "Scaled down from 5000×3000 to 2048×1229." in norm.notes


# -------------------------------------------------------------------------------------- check_declared


def test_check_declared_size() -> None:
    with pytest.raises(ImageRejected) as err:
        check_declared("photo.png", "image/png", 50 * 1024 * 1024)
    assert err.value.message == "That file is 50 MB; upload a PNG, JPEG or WebP under 20 MB."
    check_declared("photo.png", "image/png", MAX_UPLOAD_BYTES)


def test_check_declared_type() -> None:
    with pytest.raises(ImageRejected, match="SVG"):
        check_declared("logo.svg", None, 2000)
    with pytest.raises(ImageRejected, match="SVG"):
        check_declared("logo", "image/svg+xml", 2000)
    with pytest.raises(ImageRejected) as err:
        check_declared("scan.tiff", "image/tiff", 48 * 1024 * 1024)
    assert err.value.message == "That file is a 48 MB TIFF image; upload a PNG, JPEG or WebP under 20 MB."
    for name, ctype in [
        ("a.pdf", "application/pdf"),
        ("b.heic", "image/heic"),
        ("notes.txt", "text/plain"),
        ("c.png", "text/plain; charset=utf-8"),
        ("clip.mp4", "video/mp4"),
    ]:
        with pytest.raises(ImageRejected):
            check_declared(name, ctype, 1000)


def test_check_declared_accepts_normal_images() -> None:
    check_declared("me.png", "image/png", 3_000_000)
    check_declared("me.JPG", "image/jpeg", None)
    check_declared("me.webp", "image/webp", 10)
    check_declared("me.gif", None, None)
    check_declared("upload", "application/octet-stream", 1000)  # unknown: the sniffer decides


# ------------------------------------------------------------------------------------------- checklist


def test_checklist_centred_subject_on_plain_background() -> None:
    norm = normalize_image(encode(portrait(), "JPEG", quality=95))
    items = anchor_checklist(norm.data)
    assert [i.key for i in items] == [
        "Sharpness",
        "Shape",
        "Person in the middle",
        "Plain background",
        "Expression and camera",
    ]
    rules = by_rule(items)
    assert rules["Sharpness"].level == "pass"
    assert rules["Shape"].level == "pass"
    assert rules["Person in the middle"].level == "pass", rules["Person in the middle"].text
    assert rules["Plain background"].level == "pass", rules["Plain background"].text
    assert rules["Expression and camera"].level == "info"
    # Everyday words, no measurements: members read this (issue #19).
    assert rules["Person in the middle"].text == "The person is in the middle of the picture."
    assert rules["Plain background"].text == "The background is plain."
    assert not any(re.search(r"\d%|px|spread|patch", i.text) for i in items[1:]), [i.text for i in items]


def test_checklist_centred_ellipse_on_plain_background() -> None:
    im = dark_ellipse(Image.new("RGB", (1200, 1200), (235, 235, 230)), (0.5, 0.5))
    rules = by_rule(anchor_checklist(normalize_image(encode(im, "PNG")).data))
    assert rules["Person in the middle"].level == "pass"
    view = analyse(normalize_image(encode(im, "PNG")).data)
    cx, cy, _ = _subject_centre(view.inner_rgb, view.edge_bin)
    assert round(cx, 2) == 0.5 and round(cy, 2) == 0.5
    assert rules["Plain background"].level == "pass"


@pytest.mark.parametrize("kind", ["noise", "stripes"])
def test_checklist_off_centre_subject_on_busy_background(kind: str) -> None:
    im = dark_ellipse(busy_background(kind), (0.2, 0.25))
    rules = by_rule(anchor_checklist(normalize_image(encode(im, "JPEG", quality=95)).data))
    assert rules["Person in the middle"].level == "warn", rules["Person in the middle"].text
    assert rules["Plain background"].level == "warn", rules["Plain background"].text


def test_checklist_busy_shapes_background_warns() -> None:
    im = portrait(bg=busy_background("shapes"))
    rules = by_rule(anchor_checklist(normalize_image(encode(im, "JPEG", quality=95)).data))
    assert rules["Plain background"].level == "warn"


def test_checklist_off_centre_subject_on_plain_background() -> None:
    im = portrait(centre=(0.2, 0.3))
    rules = by_rule(anchor_checklist(normalize_image(encode(im, "JPEG", quality=95)).data))
    assert rules["Person in the middle"].level == "warn"
    assert "off to the left" in rules["Person in the middle"].text
    assert rules["Plain background"].level == "pass"


def test_checklist_gradient_background_is_calm() -> None:
    g = Image.linear_gradient("L").resize((1200, 1500))
    bg = Image.merge("RGB", (g, ImageOps.invert(g), g))
    rules = by_rule(anchor_checklist(normalize_image(encode(portrait(bg=bg), "PNG")).data))
    assert rules["Plain background"].level == "pass"
    assert rules["Person in the middle"].level == "pass"


def test_checklist_small_and_extreme_images() -> None:
    norm = normalize_image(encode(portrait((400, 400)), "PNG"))
    rules = by_rule(anchor_checklist(norm.data))
    assert rules["Sharpness"].level == "warn"
    assert "400×400" in rules["Sharpness"].text and "1024 px" in rules["Sharpness"].text
    assert rules["Shape"].level == "pass"
    wide = normalize_image(encode(scene((2400, 800)), "PNG"))
    assert by_rule(anchor_checklist(wide.data))["Shape"].level == "warn"
    blank = normalize_image(encode(Image.new("RGB", (1024, 1024), "white"), "PNG"))
    rules = by_rule(anchor_checklist(blank.data))
    assert rules["Person in the middle"].level == "warn"
    assert rules["Plain background"].level == "pass"


# ------------------------------------------------------------------------------------------------ crop


@pytest.mark.parametrize(
    ("ratio", "expected"), [((16, 9), (2048, 1152)), ((9, 16), (768, 1365)), ((1, 1), (1365, 1365))]
)
def test_crop_to_aspect(ratio: tuple[int, int], expected: tuple[int, int]) -> None:
    norm = normalize_image(encode(scene((3000, 2000)), "PNG"))
    assert (norm.width, norm.height) == (2048, 1365)
    out = crop_to_aspect(norm.data, ratio)
    assert image_size(out) == expected
    assert out == crop_to_aspect(norm.data, ratio)  # deterministic
    im = Image.open(io.BytesIO(out))
    assert im.format == "JPEG" and not im.getexif()


def test_crop_to_aspect_is_centred_and_noop_when_already_there() -> None:
    im = Image.new("RGB", (1600, 900), "white")
    ImageDraw.Draw(im).rectangle((0, 0, 349, 899), fill="black")
    ImageDraw.Draw(im).rectangle((1250, 0, 1599, 899), fill="black")
    data = normalize_image(encode(im, "PNG")).data
    assert crop_to_aspect(data, (16, 9)) is data
    square = Image.open(io.BytesIO(crop_to_aspect(data, (1, 1))))
    assert square.size == (900, 900)
    assert square.getpixel((450, 450))[0] > 240 and square.getpixel((2, 450))[0] > 240  # black bars cut off


def test_image_size() -> None:
    assert image_size(encode(scene((640, 480)), "PNG")) == (640, 480)


# ----------------------------------------------------------------------------------------- start images


def _published_start_limits() -> dict:
    """The `x-fal` limits of Kling v3 Pro's `start_image_url`, from fal's published schema in ../shared."""
    name = "fal-ai_kling-video_v3_pro_image-to-video.platform-api.json"
    root = Path(__file__).resolve().parents[2]
    # CI lays shared/ beside the repo root; a worktree sits one level deeper (work/wt/<name> beside work/shared).
    for base in (root.parent, *root.parents[1:]):
        spec = base / "shared" / "specs" / "fal" / name
        if spec.exists():
            break
    else:
        pytest.skip(f"fal's published schema is not here (looked for shared/specs/fal/{name} above {root})")
    doc = json.loads(spec.read_text(encoding="utf-8"))
    for model in doc["models"]:
        schemas = model["openapi"]["components"]["schemas"]
        for schema in schemas.values():
            prop = schema.get("properties", {}).get("start_image_url")
            if prop and "x-fal" in prop:
                return prop["x-fal"]
    raise AssertionError("no x-fal block for start_image_url in the published schema")


ANCHOR_SHAPES = [
    (300, 300),
    (300, 533),
    (533, 300),
    (400, 600),
    (600, 400),
    (320, 800),
    (800, 320),
    (1024, 1536),
    (2048, 2048),
    (2048, 820),
    (820, 2048),
    (1400, 300),  # older anchors stored before the ratio check: 4.7:1 and 1:6.8
    (300, 2048),
]


def test_every_start_image_meets_the_published_limits() -> None:
    limits = _published_start_limits()
    assert (KLING_V3_START.min_side, KLING_V3_START.max_bytes) == (
        max(limits["min_width"], limits["min_height"]),
        limits["max_file_size"],
    )
    assert (KLING_V3_START.min_ratio, KLING_V3_START.max_ratio) == (
        limits["min_aspect_ratio"],
        limits["max_aspect_ratio"],
    )
    for shape in ANCHOR_SHAPES:
        source = encode(scene(shape), "JPEG", quality=95)
        for aspect in (None, (16, 9), (9, 16), (1, 1)):
            out = fit_start_image(source, aspect)
            w, h = image_size(out)
            where = f"anchor {shape}, aspect {aspect}: start image {w}×{h}, {len(out)} bytes"
            assert w >= limits["min_width"] and h >= limits["min_height"], where
            assert limits["min_aspect_ratio"] <= w / h <= limits["max_aspect_ratio"], where
            assert len(out) <= limits["max_file_size"], where
            if aspect is not None:
                assert abs((w / h) / (aspect[0] / aspect[1]) - 1) <= 0.01, where
            with Image.open(io.BytesIO(out)) as im:
                assert im.format == "JPEG"
                im.load()


def test_small_anchor_cropped_to_16_9_is_upscaled_not_sent_under_300() -> None:
    source = normalize_image(encode(scene((400, 600)), "PNG")).data
    assert image_size(crop_to_aspect(source, (16, 9))) == (400, 225)  # the old, refused start image
    out = fit_start_image(source, (16, 9))
    assert image_size(out) == (534, 300)
    assert fit_start_image(source, (16, 9)) == out  # deterministic


def test_fitting_anchor_is_sent_as_it_is() -> None:
    source = normalize_image(encode(scene((1200, 1500)), "PNG")).data
    assert fit_start_image(source) is source
    assert fit_start_image(source, (4, 5)) is source


def test_start_image_over_the_byte_limit_is_reencoded_below_it() -> None:
    noisy = Image.frombytes("RGB", (2048, 2048), random.Random(5).randbytes(2048 * 2048 * 3))
    source = encode(noisy, "JPEG", quality=95)
    limits = StartImageLimits(min_side=300, min_ratio=0.4, max_ratio=2.5, max_bytes=len(source) // 4)
    out = fit_start_image(source, None, limits)
    assert len(out) <= limits.max_bytes
    assert min(image_size(out)) >= 300


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        ((3100, 1000), "This image is 3.1:1"),
        ((1000, 2600), "This image is 1:2.6"),
        ((2510, 1000), "This image is 2.6:1"),
    ],
)
def test_shape_outside_the_limits_is_explained(size: tuple[int, int], expected: str) -> None:
    problem = start_image_problem(*size)
    assert problem == (
        f"{expected}; fal's video models need between 1:2.5 and 2.5:1. Crop it closer to the character."
    )
    assert start_image_problem(2500, 1000) is None and start_image_problem(400, 1000) is None


# ------------------------------------------------------------------------------------ output checks


def test_check_image_accepts_real_images_from_bytes_and_path(tmp_path: Path) -> None:
    png = encode(scene((640, 480)), "PNG")
    assert check_image(png) == (640, 480, "PNG")
    path = tmp_path / "out.webp"
    path.write_bytes(encode(scene((500, 300)), "WEBP", quality=90))
    assert check_image(path) == (500, 300, "WEBP")


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda: b"", Reason.EMPTY),
        (lambda: b"<!DOCTYPE html><html><body>Internal Server Error</body></html>", Reason.ERROR_PAGE),
        (lambda: b'{"detail": "Not Found"}', Reason.ERROR_PAGE),
        (lambda: encode(scene(), "PNG")[:3000], Reason.TRUNCATED),
        (lambda: hand_png(20000, 20000, bit_depth=1, colour_type=0, row=bytes(2500)), Reason.ABSURD_SIZE),
        (lambda: encode(scene(), "PDF"), Reason.WRONG_KIND),
        (lambda: bytes(range(256)) * 10, Reason.WRONG_KIND),
    ],
    ids=["empty", "html", "json", "truncated-png", "bomb", "pdf", "junk"],
)
def test_check_image_refuses_bad_outputs(make, reason: Reason) -> None:
    with pytest.raises(BadOutput) as err:
        check_image(make())
    assert err.value.reason == reason, err.value


def test_check_image_size_cap(tmp_path: Path) -> None:
    path = tmp_path / "big.png"
    path.write_bytes(encode(scene(), "PNG"))
    with pytest.raises(BadOutput) as err:
        check_image(path, max_bytes=1000)
    assert err.value.reason == Reason.TOO_LARGE
    with pytest.raises(BadOutput) as err:
        check_image(path.read_bytes(), max_bytes=1000)
    assert err.value.reason == Reason.TOO_LARGE


# ----------------------------------------------------------------------------------------- contact sheet


def test_contact_sheet_puts_numbered_candidates_side_by_side() -> None:
    colours = [(200, 30, 30), (30, 200, 30), (30, 30, 200), (220, 220, 40)]
    shapes = [(600, 800), (800, 600), (500, 500), (400, 1000)]
    candidates = [encode(Image.new("RGB", s, c), "PNG") for s, c in zip(shapes, colours, strict=True)]
    sheet = contact_sheet(candidates, tile_side=256, gap=8)
    assert (sheet.columns, sheet.rows) == (4, 1)
    assert [t.number for t in sheet.tiles] == [1, 2, 3, 4]
    with Image.open(io.BytesIO(sheet.data)) as im:
        assert im.format == "PNG" and im.size == (sheet.width, sheet.height) == (4 * 256 + 5 * 8, 256 + 16)
        im = im.convert("RGB")
        for tile, colour in zip(sheet.tiles, colours, strict=True):
            assert max(tile.width, tile.height) == 256
            centre = im.getpixel((tile.left + tile.width // 2, tile.top + tile.height * 3 // 4))
            assert all(abs(a - b) <= 3 for a, b in zip(centre, colour, strict=True))
            # the white number badge sits in the tile's top-left corner
            assert im.getpixel((tile.left + 6, tile.top + 12)) != centre
        # the tiles do not overlap
        lefts = [t.left for t in sheet.tiles]
        assert lefts == sorted(lefts)
    six = contact_sheet([candidates[0]] * 6, tile_side=128, fmt="JPEG")
    assert (six.columns, six.rows, six.format) == (3, 2, "JPEG")
    assert [t.number for t in six.tiles] == [1, 2, 3, 4, 5, 6]
    with pytest.raises(ValueError):
        contact_sheet([])
