"""Dirt knobs for shapes the pipeline handles (issue 14 items 3/9, issue 15.2): the demo company produces each one,
deterministically for a seed, changing only the files the shape is about, and the answer key counts what the files
hold. Checked against a generation without the knob (same seed), from the files, not from the generator's own
bookkeeping:

* erp_amount_text_rate - sale_order.amount_total drifted to a text column 10 days before the window end; a share
  of the orders created since carry a locale amount ('46,97 EUR', '1.234,56'); the answer key quarantines them;
* ga4_non_utf8_day_rate - one line of an export day with a byte that is not UTF-8 (dead-lettered by the extractor);
* ga4_empty_first_delivery_rate - an export day first delivered as a 0-byte file, re-exported 1-3 days later.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import sqlite3
import uuid
from collections import Counter
from pathlib import Path

import pytest

from demo_company import generate
from demo_company.config import DEFAULT_DAYS, DEFAULT_START, scaled_dirt
from demo_company.ga4 import empty_delivery_schedule
from demo_company.util import date_to_us, us_to_dt

SEED = 42
WINDOW_END = DEFAULT_START + dt.timedelta(days=DEFAULT_DAYS)
LOCALE = re.compile(r"^\d{1,3}(\.\d{3})*,\d{2}( EUR)?$")       # '46,97 EUR', '1.234,56'
C_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")  # the extractor's strict float
REQUIRE_SERVICES = os.environ.get("CXW_REQUIRE_SERVICES") == "1"


def _gen(out: Path, as_of: str | None = None, **dirt) -> dict:
    return generate(out, scale="XS", seed=SEED, as_of=as_of, workers=2, dirt=dirt or None)


def _hashes(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _key(root: Path) -> dict:
    return json.loads((root / "answer_key.json").read_text())


def _kpi(key: dict, kpi: str, grain: str = "window", period: str | None = None) -> dict | None:
    for r in key["kpis"]:
        if r["kpi"] == kpi and r["grain"] == grain and (period is None or r["period_start"] == period):
            return r
    return None


@pytest.fixture(scope="module")
def clean(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("clean")
    _gen(out)
    return out


def test_the_knobs_are_deterministic_for_a_seed(tmp_path):
    dirt = {"erp_amount_text_rate": 0.5, "ga4_non_utf8_day_rate": 0.05, "ga4_empty_first_delivery_rate": 0.05}
    a = _gen(tmp_path / "a", as_of="2025-06-20", **dirt)
    b = generate(tmp_path / "b", scale="XS", seed=SEED, as_of="2025-06-20", workers=1, dirt=dirt)
    assert a == b and _hashes(tmp_path / "a") == _hashes(tmp_path / "b")
    mtimes = [{p.name: p.stat().st_mtime_ns for p in (tmp_path / x / "ga4").iterdir()} for x in ("a", "b")]
    assert mtimes[0] == mtimes[1]
    assert a["ga4_empty_at_as_of"], "seed 42 has an export day empty on 2025-06-20 at rate 0.05"


# ------------------------------------------------------------------ ERP: amount_total drifted to text

def _orders(path: Path) -> tuple[str, dict[int, tuple]]:
    con = sqlite3.connect(path)
    try:
        decl = [r[2] for r in con.execute("pragma table_info(sale_order)") if r[1] == "amount_total"][0]
        rows = {i: (v, t, s, u, c) for i, v, t, s, u, c in con.execute(
            "select id, amount_total, typeof(amount_total), state, amount_untaxed, create_date from sale_order")}
    finally:
        con.close()
    return decl, rows


def test_erp_amount_total_drifts_to_text_with_locale_amounts_and_the_key_quarantines_those_orders(clean, tmp_path):
    drift = tmp_path / "drift"
    _gen(drift, erp_amount_text_rate=0.5)
    changed = sorted(k for k, h in _hashes(clean).items() if _hashes(drift).get(k) != h)
    assert set(changed) == {"odoo/odoo.sqlite", "answer_key.json", "manifest.json"}, changed

    decl0, before = _orders(clean / "odoo/odoo.sqlite")
    decl, after = _orders(drift / "odoo/odoo.sqlite")
    assert decl0 == "numeric" and decl == "varchar"                     # the source column's type changed
    assert before.keys() == after.keys()
    text = {i for i, (v, *_r) in after.items() if LOCALE.match(str(v))}
    drift_from = (WINDOW_END - dt.timedelta(days=10)).isoformat()
    assert text and all(after[i][4] >= drift_from for i in text), "locale amounts only since the drift"
    assert len(text) == 6, "seed 42 XS, rate 0.5: 6 of the orders created in the last 10 days"
    for i, (v, typ, *_r) in after.items():
        want = before[i][0]
        if i in text:   # the same amount, written by a de/fr-locale connector
            assert float(v.removesuffix(" EUR").replace(".", "").replace(",", ".")) == pytest.approx(want, abs=1e-9)
        else:           # every other amount is text that parses strictly as the same number
            assert typ == "text" and C_NUMBER.match(v) and float(v) == pytest.approx(want, abs=1e-9), (i, v)

    key0, key = _key(clean), _key(drift)
    assert key["expected"]["odoo.sale_order"] == {
        "records": len(after), "quarantined": {"unparsable_value: amount_total": len(text)}, "duplicates": 0}
    # quarantined orders are no orders of the KPIs: the window's orders and revenue lose exactly the confirmed ones
    confirmed = [i for i in text if after[i][2] == "sale"]
    assert confirmed, "seed 42 XS: a quarantined order is confirmed, so the KPIs change"
    assert _kpi(key0, "orders")["numerator"] - _kpi(key, "orders")["numerator"] == len(confirmed)
    assert _kpi(key0, "net_revenue")["numerator"] - _kpi(key, "net_revenue")["numerator"] == \
        pytest.approx(sum(after[i][3] for i in confirmed), abs=0.005)
    assert key0["expected"]["odoo.sale_order_line"] == key["expected"]["odoo.sale_order_line"]


def test_before_the_drift_the_column_is_numeric_and_nothing_is_quarantined(tmp_path):
    early = tmp_path / "early"
    _gen(early, as_of=(WINDOW_END - dt.timedelta(days=15)).isoformat(), erp_amount_text_rate=0.5)
    decl, rows = _orders(early / "odoo/odoo.sqlite")
    assert decl == "numeric" and {t for _v, t, *_r in rows.values()} <= {"real", "integer"}
    assert _key(early)["expected"]["odoo.sale_order"]["quarantined"] == {}


@pytest.mark.parametrize("backend", ["postgresql", "mariadb"])
def test_the_drifted_column_is_text_in_postgresql_and_mariadb(tmp_path, backend):
    """load_into takes the drift from the SQLite file: the target's amount_total is a text column holding the
    values exactly as the SQLite file has them (so the Odoo extractor meets the same strings there)."""
    import sqlalchemy as sa

    from demo_company.erp import load_into
    drift = tmp_path / "drift"
    _gen(drift, erp_amount_text_rate=0.5)
    _decl, rows = _orders(drift / "odoo/odoo.sqlite")
    if backend == "postgresql":
        admin_url = os.environ.get("CXW_PG_ADMIN_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")
    else:
        admin_url = os.environ.get("CXW_MARIADB_ADMIN_URL", "mysql+pymysql://root@127.0.0.1:3306/")
    try:
        admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3})
        admin.connect().close()
    except Exception as exc:  # noqa: BLE001 - any connection failure means "no server"
        if REQUIRE_SERVICES:
            pytest.fail(f"{backend} unreachable: {exc}")
        pytest.skip(f"{backend} unreachable: {exc.__class__.__name__}")
    db = f"cxw_demo_drift_{uuid.uuid4().hex[:10]}"
    q = '"' if backend == "postgresql" else "`"
    with admin.connect() as c:
        c.execute(sa.text(f"create database {q}{db}{q}"))
    url = (admin_url.rsplit("/", 1)[0] + f"/{db}") if backend == "postgresql" else \
        admin_url.rstrip("/") + f"/{db}?charset=utf8mb4"
    try:
        load_into(url, str(drift / "odoo/odoo.sqlite"))
        engine = sa.create_engine(url)
        try:
            with engine.connect() as c:
                typ = c.execute(sa.text("select data_type from information_schema.columns where "
                                        "table_name = 'sale_order' and column_name = 'amount_total'"
                                        + (" and table_schema = database()" if backend == "mariadb" else ""))).scalar()
                got = dict(c.execute(sa.text("select id, amount_total from sale_order")).all())
                untaxed = c.execute(sa.text("select data_type from information_schema.columns where "
                                            "table_name = 'sale_order' and column_name = 'amount_untaxed'"
                                            + (" and table_schema = database()" if backend == "mariadb" else ""))
                                    ).scalar()
        finally:
            engine.dispose()
    finally:
        with admin.connect() as c:
            force = " with (force)" if backend == "postgresql" else ""
            c.execute(sa.text(f"drop database if exists {q}{db}{q}{force}"))
        admin.dispose()
    assert typ in ("character varying", "varchar") and untaxed in ("numeric", "decimal")
    assert got == {i: v for i, (v, *_r) in rows.items()}


# ------------------------------------------------------------------ GA4: a line that is not UTF-8

def test_a_non_utf8_line_is_the_only_change_and_the_key_leaves_that_event_out(clean, tmp_path):
    dirty = tmp_path / "dirty"
    _gen(dirty, ga4_non_utf8_day_rate=0.05)
    h0, h1 = _hashes(clean), _hashes(dirty)
    changed = sorted(k for k in h0 if h1.get(k) != h0[k])
    ga4_changed = [k for k in changed if k.startswith("ga4/")]
    assert set(changed) - set(ga4_changed) == {"answer_key.json", "manifest.json"}
    bad_msec = 0
    for name in ga4_changed:
        lines0 = (clean / name).read_bytes().splitlines()
        lines1 = (dirty / name).read_bytes().splitlines()
        bad = []
        for raw in lines1:
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError:
                bad.append(raw)
        assert len(bad) == 1, name
        fixed = bad[0].replace(b'"city": "\xe9', b'"city": "', 1)
        assert fixed in lines0 and fixed not in lines1, name
        # the file is the clean one with that line (and any exact copy of it) replaced by the non-UTF-8 one
        assert Counter(lines1) == Counter([x for x in lines0 if x != fixed] + bad), name
        ev = json.loads(bad[0].decode("latin-1"))
        assert ev["event_name"] == "user_engagement"
        bad_msec += int({p["key"]: p["value"] for p in ev["event_params"]}["engagement_time_msec"]["int_value"])
    assert len(ga4_changed) == 9, "seed 42 XS, rate 0.05: 9 export days with such a line"
    e0, e1 = _key(clean)["expected"]["ga4.events"], _key(dirty)["expected"]["ga4.events"]
    assert e1["dead_lettered"] == len(ga4_changed) and e0["dead_lettered"] == 0
    assert e0["records"] - e1["records"] == len(ga4_changed)
    # the event counts in no session: the window's engagement time loses exactly its milliseconds
    t0, t1 = _kpi(_key(clean), "avg_engagement_time_msec"), _kpi(_key(dirty), "avg_engagement_time_msec")
    assert bad_msec > 0 and t0["numerator"] - t1["numerator"] == bad_msec
    assert _kpi(_key(clean), "sessions")["numerator"] == _kpi(_key(dirty), "sessions")["numerator"]


# ------------------------------------------------------------------ GA4: an empty first delivery

def test_an_empty_first_delivery_is_a_0_byte_file_until_the_reexport_brings_the_full_day(tmp_path):
    rate = 0.05
    sched = empty_delivery_schedule(SEED, date_to_us(DEFAULT_START), DEFAULT_DAYS,
                                    scaled_dirt({"ga4_empty_first_delivery_rate": rate}))
    assert len(sched) == 8, "seed 42, rate 0.05: 8 export days first delivered empty"
    ymd, (first, again) = sorted(sched.items())[0]
    day = dt.date(int(ymd[:4]), int(ymd[4:6]), int(ymd[6:]))
    iso = lambda us: us_to_dt(us).strftime("%Y-%m-%dT%H:%M:%SZ")  # noqa: E731
    between, later = iso(first + 3_600_000_000), (day + dt.timedelta(days=8)).isoformat()
    assert first < first + 3_600_000_000 < again
    out = {}
    for label, as_of in (("between", between), ("later", later)):
        for dirt in ("clean", "dirty"):
            root = tmp_path / f"{label}-{dirt}"
            m = _gen(root, as_of, **({"ga4_empty_first_delivery_rate": rate} if dirt == "dirty" else {}))
            out[label, dirt] = (root, m)
    f = f"ga4/events_{ymd}.json"
    root_c, _ = out["between", "clean"]
    root_d, m_d = out["between", "dirty"]
    assert (root_c / f).stat().st_size > 0
    assert (root_d / f).stat().st_size == 0 and (root_d / f).stat().st_mtime_ns == first * 1000
    assert m_d["ga4_empty_at_as_of"] == [ymd]
    # only that day's file changes (the rows a session of the day before wrote after midnight are in it too)
    changed = {k for k, h in _hashes(root_c).items() if _hashes(root_d).get(k) != h and k.startswith("ga4/")}
    assert changed == {f}, changed
    k_c, k_d = _key(root_c), _key(root_d)
    assert _kpi(k_c, "sessions", "day", day.isoformat())["n"] > 0
    assert _kpi(k_d, "sessions", "day", day.isoformat()) is None, "no session of the empty day counts yet"
    # after the re-export: the day's file is the full day and its sessions count as without the knob
    root_c, _ = out["later", "clean"]
    root_d, m_d = out["later", "dirty"]
    assert (root_d / f).read_bytes() == (root_c / f).read_bytes()
    assert (root_d / f).stat().st_mtime_ns == max((root_c / f).stat().st_mtime_ns, again * 1000)
    assert m_d["ga4_empty_at_as_of"] == []
    for kpi in ("sessions", "engagement_rate", "avg_engagement_time_msec"):
        assert _kpi(_key(root_d), kpi, "day", day.isoformat()) == _kpi(_key(root_c), kpi, "day", day.isoformat())
