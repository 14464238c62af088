"""The model catalogue: every fal endpoint Anchorshot can call, its arguments, its outputs and its price, in one place.

Prices are list prices in integer micro-dollars (see the shared fal notes); operators override them with
PRICE_OVERRIDES (see `bot.fal.pricing.PriceTable`), and ids with FAL_MODEL_IDS (see `build_catalogue`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal

from bot.fal.errors import FailureKind, GenerationError

OutputKind = Literal["video", "image", "audio", "voice"]


class PriceRule(StrEnum):
    """How fal bills one call of a model."""

    PER_SECOND = "per_second"  # of output video (optionally base_micros for the first base_seconds)
    PER_IMAGE = "per_image"
    PER_CALL = "per_call"
    PER_1K_CHARS = "per_1k_chars"  # of input text; every started 1,000 characters is billed whole
    PER_MEGAPIXEL = "per_megapixel"  # of the image sent; every started megapixel is billed whole


# fal states a rate "per megapixel" without saying how it counts them (10^6 or 2^20 pixels, fractions or whole ones).
# A megapixel here is the smaller unit, 10^6 pixels, and every started one is billed whole, so a quote is never
# below fal's bill whichever way fal counts: a 2048x2048 image (4.19 MP) is quoted 5 MP.
PIXELS_PER_MEGAPIXEL = 1_000_000


def megapixels(pixels: int) -> int:
    """The megapixels billed for an image of `pixels` pixels: every started megapixel counts whole."""
    return -(-pixels // PIXELS_PER_MEGAPIXEL)


@dataclass(frozen=True)
class Pricing:
    """A price rule with its rates, in integer micro-dollars."""

    rule: PriceRule
    micros: int
    audio_micros: int | None = None  # per second with audio on (PER_SECOND only)
    voice_micros: int | None = (
        None  # per second with audio on and a bound voice (voice control; PER_SECOND only)
    )
    base_micros: int = 0  # PER_SECOND: flat price covering the first base_seconds (v2.5 turbo)
    base_seconds: int = 0

    def quote(
        self,
        *,
        seconds: int = 0,
        audio: bool = False,
        images: int = 0,
        chars: int = 0,
        voice: bool = False,
        pixels: int = 0,
    ) -> int:
        """The exact price of one call in micro-dollars (`voice`: with audio, a bound voice speaks; `pixels`: width
        times height of the image a per-megapixel model is sent)."""
        if min(seconds, images, chars, pixels) < 0:
            raise ValueError("quantities must not be negative")
        if self.rule is PriceRule.PER_SECOND:
            rate = self.audio_micros if audio and self.audio_micros is not None else self.micros
            if audio and voice and self.voice_micros is not None:
                rate = self.voice_micros
            if self.base_seconds:
                return self.base_micros + max(0, seconds - self.base_seconds) * rate
            return seconds * rate
        if self.rule is PriceRule.PER_IMAGE:
            return images * self.micros
        if self.rule is PriceRule.PER_CALL:
            return self.micros
        if self.rule is PriceRule.PER_1K_CHARS:
            return -(-chars // 1000) * self.micros
        if self.rule is PriceRule.PER_MEGAPIXEL:
            if not pixels:  # never a free call because the caller forgot the image's size
                raise ValueError("a per-megapixel price needs the image's size in pixels")
            return megapixels(pixels) * self.micros
        raise ValueError(f"unknown price rule {self.rule!r}")  # pragma: no cover


@dataclass(frozen=True)
class ImageLimits:
    """An input image's published `x-fal` limits."""

    min_width: int = 300
    min_height: int = 300
    min_aspect_ratio: float = 0.4
    max_aspect_ratio: float = 2.5
    max_file_size: int = 10 * 1024 * 1024

    def problem(self, width: int, height: int, size: int) -> str | None:
        """Why an image of this shape cannot be used, or None."""
        if width < self.min_width or height < self.min_height:
            return (
                f"the image is {width}x{height}; fal needs at least {self.min_width}x{self.min_height} pixels"
            )
        ratio = width / height
        if not self.min_aspect_ratio <= ratio <= self.max_aspect_ratio:
            return (
                f"the image's aspect ratio is {ratio:.2f}; fal accepts "
                f"{self.min_aspect_ratio}-{self.max_aspect_ratio}"
            )
        if size > self.max_file_size:
            return f"the image is {size} bytes; fal accepts at most {self.max_file_size}"
        return None


KLING_IMAGE_LIMITS = ImageLimits()


@dataclass(frozen=True)
class Output:
    """One output of a finished call."""

    kind: OutputKind
    url: str | None = None
    content_type: str | None = None
    file_name: str | None = None
    width: int | None = None
    height: int | None = None
    voice_id: str | None = None


Family = Literal["kling_i2v", "seedream", "seedream_edit", "qwen_angles", "kling_voice"]

_IMAGE_SIZES = (
    "square_hd",
    "square",
    "portrait_4_3",
    "portrait_16_9",
    "landscape_4_3",
    "landscape_16_9",
    "auto_2K",
    "auto_4K",
)


def _bad_output(message: str) -> GenerationError:
    return GenerationError(FailureKind.BAD_OUTPUT, message)


def _url(value: object) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


@dataclass(frozen=True)
class ModelSpec:
    """What one endpoint accepts, returns and costs."""

    key: str  # stable catalogue name (settings refer to models by it), e.g. "kling-v3-pro"
    endpoint: str  # fal's endpoint id (configurable)
    label: str
    family: Family
    output_kind: OutputKind
    pricing: Pricing
    image_arg: str | None = None  # the start image argument (Kling i2v)
    durations_s: tuple[int, ...] = ()
    supports_audio: bool = False
    supports_negative_prompt: bool = False
    supports_elements: bool = False
    supports_multi_prompt: bool = False  # several shots in one call (`multi_prompt`), Kling v3
    supports_voice: bool = False  # an element may carry `voice_id` (Kling v3's published element schema)
    max_images: int = 1  # num_images range 1..max_images (Seedream)
    image_limits: ImageLimits | None = None  # x-fal limits of image inputs, where published

    def arguments(self, **inputs: Any) -> dict[str, Any]:
        """Build the JSON arguments of a submit from neutral input names.

        Kling i2v: image_url, prompt, duration_s, audio, negative_prompt, elements, cfg_scale, end_image_url,
        or multi_prompt ([(prompt, seconds), ...]: several shots in one call, no prompt beside it).
        Seedream: prompt, image_size, num_images, seed, image_urls (edit only), enable_safety_checker.
        qwen angles: image_urls (or image_url), horizontal_angle, vertical_angle, zoom.
        create-voice: voice_url.
        Unknown inputs or values outside the model's range raise ValueError (a bug in the caller).
        """
        builder: Callable[..., dict[str, Any]] = getattr(self, f"_args_{self.family}")
        return builder(**inputs)

    def _args_kling_i2v(
        self,
        *,
        image_url: str,
        prompt: str | None = None,
        duration_s: int,
        audio: bool = False,
        negative_prompt: str | None = None,
        elements: list[Mapping[str, Any]] | None = None,
        cfg_scale: float | None = None,
        end_image_url: str | None = None,
        multi_prompt: list[tuple[str, int]] | None = None,
    ) -> dict[str, Any]:
        if duration_s not in self.durations_s:
            raise ValueError(f"{self.label} makes clips of {self.durations_s} seconds, not {duration_s}")
        assert self.image_arg is not None
        args: dict[str, Any] = {self.image_arg: image_url, "duration": str(duration_s)}
        if multi_prompt:
            args["multi_prompt"] = self._multi_prompt(multi_prompt, duration_s, end_image_url)
        elif prompt is not None:
            args["prompt"] = prompt
        else:
            raise ValueError("a Kling take needs a prompt or a multi_prompt")
        if self.supports_audio:
            args["generate_audio"] = bool(audio)
        if negative_prompt and self.supports_negative_prompt:
            args["negative_prompt"] = negative_prompt
        if cfg_scale is not None:
            if not 0 <= cfg_scale <= 1:
                raise ValueError("cfg_scale must be within 0-1")
            args["cfg_scale"] = cfg_scale
        if end_image_url:
            args["end_image_url" if self.supports_elements else "tail_image_url"] = end_image_url
        if elements:
            if not self.supports_elements:
                raise ValueError(f"{self.label} takes no elements")
            args["elements"] = [_element(e) for e in elements]
        return args

    def _multi_prompt(
        self, shots: list[tuple[str, int]], duration_s: int, end_image_url: str | None
    ) -> list[dict[str, str]]:
        """Kling's documented multi-shot limits (fal bills a request it refuses as invalid, so they are checked
        first): 1-6 shots of 1-15 s each adding up to the clip's duration, and no end frame."""
        if not self.supports_multi_prompt:
            raise ValueError(f"{self.label} makes one shot a call")
        if not 1 <= len(shots) <= MULTI_PROMPT_MAX_SHOTS or any(not 1 <= s <= 15 for _, s in shots):
            raise ValueError("multi_prompt takes 1-6 shots of 1-15 seconds each")
        if sum(s for _, s in shots) != duration_s:
            raise ValueError("the shots' durations must add up to the clip's duration")
        if end_image_url:
            raise ValueError("an end frame cannot be combined with several shots")
        return [{"prompt": p, "duration": str(s)} for p, s in shots]

    def _args_seedream(
        self,
        *,
        prompt: str,
        image_size: str | Mapping[str, int] | None = None,
        num_images: int = 1,
        seed: int | None = None,
        enable_safety_checker: bool | None = None,
    ) -> dict[str, Any]:
        if not 1 <= num_images <= self.max_images:
            raise ValueError(f"num_images must be within 1-{self.max_images}")
        args: dict[str, Any] = {"prompt": prompt, "num_images": num_images}
        if image_size is not None:
            if isinstance(image_size, str) and image_size not in _IMAGE_SIZES:
                raise ValueError(f"image_size must be one of {_IMAGE_SIZES} or {{width, height}}")
            args["image_size"] = dict(image_size) if isinstance(image_size, Mapping) else image_size
        if seed is not None:
            args["seed"] = seed
        if enable_safety_checker is not None:
            args["enable_safety_checker"] = enable_safety_checker
        return args

    def _args_seedream_edit(self, *, image_urls: list[str], **rest: Any) -> dict[str, Any]:
        if not image_urls:
            raise ValueError("an edit needs at least one image")
        return {**self._args_seedream(**rest), "image_urls": list(image_urls)}

    def _args_qwen_angles(
        self,
        *,
        image_urls: list[str] | None = None,
        image_url: str | None = None,
        horizontal_angle: float = 0,
        vertical_angle: float = 0,
        zoom: float = 5,
    ) -> dict[str, Any]:
        urls = list(image_urls or ([image_url] if image_url else []))
        if not urls:
            raise ValueError("the angles model needs an image")
        if not 0 <= horizontal_angle < 360 or not -30 <= vertical_angle <= 90 or not 0 <= zoom <= 10:
            raise ValueError("horizontal_angle 0-360, vertical_angle -30-90, zoom 0-10")
        return {
            "image_urls": urls,
            "horizontal_angle": horizontal_angle,
            "vertical_angle": vertical_angle,
            "zoom": zoom,
        }

    def _args_kling_voice(self, *, voice_url: str) -> dict[str, Any]:
        if not voice_url:
            raise ValueError("create-voice needs a voice_url")
        return {"voice_url": voice_url}

    def outputs(self, payload: object) -> list[Output]:
        """The outputs the model promises, from a result payload; BAD_OUTPUT when they are missing."""
        if not isinstance(payload, Mapping):
            raise _bad_output(f"fal finished but {self.label} returned no result.")
        if self.output_kind == "video":
            video = payload.get("video")
            url = _url(video.get("url")) if isinstance(video, Mapping) else None
            if url is None:
                raise _bad_output("fal finished but returned no video.")
            assert isinstance(video, Mapping)
            return [Output("video", url, video.get("content_type"), video.get("file_name"))]
        if self.output_kind == "image":
            images = payload.get("images")
            if not isinstance(images, list) or not images:
                raise _bad_output("fal finished but returned no images.")
            found = []
            for image in images:
                url = _url(image.get("url")) if isinstance(image, Mapping) else None
                if url is None:
                    raise _bad_output("fal finished but one of its images has no address.")
                assert isinstance(image, Mapping)
                found.append(
                    Output(
                        "image",
                        url,
                        image.get("content_type"),
                        image.get("file_name"),
                        _int(image.get("width")),
                        _int(image.get("height")),
                    )
                )
            return found
        if self.output_kind == "audio":
            audio = payload.get("audio")
            url = _url(audio.get("url")) if isinstance(audio, Mapping) else None
            if url is None:
                raise _bad_output("fal finished but returned no audio.")
            assert isinstance(audio, Mapping)
            return [Output("audio", url, audio.get("content_type"), audio.get("file_name"))]
        voice_id = payload.get("voice_id")
        if not isinstance(voice_id, str) or not voice_id.strip():
            raise _bad_output("fal finished but returned no voice id.")
        return [Output("voice", voice_id=voice_id)]

    def quote(
        self, *, seconds: int = 0, audio: bool = False, images: int = 0, chars: int = 0, pixels: int = 0
    ) -> int:
        """List price of one call (overrides live in PriceTable)."""
        return self.pricing.quote(
            seconds=seconds, audio=audio and self.supports_audio, images=images, chars=chars, pixels=pixels
        )


def _element(element: Mapping[str, Any]) -> dict[str, Any]:
    """A Kling v3 element: {frontal_image_url, reference_image_urls: 1-3} (plus voice_id), or {video_url}."""
    if element.get("video_url"):
        out: dict[str, Any] = {"video_url": element["video_url"]}
    else:
        refs = list(element.get("reference_image_urls") or [])
        if not element.get("frontal_image_url") or not 1 <= len(refs) <= 3:
            raise ValueError("an element needs a frontal_image_url and 1-3 reference_image_urls")
        out = {"frontal_image_url": element["frontal_image_url"], "reference_image_urls": refs}
    if element.get("voice_id"):
        out["voice_id"] = element["voice_id"]
    return out


_KLING_V3_DURATIONS = tuple(range(3, 16))
MULTI_PROMPT_MAX_SHOTS = 6  # Kling's API reference (fal's schema states no maximum)


def _kling(key: str, endpoint: str, label: str, pricing: Pricing, **kw: Any) -> ModelSpec:
    return ModelSpec(
        key=key,
        endpoint=endpoint,
        label=label,
        family="kling_i2v",
        output_kind="video",
        pricing=pricing,
        supports_negative_prompt=True,
        **kw,
    )


def _seedream(key: str, endpoint: str, label: str, micros: int, *, edit: bool) -> ModelSpec:
    return ModelSpec(
        key=key,
        endpoint=endpoint,
        label=label,
        family="seedream_edit" if edit else "seedream",
        output_kind="image",
        pricing=Pricing(PriceRule.PER_IMAGE, micros),
        max_images=6,
    )


DEFAULT_MODELS: tuple[ModelSpec, ...] = (
    _kling(
        "kling-v3-pro",
        "fal-ai/kling-video/v3/pro/image-to-video",
        "Kling v3 Pro",
        Pricing(PriceRule.PER_SECOND, 112_000, audio_micros=168_000, voice_micros=196_000),
        image_arg="start_image_url",
        durations_s=_KLING_V3_DURATIONS,
        supports_audio=True,
        supports_elements=True,
        supports_voice=True,
        supports_multi_prompt=True,
        image_limits=KLING_IMAGE_LIMITS,
    ),
    _kling(
        "kling-v3-standard",
        "fal-ai/kling-video/v3/standard/image-to-video",
        "Kling v3 Standard",
        # No voice-control price for Standard was available offline: scaled like Pro's (196/168 of the audio
        # rate), so a quote is never below it; override with PRICE_OVERRIDES `<endpoint>#voice`.
        Pricing(PriceRule.PER_SECOND, 84_000, audio_micros=126_000, voice_micros=147_000),
        image_arg="start_image_url",
        durations_s=_KLING_V3_DURATIONS,
        supports_audio=True,
        supports_elements=True,
        supports_voice=True,
        supports_multi_prompt=True,
    ),
    _kling(
        "kling-v2.5-turbo-pro",
        "fal-ai/kling-video/v2.5-turbo/pro/image-to-video",
        "Kling v2.5 Turbo Pro",
        Pricing(PriceRule.PER_SECOND, 70_000, base_micros=350_000, base_seconds=5),
        image_arg="image_url",
        durations_s=(5, 10),
    ),
    _seedream(
        "seedream-v4.5", "fal-ai/bytedance/seedream/v4.5/text-to-image", "Seedream v4.5", 40_000, edit=False
    ),
    _seedream(
        "seedream-v4.5-edit", "fal-ai/bytedance/seedream/v4.5/edit", "Seedream v4.5 Edit", 40_000, edit=True
    ),
    _seedream(
        "seedream-v5-lite",
        "fal-ai/bytedance/seedream/v5/lite/text-to-image",
        "Seedream v5 Lite",
        35_000,
        edit=False,
    ),
    _seedream(
        "seedream-v5-lite-edit",
        "fal-ai/bytedance/seedream/v5/lite/edit",
        "Seedream v5 Lite Edit",
        35_000,
        edit=True,
    ),
    # fal's page (llms.txt, "Pricing"): $0.035 per megapixel. The view comes back the size of the image sent, so a
    # call is quoted on the megapixels of that image (rounded up, see PIXELS_PER_MEGAPIXEL).
    ModelSpec(
        key="qwen-multiple-angles",
        endpoint="fal-ai/qwen-image-edit-2511-multiple-angles",
        label="Qwen Image Edit 2511 Multiple Angles",
        family="qwen_angles",
        output_kind="image",
        pricing=Pricing(PriceRule.PER_MEGAPIXEL, 35_000),
    ),
    ModelSpec(
        key="kling-create-voice",
        endpoint="fal-ai/kling-video/create-voice",
        label="Kling Create Voice",
        family="kling_voice",
        output_kind="voice",
        pricing=Pricing(PriceRule.PER_CALL, 7_000),
    ),
)


def build_catalogue(ids: Mapping[str, str] | None = None) -> dict[str, ModelSpec]:
    """The catalogue keyed by endpoint id, with endpoint ids replaced per `ids` ({catalogue key: endpoint id})."""
    ids = dict(ids or {})
    unknown = set(ids) - {m.key for m in DEFAULT_MODELS}
    if unknown:
        raise KeyError(
            f"unknown model keys {sorted(unknown)}; known: {', '.join(m.key for m in DEFAULT_MODELS)}"
        )
    models = [dataclasses.replace(m, endpoint=ids[m.key]) if m.key in ids else m for m in DEFAULT_MODELS]
    return {m.endpoint: m for m in models}


CATALOGUE: dict[str, ModelSpec] = build_catalogue()


def configure(ids: Mapping[str, str] | None = None) -> None:
    """Replace the module catalogue's ids (called once at start-up from settings)."""
    CATALOGUE.clear()
    CATALOGUE.update(build_catalogue(ids))


def model(endpoint: str) -> ModelSpec:
    """The spec of a catalogued endpoint (by endpoint id or catalogue key); KeyError names the known ones."""
    found = CATALOGUE.get(endpoint) or next((m for m in CATALOGUE.values() if m.key == endpoint), None)
    if found is None:
        known = ", ".join(sorted(CATALOGUE))
        raise KeyError(f"unknown fal endpoint {endpoint!r}; known endpoints: {known}")
    return found


def endpoint_spec(endpoint: str) -> ModelSpec:
    """An image-to-video endpoint's spec (FAL_ENDPOINT must be one); KeyError names the known ones."""
    found = CATALOGUE.get(endpoint)
    if found is None or found.family != "kling_i2v":
        known = ", ".join(sorted(e for e, m in CATALOGUE.items() if m.family == "kling_i2v"))
        raise KeyError(f"unknown FAL_ENDPOINT {endpoint!r}; known endpoints: {known}")
    return found
