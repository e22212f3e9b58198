"""`./cx run` (issue 17 point 1): the pipeline on configured sources - a `.env` file here, pointing at the demo
company's loopback APIs as a customer's file would point at real vendors - with the metadata DB and pool prepared,
one progress line per task state change, the summary at the end, and the exit code of the run.

The end-to-end test runs the real `./cx run` in a subprocess with an environment holding nothing of the project's
(no CXW_* variable), against a scale-XS demo company served by `cxw_tools.demo.demo_server` (the demo's own server)."""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from cxw_tools.run import apply_env_file, days_to_run, logical_date_of, parse_env_file

REPO = Path(__file__).resolve().parents[2]


def _bare_env(home: Path) -> dict[str, str]:
    """What a shell without any project setting has: no CXW_*, no AIRFLOW_*."""
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "CXW_PYTHON")
    env = {k: v for k, v in os.environ.items() if k in keep}
    env["HOME"] = str(home)
    return env


def test_env_file_is_read_literally_and_the_environment_wins(tmp_path):
    f = tmp_path / ".env"
    f.write_text("# comment\n\nexport CXW_A=one two\nCXW_B='$HOME `id`'\nCXW_C=\"x#y\"\nCXW_D=from-file\n")
    env = {"CXW_D": "from-env"}
    added, kept = apply_env_file(f, env)
    assert env == {"CXW_A": "one two", "CXW_B": "$HOME `id`", "CXW_C": "x#y", "CXW_D": "from-env"}
    assert added == ["CXW_A", "CXW_B", "CXW_C"] and kept == ["CXW_D"]
    f.write_text("CXW_OK=1\nthis is the secret s3cr3t\n")
    with pytest.raises(ValueError) as ei:
        parse_env_file(f)
    assert ":2:" in str(ei.value) and "s3cr3t" not in str(ei.value)


def test_a_date_names_the_day_processed_and_the_run_is_logged_under_the_next_day():
    assert logical_date_of(date(2025, 6, 30)) == "2025-07-01"
    now = datetime(2025, 7, 3, 0, 30, tzinfo=timezone.utc)
    assert days_to_run(None, None, now) == [date(2025, 7, 2)]          # latest complete day = yesterday UTC
    assert days_to_run(date(2025, 6, 30), None, now) == [date(2025, 6, 30)]
    assert days_to_run(None, date(2025, 6, 30), now) == [date(2025, 6, 30), date(2025, 7, 1), date(2025, 7, 2)]
    with pytest.raises(ValueError):
        days_to_run(date(2025, 7, 3), None, now)                      # today has not ended


def test_an_unconfigured_run_fails_within_seconds_naming_the_missing_settings(tmp_path):
    empty = tmp_path / "empty.env"
    empty.write_text("")
    env = _bare_env(tmp_path)
    env["CXW_HOME"] = str(tmp_path / "home")
    t0 = time.monotonic()
    proc = subprocess.run([str(REPO / "cx"), "run", "--env-file", str(empty)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)
    took = time.monotonic() - t0
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert took < 30, f"took {took:.0f}s"
    for setting in ("CXW_ODOO_URL", "CXW_HUBSPOT_TOKEN", "CXW_GA4_EXPORT_URL", "CXW_GOOGLE_",
                    "CXW_TRUSTPILOT_"):
        assert setting in proc.stderr, proc.stderr
    assert not (tmp_path / "home" / "airflow" / "airflow.db").exists()  # nothing was started


def test_an_erp_mapping_that_lacks_a_column_staging_reads_fails_the_run_within_seconds_naming_it(tmp_path):
    """Issue 17.7: `./cx run` checks the ERP mapping before Airflow starts, as the extract would."""
    mapping = tmp_path / "erp.yml"
    text = (REPO / "extractors" / "odoo" / "mappings" / "webshop.yml").read_text()
    mapping.write_text(text.replace("      - {name: email, source: email_address, type: string}\n", ""))
    assert mapping.read_text() != text
    env_file = tmp_path / "cx.env"
    env_file.write_text(f"CXW_ODOO_URL=sqlite:///{tmp_path / 'shop.sqlite'}\nCXW_ODOO_MAPPING={mapping}\n")
    env = _bare_env(tmp_path)
    env["CXW_HOME"] = str(tmp_path / "home")
    t0 = time.monotonic()
    proc = subprocess.run([str(REPO / "cx"), "run", "--env-file", str(env_file)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and time.monotonic() - t0 < 30, proc.stdout + proc.stderr
    assert "entity res_partner has no column email" in proc.stderr and "CXW_ODOO_MAPPING" in proc.stderr, proc.stderr
    assert not (tmp_path / "home" / "airflow" / "airflow.db").exists()  # nothing was started


@pytest.mark.e2e
def test_cx_run_from_a_env_file_shows_progress_per_task_and_ends_with_the_summary(tmp_path, monkeypatch):
    from cxw_tools.demo import demo_server, ensure_demo, source_env

    home = tmp_path / "home"
    monkeypatch.setenv("CXW_HOME", str(home))
    data_dir, manifest = ensure_demo("XS", 42)
    day = date.fromisoformat(manifest["window"]["end"][:10]) - timedelta(days=1)
    with demo_server(data_dir) as base_url:
        settings = source_env(data_dir, manifest, base_url)
        env_file = tmp_path / "cx.env"
        env_file.write_text("".join(f"{k}={v}\n" for k, v in {"CXW_HOME": str(home), **settings}.items()))
        proc = subprocess.run([str(REPO / "cx"), "run", "--date", day.isoformat(), "--env-file", str(env_file)],
                              cwd=REPO, env=_bare_env(tmp_path), capture_output=True, text=True, timeout=1200)
    out = proc.stdout
    assert proc.returncode == 0, out[-4000:] + proc.stderr[-4000:]
    logical = (day + timedelta(days=1)).isoformat()
    assert f"Airflow logical date {logical}" in out
    for secret in (settings["CXW_HUBSPOT_TOKEN"], settings["CXW_TRUSTPILOT_API_SECRET"]):
        assert secret not in out and secret not in proc.stderr

    con = sqlite3.connect(home / "airflow" / "airflow.db")
    [(run_id,)] = con.execute("SELECT run_id FROM dag_run WHERE dag_id = 'cx_pipeline'").fetchall()
    tis = dict(con.execute("SELECT task_id, state FROM task_instance WHERE run_id = ?", (run_id,)).fetchall())
    con.close()
    assert len(tis) >= 15 and {"extract_hubspot", "load_odoo", "dbt_build", "publish", "summarize"} <= set(tis)
    progress = [ln for ln in out.splitlines() if re.match(r"^  \[\s*\d+s\] \w+", ln)]
    for task, state in tis.items():  # every task's final state has a progress line, with its seconds
        final = [ln for ln in progress if ln.split()[2] == task and ln.split()[3] == state]
        assert final, f"no progress line for {task} {state}:\n" + "\n".join(progress)
        if state == "success":
            assert re.search(r"\d+\.\ds", final[-1]), final[-1]
    assert re.search(r"extract_hubspot\s+success\s+[\d.]+s\s+[\d,]+ rows", out)
    assert "[airflow" not in "\n".join(progress) and "INFO" not in "\n".join(progress)  # not the raw log

    log = re.search(r"Airflow log: (\S+)", out).group(1)
    assert Path(log).exists() and "cx_pipeline" in Path(log).read_text()
    summary = (home / "runs" / re.sub(r"[^A-Za-z0-9_.-]+", "_", run_id)[:120] / "summary.txt").read_text()
    assert summary.strip() in out
    published = home / "published" / "cx_warehouse.duckdb"
    assert published.exists()
    assert str(published) in out


@pytest.mark.e2e
def test_a_failed_run_exits_non_zero_with_the_failed_task_and_the_summary_naming_the_setting(tmp_path, monkeypatch):
    """A rejected Google token (the loopback API answers 401): extract_google_reviews fails at once, nothing is
    published, `./cx run` prints the failed task and the summary naming the setting, and exits 1."""
    from cxw_tools.demo import demo_server, ensure_demo, source_env

    home = tmp_path / "home"
    monkeypatch.setenv("CXW_HOME", str(home))
    data_dir, manifest = ensure_demo("XS", 42)
    day = date.fromisoformat(manifest["window"]["end"][:10]) - timedelta(days=1)
    with demo_server(data_dir) as base_url:
        settings = {**source_env(data_dir, manifest, base_url), "CXW_GOOGLE_TOKEN": "ya29.rejected-token"}
        env_file = tmp_path / "cx.env"
        env_file.write_text("".join(f"{k}={v}\n" for k, v in {"CXW_HOME": str(home), **settings}.items()))
        proc = subprocess.run([str(REPO / "cx"), "run", "--date", day.isoformat(), "--env-file", str(env_file)],
                              cwd=REPO, env=_bare_env(tmp_path), capture_output=True, text=True, timeout=1200)
    out = proc.stdout
    assert proc.returncode == 1, out[-4000:] + proc.stderr[-4000:]
    assert re.search(r"^  \[\s*\d+s\] extract_google_reviews\s+failed", out, re.M), out[-4000:]
    assert "extract_google_reviews failed on its configuration" in out and "CXW_GOOGLE_TOKEN" in out
    assert f"the run for {day} FAILED" in proc.stderr
    assert "ya29.rejected-token" not in out + proc.stderr
    assert not (home / "published" / "cx_warehouse.duckdb").exists()
