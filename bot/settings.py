"""Settings, read from the environment and an optional `.env` file.

One class, built once in `__main__` and passed down. Secrets are `SecretStr` so they never appear in a repr or log.
"""

from __future__ import annotations

import re
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Annotated

from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from bot.errors import ConfigError

# A bot token is three base64url parts joined by dots: user id, timestamp, HMAC.
_TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{18,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{20,}$")


class BudgetPeriod(StrEnum):
    """How often every user's spend starts again from zero."""

    DAY = "day"
    WEEK = "week"
    MONTH = "month"
    NEVER = "never"


class Settings(BaseSettings):
    """Every setting of the bot; the README's table lists the same names and defaults."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    discord_token: SecretStr = Field(default=SecretStr(""))
    fal_key: SecretStr = Field(default=SecretStr(""))
    data_dir: Path = Path("./data")
    # postgresql://user:password@host:port/db selects PostgreSQL (several bot processes on one store, issue #18);
    # unset keeps the SQLite file in DATA_DIR. A secret: the URL may hold a password.
    database_url: SecretStr = Field(default=SecretStr(""))
    default_budget_usd: Decimal = Field(default=Decimal("10"), ge=0)
    budget_period: BudgetPeriod = BudgetPeriod.MONTH
    max_budget_usd: Decimal = Field(default=Decimal("10000"), gt=0)
    command_guild_id: int | None = None
    log_level: str = "INFO"

    # Generation
    fal_endpoint: str = "fal-ai/kling-video/v3/pro/image-to-video"
    fal_poll_interval_s: float = Field(default=3.0, gt=0)
    fal_upload_lifetime_s: int = Field(default=6 * 3600, gt=0)
    fal_job_timeout_s: int = Field(default=30 * 60, gt=0)
    price_overrides: dict[str, int] = Field(default_factory=dict)
    # {catalogue key: fal endpoint id}, e.g. {"seedream-v5-lite": "bytedance/seedream/v5/lite/text-to-image"}
    fal_model_ids: dict[str, str] = Field(default_factory=dict)
    fal_max_concurrency: int = Field(default=8, ge=1)
    default_duration_s: int = 5
    reroll_emoji: str = "\N{CLOCKWISE RIGHTWARDS AND LEFTWARDS OPEN CIRCLE ARROWS} \N{ANTICLOCKWISE DOWNWARDS AND UPWARDS OPEN CIRCLE ARROWS}"
    # The bot adds the first re-roll emoji to each clip, so members re-roll with one click. Off by default: it is
    # one more Discord request per take (#10 allows 4), and the clip's Re-roll button does the same.
    reroll_reaction_hint: bool = False

    # Concurrency and progress
    max_shots_per_user: int = Field(default=2, ge=1)
    max_shots_global: int = Field(default=10, ge=1)
    progress_edit_interval_s: float = Field(default=4.0, ge=0)
    poll_concurrency: int = Field(default=8, ge=1)  # status/result requests to fal at once
    delivery_concurrency: int = Field(default=4, ge=1)  # downloads and posts at once
    local_job_concurrency: int = Field(default=2, ge=1)  # CPU jobs (re-encode, scoring, export) at once
    step_timeout_s: float = Field(default=60.0, gt=0)  # one poll or one post
    delivery_give_up_s: float = Field(default=300.0, gt=0)  # a clip that cannot be posted gives up after this
    # PostgreSQL only: how long a job stays with a process that stops renewing it (it died) before another takes
    # it over. Renewed every third of it; longer than any pause of a live process, short enough not to keep
    # members waiting.
    job_lease_s: float = Field(default=30.0, ge=3)
    retry_backoff_base_s: float = Field(default=2.0, gt=0)  # first wait after a transient error, doubling
    retry_backoff_cap_s: float = Field(default=60.0, gt=0)
    # Face consistency (issue #12). A frame matches the anchor below this embedding distance: dlib's documented
    # same-person threshold, measured in tests/unit/test_faces.py (same person 0.04-0.10 over clip frames, the
    # closest stranger 0.68-0.71), bench/README.md "Faces". A drift can trigger a paid re-roll, so the default
    # must not flag a true match: 0.6 leaves a wide margin below strangers and above re-framed same faces.
    face_match_threshold: float = Field(default=0.6, gt=0, lt=2)
    face_score_frames: int = Field(default=8, ge=1, le=32)
    face_workers: int = Field(default=1, ge=1)  # processes scoring faces (one niced worker; bench "Faces")
    auto_reroll_default: bool = False  # a channel's default until /anchor settings auto_reroll sets it
    # Cast members one shot may name (Kling elements): Kling's guides say 3; fal's schema states no maximum.
    cast_per_shot: int = Field(default=3, ge=1, le=7)
    notice_ttl_s: float = Field(default=12.0, gt=0)  # how long a public refusal notice stays
    # A channel where the bot tells its admins of faults only they can fix (a refused FAL_KEY, no credit at fal).
    alert_channel_id: int | None = None

    # Housekeeping
    clip_retention_days: float = Field(default=30, gt=0)
    housekeeping_interval_s: float = Field(default=3600, gt=0)

    # Hidden knobs for tests and operators: where Discord's API lives (tests point it at a fake).
    discord_api_base: str | None = None
    discord_gateway_url: str | None = None
    fal_queue_url: str | None = None
    fal_rest_url: str | None = None
    fal_cdn_url: str | None = None
    # How long discord.py waits for more servers after the last one arrives before the bot is ready.
    guild_ready_timeout_s: float = Field(default=2.0, ge=0)

    # Sharding (issue #18). Unset: one plain gateway connection (Discord allows it up to 2,500 servers). SHARD_COUNT:
    # the total number of shards over every process; SHARD_IDS: the shards this process runs (all when unset), as
    # "0,1", "0 1" or "[0, 1]". A guild's events go to shard (guild_id >> 22) % SHARD_COUNT.
    shard_count: int | None = Field(default=None, ge=1)
    shard_ids: Annotated[list[int] | None, NoDecode] = None

    @field_validator("command_guild_id", "alert_channel_id", "shard_count", mode="before")
    @classmethod
    def _empty_guild_is_none(cls, value: object) -> object:
        return None if value in ("", None) else value

    @field_validator("shard_ids", mode="before")
    @classmethod
    def _shard_list(cls, value: object) -> object:
        """SHARD_IDS from the environment: "0,1", "0 1" or JSON "[0,1]"; an empty string (or list) is unset."""
        if isinstance(value, int) and not isinstance(value, bool):
            return [value]
        if not isinstance(value, str):
            return value or None
        text = value.strip()
        if text.startswith("["):
            text = text[1:-1] if text.endswith("]") else text
        parts = [p for p in text.replace(",", " ").split() if p]
        if not all(p.lstrip("-").isdigit() for p in parts):
            raise ValueError(f"{value!r} is not a list of shard numbers (write it as 0,1 or 0 1)")
        return [int(p) for p in parts] or None

    @field_validator("shard_ids")
    @classmethod
    def _shards_within_count(cls, value: list[int] | None, info: ValidationInfo) -> list[int] | None:
        if value is None or "shard_count" not in info.data:
            return value  # unset, or SHARD_COUNT is invalid itself (that error is reported)
        count = info.data["shard_count"]
        if count is None:
            raise ValueError("set SHARD_COUNT too: the total number of shards over every process")
        bad = sorted({i for i in value if not 0 <= i < count})
        if bad:
            raise ValueError(f"shard {bad[0]} is not one of 0..{count - 1} (SHARD_COUNT is {count})")
        twice = sorted({i for i in value if value.count(i) > 1})
        if twice:
            raise ValueError(f"shard {twice[0]} is listed twice")
        return sorted(value)

    @field_validator("fal_endpoint")
    @classmethod
    def _known_endpoint(cls, value: str) -> str:
        from bot.fal.models import endpoint_spec

        try:
            endpoint_spec(value)
        except KeyError as exc:
            raise ValueError(exc.args[0]) from None
        return value

    @property
    def postgres_url(self) -> str | None:
        """The PostgreSQL URL when DATABASE_URL names one, else None (the SQLite file)."""
        url = self.database_url.get_secret_value().strip()
        return url or None

    @field_validator("database_url")
    @classmethod
    def _postgres_only(cls, value: SecretStr) -> SecretStr:
        url = value.get_secret_value().strip()
        if url and not url.startswith(("postgresql://", "postgres://")):
            raise ValueError("DATABASE_URL must be a postgresql:// URL (leave it unset for the SQLite file)")
        return value

    @property
    def sharded(self) -> bool:
        """Whether the gateway part runs as shards (SHARD_COUNT set); else one plain connection."""
        return self.shard_count is not None

    @property
    def database_path(self) -> Path:
        """Where the SQLite file lives."""
        return self.data_dir / "anchorshot.sqlite3"

    @property
    def media_dir(self) -> Path:
        """Where anchors and clips live."""
        return self.data_dir / "media"

    @property
    def reroll_emojis(self) -> tuple[str, ...]:
        """The reaction emojis that re-roll a clip; the first is the one the bot offers (REROLL_REACTION_HINT)."""
        found = tuple(e for e in self.reroll_emoji.replace(",", " ").split() if e)
        return found or ("\N{CLOCKWISE RIGHTWARDS AND LEFTWARDS OPEN CIRCLE ARROWS}",)

    @property
    def dry_run(self) -> bool:
        """True when there is no fal key: shots are made locally and cost nothing."""
        return not self.fal_key.get_secret_value().strip()

    def check_token(self) -> str:
        """Return the Discord token, or raise a one-line ConfigError saying what is wrong."""
        token = self.discord_token.get_secret_value().strip()
        if not token:
            raise ConfigError(
                "DISCORD_TOKEN is not set: put your bot token in the environment or in a .env file "
                "(see .env.example and the README's 'Create the Discord application')."
            )
        if token.lower().startswith("bot "):
            token = token[4:].strip()
        if not _TOKEN_RE.match(token):
            raise ConfigError(
                "DISCORD_TOKEN does not look like a bot token (three dot-separated parts): copy it again from "
                "the Developer Portal's Bot page."
            )
        return token


def load_settings(**overrides: object) -> Settings:
    """Build the settings, turning validation errors into one readable ConfigError line."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        parts = []
        for err in exc.errors():
            name = ".".join(str(p) for p in err["loc"]).upper() or "settings"
            parts.append(f"{name}: {err['msg']}")
        raise ConfigError("Invalid settings: " + "; ".join(parts)) from None
