"""Empty is a valid state (issue 14.6): with no row delivered by any source entity — no load at all — the loader
creates every declared raw table (cxw/raw_contract.yml) with its columns, and every staging, intermediate and mart
model builds, empty. Proves the contract declares every column a model reads."""
from __future__ import annotations

import sys
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_marts_incremental import BUILD_NO_TESTS, _dbt, _env  # noqa: E402

from cxw.loader import load_into_duckdb, raw_contract  # noqa: E402


def test_every_model_builds_empty_when_no_source_entity_ever_delivered_a_row(tmp_path):
    raw, db = tmp_path / "raw", tmp_path / "build.duckdb"
    raw.mkdir()
    # an entity with only an empty load (a _load.json, no Parquet file, so no column) and entities with no load
    d = raw / "hubspot" / "deals" / "hubspot-20250101T000000-aaaaaaaa"
    d.mkdir(parents=True)
    d.joinpath("_load.json").write_text('{"rows": 0, "files": [], "extracted_at": "2025-01-01T00:00:00+00:00"}')
    rep = load_into_duckdb(raw, db)
    declared = {f"raw_{s}.{e}" for s, ents in raw_contract().items() for e in ents}
    assert set(rep["declared"]) == declared
    _dbt(_env(tmp_path, db), *BUILD_NO_TESTS)
    con = duckdb.connect(str(db), read_only=True)
    try:
        for table in ("staging.stg_hubspot__deals", "staging.stg_trustpilot__reviews", "staging.stg_ga4__events",
                      "staging.stg_hubspot__associations", "staging.stg_review_files__reviews", "core.fct_reviews", "core.fct_support_tickets",
                      "staging.load_ledger"):
            assert con.execute(f"select count(*) from {table}").fetchone()[0] == 0, table
    finally:
        con.close()
