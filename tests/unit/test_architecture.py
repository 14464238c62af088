"""The layout by feature keeps its one-way rules: cogs -> features -> jobs/fal/media -> db.

- nothing under `bot/` but the Discord client imports discord or the cogs;
- `bot/db` imports no feature; `bot/jobs` (the engine) imports no feature package;
- `bot/fal` and `bot/media` sit below the features: they import no feature and not the engine;
- SQL is written only in `bot/db` and in each feature's `store.py`;
- only `bot/db` imports aiosqlite; cogs never reach a store or the database directly.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DISCORD_GLUE = {"bot/client.py", "bot/__main__.py"}
FEATURES = ("bot.anchors", "bot.budget", "bot.takes")
SQL = re.compile(r"\b(SELECT|INSERT|UPDATE|DELETE|CREATE TABLE)\b[^\n]*\b(FROM|INTO|SET|WHERE|TABLE)\b")


def _files(*entries: str) -> list[Path]:
    out: list[Path] = []
    for entry in entries:
        path = ROOT / entry
        if path.is_dir():
            out.extend(sorted(path.rglob("*.py")))
        elif path.exists():
            out.append(path)
    return out


def _rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def _offenders(files: list[Path], bad: tuple[str, ...]) -> dict[str, list[str]]:
    found = {
        _rel(p): sorted(m for m in _imports(p) if m == bad or m.startswith(bad) or m.split(".")[0] in bad)
        for p in files
    }
    return {k: v for k, v in found.items() if v}


def _is_store(path: Path) -> bool:
    rel = _rel(path)
    return rel.startswith("bot/db/") or path.name == "store.py"


def test_domain_does_not_import_discord_or_cogs():
    domain = [p for p in _files("bot") if _rel(p) not in DISCORD_GLUE]
    assert _offenders(domain, ("discord", "cogs")) == {}


def test_db_and_engine_import_no_feature():
    assert _offenders(_files("bot/db"), (*FEATURES, "bot.jobs", "bot.fal", "bot.media")) == {}
    assert _offenders(_files("bot/jobs"), (*FEATURES, "discord", "cogs")) == {}


def test_gateway_and_media_import_no_feature_and_not_the_engine():
    assert _offenders(_files("bot/fal", "bot/media"), (*FEATURES, "bot.jobs", "bot.db", "bot.app")) == {}


def test_stores_do_not_import_services():
    stores = [p for p in _files("bot") if p.name == "store.py"]
    assert stores, "the layout has a store.py per feature"
    assert _offenders(stores, ("bot.client", "bot.app", *(f"{f}.service" for f in FEATURES))) == {}


def test_no_sql_outside_stores():
    offenders = [
        _rel(p)
        for p in _files("bot", "cogs")
        if not _is_store(p) and SQL.search(p.read_text(encoding="utf-8"))
    ]
    assert offenders == []


def test_only_the_db_package_imports_aiosqlite():
    outside = [p for p in _files("bot", "cogs") if not _rel(p).startswith("bot/db/")]
    assert _offenders(outside, ("aiosqlite",)) == {}


def test_cogs_never_reach_a_store_or_the_database():
    bad = ("bot.db", *(f"{f}.store" for f in FEATURES))
    assert _offenders(_files("cogs"), bad) == {}


def test_the_sql_detector_does_detect_sql():
    assert SQL.search('await db.execute("SELECT value FROM kv WHERE key=?")')
    assert not SQL.search("Select an image from your files")
