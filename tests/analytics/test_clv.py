"""Predictive CLV (issue 19 point 4, cxw/analytics/clv.py): the BG/NBD and Gamma-Gamma fits recover the parameters
that simulated the data; on the demo company's orders (the generator's truth written as published-shape marts into a
real DuckDB, read through the contract's reader) the analysis publishes one row per customer and a calibration whose
actual holdout purchases match the orders; too few customers give empty tables of the right shape; two runs are
identical."""

from __future__ import annotations

import datetime as dt

import duckdb
import numpy as np
import pandas as pd
import pytest

from cxw.analytics import AnalysisContext
from cxw.analytics import clv
from cxw.analytics.registry import ANALYSES
from demo_company.config import Scale, scaled_dirt
from demo_company.util import US_PER_DAY
from demo_company.world import build_world

# CDNOW 1/10th sample estimates (Fader, Hardie & Lee 2005): BG/NBD r, alpha, a, b; Gamma-Gamma p, q, gamma
BGNBD_TRUE = (0.243, 4.414, 0.793, 2.426)
GAMMA_GAMMA_TRUE = (6.25, 3.74, 15.44)


def _simulate_bgnbd(params, n: int, rng) -> pd.DataFrame:
    """n customers of BG/NBD with the given parameters, first purchase at 0, observed for T in [26, 52] weeks."""
    r, alpha, a, b = params
    lam = rng.gamma(r, 1 / alpha, size=n)
    drop = rng.beta(a, b, size=n)
    T = rng.uniform(26, 52, size=n)
    x, t_x = np.zeros(n, dtype=int), np.zeros(n)
    for i in range(n):
        t = 0.0
        while True:
            t += rng.exponential(1 / lam[i])
            if t > T[i]:
                break
            x[i] += 1
            t_x[i] = t
            if rng.random() < drop[i]:
                break
    return pd.DataFrame({"x": x, "t_x": t_x, "T": T})


def test_bgnbd_recovers_the_parameters_it_was_simulated_with():
    data = _simulate_bgnbd(BGNBD_TRUE, 6000, np.random.default_rng(7))
    fit = clv.fit_bgnbd(data["x"], data["t_x"], data["T"])
    assert fit.converged
    for got, want in zip(fit.params, BGNBD_TRUE):
        assert got == pytest.approx(want, rel=0.25)
    # the log-likelihood at the estimate is at least that of the true parameters (it is the maximum)
    assert fit.log_likelihood >= float(clv.bgnbd_log_likelihood(BGNBD_TRUE, data["x"], data["t_x"], data["T"]).sum())


def test_bgnbd_expected_purchases_match_simulated_future_purchases():
    """The conditional expectation (FHL eq. 10) against a second simulation of the same customers' next year."""
    rng = np.random.default_rng(11)
    r, alpha, a, b = BGNBD_TRUE
    n, horizon = 4000, 52.0
    lam, drop = rng.gamma(r, 1 / alpha, size=n), rng.beta(a, b, size=n)
    T = np.full(n, 39.0)
    x, t_x, future, alive_at_T = np.zeros(n), np.zeros(n), np.zeros(n), np.ones(n, dtype=bool)
    for i in range(n):
        t, alive = 0.0, True
        while alive:
            t += rng.exponential(1 / lam[i])
            if t > T[i] + horizon:
                break
            if t <= T[i]:
                x[i] += 1
                t_x[i] = t
            else:
                future[i] += 1
            alive = rng.random() >= drop[i]
            alive_at_T[i] = alive_at_T[i] and (alive or t > T[i])
    expected = clv.bgnbd_expected_purchases(BGNBD_TRUE, horizon, x, t_x, T)
    assert expected.sum() == pytest.approx(future.sum(), rel=0.1)
    p_alive = clv.bgnbd_p_alive(BGNBD_TRUE, x, t_x, T)
    assert ((p_alive >= 0) & (p_alive <= 1)).all() and (p_alive[x == 0] == 1).all()
    # P(alive) (FHL eq. 11) is calibrated: among repeat buyers who went quiet early and those who bought late, the
    # sum of the probabilities is the number still alive at T
    for quiet in (t_x < T / 2, t_x >= T / 2):
        group = quiet & (x > 0)
        assert p_alive[group].sum() == pytest.approx(alive_at_T[group].sum(), rel=0.1)


def test_conditional_expectation_matches_the_published_cdnow_example():
    """FHL 2005 section 4: with the CDNOW estimates, a customer with x = 2, t_x = 30.43, T = 38.86 weeks is expected
    to make 1.226 purchases in the next 39 weeks."""
    assert clv.bgnbd_expected_purchases(BGNBD_TRUE, 39, [2], [30.43], [38.86])[0] == pytest.approx(1.226, abs=5e-4)


def test_gamma_gamma_recovers_the_mean_spend_it_was_simulated_with():
    rng = np.random.default_rng(3)
    p, q, g = GAMMA_GAMMA_TRUE
    n = 3000
    x = rng.integers(1, 8, size=n)
    nu = rng.gamma(q, 1 / g, size=n)
    m = np.array([rng.gamma(p, 1 / nu[i], size=x[i]).mean() for i in range(n)])
    fit = clv.fit_gamma_gamma(x, m)
    assert fit.converged
    fp, fq, fg = fit.params
    assert fp == pytest.approx(p, rel=0.15)
    assert fp * fg / (fq - 1) == pytest.approx(p * g / (q - 1), rel=0.1)  # population mean spend
    assert fit.log_likelihood >= float(clv.gamma_gamma_log_likelihood(GAMMA_GAMMA_TRUE, x, m).sum())


# ------------------------------------------------------------------ the demo company's orders through a DuckDB

START, DAYS = dt.date(2024, 1, 1), 730
AS_OF = START + dt.timedelta(days=DAYS - 1)


@pytest.fixture(scope="module")
def demo_orders() -> pd.DataFrame:
    """The demo company's orders (2,000 people - between scales XS and S -, two years) as fct_orders rows: one
    resolved person per generator person, confirmed orders at their confirmation day (≈ 3 s)."""
    world = build_world(42, Scale("clv", 2_000, 0, 0), START, DAYS, scaled_dirt(None, 1.0))
    rows = []
    for o in world.orders:
        confirmed = o.final_state == "sale"
        at = o.confirm_us if confirmed else o.create_us
        day = dt.date(1970, 1, 1) + dt.timedelta(days=at // US_PER_DAY)
        rows.append((f"order-{o.oid}", f"person-{o.pid:05d}", confirmed, day, o.untaxed / 100))
    return pd.DataFrame(rows, columns=["order_id", "person_sk", "is_confirmed", "order_date", "amount_untaxed"])


@pytest.fixture(scope="module")
def demo_db(demo_orders, tmp_path_factory):
    path = tmp_path_factory.mktemp("clv") / "build.duckdb"
    con = duckdb.connect(str(path))
    con.execute("create schema core")
    orders = demo_orders.copy()
    # rows the analysis must leave out: a company partner's orders and orders of the unknown person
    extra = pd.DataFrame([("order-c1", "company-1", True, START, 500.0), ("order-c2", "company-1", True, AS_OF, 70.0),
                          ("order-u1", "-1", True, START, 40.0), ("order-u2", "-1", True, AS_OF, 40.0)],
                         columns=orders.columns)
    orders = pd.concat([orders, extra], ignore_index=True)
    customers = pd.DataFrame({"person_sk": sorted(set(orders["person_sk"]) - {"-1"})})
    customers["is_company"] = customers["person_sk"].str.startswith("company-")
    con.register("o", orders)
    con.register("c", customers)
    con.execute("create table core.fct_orders as select order_id, person_sk, is_confirmed, "
                "cast(order_date as date) as order_date, cast(amount_untaxed as decimal(18, 2)) as amount_untaxed "
                "from o")
    con.execute("create table core.dim_customers as select * from c")
    con.close()
    return path


def _run(db_path, as_of=AS_OF, seed=0):
    con = duckdb.connect(str(db_path), read_only=True)
    try:
        ctx = AnalysisContext(as_of=as_of, seed=seed, relation=lambda name: f"core.{name}")
        return clv.ANALYSIS.run(lambda sql: con.execute(sql).df(), ctx)
    finally:
        con.close()


@pytest.fixture(scope="module")
def demo_result(demo_db):
    return _run(demo_db)


def test_clv_is_registered_with_its_two_tables():
    assert clv.ANALYSIS in ANALYSES
    assert clv.ANALYSIS.outputs == ("cx_customer_clv_predicted", "cx_clv_calibration")


def test_one_prediction_per_customer_of_the_demo_company(demo_result, demo_orders):
    pred = demo_result["cx_customer_clv_predicted"]
    confirmed = demo_orders[demo_orders["is_confirmed"] & (demo_orders["order_date"] <= AS_OF)]
    assert sorted(pred["person_sk"]) == sorted(set(confirmed["person_sk"]))
    assert pred["person_sk"].is_unique
    assert pred["p_alive"].between(0, 1).all()
    for col in ("expected_purchases_12m", "expected_average_value", "expected_value_12m", "monetary"):
        assert (pred[col] >= 0).all() and pred[col].notna().all(), col
    assert (pred["model_fit_date"] == pd.Timestamp(AS_OF)).all()
    # frequency = purchase days - 1, independently from the orders
    days = confirmed.groupby("person_sk")["order_date"].nunique() - 1
    assert pred.set_index("person_sk")["frequency"].sort_index().tolist() == days.sort_index().tolist()
    assert (pred["expected_value_12m"] > 0).any()


def test_calibration_counts_the_holdout_purchases_of_the_demo_company(demo_result, demo_orders):
    cal = demo_result["cx_clv_calibration"].set_index("frequency_bucket")
    assert list(cal.index) == [*clv.FREQUENCY_BUCKETS, "all"][:len(cal) - 1] + ["all"]
    row = cal.loc["all"]
    cutoff = row["calibration_cutoff"].date()
    confirmed = demo_orders[demo_orders["is_confirmed"]]
    history_days = (AS_OF - confirmed["order_date"].min()).days
    assert row["holdout_days"] == min(365, history_days // 3)   # a third of the history, at most a year
    assert cutoff == AS_OF - dt.timedelta(days=int(row["holdout_days"]))
    before = set(confirmed.loc[confirmed["order_date"] <= cutoff, "person_sk"])
    held = confirmed[(confirmed["order_date"] > cutoff) & (confirmed["order_date"] <= AS_OF)
                     & confirmed["person_sk"].isin(before)]
    assert row["n_customers"] == len(before)
    assert row["actual_purchases"] == held.drop_duplicates(["person_sk", "order_date"]).shape[0]
    buckets = cal.drop(index="all")
    assert buckets["n_customers"].sum() == row["n_customers"]
    assert buckets["actual_purchases"].sum() == row["actual_purchases"]
    assert buckets["predicted_purchases"].sum() == pytest.approx(row["predicted_purchases"])
    assert row["predicted_to_actual_ratio"] == pytest.approx(row["predicted_purchases"] / row["actual_purchases"])
    assert row["calibration_log_likelihood"] < 0 and row["bgnbd_log_likelihood"] < row["calibration_log_likelihood"]


def test_two_runs_give_identical_tables(demo_db, demo_result):
    again = _run(demo_db, seed=1)   # the seed has no random step to drive: any seed, same tables
    for name in clv.ANALYSIS.outputs:
        pd.testing.assert_frame_equal(demo_result[name], again[name], check_exact=True)
    # a data interval end handed over as an aware datetime (Airflow's) is the same day
    aware = _run(demo_db, as_of=dt.datetime.combine(AS_OF, dt.time(23, 0), tzinfo=dt.timezone.utc))
    for name in clv.ANALYSIS.outputs:
        pd.testing.assert_frame_equal(demo_result[name], aware[name], check_exact=True)


def test_too_few_customers_give_empty_tables_with_the_columns_and_dtypes(demo_db):
    out = _run(demo_db, as_of=START + dt.timedelta(days=3))
    assert set(out) == set(clv.ANALYSIS.outputs)
    for name, columns in ((clv.PREDICTED, clv.PREDICTED_COLUMNS), (clv.CALIBRATION, clv.CALIBRATION_COLUMNS)):
        assert out[name].empty
        assert list(out[name].columns) == list(columns)
        assert {c: str(t) for c, t in out[name].dtypes.items()} == {c: str(pd.Series([], dtype=t).dtype)
                                                                   for c, t in columns.items()}


def test_postgresql_target_gives_the_same_tables_as_duckdb(postgres_available, demo_orders, demo_db, demo_result):
    """The analysis is target-agnostic: the same marts in PostgreSQL (CXW_DBT_TARGET=postgres) give identical
    tables through a psycopg2 reader (dates, numeric amounts and booleans as PostgreSQL returns them)."""
    import os
    import uuid

    import psycopg2
    from psycopg2.extras import execute_values

    from tests.conftest import SERVICES

    host, port = SERVICES["postgres"]
    schema = f"test_clv_{uuid.uuid4().hex[:8]}"
    con = psycopg2.connect(host=host, port=port, dbname="postgres",
                           user=os.environ.get("CXW_TEST_PG_USER", "postgres"),
                           password=os.environ.get("CXW_TEST_PG_PASSWORD", ""))
    con.autocommit = True
    try:
        with con.cursor() as cur:
            cur.execute(f"create schema {schema}")
            src = duckdb.connect(str(demo_db), read_only=True)
            orders = src.execute("select order_id, person_sk, is_confirmed, order_date, amount_untaxed "
                                 "from core.fct_orders").fetchall()
            customers = src.execute("select person_sk, is_company from core.dim_customers").fetchall()
            src.close()
            cur.execute(f"create table {schema}.fct_orders (order_id text, person_sk text, is_confirmed boolean, "
                        "order_date date, amount_untaxed numeric(18, 2))")
            execute_values(cur, f"insert into {schema}.fct_orders values %s", orders)
            cur.execute(f"create table {schema}.dim_customers (person_sk text, is_company boolean)")
            execute_values(cur, f"insert into {schema}.dim_customers values %s", customers)

        def read(sql: str) -> pd.DataFrame:
            with con.cursor() as cur:
                cur.execute(sql)
                return pd.DataFrame(cur.fetchall(), columns=[d[0] for d in cur.description])

        ctx = AnalysisContext(as_of=AS_OF, seed=0, relation=lambda name: f"{schema}.{name}")
        on_postgres = clv.ANALYSIS.run(read, ctx)
    finally:
        with con.cursor() as cur:
            cur.execute(f"drop schema if exists {schema} cascade")
        con.close()
    for name in clv.ANALYSIS.outputs:
        pd.testing.assert_frame_equal(on_postgres[name], demo_result[name], check_exact=True)
