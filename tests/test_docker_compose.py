"""docker-compose.yml describes the production deployment. No Docker engine runs here, so we parse it and check
its shape: every Airflow service shares one image and one environment, the DAG folder is mounted, Postgres and
Redis back it with healthchecks, and the warehouse and raw paths are volumes."""

from __future__ import annotations

from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
AIRFLOW_SERVICES = {"airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer",
                    "airflow-worker"}


def _compose() -> dict:
    return yaml.safe_load((REPO / "docker-compose.yml").read_text())


def test_all_airflow_3_services_exist():
    services = _compose()["services"]
    assert AIRFLOW_SERVICES <= set(services), AIRFLOW_SERVICES - set(services)
    assert {"postgres", "redis", "airflow-init"} <= set(services)
    cmds = {name: services[name]["command"][0] for name in AIRFLOW_SERVICES}
    assert cmds == {"airflow-apiserver": "api-server", "airflow-scheduler": "scheduler",
                    "airflow-dag-processor": "dag-processor", "airflow-triggerer": "triggerer",
                    "airflow-worker": "celery"}


def test_every_airflow_service_shares_the_image_and_environment():
    services = _compose()["services"]
    images = {services[s]["image"] for s in AIRFLOW_SERVICES | {"airflow-init"}}
    assert len(images) == 1, images
    # the shared environment is the x-airflow-common anchor; a service may add keys (the worker's DUMB_INIT_SETSID)
    # but never drop or change a shared one. (Comparing against the first service of a set made the check depend on
    # set order: it failed whenever the worker came first.)
    base = _compose()["x-airflow-common"]["environment"]
    for s in sorted(AIRFLOW_SERVICES | {"airflow-init"}):
        env = services[s]["environment"]
        shared = {k: v for k, v in env.items() if k in base}
        assert shared == base, f"{s}: Airflow services must share one environment"
    assert base["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert base["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql")
    assert base["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://redis")


def test_image_is_built_from_the_lock_file():
    services = _compose()["services"]
    assert services["airflow-scheduler"]["build"]["dockerfile"] == "Dockerfile"
    dockerfile = (REPO / "Dockerfile").read_text()
    assert "pip install --no-cache-dir -r requirements.lock" in dockerfile
    installs = [ln for ln in dockerfile.splitlines() if "pip install" in ln]
    assert all("requirements.lock" in ln or "--no-deps" in ln for ln in installs), installs


def test_dag_folder_and_data_volumes_are_mounted():
    c = _compose()
    for s in AIRFLOW_SERVICES:
        vols = c["services"][s]["volumes"]
        targets = {v.split(":")[1] for v in vols}
        dags_folder = c["services"][s]["environment"]["AIRFLOW__CORE__DAGS_FOLDER"]
        assert dags_folder in targets, f"{s}: DAG folder {dags_folder} not mounted"
        assert {"/data/raw", "/data/warehouse", "/data/published"} <= targets
        named = {v.split(":")[0] for v in vols if not v.startswith(".")}
        assert named <= set(c["volumes"]), named - set(c["volumes"])


def test_backing_services_have_healthchecks_and_airflow_waits_for_them():
    c = _compose()["services"]
    for s in ("postgres", "redis", *AIRFLOW_SERVICES):
        assert "healthcheck" in c[s], f"{s} has no healthcheck"
    for s in AIRFLOW_SERVICES:
        deps = c[s]["depends_on"]
        assert deps["postgres"]["condition"] == "service_healthy"
        assert deps["redis"]["condition"] == "service_healthy"


def test_no_secret_values_are_committed():
    text = (REPO / "docker-compose.yml").read_text()
    for var in ("AIRFLOW_DB_PASSWORD", "AIRFLOW_FERNET_KEY", "CXW_PII_SALT"):
        assert "${" + var + ":?" in text, f"{var} must come from the environment, required"


def _state_dirs(home: Path) -> dict[str, Path]:
    """Every directory under CXW_HOME the pipeline keeps state in, named from the code that writes it."""
    from cxw.alerts import alerts_root
    from cxw.config import Paths

    p = Paths(home)
    import os

    saved = os.environ.get("CXW_HOME")
    os.environ["CXW_HOME"] = str(home)
    try:
        alerts = alerts_root()
    finally:
        if saved is None:
            os.environ.pop("CXW_HOME")
        else:
            os.environ["CXW_HOME"] = saved
    return {"raw": p.raw, "state": p.state, "dead letters": p.deadletter, "warehouse": p.warehouse_dir,
            "published": p.published_dir, "runs": p.runs, "alert exports and their export record": alerts,
            "dbt target/logs (cxw/dbt.py)": home / "dbt"}


def test_every_state_directory_is_on_a_volume_created_writable_in_the_image():
    """A state directory outside a volume is lost with the container (dead letters, the alerts' export record: alerts
    re-exported); a named volume mounted where the image has no directory is created root-owned (the airflow user
    cannot write it)."""
    c = _compose()
    home = Path(c["x-airflow-common"]["environment"]["CXW_HOME"])
    dockerfile = (REPO / "Dockerfile").read_text()
    for s in sorted(AIRFLOW_SERVICES | {"airflow-init"}):
        vols = c["services"][s]["volumes"]
        targets = {Path(v.split(":")[1]): v.split(":")[0] for v in vols}
        for what, d in _state_dirs(home).items():
            mounted = [t for t in targets if d == t or t in d.parents]
            assert mounted, f"{s}: {what} ({d}) is not on a volume"
            assert all(targets[t] in c["volumes"] for t in mounted), f"{s}: {what} not on a named volume"
    for t in {Path(v.split(":")[1]) for v in c["x-airflow-common"]["volumes"]}:
        if home in t.parents:
            assert str(t) in dockerfile, f"Dockerfile must create {t} (owned by airflow) before the volume mounts it"


def test_airflow_init_migrates_and_creates_the_build_db_pool():
    init = _compose()["services"]["airflow-init"]
    cmd = " ".join(init.get("entrypoint") or []) + " " + " ".join(init["command"])
    assert "airflow db migrate" in cmd
    assert "airflow pools set cxw_build_db 1 " in cmd, cmd  # dags/cx_pipeline.py: pool="cxw_build_db", 1 slot
    assert "&&" in cmd and cmd.index("db migrate") < cmd.index("pools set")  # the pool needs the migrated DB
