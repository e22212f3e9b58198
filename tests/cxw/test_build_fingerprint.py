"""The build fingerprint (cxw/buildstate.py) covers the code a build's outcome depends on: the dbt project and the
gate's suites. A run with no new data rebuilds and re-audits only when that fingerprint changes, so a suite or model
outside it would be skipped after an edit."""

from pathlib import Path

from cxw import buildstate

REPO = Path(__file__).resolve().parents[2]


def test_every_code_dir_of_the_fingerprint_exists():
    missing = [str(d) for d in buildstate.CODE_DIRS if not d.is_dir()]
    assert not missing, f"the build fingerprint reads directories that no longer exist: {missing}"


def test_the_dbt_project_the_analyses_and_the_gate_suites_are_in_the_fingerprint():
    covered = [REPO / "dbt_project" / "dbt_project.yml", REPO / "cxw" / "analytics" / "clv.py",
               REPO / "cxw" / "gate" / "marts_suites.py",
               REPO / "cxw" / "gate" / "raw_suites.py", REPO / "cxw" / "gate" / "volume.py"]
    for f in covered:
        assert f.exists(), f
        assert any(root.resolve() in f.resolve().parents for root in buildstate.CODE_DIRS), \
            f"{f.relative_to(REPO)} is not under the build fingerprint's CODE_DIRS"


def test_an_edit_to_a_gate_suite_changes_the_fingerprint(tmp_path, monkeypatch):
    """On a copy of the code dirs: the fingerprint is of their content (an edited suite is a new build)."""
    import shutil

    root = tmp_path / "repo"
    for d in buildstate.CODE_DIRS:
        rel = d.resolve().relative_to(REPO)
        shutil.copytree(d, root / rel, ignore=shutil.ignore_patterns("target", "logs", "dbt_packages", "__pycache__"))
    monkeypatch.setattr(buildstate, "REPO_ROOT", root)
    monkeypatch.setattr(buildstate, "CODE_DIRS", tuple(root / d.resolve().relative_to(REPO)
                                                       for d in buildstate.CODE_DIRS))
    before = buildstate.code_fingerprint()
    suite = root / "cxw" / "gate" / "marts_suites.py"
    suite.write_text(suite.read_text() + "\n# edited\n")
    assert buildstate.code_fingerprint() != before
