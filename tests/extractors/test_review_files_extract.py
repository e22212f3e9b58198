"""Review files (CSV / TSV / JSON-lines exports mapped per site): mapping, one load per file content, bad rows."""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from conftest import read_load, run_kwargs, visible_loads
import extractors
from extractors import review_files
from extractors.common.settings import ConfigError
from extractors.review_files.helpers import load_mapping, load_mappings
from extractors.review_files.settings import DEFAULT_MAPPINGS_DIR, ReviewFilesSettings

ALEXA = Path(os.environ.get("CXW_SHARED_DIR") or "/work/shared", "data", "amazon_alexa_reviews", "amazon_alexa.tsv")

TRIPADVISOR_CSV = """review_id,location_id,rating,title,text,published_date,username,lang,owner_response,owner_response_date
ta-1,loc-9,5,Great,"Lovely stay, would return",2025-03-01T10:00:00Z,Alice Example,en,,
ta-2,loc-9,2,Meh,Cold room,2025-03-02T11:30:00+02:00,Bob Example,en,Sorry about that,2025-03-03T08:00:00Z
ta-3,loc-9,seven,Bad rating,Text,2025-03-02T11:30:00Z,Carol,en,,
,loc-9,4,No id,Text,2025-03-02T11:30:00Z,Dan,en,,
ta-5,loc-9,6,Out of scale,Text,2025-03-02T11:30:00Z,Eve,en,,
ta-6,loc-9,3,Bad date,Text,03/02/2025,Frank,en,,
"""


def settings_for(inbox: Path) -> ReviewFilesSettings:
    return ReviewFilesSettings(inbox=inbox, mappings_dir=DEFAULT_MAPPINGS_DIR)


def put(inbox: Path, site: str, name: str, text: str) -> Path:
    (inbox / site).mkdir(parents=True, exist_ok=True)
    p = inbox / site / name
    p.write_text(text, encoding="utf-8")
    return p


def deadletters(dirs):
    return [json.loads(p.read_text()) for p in sorted(Path(dirs["deadletter"]).rglob("*.json"))]


def test_shipped_mappings_are_valid():
    maps = load_mappings(DEFAULT_MAPPINGS_DIR)
    assert {"yelp", "tripadvisor", "google_play", "amazon_alexa"} <= set(maps)
    assert maps["yelp"].format == "jsonl" and maps["amazon_alexa"].id_from


def test_not_configured_lands_nothing(dirs):
    assert "review_files" in extractors.SOURCES and "review_files" in extractors.OPTIONAL_SOURCES
    settings = ReviewFilesSettings.from_env({})
    assert not settings.configured
    rep = review_files.extract(**run_kwargs(dirs), settings=settings)
    assert rep["loads"] == [] and rep["not_configured"]
    assert not Path(dirs["raw"], "review_files").exists()


def test_csv_mapping_bad_rows_with_reasons(dirs, tmp_path):
    inbox = tmp_path / "inbox"
    put(inbox, "tripadvisor", "export.csv", TRIPADVISOR_CSV)
    rep = review_files.extract(**run_kwargs(dirs), settings=settings_for(inbox))
    [load] = rep["loads"]
    rows, meta = read_load(load["path"])
    assert [r["review_id"] for r in rows] == ["ta-1", "ta-2"]
    ta2 = rows[1]
    assert ta2["site"] == "tripadvisor" and ta2["location"] == "loc-9" and ta2["rating"] == "2"
    assert (ta2["rating_min"], ta2["rating_max"]) == (1.0, 5.0)
    assert ta2["created_at"] == "2025-03-02T09:30:00.000000Z"          # +02:00 converted to UTC
    assert ta2["reply_text"] == "Sorry about that" and ta2["reply_at"] == "2025-03-03T08:00:00.000000Z"
    assert meta["dead_letters"] == 4 and meta["file_name"] == "export.csv"
    reasons = sorted(d["reason"] for d in deadletters(dirs))
    assert all(r.startswith("review_files/tripadvisor: file export.csv row ") for r in reasons)
    assert [(d["row"], d["field"]) for d in sorted(deadletters(dirs), key=lambda d: d["row"])] == [
        (3, "rating"), (4, "review_id"), (5, "rating"), (6, "created_at")]
    # the reason names source, file, row and field, never a value of the row
    assert not any("seven" in r or "Carol" in r for r in reasons)


def test_file_landed_once_by_content_changed_file_is_new_load(dirs, tmp_path):
    inbox = tmp_path / "inbox"
    p = put(inbox, "tripadvisor", "export.csv", TRIPADVISOR_CSV)
    first = review_files.extract(**run_kwargs(dirs), settings=settings_for(inbox))
    assert len(first["loads"]) == 1
    # same content again, also under another name: nothing new
    shutil.copy(p, p.with_name("copy-of-export.csv"))
    again = review_files.extract(**run_kwargs(dirs), settings=settings_for(inbox))
    assert again["loads"] == []
    # the same name with changed content: a new immutable load, the first one untouched
    first_rows, _ = read_load(first["loads"][0]["path"])
    p.write_text(TRIPADVISOR_CSV.replace("ta-1,loc-9,5", "ta-1,loc-9,4"), encoding="utf-8")
    changed = review_files.extract(**run_kwargs(dirs), settings=settings_for(inbox))
    [load] = changed["loads"]
    rows, meta = read_load(load["path"])
    assert rows[0]["rating"] == "4" and meta["file_sha256"] != read_load(first["loads"][0]["path"])[1]["file_sha256"]
    assert read_load(first["loads"][0]["path"])[0] == first_rows
    assert len(visible_loads(dirs["raw"], "review_files", "reviews")) == 2


def test_jsonl_yelp_unreadable_line(dirs, tmp_path):
    inbox = tmp_path / "inbox"
    lines = [json.dumps({"review_id": "y1", "user_id": "u1", "business_id": "b1", "stars": 4.0, "text": "Good",
                         "date": "2024-05-06 07:08:09"}),
             "{not json",
             json.dumps({"review_id": "y2", "business_id": "b1", "text": "no stars", "date": "2024-05-06 07:08:09"})]
    put(inbox, "yelp", "reviews.jsonl", "\n".join(lines) + "\n")
    [load] = review_files.extract(**run_kwargs(dirs), settings=settings_for(inbox))["loads"]
    rows, meta = read_load(load["path"])
    assert [(r["review_id"], r["rating"], r["created_at"], r["author"]) for r in rows] == [
        ("y1", "4.0", "2024-05-06T07:08:09.000000Z", "u1")]
    assert sorted((d["row"], d["field"]) for d in deadletters(dirs)) == [(2, "(row)"), (3, "rating")]


def test_inbox_folder_without_mapping_is_a_config_error(dirs, tmp_path):
    inbox = tmp_path / "inbox"
    put(inbox, "no_such_site", "x.csv", "a,b\n1,2\n")
    with pytest.raises(ConfigError, match="no_such_site"):
        review_files.extract(**run_kwargs(dirs), settings=settings_for(inbox))


def test_missing_inbox_is_a_config_error(dirs, tmp_path):
    settings = ReviewFilesSettings.from_env({"CXW_REVIEW_FILES_DIR": str(tmp_path / "nope")})
    with pytest.raises(ConfigError, match="CXW_REVIEW_FILES_DIR is not a directory"):
        review_files.extract(**run_kwargs(dirs), settings=settings)


def test_mapping_errors_name_file_and_key(tmp_path):
    p = tmp_path / "trustpilot.yml"
    p.write_text("columns: {review_id: id, rating: stars, created_at: date}\nrating_scale: {max: 5}\n")
    with pytest.raises(ConfigError, match="trustpilot.yml: site 'trustpilot' must be"):
        load_mapping(p)
    p = tmp_path / "acme.yml"
    p.write_text("columns: {review_id: id, created_at: date}\nrating_scale: {max: 5}\n")
    with pytest.raises(ConfigError, match=r"acme.yml: columns lacks \['rating'\]"):
        load_mapping(p)
    p.write_text("columns: {review_id: id, rating: stars, created_at: date}\nrating_scale: {min: 5, max: 1}\n")
    with pytest.raises(ConfigError, match="rating_scale min must be below max"):
        load_mapping(p)


@pytest.mark.skipif(not ALEXA.exists(), reason="needs ../shared/data (CXW_SHARED_DIR)")
def test_amazon_alexa_reviews_as_an_app_store_export(dirs, tmp_path):
    """The real Amazon Alexa reviews (3,150 rows, no review id: id from a hash of the row, repeats numbered)."""
    inbox = tmp_path / "inbox"
    (inbox / "amazon_alexa").mkdir(parents=True)
    shutil.copy(ALEXA, inbox / "amazon_alexa" / ALEXA.name)
    [load] = review_files.extract(**run_kwargs(dirs), settings=settings_for(inbox))["loads"]
    rows, meta = read_load(load["path"])
    assert len(rows) == 3150 and meta["dead_letters"] == 0
    assert len({r["review_id"] for r in rows}) == 3150 and meta["duplicates_in_load"] == 0
    counts = {}
    for r in rows:
        counts[r["rating"]] = counts.get(r["rating"], 0) + 1
    assert counts == {"1": 161, "2": 96, "3": 152, "4": 455, "5": 2286}      # PROVENANCE.md
    assert min(r["created_at"] for r in rows).startswith("2018-05") and rows[0]["location"] == "Charcoal Fabric"
