"""`.env.example`: every environment setting of README's Settings table with its default, commented out.

Generated from the table (`python -m cxw_tools.env_example` rewrites the file); tests/test_env_example.py fails when the
file and the table differ, so the two cannot drift.
"""

from __future__ import annotations

import re
import sys

from cxw.config import REPO_ROOT

README = REPO_ROOT / "README.md"
TARGET = REPO_ROOT / ".env.example"
_NAME = re.compile(r"`((?:CXW_[A-Z0-9_]+)|AIRFLOW_HOME)`")
_LITERAL = re.compile(r"^`([^`]*)`$")

HEADER = """\
# CX Warehouse settings: copy to .env (git-ignored) and fill in what you use; `./cx run` reads it.
# One KEY=VALUE a line, taken literally (no shell evaluation, no $VAR expansion; quotes around a value are removed).
# A variable set in the environment wins over this file. Values are never printed.
# Every line below is commented out; after `=` the default where it is one plain value (never for a secret).
# Generated from README.md "Settings" by `./cx python -m cxw_tools.env_example` - edit the table, not this file.
"""


def table_rows(readme_text: str) -> list[list[str]]:
    """The cells of each row of the table under "## Settings" (escaped `\\|` kept inside a cell)."""
    section = readme_text.split("\n## Settings\n", 1)[1].split("\n## ", 1)[0]
    rows = [ln for ln in section.splitlines() if ln.startswith("|") and not ln.startswith("|---")]
    return [[c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", r)[1:-1]] for r in rows[1:]]


def render(readme_text: str) -> str:
    out = [HEADER]
    for cells in table_rows(readme_text):
        setting, default, unit, what = (cells + ["", "", "", ""])[:4]
        names = _NAME.findall(setting)
        if not names or not setting.lstrip().startswith("`"):
            continue  # Airflow connections, the pool and dbt vars are not environment variables
        lit = _LITERAL.match(default)
        secret = "**secret**" in what
        value = lit.group(1) if lit and len(names) == 1 and not secret and not set("$<") & set(lit.group(1)) \
            else ""
        what = re.sub(r"\[([^\]]+)\]\([^)]*\)", r"\1", what).replace("**", "")
        out.append(f"\n# {what} ({unit}; default: {default})")
        out.extend(f"#{n}={value}" for n in names)
    return "\n".join(out) + "\n"


def main() -> int:
    TARGET.write_text(render(README.read_text()))
    print(f"wrote {TARGET}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
