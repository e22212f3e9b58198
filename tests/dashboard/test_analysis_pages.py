"""The dashboard's analysis pages (issue 19; cxw_dashboard/analyses.py) without a browser: what each page shows is
the published file's rows (KPIs by segment / channel = kpi_period's rows, identity counts = the audit tables), the
person-level tables reach the dashboard only as aggregates, and an audience sees only the panels its file holds —
also through the signed-in server's data callback (Flask's test client)."""

from __future__ import annotations

import json

import duckdb
import pandas as pd
import plotly.utils
import pytest

from cxw_dashboard.published import PublishedFile


def _json(tree) -> dict:
    return json.loads(json.dumps(tree, cls=plotly.utils.PlotlyJSONEncoder))


def _walk(node):
    if isinstance(node, list):
        for x in node:
            yield from _walk(x)
    elif isinstance(node, dict) and "props" in node:
        yield node["props"]
        yield from _walk(node["props"].get("children"))


def _ids(tree) -> dict[str, dict]:
    return {p["id"]: p for p in _walk(_json(tree)) if isinstance(p.get("id"), str)}


def _sql(path, sql: str, params=()) -> list[tuple]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute(sql, list(params)).fetchall()
    finally:
        con.close()


def _main(home):
    return home / "published" / "cx_warehouse.duckdb"


def _audience(home, audience: str):
    return home / "published" / "audiences" / audience / "cx_warehouse.duckdb"


# --- KPIs by segment and channel --------------------------------------------------------------------------------------

@pytest.mark.parametrize("period", ["window", "2025-03"])
def test_segment_and_channel_panel_shows_kpi_periods_rows_with_their_low_sample_flag(published_home, period):
    from cxw_dashboard.analyses import breakdown_view
    from cxw_dashboard.published import breakdown_kpis, breakdown_rows

    path = _main(published_home)
    snap = PublishedFile(path).snapshot()
    where_period = "grain = 'window'" if period == "window" else \
        "grain = 'month' and strftime(period_start, '%Y-%m') = ?"
    args = [] if period == "window" else [period]
    flags = set()
    for by, other in (("segment", "channel"), ("channel", "segment")):
        published = {}
        for kpi, code, value, n, low in _sql(path, f"select kpi, {by}, value, n, is_low_sample from kpi.kpi_period "
                                                   f"where {where_period} and {by} <> 'all' and {other} = 'all' "
                                                   f"order by kpi, {by}", args):
            published.setdefault(kpi, []).append((code, value, n, low))
        assert published and breakdown_kpis(snap, period, by) == sorted(published), by
        for kpi, expected in published.items():
            shown = breakdown_rows(snap, kpi, period, by)
            assert [(c, None if pd.isna(v) else v, n, bool(f)) for c, v, n, f in
                    shown[[by, "value", "n", "is_low_sample"]].itertuples(index=False)] == expected, (by, kpi)
            ids = _ids(breakdown_view(snap, period, kpi, by))
            assert ids["breakdown-view"]["data-kpi"] == kpi
            for code, value, n, low in expected:
                assert ids[f"breakdown-value-{code}"]["data-value"] == ("" if value is None else repr(float(value)))
                assert ids[f"breakdown-n-{code}"]["data-value"] == repr(float(n))
                assert (f"breakdown-low-{code}" in ids) == low, (by, kpi, code)
                flags.add(low)
    assert flags == {True, False}, "the fixture's split rows are all (or none) low-sample: the flag proves nothing"


# --- predicted CLV and learned topics on hand-made published tables ---------------------------------------------------

@pytest.fixture
def analyses_home(empty_build_db):
    """A published generation with hand-made CLV, calibration and topic tables (the raw fixture is too small for a
    fit): six persons in two current segments, one person with a segment history of two rows."""
    p, con = empty_build_db
    for schema in ("core", "cx"):
        con.execute(f"create schema {schema}")
    con.execute("""create table core.dim_customers as select * from (values ('p1', 'loyal'), ('p2', 'loyal'),
        ('p3', 'loyal'), ('p4', 'new'), ('p5', 'new'), ('p6', 'champions')) as t(person_sk, segment)""")
    # the cx_agent audience's rows of dim_customers are those of its alerts (access/audiences.yml): none here
    con.execute("create table cx.cx_detractor_alerts as select 'p1' as person_sk, 'a1' as alert_id, "
                "timestamp '2025-05-01' as due_at limit 0")
    con.execute("""create table core.dim_customer_segments as select * from (values ('p1', 'new'), ('p1', 'loyal'),
        ('p2', 'loyal'), ('p3', 'loyal'), ('p4', 'new'), ('p5', 'new'), ('p6', 'new'), ('p6', 'champions'))
        as t(person_sk, segment)""")
    con.execute("""create table cx.cx_customer_clv_predicted as select person_sk, frequency::bigint as frequency,
        p_alive::double as p_alive, expected_purchases_12m::double as expected_purchases_12m,
        expected_value_12m::double as expected_value_12m, date '2025-05-01' as model_fit_date from (values
        ('p1', 3, 0.9, 2.0, 120.0), ('p2', 0, 1.0, 0.5, 20.0), ('p3', 1, 0.4, 1.0, 60.0), ('p4', 0, 1.0, 0.3, 9.0),
        ('p5', 2, 0.2, 0.1, 4.0), ('p6', 5, 0.95, 4.0, 400.0))
        as t(person_sk, frequency, p_alive, expected_purchases_12m, expected_value_12m)""")
    con.execute("""create table cx.cx_clv_calibration as select frequency_bucket, bucket_order::bigint as
        bucket_order, n_customers::bigint as n_customers, predicted_purchases::double as predicted_purchases,
        actual_purchases::bigint as actual_purchases, predicted_to_actual_ratio::double as predicted_to_actual_ratio,
        0.5 as mean_absolute_error, date '2025-03-01' as calibration_cutoff, date '2025-03-01' as holdout_start,
        date '2025-05-01' as holdout_end, 61 as holdout_days, true as calibration_converged,
        false as bgnbd_converged, true as gamma_gamma_converged from (values ('0', 0, 3, 2.5, 1, 2.5),
        ('1', 1, 3, 1.5, 2, 0.75), ('all', 99, 6, 4.0, 3, 1.3333)) as t(frequency_bucket, bucket_order,
        n_customers, predicted_purchases, actual_purchases, predicted_to_actual_ratio)""")
    con.execute("""create table cx.cx_learned_topics as select * from (values
        ('topic_01', 'late delivery', 'late, delivery, week', 7, 0.7::double, 'delivery'),
        ('topic_02', 'refund', 'refund, money', 3, 0.3::double, 'billing'))
        as t(topic_key, topic_label, top_terms, n_feedback, share_of_feedback, seed_topic)""")
    con.execute("""create table cx.cx_learned_topic_pareto as select * from (values
        ('all', 'topic_01', 'late delivery', 7, 6, 0.7::double, 0.7::double, 1, true),
        ('all', 'topic_02', 'refund', 3, 3, 0.3, 1.0, 2, false),
        ('review', 'topic_01', 'late delivery', 4, 4, 1.0, 1.0, 1, true))
        as t(source, topic_key, topic_label, occurrences, persons_hit, share_of_source, cumulative_share,
             rank_by_frequency, is_pareto_core)""")
    con.close()
    from cxw.publish import publish

    rep = publish("run-1", "2025-04-30", "2025-05-01")
    assert rep["status"] == "published", rep
    return p.home


def test_clv_panel_aggregates_predictions_per_current_segment_and_holds_no_person_row(analyses_home):
    from cxw_dashboard.analyses import page_clv

    snap = PublishedFile(_main(analyses_home)).snapshot()
    seg = snap.frame("clv_segments").set_index("segment")
    rows = pd.DataFrame({"person_sk": ["p1", "p2", "p3", "p4", "p5", "p6"],
                         "segment": ["loyal", "loyal", "loyal", "new", "new", "champions"],
                         "p_alive": [0.9, 1.0, 0.4, 1.0, 0.2, 0.95], "frequency": [3, 0, 1, 0, 2, 5],
                         "value": [120.0, 20.0, 60.0, 9.0, 4.0, 400.0]})
    assert list(seg.index) == ["all", "loyal", "new", "champions"]  # 'all' first, then by persons
    for name, g in [("all", rows), *rows.groupby("segment")]:
        got = seg.loc[name]
        assert got.persons == len(g) and got.repeat_buyers == (g.frequency > 0).sum(), name
        assert got.expected_value_12m_sum == pytest.approx(g.value.sum()), name
        assert got.p_alive_mean == pytest.approx(g.p_alive.mean()), name
        assert got.persons_p_alive_ge_half == (g.p_alive >= 0.5).sum(), name
        assert got.expected_value_12m_median == pytest.approx(g.value.median()), name
    deciles = snap.frame("clv_p_alive")
    assert dict(zip(deciles.p_alive_decile, deciles.persons)) == {2: 1, 4: 1, 9: 4}  # p_alive 1.0 in the top bin
    # only aggregates of the person-level table reach the dashboard
    assert all("person_sk" not in f.columns for n, f in snap.frames.items() if n.startswith("clv"))
    ids = _ids(page_clv(snap, "window", "all"))
    assert ids["clv-expected_value_12m_sum"]["data-value"] == repr(613.0)
    assert ids["clv-persons"]["data-value"] == repr(6.0)
    assert ids["clv-cal-predicted"]["data-value"] == repr(4.0) and ids["clv-cal-actual"]["data-value"] == repr(3.0)
    assert [r["frequency_bucket"] for r in ids["clv-calibration-table"]["data"]] == ["0", "1", "all"]
    assert "clv-segment-chart" in ids and "clv-calibration-chart" in ids


def test_topics_panel_shows_the_published_topics_and_pareto_per_source(analyses_home):
    from cxw_dashboard.analyses import page_topics

    path = _main(analyses_home)
    ids = _ids(page_topics(PublishedFile(path).snapshot(), "window", "all"))
    assert [(r["topic_key"], r["top_terms"], r["share_of_feedback"]) for r in ids["topics-table"]["data"]] == \
        _sql(path, "select topic_key, top_terms, share_of_feedback from cx.cx_learned_topics order by 3 desc")
    for source in ("all", "review"):
        assert [(r["topic_label"], r["occurrences"], r["cumulative_share"])
                for r in ids[f"topic-pareto-table-{source}"]["data"]] == _sql(
            path, "select topic_label, occurrences, cumulative_share from cx.cx_learned_topic_pareto where source = ? "
                  "order by rank_by_frequency", [source])


def test_executive_file_gives_the_clv_calibration_but_not_the_person_level_predictions(analyses_home):
    from cxw_dashboard.analyses import page_clv
    from cxw_dashboard.app import visible_pages

    snap = PublishedFile(_audience(analyses_home, "executive")).snapshot()
    assert snap.frame("clv_segments") is None and snap.frame("clv_p_alive") is None
    ids = _ids(page_clv(snap, "window", "all"))
    assert "missing-clv_segments" in ids and "clv-calibration-table" in ids and "clv-persons" not in ids
    assert {"/clv", "/topics"} <= {p for p, _ in visible_pages(snap)}
    agent = PublishedFile(_audience(analyses_home, "cx_agent")).snapshot()
    assert not {"/segments", "/clv", "/topics", "/identity"} & {p for p, _ in visible_pages(agent)}


# --- identity audit ---------------------------------------------------------------------------------------------------

def test_identity_panel_counts_equal_the_published_audit_tables(published_home):
    from cxw_dashboard.analyses import page_identity

    path = _main(published_home)
    snap = PublishedFile(path).snapshot()
    rules = snap.frame("identity_rules")
    assert sorted(rules[["source", "rule", "links", "links_with_conflict"]].itertuples(index=False, name=None)) == \
        _sql(path, "select source, rule, count(*), count(*) filter (where has_conflict) from "
                   "cx.cx_identity_link_audit group by 1, 2 order by 1, 2")
    # the rule counts are the coverage's linked rows, source by source
    linked = dict(((s, r), n) for s, r, n in _sql(path, "select source, rule, records from cx.cx_identity_coverage "
                                                        "where outcome = 'linked'"))
    assert {(r.source, r.rule): r.links for r in rules.itertuples()} == linked
    conf = snap.frame("identity_conflicts")
    total = _sql(path, "select count(*) from cx.cx_identity_conflict_audit")[0][0]
    assert total > 0 and conf.records.sum() == total
    ids = _ids(page_identity(snap, "window", "all"))
    assert ids["identity-conflict-records"]["data-value"] == repr(float(total))
    for source, share in _sql(path, "select distinct source, source_linked_share from cx.cx_identity_coverage"):
        assert ids[f"identity-linked-share-{source}"]["data-value"] == repr(float(share))
    assert len(ids["identity-coverage-table"]["data"]) == _sql(path, "select count(*) from cx.cx_identity_coverage")[0][0]


def test_identity_panel_follows_each_audiences_file(published_home):
    analyst = PublishedFile(_audience(published_home, "analyst")).snapshot()
    # the analyst's file leaves record ids and evidence out: the counts still show, no record id reaches the page
    assert analyst.frame("identity_rules") is not None and analyst.frame("identity_conflicts") is not None
    assert all(not {"source_record_id", "evidence", "rule_evidence"} & set(f.columns) for f in analyst.frames.values())
    executive = PublishedFile(_audience(published_home, "executive")).snapshot()
    assert executive.frame("identity_coverage") is not None
    assert executive.frame("identity_rules") is None and executive.frame("identity_conflicts") is None


# --- the signed-in server: an audience's data callback --------------------------------------------------------------

def _page(client, path: str) -> dict:
    body = {"output": "page.children", "outputs": {"id": "page", "property": "children"},
            "inputs": [{"id": "url", "property": "pathname", "value": path},
                       {"id": "period", "property": "value", "value": "window"},
                       {"id": "channel", "property": "value", "value": "all"}],
            "changedPropIds": ["url.pathname"], "state": []}
    r = client.post("/_dash-update-component", json=body)
    assert r.status_code == 200, r.data[:2000]
    return {p["id"]: p for p in _walk(r.get_json()["response"]["page"]["children"]) if isinstance(p.get("id"), str)}


def test_a_signed_in_audience_gets_only_the_panels_its_file_holds(published_home, tmp_path):
    from cxw_dashboard import auth
    from cxw_dashboard.app import create_app

    users = tmp_path / "users"
    for name in ("executive", "cx_agent", "analyst"):
        auth.add_user(users, name, name, "a long password")
    app = create_app(audiences_dir=published_home / "published" / "audiences", users_file=users,
                     secret_key=b"test")

    def client(name):
        c = app.server.test_client()
        assert c.post("/login", data={"username": name, "password": "a long password"}).status_code == 302
        return c

    assert app.server.test_client().post("/_dash-update-component", json={}).status_code == 401
    agent = client("cx_agent")
    for path in ("/segments", "/clv", "/topics", "/identity"):
        assert "denied" in _page(agent, path), path
    exe = client("executive")
    ids = _page(exe, "/identity")
    assert "identity-coverage-table" in ids and "missing-identity_rules" in ids and "missing-identity_conflicts" in ids
    assert "breakdown-view" in _page(exe, "/segments")
    ids = _page(client("analyst"), "/identity")
    assert "identity-rules-table" in ids and "identity-conflicts-table" in ids
