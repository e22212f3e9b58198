"""Key drivers of NPS, CSAT and review rating (issue 19 point 2; docs/analytics.md "Key drivers").

For each score and period (calendar quarter, and the whole window), which experiences before a response move the
score: the relative importance of each driver as its LMG share of the R² of a linear regression of the score on all
drivers (Lindeman, Merenda & Gold; the Shapley decomposition of R²: a driver's R² gain averaged over every order in
which the drivers can enter the model), with a percentile bootstrap confidence interval (fixed seed) and n.

Input: the per-response feature rows of the dbt model `int_feedback_driver_features` (the experiences in the var
`driver_lookback_days` before each response). Output: `cx_key_drivers`, grain score x period x driver.
Observational, not causal (docs/analytics.md "Limits")."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from math import factorial

import numpy as np
import pandas as pd
import pyarrow as pa

from . import Analysis, AnalysisContext, Reader

FEATURES = "int_feedback_driver_features"
SCORES = ("nps", "csat", "review_rating")


@dataclass(frozen=True)
class Driver:
    name: str  # the driver as published (cx_key_drivers.driver)
    column: str  # its column in the source relation
    kind: str = "numeric"  # numeric: one regressor; categorical: one dummy per level but the most frequent
    source: str = "features"  # features: int_feedback_driver_features; customers: dim_customers (by person_sk)


# The drivers, in publication order. A new driver is one line here (and its column in the source relation). segment
# (issue 19.1) is the person's segment on the response date, from the feature rows (not dim_customers' current one,
# which would look ahead).
DRIVERS: tuple[Driver, ...] = (
    Driver("delivery_late", "is_delivery_late"),
    Driver("delay_days", "delay_days"),
    Driver("ticket_count", "ticket_count"),
    Driver("first_response_hours", "first_response_hours"),
    Driver("resolution_hours", "resolution_hours"),
    Driver("product_category", "product_category", "categorical"),
    Driver("channel", "channel", "categorical"),
    Driver("web_friction", "web_friction_sessions"),
    Driver("segment", "segment", "categorical"),
)

MIN_RESPONSES = 100  # fewer responses in a period: no rows for it (the window row needs as many)
N_BOOTSTRAP = 200  # bootstrap replicates per score and period
CI_LEVEL = 0.95
MAX_LEVELS = 8  # a categorical driver keeps its 8 most frequent levels; rarer ones join the reference level
METHOD = "lmg_ols_r2_bootstrap_percentile"

OUTPUT = "cx_key_drivers"
_DATE = pd.ArrowDtype(pa.date32())
COLUMNS: dict[str, object] = {
    "driver_key": "str", "score": "str", "period_grain": "str", "period_start": _DATE, "period_end": _DATE,
    "driver": "str", "driver_kind": "str", "importance_r2": "float64", "importance_share": "float64",
    "ci_low": "float64", "ci_high": "float64", "importance_rank": "int64", "coefficient": "float64",
    "direction": "str", "r_squared": "float64", "n_responses": "int64", "n_bootstrap": "int64", "method": "str",
}

# Descriptions written with the table (the published file documents every table and column).
TABLE_DOCS = {OUTPUT: (
    "Key drivers of NPS, CSAT and review rating per period (issue 19.2): each driver's share of the R² of a linear "
    "regression of the score on the experiences before the response (LMG / Shapley decomposition), with a 95% "
    "bootstrap interval and n. Observational, not causal (docs/analytics.md). Grain: score x period x driver.", {
        "driver_key": "Key: score|period_grain|period_start|driver.",
        "score": "The score explained: nps (0-10), csat (1-5) or review_rating (stars 1-5).",
        "period_grain": "quarter (a calendar quarter) or window (every response of the KPI window).",
        "period_start": "First day of the period.",
        "period_end": "Day after the period's last day (exclusive), at most the day after the newest response.",
        "driver": "The experience before the response (docs/analytics.md lists them and their lookback).",
        "driver_kind": "numeric (one regressor) or categorical (one dummy per level but the most frequent).",
        "importance_r2": "The driver's LMG share of R² in R² points (the importances of a period sum to r_squared).",
        "importance_share": "importance_r2 / r_squared: the driver's relative importance (0-1; sums to 1 per period).",
        "ci_low": "Lower bound of the 95% percentile bootstrap interval of importance_share.",
        "ci_high": "Upper bound of the 95% percentile bootstrap interval of importance_share.",
        "importance_rank": "1 = the most important driver of the score in the period.",
        "coefficient": "Numeric drivers: score points per unit of the driver in the full regression (others null).",
        "direction": "raises / lowers the score (sign of coefficient); by_level for a categorical driver.",
        "r_squared": "R² of the full regression of the score on every driver of the period.",
        "n_responses": "Responses in the period the regression used.",
        "n_bootstrap": "Bootstrap replicates behind the interval.",
        "method": "How the importance was computed (docs/analytics.md).",
    })}


def empty() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series([], dtype=t) for c, t in COLUMNS.items()})


def query(ctx: AnalysisContext, drivers: tuple[Driver, ...] = DRIVERS) -> str:
    cols = ", ".join(f"{'c' if d.source == 'customers' else 'f'}.{d.column}" for d in drivers)
    sql = (f"select f.response_key, f.score_name, f.score, f.responded_date, {cols} "
           f"from {ctx.relation(FEATURES)} as f")
    if any(d.source == "customers" for d in drivers):
        sql += f" left join {ctx.relation('dim_customers')} as c on c.person_sk = f.person_sk"
    return sql + f" where f.responded_date <= cast('{ctx.as_of.isoformat()}' as date) order by f.response_key"


def run(read: Reader, ctx: AnalysisContext) -> dict[str, pd.DataFrame]:
    return {OUTPUT: key_drivers(read(query(ctx)), ctx.seed)}


ANALYSIS = Analysis(name="key_drivers", outputs=(OUTPUT,), run=run)


def key_drivers(frame: pd.DataFrame, seed: int, drivers: tuple[Driver, ...] = DRIVERS) -> pd.DataFrame:
    """cx_key_drivers of the feature rows ``frame`` (columns score_name, score, responded_date and the drivers'):
    a pure function of its input (rows in a fixed order) and ``seed``."""
    rows: list[dict] = []
    if len(frame):
        frame = frame.reset_index(drop=True)
        days = pd.to_datetime(frame["responded_date"])
        for si, score in enumerate(SCORES):
            part = frame[frame["score_name"] == score]
            if len(part) < MIN_RESPONSES:
                continue
            d = days[part.index]
            end = (d.max() + pd.Timedelta(days=1)).date()
            periods = [("window", d.min().date(), end, part)]
            quarters = d.dt.to_period("Q")
            for q in sorted(quarters.unique()):
                sub = part[(quarters == q).to_numpy()]
                if len(sub) >= MIN_RESPONSES:
                    periods.append(("quarter", q.start_time.date(), min(q.end_time.date() + timedelta(days=1), end),
                                    sub))
            for grain, start, stop, sub in periods:
                rng = np.random.default_rng([seed, si, 0 if grain == "window" else 1, start.toordinal()])
                rows += _period_rows(score, grain, start, stop, sub, drivers, rng)
    out = pd.DataFrame(rows, columns=list(COLUMNS)) if rows else empty()
    return out.astype(COLUMNS).reset_index(drop=True)


def _design(sub: pd.DataFrame, drivers: tuple[Driver, ...]):
    """The regressors of ``sub``: one block of columns per driver that varies (a constant driver has none)."""
    blocks, used = [], []
    for d in drivers:
        if d.column not in sub.columns:
            continue
        if d.kind == "numeric":
            x = pd.to_numeric(sub[d.column], errors="coerce").fillna(0.0).to_numpy(dtype=float)
            if np.ptp(x) == 0:
                continue
            blocks.append(x[:, None])
        else:
            v = sub[d.column].fillna("unknown").astype(str)
            counts = v.value_counts()
            levels = sorted(counts.index, key=lambda k: (-counts[k], k))
            if len(levels) < 2:
                continue
            blocks.append(np.column_stack([(v == lv).to_numpy(dtype=float) for lv in levels[1:MAX_LEVELS]]))
        used.append(d)
    return used, blocks


def _period_rows(score, grain, start: date, stop: date, sub, drivers, rng) -> list[dict]:
    used, blocks = _design(sub, drivers)
    y = pd.to_numeric(sub["score"], errors="coerce").to_numpy(dtype=float)
    if not used or np.ptp(y) == 0:
        return []
    x = np.hstack(blocks)
    groups, at = [], 0
    for b in blocks:
        groups.append(np.arange(at, at + b.shape[1]))
        at += b.shape[1]
    lmg = _Lmg(groups)
    full = lmg(x, y)
    if full is None or full[0] <= 0:
        return []
    r2, contrib = full
    n = len(y)
    shares = []
    for _ in range(N_BOOTSTRAP):
        i = rng.integers(0, n, n)
        rep = lmg(x[i], y[i])
        if rep is not None and rep[0] > 0:
            shares.append(rep[1] / rep[0])
    boot = np.array(shares) if shares else np.full((1, len(used)), np.nan)
    alpha = (1 - CI_LEVEL) / 2
    lo, hi = np.quantile(boot, alpha, axis=0), np.quantile(boot, 1 - alpha, axis=0)
    coef = np.linalg.lstsq(np.column_stack([np.ones(n), x]), y, rcond=None)[0][1:]
    share = contrib / r2
    order = sorted(range(len(used)), key=lambda j: (-round(share[j], 12), used[j].name))
    rank = {j: k + 1 for k, j in enumerate(order)}
    rows = []
    for j, d in enumerate(used):
        c = float(coef[groups[j][0]]) if d.kind == "numeric" else None
        rows.append({
            "driver_key": f"{score}|{grain}|{start.isoformat()}|{d.name}", "score": score, "period_grain": grain,
            "period_start": start, "period_end": stop, "driver": d.name, "driver_kind": d.kind,
            "importance_r2": float(contrib[j]), "importance_share": float(share[j]),
            "ci_low": float(lo[j]), "ci_high": float(hi[j]), "importance_rank": rank[j], "coefficient": c,
            "direction": "by_level" if c is None else ("lowers" if c < 0 else "raises"),
            "r_squared": float(r2), "n_responses": n, "n_bootstrap": len(shares), "method": METHOD})
    return rows


class _Lmg:
    """LMG decomposition of the R² of an OLS regression over groups of columns, from the correlation matrix: the R²
    of every subset of groups (2^K small solves), then each group's gain averaged over the orders of entry."""

    def __init__(self, groups: list[np.ndarray]):
        k = len(groups)
        self.k = k
        self.cols = [np.concatenate([groups[g] for g in range(k) if m >> g & 1]) if m else np.array([], int)
                     for m in range(1 << k)]
        size = np.array([bin(m).count("1") for m in range(1 << k)])
        weight = np.array([factorial(s) * factorial(k - s - 1) / factorial(k) for s in range(k)])
        masks = np.arange(1 << k)
        self.terms = []
        for g in range(k):
            without = masks[(masks >> g & 1) == 0]
            self.terms.append((without, without | (1 << g), weight[size[without]]))

    def __call__(self, x: np.ndarray, y: np.ndarray):
        m = np.column_stack([x, y])
        c = np.cov(m, rowvar=False)
        sd = np.sqrt(np.clip(np.diag(c), 0, None))
        if sd[-1] == 0:
            return None
        sd[sd == 0] = 1.0  # a column constant in this sample explains nothing: its correlations are 0
        r = c / np.outer(sd, sd)
        np.fill_diagonal(r, 1.0)
        rxx, rxy = r[:-1, :-1], r[:-1, -1]
        r2 = np.zeros(1 << self.k)
        for mask in range(1, 1 << self.k):
            idx = self.cols[mask]
            a, b = rxx[np.ix_(idx, idx)], rxy[idx]
            try:
                sol = np.linalg.solve(a, b)
            except np.linalg.LinAlgError:
                sol = np.linalg.lstsq(a, b, rcond=None)[0]
            r2[mask] = float(b @ sol)
        contrib = np.array([np.sum(w * (r2[with_] - r2[without])) for without, with_, w in self.terms])
        return r2[-1], contrib
