"""Accuracy of the text sentiment on real labelled text (issue 19 point 6): the lexicon of the pipeline (dbt macro
`text_sentiment`, macros/marts_dialect.sql, seeds sentiment_lexicon / language_markers, used by int_text_sentiment)
and, for comparison, VADER (vaderSentiment) on the same texts.

Data: the 3,150 Amazon Alexa reviews of ../shared/data/amazon_alexa_reviews (star rating 1-5 and review text, see
its PROVENANCE.md). Gold label from the stars: 4-5 -> positive, 3 -> neutral, 1-2 -> negative (the data set's own
`feedback` column is 0 for 1-2 stars and 1 for 3-5, so it is not used: it puts 3 stars with the positives).
A text the lexicon cannot score (language not covered, or no letters at all) gets 'unknown': it counts as wrong in
accuracy and recall, and `coverage` is the share not labelled 'unknown'.

The lexicon labels come from the dbt macro itself: the reviews are loaded into a DuckDB file, the two seeds are
built by `dbt seed`, and `dbt show --inline` runs the macro over the reviews. No Python copy of the rule.
VADER: `compound` >= 0.05 positive, <= -0.05 negative, else neutral (the thresholds its authors recommend).

    ./cx python -m cxw_tools.sentiment_accuracy [--shared DIR] [--markdown]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import duckdb

REPO = Path(__file__).resolve().parents[1]
PROJECT = REPO / "dbt_project"
ALEXA = Path("data") / "amazon_alexa_reviews" / "amazon_alexa.tsv"
CLASSES = ("positive", "neutral", "negative")
PREDICTED = CLASSES + ("unknown",)

QUERY = """
with scored as (
    {{ text_sentiment("select cast(review_no as varchar) as text_id, verified_reviews as text_body,
                              cast(null as varchar) as language_hint from main.alexa_reviews") }}
)
select r.review_no, r.rating, s.language, s.sentiment_score, s.sentiment_label
from main.alexa_reviews as r
left join scored as s on s.text_id = cast(r.review_no as varchar)
order by r.review_no
"""


def gold_label(rating: int) -> str:
    """The label mapping: 4-5 stars positive, 3 neutral, 1-2 negative."""
    return "positive" if rating >= 4 else "neutral" if rating == 3 else "negative"


def shared_dir() -> Path | None:
    for d in (os.environ.get("CXW_SHARED_DIR"), os.environ.get("CXW_SHARED"), REPO.parent / "shared",
              REPO.parent.parent / "shared"):
        if d and (Path(d) / ALEXA).exists():
            return Path(d)
    return None


def load_alexa(db: Path, tsv: Path) -> int:
    """The reviews as main.alexa_reviews(review_no, rating, verified_reviews) in the DuckDB file `db`."""
    con = duckdb.connect(str(db))
    try:
        con.execute("create or replace table main.alexa_reviews as "
                    "select row_number() over () as review_no, cast(rating as integer) as rating, "
                    "cast(verified_reviews as varchar) as verified_reviews "
                    "from read_csv(?, delim = '\t', header = true, quote = '', all_varchar = true)", [str(tsv)])
        return con.execute("select count(*) from main.alexa_reviews").fetchone()[0]
    finally:
        con.close()


def _default_dbt(env: dict, *args: str) -> subprocess.CompletedProcess:
    dbt = Path(sys.executable).parent / "dbt"
    cmd = [str(dbt) if dbt.exists() else "dbt", *args, "--project-dir", str(PROJECT), "--profiles-dir", str(PROJECT)]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)


def lexicon_labels(tsv: Path, workdir: Path, dbt: Callable[..., subprocess.CompletedProcess] | None = None
                   ) -> list[dict]:
    """One row per review: review_no, rating, language, sentiment_score, sentiment_label — scored by the dbt macro.
    `dbt(env, *args)` runs dbt (the tests pass their dbt_cli.run, which shares dbt's parse)."""
    dbt = dbt or _default_dbt
    db = workdir / "build.duckdb"
    load_alexa(db, tsv)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CXW_", "DBT_"))}
    env.update({"CXW_HOME": str(workdir), "CXW_BUILD_DB": str(db), "DBT_TARGET_PATH": str(workdir / "target"),
                "DBT_LOG_PATH": str(workdir / "logs"), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false", "DO_NOT_TRACK": "1"})
    for args in (("seed", "--select", "sentiment_lexicon", "language_markers"),
                 ("show", "--inline", QUERY, "--limit", "-1", "--output", "json", "--log-format", "json")):
        proc = dbt(env, *args)
        if proc.returncode != 0:
            raise RuntimeError(f"dbt {args[0]} failed:\n{proc.stdout[-6000:]}{proc.stderr[-3000:]}")
    rows = None
    for line in proc.stdout.splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        preview = event.get("data", {}).get("preview") if isinstance(event, dict) else None
        if preview:
            rows = json.loads(preview) if isinstance(preview, str) else preview
    if not rows:
        raise RuntimeError("dbt show returned no rows:\n" + proc.stdout[-3000:])
    for r in rows:  # a review with no text at all is not in the macro's output: it has no label
        r["sentiment_label"] = r.get("sentiment_label") or "unknown"
    return rows


def vader_labels(tsv: Path) -> list[dict] | None:
    """VADER on the same reviews (None when vaderSentiment is not installed)."""
    try:
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer
    except ImportError:
        return None
    analyzer = SentimentIntensityAnalyzer()
    con = duckdb.connect()
    try:
        reviews = con.execute("select row_number() over () as review_no, cast(rating as integer), verified_reviews "
                              "from read_csv(?, delim = '\t', header = true, quote = '', all_varchar = true)",
                              [str(tsv)]).fetchall()
    finally:
        con.close()
    out = []
    for no, rating, text in reviews:
        if text is None or not text.strip():
            label, compound = "unknown", None
        else:
            compound = analyzer.polarity_scores(text)["compound"]
            label = "positive" if compound >= 0.05 else "negative" if compound <= -0.05 else "neutral"
        out.append({"review_no": no, "rating": rating, "sentiment_score": compound, "sentiment_label": label})
    return out


def metrics(rows: list[dict]) -> dict:
    """Accuracy, per-class precision / recall / F1, macro-F1 over the three gold classes, the confusion matrix
    (gold x predicted, 'unknown' a predicted column), n and coverage; plus the polar view (1-2 vs 4-5 stars)."""
    confusion = {g: {p: 0 for p in PREDICTED} for g in CLASSES}
    for r in rows:
        confusion[gold_label(int(r["rating"]))][r["sentiment_label"]] += 1
    n = len(rows)
    per_class = {}
    for c in CLASSES:
        tp = confusion[c][c]
        predicted = sum(confusion[g][c] for g in CLASSES)
        actual = sum(confusion[c].values())
        p = tp / predicted if predicted else 0.0
        rc = tp / actual if actual else 0.0
        per_class[c] = {"precision": round(p, 4), "recall": round(rc, 4),
                        "f1": round(2 * p * rc / (p + rc), 4) if p + rc else 0.0, "support": actual}
    correct = sum(confusion[c][c] for c in CLASSES)
    unknown = sum(confusion[g]["unknown"] for g in CLASSES)
    majority = max(sum(confusion[c].values()) for c in CLASSES)
    pos_rec = confusion["positive"]["positive"] / sum(confusion["positive"].values())
    neg_rec = confusion["negative"]["negative"] / sum(confusion["negative"].values())
    return {
        "n": n,
        "accuracy": round(correct / n, 4),
        "macro_f1": round(sum(v["f1"] for v in per_class.values()) / len(CLASSES), 4),
        "coverage": round(1 - unknown / n, 4),
        "per_class": per_class,
        "confusion": confusion,
        "balanced_accuracy_1_2_vs_4_5": round((pos_rec + neg_rec) / 2, 4),
        # "always the most frequent gold class": accuracy = its share, macro-F1 = its F1 / 3
        "majority_baseline_accuracy": round(majority / n, 4),
        "majority_baseline_macro_f1": round(2 * (majority / n) / (majority / n + 1) / len(CLASSES), 4),
    }


def markdown(results: dict[str, dict]) -> str:
    names = list(results)
    lines = ["| metric | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for key in ("n", "coverage", "accuracy", "macro_f1", "balanced_accuracy_1_2_vs_4_5", "majority_baseline_accuracy",
                "majority_baseline_macro_f1"):
        lines.append(f"| {key} | " + " | ".join(str(results[m][key]) for m in names) + " |")
    for c in CLASSES:
        for k in ("precision", "recall", "f1"):
            lines.append(f"| {c} {k} | " + " | ".join(str(results[m]["per_class"][c][k]) for m in names) + " |")
    for m in names:
        lines += ["", f"Confusion matrix, {m} (rows: gold from the stars; columns: predicted)", "",
                  "| gold \\ predicted | " + " | ".join(PREDICTED) + " | n |", "|---|" + "---|" * (len(PREDICTED) + 1)]
        for g in CLASSES:
            row = results[m]["confusion"][g]
            lines.append(f"| {g} | " + " | ".join(str(row[p]) for p in PREDICTED) + f" | {sum(row.values())} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m cxw_tools.sentiment_accuracy", description=__doc__.split("\n\n")[0])
    ap.add_argument("--shared", type=Path, default=None, help="the shared directory (default: CXW_SHARED_DIR)")
    ap.add_argument("--markdown", action="store_true", help="print the tables for the docs instead of JSON")
    args = ap.parse_args(argv)
    shared = args.shared or shared_dir()
    if shared is None or not (shared / ALEXA).exists():
        print(f"{ALEXA} not found: set CXW_SHARED_DIR or --shared", file=sys.stderr)
        return 2
    tsv = shared / ALEXA
    with tempfile.TemporaryDirectory(prefix="cxw-sentiment-") as tmp:
        results = {"lexicon (dbt text_sentiment)": metrics(lexicon_labels(tsv, Path(tmp)))}
    vader = vader_labels(tsv)
    if vader is not None:
        results["VADER 3.3.2"] = metrics(vader)
    else:
        print("vaderSentiment is not installed: lexicon only", file=sys.stderr)
    print(markdown(results) if args.markdown else json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
