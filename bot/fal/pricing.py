"""Quotes: what a shot will cost, computed before any spend."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from bot.fal.models import EndpointSpec


@dataclass(frozen=True)
class PriceTable:
    """List prices per endpoint, with operator overrides.

    Overrides are keyed `<endpoint>` (micro-dollars per second, audio off) and `<endpoint>#audio` (audio on).
    """

    overrides: Mapping[str, int]

    def per_second(self, spec: EndpointSpec, *, audio: bool) -> int:
        """Micro-dollars per second of video for this endpoint."""
        key = f"{spec.endpoint}#audio" if audio else spec.endpoint
        if key in self.overrides:
            return int(self.overrides[key])
        if audio and spec.per_second_audio_micros:
            return spec.per_second_audio_micros
        return spec.per_second_micros

    def quote(self, spec: EndpointSpec, *, duration_s: int, audio: bool) -> int:
        """Price of one clip in micro-dollars."""
        rate = self.per_second(spec, audio=audio and spec.supports_audio)
        if spec.base_seconds and spec.endpoint not in self.overrides:
            extra = max(0, duration_s - spec.base_seconds)
            return spec.base_micros + extra * rate
        return duration_s * rate
