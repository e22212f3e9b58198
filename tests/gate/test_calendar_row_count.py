"""The marts gate's row-count check against the published generation leaves the calendar out (issue 14): dim_dates
spans the data's years, so it shrinks when the fixed 2024-2026 calendar gives way to a company whose data covers
one year, without any data being lost. Every other table keeps the check. Real gate, real DuckDB files."""
from __future__ import annotations

import duckdb
import pytest

from cxw.gate import ValidationFailed, validate_marts as validate


def _files(tmp_path, calendar_days: int, orders: int):
    build, published = tmp_path / "build.duckdb", tmp_path / "published.duckdb"
    con = duckdb.connect(str(build))
    con.execute("create schema core")
    con.execute(f"create table core.dim_dates as select cast(date '2025-01-01' + cast(i as integer) as date) as date_day "
                f"from range({calendar_days}) as t(i)")
    con.execute(f"create table core.some_counts as select i as id from range({orders}) as t(i)")
    con.close()
    con = duckdb.connect(str(published))
    con.execute("create table publication_tables (table_name varchar, row_count bigint, fingerprint varchar)")
    # published with the old fixed calendar (2024-01-01 .. 2026-12-31) and 100 rows
    con.execute("insert into publication_tables values ('core.dim_dates', 1096, 'x'), ('core.some_counts', 100, 'y')")
    con.close()
    return dict(build_db=build, published_db=published, out_dir=tmp_path / "run")


def test_a_calendar_of_the_data_years_passes_although_it_is_smaller_than_the_fixed_one(tmp_path):
    report = validate("calendar-shrinks", **_files(tmp_path, 365, 100))
    assert report["status"] == "passed", report


def test_a_drop_of_another_table_still_blocks(tmp_path):
    with pytest.raises(ValidationFailed, match="core.some_counts"):
        validate("rows-drop", **_files(tmp_path, 365, 10))
