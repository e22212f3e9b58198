"""README "Settings" lists every setting the code reads (issues 14 and 17: run it on one's own systems without reading
code). The code side is found by reading the sources: Python env reads (`os.environ.get / [] / in`, `os.getenv`, the
settings helpers `env_str / env_int / env_float / env_list / _env_float …`, and `vendor_limits(SOURCE, RATE_LIMITS)`,
which reads `CXW_<SOURCE>_<suffix>`), dbt's `env_var('CXW_…')`, and `${CXW_…}` in `./cx`, `.ci/run` and
`docker-compose.yml`. The table side is every `CXW_*` name in the first column of the README's Settings table."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
PY_DIRS = ("cxw", "cxw_dashboard", "dags", "extractors", "expectations", "demo_company", "tests")
SHELL_FILES = ("cx", ".ci/run", "docker-compose.yml", "Dockerfile", "Makefile")
NAME = r"""["'](CXW_[A-Z0-9_]+)["']"""
PY_READS = (
    re.compile(r"environ\.get\(\s*" + NAME),
    re.compile(r"getenv\(\s*" + NAME),
    re.compile(r"environ\[\s*" + NAME + r"\s*\](?!\s*=(?!=))"),   # a read, not an assignment
    re.compile(NAME + r"\s+(?:not\s+)?in\s+(?:os\.)?environ"),
    re.compile(r"\b\w*env\w*\(\s*" + NAME),                      # env_str("CXW_…"), _env_float("CXW_…"), …
)
VENDOR_LIMITS = re.compile(r"""vendor_limits\(\s*(["']?\w+["']?)\s*,\s*(\w+)\s*\)""")


def code_reads(root: Path = ROOT) -> dict[str, set[str]]:
    """{variable: files reading it}."""
    found: dict[str, set[str]] = {}

    def add(name: str, f: Path) -> None:
        found.setdefault(name, set()).add(str(f.relative_to(root)))

    for d in PY_DIRS:
        for f in sorted((root / d).rglob("*.py")):
            if f.resolve() == Path(__file__).resolve():
                continue  # this file's own examples of reads
            src = f.read_text()
            for rx in PY_READS:
                for m in rx.finditer(src):
                    add(m.group(1), f)
            for m in VENDOR_LIMITS.finditer(src):
                if "def vendor_limits" in src:
                    continue  # the helper itself
                mod = importlib.import_module(".".join(f.relative_to(root).with_suffix("").parts))
                arg = m.group(1)
                source = arg.strip("\"'") if arg[0] in "\"'" else getattr(mod, arg)
                limits = getattr(mod, m.group(2))
                for suffix in limits:
                    add(f"CXW_{source.upper()}_{suffix}", f)
    for f in sorted((root / "dbt_project").rglob("*")):
        if f.suffix in (".sql", ".yml", ".yaml") and not {"target", "dbt_packages", "logs"} & set(f.parts):
            for m in re.finditer(r"env_var\(\s*" + NAME, f.read_text()):
                add(m.group(1), f)
    for name in SHELL_FILES:
        f = root / name
        if f.exists():
            for m in re.finditer(r"\$\{?(CXW_[A-Z0-9_]+)", f.read_text()):
                add(m.group(1), f)
    return found


def settings_table(readme: Path = ROOT / "README.md") -> list[str]:
    """The first column of each row of the table under "## Settings"."""
    text = readme.read_text()
    section = text.split("\n## Settings\n", 1)[1].split("\n## ", 1)[0]
    rows = [ln for ln in section.splitlines() if ln.startswith("|") and not ln.startswith("|---")]
    return [r.split("|")[1] for r in rows[1:]]  # rows[0]: the header


def test_every_cxw_variable_the_code_reads_is_in_the_readme_settings_table_and_no_other():
    reads = code_reads()
    listed = {n for cell in settings_table() for n in re.findall(r"CXW_[A-Z0-9_]+", cell)}
    missing = {n: sorted(fs) for n, fs in reads.items() if n not in listed}
    stale = sorted(listed - set(reads))
    assert not missing, f"read by the code but not in README's Settings table: {missing}"
    assert not stale, f"in README's Settings table but read nowhere: {stale}"


def test_every_dbt_var_is_in_the_settings_table():
    project = yaml.safe_load((ROOT / "dbt_project" / "dbt_project.yml").read_text())
    listed = {n for cell in settings_table() if "dbt var" in cell for n in re.findall(r"`(\w+)`", cell)}
    assert set(project["vars"]) == listed


def test_the_scanner_sees_each_kind_of_read(tmp_path):
    """The patterns above on one file of each kind (a scanner that finds nothing would pass the table test)."""
    (tmp_path / "cxw").mkdir()
    (tmp_path / "cxw" / "a.py").write_text(
        'import os\nx = os.environ.get("CXW_A")\ny = os.getenv("CXW_B")\nos.environ["CXW_C"] = os.environ["CXW_D"]\n'
        'z = "CXW_E" in os.environ\nw = env_int("CXW_F", 3)\n')
    (tmp_path / "dbt_project").mkdir()
    (tmp_path / "dbt_project" / "profiles.yml").write_text("path: \"{{ env_var('CXW_G') }}\"\n")
    (tmp_path / "cx").write_text('py="${CXW_H:-}"\n')
    assert set(code_reads(tmp_path)) == {"CXW_A", "CXW_B", "CXW_D", "CXW_E", "CXW_F", "CXW_G", "CXW_H"}
    reads = code_reads()
    assert {"CXW_HUBSPOT_SEARCH_RATE_LIMIT", "CXW_TRUSTPILOT_HOURLY_RATE_LIMIT",  # vendor_limits(SOURCE, …)
            "CXW_GOOGLE_RATE_LIMIT"} <= set(reads)                                     # vendor_limits("google", …)
