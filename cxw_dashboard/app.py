"""The CX dashboard (Dash): one published file, read-only, pages built from its tables as published.

Every number on a page is a value of a published table cell (rounded for display; the exact value is in the
element's `title` and `data-value`). Filters select rows (period: a month or the whole KPI window; channel); nothing
is re-aggregated here. Each request asks :class:`PublishedFile` for the current generation, so a newly published
generation shows on the next page load or filter change, without a restart.
"""

from __future__ import annotations

import math
import numbers

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from dash import Dash, Input, Output, dash_table, dcc, html

from cxw.analytics.key_drivers import MIN_RESPONSES

from .published import (DRIVER_SCORES, PublishedFile, PublishedFileMissing, Snapshot, as_of_text, latest_key_drivers,
                        latest_targets)

PAGES = [  # path, title
    ("/", "Headline KPIs"),
    ("/journey", "Journey stages"),
    ("/alerts", "Detractor alert queue"),
    ("/pareto", "Issue Pareto"),
    ("/delivery", "Delivery delay vs satisfaction"),
    ("/funnel", "Web funnel"),
    ("/reviews", "Reviews by source and location"),
]  # + the analysis pages (cxw_dashboard/analyses.py), appended at the end of this module
HEADLINE_KPIS = ["nps", "csat_pct", "ces_mean", "review_rating_avg", "loop_closed_rate", "on_time_delivery_rate",
                 "conversion_rate", "repeat_customer_rate", "retention_rate", "first_response_median_h"]
WINDOW = "window"
ALL = "all"


def fmt(v, digits: int | None = None) -> str:
    """Display form of a published number: rounded to `digits` decimals (default 4 below 1 — rates on a 0-1 scale —
    else 2), integers as integers; '—' for null. The exact value is in the element's title / data-value."""
    if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA or v is pd.NaT:
        return "—"
    if isinstance(v, (bool, np.bool_)):
        return "yes" if v else "no"
    if isinstance(v, numbers.Integral) or (isinstance(v, float) and v.is_integer() and abs(v) >= 1):
        return f"{int(v):,}".replace(",", "\u202f") if abs(v) >= 10000 else str(int(v))
    try:
        if digits is None:
            digits = 4 if abs(float(v)) < 1 else 2
        return f"{float(v):.{digits}f}"
    except (TypeError, ValueError):
        return str(v)


def num(v, digits: int | None = None, **kw) -> html.Span:
    """A published number: rounded text, exact value in title / data-value."""
    exact = "" if v is None or (isinstance(v, float) and math.isnan(v)) else repr(float(v)) if not isinstance(
        v, str) else v
    return html.Span(fmt(v, digits), title=exact, **{"data-value": exact}, **kw)


def _json_value(v):
    if v is None or v is pd.NaT or (isinstance(v, float) and math.isnan(v)):
        return None
    if hasattr(v, "item"):  # numpy scalars
        v = v.item()
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, (int, float, str)):
        return v
    return str(v)


def table(df: pd.DataFrame, table_id: str, columns: list[str] | None = None, page_size: int = 25):
    """One DataTable (a single component, paginated: thousands of html cells would stall the browser). Cells show
    the published values unrounded."""
    # an audience's file may leave columns out (access/audiences.yml): those are not shown
    columns = [c for c in columns if c in df.columns] if columns else list(df.columns)
    data = [{c: _json_value(v) for c, v in zip(columns, row)} for row in df[columns].itertuples(index=False)]
    return dash_table.DataTable(
        id=table_id, data=data, page_size=page_size, sort_action="native",
        columns=[{"name": c, "id": c, "type": "numeric" if pd.api.types.is_numeric_dtype(df[c])
                  and not pd.api.types.is_bool_dtype(df[c]) else "text"} for c in columns],
        style_table={"overflowX": "auto"}, style_cell={"fontSize": 12, "padding": "2px 6px", "textAlign": "left",
                                                      "maxWidth": 420, "whiteSpace": "normal"},
        style_header={"fontWeight": "600", "backgroundColor": "#eef2f7"},
    )


def _periods(snap: Snapshot) -> list[str]:
    kp = snap.frame("kpi_period")
    if kp is None or kp.empty:
        return []
    months = sorted({pd.Timestamp(d).strftime("%Y-%m") for d in kp.loc[kp.grain == "month", "period_start"]})
    return months


def _channels(snap: Snapshot) -> list[str]:
    chans = set()
    for name in ("kpi_period", "alerts"):
        f = snap.frame(name)
        if f is not None and "channel" in f:
            chans |= set(f["channel"].dropna().astype(str))
    chans.discard(ALL)
    return [ALL] + sorted(chans)


def _kpi_rows(snap: Snapshot, period: str, channel: str) -> pd.DataFrame:
    kp = snap.frame("kpi_period")
    rows = kp[(kp.channel == channel) & (kp.segment == ALL)]
    if period == WINDOW:
        return rows[rows.grain == "window"]
    start = pd.Timestamp(period + "-01").date()
    return rows[(rows.grain == "month") & (pd.to_datetime(rows.period_start).dt.date == start)]


def _missing(name: str, table_name: str):
    return html.P(f"{table_name} is not in this published file.", className="cx-missing", id=f"missing-{name}")


# --- pages -----------------------------------------------------------------------------------------------------------

def page_headline(snap: Snapshot, period: str, channel: str):
    return html.Div([_headline(snap, period, channel), panel_targets(snap, channel), panel_drivers(snap)])


def _card_target(snap: Snapshot, kpi: str, period: str, channel: str) -> str:
    """The card's target line: the kpi_vs_target row of the card's own period (segment all), as published."""
    t = snap.frame("targets")
    if t is None:
        return "target: none published"
    t = t[(t.kpi == kpi) & (t.segment == ALL) & (t.channel == channel) & t.target_value.notna()]
    if period == WINDOW:
        t = t[t.grain == "window"]
    else:
        t = t[(t.grain == "month") & (pd.to_datetime(t.period_start).dt.strftime("%Y-%m") == period)]
    if t.empty:
        return "target: none published"
    r = t.iloc[0]
    return f"target: {fmt(r.target_value)} · {_target_status(r)}"


def _target_status(r) -> str:
    """A kpi_vs_target row's status in words, from its published flags (is_breach, is_target_met, ...)."""
    if pd.isna(r.target_value):
        return "no target"
    if bool(r.is_breach):
        return "BREACH"
    if pd.isna(r.is_target_met):
        return "no value"
    if bool(r.is_target_met):
        return "met"
    if bool(r.is_low_sample):
        return "missed (low sample: no breach)"
    return "missed (period open: no breach yet)"


def panel_targets(snap: Snapshot, channel: str):
    """Targets: per KPI, its latest period's value vs target and industry benchmark (kpi.kpi_vs_target)."""
    head = html.H3("Targets", id="targets-heading")
    t = latest_targets(snap, channel)
    if t is None:
        return html.Div([head, _missing("targets", "kpi.kpi_vs_target")], id="panel-targets")
    if t.empty:
        return html.Div([head, html.P(f"No targets or benchmarks published for channel {channel!r}.",
                                      id="no-targets", className="cx-note")], id="panel-targets")
    t = t.assign(status=[_target_status(r) for r in t.itertuples()],
                 **{c: pd.to_datetime(t[c]).dt.date for c in ("period_start", "benchmark_as_of") if c in t})
    breaches = int(t.is_breach.sum())
    return html.Div([
        head,
        html.P(["Latest period per KPI (the latest month, else the whole window), segment all, channel "
                f"{channel}: value vs target (seed kpi_targets) and industry benchmark (seed kpi_benchmarks, with "
                "its source and date). A breach is a closed month that missed its target on a sample that is not "
                "low; breaches shown: ", num(breaches, id="targets-breaches"), "."]),
        table(t, "targets-table", ["kpi", "grain", "period_start", "value", "n", "target_value", "gap_to_target",
                                   "status", "target_owner_role", "benchmark_value", "gap_to_benchmark",
                                   "benchmark_source", "benchmark_as_of", "benchmark_industry", "is_period_closed",
                                   "is_breach"]),
    ], id="panel-targets")


def panel_drivers(snap: Snapshot):
    """What drives the score: cx.cx_key_drivers of the latest quarter with data (else the window) per score."""
    head = html.H3("What drives the score", id="drivers-heading")
    caveat = html.P("Observational, not causal: each driver's share of the explained variance (R²) of the score "
                    "among responses in the period, with its 95% bootstrap interval (error bars) and n "
                    "(docs/analytics.md).", id="drivers-caveat", className="cx-note")
    by_score = latest_key_drivers(snap)
    if by_score is None:
        return html.Div([head, _missing("key_drivers", "cx.cx_key_drivers")], id="panel-drivers")
    blocks = []
    for score in DRIVER_SCORES:
        d = by_score[score]
        if d.empty:
            blocks.append(html.Div([html.H4(score), html.P(
                f"{score}: not enough responses (n < {MIN_RESPONSES} in every period), no drivers published.",
                id=f"drivers-empty-{score}", className="cx-note")]))
            continue
        r0 = d.iloc[0]
        period = ("whole window" if r0.period_grain == "window"
                  else f"quarter from {pd.Timestamp(r0.period_start).date()}")
        through = drivers_through(r0)
        fig = go.Figure(go.Bar(
            x=d.importance_share, y=d.driver, orientation="h",
            error_x=dict(type="data", symmetric=False, array=d.ci_high - d.importance_share,
                         arrayminus=d.importance_share - d.ci_low)))
        fig.update_layout(height=60 + 28 * len(d), margin=dict(l=4, r=4, t=30, b=20),
                          yaxis=dict(autorange="reversed"), xaxis=dict(title="importance share", range=[0, 1]),
                          title=f"{score}: {period}, R² {fmt(r0.r_squared)}, n {r0.n_responses}")
        blocks.append(html.Div([
            html.H4([f"{score} — {period}, n = ", num(r0.n_responses, id=f"drivers-n-{score}")]),
            html.P(through, id=f"drivers-through-{score}", className="cx-note"),
            dcc.Graph(figure=fig, config={"staticPlot": True}, id=f"drivers-chart-{score}"),
            table(d, f"drivers-table-{score}", ["importance_rank", "driver", "importance_share", "ci_low",
                                                "ci_high", "direction", "coefficient", "n_responses"]),
        ]))
    return html.Div([head, caveat, *blocks], id="panel-drivers")


def drivers_through(row) -> str:
    """How far the drivers' responses reach (issue 20.1, "as of"): the day before the period's exclusive end, which
    is at most the day after the newest response (cx_key_drivers.period_end); a quarter that ends later is marked as
    the quarter so far. The analyses may be older than the KPIs beside them (CXW_ANALYZE_EVERY=day on an hourly
    schedule), so the panel says it rather than borrow the page's as-of."""
    end = pd.Timestamp(row.period_end)
    text = f"Responses through {(end - pd.Timedelta(days=1)).date()}"
    if row.period_grain == "quarter":
        quarter_end = pd.Timestamp(row.period_start) + pd.DateOffset(months=3)
        if end < quarter_end:
            text += f" (the quarter so far; it ends {(quarter_end - pd.Timedelta(days=1)).date()})"
    return text + "."


def _headline(snap: Snapshot, period: str, channel: str):
    kp = snap.frame("kpi_period")
    if kp is None:
        return _missing("kpi_period", "kpi.kpi_period")
    rows = _kpi_rows(snap, period, channel)
    if rows.empty:
        return html.P(f"No KPI rows published for period {period}, channel {channel!r} (kpi.kpi_period publishes "
                      f"channels {sorted(set(kp.channel))}).", id="no-kpi-rows", className="cx-missing")
    by_kpi = {r.kpi: r for r in rows.itertuples()}
    monthly = kp[(kp.grain == "month") & (kp.channel == channel) & (kp.segment == ALL)]
    cards = []
    for k in [k for k in HEADLINE_KPIS if k in by_kpi]:
        r = by_kpi[k]
        trend = monthly[monthly.kpi == k].sort_values("period_start")
        fig = go.Figure(go.Scatter(x=[pd.Timestamp(d).strftime("%m/%y") for d in trend.period_start],
                                   y=trend.value, mode="lines+markers"))
        fig.update_layout(height=90, margin=dict(l=4, r=4, t=4, b=18), showlegend=False,
                          xaxis=dict(showgrid=False, type="category", tickfont=dict(size=9)), yaxis=dict(showgrid=False, visible=False))
        cards.append(html.Div([
            html.Div(k, className="cx-kpi-name"),
            html.Div(num(r.value, id=f"kpi-value-{k}"), className="cx-kpi-value"),
            html.Div(["n = ", num(r.n, id=f"kpi-n-{k}"),
                      html.Span(" low sample", className="cx-low-sample", id=f"kpi-low-{k}",
                                title="n below the low-sample threshold (kpi_period.is_low_sample)")
                      if bool(r.is_low_sample) else None]),
            html.Div(_card_target(snap, k, period, channel), className="cx-target", id=f"kpi-target-{k}"),
            dcc.Graph(figure=fig, config={"staticPlot": True}, id=f"kpi-trend-{k}"),
        ], className="cx-card", id=f"kpi-card-{k}"))
    return html.Div([
        html.H2(f"Headline KPIs — {period if period != WINDOW else 'whole KPI window'}, channel {channel}"),
        html.P("Target: the period's row of kpi.kpi_vs_target, where one is published. Trend: monthly values "
               "(kpi.kpi_period, grain month). Low sample: n below the mart's threshold."),
        html.Div(cards, className="cx-cards"),
        html.H3("All KPIs of the period"),
        table(rows.sort_values("kpi"), "kpi-table",
              ["kpi", "value", "numerator", "denominator", "n", "is_low_sample"]),
    ])


def page_journey(snap: Snapshot, period: str, channel: str):
    j = snap.frame("journey")
    if j is None:
        return _missing("journey", "kpi.kpi_journey_stage")
    if period != WINDOW:
        j = j[pd.to_datetime(j.month_start).dt.strftime("%Y-%m") == period]
    fig = go.Figure()
    for month, g in j.groupby(pd.to_datetime(j.month_start).dt.strftime("%Y-%m")):
        fig.add_bar(x=g.journey_stage, y=g.nps, name=month)
    fig.update_layout(height=320, title="NPS by journey stage (responses after a touchpoint of that stage)",
                      margin=dict(t=40))
    note = "" if channel == ALL else " The journey mart is not split by channel; the channel filter does not apply."
    return html.Div([
        html.H2("Journey-stage KPIs"),
        html.P("kpi.kpi_journey_stage per month and stage." + note),
        dcc.Graph(figure=fig, id="journey-chart"),
        table(j, "journey-table", ["month_start", "journey_stage", "touchpoints", "persons", "nps_responses", "nps",
                                   "csat_responses", "csat_pct", "ces_responses", "ces_mean"]),
    ])


def _as_of(snap: Snapshot) -> pd.Timestamp | None:
    """The data's 'now': the generation's data_interval_end (UTC, naive like the marts' timestamps)."""
    try:
        ts = pd.Timestamp(str(snap.publication.get("data_interval_end")))
    except (ValueError, TypeError):
        return None
    if ts is pd.NaT:
        return None
    return ts.tz_convert("UTC").tz_localize(None) if ts.tzinfo else ts


def page_alerts(snap: Snapshot, period: str, channel: str):
    a = snap.frame("alerts")
    if a is None:
        return _missing("alerts", "cx.cx_detractor_alerts")
    if channel != ALL:
        a = a[a.channel == channel]
    if period != WINDOW:
        a = a[pd.to_datetime(a.created_at).dt.strftime("%Y-%m") == period]
    as_of = _as_of(snap)
    a = a.copy()
    if as_of is not None:
        a["age_h"] = ((as_of - pd.to_datetime(a.created_at)).dt.total_seconds() / 3600).round(1)
        overdue = ~a.is_loop_closed & (pd.to_datetime(a.due_at) < as_of)
    else:
        a["age_h"] = float("nan")
        overdue = pd.Series(False, index=a.index)
    a["status"] = "open"
    a.loc[overdue, "status"] = "overdue"
    a.loc[a.is_loop_closed, "status"] = "closed in time"
    a = a.sort_values(["is_loop_closed", "due_at", "alert_id"], kind="stable")  # the queue: open work first
    counts = {"alerts": len(a), "closed": int(a.is_loop_closed.sum()), "open": int((a.status == "open").sum()),
              "overdue": int((a.status == "overdue").sum())}
    return html.Div([
        html.H2("Detractor alert queue"),
        html.P(f"cx.cx_detractor_alerts, as of the data's end {as_of} (age = as-of − created; overdue = not closed "
               f"and due before the as-of; closed = an agent contact or reply before the due time). "
               f"Period filter: month of creation."),
        html.Div([html.Span([f"{k}: ", num(v, id=f"alerts-{k}")], className="cx-count") for k, v in counts.items()],
                 className="cx-counts"),
        html.P("Open and overdue alerts first, each by due time; the table sorts by any column.",
               id="alerts-shown"),
        table(a, "alerts-table", ["due_at", "created_at", "age_h", "status", "alert_type", "source", "channel",
                                  "score", "preceding_touchpoint_type", "comment", "hubspot_contact_id",
                                  "odoo_partner_id"]),
    ])


def page_pareto(snap: Snapshot, period: str, channel: str):
    p = snap.frame("pareto")
    if p is None:
        return _missing("pareto", "cx.cx_issue_pareto")
    blocks = []
    for itype, g in p.groupby("issue_type"):
        g = g.sort_values(["occurrences", "issue"], ascending=[False, True])
        fig = go.Figure()
        fig.add_bar(x=g.issue, y=g.occurrences, name="occurrences")
        fig.add_scatter(x=g.issue, y=g.cumulative_share, name="cumulative share", yaxis="y2", mode="lines+markers")
        fig.update_layout(height=320, title=itype, yaxis2=dict(overlaying="y", side="right", range=[0, 1.05]),
                          margin=dict(t=40))
        blocks += [dcc.Graph(figure=fig, id=f"pareto-chart-{itype}"),
                   table(g, f"pareto-table-{itype}", ["issue", "occurrences", "share_of_type", "cumulative_share",
                                                      "is_pareto_core", "nps_hit", "nps_not_hit", "nps_gap",
                                                      "rank_by_nps_cost"])]
    return html.Div([html.H2("Issue Pareto"),
                     html.P("cx.cx_issue_pareto over the whole KPI window (the mart has no month split; the period "
                            "and channel filters do not apply)."), *blocks])


def page_delivery(snap: Snapshot, period: str, channel: str):
    d = snap.frame("delivery")
    if d is None:
        return _missing("delivery", "cx.cx_delivery_vs_satisfaction")
    d = d.sort_values(["survey_type", "delay_bucket_order"])
    fig = go.Figure()
    for st, g in d.groupby("survey_type"):
        fig.add_bar(x=g.delay_bucket, y=g.value, name=f"{st} ({g.kpi.iloc[0]})")
    fig.update_layout(height=340, barmode="group", title="Satisfaction by delay of the latest delivery",
                      margin=dict(t=40))
    return html.Div([html.H2("Delivery delay vs satisfaction"),
                     html.P("cx.cx_delivery_vs_satisfaction over the whole KPI window (no month split; the period "
                            "and channel filters do not apply)."),
                     dcc.Graph(figure=fig, id="delivery-chart"),
                     table(d, "delivery-table", ["survey_type", "delay_bucket", "kpi", "value", "n", "deliveries",
                                                 "is_low_sample"])])


FUNNEL_STEPS = [  # label, kpi, column of its kpi_period row that counts the step
    ("sessions", "sessions", "n"),
    ("engaged sessions", "engagement_rate", "numerator"),
    ("sessions with add_to_cart", "cart_abandonment_rate", "denominator"),
    ("sessions with a purchase", "conversion_rate", "numerator"),
]


def page_funnel(snap: Snapshot, period: str, channel: str):
    kp = snap.frame("kpi_period")
    if kp is None:
        return _missing("kpi_period", "kpi.kpi_period")
    rows = {r.kpi: r for r in _kpi_rows(snap, period, channel).itertuples()}
    steps = [(label, getattr(rows[k], col)) for label, k, col in FUNNEL_STEPS if k in rows]
    if not steps:
        return html.P(f"No web KPIs published for period {period}, channel {channel!r}.", id="no-funnel")
    fig = go.Figure(go.Funnel(y=[s[0] for s in steps], x=[s[1] for s in steps], texttemplate="%{value:,}"))
    fig.update_layout(height=340, margin=dict(t=20))
    return html.Div([
        html.H2("Web funnel"),
        html.P("Steps read from kpi.kpi_period: sessions (n of sessions), engaged sessions (numerator of "
               "engagement_rate), sessions with add_to_cart (denominator of cart_abandonment_rate), sessions with a "
               "purchase (numerator of conversion_rate)."),
        dcc.Graph(figure=fig, id="funnel-chart"),
        html.Ul([html.Li([f"{label}: ", num(v, id=f"funnel-{i}")]) for i, (label, v) in enumerate(steps)]),
        html.P(["conversion_rate: ", num(rows["conversion_rate"].value, 4, id="funnel-conversion-rate")]
               if "conversion_rate" in rows else ""),
    ])


def page_reviews(snap: Snapshot, period: str, channel: str):
    r = snap.frame("reviews")
    if r is None:
        return _missing("reviews", "cx.cx_reviews_by_source_location")
    if period == WINDOW:
        r = r[r.grain == "window"]
    else:
        r = r[(r.grain == "month") & (pd.to_datetime(r.period_start).dt.strftime("%Y-%m") == period)]
    fig = go.Figure(go.Bar(x=r.review_source + " · " + r.location.str.rsplit("/", n=1).str[-1],
                           y=r.review_rating_avg, text=r.reviews, textposition="outside"))
    fig.update_layout(height=320, title="Average rating (1-5) per source · location (bar label: reviews)",
                      margin=dict(t=40))
    return html.Div([html.H2("Reviews by source and location"),
                     html.P("cx.cx_reviews_by_source_location for the period (review_site channel only: the "
                            "channel filter does not apply)."),
                     dcc.Graph(figure=fig, id="reviews-chart"),
                     table(r.sort_values(["review_source", "location"]), "reviews-table",
                           ["review_source", "location", "reviews", "review_rating_avg", "review_negative_share",
                            "review_positive_share", "review_reply_rate"])])


RENDER = {"/": page_headline, "/journey": page_journey, "/alerts": page_alerts, "/pareto": page_pareto,
          "/delivery": page_delivery, "/funnel": page_funnel, "/reviews": page_reviews}

CSS = """
body{font-family:system-ui,sans-serif;margin:0;color:#222}
.cx-header{background:#23395d;color:#fff;padding:8px 16px}.cx-header a{color:#fff;margin-right:14px}
.cx-meta{font-size:12px;opacity:.85}.cx-body{padding:8px 16px}
.cx-filters{display:flex;gap:32px;padding:8px 16px;background:#eef2f7;flex-wrap:wrap}
.cx-cards{display:flex;flex-wrap:wrap;gap:10px}.cx-card{border:1px solid #ccd;border-radius:6px;padding:8px;width:210px}
.cx-kpi-name{font-size:12px;color:#555}.cx-kpi-value{font-size:26px;font-weight:600}
.cx-low-sample{color:#b35c00;font-weight:600}.cx-target{font-size:11px;color:#777}
.cx-table{border-collapse:collapse;font-size:12px;margin:8px 0}.cx-table td,.cx-table th{border:1px solid #dde;padding:2px 6px}
.cx-greyed{color:#999}.cx-counts{display:flex;gap:20px;font-size:16px}.cx-missing{color:#a00}.cx-note{color:#555;font-style:italic}
"""


# the frames (published.QUERIES) a page shows: an audience whose file has none of them does not see the page
PAGE_FRAMES = {"/": ("kpi_period",), "/journey": ("journey",), "/alerts": ("alerts",), "/pareto": ("pareto",),
               "/delivery": ("delivery",), "/funnel": ("kpi_period",), "/reviews": ("reviews",)}

LOGIN_PAGE = """<!doctype html><html><head><title>CX dashboard - sign in</title><style>{css}
form{{max-width:320px;margin:60px auto;display:flex;flex-direction:column;gap:8px}}</style></head><body>
<div class="cx-header"><b>CX dashboard</b></div><form method="post">
<h2>Sign in</h2>{error}<label>User <input name="username" id="username" autocomplete="username" required></label>
<label>Password <input name="password" id="password" type="password" autocomplete="current-password" required>
</label><button type="submit" id="sign-in">Sign in</button></form></body></html>"""


from . import analyses  # noqa: E402 (it uses this module's helpers)

PAGES += analyses.PAGES
RENDER.update(analyses.RENDER)
PAGE_FRAMES.update(analyses.PAGE_FRAMES)


def visible_pages(snap: Snapshot) -> list[tuple[str, str]]:
    return [(path, title) for path, title in PAGES if any(snap.frame(f) is not None for f in PAGE_FRAMES[path])]


def create_app(published_path=None, *, audiences_dir=None, users_file=None, secret_key: bytes | str | None = None
               ) -> Dash:
    """One published file (``published_path``, no sign-in: whoever runs it can read that file anyway), or, with
    ``users_file``, a sign-in whose user reads only ``<audiences_dir>/<their audience>/cx_warehouse.duckdb``."""
    import os
    import threading
    from pathlib import Path
    from urllib.parse import quote

    import flask

    from . import auth

    signed_in = users_file is not None
    if signed_in == (published_path is not None):
        raise ValueError("give either a published file or a users file (with the audiences' directory)")
    files: dict[str, PublishedFile] = {}
    files_lock = threading.Lock()
    single = PublishedFile(published_path) if published_path is not None else None

    def published() -> PublishedFile:
        if single is not None:
            return single
        audience = flask.session.get("audience")
        with files_lock:
            if audience not in files:
                files[audience] = PublishedFile(Path(audiences_dir) / audience / "cx_warehouse.duckdb")
            return files[audience]

    app = Dash(__name__, title="CX dashboard", suppress_callback_exceptions=True, update_title=None,
               serve_locally=True)
    app.index_string = app.index_string.replace("{%css%}", "{%css%}<style>" + CSS + "</style>")
    app.layout = html.Div([
        dcc.Location(id="url"),
        html.Div([html.Div([html.B("CX dashboard "), html.Span(id="generation", className="cx-meta"),
                            html.Span([" · signed in as ", html.Span(id="signed-in"), " · ",
                                       html.A("sign out", href="/logout", id="sign-out")],
                                      className="cx-meta") if signed_in else None]),
                  html.Nav(id="nav")], className="cx-header"),
        html.Div([html.Div(["Period ", dcc.RadioItems(id="period", inline=True)]),
                  html.Div(["Channel ", dcc.RadioItems(id="channel", inline=True)])], className="cx-filters"),
        html.Div(id="page", className="cx-body"),
    ])

    if signed_in:
        server = app.server
        server.secret_key = secret_key or os.environ.get("CXW_DASHBOARD_SECRET_KEY") or os.urandom(32)
        server.config.update(SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Lax")

        @server.before_request
        def require_sign_in():
            if flask.request.path in ("/login", "/logout"):
                return None
            user, audience = flask.session.get("user"), flask.session.get("audience")
            if user is not None:
                # the users file is read on every request: a removed user or a changed audience takes effect at once
                if auth.read_users(Path(users_file)).get(user, (None,))[0] == audience:
                    return None
                flask.session.clear()
            if flask.request.method == "GET" and not flask.request.path.startswith("/_dash"):
                return flask.redirect("/login?next=" + quote(flask.request.path))
            return flask.Response("sign in first", status=401)

        @server.route("/login", methods=["GET", "POST"])
        def login():
            error = ""
            if flask.request.method == "POST":
                name = flask.request.form.get("username", "")
                audience = auth.authenticate(Path(users_file), name, flask.request.form.get("password", ""))
                if audience is not None:
                    flask.session.clear()
                    flask.session.update(user=name, audience=audience)
                    nxt = flask.request.args.get("next", "/")
                    return flask.redirect(nxt if nxt.startswith("/") and not nxt.startswith("//") else "/")
                error = '<p class="cx-missing" id="sign-in-error">Unknown user or wrong password.</p>'
            return LOGIN_PAGE.format(css=CSS, error=error), 401 if error else 200

        @server.route("/logout")
        def logout():
            flask.session.clear()
            return flask.redirect("/login")

    @app.callback(Output("period", "options"), Output("period", "value"), Output("channel", "options"),
                  Output("channel", "value"), Output("generation", "children"), Output("nav", "children"),
                  *([Output("signed-in", "children")] if signed_in else []),
                  Input("url", "pathname"), Input("period", "value"), Input("channel", "value"))
    def filters(_path, period, channel):
        who = [f"{flask.session.get('user')} ({flask.session.get('audience')})"] if signed_in else []
        try:
            snap = published().snapshot()
        except PublishedFileMissing as exc:
            return [], None, [], None, str(exc), [], *who
        periods = [{"label": "whole KPI window", "value": WINDOW}] + [{"label": m, "value": m}
                                                                      for m in _periods(snap)]
        chans = [{"label": c, "value": c} for c in _channels(snap)]
        period = period if period in {o["value"] for o in periods} else WINDOW
        channel = channel if channel in {o["value"] for o in chans} else ALL
        pub = snap.publication
        meta = (f"{as_of_text(snap)} · generation {pub.get('generation_id')} · published "
                f"{pub.get('published_at')} · {snap.path}")
        pages = visible_pages(snap) if signed_in else PAGES
        nav = [dcc.Link(title, href=path, id=f"nav{path.replace('/', '-') or '-home'}") for path, title in pages]
        return periods, period, chans, channel, meta, nav, *who

    @app.callback(Output("page", "children"), Input("url", "pathname"), Input("period", "value"),
                  Input("channel", "value"))
    def page(path, period, channel):
        try:
            snap = published().snapshot()
        except PublishedFileMissing as exc:
            return html.P(str(exc), id="no-published-file", className="cx-missing")
        render = RENDER.get(path or "/")
        if render is None:
            return html.P(f"No page {path}.", id="not-found")
        visible = visible_pages(snap) if signed_in else PAGES
        if signed_in and (path or "/") == "/" and visible and "/" not in dict(visible):
            path, render = visible[0][0], RENDER[visible[0][0]]  # the audience's first page is its home
        if signed_in and (path or "/") not in dict(visible):
            return html.P(f"The {flask.session.get('audience')} audience cannot read this page: its published file "
                          f"does not hold the tables the page shows (access/audiences.yml).", id="denied",
                          className="cx-missing")
        return html.Div(render(snap, period or WINDOW, channel or ALL), id=f"page{(path or '/').replace('/', '-')}")

    analyses.register_callbacks(app, published)
    app.published = single  # for tests and the server's log (one-file mode)
    app.audience_files = files
    return app
