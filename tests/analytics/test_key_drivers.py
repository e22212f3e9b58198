"""Key drivers (issue 19.2): the demo company plants known effects on NPS (demo_company/world.py
NPS_DRIVER_EFFECTS: delivery delay strongly, ticket count moderately, the survey channel weakly) and the analysis,
run by the real runner on a DuckDB build database, ranks them in that order; running it twice gives identical
tables; too little data gives the table with zero rows and the same columns.

The feature rows are derived here from the generator's truth with the definitions of the dbt model
int_feedback_driver_features (latest delivery done in the lookback, tickets opened in it, the survey channel): a
company of 5,000 persons (≈850 NPS responses, ranking stable across generator seeds) costs ~3 s to generate, where
the demo pipeline at a scale with enough responses would take minutes. The dbt model itself is built and tested by
every full dbt build (tests/dbt, the e2e demo)."""

from __future__ import annotations

from collections import defaultdict
from datetime import date

import duckdb
import numpy as np
import pandas as pd
import pytest

from cxw.analytics import key_drivers as kd
from cxw.analytics.key_drivers import ANALYSIS as KEY_DRIVERS
from cxw.analytics.runner import run_analyses

# the database below holds only the key-driver inputs: the other registered analyses (CLV) read other marts
ONLY = (KEY_DRIVERS,)

AS_OF = date(2025, 7, 1)


def _nps_features(persons: int = 5000, seed: int = 42) -> pd.DataFrame:
    from demo_company.config import DEFAULT_DAYS, DEFAULT_START, Scale, scaled_dirt
    from demo_company.util import US_PER_DAY, US_PER_H
    from demo_company.world import NPS_DRIVER_LOOKBACK_DAYS, build_world

    w = build_world(seed, Scale("T", persons, 0, 0), DEFAULT_START, DEFAULT_DAYS, scaled_dirt(None, 1.0))
    lookback = NPS_DRIVER_LOOKBACK_DAYS * US_PER_DAY
    done, tickets = defaultdict(list), defaultdict(list)
    for k in w.pickings:
        if k.done_us:
            done[k.pid].append(k)
    for t in w.tickets:
        tickets[t.pid].append(t)
    rows = []
    for f in w.feedback:
        if f.survey != "NPS" or f.quarantine:
            continue
        ts = f.submitted_us
        recent = [k for k in done[f.pid] if ts - lookback <= k.done_us <= ts]
        last = max(recent, key=lambda k: (k.done_us, k.kid)) if recent else None
        tk = [t for t in tickets[f.pid] if ts - lookback <= t.created_us < ts]
        closed = [t for t in tk if t.closed_us]
        rows.append({
            "response_key": f"survey_response:{f.fid:08d}", "score_name": "nps", "person_sk": str(f.pid),
            "score": float(f.score), "responded_date": pd.Timestamp(ts // 1000, unit="ms").date(),
            "channel": f.channel.lower(), "has_recent_delivery": int(last is not None),
            "is_delivery_late": int(bool(last and last.late)),
            "delay_days": max(0.0, (last.done_us - last.scheduled_us) / US_PER_DAY) if last else 0.0,
            "ticket_count": len(tk),
            "first_response_hours": float(np.mean([(t.reply_us - t.created_us) / US_PER_H for t in tk])) if tk else 0.0,
            "resolution_hours": float(np.mean([(t.closed_us - t.created_us) / US_PER_H for t in closed]))
            if closed else 0.0,
            "product_category": "none", "web_friction_sessions": 0, "segment": "new"})
    return pd.DataFrame(rows)


def _build_db(path, features: pd.DataFrame):
    con = duckdb.connect(str(path))
    try:
        con.execute("create schema intermediate")
        con.register("f", features)
        con.execute("create table intermediate.int_feedback_driver_features as "
                    "select * replace (cast(responded_date as date) as responded_date) from f")
    finally:
        con.close()


def _table(path) -> pd.DataFrame:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute("select * from cx.cx_key_drivers order by driver_key").df()
    finally:
        con.close()


@pytest.fixture(scope="module")
def features() -> pd.DataFrame:
    return _nps_features()


@pytest.fixture(scope="module")
def analysed(tmp_path_factory, features):
    db = tmp_path_factory.mktemp("key_drivers") / "build.duckdb"
    _build_db(db, features)
    first = run_analyses("duckdb", as_of=AS_OF, build_db=db, analyses=ONLY)
    table = _table(db)
    second = run_analyses("duckdb", as_of=AS_OF, build_db=db, analyses=ONLY)
    return db, first, second, table


def test_the_analysis_ranks_the_planted_nps_drivers_in_the_planted_order(analysed):
    from demo_company.world import NPS_DRIVER_EFFECTS

    _, report, _, table = analysed
    assert report["key_drivers"]["cx_key_drivers"] == len(table) > 0
    window = table[(table.score == "nps") & (table.period_grain == "window")].set_index("driver")
    assert window.n_responses.iloc[0] >= 500
    rank = window.importance_rank
    # planted (points of NPS score per unit; the variance each explains follows the spread of the driver too):
    # delay strongest, tickets moderate, channel weak
    assert set(NPS_DRIVER_EFFECTS) == {"delay_days", "ticket_count", "channel_email"}
    assert rank["delay_days"] < rank["ticket_count"] < rank["channel"], window[["importance_share", "ci_low"]]
    # the effects' signs come out as planted, and the strong driver is clearly above the weak one
    assert window.loc["delay_days", "coefficient"] < 0 and window.loc["ticket_count", "coefficient"] < 0
    assert window.loc["delay_days", "ci_low"] > window.loc["channel", "ci_high"]
    # shares are a decomposition: they sum to 1 per period, each inside its bootstrap interval's range
    assert window.importance_share.sum() == pytest.approx(1.0)
    assert (window.ci_low <= window.ci_high).all() and (window.n_bootstrap == kd.N_BOOTSTRAP).all()
    assert set(table.period_grain) == {"window", "quarter"} and table.driver_key.is_unique


def test_running_the_analysis_twice_gives_an_identical_table(analysed):
    db, first, second, table = analysed
    assert {k: v for k, v in first.items() if k != "seconds"} == {k: v for k, v in second.items() if k != "seconds"}
    pd.testing.assert_frame_equal(_table(db), table)


def test_too_few_responses_give_the_table_with_zero_rows_and_the_same_columns(analysed, features, tmp_path):
    db, _, _, table = analysed
    few = tmp_path / "few.duckdb"
    _build_db(few, features.head(kd.MIN_RESPONSES - 1))
    assert run_analyses("duckdb", as_of=AS_OF, build_db=few, analyses=ONLY)["key_drivers"] == {"cx_key_drivers": 0}
    empty = _table(few)
    assert len(empty) == 0 and list(empty.columns) == list(table.columns)
    con = duckdb.connect(str(few), read_only=True)
    try:
        types = con.execute("select column_name, data_type from duckdb_columns() where table_name = 'cx_key_drivers' "
                            "and comment is not null and trim(comment) <> '' order by column_index").fetchall()
    finally:
        con.close()
    assert [c for c, _ in types] == list(kd.COLUMNS)  # every column described (the published file documents all)
    assert dict(types)["period_start"] == "DATE" and dict(types)["n_responses"] == "BIGINT"


def test_the_postgresql_target_gives_the_same_table_as_duckdb(analysed, features):
    """The runner is target-agnostic: the same feature rows in a PostgreSQL build database (a scratch database of
    its own) give the same cx.cx_key_drivers, replaced on a second run, with its descriptions."""
    import os
    import uuid

    import psycopg2
    from psycopg2 import sql
    from psycopg2.extras import execute_values

    from tests.conftest import require_service

    require_service("postgres")
    _, _, _, table = analysed
    host, port = os.environ.get("CXW_PG_HOST", "127.0.0.1"), os.environ.get("CXW_PG_PORT", "5432")
    user = os.environ.get("CXW_PG_USER", "postgres")
    dsn = f"host={host} port={port} user={user} dbname=" + "{}"
    name = f"cxw_key_drivers_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = psycopg2.connect(dsn.format("postgres"))
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    try:
        con = psycopg2.connect(dsn.format(name))
        with con, con.cursor() as cur:
            cur.execute("create schema intermediate; create table intermediate.int_feedback_driver_features ("
                        "response_key text, score_name text, person_sk text, score double precision, "
                        "responded_date date, channel text, has_recent_delivery int, is_delivery_late int, "
                        "delay_days double precision, ticket_count bigint, first_response_hours double precision, "
                        "resolution_hours double precision, product_category text, web_friction_sessions bigint, "
                        "segment text)")
            execute_values(cur, "insert into intermediate.int_feedback_driver_features values %s",
                           list(features.itertuples(index=False, name=None)))
        con.close()
        for _ in range(2):
            report = run_analyses("postgres", as_of=AS_OF, dsn=dsn.format(name), analyses=ONLY)
        assert report["key_drivers"] == {"cx_key_drivers": len(table)}
        con = psycopg2.connect(dsn.format(name))
        try:
            with con.cursor() as cur:
                cur.execute("select * from cx.cx_key_drivers order by driver_key")
                got = pd.DataFrame(cur.fetchall(), columns=[c.name for c in cur.description])
                cur.execute("select obj_description('cx.cx_key_drivers'::regclass)")
                assert "Key drivers" in cur.fetchone()[0]
        finally:
            con.close()
        for c in ("period_start", "period_end"):  # dates: datetime64 from DuckDB, date objects from psycopg2
            got[c] = pd.to_datetime(got[c])
        pd.testing.assert_frame_equal(got.astype(table.dtypes.to_dict()), table, check_exact=False, rtol=1e-9)
    finally:
        with admin.cursor() as cur:
            cur.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))
        admin.close()
