"""Contact sheets: N candidate images side by side in one picture, each numbered 1..N, for choosing by number."""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass

from PIL import Image, ImageDraw, ImageFont

BACKGROUND = (24, 24, 28)
LABEL_FILL = (255, 255, 255)
LABEL_TEXT = (0, 0, 0)
MAX_IMAGES = 12


@dataclass(frozen=True)
class Tile:
    """Where candidate `number` (1-based) sits on the sheet, in pixels."""

    number: int
    left: int
    top: int
    width: int
    height: int


@dataclass(frozen=True)
class ContactSheet:
    data: bytes
    format: str  # "PNG" or "JPEG"
    width: int
    height: int
    columns: int
    rows: int
    tiles: tuple[Tile, ...]


def _columns_for(n: int) -> int:
    return n if n <= 4 else math.ceil(math.sqrt(n))


def contact_sheet(
    images: Sequence[bytes],
    *,
    tile_side: int = 512,
    gap: int = 16,
    columns: int | None = None,
    fmt: str = "PNG",
) -> ContactSheet:
    """One picture with `images` in a grid (up to 4 in a row, else a near-square grid), each scaled to fit a
    `tile_side` square without cropping and labelled with its number (1..N) in a white badge, top left.

    Blocking (decodes and encodes): call it through `asyncio.to_thread` from async code.
    """
    if not images:
        raise ValueError("a contact sheet needs at least one image")
    if len(images) > MAX_IMAGES:
        raise ValueError(f"at most {MAX_IMAGES} images on one sheet")
    if fmt not in ("PNG", "JPEG"):
        raise ValueError("format must be PNG or JPEG")
    cols = columns or _columns_for(len(images))
    rows = math.ceil(len(images) / cols)
    width = cols * tile_side + (cols + 1) * gap
    height = rows * tile_side + (rows + 1) * gap
    sheet = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default(size=max(14, tile_side // 7))
    tiles: list[Tile] = []
    for index, data in enumerate(images):
        with Image.open(io.BytesIO(data)) as im:
            im.draft("RGB", (tile_side, tile_side))
            thumb = im.convert("RGB")
        thumb.thumbnail((tile_side, tile_side), Image.Resampling.LANCZOS)
        col, row = index % cols, index // cols
        cell_left, cell_top = gap + col * (tile_side + gap), gap + row * (tile_side + gap)
        left = cell_left + (tile_side - thumb.width) // 2
        top = cell_top + (tile_side - thumb.height) // 2
        sheet.paste(thumb, (left, top))
        number = index + 1
        tiles.append(Tile(number, left, top, thumb.width, thumb.height))
        text = str(number)
        box = draw.textbbox((0, 0), text, font=font)
        pad = max(4, tile_side // 60)
        badge = (left + pad, top + pad, left + pad * 3 + box[2] - box[0], top + pad * 3 + box[3] - box[1])
        draw.rounded_rectangle(
            badge, radius=pad * 2, fill=LABEL_FILL, outline=LABEL_TEXT, width=max(1, pad // 2)
        )
        draw.text((badge[0] + pad - box[0], badge[1] + pad - box[1]), text, font=font, fill=LABEL_TEXT)
    buf = io.BytesIO()
    if fmt == "PNG":
        sheet.save(buf, "PNG", optimize=False)
    else:
        sheet.save(buf, "JPEG", quality=90)
    return ContactSheet(buf.getvalue(), fmt, width, height, cols, rows, tuple(tiles))
