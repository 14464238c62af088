"""Entry point: `python -m bot` or `anchorshot`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from pathlib import Path

import aiohttp
import discord
import yarl

from bot.app import open_services
from bot.errors import ConfigError
from bot.settings import Settings, load_settings

log = logging.getLogger("bot")

# Gateway close codes a setting fixes (Discord's gateway close event codes), as one line each.
SHARD_CLOSES = {
    4010: "Discord refused the shard (close code 4010, invalid shard): check SHARD_COUNT and SHARD_IDS.",
    4011: "Discord requires sharding for this many servers (close code 4011): set SHARD_COUNT "
    "(a shard serves at most 2,500 servers).",
}


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
            services.gateway.name,
            settings.data_dir.resolve(),
        )
        async with AnchorshotBot(services, guild_ready_timeout=settings.guild_ready_timeout_s) as bot:
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                with contextlib.suppress(NotImplementedError):
                    loop.add_signal_handler(sig, lambda: asyncio.ensure_future(bot.close()))
            await bot.start(token)


USAGE = """usage: anchorshot                      run the bot
       anchorshot backup PATH [--force]  copy the SQLite database (safe while the bot runs)
       anchorshot restore PATH [--force] replace the SQLite database by a backup (stop the bot first)
       anchorshot check                  check the SQLite database's integrity
       anchorshot migrate-to-postgres [DATABASE_URL]
                                         copy the SQLite database in DATA_DIR into an empty PostgreSQL
                                         database and check the copy (stop the bot first; the URL defaults
                                         to DATABASE_URL)
       anchorshot health                 exit 0 while the running bot is connected (the container's HEALTHCHECK)
With DATABASE_URL set, back PostgreSQL up with pg_dump and restore it with pg_restore instead."""

SQLITE_COMMANDS = ("backup", "restore", "check")
MIGRATE = "migrate-to-postgres"


def _maintenance(args: list[str]) -> int:
    """The maintenance commands: one line on stdout each step (or stderr on failure); return the exit code."""
    command, rest = args[0], args[1:]
    if command in ("-h", "--help", "help"):
        print(USAGE)
        return 0
    if command == "health" and not rest:
        return _health()
    if command == MIGRATE and len(rest) <= 1 and not any(a.startswith("-") for a in rest):
        return _migrate(rest[0] if rest else None)
    force = "--force" in rest
    paths = [a for a in rest if a != "--force"]
    if command not in SQLITE_COMMANDS or any(p.startswith("-") for p in paths):
        print(USAGE, file=sys.stderr)
        return 2
    if (command == "check") != (len(paths) == 0) or len(paths) > 1:
        print(USAGE, file=sys.stderr)
        return 2
    try:
        settings = load_settings()
        if settings.postgres_url:
            print(
                f"anchorshot: `{command}` works on the SQLite file, but DATABASE_URL selects PostgreSQL: use "
                "pg_dump and pg_restore for it (and copy the media folder).",
                file=sys.stderr,
            )
            return 2
        _sqlite_maintenance(command, settings.database_path, paths, force)
    except ConfigError as exc:
        print(f"anchorshot: {exc}", file=sys.stderr)
        return 2
    return 0


def _sqlite_maintenance(command: str, database: Path, paths: list[str], force: bool) -> None:
    """`backup`, `restore` and `check` of the SQLite file: one line on stdout; ConfigError on failure."""
    from bot.db.backup import backup, integrity_problem, restore

    if command == "backup":
        size = backup(database, Path(paths[0]), force=force)
        print(f"anchorshot: backed up {database} to {paths[0]} ({size:,} bytes, integrity ok)")
    elif command == "restore":
        kept = restore(Path(paths[0]), database, force=force)
        where = f"; the old file is kept as {kept}" if kept else ""
        print(f"anchorshot: restored {database} from {paths[0]}{where}")
    else:
        if not database.exists():
            raise ConfigError(f"there is no database at {database} (check DATA_DIR)")
        problem = integrity_problem(database, full=True)
        if problem is not None:
            raise ConfigError(f"{database} is damaged: {problem}")
        print(f"anchorshot: {database} integrity ok")


def _migrate(url: str | None) -> int:
    """`migrate-to-postgres [URL]`: 0 when the copy is made and checked, 1 when a check differs (nothing is
    kept), 2 when it was refused (one line on stderr; the URL's password is never printed)."""
    from bot.db.migrate import migrate_to_postgres

    try:
        settings = load_settings()
        url = url or settings.postgres_url
        if not url or not url.startswith(("postgresql://", "postgres://")):
            raise ConfigError(
                "migrate-to-postgres needs a postgresql:// URL, as its argument or in DATABASE_URL"
            )
        done = asyncio.run(migrate_to_postgres(settings.database_path, url, settings.media_dir, _say))
    except ConfigError as exc:
        print(f"anchorshot: {exc}", file=sys.stderr)
        return 2
    return 0 if done else 1


def _say(line: str) -> None:
    print(f"anchorshot: {line}", flush=True)


def _health() -> int:
    """One line and exit 0 while the bot's heartbeat is fresh, else exit 1."""
    from bot.heartbeat import health_problem, heartbeat_path

    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"anchorshot: {exc}", file=sys.stderr)
        return 2
    problem = health_problem(heartbeat_path(settings.data_dir, settings.shard_ids))
    if problem is not None:
        print(f"anchorshot: unhealthy: {problem}", file=sys.stderr)
        return 1
    print("anchorshot: healthy")
    return 0


def setup_logging(level: str | None) -> None:
    """Log to stderr; the chatty HTTP libraries only from WARNING (fal_client logs every poll at INFO)."""
    logging.basicConfig(
        level=level.upper() if level else "INFO",
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
    )
    for name in ("discord.http", "httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.WARNING)


def main(argv: list[str] | None = None) -> None:
    """Read settings, explain any problem in one line, run (or run a maintenance command)."""
    args = sys.argv[1:] if argv is None else argv
    if args:
        raise SystemExit(_maintenance(args))
    from bot.db.backup import check_database

    try:
        settings = load_settings()
        token = settings.check_token()
        if not settings.postgres_url:  # the SQLite file's start-up check; PostgreSQL checks its own pages
            check_database(settings.database_path)
    except ConfigError as exc:
        print(f"anchorshot: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    setup_logging(settings.log_level)
    try:
        asyncio.run(run(settings, token))
    except ConfigError as exc:  # found on the way up: the database refused (DatabaseUnavailable)
        print(f"anchorshot: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
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
    except discord.ConnectionClosed as exc:
        if exc.code not in SHARD_CLOSES:
            raise
        print(f"anchorshot: {SHARD_CLOSES[exc.code]}", file=sys.stderr)
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
