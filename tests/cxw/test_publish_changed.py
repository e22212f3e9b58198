"""Publish costs what changed (issue 20.3): a new generation starts as a copy of the generation BI reads and only the
tables whose published fingerprint or description changed are written again. What BI reads must be exactly what a
full publish (every table written into a fresh file) gives. Real DuckDB files, the real publish."""

from __future__ import annotations

import shutil

import duckdb
import pytest


@pytest.fixture
def home(empty_build_db):
    """Marts of the shapes publish handles: a HUGEINT sum (cast for BI), descriptions (dbt persist_docs), three
    schemas, a schema that is not published."""
    p, con = empty_build_db
    con.execute("create schema kpi; create schema core; create schema cx; create schema staging")
    con.execute("create table kpi.kpi_daily as select 'nps' as kpi, 10.0 as value, 40 as n")
    con.execute("create table core.fct_orders as select range as order_id, range % 7 as store from range(1000)")
    con.execute("create table core.dim_customers as select range as customer_id, 'c' || range as name from range(50)")
    con.execute("create table cx.cx_issue_pareto as select 'billing' as issue, sum(x) as occurrences "
                "from range(1, 5) as t(x)")
    con.execute("create table staging.secret as select 'a@b.example' as email")
    con.execute("comment on table core.fct_orders is 'Orders.'")
    con.execute("comment on column core.fct_orders.store is 'Store of the order.'")
    con.execute("comment on table core.dim_customers is 'Customers.'")
    con.close()
    return p


def _build(p, *sql):
    con = duckdb.connect(str(p.build_db))
    for s in sql:
        con.execute(s)
    con.close()


def _bi_view(path) -> dict:
    """Everything BI reads of a published file but the generation's id and publish time: each table's column types
    and sorted rows, the descriptions, the schemas."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        out = {"schemas": sorted(r[0] for r in con.execute(
            "select schema_name from information_schema.schemata where catalog_name = current_database()").fetchall())}
        for s, t in con.execute("select table_schema, table_name from information_schema.tables "
                                "where table_catalog = current_database() order by 1, 2").fetchall():
            q = f'"{s}"."{t}"'
            cols = [c for c in con.execute(f"describe {q}").fetchall()]
            keep = [c[0] for c in cols if (s, t) != ("main", "publication")
                    or c[0] not in ("generation_id", "published_at", "run_id")]
            rows = con.execute(f"select {', '.join(chr(34) + c + chr(34) for c in keep)} from {q}").fetchall()
            out[f"{s}.{t}"] = {"types": [(c[0], c[1]) for c in cols], "rows": sorted(map(repr, rows))}
        out["comments"] = sorted(con.execute(
            "select schema_name, table_name, comment from duckdb_tables() where database_name = current_database()"
        ).fetchall(), key=repr) + sorted(con.execute(
            "select schema_name, table_name, column_name, comment from duckdb_columns() "
            "where database_name = current_database()").fetchall(), key=repr)
        return out
    finally:
        con.close()


def _full_publish_view(p, run_id="run-2") -> dict:
    """What a full publish of the same build gives: the published directory emptied, every table written."""
    from cxw.publish import publish

    shutil.rmtree(p.published_dir)
    rep = publish(run_id, "a", "b", full=True)
    assert rep["status"] == "published" and rep["written"] and rep["copied_from"] is None
    return _bi_view(p.published_db)


def test_publishing_what_changed_gives_what_a_full_publish_gives(home):
    """One table's content changed (same row count), one dropped, one added, one only re-described: the new generation
    is written from the previous one plus those four, and BI reads exactly what a full publish writes."""
    from cxw.publish import publish

    first = publish("run-1", "a", "b")
    assert first["status"] == "published" and first["copied_from"] is None
    _build(home,
           "update core.fct_orders set store = 99 where order_id = 500",
           "drop table cx.cx_issue_pareto",
           "create table kpi.kpi_weekly as select 'nps' as kpi, 11.0 as value",
           "comment on column core.dim_customers.name is 'Name of the customer.'")
    second = publish("run-2", "a", "b")
    assert second["status"] == "published" and second["copied_from"] == first["generation_id"]
    assert second["written"] == ["core.dim_customers", "core.fct_orders", "kpi.kpi_weekly"]
    incremental = _bi_view(home.published_db)
    assert "cx.cx_issue_pareto" not in incremental and "cx" not in incremental["schemas"]
    assert incremental == _full_publish_view(home)


def test_a_changed_table_of_the_same_row_count_is_written_again_not_copied(home):
    """The copy of the previous generation keeps a table only when its fingerprint (rows' hashes, not only their
    count) and its descriptions are unchanged: a value changed in place reaches BI."""
    from cxw.publish import publish

    publish("run-1", "a", "b")
    _build(home, "update kpi.kpi_daily set value = 55.0")
    rep = publish("run-2", "a", "b")
    assert rep["written"] == ["kpi.kpi_daily"]
    con = duckdb.connect(str(home.published_db), read_only=True)
    try:
        assert con.execute("select value from kpi.kpi_daily").fetchall() == [(55.0,)]
        assert con.execute("select count(*) from core.fct_orders").fetchone()[0] == 1000
    finally:
        con.close()


def test_publishing_what_changed_leaves_the_previous_generation_untouched_and_rollback_reads_it(home):
    import hashlib

    from cxw.publish import publish, rollback

    first = publish("run-1", "a", "b")
    gen1 = home.generations_dir / f"{first['generation_id']}.duckdb"
    digest = hashlib.sha256(gen1.read_bytes()).hexdigest()
    view1 = _bi_view(gen1)
    _build(home, "update kpi.kpi_daily set value = 55.0")
    publish("run-2", "a", "b")
    assert hashlib.sha256(gen1.read_bytes()).hexdigest() == digest
    rollback()
    assert _bi_view(home.published_db) == view1


def test_a_generation_without_recorded_fingerprints_is_not_a_base(home):
    """No recorded fingerprints (a file of another code version): the publish falls back to writing every table."""
    from cxw.publish import publish

    first = publish("run-1", "a", "b")
    gen1 = home.generations_dir / f"{first['generation_id']}.duckdb"
    con = duckdb.connect(str(gen1))
    con.execute("drop table publication_tables")
    con.close()
    _build(home, "update kpi.kpi_daily set value = 55.0")
    rep = publish("run-2", "a", "b")
    assert rep["status"] == "published" and rep["copied_from"] is None and len(rep["written"]) == 4


def test_a_generation_published_from_a_copy_opens_in_a_duckdb_1x_client(home):
    from duckdb_1x import query_with_duckdb_1x

    from cxw.publish import publish

    publish("run-1", "a", "b")
    _build(home, "update kpi.kpi_daily set value = 55.0")
    assert publish("run-2", "a", "b")["copied_from"]
    out = query_with_duckdb_1x(home.published_db, ["select value from kpi.kpi_daily",
                                                    "select count(*) from core.fct_orders"])
    assert out["results"] == [[["55.0"]], [[1000]]]  # a DECIMAL, as text


AUDIENCES = """audiences:
  admin:
    tables: "*"
  analyst:
    deny_columns: [name]
    tables:
      core.fct_orders: {}
      core.dim_customers: {}
      kpi.kpi_daily: {}
  store3:
    tables:
      core.fct_orders: {rows: "store = 3"}
      core.dim_customers: {rows: "customer_id in (select order_id from core.fct_orders where store = 3)"}
      kpi.kpi_daily: {columns: [kpi, value]}
"""


def test_audience_files_derived_from_a_copy_equal_those_derived_in_full(home, tmp_path, monkeypatch):
    """Each audience file of a generation published from a copy starts from the previous generation's audience file:
    tables whose main table is unchanged and that have no row predicate are copied, the others written. A row
    predicate reading a changed table (store3's dim_customers reads fct_orders) is evaluated again."""
    from cxw.publish import publish

    cfg = tmp_path / "audiences.yml"
    cfg.write_text(AUDIENCES)
    monkeypatch.setenv("CXW_AUDIENCES_FILE", str(cfg))
    publish("run-1", "a", "b")
    _build(home, "update core.fct_orders set store = 3 where order_id = 11",
           "comment on column kpi.kpi_daily.value is 'KPI value.'")
    rep = publish("run-2", "a", "b")
    assert rep["copied_from"] and rep["written"] == ["core.fct_orders", "kpi.kpi_daily"]
    aud = home.published_dir / "audiences"
    incremental = {a: _bi_view(aud / a / "cx_warehouse.duckdb") for a in ("analyst", "store3")}
    con = duckdb.connect(str(aud / "store3" / "cx_warehouse.duckdb"), read_only=True)
    try:
        assert (11,) in con.execute("select customer_id from core.dim_customers").fetchall()
    finally:
        con.close()
    _full_publish_view(home)
    full = {a: _bi_view(aud / a / "cx_warehouse.duckdb") for a in ("analyst", "store3")}
    assert incremental == full


def test_publishing_unchanged_content_leaves_no_switch_link_behind(home, caplog):
    """Switching a file to the generation it already is (an unchanged publish switches every audience again) must
    not leave the temp link: a rename onto a hard link of the same file does nothing, and the next run reported the
    leftover as an orphan of an interrupted publish."""
    import logging

    from cxw.publish import publish

    publish("run-1", "a", "b")
    assert publish("run-2", "a", "b")["status"] == "unchanged"
    assert sorted(str(p.relative_to(home.published_dir)) for p in home.published_dir.rglob("*.switch")) == []
    with caplog.at_level(logging.WARNING, logger="cxw.publish"):
        publish("run-3", "a", "b")
    assert "orphan" not in caplog.text
