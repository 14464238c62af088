"""Normalisation: any accepted upload becomes one clean, deterministic anchor JPEG.

Refuses bombs before decoding (header size via `bot.media.intake`; a 16-bit picture may have fewer pixels than an
8-bit one), decodes with Pillow, takes the first frame, shrinks a picture over twice the output size by a whole
factor while it is still in its own mode (a JPEG is decoded at 1/2, 1/4 or 1/8 size; anything else is averaged
over k×k blocks), turns it upright from its EXIF orientation, converts colour profiles, CMYK, 16-bit and alpha to
8-bit sRGB, scales it down, and writes a metadata-free JPEG (q95, 4:4:4) whose bytes depend only on the pixels.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import math
import struct
from dataclasses import dataclass

from PIL import Image, ImageOps

from bot.errors import ImageRejected
from bot.media.intake import (
    MAX_DECODED_BYTES,
    MAX_PIXELS,
    MAX_UPLOAD_BYTES,
    bomb_refusal,
    check_length,
    depth_refusal,
    header_size,
    kind_phrase,
    pixel_limit,
    sniff,
)

JPEG_QUALITY = 95
# Modes whose samples Image.reduce can average (a palette index or a 1-bit pixel cannot be).
_REDUCIBLE_MODES = frozenset({"L", "LA", "RGB", "RGBA", "CMYK", "I", "F"})
_SHRINK_BAND_ROWS = 128  # output rows shrunk at a time


@dataclass(frozen=True)
class NormalizedImage:
    """A normalised anchor JPEG and what was done to get it."""

    data: bytes
    width: int
    height: int
    sha256: str
    source_format: str
    notes: tuple[str, ...]


def _format_label(fmt: str) -> str:
    """The format's name as a member knows it ("WebP", "PNG", ...)."""
    return "WebP" if fmt == "WEBP" else fmt


def _metadata_parts(im: Image.Image) -> list[str]:
    """The kinds of metadata the file carries (EXIF, GPS, XMP, comments, text), all dropped from the anchor."""
    parts: list[str] = []
    info = im.info
    try:
        exif = im.getexif()
    except Exception:  # a broken EXIF block is still metadata we drop
        exif = None
    if info.get("exif") or (exif is not None and len(exif) > 0):
        parts.append("EXIF")
        gps = None
        if exif is not None:
            try:
                gps = exif.get_ifd(0x8825)
            except Exception:
                gps = None
        if gps or (exif is not None and 0x8825 in exif):
            parts.append("GPS")
    if info.get("xmp") or info.get("XML:com.adobe.xmp"):
        parts.append("XMP")
    if info.get("comment"):
        parts.append("comments")
    text = getattr(im, "text", None) if im.format == "PNG" else None
    if text and any(k != "XML:com.adobe.xmp" for k in text):
        parts.append("text")
    return parts


def _is_srgb(profile: object) -> bool:
    """True when an ICC profile's description names sRGB."""
    from PIL import ImageCms

    try:
        desc = ImageCms.getProfileDescription(profile) or ""  # type: ignore[arg-type]
    except Exception:
        return False
    return "srgb" in desc.lower().replace(" ", "").replace("-", "")


def _apply_icc(im: Image.Image, icc: bytes | None) -> tuple[Image.Image, bool]:
    """(pixels converted from their embedded ICC profile to sRGB, True), or (untouched, False) when unusable."""
    if not icc or im.mode not in ("RGB", "CMYK"):
        return im, False
    try:
        from PIL import ImageCms

        src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        space = src.profile.xcolor_space.strip().upper()
        if space != im.mode:
            return im, False
        if im.mode == "RGB" and _is_srgb(src):
            return im, False
        dst = ImageCms.createProfile("sRGB")
        out = ImageCms.profileToProfile(im, src, dst, outputMode="RGB")
    except Exception:
        return im, False
    if out is None:
        return im, False
    return out, True


def _has_16bit_samples(im: Image.Image) -> bool:
    """True when Pillow reads 16-bit samples and narrows them (e.g. a 48-bit PNG opens as "RGB;16B")."""
    return any(";16" in str(tile.args) for tile in getattr(im, "tile", ()) or ())


def _to_rgb8(im: Image.Image, notes: list[str], sixteen_bit: bool) -> Image.Image:
    """8-bit RGB pixels: 16-bit and float samples scaled down, CMYK converted, alpha flattened onto white."""
    if im.mode.startswith("I;16") or im.mode in ("I", "F"):
        sixteen_bit = True
        im = _narrow_to_l8(im)
    if sixteen_bit:
        notes.append("Converted 16-bit colour to 8-bit.")
    mode = im.mode
    if mode == "CMYK":
        return im.convert("RGB")
    if mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in im.info:
        return _flatten_alpha(im, notes)
    return im.convert("RGB") if mode != "RGB" else im


def _narrow_to_l8(im: Image.Image) -> Image.Image:
    """16-bit or float greyscale as 8-bit "L", scaled rather than letting convert() clip everything above 255."""
    mode = im.mode
    if mode.startswith("I;16"):
        im = im.convert("I")
    scale = 1 / 256 if mode != "F" else 255.0
    return im.point(lambda v: v * scale).convert("L")


def _flatten_alpha(im: Image.Image, notes: list[str]) -> Image.Image:
    """Composite a picture with transparency onto white (noted when some pixel is not opaque)."""
    rgba = im.convert("RGBA")
    alpha_min = rgba.getchannel("A").getextrema()[0]  # one band: (min, max)
    if isinstance(alpha_min, int | float) and alpha_min < 255:
        notes.append("Filled transparent areas with white.")
    background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(background, rgba).convert("RGB")


def encode_jpeg(im: Image.Image, quality: int = JPEG_QUALITY) -> bytes:
    """Write `im` as a metadata-free, deterministic baseline JPEG (4:4:4)."""
    # A fresh image without .info so nothing (comment, ICC, EXIF, DPI) is carried over by the encoder.
    clean = Image.new("RGB", im.size)
    clean.paste(im)
    buf = io.BytesIO()
    try:
        clean.save(buf, "JPEG", quality=quality, optimize=True, subsampling=0, progressive=False)
    except OSError:
        # Pillow sizes the optimize buffer at 1-2 bytes a pixel; very noisy pictures need more. Without
        # optimize libjpeg streams, so the same pixels still give the same bytes.
        buf = io.BytesIO()
        clean.save(buf, "JPEG", quality=quality, optimize=False, subsampling=0, progressive=False)
    return buf.getvalue()


def normalize_image(
    data: bytes,
    *,
    max_bytes: int = MAX_UPLOAD_BYTES,
    max_pixels: int = MAX_PIXELS,
    min_side: int = 300,
    max_side: int = 2048,
) -> NormalizedImage:
    """Turn uploaded bytes into the anchor JPEG, or raise `ImageRejected` with one polite sentence."""
    check_length(data, max_bytes=max_bytes)
    fmt = _accepted_format(data)
    limit = pixel_limit(max_pixels)
    _refuse_declared_bomb(data, limit)
    notes: list[str] = []
    with _open(data, fmt, limit) as im:
        decoded = _decode(im, fmt, limit, notes, max_side)
    _refuse_too_small(decoded.full_size, min_side)
    work = _to_srgb8(decoded, notes)
    work = _scale_down(work, max_side, notes, decoded.full_size)
    if decoded.metadata:
        notes.append(f"Removed photo metadata ({'/'.join(decoded.metadata)}).")
    out = encode_jpeg(work)
    return NormalizedImage(
        data=out,
        width=work.size[0],
        height=work.size[1],
        sha256=hashlib.sha256(out).hexdigest(),
        source_format=fmt,
        notes=tuple(notes),
    )


@dataclass
class _Decoded:
    """The first frame, upright and in memory, with what was read from the file before it was closed."""

    image: Image.Image  # already shrunk by a whole factor when the picture is over twice `max_side`
    icc: bytes | None
    source_mode: str
    narrowed_16bit: bool
    metadata: list[str]
    full_size: tuple[int, int]  # the picture's own size, upright


def _accepted_format(data: bytes) -> str:
    """The Pillow format of an upload we accept (PNG, JPEG, WebP, GIF); refuse anything else by what it is."""
    fmt, kind = sniff(data)
    if fmt is not None:
        return fmt
    if kind is None:
        raise ImageRejected(
            "That file isn't a PNG, JPEG, WebP or GIF image I can read; "
            "export it as PNG or JPEG and upload it again."
        )
    raise ImageRejected(
        f"That file is really {kind_phrase(kind)}, not a PNG, JPEG or WebP image; "
        "export it as PNG or JPEG and upload it again."
    )


def _refuse_declared_bomb(data: bytes, limit: int) -> None:
    """Refuse a picture whose header declares more pixels than `limit`, before anything is decoded."""
    declared = header_size(data)
    if declared is not None and declared[0] * declared[1] > limit:
        raise bomb_refusal(declared[0], declared[1], limit)


def _open(data: bytes, fmt: str, limit: int) -> Image.Image:
    """Open (not decode) the upload as `fmt`; a header Pillow cannot read is a damaged file."""
    try:
        return Image.open(io.BytesIO(data), formats=[fmt])
    except Image.DecompressionBombError as exc:
        raise ImageRejected(
            f"That image has too many pixels to open safely; upload a PNG, JPEG or WebP under "
            f"{limit / 1e6:.0f} megapixels."
        ) from exc
    except Exception as exc:
        raise ImageRejected(
            f"That image is damaged or incomplete (the {_format_label(fmt)} header can't be read); "
            "re-export it and upload again."
        ) from exc


def _decode(im: Image.Image, fmt: str, limit: int, notes: list[str], max_side: int) -> _Decoded:
    """Check the size, decode the first frame (shrunk by a whole factor when it is over twice `max_side`) and
    turn it upright, keeping what the file says about it."""
    narrowed_16bit = _has_16bit_samples(im)  # read before load(), which empties im.tile
    _refuse_bad_size(im, limit)
    _refuse_deep(im, narrowed_16bit)
    # A JPEG with more than one picture is an MPO: a phone's depth or gain map, never an animation.
    if fmt != "JPEG" and _is_animated(im, fmt):
        notes.append(f"Used the first frame of the animated {_format_label(fmt)}.")
    full_size = im.size
    if fmt == "JPEG":
        _draft(im, max_side)
    _load_first_frame(im, fmt, limit)
    shrunk = _shrink(im, max_side)
    image = _upright(shrunk, notes)
    turned = image.size != shrunk.size  # a quarter turn swapped the sides
    return _Decoded(
        metadata=_metadata_parts(im),
        icc=im.info.get("icc_profile"),
        source_mode=im.mode,
        narrowed_16bit=narrowed_16bit,
        image=image,
        full_size=(full_size[1], full_size[0]) if turned else full_size,
    )


def _refuse_deep(im: Image.Image, narrowed_16bit: bool) -> None:
    """Refuse a picture whose samples (16 bits a channel: twice an 8-bit picture's) exceed MAX_DECODED_BYTES."""
    mode = im.mode
    sample_bytes = 2 if narrowed_16bit or mode.startswith("I;16") else 4 if mode in ("I", "F") else 1
    bands = 1 if mode.startswith("I;16") else len(im.getbands())
    width, height = im.size
    limit = MAX_DECODED_BYTES // (bands * sample_bytes)
    if width * height > limit:
        raise depth_refusal(width, height, 8 * sample_bytes, "A" in mode, limit)


def _draft(im: Image.Image, max_side: int) -> None:
    """Have a JPEG over twice `max_side` decoded at 1/2, 1/4 or 1/8 of its size (never under `max_side`)."""
    w, h = im.size
    if max(w, h) < 2 * max_side:
        return
    scale = max_side / max(w, h)
    im.draft(im.mode, (max(1, math.ceil(w * scale)), max(1, math.ceil(h * scale))))


def _shrink(im: Image.Image, max_side: int) -> Image.Image:
    """`im` averaged over k×k blocks (k whole, its long side still at least `max_side`), in its own mode: what
    follows (alpha, 16-bit, colour profile, rotation) then works on a k²-times smaller picture. `im` itself when
    it is under twice `max_side`, or its mode does not average (a palette, a colour key)."""
    factor = max(im.size) // max_side
    if factor < 2 or im.mode not in _REDUCIBLE_MODES or "transparency" in im.info:
        return im
    # In bands of whole blocks: reduce() premultiplies RGBA into a full-size copy first (160 MB at 40 MP).
    w, h = im.size
    out = Image.new(im.mode, (-(-w // factor), -(-h // factor)))
    step = factor * _SHRINK_BAND_ROWS
    for top in range(0, h, step):
        out.paste(im.crop((0, top, w, min(h, top + step))).reduce(factor), (0, top // factor))
    with contextlib.suppress(Exception):  # a damaged EXIF block: the pixels as they are (as `_upright` does)
        out.info["exif"] = im.getexif().tobytes()  # a new picture has no EXIF: keep the orientation
    return out


def _is_animated(im: Image.Image, fmt: str) -> bool:
    """Whether the file has more than one frame. Pillow finds out by reading the second frame's header, and a
    garbled one raises whatever its parser hits (a struct.error for a GIF cut inside it): a damaged file."""
    try:
        return bool(getattr(im, "is_animated", False)) and getattr(im, "n_frames", 1) > 1
    except Exception as exc:
        raise ImageRejected(
            f"That image is damaged or incomplete (its {_format_label(fmt)} frames can't be read); "
            "re-export it and upload again."
        ) from exc


def _refuse_bad_size(im: Image.Image, limit: int) -> None:
    """Refuse a frame over the pixel limit (a decompression bomb) or with a side of zero."""
    width, height = im.size
    if width * height > limit:
        raise bomb_refusal(width, height, limit)
    if width <= 0 or height <= 0:
        raise ImageRejected(
            f"That image is damaged or incomplete (it says it is {width}×{height}); "
            "re-export it and upload again."
        )


def _load_first_frame(im: Image.Image, fmt: str, limit: int) -> None:
    """Decode the first frame; a file that ends early or does not decode is refused politely."""
    try:
        im.seek(0)
        im.load()
    except Image.DecompressionBombError as exc:
        raise bomb_refusal(im.size[0], im.size[1], limit) from exc
    except (OSError, SyntaxError, ValueError, EOFError, struct.error, IndexError, MemoryError) as exc:
        message = str(exc).lower()
        if isinstance(exc, EOFError) or "truncated" in message or "end of" in message:
            detail = "the file ends early"
        else:
            detail = f"the {_format_label(fmt)} data can't be decoded"
        raise ImageRejected(
            f"That image is damaged or incomplete ({detail}); re-export it and upload again."
        ) from exc


def _upright(im: Image.Image, notes: list[str]) -> Image.Image:
    """An independent in-memory copy turned upright from its EXIF orientation (as it is when that fails)."""
    try:
        exif = im.getexif()
        orientation = exif.get(0x0112, 1) if exif is not None else 1
    except Exception:
        orientation = 1
    if orientation not in (2, 3, 4, 5, 6, 7, 8):
        return im.copy()
    try:
        upright = ImageOps.exif_transpose(im)
    except Exception:
        return im.copy()
    notes.append("Rotated upright using the photo's EXIF orientation.")
    return upright


def _to_srgb8(decoded: _Decoded, notes: list[str]) -> Image.Image:
    """8-bit sRGB pixels: the embedded colour profile applied, then CMYK, 16-bit and alpha converted."""
    work = decoded.image
    converted_icc = False
    if work.mode in ("RGB", "CMYK"):
        work, converted_icc = _apply_icc(work, decoded.icc)
    if decoded.source_mode == "CMYK":
        notes.append("Converted from CMYK to RGB.")
    sixteen_bit = decoded.narrowed_16bit and not decoded.source_mode.startswith("I")
    work = _to_rgb8(work, notes, sixteen_bit=sixteen_bit)
    if converted_icc:
        notes.append("Converted colours from the embedded colour profile to sRGB.")
    return work


def _refuse_too_small(size: tuple[int, int], min_side: int) -> None:
    """Refuse a picture whose short side is under `min_side` pixels."""
    w, h = size
    if min(w, h) < min_side:
        raise ImageRejected(
            f"That image is {w}×{h}; anchors need at least {min_side} px on the short side, "
            "ideally 1024 or more."
        )


def _scale_down(im: Image.Image, max_side: int, notes: list[str], full_size: tuple[int, int]) -> Image.Image:
    """Shrink (Lanczos) so the long side is at most `max_side`; smaller pictures are left as they are. `im` may
    be already shrunk from `full_size` (the picture's own size, which the note names)."""
    w, h = full_size
    if max(w, h) <= max_side:
        return im
    scale = max_side / max(w, h)
    new_size = (max(1, round(w * scale)), max(1, round(h * scale)))
    notes.append(f"Scaled down from {w}×{h} to {new_size[0]}×{new_size[1]}.")
    if im.size == new_size:
        return im
    return im.resize(new_size, Image.Resampling.LANCZOS, reducing_gap=3.0)
