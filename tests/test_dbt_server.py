"""`tests/dbt_cli.py`'s long-lived dbt process (tests/dbt_server.py, issue 16.8): a call answers as the `dbt` command
would - exit 0 on success, 1 on a failed node, 2 on a usage error, the console output captured - with that call's
environment only, and leaves the build database closed for the test (another process) to open read-write."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import duckdb
import pytest

import dbt_cli

sys.path.insert(0, str(Path(__file__).resolve().parent / "dbt"))
import raw_fixture  # noqa: E402

BUILD = ("build", "--select", "+stg_trustpilot__reviews", "--indirect-selection", "cautious")


def _env(home: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CXW_", "DBT_"))}
    env.update({"CXW_HOME": str(home), "CXW_BUILD_DB": str(home / "build.duckdb"),
                "DBT_TARGET_PATH": str(home / "target"), "DBT_LOG_PATH": str(home / "logs"),
                "DBT_SEND_ANONYMOUS_USAGE_STATS": "false", "DO_NOT_TRACK": "1"})
    return env


def test_a_call_answers_as_the_dbt_command_with_its_own_settings_and_closes_the_database(tmp_path, monkeypatch):
    monkeypatch.setenv("CXW_TEST_DBT_SERVER", "1")
    built, empty = tmp_path / "built", tmp_path / "empty"
    built.mkdir()
    raw_fixture.build(built / "build.duckdb")

    proc = dbt_cli.run(_env(built), *BUILD)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "Completed successfully" in proc.stdout
    # the database is closed: the test opens it read-write (a kept-open file would be locked by the dbt process)
    con = duckdb.connect(str(built / "build.duckdb"))
    try:
        assert con.execute("select count(*) from staging.stg_trustpilot__reviews").fetchone()[0] > 0
    finally:
        con.close()

    # the next call has its own environment: another database, whose raw tables do not exist -> a failed node, 1
    proc = dbt_cli.run(_env(empty), "run", "--select", "stg_trustpilot__reviews")
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "Completed with 1 error" in proc.stdout and (empty / "build.duckdb").exists()


@pytest.mark.parametrize("server", ["0", "1"])
def test_a_usage_error_exits_2_with_and_without_the_dbt_process(tmp_path, monkeypatch, server):
    monkeypatch.setenv("CXW_TEST_DBT_SERVER", server)
    proc = dbt_cli.run(_env(tmp_path), "build", "--no-such-option")
    assert proc.returncode == 2 and "--no-such-option" in proc.stderr, proc.stdout[-2000:] + proc.stderr[-2000:]
