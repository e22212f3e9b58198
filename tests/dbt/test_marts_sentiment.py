"""The lexicon sentiment macro (text_sentiment, macros/marts_dialect.sql, seeds sentiment_lexicon / language_markers)
on real text: 3,150 English Amazon Alexa reviews with 1-5 stars (shared/data/amazon_alexa_reviews, see its
PROVENANCE.md). The reviews are loaded into DuckDB and scored by the dbt macro itself (`dbt show --inline`).

Asserted: 5-star reviews score higher on average than 1-2-star reviews; positive labels are more frequent among
5-star than among 1-2-star reviews; almost all the reviews are detected as English; and on 1-2 vs 4-5 stars the
labels have skill: balanced accuracy >= 0.60, positive recall >= 0.80, negative recall >= 0.35, negative precision
>= 0.60 (measured 0.646 / 0.861 / 0.432 / 0.745; a coin flip or a constant label scores 0.5 balanced accuracy and
the 0.086 base rate as negative precision). Reported: accuracy of the label against the stars (4-5 -> positive,
3 -> neutral, 1-2 -> negative) and binary accuracy on 1-2 vs 4-5 stars (both below the 'always positive' baseline
on this 91%-positive data set, which is why they are not asserted).
"""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import duckdb
import pytest

import dbt_cli

REPO = Path(__file__).resolve().parents[2]
PROJECT = REPO / "dbt_project"
_REL = Path("data") / "amazon_alexa_reviews" / "amazon_alexa.tsv"
_CANDIDATES = [Path(d) / _REL for d in (os.environ.get("CXW_SHARED_DIR"), os.environ.get("CXW_SHARED")) if d] + \
    [REPO.parent / "shared" / _REL, REPO.parent.parent / "shared" / _REL, Path("/work/shared") / _REL]
DATA = next((c for c in _CANDIDATES if c.exists()), _CANDIDATES[0])

QUERY = """
with scored as (
    {{ text_sentiment("select cast(review_no as varchar) as text_id, verified_reviews as text_body,
                              cast(null as varchar) as language_hint from main.alexa_reviews") }}
)
select
    r.rating,
    count(*) as reviews,
    sum(case when s.language = 'en' then 1 else 0 end) as english,
    avg(s.sentiment_score) as mean_score,
    sum(case when s.sentiment_label = 'positive' then 1 else 0 end) as positive,
    sum(case when s.sentiment_label = 'neutral' then 1 else 0 end) as neutral,
    sum(case when s.sentiment_label = 'negative' then 1 else 0 end) as negative,
    sum(case when s.sentiment_label = 'unknown' then 1 else 0 end) as unknown
from main.alexa_reviews as r
inner join scored as s on s.text_id = cast(r.review_no as varchar)
group by 1
order by 1
"""


def _dbt(env: dict, *args: str) -> subprocess.CompletedProcess:
    proc = dbt_cli.run(env, *args, timeout=600)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
    return proc


@pytest.fixture(scope="module")
def by_rating(tmp_path_factory):
    if not DATA.exists():
        pytest.skip(f"{DATA} not found")
    tmp = tmp_path_factory.mktemp("sentiment")
    db = tmp / "build.duckdb"
    con = duckdb.connect(str(db))
    con.execute("create table main.alexa_reviews as "
                "select row_number() over () as review_no, cast(rating as integer) as rating, "
                "cast(verified_reviews as varchar) as verified_reviews "
                "from read_csv(?, delim = '\t', header = true, quote = '', all_varchar = true)", [str(DATA)])
    assert con.execute("select count(*) from main.alexa_reviews").fetchone()[0] == 3150
    con.close()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CXW_", "DBT_"))}
    env.update({"CXW_HOME": str(tmp), "CXW_BUILD_DB": str(db), "DBT_TARGET_PATH": str(tmp / "target"),
                "DBT_LOG_PATH": str(tmp / "logs"), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false", "DO_NOT_TRACK": "1"})
    _dbt(env, "seed", "--select", "sentiment_lexicon", "language_markers")
    proc = _dbt(env, "show", "--inline", QUERY, "--limit", "-1", "--output", "json", "--log-format", "json")
    rows = None
    for line in proc.stdout.splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        preview = event.get("data", {}).get("preview")
        if preview:
            rows = json.loads(preview) if isinstance(preview, str) else preview
    assert rows, proc.stdout[-3000:]
    return {int(r["rating"]): r for r in rows}


def test_five_stars_score_higher_than_one_and_two(by_rating):
    def mean(ratings):
        n = sum(by_rating[r]["reviews"] for r in ratings)
        return sum(by_rating[r]["mean_score"] * by_rating[r]["reviews"] for r in ratings) / n

    assert mean([5]) > mean([1, 2])
    assert mean([4, 5]) > 0


def test_labels_follow_the_stars_and_report_accuracy(by_rating, record_property):
    total = sum(r["reviews"] for r in by_rating.values())
    english = sum(r["english"] for r in by_rating.values())
    assert english / total > 0.9                      # English reviews are detected as English
    pos_share = {k: r["positive"] / r["reviews"] for k, r in by_rating.items()}
    assert pos_share[5] > pos_share[1] and pos_share[5] > pos_share[2]

    correct3 = (sum(by_rating[k]["positive"] for k in (4, 5)) + by_rating[3]["neutral"]
                + sum(by_rating[k]["negative"] for k in (1, 2)))
    polar = sum(by_rating[k]["reviews"] for k in (1, 2, 4, 5))
    correct2 = sum(by_rating[k]["positive"] for k in (4, 5)) + sum(by_rating[k]["negative"] for k in (1, 2))
    low = sum(by_rating[k]["reviews"] for k in (1, 2))
    low_recall = sum(by_rating[k]["negative"] for k in (1, 2)) / low
    report = {
        "reviews": total,
        "accuracy_3_class": round(correct3 / total, 4),
        "accuracy_binary_1_2_vs_4_5": round(correct2 / polar, 4),
        "negative_recall_1_2_stars": round(low_recall, 4),
        "mean_score_by_rating": {k: round(r["mean_score"], 4) for k, r in sorted(by_rating.items())},
        "labels_by_rating": {k: {lab: r[lab] for lab in ("positive", "neutral", "negative", "unknown")}
                             for k, r in sorted(by_rating.items())},
    }
    for key, value in report.items():
        record_property(key, value)
    print("\nsentiment vs stars (Amazon Alexa reviews):", json.dumps(report, indent=1))
    # Thresholds (measured on this data set, issue 22: positive recall 0.861, negative recall 0.432, balanced
    # accuracy 0.646, negative precision 0.745) sit a little below the measured values and well above what a
    # labeller without skill gets: a coin flip or a constant label has balanced accuracy 0.5, and a random
    # 'negative' is right at the base rate of 1-2 stars among polar reviews (0.086). Plain accuracy is not asserted:
    # 91% of the polar reviews are 4-5 stars, so "always positive" would beat any threshold on it.
    high = sum(by_rating[k]["reviews"] for k in (4, 5))
    high_recall = sum(by_rating[k]["positive"] for k in (4, 5)) / high
    labelled_negative = sum(by_rating[k]["negative"] for k in (1, 2, 4, 5))
    neg_precision = sum(by_rating[k]["negative"] for k in (1, 2)) / labelled_negative
    balanced = (high_recall + low_recall) / 2
    print("positive recall 4-5 stars %.4f, balanced accuracy %.4f, negative precision %.4f (base rate %.4f)"
          % (high_recall, balanced, neg_precision, low / polar))
    record_property("balanced_accuracy_1_2_vs_4_5", round(balanced, 4))
    record_property("negative_precision", round(neg_precision, 4))
    assert balanced >= 0.60, balanced                 # measured 0.646; no skill: 0.5
    assert high_recall >= 0.80, high_recall           # measured 0.861
    assert low_recall >= 0.35, low_recall             # measured 0.432; "always positive": 0
    assert neg_precision >= 0.60, neg_precision       # measured 0.745; no skill: 0.086 (base rate of 1-2 stars)
