"""Compatibility shim: the fake Discord now lives in the package ``tests.fakes.discord``.

This module only re-exports it so that ``from tests.fakes.discord_fake import FakeDiscord, text_of, ...``
in existing tests keeps working. New code should import from ``tests.fakes.discord``.
"""

from tests.fakes.discord import *  # noqa: F403
from tests.fakes.discord import __all__  # noqa: F401
