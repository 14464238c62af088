"""bot.media.sheet.storyboard_sheet, read back as an image: tiles counted, pictures, empty tiles, numbers, captions."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from bot.media.sheet import BACKGROUND, CAPTION_TEXT, EMPTY_FILL, EMPTY_LINE, storyboard_sheet

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
