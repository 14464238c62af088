"""Online backups, restores and the start-up integrity check of the SQLite file (plain sqlite3, no event loop).

A backup uses SQLite's backup API (`sqlite3.Connection.backup`), so it is a consistent copy even while the bot runs
and writes in WAL mode. It is written to a temporary file beside the target and renamed into place, so a backup
interrupted half-way never leaves a file that looks complete.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from pathlib import Path

from bot.db.kv import INSTANCE_KEY
from bot.errors import ConfigError

# Below this size the full `PRAGMA integrity_check` (which also checks every index against its table, and the
# ledger's idempotency rests on UNIQUE indexes) takes well under a second; above it start-up uses `quick_check`
# (O(N), skips the index-vs-table comparison) so a large file does not delay the bot for minutes.
FULL_CHECK_MAX_BYTES = 256 * 1024 * 1024
_SIDE_FILES = ("-wal", "-shm")


class DatabaseDamaged(ConfigError):
    """The SQLite file fails its integrity check (or is not a database at all)."""


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=10, isolation_level=None)
    conn.execute("PRAGMA busy_timeout=10000")
    return conn


def integrity_problem(path: Path, *, full: bool | None = None) -> str | None:
    """Return None when the database at `path` is sound, else the first problem SQLite reports (one line)."""
    size = path.stat().st_size + sum(
        p.stat().st_size for p in (Path(str(path) + s) for s in _SIDE_FILES) if p.exists()
    )
    if full is None:
        full = size <= FULL_CHECK_MAX_BYTES
    pragma = "integrity_check" if full else "quick_check"
    try:
        conn = _connect(path)
        try:
            rows = [r[0] for r in conn.execute(f"PRAGMA {pragma}(5)").fetchall()]
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        return " ".join(str(exc).split()) or type(exc).__name__
    if rows == ["ok"]:
        return None
    lines = [line.strip() for r in rows for line in str(r).splitlines() if line.strip().strip("*").strip()]
    lines = [line for line in lines if not line.startswith("*** in database")]
    return "; ".join(lines[:2]) or "unknown damage"


def check_database(path: Path) -> None:
    """Raise `DatabaseDamaged` with one line saying what to do when the file exists and is damaged."""
    if not path.exists():
        return
    problem = integrity_problem(path)
    if problem is not None:
        raise DatabaseDamaged(
            f"the database {path} is damaged ({problem}). Do not start the bot on it: restore your newest "
            "backup with `anchorshot restore BACKUP_FILE` (the damaged file is kept beside it); "
            "see the README's 'Backups'."
        )


def _copy(src: Path, dest: Path) -> None:
    """Copy `src` into a fresh `dest` with the backup API, through a temporary file and an atomic rename."""
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    source = _connect(src)
    try:
        target = sqlite3.connect(tmp)
        try:
            # One step: in WAL mode it reads one snapshot while the bot keeps writing (stepwise copies restart
            # whenever another connection writes, which a busy bot could make endless).
            source.backup(target)
            target.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
            target.commit()
        finally:
            target.close()
    finally:
        source.close()
    os.replace(tmp, dest)


def backup(database: Path, dest: Path, *, force: bool = False) -> int:
    """Back `database` up to `dest`; return the size of the copy in bytes."""
    if not database.exists():
        raise ConfigError(f"there is no database at {database} (check DATA_DIR)")
    if dest.is_dir():
        dest = dest / f"anchorshot-{time.strftime('%Y%m%d-%H%M%S')}.sqlite3"
    if dest.exists() and not force:
        raise ConfigError(f"{dest} already exists; choose another name, or add --force to overwrite it")
    if dest.resolve() == database.resolve():
        raise ConfigError("the backup cannot be the database itself")
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        _copy(database, dest)
    except sqlite3.DatabaseError as exc:
        raise ConfigError(f"could not back up {database}: {exc}") from None
    problem = integrity_problem(dest, full=True)
    if problem is not None:
        dest.unlink(missing_ok=True)
        raise DatabaseDamaged(f"the database {database} is damaged ({problem}); no backup was written")
    return dest.stat().st_size


def restore(backup_file: Path, database: Path, *, force: bool = False) -> Path | None:
    """Replace `database` by a copy of `backup_file` (the bot must be stopped).

    A sound database is only replaced with `force`. The file replaced (and its WAL) is kept beside it with a
    `.replaced-<time>` suffix; return that path, or None when there was no database.
    """
    if not backup_file.exists():
        raise ConfigError(f"there is no backup at {backup_file}")
    problem = integrity_problem(backup_file, full=True)
    if problem is not None:
        raise DatabaseDamaged(f"the backup {backup_file} is damaged too ({problem}); try an older backup")
    kept: Path | None = None
    if database.exists():
        if not force and integrity_problem(database) is None:
            raise ConfigError(
                f"the database {database} is sound; restoring would lose everything since the backup. "
                "Add --force to restore anyway"
            )
        suffix = f".replaced-{time.strftime('%Y%m%d-%H%M%S')}"
        kept = database.with_name(database.name + suffix)
        for side in ("", *_SIDE_FILES):
            src = Path(str(database) + side)
            if src.exists():
                os.replace(src, Path(str(kept) + side))
    else:
        for side in _SIDE_FILES:  # a stale WAL would be replayed into the restored file
            with contextlib.suppress(FileNotFoundError):
                Path(str(database) + side).unlink()
    database.parent.mkdir(parents=True, exist_ok=True)
    _copy(backup_file, database)
    _new_life(database)
    return kept


def _new_life(database: Path) -> None:
    """A restored database lives again from an earlier point: it gets a new instance id, so the job ids it reuses
    never repeat the nonces of messages the replaced one posted."""
    with contextlib.closing(sqlite3.connect(database)) as conn, conn:
        if conn.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='kv'").fetchone():
            conn.execute("DELETE FROM kv WHERE key=?", (INSTANCE_KEY,))
