"""`./cx doctor` (issue 17 point 2): one table row per check with what to fix, exit 1 when any row FAILs.

Runs the real `./cx doctor` in a subprocess with an environment holding nothing of the project's, reading a `.env`
file that points at the demo company's loopback APIs (served by `cxw_tools.demo.demo_server`, the demo's own server) as a
customer's file would point at real vendors."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SOURCES = ("odoo", "hubspot", "ga4", "google_reviews", "trustpilot", "review_files")  # review_files: optional, OK unset


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    from cxw_tools.demo import demo_server, ensure_demo, source_env

    home = tmp_path_factory.mktemp("doctor-home")
    saved = os.environ.get("CXW_HOME")
    os.environ["CXW_HOME"] = str(home)
    try:
        data_dir, manifest = ensure_demo("XS", 42)
        with demo_server(data_dir) as base_url:
            yield home, source_env(data_dir, manifest, base_url)
    finally:
        if saved is None:
            os.environ.pop("CXW_HOME", None)
        else:
            os.environ["CXW_HOME"] = saved


def doctor(tmp_path: Path, settings: dict[str, str], timeout: float = 180
           ) -> tuple[subprocess.CompletedProcess, dict[str, list[str]], float]:
    env_file = tmp_path / "cx.env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in settings.items()))
    keep = ("PATH", "LANG", "LC_ALL", "TMPDIR", "CXW_PYTHON")
    env = {k: v for k, v in os.environ.items() if k in keep}
    env["HOME"] = str(tmp_path)
    t0 = time.monotonic()
    proc = subprocess.run([str(REPO / "cx"), "doctor", "--env-file", str(env_file)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout)
    took = time.monotonic() - t0
    rows: dict[str, list[str]] = {}
    for line in proc.stdout.splitlines():
        m = re.match(r"^(source \w+|warehouse|free disk|pii salt)\s{2,}(OK|WARN|FAIL)\b\s*(.*)$", line)
        if m:
            assert m.group(1) not in rows, f"two rows for {m.group(1)}:\n{proc.stdout}"
            rows[m.group(1)] = [m.group(2), m.group(3)]
    return proc, rows, took


def _base(demo) -> dict[str, str]:
    home, settings = demo
    return {"CXW_HOME": str(home), "CXW_DOCTOR_MIN_FREE_GB": "0", **settings}


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_all_sources_reachable_and_authenticated_exit_0_with_one_row_per_source(demo, tmp_path):
    proc, rows, _ = doctor(tmp_path, _base(demo))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert set(rows) == {f"source {s}" for s in SOURCES} | {"warehouse", "free disk", "pii salt"}, proc.stdout
    assert all(v[0] == "OK" for v in rows.values()), proc.stdout
    assert "all OK" in proc.stdout
    # dlt's Airflow secrets probe (off in the doctor) created $HOME/airflow/airflow.db and cost 2.6 CPU-s a run
    assert not (tmp_path / "airflow").exists(), sorted(p.name for p in tmp_path.iterdir())


def test_a_rejected_token_fails_its_row_naming_the_setting_never_the_token(demo, tmp_path):
    wrong = "pat-eu1-doctor-wrong-token"
    proc, rows, _ = doctor(tmp_path, {**_base(demo), "CXW_HUBSPOT_TOKEN": wrong})
    assert proc.returncode == 1, proc.stdout + proc.stderr
    status, text = rows["source hubspot"]
    assert status == "FAIL" and "authentication rejected" in text and "CXW_HUBSPOT_TOKEN" in text, proc.stdout
    assert all(v[0] == "OK" for k, v in rows.items() if k != "source hubspot"), proc.stdout
    for secret in (wrong, demo[1]["CXW_TRUSTPILOT_API_SECRET"], demo[1]["CXW_GOOGLE_TOKEN"]):
        assert secret not in proc.stdout + proc.stderr


def test_a_configured_id_that_does_not_exist_fails_naming_its_setting_not_the_id(demo, tmp_path):
    proc, rows, _ = doctor(tmp_path, {**_base(demo), "CXW_TRUSTPILOT_BUSINESS_UNIT_IDS": "ffffffffffffffffffffffff"})
    assert proc.returncode == 1, proc.stdout + proc.stderr
    status, text = rows["source trustpilot"]
    assert status == "FAIL" and "not found" in text and "CXW_TRUSTPILOT_BUSINESS_UNIT_IDS" in text, proc.stdout
    assert "ffffffffffffffffffffffff" not in proc.stdout + proc.stderr


# A retry under the extractors' policy would wait up to 30 s, then 60 s, ... (full jitter): minutes, not seconds.
SLOW_BACKOFF = {"CXW_HTTP_BACKOFF_BASE": "30", "CXW_HTTP_BACKOFF_MAX": "60"}


def test_an_unreachable_port_fails_unreachable_within_seconds(demo, tmp_path):
    port = _closed_port()
    proc, rows, took = doctor(tmp_path, {**_base(demo), "CXW_GOOGLE_BASE_URL": f"http://127.0.0.1:{port}",
                                         **SLOW_BACKOFF})
    assert proc.returncode == 1, proc.stdout + proc.stderr
    status, text = rows["source google_reviews"]
    assert status == "FAIL" and "unreachable" in text and "CXW_GOOGLE_BASE_URL" in text, proc.stdout
    assert took < 120, f"took {took:.0f}s"  # the process start (imports) is most of it
    checks_s = float(re.search(r"checks in ([\d.]+)s", proc.stdout).group(1))
    assert checks_s < 60, proc.stdout  # one try, no backoff (a retry would wait minutes: SLOW_BACKOFF)


def test_a_missing_setting_fails_naming_it_and_an_odoo_database_missing_fails(demo, tmp_path):
    settings = {k: v for k, v in _base(demo).items() if k != "CXW_TRUSTPILOT_API_SECRET"}
    settings["CXW_ODOO_URL"] = f"sqlite:///{tmp_path / 'no-such.sqlite'}"
    proc, rows, _ = doctor(tmp_path, settings)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    status, text = rows["source trustpilot"]
    assert status == "FAIL" and "CXW_TRUSTPILOT_API_SECRET" in text, proc.stdout
    assert rows["source odoo"][0] == "FAIL" and "CXW_ODOO_URL" in rows["source odoo"][1], proc.stdout


def test_an_erp_mapping_that_lacks_a_column_staging_reads_fails_the_odoo_row_naming_it(demo, tmp_path):
    """Issue 17.7: the mapping is checked as the extract checks it (cxw/raw_contract.yml), before any connection."""
    import yaml

    doc = yaml.safe_load((REPO / "extractors" / "odoo" / "mappings" / "odoo17.yml").read_text())
    doc["entities"]["sale_order"]["columns"] = [c for c in doc["entities"]["sale_order"]["columns"]
                                                if c["name"] != "amount_total"]
    mapping = tmp_path / "erp.yml"
    mapping.write_text(yaml.safe_dump(doc))
    proc, rows, _ = doctor(tmp_path, {**_base(demo), "CXW_ODOO_MAPPING": str(mapping)})
    assert proc.returncode == 1, proc.stdout + proc.stderr
    status, text = rows["source odoo"]
    assert status == "FAIL" and "sale_order has no column amount_total" in proc.stdout, proc.stdout
    assert all(v[0] == "OK" for k, v in rows.items() if k.startswith("source ") and k != "source odoo"), proc.stdout


def test_low_disk_warns_without_failing_and_the_demo_salt_fails_against_a_real_system(demo, tmp_path):
    proc, rows, _ = doctor(tmp_path, {**_base(demo), "CXW_DOCTOR_MIN_FREE_GB": "1e12"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert rows["free disk"][0] == "WARN" and "CXW_DOCTOR_MIN_FREE_GB" in rows["free disk"][1], proc.stdout
    # a non-loopback GA4 export URL (no network needed to decide) with the public demo salt
    proc, rows, _ = doctor(tmp_path, {**_base(demo), "CXW_GA4_EXPORT_URL": "memory://bucket/ga4"})
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert rows["pii salt"][0] == "FAIL" and "CXW_PII_SALT" in rows["pii salt"][1], proc.stdout
    proc, rows, _ = doctor(tmp_path, {**_base(demo), "CXW_GA4_EXPORT_URL": "memory://bucket/ga4",
                                      "CXW_PII_SALT": "a-private-salt-for-the-test"})
    assert rows["pii salt"][0] == "OK", proc.stdout
    assert "a-private-salt-for-the-test" not in proc.stdout + proc.stderr


def test_an_airflow_connection_variable_configures_a_source_and_its_token_is_never_printed(demo, tmp_path):
    import json

    settings = {k: v for k, v in _base(demo).items() if k not in ("CXW_HUBSPOT_TOKEN", "CXW_HUBSPOT_BASE_URL")}
    conn = {"conn_type": "http", "host": demo[1]["CXW_HUBSPOT_BASE_URL"], "password": demo[1]["CXW_HUBSPOT_TOKEN"]}
    proc, rows, _ = doctor(tmp_path, {**settings, "AIRFLOW_CONN_CXW_HUBSPOT": json.dumps(conn)})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert rows["source hubspot"][0] == "OK" and "cxw_hubspot" in rows["source hubspot"][1], proc.stdout
    wrong = "pat-eu1-connection-wrong-token"
    proc, rows, _ = doctor(tmp_path, {**settings, "AIRFLOW_CONN_CXW_HUBSPOT": json.dumps({**conn, "password": wrong})})
    assert proc.returncode == 1 and rows["source hubspot"][0] == "FAIL", proc.stdout
    assert "CXW_HUBSPOT_TOKEN" in rows["source hubspot"][1], proc.stdout
    assert wrong not in proc.stdout + proc.stderr and demo[1]["CXW_HUBSPOT_TOKEN"] not in proc.stdout + proc.stderr


def test_a_warehouse_path_that_is_not_writable_fails_naming_cxw_home(demo, tmp_path):
    not_a_dir = tmp_path / "a-file"
    not_a_dir.write_text("")
    proc, rows, _ = doctor(tmp_path, {**_base(demo), "CXW_HOME": str(not_a_dir / "home")})
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert rows["warehouse"][0] == "FAIL" and "CXW_HOME" in rows["warehouse"][1], proc.stdout


def test_a_server_that_never_answers_fails_timed_out_after_cxw_doctor_timeout(demo, tmp_path):
    with socket.socket() as silent:  # accepts connections (the kernel's backlog) but never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        proc, rows, _ = doctor(tmp_path, {**_base(demo), "CXW_TRUSTPILOT_BASE_URL": f"http://127.0.0.1:{port}",
                                          "CXW_DOCTOR_TIMEOUT": "1", **SLOW_BACKOFF},
                               timeout=120)  # as the unreachable port's bound: a retry (minutes) fails here
        silent.setblocking(False)
        connections = 0  # each try is a new connection, queued by the kernel
        while True:
            try:
                conn, _ = silent.accept()
            except BlockingIOError:
                break
            conn.close()
            connections += 1
    assert proc.returncode == 1, proc.stdout + proc.stderr
    status, text = rows["source trustpilot"]
    assert status == "FAIL" and "unreachable (timed out)" in text and "CXW_TRUSTPILOT_BASE_URL" in text, proc.stdout
    assert connections == 1, f"{connections} connections: tried more than once"
    # 1 s, tried once; the bound leaves room for a loaded machine (parallel test workers), a retry waits minutes
    assert float(re.search(r"checks in ([\d.]+)s", proc.stdout).group(1)) < 60, proc.stdout
