"""dbt docs of each published generation (issue 18.3): `published/docs/<generation>/` holds the static dbt docs site
(`static_index.html`, one self-contained file; `index.html` + `manifest.json` + `catalog.json` to serve) generated
from the build behind that generation, right after it is published. `./cx docs` prints (or serves) the docs of the
generation BI reads.

The docs hold the models' SQL, descriptions and column types, never data values: the catalog lists the project's
relations only (not schema `_cxw`, where the PII salt lives), and the salt never appears in compiled SQL
(cxw.dbt_pii_plugin); the profile's credentials are not part of dbt's artifacts. Tested in tests/cxw/test_docs.py.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from pathlib import Path

from .config import paths

log = logging.getLogger(__name__)

DOCS_FILES = ("static_index.html", "index.html", "manifest.json", "catalog.json")


def docs_root() -> Path:
    return paths().published_dir / "docs"


def docs_dir(generation: str) -> Path:
    return docs_root() / generation


def generate_docs(generation: str) -> dict:
    """Generate the dbt docs of ``generation`` (the one just published from the build database) unless they exist.
    Reuses the build's manifest (`dbt docs generate --no-compile`: the catalog is read from the database, the SQL
    was compiled by the build) when the build left one; otherwise dbt compiles."""
    from . import buildstate
    from .dbt import kpi_window_vars, run_dbt

    out = docs_dir(generation)
    if (out / "static_index.html").exists():
        return {"status": "exists", "path": str(out / "static_index.html")}
    t0 = time.perf_counter()
    home = paths().home
    target = home / "dbt" / "docs-target"
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    build_target = Path(os.environ.get("DBT_TARGET_PATH", home / "dbt" / "target"))
    # the KPI window the published build was given (--vars), so the docs' compiled SQL is the build's
    window = (buildstate.published_build() or {}).get("kpi_window")
    args = ["docs", "generate", "--static", "--target-path", str(target), *kpi_window_vars(window)]
    if (build_target / "manifest.json").exists():
        for name in ("manifest.json", "partial_parse.msgpack"):
            if (build_target / name).exists():
                shutil.copyfile(build_target / name, target / name)
        args.append("--no-compile")
    run_dbt(args)
    tmp = out.with_name(f".tmp-{generation}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for name in DOCS_FILES:
        shutil.copyfile(target / name, tmp / name)
    os.replace(tmp, out)
    shutil.rmtree(target, ignore_errors=True)
    pruned = prune_docs()
    secs = round(time.perf_counter() - t0, 2)
    log.info("dbt docs of generation %s in %s (%.1fs)", generation, out, secs)
    return {"status": "generated", "path": str(out / "static_index.html"), "seconds": secs, "pruned": pruned}


def docs_after_publish(generation: str) -> dict:
    """`generate_docs` for the publish task and erase: BI already reads the generation, so a docs failure is logged
    and reported (status "failed"), not raised; the next publish of the same content generates them."""
    try:
        return generate_docs(generation)
    except Exception as exc:  # noqa: BLE001 - the publication stands; the report and the log say what failed
        log.error("dbt docs of generation %s not generated: %s", generation, exc)
        return {"status": "failed", "error": str(exc)[:2000]}


def prune_docs() -> list[str]:
    """Remove the docs of generations no longer kept (and of interrupted runs)."""
    from .publish import generations

    kept = {g.stem for g in generations()}
    removed = []
    if docs_root().exists():
        for d in docs_root().iterdir():
            if d.is_dir() and (d.name.startswith(".tmp-") or d.name not in kept):
                shutil.rmtree(d, ignore_errors=True)
                removed.append(d.name)
    return removed


def current_docs() -> Path:
    """The static docs page of the generation BI reads; raises when there is none."""
    from .publish import current_generation

    gen = current_generation()
    if gen is None:
        raise RuntimeError(f"nothing published yet under {paths().published_dir}: run the pipeline first")
    page = docs_dir(gen) / "static_index.html"
    if not page.exists():
        raise RuntimeError(f"no dbt docs for the published generation {gen} ({page} is missing): they are "
                           f"generated when a generation is published; the publish task's log says why they are not")
    return page


def serve(port: int = 8081) -> None:
    """Serve the current generation's docs directory on 127.0.0.1 (dbt's index.html, manifest and catalog)."""
    import functools
    import http.server

    page = current_docs()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(page.parent))
    with http.server.ThreadingHTTPServer(("127.0.0.1", port), handler) as httpd:
        print(f"dbt docs of generation {page.parent.name}: http://127.0.0.1:{httpd.server_address[1]}/", flush=True)
        httpd.serve_forever()
