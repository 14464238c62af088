"""bot.media.video against real files made with Pillow and the bundled ffmpeg (no mocks)."""

from __future__ import annotations

import asyncio
import itertools
import math
import struct
import subprocess
import time
import wave
from pathlib import Path

import av
import pytest
from PIL import Image, ImageDraw

from bot.media.outputs import (
    BadOutput,
    Reason,
    check_audio,
    check_audio_async,
    check_video,
    check_video_async,
)
from bot.media.video import (
    VideoError,
    VideoInfo,
    VideoTooLarge,
    concat,
    ffmpeg_exe,
    fit_to_size,
    fit_video,
    make_dry_run_clip,
    mux,
    probe,
    probe_details,
)
from tests.fakes.media_samples import indexed_clip, read_index, small_mp4


def _still(path: Path, size: tuple[int, int]) -> Path:
    im = Image.new("RGB", size, (220, 215, 205))
    d = ImageDraw.Draw(im)
    w, h = size
    d.ellipse((w * 0.3, h * 0.2, w * 0.7, h * 0.7), fill=(190, 150, 120))
    d.rectangle((0, 0, w // 10, h // 10), fill=(200, 0, 0))
    im.save(path, "JPEG", quality=95)
    return path


def _leftovers(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if p.name.endswith(".part")]


def _decodes(path: Path) -> None:
    cmd = [ffmpeg_exe(), "-v", "error", "-xerror", "-i", str(path), "-f", "null", "-"]
    subprocess.run(cmd, check=True, timeout=60)


def _noise_clip(path: Path, *, seconds: int = 5, size: str = "1280x720", audio: bool = True) -> Path:
    """A high-bitrate clip of moving noise (hard to compress), optionally with a sine tone."""
    args = [
        ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y",
        "-f", "lavfi", "-i", f"testsrc2=size={size}:rate=24:duration={seconds},noise=alls=40:allf=t",
    ]  # fmt: skip
    if audio:
        args += ["-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}"]
    args += ["-c:v", "libx264", "-preset", "ultrafast", "-b:v", "8M", "-pix_fmt", "yuv420p"]
    args += ["-c:a", "aac", "-b:a", "128k"] if audio else ["-an"]
    args += ["-shortest", str(path)]
    subprocess.run(args, check=True, timeout=120)
    return path


async def test_dry_run_clip_is_playable_and_keeps_aspect(tmp_path: Path) -> None:
    img = _still(tmp_path / "anchor.jpg", (1365, 2048))
    out = tmp_path / "clip.mp4"
    started = time.perf_counter()
    await make_dry_run_clip(img, out, duration_s=5)
    elapsed = time.perf_counter() - started
    print(f"make_dry_run_clip 5 s @ 640: {elapsed:.2f} s")
    info = await probe(out)
    assert isinstance(info, VideoInfo)
    assert abs(info.duration_s - 5) <= 0.2
    assert info.width % 2 == 0 and info.height % 2 == 0
    assert max(info.width, info.height) <= 640
    assert abs(info.width / info.height - 1365 / 2048) < 0.01
    assert info.size_bytes == out.stat().st_size > 0
    assert not _leftovers(tmp_path)
    # The file really decodes end to end.
    await asyncio.to_thread(_decodes, out)
    assert elapsed < 30


async def test_dry_run_clip_landscape_odd_size(tmp_path: Path) -> None:
    img = _still(tmp_path / "wide.jpg", (1001, 563))
    out = tmp_path / "wide.mp4"
    await make_dry_run_clip(img, out, duration_s=2, fps=12, max_side=320)
    info = await probe(out)
    assert (info.width, info.height) == (320, 180)
    assert abs(info.duration_s - 2) <= 0.2


async def test_dry_run_clip_bad_image(tmp_path: Path) -> None:
    bad = tmp_path / "x.jpg"
    bad.write_bytes(b"not an image")
    with pytest.raises(VideoError):
        await make_dry_run_clip(bad, tmp_path / "o.mp4", duration_s=1)
    assert not (tmp_path / "o.mp4").exists()


async def test_fit_to_size_shrinks_and_keeps_duration(tmp_path: Path) -> None:
    src = _noise_clip(tmp_path / "big.mp4")
    before = await probe(src)
    assert before.size_bytes > 2_500_000
    dst = tmp_path / "small.mp4"
    started = time.perf_counter()
    report = await fit_video(src, dst, max_bytes=1_000_000)
    after = report.info
    elapsed = time.perf_counter() - started
    assert report.passes == 1  # a clip that can fit fits in one encode
    print(f"fit_to_size {before.size_bytes} -> {after.size_bytes} bytes in {elapsed:.2f} s")
    assert after.size_bytes <= 1_000_000
    assert after.size_bytes == dst.stat().st_size
    assert abs(after.duration_s - before.duration_s) <= 0.2
    assert after.width % 2 == 0 and after.height % 2 == 0
    assert not _leftovers(tmp_path)


async def test_fit_to_size_scales_down_when_starved(tmp_path: Path) -> None:
    src = _noise_clip(tmp_path / "big.mp4", seconds=4, size="1920x1080", audio=False)
    dst = tmp_path / "small.mp4"
    report = await fit_video(src, dst, max_bytes=400_000)
    after = report.info
    assert report.passes == 1
    assert after.size_bytes <= 400_000
    assert max(after.width, after.height) <= 1280
    assert abs(after.width / after.height - 16 / 9) < 0.02


async def test_fit_to_size_copies_small_enough_file(tmp_path: Path) -> None:
    src = _noise_clip(tmp_path / "clip.mp4", seconds=1, size="320x180", audio=False)
    dst = tmp_path / "copy.mp4"
    info = await fit_to_size(src, dst, max_bytes=src.stat().st_size)
    assert (await fit_video(src, tmp_path / "again.mp4", max_bytes=src.stat().st_size)).passes == 0
    assert dst.read_bytes() == src.read_bytes()
    assert info.size_bytes == src.stat().st_size


async def test_fit_to_size_impossible_target(tmp_path: Path) -> None:
    src = _noise_clip(tmp_path / "big.mp4", size="640x360")
    dst = tmp_path / "tiny.mp4"
    with pytest.raises(VideoTooLarge):
        await fit_to_size(src, dst, max_bytes=10_000)
    assert not dst.exists()
    assert not _leftovers(tmp_path)


async def test_probe_rejects_non_video(tmp_path: Path) -> None:
    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video\n" * 50)
    with pytest.raises(VideoError):
        await probe(text)
    png = tmp_path / "still.png"
    Image.new("RGB", (64, 64), "red").save(png)
    with pytest.raises(VideoError):
        await probe(png)
    with pytest.raises(VideoError):
        await probe(tmp_path / "missing.mp4")


async def test_probe_reads_audio_video_file(tmp_path: Path) -> None:
    src = _noise_clip(tmp_path / "av.mp4", seconds=2, size="320x240")
    info = await probe(src)
    assert (info.width, info.height) == (320, 240)
    assert abs(info.duration_s - 2) <= 0.2


def _lavfi_clip(path: Path, *, size: str, rate: int, seconds: float, audio: bool) -> Path:
    args = [
        ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y",
        "-f", "lavfi", "-i", f"testsrc2=size={size}:rate={rate}:duration={seconds}",
    ]  # fmt: skip
    if audio:
        args += ["-f", "lavfi", "-i", f"sine=frequency=330:sample_rate=44100:duration={seconds}"]
    args += ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]
    args += ["-c:a", "aac", "-shortest"] if audio else ["-an"]
    subprocess.run([*args, str(path)], check=True, timeout=120)
    return path


def _sine_wav(path: Path, seconds: float, rate: int = 22050) -> Path:
    frames = int(seconds * rate)
    samples = b"".join(
        struct.pack("<h", int(12000 * math.sin(2 * math.pi * 440 * i / rate))) for i in range(frames)
    )
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples)
    return path


def _frames(path: Path) -> list[av.VideoFrame]:
    with av.open(str(path)) as container:
        return list(container.decode(video=0))


async def test_probe_details_reads_codecs_fps_and_audio(tmp_path: Path) -> None:
    src = _lavfi_clip(tmp_path / "a.mp4", size="320x240", rate=25, seconds=1, audio=True)
    meta = await probe_details(src)
    assert meta.video_codec == "h264" and meta.audio_codec == "aac" and meta.has_audio
    assert meta.fps == pytest.approx(25)
    assert meta.container.startswith("mov")
    silent = await probe_details(
        _lavfi_clip(tmp_path / "b.mp4", size="160x120", rate=12, seconds=1, audio=False)
    )
    assert not silent.has_audio and silent.audio_codec is None


async def test_concat_scales_pads_and_keeps_a_constant_rate(tmp_path: Path) -> None:
    a = _lavfi_clip(tmp_path / "a.mp4", size="320x240", rate=24, seconds=1, audio=True)
    b = _lavfi_clip(tmp_path / "b.mp4", size="640x360", rate=30, seconds=1, audio=False)
    c = _lavfi_clip(tmp_path / "c.mp4", size="240x320", rate=15, seconds=1, audio=True)
    out = tmp_path / "joined.mp4"
    info = await concat([a, b, c], out)
    meta = await probe_details(out)
    assert (info.width, info.height) == (320, 240)
    assert meta.fps == pytest.approx(24) and meta.has_audio
    assert abs(info.duration_s - 3) <= 0.15
    frames = await asyncio.to_thread(_frames, out)
    assert abs(len(frames) - 72) <= 2  # 3 s at a constant 24 fps
    assert all((f.width, f.height) == (320, 240) for f in frames)
    steps = {round(float(later.time - earlier.time), 4) for earlier, later in itertools.pairwise(frames)}
    assert steps == {round(1 / 24, 4)}
    # The portrait clip is letterboxed, not stretched: black bars left and right.
    portrait = frames[60].to_image()
    assert max(portrait.getpixel((5, 120))) < 30 and max(portrait.getpixel((314, 120))) < 30
    assert not _leftovers(tmp_path)
    await asyncio.to_thread(_decodes, out)


async def test_concat_without_any_audio_and_empty_list(tmp_path: Path) -> None:
    a = _lavfi_clip(tmp_path / "a.mp4", size="320x180", rate=24, seconds=1, audio=False)
    info = await concat([a, a], tmp_path / "twice.mp4")
    assert not (await probe_details(tmp_path / "twice.mp4")).has_audio
    assert abs(info.duration_s - 2) <= 0.15
    with pytest.raises(VideoError):
        await concat([], tmp_path / "none.mp4")


def _runs(labels: list[int]) -> list[tuple[int, int]]:
    """(label, how many in a row) for consecutive equal labels."""
    return [(label, len(list(group))) for label, group in itertools.groupby(labels)]


def _loudness(path: Path, windows: list[tuple[float, float]]) -> list[float]:
    """RMS of the first audio channel over each (start, end) window, in seconds."""
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        rate = stream.rate
        samples = [f.to_ndarray()[0] for f in container.decode(stream)]
    import numpy as np

    sound = np.concatenate(samples)
    return [float(np.sqrt(np.mean(sound[int(a * rate) : int(b * rate)] ** 2))) for a, b in windows]


async def test_concat_joins_clips_of_any_size_rate_and_sound_frame_for_frame(tmp_path: Path) -> None:
    """Five clips (tags 0-4): sizes 4:3, 16:9 and portrait; 24, 30, 15 and 25 fps; stereo 44.1 kHz, none, mono
    22.05 kHz, 5.1 48 kHz with sound 0.5 s longer than its picture, stereo stopping halfway through its picture."""
    clips = [
        indexed_clip(tmp_path / "a.mp4", frames=24, tag=0, audio="stereo", sample_rate=44100),
        indexed_clip(tmp_path / "b.mp4", frames=30, rate=30, size=(640, 360), tag=1),
        indexed_clip(
            tmp_path / "c.mp4", frames=15, rate=15, size=(240, 320), tag=2, audio="mono", sample_rate=22050
        ),
        indexed_clip(
            tmp_path / "d.mp4", frames=25, rate=25, tag=3, audio="5.1", sample_rate=48000, audio_seconds=1.5
        ),
        indexed_clip(tmp_path / "e.mp4", frames=48, tag=4, audio="stereo", audio_seconds=1.0),
    ]
    out = tmp_path / "scene.mp4"
    info = await concat(clips, out)
    meta = await probe_details(out)
    assert (info.width, info.height) == (320, 240) and meta.fps == pytest.approx(24)
    frames = await asyncio.to_thread(_frames, out)
    seen = [read_index(f) for f in frames]
    # Each clip in order, once, for its own length at 24 fps (1 s each, 2 s for the last): the sum of the parts.
    assert _runs([tag for tag, _ in seen]) == [(0, 24), (1, 24), (2, 24), (3, 24), (4, 48)]
    start = 0
    for (tag, count), rate in zip(_runs([tag for tag, _ in seen]), [24, 30, 15, 25, 24], strict=True):
        shown = [n for _, n in seen[start : start + count]]
        start += count
        assert shown[0] == 0 and shown == sorted(shown), tag  # from the clip's first frame, never backwards
        assert all(abs(n - j * rate / 24) <= 1 for j, n in enumerate(shown)), (tag, shown)
    assert [n for t, n in seen if t == 0] == list(range(24))  # same rate: every frame, exactly
    assert [n for t, n in seen if t == 4] == list(range(48))
    with av.open(str(out)) as container:
        lengths = {s.type: float(s.duration * s.time_base) for s in container.streams}
        audio = container.streams.audio[0]
        assert audio.channels == 2 and audio.rate == 48000
    assert abs(lengths["video"] - 6.0) <= 1 / 24 and abs(lengths["audio"] - 6.0) <= 0.05
    # Sound where each clip has it and silence where it has none, at the right times (no drift at the joints):
    # a 0-1 s, b (silent) 1-2, c 2-3, d 3-4 (its extra half second cut), e 4-5 then silent 5-6.
    loud = await asyncio.to_thread(
        _loudness, out, [(0.1, 0.9), (1.1, 1.9), (2.1, 2.9), (3.1, 3.9), (4.1, 4.9), (5.1, 5.9)]
    )
    assert [level > 0.05 for level in loud] == [True, False, True, True, True, False], loud
    assert not _leftovers(tmp_path)


def _nal_units(packet: bytes) -> list[bytes]:
    """The NAL units of an mp4 H.264 packet (each behind a 4-byte big-endian length)."""
    units, at = [], 0
    while at < len(packet):
        size = int.from_bytes(packet[at : at + 4], "big")
        units.append(packet[at + 4 : at + 4 + size])
        at += 4 + size
    return units


def _video_packets(path: Path) -> list[bytes]:
    with av.open(str(path)) as container:
        return [bytes(p) for p in container.demux(video=0) if p.size]


async def test_concat_joins_takes_of_one_model_without_re_encoding_them(tmp_path: Path) -> None:
    """Takes encoded alike (one model): the pictures are joined as they are, packet for packet; the sound is
    re-encoded to each picture's length (stereo, none, mono that runs 0.7 s past its picture)."""
    takes = [
        indexed_clip(tmp_path / "one.mp4", frames=30, tag=0, audio="stereo", sample_rate=48000),
        indexed_clip(tmp_path / "it's two.mp4", frames=24, tag=1),  # a quote in the name, for the list file
        indexed_clip(tmp_path / "three.mp4", frames=42, tag=2, audio="mono", audio_seconds=42 / 24 + 0.7),
    ]
    out = tmp_path / "scene.mp4"
    info = await concat(takes, out)
    joined, sources = _video_packets(out), [p for take in takes for p in _video_packets(take)]
    assert len(joined) == len(sources)
    changed = [i for i, (a, b) in enumerate(zip(joined, sources, strict=True)) if a != b]
    assert changed == [0, 30, 54]  # not re-encoded: every packet as it was, but each take's first one
    for i in changed:  # carries the (same) parameter sets in band, as the concat demuxer hands them on
        assert [n for n in _nal_units(joined[i]) if n[0] & 0x1F not in (7, 8)] == _nal_units(sources[i])
    seen = [read_index(f) for f in await asyncio.to_thread(_frames, out)]
    assert seen == [(0, n) for n in range(30)] + [(1, n) for n in range(24)] + [(2, n) for n in range(42)]
    frames = await asyncio.to_thread(_frames, out)
    steps = {round(float(b.time - a.time), 4) for a, b in itertools.pairwise(frames)}
    assert steps == {round(1 / 24, 4)}  # no gap at a joint, though take three's sound is longer
    with av.open(str(out)) as container:
        lengths = {s.type: float(s.duration * s.time_base) for s in container.streams}
    assert abs(lengths["video"] - 96 / 24) <= 1e-3 and abs(lengths["audio"] - 4.0) <= 0.05
    assert abs(info.duration_s - 4.0) <= 0.05
    loud = await asyncio.to_thread(_loudness, out, [(0.1, 1.2), (1.35, 2.15), (2.35, 3.9)])
    assert [level > 0.05 for level in loud] == [True, False, True], loud
    assert not _leftovers(tmp_path) and not list(tmp_path.glob("*.ffconcat*"))
    await asyncio.to_thread(_decodes, out)
    assert abs(check_video(out).duration_s - 4.0) <= 0.05

    again = await concat(takes, tmp_path / "encoded.mp4", copy=False)  # the re-encoding path on request
    assert _video_packets(tmp_path / "encoded.mp4") != _video_packets(out)
    assert [read_index(f) for f in await asyncio.to_thread(_frames, tmp_path / "encoded.mp4")] == seen
    assert abs(again.duration_s - 4.0) <= 0.05
    at_30 = await concat(takes, tmp_path / "thirty.mp4", fps=30)  # another rate: re-encoded too
    assert (await probe_details(tmp_path / "thirty.mp4")).fps == pytest.approx(30)
    assert abs(at_30.duration_s - 4.0) <= 0.05


async def test_concat_re_encodes_when_a_take_is_shown_rotated(tmp_path: Path) -> None:
    """Same encoding, but the second take carries a display rotation (a phone clip): joined as they are, it
    would be shown unrotated; re-encoded, it is turned upright and fitted (portrait in landscape: bars)."""
    a = indexed_clip(tmp_path / "a.mp4", frames=24, tag=0)
    b = indexed_clip(tmp_path / "b.mp4", frames=24, tag=1, rotation=90)
    out = tmp_path / "ab.mp4"
    await concat([a, b], out)
    assert _video_packets(out)[1] != _video_packets(a)[1]  # re-encoded
    frames = await asyncio.to_thread(_frames, out)
    assert [read_index(f) for f in frames] == [(0, n) for n in range(24)] + [(1, n) for n in range(24)]
    upright = frames[36].to_image()
    assert max(upright.getpixel((5, 120))) < 30 and max(upright.getpixel((314, 120))) < 30


async def test_mux_puts_the_wav_on_the_clip_at_the_clips_length(tmp_path: Path) -> None:
    clip = _lavfi_clip(tmp_path / "v.mp4", size="320x240", rate=24, seconds=2, audio=False)
    short = _sine_wav(tmp_path / "short.wav", 1.0)
    out = tmp_path / "with_sound.mp4"
    info = await mux(clip, short, out)
    meta = await probe_details(out)
    assert meta.has_audio and meta.audio_codec == "aac" and meta.video_codec == "h264"
    assert abs(info.duration_s - 2) <= 0.15
    long = _sine_wav(tmp_path / "long.wav", 4.0)
    info = await mux(clip, long, tmp_path / "cut.mp4")
    assert abs(info.duration_s - 2) <= 0.15
    await asyncio.to_thread(_decodes, out)
    with pytest.raises(VideoError):
        await mux(clip, tmp_path / "missing.wav", tmp_path / "x.mp4")
    assert not _leftovers(tmp_path)


# ------------------------------------------------------------------------------------- output checks

HTML_PAGE = (
    b"<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title></head>"
    b"<body><h1>502 Bad Gateway</h1><p>upstream timed out</p></body></html>\n"
)


def _no_faststart_clip(path: Path) -> Path:
    """A clip whose index (moov) is written after the frames, as many encoders do."""
    args = [
        ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y",
        "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=24:duration=3",
        "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(path),
    ]  # fmt: skip
    subprocess.run(args, check=True, timeout=120)
    return path


def _bad(path: Path, reason: Reason, **kw: int) -> BadOutput:
    with pytest.raises(BadOutput) as err:
        check_video(path, **kw)
    assert err.value.reason == reason, err.value
    return err.value


def test_check_video_accepts_a_real_clip(tmp_path: Path) -> None:
    good = tmp_path / "good.mp4"
    good.write_bytes(small_mp4())
    info = check_video(good)
    assert (info.width, info.height) == (320, 240)
    assert abs(info.duration_s - 2) <= 0.15 and info.size_bytes == good.stat().st_size
    late_index = _no_faststart_clip(tmp_path / "late.mp4")
    assert abs(check_video(late_index).duration_s - 3) <= 0.15


def test_check_video_refuses_bad_outputs(tmp_path: Path) -> None:
    page = tmp_path / "page.mp4"
    page.write_bytes(HTML_PAGE)
    assert "html" in _bad(page, Reason.ERROR_PAGE).detail

    data = small_mp4()
    half = tmp_path / "half.mp4"
    half.write_bytes(data[: len(data) // 2])  # index first, half the frames missing
    _bad(half, Reason.TRUNCATED)
    late = _no_faststart_clip(tmp_path / "late.mp4").read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(late[: len(late) // 2])  # the index (at the end) is gone
    _bad(cut, Reason.TRUNCATED)

    png = tmp_path / "still.mp4"
    Image.new("RGB", (64, 64), "red").save(png, "PNG")
    _bad(png, Reason.WRONG_KIND)

    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    _bad(empty, Reason.EMPTY)
    _bad(tmp_path / "missing.mp4", Reason.EMPTY)

    big = tmp_path / "big.mp4"
    big.write_bytes(data)
    _bad(big, Reason.TOO_LARGE, max_bytes=len(data) - 1)

    junk = tmp_path / "junk.mp4"
    junk.write_bytes(bytes(range(256)) * 64)
    _bad(junk, Reason.WRONG_KIND)


def test_check_video_refuses_a_header_cut_before_the_decoder_parameters(tmp_path: Path) -> None:
    """A body cut inside the header: FFmpeg opens it and finds a video stream with no codec context at all."""
    data = small_mp4()
    refused = []
    for n in range(64, 1024, 3):  # around where the stream description ends
        cut = tmp_path / f"cut-{n}.mp4"
        cut.write_bytes(data[:n])
        try:
            check_video(cut)
        except BadOutput as exc:  # never an AttributeError or anything else
            refused.append(exc.reason)
    assert len(refused) == len(range(64, 1024, 3)) and Reason.UNDECODABLE in refused


async def test_check_video_async_and_audio_checks(tmp_path: Path) -> None:
    good = tmp_path / "good.mp4"
    good.write_bytes(small_mp4())
    assert (await check_video_async(good)).width == 320

    wav = _sine_wav(tmp_path / "voice.wav", 1.5)
    assert abs(check_audio(wav) - 1.5) <= 0.01
    assert abs(await check_audio_async(wav) - 1.5) <= 0.01
    cut = tmp_path / "cut.wav"
    cut.write_bytes(wav.read_bytes()[: wav.stat().st_size // 2])
    page = tmp_path / "page.wav"
    page.write_bytes(HTML_PAGE)
    png = tmp_path / "still.wav"
    Image.new("RGB", (64, 64), "red").save(png, "PNG")
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    for path, reason in [
        (cut, Reason.TRUNCATED),
        (page, Reason.ERROR_PAGE),
        (png, Reason.WRONG_KIND),
        (empty, Reason.EMPTY),
        (good, Reason.WRONG_KIND),  # a clip is not a voice sample
    ]:
        with pytest.raises(BadOutput) as err:
            check_audio(path)
        assert err.value.reason == reason, (path.name, err.value)
    with pytest.raises(BadOutput) as err:
        check_audio(wav, max_bytes=100)
    assert err.value.reason == Reason.TOO_LARGE
