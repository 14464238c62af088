"""Quotes: what a call will cost, computed before any spend, with the operator's PRICE_OVERRIDES applied."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass

from bot.fal.models import ModelSpec, PriceRule, Pricing


@dataclass(frozen=True)
class PriceTable:
    """List prices per endpoint, with operator overrides (integer micro-dollars).

    Keys: `<endpoint>` replaces the model's main rate (per second with audio off, per image, per call or per 1,000
    characters); `<endpoint>#audio` the per-second rate with audio on; `<endpoint>#voice` the per-second rate with
    audio on and a bound voice (voice control). As before, overriding a base-priced model
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
    ) -> int:
        """Price of one call in micro-dollars (`duration_s` is the clip length for per-second models; `voice`: a
        bound voice speaks, at the voice-control rate)."""
        return self.pricing(spec).quote(
            seconds=duration_s,
            audio=audio and spec.supports_audio,
            images=images,
            chars=chars,
            voice=voice and spec.supports_voice,
        )
