"""dbt docs of each published generation (issue 18.3): `published/docs/<generation>/` holds the static dbt docs site
(`static_index.html`, one self-contained file; `index.html` + `manifest.json` + `catalog.json` to serve) generated
from the build behind that generation, right after it is published. `./cx docs` prints (or serves) the docs of the
generation BI reads.

The docs hold the models' SQL, descriptions and column types, never data values: the catalog lists the project's
relations only (not schema `_cxw`, where the PII salt lives), and the salt never appears in compiled SQL
(cxw.dbt_pii_plugin); the profile's credentials are not part of dbt's artifacts. Tested in tests/cxw/test_docs.py.

The catalog is reused, not queried again by `dbt docs generate`, when nothing it holds can have changed since dbt last
wrote one (`catalog_key`: the build database's tables, views, columns, types and comments, and which relation each
of the manifest's nodes and sources is): the generation then gets the build's own manifest, that catalog, dbt's
index.html and a static page assembled as dbt assembles it. A run with new data but the same models (the hourly
case) publishes its docs without a dbt start-up (issue 16.8 / 20); the catalog's metadata (generated_at,
invocation_id) is then that of the run that queried it.
"""

from __future__ import annotations

import hashlib
import json
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
    was compiled by the build) when the build left one; otherwise dbt compiles. When the catalog dbt would write
    equals the one it last wrote (`catalog_key`), no dbt runs: status "reused" (`assemble_docs`)."""
    from . import buildstate

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
    key = catalog_key(build_target / "manifest.json")
    cache = catalog_cache_dir()
    if key is not None and _read_text(cache / "key") == key:
        assemble_docs(build_target / "manifest.json", cache, target)
        status = "reused"
    else:
        run_docs_generate(target, build_target, window)
        status = "generated"
        # saved under the key only if the database did not change while dbt read it
        if key is not None and _catalog_ok(target / "catalog.json") \
                and catalog_key(build_target / "manifest.json") == key:
            _save_catalog(target, cache, key)
    tmp = out.with_name(f".tmp-{generation}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for name in DOCS_FILES:
        shutil.copyfile(target / name, tmp / name)
    os.replace(tmp, out)
    shutil.rmtree(target, ignore_errors=True)
    pruned = prune_docs()
    secs = round(time.perf_counter() - t0, 2)
    log.info("dbt docs of generation %s in %s (%s, %.1fs)", generation, out, status, secs)
    return {"status": status, "path": str(out / "static_index.html"), "seconds": secs, "pruned": pruned}


def run_docs_generate(target: Path, build_target: Path, window) -> dict:
    """`dbt docs generate --static` into ``target``, from the build's manifest when there is one."""
    from .dbt import kpi_window_vars, run_dbt

    args = ["docs", "generate", "--static", "--target-path", str(target), *kpi_window_vars(window)]
    if (build_target / "manifest.json").exists():
        for name in ("manifest.json", "partial_parse.msgpack"):
            if (build_target / name).exists():
                shutil.copyfile(build_target / name, target / name)
        args.append("--no-compile")
    return run_dbt(args)


def catalog_cache_dir() -> Path:
    """The catalog dbt last wrote, its key and dbt's index.html (outside the generations' docs: never pruned)."""
    return paths().home / "dbt" / "docs-catalog"


CATALOG_SQL = """
select 'table', schema_name, table_name, null, null, comment from duckdb_tables() where database_name = current_database()
union all
select 'view', schema_name, view_name, null, null, comment from duckdb_views()
 where database_name = current_database() and not internal
union all
select 'column', schema_name, table_name, column_index, column_name || ' ' || data_type, comment from duckdb_columns()
 where database_name = current_database()
order by 1, 2, 3, 4
"""


def catalog_key(manifest_path: Path) -> str | None:
    """A digest of everything `dbt docs generate` puts in catalog.json on the DuckDB target: the build database's
    tables, views, columns (position, type) and comments, dbt's version, and each manifest node's and source's
    relation (database, schema, identifier). None when it cannot be told (PostgreSQL target, no manifest): dbt runs."""
    from .config import dbt_target
    from .loader import connect_build_db

    if dbt_target() != "duckdb" or not manifest_path.exists():
        return None
    manifest = json.loads(manifest_path.read_bytes())
    relations = sorted(
        (uid, n.get("resource_type"), n.get("database"), n.get("schema"),
         n.get("alias") or n.get("identifier") or n.get("name"))
        for section in ("nodes", "sources") for uid, n in (manifest.get(section) or {}).items())
    con, _ = connect_build_db(paths().build_db, read_only=True)
    try:
        rows = con.execute(CATALOG_SQL).fetchall()
    finally:
        con.close()
    meta = manifest.get("metadata") or {}
    parts = [meta.get("dbt_version"), meta.get("adapter_type"), relations, rows]
    return hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()


def assemble_docs(manifest_path: Path, cache: Path, target: Path) -> None:
    """The docs files from the build's manifest and the saved catalog, as dbt writes them: `index.html` is dbt's,
    `static_index.html` is it with the manifest and the catalog inlined (dbt's task/docs/generate.py)."""
    shutil.copyfile(manifest_path, target / "manifest.json")
    shutil.copyfile(cache / "catalog.json", target / "catalog.json")
    shutil.copyfile(cache / "index.html", target / "index.html")
    page = (cache / "index.html").read_bytes().decode("utf-8").strip()
    page = page.replace('"MANIFEST.JSON INLINE DATA"', manifest_path.read_bytes().decode("utf-8").strip())
    page = page.replace('"CATALOG.JSON INLINE DATA"', (cache / "catalog.json").read_bytes().decode("utf-8").strip())
    (target / "static_index.html").write_bytes(page.encode("utf-8"))


def _catalog_ok(path: Path) -> bool:
    try:
        return not json.loads(path.read_bytes()).get("errors")
    except (OSError, ValueError):
        return False


def _save_catalog(target: Path, cache: Path, key: str) -> None:
    shutil.rmtree(cache, ignore_errors=True)
    cache.mkdir(parents=True)
    for name in ("catalog.json", "index.html"):
        shutil.copyfile(target / name, cache / name)
    (cache / "key").write_text(key)  # last: a cache without its key is never used


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text()
    except OSError:
        return None


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
