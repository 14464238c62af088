"""Real face photos that ship inside registry packages (the test extra installs them), and images and mp4
clips made from them.

- `astronaut()`: Eileen Collins, NASA portrait (public domain); scikit-image, `skimage.data.astronaut()`.
- `grace_hopper()`: Rear Admiral Grace Hopper, US Navy portrait (public domain); matplotlib's
  `mpl-data/sample_data/grace_hopper.jpg`.
- `luis_pedro()`: Luis Pedro Coelho, mahotas' author; mahotas' `demos/data/luispedro.jpg`.
- `coffee()`: a cup of coffee, a real photo with no face; `skimage.data.coffee()`.

The files are found with importlib's find_spec, without importing matplotlib or mahotas, and nothing is
downloaded.
"""

from __future__ import annotations

import importlib.util
import io
from collections.abc import Iterable
from functools import cache
from pathlib import Path

import av
import numpy as np
from PIL import Image


def _package_file(package: str, *parts: str) -> Path:
    spec = importlib.util.find_spec(package)
    assert spec is not None and spec.submodule_search_locations, f"{package} is not installed"
    path = Path(next(iter(spec.submodule_search_locations))).joinpath(*parts)
    assert path.is_file(), f"{path} is missing"
    return path


@cache
def _astronaut() -> Image.Image:
    from skimage import data

    return Image.fromarray(data.astronaut())


def astronaut() -> Image.Image:
    """512×512; the face box is about (179, 83)–(266, 170)."""
    return _astronaut().copy()


def grace_hopper() -> Image.Image:
    """512×600; the face box is about (161, 137)–(376, 352)."""
    with Image.open(_package_file("matplotlib", "mpl-data", "sample_data", "grace_hopper.jpg")) as im:
        return im.convert("RGB")


def luis_pedro() -> Image.Image:
    """300×377, a tight crop: the face box is about 57 % of the height."""
    with Image.open(_package_file("mahotas", "demos", "data", "luispedro.jpg")) as im:
        return im.convert("RGB")


def coffee() -> Image.Image:
    from skimage import data

    return Image.fromarray(data.coffee())


# --------------------------------------------------------------------------------------------------------
# Anchor-like images
# --------------------------------------------------------------------------------------------------------

BACKDROP = (128, 128, 128)


def centred_portrait() -> Image.Image:
    """The astronaut cropped so her face sits in the middle (≈ 49 % across) at ≈ 28 % of the height, ×2."""
    crop = astronaut().crop((100, 20, 350, 330))
    return crop.resize((crop.width * 2, crop.height * 2), Image.Resampling.LANCZOS)


def hopper_portrait() -> Image.Image:
    """Grace Hopper cropped like centred_portrait (face centred, ≈ 30 % of the height)."""
    return grace_hopper().crop((48, 20, 488, 600))


# Where the mission patch on the astronaut's chest is in astronaut(): dlib's HOG detector fires on it weakly.
MISSION_PATCH = (110, 310, 240, 440)


def astronaut_rescaled(scale: float, quality: int | None = None) -> Image.Image:
    """The astronaut photo scaled by `scale` (Lanczos), then through JPEG at `quality` when one is given."""
    img = astronaut()
    img = img.resize((round(img.width * scale), round(img.height * scale)), Image.Resampling.LANCZOS)
    return jpeg_roundtrip(img, quality) if quality is not None else img


def astronaut_half_length(scale: float = 2.0) -> Image.Image:
    """A member's ordinary portrait: the astronaut from the head to below her mission patch, scaled by `scale`."""
    crop = astronaut().crop((80, 0, 400, 480))
    return crop.resize((round(crop.width * scale), round(crop.height * scale)), Image.Resampling.LANCZOS)


def badge_portrait() -> Image.Image:
    """Grace Hopper's portrait with the astronaut's mission patch (0.8×) sewn on low on her left: a badge."""
    patch = astronaut().crop(MISSION_PATCH)
    patch = patch.resize((round(patch.width * 0.8), round(patch.height * 0.8)), Image.Resampling.LANCZOS)
    img = hopper_portrait()
    img.paste(patch, (40, 400))
    return img


def off_centre_portrait() -> Image.Image:
    """The centred portrait at the left edge of a canvas three times as wide: the face at ≈ 16 % across."""
    p = centred_portrait()
    canvas = Image.new("RGB", (p.width * 3, p.height), BACKDROP)
    canvas.paste(p, (0, 0))
    return canvas


def tilted_portrait(degrees: float = 20.0) -> Image.Image:
    """The centred portrait rotated anticlockwise by `degrees` about its centre."""
    return centred_portrait().rotate(degrees, resample=Image.Resampling.BICUBIC, fillcolor=BACKDROP)


def side_by_side(left: Image.Image, right: Image.Image, *, right_scale: float = 1.0) -> Image.Image:
    """Two pictures pasted next to each other on one canvas (the right one scaled by `right_scale`)."""
    if right_scale != 1.0:
        right = right.resize((round(right.width * right_scale), round(right.height * right_scale)))
    h = max(left.height, right.height)
    canvas = Image.new("RGB", (left.width + right.width, h), BACKDROP)
    canvas.paste(left, (0, (h - left.height) // 2))
    canvas.paste(right, (left.width, (h - right.height) // 2))
    return canvas


def jpeg_roundtrip(img: Image.Image, quality: int) -> Image.Image:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality)
    buf.seek(0)
    with Image.open(buf) as im:
        return im.convert("RGB")


def zoom_shift(img: Image.Image, zoom: float, dx: float, dy: float, size: tuple[int, int]) -> Image.Image:
    """A camera move: crop a window 1/zoom of the picture, its centre moved by (dx, dy) fractions of the
    picture, and scale it to `size` (what a push-in or a pan does to the anchor)."""
    w, h = img.size
    cw, ch = w / zoom, h / zoom
    cx, cy = w / 2 + dx * w, h / 2 + dy * h
    box = (cx - cw / 2, cy - ch / 2, cx + cw / 2, cy + ch / 2)
    return img.transform(size, Image.Transform.EXTENT, box, Image.Resampling.BICUBIC, fillcolor=BACKDROP)


# --------------------------------------------------------------------------------------------------------
# Clips
# --------------------------------------------------------------------------------------------------------


def write_mp4(path: Path, frames: Iterable[Image.Image], *, fps: int = 12, gop: int | None = None) -> Path:
    """Encode RGB frames as H.264 (yuv420p, CRF 23) in an mp4, as a video model would deliver them."""
    frames = list(frames)
    w, h = frames[0].size
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height = w // 2 * 2, h // 2 * 2
        stream.pix_fmt = "yuv420p"
        opts = {"crf": "23", "preset": "veryfast"}
        if gop is not None:
            opts["g"] = str(gop)
            opts["keyint_min"] = str(gop)
        stream.options = opts
        for img in frames:
            frame = av.VideoFrame.from_ndarray(np.asarray(img.convert("RGB")), format="rgb24")
            for packet in stream.encode(frame.reformat(stream.width, stream.height, "yuv420p")):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


def camera_move(img: Image.Image, count: int, size: tuple[int, int]) -> list[Image.Image]:
    """`count` frames of a slow push-in with a small drift to the side, framed to `size` (letterboxed)."""
    out = []
    for i in range(count):
        t = i / max(1, count - 1)
        frame = zoom_shift(img, 1.0 + 0.15 * t, 0.03 * t, -0.02 * t, img.size)
        out.append(letterbox(frame, size))
    return out


def letterbox(img: Image.Image, size: tuple[int, int]) -> Image.Image:
    """`img` scaled to fit `size`, centred on a plain backdrop."""
    scaled = img.copy()
    scaled.thumbnail(size, Image.Resampling.LANCZOS)
    canvas = Image.new("RGB", size, BACKDROP)
    canvas.paste(scaled, ((size[0] - scaled.width) // 2, (size[1] - scaled.height) // 2))
    return canvas


CLIP_SIZE = (640, 480)
CLIP_FRAMES = 24  # 2 s at 12 fps: 8 samples land on frames 1, 4, 7, ... 22


def anchor_clip(path: Path) -> Path:
    """The centred portrait with a push-in and a drift: the same person throughout."""
    return write_mp4(path, camera_move(centred_portrait(), CLIP_FRAMES, CLIP_SIZE))


def stranger_clip(path: Path) -> Path:
    """Grace Hopper with the same camera move: a different person throughout."""
    return write_mp4(path, camera_move(hopper_portrait(), CLIP_FRAMES, CLIP_SIZE))


def faceless_clip(path: Path) -> Path:
    """The coffee photo with the same camera move: no face at all."""
    return write_mp4(path, camera_move(coffee(), CLIP_FRAMES, CLIP_SIZE))


def spliced_clip(path: Path, parts: list[tuple[Image.Image, int]], *, gop: int | None = None) -> Path:
    """Consecutive runs of frames: (picture, how many frames) each, with the same camera move per run."""
    frames: list[Image.Image] = []
    for img, count in parts:
        frames.extend(camera_move(img, count, CLIP_SIZE))
    return write_mp4(path, frames, gop=gop)
