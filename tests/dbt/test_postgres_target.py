"""The same dbt project on both targets (architecture principle 6): the XS demo company, landed by the real
extractors, is loaded into a temporary DuckDB file and into a throwaway PostgreSQL database, `dbt build` runs on
each, and the results must agree with each other and with the generator's answer key.

Skips when PostgreSQL is unreachable (fails instead under CXW_REQUIRE_SERVICES=1, see tests/conftest.py).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pytest

from tests.conftest import SERVICES, require_service

REPO = Path(__file__).resolve().parents[2]
# a non-demo salt (with a space: PGOPTIONS escaping) that must appear in no compiled SQL, log or view definition
PLANTED_SALT = "cxw-planted salt-7Q9zK2"
# the heavy stage (tests/conftest.py): `./cx test --heavy` runs it, `./cx test` leaves it out
pytestmark = [pytest.mark.services, pytest.mark.heavy]
PG_HOST, PG_PORT = SERVICES["postgres"]
PG_USER = os.environ.get("CXW_TEST_PG_USER", "postgres")
PG_PASSWORD = os.environ.get("CXW_TEST_PG_PASSWORD", "")

# Lands the demo company with the real extractors against the loopback demo server (as `./cx demo` does), in a
# subprocess so the extractors' environment never leaks into the test process.
_LAND = r"""
import json, os, sys
from pathlib import Path
from cxw import SOURCES, tasks
from cxw_tools.demo import demo_server, source_env
data = Path(sys.argv[1])
manifest = json.loads((data / "manifest.json").read_text())
with demo_server(data) as url:
    os.environ.update(source_env(data, manifest, url))
    for source in SOURCES:
        tasks.extract(source, manifest["window"]["start"], manifest["window"]["end"])
"""


# Vendor strings the two dialects must parse alike (the XS demo itself has no dirty rows). Each goes into an older
# version (updatedAt in 2024) of a real feedback submission, so the KPIs stay those of the answer key while the
# quarantine reasons exercise try_ts_utc / try_num on both targets.
DIRTY_FEEDBACK = [
    # (hs_value, hs_submission_timestamp)
    ("five", None), ("", None), ("N/A", None), ("4.5/5", None), ("11", None), ("-1", None), ("7.5", None),
    (" 7 ", None), ("1e1", None), ("+3", None),
    ("5", "2025-02-30T25:61:00Z"), ("5", "2025-13-01T00:00:00Z"), ("5", "0000-00-00T00:00:00Z"),
    ("5", "2025-02-29T10:00:00Z"), ("5", "yesterday"), ("5", "2025-03-05"), ("5", "2025-03-05T10:00:00+02:00"),
    ("5", "2025-03-05 10:00:00.123456"), ("5", "2025-03-05T24:00:00Z"), ("5", "20250305"),
]


def _add_dirty_feedback_load(raw_root: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    entity = raw_root / "hubspot" / "feedback_submissions"
    first = sorted(p for p in entity.iterdir() if (p / "_load.json").exists())[0]
    table = pq.read_table(sorted(first.glob("*.parquet"))[0]).slice(0, len(DIRTY_FEEDBACK))
    rows = table.to_pylist()
    assert len(rows) == len(DIRTY_FEEDBACK)
    load_id = "hubspot-20990101T000000-d1d1d1d1"
    for i, (row, (value, ts)) in enumerate(zip(rows, DIRTY_FEEDBACK)):
        row["properties__hs_value"] = value
        if ts is not None:
            row["properties__hs_submission_timestamp"] = ts
        row["updatedAt"] = "2024-01-01T00:00:00Z"
        row["_load_id"] = load_id
        row["_record_seq"] = i
    rows[0]["id"] = None  # missing_id
    out = entity / load_id
    out.mkdir()
    pq.write_table(pa.Table.from_pylist(rows, schema=table.schema), out / "part-00000.parquet")
    (out / "_load.json").write_text(json.dumps({"load_id": load_id, "source": "hubspot",
                                                "entity": "feedback_submissions", "rows": len(rows),
                                                "files": [{"path": "part-00000.parquet", "rows": len(rows)}]}))


@contextmanager
def _env(**values):
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update({k: str(v) for k, v in values.items()})
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _pg_connect(dbname: str):
    import psycopg2

    return psycopg2.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, password=PG_PASSWORD, dbname=dbname)


@pytest.fixture(scope="module")
def builds(tmp_path_factory):
    require_service("postgres")
    from psycopg2 import sql

    from cxw.dbt import kpi_window_vars, run_dbt
    from cxw.loader import load_into_duckdb
    from cxw.loader_postgres import load_into_postgres

    timings: dict[str, float] = {}
    home = tmp_path_factory.mktemp("cxw_pg_target")
    data = home / "demo" / "XS-42"
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "demo_company", "generate", "--scale", "XS", "--seed", "42",
                    "--out", str(data)], check=True, cwd=REPO, capture_output=True)
    manifest = json.loads((data / "manifest.json").read_text())
    base_env = {k: v for k, v in os.environ.items() if not k.startswith(("CXW_", "DBT_", "AIRFLOW_"))}
    pythonpath = os.pathsep.join(p for p in (os.environ.get("PYTHONPATH"), str(REPO)) if p)
    land = subprocess.run([sys.executable, "-c", _LAND, str(data)], cwd=home, capture_output=True, text=True,
                          env={**base_env, "CXW_HOME": str(home), "AIRFLOW_HOME": str(home / "airflow"),
                               "PYTHONPATH": pythonpath}, timeout=600)
    assert land.returncode == 0, land.stdout[-3000:] + land.stderr[-3000:]
    timings["generate_and_land"] = time.perf_counter() - t0
    _add_dirty_feedback_load(home / "raw")

    duck_db = home / "warehouse" / "build.duckdb"
    pg_db = f"cxw_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    admin = _pg_connect("postgres")
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(sql.SQL("create database {}").format(sql.Identifier(pg_db)))
    try:
        t0 = time.perf_counter()
        duck_load = load_into_duckdb(home / "raw", duck_db)
        timings["load_duckdb"] = time.perf_counter() - t0
        dsn = f"host={PG_HOST} port={PG_PORT} user={PG_USER} dbname={pg_db}" + (
            f" password={PG_PASSWORD}" if PG_PASSWORD else "")
        t0 = time.perf_counter()
        pg_load = load_into_postgres(home / "raw", dsn)
        timings["load_postgres"] = time.perf_counter() - t0

        common = dict(CXW_HOME=home, DBT_SEND_ANONYMOUS_USAGE_STATS="false", CXW_PII_SALT=PLANTED_SALT)
        window = kpi_window_vars([manifest["window"]["start"][:10], manifest["window"]["end"][:10]])
        reports = {}
        with _env(**common, CXW_DBT_TARGET="duckdb", CXW_BUILD_DB=duck_db,
                  DBT_TARGET_PATH=home / "dbt" / "target-duckdb", DBT_LOG_PATH=home / "dbt" / "logs-duckdb"):
            reports["duckdb"] = run_dbt(["build", *window], target="duckdb")
        with _env(**common, CXW_DBT_TARGET="postgres", CXW_BUILD_DB=duck_db, CXW_PG_HOST=PG_HOST,
                  CXW_PG_PORT=PG_PORT, CXW_PG_USER=PG_USER, CXW_PG_PASSWORD=PG_PASSWORD, CXW_PG_DBNAME=pg_db,
                  CXW_PG_SCHEMA="public", DBT_TARGET_PATH=home / "dbt" / "target-postgres",
                  DBT_LOG_PATH=home / "dbt" / "logs-postgres"):
            reports["postgres"] = run_dbt(["build", *window], target="postgres")
        for target, rep in reports.items():
            timings[f"dbt_build_{target}"] = rep["seconds"]
        print("\ntimings (s):", json.dumps({k: round(v, 2) for k, v in timings.items()}),
              "\npostgres loader:", pg_load["rows"], "rows,", pg_load["rows_per_s"], "rows/s")

        duck = duckdb.connect(str(duck_db), read_only=True)
        pg = _pg_connect(pg_db)
        try:
            yield {"duck": duck, "pg": pg, "reports": reports, "home": home, "duck_db": duck_db, "answer_key": json.loads(
                (data / "answer_key.json").read_text()), "loads": (duck_load, pg_load)}
        finally:
            duck.close()
            pg.close()
    finally:
        with admin.cursor() as cur:
            cur.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(pg_db)))
        admin.close()


def _rows(builds, query: str) -> tuple[list, list]:
    duck_rows = builds["duck"].execute(query).fetchall()
    with builds["pg"].cursor() as cur:
        cur.execute(query)
        pg_rows = cur.fetchall()
    return duck_rows, pg_rows


def _close(a, b, tol=1e-9) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return math.isclose(float(a), float(b), rel_tol=tol, abs_tol=tol)


def test_loaders_bring_the_same_rows(builds):
    duck_load, pg_load = builds["loads"]
    assert {t: v["rows"] for t, v in duck_load["tables"].items()} == \
        {t: v["rows"] for t, v in pg_load["tables"].items()}
    assert pg_load["rows"] > 0
    with builds["pg"].cursor() as cur:
        cur.execute("select data_type from information_schema.columns where table_schema = 'raw_ga4' "
                    "and table_name = 'events' and column_name = 'event_params'")
        assert cur.fetchone() == ("jsonb",)


def test_both_builds_pass_every_model_and_test(builds):
    for target, rep in builds["reports"].items():
        nodes = rep["results"]["nodes"]
        bad = [n["unique_id"] for n in nodes if n["status"] not in ("success", "pass")]
        assert rep["returncode"] == 0 and not bad, f"{target}: {bad}"
    duck_nodes = {n["unique_id"] for n in builds["reports"]["duckdb"]["results"]["nodes"]}
    pg_nodes = {n["unique_id"] for n in builds["reports"]["postgres"]["results"]["nodes"]}
    assert duck_nodes == pg_nodes and len(pg_nodes) > 100


_KPI_QUERY = """
select 'day' as grain, kpi, cast(kpi_date as varchar) as period_start, numerator, denominator, value, n
from kpi.kpi_daily where channel = 'all' and segment = 'all'
union all
select grain, kpi, cast(period_start as varchar), numerator, denominator, value, n
from kpi.kpi_period where channel = 'all' and segment = 'all'
"""


def _same_count(a, b) -> bool:
    """Counts (integral numerators / denominators) must be equal exactly. Sums of money are sums of doubles, whose
    last bit depends on the order of addition (it differs between engines and between parallel DuckDB runs): equal to
    1e-12 relative."""
    if a is None or b is None:
        return a is None and b is None
    a, b = float(a), float(b)
    if a.is_integer() or b.is_integer():
        return a == b
    return math.isclose(a, b, rel_tol=1e-12, abs_tol=0.0)


def _kpis(rows) -> dict:
    return {(g, k, p[:10]): (num, den, val, n) for g, k, p, num, den, val, n in rows}


def test_kpis_are_equal_on_both_targets(builds):
    duck_rows, pg_rows = _rows(builds, _KPI_QUERY)
    duck, pg = _kpis(duck_rows), _kpis(pg_rows)
    assert len(duck) == len(duck_rows) and len(pg) == len(pg_rows), "duplicate KPI keys"
    assert sorted(duck) == sorted(pg), (
        f"only on duckdb: {sorted(set(duck) - set(pg))[:10]}; only on postgres: {sorted(set(pg) - set(duck))[:10]}")
    mismatches = []
    for key, (num, den, val, n) in duck.items():
        p_num, p_den, p_val, p_n = pg[key]
        same = _same_count(num, p_num) and _same_count(den, p_den) and n == p_n
        if not (same and _close(val, p_val)):
            mismatches.append(f"{key}: duckdb {(num, den, val, n)} != postgres {(p_num, p_den, p_val, p_n)}")
    assert len(duck) > 500
    assert not mismatches, f"{len(mismatches)} KPI rows differ:\n" + "\n".join(mismatches[:20])


def test_pii_hashes_are_identical(builds):
    query = ("select person_sk, email_hash, phone_hash, name_hash from core.dim_customers "
             "order by person_sk")
    duck_rows, pg_rows = _rows(builds, query)
    assert len(duck_rows) > 50
    assert sum(1 for r in duck_rows if r[1]) > 50, "no email hashes to compare"
    assert duck_rows == pg_rows


def test_the_pii_salt_is_in_no_compiled_sql_log_or_view_definition(builds):
    """Issue 17 point 5: the salt is read at run time from _cxw.pii_salt, never inlined into SQL."""
    salt = PLANTED_SALT.encode()
    leaked = [str(f) for f in (builds["home"] / "dbt").rglob("*") if f.is_file() and salt in f.read_bytes()]
    assert leaked == []  # target/ (compiled + run SQL, manifest, partial parse) and dbt.log, both targets
    duck = builds["duck"]
    for what in ("duckdb_views()", "duckdb_tables()", "duckdb_functions() where macro_definition is not null"):
        col = "macro_definition" if "functions" in what else "sql"
        assert duck.execute(f"select count(*) from {what} {'and' if 'where' in what else 'where'} "
                            f"{col} like ?", [f"%{PLANTED_SALT}%"]).fetchone() == (0,)
    assert duck.execute("select count(*) from duckdb_views() where sql like '%_cxw.pii_salt%'").fetchone()[0] > 0
    with builds["pg"].cursor() as cur:
        cur.execute("select count(*) from pg_views where definition like %s", [f"%{PLANTED_SALT}%"])
        assert cur.fetchone() == (0,)
        cur.execute("select count(*) from pg_proc where prosrc like %s", [f"%{PLANTED_SALT}%"])
        assert cur.fetchone() == (0,)
    # the file BI reads: published by the real publish step (core, kpi, cx only; never _cxw)
    from cxw.publish import publish

    with _env(CXW_HOME=builds["home"]):
        pub = publish("salt-check", None, None, build_db=builds["duck_db"])
    published = Path(pub["path"])
    assert PLANTED_SALT.encode() not in published.read_bytes()
    con = duckdb.connect(str(published), read_only=True)
    try:
        assert con.execute("select count(*) from duckdb_tables() where schema_name = '_cxw'").fetchone() == (0,)
        assert con.execute("select count(*) from core.dim_customers where email_hash is not null").fetchone()[0] > 50
    finally:
        con.close()


def test_pii_hashes_keep_their_values_sha256_of_salt_bar_value(builds):
    """The hash is unchanged by reading the salt at run time: sha256(salt || '|' || normalised value), computed here
    in Python from the raw e-mails, equals the build's hashes on both targets (so the answer key's identity
    resolution and the published hashes of an existing deployment do not change)."""
    import hashlib

    emails = [r[0] for r in builds["duck"].execute("select email from raw_odoo.res_partner").fetchall()]
    expected = {hashlib.sha256(f"{PLANTED_SALT}|{e.strip().lower().replace('ß', 'ss')}".encode()).hexdigest()
                for e in emails if e and e.strip()}
    assert len(expected) > 50
    odoo = {r[0] for r in builds["duck"].execute(
        "select email_hash from staging.base_odoo__res_partners where email_hash is not null").fetchall()}
    assert odoo == expected
    with builds["pg"].cursor() as cur:
        cur.execute("select email_hash from staging.base_odoo__res_partners where email_hash is not null")
        assert {r[0] for r in cur.fetchall()} == expected


def test_quarantine_counts_by_reason_are_equal(builds):
    query = "select source, entity, reason, count(*) from staging.quarantine group by 1, 2, 3 order by 1, 2, 3"
    duck_rows, pg_rows = _rows(builds, query)
    reasons = {r[2] for r in duck_rows}
    assert {"missing_id", "score_not_numeric", "score_out_of_range", "bad_timestamp"} <= reasons, duck_rows
    assert duck_rows == pg_rows
    per_record = ("select record_id, reason from staging.quarantine where source = 'hubspot' "
                  "and load_id = 'hubspot-20990101T000000-d1d1d1d1' order by record_seq")
    assert _rows(builds, per_record)[0] == _rows(builds, per_record)[1]
    ledger = "select count(*) from staging.load_ledger where extracted <> staged + quarantined + duplicates"
    assert _rows(builds, ledger) == ([(0,)], [(0,)])


@pytest.mark.parametrize("target", ["duck", "pg"])
def test_kpis_equal_the_answer_key(builds, target):
    """The comparison of tests/e2e/test_demo_run.py, on the build database of each target."""
    duck_rows, pg_rows = _rows(builds, _KPI_QUERY)
    have = _kpis(duck_rows if target == "duck" else pg_rows)
    published = {k for _, k, _ in have}
    compared, mismatches = 0, []
    for row in builds["answer_key"]["kpis"]:
        if row["kpi"] not in published or row.get("channel", "all") != "all" or row.get("segment", "all") != "all":
            continue
        k = (row["grain"], row["kpi"], str(row["period_start"])[:10])
        if k not in have:
            mismatches.append(f"{k}: in the answer key (n={row['n']}) but not in the marts")
            continue
        num, den, val, n = have[k]
        if not (_close(num, row["numerator"]) and _close(den, row["denominator"]) and _close(val, row["value"])
                and int(n) == int(row["n"])):
            mismatches.append(f"{k}: {target} {(num, den, val, n)} != key "
                              f"{(row['numerator'], row['denominator'], row['value'], row['n'])}")
        compared += 1
    key_keys = {(r["grain"], r["kpi"], str(r["period_start"])[:10]) for r in builds["answer_key"]["kpis"]}
    key_kpis = {k for _, k, _ in key_keys}
    # KPIs the answer key does not define (marts added after it) are not judged here
    extra = [k for k in have if k[1] in key_kpis and k not in key_keys]
    assert compared > 500
    assert not mismatches, f"{len(mismatches)} of {compared} KPI rows differ:\n" + "\n".join(mismatches[:20])
    assert not extra, f"rows the answer key does not have: {extra[:10]}"


# ------------------------------------------------------------------------------------------ the loader on its own

@pytest.fixture
def scratch_pg():
    require_service("postgres")
    from psycopg2 import sql

    name = f"cxw_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    admin = _pg_connect("postgres")
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    try:
        yield name, f"host={PG_HOST} port={PG_PORT} user={PG_USER} dbname={name}" + (
            f" password={PG_PASSWORD}" if PG_PASSWORD else "")
    finally:
        with admin.cursor() as cur:
            cur.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))
        admin.close()


def _write_load(raw: Path, load_id: str, rows: list[dict] | None, corrupt: bool = False) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    out = raw / "hubspot" / "contacts" / load_id
    out.mkdir(parents=True)
    if corrupt:
        (out / "part-00000.parquet").write_bytes(b"not a parquet file")
    else:
        pq.write_table(pa.Table.from_pylist(rows), out / "part-00000.parquet")
    (out / "_load.json").write_text(json.dumps({"load_id": load_id, "rows": len(rows or [])}))


def test_postgres_loader_rebuilds_atomically_and_only_when_loads_change(scratch_pg, tmp_path):
    from cxw.loader import RawLoadError
    from cxw.loader_postgres import load_into_postgres

    name, dsn = scratch_pg
    raw = tmp_path / "raw"
    row = {"id": "1", "properties__firstName": "Ann", "tags": [{"key": "a", "value": 1}], "_load_id": "L1",
           "_record_seq": 0}
    _write_load(raw, "hubspot-20250101T000000-00000001", [row, {**row, "id": "2", "_record_seq": 1}])
    first = load_into_postgres(raw, dsn)
    assert first["tables"]["raw_hubspot.contacts"]["rows"] == 2
    assert load_into_postgres(raw, dsn)["skipped"] == ["raw_hubspot.contacts"]

    _write_load(raw, "hubspot-20250102T000000-00000002", None, corrupt=True)
    with pytest.raises(RawLoadError):  # the Parquet is unreadable: a masked load error
        load_into_postgres(raw, dsn)
    con = _pg_connect(name)
    try:
        with con.cursor() as cur:  # the failed rebuild left the previous table and bookkeeping untouched
            cur.execute("select count(*) from raw_hubspot.contacts")
            assert cur.fetchone() == (2,)
            cur.execute("select rows from _cxw.raw_tables where source = 'hubspot' and entity = 'contacts'")
            assert cur.fetchone() == (2,)
            cur.execute("select table_name from information_schema.tables where table_schema = 'raw_hubspot'")
            tables = [t for (t,) in cur.fetchall()]   # (+ the declared tables without a row: cxw/raw_contract.yml)
            assert "contacts" in tables and not [t for t in tables if t.endswith("__cxw_new")]
    finally:
        con.close()

    import shutil

    shutil.rmtree(raw / "hubspot" / "contacts" / "hubspot-20250102T000000-00000002")
    _write_load(raw, "hubspot-20250102T000000-00000002", [{**row, "id": "3"}])
    again = load_into_postgres(raw, dsn)
    assert again["tables"]["raw_hubspot.contacts"]["rows"] == 3
    con = _pg_connect(name)
    try:
        with con.cursor() as cur:
            cur.execute("select column_name, data_type from information_schema.columns "
                        "where table_schema = 'raw_hubspot' and table_name = 'contacts' order by ordinal_position")
            cols = dict(cur.fetchall())
            assert cols["properties__firstname"] == "text" and cols["tags"] == "jsonb"
            # the models' unquoted camelCase name resolves to the lower-cased column
            cur.execute("select properties__firstName, tags -> 0 ->> 'key' from raw_hubspot.contacts where id = '3'")
            assert cur.fetchone() == ("Ann", "a")
            cur.execute("select count(*) from _cxw.raw_loads")
            assert cur.fetchone() == (2,)
    finally:
        con.close()

    (raw / "hubspot" / "Bad-Entity" / "x").mkdir(parents=True)
    (raw / "hubspot" / "Bad-Entity" / "x" / "_load.json").write_text("{}")
    with pytest.raises(ValueError, match="refusing identifier"):
        load_into_postgres(raw, dsn)


def test_postgres_declared_tables_without_a_row_get_the_contract_columns(scratch_pg, tmp_path):
    """Empty is a valid state (issue 14.6) on PostgreSQL: a declared raw table (cxw/raw_contract.yml) with no load is
    created, one with only empty loads widened (columns lower-cased, PostgreSQL types); its first rows rebuild it."""
    import json

    from cxw.loader_postgres import load_into_postgres

    name, dsn = scratch_pg
    raw = tmp_path / "raw"
    empty = raw / "hubspot" / "deals" / "hubspot-20250101T000000-00000001"
    empty.mkdir(parents=True)
    (empty / "_load.json").write_text(json.dumps({"rows": 0, "files": [], "extracted_at": "2025-01-01T00:00:00Z"}))
    rep = load_into_postgres(raw, dsn, sources=["hubspot"])
    assert "raw_hubspot.deals" in rep["declared"] and "raw_hubspot.associations" in rep["declared"]
    con = _pg_connect(name)
    try:
        with con.cursor() as cur:
            cur.execute("select column_name, data_type from information_schema.columns "
                        "where table_schema = 'raw_hubspot' and table_name = 'deals'")
            cols = dict(cur.fetchall())
            assert cols["properties__dealname"] == "text" and cols["archived"] == "boolean"
            assert cols["updatedat"] == "text" and "_load_id" in cols
            cur.execute("select count(*) from raw_hubspot.associations")
            assert cur.fetchone() == (0,)
    finally:
        con.close()
    assert load_into_postgres(raw, dsn, sources=["hubspot"])["declared"] == []
    row = {"id": "d1", "updatedAt": "2025-01-02", "_load_id": "L2", "_record_seq": 0}
    out = raw / "hubspot" / "deals" / "hubspot-20250102T000000-00000002"
    out.mkdir(parents=True)
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist([row]), out / "part-00000.parquet")
    (out / "_load.json").write_text(json.dumps({"rows": 1, "extracted_at": "2025-01-02T00:00:00Z"}))
    rep = load_into_postgres(raw, dsn, sources=["hubspot"])
    assert rep["tables"]["raw_hubspot.deals"]["rows"] == 1 and rep["declared"] == []


def test_postgres_loader_error_names_the_column_and_load_but_never_the_value(scratch_pg, tmp_path):
    """PostgreSQL's COPY error quotes the whole field in its context (here jsonb refusing a NUL escape inside a nested
    value that holds an e-mail and a phone): the load task's error names source, entity, column and load, masked."""
    import traceback

    from cxw.loader import RawLoadError
    from cxw.loader_postgres import load_into_postgres

    name, dsn = scratch_pg
    raw = tmp_path / "raw"
    row = {"id": "1", "tags": [{"key": "note", "value": "jane.planted@example.org\x00 +4915112345678"}],
           "_load_id": "L1", "_record_seq": 0}
    _write_load(raw, "hubspot-20250101T000000-00000001", [row])
    with pytest.raises(RawLoadError) as caught:
        load_into_postgres(raw, dsn)
    msg = str(caught.value)
    assert msg.startswith("loading raw hubspot.contacts into postgres failed, column tags"), msg
    everything = "".join(traceback.format_exception(caught.value))
    assert "jane.planted" not in everything and "12345678" not in everything, everything
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


_IDENTITY_QUERIES = {
    # persons whose two Odoo partners (e-mail differing in case / spaces) the email_hash rule merged
    "erp_duplicate_partners": "select count(distinct person_sk) from cx.cx_identity_link_audit where source = 'odoo' "
                              "and rule = 'email_hash' and same_source_records = 2",
    "erp_duplicate_partner_conflicts": "select count(distinct person_sk) from cx.cx_identity_conflict_audit "
                                       "where conflict_type = 'email_hash_on_multiple_odoo_partners' "
                                       "and resolution = 'merged_one_person' and losing_rule = 'erp_partner_is_person'",
    # persons with a second HubSpot contact (first letter of the e-mail capitalised)
    "hubspot_duplicate_contacts": "select count(distinct person_sk) from cx.cx_identity_link_audit "
                                  "where source = 'hubspot' and rule = 'email_hash' and same_source_records = 2",
}


@pytest.mark.parametrize("target", ["duck", "pg"])
def test_identity_audit_marts_equal_the_answer_keys_identity_facts(builds, target):
    """The generator knows which records are one person: every person with a duplicate ERP partner is one person
    with two Odoo links by email_hash and one merged conflict, every duplicate CRM contact a second HubSpot link."""
    key = builds["answer_key"]["identity"]
    assert key["erp_duplicate_partners"] > 0 and key["hubspot_duplicate_contacts"] > 0
    got = {}
    for name, query in _IDENTITY_QUERIES.items():
        duck_rows, pg_rows = _rows(builds, query)
        got[name] = (duck_rows if target == "duck" else pg_rows)[0][0]
    assert got == {"erp_duplicate_partners": key["erp_duplicate_partners"],
                   "erp_duplicate_partner_conflicts": key["erp_duplicate_partners"],
                   "hubspot_duplicate_contacts": key["hubspot_duplicate_contacts"]}
    coverage = "select source, sum(records), max(source_records), max(source_linked) + max(source_unlinked) " \
               "from cx.cx_identity_coverage group by 1 order by 1"
    rows = _rows(builds, coverage)[0 if target == "duck" else 1]
    assert {r[0] for r in rows} >= {"odoo", "hubspot", "ga4", "ga4_pseudo", "email_recipient", "google_reviews"}
    assert all(int(r[1]) == int(r[2]) == int(r[3]) for r in rows), rows


def test_identity_audit_marts_are_equal_on_both_targets(builds):
    for table, key in (("cx_identity_link_audit", "link_key"), ("cx_identity_coverage", "coverage_key"),
                       ("cx_identity_conflict_audit", "conflict_key")):
        cols = "*" if table != "cx_identity_link_audit" else \
            "link_key, source, source_record_id, person_sk, rule, same_source_records, person_records, has_conflict"
        duck_rows, pg_rows = _rows(builds, f"select {cols} from cx.{table} order by {key}")
        assert len(duck_rows) == len(pg_rows) and len(duck_rows) > 0, table
        for d, p in zip(duck_rows, pg_rows):
            assert all(_close(a, b) if isinstance(a, float) else a == b for a, b in zip(d, p)), (table, d, p)
