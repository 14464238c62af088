"""A fake Discord (REST + gateway websocket + CDN on 127.0.0.1) for driving an unmodified discord.py.

``from tests.fakes.discord import FakeDiscord`` is the entry point; see ``server.FakeDiscord`` for the
test API. Modules: ``server`` (app, routes, request log, observation), ``state`` (guilds, members,
channels, permissions), ``gateway`` (sessions, shards), ``cdn``, ``rest_messages``, ``rest_interactions``,
``rest_commands``, ``rest_guild``, ``limits`` (what Discord refuses), ``faults`` (misbehaviour on
cue), ``views`` (``Msg``), ``common`` (constants, errors, captured requests).
"""

from .common import (
    ADD_REACTIONS,
    ADMINISTRATOR,
    ALL_PERMISSIONS,
    ATTACH_FILES,
    DEFAULT_MEMBER_PERMS,
    EMBED_LINKS,
    MANAGE_GUILD,
    MANAGE_MESSAGES,
    MENTION_EVERYONE,
    READ_MESSAGE_HISTORY,
    SEND_MESSAGES,
    SEND_MESSAGES_IN_THREADS,
    USE_APPLICATION_COMMANDS,
    VIEW_CHANNEL,
    ApiError,
    CapturedFile,
    CapturedRequest,
    CommandHidden,
    FakeClock,
    error_paths,
    text_of,
)
from .faults import FaultRule, Faults
from .gateway import GatewaySession
from .rest_interactions import FakeInteraction
from .server import FakeDiscord
from .state import Guild, shard_of
from .views import Button, Msg, MsgFile

__all__ = [
    "ADD_REACTIONS",
    "ADMINISTRATOR",
    "ALL_PERMISSIONS",
    "ATTACH_FILES",
    "DEFAULT_MEMBER_PERMS",
    "EMBED_LINKS",
    "MANAGE_GUILD",
    "MANAGE_MESSAGES",
    "MENTION_EVERYONE",
    "READ_MESSAGE_HISTORY",
    "SEND_MESSAGES",
    "SEND_MESSAGES_IN_THREADS",
    "USE_APPLICATION_COMMANDS",
    "VIEW_CHANNEL",
    "ApiError",
    "Button",
    "CapturedFile",
    "CapturedRequest",
    "CommandHidden",
    "FakeClock",
    "FakeDiscord",
    "FakeInteraction",
    "FaultRule",
    "Faults",
    "GatewaySession",
    "Guild",
    "Msg",
    "MsgFile",
    "error_paths",
    "shard_of",
    "text_of",
]
