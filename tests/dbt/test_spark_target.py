"""The same dbt project on Apache Spark (issue 21.3): the XS demo company, landed by the real extractors, is built
by `dbt build --target spark` (dbt-spark, a local in-process pyspark session: local[2], 1 GB driver, 2 shuffle
partitions, its own warehouse dir and Derby metastore under tmp_path) reading the raw Parquet where it landed
(cxw.loader_spark registers external tables, no copy), and by the DuckDB target from the same raw files. Key marts
must agree (fct_orders, fct_order_lines; kpi_period once dim_dates builds on Spark).

Heavy (1,012 s wall measured on the shared 2-core machine, most of it Spark planning ~435 small queries; measured numbers in
docs/scale-out.md): one module fixture, one build per target. Skips when Java or pyspark is missing.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from tests.dbt.test_postgres_target import _LAND

REPO = Path(__file__).resolve().parents[2]

# the heavy stage (tests/conftest.py): `./cx test --heavy` runs it, `./cx test` leaves it out
pytestmark = pytest.mark.heavy
# Models that do not build on Spark yet (docs/scale-out.md "What does not build on Spark"): the SCD2 snapshots need
# a table format with MERGE (Delta / Iceberg / Hudi), which a plain pyspark install has not; dim_dates (extract isodow),
# kpi_dictionary and kpi_cohorts_monthly (`double precision` from a type macro) fail, and everything downstream of
# them (kpi_period, kpi_daily, the cx marts that join dates) is left out with them; fct_touchpoints fails too (last run).
SPARK_EXCLUDE = ["resource_type:snapshot", "dim_customers_history+", "dim_dates+", "kpi_dictionary+",
                 "kpi_cohorts_monthly+", "fct_touchpoints+"]


def _spark_session(spark_dir: Path):
    from pyspark.sql import SparkSession

    # the same settings as profiles.yml's spark output: dbt-spark's getOrCreate() then reuses this session
    builder = (SparkSession.builder.enableHiveSupport().master("local[2]")
               .config("spark.driver.memory", "1g").config("spark.sql.shuffle.partitions", "2")
               .config("spark.ui.enabled", "false").config("spark.sql.session.timeZone", "UTC")
               .config("spark.sql.warehouse.dir", f"{spark_dir}/warehouse")
               .config("spark.hadoop.javax.jdo.option.ConnectionURL",
                       f"jdbc:derby:;databaseName={spark_dir}/metastore_db;create=true")
               .config("spark.driver.extraJavaOptions", f"-Dderby.system.home={spark_dir}"))
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    logging.getLogger("SQLQueryContextLogger").setLevel(logging.CRITICAL)  # pyspark logs every failed query whole
    return spark


@pytest.fixture(scope="module")
def builds(tmp_path_factory):
    if shutil.which("java") is None:
        pytest.skip("no java on PATH (Spark needs Java 17)")
    pytest.importorskip("pyspark")
    pytest.importorskip("dbt.adapters.spark")
    from dbt.cli.main import dbtRunner

    from cxw.dbt import kpi_window_vars, run_dbt
    from cxw.loader import load_into_duckdb
    from cxw.loader_spark import register_raw_tables

    timings: dict[str, float] = {}
    home = tmp_path_factory.mktemp("cxw_spark_target")
    data = home / "demo" / "XS-42"
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "demo_company", "generate", "--scale", "XS", "--seed", "42",
                    "--out", str(data)], check=True, cwd=REPO, capture_output=True)
    manifest = json.loads((data / "manifest.json").read_text())
    base_env = {k: v for k, v in os.environ.items() if not k.startswith(("CXW_", "DBT_", "AIRFLOW_"))}
    pythonpath = os.pathsep.join(p for p in (os.environ.get("PYTHONPATH"), str(REPO)) if p)
    land = subprocess.run([sys.executable, "-c", _LAND, str(data)], cwd=home, capture_output=True, text=True,
                          env={**base_env, "CXW_HOME": str(home), "AIRFLOW_HOME": str(home / "airflow"),
                               "PYTHONPATH": pythonpath}, timeout=600)
    assert land.returncode == 0, land.stdout[-3000:] + land.stderr[-3000:]
    timings["generate_and_land"] = time.perf_counter() - t0
    window = kpi_window_vars([manifest["window"]["start"][:10], manifest["window"]["end"][:10]])

    duck_db = home / "warehouse" / "build.duckdb"
    spark_dir = home / "spark"
    spark_dir.mkdir()
    saved = dict(os.environ)
    cwd = os.getcwd()
    try:
        os.environ.update(CXW_HOME=str(home), CXW_BUILD_DB=str(duck_db), DBT_SEND_ANONYMOUS_USAGE_STATS="false",
                          CXW_SPARK_DIR=str(spark_dir), DBT_PROFILES_DIR=str(REPO / "dbt_project"))
        t0 = time.perf_counter()
        load_into_duckdb(home / "raw", duck_db)
        timings["load_duckdb"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        duck = run_dbt(["build", *window, "--exclude", *SPARK_EXCLUDE], target="duckdb")
        timings["dbt_build_duckdb"] = time.perf_counter() - t0

        os.chdir(spark_dir)  # anything Spark or Derby writes relative to the cwd lands here, never in the repo
        t0 = time.perf_counter()
        spark = _spark_session(spark_dir)
        timings["spark_start"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        register_raw_tables(spark, home / "raw", spark_dir)
        timings["register_raw_spark"] = time.perf_counter() - t0
        os.environ.update(DBT_LOG_PATH=str(spark_dir / "logs"), DBT_TARGET_PATH=str(spark_dir / "target"))
        t0 = time.perf_counter()
        res = dbtRunner().invoke(["build", *window, "--exclude", *SPARK_EXCLUDE,
                                  "--project-dir", str(REPO / "dbt_project"), "--target", "spark"])
        timings["dbt_build_spark"] = time.perf_counter() - t0
        failed = [(r.node.name, str(r.status), (r.message or "")[:300]) for r in (res.result or [])
                  if str(r.status) not in ("success", "pass")]
        marts = {}
        for table, sql in MART_QUERIES.items():
            marts[table] = [tuple(r) for r in spark.sql(sql.format(t=table)).collect()]
        print("\nspark target timings (s):", json.dumps({k: round(v, 1) for k, v in timings.items()}))
        yield {"duck": duck, "duck_db": duck_db, "spark_ok": res.success, "spark_failed": failed,
               "spark_marts": marts, "timings": timings, "spark_dir": spark_dir}
    finally:
        os.chdir(cwd)
        os.environ.clear()
        os.environ.update(saved)


MART_QUERIES = {
    "core.fct_orders": "select count(*), count(distinct person_sk), round(sum(amount_total), 2) from {t}",
    "core.fct_order_lines": "select count(*), round(sum(price_subtotal), 2) from {t}",
}


def _duck_marts(db: Path) -> dict:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return {t: [tuple(r) for r in con.execute(sql.format(t=t)).fetchall()] for t, sql in MART_QUERIES.items()}
    finally:
        con.close()


def test_dbt_build_succeeds_on_spark(builds):
    assert builds["spark_failed"] == [] and builds["spark_ok"], builds["spark_failed"]


def test_key_marts_equal_duckdb(builds):
    duck = _duck_marts(builds["duck_db"])
    spark = builds["spark_marts"]
    assert duck["core.fct_orders"][0][0] > 0
    for table in MART_QUERIES:
        assert spark[table] == duck[table], table


def test_spark_writes_nothing_into_the_repo(builds):
    assert not (REPO / "metastore_db").exists() and not (REPO / "derby.log").exists()
    assert not (REPO / "spark-warehouse").exists()
    assert (builds["spark_dir"] / "metastore_db").is_dir()


def test_python_c_importing_the_gate_runs_to_the_end_with_pyspark_installed():
    """pyspark 4.3's Spark Connect check (pyspark.sql.connect.utils.check_dependencies, reached by importing
    great_expectations) takes a `python -c` process for a doctest run and ends it with exit code 0 when one of Spark
    Connect's packages (grpcio-status, zstandard) is missing: every `python -c` that imports the gate stopped there
    silently (seen: the PostgreSQL e2e test's DuckDB comparison printed nothing). requirements.lock carries them."""
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", "import great_expectations, cxw.gate.ge; print('reached the end')"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and "reached the end" in out.stdout, out.stderr[-2000:]
