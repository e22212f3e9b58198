"""cxw.loader.load_into_duckdb: append-only per load, new-content counting, rebuild on retention / type change."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cxw.loader import load_into_duckdb


def _land(raw: Path, source: str, entity: str, load_id: str, rows: list[dict], schema: pa.Schema | None = None):
    d = raw / source / entity / load_id
    d.mkdir(parents=True)
    if rows:
        t = pa.Table.from_pylist(rows, schema=schema)
        n = t.num_rows
        t = t.append_column("_load_id", pa.array([load_id] * n, pa.string()))
        t = t.append_column("_record_seq", pa.array(range(n), pa.int64()))
        pq.write_table(t, d / "part-00000.parquet")
    (d / "_load.json").write_text(json.dumps({"rows": len(rows), "extracted_at": "2025-01-01T00:00:00Z"}))


def _rows(db: Path, sql: str):
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


@pytest.fixture
def env(tmp_path):
    return tmp_path / "raw", tmp_path / "build.duckdb"


def test_new_loads_are_appended_and_held_loads_are_not_read_again(env):
    raw, db = env
    _land(raw, "crm", "contacts", "crm-20250101T000000-a", [{"id": 1, "email": "a@x"}, {"id": 2, "email": "b@x"}])
    first = load_into_duckdb(raw, db)
    assert first["tables"]["raw_crm.contacts"]["mode"] == "rebuild"
    _land(raw, "crm", "contacts", "crm-20250102T000000-b", [{"id": 3, "email": "c@x"}])
    second = load_into_duckdb(raw, db)
    t = second["tables"]["raw_crm.contacts"]
    assert (t["mode"], t["rows"], t["table_rows"], t["loads"], t["new_content_rows"]) == ("append", 1, 3, 1, 1)
    third = load_into_duckdb(raw, db)
    assert third["tables"] == {} and third["skipped"] == ["raw_crm.contacts"]
    assert third["content_fingerprint"] == second["content_fingerprint"] != first["content_fingerprint"]
    assert _rows(db, "select id, _load_id from raw_crm.contacts order by id") == [
        (1, "crm-20250101T000000-a"), (2, "crm-20250101T000000-a"), (3, "crm-20250102T000000-b")]


def test_a_load_repeating_held_rows_is_appended_but_brings_no_new_content(env):
    raw, db = env
    _land(raw, "crm", "contacts", "crm-20250101T000000-a", [{"id": 1, "email": "a@x"}, {"id": 2, "email": "b@x"}])
    before = load_into_duckdb(raw, db)["content_fingerprint"]
    _land(raw, "crm", "contacts", "crm-20250102T000000-b", [{"id": 2, "email": "b@x"}])   # a lookback re-read
    _land(raw, "crm", "contacts", "crm-20250103T000000-c", [])                            # a zero-row load
    rep = load_into_duckdb(raw, db)
    t = rep["tables"]["raw_crm.contacts"]
    assert (t["rows"], t["loads"], t["new_content_rows"]) == (1, 2, 0)
    assert rep["content_fingerprint"] == before
    _land(raw, "crm", "contacts", "crm-20250104T000000-d", [{"id": 2, "email": "b2@x"}])  # a new version
    rep = load_into_duckdb(raw, db)
    assert rep["tables"]["raw_crm.contacts"]["new_content_rows"] == 1
    assert rep["content_fingerprint"] != before
    assert _rows(db, "select load_id, rows, new_content_rows from _cxw.raw_table_loads order by load_id") == [
        ("crm-20250101T000000-a", 2, 2), ("crm-20250102T000000-b", 1, 0), ("crm-20250103T000000-c", 0, 0),
        ("crm-20250104T000000-d", 1, 1)]


def test_an_id_snapshot_missing_an_id_is_new_content(env):
    raw, db = env
    _land(raw, "erp", "sale_order__ids", "erp-20250101T000000-a", [{"id": 1}, {"id": 2}])
    load_into_duckdb(raw, db)
    _land(raw, "erp", "sale_order__ids", "erp-20250102T000000-b", [{"id": 1}, {"id": 2}])
    assert load_into_duckdb(raw, db)["new_content_rows"] == 0
    _land(raw, "erp", "sale_order__ids", "erp-20250103T000000-c", [{"id": 1}])      # order 2 deleted at the source
    assert load_into_duckdb(raw, db)["new_content_rows"] == 1


def test_new_columns_are_added_and_null_typed_columns_take_the_new_type(env):
    raw, db = env
    _land(raw, "crm", "tickets", "crm-20250101T000000-a", [{"id": 1, "note": None}],
          schema=pa.schema([("id", pa.int64()), ("note", pa.null())]))
    load_into_duckdb(raw, db)
    _land(raw, "crm", "tickets", "crm-20250102T000000-b", [{"id": 2, "note": "hello", "channel": "email"}])
    rep = load_into_duckdb(raw, db)
    assert rep["tables"]["raw_crm.tickets"]["mode"] == "append"
    assert _rows(db, "select id, note, channel from raw_crm.tickets order by id") == [
        (1, None, None), (2, "hello", "email")]


def test_a_type_change_or_a_removed_load_rebuilds_the_table_from_its_files(env):
    raw, db = env
    _land(raw, "crm", "deals", "crm-20250101T000000-a", [{"id": 1, "amount": 10}])
    _land(raw, "crm", "deals", "crm-20250102T000000-b", [{"id": 2, "amount": 20}])
    load_into_duckdb(raw, db)
    _land(raw, "crm", "deals", "crm-20250103T000000-c", [{"id": 3, "amount": "30.5"}])   # the vendor changed the type
    rep = load_into_duckdb(raw, db)
    assert rep["tables"]["raw_crm.deals"]["mode"] == "rebuild (schema change)"
    assert _rows(db, "select count(*) from raw_crm.deals") == [(3,)]
    import shutil

    shutil.rmtree(raw / "crm" / "deals" / "crm-20250101T000000-a")                    # retention removed a load
    rep = load_into_duckdb(raw, db)
    assert rep["tables"]["raw_crm.deals"]["mode"] == "rebuild"
    assert _rows(db, "select count(*), min(_load_id) from raw_crm.deals") == [(2, "crm-20250102T000000-b")]
    assert _rows(db, "select count(*) from _cxw.raw_table_loads where entity = 'deals'") == [(2,)]


def test_a_table_without_bookkeeping_is_rebuilt_not_appended_to(env):
    raw, db = env
    _land(raw, "crm", "contacts", "crm-20250101T000000-a", [{"id": 1}])
    con = duckdb.connect(str(db))
    con.execute("create schema raw_crm")
    con.execute("create table raw_crm.contacts as select 1 as id, 'crm-20250101T000000-a' as _load_id, 0::bigint as _record_seq")
    con.close()
    rep = load_into_duckdb(raw, db)
    assert rep["tables"]["raw_crm.contacts"]["mode"] == "rebuild"
    assert _rows(db, "select count(*) from raw_crm.contacts") == [(1,)]


def test_a_load_waits_for_another_writer_of_the_build_database_and_loads_only_its_source(tmp_path):
    """Under `airflow dags test --use-executor` (no pools) the per-source load tasks start together: the second
    must wait for the DuckDB file lock, not fail; each loads only its own source."""
    import subprocess
    import sys

    raw, db = tmp_path / "raw", tmp_path / "build.duckdb"
    _land(raw, "odoo", "partners", "L1", [{"id": 1}])
    _land(raw, "trustpilot", "reviews", "L2", [{"id": 7}, {"id": 8}])
    duckdb.connect(str(db)).close()
    holder = subprocess.Popen([sys.executable, "-c", "import duckdb, sys, time\n"
                               f"con = duckdb.connect({str(db)!r})\nprint('held', flush=True)\ntime.sleep(2)\n"],
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    rep = load_into_duckdb(raw, db, sources=["odoo"])
    holder.wait()
    assert rep["lock_wait_s"] > 0.5, rep
    assert set(rep["tables"]) == {"raw_odoo.partners"}
    assert _rows(db, "select count(*) from raw_odoo.partners") == [(1,)]
    rep = load_into_duckdb(raw, db, sources=["trustpilot"])
    assert set(rep["tables"]) == {"raw_trustpilot.reviews"} and rep["lock_wait_s"] < 0.5


def test_a_writer_that_never_releases_the_build_database_fails_the_load_after_the_wait(tmp_path):
    import subprocess
    import sys

    from cxw.loader import connect_writer

    db = tmp_path / "build.duckdb"
    duckdb.connect(str(db)).close()
    holder = subprocess.Popen([sys.executable, "-c", "import duckdb, time\n"
                               f"con = duckdb.connect({str(db)!r})\nprint('held', flush=True)\ntime.sleep(30)\n"],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(duckdb.IOException, match="lock"):
            connect_writer(db, wait_s=1.0)
    finally:
        holder.kill()
        holder.wait()


# ---- empty is a valid state (issue 14.6): declared raw tables without a row get the contract's columns ----------------
def test_a_declared_entity_without_any_load_gets_an_empty_table_with_the_contract_columns(env):
    from cxw.loader import raw_contract

    raw, db = env
    _land(raw, "hubspot", "contacts", "hubspot-20250101T000000-a", [{"id": "1", "updatedAt": "2025-01-01"}])
    rep = load_into_duckdb(raw, db, sources=["hubspot"])
    assert "raw_hubspot.deals" in rep["declared"] and "raw_hubspot.associations" in rep["declared"]
    declared = raw_contract()["hubspot"]["deals"]
    cols = dict((c, t) for c, t, *_ in _rows(db, "describe raw_hubspot.deals"))
    assert {c: cols[c] for c in declared} == declared
    assert {"_load_id", "_extracted_at", "_record_seq"} <= set(cols)
    assert _rows(db, "select count(*) from raw_hubspot.deals") == [(0,)]
    # only the sources loaded: no Trustpilot table from a HubSpot load
    assert not _rows(db, "select * from information_schema.tables where table_schema = 'raw_trustpilot'")
    # nothing to do on the next run: no DDL, same fingerprint
    again = load_into_duckdb(raw, db, sources=["hubspot"])
    assert again["declared"] == [] and again["content_fingerprint"] == rep["content_fingerprint"]


def test_an_entity_with_only_empty_loads_gets_the_contract_columns_and_its_first_rows_rebuild_it(env):
    raw, db = env
    _land(raw, "trustpilot", "reviews", "trustpilot-20250101T000000-a", [])   # 0 rows: _load.json only
    rep = load_into_duckdb(raw, db, sources=["trustpilot"])
    # reviews widened from its empty load; its id snapshot (no load at all yet) created
    assert sorted(rep["declared"]) == ["raw_trustpilot.reviews", "raw_trustpilot.reviews__ids"]
    cols = {c for c, *_ in _rows(db, "describe raw_trustpilot.reviews")}
    assert {"id", "stars", "createdAt", "updatedAt", "businessUnit__id", "consumer__displayName"} <= cols
    assert _rows(db, "select count(*) from raw_trustpilot.reviews") == [(0,)]
    _land(raw, "trustpilot", "reviews", "trustpilot-20250102T000000-b", [])   # another empty day: stays as it is
    assert load_into_duckdb(raw, db, sources=["trustpilot"])["declared"] == []
    # the first rows: the table is rebuilt from the files (the declared types do not outlive it)
    _land(raw, "trustpilot", "reviews", "trustpilot-20250103T000000-c", [{"id": "r1", "stars": 5}])
    rep = load_into_duckdb(raw, db, sources=["trustpilot"])
    assert rep["tables"]["raw_trustpilot.reviews"]["mode"].startswith("rebuild")
    assert _rows(db, "select id, stars from raw_trustpilot.reviews") == [("r1", 5)]
    # a table holding rows is never widened: a column the source stopped delivering stays missing (the raw gate's)
    cols = {c for c, *_ in _rows(db, "describe raw_trustpilot.reviews")}
    assert "consumer__displayName" not in cols and rep["declared"] == []


def test_the_raw_contract_declares_every_dbt_source_table():
    import yaml

    from cxw.loader import raw_contract

    repo = Path(__file__).resolve().parents[2]
    declared_in_dbt = set()
    for f in (repo / "dbt_project" / "models" / "staging").glob("*/_*__sources.yml"):
        for src in yaml.safe_load(f.read_text())["sources"]:
            declared_in_dbt |= {(src["name"], t["name"]) for t in src["tables"]}
    contract = {(s, e) for s, ents in raw_contract().items() for e in ents}
    assert declared_in_dbt and contract == declared_in_dbt



def test_a_database_error_names_source_entity_column_and_load_but_never_the_value(env):
    """DuckDB quotes the value it could not cast ("Type VARCHAR with value 'jane@…' can't be cast"): the load task's
    error (what reaches the Airflow log) names where it failed and masks every value, also in the traceback."""
    import traceback

    from cxw.loader import RawLoadError

    raw, db = env
    _land(raw, "crm", "contacts", "crm-20250101T000000-a", [{"id": 1, "prefs": {"channel": "mail"}}])
    load_into_duckdb(raw, db)
    # a later load delivers the nested field as text holding an identifier: the table cannot take both types
    _land(raw, "crm", "contacts", "crm-20250102T000000-b", [{"id": 2, "prefs": "jane.planted@example.org +4915112345678"}])
    with pytest.raises(RawLoadError) as caught:
        load_into_duckdb(raw, db)
    msg = str(caught.value)
    assert msg.startswith("loading raw crm.contacts into duckdb failed, column prefs, load crm-20250102T000000-b: "), msg
    everything = "".join(traceback.format_exception(caught.value))
    assert "jane.planted" not in everything and "12345678" not in everything, everything
    assert caught.value.__cause__ is None and caught.value.__suppress_context__
    # the table kept what it held before (the failed rebuild was rolled back)
    assert _rows(db, "select id from raw_crm.contacts") == [(1,)]
