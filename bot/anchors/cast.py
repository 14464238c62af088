"""The cast: a channel's named characters, each with its own anchor versions. The first one is the main character,
whose anchor every shot starts from unless told otherwise; a thread uses its parent's cast, its own characters
shadowing the parent's of the same name."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bot.anchors.models import (
    PLACEHOLDER,
    AnchorVersion,
    CastMember,
    Character,
    ShotCast,
    clean_name,
    name_key,
    named_in,
    shown_name,
)
from bot.anchors.store import AnchorStore, NameTaken
from bot.errors import NoAnchor, UserError

if TYPE_CHECKING:
    from bot.anchors.service import AnchorService, SetResult

log = logging.getLogger(__name__)
MAX_CAST = 25  # characters in one channel's cast (one contact sheet)


def _no_one(name: str) -> UserError:
    """The refusal for a name no one in the cast has (shortened: a member can type thousands of characters)."""
    return UserError(f"There is no {shown_name(name)} in this channel's cast; /cast list shows who is.")


@dataclass(frozen=True)
class Renamed:
    """The channel's lone (main) character, to be called `name` once its new anchor is accepted."""

    character_id: int
    name: str


class Cast:
    """Adds, finds and removes characters; works out who a shot shows."""

    def __init__(self, anchors: AnchorService, store: AnchorStore, clock: Callable[[], float]) -> None:
        self.anchors = anchors
        self.store = store
        self.clock = clock

    # Who is in it ------------------------------------------------------------------------------------------
    async def members(self, channel_id: int, parent_id: int | None = None) -> list[Character]:
        """The cast a channel uses: its own characters, then its parent's (for a thread) not shadowed by name."""
        own = await self.store.cast(channel_id)
        if parent_id is None:
            return own
        taken = {name_key(c.name) for c in own}
        return own + [c for c in await self.store.cast(parent_id) if name_key(c.name) not in taken]

    async def find(self, channel_id: int, parent_id: int | None, name: str) -> Character:
        """A character of the cast the channel uses, by name in any case; UserError when there is none."""
        key = name_key(name)
        for character in await self.members(channel_id, parent_id):
            if name_key(character.name) == key:
                return character
        raise _no_one(name.strip() or "such character")

    async def own(self, channel_id: int, name: str) -> Character:
        """A character of this very channel's cast (changes are made where the character lives)."""
        key = name_key(name)
        for character in await self.store.cast(channel_id):
            if name_key(character.name) == key:
                return character
        raise _no_one(name.strip() or "such character")

    async def main_of(self, channel_id: int) -> Character | None:
        """The channel's own main character, if it has one."""
        return next((c for c in await self.store.cast(channel_id) if c.is_main), None)

    async def member(self, character: Character) -> CastMember:
        """The character with its current anchor; UserError when it has none right now."""
        if character.version_id is None:
            raise UserError(
                f"{character.name} has no anchor right now; /anchor use name:{character.name} brings an earlier "
                f"one back, /anchor set name:{character.name} gives a new one."
            )
        return CastMember(character, await self.anchors.version_by_id(character.version_id))

    # Changes -----------------------------------------------------------------------------------------------
    def check_new_name(self, own: list[Character], name: str, uses: list[Character] | None = None) -> str:
        """`name` cleaned, when it can be added to a channel whose own cast is `own`; else UserError. `uses`: the
        cast the channel uses now (`members`: a thread's own characters and its parent's; `own` when not given).
        What is counted is the cast it will use with the new one, at most MAX_CAST (one contact sheet): a thread's
        character of a parent's name shadows that one rather than adding to it."""
        clean = clean_name(name)
        key = name_key(clean)
        if any(name_key(c.name) == key for c in own):
            raise UserError(
                f"{clean} is already in this channel's cast; /anchor set name:{clean} replaces the portrait."
            )
        others = [c for c in (own if uses is None else uses) if name_key(c.name) != key]
        if len(others) >= MAX_CAST:
            inherited = len(others) - len(own)
            where = f", {inherited} of them from the parent channel" if inherited > 0 else ""
            raise UserError(
                f"This channel's cast is full ({MAX_CAST} characters{where}); /cast remove makes room"
                + (" (here or in the parent channel)." if inherited > 0 else ".")
            )
        return clean

    async def precheck(self, channel_id: int, name: str, parent_id: int | None = None) -> str:
        """The cleaned name of a character about to be added here (before its picture is downloaded)."""
        own = await self.store.cast(channel_id)
        return self.check_new_name(own, name, await self.members(channel_id, parent_id))

    async def add(
        self, *, guild_id: int, channel_id: int, parent_id: int | None, user_id: int, data: bytes, name: str
    ) -> SetResult:
        """A new character with its first anchor (the same intake and checks as /anchor set). The channel's first
        character is its main one (in a thread, only when the parent has no main character either)."""
        own = await self.store.cast(channel_id)
        clean = self.check_new_name(own, name, await self.members(channel_id, parent_id))
        parent_main = parent_id is not None and any(c.is_main for c in await self.store.cast(parent_id))
        is_main = not any(c.is_main for c in own) and not parent_main
        try:
            return await self.anchors.set_anchor_from_bytes(
                guild_id=guild_id,
                channel_id=channel_id,
                user_id=user_id,
                data=data,
                name=clean,
                character=(clean, is_main),
            )
        except NameTaken:  # added by someone else a moment ago
            raise UserError(f"{clean} is already in this channel's cast.") from None

    async def target(self, channel_id: int, name: str | None) -> int | tuple[str, bool] | Renamed:
        """The character `/anchor set` acts on: `name`'s, else the main one; or (name, True) for a channel with no
        cast yet, whose first anchor makes its main character ("main" when no name is given). In a channel whose
        cast is its main character alone, a new name renames it, as naming the channel's anchor always did
        (`Renamed`: applied with the new version, so a refused image renames nothing); with two or more
        characters an unknown name is refused (/cast add adds one)."""
        own = await self.store.cast(channel_id)
        if name is None:
            main = next((c for c in own if c.is_main), None)
            return main.id if main is not None else (PLACEHOLDER, True)
        clean = clean_name(name)
        found = next((c for c in own if name_key(c.name) == name_key(clean)), None)
        if found is not None:
            return found.id
        if not own:
            return (clean, True)
        if len(own) == 1 and own[0].is_main:  # a lone character is the channel's anchor: the name renames it
            return Renamed(
                own[0].id, clean
            )  # (applied with the new version: a refused image renames nothing)
        raise UserError(
            f"There is no {clean} in this channel's cast; /cast add name:{clean} adds a character, /cast list "
            "shows who is."
        )

    async def remove(self, channel_id: int, name: str) -> Character:
        """Take a character out of the cast (its versions, takes and scores stay)."""
        character = await self.own(channel_id, name)
        others = [c for c in await self.store.cast(channel_id) if c.id != character.id]
        if character.is_main and others:
            raise UserError(
                f"{character.name} is the main character: make someone else main first (/cast main), then remove."
            )
        await self.store.remove_character(character.id, self.clock())
        log.info("character %d (%s) removed from channel %d", character.id, character.name, channel_id)
        return character

    async def make_main(self, channel_id: int, name: str) -> Character:
        character = await self.own(channel_id, name)
        await self.store.make_main(channel_id, character.id)
        return character

    # A shot ------------------------------------------------------------------------------------------------
    async def for_shot(
        self, channel_id: int, parent_id: int | None, prompt: str, *, start: str | None, limit: int
    ) -> ShotCast:
        """Who a shot shows: the characters its prompt names (refusing an unknown `@Name` or more than `limit`),
        and the character whose anchor it starts from (`start`, else the main one)."""
        cast = await self.members(channel_id, parent_id)
        named = named_in(prompt, [c.name for c in cast])
        if named.unknown:
            raise _no_one(named.unknown[0])
        if len(named.names) > limit:
            extra = ", ".join(named.names[limit:])
            raise UserError(
                f"A shot can show at most {limit} cast members and this prompt names {len(named.names)}: "
                f"{extra} did not fit. Leave some out, or make two shots."
            )
        by_name = {name_key(c.name): c for c in cast}
        members = tuple([await self.member(by_name[name_key(n)]) for n in named.names])
        if start is not None:
            first = await self.member(await self.find(channel_id, parent_id, start))
        else:
            first = await self._main(channel_id, parent_id)
        return ShotCast(first, members)

    async def _main(self, channel_id: int, parent_id: int | None) -> CastMember:
        version: AnchorVersion = await self.anchors.resolve(channel_id, parent_id)
        if version.character_id is None:  # pragma: no cover - every version has a character since 0011
            raise NoAnchor("This channel's anchor has no character; set it again with /anchor set.")
        character = await self.store.character(version.character_id)
        assert character is not None
        return CastMember(character, version)
