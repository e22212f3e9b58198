"""`cxw_tools.airflow_local.airflow_commands`: `prepare_airflow`'s Airflow CLI commands run one after the other in one
Python process (one Airflow import instead of three); the first that fails stops the rest and is named."""

from __future__ import annotations

import pytest


def test_commands_run_in_order_in_one_process_and_the_failing_one_is_named(tmp_path, monkeypatch):
    monkeypatch.setenv("CXW_HOME", str(tmp_path))
    for k in ("AIRFLOW_HOME", "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"):
        monkeypatch.delenv(k, raising=False)
    from cxw_tools.airflow_local import airflow_commands

    proc = airflow_commands([["version"], ["version"]])
    assert proc.stderr.count("cxw: airflow version") == 2
    assert len([ln for ln in proc.stdout.splitlines() if ln.strip()]) == 2  # each command printed its version

    with pytest.raises(RuntimeError, match=r"^airflow pools set only-a-name failed \(2\)") as exc:
        airflow_commands([["version"], ["pools", "set", "only-a-name"], ["version"]])
    assert str(exc.value).count("cxw: airflow version") == 1  # the command after the failing one did not run
