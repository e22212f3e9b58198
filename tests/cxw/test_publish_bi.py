"""BI clients read the published file (issue 18.5, 18.3): a DuckDB 1.x client opens it, no column has a type BI
drivers cannot map, the build's descriptions are published as comments, and a SQLAlchemy connection through
duckdb_engine (what Superset and Metabase use) reads it read-only. Real DuckDB files, the real publish."""

from __future__ import annotations

import duckdb
import pytest
from duckdb_1x import DUCKDB_1X, query_with_duckdb_1x


@pytest.fixture
def home(empty_build_db):
    """A build database whose marts have the shapes of the real ones: sums of integers (HUGEINT), a hash
    (UBIGINT), and dbt's persisted descriptions (persist_docs: COMMENT ON)."""
    p, con = empty_build_db
    con.execute("create schema kpi; create schema cx")
    con.execute("create table kpi.kpi_daily as select 'nps' as kpi, 12.5::double as value, 40::bigint as n")
    con.execute("create table cx.cx_issue_pareto as select 'billing' as issue, sum(x) as occurrences, "
                "hash('billing') as issue_hash from range(1, 5) as t(x)")
    con.execute("comment on table kpi.kpi_daily is 'KPIs per day.'")
    con.execute("comment on column kpi.kpi_daily.kpi is 'KPI name (kpi.kpi_dictionary).'")
    con.execute("comment on column kpi.kpi_daily.value is 'KPI value, in the unit of kpi_dictionary.unit.'")
    con.execute("comment on table cx.cx_issue_pareto is 'Recurring issues, it''s the outer loop.'")
    con.execute("comment on column cx.cx_issue_pareto.occurrences is 'Times the issue occurred.'")
    con.close()
    return p


def _columns(db):
    con = duckdb.connect(str(db), read_only=True)
    try:
        return {f"{s}.{t}.{c}": (ty, cm) for s, t, c, ty, cm in con.execute(
            "select schema_name, table_name, column_name, data_type, comment from duckdb_columns() "
            "where not internal").fetchall()}
    finally:
        con.close()


def test_published_file_opens_in_a_duckdb_1x_client(home):
    from cxw.publish import publish

    publish("run-1", "a", "2025-07-01")
    out = query_with_duckdb_1x(home.published_db, [
        "select kpi, value, n from kpi.kpi_daily",
        "select issue, occurrences from cx.cx_issue_pareto",
        "select comment from duckdb_tables() where table_name = 'cx_issue_pareto'",
        "select generation_id is not null from publication"])
    assert out["version"] == DUCKDB_1X
    assert out["results"] == [[["nps", 12.5, 40]], [["billing", 10]], [["Recurring issues, it's the outer loop."]],
                              [[True]]]


def test_a_duckdb_1x_client_cannot_open_a_default_duckdb_2_file(tmp_path):
    """The check above can fail: a file DuckDB 2.x writes with its default storage version is refused by 1.x."""
    db = tmp_path / "default.duckdb"
    con = duckdb.connect(str(db))
    con.execute("create table t as select 1 as x")
    con.close()
    with pytest.raises(AssertionError, match="version number"):
        query_with_duckdb_1x(db, ["select * from t"])


def test_no_published_column_has_a_type_bi_drivers_cannot_map(home):
    from cxw.publish import BI_TYPE_CASTS, publish

    publish("run-1", "a", "b")
    cols = _columns(home.published_db)
    bad = {k: ty for k, (ty, _) in cols.items() if ty in BI_TYPE_CASTS}
    assert bad == {}
    assert cols["cx.cx_issue_pareto.occurrences"][0] == "BIGINT"
    assert cols["cx.cx_issue_pareto.issue_hash"][0] == "DECIMAL(20,0)"
    con = duckdb.connect(str(home.published_db), read_only=True)
    try:  # values unchanged by the cast
        assert con.execute("select occurrences, issue_hash = hash('billing') from cx.cx_issue_pareto").fetchone() == (
            10, True)
    finally:
        con.close()


def test_publication_tables_fingerprint_the_published_form_of_each_table(home):
    from cxw.publish import publish, table_fingerprint

    publish("run-1", "a", "b")
    con = duckdb.connect(str(home.published_db), read_only=True)
    try:
        rows = con.execute("select table_name, row_count, fingerprint from publication_tables").fetchall()
        assert {t for t, _, _ in rows} == {"kpi.kpi_daily", "cx.cx_issue_pareto"}
        assert all(table_fingerprint(con, t) == (n, fp) for t, n, fp in rows)
    finally:
        con.close()


def test_descriptions_of_the_build_are_published_as_comments(home):
    from cxw.publish import publish

    publish("run-1", "a", "b")
    cols = _columns(home.published_db)
    assert cols["kpi.kpi_daily.kpi"][1] == "KPI name (kpi.kpi_dictionary)."
    assert cols["cx.cx_issue_pareto.occurrences"][1] == "Times the issue occurred."
    # the publication's own record tables are described too
    assert all(cm for k, (_, cm) in cols.items() if k.startswith("main.publication"))
    con = duckdb.connect(str(home.published_db), read_only=True)
    try:
        tables = dict(con.execute("select schema_name || '.' || table_name, comment from duckdb_tables()").fetchall())
    finally:
        con.close()
    assert tables["kpi.kpi_daily"] == "KPIs per day." and tables["main.publication"] and tables[
        "main.publication_tables"]


def test_a_build_that_only_changes_a_description_is_published_again(home):
    from cxw.config import paths
    from cxw.publish import publish

    first = publish("run-1", "a", "b")
    con = duckdb.connect(str(paths().build_db))
    con.execute("comment on column kpi.kpi_daily.n is 'Sample size.'")
    con.close()
    second = publish("run-2", "a", "b")
    assert second["status"] == "published" and second["generation_id"] != first["generation_id"]
    assert _columns(home.published_db)["kpi.kpi_daily.n"][1] == "Sample size."


def test_sqlalchemy_duckdb_engine_reads_the_published_file_read_only(home):
    """The README's BI recipe (section "Querying the published file"), as Superset / Metabase-style SQLAlchemy
    connections make it: the URL with access_mode=read_only and the connect_args."""
    import sqlalchemy as sa

    from cxw.publish import publish

    publish("run-1", "a", "b")
    engine = sa.create_engine(f"duckdb:///{home.published_db}?access_mode=read_only",
                              connect_args={"read_only": True, "config": {"enable_external_access": False}})
    try:
        with engine.connect() as conn:
            assert conn.execute(sa.text("select kpi, value from kpi.kpi_daily")).all() == [("nps", 12.5)]
            assert "kpi_daily" in sa.inspect(conn).get_table_names(schema="kpi")
            assert conn.execute(sa.text("select data_type from information_schema.columns where table_name = "
                                        "'cx_issue_pareto' and column_name = 'occurrences'")).scalar() == "BIGINT"
            with pytest.raises(sa.exc.DBAPIError, match="read-only"):
                conn.execute(sa.text("delete from kpi.kpi_daily"))
            with pytest.raises(sa.exc.DBAPIError, match="disabled"):  # no other files through the BI connection
                conn.execute(sa.text("select * from read_csv('/etc/passwd')"))
    finally:
        engine.dispose()


def test_a_generation_rewritten_by_erase_still_opens_in_duckdb_1x_with_its_comments(home):
    """`./cx erase` rewrites kept generations into fresh files: same storage version, same descriptions."""
    from cxw.erase_stores import rewrite_generation
    from cxw.publish import generations, publish, table_fingerprint

    publish("run-1", "a", "b")
    gen = generations()[-1]
    assert rewrite_generation(gen, {"billing"}) == 1
    out = query_with_duckdb_1x(gen, [
        "select count(*) from cx.cx_issue_pareto",
        "select comment from duckdb_columns() where table_name = 'kpi_daily' and column_name = 'kpi'",
        "select comment from duckdb_tables() where table_name = 'publication'"])
    assert out["results"][:2] == [[[0]], [["KPI name (kpi.kpi_dictionary)."]]] and out["results"][2][0][0]
    con = duckdb.connect(str(gen), read_only=True)
    try:
        assert all(table_fingerprint(con, t) == (n, fp)
                   for t, n, fp in con.execute("select * from publication_tables").fetchall())
    finally:
        con.close()
