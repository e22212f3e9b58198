"""The runtime (`cxw/`, what the Airflow DAG imports) holds only pipeline steps: no module of it, nor the DAG file,
imports the developer tools (`cxw_tools/`: command line, demo runner, benchmark, mutation check) or the demo company
(`demo_company/`), not even lazily inside a function or through `importlib.import_module("...")`; and no runtime
module is over ~600 lines (issue 16 point 1; the layout is in README "Layout")."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
RUNTIME = REPO / "cxw"
FORBIDDEN = ("cxw_tools", "demo_company")
MAX_LINES = 600
# no exceptions: validate.py (799 lines) became the gate package cxw/gate/ (issue 16 point 4)
OVER_LIMIT_PENDING: set[str] = set()


def _module_name(path: Path, package_root: Path) -> str:
    rel = path.relative_to(package_root.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(path: Path, package_root: Path) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in ``path``: top-level and inside functions, relative imports
    resolved against the module's package, and string arguments of importlib.import_module / __import__."""
    tree = ast.parse(path.read_text(), filename=str(path))
    here = _module_name(path, package_root).split(".")
    package = here if path.name == "__init__.py" else here[:-1]
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)] if node.level > 1 else package
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            found.append((node.lineno, mod))
            found += [(node.lineno, f"{mod}.{a.name}") for a in node.names]
        elif isinstance(node, ast.Call) and node.args:
            fn = node.func
            name = fn.attr if isinstance(fn, ast.Attribute) else fn.id if isinstance(fn, ast.Name) else None
            if name in ("import_module", "__import__"):
                arg = node.args[0]
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    found.append((node.lineno, arg.value))
                elif isinstance(arg, ast.JoinedStr) and arg.values and isinstance(arg.values[0], ast.Constant):
                    found.append((node.lineno, str(arg.values[0].value)))  # f"extractors.{source}": its fixed head
    return found


def forbidden_imports(files: list[Path], package_root: Path) -> list[str]:
    bad = []
    for f in files:
        for line, mod in imported_modules(f, package_root):
            if mod.split(".")[0] in FORBIDDEN:
                bad.append(f"{f.relative_to(package_root.parent)}:{line} imports {mod}")
    return bad


def test_runtime_and_dag_import_neither_tools_nor_demo_company():
    files = sorted(RUNTIME.rglob("*.py"))
    assert len(files) > 10, files
    bad = forbidden_imports(files, RUNTIME)
    bad += forbidden_imports(sorted((REPO / "dags").rglob("*.py")), REPO / "dags")
    assert not bad, "the runtime must not import the tools or the demo company:\n" + "\n".join(bad)


def test_the_check_sees_lazy_relative_and_importlib_imports(tmp_path):
    pkg = tmp_path / "cxw"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "steps.py").write_text(
        "import json\n"
        "from . import config\n"
        "def run():\n"
        "    from cxw_tools.demo import source_env\n"
        "    return source_env\n"
        "def gen():\n"
        "    import importlib\n"
        "    return importlib.import_module('demo_company.generator')\n"
        "def up():\n"
        "    from ..cxw_tools import bench\n")
    bad = sorted(forbidden_imports([pkg / "steps.py"], pkg))
    assert bad == sorted(["cxw/steps.py:4 imports cxw_tools.demo", "cxw/steps.py:4 imports cxw_tools.demo.source_env",
                          "cxw/steps.py:8 imports demo_company.generator", "cxw/steps.py:10 imports cxw_tools",
                          "cxw/steps.py:10 imports cxw_tools.bench"]), bad
    mods = [m for _, m in imported_modules(pkg / "steps.py", pkg)]
    assert "cxw.config" in mods and "json" in mods


def test_no_runtime_module_over_600_lines():
    long = {f.relative_to(REPO).as_posix(): n for f in sorted(RUNTIME.rglob("*.py"))
            if (n := len(f.read_text().splitlines())) > MAX_LINES and f.name not in OVER_LIMIT_PENDING}
    assert not long, f"runtime modules over {MAX_LINES} lines (split them along their seams): {long}"
