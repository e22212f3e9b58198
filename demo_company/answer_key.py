"""The answer key: every contract KPI computed straight from the in-memory truth at `as_of`."""
from __future__ import annotations

import datetime as dt

import numpy as np

from .erp import amount_text_orders, bad_rank_partners
from .util import US_PER_H, us_to_date

# name -> (kind, multiplier, grains); kinds: ratio (num/den), count (num only), quantile (value only), retention,
# stock (a count at the period's end: open_backlog)
KPIS = [
    ("nps", "ratio", 100, "dmw"), ("csat_pct", "ratio", 100, "dmw"), ("csat_mean", "ratio", 1, "dmw"),
    ("ces_mean", "ratio", 1, "dmw"), ("ces_easy_pct", "ratio", 100, "dmw"),
    ("review_rating_avg", "ratio", 1, "dmw"), ("review_negative_share", "ratio", 1, "dmw"),
    ("review_positive_share", "ratio", 1, "dmw"), ("review_reply_rate", "ratio", 1, "dmw"),
    ("review_reply_time_median_h", "q50", 1, "mw"), ("review_reply_time_p90_h", "q90", 1, "mw"),
    ("sessions", "count", 1, "dmw"), ("engagement_rate", "ratio", 1, "dmw"), ("bounce_rate", "ratio", 1, "dmw"),
    ("conversion_rate", "ratio", 1, "dmw"), ("cart_abandonment_rate", "ratio", 1, "dmw"),
    ("avg_engagement_time_msec", "ratio", 1, "dmw"),
    ("orders", "count", 1, "dmw"), ("net_revenue", "money", 1, "dmw"), ("gross_revenue", "money", 1, "dmw"),
    ("aov", "money_ratio", 1, "dmw"), ("purchase_frequency", "customers", 1, "mw"),
    ("repeat_customer_rate", "customers", 1, "mw"), ("retention_rate", "retention", 100, "m"),
    ("on_time_delivery_rate", "ratio", 1, "dmw"),
    ("first_response_median_h", "q50", 1, "mw"), ("first_response_p90_h", "q90", 1, "mw"),
    ("resolution_median_h", "q50", 1, "mw"), ("resolution_p90_h", "q90", 1, "mw"),
    ("email_open_rate", "ratio", 1, "dmw"), ("email_click_rate", "ratio", 1, "dmw"),
    ("email_unsubscribe_rate", "ratio", 1, "dmw"), ("email_click_to_open_rate", "ratio", 1, "dmw"),
    ("open_backlog", "stock", 1, "dmw"), ("loop_closed_rate", "ratio", 1, "dmw"),
    ("nps_customer_level", "customer_nps", 100, "dmw"),
]
# Not in the key: first-contact resolution (tickets closed with <= 1 agent reply / closed tickets). The HubSpot tickets
# the generator serves carry only the first agent reply (first_agent_reply_date, time_to_first_agent_reply), no
# reply count, so the warehouse cannot compute it and does not publish it (docs/DECISIONLOG.md).
ALERT_DUE_US = 48 * US_PER_H   # dbt var alert_due_hours
KPI_NAMES = [k[0] for k in KPIS]



def _trunc(us: int, precision_us: int) -> int:
    """A timestamp in µs cut to the precision at which its vendor's API exposes it."""
    return us - us % precision_us

def _month(d: str) -> str:
    return d[:8] + "01"


def _next_month(m: str) -> dt.date:
    d = dt.date.fromisoformat(m)
    return (d + dt.timedelta(days=32)).replace(day=1)


def _date_us(d: dt.date) -> int:
    """00:00 UTC of a date, in µs since the epoch."""
    return (d - dt.date(1970, 1, 1)).days * 86_400_000_000


class _Acc:
    """Per-day additive contributions (numerator, denominator, n) for one KPI."""

    def __init__(self):
        self.days: dict[str, list] = {}

    def add(self, day: str, num, den, n=None):
        a = self.days.get(day)
        if a is None:
            a = self.days[day] = [0, 0, 0]
        a[0] += num
        a[1] += den
        a[2] += den if n is None else n


def _row(kpi, grain, period, num, den, value, n):
    return {"kpi": kpi, "grain": grain, "period_start": period, "channel": "all", "segment": "all",
            "numerator": num, "denominator": den, "value": value, "n": n}



def _review_reply_us(r, as_of: int):
    """The reply time the review site shows at as_of (kpi-definitions: Google reviewReply.updateTime, i.e. its last
    change; Trustpilot companyReply.createdAt), None without a visible reply."""
    reply = r.reply_at(as_of)
    if reply is None:
        return None
    return reply[2] if r.source == "google" else reply[1]

def compute(world, as_of: int, ga4: dict) -> dict:
    start, end = world.start_us, world.end_us
    start_d = us_to_date(start).isoformat()
    months = []
    d = us_to_date(start).replace(day=1)
    while d < us_to_date(end):
        months.append(d.isoformat())
        d = (d + dt.timedelta(days=32)).replace(day=1)

    def in_window(ts):
        return start <= ts < end

    acc = {k: _Acc() for k, kind, *_ in KPIS if kind in ("ratio", "count", "money", "money_ratio")}
    quant: dict[str, list] = {"review_reply_time": [], "first_response": [], "resolution": []}
    expected: dict = {}

    # ---- surveys
    q_fb: dict[str, int] = {}
    n_fb = 0
    # customer-level NPS: the latest NPS response per customer (person: every HubSpot contact of theirs) and period
    nps_latest: dict[tuple, tuple] = {}     # (grain, period, pid) -> ((submitted ms, HubSpot id), score)
    for f in world.feedback:
        if f.submitted_us > as_of:
            continue
        n_fb += 1
        if f.quarantine:
            q_fb[f.quarantine] = q_fb.get(f.quarantine, 0) + 1
            continue
        if not in_window(f.submitted_us):
            continue
        day = us_to_date(f.submitted_us).isoformat()
        s = f.score
        if f.survey == "NPS":
            acc["nps"].add(day, (1 if s >= 9 else (-1 if s <= 6 else 0)), 1)
            order_key = (_trunc(f.submitted_us, 1000), str(f.hs_id))
            for period_key in (("day", day), ("month", _month(day)), ("window", start_d)):
                k = period_key + (f.pid,)
                if k not in nps_latest or nps_latest[k][0] < order_key:
                    nps_latest[k] = (order_key, s)
        elif f.survey == "CSAT":
            acc["csat_pct"].add(day, int(s >= 4), 1)
            acc["csat_mean"].add(day, s, 1)
        else:
            acc["ces_mean"].add(day, s, 1)
            acc["ces_easy_pct"].add(day, int(s >= 5), 1)
    expected["hubspot.feedback_submissions"] = {"records": n_fb, "quarantined": dict(sorted(q_fb.items())), "duplicates": 0}

    # ---- reviews (Google + Trustpilot)
    for source in ("google_reviews", "trustpilot"):
        expected[f"{source}.reviews"] = {"records": 0, "quarantined": {}, "duplicates": 0}
    # The latest version visible at as_of: stars after every edit by then (Trustpilot and Google), the reply as it
    # reads then (reply time: Google reviewReply.updateTime = its last change, Trustpilot companyReply.createdAt =
    # first written). A review removed from the site by as_of is not served and does not count.
    for r in world.reviews:
        if r.created_us > as_of or r.deleted_at(as_of):
            continue
        key = "google_reviews.reviews" if r.source == "google" else "trustpilot.reviews"
        e = expected[key]
        e["records"] += 1
        if r.quarantine:
            e["quarantined"][r.quarantine] = e["quarantined"].get(r.quarantine, 0) + 1
            continue
        if not in_window(r.created_us):
            continue
        day = us_to_date(r.created_us).isoformat()
        stars = r.stars_at(as_of)
        reply_us = _review_reply_us(r, as_of)
        replied = reply_us is not None
        acc["review_rating_avg"].add(day, stars, 1)
        acc["review_negative_share"].add(day, int(stars <= 2), 1)
        acc["review_positive_share"].add(day, int(stars >= 4), 1)
        acc["review_reply_rate"].add(day, int(replied), 1)
        if replied:
            # Durations as the warehouse can see them: at each vendor's timestamp precision (Google RFC 3339 with
            # microseconds, Trustpilot ISO-8601 seconds).
            prec = 1 if r.source == "google" else 1_000_000
            quant["review_reply_time"].append((day, (_trunc(reply_us, prec) - _trunc(r.created_us, prec)) / US_PER_H))

    # ---- web sessions (aggregated by the GA4 workers over the rows that arrived by as_of)
    for day, (n, eng, purch, atc, atc_np, msec) in ga4["sessions_by_day"].items():
        if not (start_d <= day < us_to_date(end).isoformat()):
            continue
        acc["sessions"].add(day, n, 0, n)
        acc["engagement_rate"].add(day, eng, n)
        acc["bounce_rate"].add(day, n - eng, n)
        acc["conversion_rate"].add(day, purch, n)
        if atc:
            acc["cart_abandonment_rate"].add(day, atc_np, atc)
        acc["avg_engagement_time_msec"].add(day, msec, n)
    st = ga4["stats"]
    # events with a present value that does not parse (dirt ga4_unparsable_value_day_rate,
    # ga4_bad_session_engaged_day_rate): records, quarantined by field, in no session
    ga4_q = {f"unparsable_value: {k.split(':', 1)[1]}": n for k, n in sorted(st.items())
             if k.startswith("unparsable:") and n}
    expected["ga4.events"] = {"records": st["distinct"], "quarantined": ga4_q, "duplicates": st["duplicates"],
                              "excluded_from_sessions": {"missing_session_key": st["no_session_key"]},
                              "late_rows_arrived": st["late_arrived"], "rows_not_arrived": st["not_arrived"],
                              "redelivered_rows_arrived": st["redelivered_arrived"],
                              # lines with a non-UTF-8 byte: dead-lettered by the extractor, not a record (not in
                              # `records`), their event in no session
                              "dead_lettered": st.get("non_utf8_lines", 0)}

    # ---- orders. An order whose amount_total the ERP delivers as locale text (dirt erp_amount_text_rate, type drift)
    # is quarantined by staging (unparsable_value: amount_total, never guessed; docs/contracts.md section 3): it is
    # no order of the marts - not in orders / revenue / AOV, nor a customer's order (frequency, repeat, retention,
    # first order), its lines go with it; its delivery still counts (the picking names the partner itself).
    text_amount = amount_text_orders(world)
    n_text = sum(1 for o in world.orders if o.oid in text_amount and o.create_us <= as_of)
    odoo_quarantined = {"sale_order": {"unparsable_value: amount_total": n_text}} if n_text else {}
    # company partners whose customer_rank has a fraction or overflows a 32-bit integer (dirt erp_bad_integer_rate):
    # quarantined (unparsable_value: customer_rank); a company partner names no customer, so no KPI changes
    bad_rank = bad_rank_partners(world)
    n_rank = sum(1 for c in world.companies if c.partner_id in bad_rank and c.created_us <= as_of)
    if n_rank:
        odoo_quarantined["res_partner"] = {"unparsable_value: customer_rank": n_rank}
    orders_by_person_month: dict[str, dict[int, int]] = {}
    orders_by_person_window: dict[int, int] = {}
    first_order: dict[int, str] = {}
    for o in world.orders:
        if o.state_at(as_of) != "sale" or o.oid in text_amount:
            continue
        day = us_to_date(o.confirm_us).isoformat()
        first_order[o.pid] = min(first_order.get(o.pid, day), day)
        if not in_window(o.confirm_us):
            continue
        acc["orders"].add(day, 1, 0, 1)
        acc["net_revenue"].add(day, o.untaxed, 0, 1)
        acc["gross_revenue"].add(day, o.untaxed + o.tax, 0, 1)
        acc["aov"].add(day, o.untaxed, 1)
        m = orders_by_person_month.setdefault(_month(day), {})
        m[o.pid] = m.get(o.pid, 0) + 1
        orders_by_person_window[o.pid] = orders_by_person_window.get(o.pid, 0) + 1

    # ---- deliveries
    for pk in world.pickings:
        if pk.state_at(as_of) != "done" or not in_window(pk.done_us):
            continue
        acc["on_time_delivery_rate"].add(us_to_date(pk.done_us).isoformat(), int(pk.done_us <= pk.scheduled_us), 1)

    # ---- tickets. A ticket whose createdAt is not a timestamp (dirt hubspot_bad_created_at_rate) is quarantined
    # (bad_timestamp): no first response, resolution, backlog or agent contact of the marts.
    n_bad_tickets = sum(1 for t in world.tickets if t.bad_created_at and t.created_us <= as_of)
    hubspot_quarantined = {"tickets": {"bad_timestamp": n_bad_tickets}} if n_bad_tickets else {}
    for t in world.tickets:
        if t.created_us > as_of or t.bad_created_at:
            continue
        # HubSpot datetimes carry milliseconds
        created_ms = _trunc(t.created_us, 1000)
        if t.reply_us <= as_of and in_window(t.created_us):
            quant["first_response"].append((us_to_date(t.created_us).isoformat(),
                                            (_trunc(t.reply_us, 1000) - created_ms) / US_PER_H))
        if t.closed_us and t.closed_us <= as_of and in_window(t.closed_us):
            quant["resolution"].append((us_to_date(t.closed_us).isoformat(),
                                        (_trunc(t.closed_us, 1000) - created_ms) / US_PER_H))

    # ---- open backlog: tickets not closed at the end of each day / month / the window (a stock, never summed).
    # Open at instant T: created < T and not closed before T, as the CRM shows them at as_of (ms timestamps).
    created_arr = np.array(sorted(_trunc(t.created_us, 1000) for t in world.tickets
                                  if t.created_us <= as_of and not t.bad_created_at), dtype=np.int64)
    closed_arr = np.array(sorted(_trunc(t.closed_us, 1000) for t in world.tickets
                                 if t.created_us <= as_of and not t.bad_created_at
                                 and t.closed_us and t.closed_us <= as_of), dtype=np.int64)

    def backlog_at(t_us: int) -> int:
        return int(np.searchsorted(created_arr, t_us, side="left") - np.searchsorted(closed_arr, t_us, side="left"))

    # The backlog's window ends where the data ends (a run's KPI window ends at its data interval end = as_of).
    horizon = min(end, as_of)
    day_ends = []   # (day, end of day in µs)
    d = us_to_date(start)
    while _date_us(d) < horizon:
        day_ends.append((d.isoformat(), min(_date_us(d + dt.timedelta(days=1)), horizon)))
        d += dt.timedelta(days=1)
    backlog = {"day": [(day, backlog_at(e)) for day, e in day_ends]}
    backlog["month"] = [(m_, backlog_at(min(_date_us(_next_month(m_)), horizon))) for m_ in months
                        if _date_us(dt.date.fromisoformat(m_)) < horizon]
    backlog["window"] = [(start_d, backlog_at(horizon))]

    # ---- loop-closed rate: alerts (NPS 0-6, CSAT 1-2, reviews 1-2 stars) dated by their creation; closed when
    # the person the alert names got an agent contact (a ticket created, or a ticket's first agent reply) or, for a
    # review, the company replied - strictly after the alert and strictly before its due time (48 h). The person
    # is the one the source record names: the HubSpot contact of a survey; a Trustpilot review's order reference
    # or referral e-mail; nobody for Google reviews and organic Trustpilot reviews (only a reply closes those).
    # Times at the precision each vendor exposes them.
    contacts_of: dict[int, list] = {}
    for t in world.tickets:
        if t.created_us > as_of or t.bad_created_at:
            continue
        lst = contacts_of.setdefault(t.pid, [])
        lst.append(_trunc(t.created_us, 1000))
        if t.reply_us <= as_of:
            lst.append(_trunc(t.reply_us, 1000))

    def loop_closed(pid, created_us, reply_us=None) -> int:
        due = created_us + ALERT_DUE_US
        if reply_us is not None and created_us < reply_us < due:
            return 1
        if pid is not None and any(created_us < c < due for c in contacts_of.get(pid, ())):
            return 1
        return 0

    text_order_names = {o.name for o in world.orders if o.oid in text_amount}
    for f in world.feedback:
        if f.submitted_us > as_of or f.quarantine or not in_window(f.submitted_us):
            continue
        if not ((f.survey == "NPS" and f.score <= 6) or (f.survey == "CSAT" and f.score <= 2)):
            continue
        acc["loop_closed_rate"].add(us_to_date(f.submitted_us).isoformat(),
                                    loop_closed(f.pid, _trunc(f.submitted_us, 1000)), 1)
    for r in world.reviews:
        if (r.created_us > as_of or r.deleted_at(as_of) or r.quarantine or not in_window(r.created_us)
                or r.stars_at(as_of) > 2):
            continue
        prec = 1 if r.source == "google" else 1_000_000
        # an order reference names a person through the staged order: not a quarantined one (erp_amount_text_rate)
        by_order = r.order_name is not None and r.order_name not in text_order_names
        pid = r.pid if (r.source == "trustpilot" and (by_order or r.referral_email)) else None
        reply_us = _review_reply_us(r, as_of)
        acc["loop_closed_rate"].add(us_to_date(r.created_us).isoformat(),
                                    loop_closed(pid, _trunc(r.created_us, prec),
                                                _trunc(reply_us, prec) if reply_us is not None else None), 1)

    # ---- email: unit = (campaign, recipient), dated by the campaign's first SENT
    camp_first: dict[int, int] = {}
    units: dict[tuple, list] = {}   # -> [sent, bounced, opened, clicked, unsubscribed]
    n_ev = 0
    as_of_ms = as_of // 1000
    for created, _eid, typ, base, extra in world.email_events:
        if created > as_of_ms:
            break
        n_ev += 1
        cid = base["emailCampaignId"]
        u = units.setdefault((cid, base["recipient"]), [0, 0, 0, 0, 0])
        if typ == "SENT":
            u[0] = 1
            if cid not in camp_first or created < camp_first[cid]:
                camp_first[cid] = created
        elif typ == "BOUNCE":
            u[1] = 1
        elif typ == "OPEN" and not extra.get("filteredEvent"):
            u[2] = 1
        elif typ == "CLICK":
            u[3] = 1
        elif typ == "STATUSCHANGE" and any(s.get("status") == "UNSUBSCRIBED" for s in extra.get("subscriptions", [])):
            u[4] = 1
    for (cid, _rcpt), (sent, bounced, opened, clicked, unsub) in sorted(units.items()):
        if not sent or bounced or cid not in camp_first:
            continue
        ts = camp_first[cid] * 1000
        if not in_window(ts):
            continue
        day = us_to_date(ts).isoformat()
        acc["email_open_rate"].add(day, opened, 1)
        acc["email_click_rate"].add(day, clicked, 1)
        acc["email_unsubscribe_rate"].add(day, unsub, 1)
        if opened or clicked:
            acc["email_click_to_open_rate"].add(day, clicked, opened, opened)
    expected["hubspot.email_events"] = {"records": n_ev, "quarantined": {}, "duplicates": 0}

    # ---- assemble rows
    rows = []
    for kpi, kind, mult, grains in KPIS:
        if kind in ("ratio", "count", "money", "money_ratio"):
            days = acc[kpi].days
            periods = []
            if "d" in grains:
                periods += [("day", d_, [v]) for d_, v in sorted(days.items())]
            if "m" in grains:
                by_m: dict[str, list] = {}
                for d_, v in sorted(days.items()):
                    by_m.setdefault(_month(d_), []).append(v)
                periods += [("month", m_, vs) for m_, vs in sorted(by_m.items())]
            if "w" in grains:
                periods.append(("window", start_d, [v for _, v in sorted(days.items())]))
            for grain, period, vs in periods:
                num = sum(v[0] for v in vs)
                den = sum(v[1] for v in vs)
                n = sum(v[2] for v in vs)
                if grain != "window" and n == 0:
                    continue
                if kind == "count":
                    rows.append(_row(kpi, grain, period, float(num), None, float(num), n))
                elif kind == "money":
                    val = round(num / 100, 2)
                    rows.append(_row(kpi, grain, period, val, None, val, n))
                elif kind == "money_ratio":
                    val = round(num / 100, 2)
                    rows.append(_row(kpi, grain, period, val, float(den), (val / den) if den else None, n))
                else:
                    rows.append(_row(kpi, grain, period, float(num), float(den),
                                     (mult * num / den) if den else None, n))
        elif kind in ("q50", "q90"):
            base_name = kpi.rsplit("_", 2)[0]
            vals = quant[base_name]
            q = 50 if kind == "q50" else 90
            groups = {}
            for d_, v in vals:
                groups.setdefault(_month(d_), []).append(v)
            periods = [("month", m_, vs) for m_, vs in sorted(groups.items())]
            periods.append(("window", start_d, [v for _, v in vals]))
            for grain, period, vs in periods:
                val = float(np.percentile(np.array(vs, dtype=float), q, method="linear")) if vs else None
                rows.append(_row(kpi, grain, period, None, None, val, len(vs)))
        elif kind == "customers":
            periods = [("month", m_, orders_by_person_month.get(m_, {})) for m_ in months
                       if orders_by_person_month.get(m_)]
            periods.append(("window", start_d, orders_by_person_window))
            for grain, period, per_person in periods:
                customers = len(per_person)
                if kpi == "purchase_frequency":
                    num = sum(per_person.values())
                else:
                    num = sum(1 for c in per_person.values() if c >= 2)
                rows.append(_row(kpi, grain, period, float(num), float(customers),
                                 (num / customers) if customers else None, customers))
        elif kind == "customer_nps":
            groups: dict[tuple, list] = {}
            for (grain, period, _pid), (_k, s) in nps_latest.items():
                g = groups.setdefault((grain, period), [0, 0])
                g[0] += 1 if s >= 9 else (-1 if s <= 6 else 0)
                g[1] += 1
            for (grain, period), (num, den) in sorted(groups.items()):
                rows.append(_row(kpi, grain, period, float(num), float(den), mult * num / den, den))
        elif kind == "stock":
            for grain in ("day", "month", "window"):
                for period, open_n in backlog[grain]:
                    if grain != "window" and open_n == 0:
                        continue
                    rows.append(_row(kpi, grain, period, float(open_n), None, float(open_n), open_n))
        elif kind == "retention":
            for i, m_ in enumerate(months):
                e_set = orders_by_person_month.get(m_, {})
                prev = orders_by_person_month.get(months[i - 1], {}) if i > 0 else {}
                s_n = len(prev)
                e_n = len(e_set)
                n_new = sum(1 for pid in e_set if _month(first_order[pid]) == m_)
                num = e_n - n_new
                rows.append(_row(kpi, "month", m_, float(num), float(s_n), (100 * num / s_n) if s_n else None, s_n))

    # ---- identity facts and the remaining record counts
    persons_visible = sum(1 for p in world.persons if p.created_us <= as_of)
    identity = {
        "persons": persons_visible,
        "hubspot_duplicate_contacts": sum(1 for p in world.persons if p.in_hubspot and p.dup_contact_created_us
                                          and p.dup_contact_created_us <= as_of),
        "email_case_or_space_mismatches": sum(1 for p in world.persons if p.in_odoo and p.in_hubspot
                                              and p.odoo_email != p.hs_email and p.created_us <= as_of),
        # people with a second Odoo partner (e-mail differs in case / spaces); they count once as customers
        "erp_duplicate_partners": sum(1 for p in world.persons if p.dup_partner_id
                                      and p.dup_partner_created_us <= as_of),
    }
    return {"rows": rows, "expected": expected, "identity": identity, "odoo_quarantined": odoo_quarantined,
            "hubspot_quarantined": hubspot_quarantined}
