"""Topics learned from the complaint texts (issue 19 point 6; docs/text-analytics.md "Learned topics").

Input: the dbt model `int_feedback_texts` (reviews of 1-3 stars, NPS detractor / CSAT 1-3 / CES 1-4 survey comments,
support-ticket subjects, in the KPI window). Method: TF-IDF of word unigrams and bigrams (letters only: no digits,
so no order numbers, phone numbers or e-mail fragments; English stop words; a term must occur in at least
MIN_DF texts, so a name written once never becomes a term) and non-negative matrix factorisation (NMF, scikit-learn,
NNDSVDa start: deterministic; the fixed seed of the run for the solver) into at most N_TOPICS topics. A topic is
named by its top terms; where its terms match a topic of the seed issue_topics (the keyword topics of
cx_issue_pareto), by that seed topic's name. Each text gets the topic of its largest NMF weight and that weight's
share of the text's weights.

Outputs (grain in TABLE_DOCS): cx_learned_topics (the topics), cx_feedback_topics (per feedback: topic and weight;
person-level), cx_learned_topic_pareto (per source and topic: count, share, cumulative share)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

from . import Analysis, AnalysisContext, Reader

TEXTS = "int_feedback_texts"
SEED_TOPICS = "issue_topics"  # the dbt seed of keyword topics (topic, language, term)

N_TOPICS = 20  # at most this many topics
TEXTS_PER_TOPIC = 15  # and at most one topic per this many texts
MIN_FIT = 0.1  # a text whose NMF reconstruction has a cosine below this with its TF-IDF vector is 'unassigned'
MIN_TEXTS = 30  # fewer texts in the window: the three tables with zero rows
MIN_DF = 3  # a term must occur in at least this many texts
MAX_DF = 0.5  # a term in more than half the texts says nothing about a topic
TOP_TERMS = 8  # terms listed per topic
TERM_MIN_REL = 0.1  # a listed term weighs at least this share of the topic's top term
LABEL_TERMS = 3  # terms in a topic's name when no seed topic matches
SEED_MATCH_MIN = 0.15  # a seed topic names a learned topic when its terms hold this share of the topic's weight
TOKEN_PATTERN = r"(?u)\b[^\W\d_]{2,}\b"  # words of 2+ letters (any script: Vietnamese and French too)
METHOD = "tfidf_uni_bigram_nmf_nndsvda"
UNASSIGNED = "unassigned"  # a text no topic explains (Fit.primary)

OUT_TOPICS, OUT_FEEDBACK, OUT_PARETO = "cx_learned_topics", "cx_feedback_topics", "cx_learned_topic_pareto"
_DATE = pd.ArrowDtype(pa.date32())
COLUMNS: dict[str, dict[str, object]] = {
    OUT_TOPICS: {"topic_key": "str", "topic_label": "str", "seed_topic": "str", "seed_match_share": "float64",
                 "top_terms": "str", "n_feedback": "int64", "share_of_feedback": "float64", "n_texts": "int64",
                 "n_topics": "int64", "fitted_as_of": _DATE, "method": "str"},
    OUT_FEEDBACK: {"feedback_key": "str", "feedback_kind": "str", "person_sk": "str", "occurred_date": _DATE,
                   "topic_key": "str", "topic_label": "str", "topic_weight": "float64"},
    OUT_PARETO: {"pareto_key": "str", "source": "str", "topic_key": "str", "topic_label": "str",
                 "occurrences": "int64", "persons_hit": "int64", "share_of_source": "float64",
                 "cumulative_share": "float64", "rank_by_frequency": "int64", "is_pareto_core": "bool"},
}

TABLE_DOCS = {
    OUT_TOPICS: (
        "Topics learned from the complaint texts of the KPI window (issue 19.6; TF-IDF + NMF, docs/text-analytics.md "
        "'Learned topics'): one row per topic, named by its top terms or, where its terms match a keyword topic of "
        "the seed issue_topics, by that topic's name. Refitted by every analyze run that computes (fixed seed; "
        "once per as-of day with CXW_ANALYZE_EVERY=day).", {
            "topic_key": "Key: topic_01, topic_02, ... in order of feedback assigned (most first); 'unassigned' for "
                         "the texts no topic explains (cosine of text and NMF reconstruction below 0.1).",
            "topic_label": "The topic's name: the seed topic it matches (a second match is '<seed topic>: <terms>') "
                           "or its top terms joined by ' / '; unique (a repeat gets ' (<topic_key>)').",
            "seed_topic": "The seed issue_topics topic whose terms hold the largest share of this topic's weight, "
                          "when that share reaches 0.15; null otherwise.",
            "seed_match_share": "Share of the topic's term weight held by terms of seed_topic's best match (0-1).",
            "top_terms": "The topic's highest-weighted terms (unigrams and bigrams), comma-separated.",
            "n_feedback": "Texts whose largest topic weight is this topic.",
            "share_of_feedback": "n_feedback / all texts fitted.",
            "n_texts": "Texts the model was fitted on (the same on every row).",
            "n_topics": "Topics fitted (the same on every row; at most 20, one per 15 texts).",
            "fitted_as_of": "The run's data interval end (newest day a text may have).",
            "method": "How the topics were learned (docs/text-analytics.md).",
        }),
    OUT_FEEDBACK: (
        "The learned topic of each complaint text of the KPI window (issue 19.6): the topic with the largest NMF "
        "weight, and that weight's share of the text's weights. Person-level; the text itself is not published.", {
            "feedback_key": "Key: review_key, 'hubspot:<feedback_id>' (survey response) or "
                            "'hubspot_ticket:<ticket_id>'.",
            "feedback_kind": "review, survey_response or ticket.",
            "person_sk": "The resolved person ('-1' when unresolved).",
            "occurred_date": "Date of the review, survey response or ticket.",
            "topic_key": "The text's topic (cx_learned_topics.topic_key).",
            "topic_label": "The topic's name (cx_learned_topics.topic_label).",
            "topic_weight": "The topic's share of the text's NMF weights (0-1; 0 for unassigned).",
        }),
    OUT_PARETO: (
        "Pareto of the learned topics per source (issue 19.6): texts per topic, most frequent first, with share and "
        "cumulative share of the source's texts; source 'all' adds the sources up. The keyword Pareto stays "
        "cx_issue_pareto (docs/text-analytics.md).", {
            "pareto_key": "Key: source|topic_key.",
            "source": "review, survey_response, ticket or all.",
            "topic_key": "The topic (cx_learned_topics.topic_key).",
            "topic_label": "The topic's name.",
            "occurrences": "Texts of the source assigned to the topic.",
            "persons_hit": "Distinct resolved persons among them.",
            "share_of_source": "occurrences / texts of the source.",
            "cumulative_share": "Share of the source's texts in this topic and the more frequent ones.",
            "rank_by_frequency": "1 = the source's most frequent topic (ties by topic_key).",
            "is_pareto_core": "The topics that make up the first 80% of the source's texts.",
        }),
}


def empty(table: str) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series([], dtype=t) for c, t in COLUMNS[table].items()})


@dataclass(frozen=True)
class Fit:
    terms: np.ndarray  # the vocabulary
    w: np.ndarray  # texts x topics
    h: np.ndarray  # topics x terms
    fit: np.ndarray  # per text: cosine of its TF-IDF vector and its reconstruction W·H (0 when either is zero)

    def primary(self) -> np.ndarray:
        """Each text's topic: the largest weight, or -1 ('unassigned') when the topics do not explain the text
        (cosine of text and reconstruction below MIN_FIT: its words are in no topic, so the largest of its
        near-zero weights would be noise)."""
        return np.where(self.fit >= MIN_FIT, self.w.argmax(axis=1), -1)


def fit_topics(texts: list[str], n_topics: int, seed: int) -> Fit | None:
    """TF-IDF + NMF of ``texts`` into at most ``n_topics`` topics; None when no vocabulary survives. Pure: the same
    texts in the same order and seed give the same fit (the evaluation, cxw_tools.topic_accuracy, calls it too)."""
    from sklearn.decomposition import NMF
    from sklearn.feature_extraction.text import TfidfVectorizer

    vec = TfidfVectorizer(lowercase=True, token_pattern=TOKEN_PATTERN, ngram_range=(1, 2), stop_words="english",
                          min_df=min(MIN_DF, len(texts)), max_df=MAX_DF, sublinear_tf=True)
    try:
        x = vec.fit_transform(texts)
    except ValueError:  # empty vocabulary
        return None
    k = max(1, min(n_topics, x.shape[1], x.shape[0]))
    model = NMF(n_components=k, init="nndsvda", random_state=seed, max_iter=500, tol=1e-4)
    w = model.fit_transform(x)
    h = model.components_
    rec = w @ h
    dot = np.asarray(x.multiply(rec).sum(axis=1)).ravel()
    norms = np.sqrt(np.asarray(x.multiply(x).sum(axis=1)).ravel()) * np.linalg.norm(rec, axis=1)
    cos = np.divide(dot, norms, out=np.zeros_like(dot), where=norms > 0)
    return Fit(terms=vec.get_feature_names_out(), w=w, h=h, fit=cos)


def n_topics_for(n_texts: int) -> int:
    return max(2, min(N_TOPICS, n_texts // TEXTS_PER_TOPIC))


def query(ctx: AnalysisContext) -> str:
    return (f"select feedback_kind, feedback_key, person_sk, occurred_date, text_body from {ctx.relation(TEXTS)} "
            f"where occurred_date <= cast('{ctx.as_of.isoformat()}' as date) order by feedback_key")


def seed_query(ctx: AnalysisContext) -> str:
    return f"select topic, term from {ctx.relation(SEED_TOPICS)} order by topic, term"


def run(read: Reader, ctx: AnalysisContext) -> dict[str, pd.DataFrame]:
    try:
        seeds = read(seed_query(ctx))
    except LookupError:  # a build without the seed: topics named by their terms only
        seeds = pd.DataFrame({"topic": [], "term": []})
    return learned_topics(read(query(ctx)), ctx.seed, ctx.as_of, seed_terms(seeds))


ANALYSIS = Analysis(name="topics", outputs=(OUT_TOPICS, OUT_FEEDBACK, OUT_PARETO), run=run)


def seed_terms(frame: pd.DataFrame) -> dict[str, set[str]]:
    """{seed topic: its terms}, each term as its words without English stop words ('nobody answered' -> 'answered',
    the way the vectorizer drops them from the texts), lower-cased."""
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    out: dict[str, set[str]] = {}
    for topic, term in zip(frame["topic"], frame["term"]):
        words = [w for w in str(term).lower().split() if w not in ENGLISH_STOP_WORDS]
        if words:
            out.setdefault(str(topic), set()).add(" ".join(words))
    return out


def _matches(term: str, seed: set[str]) -> bool:
    """A vocabulary term (unigram or bigram) matches a seed topic when it contains every word of one of its terms:
    'late delivery' matches delivery's 'late' and 'delivery'; 'answered email' support_response's 'answered'."""
    words = set(term.split())
    return any(set(u.split()) <= words for u in seed)


def learned_topics(frame: pd.DataFrame, seed: int, as_of, seeds: dict[str, set[str]] | None = None,
                   n_topics: int | None = None) -> dict[str, pd.DataFrame]:
    """The three tables of the texts ``frame`` (columns feedback_kind, feedback_key, person_sk, occurred_date,
    text_body): a pure function of its input (rows sorted by feedback_key here), ``seed`` and the seed topics."""
    frame = frame[frame["text_body"].notna()].sort_values("feedback_key", kind="stable").reset_index(drop=True)
    fit = fit_topics(frame["text_body"].astype(str).tolist(), n_topics or n_topics_for(len(frame)), seed) \
        if len(frame) >= MIN_TEXTS else None
    if fit is None:
        return {t: empty(t) for t in COLUMNS}
    n = len(frame)
    total = fit.w.sum(axis=1)
    primary = fit.primary()
    weight = np.where(primary >= 0, fit.w.max(axis=1) / np.where(total > 0, total, 1.0), 0.0)
    # topic keys in order of texts assigned (most first; ties by the fitted index): stable names within a run
    counts = np.bincount(primary[primary >= 0], minlength=fit.h.shape[0])
    order = sorted(range(fit.h.shape[0]), key=lambda j: (-counts[j], j))
    key = {j: f"topic_{r + 1:02d}" for r, j in enumerate(order)}
    names = _names(fit, order, seeds or {})
    topics = []
    for j in order:
        top = _top_terms(fit, j, TOP_TERMS)
        seed_topic, share = names[j][1], names[j][2]
        topics.append({"topic_key": key[j], "topic_label": names[j][0], "seed_topic": seed_topic,
                       "seed_match_share": share, "top_terms": ", ".join(top), "n_feedback": int(counts[j]),
                       "share_of_feedback": counts[j] / n})
    for row, label in zip(topics, unique_labels([t["topic_label"] for t in topics], [t["topic_key"] for t in topics])):
        row["topic_label"] = label
    if (primary < 0).any():
        c = int((primary < 0).sum())
        topics.append({"topic_key": UNASSIGNED, "topic_label": UNASSIGNED, "seed_topic": None,
                       "seed_match_share": 0.0, "top_terms": "", "n_feedback": c, "share_of_feedback": c / n})
    t = pd.DataFrame(topics)
    t["n_texts"], t["n_topics"], t["fitted_as_of"], t["method"] = n, fit.h.shape[0], as_of, METHOD
    label = {r["topic_key"]: r["topic_label"] for r in topics}
    fb = frame[["feedback_key", "feedback_kind", "person_sk", "occurred_date"]].copy()
    fb["topic_key"] = [key[j] if j >= 0 else UNASSIGNED for j in primary]
    fb["topic_label"] = fb["topic_key"].map(label)
    fb["topic_weight"] = weight
    return {OUT_TOPICS: _typed(OUT_TOPICS, t), OUT_FEEDBACK: _typed(OUT_FEEDBACK, fb),
            OUT_PARETO: _typed(OUT_PARETO, pareto(fb))}


def unique_labels(labels: list[str], keys: list[str]) -> list[str]:
    """The labels, a repeated one (two topics with the same top terms) or 'unassigned' suffixed by its topic key:
    the gate requires one name per topic."""
    seen = {UNASSIGNED}
    out = []
    for label, key in zip(labels, keys):
        out.append(label if label not in seen else f"{label} ({key})")
        seen.add(out[-1])
    return out


def _names(fit: Fit, order: list[int], seeds: dict[str, set[str]]) -> dict[int, tuple[str, str | None, float]]:
    """(label, seed topic, match share) per fitted topic. A topic's best seed topic is the one whose matching terms
    (_matches) hold the largest share of its term weights; it names the topic when that share is at least SEED_MATCH_MIN. The strongest
    match of a seed topic takes its bare name, a weaker one '<seed topic>: <terms>'; others '<t1> / <t2> / <t3>'."""
    terms = [str(t) for t in fit.terms]
    best: dict[int, tuple[str | None, float]] = {}
    for j in order:
        h = fit.h[j]
        mass = h.sum()
        scores = {s: float(sum(h[i] for i, t in enumerate(terms) if _matches(t, ts))) / mass if mass > 0 else 0.0
                  for s, ts in sorted(seeds.items())}
        s = max(scores, key=lambda k: (scores[k], k), default=None) if scores else None
        best[j] = (s, scores[s]) if s is not None and scores[s] >= SEED_MATCH_MIN else (None, scores.get(s, 0.0)
                                                                                         if s else 0.0)
    strongest: dict[str, int] = {}
    for j in order:
        s, share = best[j]
        if s is not None and (s not in strongest or share > best[strongest[s]][1]):
            strongest[s] = j
    out = {}
    for j in order:
        s, share = best[j]
        words = " / ".join(_top_terms(fit, j, LABEL_TERMS))
        if s is None:
            out[j] = (words or f"topic {j}", None, share)
        else:
            out[j] = (s if strongest[s] == j else f"{s}: {words}", s, share)
    return out


def _top_terms(fit: Fit, j: int, n: int) -> list[str]:
    """Topic j's n heaviest terms, without those under TERM_MIN_REL of its heaviest (noise a label should not show)."""
    h = fit.h[j]
    return [str(fit.terms[i]) for i in np.argsort(-h, kind="stable")[:n] if h[i] > 0 and h[i] >= TERM_MIN_REL * h.max()]


def pareto(fb: pd.DataFrame) -> pd.DataFrame:
    """Texts per source (and 'all') and topic, most frequent first, with share and cumulative share."""
    rows = []
    for source, part in [*sorted(fb.groupby("feedback_kind")), ("all", fb)]:
        g = part.groupby(["topic_key", "topic_label"], sort=True).agg(
            occurrences=("feedback_key", "size"),
            persons_hit=("person_sk", lambda p: p[p.astype(str) != "-1"].nunique())).reset_index()
        g = g.sort_values(["occurrences", "topic_key"], ascending=[False, True], kind="stable").reset_index(drop=True)
        total = g["occurrences"].sum()
        g["share_of_source"] = g["occurrences"] / total
        g["cumulative_share"] = g["occurrences"].cumsum() / total
        g["rank_by_frequency"] = np.arange(1, len(g) + 1)
        g["is_pareto_core"] = (g["cumulative_share"] - g["share_of_source"]) < 0.8
        g.insert(0, "source", source)
        g.insert(0, "pareto_key", source + "|" + g["topic_key"])
        rows.append(g)
    return pd.concat(rows, ignore_index=True) if rows else empty(OUT_PARETO)


def _typed(table: str, frame: pd.DataFrame) -> pd.DataFrame:
    cols = COLUMNS[table]
    out = frame[list(cols)].copy()
    for c, t in cols.items():
        if t == _DATE:
            out[c] = pd.to_datetime(out[c]).dt.date
        else:
            out[c] = out[c].astype(t)
    return out.reset_index(drop=True)
