"""Curated mutation check: plant each bug of a catalogue (tests/mutations.yml) into a scratch copy of the repository,
run the tests that should catch it, and fail unless every bug is caught ("killed").

    ./cx mutate                       every mutation of tests/mutations.yml, 2 at a time
    ./cx mutate --only NAME [--only NAME2]   a subset (names from --list)
    ./cx mutate --list                the catalogue
    ./cx mutate --baseline            first run every listed test on the unmutated copy (they must pass)

For each mutation: the files `git ls-files` lists (working-tree content) are copied into a fresh temp directory,
`original` is replaced by `replacement` in `file` (it must occur there exactly once: checked for every selected
mutation before anything runs, so a refactor that moves the code fails the check instead of silently testing
nothing), and `python -m pytest -x <tests>` runs in the copy with the copy first on PYTHONPATH (tests/conftest.py
and the code's REPO_ROOT follow `__file__`, so tests, dbt project and data paths are the copy's; checked once per
run by importing the packages in a copy). pytest exit 1 = killed, 0 = survived, anything else (usage error, no
tests collected, collection error) = error; a timeout counts as killed, flagged. Exit status: 0 when every
mutation is killed, 1 when one survived or errored, 2 when the catalogue does not apply.

Cost (issue 16.8): the mutations start longest first (the seconds their test files took in tests/durations.txt), so
the jobs end together instead of one long mutation running alone at the end. Each job is a slot whose copies always
sit at the same path, with a dbt parse cache of its own (CXW_DBT_PARSE_CACHE_DIR for the tests): a dbt mutation
starts from the parse of the slot's previous copy and dbt parses again only the files that differ (see `Slot`).
Each line and the summary give the tests' CPU seconds (user + sys of the pytest process tree, from wait4).
"""

from __future__ import annotations

import argparse
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_CATALOGUE = "tests/mutations.yml"
PACKAGES = ("cxw", "cxw_tools", "extractors", "demo_company")
FIELDS = {"name", "file", "original", "replacement", "description", "tests", "issue"}


class CatalogueError(RuntimeError):
    pass


@dataclass
class Mutation:
    name: str
    file: str
    original: str
    replacement: str
    description: str
    tests: list[str]
    issue: str | None = None


@dataclass
class Result:
    name: str
    status: str            # killed | survived | error | timeout
    seconds: float
    detail: str = ""
    failed: list[str] = field(default_factory=list)
    cpu: float = 0.0       # CPU seconds (user + sys) of the tests' process tree
    copy_seconds: float = 0.0


def load_catalogue(path: Path) -> list[Mutation]:
    import yaml

    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    items = data.get("mutations")
    if not isinstance(items, list) or not items:
        raise CatalogueError(f"{path}: no 'mutations' list")
    out, seen = [], set()
    for i, m in enumerate(items):
        where = f"{path}: mutation #{i + 1} ({m.get('name', '?') if isinstance(m, dict) else '?'})"
        if not isinstance(m, dict):
            raise CatalogueError(f"{where}: not a mapping")
        unknown = set(m) - FIELDS
        missing = {"name", "file", "original", "replacement", "description", "tests"} - set(m)
        if unknown or missing:
            raise CatalogueError(f"{where}: unknown fields {sorted(unknown)}, missing fields {sorted(missing)}")
        if m["name"] in seen:
            raise CatalogueError(f"{where}: duplicate name")
        seen.add(m["name"])
        tests = m["tests"]
        if not isinstance(tests, list) or not tests or not all(isinstance(t, str) and t for t in tests):
            raise CatalogueError(f"{where}: tests must be a non-empty list of pytest node ids")
        original, replacement = str(m["original"]), str(m["replacement"] if m["replacement"] is not None else "")
        if not original.strip():
            raise CatalogueError(f"{where}: empty original")
        if original == replacement:
            raise CatalogueError(f"{where}: replacement equals original")
        out.append(Mutation(m["name"], m["file"], original, replacement, " ".join(str(m["description"]).split()),
                            tests, m.get("issue")))
    return out


def check_applies(repo: Path, mutations: list[Mutation], tracked: list[str] | None = None) -> list[str]:
    """Problems that stop the run: a file or test file missing or not tracked by git (the scratch copy holds the
    tracked files only), a snippet found 0 or > 1 times."""
    tracked_set = set(tracked if tracked is not None else tracked_files(repo))
    problems = []
    for m in mutations:
        f = repo / m.file
        if not f.is_file():
            problems.append(f"{m.name}: file {m.file} not found")
            continue
        if m.file not in tracked_set:
            problems.append(f"{m.name}: file {m.file} is not tracked by git (git add it)")
            continue
        n = f.read_text(encoding="utf-8").count(m.original)
        if n != 1:
            problems.append(f"{m.name}: the original snippet occurs {n} times in {m.file} (must be exactly once); "
                            f"update the catalogue entry:\n{_indent(m.original)}")
        for t in m.tests:
            tf = t.split("::")[0]
            if not (repo / tf).exists():
                problems.append(f"{m.name}: test file {tf} not found")
            elif (repo / tf).is_file() and tf not in tracked_set:
                problems.append(f"{m.name}: test file {tf} is not tracked by git (git add it)")
    return problems


# Without git (a source tarball): every file but these (the .gitignore's build and data output).
UNTRACKED_DIRS = {".git", ".venv", "var", "__pycache__", ".pytest_cache", "target", "logs", "dbt_packages", "build"}
UNTRACKED_SUFFIXES = (".pyc", ".duckdb", ".duckdb.wal", ".sqlite", ".db")


def tracked_files(repo: Path) -> list[str]:
    """`git ls-files` (working-tree content is copied, so uncommitted edits are tested); without a git checkout,
    every file outside the build and data output."""
    proc = subprocess.run(["git", "-C", str(repo), "ls-files", "-z"], capture_output=True)
    if proc.returncode == 0 and (repo / ".git").exists():
        return [p for p in proc.stdout.decode().split("\0") if p]
    print(f"mutate: {repo} is not a git checkout; copying every file outside {sorted(UNTRACKED_DIRS)}", flush=True)
    out = []
    for dirpath, dirs, names in os.walk(repo):
        dirs[:] = [d for d in dirs if d not in UNTRACKED_DIRS and not d.endswith(".egg-info")]
        out += [os.path.relpath(os.path.join(dirpath, n), repo) for n in names
                if not n.endswith(UNTRACKED_SUFFIXES) and n != ".env"]
    return sorted(out)


def make_copy(repo: Path, files: list[str], dest: Path) -> None:
    for rel in files:
        src = repo / rel
        if not src.exists() or src.is_dir():   # deleted in the working tree, or a submodule
            continue
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if src.is_symlink():
            os.symlink(os.readlink(src), target)
        else:
            shutil.copy2(src, target)


def link_venv(python: str, copy: Path) -> None:
    """The copy's `.venv` is the venv the tests run in (``python``'s), so a test that runs `./cx` in the copy
    (`cx doctor`, `cx run`) uses it instead of installing the locked dependencies again (~100 CPU-s each time);
    `./cx` puts its own checkout first on PYTHONPATH, so the copy's code is what runs (:func:`check_imports_from`)."""
    venv = Path(python).parent.parent
    if (venv / "pyvenv.cfg").is_file() and not (copy / ".venv").exists():
        os.symlink(venv, copy / ".venv", target_is_directory=True)


def apply(copy: Path, m: Mutation) -> None:
    f = copy / m.file
    text = f.read_text(encoding="utf-8")
    if text.count(m.original) != 1:
        raise CatalogueError(f"{m.name}: snippet not found exactly once in the copy of {m.file}")
    f.write_text(text.replace(m.original, m.replacement), encoding="utf-8")


def _env(copy: Path, parse_cache: Path | None = None) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(copy)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.pop("CXW_HOME", None)          # the copy's own var/ unless a test sets one
    env.pop("CXW_BUILD_DB", None)
    # dbt's saved parses: only the slot's own (its copies always sit at the same path, see `Slot`), never a cache
    # of the caller's, whose parses hold another checkout's absolute paths
    env.pop("CXW_DBT_PARSE_CACHE_DIR", None)
    if parse_cache is not None:
        env["CXW_DBT_PARSE_CACHE_DIR"] = str(parse_cache)
    return env


def check_imports_from(copy: Path, python: str) -> None:
    """The copy's packages (not the original's, e.g. through the editable install) must be the ones imported."""
    present = [p for p in PACKAGES if (copy / p / "__init__.py").exists()]
    if not present:
        return
    code = ("import importlib, sys\n"
            f"for p in {present!r}:\n"
            "    print(p, importlib.import_module(p).__file__)\n")
    proc = subprocess.run([python, "-c", code], cwd=copy, env=_env(copy), capture_output=True, text=True,
                          timeout=120)
    if proc.returncode != 0:
        raise CatalogueError(f"importing {present} in the scratch copy failed:\n{proc.stderr[-2000:]}")
    lines = proc.stdout.splitlines()
    if (copy / "cx").is_file() and (copy / ".venv").exists():
        # `./cx` in the copy, as a test runs it: environment stripped, started from elsewhere
        env = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "LC_ALL", "TMPDIR", "CXW_PYTHON")}
        proc = subprocess.run([str(copy / "cx"), "python", "-c", code], cwd=tempfile.gettempdir(), env=env,
                              capture_output=True, text=True, timeout=120)
        if proc.returncode != 0:
            raise CatalogueError(f"`./cx python` in the scratch copy failed:\n{proc.stderr[-2000:]}")
        lines += proc.stdout.splitlines()
    for line in lines:
        pkg, where = line.split(" ", 1)
        if not Path(where).resolve().is_relative_to(copy.resolve()):
            raise CatalogueError(f"{pkg} is imported from {where}, not from the scratch copy {copy}")


def run_tests(copy: Path, tests: list[str], python: str, timeout: float, label: str,
              parse_cache: Path | None = None) -> Result:
    cmd = [python, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "--basetemp", str(copy / ".pytest-tmp"),
           *tests]
    t0 = time.perf_counter()
    proc, cpu = _run_measured(cmd, copy, _env(copy, parse_cache), timeout)
    secs = time.perf_counter() - t0
    r = Result(label, "timeout", secs, f"tests did not finish in {timeout:.0f} s") if proc is None \
        else _verdict(proc, label, secs)
    r.cpu = cpu
    return r


def _verdict(proc: subprocess.CompletedProcess, label: str, secs: float) -> Result:
    out = proc.stdout + proc.stderr
    failed = re.findall(r"^(?:FAILED|ERROR) (\S+)", out, flags=re.M)
    tail = "\n".join(out.strip().splitlines()[-15:])
    if proc.returncode == 0:
        return Result(label, "survived", secs, tail)
    if proc.returncode == 1:
        return Result(label, "killed", secs, tail, failed)
    return Result(label, "error", secs, f"pytest exit {proc.returncode}:\n{tail}", failed)


def _run_measured(cmd: list[str], cwd: Path, env: dict, timeout: float
                  ) -> tuple[subprocess.CompletedProcess | None, float]:
    """Run ``cmd``: (the finished process with its output, or None on timeout; the CPU seconds of the process and the
    descendants it waited for: user + sys from wait4, so the figure is this mutation's alone while other jobs run).
    The process leads a process group of its own: on timeout the whole group is killed (a timed-out DAG test left its
    `airflow dags test` and demo servers running on), and so is whatever of the group outlives the process."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=err, start_new_session=True)
        fired = threading.Event()

        def kill() -> None:
            fired.set()
            _kill_group(proc.pid)

        timer = threading.Timer(timeout, kill)
        timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
            _kill_group(proc.pid)
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        done = subprocess.CompletedProcess(cmd, proc.returncode, out.read().decode(errors="replace"),
                                           err.read().decode(errors="replace"))
    return (None if fired.is_set() else done), usage.ru_utime + usage.ru_stime


def _kill_group(pgid: int) -> None:
    """SIGKILL every process left in the process group ``pgid`` (none: nothing to do)."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


@dataclass
class Slot:
    """One of the `--jobs` parallel places a mutation runs in. Every mutation of a slot gets a fresh copy at the same
    path (`<dir>/repo`), so dbt's saved parse of one copy (`<dir>/dbt-parse`, the tests' CXW_DBT_PARSE_CACHE_DIR) fits
    the next: its manifest holds the copy's absolute paths. dbt compares every project file with the saved parse
    and parses again what differs (the last mutation's file, this mutation's file): about 5 CPU-s less per dbt call
    than a full parse, and never the last mutation's code (a stale parse could only make a mutation survive)."""
    dir: Path

    @property
    def copy(self) -> Path:
        return self.dir / "repo"

    @property
    def parse_cache(self) -> Path:
        return self.dir / "dbt-parse"


def run_one(repo: Path, files: list[str], m: Mutation | None, tests: list[str], python: str, timeout: float,
            keep: bool, slot: Slot | None = None) -> Result:
    label = m.name if m else "baseline"
    if slot is not None and not keep:
        copy = slot.copy
        shutil.rmtree(copy, ignore_errors=True)
        copy.mkdir(parents=True)
    else:
        copy, slot = Path(tempfile.mkdtemp(prefix=f"cxw-mutate-{label}-")), None
    try:
        t0 = time.perf_counter()
        make_copy(repo, files, copy)
        link_venv(python, copy)
        copy_secs = time.perf_counter() - t0
        if m is not None:
            apply(copy, m)
        r = run_tests(copy, tests, python, timeout, label, slot.parse_cache if slot else None)
        r.copy_seconds = copy_secs
        return r
    finally:
        if keep:
            print(f"  kept scratch copy of {label}: {copy}", flush=True)
        else:
            shutil.rmtree(copy, ignore_errors=True)


def expected_seconds(repo: Path):
    """Sort key: a mutation's expected cost, the seconds its test files took when `./cx test --record-durations`
    last wrote tests/durations.txt (`<seconds> <file>` lines); an unrecorded end-to-end file (tests/e2e: a DAG run)
    counts as the longest recorded file, any other unrecorded file as 0."""
    recorded: dict[str, float] = {}
    path = repo / "tests" / "durations.txt"
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            parts = line.split("#", 1)[0].split(None, 1)
            if len(parts) == 2:
                try:
                    recorded[parts[1].strip()] = float(parts[0])
                except ValueError:
                    pass
    longest = max(recorded.values(), default=0.0)

    def key(m: Mutation) -> float:
        files = dict.fromkeys(t.split("::")[0] for t in m.tests)
        return sum(recorded.get(f, longest if f.startswith("tests/e2e/") else 0.0) for f in files)
    return key


def _indent(text: str) -> str:
    return "\n".join("      | " + line for line in text.splitlines())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="cx mutate", description=__doc__.split("\n\n")[0])
    ap.add_argument("--repo", default=None, help="repository root (default: the one holding this file)")
    ap.add_argument("--catalogue", default=None, help=f"catalogue file (default: <repo>/{DEFAULT_CATALOGUE})")
    ap.add_argument("--only", action="append", default=[], metavar="NAME", help="run only these mutations")
    ap.add_argument("--jobs", type=int, default=int(os.environ.get("CXW_MUTATE_JOBS", "2")),
                    help="mutations run in parallel (default 2, CXW_MUTATE_JOBS)")
    ap.add_argument("--timeout", type=float, default=600, help="seconds per mutation's tests (default 600)")
    ap.add_argument("--baseline", action="store_true", help="first run every listed test on the unmutated copy")
    ap.add_argument("--list", action="store_true", help="print the catalogue and exit")
    ap.add_argument("--keep", action="store_true", help="keep the scratch copies (for debugging)")
    ap.add_argument("--python", default=sys.executable, help="interpreter that runs pytest (default: this one)")
    args = ap.parse_args(argv)

    repo = Path(args.repo).resolve() if args.repo else Path(__file__).resolve().parent.parent
    catalogue = Path(args.catalogue).resolve() if args.catalogue else repo / DEFAULT_CATALOGUE
    try:
        mutations = load_catalogue(catalogue)
    except (CatalogueError, OSError) as exc:
        print(f"mutate: {exc}", file=sys.stderr)
        return 2
    if args.only:
        unknown = sorted(set(args.only) - {m.name for m in mutations})
        if unknown:
            print(f"mutate: unknown mutation(s) {unknown}; known: {[m.name for m in mutations]}", file=sys.stderr)
            return 2
        mutations = [m for m in mutations if m.name in args.only]
    if args.list:
        for m in mutations:
            print(f"{m.name}\n  {m.file}: {m.description}\n  tests: {' '.join(m.tests)}"
                  + (f"\n  issue: {' '.join(str(m.issue).split())}" if m.issue else ""))
        return 0
    files = tracked_files(repo)
    problems = check_applies(repo, mutations, files)
    if problems:
        print(f"mutate: the catalogue {catalogue} does not apply to {repo}:", file=sys.stderr)
        for p in problems:
            print(f"  - {p}", file=sys.stderr)
        return 2

    t_all = time.perf_counter()
    probe = Path(tempfile.mkdtemp(prefix="cxw-mutate-probe-"))
    try:
        make_copy(repo, files, probe)
        link_venv(args.python, probe)
        check_imports_from(probe, args.python)
    except (CatalogueError, subprocess.SubprocessError) as exc:
        print(f"mutate: {exc}", file=sys.stderr)
        return 2
    finally:
        shutil.rmtree(probe, ignore_errors=True)

    shown = catalogue.relative_to(repo) if catalogue.is_relative_to(repo) else catalogue
    print(f"mutate: {len(mutations)} mutation(s) from {shown}, {max(1, args.jobs)} at a time", flush=True)
    if args.baseline:
        tests = list(dict.fromkeys(t for m in mutations for t in m.tests))
        base = run_one(repo, files, None, tests, args.python, args.timeout * 2, args.keep)
        verdict = "passed" if base.status == "survived" else "FAILED" if base.status == "killed" else base.status
        print(f"  {'baseline (unmutated copy)':45s} {verdict:8s} {base.seconds:7.1f}s  {len(tests)} test node(s)",
              flush=True)
        if base.status != "survived":   # "survived" = every listed test passed on the unmutated code
            print(f"mutate: the listed tests do not pass on the unmutated copy:\n{base.detail}", file=sys.stderr)
            return 1

    jobs = max(1, args.jobs)
    slots_dir = Path(tempfile.mkdtemp(prefix="cxw-mutate-"))
    free: queue.Queue[Slot] = queue.Queue()
    for i in range(jobs):
        free.put(Slot(slots_dir / f"slot{i}"))

    def job(m: Mutation) -> Result:
        t0 = time.perf_counter()
        slot = free.get()
        try:
            r = run_one(repo, files, m, m.tests, args.python, args.timeout, args.keep, slot)
        except Exception as exc:  # e.g. the copy failed: reported as an error of this mutation, the others go on
            r = Result(m.name, "error", time.perf_counter() - t0, f"{type(exc).__name__}: {exc}")
        finally:
            free.put(slot)
        killer = f"  by {r.failed[0]}" if r.failed else ""
        print(f"  {r.name:45s} {r.status:8s} {r.seconds:7.1f}s {r.cpu:6.1f} CPU-s{killer}", flush=True)
        return r

    # longest first, so that the last mutations to start are short ones and the jobs finish together
    order = sorted(mutations, key=expected_seconds(repo), reverse=True)
    try:
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            done = {r.name: r for r in pool.map(job, order)}
    finally:
        shutil.rmtree(slots_dir, ignore_errors=True)
    results = [done[m.name] for m in mutations]

    total = time.perf_counter() - t_all
    bad = [r for r in results if r.status in ("survived", "error")]
    for r in bad:
        m = next(x for x in mutations if x.name == r.name)
        print(f"\n{r.status.upper()}: {m.name} ({m.file}) - {m.description}\n  tests: {' '.join(m.tests)}"
              + (f"\n  note: {' '.join(str(m.issue).split())}" if m.issue else "") + f"\n{_indent(r.detail)}",
              file=sys.stderr)
    counts = {s: sum(r.status == s for r in results) for s in ("killed", "timeout", "survived", "error")}
    print(f"mutate: {counts['killed']} killed, {counts['timeout']} timed out (counted as killed), "
          f"{counts['survived']} survived, {counts['error']} error(s) in {total:.1f}s "
          f"({sum(r.cpu for r in results):.1f} CPU-s in the tests, {sum(r.copy_seconds for r in results):.1f} s copying)",
          flush=True)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
