"""Hard deletes at the source (reliability.md "Hard delete", docs/DECISIONLOG.md "Hard deletes"), on both targets.

The hand-made raw fixture (tests/dbt/raw_fixture.py) is landed as real raw loads (Parquet + _load.json per
source / entity / load) and brought in by the real loader (DuckDB, PostgreSQL); then three runs:

1. L1 + L2 of every source, plus an Odoo `<table>__ids` snapshot holding every id and an empty HubSpot
   `contacts_archived` load: nothing is deleted.
2. Odoo id snapshots without partner 3, order 3 and its line 4; a partner 5 landed AFTER that snapshot (so it is
   not in it and must not be judged by it); HubSpot `contacts_archived` with contacts 100002 and 100003 and
   `feedback_submissions_archived` with submission 500004. After the build: flagged in staging with the load that
   proved the delete, gone from the current-state facts, the person of only-deleted records flagged in
   dim_customers, their snapshot versions closed (no current row), the association of a deleted contact flagged,
   the ledger balanced (metadata loads are not records: not in the ledger).
3. Contact 100003 restored (a normal load after the archived one) and the archived list without it; an empty
   `feedback_submissions_archived` load (500004 purged by HubSpot: stays deleted); a newer Odoo snapshot holding
   partner 5. 100003 is current again with a new snapshot version; the detection times do not move; a re-run
   without new data adds no snapshot versions.
"""
from __future__ import annotations

import json
import os
import sys
import uuid
from datetime import datetime, timezone
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import dbt_cli

sys.path.insert(0, str(Path(__file__).resolve().parent))
import raw_fixture  # noqa: E402
from test_marts_incremental import BUILD_NO_TESTS, _env, fingerprint  # noqa: E402

from tests.conftest import SERVICES, require_service  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
PROJECT = REPO / "dbt_project"
PG_HOST, PG_PORT = SERVICES["postgres"]
PG_USER = os.environ.get("CXW_TEST_PG_USER", "postgres")
PG_PASSWORD = os.environ.get("CXW_TEST_PG_PASSWORD", "")

TS = pa.timestamp("us", tz="UTC")
# run 2 (2025-03-25): the id snapshot at :01, the archived lists at :02, a partner landed at :05 (after the snapshot)
IDS_2, ARCH_2, LATE_PARTNER = "2025-03-25 00:00:01", "2025-03-25 00:00:02", "2025-03-25 00:00:05"
# run 3 (2025-03-28): the restored contact at :00, the id snapshot at :01, the archived lists at :02
RESTORE_3, IDS_3, ARCH_3 = "2025-03-28 00:00:00", "2025-03-28 00:00:01", "2025-03-28 00:00:02"
# the tests this feature touches (the KPI / cx tests of the whole project run in their own test files)
TESTS = ["path:models/staging", "path:models/marts/core", "path:snapshots", "assert_facts_reconcile_with_staging",
         "assert_load_ledger_balances"]


def _ts(s: str) -> datetime:
    return datetime.fromisoformat(s + "+00:00")


def _load_id(source: str, at: str, tag: str) -> str:
    return f"{source}-{_ts(at):%Y%m%dT%H%M%S}-{tag * 8}"


def _write_load(raw: Path, source: str, entity: str, at: str, tag: str, rows: list[dict] | None,
                schema: pa.Schema | None = None) -> None:
    """One complete raw load as the extractors land it; rows None = an empty load (no Parquet part)."""
    load_id = _load_id(source, at, tag)
    out = raw / source / entity / load_id
    out.mkdir(parents=True)
    n = len(rows or [])
    if rows:
        t = pa.Table.from_pylist(rows, schema=schema)
        t = t.append_column("_load_id", pa.array([load_id] * n, pa.string()))
        t = t.append_column("_extracted_at", pa.array([_ts(at)] * n, TS))
        t = t.append_column("_record_seq", pa.array(range(n), pa.int64()))
        pq.write_table(t, out / "part-00000.parquet")
    (out / "_load.json").write_text(json.dumps({"load_id": load_id, "source": source, "entity": entity,
                                                "extracted_at": at, "rows": n}))


def _land_fixture(raw: Path, tmp: Path) -> None:
    """The raw fixture's tables, one raw load per (table, _load_id), with _extracted_at as UTC timestamptz."""
    db = tmp / "fixture.duckdb"
    raw_fixture.build(db)
    con = duckdb.connect(str(db))
    con.execute("set TimeZone = 'UTC'")
    try:
        tables = con.execute("select table_schema, table_name from information_schema.tables "
                             "where table_schema like 'raw\\_%' escape '\\'").fetchall()
        for schema, table in tables:
            source = schema[len("raw_"):]
            for load_id, extracted_at, n in con.execute(
                    f"select _load_id, min(_extracted_at), count(*) from {schema}.{table} group by 1").fetchall():
                out = raw / source / table / load_id
                out.mkdir(parents=True)
                con.execute(f"copy (select * replace (timezone('UTC', _extracted_at) as _extracted_at) "
                            f"from {schema}.{table} where _load_id = '{load_id}' order by _record_seq) "
                            f"to '{out / 'part-00000.parquet'}' (format parquet)")
                (out / "_load.json").write_text(json.dumps({
                    "load_id": load_id, "source": source, "entity": table, "extracted_at": str(extracted_at),
                    "rows": n}))
    finally:
        con.close()


def _ids(raw: Path, entity: str, at: str, tag: str, ids: list[int]) -> None:
    _write_load(raw, "odoo", entity + "__ids", at, tag, [{"id": i} for i in ids], pa.schema([("id", pa.int64())]))


ARCHIVED_SCHEMA = pa.schema([("id", pa.string()), ("createdAt", pa.string()), ("updatedAt", pa.string()),
                             ("archived", pa.bool_()), ("archivedAt", pa.string())])


def _archived(raw: Path, obj: str, at: str, tag: str, ids: list[str] | None) -> None:
    rows = [{"id": i, "createdAt": "2025-01-05T10:00:00.000Z", "updatedAt": "2025-03-24T09:00:00.000Z",
             "archived": True, "archivedAt": "2025-03-24T09:00:00.000Z"} for i in ids] if ids else None
    _write_load(raw, "hubspot", obj + "_archived", at, tag, rows, ARCHIVED_SCHEMA)


def _run1(raw: Path) -> None:
    _ids(raw, "res_partner", "2025-03-20 00:00:01", "1", [1, 2, 3, 4, 6])
    _ids(raw, "sale_order", "2025-03-20 00:00:01", "1", [1, 2, 3, 4, 5])
    _ids(raw, "sale_order_line", "2025-03-20 00:00:01", "1", [1, 2, 3, 4, 5, 6])
    _ids(raw, "stock_picking", "2025-03-20 00:00:01", "1", [1, 2, 3, 4])
    _archived(raw, "contacts", "2025-03-20 00:00:02", "1", None)


def _run2(raw: Path) -> None:
    _ids(raw, "res_partner", IDS_2, "2", [1, 2, 4, 6])           # partner 3 deleted
    _ids(raw, "sale_order", IDS_2, "2", [1, 2, 4, 5])            # order 3 deleted ...
    _ids(raw, "sale_order_line", IDS_2, "2", [1, 2, 3, 5, 6])    # ... with its line 4
    _ids(raw, "stock_picking", IDS_2, "2", [1, 2, 3, 4])
    pschema = pa.schema([("id", pa.int64()), ("name", pa.string()), ("complete_name", pa.string()),
                         ("email", pa.string()), ("phone", pa.string()), ("is_company", pa.bool_()),
                         ("customer_rank", pa.int64()), ("supplier_rank", pa.int64()), ("city", pa.string()),
                         ("country_id", pa.int64()), ("type", pa.string()), ("active", pa.bool_()),
                         ("create_date", pa.string()), ("write_date", pa.string())])
    _write_load(raw, "odoo", "res_partner", LATE_PARTNER, "5", [{
        "id": 5, "name": "Eve Le", "complete_name": "Eve Le", "email": "eve@example.com", "phone": None,
        "is_company": False, "customer_rank": 0, "supplier_rank": 0, "city": "Hanoi", "country_id": 1,
        "type": "contact", "active": True, "create_date": "2025-03-25 00:00:03", "write_date": "2025-03-25 00:00:03"}],
        pschema)
    _archived(raw, "contacts", ARCH_2, "2", ["100002", "100003"])
    _archived(raw, "feedback_submissions", ARCH_2, "2", ["500004"])


def _run3(raw: Path) -> None:
    cschema = pa.schema([(c, pa.bool_() if c == "archived" else pa.string()) for c in (
        "id", "createdAt", "updatedAt", "archived", "properties__email", "properties__firstname",
        "properties__lastname", "properties__phone", "properties__lifecyclestage", "properties__createdate",
        "properties__lastmodifieddate", "properties__hs_object_id")])
    _write_load(raw, "hubspot", "contacts", RESTORE_3, "3", [{
        "id": "100003", "createdAt": "2025-01-10T10:00:00.000Z", "updatedAt": "2025-03-27T08:00:00.000Z",
        "archived": False, "properties__email": "CAROL.GROSS@EXAMPLE.COM", "properties__firstname": "Carol",
        "properties__lastname": "Tran", "properties__phone": None, "properties__lifecyclestage": "customer",
        "properties__createdate": "2025-01-10T10:00:00.000Z",
        "properties__lastmodifieddate": "2025-03-27T08:00:00.000Z", "properties__hs_object_id": "100003"}], cschema)
    _archived(raw, "contacts", ARCH_3, "3", ["100002"])          # 100003 restored
    _archived(raw, "feedback_submissions", ARCH_3, "3", None)   # 500004 purged: no longer listed
    _ids(raw, "res_partner", IDS_3, "3", [1, 2, 4, 5, 6])


# ------------------------------------------------------------------------------------------------ the two targets

class _Target:
    def __init__(self, name: str, tmp: Path):
        self.name, self.tmp, self.raw = name, tmp, tmp / "raw"
        self.env = _env(tmp, tmp / "build.duckdb")
        self.env.update({"CXW_DBT_TARGET": name, "DBT_TARGET_PATH": str(tmp / f"target-{name}"),
                         "DBT_LOG_PATH": str(tmp / f"logs-{name}")})
        self.dbname = None
        if name == "postgres":
            self.dbname = f"cxw_test_hd_{os.getpid()}_{uuid.uuid4().hex[:8]}"
            self.env.update({"CXW_PG_HOST": PG_HOST, "CXW_PG_PORT": str(PG_PORT), "CXW_PG_USER": PG_USER,
                             "CXW_PG_PASSWORD": PG_PASSWORD, "CXW_PG_DBNAME": self.dbname, "CXW_PG_SCHEMA": "public"})

    def _pg(self, dbname: str):
        import psycopg2
        return psycopg2.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, password=PG_PASSWORD, dbname=dbname)

    def create(self) -> None:
        if self.dbname:
            admin = self._pg("postgres")
            admin.autocommit = True
            with admin.cursor() as cur:
                cur.execute(f'create database "{self.dbname}"')
            admin.close()

    def drop(self) -> None:
        if self.dbname:
            admin = self._pg("postgres")
            admin.autocommit = True
            with admin.cursor() as cur:
                cur.execute(f'drop database if exists "{self.dbname}" with (force)')
            admin.close()

    def load(self) -> None:
        from cxw.loader import load_into_duckdb
        from cxw.loader_postgres import load_into_postgres
        if self.dbname:
            dsn = f"host={PG_HOST} port={PG_PORT} user={PG_USER} dbname={self.dbname}" + (
                f" password={PG_PASSWORD}" if PG_PASSWORD else "")
            load_into_postgres(self.raw, dsn)
        else:
            load_into_duckdb(self.raw, self.tmp / "build.duckdb")

    def dbt(self, *args: str) -> None:
        proc = dbt_cli.run(self.env, *args, timeout=900)
        assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]

    def build(self) -> None:
        self.load()
        self.dbt(*BUILD_NO_TESTS)
        self.dbt("test", "--indirect-selection", "cautious", "--select", *TESTS)

    def rows(self, query: str) -> list[tuple]:
        if self.dbname:
            con = self._pg(self.dbname)
            try:
                with con.cursor() as cur:
                    cur.execute(query)
                    return [tuple(r) for r in cur.fetchall()]
            finally:
                con.close()
        con = duckdb.connect(str(self.tmp / "build.duckdb"), read_only=True)
        try:
            return [tuple(r) for r in con.execute(query).fetchall()]
        finally:
            con.close()

    def snapshot_fingerprints(self) -> dict:
        out = {}
        for t in ("intermediate.snap_odoo__res_partners", "intermediate.snap_hubspot__contacts"):
            if self.dbname:
                out[t] = self.rows(f"select count(*), sum(hashtext(t::text)) from {t} as t")[0]
            else:
                con = duckdb.connect(str(self.tmp / "build.duckdb"), read_only=True)
                out[t] = fingerprint(con, t)
                con.close()
        return out


def _flags(t: _Target, model: str, key: str) -> dict:
    """key -> (is_deleted, deleted_detected_at as 'YYYY-MM-DD HH:MM:SS' UTC or None)."""
    out = {}
    for k, d, at in t.rows(f"select {key}, is_deleted, deleted_detected_at from staging.{model}"):
        if at is not None and at.tzinfo is not None:
            at = at.astimezone(timezone.utc)
        out[str(k)] = (bool(d), None if at is None else at.strftime("%Y-%m-%d %H:%M:%S"))
    return out


def _ledger_balances(t: _Target) -> None:
    bad = t.rows("select source, entity, load_id from staging.load_ledger "
                 "where extracted <> staged + quarantined + duplicates")
    assert bad == []
    # metadata loads (id snapshots, archived lists) are not records: not in the ledger
    assert t.rows("select count(*) from staging.load_ledger "
                  "where entity like '%\\_\\_ids' escape '\\' or entity like '%\\_archived' escape '\\'") == [(0,)]
    # every raw row of a record entity is accounted for
    raw_partners = t.rows("select count(*) from raw_odoo.res_partner")[0][0]
    assert t.rows("select sum(extracted) from staging.load_ledger where source = 'odoo' "
                  "and entity = 'res_partner'")[0][0] == raw_partners


def _current(t: _Target, snap: str, key: str) -> dict:
    """key -> (versions, current versions) in a snapshot."""
    return {str(k): (int(n), int(c)) for k, n, c in t.rows(
        f"select {key}, count(*), sum(case when dbt_valid_to is null then 1 else 0 end) "
        f"from intermediate.{snap} group by 1")}


# the PostgreSQL build is in the heavy stage (tests/conftest.py: `./cx test --heavy`, or name this file)
@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.heavy)])
def target(request, tmp_path):
    if request.param == "postgres":
        require_service("postgres")
    t = _Target(request.param, tmp_path)
    _land_fixture(t.raw, tmp_path)
    t.create()
    try:
        yield t
    finally:
        t.drop()


def test_hard_deletes_flag_exclude_close_and_restore(target):
    t = target
    # ---- run 1: every id present, an empty archived list (the table has the load columns only)
    _run1(t.raw)
    t.build()
    for model, key in [("stg_odoo__res_partners", "partner_id"), ("stg_odoo__sale_orders", "order_id"),
                       ("stg_hubspot__contacts", "contact_id"), ("stg_hubspot__feedback_submissions", "feedback_id")]:
        assert not any(d for d, _ in _flags(t, model, key).values()), model
    assert _current(t, "snap_odoo__res_partners", "partner_id")["3"] == (1, 1)
    _ledger_balances(t)
    orders_before = t.rows("select count(*) from core.fct_orders")[0][0]

    # ---- run 2: deletes
    _run2(t.raw)
    t.build()
    partners = _flags(t, "stg_odoo__res_partners", "partner_id")
    assert partners == {"1": (False, None), "2": (False, None), "3": (True, IDS_2),
                        "5": (False, None), "6": (False, None)}, partners   # 5 landed after the snapshot: not judged by it
    assert _flags(t, "stg_odoo__sale_orders", "order_id")["3"] == (True, IDS_2)
    assert _flags(t, "stg_odoo__sale_order_lines", "order_line_id")["4"] == (True, IDS_2)
    assert not any(d for d, _ in _flags(t, "stg_odoo__stock_pickings", "picking_id").values())
    contacts = _flags(t, "stg_hubspot__contacts", "contact_id")
    assert contacts == {"100001": (False, None), "100002": (True, ARCH_2), "100003": (True, ARCH_2)}, contacts
    assert _flags(t, "stg_hubspot__feedback_submissions", "feedback_id")["500004"] == (True, ARCH_2)
    # current-state facts
    assert t.rows("select count(*) from core.fct_orders where order_id = 3") == [(0,)]
    assert t.rows("select count(*) from core.fct_orders")[0][0] == orders_before - 1
    assert t.rows("select count(*) from core.fct_order_lines where order_line_id = 4") == [(0,)]
    assert t.rows("select count(*) from core.fct_survey_responses where feedback_id = '500004'") == [(0,)]
    assert t.rows("select count(*) from core.fct_survey_responses where feedback_id = '500001'") == [(1,)]
    # dim_customers: Carol (partner 3 + contact 100003) and Dave (contact 100002) have only deleted records
    people = {r[0]: r[1:] for r in t.rows(
        "select coalesce(cast(odoo_partner_id as varchar), hubspot_contact_id), is_deleted, hubspot_contact_id "
        "from core.dim_customers where person_sk <> '-1'")}
    assert people["3"][0] is True and people["100002"][0] is True
    assert people["1"] == (False, "100001") and people["2"][0] is False and people["5"][0] is False
    # the association ticket 400002 -> contact 100002 goes with the contact
    assert t.rows("select from_id, is_deleted from staging.stg_hubspot__associations order by 1") == [
        ("400001", False), ("400002", True)]
    # snapshots: the deleted records' versions are closed, none is current
    snap_p = _current(t, "snap_odoo__res_partners", "partner_id")
    assert snap_p["3"] == (1, 0) and snap_p["1"] == (1, 1) and snap_p["5"] == (1, 1)
    snap_c = _current(t, "snap_hubspot__contacts", "contact_id")
    assert snap_c == {"100001": (1, 1), "100002": (1, 0), "100003": (1, 0)}, snap_c
    assert t.rows("select count(*) from core.dim_customers_history "
                  "where source = 'odoo' and source_id = '3' and not is_current and is_record_deleted") == [(1,)]
    _ledger_balances(t)

    # ---- run 3: 100003 restored, 500004 purged from the archive, a newer id snapshot
    _run3(t.raw)
    t.build()
    contacts = _flags(t, "stg_hubspot__contacts", "contact_id")
    assert contacts == {"100001": (False, None), "100002": (True, ARCH_2), "100003": (False, None)}, contacts
    assert _flags(t, "stg_hubspot__feedback_submissions", "feedback_id")["500004"] == (True, ARCH_2)
    partners = _flags(t, "stg_odoo__res_partners", "partner_id")
    assert partners["3"] == (True, IDS_2) and partners["5"] == (False, None)   # detection time does not move
    snap_c = _current(t, "snap_hubspot__contacts", "contact_id")
    assert snap_c == {"100001": (1, 1), "100002": (1, 0), "100003": (2, 1)}, snap_c
    people = {r[0]: r[1:] for r in t.rows(
        "select hubspot_contact_id, is_deleted, odoo_partner_id from core.dim_customers "
        "where hubspot_contact_id is not null")}
    assert t.rows("select count(*), sum(case when is_record_deleted then 1 else 0 end) from core.dim_customers_history "
                  "where source = 'hubspot' and source_id = '100003'") == [(2, 0)]
    assert people["100003"] == (False, None)     # the live contact describes Carol now; partner 3 stays deleted
    assert t.rows("select from_id, is_deleted from staging.stg_hubspot__associations order by 1") == [
        ("400001", False), ("400002", True)]
    _ledger_balances(t)

    # ---- a re-run without new data adds no snapshot versions
    before = t.snapshot_fingerprints()
    t.build()
    assert t.snapshot_fingerprints() == before
