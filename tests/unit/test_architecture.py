"""Dependencies point one way: cogs -> services -> storage; the domain never imports discord; no SQL in cogs."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOMAIN = [
    "bot/services",
    "bot/storage",
    "bot/media",
    "bot/generation",
    "bot/money.py",
    "bot/errors.py",
    "bot/settings.py",
    "bot/app.py",
]
SQL = re.compile(r"\b(SELECT|INSERT|UPDATE|DELETE|CREATE TABLE)\b[^\n]*\b(FROM|INTO|SET|WHERE|TABLE)\b")


def _files(entries: list[str]) -> list[Path]:
    out: list[Path] = []
    for entry in entries:
        path = ROOT / entry
        out.extend(sorted(path.rglob("*.py")) if path.is_dir() else [path])
    return out


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_domain_does_not_import_discord_or_cogs():
    offenders = {
        str(p.relative_to(ROOT)): sorted(m for m in _imports(p) if m.split(".")[0] in {"discord", "cogs"})
        for p in _files(DOMAIN)
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_storage_does_not_import_services():
    offenders = {
        str(p.relative_to(ROOT)): sorted(
            m for m in _imports(p) if m.startswith(("bot.services", "bot.client"))
        )
        for p in _files(["bot/storage"])
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_no_sql_outside_storage():
    offenders = [
        str(p.relative_to(ROOT))
        for p in _files(
            ["cogs", "bot/services", "bot/generation", "bot/media", "bot/client.py", "bot/app.py"]
        )
        if SQL.search(p.read_text(encoding="utf-8"))
    ]
    assert offenders == []


def test_the_sql_detector_does_detect_sql():
    assert SQL.search('await db.execute("SELECT value FROM kv WHERE key=?")')
    assert not SQL.search("Select an image from your files")
