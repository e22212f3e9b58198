"""The pipeline's runtime settings: one frozen object read from the environment (README "Settings", `.env.example`).

`settings()` (= `Settings.from_env()`) is what the runtime modules read instead of `os.environ`: every `CXW_*`
variable a pipeline step reads is a field here, with its default, so this file is the list. It is read afresh on each
call (cheap; tests and `./cx` change the environment between steps) and never written back to the environment.

Not here, on purpose:
- the sources' settings: each source's `extractors/<source>/settings.py` (its `SETTINGS.from_env(env)`, and the
  Airflow connection fields that fill them, `CONNECTION_FIELDS`), with the shared HTTP ones in
  `extractors.common.http` (`HttpConfig`, `HttpSourceSettings`) and `CXW_HISTORY_START` in
  `extractors.common.settings`;
- the developer tools' settings (`./cx up`, `doctor`, `mutate`, the benchmark), read by those tools;
- what dbt reads itself (`dbt_project/profiles.yml`: the build database, the PostgreSQL target, the memory limit).

Fields whose value a step parses and whose malformed value that step reports in its own way (a warning, a skipped
step) hold the text (`keep_runs`, `retention_days`, ...); the step parses it where it did before, so a bad value
fails or warns exactly where and how it always did.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Mapping, Optional

REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Settings:
    # where the pipeline writes (contracts.md section 2)
    home: Path                                   # CXW_HOME (default <repo>/var)
    build_db: Optional[str] = None               # CXW_BUILD_DB (default <home>/warehouse/build.duckdb)
    airflow_home: Optional[str] = None           # AIRFLOW_HOME (default <home>/airflow)
    # the build
    dbt_target: str = "duckdb"                   # CXW_DBT_TARGET: duckdb | postgres
    duckdb_memory_limit: str = ""                # CXW_DUCKDB_MEMORY_LIMIT (e.g. 4GB; empty = DuckDB's default)
    dbt_unit_tests: bool = False                 # CXW_DBT_UNIT_TESTS=1: dbt's unit tests in every build
    dbt_parse_cache_dir: Optional[str] = None    # CXW_DBT_PARSE_CACHE_DIR: dbt's saved parses shared by homes (unset:
    #                                              each home's dbt target keeps its own; cxw.dbt)
    force_build: bool = False                    # CXW_FORCE_BUILD=1|true|yes: build even when nothing changed
    dbt_select: str = "auto"                     # CXW_DBT_SELECT: auto (only what changed raw tables feed) | full
    schedule: str = "daily"                      # CXW_SCHEDULE: daily | hourly (the DAG's data intervals; SCHEDULES)
    analyze_every: Optional[str] = None          # CXW_ANALYZE_EVERY: run | day (None: day when hourly, else run;
    #                                              cxw.analytics.reuse)
    kpi_window_start: Optional[str] = None       # CXW_KPI_WINDOW_START (date; default CXW_HISTORY_START)
    kpi_window_end: Optional[str] = None         # CXW_KPI_WINDOW_END (date; default the run's interval end)
    history_start: Optional[str] = None          # CXW_HISTORY_START as set (None: unset; the extractors' default
    #                                              2025-01-01 is extractors.common.settings.DEFAULT_HISTORY_START)
    build_db_lock_wait_s: str = "600"            # CXW_BUILD_DB_LOCK_WAIT_S (seconds; parsed by cxw.loader)
    # PostgreSQL target (the same variables profiles.yml reads)
    pg_host: str = "127.0.0.1"                   # CXW_PG_HOST
    pg_port: str = "5432"                        # CXW_PG_PORT
    pg_user: str = "postgres"                    # CXW_PG_USER
    pg_password: str = ""                        # CXW_PG_PASSWORD (secret)
    pg_dbname: str = "cx_warehouse"              # CXW_PG_DBNAME
    pg_schema: str = "public"                    # CXW_PG_SCHEMA
    # privacy
    pii_salt: Optional[str] = None               # CXW_PII_SALT (secret; unset = the public demo salt, cxw.pii;
    #                                              as set: an empty value is the empty salt, as dbt reads it)
    retention_days: str = ""                     # CXW_RETENTION_DAYS (days; parsed by cxw.erase)
    # gates (cxw.gate)
    gate_max_row_drop: Optional[str] = None      # CXW_GATE_MAX_ROW_DROP (fraction; default in cxw.gate.marts)
    gate_full_audit: bool = False                # CXW_GATE_FULL_AUDIT=1|true|yes: marts gate reads every table whole
    gate_volume_lookback: str = "7"              # CXW_GATE_VOLUME_LOOKBACK (loads)
    gate_volume_drop: str = "0.9"                # CXW_GATE_VOLUME_DROP (fraction)
    gate_volume_min_rows: str = "50"             # CXW_GATE_VOLUME_MIN_ROWS (rows)
    gate_accept_loads: str = ""                  # CXW_GATE_ACCEPT_LOADS (comma-separated load ids)
    # publication and housekeeping
    keep_generations: str = "5"                  # CXW_KEEP_GENERATIONS (read once, when cxw.publish is imported)
    keep_runs: str = ""                          # CXW_KEEP_RUNS (runs; parsed by cxw.housekeeping)
    # alerts (the Airflow connection cxw_alerts_webhook wins, cxw.alerts)
    alerts_webhook_url: Optional[str] = None     # CXW_ALERTS_WEBHOOK_URL
    alerts_webhook_token: Optional[str] = None   # CXW_ALERTS_WEBHOOK_TOKEN (secret)
    # access by audience (cxw.access)
    audiences_file: Optional[str] = None         # CXW_AUDIENCES_FILE (default <repo>/access/audiences.yml)
    pg_role_prefix: str = "cxw_"                 # CXW_PG_ROLE_PREFIX: PostgreSQL role of an audience = prefix + name

    @classmethod
    def from_env(cls, env: Optional[Mapping[str, str]] = None) -> "Settings":
        e = os.environ if env is None else env

        def env_var(name: str, default: Optional[str] = None) -> Optional[str]:
            return e.get(name, default)

        return cls(
            home=Path(env_var("CXW_HOME", str(REPO_ROOT / "var"))).resolve(),
            build_db=env_var("CXW_BUILD_DB"),
            airflow_home=env_var("AIRFLOW_HOME"),
            dbt_target=env_var("CXW_DBT_TARGET", "duckdb"),
            duckdb_memory_limit=env_var("CXW_DUCKDB_MEMORY_LIMIT", "").strip(),
            dbt_unit_tests=env_var("CXW_DBT_UNIT_TESTS") == "1",
            dbt_parse_cache_dir=env_var("CXW_DBT_PARSE_CACHE_DIR") or None,
            force_build=env_var("CXW_FORCE_BUILD", "").lower() in ("1", "true", "yes"),
            dbt_select=(env_var("CXW_DBT_SELECT", "auto") or "auto").strip().lower(),
            schedule=(env_var("CXW_SCHEDULE", "daily") or "daily").strip().lower(),
            analyze_every=(env_var("CXW_ANALYZE_EVERY") or "").strip().lower() or None,
            kpi_window_start=env_var("CXW_KPI_WINDOW_START"),
            kpi_window_end=env_var("CXW_KPI_WINDOW_END"),
            history_start=env_var("CXW_HISTORY_START") or None,
            build_db_lock_wait_s=env_var("CXW_BUILD_DB_LOCK_WAIT_S", "600"),
            pg_host=env_var("CXW_PG_HOST", "127.0.0.1"),
            pg_port=env_var("CXW_PG_PORT", "5432"),
            pg_user=env_var("CXW_PG_USER", "postgres"),
            pg_password=env_var("CXW_PG_PASSWORD", ""),
            pg_dbname=env_var("CXW_PG_DBNAME", "cx_warehouse"),
            pg_schema=env_var("CXW_PG_SCHEMA", "public"),
            pii_salt=env_var("CXW_PII_SALT"),
            retention_days=env_var("CXW_RETENTION_DAYS", "").strip(),
            gate_max_row_drop=env_var("CXW_GATE_MAX_ROW_DROP"),
            gate_full_audit=env_var("CXW_GATE_FULL_AUDIT", "").lower() in ("1", "true", "yes"),
            gate_volume_lookback=env_var("CXW_GATE_VOLUME_LOOKBACK", "7"),
            gate_volume_drop=env_var("CXW_GATE_VOLUME_DROP", "0.9"),
            gate_volume_min_rows=env_var("CXW_GATE_VOLUME_MIN_ROWS", "50"),
            gate_accept_loads=env_var("CXW_GATE_ACCEPT_LOADS", ""),
            keep_generations=env_var("CXW_KEEP_GENERATIONS", "5"),
            keep_runs=env_var("CXW_KEEP_RUNS", "").strip(),
            alerts_webhook_url=env_var("CXW_ALERTS_WEBHOOK_URL") or None,
            alerts_webhook_token=env_var("CXW_ALERTS_WEBHOOK_TOKEN") or None,
            audiences_file=env_var("CXW_AUDIENCES_FILE") or None,
            pg_role_prefix=env_var("CXW_PG_ROLE_PREFIX", "cxw_"),
        )

    def __repr__(self) -> str:  # never print a secret
        secret = {"pg_password", "pii_salt", "alerts_webhook_token"}
        shown = [f"{f.name}=***" if f.name in secret and getattr(self, f.name)
                 else f"{f.name}={getattr(self, f.name)!r}" for f in fields(self)]
        return f"Settings({', '.join(shown)})"

#: CXW_SCHEDULE -> the cron of the DAG's data intervals (CronDataIntervalTimetable: every interval non-empty)
SCHEDULES = {"daily": "0 0 * * *", "hourly": "0 * * * *"}


def schedule_cron(env: Optional[Mapping[str, str]] = None) -> str:
    """The cron of CXW_SCHEDULE (daily: one UTC day per run; hourly: one hour). Any other value is a configuration
    error naming the setting (the DAG fails to import with it: a typo never silently runs daily)."""
    value = settings(env).schedule
    if value not in SCHEDULES:
        raise ValueError(f"CXW_SCHEDULE={value!r}: expected one of {sorted(SCHEDULES)}")
    return SCHEDULES[value]


def settings(env: Optional[Mapping[str, str]] = None) -> Settings:
    """The runtime settings now (``env``: a mapping instead of the process environment)."""
    return Settings.from_env(env)
