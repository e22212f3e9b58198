"""Predictive CLV (issue 19 point 4): BG/NBD for the number of future purchases and probability alive, Gamma-Gamma
for the value of a purchase, fitted by maximum likelihood on the confirmed orders of resolved persons (the input of
the historical `cx_customer_clv`), plus a calibration/holdout check published with each fit (docs/analytics.md).

Models (non-contractual, continuous-time purchasing):
- BG/NBD: Fader, Hardie & Lee (2005), "Counting Your Customers" the Easy Way: An Alternative to the Pareto/NBD
  Model, Marketing Science 24(2). Parameters r, alpha (purchase rate ~ Gamma(r, alpha)), a, b (drop-out probability
  after each purchase ~ Beta(a, b)). Likelihood eq. (6), P(alive) eq. (11), conditional expectation eq. (10).
- Gamma-Gamma: Fader, Hardie & Lee (2005), RFM and CLV: Using Iso-Value Curves for Customer Base Analysis, Journal
  of Marketing Research 42(4), and Fader & Hardie (2013), "The Gamma-Gamma Model of Monetary Value". Parameters p,
  q, gamma; fitted on persons with at least one repeat purchase.

A purchase is a person's confirmed orders of one calendar day (summed); frequency = purchase days - 1 (repeat
purchases), recency = last - first purchase day, T = as_of - first purchase day, in weeks; monetary = mean value of
the repeat purchases (net revenue, `amount_untaxed`, as the historical CLV). No random step: the fits are
deterministic optimisations from a fixed start, so the same orders give identical tables (ctx.seed is unused).
"""

from __future__ import annotations

from dataclasses import dataclass
import numpy as np
import pandas as pd
from scipy import optimize, special

from cxw.analytics import Analysis, AnalysisContext, Reader

PREDICTED = "cx_customer_clv_predicted"
CALIBRATION = "cx_clv_calibration"

WEEK_DAYS = 7.0
HORIZON_DAYS = 365  # "12 months" of the prediction
MIN_CUSTOMERS = 30  # fewer persons with an order: no fit, empty tables
MIN_REPEAT_CUSTOMERS = 10  # fewer persons with a repeat purchase: no fit (Gamma-Gamma needs them), empty tables
MAX_HOLDOUT_DAYS = 365
MIN_HOLDOUT_DAYS = 28
HOLDOUT_SHARE = 1 / 3  # holdout = a third of the order history, at most a year, at least four weeks
FREQUENCY_BUCKETS = ("0", "1", "2", "3", "4", "5", "6", "7+")
LOG_PARAM_BOUNDS = (-12.0, 12.0)  # each parameter is fitted as its log within these bounds
BOUND_MARGIN = 0.01  # a log parameter this close to a bound counts as at the bound

PREDICTED_COLUMNS: dict[str, str] = {
    "person_sk": "str",
    "first_purchase_date": "datetime64[s]",
    "last_purchase_date": "datetime64[s]",
    "frequency": "int64",
    "recency_weeks": "float64",
    "t_weeks": "float64",
    "monetary": "float64",
    "p_alive": "float64",
    "expected_purchases_12m": "float64",
    "expected_average_value": "float64",
    "expected_value_12m": "float64",
    "model_fit_date": "datetime64[s]",
}

CALIBRATION_COLUMNS: dict[str, str] = {
    "frequency_bucket": "str",  # '0'..'6', '7+' (repeat purchases before the cutoff) or 'all'
    "bucket_order": "int64",
    "model_fit_date": "datetime64[s]",
    "calibration_cutoff": "datetime64[s]",
    "holdout_start": "datetime64[s]",
    "holdout_end": "datetime64[s]",
    "holdout_days": "int64",
    "n_customers": "int64",
    "predicted_purchases": "float64",
    "actual_purchases": "int64",
    "predicted_to_actual_ratio": "float64",
    "mean_absolute_error": "float64",
    "calibration_r": "float64",
    "calibration_alpha": "float64",
    "calibration_a": "float64",
    "calibration_b": "float64",
    "calibration_log_likelihood": "float64",
    "calibration_converged": "bool",
    "n_customers_fit": "int64",
    "bgnbd_r": "float64",
    "bgnbd_alpha": "float64",
    "bgnbd_a": "float64",
    "bgnbd_b": "float64",
    "bgnbd_log_likelihood": "float64",
    "bgnbd_converged": "bool",
    "gamma_gamma_p": "float64",
    "gamma_gamma_q": "float64",
    "gamma_gamma_gamma": "float64",
    "gamma_gamma_log_likelihood": "float64",
    "gamma_gamma_converged": "bool",
}


# Descriptions written with the tables (the published file documents every table and column; cxw/analytics/runner.py).
TABLE_DOCS = {
    "cx_customer_clv_predicted": (
        "Predicted customer lifetime value per resolved person with a confirmed order (issue 19.4): BG/NBD for the "
        "number of future purchases and probability alive, Gamma-Gamma for the average order value, fitted on every "
        "order up to the run's as-of day (docs/analytics.md). Grain: person.", {
            "person_sk": "The resolved person (salted surrogate key, as in dim_customers).",
            "first_purchase_date": "Day of the person's first confirmed order.",
            "last_purchase_date": "Day of the person's newest confirmed order up to the as-of day.",
            "frequency": "Repeat purchases: purchase days after the first one.",
            "recency_weeks": "Weeks from the first to the last purchase.",
            "t_weeks": "Weeks from the first purchase to the as-of day (the customer's age).",
            "monetary": "Mean value of the repeat purchases (0 without a repeat purchase).",
            "p_alive": "BG/NBD probability that the person is still an active customer at the as-of day (0-1).",
            "expected_purchases_12m": "BG/NBD expected purchases in the 365 days after the as-of day.",
            "expected_average_value": "Gamma-Gamma expected value of one future purchase.",
            "expected_value_12m": "expected_purchases_12m x expected_average_value: predicted 12-month value "
                                  "(undiscounted).",
            "model_fit_date": "The as-of day the models were fitted on.",
        }),
    "cx_clv_calibration": (
        "Holdout check of each predictive-CLV fit (issue 19.4): BG/NBD fitted on orders up to a cutoff, its "
        "predicted purchases in the held-out period after the cutoff against the actual ones, per frequency "
        "bucket and in total ('all'); the full fit's parameters ride along. Grain: fit x frequency bucket.", {
            "frequency_bucket": "Repeat purchases before the cutoff: '0'..'6', '7+', or 'all' (every customer).",
            "bucket_order": "Sort order of the buckets ('all' last).",
            "model_fit_date": "The as-of day of the fit.",
            "calibration_cutoff": "End of the calibration period (fit on orders before it).",
            "holdout_start": "First day of the held-out period.",
            "holdout_end": "Day after the held-out period's last day.",
            "holdout_days": "Length of the held-out period in days (a third of the history, 28-365).",
            "n_customers": "Customers of the bucket (first purchase before the cutoff).",
            "predicted_purchases": "Purchases the calibration fit predicts in the holdout for the bucket.",
            "actual_purchases": "Purchases the bucket made in the holdout.",
            "predicted_to_actual_ratio": "predicted_purchases / actual_purchases (null when no actual purchase).",
            "mean_absolute_error": "Mean over the bucket's customers of |predicted - actual| holdout purchases.",
            "calibration_r": "BG/NBD r of the calibration fit.",
            "calibration_alpha": "BG/NBD alpha of the calibration fit.",
            "calibration_a": "BG/NBD a of the calibration fit.",
            "calibration_b": "BG/NBD b of the calibration fit.",
            "calibration_log_likelihood": "Log-likelihood of the calibration fit.",
            "calibration_converged": "False when a parameter ended at its bound (an edge optimum, docs/analytics.md).",
            "n_customers_fit": "Customers of the full fit (every order up to the as-of day).",
            "bgnbd_r": "BG/NBD r of the full fit.",
            "bgnbd_alpha": "BG/NBD alpha of the full fit.",
            "bgnbd_a": "BG/NBD a of the full fit.",
            "bgnbd_b": "BG/NBD b of the full fit.",
            "bgnbd_log_likelihood": "Log-likelihood of the full BG/NBD fit.",
            "bgnbd_converged": "False when a BG/NBD parameter ended at its bound.",
            "gamma_gamma_p": "Gamma-Gamma p of the full fit.",
            "gamma_gamma_q": "Gamma-Gamma q of the full fit.",
            "gamma_gamma_gamma": "Gamma-Gamma gamma of the full fit.",
            "gamma_gamma_log_likelihood": "Log-likelihood of the Gamma-Gamma fit.",
            "gamma_gamma_converged": "False when a Gamma-Gamma parameter ended at its bound.",
        }),
}
assert set(TABLE_DOCS["cx_customer_clv_predicted"][1]) == set(PREDICTED_COLUMNS)
assert set(TABLE_DOCS["cx_clv_calibration"][1]) == set(CALIBRATION_COLUMNS)

# ------------------------------------------------------------------ BG/NBD


@dataclass(frozen=True)
class Fit:
    params: tuple[float, ...]
    log_likelihood: float
    converged: bool


def bgnbd_log_likelihood(params, x, t_x, T) -> np.ndarray:
    """Per-customer log-likelihood of BG/NBD (FHL 2005 eq. 6) for repeat purchases x, recency t_x and age T."""
    r, alpha, a, b = params
    x = np.asarray(x, dtype=float)
    t_x = np.asarray(t_x, dtype=float)
    T = np.asarray(T, dtype=float)
    a1 = special.gammaln(r + x) - special.gammaln(r) + r * np.log(alpha)
    a2 = special.gammaln(a + b) + special.gammaln(b + x) - special.gammaln(b) - special.gammaln(a + b + x)
    a3 = -(r + x) * np.log(alpha + T)
    with np.errstate(divide="ignore", invalid="ignore"):
        a4 = np.where(x > 0, np.log(a) - np.log(np.maximum(b + x - 1, 1e-300)) - (r + x) * np.log(alpha + t_x),
                      -np.inf)
    return a1 + a2 + np.logaddexp(a3, a4)


def _minimise(neg_ll, n_params: int) -> tuple[np.ndarray, bool]:
    """L-BFGS-B on the log parameters from log(1) = 0, then a Nelder-Mead polish (which also helps where the
    numerical gradient is poor); deterministic. L-BFGS-B first: on the demo company, whose optimum lies on a bound,
    Nelder-Mead alone crawls along it (9 s instead of 1.7 s for 6,400 customers)."""
    bounds = [LOG_PARAM_BOUNDS] * n_params
    first = optimize.minimize(neg_ll, np.zeros(n_params), method="L-BFGS-B", bounds=bounds,
                              options={"maxiter": 2_000, "ftol": 1e-13, "gtol": 1e-8})
    polish = optimize.minimize(neg_ll, first.x, method="Nelder-Mead", bounds=bounds,
                               options={"maxiter": 2_000, "maxfev": 2_000, "xatol": 1e-7, "fatol": 1e-9})
    best = polish if polish.fun <= first.fun else first
    # a parameter at its bound (e.g. a, b -> infinity: the same drop-out probability for everyone) is a maximum on
    # the edge of the parameter space, not an interior optimum: reported as not converged
    lo, hi = LOG_PARAM_BOUNDS
    at_bound = bool(np.any((best.x < lo + BOUND_MARGIN) | (best.x > hi - BOUND_MARGIN)))
    converged = bool(first.success or polish.success) and bool(np.isfinite(best.fun)) and not at_bound
    return best.x, converged


def _aggregate(*cols) -> tuple[tuple[np.ndarray, ...], np.ndarray]:
    """Unique rows of the given columns and their counts (the likelihood is evaluated once per distinct row)."""
    stacked = np.column_stack([np.asarray(c, dtype=float) for c in cols])
    uniq, counts = np.unique(stacked, axis=0, return_counts=True)
    return tuple(uniq[:, i] for i in range(uniq.shape[1])), counts.astype(float)


def fit_bgnbd(x, t_x, T) -> Fit:
    (ux, ut, uT), w = _aggregate(x, t_x, T)

    def neg_ll(log_params):
        ll = bgnbd_log_likelihood(np.exp(log_params), ux, ut, uT)
        total = float(np.dot(w, ll))
        return -total if np.isfinite(total) else 1e300

    log_params, converged = _minimise(neg_ll, 4)
    params = tuple(float(v) for v in np.exp(log_params))
    return Fit(params, -neg_ll(log_params), converged)


def bgnbd_p_alive(params, x, t_x, T) -> np.ndarray:
    """P(alive | x, t_x, T) (FHL 2005 eq. 11); 1 for a customer without a repeat purchase."""
    r, alpha, a, b = params
    x = np.asarray(x, dtype=float)
    t_x = np.asarray(t_x, dtype=float)
    T = np.asarray(T, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        log_ratio = np.log(a) - np.log(np.maximum(b + x - 1, 1e-300)) + (r + x) * (np.log(alpha + T)
                                                                              - np.log(alpha + t_x))
        p = np.where(x > 0, 1.0 / (1.0 + np.exp(log_ratio)), 1.0)
    return np.clip(p, 0.0, 1.0)


def bgnbd_expected_purchases(params, t, x, t_x, T) -> np.ndarray:
    """E[purchases in (T, T + t] | x, t_x, T] (FHL 2005 eq. 10)."""
    r, alpha, a, b = params
    x = np.asarray(x, dtype=float)
    t_x = np.asarray(t_x, dtype=float)
    T = np.asarray(T, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        z = t / (alpha + T + t)
        hyp = special.hyp2f1(r + x, b + x, a + b + x - 1, z)
        head = (a + b + x - 1) / (a - 1)
        body = 1 - np.exp((r + x) * np.log((alpha + T) / (alpha + T + t))) * hyp
        log_odds = np.log(a) - np.log(np.maximum(b + x - 1, 1e-300)) + (r + x) * (np.log(alpha + T)
                                                                               - np.log(alpha + t_x))
        denom = 1 + np.where(x > 0, np.exp(log_odds), 0.0)
        value = head * body / denom
    return np.clip(np.nan_to_num(value, nan=0.0, posinf=0.0, neginf=0.0), 0.0, None)


# ------------------------------------------------------------------ Gamma-Gamma


def gamma_gamma_log_likelihood(params, x, m) -> np.ndarray:
    """Per-customer log density of the mean spend m of x >= 1 repeat purchases (Fader & Hardie 2013 eq. 3)."""
    p, q, g = params
    x = np.asarray(x, dtype=float)
    m = np.asarray(m, dtype=float)
    return (special.gammaln(p * x + q) - special.gammaln(p * x) - special.gammaln(q) + q * np.log(g)
            + (p * x - 1) * np.log(m) + p * x * np.log(x) - (p * x + q) * np.log(g + m * x))


def fit_gamma_gamma(x, m) -> Fit:
    (ux, um), w = _aggregate(x, m)

    def neg_ll(log_params):
        total = float(np.dot(w, gamma_gamma_log_likelihood(np.exp(log_params), ux, um)))
        return -total if np.isfinite(total) else 1e300

    log_params, converged = _minimise(neg_ll, 3)
    params = tuple(float(v) for v in np.exp(log_params))
    return Fit(params, -neg_ll(log_params), converged and params[1] > 1)


def gamma_gamma_expected_value(params, x, m) -> np.ndarray:
    """E[value of a purchase | x, m] = (p (gamma + x m)) / (p x + q - 1); the population mean p gamma / (q - 1)
    for x = 0. Needs q > 1 (a finite mean); otherwise the observed mean spend, or the mean of the repeaters."""
    p, q, g = params
    x = np.asarray(x, dtype=float)
    m = np.asarray(m, dtype=float)
    if q > 1:
        return p * (g + x * m) / (p * x + q - 1)
    repeaters = m[x > 0]
    fallback = float(repeaters.mean()) if repeaters.size else 0.0
    return np.where(x > 0, m, fallback)


# ------------------------------------------------------------------ data


def _purchases(read: Reader, ctx: AnalysisContext) -> pd.DataFrame:
    """One row per person and purchase day: confirmed orders of resolved persons (not company partners), up to and
    including ctx.as_of, summed per day (the orders the historical cx_customer_clv counts)."""
    sql = f"""
        select o.person_sk, o.order_date as purchase_date, sum(o.amount_untaxed) as amount
        from {ctx.relation('fct_orders')} as o
        inner join {ctx.relation('dim_customers')} as c on c.person_sk = o.person_sk
        where o.is_confirmed and o.person_sk <> '-1' and not c.is_company
          and o.order_date <= date '{_day(ctx.as_of).date().isoformat()}'
        group by o.person_sk, o.order_date
        order by o.person_sk, o.order_date
    """
    df = read(sql)
    df = pd.DataFrame({
        "person_sk": df["person_sk"].astype("str"),
        "purchase_date": pd.to_datetime(df["purchase_date"]).dt.normalize().astype("datetime64[s]"),
        "amount": pd.to_numeric(df["amount"]).astype("float64").fillna(0.0),
    })
    return df.sort_values(["person_sk", "purchase_date"], kind="stable").reset_index(drop=True)


def summarise(purchases: pd.DataFrame, end: pd.Timestamp) -> pd.DataFrame:
    """Per person: frequency (repeat purchase days), recency and T in weeks, monetary (mean repeat purchase) up to
    `end` (inclusive), from person/day rows."""
    p = purchases[purchases["purchase_date"] <= end]
    g = p.groupby("person_sk", sort=True)
    first = g["purchase_date"].min()
    last = g["purchase_date"].max()
    days = g["purchase_date"].count()
    total = g["amount"].sum()
    first_amount = p.drop_duplicates("person_sk", keep="first").set_index("person_sk")["amount"]
    frequency = (days - 1).astype("int64")
    repeat_total = total - first_amount.reindex(total.index)
    monetary = np.where(frequency > 0, repeat_total / frequency.clip(lower=1), 0.0)
    out = pd.DataFrame({
        "person_sk": first.index.astype("str"),
        "first_purchase_date": first.to_numpy(),
        "last_purchase_date": last.to_numpy(),
        "frequency": frequency.to_numpy(),
        "recency_weeks": ((last - first).dt.days / WEEK_DAYS).to_numpy(),
        "t_weeks": ((end - first).dt.days / WEEK_DAYS).to_numpy(),
        "monetary": np.asarray(monetary, dtype=float),
    })
    return out.reset_index(drop=True)


def _frame(data: dict | list, columns: dict[str, str]) -> pd.DataFrame:
    df = pd.DataFrame(data, columns=list(columns))
    return df.astype(columns)


def _empty() -> dict[str, pd.DataFrame]:
    return {PREDICTED: _frame([], PREDICTED_COLUMNS), CALIBRATION: _frame([], CALIBRATION_COLUMNS)}


def _fittable(summary: pd.DataFrame) -> bool:
    return (len(summary) >= MIN_CUSTOMERS
            and int(((summary["frequency"] > 0) & (summary["monetary"] > 0)).sum()) >= MIN_REPEAT_CUSTOMERS)


def _bucket(frequency: pd.Series) -> pd.Series:
    return frequency.clip(upper=len(FREQUENCY_BUCKETS) - 1).map(dict(enumerate(FREQUENCY_BUCKETS)))


def calibrate(purchases: pd.DataFrame, as_of: pd.Timestamp) -> tuple[dict, pd.DataFrame] | None:
    """Fit BG/NBD on the purchases up to a cutoff, predict each person's purchases in the holdout (cutoff, as_of]
    and compare with what they did. Returns (window and calibration fit, per-bucket rows) or None when the history is
    too short or too few persons bought before the cutoff."""
    if purchases.empty:
        return None
    history_days = int((as_of - purchases["purchase_date"].min()).days)
    holdout_days = min(MAX_HOLDOUT_DAYS, int(history_days * HOLDOUT_SHARE))
    if holdout_days < MIN_HOLDOUT_DAYS:
        return None
    cutoff = as_of - pd.Timedelta(days=holdout_days)
    cal = summarise(purchases, cutoff)
    if not _fittable(cal):
        return None
    fit = fit_bgnbd(cal["frequency"], cal["recency_weeks"], cal["t_weeks"])
    predicted = bgnbd_expected_purchases(fit.params, holdout_days / WEEK_DAYS, cal["frequency"],
                                         cal["recency_weeks"], cal["t_weeks"])
    hold = purchases[(purchases["purchase_date"] > cutoff) & (purchases["purchase_date"] <= as_of)]
    actual = hold.groupby("person_sk")["purchase_date"].count().reindex(cal["person_sk"], fill_value=0)
    per = pd.DataFrame({"bucket": _bucket(cal["frequency"]).to_numpy(), "predicted": predicted,
                        "actual": actual.to_numpy().astype("int64")})
    per["abs_error"] = (per["predicted"] - per["actual"]).abs()
    rows = []
    for order, bucket in enumerate((*FREQUENCY_BUCKETS, "all")):
        part = per if bucket == "all" else per[per["bucket"] == bucket]
        if part.empty:
            continue
        pred, act = float(part["predicted"].sum()), int(part["actual"].sum())
        rows.append({"frequency_bucket": bucket, "bucket_order": order, "n_customers": len(part),
                     "predicted_purchases": pred, "actual_purchases": act,
                     "predicted_to_actual_ratio": pred / act if act else np.nan,
                     "mean_absolute_error": float(part["abs_error"].mean())})
    window = {"calibration_cutoff": cutoff, "holdout_start": cutoff + pd.Timedelta(days=1), "holdout_end": as_of,
              "holdout_days": holdout_days, "calibration_r": fit.params[0], "calibration_alpha": fit.params[1],
              "calibration_a": fit.params[2], "calibration_b": fit.params[3],
              "calibration_log_likelihood": fit.log_likelihood, "calibration_converged": fit.converged}
    return window, pd.DataFrame(rows)


def _day(value) -> pd.Timestamp:
    """ctx.as_of as a naive midnight (a date, or a datetime in any zone: its UTC day)."""
    ts = pd.Timestamp(value)
    if ts.tzinfo is not None:
        ts = ts.tz_convert("UTC").tz_localize(None)
    return ts.normalize().as_unit("s")


def run(read: Reader, ctx: AnalysisContext) -> dict[str, pd.DataFrame]:
    as_of = _day(ctx.as_of)
    purchases = _purchases(read, ctx)
    summary = summarise(purchases, as_of)
    if not _fittable(summary):
        return _empty()
    x, t_x, T, m = summary["frequency"], summary["recency_weeks"], summary["t_weeks"], summary["monetary"]
    bg = fit_bgnbd(x, t_x, T)
    repeaters = (x > 0) & (m > 0)
    gg = fit_gamma_gamma(x[repeaters], m[repeaters])
    predicted = summary.copy()
    predicted["p_alive"] = bgnbd_p_alive(bg.params, x, t_x, T)
    predicted["expected_purchases_12m"] = bgnbd_expected_purchases(bg.params, HORIZON_DAYS / WEEK_DAYS, x, t_x, T)
    predicted["expected_average_value"] = np.clip(gamma_gamma_expected_value(gg.params, x, m), 0.0, None)
    predicted["expected_value_12m"] = predicted["expected_purchases_12m"] * predicted["expected_average_value"]
    predicted["model_fit_date"] = as_of
    out = {PREDICTED: _frame(predicted, PREDICTED_COLUMNS)}

    calibration = calibrate(purchases, as_of)
    if calibration is None:
        out[CALIBRATION] = _frame([], CALIBRATION_COLUMNS)
        return out
    window, rows = calibration
    fit_columns = {"model_fit_date": as_of, **window, "n_customers_fit": len(summary),
                   "bgnbd_r": bg.params[0], "bgnbd_alpha": bg.params[1], "bgnbd_a": bg.params[2],
                   "bgnbd_b": bg.params[3], "bgnbd_log_likelihood": bg.log_likelihood, "bgnbd_converged": bg.converged,
                   "gamma_gamma_p": gg.params[0], "gamma_gamma_q": gg.params[1], "gamma_gamma_gamma": gg.params[2],
                   "gamma_gamma_log_likelihood": gg.log_likelihood, "gamma_gamma_converged": gg.converged}
    for column, value in fit_columns.items():
        rows[column] = value
    out[CALIBRATION] = _frame(rows, CALIBRATION_COLUMNS)
    return out


ANALYSIS = Analysis(name="clv", outputs=(PREDICTED, CALIBRATION), run=run)
