"""The layout by feature keeps its one-way rules: cogs -> features -> kinds -> jobs/fal/media -> db.

- a feature is a package under `bot/` with a `service.py` (found here, not listed by hand);
- features (and cogs) reach a feature only through its `service`, `models` or `ports` module (`bot/app.py`,
  which wires everything, excepted);
- nothing under `bot/` but the Discord client imports discord or the cogs;
- `bot/db` imports no feature; `bot/jobs` (the engine) imports no feature package and not the fal gateway;
- `bot/fal` and `bot/media` sit below the features: they import no feature and not the engine;
- `bot/kinds` (the shared fal steps) imports no feature;
- SQL is written only in `bot/db` and in each feature's `store.py`;
- only `bot/db` imports aiosqlite; cogs never reach a store or the database directly;
- no function in `bot/` or `cogs/` is longer than 60 lines.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DISCORD_GLUE = {"bot/client.py", "bot/__main__.py"}
WIRING = "bot/app.py"
FEATURES = tuple(sorted(f"bot.{p.parent.name}" for p in (ROOT / "bot").glob("*/service.py")))
PUBLIC = ("service", "models", "ports")  # what a feature shows the others
SQL = re.compile(r"\b(SELECT|INSERT|UPDATE|DELETE|CREATE TABLE)\b[^\n]*\b(FROM|INTO|SET|WHERE|TABLE)\b")
MAX_FUNCTION_LINES = 60


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


def _module(path: Path) -> str:
    return _rel(path).removesuffix(".py").removesuffix("/__init__").replace("/", ".")


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


def _feature_of(module: str) -> str | None:
    return next((f for f in FEATURES if module == f or module.startswith(f + ".")), None)


def _is_store(path: Path) -> bool:
    rel = _rel(path)
    return rel.startswith("bot/db/") or path.name == "store.py"


def test_features_are_found_by_their_service_module():
    assert {"bot.anchors", "bot.budget", "bot.takes", "bot.studio", "bot.consistency"} <= set(FEATURES)


def test_features_reach_each_other_only_through_service_models_or_ports():
    offenders = []
    for path in _files("bot", "cogs"):
        if _rel(path) == WIRING:
            continue  # the one place that builds every kind and service
        own = _feature_of(_module(path))
        for name in _imports(path):
            other = _feature_of(name)
            if other is None or other == own:
                continue
            if name.removeprefix(other + ".") not in PUBLIC:
                offenders.append(f"{_rel(path)} imports {name}")
    assert offenders == []


def test_domain_does_not_import_discord_or_cogs():
    domain = [p for p in _files("bot") if _rel(p) not in DISCORD_GLUE]
    assert _offenders(domain, ("discord", "cogs")) == {}


def test_db_and_engine_import_no_feature():
    assert _offenders(_files("bot/db"), (*FEATURES, "bot.jobs", "bot.fal", "bot.media", "bot.kinds")) == {}
    assert _offenders(_files("bot/jobs"), (*FEATURES, "bot.fal", "bot.kinds", "discord", "cogs")) == {}


def test_gateway_and_media_import_no_feature_and_not_the_engine():
    below = _files("bot/fal", "bot/media")
    assert _offenders(below, (*FEATURES, "bot.jobs", "bot.kinds", "bot.db", "bot.app")) == {}


def test_shared_kind_steps_import_no_feature():
    assert _offenders(_files("bot/kinds"), (*FEATURES, "discord", "cogs")) == {}


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


def test_no_function_is_longer_than_sixty_lines():
    long = []
    for path in _files("bot", "cogs"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = (node.end_lineno or node.lineno) - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long.append(f"{_rel(path)}:{node.lineno} {node.name} ({lines} lines)")
    assert long == []


def test_the_checks_do_catch_what_they_forbid(tmp_path):
    assert SQL.search('await db.execute("SELECT value FROM kv WHERE key=?")')
    assert not SQL.search("Select an image from your files")
    assert _feature_of("bot.takes.kind") == "bot.takes" and _feature_of("bot.kindsx") is None
    assert "kind" not in PUBLIC and "models" in PUBLIC
