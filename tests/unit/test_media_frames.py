"""bot.media.frames on real mp4s made with the bundled ffmpeg: every frame of an indexed clip says which frame it
is (tests/fakes/media_samples.py), and every answer is compared with a full decode of the clip."""

from __future__ import annotations

import io
import subprocess
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from bot.media.frames import frame_at, frame_at_async, last_frame, last_frame_async
from bot.media.video import VideoError
from tests.fakes.media_samples import ffmpeg_exe, indexed_clip, read_index, small_mp4

# x264 with a fixed B-frame pattern and no scene cuts: 49 frames end "P48 B46 B45 B47" in decode order, and a
# keyframe every 20 frames means the last frame is found by seeking, not by decoding from the start.
B_FRAMES = ("-preset", "veryfast", "-x264-params", "scenecut=0:bframes=3:b-adapt=0:keyint=20")


def _decode_all(path: Path) -> list[av.VideoFrame]:
    with av.open(str(path)) as container:
        return list(container.decode(video=0))


def _pixels(png: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(png)) as im:
        assert im.format == "PNG"
        return np.asarray(im.convert("RGB"))


def _rgb(frame: av.VideoFrame) -> np.ndarray:
    return np.asarray(frame.to_image())


def _which(png: bytes, frames: list[av.VideoFrame]) -> list[int]:
    """Indexes of the decoded frames whose picture is exactly `png`'s."""
    got = _pixels(png)
    return [i for i, f in enumerate(frames) if np.array_equal(_rgb(f), got)]


def test_last_frame_is_the_last_shown_frame_when_the_last_packets_are_b_frames(tmp_path: Path) -> None:
    clip = indexed_clip(tmp_path / "b.mp4", frames=49, video_opts=B_FRAMES)
    with av.open(str(clip)) as container:
        packets = [p for p in container.demux(video=0) if p.size]
    latest = max(p.pts for p in packets)
    assert packets[-1].pts < latest  # the premise: decode order ends on B-frames, not on the last shown frame
    assert sum(p.is_keyframe for p in packets) == 3

    frames = _decode_all(clip)
    assert [read_index(f)[1] for f in frames] == list(range(49))
    png = last_frame(clip)
    assert _which(png, frames) == [48]  # the full decode's last frame, pixel for pixel, and no other


def test_last_frame_of_a_one_keyframe_clip_with_sound(tmp_path: Path) -> None:
    clip = indexed_clip(
        tmp_path / "one-gop.mp4",
        frames=120,
        audio="stereo",
        video_opts=("-preset", "veryfast", "-x264-params", "scenecut=0:keyint=300"),
    )
    frames = _decode_all(clip)
    assert _which(last_frame(clip), frames) == [119]


@pytest.mark.parametrize("rotation", [90, -90, 180])
def test_last_frame_applies_the_display_rotation_at_an_odd_size(tmp_path: Path, rotation: int) -> None:
    clip = indexed_clip(
        tmp_path / "phone.mp4",
        frames=30,
        size=(321, 241),
        pix_fmt="yuv444p",  # x264 takes odd sizes only without chroma subsampling
        rotation=rotation,
        video_opts=("-preset", "veryfast", "-crf", "12"),
    )
    got = _pixels(last_frame(clip))
    assert got.shape[:2] == ((241, 321) if rotation == 180 else (321, 241))
    # ffmpeg's own autorotate is the reference: its last frame of the clip, as a PNG
    ref_path = tmp_path / "ref.png"
    cmd = [ffmpeg_exe(), "-v", "error", "-y", "-i", str(clip), "-update", "1", "-pix_fmt", "rgb24"]
    subprocess.run([*cmd, str(ref_path)], check=True, timeout=60)
    ref = np.asarray(Image.open(ref_path).convert("RGB"))
    assert ref.shape == got.shape
    assert np.abs(ref.astype(int) - got.astype(int)).max() <= 2


def test_last_frame_with_a_non_zero_start_time(tmp_path: Path) -> None:
    clip = indexed_clip(tmp_path / "c.mp4", frames=49, video_opts=B_FRAMES)
    ts = tmp_path / "c.ts"  # MPEG-TS starts at 1.4 s and has no index: seeking is by timestamp
    cmd = [ffmpeg_exe(), "-v", "error", "-y", "-i", str(clip), "-c", "copy", str(ts)]
    subprocess.run(cmd, check=True, timeout=60)
    frames = _decode_all(ts)
    assert frames[0].time > 1
    assert _which(last_frame(ts), frames) == [48]
    assert _which(frame_at(ts, 1.0), frames) == [24]  # counted from the first frame, not from zero


def test_frame_at_is_the_frame_shown_at_that_time(tmp_path: Path) -> None:
    clip = indexed_clip(tmp_path / "b.mp4", frames=49, video_opts=B_FRAMES)  # 24 fps, about 2 s
    frames = _decode_all(clip)
    for seconds, shown in [(0, 0), (0.01, 0), (1.0, 24), (1.03, 24), (1.05, 25), (47 / 24, 47), (2.0, 48)]:
        assert _which(frame_at(clip, seconds), frames) == [shown], seconds
    assert _which(frame_at(clip, 1000), frames) == [48]  # past the end: the last frame
    middle = frame_at(clip, 49 / 24 / 2)  # a take's storyboard picture: its middle frame
    assert _which(middle, frames) == [24]
    for bad in (-0.1, float("nan"), float("inf")):
        with pytest.raises(ValueError):
            frame_at(clip, bad)


def test_refuses_what_is_not_a_video(tmp_path: Path) -> None:
    text = tmp_path / "notes.mp4"
    text.write_text("not a video\n" * 40)
    sound = tmp_path / "tone.m4a"
    cmd = [ffmpeg_exe(), "-v", "error", "-y", "-f", "lavfi", "-i", "sine=duration=1", str(sound)]
    subprocess.run(cmd, check=True, timeout=60)
    for path in (text, sound, tmp_path / "missing.mp4"):
        with pytest.raises(VideoError):
            last_frame(path)
        with pytest.raises(VideoError):
            frame_at(path, 0.5)


async def test_async_wrappers(tmp_path: Path) -> None:
    clip = tmp_path / "small.mp4"
    clip.write_bytes(small_mp4())
    frames = _decode_all(clip)
    assert _which(await last_frame_async(clip), frames) == [len(frames) - 1]
    assert _which(await frame_at_async(clip, 1.0), frames) == [24]
