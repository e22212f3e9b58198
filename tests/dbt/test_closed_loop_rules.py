"""The closed loop's two rules as dbt unit tests on their own (dbt_project/models/marts/intermediate/closed_loop):
the alert rule (int_detractor_alerts) and the complaint-context rule (int_complaint_feedback, read by both topic
models). Their fixture rows and expected rows are in _closed_loop__models.yml; here dbt runs them alone: the models'
upstream is built empty (`dbt build --empty` without tests: seeds and the column types the unit tests need) on the hand-made raw fixture, then `dbt test`
selects the two models' unit tests. The whole-project build of test_dbt_fixture.py runs them too, at many times the
cost."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

import dbt_cli

sys.path.insert(0, str(Path(__file__).resolve().parent))
import raw_fixture  # noqa: E402

RULES = ("int_detractor_alerts", "int_complaint_feedback")


@pytest.fixture(scope="module")
def empty_upstream(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("closed_loop")
    db = tmp / "build.duckdb"
    raw_fixture.build(db)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CXW_", "DBT_"))}
    env.update({"CXW_HOME": str(tmp), "CXW_BUILD_DB": str(db), "DBT_TARGET_PATH": str(tmp / "target"),
                "DBT_LOG_PATH": str(tmp / "logs"), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false", "DO_NOT_TRACK": "1"})
    proc = dbt_cli.run(env, "build", "--empty", "--select", *[f"+{m}" for m in RULES], "--exclude-resource-type", "test",
                       "--exclude-resource-type", "unit_test", timeout=600)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    return env


@pytest.mark.parametrize("model", RULES)
def test_the_rules_unit_tests_pass(empty_upstream, model):
    proc = dbt_cli.run(empty_upstream, "test", "--select", f"{model},test_type:unit", timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    assert "PASS=" in out and "PASS=0 " not in out, out[-2000:]  # a unit test ran and passed (none selected = PASS=0)
