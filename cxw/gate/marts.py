"""The marts gate: the candidate marts (schemas core, kpi, cx) of the build database, after dbt and before publish.

Each table is read read-only through Arrow into GE's pandas engine and checked against its suite
(`marts_suites.SUITES`), the PII checks of its text columns, and its row count against the published generation.
Where the published generation allows, per-row checks read only the changed rows (`marts_delta`, issue 20.3), with the
verdict of a full audit. Full-table integrity (relationships, reconciliation) stays in dbt tests.
"""

from __future__ import annotations

import math
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from ..publish import PUBLISHED_SCHEMAS, _published_columns
from .ge import Gate, finish, run_dir
from .marts_delta import (Published, catalog_results, changed_frame_sql, check_columns, check_digest, check_kind,
                          in_check_order, is_pii, q, vacuous, vacuous_results, whole_frame_sql)
from .marts_suites import (FREE_TEXT_COLUMNS, MAX_ROW_DROP_VS_PUBLISHED, ROW_COUNT_UNCHECKED, SUITES, Check,
                           pii_checks)


def validate_marts(run_id: str, data_interval_start=None, data_interval_end=None, build_db: Path | None = None,
                   out_dir: Path | None = None, published_db: Path | None = None,
                   max_row_drop: float | None = None, schemas: tuple[str, ...] = PUBLISHED_SCHEMAS) -> dict:
    """Audit the candidate marts (every table of ``schemas``: core, kpi, cx) of ``build_db``. Raises ValidationFailed.

    Defaults: the build and published databases and run directory of `cxw.config.paths()`, the row-drop limit from
    `CXW_GATE_MAX_ROW_DROP` (else `MAX_ROW_DROP_VS_PUBLISHED`); `CXW_GATE_FULL_AUDIT=1` audits every table whole."""
    if build_db is None or published_db is None:
        from ..config import paths

        p = paths()
        build_db = build_db or p.build_db
        published_db = published_db or p.published_db
    out_dir = out_dir or run_dir(run_id)
    if max_row_drop is None:
        from ..settings import settings

        value = settings().gate_max_row_drop
        max_row_drop = float(MAX_ROW_DROP_VS_PUBLISHED if value is None else value)
    from ..settings import settings

    if settings().dbt_target == "postgres":  # the build schemas of the PostgreSQL database, never a DuckDB file
        from .marts_postgres import audit_marts_postgres

        return audit_marts_postgres(run_id, out_dir, max_row_drop, _as_date(data_interval_end), schemas)
    return audit_marts(run_id, build_db, out_dir, published_db, max_row_drop, _as_date(data_interval_end), schemas,
                       full_audit=settings().gate_full_audit)


def audit_marts(run_id: str, build_db: Path, out_dir: Path, published_db: Path, max_drop: float,
                end: date | None, schemas: tuple[str, ...] = PUBLISHED_SCHEMAS, full_audit: bool = False) -> dict:
    """The marts gate on explicit inputs (see `validate_marts`). Each table is audited by its changes where the
    published generation allows it (`marts_delta`), else whole; ``full_audit`` audits every table whole."""
    t0 = time.perf_counter()
    gate = Gate(out_dir, "marts")
    previous = _published_row_counts(published_db)
    read_s = 0.0

    from ..loader import connect_build_db

    con, _ = connect_build_db(build_db, read_only=True)  # waits while another run writes it
    results: list[dict] = []
    audits: dict[str, dict] = {}
    digests: dict[str, str] = {}
    try:
        end = _built_interval_end(con) or end
        pub = None if full_audit else Published(con, published_db, out_dir.parent)
        try:
            for schema, table in _candidate_tables(con, schemas):
                name = f"{schema}.{table}"
                t1 = time.perf_counter()
                columns = _columns(con, schema, table)
                rows = con.execute(f"select count(*) from {q(schema)}.{q(table)}").fetchone()[0]
                derived = name == "kpi.kpi_daily" and end is not None and "kpi_date" in columns and rows > 0
                checks = _table_checks(name, columns + ["_days_before_interval_end"] * derived,
                                       _string_columns(con, schema, table), previous, max_drop)
                if not checks:
                    continue
                digests[name] = check_digest(checks)
                published_cols = _published_columns(con, f"{q(schema)}.{q(table)}")
                why = ("full audit requested (CXW_GATE_FULL_AUDIT)" if pub is None
                       else pub.why_full(con, name, schema, table, published_cols, digests[name]))
                local = [] if why else [c for c in checks if check_kind(c) in ("row", "unique")]
                whole = [c for c in checks if c not in local]
                plain = {col for c in whole if not is_pii(c) for col in check_columns(c, columns)}
                plain |= {"kpi_date"} if derived else set()
                pii_only = {c.kwargs["column"] for c in whole if is_pii(c)} - plain
                df = con.sql(whole_frame_sql(schema, table, columns, plain, pii_only)).to_arrow_table().to_pandas()
                if derived:
                    df["_days_before_interval_end"] = _days_before(df["kpi_date"], end)
                changed = None
                if local and all(vacuous(c, columns) for c in local) and pub.unchanged(con, name, published_cols,
                                                                                      schema, table):
                    import pandas as pd

                    changed = pd.DataFrame()  # the published table, unchanged: no row to judge
                elif local:
                    keys = [c.kwargs["column"] for c in local if check_kind(c) == "unique"]
                    cols = [c for c in columns if c in keys or any(c in check_columns(k, columns) for k in local)]
                    changed = con.sql(changed_frame_sql(schema, table, published_cols, keys, cols)
                                      ).to_arrow_table().to_pandas()
                read_s += time.perf_counter() - t1
                audited = len(changed) if changed is not None else rows if why else 0  # rows per-row checks read
                # PII checks of a column without '@' or '+' (NULL in the frame), per-row checks without changed rows:
                # passed as GE would pass them, without GE
                empty = {c for c in df.columns if c in pii_only and not df[c].notna().any()}
                skip = [c for c in whole if is_pii(c) and c.kwargs["column"] in empty and vacuous(c, columns)]
                if changed is not None and not len(changed):
                    skip += [c for c in local if vacuous(c, columns)]
                table_results = vacuous_results(name, name, skip, rows, "nothing to judge: no changed row, or no "
                                                                         "'@' / '+' in the text column")
                decided = catalog_results(name, name, whole, columns, rows)
                table_results += list(decided.values())
                whole = [c for i, c in enumerate(whole) if c not in skip and i not in decided]
                local = [c for c in local if c not in skip]
                if whole:
                    table_results += [{**r, "rows_audited": rows} for r in gate.run(name, name, df, whole, run_id)]
                if local:  # reported as the table's suite, of the table's rows
                    table_results += [{**r, "suite": name, "rows": rows, "rows_audited": audited}
                                      for r in gate.run(f"{name}:changed", name, changed, local, run_id)]
                results += in_check_order(table_results, checks)
                audits[name] = {"audit": "full" if why else "changed", "reason": why, "rows": rows,
                                "rows_audited": audited}
        finally:
            if pub is not None:
                pub.detach(con)
    finally:
        con.close()
    changed_only = [t for t, a in audits.items() if a["audit"] == "changed"]
    return finish("marts", run_id, results, out_dir, gate, t0,
                  {"read_seconds": round(read_s, 2), "compared_with_published": bool(previous),
                   "rows_total": sum(a["rows"] for a in audits.values()),
                   "rows_audited": sum(a["rows_audited"] for a in audits.values()),
                   "tables_audited_by_changes": len(changed_only)},
                  file_only={"table_audits": audits, "check_digests": digests})


def _days_before(kpi_date, end: date):
    import pandas as pd

    return (pd.Timestamp(end) - pd.to_datetime(kpi_date)).dt.days


def _columns(con, schema: str, table: str) -> list[str]:
    return [c for c, in con.execute(
        "select column_name from information_schema.columns where table_catalog = current_database() "
        "and table_schema = ? and table_name = ? "
        "order by ordinal_position", [schema, table]).fetchall()]


def _built_interval_end(con) -> date | None:
    """The interval the candidate covers: the build's (dbt_build may rebuild to a newer published interval)."""
    from ..buildstate import read_build_info

    built = read_build_info(con)
    return _as_date(built["data_interval_end"]) if built and built.get("data_interval_end") else None


def _candidate_tables(con, schemas: tuple[str, ...]) -> list[tuple[str, str]]:
    return con.execute(
        "select table_schema, table_name from information_schema.tables "
        "where table_catalog = current_database() and table_schema in (select unnest(?::varchar[])) "
        "order by 1, 2", [list(schemas)]
    ).fetchall()


def _string_columns(con, schema: str, table: str) -> list[str]:
    return [c for c, in con.execute(
        "select column_name from information_schema.columns where table_catalog = current_database() "
        "and table_schema = ? and table_name = ? "
        "and data_type = 'VARCHAR' order by ordinal_position", [schema, table]).fetchall()]


def _table_checks(name: str, columns: list[str], string_cols: list[str], previous: dict[str, int],
                  max_drop: float) -> list[Check]:
    """The table's suite, the PII checks of its text columns (free text warns), and its row count against the
    published generation."""
    checks = list(SUITES[name](columns)) if name in SUITES else []
    for chk in pii_checks(string_cols):
        if chk.kwargs["column"] in FREE_TEXT_COLUMNS:
            chk = Check(chk.expectation, chk.kwargs, "warn", chk.why + " (free text)")
        checks.append(chk)
    if previous.get(name) and name not in ROW_COUNT_UNCHECKED:
        before = previous[name]
        checks.append(Check("ExpectTableRowCountToBeBetween",
                            {"min_value": math.ceil(before * (1 - max_drop))},
                            why=f"row count dropped more than {max_drop:.0%} vs the published generation "
                                f"({before} rows)"))
    return checks


def _published_row_counts(published_db: Path) -> dict[str, int]:
    import duckdb

    if not published_db.exists():
        return {}
    con = duckdb.connect(str(published_db), read_only=True, config={"enable_external_access": False})
    try:
        return {t: int(n) for t, n in con.execute("select table_name, row_count from publication_tables").fetchall()}
    except duckdb.Error:
        return {}
    finally:
        con.close()


def _as_date(v) -> date | None:
    """The data interval end as the date the KPI window ends (exclusive): its date at midnight; an end inside a day (an
    hourly run, CXW_SCHEDULE=hourly, whose KPIs include the day so far) the next day - so the freshness check's newest
    KPI day is 1 day before it, as for a daily run."""
    if v in (None, "", "None"):
        return None
    if isinstance(v, date) and not isinstance(v, datetime):
        return v
    if not isinstance(v, datetime):
        try:
            v = datetime.fromisoformat(str(v).replace("Z", "+00:00"))
        except ValueError:
            return None
    d = v.astimezone(timezone.utc) if v.tzinfo else v
    partial = (d.hour, d.minute, d.second, d.microsecond) != (0, 0, 0, 0)
    return d.date() + timedelta(days=1) if partial else d.date()
