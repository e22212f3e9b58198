"""Project-wide test policy.

Tests that need the PostgreSQL / MariaDB servers of this machine call `require_service(...)`: without a reachable
server they skip with the reason — unless CXW_REQUIRE_SERVICES=1 (set by .ci/run), which turns the skip into a failure
so CI can never pass by skipping them.
"""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def _reachable(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


SERVICES = {"postgres": ("127.0.0.1", 5432), "mariadb": ("127.0.0.1", 3306)}


def require_service(name: str) -> None:
    host, port = SERVICES[name]
    if _reachable(host, port):
        return
    reason = f"{name} not reachable on {host}:{port} (start it with ../shared/tools/start-services)"
    if os.environ.get("CXW_REQUIRE_SERVICES") == "1":
        pytest.fail(f"CXW_REQUIRE_SERVICES=1 but {reason}")
    pytest.skip(reason)


@pytest.fixture
def postgres_available() -> None:
    require_service("postgres")


@pytest.fixture
def mariadb_available() -> None:
    require_service("mariadb")
