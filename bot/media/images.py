"""Old home of the image helpers, split into `intake`, `normalize`, `crop` and `sheet` (and the anchor checklist,
now `bot.anchors.checklist`). Kept only as a re-export so imports on other branches keep working; new code
imports from the new modules.
"""

from __future__ import annotations

from typing import Any

from bot.media.crop import crop_to_aspect, fit_start_image
from bot.media.intake import ACCEPTED_FORMATS, MAX_UPLOAD_BYTES, check_declared, image_size
from bot.media.normalize import JPEG_QUALITY, NormalizedImage, normalize_image

_MOVED_TO_ANCHORS = {"CheckItem", "anchor_checklist"}


def __getattr__(name: str) -> Any:
    # Imported lazily: media sits below the features and must not import them at load time.
    if name in _MOVED_TO_ANCHORS:
        from bot.anchors import checklist

        return getattr(checklist, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "ACCEPTED_FORMATS",
    "JPEG_QUALITY",
    "MAX_UPLOAD_BYTES",
    "NormalizedImage",
    "check_declared",
    "crop_to_aspect",
    "fit_start_image",
    "image_size",
    "normalize_image",
]
