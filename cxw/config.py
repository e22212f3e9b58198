"""Paths, from the runtime settings (`cxw.settings`, README "Settings").

`CXW_HOME` holds every file the pipeline writes (contracts.md section 2). Nothing here reads secrets: secrets are
read by the extractors' settings from their own variables, or from Airflow connections (`cxw.connections`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .settings import REPO_ROOT, settings


@dataclass(frozen=True)
class Paths:
    home: Path

    @property
    def raw(self) -> Path:
        return self.home / "raw"

    @property
    def deadletter(self) -> Path:
        return self.home / "deadletter"

    @property
    def state(self) -> Path:
        return self.home / "state"

    @property
    def warehouse_dir(self) -> Path:
        return self.home / "warehouse"

    @property
    def build_db(self) -> Path:
        db = settings().build_db
        return Path(db if db is not None else self.warehouse_dir / "build.duckdb")

    @property
    def published_dir(self) -> Path:
        return self.home / "published"

    @property
    def generations_dir(self) -> Path:
        return self.published_dir / "generations"

    @property
    def published_db(self) -> Path:
        """The one file BI tools open (read-only). Switched atomically by `cxw.publish`."""
        return self.published_dir / "cx_warehouse.duckdb"

    @property
    def runs(self) -> Path:
        """Per-run artefacts: summaries, validation results, data docs."""
        return self.home / "runs"

    @property
    def airflow_home(self) -> Path:
        airflow_home = settings().airflow_home
        return Path(airflow_home if airflow_home is not None else self.home / "airflow")

    @property
    def demo(self) -> Path:
        return self.home / "demo"


def paths() -> Paths:
    return Paths(settings().home)


DBT_PROJECT_DIR = REPO_ROOT / "dbt_project"
DAGS_DIR = REPO_ROOT / "dags"


def duckdb_config() -> dict[str, str]:
    """Settings for the pipeline's own connections to the build and published databases: CXW_DUCKDB_MEMORY_LIMIT
    (e.g. `4GB`), which dbt_project/profiles.yml passes to dbt-duckdb too; DuckDB's default (80 % of RAM) when unset.
    Over the limit DuckDB spills to `<database>.tmp`."""
    limit = settings().duckdb_memory_limit
    return {"memory_limit": limit} if limit else {}


def dbt_target() -> str:
    return settings().dbt_target
