"""Access by audience on DuckDB (issue 18.4): each published generation is copied into one file per audience of
access/audiences.yml holding exactly the tables, columns and rows that audience may read; a denied read fails; the
audience files follow the main file through publish and rollback, keep the descriptions and the 1.x storage version.

The published file is the dashboard tests' one (tests/dashboard/conftest.py: the raw fixture through a real
`dbt build` and the real publish)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import duckdb
import pytest

from tests.dashboard.conftest import published_home  # noqa: F401  (the session fixture)
from tests.dashboard._published import publish_in

SCHEMAS = ("core", "kpi", "cx")


def _con(path: Path):
    return duckdb.connect(str(path), read_only=True)


def _tables(con) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for s, t, c in con.execute("select table_schema, table_name, column_name from information_schema.columns "
                               "order by table_schema, table_name, ordinal_position").fetchall():
        out.setdefault(f"{s}.{t}", []).append(c)
    return out


def _audience_file(home: Path, audience: str) -> Path:
    return home / "published" / "audiences" / audience / "cx_warehouse.duckdb"


@pytest.fixture(scope="module")
def config():
    from cxw.access import load_audiences

    return load_audiences()


def test_the_configuration_matches_the_real_marts_strictly(published_home, config):
    """Every configured table and column exists in a real build (the publish itself only warns)."""
    from cxw.access import _published_tables, plan

    con = _con(published_home / "published" / "cx_warehouse.duckdb")
    try:
        published = _published_tables(con, con.execute("select current_database()").fetchone()[0])
    finally:
        con.close()
    for aud in config.values():
        assert plan(aud, published, strict=True)
    assert set(config) >= {"executive", "cx_agent", "analyst", "admin"}


def test_each_audience_file_holds_exactly_its_tables_columns_and_rows(published_home, config):
    main = _con(published_home / "published" / "cx_warehouse.duckdb")
    try:
        main_tables = {k: v for k, v in _tables(main).items() if k.split(".")[0] in SCHEMAS}
        gen = main.execute("select generation_id from publication").fetchone()[0]
        for name, aud in config.items():
            con = _con(_audience_file(published_home, name))
            try:
                tables = _tables(con)
                got = {k: v for k, v in tables.items() if k.split(".")[0] in SCHEMAS}
                # tables: the configured ones ("*": all published)
                want_tables = set(main_tables) if aud.tables == "*" else set(aud.tables)
                assert set(got) == want_tables, name
                if aud.reads_everything:  # the main generation itself, hard-linked
                    assert os.path.samefile(_audience_file(published_home, name),
                                            published_home / "published" / "cx_warehouse.duckdb")
                    assert set(got) == set(main_tables)
                    continue
                assert set(tables) - set(got) == {"main.publication", "main.publication_tables",
                                                  "main.publication_audience", "main.publication_freshness"}
                for q, cols in got.items():
                    rule = aud.table_rule(q)
                    want = [c for c in main_tables[q] if (rule.get("columns") is None or c in rule["columns"])
                            and c not in aud.deny_columns and c not in (rule.get("deny_columns") or ())]
                    assert cols == want, (name, q)
                    where = f" where {rule['rows']}" if rule.get("rows") else ""
                    n_main = main.execute(f"select count(*) from {q}{where}").fetchone()[0]
                    assert con.execute(f"select count(*) from {q}").fetchone()[0] == n_main, (name, q)
                    # same rows, not only as many
                    cl = ", ".join(f'"{c}"' for c in cols)
                    assert sorted(map(repr, con.execute(f"select {cl} from {q}").fetchall())) == sorted(
                        map(repr, main.execute(f"select {cl} from {q}{where}").fetchall())), (name, q)
                assert con.execute("select generation_id from publication").fetchone()[0] == gen
                assert con.execute("select audience, config_fingerprint from publication_audience").fetchone() == \
                    (name, aud.fingerprint)
                assert {r[0] for r in con.execute("select table_name from publication_tables").fetchall()} == \
                    set(got)
            finally:
                con.close()
    finally:
        main.close()


def test_the_audiences_see_what_the_issue_asks(published_home):
    """Independently of the configuration's wording: executive reads no person-level table; the agent reads the alert
    queue and the CRM/ERP ids of the alerts' persons only; analyst reads every mart without source-system ids or
    free text; admin reads what the main file holds."""
    main = _con(published_home / "published" / "cx_warehouse.duckdb")
    files = {a: _con(_audience_file(published_home, a)) for a in ("executive", "cx_agent", "analyst", "admin")}
    try:
        ex = _tables(files["executive"])
        assert "kpi.kpi_period" in ex
        assert not [q for q, cols in ex.items() if "person_sk" in cols], "executive reads person-level rows"
        ag = _tables(files["cx_agent"])
        assert "cx.cx_detractor_alerts" in ag
        assert set(ag["core.dim_customers"]) == {"person_sk", "hubspot_contact_id", "odoo_partner_id"}
        assert not [c for cols in ag.values() for c in cols if c.endswith("_hash")]
        persons = main.execute("select count(distinct person_sk) from cx.cx_detractor_alerts "
                               "where person_sk in (select person_sk from core.dim_customers)").fetchone()[0]
        assert persons > 0
        assert files["cx_agent"].execute("select count(*) from core.dim_customers").fetchone()[0] == persons
        assert main.execute("select count(*) from core.dim_customers").fetchone()[0] > persons
        an = _tables(files["analyst"])
        assert {q for q in an if q.split(".")[0] in SCHEMAS} == {q for q in _tables(files["admin"])
                                                                 if q.split(".")[0] in SCHEMAS}
        assert not {c for cols in an.values() for c in cols} & {"hubspot_contact_id", "odoo_partner_id",
                                                                "comment", "contact_id", "order_name"}
        assert "email_hash" in an["core.dim_customers"]  # pseudonymised, not removed
        assert {q: c for q, c in _tables(files["admin"]).items() if q.split(".")[0] in SCHEMAS} == {
            q: c for q, c in _tables(main).items() if q.split(".")[0] in SCHEMAS}
    finally:
        for c in files.values():
            c.close()
        main.close()


def test_a_denied_read_fails(published_home):
    ex = _con(_audience_file(published_home, "executive"))
    an = _con(_audience_file(published_home, "analyst"))
    ag = _con(_audience_file(published_home, "cx_agent"))
    try:
        with pytest.raises(duckdb.CatalogException):
            ex.execute("select * from cx.cx_detractor_alerts")
        with pytest.raises(duckdb.CatalogException):
            ex.execute("select * from core.dim_customers")
        with pytest.raises(duckdb.BinderException):
            an.execute("select comment from cx.cx_detractor_alerts")
        with pytest.raises(duckdb.BinderException):
            ag.execute("select email_hash from core.dim_customers")
        with pytest.raises(duckdb.CatalogException):
            ag.execute("select * from kpi.kpi_period")
    finally:
        for c in (ex, an, ag):
            c.close()


def test_audience_files_keep_the_descriptions_and_open_in_duckdb_1x(published_home):
    from duckdb_1x import DUCKDB_1X, query_with_duckdb_1x

    main = _con(published_home / "published" / "cx_warehouse.duckdb")
    try:
        want = main.execute("select comment from duckdb_columns() where schema_name = 'kpi' and table_name = "
                            "'kpi_period' and column_name = 'value'").fetchone()[0]
    finally:
        main.close()
    assert want
    out = query_with_duckdb_1x(_audience_file(published_home, "executive"), [
        "select comment from duckdb_columns() where schema_name = 'kpi' and table_name = 'kpi_period' "
        "and column_name = 'value'",
        "select count(*) > 0 from kpi.kpi_period"])
    assert out["version"] == DUCKDB_1X
    assert out["results"] == [[[want]], [[True]]]


def _generation(path: Path) -> str:
    con = _con(path)
    try:
        return con.execute("select generation_id from publication").fetchone()[0]
    finally:
        con.close()


def test_audience_files_follow_publish_and_rollback_and_a_config_change(published_home, tmp_path, monkeypatch):
    home = tmp_path / "home"
    shutil.copytree(published_home, home, ignore=shutil.ignore_patterns("*.log", "target", "logs"))
    # the copy's hard links are copies: point every published file at its generation again
    from cxw.access import load_audiences, sync

    monkeypatch.setenv("CXW_HOME", str(home))
    monkeypatch.delenv("CXW_BUILD_DB", raising=False)
    sync()
    first = _generation(home / "published" / "cx_warehouse.duckdb")
    con = duckdb.connect(str(home / "warehouse" / "build.duckdb"))
    con.execute("update kpi.kpi_period set value = value + 1 where kpi = 'nps'")
    con.close()
    second = publish_in(home, "run-2")["generation_id"]
    names = list(load_audiences())
    for a in names:
        assert _generation(_audience_file(home, a)) == second
        assert (home / "published" / "audiences" / a / "generations" / f"{first}.duckdb").exists()
    from cxw.publish import rollback

    rep = rollback()
    assert rep["to"] == first and rep["audiences"] == sorted(names)
    for a in names:
        assert _generation(_audience_file(home, a)) == first, a
    # a changed configuration is applied on the next publish even when the content is unchanged
    cfg = tmp_path / "audiences.yml"
    cfg.write_text("audiences:\n  executive:\n    tables:\n      kpi.kpi_dictionary: {}\n")
    monkeypatch.setenv("CXW_AUDIENCES_FILE", str(cfg))
    rollback(second)
    rep = publish_in_unchanged(home)
    assert rep["status"] == "unchanged"
    assert sorted(p.name for p in (home / "published" / "audiences").iterdir()) == ["executive"]
    con = _con(_audience_file(home, "executive"))
    try:
        assert [k for k in _tables(con) if not k.startswith("main.")] == ["kpi.kpi_dictionary"]
    finally:
        con.close()


def publish_in_unchanged(home: Path) -> dict:
    from cxw.publish import publish

    return publish("run-3", "2025-04-30", "2025-05-01")


def test_an_erasure_reaches_the_audience_files(published_home, tmp_path, monkeypatch):
    """`./cx erase` rewrites every kept main generation, then derives the audience files again (`sync(force=True)`,
    as cxw.erase.rebuild_and_republish does): the erased person is in no audience file, the others stay."""
    from cxw.access import sync
    from cxw.erase_stores import rewrite_generation
    from cxw.publish import generations

    home = tmp_path / "home"
    shutil.copytree(published_home, home, ignore=shutil.ignore_patterns("*.log", "target", "logs"))
    monkeypatch.setenv("CXW_HOME", str(home))
    monkeypatch.delenv("CXW_BUILD_DB", raising=False)
    sync()
    agent = _audience_file(home, "cx_agent")
    con = _con(agent)
    try:
        persons = [r[0] for r in con.execute("select distinct person_sk from core.dim_customers order by 1").fetchall()]
    finally:
        con.close()
    assert len(persons) >= 2
    for g in generations():
        assert rewrite_generation(g, {persons[0]}) > 0
    sync(force=True)
    for name in ("cx_agent", "analyst", "admin"):
        con = _con(_audience_file(home, name))
        try:
            left = {r[0] for r in con.execute("select person_sk from cx.cx_detractor_alerts").fetchall()}
        finally:
            con.close()
        assert persons[0] not in left and persons[1] in left, name
