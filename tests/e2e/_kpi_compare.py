"""Published KPIs against the demo company's answer key, shared by the end-to-end tests.

Every row of kpi.kpi_daily (day) and kpi.kpi_period (month, window) with channel = segment = 'all' is compared with
the answer-key row of the same (grain, kpi, period start): integer quantities (n, counts, customers, the open
backlog) equal, money to the cent, ratios (and every other value) within 1e-9 (relative or absolute). Mismatches
are returned grouped by KPI, all of them, not only the first.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from demo_company.answer_key import KPIS

KIND = {k: kind for k, kind, *_ in KPIS}
RATIO_TOL = 1e-9
CENT = 0.005  # half a cent: both sides round to cents


def published_kpis(published_db: Path) -> dict[tuple[str, str, str], tuple]:
    """{(grain, kpi, period_start): (numerator, denominator, value, n)} of the published file, read as BI does."""
    con = duckdb.connect(str(published_db), read_only=True, config={"enable_external_access": False})
    try:
        rows = con.execute(
            "select 'day', kpi, kpi_date::varchar, numerator, denominator, value, n from kpi.kpi_daily "
            "where channel = 'all' and segment = 'all' union all "
            "select grain, kpi, period_start::varchar, numerator, denominator, value, n from kpi.kpi_period "
            "where channel = 'all' and segment = 'all'").fetchall()
    finally:
        con.close()
    return {(g, k, p[:10]): (num, den, val, n) for g, k, p, num, den, val, n in rows}


def _ratio_ok(a, b) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return math.isclose(float(a), float(b), rel_tol=RATIO_TOL, abs_tol=RATIO_TOL)


def _int_ok(a, b) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return float(a) == float(b) and float(a).is_integer()


def _money_ok(a, b) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return abs(float(a) - float(b)) < CENT


def _checks(kind: str) -> tuple:
    """(numerator, denominator, value) comparators for a KPI kind of the answer key; n is always an integer."""
    if kind in ("count", "stock"):
        return _int_ok, _int_ok, _int_ok
    if kind == "customers":
        return _int_ok, _int_ok, _ratio_ok
    if kind == "money":
        return _money_ok, _ratio_ok, _money_ok
    if kind == "money_ratio":  # net revenue / orders: the revenue to the cent, the order count exact
        return _money_ok, _int_ok, _money_ok
    if kind == "retention":
        return _int_ok, _int_ok, _ratio_ok
    return _ratio_ok, _ratio_ok, _ratio_ok


@dataclass
class Comparison:
    compared: int = 0
    # kpi -> ["(grain, period): warehouse (num, den, value, n) != key (...)", ...]
    mismatches: dict[str, list[str]] = field(default_factory=dict)
    extra: dict[str, list[str]] = field(default_factory=dict)      # published rows the key does not have
    unpublished: set[str] = field(default_factory=set)              # key KPIs the warehouse does not publish

    def add(self, where: dict, kpi: str, text: str) -> None:
        where.setdefault(kpi, []).append(text)

    @property
    def bad_kpis(self) -> set[str]:
        return set(self.mismatches) | set(self.extra)

    def report(self, kpis=None, limit: int = 12) -> str:
        lines = []
        for kpi in sorted(kpis if kpis is not None else self.bad_kpis):
            rows = self.mismatches.get(kpi, []) + [f"{r}: published, not in the answer key"
                                                    for r in self.extra.get(kpi, [])]
            if not rows:
                continue
            lines.append(f"{kpi}: {len(rows)} rows differ")
            lines += [f"    {r}" for r in rows[:limit]]
            if len(rows) > limit:
                lines.append(f"    ... {len(rows) - limit} more")
        return "\n".join(lines)


def compare(key: dict, have: dict[tuple[str, str, str], tuple]) -> Comparison:
    """Every (channel/segment 'all') row of the answer key's KPIs that the warehouse publishes, both ways."""
    out = Comparison()
    published = {k for _, k, _ in have}
    key_kpis = {r["kpi"] for r in key["kpis"]}
    out.unpublished = key_kpis - published
    seen = set()
    for row in key["kpis"]:
        kpi = row["kpi"]
        if kpi not in published or row.get("channel", "all") != "all" or row.get("segment", "all") != "all":
            continue
        k = (row["grain"], kpi, str(row["period_start"])[:10])
        seen.add(k)
        want = (row["numerator"], row["denominator"], row["value"], row["n"])
        if k not in have:
            out.add(out.mismatches, kpi, f"{k[0]} {k[2]}: in the answer key {want} but not published")
            continue
        num, den, val, n = have[k]
        c_num, c_den, c_val = _checks(KIND.get(kpi, "ratio"))
        out.compared += 1
        if not (c_num(num, want[0]) and c_den(den, want[1]) and c_val(val, want[2]) and _int_ok(n, want[3])):
            out.add(out.mismatches, kpi, f"{k[0]} {k[2]}: warehouse {(num, den, val, n)} != key {want}")
    for k in sorted(have):
        if k[1] in key_kpis and k not in seen:
            out.add(out.extra, k[1], f"{k[0]} {k[2]} {have[k]}")
    return out


def record_accounting(build_db: Path, expected: dict) -> tuple[int, list[str]]:
    """Nothing lost: (loads whose ledger row does not balance, problems). The load ledger must balance for every
    load (extracted = staged + quarantined + duplicates, none negative), and per source/entity what staging holds
    now equals what the answer key says was delivered: staged = distinct records - quarantined, quarantine reasons
    and counts as the generator's truth."""
    con = duckdb.connect(str(build_db), read_only=True)
    try:
        staged = {f"{s}.{e}": n for s, e, n in con.execute(
            "select source, entity, sum(staged) from staging.load_ledger group by all").fetchall()}
        quarantined: dict[str, dict[str, int]] = {}
        for s, e, reason, n in con.execute("select source, entity, reason, count(*) from staging.quarantine "
                                           "group by all").fetchall():
            quarantined.setdefault(f"{s}.{e}", {})[reason] = n
        unbalanced = con.execute(
            "select count(*) from staging.load_ledger where extracted <> staged + quarantined + duplicates "
            "or staged < 0 or quarantined < 0 or duplicates < 0").fetchone()[0]
    finally:
        con.close()
    problems = []
    for entity, exp in sorted(expected.items()):
        q = quarantined.get(entity, {})
        if q != exp["quarantined"]:
            problems.append(f"{entity}: quarantined {q} != expected {exp['quarantined']}")
        want = exp["records"] - sum(exp["quarantined"].values())
        # an entity whose loads never held a row (issue 14.6: a portal without deals) has no ledger row: 0 staged
        if staged.get(entity, 0) != want:
            problems.append(f"{entity}: staged {staged.get(entity)} != expected {want}")
    return unbalanced, problems
