"""cx.cx_reviews_by_source_location (the dashboard's reviews page) on a real dbt build of the raw fixture: each
period's rows, summed over sources and locations, equal kpi_period's review KPIs of that period; every review has
its location (Google: the location resource name; Trustpilot: the business unit)."""

from __future__ import annotations

import math

import duckdb


def test_review_counts_by_source_and_location_add_up_to_kpi_period(published_home):
    con = duckdb.connect(str(published_home / "published" / "cx_warehouse.duckdb"), read_only=True)
    try:
        rows = con.execute("""
            select r.grain, strftime(r.period_start, '%Y-%m'), sum(r.reviews), sum(r.rating_sum),
                   sum(r.negative_reviews), sum(r.positive_reviews), sum(r.replied_reviews)
            from cx.cx_reviews_by_source_location as r group by 1, 2 order by 1, 2""").fetchall()
        assert rows, "no review rows"
        for grain, period, reviews, stars, negative, positive, replied in rows:
            where = "grain = ? and channel = 'all' and segment = 'all'" + (
                " and strftime(period_start, '%Y-%m') = ?" if grain == "month" else "")
            args = [grain] + ([period] if grain == "month" else [])
            kpi = {k: (num, n) for k, num, n in con.execute(
                f"select kpi, numerator, n from kpi.kpi_period where {where} and kpi like 'review_%'", args)
                .fetchall()}
            assert kpi["review_rating_avg"] == (stars, reviews), (grain, period)
            assert kpi["review_negative_share"] == (negative, reviews)
            assert kpi["review_positive_share"] == (positive, reviews)
            assert kpi["review_reply_rate"] == (replied, reviews)
        avg = con.execute("select review_rating_avg, rating_sum / reviews from cx.cx_reviews_by_source_location")
        assert all(math.isclose(a, b) for a, b in avg.fetchall())
        sources = dict(con.execute("select review_source, count(distinct location) from "
                                   "cx.cx_reviews_by_source_location group by 1").fetchall())
        assert set(sources) == {"google", "trustpilot"}
        assert con.execute("select count(*) from core.fct_reviews where location is null").fetchone()[0] == 0
        assert con.execute("select count(*) from cx.cx_reviews_by_source_location where location = 'unknown'"
                           ).fetchone()[0] == 0
        types = dict(con.execute("select column_name, data_type from information_schema.columns where table_name = "
                                 "'cx_reviews_by_source_location'").fetchall())
        assert "HUGEINT" not in types.values(), types
    finally:
        con.close()
