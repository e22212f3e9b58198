"""dbt docs of each published generation (issue 18.3): the publish task generates them from the real dbt project
over the small raw fixture, `./cx docs` prints the current generation's page, docs of pruned generations go, and
no salt or secret is in the docs' manifest, catalog or pages."""

from __future__ import annotations

import json
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
    # a clean environment but the session's saved dbt parse (tests/conftest.py)
    for k in [k for k in __import__("os").environ if k.startswith(("CXW_", "DBT_")) and k != "CXW_DBT_PARSE_CACHE_DIR"]:
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
    run_dbt(["build", "--exclude-resource-type", "test", "--exclude-resource-type", "unit_test"])  # docs need no test run
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
    docs = generate_docs(second["generation_id"])
    assert docs["pruned"] == [first["generation_id"]]
    # a changed comment is in the catalog: dbt queries it again rather than reuse the saved one
    assert docs["status"] == "generated"
    assert "KPI dictionary, edited." in (docs_dir(second["generation_id"]) / "catalog.json").read_text()
    assert not docs_dir(first["generation_id"]).exists() and docs_dir(second["generation_id"]).exists()


def test_the_run_summary_names_the_generations_docs(published):
    home, report, _ = published
    from cxw.summary import build_summary, render

    text = render(build_summary("run-docs-1", [], None, None, None, report, alerts={"status": "nothing new"}))
    assert f"dbt docs of the generation: {report['docs']['path']}" in text
    failed = {**report, "docs": {"status": "failed", "error": "dbt docs generate failed (exit 2)"}}
    text = render(build_summary("run-docs-1", [], None, None, None, failed, alerts={"status": "nothing new"}))
    assert "dbt docs NOT generated (the publication stands): dbt docs generate failed (exit 2)" in text


def test_new_data_with_the_same_models_reuses_the_catalog_and_gives_dbts_docs(published, tmp_path):
    """A new generation whose tables, columns, comments and relations equal those dbt last catalogued gets its docs
    without a dbt start-up (status "reused"): the build's manifest, the saved catalog, dbt's index.html and the static
    page - what `dbt docs generate` writes for it, but for the catalog's run metadata (issue 16.8)."""
    home, _, _ = published
    from cxw.docs import docs_dir, run_docs_generate
    from cxw.publish import current_generation
    from cxw.tasks import publish

    before = current_generation()

    con = duckdb.connect(str(home / "warehouse" / "build.duckdb"))
    con.execute("insert into kpi.kpi_dictionary select * from kpi.kpi_dictionary limit 1")  # data, not schema
    con.close()
    second = publish("run-docs-data", "2025-03-01T00:00:00+00:00", "2025-04-01T00:00:00+00:00")
    assert second["status"] == "published" and second["generation_id"] != before
    assert second["docs"]["status"] == "reused", second["docs"]
    reused = docs_dir(second["generation_id"])
    # what dbt writes for the same build, here and now
    dbt_docs = tmp_path / "dbt-docs"
    dbt_docs.mkdir()
    run_docs_generate(dbt_docs, home / "dbt" / "target", None)
    assert (reused / "manifest.json").read_bytes() == (home / "dbt" / "target" / "manifest.json").read_bytes()
    assert (reused / "manifest.json").read_bytes() == (dbt_docs / "manifest.json").read_bytes()
    assert (reused / "index.html").read_bytes() == (dbt_docs / "index.html").read_bytes()
    ours, theirs = (json.loads((d / "catalog.json").read_text()) for d in (reused, dbt_docs))
    assert ours["nodes"] and ours["sources"]
    for c in (ours, theirs):
        for k in ("generated_at", "invocation_id", "invocation_started_at"):
            c["metadata"].pop(k, None)
    assert ours == theirs
    page = (reused / "static_index.html").read_text()
    assert page.replace((reused / "catalog.json").read_text().strip(), (dbt_docs / "catalog.json").read_text().strip()) \
        == (dbt_docs / "static_index.html").read_text()


def test_the_catalog_key_follows_what_the_catalog_shows(published, tmp_path):
    """The key under which the catalog is reused changes with a relation of the manifest and a comment or column of
    the build database, and not with the manifest's run metadata, timestamps or descriptions."""
    home, _, _ = published
    from cxw.docs import catalog_key

    manifest = json.loads((home / "dbt" / "target" / "manifest.json").read_text())
    path = tmp_path / "manifest.json"

    def key(m):
        path.write_text(json.dumps(m))
        return catalog_key(path)

    base = key(manifest)
    assert base is not None and key(manifest) == base
    uid = next(u for u, n in manifest["nodes"].items() if n["resource_type"] == "model")
    quiet = json.loads(json.dumps(manifest))
    quiet["metadata"]["generated_at"] = "2030-01-01T00:00:00Z"
    quiet["metadata"]["invocation_id"] = "another-run"
    quiet["nodes"][uid]["created_at"] = 1.0
    quiet["nodes"][uid]["description"] = "another description (manifest.json is copied, not catalogued)"
    assert key(quiet) == base
    moved = json.loads(json.dumps(manifest))
    moved["nodes"][uid]["alias"] = "another_relation"
    assert key(moved) != base
    def sql(statement):  # a writer connection closed again: catalog_key opens the file read-only in this process
        con = duckdb.connect(str(home / "warehouse" / "build.duckdb"))
        try:
            con.execute(statement)
        finally:
            con.close()

    con = duckdb.connect(str(home / "warehouse" / "build.duckdb"), read_only=True)
    comment = con.execute("select comment from duckdb_columns() where schema_name = 'kpi' "
                          "and table_name = 'kpi_dictionary' and column_name = 'kpi'").fetchone()[0]
    con.close()
    sql("comment on column kpi.kpi_dictionary.kpi is 'edited for the key test'")
    assert key(manifest) != base
    quoted = "null" if comment is None else "'" + comment.replace("'", "''") + "'"
    sql(f"comment on column kpi.kpi_dictionary.kpi is {quoted}")
    assert key(manifest) == base
    sql("alter table kpi.kpi_dictionary add column key_test integer")
    assert key(manifest) != base
    sql("alter table kpi.kpi_dictionary drop column key_test")
    assert key(manifest) == base
