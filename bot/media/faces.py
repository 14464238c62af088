"""Face identity: find faces, describe them with a 128-d embedding, check an anchor's face, score a clip.

Everything here is synchronous CPU work. dlib holds the GIL while it computes (75-170 ms a call), so run it in a
process pool, not threads: `ProcessPoolExecutor(max_workers=1, mp_context=<spawn or forkserver>,
initializer=pool_initializer)` kept the event loop's worst lag at 15-66 ms while 4 clips were scored, threads at
140-320 ms (bench/README.md, "Faces"). Imports: numpy, Pillow, PyAV and dlib only.

Models (no download at run time): dlib's HOG frontal face detector (built into dlib), and two model files
shipped inside the `face_recognition_models` package: the **5-point** shape predictor (eye corners and the base
of the nose; the 68-point model's training data forbids commercial use, so it is never loaded) and dlib's ResNet
face recognition model (a 128-d descriptor; two photos of one person are usually closer than 0.6). The package's
own functions import `pkg_resources`, which newer setuptools no longer ship, so its directory is found with
`importlib.util.find_spec`, which does not import the package.

The models load once per process, on first use, under a lock. If dlib or a model file cannot load,
`face_engine_status()` says why and every other function raises `FaceEngineUnavailable`; nothing else in the
bot depends on this module loading.

5-point landmark order (dlib's model, checked on a real face): 0 and 1 are the outer and inner corners of the
eye on the viewer's right (the subject's left eye), 2 and 3 the outer and inner corners of the eye on the
viewer's left, 4 the base of the nose.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import math
import os
import statistics
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

# A frame matches the anchor when its face's distance to the nearest anchor embedding is below this.
# dlib documents 0.6 as its same-person threshold (99.38 % on LFW). Measured in tests/unit/test_faces.py on real
# photos (5-point alignment, num_jitters=0):
#   same person, the astronaut portrait vs: the 512 px original 0.06, zoom/shift 0.04-0.07, rotated 8° 0.04,
#     JPEG q=35 0.09, 480×360 letterbox 0.06, frames of an H.264 640×480 clip 0.06-0.10,
#     (harsher: JPEG q=10 0.22, mirrored 0.20);
#   different people: astronaut vs Grace Hopper 0.69 (clip frames 0.68-0.71), astronaut vs Luis Pedro Coelho
#     0.89, Hopper vs Coelho 0.87.
# We keep dlib's 0.6. Our same-person variants all come from one photo, so they understate how far a real take
# (new pose, expression, light) sits from the anchor; dlib's 0.6 was set across different photos of a person. A
# drift triggers a paid re-roll, so the threshold must not flag a true match; the closest stranger here (two
# women, both older studio portraits) is still 0.08 above it. It is a setting; callers pass their own.
DEFAULT_THRESHOLD = 0.6

# The distance that scores 0 % (twice dlib's same-person distance; unrelated faces sit at ≈ 0.8-1.0).
SCORE_ZERO_DISTANCE = 1.2

# Face detection runs on a copy whose long side is at most this (HOG costs grow with the pixel count:
# ≈ 75 ms at 1280×720, ≈ 270 ms at 2048×1536 on the 2-core dev machine). The HOG detector finds faces from
# about 80 px tall, i.e. ≈ 11 % of a 1280×720 frame's height. Landmarks and embeddings use the full image.
DETECT_MAX_SIDE = 1280

DOMINANT_RATIO = 1.5  # with 2+ faces, the largest is "the" face if its box is this much taller than the next

# Which detections are faces. dlib's HOG detector (run at its default threshold, 0) also fires on face-like
# things: on the mission patch on the astronaut's chest (skimage's astronaut photo), with a box as large as her
# face, so her portrait read as "more than one face" and stored no embedding, and clip frames scored the patch.
# The detector's score tells them apart. The best-scoring detection always counts; another counts as a face
# when it scores at least SECOND_FACE_MIN_SCORE on its own, or at least SECOND_FACE_MIN_RATIO of the best score
# (two equally unsure detections are both faces). Among the faces that count, the largest is the character.
# Measured (dlib 20, detection on the image as `_detect` sees it):
#   not faces: the patch 0.00-0.47 over 1,242 rescaled (0.6-4x), recompressed and relit copies of the photo, at
#     most 0.52 of her face's score; the patch sewn on Grace Hopper's portrait as a badge 0.01-0.37;
#   faces: single portraits 1.1-1.6 (Coelho's 3.5), heads tilted 10-20° 0.59-0.85; the second person of two
#     real photos side by side 1.20-1.62, as little as 0.51 of the best score (Hopper 1.62 beside Coelho 3.17).
# A ratio alone cannot separate them (0.52 vs 0.51). The floor sits 0.13 above the patch's worst, the ratio 0.23
# above its worst ratio. A real second face scoring under both (a blurred or turned head beside a sure one) is
# missed: the anchor passes with its largest counted face as the character instead of being refused, a smaller
# harm than a false second face, which refused a one-person anchor and left it without an embedding.
SECOND_FACE_MIN_SCORE = 0.6
SECOND_FACE_MIN_RATIO = 0.75


class FaceEngineUnavailable(RuntimeError):
    """dlib or its model files could not be loaded; the message says why (safe to show on /status)."""


class ClipUnreadable(ValueError):
    """The clip could not be opened or decoded as a video."""


# --------------------------------------------------------------------------------------------------------
# Loading the models
# --------------------------------------------------------------------------------------------------------

_PREDICTOR_FILE = "shape_predictor_5_face_landmarks.dat"
_ENCODER_FILE = "dlib_face_recognition_resnet_model_v1.dat"


@dataclass(frozen=True)
class _Engine:
    dlib: Any
    detector: Any
    predictor: Any
    encoder: Any
    # dlib's detector and DNN are not safe for concurrent use of one instance. They hold the GIL anyway
    # (measured: two threads take as long as one), so serialising them costs nothing.
    lock: threading.Lock = field(default_factory=threading.Lock)


_load_lock = threading.Lock()
_engine: _Engine | None = None
_failure: str | None = None


def model_dir() -> Path:
    """The folder of model files inside the installed `face_recognition_models` package (not imported)."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise FaceEngineUnavailable("the face_recognition_models package is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "models"


def _load() -> _Engine:
    global _engine, _failure
    if _engine is not None:
        return _engine
    with _load_lock:
        if _engine is not None:
            return _engine
        if _failure is not None:
            raise FaceEngineUnavailable(_failure)
        try:
            try:
                import dlib
            except ImportError as exc:
                raise FaceEngineUnavailable(f"dlib is not installed or does not load ({exc})") from exc
            folder = model_dir()
            paths = {name: folder / name for name in (_PREDICTOR_FILE, _ENCODER_FILE)}
            missing = [name for name, path in paths.items() if not path.is_file()]
            if missing:
                raise FaceEngineUnavailable(f"face model file missing: {', '.join(missing)} in {folder}")
            try:
                engine = _Engine(
                    dlib=dlib,
                    detector=dlib.get_frontal_face_detector(),
                    predictor=dlib.shape_predictor(str(paths[_PREDICTOR_FILE])),
                    encoder=dlib.face_recognition_model_v1(str(paths[_ENCODER_FILE])),
                )
            except Exception as exc:  # dlib raises RuntimeError on a corrupt file
                raise FaceEngineUnavailable(f"a face model file does not load ({exc})") from exc
        except FaceEngineUnavailable as exc:
            _failure = str(exc)
            raise
        _engine = engine
        return engine


def face_engine_status() -> tuple[bool, str]:
    """(True, what is loaded) or (False, why not), for /status. Loads the models if they are not loaded yet."""
    try:
        engine = _load()
    except FaceEngineUnavailable as exc:
        return False, f"face checks off: {exc}"
    return True, f"face checks on: dlib {engine.dlib.__version__}, 5-point landmarks, 128-d embedding"


def pool_initializer(nice: int = 10) -> None:
    """For `ProcessPoolExecutor(initializer=faces.pool_initializer, mp_context=<spawn or forkserver>)`: lower the
    worker's CPU priority, so the bot's event loop wins the CPU whenever it needs it, and load the models now
    rather than on the first job. A failure to load is kept for face_engine_status() and the jobs."""
    if nice:
        with contextlib.suppress(OSError):
            os.nice(nice)
    with contextlib.suppress(FaceEngineUnavailable):
        _load()


# --------------------------------------------------------------------------------------------------------
# Faces
# --------------------------------------------------------------------------------------------------------

Point = tuple[float, float]


@dataclass(frozen=True)
class Face:
    """One detected face.

    `box` is (left, top, right, bottom) in pixels of the image it was found in (dlib's box may reach a little
    past the edges); `score` is the HOG detector's score (higher is surer); `landmarks` are the 5 points (see the module docstring for their order); `image_size` is
    (width, height). `embedding` is filled eagerly by `detect_faces` (the default) and is None when it was
    called with `embeddings=False`; `embed(image, face)` computes one on demand.
    """

    box: tuple[int, int, int, int]
    landmarks: tuple[Point, Point, Point, Point, Point]
    image_size: tuple[int, int]
    embedding: np.ndarray | None = field(default=None, compare=False, repr=False)
    score: float | None = field(default=None, compare=False)  # the detector's confidence (see counts_as_face)

    @property
    def width(self) -> int:
        return self.box[2] - self.box[0]

    @property
    def height(self) -> int:
        return self.box[3] - self.box[1]

    @property
    def area(self) -> int:
        return self.width * self.height

    @property
    def centre(self) -> tuple[float, float]:
        """The box's centre as fractions of the image's width and height (0..1)."""
        left, top, right, bottom = self.box
        w, h = self.image_size
        return (left + right) / 2 / w, (top + bottom) / 2 / h

    @property
    def size_fraction(self) -> float:
        """The box's height as a fraction of the image's height."""
        return self.height / self.image_size[1]

    @property
    def eye_centres(self) -> tuple[Point, Point]:
        """(the eye on the viewer's left, the eye on the viewer's right), each the mean of its two corners."""
        p = self.landmarks
        viewer_left = ((p[2][0] + p[3][0]) / 2, (p[2][1] + p[3][1]) / 2)
        viewer_right = ((p[0][0] + p[1][0]) / 2, (p[0][1] + p[1][1]) / 2)
        return viewer_left, viewer_right

    @property
    def roll(self) -> float:
        """Head roll in degrees from the eye line: 0 when the eyes are level, positive when the eye on the
        viewer's right sits lower (the head leans to the viewer's right, clockwise on screen)."""
        (lx, ly), (rx, ry) = self.eye_centres
        return math.degrees(math.atan2(ry - ly, rx - lx))


ImageLike = Image.Image | np.ndarray | bytes


def _rgb_array(image: ImageLike) -> np.ndarray:
    """An H×W×3 uint8 C-contiguous RGB array (what dlib takes) from a PIL image, an array or encoded bytes."""
    if isinstance(image, bytes | bytearray):
        with Image.open(io.BytesIO(image)) as im:
            return np.ascontiguousarray(np.asarray(im.convert("RGB")))
    if isinstance(image, Image.Image):
        arr = np.asarray(image if image.mode == "RGB" else image.convert("RGB"))
    else:
        arr = np.asarray(image)
        if arr.ndim == 2:
            arr = np.stack([arr] * 3, axis=-1)
        if arr.ndim != 3 or arr.shape[2] not in (3, 4):
            raise ValueError(f"expected an RGB image array (H×W×3), got shape {arr.shape}")
        arr = arr[:, :, :3]
        if arr.dtype != np.uint8:
            if np.issubdtype(arr.dtype, np.floating) and arr.max(initial=0.0) <= 1.0:
                arr = arr * 255.0
            arr = np.clip(arr, 0, 255).astype(np.uint8)
    return np.ascontiguousarray(arr)


def counts_as_face(score: float, best: float) -> bool:
    """Whether a detection scoring `score` is a face, beside an image's best-scoring detection `best`."""
    return score >= best or score >= SECOND_FACE_MIN_SCORE or score >= SECOND_FACE_MIN_RATIO * best


def _detect(engine: _Engine, arr: np.ndarray) -> list[tuple[tuple[int, int, int, int], float]]:
    """(box in `arr`'s pixels, score) of each detection that counts as a face, found on a copy at most
    DETECT_MAX_SIDE pixels long."""
    h, w = arr.shape[:2]
    scale = min(1.0, DETECT_MAX_SIDE / max(w, h))
    small = arr
    if scale < 1.0:
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        small = np.asarray(Image.fromarray(arr).resize(size, Image.Resampling.BILINEAR))
    with engine.lock:
        rects, scores, _kinds = engine.detector.run(small, 0, 0.0)
    found = [
        (
            (
                round(r.left() / scale),
                round(r.top() / scale),
                round(r.right() / scale),
                round(r.bottom() / scale),
            ),
            float(score),
        )
        for r, score in zip(rects, scores, strict=True)
    ]
    best = max((score for _box, score in found), default=0.0)
    return [(box, score) for box, score in found if counts_as_face(score, best)]


def _landmarks(engine: _Engine, arr: np.ndarray, box: tuple[int, int, int, int]) -> Any:
    rect = engine.dlib.rectangle(*box)
    with engine.lock:
        return engine.predictor(arr, rect)


def _descriptor(engine: _Engine, arr: np.ndarray, shape: Any) -> np.ndarray:
    with engine.lock:
        vec = engine.encoder.compute_face_descriptor(arr, shape, 0)
    return np.asarray(vec, dtype=np.float32)


def detect_faces(image: ImageLike, *, embeddings: bool = True) -> list[Face]:
    """The faces in an RGB image (the detections that `counts_as_face`), largest first. Embeddings are computed
    eagerly (≈ 90 ms a face) unless `embeddings=False`. Raises FaceEngineUnavailable."""
    engine = _load()
    arr = _rgb_array(image)
    size = (arr.shape[1], arr.shape[0])
    faces = []
    for box, score in _detect(engine, arr):
        shape = _landmarks(engine, arr, box)
        points = tuple((float(p.x), float(p.y)) for p in shape.parts())
        emb = _descriptor(engine, arr, shape) if embeddings else None
        face = Face(box=box, landmarks=points, image_size=size, embedding=emb, score=score)  # type: ignore[arg-type]
        faces.append(face)
    faces.sort(key=lambda f: f.area, reverse=True)
    return faces


def embed(image: ImageLike, face: Face) -> np.ndarray:
    """The 128-d float32 embedding of `face` (found in this `image`). Raises FaceEngineUnavailable."""
    if face.embedding is not None:
        return face.embedding
    engine = _load()
    arr = _rgb_array(image)
    return _descriptor(engine, arr, _landmarks(engine, arr, face.box))


def face_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Euclidean distance between two embeddings (same person: below DEFAULT_THRESHOLD)."""
    return float(np.linalg.norm(np.asarray(a, dtype=np.float32) - np.asarray(b, dtype=np.float32)))


def embedding_to_bytes(embedding: np.ndarray) -> bytes:
    """512 bytes (128 little-endian float32), for storage with an anchor version."""
    return np.asarray(embedding, dtype="<f4").reshape(128).tobytes()


def embedding_from_bytes(data: bytes | bytearray) -> np.ndarray:
    if len(data) != 512:
        raise ValueError(f"a face embedding is 512 bytes, got {len(data)}")
    return np.frombuffer(data, dtype="<f4").astype(np.float32)


# --------------------------------------------------------------------------------------------------------
# Anchor faces (measurements; bot/consistency/wording.py judges and words them)
# --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FaceReport:
    """The faces of an anchor image. `count`: faces found; `dominant`: the largest face clearly dominates the
    others (or is the only one), so it stands for the character; `face` and `embedding` (512 bytes, see
    embedding_from_bytes) are that face's, None when there is no face or no dominant one."""

    count: int
    dominant: bool
    face: Face | None = None
    embedding: bytes | None = None

    @property
    def face_box(self) -> tuple[int, int, int, int] | None:
        """The character's face box (left, top, right, bottom) in the checked image's pixels, as
        `bot.media.crop.face_crop` takes it; None without a dominant face. It may reach a little past the edges."""
        return self.face.box if self.face is not None else None


def _dominant(faces: list[Face]) -> Face | None:
    """The face that stands for the character among `faces` (largest first): the largest, when it is the only
    one or DOMINANT_RATIO times as tall as the next; else None."""
    if not faces or (len(faces) > 1 and faces[0].height < DOMINANT_RATIO * faces[1].height):
        return None
    return faces[0]


def dominant_face_box(image: ImageLike) -> tuple[int, int, int, int] | None:
    """The box of the face that stands for the character (the one `face_checks` would embed), found without
    computing an embedding (≈ 90 ms less); None without a dominant face. For `bot.media.crop.face_crop`.
    Raises FaceEngineUnavailable."""
    face = _dominant(detect_faces(image, embeddings=False))
    return face.box if face is not None else None


def face_checks(image: ImageLike) -> FaceReport:
    """Find an anchor image's faces and, when one stands for the character, its embedding.
    Raises FaceEngineUnavailable."""
    arr = _rgb_array(image)
    faces = detect_faces(arr, embeddings=False)
    face = _dominant(faces)
    if face is None:
        return FaceReport(count=len(faces), dominant=False)
    emb = embed(arr, face)
    return FaceReport(
        count=len(faces),
        dominant=True,
        face=Face(face.box, face.landmarks, face.image_size, emb, face.score),
        embedding=embedding_to_bytes(emb),
    )


# --------------------------------------------------------------------------------------------------------
# Clip scoring
# --------------------------------------------------------------------------------------------------------


class Verdict(StrEnum):
    MATCH = "match"
    DRIFT = "drift"
    NO_FACE = "no_face"


@dataclass(frozen=True)
class ClipScore:
    """How well a clip's face matches the anchor.

    `distances` has one entry per sampled frame: the distance from that frame's largest face to the nearest
    anchor embedding, or None when the frame shows no face. `median_distance` is over the frames with a face.
    `score` maps that median distance d to a percent on a fixed scale, independent of the threshold setting (so
    stored scores stay comparable): round(100 · (1 − d / SCORE_ZERO_DISTANCE)), clamped to 0..100. With
    SCORE_ZERO_DISTANCE = 1.2: d = 0 → 100 %, dlib's 0.6 → 50 %, the clip made from the anchor in the tests
    (d ≈ 0.07) → 94 %, the closest stranger there (0.69) → 43 %. None when no frame has a face.
    Verdict: NO_FACE when no frame has a face; DRIFT when fewer than half of the frames with a face match;
    MATCH otherwise. The figures in the texts are matching frames / frames sampled.
    """

    frames_sampled: int
    frames_with_face: int
    frames_matching: int
    median_distance: float | None
    score: int | None
    verdict: Verdict
    threshold: float
    distances: tuple[float | None, ...] = ()


def similarity_percent(distance: float) -> int:
    """A distance as a 0..100 score: 100 at 0, 50 at dlib's 0.6, 0 at SCORE_ZERO_DISTANCE and beyond."""
    return max(0, min(100, round(100 * (1 - distance / SCORE_ZERO_DISTANCE))))


def sample_frames(
    video_path: str | Path, frames: int = 8, *, max_side: int = DETECT_MAX_SIDE
) -> list[np.ndarray]:
    """`frames` RGB frames spread evenly over the clip (the middle frame of each of `frames` equal parts),
    scaled so the long side is at most `max_side`. Fewer when the clip has fewer frames.

    A first pass reads packet timestamps only (no decoding) to know the frames and keyframes; the second pass
    seeks to the keyframe before a wanted frame only when that skips frames, else decodes on, so no frame is
    decoded twice. Raises ClipUnreadable."""
    import av

    if frames < 1:
        raise ValueError("frames must be at least 1")
    try:
        with av.open(str(video_path)) as container:
            if not container.streams.video:
                raise ClipUnreadable("the file has no video stream")
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            pts_all, keys = _packet_times(container, stream)
            n = len(pts_all)
            wanted = sorted({pts_all[min(n - 1, int((i + 0.5) * n / frames))] for i in range(frames)})
            return _decode_wanted(container, stream, wanted, keys, pts_all[0], max_side)
    except ClipUnreadable:
        raise
    except (av.error.FFmpegError, OSError) as exc:
        raise ClipUnreadable(f"cannot decode the clip: {exc}") from exc


def _packet_times(container: Any, stream: Any) -> tuple[list[int], list[int]]:
    """(every frame's pts, the keyframes' pts), both sorted, from demuxing alone; ClipUnreadable when none."""
    pts_all: list[int] = []
    keys: list[int] = []
    for packet in container.demux(stream):
        if packet.pts is None or packet.size == 0:
            continue
        pts_all.append(packet.pts)
        if packet.is_keyframe:
            keys.append(packet.pts)
    if not pts_all:
        raise ClipUnreadable("the video stream has no frames")
    return sorted(pts_all), sorted(keys)


def _decode_wanted(
    container: Any, stream: Any, wanted: list[int], keys: list[int], first_pts: int, max_side: int
) -> list[np.ndarray]:
    """The frames at the `wanted` pts, seeking to a keyframe only when that skips frames not yet decoded."""
    out: list[np.ndarray] = []
    last_decoded: int | None = None
    decoder = None
    for target in wanted:
        key = max((k for k in keys if k <= target), default=None)
        if decoder is None or (key is not None and last_decoded is not None and key > last_decoded):
            container.seek(key if key is not None else first_pts, stream=stream, backward=True)
            decoder = container.decode(stream)
        frame, last_decoded = _decode_until(decoder, target, last_decoded)
        if frame is not None:
            out.append(_frame_rgb(frame, max_side))
    return out


def _decode_until(decoder: Any, target: int, last: int | None) -> tuple[Any, int | None]:
    """The first frame at or after `target` (None when the decoder runs out) and the last pts decoded."""
    for frame in decoder:
        last = frame.pts if frame.pts is not None else 0
        if last >= target:
            return frame, last
    return None, last


def _frame_rgb(frame: Any, max_side: int) -> np.ndarray:
    """A decoded frame as an RGB array, scaled (to even sides) so its long side is at most `max_side`."""
    w, h = frame.width, frame.height
    scale = min(1.0, max_side / max(w, h))
    fw, fh = (round(w * scale) // 2 * 2, round(h * scale) // 2 * 2) if scale < 1 else (w, h)
    return np.asarray(frame.reformat(width=fw, height=fh, format="rgb24").to_ndarray())


def _embedding_matrix(embeddings: Sequence[np.ndarray | bytes]) -> np.ndarray:
    """The embeddings (arrays, or the 512-byte form FaceReport.embedding stores) as an N×128 float32 matrix."""
    return np.stack(
        [
            embedding_from_bytes(e)
            if isinstance(e, bytes | bytearray)
            else np.asarray(e, np.float32).reshape(128)
            for e in embeddings
        ]
    )


def _clip_score(distances: list[float | None], threshold: float) -> ClipScore:
    """The verdict and score of one character over the sampled frames' distances (None: no face there)."""
    seen = [d for d in distances if d is not None]
    matching = sum(1 for d in seen if d < threshold)
    if not seen:
        verdict, median, score = Verdict.NO_FACE, None, None
    else:
        median = float(statistics.median(seen))
        score = similarity_percent(median)
        verdict = Verdict.DRIFT if matching * 2 < len(seen) else Verdict.MATCH
    return ClipScore(
        frames_sampled=len(distances),
        frames_with_face=len(seen),
        frames_matching=matching,
        median_distance=median,
        score=score,
        verdict=verdict,
        threshold=threshold,
        distances=tuple(distances),
    )


def _area(box: tuple[int, int, int, int]) -> int:
    return (box[2] - box[0]) * (box[3] - box[1])


def score_clip(
    video_path: str | Path,
    anchor_embeddings: list[np.ndarray] | list[bytes],
    *,
    frames: int = 8,
    threshold: float = DEFAULT_THRESHOLD,
) -> ClipScore:
    """Score a clip against the anchor's embeddings (the anchor and its angles): sample `frames` frames, take
    each frame's largest face, and compare it with the nearest anchor embedding (arrays, or the 512-byte form
    that FaceReport.embedding stores). Raises FaceEngineUnavailable,
    ClipUnreadable."""
    if not anchor_embeddings:
        raise ValueError("score_clip needs at least one anchor embedding")
    engine = _load()
    anchors = _embedding_matrix(anchor_embeddings)
    distances: list[float | None] = []
    for arr in sample_frames(video_path, frames):
        boxes = [box for box, _score in _detect(engine, arr)]
        if not boxes:
            distances.append(None)
            continue
        box = max(boxes, key=_area)
        vec = _descriptor(engine, arr, _landmarks(engine, arr, box))
        distances.append(float(np.linalg.norm(anchors - vec, axis=1).min()))
    return _clip_score(distances, threshold)


def _frame_descriptors(engine: _Engine, arr: np.ndarray, max_faces: int) -> np.ndarray | None:
    """The embeddings (F×128) of a frame's `max_faces` largest faces, None when it shows no face."""
    boxes = sorted((box for box, _score in _detect(engine, arr)), key=_area, reverse=True)[:max_faces]
    if not boxes:
        return None
    return np.stack([_descriptor(engine, arr, _landmarks(engine, arr, box)) for box in boxes])


def score_clip_cast(
    video_path: str | Path,
    cast: Sequence[Sequence[np.ndarray | bytes]],
    *,
    frames: int = 8,
    threshold: float = DEFAULT_THRESHOLD,
    max_faces: int = 6,
) -> list[ClipScore]:
    """Score a clip against several characters at once: one ClipScore per character, in `cast`'s order (each
    character is its embeddings: the anchor and its angles, arrays or the stored 512-byte form).

    The frames are sampled and decoded once, and every face of a frame (its `max_faces` largest) is described
    once. A character's distance in a frame is the smallest distance between any of the frame's faces and any
    of the character's embeddings (None when the frame shows no face); the verdict and score then follow
    exactly as in `score_clip`, which this equals for one character when each frame shows one face.

    Two characters may match the same face: faces are not assigned to characters. An assignment (each face to
    at most one character) would cost a matching step per frame for a rare case, two characters similar enough
    to share a face, and would not catch the common failure anyway: a character the model left out of the clip
    matches no face in any frame, so it still drifts, and a face morphing into another character's shows as
    that character's match with the first one drifting. Raises FaceEngineUnavailable, ClipUnreadable."""
    if not cast or any(not character for character in cast):
        raise ValueError("score_clip_cast needs at least one character, each with at least one embedding")
    if max_faces < 1:
        raise ValueError("max_faces must be at least 1")
    engine = _load()
    characters = [_embedding_matrix(character) for character in cast]
    per_character: list[list[float | None]] = [[] for _ in characters]
    for arr in sample_frames(video_path, frames):
        found = _frame_descriptors(engine, arr, max_faces)
        for embeddings, distances in zip(characters, per_character, strict=True):
            if found is None:
                distances.append(None)
            else:  # every face against every embedding of the character: F×E distances, the smallest counts
                pairwise = np.linalg.norm(found[:, None, :] - embeddings[None, :, :], axis=2)
                distances.append(float(pairwise.min()))
    return [_clip_score(distances, threshold) for distances in per_character]
