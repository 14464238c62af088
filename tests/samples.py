"""Real image files made for the tests, good and hostile."""

from __future__ import annotations

import io
import struct
import zlib

from PIL import Image, ImageDraw


def _save(img: Image.Image, fmt: str, **params: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **params)
    return buf.getvalue()


def png_bytes(img: Image.Image) -> bytes:
    """A picture as PNG bytes, for an upload."""
    return _save(img, "PNG")


def portrait(size: tuple[int, int] = (768, 1024), *, shade: int = 90) -> Image.Image:
    """A centred face-like subject on a plain background."""
    img = Image.new("RGB", size, (226, 222, 215))
    draw = ImageDraw.Draw(img)
    w, h = size
    draw.ellipse((w * 0.3, h * 0.2, w * 0.7, h * 0.65), fill=(shade, 90, 80))
    draw.rectangle((w * 0.25, h * 0.62, w * 0.75, h), fill=(40, 60, shade))
    return img


def portrait_png(size: tuple[int, int] = (768, 1024), *, shade: int = 90) -> bytes:
    return _save(portrait(size, shade=shade), "PNG")


def text_named_png() -> bytes:
    return b"This is not an image, just some text someone renamed to .png\n" * 20


def truncated_jpeg() -> bytes:
    data = _save(portrait((800, 1000)), "JPEG", quality=90)
    return data[: len(data) // 2]


def _chunk(kind: bytes, body: bytes) -> bytes:
    return (
        struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
    )


def bomb_png(side: int = 60_000) -> bytes:
    """A tiny PNG that claims side x side 1-bit pixels (3.6 gigapixels)."""
    ihdr = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    row = b"\x00" + b"\x00" * ((side + 7) // 8)
    comp = zlib.compressobj(9)
    idat = comp.compress(row * 64) + comp.flush()
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")


def svg() -> bytes:
    return b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="800" height="800"><circle r="4"/></svg>'


def cmyk_jpeg() -> bytes:
    return _save(portrait((700, 900)).convert("CMYK"), "JPEG", quality=92)


def png_16bit() -> bytes:
    img = Image.new("I;16", (640, 800))
    draw = ImageDraw.Draw(img)
    draw.ellipse((160, 200, 480, 560), fill=40000)
    return _save(img, "PNG")


def exif_rotated_jpeg() -> bytes:
    """Landscape pixels (1000x700) tagged orientation 6: upright it is 700x1000 portrait."""
    img = portrait((1000, 700))
    exif = Image.Exif()
    exif[0x0112] = 6
    return _save(img, "JPEG", quality=92, exif=exif.tobytes())


def gps_jpeg() -> bytes:
    img = portrait((800, 1000))
    exif = Image.Exif()
    exif[0x010F] = "SecretCam"  # Make
    exif[0x0110] = "Model X"  # Model
    gps = {1: "N", 2: (52.0, 22.0, 10.0), 3: "E", 4: (4.0, 53.0, 12.0)}
    exif[0x8825] = gps
    return _save(img, "JPEG", quality=92, exif=exif.tobytes())


def animated_gif() -> bytes:
    frames = [portrait((500, 600), shade=s).convert("P") for s in (60, 150, 220)]
    return _save(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)


def busy_offcentre() -> bytes:
    """An off-centre subject on a busy background: the checklist warns."""
    import random

    rnd = random.Random(3)
    img = Image.new("RGB", (1200, 1200), (128, 128, 128))
    draw = ImageDraw.Draw(img)
    for _ in range(900):
        x, y = rnd.randrange(1200), rnd.randrange(1200)
        draw.rectangle(
            (x, y, x + rnd.randrange(8, 40), y + rnd.randrange(8, 40)),
            fill=(rnd.randrange(256), rnd.randrange(256), rnd.randrange(256)),
        )
    draw.ellipse((40, 40, 340, 420), fill=(20, 20, 20))
    return _save(img, "PNG")
