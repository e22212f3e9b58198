"""Dirt knobs for shapes the pipeline handles (issue 14 items 3/9, issue 15.2): the demo company produces each one,
deterministically for a seed, changing only the files the shape is about, and the answer key counts what the files
hold. Checked against a generation without the knob (same seed), from the files, not from the generator's own
bookkeeping:

* erp_amount_text_rate - sale_order.amount_total drifted to a text column 10 days before the window end; a share
  of the orders created since carry a locale amount ('46,97 EUR', '1.234,56'); the answer key quarantines them;
* ga4_non_utf8_day_rate - one line of an export day with a byte that is not UTF-8 (dead-lettered by the extractor);
* ga4_empty_first_delivery_rate - an export day first delivered as a 0-byte file, re-exported 1-3 days later;
* present-but-unparsable values (issue 15.2), each a record the answer key quarantines with its reason and leaves out
  of the KPIs: ga4_unparsable_value_day_rate (engagement_time_msec '5312.5', event_timestamp in seconds with a
  fraction), ga4_bad_session_engaged_day_rate (session_engaged '(not set)'), erp_bad_integer_rate (customer_rank
  a float column, company partners with 2.5 or an overflowing stamp), hubspot_bad_created_at_rate (ticket createdAt),
  trustpilot_bad_experienced_at_rate.
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


# ------------------------------------------------------------------ present-but-unparsable typed values (issue 15.2)

INT = re.compile(r"^\d+$")


def _changed(clean: Path, dirty: Path) -> set[str]:
    h0, h1 = _hashes(clean), _hashes(dirty)
    return {k for k in h0.keys() | h1.keys() if h0.get(k) != h1.get(k)}


def _unparsable_fields(ev: dict) -> list[str]:
    """The typed values of a GA4 event that do not parse in full, read from the line itself."""
    params = {p["key"]: p["value"] for p in ev["event_params"]}
    bad = []
    if not INT.match(ev["event_timestamp"]):
        bad.append("event_timestamp")
    for key in ("ga_session_id", "ga_session_number", "engagement_time_msec"):
        if key in params and not INT.match(params[key].get("int_value") or "0"):
            bad.append(key)
    se = params.get("session_engaged", {})
    if (se.get("string_value") or se.get("int_value") or "0") not in ("0", "1"):
        bad.append("session_engaged")
    return bad


def test_ga4_unparsable_values_replace_one_event_and_the_key_quarantines_exactly_those(clean, tmp_path):
    """ga4_unparsable_value_day_rate / ga4_bad_session_engaged_day_rate: on the drawn export days one event's line
    carries engagement_time_msec '5312.5', event_timestamp in seconds with a fraction or session_engaged '(not set)';
    nothing else changes. The answer key counts them (from the files) per field as quarantined records and leaves
    them out of the sessions: the window's engagement time loses exactly their milliseconds."""
    dirty = tmp_path / "dirty"
    _gen(dirty, ga4_unparsable_value_day_rate=0.05, ga4_bad_session_engaged_day_rate=0.03)
    changed = _changed(clean, dirty)
    ga4_changed = sorted(k for k in changed if k.startswith("ga4/"))
    assert changed - set(ga4_changed) == {"answer_key.json", "manifest.json"}
    found: Counter = Counter()
    lost_msec = 0
    for name in ga4_changed:
        lines0, lines1 = set((clean / name).read_text().splitlines()), set((dirty / name).read_text().splitlines())
        new = [json.loads(x) for x in lines1 - lines0]
        old = {(e["user_pseudo_id"], e["event_bundle_sequence_id"]): e for e in map(json.loads, lines0 - lines1)}
        assert new and len(new) == len(old), name
        for ev in new:
            bad = _unparsable_fields(ev)
            assert len(bad) == 1 and ev["event_name"] == "user_engagement", (name, bad)
            was = old[(ev["user_pseudo_id"], ev["event_bundle_sequence_id"])]
            assert _unparsable_fields(was) == [], name
            found[f"unparsable_value: {bad[0]}"] += 1
            lost_msec += int({p["key"]: p["value"] for p in was["event_params"]}["engagement_time_msec"]["int_value"])
    assert set(found) == {"unparsable_value: engagement_time_msec", "unparsable_value: event_timestamp",
                          "unparsable_value: session_engaged"}, found
    e0, e1 = _key(clean)["expected"]["ga4.events"], _key(dirty)["expected"]["ga4.events"]
    assert e0["quarantined"] == {} and e1["quarantined"] == dict(found)
    assert e1["records"] == e0["records"], "a quarantined event is a delivered record"
    t0, t1 = _kpi(_key(clean), "avg_engagement_time_msec"), _kpi(_key(dirty), "avg_engagement_time_msec")
    assert t0["numerator"] - t1["numerator"] == lost_msec > 0
    assert _kpi(_key(clean), "sessions")["numerator"] == _kpi(_key(dirty), "sessions")["numerator"]


def _ranks(path: Path) -> tuple[str, dict[int, tuple]]:
    con = sqlite3.connect(path)
    try:
        decl = [r[2] for r in con.execute("pragma table_info(res_partner)") if r[1] == "customer_rank"][0]
        rows = {i: (r, c) for i, r, c in con.execute("select id, customer_rank, is_company from res_partner")}
    finally:
        con.close()
    return decl, rows


def test_erp_integers_with_a_fraction_or_overflowing_int32_are_quarantined_by_the_key(clean, tmp_path):
    """erp_bad_integer_rate: res_partner.customer_rank is a float column and company partners carry 2.5 or an
    overflowing yyyymmddHHMMSS stamp; every other rank is the same number. The key quarantines exactly those
    partners (unparsable_value: customer_rank) and no KPI changes (a company partner names no customer)."""
    dirty = tmp_path / "dirty"
    _gen(dirty, erp_bad_integer_rate=0.3)
    assert _changed(clean, dirty) == {"odoo/odoo.sqlite", "answer_key.json", "manifest.json"}
    decl0, before = _ranks(clean / "odoo/odoo.sqlite")
    decl, after = _ranks(dirty / "odoo/odoo.sqlite")
    assert decl0.lower() == "integer" and decl.lower() == "double precision" and before.keys() == after.keys()
    bad = {i: r for i, (r, _c) in after.items() if r != int(r) or not -2**31 <= r < 2**31}
    assert {i: after[i][1] for i in bad} == {i: 1 for i in bad}, "company partners only"
    assert any(r != int(r) for r in bad.values()) and any(r >= 2**31 for r in bad.values()), bad
    assert all(after[i][0] == before[i][0] for i in after if i not in bad)
    k0, k1 = _key(clean), _key(dirty)
    assert k1["expected"]["odoo.res_partner"] == {
        "records": len(after), "quarantined": {"unparsable_value: customer_rank": len(bad)}, "duplicates": 0}
    assert k1["kpis"] == k0["kpis"]


def _bad_ts(v) -> bool:
    try:
        dt.datetime.fromisoformat(str(v).replace("Z", "+00:00"))
        return False
    except ValueError:
        return True


def test_bad_hubspot_created_at_and_trustpilot_experienced_at_are_quarantined_by_the_key(clean, tmp_path):
    """hubspot_bad_created_at_rate / trustpilot_bad_experienced_at_rate: tickets whose createdAt (only the fallback
    of properties.createdate, which stays good) and Trustpilot reviews whose experiencedAt is not a timestamp. The
    key counts them as bad_timestamp and leaves them out: the window's first-response n loses the replied bad tickets
    created in the window, the review rating n the bad reviews created in it."""
    dirty = tmp_path / "dirty"
    _gen(dirty, hubspot_bad_created_at_rate=0.05, trustpilot_bad_experienced_at_rate=0.05)
    assert _changed(clean, dirty) == {"api/hubspot/tickets.jsonl", "api/trustpilot/reviews.jsonl",
                                      "answer_key.json", "manifest.json"}
    start, end = DEFAULT_START.isoformat(), WINDOW_END.isoformat()
    tickets = [json.loads(x) for x in (dirty / "api/hubspot/tickets.jsonl").read_text().splitlines()]
    bad_t = [t for t in tickets if _bad_ts(t["createdAt"])]
    assert bad_t and not any(_bad_ts(t["properties"]["createdate"]) for t in bad_t)
    reviews = [json.loads(x)["review"] for x in (dirty / "api/trustpilot/reviews.jsonl").read_text().splitlines()]
    bad_r = [r for r in reviews if _bad_ts(r["experiencedAt"])]
    assert bad_r and all(r.get("id") for r in bad_r)
    k0, k1 = _key(clean), _key(dirty)
    assert k1["expected"]["hubspot.tickets"]["quarantined"] == {"bad_timestamp": len(bad_t)}
    q0 = k0["expected"]["trustpilot.reviews"]["quarantined"]
    assert k1["expected"]["trustpilot.reviews"]["quarantined"] == {**q0, "bad_timestamp": len(bad_r)}
    replied = sum(1 for t in bad_t if t["properties"]["first_agent_reply_date"]
                  and start <= t["properties"]["createdate"][:10] < end)
    assert replied and _kpi(k0, "first_response_median_h")["n"] - _kpi(k1, "first_response_median_h")["n"] == replied
    in_window = sum(1 for r in bad_r if start <= r["createdAt"][:10] < end)
    assert _kpi(k0, "review_rating_avg")["n"] - _kpi(k1, "review_rating_avg")["n"] == in_window


@pytest.mark.parametrize("backend", ["postgresql", "mariadb"])
def test_the_float_customer_rank_keeps_its_values_in_postgresql_and_mariadb(tmp_path, backend):
    """load_into takes the customer_rank drift from the SQLite file: a float column holding 2.5 and the overflowing
    stamp exactly (not an integer column that would refuse or wrap them)."""
    import sqlalchemy as sa

    from demo_company.erp import load_into
    dirty = tmp_path / "dirty"
    _gen(dirty, erp_bad_integer_rate=0.3)
    _decl, rows = _ranks(dirty / "odoo/odoo.sqlite")
    admin_url = (os.environ.get("CXW_PG_ADMIN_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")
                 if backend == "postgresql" else
                 os.environ.get("CXW_MARIADB_ADMIN_URL", "mysql+pymysql://root@127.0.0.1:3306/"))
    try:
        admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3})
        admin.connect().close()
    except Exception as exc:  # noqa: BLE001 - any connection failure means "no server"
        if REQUIRE_SERVICES:
            pytest.fail(f"{backend} unreachable: {exc}")
        pytest.skip(f"{backend} unreachable: {exc.__class__.__name__}")
    db = f"cxw_demo_rank_{uuid.uuid4().hex[:10]}"
    q = '"' if backend == "postgresql" else "`"
    with admin.connect() as c:
        c.execute(sa.text(f"create database {q}{db}{q}"))
    url = (admin_url.rsplit("/", 1)[0] + f"/{db}") if backend == "postgresql" else \
        admin_url.rstrip("/") + f"/{db}?charset=utf8mb4"
    try:
        load_into(url, str(dirty / "odoo/odoo.sqlite"))
        engine = sa.create_engine(url)
        try:
            with engine.connect() as c:
                typ = c.execute(sa.text("select data_type from information_schema.columns where "
                                        "table_name = 'res_partner' and column_name = 'customer_rank'"
                                        + (" and table_schema = database()" if backend == "mariadb" else ""))).scalar()
                got = dict(c.execute(sa.text("select id, customer_rank from res_partner")).all())
        finally:
            engine.dispose()
    finally:
        with admin.connect() as c:
            force = " with (force)" if backend == "postgresql" else ""
            c.execute(sa.text(f"drop database if exists {q}{db}{q}{force}"))
        admin.dispose()
    assert typ in ("double precision", "double")
    assert got == {i: r for i, (r, _c) in rows.items()}
    assert any(r != int(r) for r in got.values()) and any(r >= 2**31 for r in got.values())
