"""What a take is, as the rest of the bot sees it: one job of kind `take` (a shot's clip, made at fal)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bot.jobs import FINAL, Job, JobState
from bot.takes.cast import Member

KIND = "take"
PART_KIND = (
    "part"  # a take cut locally from a storyboard clip (a shot's first take, free: the storyboard paid)
)
STORYBOARD_KIND = "storyboard"  # several shots made in one call, cut into parts
TAKE_KINDS = (KIND, PART_KIND)  # the jobs that are takes of a shot (re-rolled, kept, scored, posted as clips)
LEDGER_PREFIX = "shot"  # holds made before the job engine are keyed `shot:{id}`; takes keep that key
SERIES = "shot"  # takes are numbered per server, one number per shot (its re-rolls share it)


def take_job_key(take_id: int) -> str:
    """The ledger key of a take's hold."""
    return f"{LEDGER_PREFIX}:{take_id}"


@dataclass(frozen=True)
class Take:
    """One take of a shot: a read-only view of its job row."""

    id: int
    guild_id: int
    channel_id: int
    user_id: int
    root_id: int
    take: int
    prompt: str
    negative_prompt: str | None
    duration_s: int
    aspect_ratio: str
    audio: bool
    anchor_version_id: int
    upload_limit_bytes: int | None
    endpoint: str
    backend: str
    price_micros: int
    state: JobState
    request_id: str | None
    queue_position: int | None
    progress_message_id: int | None
    reply_to_message_id: int | None
    clip_message_id: int | None
    output_url: str | None
    clip_path: str | None
    error: str | None
    created_at: float
    submitted_at: float | None
    started_at: float | None
    finished_at: float | None
    job_key: str
    sent_prompt: str = ""  # the prompt as sent to fal (the character as @Element1 when angles go along)
    angle_shas: tuple[str, ...] = ()  # the anchor version's kept angles, sent as the element's references
    auto_reroll: bool | None = None  # None: the channel's default (/anchor settings)
    auto_reroll_of: int | None = None  # set on an automatic re-roll: the drifted take it re-rolls
    advice: tuple[str, ...] = ()  # prompt advice shown on the progress message
    number: int = 0  # the shot's number in its server (re-rolls share it); job ids stay internal
    anchor_version: int | None = None  # the anchor version's number and name, for the messages
    anchor_name: str | None = None
    anchor_shape: str | None = (
        None  # the anchor image's shape ("4:5"), what "anchor" means as an aspect ratio
    )
    retry_of: int | None = None  # set on a "Try again" of a failed or cancelled take
    scene_id: int | None = None  # the scene this take's shot belongs to
    scene_name: str | None = None
    continues: int | None = None  # the scene shot whose kept take's last frame it starts from
    start_sha: str | None = (
        None  # a first frame instead of the anchor (the last frame of the shot it continues)
    )
    end_sha: str | None = None  # the frame the shot must land on
    multi_prompt: tuple[
        tuple[str, int], ...
    ] = ()  # a storyboard: several shots in one call (prompt, seconds)
    multi_sent: tuple[
        tuple[str, int], ...
    ] = ()  # the same as sent: characters as @ElementN (empty: as typed)
    cut_from: dict[str, Any] | None = (
        None  # a storyboard part: {"path", "start_s"} of the clip it is cut from
    )
    kind: str = KIND
    cast: tuple[
        Member, ...
    ] = ()  # the characters it shows as elements, in @ElementN order (empty: the old form)
    voice: bool = False  # a bound voice speaks (priced at the voice-control rate)

    @property
    def label(self) -> str:
        """How members name this take: "Shot 42 · take 2"."""
        return f"Shot {self.number} \u00b7 take {self.take}"

    @classmethod
    def of(cls, job: Job) -> Take:
        a, o = job.args, job.outputs
        return cls(
            id=job.id,
            guild_id=job.guild_id,
            channel_id=job.channel_id,
            user_id=job.user_id,
            root_id=job.root_id,
            take=job.seq,
            prompt=a["prompt"],
            negative_prompt=a.get("negative_prompt"),
            duration_s=int(a["duration_s"]),
            aspect_ratio=a["aspect_ratio"],
            audio=bool(a.get("audio")),
            anchor_version_id=int(a["anchor_version_id"]),
            upload_limit_bytes=a.get("upload_limit_bytes"),
            endpoint=job.endpoint or "",
            backend=job.backend,
            price_micros=job.price_micros,
            state=job.state,
            request_id=job.request_id,
            queue_position=job.queue_position,
            progress_message_id=job.progress_message_id,
            reply_to_message_id=job.reply_to_message_id,
            clip_message_id=job.result_message_id,
            output_url=o.get("url"),
            clip_path=o.get("path"),
            error=job.error,
            created_at=job.created_at,
            submitted_at=job.submitted_at,
            started_at=job.started_at,
            finished_at=job.finished_at,
            job_key=job.ledger_key,
            sent_prompt=a.get("sent_prompt") or a["prompt"],
            angle_shas=tuple(a.get("angle_shas") or ()),
            auto_reroll=a.get("auto_reroll"),
            auto_reroll_of=a.get("auto_reroll_of"),
            advice=tuple(a.get("advice") or ()),
            number=job.number or job.root_id,
            anchor_version=a.get("anchor_version"),
            anchor_name=a.get("anchor_name"),
            anchor_shape=a.get("anchor_shape"),
            retry_of=a.get("retry_of"),
            scene_id=a.get("scene_id"),
            scene_name=a.get("scene_name"),
            continues=a.get("continues"),
            start_sha=a.get("start_sha"),
            end_sha=a.get("end_sha"),
            multi_prompt=tuple((str(p), int(d)) for p, d in a.get("multi_prompt") or ()),
            multi_sent=tuple((str(p), int(d)) for p, d in a.get("multi_sent") or ()),
            cut_from=a.get("cut_from"),
            kind=job.kind,
            cast=tuple(Member.of(m) for m in a.get("cast") or ()),
            voice=bool(a.get("voice")),
        )

    @property
    def is_final(self) -> bool:
        return self.state in FINAL
