"""`tests/dbt_cli.py` (issue 16.8): a test's `dbt` call in a new target directory, for another database file, starts
from the parse an earlier call of the session saved, and dbt accepts it (it checks the project and the profile itself
and says why when it parses in full); with the cache off the same call parses the whole project."""

from __future__ import annotations

import os
from pathlib import Path

import dbt_cli


def _env(home: Path, **extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CXW_", "DBT_"))}
    env.update({"CXW_HOME": str(home), "CXW_BUILD_DB": str(home / "build.duckdb"),
                "DBT_TARGET_PATH": str(home / "target"), "DBT_LOG_PATH": str(home / "logs"),
                "DBT_SEND_ANONYMOUS_USAGE_STATS": "false", "DO_NOT_TRACK": "1", **extra})
    return env


def _parse_log(home: Path) -> str:
    return (home / "logs" / "dbt.log").read_text()


def test_a_new_target_directory_reuses_the_saved_parse_and_dbt_accepts_it(tmp_path, monkeypatch):
    monkeypatch.setenv("CXW_DBT_PARSE_CACHE", "1")
    monkeypatch.setattr(dbt_cli, "_cache_dir", tmp_path / "cache")
    first, second, off = tmp_path / "first", tmp_path / "second", tmp_path / "off"
    for home in (first, second):
        proc = dbt_cli.run(_env(home), "parse")
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "Unable to do partial parsing because saved manifest not found" in _parse_log(first)
    log = _parse_log(second)
    assert "Unable to do partial parsing" not in log, log[-3000:]
    assert "Partial parsing enabled" in log
    monkeypatch.setenv("CXW_DBT_PARSE_CACHE", "0")
    proc = dbt_cli.run(_env(off), "parse")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "Unable to do partial parsing" in _parse_log(off)
