"""The analysis pages of the dashboard (issue 19): KPIs by segment and channel, predicted CLV, learned topics, the
identity audit. Like every page they show published cells (cxw_dashboard/published.py reads them); the person-level
tables (predicted CLV, identity links and conflicts) reach the dashboard only as the aggregates `published.AGGREGATES`
computes in the read-only connection, never as rows of a person or a source record.
"""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
from dash import Input, Output, State, dcc, html

from .published import BREAKDOWNS, Snapshot, breakdown_kpis, breakdown_rows

GREY, BLUE = "#c4c8cf", "#3b6fb6"
LOW_STYLE = [{"if": {"filter_query": '{is_low_sample} = "yes"'}, "color": "#999", "fontStyle": "italic"}]


def _py(v):
    """A numpy scalar as the Python number it is (so an integer count displays as one)."""
    return v.item() if hasattr(v, "item") else v


def _grey_low(tab):
    tab.style_data_conditional = LOW_STYLE
    return tab


# --- KPIs by segment and channel -------------------------------------------------------------------------------------

def _default_kpi(kpis: list[str]) -> str | None:
    return next((k for k in ui.HEADLINE_KPIS if k in kpis), kpis[0] if kpis else None)


def breakdown_view(snap: Snapshot, period: str, kpi: str | None, by: str):
    """One KPI of the period per segment or per channel: the kpi_period rows as published, low-sample rows greyed."""
    kpis = breakdown_kpis(snap, period, by)
    asked, note = kpi, None
    if kpi not in kpis:
        kpi = _default_kpi(kpis)
        if asked is not None and kpi is not None:
            note = html.P(f"{asked} is not published per {by} for this period; showing {kpi}.",
                          id="breakdown-substituted", className="cx-note")
    if kpi is None:
        return html.P(f"kpi.kpi_period publishes no KPI per {by} for period {period}.", id="breakdown-none",
                      className="cx-note")
    rows = breakdown_rows(snap, kpi, period, by)
    low = rows.is_low_sample.astype(bool)
    fig = go.Figure(go.Bar(x=rows[by], y=rows.value, text=[f"n={n}" for n in rows.n], textposition="outside",
                           marker_color=[GREY if x else BLUE for x in low]))
    fig.update_layout(height=320, margin=dict(t=40), title=f"{kpi} per {by} (grey: low sample)")
    return html.Div([
        html.H3([f"{kpi} per {by} — ", "whole KPI window" if period == ui.WINDOW else period]), note,
        dcc.Graph(figure=fig, config={"staticPlot": True}, id="breakdown-chart"),
        html.Ul([html.Li([f"{code}: ", ui.num(r.value, id=f"breakdown-value-{code}"), " (n = ",
                          ui.num(r.n, id=f"breakdown-n-{code}"), ")",
                          html.Span(" low sample", className="cx-low-sample", id=f"breakdown-low-{code}")
                          if bool(r.is_low_sample) else None],
                         className="cx-greyed" if bool(r.is_low_sample) else "")
                 for code, r in zip(rows[by], rows.itertuples())], id="breakdown-list"),
        _grey_low(ui.table(rows, "breakdown-table", [by, "value", "numerator", "denominator", "n",
                                                     "is_low_sample"])),
    ], id="breakdown-view", **{"data-kpi": kpi, "data-by": by})


def page_segments(snap: Snapshot, period: str, channel: str):
    if snap.frame("kpi_period") is None:
        return ui._missing("kpi_period", "kpi.kpi_period")
    kpis = sorted(set(breakdown_kpis(snap, period, "segment")) | set(breakdown_kpis(snap, period, "channel")))
    kpi = _default_kpi(kpis)
    return html.Div([
        html.H2("KPIs by segment and channel"),
        html.P("kpi.kpi_period rows of one KPI per segment (persona, channel 'all') or per channel (segment 'all'), "
               "for the period; a row has a segment or a channel, never both (docs/segments.md). Low sample: n below "
               "the mart's threshold, greyed. The non-additive KPIs (medians, retention...) are published for 'all' "
               "only; the channel filter does not apply here."),
        html.Div([html.Div(["KPI ", dcc.Dropdown(id="breakdown-kpi", options=kpis, value=kpi, clearable=False,
                                                 persistence=True, persistence_type="session",
                                                 style={"width": 320})]),
                  html.Div(["Split by ", dcc.RadioItems(id="breakdown-by", options=list(BREAKDOWNS),
                                                        value="segment", inline=True, persistence=True,
                                                        persistence_type="session")])],
                 className="cx-filters"),
        html.Div(breakdown_view(snap, period, kpi, "segment"), id="breakdown"),
    ])


# --- predicted CLV ---------------------------------------------------------------------------------------------------

def page_clv(snap: Snapshot, period: str, channel: str):
    seg, pa, cal = snap.frame("clv_segments"), snap.frame("clv_p_alive"), snap.frame("clv_calibration")
    blocks = [html.H2("Predicted customer lifetime value"),
              html.P("BG/NBD + Gamma-Gamma fitted after dbt (docs/analytics.md \"Predictive CLV\"): the next 12 "
                     "months' expected value (undiscounted, repeat purchases only) and the probability that a "
                     "customer is alive, aggregated over cx.cx_customer_clv_predicted per current segment "
                     "(core.dim_customers.segment) — no person's row is shown. Whole fit (the period and channel "
                     "filters do not apply).")]
    if seg is None:
        blocks.append(ui._missing("clv_segments", "cx.cx_customer_clv_predicted"))
    elif int(seg.persons.iloc[0]) == 0:
        blocks.append(html.P("No predictions published: too few customers or repeat buyers for a fit.",
                             id="clv-empty", className="cx-note"))
    else:
        total = seg[seg.segment == "all"].iloc[0]
        by = seg[seg.segment != "all"]
        blocks += [
            html.Div([html.Span([f"{label}: ", ui.num(_py(total[col]), id=f"clv-{col}")], className="cx-count")
                      for label, col in [("persons", "persons"), ("repeat buyers", "repeat_buyers"),
                                         ("expected 12-month value", "expected_value_12m_sum"),
                                         ("mean P(alive)", "p_alive_mean")]], className="cx-counts"),
            html.P(f"Fitted as of {pd.Timestamp(total.model_fit_date).date()}.", id="clv-fit-date")]
        if not by.empty:
            fig = go.Figure(go.Box(name="expected_value_12m", x=by.segment, q1=by.expected_value_12m_p25,
                                   median=by.expected_value_12m_median, q3=by.expected_value_12m_p75,
                                   lowerfence=by.expected_value_12m_p10, upperfence=by.expected_value_12m_p90,
                                   mean=by.expected_value_12m_mean))
            fig.update_layout(height=320, margin=dict(t=40), title="Expected 12-month value per person by segment "
                              "(box: quartiles, whiskers: p10-p90, dashed: mean)")
            blocks.append(dcc.Graph(figure=fig, config={"staticPlot": True}, id="clv-segment-chart"))
        blocks.append(ui.table(seg, "clv-segments-table", [
            "segment", "persons", "repeat_buyers", "p_alive_mean", "persons_p_alive_ge_half",
            "expected_purchases_12m_sum", "expected_value_12m_sum", "expected_value_12m_mean",
            "expected_value_12m_p10", "expected_value_12m_median", "expected_value_12m_p90"]))
        if pa is not None and not pa.empty:
            labels = [f"{d / 10:.1f}-{(d + 1) / 10:.1f}" for d in pa.p_alive_decile]
            fig = go.Figure(go.Bar(x=labels, y=pa.persons))
            fig.update_layout(height=260, margin=dict(t=40), title="Persons by probability alive",
                              xaxis=dict(title="P(alive)", type="category"))
            blocks.append(dcc.Graph(figure=fig, config={"staticPlot": True}, id="clv-p-alive-chart"))
    blocks.append(html.H3("Calibration: predicted vs actual purchases in the holdout", id="clv-calibration-heading"))
    if cal is None:
        blocks.append(ui._missing("clv_calibration", "cx.cx_clv_calibration"))
    elif cal.empty:
        blocks.append(html.P("No calibration published with this fit (holdout under 28 days or too few customers).",
                             id="clv-calibration-empty", className="cx-note"))
    else:
        r = cal.iloc[0]
        buckets = cal[cal.frequency_bucket != "all"]
        fig = go.Figure([go.Bar(x=buckets.frequency_bucket, y=buckets.predicted_purchases, name="predicted"),
                         go.Bar(x=buckets.frequency_bucket, y=buckets.actual_purchases, name="actual")])
        fig.update_layout(height=300, margin=dict(t=40), barmode="group", xaxis=dict(type="category",
                          title="repeat purchases before the cutoff"),
                          title=f"Holdout {pd.Timestamp(r.holdout_start).date()} to "
                                f"{pd.Timestamp(r.holdout_end).date()} (exclusive)")
        allrow = cal[cal.frequency_bucket == "all"]

        def whole(col):  # the 'all' bucket's cell
            return _py(allrow[col].iloc[0]) if len(allrow) else None

        cal = cal.assign(**{c: pd.to_datetime(cal[c]).dt.date for c in ("calibration_cutoff", "holdout_start",
                                                                          "holdout_end") if c in cal})
        blocks += [
            html.P(["All customers: predicted ", ui.num(whole("predicted_purchases"), id="clv-cal-predicted"),
                    " vs actual ", ui.num(whole("actual_purchases"), id="clv-cal-actual"),
                    " purchases (ratio ", ui.num(whole("predicted_to_actual_ratio"), id="clv-cal-ratio"),
                    "). Fit converged: BG/NBD ", ui.fmt(bool(r.bgnbd_converged)), ", Gamma-Gamma ",
                    ui.fmt(bool(r.gamma_gamma_converged)), " (not converged: an edge optimum, docs/analytics.md)."],
                   id="clv-calibration-summary"),
            dcc.Graph(figure=fig, config={"staticPlot": True}, id="clv-calibration-chart"),
            ui.table(cal, "clv-calibration-table", [
                "frequency_bucket", "n_customers", "predicted_purchases", "actual_purchases",
                "predicted_to_actual_ratio", "mean_absolute_error", "calibration_cutoff", "holdout_days",
                "calibration_converged", "bgnbd_converged", "gamma_gamma_converged"])]
    return html.Div(blocks)


# --- learned topics --------------------------------------------------------------------------------------------------

def page_topics(snap: Snapshot, period: str, channel: str):
    t, p = snap.frame("topics"), snap.frame("topic_pareto")
    blocks = [html.H2("Learned topics"),
              html.P("Topics learned from the complaint texts of the KPI window by TF-IDF + NMF "
                     "(docs/text-analytics.md \"Learned topics\"): top terms, share of the complaints, the seed topic "
                     "they match; the Pareto per source. Whole KPI window (the filters do not apply).")]
    if t is None:
        blocks.append(ui._missing("topics", "cx.cx_learned_topics"))
    elif t.empty:
        blocks.append(html.P("No topics learned: too few complaint texts.", id="topics-empty", className="cx-note"))
    else:
        blocks.append(ui.table(t, "topics-table", ["topic_key", "topic_label", "top_terms", "n_feedback",
                                                   "share_of_feedback", "seed_topic", "seed_match_share"]))
    if p is None:
        blocks.append(ui._missing("topic_pareto", "cx.cx_learned_topic_pareto"))
    else:
        for source, g in p.groupby("source", sort=False):
            g = g.sort_values(["rank_by_frequency", "topic_key"])
            fig = go.Figure()
            fig.add_bar(x=g.topic_label, y=g.occurrences, name="occurrences",
                        marker_color=[BLUE if bool(c) else GREY for c in g.is_pareto_core])
            fig.add_scatter(x=g.topic_label, y=g.cumulative_share, name="cumulative share", yaxis="y2",
                            mode="lines+markers")
            fig.update_layout(height=300, title=f"{source} (dark: Pareto core)", margin=dict(t=40),
                              yaxis2=dict(overlaying="y", side="right", range=[0, 1.05]),
                              legend=dict(orientation="h", y=-0.2))
            blocks += [dcc.Graph(figure=fig, config={"staticPlot": True}, id=f"topic-pareto-chart-{source}"),
                       ui.table(g, f"topic-pareto-table-{source}", [
                           "topic_label", "occurrences", "persons_hit", "share_of_source", "cumulative_share",
                           "rank_by_frequency", "is_pareto_core"])]
    return html.Div(blocks)


# --- identity audit --------------------------------------------------------------------------------------------------

def page_identity(snap: Snapshot, period: str, channel: str):
    cov, rules, conf = snap.frame("identity_coverage"), snap.frame("identity_rules"), snap.frame("identity_conflicts")
    blocks = [html.H2("Identity audit"),
              html.P("How the identity graph linked each source's records to persons (docs/contracts.md \"Identity "
                     "audit\"): coverage per source and outcome (cx.cx_identity_coverage), links per rule "
                     "(counted from cx.cx_identity_link_audit) and the conflicts with their winning and losing rule "
                     "(counted from cx.cx_identity_conflict_audit). Counts only, no record ids. Current graph (the "
                     "filters do not apply).")]
    if cov is None:
        blocks.append(ui._missing("identity_coverage", "cx.cx_identity_coverage"))
    else:
        src = cov.drop_duplicates("source").set_index("source")
        fig = go.Figure()
        for (outcome, rule), g in cov.groupby(["outcome", "rule"], sort=True):
            fig.add_bar(x=g.source, y=g.records, name=f"{outcome}: {rule}")
        fig.update_layout(height=340, barmode="stack", margin=dict(t=40), title="Records per source by outcome")
        blocks += [
            html.Ul([html.Li([f"{s}: ", ui.num(r.source_linked_share, id=f"identity-linked-share-{s}"),
                              " linked (", ui.num(r.source_linked), " of ", ui.num(r.source_records), " records)"])
                     for s, r in src.iterrows()], id="identity-coverage-list"),
            dcc.Graph(figure=fig, config={"staticPlot": True}, id="identity-coverage-chart"),
            ui.table(cov, "identity-coverage-table", ["source", "outcome", "rule", "records", "share_of_source",
                                                      "source_records", "source_linked_share"])]
    blocks.append(html.H3("Links per rule"))
    blocks.append(ui._missing("identity_rules", "cx.cx_identity_link_audit") if rules is None else
                  ui.table(rules, "identity-rules-table"))
    blocks.append(html.H3("Conflicts"))
    if conf is None:
        blocks.append(ui._missing("identity_conflicts", "cx.cx_identity_conflict_audit"))
    elif conf.empty:
        blocks.append(html.P("No conflicts.", id="identity-no-conflicts", className="cx-note"))
    else:
        blocks.append(html.P(["Records with ambiguous evidence: ", ui.num(int(conf.records.sum()),
                                                                         id="identity-conflict-records")]))
        blocks.append(ui.table(conf, "identity-conflicts-table"))
    return html.Div(blocks)


PAGES = [("/segments", "KPIs by segment and channel"), ("/clv", "Predicted CLV"), ("/topics", "Learned topics"),
         ("/identity", "Identity audit")]
RENDER = {"/segments": page_segments, "/clv": page_clv, "/topics": page_topics, "/identity": page_identity}
# the frames a page shows (published.QUERIES / AGGREGATES): an audience whose file has none of them is not offered it
PAGE_FRAMES = {"/segments": ("kpi_period",), "/clv": ("clv_segments", "clv_calibration"),
               "/topics": ("topics", "topic_pareto"),
               "/identity": ("identity_coverage", "identity_rules", "identity_conflicts")}


def register_callbacks(app, published) -> None:
    """The segment page's KPI and split selectors (``published()``: the signed-in audience's file)."""

    @app.callback(Output("breakdown", "children"), Input("breakdown-kpi", "value"), Input("breakdown-by", "value"),
                  State("period", "value"))
    def breakdown(kpi, by, period):
        return breakdown_view(published().snapshot(), period or ui.WINDOW, kpi, by or "segment")


# last: app.py imports this module half-way through itself (for PAGES / RENDER), and this one uses app's helpers at
# call time only, so either module may be imported first
from . import app as ui  # noqa: E402
