"""Review files extractor: review exports dropped in an inbox -> raw/review_files/reviews/. Entry: :func:`extract`.

One load per file, landed once: a file whose content (SHA-256) was landed before is skipped, whatever its name; a
changed file under the same name is a new load (staging keeps the latest version of each review)."""
from __future__ import annotations

from datetime import datetime
from fnmatch import fnmatch
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from extractors.common.runner import EntityLoad, ExtractRun, report
from extractors.common.settings import ConfigError, history_start_from_env, iso

from .helpers import content_sha256, load_mappings, read_file, reviews_table
from .settings import ENTITY, SOURCE, ReviewFilesSettings

__all__ = ["extract", "ReviewFilesSettings", "inbox_files"]


def inbox_files(settings: ReviewFilesSettings, mappings) -> List[Tuple[str, Path]]:
    """(site, file) for every file under ``<inbox>/<site>/`` matching the site mapping's ``files`` patterns, in
    name order. A site directory without a mapping is a configuration error (its files would silently not load)."""
    out: List[Tuple[str, Path]] = []
    for site_dir in sorted(p for p in settings.inbox.iterdir() if p.is_dir() and not p.name.startswith(".")):
        mapping = mappings.get(site_dir.name)
        if mapping is None:
            raise ConfigError(f"review_files: inbox folder {site_dir.name!r} has no mapping {site_dir.name}.yml in "
                              "CXW_REVIEW_FILES_MAPPINGS_DIR", source=SOURCE)
        for f in sorted(site_dir.iterdir()):
            if f.is_file() and not f.name.startswith(".") and any(fnmatch(f.name, p) for p in mapping.patterns):
                out.append((site_dir.name, f))
    return out


def extract(*, raw_root, state_root, deadletter_root, window_start: datetime, window_end: datetime,
            mode: str = "incremental", settings: Optional[ReviewFilesSettings] = None) -> Dict[str, Any]:
    settings = settings or ReviewFilesSettings.from_env()
    run = ExtractRun(SOURCE, raw_root=raw_root, state_root=state_root, deadletter_root=deadletter_root,
                     window_start=window_start, window_end=window_end, mode=mode,
                     history_start=history_start_from_env())
    if not settings.configured:
        out = report(run)
        out["not_configured"] = "CXW_REVIEW_FILES_DIR is unset: no review files read"
        return out
    settings.check()
    mappings = load_mappings(settings.mappings_dir)
    landed: Dict[str, Any] = dict(run.entity_state(ENTITY).get("files", {}))
    for site, path in inbox_files(settings, mappings):
        data = path.read_bytes()
        sha = content_sha256(data)
        if sha in landed:
            continue       # this content was landed before (maybe under another name): immutable, not again
        mapping = mappings[site]
        win = run.window(ENTITY, window_end - window_start)
        with run.load(ENTITY) as ctx:
            try:
                rows, bad = read_file(data, path.name, sha, mapping)
            except UnicodeDecodeError:
                rows, bad = [], None
                ctx.deadletters.write(f"{SOURCE}/{site}: file {path.name} is not {mapping.encoding} text",
                                      file=path.name, site=site, field="(file)")
            for b in bad or []:
                ctx.deadletters.write(f"{SOURCE}/{site}: file {path.name} row {b.row_number} field {b.field}: "
                                      f"{b.reason}", payload=b.payload, file=path.name, site=site,
                                      row=b.row_number, field=b.field)
            entry = {"file_name": path.name, "site": site, "load_id": ctx.load_id, "rows": len(rows),
                     "bad_rows": len(bad) if bad is not None else None, "landed_at": iso(ctx.extracted_at)}

            def remember(state: Dict[str, Any], sha=sha, entry=entry) -> None:
                est = state.setdefault("entities", {}).setdefault(ENTITY, {})
                est.setdefault("files", {})[sha] = entry

            ctx.land(win, EntityLoad(ENTITY, tables=[reviews_table(rows)], ids=[r["review_id"] for r in rows],
                                     extra_meta={"site": site, "file_name": path.name, "file_sha256": sha}),
                     state_update=remember)
        landed[sha] = entry
    return report(run)
