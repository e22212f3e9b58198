"""CXW_DBT_PARSE_CACHE_DIR (cxw.dbt, issue 16.8): a new CXW_HOME's dbt starts from the parse an earlier home saved
instead of parsing the whole project again; dbt still checks the copy and parses in full when the vars differ.
Real dbt (`dbt parse`, no database): one full parse, one partial, one full again."""

from __future__ import annotations


def _parse(monkeypatch, home, cache, window):
    from cxw.dbt import kpi_window_vars, run_dbt

    monkeypatch.setenv("CXW_HOME", str(home))
    monkeypatch.delenv("CXW_BUILD_DB", raising=False)
    monkeypatch.setenv("CXW_DBT_PARSE_CACHE_DIR", str(cache))
    report = run_dbt(["parse", *kpi_window_vars(window)])
    assert report["returncode"] == 0
    return (home / "dbt" / "logs" / "dbt.log").read_text()


FULL = "Unable to do partial parsing"


def test_a_new_home_reuses_the_parse_another_home_saved_and_other_vars_parse_in_full(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    first = _parse(monkeypatch, tmp_path / "a", cache, ["2025-01-01", "2025-07-01"])
    assert FULL in first
    assert list(cache.glob("*/partial_parse.msgpack")), "the first run saved no parse in the cache"
    # another home, same project and KPI window: dbt takes the saved parse (no full parse) and finds the same models
    second = _parse(monkeypatch, tmp_path / "b", cache, ["2025-01-01", "2025-07-01"])
    assert FULL not in second
    assert (tmp_path / "b" / "dbt" / "target" / "partial_parse.msgpack").exists()
    # another window is another key: nothing to copy, a full parse (as without the cache)
    third = _parse(monkeypatch, tmp_path / "c", cache, ["2025-01-01", "2025-06-01"])
    assert FULL in third
    assert len(list(cache.glob("*/partial_parse.msgpack"))) == 2
