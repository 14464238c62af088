"""Anchor images: checking uploads, normalising them to a clean JPEG, and judging them as anchors.

Pure domain code: bytes in, bytes (or small value objects) out. No Discord, no database, no global state
changes (Pillow's module-level limits are read, never written).

The pipeline for an upload is:

1. `check_declared` on what Discord tells us before downloading (name, content type, size);
2. `normalize_image` on the downloaded bytes: sniff the real format, refuse bombs before decoding, decode,
   take the first frame, orient, convert to 8-bit RGB, check the size, scale down, re-encode as a
   metadata-free, deterministic JPEG;
3. `anchor_checklist` on the normalised bytes to tell the user how good an anchor it is.
"""

from __future__ import annotations

import hashlib
import io
import math
import re
import struct
from dataclasses import dataclass
from pathlib import PurePath

from PIL import Image, ImageChops, ImageDraw, ImageFilter, ImageOps, ImageStat

from bot.errors import ImageRejected

MAX_UPLOAD_BYTES = 20 * 1024 * 1024

ACCEPTED_FORMATS = ("PNG", "JPEG", "WEBP", "GIF")
_WHAT_TO_UPLOAD = "a PNG, JPEG or WebP"
_MIB = 1024 * 1024

JPEG_QUALITY = 95

# --------------------------------------------------------------------------------------------------------
# Format names and sniffing
# --------------------------------------------------------------------------------------------------------

# kind -> (article, noun) used in refusals, e.g. ("a", "TIFF image") -> "a 48 MB TIFF image".
_KINDS: dict[str, tuple[str, str]] = {
    "svg": ("an", "SVG drawing"),
    "tiff": ("a", "TIFF image"),
    "pdf": ("a", "PDF document"),
    "heic": ("a", "HEIC photo"),
    "avif": ("an", "AVIF image"),
    "bmp": ("a", "BMP image"),
    "ico": ("an", "icon file"),
    "psd": ("a", "Photoshop file"),
    "raw": ("a", "camera RAW file"),
    "jxl": ("a", "JPEG XL image"),
    "jp2": ("a", "JPEG 2000 image"),
    "exr": ("an", "OpenEXR image"),
    "html": ("a", "web page"),
    "xml": ("an", "XML file"),
    "text": ("a", "text file"),
    "video": ("a", "video"),
    "audio": ("an", "audio file"),
    "archive": ("an", "archive"),
    "document": ("a", "document"),
    "program": ("a", "program"),
}

_BAD_EXTENSIONS: dict[str, str] = {
    "svg": "svg",
    "svgz": "svg",
    "tif": "tiff",
    "tiff": "tiff",
    "pdf": "pdf",
    "eps": "document",
    "ai": "document",
    "heic": "heic",
    "heif": "heic",
    "hif": "heic",
    "avif": "avif",
    "bmp": "bmp",
    "dib": "bmp",
    "ico": "ico",
    "cur": "ico",
    "icns": "ico",
    "psd": "psd",
    "psb": "psd",
    "xcf": "document",
    "kra": "document",
    "dng": "raw",
    "cr2": "raw",
    "cr3": "raw",
    "nef": "raw",
    "arw": "raw",
    "orf": "raw",
    "rw2": "raw",
    "raf": "raw",
    "srw": "raw",
    "pef": "raw",
    "jxl": "jxl",
    "jp2": "jp2",
    "j2k": "jp2",
    "jpx": "jp2",
    "exr": "exr",
    "hdr": "exr",
    "html": "html",
    "htm": "html",
    "xml": "xml",
    "txt": "text",
    "md": "text",
    "csv": "text",
    "json": "text",
    "log": "text",
    "rtf": "document",
    "doc": "document",
    "docx": "document",
    "odt": "document",
    "pptx": "document",
    "xlsx": "document",
    "mp4": "video",
    "mov": "video",
    "m4v": "video",
    "webm": "video",
    "mkv": "video",
    "avi": "video",
    "wmv": "video",
    "flv": "video",
    "3gp": "video",
    "mp3": "audio",
    "wav": "audio",
    "ogg": "audio",
    "oga": "audio",
    "flac": "audio",
    "m4a": "audio",
    "aac": "audio",
    "opus": "audio",
    "zip": "archive",
    "rar": "archive",
    "7z": "archive",
    "gz": "archive",
    "tar": "archive",
    "exe": "program",
    "dll": "program",
    "apk": "program",
    "dmg": "program",
}

_BAD_CONTENT_TYPES: dict[str, str] = {
    "image/svg+xml": "svg",
    "image/tiff": "tiff",
    "image/tiff-fx": "tiff",
    "application/pdf": "pdf",
    "application/postscript": "document",
    "image/heic": "heic",
    "image/heif": "heic",
    "image/heic-sequence": "heic",
    "image/heif-sequence": "heic",
    "image/avif": "avif",
    "image/bmp": "bmp",
    "image/x-bmp": "bmp",
    "image/x-ms-bmp": "bmp",
    "image/x-icon": "ico",
    "image/vnd.microsoft.icon": "ico",
    "image/vnd.adobe.photoshop": "psd",
    "image/x-photoshop": "psd",
    "image/x-adobe-dng": "raw",
    "image/x-canon-cr2": "raw",
    "image/x-nikon-nef": "raw",
    "image/jxl": "jxl",
    "image/jp2": "jp2",
    "image/x-exr": "exr",
    "text/html": "html",
    "application/xhtml+xml": "html",
    "application/xml": "xml",
    "text/xml": "xml",
    "application/json": "text",
    "application/zip": "archive",
    "application/x-7z-compressed": "archive",
    "application/x-rar-compressed": "archive",
    "application/vnd.rar": "archive",
    "application/gzip": "archive",
    "application/x-tar": "archive",
    "application/msword": "document",
}

_OK_CONTENT_TYPES = {
    "image/png",
    "image/apng",
    "image/jpeg",
    "image/jpg",
    "image/pjpeg",
    "image/webp",
    "image/gif",
    "application/octet-stream",
    "binary/octet-stream",
}


def _mb(size: int) -> str:
    """Bytes as a short MB figure (MiB, as Discord counts), rounded up so it never looks under a limit."""
    value = math.ceil(size / _MIB * 10) / 10
    if value >= 100:
        return f"{math.ceil(value)}"
    return f"{value:.1f}".removesuffix(".0")


def _article_for_number(number: str) -> str:
    # "an 8 MB", "an 11 MB", "an 18.5 MB"; everything else takes "a".
    return "an" if number.startswith("8") or re.match(r"^1[18](\.\d)?$", number) else "a"


def _limit_text(max_bytes: int) -> str:
    return f"upload {_WHAT_TO_UPLOAD} under {_mb(max_bytes)} MB"


def _declared_kind(filename: str, content_type: str | None) -> str | None:
    ctype = (content_type or "").split(";", 1)[0].strip().lower()
    if ctype and ctype not in _OK_CONTENT_TYPES:
        if ctype in _BAD_CONTENT_TYPES:
            return _BAD_CONTENT_TYPES[ctype]
        major = ctype.split("/", 1)[0]
        if major == "text":
            return "text"
        if major in ("video", "audio"):
            return major
    ext = PurePath(filename or "").suffix.lower().lstrip(".")
    return _BAD_EXTENSIONS.get(ext)


def check_declared(
    filename: str, content_type: str | None, declared_size: int | None, *, max_bytes: int = MAX_UPLOAD_BYTES
) -> None:
    """Refuse, before downloading, an attachment whose declared size or type rules it out.

    Only clear cases are refused: an unknown extension or a generic content type is let through, because
    `normalize_image` sniffs the real format from the bytes anyway.
    """
    kind = _declared_kind(filename, content_type)
    too_big = declared_size is not None and declared_size > max_bytes
    if kind is None and not too_big:
        return
    if kind is not None:
        article, noun = _KINDS[kind]
        if too_big:
            size = _mb(declared_size or 0)
            what = f"{_article_for_number(size)} {size} MB {noun}"
        else:
            what = f"{article} {noun}"
        raise ImageRejected(f"That file is {what}; {_limit_text(max_bytes)}.")
    raise ImageRejected(f"That file is {_mb(declared_size or 0)} MB; {_limit_text(max_bytes)}.")


def _looks_like_text(head: bytes) -> bool:
    if not head:
        return False
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        # A cut in the middle of a multi-byte character at the end of the sample is fine.
        try:
            text = head[:-3].decode("utf-8")
        except UnicodeDecodeError:
            return False
    if not text:
        return False
    printable = sum(1 for ch in text if ch.isprintable() or ch in "\r\n\t\f")
    return printable / len(text) > 0.97


def _sniff(data: bytes) -> tuple[str | None, str | None]:
    """(accepted Pillow format, None) or (None, kind of what it really is, or None when unknown)."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG", None
    if data.startswith(b"\xff\xd8\xff"):
        return "JPEG", None
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF", None
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP", None
    # Everything below is refused; the point is to name it.
    if data[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return None, "tiff"
    if data.startswith(b"%PDF"):
        return None, "pdf"
    if data.startswith(b"%!PS"):
        return None, "document"
    if data[4:8] == b"ftyp":
        brand = data[8:12]
        if brand in (b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1", b"mif2"):
            return None, "heic"
        if brand in (b"avif", b"avis"):
            return None, "avif"
        if brand == b"crx ":
            return None, "raw"
        if brand in (b"M4A ", b"M4B "):
            return None, "audio"
        return None, "video"
    if data.startswith((b"\x00\x00\x00\x0cJXL \r\n\x87\n", b"\xff\x0a")):
        return None, "jxl"
    if data.startswith(b"\x00\x00\x00\x0cjP  \r\n\x87\n") or data.startswith(b"\xff\x4f\xff\x51"):
        return None, "jp2"
    if (
        data.startswith(b"BM")
        and len(data) >= 26
        and data[14:15] in (b"\x0c", b"\x28", b"\x40", b"\x6c", b"\x7c")
    ):
        return None, "bmp"
    if data.startswith(b"\x00\x00\x01\x00") or data.startswith(b"icns"):
        return None, "ico"
    if data.startswith(b"8BPS"):
        return None, "psd"
    if data.startswith(b"v/1\x01"):
        return None, "exr"
    if data.startswith(b"FUJIFILMCCD-RAW"):
        return None, "raw"
    if data[:4] == b"RIFF":
        return None, "audio" if data[8:12] == b"WAVE" else "video"
    if data.startswith(b"\x1a\x45\xdf\xa3"):
        return None, "video"
    if data.startswith((b"ID3", b"fLaC", b"OggS")):
        return None, "audio"
    if data.startswith((b"PK\x03\x04", b"Rar!", b"7z\xbc\xaf", b"\x1f\x8b")):
        return None, "archive"
    if data.startswith((b"MZ", b"\x7fELF")):
        return None, "program"
    head = data[:4096]
    if _looks_like_text(head):
        lowered = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
        if b"<svg" in lowered:
            return None, "svg"
        if lowered.startswith((b"<!doctype html", b"<html")) or b"<html" in lowered[:512]:
            return None, "html"
        if lowered.startswith(b"<?xml"):
            return None, "xml"
        return None, "text"
    if b"<svg" in head.lower():  # e.g. UTF-16 or oddly encoded SVG
        return None, "svg"
    return None, None


# --------------------------------------------------------------------------------------------------------
# Header dimensions (read before Pillow sees the file, so bombs are refused without decoding)
# --------------------------------------------------------------------------------------------------------

_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def _header_size(data: bytes, fmt: str) -> tuple[int, int] | None:
    """Width and height as declared by the file header, or None if the header can't be read here."""
    try:
        if fmt == "PNG":
            if data[12:16] != b"IHDR":
                return None
            return struct.unpack(">II", data[16:24])
        if fmt == "GIF":
            return struct.unpack("<HH", data[6:10])
        if fmt == "WEBP":
            chunk = data[12:16]
            if chunk == b"VP8X":
                w = int.from_bytes(data[24:27], "little") + 1
                h = int.from_bytes(data[27:30], "little") + 1
                return w, h
            if chunk == b"VP8 ":
                if data[23:26] != b"\x9d\x01\x2a":
                    return None
                w, h = struct.unpack("<HH", data[26:30])
                return w & 0x3FFF, h & 0x3FFF
            if chunk == b"VP8L":
                if data[20] != 0x2F:
                    return None
                bits = int.from_bytes(data[21:25], "little")
                return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
            return None
        if fmt == "JPEG":
            i = 2
            n = len(data)
            while i + 4 <= n:
                if data[i] != 0xFF:
                    return None
                marker = data[i + 1]
                if marker == 0xFF:
                    i += 1
                    continue
                if marker == 0x01 or 0xD0 <= marker <= 0xD8:
                    i += 2
                    continue
                (seglen,) = struct.unpack(">H", data[i + 2 : i + 4])
                if marker in _JPEG_SOF:
                    h, w = struct.unpack(">HH", data[i + 5 : i + 9])
                    return w, h
                if marker in (0xDA, 0xD9):
                    return None
                i += 2 + seglen
            return None
    except (struct.error, IndexError):
        return None
    return None


def _png_bit_depth(data: bytes) -> int | None:
    if data.startswith(b"\x89PNG\r\n\x1a\n") and data[12:16] == b"IHDR" and len(data) > 24:
        return data[24]
    return None


def _pixel_limit(max_pixels: int) -> int:
    # Pillow warns above Image.MAX_IMAGE_PIXELS and refuses above twice that; we treat its warning threshold
    # as a refusal too (read, never modified, so other users of Pillow are unaffected).
    pillow_limit = Image.MAX_IMAGE_PIXELS
    return min(max_pixels, pillow_limit) if pillow_limit else max_pixels


def _refuse_bomb(width: int, height: int, limit: int) -> ImageRejected:
    return ImageRejected(
        f"That image claims to be {width}×{height} ({width * height / 1e6:.0f} megapixels), more than the "
        f"{limit / 1e6:.0f}-megapixel limit; upload a smaller PNG, JPEG or WebP."
    )


# --------------------------------------------------------------------------------------------------------
# Normalisation
# --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NormalizedImage:
    data: bytes
    width: int
    height: int
    sha256: str
    source_format: str
    notes: tuple[str, ...]


def _format_label(fmt: str) -> str:
    return "WebP" if fmt == "WEBP" else fmt


def _metadata_parts(im: Image.Image) -> list[str]:
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
    from PIL import ImageCms

    try:
        desc = ImageCms.getProfileDescription(profile) or ""  # type: ignore[arg-type]
    except Exception:
        return False
    return "srgb" in desc.lower().replace(" ", "").replace("-", "")


def _apply_icc(im: Image.Image, icc: bytes | None) -> tuple[Image.Image, bool]:
    """Convert RGB or CMYK pixels from their embedded ICC profile to sRGB (RGB out).

    Returns (image, converted). Falls back to the untouched image if the profile is unusable.
    """
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


def _to_rgb8(im: Image.Image, notes: list[str], sixteen_bit: bool) -> Image.Image:
    mode = im.mode
    if mode.startswith("I;16") or mode in ("I", "F"):
        sixteen_bit = True
        if mode.startswith("I;16"):
            im = im.convert("I")
        # 16-bit samples: scale to 8 bits instead of letting convert() clip everything above 255.
        scale = 1 / 256 if mode != "F" else 255.0
        im = im.point(lambda v: v * scale)
        im = im.convert("L")
    if sixteen_bit:
        notes.append("Converted 16-bit colour to 8-bit.")
    mode = im.mode
    has_alpha = mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in im.info
    if mode == "CMYK":
        return im.convert("RGB")
    if has_alpha:
        rgba = im.convert("RGBA")
        if rgba.getextrema()[3][0] < 255:
            notes.append("Filled transparent areas with white.")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return im.convert("RGB") if mode != "RGB" else im


def _encode_jpeg(im: Image.Image) -> bytes:
    # A fresh image without .info so nothing (comment, ICC, EXIF, DPI) is carried over by the encoder.
    clean = Image.new("RGB", im.size)
    clean.paste(im)
    buf = io.BytesIO()
    clean.save(buf, "JPEG", quality=JPEG_QUALITY, optimize=True, subsampling=0, progressive=False)
    return buf.getvalue()


def normalize_image(
    data: bytes,
    *,
    max_bytes: int = MAX_UPLOAD_BYTES,
    max_pixels: int = 40_000_000,
    min_side: int = 300,
    max_side: int = 2048,
) -> NormalizedImage:
    """Turn uploaded bytes into the anchor JPEG, or raise `ImageRejected` with one polite sentence."""
    if not data:
        raise ImageRejected(f"That file is empty; {_limit_text(max_bytes)}.")
    if len(data) > max_bytes:
        raise ImageRejected(f"That file is {_mb(len(data))} MB; {_limit_text(max_bytes)}.")

    fmt, kind = _sniff(data)
    if fmt is None:
        if kind is None:
            raise ImageRejected(
                "That file isn't a PNG, JPEG, WebP or GIF image I can read; "
                "export it as PNG or JPEG and upload it again."
            )
        article, noun = _KINDS[kind]
        raise ImageRejected(
            f"That file is really {article} {noun}, not a PNG, JPEG or WebP image; "
            "export it as PNG or JPEG and upload it again."
        )
    label = _format_label(fmt)
    limit = _pixel_limit(max_pixels)

    declared = _header_size(data, fmt)
    if declared is not None and declared[0] * declared[1] > limit:
        raise _refuse_bomb(declared[0], declared[1], limit)

    notes: list[str] = []
    try:
        im = Image.open(io.BytesIO(data), formats=[fmt])
    except Image.DecompressionBombError as exc:
        raise ImageRejected(
            f"That image has too many pixels to open safely; upload a PNG, JPEG or WebP under "
            f"{limit / 1e6:.0f} megapixels."
        ) from exc
    except Exception as exc:
        raise ImageRejected(
            f"That image is damaged or incomplete (the {label} header can't be read); "
            "re-export it and upload again."
        ) from exc

    with im:
        width, height = im.size
        if width * height > limit:
            raise _refuse_bomb(width, height, limit)
        if width <= 0 or height <= 0:
            raise ImageRejected(
                f"That image is damaged or incomplete (it says it is {width}×{height}); "
                "re-export it and upload again."
            )
        if getattr(im, "is_animated", False) and getattr(im, "n_frames", 1) > 1:
            notes.append(f"Used the first frame of the animated {label}.")
        try:
            im.seek(0)
            im.load()
        except Image.DecompressionBombError as exc:
            raise _refuse_bomb(width, height, limit) from exc
        except (OSError, SyntaxError, ValueError, EOFError, struct.error, IndexError, MemoryError) as exc:
            message = str(exc).lower()
            if isinstance(exc, EOFError) or "truncated" in message or "end of" in message:
                detail = "the file ends early"
            else:
                detail = f"the {label} data can't be decoded"
            raise ImageRejected(
                f"That image is damaged or incomplete ({detail}); re-export it and upload again."
            ) from exc

        meta = _metadata_parts(im)
        icc = im.info.get("icc_profile")
        source_mode = im.mode

        try:
            exif = im.getexif()
            orientation = exif.get(0x0112, 1) if exif is not None else 1
        except Exception:
            orientation = 1
        work: Image.Image = im
        if orientation in (2, 3, 4, 5, 6, 7, 8):
            try:
                work = ImageOps.exif_transpose(im)
                notes.append("Rotated upright using the photo's EXIF orientation.")
            except Exception:
                work = im.copy()
        else:
            work = im.copy()

    # From here on `work` is an independent in-memory image.
    converted_icc = False
    if work.mode in ("RGB", "CMYK"):
        work, converted_icc = _apply_icc(work, icc)
    if source_mode == "CMYK":
        notes.append("Converted from CMYK to RGB.")
    work = _to_rgb8(work, notes, sixteen_bit=_png_bit_depth(data) == 16 and not source_mode.startswith("I"))
    if converted_icc:
        notes.append("Converted colours from the embedded colour profile to sRGB.")

    w, h = work.size
    if min(w, h) < min_side:
        raise ImageRejected(
            f"That image is {w}×{h}; anchors need at least {min_side} px on the short side, "
            "ideally 1024 or more."
        )
    if max(w, h) > max_side:
        scale = max_side / max(w, h)
        new_size = (max(1, round(w * scale)), max(1, round(h * scale)))
        work = work.resize(new_size, Image.Resampling.LANCZOS, reducing_gap=3.0)
        notes.append(f"Scaled down from {w}×{h} to {new_size[0]}×{new_size[1]}.")

    if meta:
        notes.append(f"Removed photo metadata ({'/'.join(meta)}).")

    out = _encode_jpeg(work)
    return NormalizedImage(
        data=out,
        width=work.size[0],
        height=work.size[1],
        sha256=hashlib.sha256(out).hexdigest(),
        source_format=fmt,
        notes=tuple(notes),
    )


def image_size(data: bytes) -> tuple[int, int]:
    """(width, height) from the header, without decoding the pixels."""
    with Image.open(io.BytesIO(data)) as im:
        return im.size


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
    return _encode_jpeg(cropped)


# --------------------------------------------------------------------------------------------------------
# Anchor checklist
# --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CheckItem:
    rule: str
    status: str  # "pass" | "warn" | "info"
    reason: str


GOOD_SHORT_SIDE = 1024
ANALYSIS_SIDE = 256  # long side of the downscaled copy the pixel checks run on
BORDER_FRACTION = 0.15  # outer band that counts as "background"
EDGE_THRESHOLD = 40  # |Laplacian| (0..255) above which a pixel of the 256 px copy counts as an edge
BUSY_BORDER_DENSITY = 0.06  # border edge density above this is busy, whatever the centre does
CALM_BORDER_DENSITY = 0.02  # border edge density below this is calm, whatever the centre does
BUSY_BORDER_STDDEV = 60.0  # colour spread (mean of R/G/B std dev) that, with some edges, reads as busy
BAND_PERCENTILE = 0.6  # robust 'typical' band cell, see _band_edge_density
GRID_CELLS = 24  # cells along the long side for the subject estimate
SUBJECT_MIN_DISTANCE = 0.10  # cell "unlike the background" score needed to count as subject
BACKGROUND_KEEP = 0.7  # share of band cells kept for the refit (drops a subject touching the border)
SUBJECT_BAND_MADS = 3.0  # ...and stand out more than the band's median + 3 MAD (busy backgrounds)
EXTENT_TAIL = 0.05  # weight ignored at each end when measuring the subject's extent


def _ratio_label(w: int, h: int) -> str:
    common = {
        (1, 1): "1:1",
        (4, 5): "4:5",
        (3, 4): "3:4",
        (2, 3): "2:3",
        (9, 16): "9:16",
        (5, 4): "5:4",
        (4, 3): "4:3",
        (3, 2): "3:2",
        (16, 9): "16:9",
    }
    r = w / h
    for (a, b), label in common.items():
        if abs(r / (a / b) - 1) <= 0.02:
            return label
    return f"{r:.2f}:1"


def _edges(gray: Image.Image) -> Image.Image:
    """|Laplacian| of a grayscale image, with the 1 px frame (which Pillow leaves unfiltered) removed."""
    pos = gray.filter(ImageFilter.FIND_EDGES)
    neg = ImageOps.invert(gray).filter(ImageFilter.FIND_EDGES)
    mag = ImageChops.lighter(pos, neg)
    w, h = mag.size
    return mag.crop((1, 1, w - 1, h - 1))


def _centre_mask(size: tuple[int, int]) -> Image.Image:
    """White inside the border band, black on it."""
    w, h = size
    bx, by = max(1, round(w * BORDER_FRACTION)), max(1, round(h * BORDER_FRACTION))
    mask = Image.new("L", size, 0)
    ImageDraw.Draw(mask).rectangle((bx, by, w - 1 - bx, h - 1 - by), fill=255)
    return mask


def _det3(m: list[list[float]]) -> float:
    return (
        m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1])
        - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
        + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0])
    )


def _fit_plane(points: list[tuple[float, float, tuple[int, ...]]]) -> list[tuple[float, float, float]]:
    """Least-squares f = a + b*x + c*y for each feature of `points` ((x, y, features)); [(a, b, c), ...]."""
    n = len(points)
    sx = sum(p[0] for p in points)
    sy = sum(p[1] for p in points)
    sxx = sum(p[0] * p[0] for p in points)
    syy = sum(p[1] * p[1] for p in points)
    sxy = sum(p[0] * p[1] for p in points)
    m = [[float(n), sx, sy], [sx, sxx, sxy], [sy, sxy, syy]]
    det = _det3(m)
    planes = []
    for k in range(len(points[0][2])):
        rhs = [
            sum(p[2][k] for p in points),
            sum(p[0] * p[2][k] for p in points),
            sum(p[1] * p[2][k] for p in points),
        ]
        if abs(det) < 1e-9:
            planes.append((rhs[0] / n, 0.0, 0.0))
            continue
        coef = []
        for col in range(3):  # Cramer's rule
            mm = [row[:] for row in m]
            for r in range(3):
                mm[r][col] = rhs[r]
            coef.append(_det3(mm) / det)
        planes.append((coef[0], coef[1], coef[2]))
    return planes


def _grid(size: tuple[int, int]) -> tuple[int, int, int, int]:
    """(columns, rows, band columns, band rows) of the analysis grid for an image of `size`."""
    w, h = size
    gw = GRID_CELLS if w >= h else max(6, round(GRID_CELLS * w / h))
    gh = GRID_CELLS if h >= w else max(6, round(GRID_CELLS * h / w))
    return gw, gh, max(1, round(gw * BORDER_FRACTION)), max(1, round(gh * BORDER_FRACTION))


def _band_cells(gw: int, gh: int, bx: int, by: int) -> list[int]:
    return [
        y * gw + x for y in range(gh) for x in range(gw) if x < bx or x >= gw - bx or y < by or y >= gh - by
    ]


def _band_edge_density(edge_bin: Image.Image) -> float:
    """Edge density of the border band, robust to a subject crossing part of it.

    The band is cut into grid cells and the BAND_PERCENTILE of their densities is returned: shoulders or hair
    over a third of the band don't make a plain wall look busy, a busy background is busy in every cell.
    """
    gw, gh, bx, by = _grid(edge_bin.size)
    cells = edge_bin.resize((gw, gh), Image.Resampling.BOX).tobytes()
    values = sorted(cells[i] for i in _band_cells(gw, gh, bx, by))
    return values[min(len(values) - 1, int(len(values) * BAND_PERCENTILE))] / 255


def _band_colour_spread(rgb: Image.Image) -> float:
    """Mean over R, G, B of the std dev of band cell colours, over the same robust share of cells."""
    gw, gh, bx, by = _grid(rgb.size)
    cells = rgb.resize((gw, gh), Image.Resampling.BOX).tobytes()
    idx = _band_cells(gw, gh, bx, by)
    spread = 0.0
    for k in range(3):
        values = [cells[3 * i + k] for i in idx]
        med = sorted(values)[len(values) // 2]
        # keep the BAND_PERCENTILE of cells closest to the median colour (drops a subject crossing the band)
        kept = sorted(values, key=lambda v: abs(v - med))[: max(2, int(len(values) * BAND_PERCENTILE))]
        mean = sum(kept) / len(kept)
        spread += math.sqrt(sum((v - mean) ** 2 for v in kept) / len(kept))
    return spread / 3


def _subject_centre(rgb: Image.Image, edge_bin: Image.Image) -> tuple[float, float, float] | None:
    """Centre of the part of the frame unlike the background, as fractions (x, y), plus its area share.

    The frame is cut into a grid of cells, each with a mean colour and an edge density. The background
    model is a plane (a + b*x + c*y per feature, so gradients and uneven light are included) fitted to the
    cells of the outer band, refitted once without the band cells it explains worst (a subject touching the
    border). A cell's score is how far it is from the model (colour distance or edge-density difference,
    each 0..1); cells above a floor (at least 0.10, and above the band's median + 3 MAD so the texture of a
    busy background doesn't count) are subject. The reported centre is the middle of the range holding the
    central 90 % of the subject weight on each axis: a head-and-shoulders portrait has most of its mass in
    the torso but is centred on its extent.
    """
    gw, gh, bx, by = _grid(rgb.size)
    colour = rgb.resize((gw, gh), Image.Resampling.BOX).tobytes()
    edges = edge_bin.resize((gw, gh), Image.Resampling.BOX).tobytes()

    cells = [
        ((x + 0.5) / gw, (y + 0.5) / gh, (colour[3 * i], colour[3 * i + 1], colour[3 * i + 2], edges[i]))
        for y in range(gh)
        for x in range(gw)
        for i in (y * gw + x,)
    ]

    def score(cell: tuple[float, float, tuple[int, ...]], planes: list[tuple[float, float, float]]) -> float:
        x, y, f = cell
        exp = [a + b * x + c * y for a, b, c in planes]
        dcol = math.sqrt((f[0] - exp[0]) ** 2 + (f[1] - exp[1]) ** 2 + (f[2] - exp[2]) ** 2) / 441.7
        dtex = abs(f[3] - exp[3]) / 255
        return max(dcol, dtex)

    border = [cells[i] for i in _band_cells(gw, gh, bx, by)]
    planes = _fit_plane(border)
    ranked = sorted(border, key=lambda c: score(c, planes))
    planes = _fit_plane(ranked[: max(3, int(len(ranked) * BACKGROUND_KEEP))])

    # Adaptive floor: a subject cell must stand out more than most of the band does, so the texture of a busy
    # background does not count as subject everywhere.
    band_scores = sorted(score(c, planes) for c in border)
    med = band_scores[len(band_scores) // 2]
    mad = sorted(abs(v - med) for v in band_scores)[len(band_scores) // 2]
    floor = max(SUBJECT_MIN_DISTANCE, med + SUBJECT_BAND_MADS * mad)
    weights = [max(0.0, score(c, planes) - floor) for c in cells]
    total = sum(weights)
    if total <= 0:
        return None
    cols = [sum(weights[y * gw + x] for y in range(gh)) for x in range(gw)]
    rows = [sum(weights[y * gw : (y + 1) * gw]) for y in range(gh)]

    def extent_mid(sums: list[float]) -> float:
        lo_t, hi_t = total * EXTENT_TAIL, total * (1 - EXTENT_TAIL)
        acc = 0.0
        lo = hi = None
        for k, v in enumerate(sums):
            before = acc
            acc += v
            if lo is None and v > 0 and acc >= lo_t:
                lo = k + (lo_t - before) / v
            if hi is None and v > 0 and acc >= hi_t:
                hi = k + (hi_t - before) / v
        lo = 0.0 if lo is None else lo
        hi = float(len(sums)) if hi is None else hi
        return (lo + hi) / 2 / len(sums)

    share = sum(1 for v in weights if v > 0) / len(weights)
    return extent_mid(cols), extent_mid(rows), share


def anchor_checklist(data: bytes) -> list[CheckItem]:
    """Judge an (ideally normalised) image as an anchor, from its pixels. Takes a few milliseconds."""
    items: list[CheckItem] = []
    with Image.open(io.BytesIO(data)) as im:
        w, h = im.size
        # JPEG draft mode decodes at 1/2, 1/4 or 1/8 size directly: much faster than a full decode.
        im.draft("RGB", (ANALYSIS_SIDE, ANALYSIS_SIDE))
        small = im.convert("RGB")
    small.thumbnail((ANALYSIS_SIDE, ANALYSIS_SIDE), Image.Resampling.BILINEAR)

    short = min(w, h)
    if short >= GOOD_SHORT_SIDE:
        items.append(
            CheckItem("Resolution", "pass", f"{w}×{h}; the short side is {short} px (1024 or more).")
        )
    else:
        items.append(
            CheckItem(
                "Resolution",
                "warn",
                f"{w}×{h}; the short side is only {short} px, and 1024 px or more keeps the face sharp.",
            )
        )

    ratio = w / h
    label = _ratio_label(w, h)
    shape = "square" if abs(ratio - 1) <= 0.02 else ("portrait" if ratio < 1 else "landscape")
    if 9 / 16 * 0.99 <= ratio <= 16 / 9 * 1.01:
        items.append(CheckItem("Aspect ratio", "pass", f"{label} {shape}, within 9:16 to 16:9."))
    else:
        items.append(
            CheckItem(
                "Aspect ratio",
                "warn",
                f"{label} is {'taller than 9:16' if ratio < 1 else 'wider than 16:9'}; "
                "crop it to 9:16, 1:1 or 16:9.",
            )
        )

    gray = small.convert("L")
    edge_mag = _edges(gray)
    edge_bin = edge_mag.point(lambda v: 255 if v >= EDGE_THRESHOLD else 0)
    inner_rgb = small.crop((1, 1, small.size[0] - 1, small.size[1] - 1))

    centre = _subject_centre(inner_rgb, edge_bin)
    if centre is None:
        items.append(
            CheckItem(
                "Centred subject",
                "warn",
                "No subject stands out from the background; is anyone in the frame?",
            )
        )
    else:
        cx, cy, _share = centre
        where = f"Subject centre at {cx:.0%} × {cy:.0%} of the frame"
        if 1 / 3 <= cx <= 2 / 3 and 1 / 3 <= cy <= 2 / 3:
            items.append(CheckItem("Centred subject", "pass", f"{where} (middle third)."))
        else:
            items.append(
                CheckItem("Centred subject", "warn", f"{where}; move the subject into the middle third.")
            )

    band_density = _band_edge_density(edge_bin)
    middle = _centre_mask(edge_bin.size)
    centre_density = ImageStat.Stat(edge_bin, middle).mean[0] / 255
    band_std = _band_colour_spread(inner_rgb)
    figures = (
        f"edges on {band_density:.0%} of a typical border patch vs {centre_density:.0%} of the centre, "
        f"colour spread {band_std:.0f}"
    )
    busy = band_density > BUSY_BORDER_DENSITY or (
        band_density > CALM_BORDER_DENSITY
        and (band_density >= centre_density or band_std > BUSY_BORDER_STDDEV)
    )
    if busy:
        items.append(CheckItem("Clean background", "warn", f"Busy background: {figures}."))
    else:
        items.append(CheckItem("Clean background", "pass", f"Calm background: {figures}."))

    items.append(
        CheckItem(
            "Expression and camera",
            "info",
            "A neutral expression and an eye-level camera can't be measured yet; check them by eye.",
        )
    )
    return items
