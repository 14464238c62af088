"""bot.media.crop.face_crop on real face photos (tests/faces_samples.py): the crop holds the same face, tight,
and always makes a start image fal accepts; plus hostile boxes, shapes, sizes, modes and EXIF orientations."""

from __future__ import annotations

import io
from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from bot.media import faces
from bot.media.crop import FACE_CROP_MAX_SIDE, KLING_V3_START, face_crop, start_image_problem
from bot.media.faces import DEFAULT_THRESHOLD, embedding_from_bytes, face_distance
from tests import faces_samples as samples
from tests.samples import png_bytes


def jpeg(img: Image.Image, **params: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=95, **params)
    return buf.getvalue()


def start_image(data: bytes) -> Image.Image:
    """The crop, opened, after checking it meets fal's x-fal limits for a start image."""
    with Image.open(io.BytesIO(data)) as im:
        assert im.format == "JPEG" and im.mode == "RGB"
        im.load()
        out = im.copy()
    w, h = out.size
    assert min(w, h) >= KLING_V3_START.min_side, out.size
    assert start_image_problem(w, h) is None, out.size
    assert KLING_V3_START.min_ratio <= w / h <= KLING_V3_START.max_ratio
    assert len(data) <= KLING_V3_START.max_bytes
    return out


def gradient(size: tuple[int, int]) -> Image.Image:
    """A picture whose every region differs: red grows to the right, green downwards."""
    ramp = Image.linear_gradient("L")  # 256×256, black at the top to white at the bottom
    across = ramp.transpose(Image.Transpose.ROTATE_90).transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    bands = (across.resize(size), ramp.resize(size), Image.new("L", size, 90))
    return Image.merge("RGB", bands)


def mean_difference(a: Image.Image, b: Image.Image) -> float:
    b = b.resize(a.size, Image.Resampling.BILINEAR)
    return float(np.abs(np.asarray(a, np.float32) - np.asarray(b, np.float32)).mean())


# --------------------------------------------------------------------------------------------- real faces

PORTRAITS = {
    "badge": samples.badge_portrait,  # Hopper, centred, a patch on her chest; the crop is moved down from the top
    "off-centre": samples.off_centre_portrait,  # the face at 16 % across a 1500×620 canvas
    "half-length": samples.astronaut_half_length,  # head to below the mission patch
    "tight": samples.luis_pedro,  # the face fills 57 % of the height; its box reaches past the left edge
}


@pytest.mark.parametrize("make", PORTRAITS.values(), ids=PORTRAITS.keys())
def test_the_crop_holds_the_same_face_tight_and_whole(make: Callable[[], Image.Image]) -> None:
    data = jpeg(make())
    report = faces.face_checks(data)
    assert report.face_box is not None and report.embedding is not None
    crop = start_image(face_crop(data, report.face_box))
    (face,) = faces.detect_faces(crop)  # one face, not cut off, and still hers (measured 0.04-0.10)
    assert face_distance(face.embedding, embedding_from_bytes(report.embedding)) < DEFAULT_THRESHOLD / 2
    assert 0.4 <= face.size_fraction <= 0.65, face.size_fraction  # tight: measured 0.48-0.57
    if crop.size != make().size:  # (the tight photo is all face: its crop is the whole photo)
        assert 0.4 <= face.centre[0] <= 0.6, face.centre  # the face in the middle, wherever it was
        assert crop.height - face.box[3] >= 0.2 * face.height  # room for the chin


def test_without_a_box_it_is_a_centred_square_of_the_top_two_thirds() -> None:
    portrait = samples.centred_portrait()  # 500×620: the top two thirds are 500×413
    crop = start_image(face_crop(jpeg(portrait), None))
    assert crop.size == (413, 413)
    assert mean_difference(crop, portrait.crop((44, 0, 457, 413))) < 3  # one pixel aside: 4.2
    (face,) = faces.detect_faces(crop)
    (original,) = faces.detect_faces(portrait)
    assert face_distance(face.embedding, original.embedding) < DEFAULT_THRESHOLD / 2


def test_an_exif_rotated_photo_is_cropped_upright() -> None:
    upright = samples.hopper_portrait()
    box = faces.dominant_face_box(upright)
    assert box is not None
    # Orientation 6: the stored pixels are turned a quarter anticlockwise; viewers turn them back.
    exif = Image.Exif()
    exif[0x0112] = 6
    stored = jpeg(upright.transpose(Image.Transpose.ROTATE_90), exif=exif.tobytes())
    crop = start_image(face_crop(stored, box))
    reference = start_image(face_crop(jpeg(upright), box))
    assert crop.size == reference.size
    assert mean_difference(crop, reference) < 4
    (face,) = faces.detect_faces(crop)
    assert face.centre[0] == pytest.approx(0.5, abs=0.1)


# --------------------------------------------------------------------------------------------- geometry


def test_a_box_partly_outside_is_moved_inside_not_shrunk() -> None:
    source = gradient((1200, 900))
    # A 250 px box over the top-left corner wants a 400×500 window at (-175, -150): moved to (0, 0).
    crop = start_image(face_crop(jpeg(source), (-100, -50, 150, 200)))
    assert crop.size == (400, 500)
    assert mean_difference(crop, source.crop((0, 0, 400, 500))) < 3
    # ...and at the far corner, the same size against the right and bottom edges.
    crop = start_image(face_crop(jpeg(source), (1100, 800, 1350, 1050)))
    assert crop.size == (400, 500)
    assert mean_difference(crop, source.crop((800, 400, 1200, 900))) < 3


def test_a_tiny_face_in_a_large_photo_is_upscaled_to_the_minimum() -> None:
    source = gradient((4000, 3000))
    crop = start_image(face_crop(jpeg(source), (2000, 1500, 2020, 1520)))  # a 20 px face: a 32×40 window
    assert crop.size == (300, 375)
    assert mean_difference(crop, source.crop((1994, 1488, 2026, 1528))) < 3


def test_a_24_megapixel_photo_is_decoded_reduced_and_scaled_to_the_largest_side() -> None:
    source = gradient((4100, 6200))
    data = jpeg(source)
    crop = start_image(face_crop(data, None))  # a 4100 px square: the JPEG is decoded at half size
    assert crop.size == (FACE_CROP_MAX_SIDE, FACE_CROP_MAX_SIDE)
    assert mean_difference(crop, source.crop((0, 17, 4100, 4117))) < 3  # centred in the top 4133 px


def test_a_face_box_larger_than_the_image_takes_all_of_it() -> None:
    crop = start_image(face_crop(jpeg(samples.luis_pedro()), (-500, -500, 900, 900)))
    assert crop.size == samples.luis_pedro().size  # 300×377


BOXES = st.tuples(*[st.integers(-3000, 6000)] * 4) | st.none()


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    size=st.tuples(st.integers(1, 1600), st.integers(1, 1600)),
    box=BOXES,
)
def test_any_box_on_any_shape_makes_a_start_image(size: tuple[int, int], box) -> None:
    # Empty, inverted, far-off and giant boxes; slivers of 1×1600 and 1600×1 pixels (ratio 1600:1).
    start_image(face_crop(png_bytes(Image.new("RGB", size, (40, 120, 200))), box))


# --------------------------------------------------------------------------------------------- modes


def _with_transparent_corner(img: Image.Image) -> Image.Image:
    rgba = img.convert("RGBA")
    rgba.paste((0, 0, 0, 0), (0, 0, 60, 60))
    return rgba


MODES = {
    "grey-jpeg": lambda img: jpeg(img.convert("L")),
    "cmyk-jpeg": lambda img: jpeg(img.convert("CMYK")),
    "rgba-png": lambda img: png_bytes(_with_transparent_corner(img)),
    "16-bit-grey-png": lambda img: png_bytes(Image.fromarray(np.asarray(img.convert("L"), np.uint16) * 257)),
    "palette-png": lambda img: png_bytes(img.convert("P", palette=Image.Palette.ADAPTIVE)),
}


@pytest.mark.parametrize("encode", MODES.values(), ids=MODES.keys())
def test_any_mode_makes_an_rgb_start_image_of_the_same_place(encode: Callable[[Image.Image], bytes]) -> None:
    portrait = samples.centred_portrait()
    box = (0, 0, 150, 150)  # the top-left corner: a 300×240 window moved inside
    crop = start_image(face_crop(encode(portrait), box))
    reference = portrait.crop((0, 0, 240, 300)).resize(crop.size)
    assert crop.size == (300, 375)
    grey = mean_difference(crop.convert("L").convert("RGB"), reference.convert("L").convert("RGB"))
    assert grey < 12, grey  # the same region (grey levels: CMYK and a palette shift colours a little)
    if encode is MODES["rgba-png"]:
        assert min(crop.getpixel((10, 10))) > 245  # transparency flattened on white
