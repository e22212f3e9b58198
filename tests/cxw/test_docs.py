"""dbt docs of each published generation (issue 18.3): the publish task generates them from the real dbt project
over the small raw fixture, `./cx docs` prints the current generation's page, docs of pruned generations go, and
no salt or secret is in the docs' manifest, catalog or pages."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "dbt"))
import raw_fixture  # noqa: E402

SALT = "zq-docs-salt-5d1e0c"       # distinctive values: found by a plain text search if they leak
PG_PASSWORD = "zq-docs-pgpw-83b2a4"


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    home = tmp_path_factory.mktemp("docs_home")
    mp = pytest.MonkeyPatch()
    for k in [k for k in __import__("os").environ if k.startswith(("CXW_", "DBT_"))]:
        mp.delenv(k)
    mp.setenv("CXW_HOME", str(home))
    mp.setenv("CXW_PII_SALT", SALT)
    mp.setenv("CXW_PG_PASSWORD", PG_PASSWORD)
    mp.setenv("CXW_KEEP_GENERATIONS", "5")
    from cxw.config import paths
    from cxw.dbt import run_dbt
    from cxw.tasks import publish

    p = paths()
    p.warehouse_dir.mkdir(parents=True)
    raw_fixture.build(p.build_db)
    run_dbt(["build", "--exclude-resource-type", "unit_test"])
    report = publish("run-docs-1", "2025-03-01T00:00:00+00:00", "2025-04-01T00:00:00+00:00")
    yield home, report, mp
    mp.undo()


def test_publish_generates_the_dbt_docs_of_the_generation(published):
    home, report, _ = published
    assert report["status"] == "published" and report["docs"]["status"] == "generated", report.get("docs")
    gen_docs = home / "published" / "docs" / report["generation_id"]
    assert sorted(f.name for f in gen_docs.iterdir()) == ["catalog.json", "index.html", "manifest.json",
                                                          "static_index.html"]
    page = (gen_docs / "static_index.html").read_text()
    assert "KPI dictionary: what each KPI" in page  # a model description
    assert "Resolved person (dim_customers.person_sk)" in page  # a doc block


def test_cx_docs_prints_the_current_generations_docs(published):
    home, report, _ = published
    proc = subprocess.run([sys.executable, "-m", "cxw_tools", "docs"], cwd=REPO, capture_output=True, text=True,
                          env={**__import__("os").environ})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str(home / "published" / "docs" / report["generation_id"] / "static_index.html")


def test_no_salt_or_secret_in_the_docs(published):
    home, _, _ = published
    files = list((home / "published" / "docs").rglob("*"))
    assert files
    for f in files:
        if f.is_file():
            text = f.read_text(errors="replace")
            assert SALT not in text and PG_PASSWORD not in text, f
    # the salt was really in use: the build holds it (and never publishes it)
    con = duckdb.connect(str(home / "warehouse" / "build.duckdb"), read_only=True)
    try:
        assert con.execute("select salt from _cxw.pii_salt").fetchone()[0] == SALT
    finally:
        con.close()


def test_docs_of_a_generation_no_longer_kept_are_removed(published):
    home, first, mp = published
    from cxw.docs import docs_dir, generate_docs
    from cxw.publish import publish

    mp.setattr("cxw.publish.KEEP_GENERATIONS", 1)
    con = duckdb.connect(str(home / "warehouse" / "build.duckdb"))
    con.execute("comment on table kpi.kpi_dictionary is 'KPI dictionary, edited.'")  # new content: a new generation
    con.close()
    second = publish("run-docs-2", "2025-03-01T00:00:00+00:00", "2025-04-01T00:00:00+00:00")
    assert second["status"] == "published" and second["pruned"] == [f"{first['generation_id']}.duckdb"]
    assert generate_docs(second["generation_id"])["pruned"] == [first["generation_id"]]
    assert not docs_dir(first["generation_id"]).exists() and docs_dir(second["generation_id"]).exists()


def test_the_run_summary_names_the_generations_docs(published):
    home, report, _ = published
    from cxw.summary import build_summary, render

    text = render(build_summary("run-docs-1", [], None, None, None, report, alerts={"status": "nothing new"}))
    assert f"dbt docs of the generation: {report['docs']['path']}" in text
    failed = {**report, "docs": {"status": "failed", "error": "dbt docs generate failed (exit 2)"}}
    text = render(build_summary("run-docs-1", [], None, None, None, failed, alerts={"status": "nothing new"}))
    assert "dbt docs NOT generated (the publication stands): dbt docs generate failed (exit 2)" in text
