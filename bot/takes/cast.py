"""Who a take shows, as arguments: the characters its prompt names become Kling elements (@Element1, @Element2...
in the order the names first appear), each with its angles (or a crop of its face) and, with sound on, its voice.

A take about one character, its start character, with no voice keeps the form it always had (the anchor's angles
as @Element1 when it has some, no element otherwise)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bot.anchors.models import CastMember, ShotCast, element_names
from bot.errors import UserError
from bot.fal.models import ModelSpec
from bot.takes.elements import element_prompt

MAX_ANGLE_REFS = 3  # fal: "1-3 images supported"


class NeedsConsent(UserError):
    """The endpoint cannot send what the prompt asks for (characters as elements, a voice): say so before
    spending, and go on without them only when the member says so (`TakeRequest.plain`)."""


@dataclass(frozen=True)
class Member:
    """One character of a take as its arguments keep it."""

    character_id: int
    name: str
    version_id: int
    refs: tuple[str, ...]  # reference images: the kept angles, or a crop of the face, or the whole anchor
    crop: bool  # refs is the face crop (the character has no angles)
    voice_id: str | None
    whole: bool = False  # refs is the whole anchor (no angles, and no one face in it to crop)

    def as_args(self) -> dict[str, Any]:
        return {
            "character_id": self.character_id,
            "name": self.name,
            "version_id": self.version_id,
            "refs": list(self.refs),
            "crop": self.crop,
            "voice_id": self.voice_id,
            "whole": self.whole,
        }

    @classmethod
    def of(cls, a: dict[str, Any]) -> Member:
        return cls(
            int(a["character_id"]),
            str(a["name"]),
            int(a["version_id"]),
            tuple(a.get("refs") or ()),
            bool(a.get("crop")),
            a.get("voice_id"),
            bool(a.get("whole")),
        )


def needs_elements(shot: ShotCast, voiced: bool) -> bool:
    """Whether the take needs the cast form: several characters, one that is not the start image's, or a voice."""
    members = shot.named or (shot.start,)
    return len(members) > 1 or members[0].character.id != shot.start.character.id or voiced


def refuse_unsupported(spec: ModelSpec, shot: ShotCast, voiced: bool) -> None:
    """NeedsConsent when the endpoint's published schema has no elements (or no voice_id) for what is asked."""
    members = shot.named or (shot.start,)
    if not spec.supports_elements and needs_elements(shot, voiced):
        names = ", ".join(m.name for m in members)
        raise NeedsConsent(
            f"{spec.label} takes no characters as references (no `elements` in its schema), so {names} would not be "
            f"sent: the shot would start from {shot.start.name}'s anchor with the names as plain words."
        )
    if voiced and not spec.supports_voice:
        raise NeedsConsent(
            f"{spec.label} takes no voices (no `voice_id` in its schema), so the voices of "
            f"{', '.join(m.name for m in members)} would not be used: the sound would have a new voice."
        )


def sent_prompt(prompt: str, shot: ShotCast) -> str:
    """The prompt as sent: each named character as its @ElementN; a prompt naming no one is about the start
    character, so its name (or "the character") becomes @Element1."""
    if shot.named:
        return element_names(prompt, [m.name for m in shot.named])
    return element_prompt(prompt, shot.start.name)


def notes(members: list[Member], audio: bool) -> list[str]:
    """What the progress message says about the cast: whose face is a crop, whose voice speaks."""
    out = [
        f"{m.name} has no angles, so a crop of the face goes along instead (/anchor angles make name:{m.name} "
        "adds real ones)."
        for m in members
        if m.crop
    ]
    out += [
        f"{m.name} has no angles and no one face stands out in the anchor, so the whole anchor goes along as the "
        f"reference (/anchor angles make name:{m.name} adds real ones)."
        for m in members
        if m.whole
    ]
    voiced = [m.name for m in members if m.voice_id]
    if audio and voiced:
        out.append("voice: " + ", ".join(voiced))
    return out


def cast_members(shot: ShotCast) -> tuple[CastMember, ...]:
    return shot.named or (shot.start,)
