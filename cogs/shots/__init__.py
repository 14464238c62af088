"""/shot, its progress message, Cancel and Re-roll, and re-roll by reaction (Discord glue only).

cog.py: the command and the reaction listener; publisher.py: posting progress, clips and verdicts with the bot
token; edits.py: the per-channel queue of progress edits; buttons.py: the persistent buttons; answer.py: /shot's
one answer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.client import AnchorshotBot


async def setup(bot: AnchorshotBot) -> None:
    from cogs.shots.cog import ShotCog  # here: the package's modules import each other's pieces, not the cog

    await bot.add_cog(ShotCog(bot))
