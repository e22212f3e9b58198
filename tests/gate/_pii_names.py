"""Plaintext person names of the demo company, and a scan of the published marts for them.

Names come from the generator's output as the sources deliver it (the truth the warehouse receives): HubSpot contact
firstname / lastname, Odoo person partners' names (res_partner, not companies), Google reviewer and Trustpilot consumer
display names. A published string cell leaks a name when
- it contains a full name ("First Last", an Odoo partner name, a review display name such as "Thúy P."), case-
  insensitively, anywhere in the text; or
- its whole (trimmed) value is a first or a last name alone (a single name is often a common word - "Mai", "Long" -
  so it is matched as the entire value of a name-like column, not inside free text).
Used by tests/e2e/test_demo_run.py and tests/gate/test_gate_dag.py; the result names schema, table, column and a count,
never a value.
"""
from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

PUBLISHED_SCHEMAS = ("core", "kpi", "cx")


def truth_names(data_dir: Path) -> tuple[set[str], set[str]]:
    """(full names, single first / last names) of the people in the generated company at `data_dir`."""
    data_dir = Path(data_dir)
    full: set[str] = set()
    single: set[str] = set()
    with open(data_dir / "api" / "hubspot" / "contacts.jsonl", encoding="utf-8") as fh:
        for line in fh:
            p = json.loads(line).get("properties", {})
            first, last = (p.get("firstname") or "").strip(), (p.get("lastname") or "").strip()
            single |= {x for x in (first, last) if x}
            if first and last:
                full.add(f"{first} {last}")
    con = sqlite3.connect(f"file:{data_dir / 'odoo' / 'odoo.sqlite'}?mode=ro", uri=True)
    try:
        full |= {n.strip() for (n,) in con.execute(
            "select name from res_partner where not coalesce(is_company, 0) and name is not null") if n.strip()}
    finally:
        con.close()
    for source, who in (("google_reviews", "reviewer"), ("trustpilot", "consumer")):
        with open(data_dir / "api" / source / "reviews.jsonl", encoding="utf-8") as fh:
            for line in fh:
                name = ((json.loads(line).get("review") or {}).get(who) or {}).get("displayName")
                if name and name.strip():
                    full.add(name.strip())
    return full, single


def name_leaks(con, full: set[str], single: set[str], schemas=PUBLISHED_SCHEMAS) -> list[tuple[str, str, str, int]]:
    """(schema, table, column, rows) of every string column of the published schemas holding a plaintext name.
    `con`: a DuckDB connection to the published file."""
    assert full and single, "no names read from the generator's output"
    # one RE2 alternation, longest first, case-insensitive (Unicode-aware)
    pattern = "(?i)(" + "|".join(re.escape(n) for n in sorted(full, key=lambda s: (-len(s), s))) + ")"
    singles = sorted({n.lower() for n in single} | {n.lower() for n in full})
    con.execute("create or replace temp table _pii_single_names as select unnest(?::varchar[]) as name", [singles])
    marks = ", ".join("?" for _ in schemas)
    leaks = []
    for schema, table, column in con.execute(
            "select table_schema, table_name, column_name from information_schema.columns "
            f"where data_type = 'VARCHAR' and table_schema in ({marks}) order by 1, 2, 3", list(schemas)).fetchall():
        col = f'"{column}"'
        hits = con.execute(
            f'select count(*) from "{schema}"."{table}" '
            f"where lower(trim({col})) in (select name from _pii_single_names) or regexp_matches({col}, ?)",
            [pattern]).fetchone()[0]
        if hits:
            leaks.append((schema, table, column, hits))
    return leaks
