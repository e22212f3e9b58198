"""Review files reach fct_reviews (issue 19 point 5): files landed by the real extractor, loaded by the real loader,
built by dbt; review_source is the site, the site's rating scale is mapped to 1-5, bad rows are quarantined and
ledgered, and the author is never published."""
from __future__ import annotations

import shutil
import sys
from datetime import datetime, timezone
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_marts_incremental import BUILD_NO_TESTS, _dbt, _env  # noqa: E402

from cxw.loader import load_into_duckdb  # noqa: E402
from extractors import review_files  # noqa: E402
from extractors.review_files.settings import DEFAULT_MAPPINGS_DIR, ReviewFilesSettings  # noqa: E402

UTC = timezone.utc

TEN_POINT_MAPPING = """site: hotelsite
format: csv
columns: {review_id: id, location: hotel, rating: score, text: comment, created_at: date, author: guest}
rating_scale: {min: 1, max: 10}
created_at_format: "%d.%m.%Y"
timezone: Europe/Berlin
"""
TEN_POINT_CSV = """id,hotel,score,comment,date,guest
h1,berlin-1,10,Perfect,01.03.2025,Greta Guest
h2,berlin-1,1,Awful,02.03.2025,Hans Guest
h3,berlin-1,5.5,Middle,03.03.2025,Ida Guest
h4,berlin-1,8,Good,04.03.2025,Jan Guest
"""
TRIPADVISOR_CSV = """review_id,location_id,rating,title,text,published_date,username,lang,owner_response,owner_response_date
ta-1,loc-9,5,Great,Lovely stay,2025-03-01T10:00:00Z,Alice Example,en,Thanks!,2025-03-01T12:00:00Z
ta-2,loc-9,2,Meh,Cold room,2025-03-02T11:30:00Z,Bob Example,en,,
"""


def test_review_files_reach_fct_reviews_per_site_on_the_1_to_5_scale(tmp_path):
    maps = tmp_path / "mappings"
    shutil.copytree(DEFAULT_MAPPINGS_DIR, maps)
    (maps / "hotelsite.yml").write_text(TEN_POINT_MAPPING)
    inbox = tmp_path / "inbox"
    for site, name, text in (("hotelsite", "march.csv", TEN_POINT_CSV), ("tripadvisor", "t.csv", TRIPADVISOR_CSV)):
        (inbox / site).mkdir(parents=True)
        (inbox / site / name).write_text(text)
    dirs = {k: tmp_path / k for k in ("raw", "state", "deadletter")}
    settings = ReviewFilesSettings(inbox=inbox, mappings_dir=maps)
    rep = review_files.extract(raw_root=dirs["raw"], state_root=dirs["state"], deadletter_root=dirs["deadletter"],
                               window_start=datetime(2025, 1, 1, tzinfo=UTC),
                               window_end=datetime(2025, 4, 1, tzinfo=UTC), settings=settings)
    assert len(rep["loads"]) == 2
    # a raw row that passed the extractor but breaks the contract's rules (a rating outside the scale): quarantined
    db = tmp_path / "build.duckdb"
    load_into_duckdb(dirs["raw"], db)
    con = duckdb.connect(str(db))
    con.execute("update raw_review_files.reviews set rating = '11' where review_id = 'h4'")
    con.close()
    _dbt(_env(tmp_path, db), *BUILD_NO_TESTS, "--select", "+fct_reviews", "+dim_review_sources", "+quarantine",
         "+load_ledger", "+cx_reviews_by_source_location")
    con = duckdb.connect(str(db), read_only=True)
    try:
        got = con.execute("select review_key, review_source, location, rating, created_date::varchar, has_reply "
                          "from core.fct_reviews order by review_key").fetchall()
        assert got == [
            ("hotelsite:h1", "hotelsite", "berlin-1", 5, "2025-02-28", False),   # 10/10, Berlin midnight = UTC 23:00
            ("hotelsite:h2", "hotelsite", "berlin-1", 1, "2025-03-01", False),   # 1/10
            ("hotelsite:h3", "hotelsite", "berlin-1", 3, "2025-03-02", False),   # 5.5/10 -> 1 + 4 * 4.5/9 = 3
            ("tripadvisor:ta-1", "tripadvisor", "loc-9", 5, "2025-03-01", True),
            ("tripadvisor:ta-2", "tripadvisor", "loc-9", 2, "2025-03-02", False),
        ]
        # the review KPIs per source and location (the dashboard's reviews page)
        assert con.execute("select review_source, location, reviews, review_rating_avg, negative_reviews "
                           "from cx.cx_reviews_by_source_location where grain = 'window' "
                           "order by 1").fetchall() == [("hotelsite", "berlin-1", 3, 3.0, 1),
                                                         ("tripadvisor", "loc-9", 2, 3.5, 1)]
        assert con.execute("select review_source, source, rating_scale from core.dim_review_sources "
                           "where source = 'review_files' order by 1").fetchall() == [
            ("hotelsite", "review_files", "1.0-10.0 mapped to 1-5"),
            ("tripadvisor", "review_files", "1.0-5.0 mapped to 1-5")]
        assert con.execute("select record_id, reason from staging.quarantine "
                           "where source = 'review_files'").fetchall() == [("hotelsite:h4", "rating_invalid")]
        assert con.execute("select sum(extracted), sum(staged), sum(quarantined) from staging.load_ledger "
                           "where source = 'review_files'").fetchone() == (6, 5, 1)
        # the author is hashed in staging, never in a mart
        cols = {r[0] for r in con.execute("select column_name from information_schema.columns "
                                          "where table_name = 'stg_review_files__reviews'").fetchall()}
        assert "author_hash" in cols and "author" not in cols
        assert con.execute("select count(*) from core.fct_reviews where review_key like 'hotelsite:%' and "
                           "cast(to_json(fct_reviews) as varchar) like '%Guest%'").fetchone()[0] == 0
    finally:
        con.close()
