"""The container, the example settings, the lock files and the README agree with each other."""

from __future__ import annotations

import re
import tomllib

from bot.settings import Settings
from tests.conftest import ROOT

DOCKERFILE = (ROOT / "Dockerfile").read_text(encoding="utf-8")
ENV_EXAMPLE = (ROOT / ".env.example").read_text(encoding="utf-8")
README = (ROOT / "README.md").read_text(encoding="utf-8")
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0].lower().replace("_", "-").replace(".", "-")


def _pinned(lock: str) -> dict[str, str]:
    pins = {}
    for line in (ROOT / lock).read_text(encoding="utf-8").splitlines():
        match = re.match(r"^([A-Za-z0-9_.\-]+)==([^\s;]+)", line)
        if match:
            pins[_name(match.group(1))] = match.group(2)
    return pins


def test_the_container_keeps_its_data_on_the_volume():
    assert "DATA_DIR=/data" in DOCKERFILE and 'VOLUME ["/data"]' in DOCKERFILE
    assert re.search(r"^USER anchorshot$", DOCKERFILE, re.M), "the bot does not run as root"
    active = [line for line in ENV_EXAMPLE.splitlines() if line.startswith("DATA_DIR=")]
    assert active == [], ".env.example must not move DATA_DIR off the container's /data volume"


def test_the_container_installs_from_the_lock_and_checks_its_health():
    assert "pip install -r requirements.lock" in DOCKERFILE
    assert "pip install --no-deps ." in DOCKERFILE
    assert re.search(r'^HEALTHCHECK .*"anchorshot", "health"', DOCKERFILE, re.M)


def test_every_dependency_is_pinned_in_the_lock_files():
    runtime = {_name(r) for r in PYPROJECT["project"]["dependencies"]}
    test = {_name(r) for r in PYPROJECT["project"]["optional-dependencies"]["test"]}
    assert runtime - set(_pinned("requirements.lock")) == set()
    assert (runtime | test) - set(_pinned("requirements-test.lock")) == set()
    shared = set(_pinned("requirements.lock")) & set(_pinned("requirements-test.lock"))
    differ = {n for n in shared if _pinned("requirements.lock")[n] != _pinned("requirements-test.lock")[n]}
    assert differ == set(), "the two locks pin the same package to different versions"


def test_the_quick_start_is_two_commands_that_install_from_the_locks():
    quick = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"```sh\n(.*?)\n```", quick, re.S)
    assert len(commands) == 2 and all("\n" not in c for c in commands)
    assert "-r requirements.lock" in commands[0] and "anchorshot" in commands[0]
    assert "-r requirements-test.lock" in commands[1] and "pytest" in commands[1]


def test_every_setting_in_the_example_exists():
    names = {n.upper() for n in Settings.model_fields}
    keys = set(re.findall(r"^#?\s?([A-Z][A-Z0-9_]+)=", ENV_EXAMPLE, re.M))
    assert keys - names == set()
