"""The fal endpoints Anchorshot can call: their argument names, allowed durations and list prices, in one place.

Prices are fal's list prices in micro-dollars (see shared fal notes); operators override them with PRICE_OVERRIDES.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class EndpointSpec:
    """What one image-to-video endpoint accepts and what it costs."""

    endpoint: str
    label: str
    image_arg: str
    durations_s: tuple[int, ...]
    supports_audio: bool
    supports_negative_prompt: bool = True
    # Price: base covers the first `base_seconds`; every further second costs per_second.
    per_second_micros: int = 0
    per_second_audio_micros: int = 0
    base_micros: int = 0
    base_seconds: int = 0
    extra: dict[str, object] = field(default_factory=dict)

    def arguments(
        self,
        *,
        image_url: str,
        prompt: str,
        duration_s: int,
        audio: bool,
        negative_prompt: str | None,
    ) -> dict[str, object]:
        """Build the JSON arguments for a submit."""
        args: dict[str, object] = {self.image_arg: image_url, "prompt": prompt, "duration": str(duration_s)}
        if self.supports_audio:
            args["generate_audio"] = bool(audio)
        if negative_prompt and self.supports_negative_prompt:
            args["negative_prompt"] = negative_prompt
        args.update(self.extra)
        return args


_KLING_V3_DURATIONS = tuple(range(3, 16))

ENDPOINTS: dict[str, EndpointSpec] = {
    spec.endpoint: spec
    for spec in (
        EndpointSpec(
            endpoint="fal-ai/kling-video/v3/pro/image-to-video",
            label="Kling v3 Pro",
            image_arg="start_image_url",
            durations_s=_KLING_V3_DURATIONS,
            supports_audio=True,
            per_second_micros=112_000,
            per_second_audio_micros=168_000,
        ),
        EndpointSpec(
            endpoint="fal-ai/kling-video/v3/standard/image-to-video",
            label="Kling v3 Standard",
            image_arg="start_image_url",
            durations_s=_KLING_V3_DURATIONS,
            supports_audio=True,
            per_second_micros=84_000,
            per_second_audio_micros=126_000,
        ),
        EndpointSpec(
            endpoint="fal-ai/kling-video/v2.5-turbo/pro/image-to-video",
            label="Kling v2.5 Turbo Pro",
            image_arg="image_url",
            durations_s=(5, 10),
            supports_audio=False,
            base_micros=350_000,
            base_seconds=5,
            per_second_micros=70_000,
        ),
    )
}


def endpoint_spec(endpoint: str) -> EndpointSpec:
    """Return the spec of a known endpoint, or raise KeyError naming the known ones."""
    try:
        return ENDPOINTS[endpoint]
    except KeyError:
        known = ", ".join(sorted(ENDPOINTS))
        raise KeyError(f"unknown FAL_ENDPOINT {endpoint!r}; known endpoints: {known}") from None
