"""GA4 BigQuery-export NDJSON, one file per UTC day, generated in parallel over day chunks.

Each worker builds the sessions that *start* on its day (a session crossing midnight writes its later rows to a
spill file that is appended to the next day's file), writes the rows that arrived by `as_of`, and returns the
session aggregates the answer key needs - so no worker ever holds more than one day of events.

Every file's modification time is its export instant: the arrival of the last row it holds (an unchanged day keeps
its size and mtime when the company is generated again at a later `as_of`, as an untouched export file does).
Re-delivered days (dirt `ga4_redelivery_day_rate`): BigQuery re-exports an OLD day 8-45 days after it ended with
sessions that were missing from the first export (`ga4_redelivery_session_rate` of the day's sessions, at least
one); before the re-export instant those rows have not arrived, from it on they are in the file and its mtime is the
re-export instant (`redelivery_schedule`).
Empty first deliveries (dirt `ga4_empty_first_delivery_rate`, `empty_delivery_schedule`): the day's file is first
exported with no row (0 bytes) one hour after the day ended, and re-exported with all its rows 1-3 days later.
Non-UTF-8 lines (dirt `ga4_non_utf8_day_rate`, `non_utf8_days`): one line of the day carries a Latin-1 byte; the
warehouse dead-letters it, so the session aggregates leave that event out.
Intraday tables (``intraday_delay_h``, off by default): GA4 streams the day into ``events_intraday_YYYYMMDD`` and
writes the daily table ``events_YYYYMMDD`` once the day is complete, ``intraday_delay_h`` hours after it ended, deleting
the intraday table. With the option, a day whose daily table has not landed at `as_of` is written as its intraday
table: the rows that arrived by `as_of` (the same rows the daily table then holds, but not the rows still to arrive,
e.g. late hits), without ``traffic_source`` (not populated in intraday tables, source-formats.md 3.2).
Unparsable values (dirt `ga4_unparsable_value_day_rate`, `ga4_bad_session_engaged_day_rate`, `bad_value_days`): one
event of the day carries a present value that does not parse in full; the warehouse quarantines it (a record, in no
session), so the session aggregates leave that event out.
"""
from __future__ import annotations

import gzip
import json
import multiprocessing as mp
import os
import random
import re
from dataclasses import dataclass

import numpy as np

from . import texts
from .util import US_PER_DAY, US_PER_S, stream, us_to_date, us_to_dt

MIN = 60 * US_PER_S
AVG_EVENTS_PER_SESSION = 8.9
REDELIVERY_DELAY_DAYS = (8, 45)  # an old day is re-exported 8..45 days after it ended (older than any lookback)
GZIP_LEVEL = 1  # compressed exports (scale L): fast to write; L's export is 2.7 GB instead of ≈44 GB

# set in the parent before the pool forks (read-only in the workers)
_G: dict = {}


def _j(s: str) -> str:
    """JSON string literal as `bq extract` writes it (<, >, & escaped)."""
    return json.dumps(s, ensure_ascii=False).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _obj(d) -> str:
    return json.dumps(d, ensure_ascii=False).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


@dataclass
class WebOrder:
    start_us: int        # session start
    confirm_us: int      # purchase event time
    name: str
    partner_id: int
    visitor: int
    country: int
    lines: list          # (code, name, category, price_cents, qty, subtotal_cents)
    untaxed: int
    tax: int


def _pseudo(v: int, ft_us: int, seed: int) -> str:
    return f"{(v * 2654435761 + seed * 40503) % 1_900_000_000 + 100_000_000}.{ft_us // US_PER_S}"


def _page_params(url: str, title: str) -> str:
    return (f'{{"key": "page_location", "value": {{"string_value": {_j(url)}}}}}, '
            f'{{"key": "page_title", "value": {{"string_value": {_j(title)}}}}}')


def _prepare(products) -> dict:
    host = "https://" + texts.DOMAIN
    pages = [_page_params(host + path, title) for path, title in texts.PAGES]
    prod_pages = []
    for pid, _tid, code, name, price, cat in products:
        slug = "-".join(code.lower().split("-")[1:])
        item = (f'{{"item_id": {_j(code)}, "item_name": {_j(name)}, "item_category": {_j(cat)}, '
                f'"price": {price / 100:.2f}')
        prod_pages.append((_page_params(f"{host}/product/{slug}", name), item, price, code, name, cat))
    cart = _page_params(host + "/cart", "Your cart")
    checkout = _page_params(host + "/checkout", "Checkout")
    thanks = _page_params(host + "/checkout/thank-you", "Thank you for your order")
    devices = [(d, w) for d, w in texts.DEVICES]
    dev_strs = [_obj({"category": c, "operating_system": os_, "web_info": {"browser": b, "hostname": texts.DOMAIN}})
                for (c, os_, b), _ in devices]
    traffic = [_obj({"name": n, "medium": m, "source": s}) for (n, m, s), _ in texts.TRAFFIC]
    geo = []
    for c in texts.COUNTRIES:
        geo.append([_obj({"continent": "Asia" if c[0] in ("VN", "SG", "JP") else ("Oceania" if c[0] == "AU" else ("Americas" if c[0] == "US" else "Europe")),
                          "country": c[9], "city": city}) for city in c[6]])
    return {"pages": pages, "prod_pages": prod_pages, "cart": cart, "checkout": checkout, "thanks": thanks,
            "devices": dev_strs, "dev_cum": np.cumsum([w for _, w in devices]) / sum(w for _, w in devices),
            "traffic": traffic, "traffic_cum": np.cumsum([w for _, w in texts.TRAFFIC]) / sum(w for _, w in texts.TRAFFIC),
            "geo": geo, "country_cum": np.cumsum([c[5] for c in texts.COUNTRIES]) / sum(c[5] for c in texts.COUNTRIES)}


def redelivery_schedule(seed: int, start_us: int, n_days: int, dirt: dict) -> dict[str, int]:
    """{YYYYMMDD: re-export instant (epoch us)} of the export days BigQuery re-delivers later. Depends only on the
    seed, the days and the rate (not on as_of, the scale or the workers)."""
    rate = float(dirt.get("ga4_redelivery_day_rate", 0.0))
    out: dict[str, int] = {}
    if rate <= 0:
        return out
    lo, hi = REDELIVERY_DELAY_DAYS
    for d in range(n_days):
        day_us = start_us + d * US_PER_DAY
        u, v = stream(seed, f"ga4-redelivery/{us_to_date(day_us):%Y%m%d}").random(2)
        if u < rate:
            # a whole second, like a job's timestamp
            delay_s = int((lo + v * (hi - lo)) * 86_400)
            out[us_to_date(day_us).strftime("%Y%m%d")] = day_us + US_PER_DAY + delay_s * US_PER_S
    return out


EMPTY_REEXPORT_DELAY_H = (24, 72)   # an empty first delivery is re-exported with its rows 1-3 days later
EMPTY_EXPORT_DELAY_S = 3600         # ... and was itself exported one hour after the day ended


def empty_delivery_schedule(seed: int, start_us: int, n_days: int, dirt: dict) -> dict[str, tuple[int, int]]:
    """{YYYYMMDD: (first export instant, re-export instant)} of the export days whose first delivery is an empty
    (0-byte) file (dirt ga4_empty_first_delivery_rate): the first export comes one hour after the day ended with no
    row, BigQuery re-exports the day with all its rows 1-3 days later. Until the re-export none of the day's rows
    (nor the rows a session crossing midnight into it wrote after midnight) has arrived. Depends only on the seed,
    the days and the rate."""
    rate = float(dirt.get("ga4_empty_first_delivery_rate", 0.0))
    out: dict[str, tuple[int, int]] = {}
    if rate <= 0:
        return out
    lo, hi = EMPTY_REEXPORT_DELAY_H
    for d in range(n_days):
        day_us = start_us + d * US_PER_DAY
        u, v = stream(seed, f"ga4-empty-delivery/{us_to_date(day_us):%Y%m%d}").random(2)
        if u < rate:
            first = day_us + US_PER_DAY + EMPTY_EXPORT_DELAY_S * US_PER_S
            out[us_to_date(day_us).strftime("%Y%m%d")] = (first, first + int((lo + v * (hi - lo)) * 3600) * US_PER_S)
    return out


def non_utf8_days(seed: int, start_us: int, n_days: int, dirt: dict) -> dict[str, float]:
    """{YYYYMMDD: where in the day's session plan (0..1) to look for the event} of the export days with one line
    holding a non-UTF-8 byte (dirt ga4_non_utf8_day_rate). Depends only on the seed, the days and the rate."""
    rate = float(dirt.get("ga4_non_utf8_day_rate", 0.0))
    out: dict[str, float] = {}
    if rate <= 0:
        return out
    for d in range(n_days):
        day_us = start_us + d * US_PER_DAY
        u, v = stream(seed, f"ga4-non-utf8/{us_to_date(day_us):%Y%m%d}").random(2)
        if u < rate:
            out[us_to_date(day_us).strftime("%Y%m%d")] = float(v)
    return out


# The typed values a bad event of dirt ga4_unparsable_value_day_rate / ga4_bad_session_engaged_day_rate carries, and
# the quarantine reason staging gives it (issue 15.2: a present value parses in full or the event is quarantined)
BAD_VALUE_KINDS = ("engagement_time_msec", "event_timestamp")     # ga4_unparsable_value_day_rate, alternately by day
BAD_BOOL_KIND = "session_engaged"                                 # ga4_bad_session_engaged_day_rate
UNPARSABLE_KINDS = BAD_VALUE_KINDS + (BAD_BOOL_KIND,)


def bad_value_days(seed: int, start_us: int, n_days: int, dirt: dict) -> dict[str, list[tuple[str, float]]]:
    """{YYYYMMDD: [(field, where in the day's session plan (0..1) to look for the event)]} of the export days with one
    event whose typed value is present but does not parse: dirt ga4_unparsable_value_day_rate (an int param with a
    fraction, engagement_time_msec '5312.5', or event_timestamp written as epoch seconds with a fraction,
    '1741341600.123456' - a re-export through a tool that handles INT64 as a double) and dirt
    ga4_bad_session_engaged_day_rate (the boolean-like session_engaged with GA4's placeholder string_value
    '(not set)'). Depends only on the seed, the days and the rates."""
    out: dict[str, list[tuple[str, float]]] = {}
    for key, label in (("ga4_unparsable_value_day_rate", "ga4-unparsable-value"),
                       ("ga4_bad_session_engaged_day_rate", "ga4-bad-session-engaged")):
        rate = float(dirt.get(key, 0.0))
        if rate <= 0:
            continue
        for d in range(n_days):
            day_us = start_us + d * US_PER_DAY
            u, v, w = stream(seed, f"{label}/{us_to_date(day_us):%Y%m%d}").random(3)
            if u < rate:
                kind = BAD_BOOL_KIND if key.startswith("ga4_bad_session") else BAD_VALUE_KINDS[int(w * 2) % 2]
                out.setdefault(us_to_date(day_us).strftime("%Y%m%d"), []).append((kind, float(v)))
    return out


def _latin1_city(line: str) -> str:
    """The line with one byte that is not UTF-8: a Latin-1 'é' (0xE9) before the city name, kept as a surrogate
    escape until the file is encoded with errors='surrogateescape'."""
    return line.replace('"city": "', '"city": "\udce9', 1)


def _pick(cum, u) -> int:
    i = int(np.searchsorted(cum, u, side="right"))
    return min(i, len(cum) - 1)


HOUR_W = np.array([1, 0.7, 0.5, 0.4, 0.4, 0.6, 1.2, 2, 2.6, 3, 3.1, 3.2, 3.4, 3.3, 3.1, 3, 3, 3.1, 3.3, 3.6, 3.8, 3.4, 2.6, 1.8])
HOUR_CUM = np.cumsum(HOUR_W) / HOUR_W.sum()


def _day_worker(task):
    day_idx, day_us, orders = task
    g = _G
    seed, as_of, dirt, out_dir = g["seed"], g["as_of"], g["dirt"], g["out_dir"]
    P = g["prep"]
    ft = g["visitor_ft"]
    owner = g["visitor_person"]
    partner_of = g["person_partner"]
    country_of = g["person_country"]
    stream_id = g["stream_id"]
    end_us = g["end_us"]
    day_end = day_us + US_PER_DAY
    ymd = us_to_date(day_us).strftime("%Y%m%d")
    ymd_next = us_to_date(day_end).strftime("%Y%m%d")
    nprng = stream(seed, f"ga4/{ymd}")
    rnd = random.Random(int(nprng.integers(0, 2**62)))
    r = rnd.random

    late_rate = dirt["ga4_late_rate"]
    dup_rate = dirt["ga4_duplicate_rate"]
    int_rate = dirt["ga4_session_engaged_int_rate"]
    ping_rate = dirt["ga4_consent_ping_rate"]
    midnight_rate = dirt["ga4_midnight_session_rate"]
    redeliver_at = g["redeliveries"].get(ymd)       # this day is re-exported then with its held-back sessions
    held_rate = dirt.get("ga4_redelivery_session_rate", 0.0)
    held_rnd = random.Random(int(stream(seed, f"ga4-redelivery-sessions/{ymd}").integers(0, 2**62)))
    held_any = False
    empty_until = g["empty_days"].get(ymd, (0, 0))[1]          # rows of this day arrive with the re-export
    empty_next = g["empty_days"].get(ymd_next, (0, 0))[1]      # ... and those a session writes into the next day
    bad_at = g["non_utf8_days"].get(ymd)                       # a line of this day with a non-UTF-8 byte
    bad_done = bad_at is None
    bad_values = g["bad_value_days"].get(ymd, [])              # events of this day with an unparsable value

    weekday = us_to_date(day_us).weekday()
    rate = g["events_per_day"] / AVG_EVENTS_PER_SESSION * (1.15 if weekday >= 5 else 1.0)
    growth = 0.85 + 0.3 * (day_idx / max(1, g["n_days"]))
    n_sessions = int(nprng.poisson(rate * growth))

    lo = int(np.searchsorted(ft, day_us, side="left"))
    hi = int(np.searchsorted(ft, day_end, side="left"))
    # session plan: (start_us, visitor, kind, order)
    plan = [(int(ft[v]), v, "new", None) for v in range(lo, hi)]
    for o in orders:
        plan.append((o.start_us, o.visitor, "purchase", o))
    n_ret = max(0, n_sessions - len(plan))
    if lo > 0:
        for _ in range(n_ret):
            v = int(r() * lo)
            if r() < midnight_rate:
                start = day_end - int(r() * 8 * MIN) - MIN
            else:
                h = _pick(HOUR_CUM, r())
                start = day_us + h * 3600 * US_PER_S + int(r() * 3600 * US_PER_S)
            plan.append((start, v, "return", None))
    n_pings = int(nprng.poisson(max(0.0, ping_rate * n_sessions)))
    for _ in range(n_pings):
        plan.append((day_us + int(r() * (US_PER_DAY - MIN)), -1, "ping", None))
    plan.sort(key=lambda x: (x[0], x[1], x[2]))

    own: list[str] = []
    spill: list[str] = []
    agg: dict = {}      # visible date -> [sessions, engaged, purchase, atc, atc_no_purchase, eng_msec]
    stats = {"rows": 0, "distinct": 0, "duplicates": 0, "no_session_key": 0, "not_arrived": 0, "late_arrived": 0,
             "redelivered_arrived": 0, "non_utf8_lines": 0, **{f"unparsable:{k}": 0 for k in UNPARSABLE_KINDS}}
    bad_from = None if bad_done else int(bad_at * len(plan))
    value_todo = [(kind, int(pos * len(plan))) for kind, pos in bad_values]   # (field, from plan index), pending
    last_arrival = {"own": 0, "spill": 0}     # the export instant of this day's file / of the spill's rows
    used_keys = set()
    pages, prod_pages = P["pages"], P["prod_pages"]
    n_prod = len(prod_pages)

    for plan_idx, (start, v, kind, order) in enumerate(plan):
        if start >= end_us:
            continue
        if kind == "ping":
            sid = start // US_PER_S
            geo = P["geo"][0][0]
            tail = (f', "privacy_info": {{"analytics_storage": "No", "ads_storage": "No", "uses_transient_token": "Yes"}}, '
                    f'"device": {P["devices"][0]}, "geo": {geo}, "stream_id": "{stream_id}", "platform": "WEB", "items": []')
            evs = [(start, "session_start", "", None, None), (start + int(r() * 5e6), "page_view", pages[int(r() * len(pages))], None, None)]
            with_sid = r() < 0.5
            prefix = f'{{"key": "ga_session_id", "value": {{"int_value": "{sid}"}}}}' if with_sid else ""
            for ts, name, extra, _, _ in evs:
                params = prefix + (", " if prefix and extra else "") + extra
                line = (f'{{"event_date": "{ymd if ts < day_end else ymd_next}", "event_timestamp": "{ts}", "event_name": "{name}", '
                        f'"event_params": [{params}], "event_bundle_sequence_id": "{int(r() * 9e8) + 10**8}"{tail}}}')
                if ts >= end_us or max(ts + MIN, empty_until if ts < day_end else empty_next) > as_of:
                    stats["not_arrived"] += 1
                    continue
                (own if ts < day_end else spill).append(line)
                k = "own" if ts < day_end else "spill"
                last_arrival[k] = max(last_arrival[k], ts + MIN, empty_until if ts < day_end else empty_next)
                stats["rows"] += 1
                stats["distinct"] += 1
                stats["no_session_key"] += 1
            continue

        person = int(owner[v])
        vft = int(ft[v])
        start = max(start, vft)
        sid = start // US_PER_S
        while (v, sid) in used_keys:
            sid += 1
            start = max(start, sid * US_PER_S)
        used_keys.add((v, sid))
        pseudo = _pseudo(v, vft, seed)
        first = kind == "new" and start == vft
        snum = 1 if first else 2 + (start - vft) // (4 * US_PER_DAY)
        if person >= 0:
            country = int(country_of[person])
        else:
            country = _pick(P["country_cum"], (v * 0.6180339887) % 1.0)
        geo_list = P["geo"][country]
        geo = geo_list[v % len(geo_list)]
        dev = P["devices"][_pick(P["dev_cum"], (v * 0.7548776662) % 1.0)]
        trf = P["traffic"][_pick(P["traffic_cum"], (v * 0.5698402910) % 1.0)]
        user_id = ""
        if person >= 0 and partner_of[person] > 0 and (kind == "purchase" or r() < 0.5):
            user_id = f', "user_id": "{int(partner_of[person])}"'
        tail = (f', "user_pseudo_id": "{pseudo}", "user_first_touch_timestamp": "{vft}", "device": {dev}, "geo": {geo}, '
                f'"traffic_source": {trf}, "stream_id": "{stream_id}", "platform": "WEB"')
        sess_prefix = (f'{{"key": "ga_session_id", "value": {{"int_value": "{sid}"}}}}, '
                       f'{{"key": "ga_session_number", "value": {{"int_value": "{snum}"}}}}')
        eng_param = ('{"key": "session_engaged", "value": {"int_value": "1"}}' if r() < int_rate
                     else '{"key": "session_engaged", "value": {"string_value": "1"}}')

        # ---- build the event list: (ts, name, page_params, items, ecommerce, engaged_flag, eng_msec)
        evs = []
        t = start
        if first:
            evs.append((t, "first_visit", "", None, None, False, 0))
            t += 1
        evs.append((t, "session_start", "", None, None, False, 0))
        t += 1
        u = r()
        if kind == "purchase":
            n_pages = 2 + int(r() * 3)
            style = "purchase"
        elif u < 0.36:
            n_pages = 1
            style = "bounce"
        elif u < 0.42:
            n_pages = 1
            style = "long_single"
        else:
            n_pages = 2 + int(r() * 5)
            style = "browse"
        flag_engaged = style in ("browse", "purchase") and r() > 0.05
        landing = pages[int(r() * len(pages))] if r() < 0.5 else prod_pages[int(r() * n_prod)][0]
        evs.append((t, "page_view", landing, None, None, False, 0))
        seen_time = 0
        engaged_now = False
        atc_items = []
        for k in range(1, n_pages):
            dwell = int((4 + r() * 80) * US_PER_S)
            t += dwell
            seen_time += dwell
            engaged_now = flag_engaged and seen_time > 10 * US_PER_S
            evs.append((t, "user_engagement", "", None, None, engaged_now, dwell // 1000))
            t += int(r() * 2 * US_PER_S) + 1000
            pp = prod_pages[int(r() * n_prod)]
            evs.append((t, "page_view", pp[0], None, None, engaged_now, 0))
            item = pp[1] + ', "quantity": "1"}'
            evs.append((t + 300_000, "view_item", pp[0], "[" + item + "]", None, engaged_now, 0))
            t += 300_000
            if (style == "purchase" and (k == 1 or r() < 0.5)) or (style == "browse" and r() < 0.12):
                t += int((2 + r() * 20) * US_PER_S)
                evs.append((t, "add_to_cart", pp[0], "[" + item + "]", None, engaged_now, 0))
                atc_items.append(item)
        if style == "bounce":
            dwell = int(r() * 8 * US_PER_S) + 100_000
            t += dwell
            evs.append((t, "user_engagement", "", None, None, False, dwell // 1000))
        elif style == "long_single":
            dwell = int((15 + r() * 120) * US_PER_S)
            t += dwell
            evs.append((t, "user_engagement", "", None, None, False, dwell // 1000))
        if style == "browse" and atc_items and r() < 0.4:
            t += int((5 + r() * 40) * US_PER_S)
            evs.append((t, "begin_checkout", P["checkout"], "[" + ", ".join(atc_items) + "]", None, engaged_now, 0))
        if style == "purchase":
            o = order
            items = ", ".join(
                f'{{"item_id": {_j(code)}, "item_name": {_j(nm)}, "item_category": {_j(cat)}, "price": {price / 100:.2f}, '
                f'"quantity": "{qty}", "item_revenue": {sub / 100:.2f}}}' for code, nm, cat, price, qty, sub in o.lines)
            t_checkout = max(t + US_PER_S, o.confirm_us - int((20 + r() * 60) * US_PER_S))
            evs.append((t_checkout, "begin_checkout", P["checkout"], "[" + items + "]", None, True, 0))
            total = o.untaxed + o.tax
            ecom = (f'"ecommerce": {{"total_item_quantity": "{sum(l[4] for l in o.lines)}", "purchase_revenue": {total / 100:.2f}, '
                    f'"tax_value": {o.tax / 100:.2f}, "shipping_value": 0.0, "unique_items": "{len(o.lines)}", '
                    f'"transaction_id": {_j(o.name)}}}')
            extra = (P["thanks"] + f', {{"key": "currency", "value": {{"string_value": "USD"}}}}, '
                     f'{{"key": "value", "value": {{"double_value": {total / 100:.2f}}}}}, '
                     f'{{"key": "transaction_id", "value": {{"string_value": {_j(o.name)}}}}}')
            tp = max(o.confirm_us, t_checkout + US_PER_S)
            evs.append((tp, "purchase", extra, "[" + items + "]", ecom, True, 0))
            dwell = int((5 + r() * 30) * US_PER_S)
            evs.append((tp + dwell, "user_engagement", "", None, None, True, dwell // 1000))

        # ---- a re-delivered day: some sessions (never one crossing midnight) are missing from the first export
        # and arrive with the re-export (own random stream: the day's other rows stay byte-identical)
        held = False
        if redeliver_at is not None and evs and evs[-1][0] < day_end:
            held = held_rnd.random() < held_rate or not held_any
            held_any = held_any or held

        # ---- a day with a non-UTF-8 line: the first user_engagement event with engagement time of this day's file,
        # in the first (not held back) session from the drawn point of the plan on; chosen whatever as_of is
        bad_event = -1
        if not bad_done and plan_idx >= bad_from and not held:
            for i, ev in enumerate(evs):
                if ev[1] == "user_engagement" and ev[6] > 0 and ev[0] < min(day_end, end_us):
                    bad_event, bad_done = i, True
                    break

        # ---- a day with an unparsable value: the first user_engagement event with engagement time (another than the
        # non-UTF-8 one) in the first (not held back) session from the drawn point of the plan on
        value_event: dict[int, str] = {}
        for j, (kind, from_idx) in enumerate(value_todo):
            if kind is None or plan_idx < from_idx or held:
                continue
            for i, ev in enumerate(evs):
                if (i != bad_event and i not in value_event and ev[1] == "user_engagement" and ev[6] > 0
                        and ev[0] < min(day_end, end_us) and (kind != "event_timestamp" or ev[0] % US_PER_S)):
                    value_event[i] = kind
                    value_todo[j] = (None, 0)
                    break

        # ---- emit rows and aggregate what is visible at as_of
        first_vis = None
        last_vis = 0
        v_engaged = False
        v_pv = 0
        v_purchase = False
        v_atc = False
        v_msec = 0
        login_at = 2 if user_id else 10**9
        for i, (ts, name, extra, items, ecom, engaged, msec) in enumerate(evs):
            if ts >= end_us:
                break
            bad_kind = value_event.get(i)
            params = sess_prefix
            if bad_kind == BAD_BOOL_KIND:
                params += ', {"key": "session_engaged", "value": {"string_value": "(not set)"}}'
            elif engaged:
                params += ", " + eng_param
            if extra:
                params += ", " + extra
            if msec:
                msec_s = f"{msec}.5" if bad_kind == "engagement_time_msec" else str(msec)
                params += f', {{"key": "engagement_time_msec", "value": {{"int_value": "{msec_s}"}}}}'
            ts_s = f"{ts // US_PER_S}.{ts % US_PER_S:06d}" if bad_kind == "event_timestamp" else str(ts)
            line = (f'{{"event_date": "{ymd if ts < day_end else ymd_next}", "event_timestamp": "{ts_s}", '
                    f'"event_name": "{name}", "event_params": [{params}], '
                    f'"event_bundle_sequence_id": "{int(r() * 9e8) + 10**8}"{tail}'
                    + (f", {ecom}" if ecom else "")
                    + f', "items": {items or "[]"}' + (user_id if i >= login_at else "") + "}")
            arrival = ts + int(r() * 90 * US_PER_S)
            is_late = r() < late_rate
            if is_late:
                arrival = ts + int((3 + r() * 69) * 3600 * US_PER_S)
            if held:
                arrival, is_late = redeliver_at, False
            wait = empty_until if ts < day_end else empty_next
            waited = bool(wait) and arrival < wait
            if waited:                            # the day's first delivery was empty: it arrives re-exported
                arrival, is_late = wait, False
            if arrival > as_of:
                stats["not_arrived"] += 1
                if held or waited:
                    r()  # the duplicate draw an arrived row makes: the day's other rows do not depend on as_of
                continue
            if is_late:
                stats["late_arrived"] += 1
            target = own if ts < day_end else spill
            k = "own" if ts < day_end else "spill"
            last_arrival[k] = max(last_arrival[k], arrival)
            if i == bad_event:
                # written with a byte that is not UTF-8: the warehouse dead-letters it, so it counts nowhere
                # (the duplicate draw is made, no copy written: one line, one dead letter)
                target.append(_latin1_city(line))
                stats["non_utf8_lines"] += 1
                r()
                continue
            if bad_kind:
                # a record the warehouse quarantines (unparsable_value: <field>): delivered, in no session (the
                # duplicate draw is made, no copy written)
                target.append(line)
                stats["rows"] += 1
                stats["distinct"] += 1
                stats[f"unparsable:{bad_kind}"] += 1
                r()
                continue
            if held:
                stats["redelivered_arrived"] += 1
            target.append(line)
            stats["rows"] += 1
            stats["distinct"] += 1
            if r() < dup_rate:
                target.append(line)
                stats["rows"] += 1
                stats["duplicates"] += 1
                if held:
                    stats["redelivered_arrived"] += 1
            if first_vis is None or ts < first_vis:
                first_vis = ts
            last_vis = max(last_vis, ts)
            v_engaged = v_engaged or engaged
            if name == "page_view":
                v_pv += 1
            elif name == "purchase":
                v_purchase = True
            elif name == "add_to_cart":
                v_atc = True
            v_msec += msec
        if first_vis is None:
            continue
        is_eng = v_engaged or (last_vis - first_vis) > 10 * US_PER_S or v_pv >= 2 or v_purchase
        d = us_to_date(first_vis).isoformat()
        a = agg.get(d)
        if a is None:
            a = agg[d] = [0, 0, 0, 0, 0, 0]
        a[0] += 1
        a[1] += int(is_eng)
        a[2] += int(v_purchase)
        a[3] += int(v_atc)
        a[4] += int(v_atc and not v_purchase)
        a[5] += v_msec

    if own:
        data = ("\n".join(own) + "\n").encode("utf-8", "surrogateescape")
        if g.get("gzip"):  # a compressed export (bq extract --compression GZIP): events_YYYYMMDD.json.gz
            with open(os.path.join(out_dir, f"events_{ymd}.json.gz"), "wb") as fh:
                fh.write(gzip.compress(data, compresslevel=GZIP_LEVEL, mtime=0))
        else:
            with open(os.path.join(out_dir, f"events_{ymd}.json"), "wb") as fh:
                fh.write(data)
    if spill and day_end < end_us:
        with open(os.path.join(out_dir, f".spill_{ymd_next}.part"), "w", encoding="utf-8") as fh:
            fh.write("\n".join(spill) + "\n")
    elif spill:
        stats["rows"] -= len(spill)
    return day_idx, agg, stats, last_arrival


def _count_lines(path: str) -> int:
    n = 0
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as fh:
        while True:
            chunk = fh.read(1 << 24)
            if not chunk:
                return n
            n += chunk.count(b"\n")


def generate_ga4(world, out_dir: str, as_of: int, workers: int | None = None, compress: bool = False,
                 first_day_us: int | None = None, intraday_delay_h: float | None = None) -> dict:
    """Write ga4/events_YYYYMMDD.json (``compress``: events_YYYYMMDD.json.gz, gzip members, as a GZIP
    `bq extract` writes); return {'sessions_by_day': {...}, 'stats': {...}, 'files': {...}}.
    ``first_day_us``: the first exported day (00:00 UTC; default the window start) - no file, no session before it."""
    os.makedirs(out_dir, exist_ok=True)
    n_days = (world.end_us - world.start_us) // US_PER_DAY
    orng = stream(world.seed, "ga4-orders")
    by_day: dict[int, list] = {}
    products = {p[0]: p for p in world.products}
    for o in world.orders:
        if o.team != 1 or o.final_state != "sale":
            continue
        p = world.persons[o.pid]
        start = max(o.confirm_us - int(orng.integers(3, 25)) * 60 * US_PER_S, int(world.visitor_first_touch[p.visitor]))
        lines = [(products[l.product_id][2], products[l.product_id][3], products[l.product_id][5], l.price_cents, l.qty,
                  l.subtotal)
                 for l in o.lines if l.display_type is None]
        wo = WebOrder(start, o.confirm_us, o.name, p.partner_id, p.visitor, p.country, lines, o.untaxed, o.tax)
        by_day.setdefault((start - world.start_us) // US_PER_DAY, []).append(wo)
    from .config import DEFAULT_DAYS, SCALES
    redeliveries = redelivery_schedule(world.seed, world.start_us, n_days, world.dirt)
    empty_days = empty_delivery_schedule(world.seed, world.start_us, n_days, world.dirt)
    _G.clear()
    _G.update({
        "seed": world.seed, "as_of": as_of, "dirt": world.dirt, "out_dir": out_dir, "prep": _prepare(world.products),
        "visitor_ft": world.visitor_first_touch, "visitor_person": world.visitor_person,
        "person_partner": np.array([p.partner_id for p in world.persons], dtype=np.int64),
        "person_country": np.array([p.country for p in world.persons], dtype=np.int64),
        "stream_id": world.ids["ga4"]["stream_id"], "end_us": world.end_us, "n_days": n_days,
        "events_per_day": SCALES[world.scale].ga4_events / DEFAULT_DAYS, "gzip": bool(compress),
        "redeliveries": redeliveries, "empty_days": empty_days,
        "non_utf8_days": non_utf8_days(world.seed, world.start_us, n_days, world.dirt),
        "bad_value_days": bad_value_days(world.seed, world.start_us, n_days, world.dirt),
    })
    first_day_us = world.start_us if first_day_us is None else first_day_us
    tasks = [(d, world.start_us + d * US_PER_DAY, by_day.get(d, [])) for d in range(n_days)
             if first_day_us <= world.start_us + d * US_PER_DAY <= as_of]
    workers = workers or min(len(tasks), os.cpu_count() or 1) or 1
    results = []
    if workers > 1 and len(tasks) > 1:
        ctx = mp.get_context("fork")
        with ctx.Pool(workers) as pool:
            results = list(pool.imap_unordered(_day_worker, tasks, chunksize=1))
    else:
        results = [_day_worker(t) for t in tasks]
    _G.clear()
    results.sort(key=lambda x: x[0])
    # append each day's spill (sessions that crossed midnight) to the next day's file, in day order
    for name in sorted(os.listdir(out_dir)):
        if name.startswith(".spill_"):
            ymd = name[len(".spill_"):-len(".part")]
            target = f"events_{ymd}.json" + (".gz" if compress else "")
            with open(os.path.join(out_dir, name), "rb") as src, open(os.path.join(out_dir, target), "ab") as dst:
                # a gzip file may hold several members: the spill is one more, read as one stream
                dst.write(gzip.compress(src.read(), compresslevel=GZIP_LEVEL, mtime=0) if compress else src.read())
            os.remove(os.path.join(out_dir, name))
    # every file's mtime = its export instant: the arrival of the last row it holds (its own rows and the spill of
    # the day before), so regenerating at a later as_of leaves an unchanged day with an unchanged size and mtime
    exported: dict[str, int] = {}
    for day_idx, _agg, _st, last in results:
        day_us = world.start_us + day_idx * US_PER_DAY
        for ymd, at in ((us_to_date(day_us).strftime("%Y%m%d"), last["own"]),
                        (us_to_date(day_us + US_PER_DAY).strftime("%Y%m%d"), last["spill"])):
            if at:
                exported[ymd] = max(exported.get(ymd, 0), at)
    # a day whose first delivery was empty and not yet re-exported at as_of: a 0-byte file, mtime its export
    exported_days = {us_to_date(world.start_us + d * US_PER_DAY).strftime("%Y%m%d") for d, _a, _s, _l in results}
    empty_now = {}
    for ymd, (first_at, again_at) in empty_days.items():
        if ymd in exported_days and first_at <= as_of < again_at:
            path = os.path.join(out_dir, f"events_{ymd}.json" + (".gz" if compress else ""))
            open(path, "wb").close()
            exported[ymd] = first_at
            empty_now[ymd] = us_to_dt(again_at).strftime("%Y-%m-%dT%H:%M:%SZ")
    for ymd, at in exported.items():
        path = os.path.join(out_dir, f"events_{ymd}.json" + (".gz" if compress else ""))
        if os.path.exists(path):
            os.utime(path, ns=(at * 1000, at * 1000))
    intraday = _to_intraday(world, out_dir, as_of, intraday_delay_h, compress) if intraday_delay_h is not None else []
    sessions_by_day: dict = {}
    stats = {"rows": 0, "distinct": 0, "duplicates": 0, "no_session_key": 0, "not_arrived": 0, "late_arrived": 0,
             "redelivered_arrived": 0, "non_utf8_lines": 0, **{f"unparsable:{k}": 0 for k in UNPARSABLE_KINDS}}
    for _, agg, st, _last in results:
        for k in stats:
            stats[k] += st[k]
        for d, a in agg.items():
            cur = sessions_by_day.setdefault(d, [0, 0, 0, 0, 0, 0])
            for i in range(6):
                cur[i] += a[i]
    names = sorted(n for n in os.listdir(out_dir) if n.startswith("events_"))
    paths = [os.path.join(out_dir, n) for n in names]
    if compress and workers > 1 and len(paths) > 1:
        with mp.get_context("fork").Pool(workers) as pool:
            counts = pool.map(_count_lines, paths, chunksize=4)
    else:
        counts = [_count_lines(x) for x in paths]
    files = dict(zip(names, counts))
    stats["rows"] = sum(files.values())
    redelivered = {ymd: us_to_dt(at).strftime("%Y-%m-%dT%H:%M:%SZ") for ymd, at in sorted(redeliveries.items())}
    empties = {ymd: {"empty_export": us_to_dt(a).strftime("%Y-%m-%dT%H:%M:%SZ"),
                     "reexport": us_to_dt(b).strftime("%Y-%m-%dT%H:%M:%SZ")} for ymd, (a, b) in sorted(empty_days.items())}
    return {"sessions_by_day": dict(sorted(sessions_by_day.items())), "stats": stats, "files": files,
            "redeliveries": redelivered, "empty_first_deliveries": empties, "empty_at_as_of": sorted(empty_now),
            "intraday_at_as_of": intraday}


TRAFFIC_SOURCE_RE = re.compile(rb', "traffic_source": \{[^{}]*\}')   # the field as _day_worker writes it


def _to_intraday(world, out_dir: str, as_of: int, delay_h: float, compress: bool) -> list[str]:
    """Days whose daily table lands after `as_of` (day end + ``delay_h`` hours): their file becomes the intraday
    table ``events_intraday_YYYYMMDD`` (same rows, no ``traffic_source``, same mtime). Returns those days."""
    out = []
    suffix = ".json" + (".gz" if compress else "")
    for name in sorted(os.listdir(out_dir)):
        if not (name.startswith("events_") and name.endswith(suffix)) or name.startswith("events_intraday_"):
            continue
        ymd = name[len("events_"):len("events_") + 8]
        day_end = us_to_dt_date_us(ymd) + US_PER_DAY
        if day_end + int(delay_h * 3600 * US_PER_S) <= as_of:
            continue
        src = os.path.join(out_dir, name)
        st = os.stat(src)
        opener = gzip.open if compress else open
        with opener(src, "rb") as fh:
            data = TRAFFIC_SOURCE_RE.sub(b"", fh.read())
        dst = os.path.join(out_dir, f"events_intraday_{ymd}{suffix}")
        with open(dst, "wb") as fh:
            fh.write(gzip.compress(data, compresslevel=GZIP_LEVEL, mtime=0) if compress else data)
        os.utime(dst, ns=(st.st_mtime_ns, st.st_mtime_ns))
        os.remove(src)
        out.append(ymd)
    return out


def us_to_dt_date_us(ymd: str) -> int:
    """00:00 UTC of the day YYYYMMDD, in µs since the epoch."""
    import datetime as _dt

    d = _dt.datetime(int(ymd[:4]), int(ymd[4:6]), int(ymd[6:]), tzinfo=_dt.timezone.utc)
    return int(d.timestamp()) * US_PER_S
