"""A scene as the rest of the bot sees it: its shots in order, which take each keeps, and a plan of shots."""

from __future__ import annotations

from dataclasses import dataclass

EXPORT_KIND = "scene_export"
MAX_PLAN_SHOTS = 10
PLAN_TTL_S = 600.0  # a plan's Confirm works for 10 minutes
STORYBOARD_SHOTS = (2, 6)  # a storyboard in one call: 2-6 shots of 1-15 s, 3-15 s in all (Kling's limits)
STORYBOARD_SHOT_S = (1, 15)


@dataclass(frozen=True)
class Scene:
    id: int
    guild_id: int
    channel_id: int
    name: str
    started_by: int
    started_at: float
    ended_by: int | None
    ended_at: float | None

    @property
    def open(self) -> bool:
        return self.ended_at is None


@dataclass(frozen=True)
class SceneShot:
    """One shot of a scene: its place, what was asked, its first take (None until a storyboard part is cut) and
    the take kept (None until someone keeps one)."""

    id: int
    scene_id: int
    position: int
    take_id: int | None
    prompt: str
    duration_s: int
    kept_take_id: int | None
    kept_by: int | None


@dataclass(frozen=True)
class PlannedShot:
    prompt: str
    duration_s: int


@dataclass(frozen=True)
class Plan:
    id: int
    scene_id: int
    guild_id: int
    channel_id: int
    user_id: int
    shots: tuple[PlannedShot, ...]
    one_call: bool
    audio: bool
    price_micros: int
    created_at: float
    expires_at: float
    confirmed_at: float | None

    @property
    def seconds(self) -> int:
        return sum(s.duration_s for s in self.shots)
