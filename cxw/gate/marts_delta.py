"""What the marts gate reads of a table (issue 20 point 3): the whole table for the checks that judge the whole table,
only the changed rows for the checks that judge each row alone - with a verdict identical to a full audit.

Checks fall in three kinds (`check_kind`):

    row      error-severity per-row checks without `mostly` (not null, in set, between, regex, A > B): a row's verdict
             depends on the row alone
    unique   error-severity uniqueness of a column without `mostly`
    table    everything else (row counts, column existence, a column's min, any `mostly`, any warn-severity check) and
             the PII checks: evaluated on every row of the table, on a narrow frame

A table is audited by its changes when the published generation (the file BI reads) holds the table with the same
columns and types as the candidate publishes, and the gate run that passed that generation (`publication.run_id`; its
`validation.json` beside this run's directory) recorded the same `check_digest` for the table: a digest of the table's
row and unique checks and of the gate's code. Then every row of the published table passed those checks, so

    changed rows   C = candidate EXCEPT ALL published (DuckDB; multiset, NULLs equal) hold every row that can fail a
                   row check, and
    unique         every duplicate of a key involves a row of C (the published keys were unique): the rows of the
                   candidate whose key is a key of C (plus the rows of C whose keys are all null) hold every duplicate,
                   and no other row of the table is one.

Row and unique checks run on those rows; table checks on the whole table. Anything else (no published file, no record,
another digest, other columns) is a full audit of that table. PII checks are batched per table: their regex
(`marts_suites.PII_REGEX`) cannot match a text without an '@' or a '+', so DuckDB keeps a text column's value only
where it holds one (`PII_REQUIRED_CHARACTERS`) and the checks see NULL elsewhere (NULL passes) - same counts, a
fraction of the text.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

from .marts_suites import PII_REGEX, PII_REQUIRED_CHARACTERS, Check

# per-row checks: the verdict on a row depends on that row alone
ROW_LOCAL = {"ExpectColumnValuesToNotBeNull", "ExpectColumnValuesToBeNull", "ExpectColumnValuesToBeInSet",
             "ExpectColumnValuesToNotBeInSet", "ExpectColumnValuesToBeBetween", "ExpectColumnValuesToMatchRegex",
             "ExpectColumnValuesToNotMatchRegex", "ExpectColumnPairValuesAToBeGreaterThanB"}
UNIQUE = {"ExpectColumnValuesToBeUnique"}
# the code that defines and evaluates the checks: a change to it is a full audit of every table
_CODE = [Path(__file__).with_name(n) for n in ("marts.py", "marts_suites.py", "marts_delta.py", "ge.py")]


def is_pii(chk: Check) -> bool:
    return chk.expectation == "ExpectColumnValuesToNotMatchRegex" and chk.kwargs.get("regex") == PII_REGEX


def check_kind(chk: Check) -> str:
    """row, unique or table (see the module's docstring); PII checks are table checks (batched, every row)."""
    if is_pii(chk) or chk.severity != "error" or chk.kwargs.get("mostly") not in (None, 1, 1.0):
        return "table"
    if chk.expectation in ROW_LOCAL:
        return "row"
    if chk.expectation in UNIQUE:
        return "unique"
    return "table"


def check_columns(chk: Check, columns: list[str]) -> list[str]:
    """The table's columns a check reads: its column arguments and those its row condition names."""
    named = [chk.kwargs.get(k) for k in ("column", "column_A", "column_B")] + list(chk.kwargs.get("column_list") or [])
    cond = chk.kwargs.get("row_condition") or ""
    return [c for c in columns if c in named or (cond and re.search(rf"\b{re.escape(c)}\b", cond))]


def check_digest(checks: list[Check]) -> str:
    """Digest of a table's row and unique checks (what a changed-rows audit trusts the published generation to have
    passed) and of the gate's code."""
    h = hashlib.sha256()
    for f in _CODE:
        h.update(f.read_bytes())
    kept = sorted(json.dumps([c.expectation, c.kwargs, c.severity], sort_keys=True, default=str)
                  for c in checks if check_kind(c) in ("row", "unique"))
    h.update("\n".join(kept).encode())
    return h.hexdigest()[:32]


def q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def pii_masked(column: str) -> str:
    """The column's value where a PII match is possible, else NULL."""
    cond = " or ".join(f"contains({q(column)}, '{ch}')" for ch in PII_REQUIRED_CHARACTERS)
    return f"case when {cond} then {q(column)} end as {q(column)}"


def whole_frame_sql(schema: str, table: str, columns: list[str], plain: set[str], pii_only: set[str]) -> str:
    """The whole table, narrow: the ``plain`` columns as they are, the ``pii_only`` ones masked (`pii_masked`)."""
    sel = [q(c) if c in plain else pii_masked(c) for c in columns if c in plain or c in pii_only]
    if not sel:  # only a row count is checked: one column carries the rows
        sel = [q(columns[0])]
    return f"select {', '.join(sel)} from {q(schema)}.{q(table)}"


class Published:
    """The published generation as the gate compares with it: the file attached read-only as `pub`, and the check
    digests its publishing run's gate recorded (None: not known, every table is audited whole)."""

    def __init__(self, con, published_db: Path, runs_root: Path):
        import duckdb

        self.attached, self.digests, self.reason, self.fingerprints = False, None, None, {}
        if not published_db.exists():
            self.reason = "no published generation"
            return
        try:
            con.execute("attach '" + str(published_db).replace("'", "''") + "' as cxw_published (read_only)")
            self.attached = True
            row = con.execute("select run_id from cxw_published.main.publication").fetchone()
        except duckdb.Error:
            self.reason = "the published generation has no publication record"
            return
        from .ge import _safe_run_id

        record = runs_root / _safe_run_id(str(row[0])) / "validation.json" if row and row[0] else None
        try:
            rep = json.loads(record.read_text()) if record else None
        except (OSError, ValueError):
            rep = None
        if not rep or rep.get("status") != "passed" or not isinstance(rep.get("check_digests"), dict):
            self.reason = "no passed marts gate recorded for the published generation"
            return
        self.digests = rep["check_digests"]
        try:
            self.fingerprints = dict(con.execute(
                "select table_name, fingerprint from cxw_published.main.publication_tables").fetchall())
        except duckdb.Error:
            pass

    def unchanged(self, con, name: str, published_cols: str, schema: str, table: str) -> bool:
        """The candidate table equals the published one: its fingerprint as published (`cxw.publish.
        table_fingerprint`: row count, sum of row hashes, column names and types) is the one `publication_tables`
        records. One hashing pass over the candidate instead of EXCEPT ALL over both tables."""
        from ..publish import table_fingerprint

        recorded = self.fingerprints.get(name)
        if not recorded:
            return False
        cur = con.cursor()  # its own result: table_fingerprint leaves its fetchone() open
        try:
            return table_fingerprint(cur, f"(select {published_cols} from {q(schema)}.{q(table)})")[1] == recorded
        finally:
            cur.close()

    def detach(self, con) -> None:
        if self.attached:
            con.execute("detach cxw_published")

    def why_full(self, con, name: str, schema: str, table: str, published_cols: str, digest: str) -> str | None:
        """None when the table can be audited by its changes, else why not."""
        if self.digests is None:
            return self.reason
        if self.digests.get(name) != digest:
            return "checks changed since the published generation" if name in self.digests \
                else "table not audited for the published generation"
        import duckdb

        try:
            pub = con.execute(f"describe select * from cxw_published.{q(schema)}.{q(table)}").fetchall()
        except duckdb.Error:
            return "table not in the published generation"
        cand = con.execute(f"describe select {published_cols} from {q(schema)}.{q(table)}").fetchall()
        if [c[:2] for c in pub] != [c[:2] for c in cand]:
            return "columns or types differ from the published generation"
        return None


def changed_frame_sql(schema: str, table: str, published_cols: str, keys: list[str], columns: list[str]) -> str:
    """The rows the row and unique checks need (see the module's docstring), columns ``columns``: the changed rows C
    and, for the unique ``keys``, every row of the candidate sharing a key with C."""
    cand = f"(select {published_cols} from {q(schema)}.{q(table)})"
    sel = ", ".join(q(c) for c in columns) or "*"
    changed = f"select * from {cand} except all select * from cxw_published.{q(schema)}.{q(table)}"
    if not keys:
        return f"select {sel} from ({changed})"
    related = " or ".join(f"{q(k)} in (select {q(k)} from c)" for k in keys)
    all_null = " and ".join(f"{q(k)} is null" for k in keys)
    return (f"with c as materialized ({changed}) "
            f"select {sel} from {cand} as t where {related} "
            f"union all select {sel} from c where {all_null}")


_SIMPLE_CONDITION = re.compile(r'^\s*([A-Za-z_]\w*)\s*==\s*("[^"\\]*"|True|False|-?\d+(\.\d+)?)\s*$')


def vacuous(chk: Check, columns: list[str]) -> bool:
    """Whether the check passes on a frame that has none of its values (no rows, or only NULLs in its column) exactly
    as GE would let it: a per-row (or uniqueness, or PII) check whose columns and row condition's column exist."""
    if check_kind(chk) == "table" and not is_pii(chk):
        return False
    named = [chk.kwargs.get(k) for k in ("column", "column_A", "column_B") if chk.kwargs.get(k)]
    if not named or any(c not in columns for c in named):
        return False
    cond = chk.kwargs.get("row_condition")
    if cond:
        m = _SIMPLE_CONDITION.match(cond)
        return bool(m) and m.group(1) in columns
    return True


def snake(expectation: str) -> str:
    """GE's name of an expectation class: ExpectColumnValuesToBeBetween -> expect_column_values_to_be_between."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", expectation).lower()


def in_check_order(results: list[dict], checks: list[Check]) -> list[dict]:
    """A table's results in the order of its checks, however they were evaluated."""
    from .ge import _condition

    order: dict[tuple, int] = {}
    for i, c in enumerate(checks):
        order.setdefault((snake(c.expectation), c.kwargs.get("column") or c.kwargs.get("column_A"),
                          _condition(c.kwargs.get("row_condition"))), i)
    return sorted(results, key=lambda r: order.get((r["expectation"], r["column"], r["row_condition"]), len(order)))


def vacuous_results(suite: str, table: str, checks: list[Check], rows: int, why: str) -> list[dict]:
    """The results GE gives checks that have nothing to judge (`vacuous`): passed, no offending row - without the
    cost of GE (about 12 ms of CPU an expectation, whatever the rows). Marked ``evaluated`` with ``why``; Data Docs
    list only what GE ran."""
    from .ge import _condition, _scalar

    return [{"suite": suite, "table": table,
             "expectation": snake(c.expectation),
             "column": c.kwargs.get("column") or c.kwargs.get("column_A"),
             "row_condition": _condition(c.kwargs.get("row_condition")), "severity": c.severity, "why": c.why,
             "success": True, "rows": rows, "unexpected_count": 0, "observed_value": None,
             "expected": {k: _scalar(v) for k, v in c.kwargs.items() if k in ("min_value", "max_value", "mostly",
                                                                               "type_")},
             "exception": None, "rows_audited": 0, "evaluated": why} for c in checks]


def catalog_results(suite: str, table: str, checks: list[Check], columns: list[str], rows: int) -> dict[int, dict]:
    """The results of the checks the table's row count and column list decide (a row count between bounds, a
    column's existence), as GE gives them on the whole table (GE's row count is the table's; its observed value, the
    count, is reported as GE's is: `ge._safe_observed`), keyed by the check's position. Other checks: none."""
    from .ge import _condition, _safe_observed, _scalar

    out = {}
    for i, c in enumerate(checks):
        if c.expectation == "ExpectTableRowCountToBeBetween" and set(c.kwargs) <= {"min_value", "max_value"}:
            lo, hi = c.kwargs.get("min_value"), c.kwargs.get("max_value")
            ok, observed = (lo is None or rows >= lo) and (hi is None or rows <= hi), rows
        elif c.expectation == "ExpectColumnToExist" and set(c.kwargs) == {"column"}:
            ok, observed = c.kwargs["column"] in columns, None
        else:
            continue
        out[i] = {"suite": suite, "table": table, "expectation": snake(c.expectation),
                  "column": c.kwargs.get("column"), "row_condition": _condition(None), "severity": c.severity,
                  "why": c.why, "success": bool(ok), "rows": rows, "unexpected_count": None,
                  "observed_value": _safe_observed(snake(c.expectation), c.kwargs.get("column"), observed),
                  "expected": {k: _scalar(v) for k, v in c.kwargs.items() if k in ("min_value", "max_value")},
                  "exception": None, "rows_audited": rows, "evaluated": "from the table's row count / columns"}
    return out
