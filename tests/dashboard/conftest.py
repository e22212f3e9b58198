"""A published file for the dashboard tests, built cheaply once per session: the hand-made raw fixture
(tests/dbt/raw_fixture.py, January-April 2025) through a real `dbt build`, the analyses after dbt
(`cxw.analytics.runner`) and the real `cxw.publish.publish`."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

import dbt_cli

from tests.dashboard._published import publish_in

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def published_home(tmp_path_factory) -> Path:
    """CXW_HOME with `published/cx_warehouse.duckdb` (one generation) and the build database it was published from."""
    sys.path.insert(0, str(REPO / "tests" / "dbt"))
    import raw_fixture

    home = tmp_path_factory.mktemp("dashboard_home")
    db = home / "warehouse" / "build.duckdb"
    db.parent.mkdir(parents=True)
    raw_fixture.build(db, boundary_rows=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CXW_", "DBT_"))}
    env.update({"CXW_HOME": str(home), "CXW_BUILD_DB": str(db), "DBT_TARGET_PATH": str(home / "target"),
                "DBT_LOG_PATH": str(home / "logs"), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false", "DO_NOT_TRACK": "1"})
    proc = dbt_cli.run(env, "build", "--exclude", "resource_type:unit_test", timeout=600)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
    from cxw.analytics.runner import run_analyses

    run_analyses("duckdb", as_of="2025-05-01", build_db=db)  # the analyze task, as the DAG runs it after dbt
    publish_in(home, "run-1")
    return home
