"""`backend` as "sqlite" and "postgresql" (marked `postgres`), for the modules that run every test on both: they
import this fixture (`from tests.both_backends import both_backends  # noqa: F401`). It lives outside the plugin
module tests/backends.py, whose `backend` ("sqlite") every other test keeps."""

from __future__ import annotations

import pytest

from tests.backends import BACKENDS


@pytest.fixture(name="backend", params=BACKENDS)
def both_backends(request: pytest.FixtureRequest) -> str:
    param: str = request.param
    return param
