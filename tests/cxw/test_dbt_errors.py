"""A failed dbt run's error (the dbt_build task's exception, so Airflow's log) names the failing nodes and the kind of
error, never a value of the data (issue 15 point 4): DuckDB quotes the value it could not cast ("Could not convert
string 'jane@…' to INT32"). The real dbt, in a subprocess, on the project's profile and an empty build database."""
from __future__ import annotations

import logging

import pytest

PLANTED_EMAIL = "jane.planted@example.org"
PLANTED_PHONE = "+49 170 5550199"


@pytest.mark.parametrize("value", [PLANTED_EMAIL, PLANTED_PHONE])
def test_dbt_error_names_the_node_and_error_kind_never_the_value(tmp_path, monkeypatch, caplog, capfd, value):
    from cxw.dbt import DbtError, run_dbt

    monkeypatch.setenv("CXW_HOME", str(tmp_path))
    for k in ("CXW_BUILD_DB", "DBT_LOG_PATH", "DBT_TARGET_PATH"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("DBT_ERROR_TEST_PLANTED_VALUE", value)
    caplog.set_level(logging.DEBUG)
    sql = "select cast('{{ env_var(\"DBT_ERROR_TEST_PLANTED_VALUE\") }}' as integer) as x"
    with pytest.raises(DbtError) as ei:
        run_dbt(["show", "--inline", sql])
    out, err = capfd.readouterr()
    text = "\n".join([str(ei.value), caplog.text, out, err])
    assert value not in text, str(ei.value)
    msg = str(ei.value)
    assert "Conversion Error" in msg and "INT32" in msg, msg     # the kind of error stays
    assert "dbt.log" in msg                                     # where the full output is (under CXW_HOME)
    # the full output, with the value, is in dbt's own log under CXW_HOME (which erase scrubs), not in the message
    assert value in (tmp_path / "dbt" / "logs" / "dbt.log").read_text()
