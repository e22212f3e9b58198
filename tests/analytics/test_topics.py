"""Learned topics (issue 19.6, cxw/analytics/topics.py): on the demo company's complaint texts the planted themes
(the answer key demo_company.texts.COMPLAINT_THEMES) never share a learned topic and the topics whose terms are a
seed topic's carry its name; the real runner writes the three tables with descriptions, identically twice; too few
texts give the tables with zero rows; and on real labelled text (the CFPB complaints in ../shared) the topics
recover CFPB's product and issue labels at least as well as measured (docs/text-analytics.md "Learned topics").

The texts are derived from the generator's truth with the rules of the dbt model int_feedback_texts (reviews of 1-3
stars, NPS 0-6 / CSAT 1-3 / CES 1-4 comments, ticket subjects): a 2,000-person company costs ~1 s to generate. The
dbt model itself is built by every full dbt build (the dashboard fixture runs the analyses after it)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from cxw.analytics import topics as tp
from cxw.analytics.runner import run_analyses
from cxw_tools import topic_accuracy

REPO = Path(__file__).resolve().parents[2]
AS_OF = date(2025, 7, 1)
ONLY = (tp.ANALYSIS,)


def _demo_texts(persons: int = 2000, seed: int = 42) -> pd.DataFrame:
    from demo_company.config import DEFAULT_DAYS, DEFAULT_START, Scale, scaled_dirt
    from demo_company.world import build_world

    w = build_world(seed, Scale("T", persons, 0, 0), DEFAULT_START, DEFAULT_DAYS, scaled_dirt(None, 1.0))

    def day(us: int):
        return pd.Timestamp(us // 1000, unit="ms").date()

    rows = [("review", f"{r.source}:{r.rid}", str(r.pid), day(r.created_us), r.comment)
            for r in w.reviews if r.stars <= 3 and r.comment]
    rows += [("survey_response", f"hubspot:{f.fid}", str(f.pid), day(f.submitted_us), f.comment)
             for f in w.feedback if f.comment and not f.quarantine
             and ((f.survey == "NPS" and f.score <= 6) or (f.survey == "CSAT" and f.score <= 3)
                  or (f.survey == "CES" and f.score <= 4))]
    rows += [("ticket", f"hubspot_ticket:{t.tid}", str(t.pid), day(t.created_us), t.subject) for t in w.tickets]
    return pd.DataFrame(rows, columns=["feedback_kind", "feedback_key", "person_sk", "occurred_date", "text_body"])


def _seed_terms() -> dict[str, set[str]]:
    return tp.seed_terms(pd.read_csv(REPO / "dbt_project" / "seeds" / "issue_topics.csv"))


@pytest.fixture(scope="module")
def demo_texts() -> pd.DataFrame:
    return _demo_texts()


@pytest.fixture(scope="module")
def demo_topics(demo_texts) -> dict[str, pd.DataFrame]:
    return tp.learned_topics(demo_texts, 19, AS_OF, _seed_terms())


def test_planted_complaint_themes_come_out_as_separate_topics(demo_texts, demo_topics):
    from demo_company.texts import COMPLAINT_THEMES

    fb = demo_topics[tp.OUT_FEEDBACK].merge(demo_texts[["feedback_key", "text_body"]], on="feedback_key")
    assert len(fb) == len(demo_texts) > 300
    fb["theme"] = fb["text_body"].map(COMPLAINT_THEMES)
    assert fb["text_body"].isin(list(COMPLAINT_THEMES)).all()  # every text is one of the keyed pools (no hostile)
    themed = fb[fb["theme"].notna() & (fb["topic_key"] != tp.UNASSIGNED)]
    mixed = themed.groupby("topic_key")["theme"].nunique()
    assert (mixed == 1).all(), themed.groupby(["topic_key", "theme"]).size()
    # the same text always gets the same topic (the texts are the generator's fixed pools)
    assert (fb.groupby("text_body")["topic_key"].nunique() == 1).all()
    # seed names: most themed texts sit in a topic named by their theme (measured 10 of the 14 themed texts)
    topics = demo_topics[tp.OUT_TOPICS].set_index("topic_key")
    per_text = themed.drop_duplicates("text_body")
    named = per_text[per_text["topic_key"].map(topics["seed_topic"]) == per_text["theme"]]
    assert len(per_text) == 14 and len(named) >= 9, per_text[["text_body", "topic_label", "theme"]]
    for text, seed in (("The grinder broke after a week.", "product_quality"),
                       ("Terrible support, nobody answered my email 😡", "support_response"),
                       ("Refund request", "refund_billing"), ("Late delivery", "delivery"),
                       ("Okay coffee, a bit pricey.", "price")):
        assert topics.loc[fb.loc[fb.text_body == text, "topic_key"].iloc[0], "seed_topic"] == seed, text


def test_learned_topic_tables_add_up(demo_topics):
    t, fb, par = (demo_topics[k] for k in (tp.OUT_TOPICS, tp.OUT_FEEDBACK, tp.OUT_PARETO))
    assert t.topic_key.is_unique and t.topic_label.is_unique and fb.feedback_key.is_unique
    assert t.n_feedback.sum() == len(fb) and t.share_of_feedback.sum() == pytest.approx(1.0)
    assert t.n_topics.iloc[0] == tp.N_TOPICS and ((fb.topic_weight > 0) & (fb.topic_weight <= 1)).all()
    assert par.pareto_key.is_unique and set(par.source) == {"review", "survey_response", "ticket", "all"}
    for source, part in par.groupby("source"):
        n = len(fb) if source == "all" else (fb.feedback_kind == source).sum()
        assert part.occurrences.sum() == n and part.cumulative_share.iloc[-1] == pytest.approx(1.0)
        assert part.occurrences.is_monotonic_decreasing and list(part.rank_by_frequency) == list(range(1, len(part) + 1))
        core = part[part.is_pareto_core]
        assert core.share_of_source.sum() >= 0.8 > core.share_of_source.iloc[:-1].sum()


def test_a_text_no_topic_explains_is_unassigned_not_forced_into_a_topic():
    """Three groups of texts with no word in common, two large and one small, and two topics: the topics are the two
    large groups, the small group's texts have zero weight in both, and the largest of zeros would put them into the
    first topic; they are 'unassigned'."""
    groups = {"a": ("grinder broke again", 20), "b": ("refund still missing", 20), "c": ("opening hours sunday", 4)}
    rows = [(g, f"k{g}{i:02d}", "-1", AS_OF, text) for g, (text, n) in groups.items() for i in range(n)]
    frame = pd.DataFrame(rows, columns=["feedback_kind", "feedback_key", "person_sk", "occurred_date", "text_body"])
    out = tp.learned_topics(frame, 19, AS_OF, {}, n_topics=2)
    fb = out[tp.OUT_FEEDBACK].assign(group=lambda d: d.feedback_key.str[1])
    per_group = fb.groupby("group")["topic_key"].agg(set)
    assert sorted(map(len, per_group)) == [1, 1, 1] and len(set().union(*per_group)) == 3, per_group
    assert per_group["c"] == {tp.UNASSIGNED} and (fb[fb.group == "c"].topic_weight == 0).all()


def test_two_topics_with_the_same_name_are_told_apart_by_their_key():
    assert tp.unique_labels(["delivery", "a / b", "a / b", "unassigned"], ["topic_01", "topic_02", "topic_03", "topic_04"]
                            ) == ["delivery", "a / b", "a / b (topic_03)", "unassigned (topic_04)"]


def _build_db(path, texts: pd.DataFrame, with_seed: bool = True):
    con = duckdb.connect(str(path))
    try:
        con.execute("create schema intermediate")
        con.register("t", texts)
        con.execute("create table intermediate.int_feedback_texts as "
                    "select * replace (cast(occurred_date as date) as occurred_date) from t")
        if with_seed:
            con.execute("create table intermediate.issue_topics as select * from read_csv(?, header = true)",
                        [str(REPO / "dbt_project" / "seeds" / "issue_topics.csv")])
    finally:
        con.close()


def _tables(path) -> dict[str, pd.DataFrame]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return {t: con.execute(f'select * from cx."{t}" order by 1').df() for t in tp.ANALYSIS.outputs}
    finally:
        con.close()


def test_the_runner_writes_the_tables_identically_twice_with_descriptions(demo_texts, demo_topics, tmp_path):
    db = tmp_path / "build.duckdb"
    _build_db(db, demo_texts)
    first = run_analyses("duckdb", as_of=AS_OF, build_db=db, analyses=ONLY)
    tables = _tables(db)
    second = run_analyses("duckdb", as_of=AS_OF, build_db=db, analyses=ONLY)
    assert first["topics"] == second["topics"] == {t: len(demo_topics[t]) for t in tp.ANALYSIS.outputs}
    for t, frame in _tables(db).items():
        pd.testing.assert_frame_equal(frame, tables[t])
    # the seed names reach the table through the runner's read of the seed relation
    assert "delivery" in set(tables[tp.OUT_TOPICS].topic_label)
    con = duckdb.connect(str(db), read_only=True)
    try:
        for t in tp.ANALYSIS.outputs:
            described = con.execute("select count(*) from duckdb_columns() where schema_name = 'cx' and table_name = ? "
                                    "and comment is not null and comment not like 'See docs%'", [t]).fetchone()[0]
            assert described == len(tp.COLUMNS[t]), t
    finally:
        con.close()


def test_too_few_texts_give_the_tables_with_zero_rows_and_the_same_columns(demo_texts, tmp_path):
    few = tmp_path / "few.duckdb"
    _build_db(few, demo_texts.head(tp.MIN_TEXTS - 1), with_seed=False)
    assert run_analyses("duckdb", as_of=AS_OF, build_db=few, analyses=ONLY)["topics"] == {
        t: 0 for t in tp.ANALYSIS.outputs}
    for t, frame in _tables(few).items():
        assert len(frame) == 0 and list(frame.columns) == list(tp.COLUMNS[t])


def test_the_runner_writes_the_same_tables_on_postgres(demo_texts, demo_topics):
    import os
    import uuid

    import psycopg2
    from psycopg2 import sql
    from psycopg2.extras import execute_values

    from tests.conftest import require_service

    require_service("postgres")
    host, port = os.environ.get("CXW_PG_HOST", "127.0.0.1"), os.environ.get("CXW_PG_PORT", "5432")
    user = os.environ.get("CXW_PG_USER", "postgres")
    dsn = f"host={host} port={port} user={user} dbname=" + "{}"
    name = f"cxw_topics_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = psycopg2.connect(dsn.format("postgres"))
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    try:
        con = psycopg2.connect(dsn.format(name))
        with con, con.cursor() as cur:
            cur.execute("create schema intermediate; create table intermediate.int_feedback_texts (feedback_kind text, "
                        "feedback_key text, person_sk text, occurred_date date, text_body text); "
                        "create table intermediate.issue_topics (topic text, language text, term text)")
            execute_values(cur, "insert into intermediate.int_feedback_texts values %s",
                           list(demo_texts.itertuples(index=False, name=None)))
            seed = pd.read_csv(REPO / "dbt_project" / "seeds" / "issue_topics.csv")
            execute_values(cur, "insert into intermediate.issue_topics values %s",
                           list(seed.itertuples(index=False, name=None)))
        con.close()
        for _ in range(2):
            report = run_analyses("postgres", as_of=AS_OF, dsn=dsn.format(name), analyses=ONLY)
        assert report["topics"] == {t: len(demo_topics[t]) for t in tp.ANALYSIS.outputs}
        con = psycopg2.connect(dsn.format(name))
        try:
            with con.cursor() as cur:
                cur.execute("select topic_key, topic_label, seed_topic, n_feedback from cx.cx_learned_topics "
                            "order by topic_key")
                got = cur.fetchall()
                cur.execute("select obj_description('cx.cx_feedback_topics'::regclass)")
                assert "learned topic" in cur.fetchone()[0]
        finally:
            con.close()
        want = demo_topics[tp.OUT_TOPICS].sort_values("topic_key")
        assert got == [(k, lab, None if pd.isna(s) else s, n) for k, lab, s, n in
                       want[["topic_key", "topic_label", "seed_topic", "n_feedback"]].itertuples(index=False)]
    finally:
        with admin.cursor() as cur:
            cur.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))
        admin.close()


# ---- real labelled text: CFPB complaints (cxw_tools.topic_accuracy; docs/text-analytics.md "Learned topics")
CFPB = (topic_accuracy.shared_dir() or Path("/work/shared")) / topic_accuracy.CFPB

# Measured (docs/text-analytics.md): 20 topics, product NMI 0.2519 / purity 0.6338, issue NMI 0.2809; random
# 0.027 / 0.4967 / 0.106. The floors sit a little under: a change of method or settings that loses recovery fails here
# (and the docs' table must be re-measured: `./cx python -m cxw_tools.topic_accuracy --markdown`).
FLOORS = {("Product", "nmi"): 0.235, ("Product", "purity"): 0.61, ("Issue", "nmi"): 0.26}


@pytest.mark.skipif(not CFPB.exists(), reason="shared CFPB sample absent (set CXW_SHARED_DIR)")
def test_learned_topics_recover_cfpb_labels_above_the_floor():
    df = topic_accuracy.load(CFPB)
    assert len(df) == 1532
    clusters = topic_accuracy.learned_clusters(df["text"].tolist(), tp.n_topics_for(len(df)))
    for (label, metric), floor in FLOORS.items():
        got = topic_accuracy.scores(df[label], clusters)[metric]
        assert got >= floor, (label, metric, got)
    # far above chance: a random assignment into 20 clusters scores product NMI 0.027
    assert topic_accuracy.scores(df["Product"], clusters)["nmi"] > 5 * 0.027
