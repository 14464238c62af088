"""The anchor checklist: how good an image is as the one portrait every shot starts from.

Each check is a function of an `AnchorView` (the image size plus a small analysis copy) returning a `CheckItem`;
`anchor_checklist` runs the built-in ones and any `extra` checks (face checks, later) before the closing note.
Pure Pillow: takes a few milliseconds on a 2048 px image.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from PIL import Image, ImageChops, ImageDraw, ImageFilter, ImageOps, ImageStat

from bot.anchors.models import CheckItem, Level


@dataclass(frozen=True)
class AnchorView:
    """What every check looks at, computed once per image."""

    width: int
    height: int
    small: Image.Image  # RGB, long side ANALYSIS_SIDE
    edge_bin: Image.Image  # 255 where |Laplacian| >= EDGE_THRESHOLD (1 px frame removed)
    inner_rgb: Image.Image  # `small` without the 1 px frame, aligned with edge_bin


Check = Callable[[AnchorView], CheckItem | None]


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


def _fit_plane(points: Sequence[tuple[float, float, tuple[int, ...]]]) -> list[tuple[float, float, float]]:
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


def _cell_score(
    cell: tuple[float, float, tuple[int, ...]], planes: list[tuple[float, float, float]]
) -> float:
    """How far a grid cell is from the background model: colour distance or edge-density difference (0..1)."""
    x, y, f = cell
    exp = [a + b * x + c * y for a, b, c in planes]
    dcol = math.sqrt((f[0] - exp[0]) ** 2 + (f[1] - exp[1]) ** 2 + (f[2] - exp[2]) ** 2) / 441.7
    dtex = abs(f[3] - exp[3]) / 255
    return max(dcol, dtex)


def _extent_mid(sums: list[float], total: float) -> float:
    """The middle (as a fraction) of the range holding the central share of the weight along one axis."""
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

    border = [cells[i] for i in _band_cells(gw, gh, bx, by)]
    planes = _fit_plane(border)
    ranked = sorted(border, key=lambda c: _cell_score(c, planes))
    planes = _fit_plane(ranked[: max(3, int(len(ranked) * BACKGROUND_KEEP))])

    # Adaptive floor: a subject cell must stand out more than most of the band does, so the texture of a busy
    # background does not count as subject everywhere.
    band_scores = sorted(_cell_score(c, planes) for c in border)
    med = band_scores[len(band_scores) // 2]
    mad = sorted(abs(v - med) for v in band_scores)[len(band_scores) // 2]
    floor = max(SUBJECT_MIN_DISTANCE, med + SUBJECT_BAND_MADS * mad)
    weights = [max(0.0, _cell_score(c, planes) - floor) for c in cells]
    total = sum(weights)
    if total <= 0:
        return None
    cols = [sum(weights[y * gw + x] for y in range(gh)) for x in range(gw)]
    rows = [sum(weights[y * gw : (y + 1) * gw]) for y in range(gh)]

    share = sum(1 for v in weights if v > 0) / len(weights)
    return _extent_mid(cols, total), _extent_mid(rows, total), share


def analyse(data: bytes) -> AnchorView:
    """Decode (in JPEG draft mode where possible) and prepare the analysis copy of an image."""
    with Image.open(io.BytesIO(data)) as im:
        w, h = im.size
        # JPEG draft mode decodes at 1/2, 1/4 or 1/8 size directly: much faster than a full decode.
        im.draft("RGB", (ANALYSIS_SIDE, ANALYSIS_SIDE))
        small = im.convert("RGB")
    small.thumbnail((ANALYSIS_SIDE, ANALYSIS_SIDE), Image.Resampling.BILINEAR)
    edge_mag = _edges(small.convert("L"))
    edge_bin = edge_mag.point(lambda v: 255 if v >= EDGE_THRESHOLD else 0)
    inner_rgb = small.crop((1, 1, small.size[0] - 1, small.size[1] - 1))
    return AnchorView(width=w, height=h, small=small, edge_bin=edge_bin, inner_rgb=inner_rgb)


def check_resolution(view: AnchorView) -> CheckItem:
    """The short side: 1024 px or more keeps the face sharp."""
    w, h = view.width, view.height
    short = min(w, h)
    if short >= GOOD_SHORT_SIDE:
        return CheckItem("Sharpness", Level.PASS, f"Big enough to stay sharp ({w}×{h}).")
    return CheckItem(
        "Sharpness",
        Level.WARN,
        f"A little small ({w}×{h}): a picture at least 1024 px on its short side keeps the face sharp.",
    )


def check_aspect_ratio(view: AnchorView) -> CheckItem:
    """Within 9:16 to 16:9, the shapes a shot can take without losing much of the frame."""
    w, h = view.width, view.height
    ratio = w / h
    label = _ratio_label(w, h)
    shape = "square" if abs(ratio - 1) <= 0.02 else ("portrait" if ratio < 1 else "landscape")
    if 9 / 16 * 0.99 <= ratio <= 16 / 9 * 1.01:
        return CheckItem("Shape", Level.PASS, f"A {shape} picture ({label}), a shape every shot can use.")
    return CheckItem(
        "Shape",
        Level.WARN,
        f"Very {'tall' if ratio < 1 else 'wide'} ({label}): crop it to 9:16, 1:1 or 16:9 so shots keep all of it.",
    )


def check_centred_subject(view: AnchorView) -> CheckItem:
    """Something stands out from the background, and its centre is in the middle third."""
    centre = _subject_centre(view.inner_rgb, view.edge_bin)
    if centre is None:
        return CheckItem(
            "Person in the middle",
            Level.WARN,
            "Nobody stands out from the background; is anyone in the picture?",
        )
    cx, cy, _share = centre
    if 1 / 3 <= cx <= 2 / 3 and 1 / 3 <= cy <= 2 / 3:
        return CheckItem("Person in the middle", Level.PASS, "The person is in the middle of the picture.")
    side = "left" if cx < 1 / 3 else "right" if cx > 2 / 3 else "top" if cy < 1 / 3 else "bottom"
    return CheckItem(
        "Person in the middle",
        Level.WARN,
        f"The person is off to the {side}; a centred portrait stays in frame when a shot changes the shape.",
    )


def check_background(view: AnchorView) -> CheckItem:
    """A calm background: few edges and little colour spread in the border band."""
    edge_bin = view.edge_bin
    band_density = _band_edge_density(edge_bin)
    middle = _centre_mask(edge_bin.size)
    centre_density = ImageStat.Stat(edge_bin, middle).mean[0] / 255
    band_std = _band_colour_spread(view.inner_rgb)
    busy = band_density > BUSY_BORDER_DENSITY or (
        band_density > CALM_BORDER_DENSITY
        and (band_density >= centre_density or band_std > BUSY_BORDER_STDDEV)
    )
    if busy:
        return CheckItem(
            "Plain background",
            Level.WARN,
            "The background is busy (patterns, objects or people); a plain one keeps the video on the face.",
        )
    return CheckItem("Plain background", Level.PASS, "The background is plain.")


BUILT_IN_CHECKS: tuple[Check, ...] = (
    check_resolution,
    check_aspect_ratio,
    check_centred_subject,
    check_background,
)

CLOSING_NOTE = CheckItem(
    "Expression and camera",
    Level.INFO,
    "A calm face looking at an eye-level camera works best; the bot can't check that, so have a look yourself.",
)


def anchor_checklist(data: bytes, extra: Sequence[Check] = ()) -> list[CheckItem]:
    """Judge an (ideally normalised) image as an anchor, from its pixels: built-in checks, `extra`, closing note."""
    view = analyse(data)
    items = [item for check in (*BUILT_IN_CHECKS, *extra) if (item := check(view)) is not None]
    items.append(CLOSING_NOTE)
    return items
