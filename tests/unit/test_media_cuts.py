"""bot.media.cuts: planning (pure) and real cuts of indexed clips, checked by decoding every part's frames."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import pytest

from bot.media.cuts import CutPlanError, cut, cut_async, plan_cut
from bot.media.video import VideoError, clip_timing, probe_file
from tests.fakes.media_samples import indexed_clip, read_index


def _indexes(path: Path) -> list[tuple[int, int]]:
    with av.open(str(path)) as container:
        return [read_index(f) for f in container.decode(video=0)]


def _stream_seconds(path: Path) -> dict[str, float]:
    with av.open(str(path)) as container:
        return {s.type: float(s.duration * s.time_base) for s in container.streams}


def _leftovers(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if p.name.endswith(".part")]


def test_plan_cut_starts_parts_at_the_planned_times_and_ends_the_last_at_the_clips_end() -> None:
    assert plan_cut([4, 3, 3], frames=240, rate=24) == [(0, 96), (96, 168), (168, 240)]
    assert plan_cut([4, 3, 3], frames=230, rate=24)[-1] == (168, 230)  # clip shorter than planned
    assert plan_cut([4, 3, 3], frames=243, rate=24)[-1] == (168, 243)  # clip longer: the last part takes it
    assert plan_cut([2.5], frames=60, rate=24) == [(0, 60)]
    with pytest.raises(CutPlanError, match="part 3 of 3 would be empty"):
        plan_cut([4, 3, 3], frames=168, rate=24)
    with pytest.raises(VideoError, match="part 2 of 3"):
        plan_cut([4, 0.01, 3], frames=240, rate=24)
    for bad in ([], [4, -1], [4, float("nan")], [0]):
        with pytest.raises(ValueError):
            plan_cut(bad, frames=240, rate=24)


@pytest.mark.parametrize("rate", [Fraction(24), Fraction(25), Fraction(30000, 1001), Fraction(60)])
def test_plan_cut_every_part_within_one_frame_of_its_plan(rate: Fraction) -> None:
    plans = [[1, 1, 1], [4, 3, 3], [1.5, 2.25, 3.1, 0.7, 5, 2], [15], [2, 2, 2, 2, 2, 5]]
    for plan in plans:
        frames = round(sum(plan) * rate)
        ranges = plan_cut(plan, frames=frames, rate=rate)
        assert ranges[0][0] == 0 and ranges[-1][1] == frames
        assert all(a[1] == b[0] for a, b in zip(ranges, ranges[1:], strict=False))  # consecutive, no gap
        for (start, end), planned in zip(ranges, plan, strict=True):
            assert abs((end - start) / rate - planned) <= 1 / rate, (plan, rate)


def test_cut_a_storyboard_take_into_its_shots(tmp_path: Path) -> None:
    # One 10 s take of three shots planned [4, 3, 3]; the tag changes where each shot starts (frames 96, 168).
    src = indexed_clip(
        tmp_path / "take.mp4", frames=240, boundaries=[96, 168], audio="stereo", sample_rate=48000
    )
    out = tmp_path / "parts"
    out.mkdir()
    parts = cut(src, [4, 3, 3], out)
    assert [p.name for p in parts] == ["take-part1.mp4", "take-part2.mp4", "take-part3.mp4"]
    assert not _leftovers(out)
    source = _indexes(src)
    start = 0
    for k, (part, planned) in enumerate(zip(parts, [4, 3, 3], strict=True)):
        got = _indexes(part)
        assert got == source[start : start + len(got)]  # the source's frames from its start, in order
        assert {tag for tag, _ in got} == {k}  # exactly one shot each: the cut is on the boundary
        start += len(got)
        meta = probe_file(part)
        assert (meta.info.width, meta.info.height) == (320, 240) and meta.fps == pytest.approx(24)
        assert meta.has_audio and meta.video_codec == "h264"
        seconds = _stream_seconds(part)
        assert abs(seconds["video"] - planned) <= 1 / 24
        assert abs(seconds["audio"] - seconds["video"]) <= 0.03  # within an AAC frame
    assert start == len(source)  # together they cover the clip


def test_cut_a_short_clip_without_sound_at_another_rate(tmp_path: Path) -> None:
    src = indexed_clip(tmp_path / "short.mp4", frames=285, rate=30, size=(480, 270))  # 9.5 s for 10 planned
    parts = cut(src, [4, 3, 3], tmp_path, stem="shot-")
    assert [p.name for p in parts] == ["shot-1.mp4", "shot-2.mp4", "shot-3.mp4"]
    counts = [len(_indexes(p)) for p in parts]
    assert counts == [120, 90, 75]  # the last part ends where the clip does
    assert [n for p in parts for _, n in _indexes(p)] == list(range(285))
    for part in parts:
        meta = probe_file(part)
        assert not meta.has_audio and meta.fps == pytest.approx(30)
        assert (meta.info.width, meta.info.height) == (480, 270)


def test_cut_pads_sound_that_stops_before_the_picture(tmp_path: Path) -> None:
    src = indexed_clip(tmp_path / "quiet-end.mp4", frames=96, audio="mono", audio_seconds=2.5)
    parts = cut(src, [2, 2], tmp_path)
    for part in parts:
        seconds = _stream_seconds(part)
        assert abs(seconds["video"] - 2) <= 1 / 24 and abs(seconds["audio"] - 2) <= 0.03


def test_cut_refuses_a_plan_longer_than_the_clip_before_encoding(tmp_path: Path) -> None:
    src = indexed_clip(tmp_path / "take.mp4", frames=96)
    with pytest.raises(CutPlanError, match="would be empty") as err:
        cut(src, [2, 2, 1], tmp_path)
    assert isinstance(err.value, VideoError) and isinstance(err.value, ValueError)  # either handler
    assert sorted(p.name for p in tmp_path.iterdir()) == ["take.mp4"]
    with pytest.raises(VideoError):
        cut(tmp_path / "missing.mp4", [1], tmp_path)
    parts = cut(src, [1], tmp_path / "new" / "folder")  # made if missing
    assert [p.parent.name for p in parts] == ["folder"]


async def test_cut_async(tmp_path: Path) -> None:
    src = indexed_clip(tmp_path / "take.mp4", frames=72, boundaries=[24], audio="stereo")
    parts = await cut_async(src, [1, 2], tmp_path)
    assert [len(_indexes(p)) for p in parts] == [24, 48]
    assert [tag for tag, _ in _indexes(parts[1])] == [1] * 48
    assert not _leftovers(tmp_path)
    assert clip_timing(parts[1]).frames == 48


def test_cut_runs_ffmpeg_at_a_lower_priority(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    import bot.media.cuts as cuts_module

    calls: list[tuple[int, int, int]] = []
    real = os.setpriority

    def record(which: int, who: int, value: int) -> None:
        calls.append((which, who, value))
        real(which, who, value)

    monkeypatch.setattr(cuts_module.os, "setpriority", record)
    src = indexed_clip(tmp_path / "take.mp4", frames=48)
    cut(src, [1, 1], tmp_path)
    assert [(which, value) for which, _, value in calls] == [(os.PRIO_PROCESS, 10)]
    assert calls[0][1] != os.getpid()  # ffmpeg's, not the bot's
