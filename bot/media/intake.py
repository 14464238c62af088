"""Upload intake: refuse what an attachment declares itself to be, and find out what its bytes really are.

What a file really is comes from `filetype` (magic numbers of a few hundred formats); its dimensions come from
its header through `imagesize`, so a decompression bomb is refused before Pillow decodes a single pixel. Text,
web pages and SVG drawings have no magic number, so a short text sniff names those.
"""

from __future__ import annotations

import io
import math
import re
from pathlib import PurePath

import filetype
import imagesize
from PIL import Image

from bot.errors import ImageRejected

MAX_UPLOAD_BYTES = 20 * 1024 * 1024
MAX_PIXELS = 40_000_000  # decoded size we accept; well under Pillow's own bomb threshold
# The pixel data a picture may decode to, counted in the file's own samples: a 40-megapixel 8-bit RGBA picture. A
# 16-bit RGBA PNG holds 8 bytes a pixel (its 40 megapixels inflate 320 MB of samples: 3 s of CPU), so it may have
# half the pixels. bench: a 1.2 MB 16-bit RGBA PNG of 6300x6300 cost 970 MB of RAM and 1.3-3.4 s to normalise.
MAX_DECODED_BYTES = MAX_PIXELS * 4

ACCEPTED_FORMATS = ("PNG", "JPEG", "WEBP", "GIF")
_WHAT_TO_UPLOAD = "a PNG, JPEG or WebP"
_MIB = 1024 * 1024

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


# filetype's extension -> accepted Pillow format.
_ACCEPTED_BY_FILETYPE = {"png": "PNG", "apng": "PNG", "jpg": "JPEG", "gif": "GIF", "webp": "WEBP"}

# filetype's extension -> kind named in the refusal (anything it knows that is not listed: by its MIME major type).
_KIND_BY_FILETYPE = {
    "tif": "tiff",
    "pdf": "pdf",
    "ps": "document",
    "heic": "heic",
    "avif": "avif",
    "bmp": "bmp",
    "ico": "ico",
    "psd": "psd",
    "xcf": "document",
    "cr2": "raw",
    "jpx": "jp2",
    "jxr": "document",
    "dwg": "document",
    "dcm": "document",
    "doc": "document",
    "docx": "document",
    "odt": "document",
    "xls": "document",
    "xlsx": "document",
    "ods": "document",
    "ppt": "document",
    "pptx": "document",
    "odp": "document",
    "rtf": "document",
    "epub": "document",
    "sqlite": "document",
    "exe": "program",
    "elf": "program",
    "wasm": "program",
    "crx": "program",
    "nes": "program",
    "swf": "program",
    "deb": "archive",
    "rpm": "archive",
}


def mb_figure(size: int) -> str:
    """Bytes as a short MB figure (MiB, as Discord counts), rounded up so it never looks under a limit."""
    value = math.ceil(size / _MIB * 10) / 10
    if value >= 100:
        return f"{math.ceil(value)}"
    return f"{value:.1f}".removesuffix(".0")


def _article_for_number(number: str) -> str:
    # "an 8 MB", "an 11 MB", "an 18.5 MB"; everything else takes "a".
    return "an" if number.startswith("8") or re.match(r"^1[18](\.\d)?$", number) else "a"


def limit_text(max_bytes: int) -> str:
    """The polite tail of every refusal: what to upload instead."""
    return f"upload {_WHAT_TO_UPLOAD} under {mb_figure(max_bytes)} MB"


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
    `sniff` looks at the real bytes anyway.
    """
    kind = _declared_kind(filename, content_type)
    too_big = declared_size is not None and declared_size > max_bytes
    if kind is None and not too_big:
        return
    if kind is not None:
        article, noun = _KINDS[kind]
        if too_big:
            size = mb_figure(declared_size or 0)
            what = f"{_article_for_number(size)} {size} MB {noun}"
        else:
            what = f"{article} {noun}"
        raise ImageRejected(f"That file is {what}; {limit_text(max_bytes)}.")
    raise too_large_refusal(declared_size or 0, max_bytes)


def check_length(data: bytes, *, max_bytes: int = MAX_UPLOAD_BYTES) -> None:
    """Refuse empty or oversized bytes."""
    if not data:
        raise ImageRejected(f"That file is empty; {limit_text(max_bytes)}.")
    if len(data) > max_bytes:
        raise too_large_refusal(len(data), max_bytes)


def too_large_refusal(size: int | None, max_bytes: int = MAX_UPLOAD_BYTES) -> ImageRejected:
    """The refusal of an image over `max_bytes`: `size` bytes, or None when all that is known is that it is over
    (a download stopped at the cap)."""
    what = f"{mb_figure(size)} MB" if size is not None else f"over {mb_figure(max_bytes)} MB"
    return ImageRejected(f"That file is {what}; {limit_text(max_bytes)}.")


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


def text_kind(data: bytes) -> str | None:
    """ "svg", "html", "xml" or "text" when the bytes are markup or text (no magic number); else None."""
    head = data[:4096]
    if _looks_like_text(head):
        lowered = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
        if b"<svg" in lowered:
            return "svg"
        if lowered.startswith((b"<!doctype html", b"<html")) or b"<html" in lowered[:512]:
            return "html"
        if lowered.startswith(b"<?xml"):
            return "xml"
        return "text"
    if b"<svg" in head.lower():  # e.g. UTF-16 or oddly encoded SVG
        return "svg"
    return None


def sniff(data: bytes) -> tuple[str | None, str | None]:
    """(accepted Pillow format, None) or (None, kind of what it really is, or None when unknown)."""
    guess = filetype.guess(data[:8192])
    if guess is not None:
        fmt = _ACCEPTED_BY_FILETYPE.get(guess.extension)
        if fmt is not None:
            return fmt, None
        kind = _KIND_BY_FILETYPE.get(guess.extension)
        if kind is None:
            major = guess.mime.split("/", 1)[0]
            kind = major if major in ("video", "audio") else "archive" if major == "application" else None
        return None, kind
    return None, text_kind(data)


def kind_phrase(kind: str) -> str:
    """ "a TIFF image", "an SVG drawing"... for a kind returned by `sniff`."""
    article, noun = _KINDS[kind]
    return f"{article} {noun}"


def header_size(data: bytes) -> tuple[int, int] | None:
    """Width and height as stored in the file header (no decoding, no EXIF rotation); None if unreadable."""
    try:
        width, height = imagesize.get(io.BytesIO(data), exif_rotation=False)
    except (ValueError, OSError):
        return None
    if width <= 0 or height <= 0:
        return None
    return width, height


def image_size(data: bytes) -> tuple[int, int]:
    """(width, height) of an image from its header, without decoding the pixels."""
    size = header_size(data)
    if size is not None:
        return size
    with Image.open(io.BytesIO(data)) as im:
        return im.size


def pixel_limit(max_pixels: int) -> int:
    """Our limit, never above Pillow's warning threshold (read, never modified)."""
    pillow_limit = Image.MAX_IMAGE_PIXELS
    return min(max_pixels, pillow_limit) if pillow_limit else max_pixels


def depth_refusal(width: int, height: int, bits: int, alpha: bool, limit: int) -> ImageRejected:
    """The refusal for an image of `bits` a channel whose pixels are more than `limit` at that depth."""
    depth = f"{bits}-bit colour" + (" with transparency" if alpha else "")
    most = math.floor(limit / 1e6)
    size = f"{width * height / 1e6:.0f}"
    if int(size) <= most:  # 20.4 megapixels against a limit of 20.1 reads "20.4", never "20, more than 20"
        size = f"{width * height / 1e6:.1f}"
    return ImageRejected(
        f"That image is {width}×{height} ({size} megapixels) in {depth}, more than the {most}-megapixel limit "
        f"for {depth}; upload a smaller PNG, JPEG or WebP, or save it in 8-bit colour."
    )


def bomb_refusal(width: int, height: int, limit: int) -> ImageRejected:
    """The refusal for an image with more pixels than `limit`."""
    return ImageRejected(
        f"That image claims to be {width}×{height} ({width * height / 1e6:.0f} megapixels), more than the "
        f"{limit / 1e6:.0f}-megapixel limit; upload a smaller PNG, JPEG or WebP."
    )
