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

Issue 19 point 6: the 3-class accuracy, macro-F1 and coverage published in docs/text-analytics.md are recomputed
(cxw_tools.sentiment_accuracy.metrics on the macro's labels) and held above floors a little under the measured
values, and VADER 3.3.2 is scored on the same reviews: the test fails if it overtakes the lexicon on macro-F1 or on
the negatives (the basis of the recommendation to keep the lexicon).
"""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

import dbt_cli
from cxw_tools import sentiment_accuracy

REPO = Path(__file__).resolve().parents[2]
SHARED = sentiment_accuracy.shared_dir()
DATA = (SHARED or Path(os.environ.get("CXW_SHARED_DIR") or "/work/shared")) / sentiment_accuracy.ALEXA


def _dbt(env: dict, *args: str) -> subprocess.CompletedProcess:
    return dbt_cli.run(env, *args, timeout=600)


@pytest.fixture(scope="module")
def lexicon_rows(tmp_path_factory):
    """One row per Alexa review, labelled by the dbt macro (cxw_tools.sentiment_accuracy.lexicon_labels)."""
    if not DATA.exists():
        pytest.skip(f"{DATA} not found")
    rows = sentiment_accuracy.lexicon_labels(DATA, tmp_path_factory.mktemp("sentiment"), dbt=_dbt)
    assert len(rows) == 3150
    return rows


@pytest.fixture(scope="module")
def by_rating(lexicon_rows):
    out: dict[int, dict] = {}
    for r in lexicon_rows:
        agg = out.setdefault(int(r["rating"]), {"reviews": 0, "english": 0, "score_sum": 0.0, "scored": 0,
                                                "positive": 0, "neutral": 0, "negative": 0, "unknown": 0})
        agg["reviews"] += 1
        agg["english"] += r["language"] == "en"
        agg[r["sentiment_label"]] += 1
        if r["sentiment_score"] is not None:
            agg["score_sum"] += r["sentiment_score"]
            agg["scored"] += 1
    for agg in out.values():
        agg["mean_score"] = agg["score_sum"] / agg["scored"]
    return out


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


# --- published accuracy (issue 19 point 6, docs/text-analytics.md) ------------------------------------------------
# 3-class accuracy against the stars (4-5 positive, 3 neutral, 1-2 negative), macro-F1 and coverage of the dbt macro,
# recomputed by cxw_tools.sentiment_accuracy.metrics from the macro's labels. The floors sit a little under the
# values measured and published in docs/text-analytics.md, so a lexicon or macro change that costs accuracy fails here
# (and the published table must be re-measured: `./cx python -m cxw_tools.sentiment_accuracy --markdown`).
# Measured 2026-12-06: accuracy 0.7937, macro-F1 0.5064, coverage 0.9717 (n 3,150). "Always positive" scores accuracy
# 0.8702 (87% of the reviews are 4-5 stars) but macro-F1 0.3102, so macro-F1 is the floor that proves skill.
ACCURACY_FLOOR = 0.78
MACRO_F1_FLOOR = 0.49
COVERAGE_FLOOR = 0.96


def test_lexicon_accuracy_on_alexa_reviews_stays_at_the_published_level(lexicon_rows, record_property):
    m = sentiment_accuracy.metrics(lexicon_rows)
    print("\nlexicon on Amazon Alexa reviews:", json.dumps(m, indent=1))
    for key in ("n", "accuracy", "macro_f1", "coverage", "balanced_accuracy_1_2_vs_4_5"):
        record_property(key, m[key])
    assert m["n"] == 3150
    assert sum(sum(row.values()) for row in m["confusion"].values()) == 3150
    assert m["accuracy"] >= ACCURACY_FLOOR, m["accuracy"]
    assert m["macro_f1"] >= MACRO_F1_FLOOR, m["macro_f1"]
    assert m["coverage"] >= COVERAGE_FLOOR, m["coverage"]
    assert m["macro_f1"] > m["majority_baseline_macro_f1"] + 0.15


def test_vader_is_not_better_than_the_lexicon_on_alexa_reviews(lexicon_rows, record_property):
    """The published comparison behind keeping the lexicon (docs/text-analytics.md): VADER 3.3.2 (vaderSentiment, in
    requirements.lock for this measurement only) on the same reviews, same label mapping. Measured 2026-12-06: VADER
    accuracy 0.8025, macro-F1 0.4716, negative F1 0.4153 vs the lexicon's 0.7937 / 0.5064 / 0.5057. If this fails,
    VADER has become the better labeller here and the recommendation (and the pipeline) should change."""
    vader_rows = sentiment_accuracy.vader_labels(DATA)
    assert vader_rows is not None, "vaderSentiment is not installed (it is in requirements.lock)"
    vader, lexicon = sentiment_accuracy.metrics(vader_rows), sentiment_accuracy.metrics(lexicon_rows)
    print("\n" + sentiment_accuracy.markdown({"lexicon": lexicon, "VADER": vader}))
    record_property("vader_macro_f1", vader["macro_f1"])
    assert vader["n"] == lexicon["n"] == 3150
    assert vader["macro_f1"] > vader["majority_baseline_macro_f1"]          # VADER itself has skill (0.47 vs 0.31)
    assert lexicon["macro_f1"] >= vader["macro_f1"]
    assert lexicon["per_class"]["negative"]["f1"] >= vader["per_class"]["negative"]["f1"]
