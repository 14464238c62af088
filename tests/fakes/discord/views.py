"""Typed, read-only views of what the fake stored, for assertions.

A ``Msg`` wraps one stored message and reads it live: after the bot edits the message, the same
``Msg`` shows the edit. Nothing here changes state.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

from .common import FLAG_EPHEMERAL, FLAG_LOADING, embed_parts, iter_components

if TYPE_CHECKING:
    from .server import FakeDiscord


class MsgFile(NamedTuple):
    """An attachment of a message as Discord would serve it."""

    filename: str
    data: bytes
    content_type: str | None


class Button(NamedTuple):
    label: str | None
    custom_id: str | None  # None for link buttons
    style: int
    disabled: bool
    url: str | None = None


class Msg:
    """One message as a member (or the bot) would see it.

    ``text`` is the content; ``embed_text`` the embeds' titles, descriptions, field names and values
    and footers, joined by newlines; ``all_text`` both. ``files`` are the attachments currently on the
    message (what an edit dropped is gone). ``pinged`` tells whether the message notifies anyone, from
    its content and ``allowed_mentions`` (and the reply rule), as Discord would compute it.
    """

    def __init__(self, fake: FakeDiscord, raw: dict) -> None:
        self._fake = fake
        self.raw = raw  # the stored dict, live; underscored keys are the fake's bookkeeping

    def __repr__(self) -> str:
        flags = []
        if self.ephemeral:
            flags.append("ephemeral")
        if self.deleted:
            flags.append("deleted")
        tag = f" [{', '.join(flags)}]" if flags else ""
        return f"<Msg {self.id} in {self.channel_id} by {self.author_id}{tag}: {self.all_text[:60]!r}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Msg) and other.id == self.id

    def __hash__(self) -> int:
        return hash(self.id)

    @property
    def id(self) -> int:
        return int(self.raw["id"])

    @property
    def channel_id(self) -> int:
        return int(self.raw["channel_id"])

    @property
    def guild_id(self) -> int | None:
        """The guild of its channel (None in a DM)."""
        guild = self._fake.guild_of(self.channel_id)
        return guild.guild_id if guild is not None else None

    @property
    def author_id(self) -> int:
        return int(self.raw["author"]["id"])

    @property
    def text(self) -> str:
        return self.raw.get("content") or ""

    @property
    def embeds(self) -> list[dict]:
        return list(self.raw.get("embeds") or [])

    @property
    def embed_text(self) -> str:
        return "\n".join(embed_parts(self.embeds))

    @property
    def all_text(self) -> str:
        return "\n".join(p for p in (self.text, self.embed_text) if p)

    @property
    def footers(self) -> list[str]:
        return [str((e.get("footer") or {}).get("text") or "") for e in self.embeds]

    @property
    def files(self) -> list[MsgFile]:
        out = []
        for att in self.raw.get("attachments") or []:
            blob = self._fake._blobs.get(int(att["id"]))
            data = blob[0] if blob else b""
            out.append(MsgFile(att["filename"], data, att.get("content_type")))
        return out

    @property
    def buttons(self) -> list[Button]:
        return [
            Button(
                c.get("label"),
                c.get("custom_id"),
                int(c.get("style") or 0),
                bool(c.get("disabled")),
                c.get("url"),
            )
            for c in iter_components(self.raw.get("components") or [])
            if c.get("type") == 2
        ]

    def button(self, custom_id_or_label: str) -> Button:
        for b in self.buttons:
            if custom_id_or_label in (b.custom_id, b.label):
                return b
        raise AssertionError(f"{self!r} has no button {custom_id_or_label!r}; buttons: {self.buttons}")

    @property
    def components(self) -> list[dict]:
        return list(self.raw.get("components") or [])

    @property
    def pinged(self) -> bool:
        return bool(self.raw.get("_pinged"))

    @property
    def mentions(self) -> list[int]:
        """User ids the message mentions (and so notifies)."""
        return [int(u["id"]) for u in self.raw.get("mentions") or []]

    @property
    def reference_id(self) -> int | None:
        ref = self.raw.get("message_reference") or {}
        return int(ref["message_id"]) if ref.get("message_id") else None

    @property
    def flags(self) -> int:
        return int(self.raw.get("flags") or 0)

    @property
    def ephemeral(self) -> bool:
        return bool(self.flags & FLAG_EPHEMERAL)

    @property
    def loading(self) -> bool:
        """A type-5 defer's "thinking..." placeholder that nothing has filled yet."""
        return bool(self.flags & FLAG_LOADING)

    @property
    def deleted(self) -> bool:
        return bool(self.raw.get("_deleted"))

    @property
    def edits(self) -> int:
        return int(self.raw.get("_edits") or 0)

    @property
    def via(self) -> str:
        """How it was made: "channel" (bot token), "callback", "webhook" (followup) or "user"."""
        return str(self.raw.get("_via"))

    @property
    def nonce(self) -> str | int | None:
        return self.raw.get("nonce")

    @property
    def interaction_id(self) -> int | None:
        return self.raw.get("_interaction_id")

    @property
    def reactions(self) -> list[tuple[str, int]]:
        """(emoji, user id) pairs, in the order they were added."""
        return list(self._fake.reactions.get(self.id) or [])

    @property
    def is_empty(self) -> bool:
        r = self.raw
        return not (r.get("content") or r.get("embeds") or r.get("attachments") or r.get("components"))


def msg_list(fake: FakeDiscord, raws: list[dict]) -> list[Msg]:
    return [Msg(fake, r) for r in raws]


def summarize(msgs: list[Any]) -> str:
    return "\n  ".join(repr(m) for m in msgs) or "(none)"
