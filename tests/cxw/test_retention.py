"""CXW_RETENTION_DAYS (issue 15.6): raw loads extracted and generations published more than N days ago are dropped;
the newest load of each entity and the generation BI reads stay; the loader and its ledger stay consistent."""

from __future__ import annotations

import json
import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

NOW = datetime(2025, 7, 1, 12, tzinfo=timezone.utc)


def _land(raw: Path, entity: str, load_id: str, extracted_at: datetime, rows: list[dict]) -> None:
    d = raw / "crm" / entity / load_id
    d.mkdir(parents=True)
    t = pa.Table.from_pylist(rows)
    n = t.num_rows
    t = t.append_column("_load_id", pa.array([load_id] * n, pa.string()))
    t = t.append_column("_record_seq", pa.array(range(n), pa.int64()))
    pq.write_table(t, d / "part-00000.parquet")
    (d / "_load.json").write_text(json.dumps({"rows": n, "extracted_at": extracted_at.isoformat(),
                                              "files": [{"path": "part-00000.parquet", "rows": n}]}))


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("CXW_HOME", str(tmp_path))
    monkeypatch.delenv("CXW_BUILD_DB", raising=False)
    monkeypatch.delenv("CXW_RETENTION_DAYS", raising=False)
    monkeypatch.setenv("CXW_DBT_TARGET", "duckdb")
    from cxw.config import paths

    return paths()


def _rows(db: Path, sql: str):
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def _three_loads(p):
    # A: both records re-delivered later (superseded); B: record 1's latest version, never changed since (current)
    _land(p.raw, "contacts", "crm-20250301T000000-a", NOW - timedelta(days=122),
          [{"id": 1, "email": "v1@x"}, {"id": 2, "email": "two@x"}])
    _land(p.raw, "contacts", "crm-20250501T000000-b", NOW - timedelta(days=61), [{"id": 1, "email": "v2@x"}])
    _land(p.raw, "contacts", "crm-20250630T000000-c", NOW - timedelta(days=1),
          [{"id": 2, "email": "two@x"}, {"id": 3, "email": "new@x"}])
    # an entity whose only load is old: its newest load stays
    _land(p.raw, "companies", "crm-20250101T000000-d", NOW - timedelta(days=181), [{"id": 9}])


def test_retention_setting_is_off_by_default_and_validated(home, monkeypatch):
    from cxw.retention import drop_old_generations, drop_old_raw_loads, retention_days

    _three_loads(home)
    assert retention_days() is None
    assert drop_old_raw_loads(now=NOW) == [] and drop_old_generations(now=NOW) == []
    assert len(list(home.raw.glob("crm/*/*/_load.json"))) == 4
    monkeypatch.setenv("CXW_RETENTION_DAYS", "0")
    assert retention_days() is None
    monkeypatch.setenv("CXW_RETENTION_DAYS", "thirty")
    with pytest.raises(ValueError, match="CXW_RETENTION_DAYS"):
        retention_days()
    monkeypatch.setenv("CXW_RETENTION_DAYS", "-3")
    with pytest.raises(ValueError, match="negative"):
        retention_days()


def test_retention_drops_raw_loads_older_than_n_days_by_load_time_and_the_loader_stays_consistent(home,
                                                                                                  monkeypatch):
    from cxw.retention import drop_old_raw_loads
    from cxw.loader import load_into_duckdb

    _three_loads(home)
    load_into_duckdb(home.raw, home.build_db)
    assert _rows(home.build_db, "select count(*) from raw_crm.contacts") == [(5,)]
    monkeypatch.setenv("CXW_RETENTION_DAYS", "30")
    dropped = drop_old_raw_loads(now=NOW)
    # A is old and superseded; B is old but still holds record 1's current version; C and D are the newest
    assert dropped == ["crm/contacts/crm-20250301T000000-a"]
    left = sorted(p.parent.name for p in home.raw.glob("crm/*/*/_load.json"))
    assert left == ["crm-20250101T000000-d", "crm-20250501T000000-b", "crm-20250630T000000-c"]
    assert not list(home.raw.glob("crm/*/.tmp-*"))
    # the bookkeeping of the dropped load is gone; the loader rebuilds the table from the loads that are left
    assert _rows(home.build_db, "select load_id from _cxw.raw_loads where entity = 'contacts' order by 1") == [
        ("crm-20250501T000000-b",), ("crm-20250630T000000-c",)]
    rep = load_into_duckdb(home.raw, home.build_db)
    assert rep["tables"]["raw_crm.contacts"]["mode"] == "rebuild"
    # every record's latest version is still there
    assert _rows(home.build_db, "select id, email from raw_crm.contacts order by 1") == [
        (1, "v2@x"), (2, "two@x"), (3, "new@x")]
    assert _rows(home.build_db, "select load_id from _cxw.raw_table_loads where entity = 'contacts' order by 1") \
        == [("crm-20250501T000000-b",), ("crm-20250630T000000-c",)]
    # idempotent: a second pass drops nothing and loads nothing
    assert drop_old_raw_loads(now=NOW) == []
    again = load_into_duckdb(home.raw, home.build_db)
    assert again["tables"] == {} and sorted(again["skipped"]) == ["raw_crm.companies", "raw_crm.contacts"]


def test_load_raw_task_applies_the_retention(home, monkeypatch):
    from cxw.tasks import load_raw

    _three_loads(home)
    monkeypatch.setenv("CXW_RETENTION_DAYS", "30")
    # relative to today: move the extraction times so that only the first load is older than 30 days
    now = datetime.now(timezone.utc)
    for meta, age in ((home.raw / "crm/contacts/crm-20250301T000000-a/_load.json", 45),
                      (home.raw / "crm/contacts/crm-20250501T000000-b/_load.json", 2),
                      (home.raw / "crm/contacts/crm-20250630T000000-c/_load.json", 1)):
        m = json.loads(meta.read_text())
        m["extracted_at"] = (now - timedelta(days=age)).isoformat()
        meta.write_text(json.dumps(m))
    rep = load_raw("crm")
    assert rep["retention_dropped_loads"] == ["crm/contacts/crm-20250301T000000-a"]
    assert _rows(home.build_db, "select id from raw_crm.contacts order by 1") == [(1,), (2,), (3,)]


def test_retention_keeps_old_keyless_rows_still_current_and_drops_old_ga4_days(home, monkeypatch):
    from cxw.retention import drop_old_raw_loads

    old = NOW - timedelta(days=90)
    # keyless: a row re-delivered identically later is superseded, one never re-delivered is current
    _land(home.raw, "assoc", "crm-20250401T000000-a", old, [{"a": "1", "b": "2"}])
    _land(home.raw, "assoc", "crm-20250402T000000-b", old, [{"a": "5", "b": "6"}])
    _land(home.raw, "assoc", "crm-20250630T000000-c", NOW, [{"a": "1", "b": "2"}])
    for d, load_id in ((old, "ga4-20250401T000000-a"), (old, "ga4-20250402T000000-b"), (NOW, "ga4-20250630T000000-c")):
        x = home.raw / "ga4" / "events" / load_id
        x.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(home.raw / "crm" / "assoc" / "crm-20250401T000000-a", x)
        m = json.loads((x / "_load.json").read_text())
        m["extracted_at"] = d.isoformat()
        (x / "_load.json").write_text(json.dumps(m))
    monkeypatch.setenv("CXW_RETENTION_DAYS", "30")
    assert drop_old_raw_loads(now=NOW) == ["crm/assoc/crm-20250401T000000-a", "ga4/events/ga4-20250401T000000-a",
                                           "ga4/events/ga4-20250402T000000-b"]
    assert (home.raw / "crm" / "assoc" / "crm-20250402T000000-b" / "_load.json").exists()


def _build_db(p, value: float) -> None:
    p.warehouse_dir.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(p.build_db))
    con.execute("create schema if not exists kpi")
    con.execute("create or replace table kpi.kpi_daily as select 'nps' as kpi, ? as value", [value])
    con.close()


def _age(gdir: Path, stem: str, days: int) -> str:
    """Make generation `stem` look published `days` days before NOW (its file name and its publication row)."""
    new = (NOW - timedelta(days=days)).strftime("%Y%m%dT%H%M%S%fZ") + "-" + stem.split("-")[1]
    (gdir / f"{stem}.duckdb").rename(gdir / f"{new}.duckdb")
    con = duckdb.connect(str(gdir / f"{new}.duckdb"))
    con.execute("update publication set generation_id = ?", [new])
    con.close()
    return new


def test_retention_drops_generations_published_more_than_n_days_ago_but_never_the_current(home, monkeypatch):
    from cxw.retention import drop_old_generations, generation_time
    from cxw.publish import current_generation, generations, publish, rollback

    stems = []
    for n, value in enumerate((10.0, 20.0, 30.0)):
        _build_db(home, value)
        stems.append(publish(f"r{n}", None, None)["generation_id"])
    assert all(generation_time(s) for s in stems)
    old = _age(home.generations_dir, stems[0], 40)
    older_but_rolled_back_to = _age(home.generations_dir, stems[1], 35)
    monkeypatch.setenv("CXW_RETENTION_DAYS", "30")
    rollback(older_but_rolled_back_to)
    assert current_generation() == older_but_rolled_back_to
    dropped = drop_old_generations(now=NOW)
    assert dropped == [old]
    assert [g.stem for g in generations()] == [older_but_rolled_back_to, stems[2]]
    assert current_generation() == older_but_rolled_back_to
    assert drop_old_generations(now=NOW) == []


def test_publish_task_applies_the_generation_retention(home, monkeypatch):
    from cxw.publish import generations
    from cxw.tasks import publish as publish_task

    _build_db(home, 10.0)
    first = publish_task("r1", None, None)["generation_id"]
    old = _age(home.generations_dir, first, 400)
    monkeypatch.setenv("CXW_RETENTION_DAYS", "30")
    _build_db(home, 20.0)
    rep = publish_task("r2", None, None)
    assert rep["retention_dropped_generations"] == [old]
    assert [g.stem for g in generations()] == [rep["generation_id"]]
