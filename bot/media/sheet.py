"""Contact sheets: N candidate images side by side in one picture, each numbered 1..N, for choosing by number;
storyboard sheets: a scene's shots in order, one picture (the middle frame of its kept take) per numbered tile; and
cast sheets: a channel's characters in order, each picture captioned with the character's name."""

from __future__ import annotations

import io
import math
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

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
        _badge(draw, (left, top), number, font, max(4, tile_side // 60))
    buf = io.BytesIO()
    if fmt == "PNG":
        sheet.save(buf, "PNG", optimize=False)
    else:
        sheet.save(buf, "JPEG", quality=90)
    return ContactSheet(buf.getvalue(), fmt, width, height, cols, rows, tuple(tiles))


def _badge(
    draw: ImageDraw.ImageDraw,
    corner: tuple[int, int],
    number: int,
    font: ImageFont.FreeTypeFont | ImageFont.ImageFont,
    pad: int,
) -> None:
    """The number in a white rounded badge, `pad` pixels in from `corner` (a tile's top left)."""
    left, top = corner
    text = str(number)
    box = draw.textbbox((0, 0), text, font=font)
    badge = (left + pad, top + pad, left + pad * 3 + box[2] - box[0], top + pad * 3 + box[3] - box[1])
    draw.rounded_rectangle(badge, radius=pad * 2, fill=LABEL_FILL, outline=LABEL_TEXT, width=max(1, pad // 2))
    draw.text((badge[0] + pad - box[0], badge[1] + pad - box[1]), text, font=font, fill=LABEL_TEXT)


# ----------------------------------------------------------------------------------------- storyboards

MAX_SHOTS = 24
TILE_FILL = (12, 12, 14)  # behind a frame of another shape than the tile
EMPTY_FILL = (52, 52, 60)  # a shot with nothing kept
EMPTY_LINE = (120, 120, 132)
CAPTION_TEXT = (230, 230, 235)
EMPTY_TEXT = "nothing kept"
DEFAULT_ASPECT = 16 / 9


@dataclass(frozen=True)
class _Grid:
    columns: int
    tile: tuple[int, int]  # the picture's box
    caption: int  # height of the caption strip under it (0 without labels)
    gap: int

    def origin(self, index: int) -> tuple[int, int]:
        col, row = index % self.columns, index // self.columns
        return self.gap + col * (self.tile[0] + self.gap), self.gap + row * (
            self.tile[1] + self.caption + self.gap
        )

    def size(self, count: int) -> tuple[int, int]:
        rows = math.ceil(count / self.columns)
        return (
            self.columns * self.tile[0] + (self.columns + 1) * self.gap,
            rows * (self.tile[1] + self.caption) + (rows + 1) * self.gap,
        )


def _decode(data: bytes, box: tuple[int, int]) -> Image.Image:
    with Image.open(io.BytesIO(data)) as im:
        im.draft("RGB", box)
        picture = im.convert("RGB")
    picture.thumbnail(box, Image.Resampling.LANCZOS)
    return picture


def _aspect(frames: Sequence[bytes | None]) -> float:
    """Width / height of the first frame there is (16:9 when there is none), kept within 1:2.5 and 2.5:1."""
    for data in frames:
        if data is not None:
            with Image.open(io.BytesIO(data)) as im:
                return min(2.5, max(0.4, im.width / im.height))
    return DEFAULT_ASPECT


def _fit_text(
    draw: ImageDraw.ImageDraw, text: str, font: ImageFont.FreeTypeFont | ImageFont.ImageFont, width: int
) -> str:
    """`text`, cut with an ellipsis to fit `width` pixels."""
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + "\u2026", font=font) > width:
        text = text[:-1]
    return text.rstrip() + "\u2026"


def _empty_tile(
    draw: ImageDraw.ImageDraw,
    box: tuple[int, int, int, int],
    font: ImageFont.FreeTypeFont | ImageFont.ImageFont,
    text: str = EMPTY_TEXT,
) -> None:
    """A grey outlined tile with `text` across its middle."""
    left, top, right, bottom = box
    draw.rectangle(box, fill=EMPTY_FILL, outline=EMPTY_LINE, width=max(2, (right - left) // 128))
    text = _fit_text(draw, text, font, right - left - 8)
    width = draw.textlength(text, font=font)
    draw.text(((left + right - width) / 2, (top + bottom) / 2), text, font=font, fill=EMPTY_LINE, anchor="lm")


def storyboard_sheet(
    frames: Sequence[bytes | None],
    labels: Sequence[str] | None = None,
    *,
    tile_width: int = 384,
    gap: int = 12,
    columns: int | None = None,
    more: int = 0,
) -> bytes:
    """A scene's storyboard as PNG bytes: one tile per shot in order (up to 4 in a row, else a near-square grid),
    each numbered 1..N in a white badge, top left, with its picture (the middle frame of the shot's kept take,
    scaled to fit, never cropped) or, for `None` (nothing kept), an empty grey tile saying so; `labels` (one per
    shot) are written under the tiles. Tiles take the shape of the first picture (16:9 without any). `more`: how
    many shots follow that the sheet does not show (one last tile, unnumbered, says so; it counts towards
    MAX_SHOTS).

    Blocking (decodes and encodes): call it through `asyncio.to_thread` from async code.
    """
    if not frames:
        raise ValueError("a storyboard needs at least one shot")
    tiles = len(frames) + (1 if more > 0 else 0)
    if tiles > MAX_SHOTS:
        raise ValueError(
            f"at most {MAX_SHOTS} tiles on one storyboard (its shots, and one saying how many more)"
        )
    if labels is not None and len(labels) != len(frames):
        raise ValueError(f"{len(labels)} labels for {len(frames)} shots")
    tile = (tile_width, max(1, round(tile_width / _aspect(frames))))
    font_size = max(12, tile_width // 16)
    font = ImageFont.load_default(size=font_size)
    badge_font = ImageFont.load_default(size=max(14, tile_width // 10))
    caption = 0 if labels is None else round(font_size * 1.8)
    grid = _Grid(columns or _columns_for(tiles), tile, caption, gap)
    sheet = Image.new("RGB", grid.size(tiles), BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    for index, data in enumerate(frames):
        left, top = grid.origin(index)
        box = (left, top, left + tile[0] - 1, top + tile[1] - 1)
        if data is None:
            _empty_tile(draw, box, font)
        else:
            draw.rectangle(box, fill=TILE_FILL)
            picture = _decode(data, tile)
            sheet.paste(
                picture, (left + (tile[0] - picture.width) // 2, top + (tile[1] - picture.height) // 2)
            )
        _badge(draw, (left, top), index + 1, badge_font, max(4, tile_width // 60))
        if labels is not None:
            text = _fit_text(draw, labels[index], font, tile[0])
            draw.text((left, top + tile[1] + caption / 2), text, font=font, fill=CAPTION_TEXT, anchor="lm")
    if more > 0:
        left, top = grid.origin(len(frames))
        _empty_tile(draw, (left, top, left + tile[0] - 1, top + tile[1] - 1), font, more_text(more, "shot"))
    buf = io.BytesIO()
    sheet.save(buf, "PNG")
    return buf.getvalue()


def more_text(count: int, noun: str) -> str:
    """What the last tile of a sheet too small for everything says: "+ 7 more shots"."""
    return f"+ {count} more {noun}{'s' if count != 1 else ''}"


# ----------------------------------------------------------------------------------------- cast sheets

MAX_CAST = 25
NO_PICTURE_TEXT = "no picture"
_NAME_CHARS = (
    64  # a name is cut to this many characters before it is fitted to the tile (fitting is quadratic)
)
# Pillow's built-in font draws basic Latin only ("Zoë" shows a box), so names use the first of these the system
# has (DejaVu Sans: Latin, Greek, Cyrillic, Hebrew, Arabic...; Debian's fonts-dejavu-core), else the built-in one.
CAPTION_FONTS = ("DejaVuSans.ttf",)
# An RGB PNG larger than this is saved with 256 colours instead (≈ a third of the size; a 5×5 cast of photos at
# 256 px tiles is ≈ 2 MB in full colour, 10 of them ≈ 0.7 MB).
CAST_SHEET_MAX_BYTES = 1_000_000


def cast_sheet(
    members: Sequence[tuple[bytes | None, str]], *, tile: int = 256, more: int = 0
) -> ContactSheet:
    """A channel's cast as one PNG: a square `tile` per character in the given order (up to 4 in a row, else a
    near-square grid), its picture scaled to fit (never cropped) or, for `None`, an empty grey tile, with the
    character's name centred under it (cut with an ellipsis to the tile's width). `tiles` are the squares. `more`:
    how many characters follow that the sheet does not show (one last tile says so; it counts towards MAX_CAST).

    Names may hold any Unicode (see caption_text); letters the font has no glyph for (emoji) are drawn as boxes.
    Blocking (decodes and encodes): call it through `asyncio.to_thread` from async code.
    """
    if not members:
        raise ValueError("a cast sheet needs at least one character")
    count = len(members) + (1 if more > 0 else 0)
    if count > MAX_CAST:
        raise ValueError(
            f"at most {MAX_CAST} tiles on one cast sheet (its characters, and one saying how many more)"
        )
    if tile < 32:
        raise ValueError("tiles must be at least 32 pixels")
    font_size = max(12, tile // 12)
    font = caption_font(font_size)
    grid = _Grid(_columns_for(count), (tile, tile), round(font_size * 1.8), max(8, tile // 24))
    width, height = grid.size(count)
    sheet = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    tiles: list[Tile] = []
    for index, (data, name) in enumerate(members):
        left, top = grid.origin(index)
        box = (left, top, left + tile - 1, top + tile - 1)
        if data is None:
            _empty_tile(draw, box, font, NO_PICTURE_TEXT)
        else:
            draw.rectangle(box, fill=TILE_FILL)
            picture = _decode(data, (tile, tile))
            sheet.paste(picture, (left + (tile - picture.width) // 2, top + (tile - picture.height) // 2))
        text = _fit_text(draw, caption_text(name), font, tile)
        if text:
            draw.text(
                (left + tile / 2, top + tile + grid.caption / 2),
                text,
                font=font,
                fill=CAPTION_TEXT,
                anchor="mm",
            )
        tiles.append(Tile(index + 1, left, top, tile, tile))
    if more > 0:
        left, top = grid.origin(len(members))
        _empty_tile(draw, (left, top, left + tile - 1, top + tile - 1), font, more_text(more, "character"))
    rows = math.ceil(count / grid.columns)
    return ContactSheet(_png_within(sheet), "PNG", width, height, grid.columns, rows, tuple(tiles))


def _png_within(sheet: Image.Image, max_bytes: int = CAST_SHEET_MAX_BYTES) -> bytes:
    """The sheet as an RGB PNG, or with 256 colours (dithered) when the RGB one is over `max_bytes`."""
    buf = io.BytesIO()
    sheet.save(buf, "PNG")
    if buf.tell() > max_bytes:
        buf = io.BytesIO()
        sheet.quantize(256, method=Image.Quantize.FASTOCTREE).save(buf, "PNG")
    return buf.getvalue()


def caption_font(
    size: int, names: tuple[str, ...] = CAPTION_FONTS
) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """The first of the font files `names` that the system has, at `size` px, else Pillow's built-in font. A new
    font object each call (one is not shared between threads); where the file is found is remembered."""
    path = _font_path(names)
    return ImageFont.truetype(path, size) if path is not None else ImageFont.load_default(size=size)


@cache
def _font_path(names: tuple[str, ...]) -> str | None:
    for name in names:
        try:
            found = ImageFont.truetype(name, 12)  # a bare name is looked for in the system's font folders
        except OSError:
            continue
        return found.path if isinstance(found.path, str) else name
    return None


def caption_text(name: str) -> str:
    """A name as one drawable line: control and invisible format characters (zero-width joiners, bidi marks:
    fonts draw them as boxes, and an override could reverse what follows) dropped, line breaks and runs of
    spaces made one space, cut to _NAME_CHARS characters."""
    kept = "".join(
        " " if c in "\t\n\r" or unicodedata.category(c) in ("Zs", "Zl", "Zp") else c
        for c in name
        if c in "\t\n\r" or unicodedata.category(c) not in ("Cc", "Cf", "Cs", "Co", "Cn")
    )
    return " ".join(kept.split())[:_NAME_CHARS]
