"""Entry point: `python -m bot` or `anchorshot`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys

import aiohttp
import discord
import yarl

from bot.app import open_services
from bot.errors import ConfigError
from bot.settings import Settings, load_settings

log = logging.getLogger("bot")


def _point_at_fakes(settings: Settings) -> None:
    """Use other Discord and fal hosts (the subprocess tests point these at local fakes)."""
    if settings.discord_api_base:
        discord.http.Route.BASE = settings.discord_api_base.rstrip("/")
    if settings.discord_gateway_url:
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(settings.discord_gateway_url)
    if settings.fal_queue_url or settings.fal_rest_url or settings.fal_cdn_url:
        import fal_client.client

        if settings.fal_queue_url:
            fal_client.client.QUEUE_URL_FORMAT = settings.fal_queue_url.rstrip("/") + "/"
        if settings.fal_rest_url:
            fal_client.client.REST_URL = settings.fal_rest_url.rstrip("/")
        if settings.fal_cdn_url:
            fal_client.client.CDN_URL = settings.fal_cdn_url.rstrip("/")


async def run(settings: Settings, token: str) -> None:
    """Run the bot until it is stopped."""
    from bot.client import AnchorshotBot

    _point_at_fakes(settings)
    async with open_services(settings) as services:
        log.info(
            "Anchorshot starting: backend %s, data in %s",
            services.generator.name,
            settings.data_dir.resolve(),
        )
        async with AnchorshotBot(services) as bot:
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                with contextlib.suppress(NotImplementedError):
                    loop.add_signal_handler(sig, lambda: asyncio.ensure_future(bot.close()))
            await bot.start(token)


def main() -> None:
    """Read settings, explain any problem in one line, run."""
    try:
        settings = load_settings()
        token = settings.check_token()
    except ConfigError as exc:
        print(f"anchorshot: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    logging.basicConfig(
        level=settings.log_level.upper() if settings.log_level else "INFO",
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
    )
    logging.getLogger("discord.http").setLevel(logging.WARNING)
    try:
        asyncio.run(run(settings, token))
    except discord.LoginFailure:
        print(
            "anchorshot: Discord refused DISCORD_TOKEN; reset it on the Developer Portal's Bot page.",
            file=sys.stderr,
        )
        raise SystemExit(2) from None
    except discord.PrivilegedIntentsRequired:
        print(
            "anchorshot: Discord refused the gateway intents; check the Bot page's intents.", file=sys.stderr
        )
        raise SystemExit(2) from None
    except aiohttp.ClientConnectionError as exc:
        print(
            f"anchorshot: cannot reach Discord ({type(exc).__name__}: {exc}); check the network.",
            file=sys.stderr,
        )
        raise SystemExit(1) from None
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
