"""Quotes: what a call will cost, computed before any spend, with the operator's PRICE_OVERRIDES applied."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass

from bot.fal.models import ModelSpec, PriceRule, Pricing
from bot.money import format_usd

_UNITS = {
    PriceRule.PER_IMAGE: "per image",
    PriceRule.PER_CALL: "a call",
    PriceRule.PER_1K_CHARS: "per 1,000 characters",
    PriceRule.PER_MEGAPIXEL: "per megapixel",
}


@dataclass(frozen=True)
class PriceTable:
    """List prices per endpoint, with operator overrides (integer micro-dollars).

    Keys: `<endpoint>` replaces the model's main rate (per second with audio off, per image, per call, per 1,000
    characters or per megapixel); `<endpoint>#audio` the per-second rate with audio on; `<endpoint>#voice` the
    per-second rate with audio on and a bound voice (voice control). As before, overriding a base-priced model
    (v2.5 turbo) with `<endpoint>` makes it plain per-second; `<endpoint>#base` sets its base price instead.
    """

    overrides: Mapping[str, int]

    def pricing(self, spec: ModelSpec) -> Pricing:
        """The model's pricing with overrides applied."""
        p = spec.pricing
        key = spec.endpoint
        if key in self.overrides:
            p = dataclasses.replace(p, micros=int(self.overrides[key]))
            if p.rule is PriceRule.PER_SECOND and f"{key}#base" not in self.overrides:
                p = dataclasses.replace(p, base_micros=0, base_seconds=0)
        if f"{key}#audio" in self.overrides and p.rule is PriceRule.PER_SECOND:
            p = dataclasses.replace(p, audio_micros=int(self.overrides[f"{key}#audio"]))
        if f"{key}#voice" in self.overrides and p.rule is PriceRule.PER_SECOND:
            p = dataclasses.replace(p, voice_micros=int(self.overrides[f"{key}#voice"]))
        if f"{key}#base" in self.overrides and p.base_seconds:
            p = dataclasses.replace(p, base_micros=int(self.overrides[f"{key}#base"]))
        return p

    def per_second(self, spec: ModelSpec, *, audio: bool) -> int:
        """Micro-dollars per second of video for this endpoint."""
        p = self.pricing(spec)
        if audio and p.audio_micros:
            return p.audio_micros
        return p.micros

    def quote(
        self,
        spec: ModelSpec,
        *,
        duration_s: int = 0,
        audio: bool = False,
        images: int = 0,
        chars: int = 0,
        voice: bool = False,
        pixels: int = 0,
    ) -> int:
        """Price of one call in micro-dollars (`duration_s` is the clip length for per-second models; `voice`: a
        bound voice speaks, at the voice-control rate; `pixels`: width times height of the image a per-megapixel
        model is sent)."""
        return self.pricing(spec).quote(
            seconds=duration_s,
            audio=audio and spec.supports_audio,
            images=images,
            chars=chars,
            voice=voice and spec.supports_voice,
            pixels=pixels,
        )

    def rate_text(self, spec: ModelSpec) -> str:
        """The model's rate as members read it, overrides applied: "$0.04 per image", "$0.035 per megapixel"."""
        p = self.pricing(spec)
        if p.rule is not PriceRule.PER_SECOND:
            return f"{format_usd(p.micros)} {_UNITS[p.rule]}"
        text = f"{format_usd(p.micros)} per second"
        if p.base_seconds:
            text = f"{format_usd(p.base_micros)} for the first {p.base_seconds} s, then {text}"
        if spec.supports_audio and p.audio_micros is not None:
            text += f" ({format_usd(p.audio_micros)} with sound)"
        return text
