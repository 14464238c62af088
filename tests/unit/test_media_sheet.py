"""bot.media.sheet.storyboard_sheet, read back as an image: tiles counted, pictures, empty tiles, numbers, captions."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from bot.media.sheet import (
    BACKGROUND,
    CAPTION_TEXT,
    EMPTY_FILL,
    EMPTY_LINE,
    caption_font,
    caption_text,
    cast_sheet,
    storyboard_sheet,
)
from tests import faces_samples as samples

RED, BLUE, GREEN = (220, 30, 30), (30, 40, 220), (30, 200, 60)


def _png(colour: tuple[int, int, int], size: tuple[int, int] = (1280, 720)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, "PNG")
    return buf.getvalue()


def _open(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as im:
        assert im.format == "PNG"
        return np.asarray(im.convert("RGB")).astype(int)


def _runs(line: np.ndarray) -> list[tuple[int, int]]:
    """(start, length) of the stretches of a row or column of pixels that are not the sheet's background."""
    off = np.abs(line - np.array(BACKGROUND)).max(axis=1) > 6
    runs, start = [], None
    for i, value in enumerate([*off, False]):
        if value and start is None:
            start = i
        elif not value and start is not None:
            runs.append((start, i - start))
            start = None
    return runs


def _near(pixel: np.ndarray, colour: tuple[int, int, int], tolerance: int = 4) -> bool:
    return bool(np.abs(pixel - np.array(colour)).max() <= tolerance)


def test_three_shots_in_order_with_an_empty_numbered_tile() -> None:
    sheet = _open(storyboard_sheet([_png(RED), None, _png(BLUE)], ["Shot 1 · 4 s", "Shot 2 · 3 s", "Shot 3"]))
    tiles = _runs(sheet[12 + 108])  # a row through the middle of the tiles (gap 12, 384×216 tiles)
    assert tiles == [(12, 384), (408, 384), (804, 384)]  # three tiles, one row, in order
    middle = 12 + 160  # low in the tiles: under the badge, away from the empty tile's words
    assert _near(sheet[middle, 12 + 192], RED) and _near(sheet[middle, 804 + 192], BLUE)
    empty = sheet[12:228, 408:792]
    assert _near(empty[160, 192], EMPTY_FILL) and _near(empty[100, 0], EMPTY_LINE)  # grey, outlined
    assert not any(_near(p, RED, 60) or _near(p, BLUE, 60) for p in empty.reshape(-1, 3)[::97])
    assert (np.abs(empty[70:140, 100:290] - np.array(EMPTY_LINE)).max(axis=2) < 40).any()  # its words
    for left in (12, 408, 804):  # every tile, the empty one too, has its white number badge top left
        corner = sheet[12:70, left : left + 70]
        assert (corner.min(axis=2) > 245).sum() > 100
    caption = sheet[12 + 216 :, :]
    assert (np.abs(caption - np.array(CAPTION_TEXT)).max(axis=2) < 30).sum() > 200  # captions under the tiles


def test_numbers_differ_and_a_six_shot_portrait_scene_makes_a_3_by_2_grid() -> None:
    portrait = _png(GREEN, (720, 1280))
    sheet = _open(storyboard_sheet([None, portrait, None, portrait, None, None], tile_width=180, gap=10))
    assert sheet.shape[:2] == (2 * 320 + 3 * 10, 3 * 180 + 4 * 10)  # portrait tiles 180×320, no captions
    columns = _runs(sheet[10 + 160])
    rows = _runs(sheet[:, 10 + 90])
    assert len(columns) == 3 and len(rows) == 2
    assert _near(sheet[10 + 250, 190 + 90], GREEN) and _near(
        sheet[340 + 250, 10 + 90], GREEN
    )  # shots 2 and 4
    badges = [sheet[y + 4 : y + 40, x + 4 : x + 40] for y in (10, 340) for x in (10, 200, 390)]
    empties = [badges[i] for i in (0, 2, 4, 5)]  # same grey behind: only their numbers can tell them apart
    for i, a in enumerate(empties):
        for b in empties[i + 1 :]:
            assert not np.array_equal(a, b)


def test_no_picture_at_all_and_refusals() -> None:
    sheet = _open(storyboard_sheet([None, None], ["a", "b"]))
    assert len(_runs(sheet[12 + 108])) == 2  # 16:9 tiles when no shot has a picture
    with pytest.raises(ValueError):
        storyboard_sheet([])
    with pytest.raises(ValueError):
        storyboard_sheet([None] * 25)
    with pytest.raises(ValueError):
        storyboard_sheet([None, None], ["only one label"])


# ----------------------------------------------------------------------------------------- cast sheets


def test_a_cast_sheet_shows_each_character_in_order_with_its_name_under_it() -> None:
    members = [(_png(RED, (600, 800)), "Ada"), (None, "Bea"), (_png(BLUE), "Cy")]
    sheet = cast_sheet(members)
    image = _open(sheet.data)
    assert image.shape[:2] == (sheet.height, sheet.width) == (10 + 256 + 38 + 10, 4 * 10 + 3 * 256)
    assert (sheet.format, sheet.columns, sheet.rows) == ("PNG", 3, 1)
    assert [(t.number, t.left, t.top, t.width, t.height) for t in sheet.tiles] == [
        (1, 10, 10, 256, 256),
        (2, 276, 10, 256, 256),
        (3, 542, 10, 256, 256),
    ]
    assert _runs(image[10 + 128]) == [(10, 256), (276, 256), (542, 256)]  # three tiles in a row
    assert _near(image[138, 10 + 128], RED) and _near(image[138, 542 + 128], BLUE)
    assert _near(image[10 + 200, 276 + 128], EMPTY_FILL) and _near(image[138, 276], EMPTY_LINE)
    assert not _near(image[10 + 128, 10 + 20], RED)  # a portrait fits the square: dark sides, never cropped
    for tile in sheet.tiles:  # a name centred under each tile, inside its width
        strip = image[10 + 256 : 10 + 256 + 38, tile.left - 10 : tile.left + 256 + 10]
        text = np.abs(strip - np.array(CAPTION_TEXT)).max(axis=2) < 60
        columns = np.nonzero(text.any(axis=0))[0]
        assert text.sum() > 40 and columns.min() >= 10 and columns.max() < 10 + 256
        assert abs((columns.min() + columns.max()) / 2 - (10 + 128)) < 8


def test_names_in_any_script_fit_and_invisible_characters_are_dropped() -> None:
    names = [
        "Zo\u00eb \u200dthe\u200b \u2066quiet\u2069",  # zero-width joiner and space, an isolate
        "\u202eevil\u202c override",  # a right-to-left override would reverse what follows
        "\u05e9\u05dc\u05d5\u05dd \u05e2\u05d5\u05dc\u05dd",  # Hebrew
        "\u0645\u0631\u062d\u0628\u0627",  # Arabic
        "\U0001f468\u200d\U0001f469\u200d\U0001f467 family",  # an emoji sequence
        "line\nbreak\ttab\x00nul",
        "The Honourable Lady Wilhelmina of a Very Long Name " * 200,
        "",
        "\u200b\u200d\u202e",  # nothing visible at all
    ]
    sheet = cast_sheet([(None, name) for name in names], tile=128)
    image = _open(sheet.data)
    assert (sheet.columns, sheet.rows, len(sheet.tiles)) == (3, 3, 9)
    gaps = [tile.left + 128 + 3 for tile in sheet.tiles[:2]]  # columns between the tiles, captions included
    assert all(_runs(image[:, x]) == [] for x in gaps)  # the long name stayed inside its tile
    assert caption_text(names[0]) == "Zo\u00eb the quiet"
    assert caption_text(names[1]) == "evil override"
    assert caption_text(names[5]) == "line break tabnul"
    assert caption_text(names[8]) == ""
    assert len(caption_text(names[6])) == 64


def test_a_cast_of_ten_real_photos_is_a_small_png_and_the_limits_hold() -> None:
    photos = [samples.astronaut(), samples.grace_hopper(), samples.luis_pedro(), samples.coffee()]
    members = [(_jpeg(photos[i % 4]), f"Character {i + 1}") for i in range(10)]
    sheet = cast_sheet(members)
    assert (sheet.columns, sheet.rows, len(sheet.tiles)) == (4, 3, 10)
    assert len(sheet.data) < 1_000_000, len(sheet.data)  # measured ≈ 0.7 MB
    with Image.open(io.BytesIO(sheet.data)) as im:
        assert im.format == "PNG" and im.size == (sheet.width, sheet.height)
    full = cast_sheet([(_jpeg(photos[i % 4]), "x") for i in range(25)])  # ≈ 2 MB in full colour
    assert len(full.data) < 1_000_000 and (full.columns, full.rows) == (5, 5)
    with pytest.raises(ValueError):
        cast_sheet([])
    with pytest.raises(ValueError):
        cast_sheet([(None, "x")] * 26)


def test_without_the_system_font_the_built_in_one_draws_the_names() -> None:
    font = caption_font(20, ("no-such-font-anywhere.ttf",))
    assert font.getname()[0] != "DejaVu Sans"  # Pillow's own
    assert (
        font.getlength("Zo\u00eb \u05e9\u05dc\u05d5\u05dd \U0001f600") > 0
    )  # boxes for what it lacks, no error


def _jpeg(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=92)
    return buf.getvalue()
