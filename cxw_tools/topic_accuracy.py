"""How well the learned topics (cxw/analytics/topics.py, issue 19 point 6) recover human labels on real complaint
text, against a keyword baseline and a random baseline.

Data: the 1,532 complaints with a 'Consumer complaint narrative' in ../shared/data/cfpb_consumer_complaints_sample
(CFPB Consumer Complaint Database sample, see its PROVENANCE.md), each with CFPB's 'Product' (13 values as given,
two of them legacy names) and 'Issue' (63 values), chosen by the consumer when filing. Texts in 'Complaint ID'
order; CFPB's redaction marks ('XXXX', '{$1.00}') are removed first (they are the data set's, not the words').

Methods, each giving one cluster per complaint:
* learned: `topics.fit_topics` as the pipeline runs it (TF-IDF + NMF, the same settings and seed), the number of
  topics the pipeline would choose for 1,532 texts (`topics.n_topics_for`: 20), and for reference with as many
  topics as there are products (13) and with 10; a complaint's cluster is its topic (`Fit.primary`: the largest
  weight, or 'unassigned' when no topic explains it, which counts as one more cluster).
* keyword: an analyst's keyword list written from the product names alone (each product's name words and bigrams
  without stop words, e.g. 'debt collection' -> debt, collection, debt collection); a complaint goes to the product
  with the most keyword hits, 'none' without a hit. This knows the label names, so it is a strong baseline for
  'product' (none for 'issue').
* random: a uniform random cluster among as many as the learned topics (20; mean of 20 draws, fixed seed).

Scores against each label: NMI (normalised mutual information, arithmetic mean), adjusted Rand index, and purity
(share of complaints whose cluster's most common label is theirs; 'always the most common product' scores the
majority share, printed as majority_share).

    ./cx python -m cxw_tools.topic_accuracy [--shared DIR] [--markdown]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
CFPB = Path("data") / "cfpb_consumer_complaints_sample" / "complaints_sample.csv"
SEED = 19  # the analyses' seed (cxw/analytics/runner.py SEED)
RANDOM_DRAWS = 20
LABELS = ("Product", "Issue")
_REDACTION = re.compile(r"\bX{2,}(?:/X{2,})*\b|\{\$[\d.,]+\}")


def shared_dir() -> Path | None:
    for d in (os.environ.get("CXW_SHARED_DIR"), os.environ.get("CXW_SHARED"), REPO.parent / "shared",
              REPO.parent.parent / "shared"):
        if d and (Path(d) / CFPB).exists():
            return Path(d)
    return None


def load(csv: Path) -> pd.DataFrame:
    """The complaints with a narrative, in Complaint ID order, with column `text` (redaction marks removed)."""
    df = pd.read_csv(csv, dtype=str)
    df = df[df["Consumer complaint narrative"].notna() & (df["Consumer complaint narrative"].str.strip() != "")]
    df = df.assign(_id=df["Complaint ID"].astype(int)).sort_values("_id", kind="stable").reset_index(drop=True)
    df["text"] = [_REDACTION.sub(" ", t) for t in df["Consumer complaint narrative"]]
    return df


def learned_clusters(texts: list[str], n_topics: int, seed: int = SEED) -> np.ndarray:
    from cxw.analytics.topics import fit_topics

    return fit_topics(texts, n_topics, seed).primary()


def keyword_lists(products: list[str]) -> dict[str, list[str]]:
    """Each product's keywords: the words of its name (2+ letters, no English stop words) and their bigrams."""
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    out = {}
    for p in sorted(set(products)):
        words = [w for w in re.findall(r"[a-z]{2,}", p.lower()) if w not in ENGLISH_STOP_WORDS]
        out[p] = words + [f"{a} {b}" for a, b in zip(words, words[1:])]
    return out


def keyword_clusters(texts: list[str], keywords: dict[str, list[str]]) -> list[str]:
    patterns = {p: [re.compile(rf"\b{re.escape(k)}\b") for k in ks] for p, ks in keywords.items()}
    out = []
    for t in texts:
        low = t.lower()
        hits = {p: sum(len(rx.findall(low)) for rx in rxs) for p, rxs in patterns.items()}
        best = max(hits, key=lambda p: (hits[p], p))
        out.append(best if hits[best] > 0 else "none")
    return out


def purity(labels, clusters) -> float:
    t = pd.crosstab(pd.Series(list(clusters), name="c"), pd.Series(list(labels), name="y"))
    return float(t.max(axis=1).sum() / len(labels))


def scores(labels, clusters) -> dict[str, float]:
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    labels, clusters = list(labels), [str(c) for c in clusters]
    return {"nmi": round(float(normalized_mutual_info_score(labels, clusters)), 4),
            "ari": round(float(adjusted_rand_score(labels, clusters)), 4),
            "purity": round(purity(labels, clusters), 4), "clusters": len(set(clusters))}


def evaluate(csv: Path) -> dict:
    from cxw.analytics.topics import n_topics_for

    df = load(csv)
    texts = df["text"].tolist()
    k = n_topics_for(len(texts))
    n_products = df["Product"].nunique()
    methods = {
        f"learned (TF-IDF + NMF, {k} topics)": learned_clusters(texts, k),
        f"learned (TF-IDF + NMF, {n_products} topics)": learned_clusters(texts, n_products),
        "learned (TF-IDF + NMF, 10 topics)": learned_clusters(texts, 10),
        "keyword (product-name words)": keyword_clusters(texts, keyword_lists(df["Product"].tolist())),
    }
    out: dict = {"n": len(df), "majority_share": {lab: round(float(df[lab].value_counts().iloc[0] / len(df)), 4)
                                                  for lab in LABELS},
                 "n_labels": {lab: int(df[lab].nunique()) for lab in LABELS}, "methods": {}}
    for name, clusters in methods.items():
        out["methods"][name] = {lab: scores(df[lab], clusters) for lab in LABELS}
    rng = np.random.default_rng(SEED)
    draws = [rng.integers(0, k, len(df)) for _ in range(RANDOM_DRAWS)]
    out["methods"][f"random ({k} clusters, mean of {RANDOM_DRAWS})"] = {
        lab: {m: round(float(np.mean([scores(df[lab], d)[m] for d in draws])), 4) for m in ("nmi", "ari", "purity")}
        | {"clusters": k} for lab in LABELS}
    return out


def markdown(result: dict) -> str:
    lines = [f"n = {result['n']} complaints; majority share: product {result['majority_share']['Product']}, "
             f"issue {result['majority_share']['Issue']}", "",
             "| method | clusters | product NMI | product ARI | product purity | issue NMI | issue ARI | issue purity |",
             "|---|---|---|---|---|---|---|---|"]
    for name, m in result["methods"].items():
        p, i = m["Product"], m["Issue"]
        lines.append(f"| {name} | {p['clusters']} | {p['nmi']} | {p['ari']} | {p['purity']} | {i['nmi']} | "
                     f"{i['ari']} | {i['purity']} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m cxw_tools.topic_accuracy", description=__doc__.split("\n\n")[0])
    ap.add_argument("--shared", type=Path, default=None, help="the shared directory (default: CXW_SHARED_DIR)")
    ap.add_argument("--markdown", action="store_true", help="print the table for the docs instead of JSON")
    args = ap.parse_args(argv)
    shared = args.shared or shared_dir()
    if shared is None or not (shared / CFPB).exists():
        print(f"{CFPB} not found: set CXW_SHARED_DIR or --shared", file=sys.stderr)
        return 2
    result = evaluate(shared / CFPB)
    print(markdown(result) if args.markdown else json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
