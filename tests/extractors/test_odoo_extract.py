"""Odoo extractor on real SQLite, PostgreSQL and MariaDB databases built from the Odoo 17 DDL.

PostgreSQL (127.0.0.1:5432, postgres, trust) and MariaDB (127.0.0.1:3306, root, no password) tests create a
throwaway database per test and drop it afterwards; they skip when the server is unreachable unless
CXW_REQUIRE_SERVICES=1 (then they fail).
"""
from __future__ import annotations

import json
import os
import re
import secrets
import textwrap
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from conftest import fingerprint, read_load, run_kwargs, visible_loads
from extractors import odoo
from extractors.odoo.helpers import to_connectorx
from extractors.odoo.mapping import MappingError, load_mapping

UTC = timezone.utc
DDL = Path("/work/shared/samples/vendor-responses/odoo17_erp_schema.sql")
if not DDL.exists():
    DDL = Path(__file__).resolve().parents[3] / "shared" / "samples" / "vendor-responses" / "odoo17_erp_schema.sql"
HOSTILE = "Robert'); DROP TABLE sale_order;-- Cà phê ☕ <script>x</script>"
T0 = datetime(2025, 3, 10, tzinfo=UTC)


def ddl_for(dialect: str) -> list[str]:
    text = "\n".join(l for l in DDL.read_text().splitlines() if not l.startswith("--"))
    stmts = [s.strip() for s in text.split(";") if s.strip()]
    out = []
    for s in stmts:
        if dialect == "sqlite":
            s = s.replace("jsonb", "TEXT")
        elif dialect == "mysql":
            s = re.sub(r"\bjsonb\b", "JSON", s)
            s = re.sub(r"\btimestamp\b", "DATETIME(6)", s)
            s = re.sub(r"\bnumeric\b", "DECIMAL(20,6)", s)
            s = re.sub(r"\bvarchar\b(?!\()", "VARCHAR(255)", s)
        out.append(s)
    return out


def _service_unavailable(reason: str):
    if os.environ.get("CXW_REQUIRE_SERVICES") == "1":
        pytest.fail(f"required service unavailable: {reason}")
    pytest.skip(f"service unavailable: {reason}")


@pytest.fixture(params=["sqlite", "postgresql", "mysql"])
def db(request, tmp_path):
    """(sqlalchemy URL for the extractor, engine) of a fresh database holding the Odoo 17 tables."""
    dialect = request.param
    name = f"cxw_x_{secrets.token_hex(4)}"
    admin = None
    if dialect == "sqlite":
        url = f"sqlite:///{tmp_path / 'odoo.sqlite'}"
    else:
        admin_url = {"postgresql": "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres",
                     "mysql": "mysql+pymysql://root@127.0.0.1:3306/mysql"}[dialect]
        try:
            admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3})
            with admin.connect() as c:
                c.execute(sa.text(f"CREATE DATABASE {name}"))
        except Exception as exc:  # noqa: BLE001
            _service_unavailable(f"{dialect}: {type(exc).__name__}: {str(exc).splitlines()[0]}")
        url = {"postgresql": f"postgresql+psycopg2://postgres@127.0.0.1:5432/{name}",
               "mysql": f"mysql+pymysql://root@127.0.0.1:3306/{name}"}[dialect]
    engine = sa.create_engine(url)
    with engine.begin() as c:
        for stmt in ddl_for(dialect):
            c.execute(sa.text(stmt))
    seed(engine)
    try:
        yield url, engine
    finally:
        engine.dispose()
        if admin is not None:
            with admin.connect() as c:
                c.execute(sa.text(f"DROP DATABASE IF EXISTS {name}"))
            admin.dispose()


def ts(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def seed(engine):
    rows = {
        "res_country": [{"id": 1, "code": "VN", "name": '{"en_US": "Vietnam", "vi_VN": "Việt Nam"}'},
                        {"id": 2, "code": "GB", "name": '{"en_US": "United Kingdom"}'}],
        "res_currency": [{"id": 1, "name": "EUR", "symbol": "€"}],
        "crm_team": [{"id": 1, "name": '{"en_US": "Website"}', "active": True}],
        "res_partner": [{"id": i, "name": n, "email": f"p{i}@example.com", "is_company": i == 1, "customer_rank": i,
                         "country_id": 1, "active": True, "create_date": ts(T0 - timedelta(days=90)),
                         "write_date": ts(T0 - timedelta(days=90 - i))} for i, n in [(1, "Acme"), (2, HOSTILE),
                                                                                     (3, "Nguyễn Văn A")]],
        "product_category": [{"id": 1, "name": "All", "complete_name": "All", "create_date": ts(T0 - timedelta(days=400)),
                              "write_date": ts(T0 - timedelta(days=400))}],
        "product_template": [{"id": 1, "name": '{"en_US": "Arabica Beans"}', "detailed_type": "product",
                              "list_price": 12.5, "categ_id": 1, "sale_ok": True, "active": True,
                              "create_date": ts(T0 - timedelta(days=400)), "write_date": ts(T0 - timedelta(days=400))}],
        "product_product": [{"id": 1, "product_tmpl_id": 1, "default_code": "ARA-1", "active": True,
                             "create_date": ts(T0 - timedelta(days=400)), "write_date": ts(T0 - timedelta(days=400))}],
        "sale_order": [so(1, T0 - timedelta(days=5)), so(2, T0 - timedelta(days=1), amount=25.0),
                       so(3, T0 - timedelta(hours=1), amount=None), so(4, T0)],  # id 4: exactly on the window end
        "sale_order_line": [{"id": i, "order_id": i, "product_id": 1, "name": "Arabica", "product_uom_qty": 2,
                             "price_unit": 12.5, "discount": 0, "price_subtotal": 25.0, "price_tax": 2.5,
                             "price_total": 27.5, "state": "sale", "create_date": ts(T0 - timedelta(days=5)),
                             "write_date": ts(T0 - timedelta(days=5))} for i in (1, 2)],
        "stock_picking_type": [{"id": 1, "name": '{"en_US": "Delivery Orders"}', "code": "outgoing",
                                "sequence_code": "OUT"}],
        "stock_picking": [{"id": 1, "name": "WH/OUT/00001", "origin": "S00001", "sale_id": 1, "partner_id": 1,
                           "picking_type_id": 1, "scheduled_date": ts(T0 - timedelta(days=4)),
                           "date_deadline": ts(T0 - timedelta(days=3)), "date_done": ts(T0 - timedelta(days=3)),
                           "state": "done", "create_date": ts(T0 - timedelta(days=5)),
                           "write_date": ts(T0 - timedelta(days=3))}],
    }
    with engine.begin() as c:
        for table, items in rows.items():
            for item in items:
                cols = ", ".join(item)
                c.execute(sa.text(f"INSERT INTO {table} ({cols}) VALUES ({', '.join(':' + k for k in item)})"), item)


def so(i: int, wd: datetime, amount: float | None = 110.28) -> dict:
    return {"id": i, "name": f"S{i:05d}", "partner_id": 2, "partner_invoice_id": 2, "partner_shipping_id": 2,
            "date_order": ts(wd - timedelta(hours=2)), "state": "sale", "locked": False, "commitment_date": None,
            "amount_untaxed": 100.25, "amount_tax": 10.03, "amount_total": amount, "currency_id": 1, "team_id": 1,
            "user_id": 2, "company_id": 1, "create_date": ts(wd - timedelta(hours=3)), "write_date": ts(wd)}


def settings(url, **kw):
    return odoo.OdooSettings(url=url, history_start=datetime(2025, 1, 1, tzinfo=UTC), **kw)


def loads(rep):
    return {l["entity"]: l for l in rep["loads"]}


def test_full_run_types_and_verbatim_text(db, dirs):
    url, _ = db
    rep = odoo.extract(settings=settings(url), **run_kwargs(dirs, end=T0))
    by = loads(rep)
    mapping = load_mapping(odoo.settings.DEFAULT_MAPPING)
    assert set(by) == set(mapping) | {f"{e}__ids" for e, m in mapping.items() if m.cursor}
    # first run = full history (no lower bound: the 2024 product rows are there); window end exclusive
    assert by["product_template"]["rows"] == 1 and by["res_partner"]["rows"] == 3
    assert by["sale_order"]["rows"] == 3 and by["res_country"]["rows"] == 2
    t = pq.read_table(os.path.join(by["sale_order"]["path"], "part-00000.parquet"))
    assert t.schema.field("amount_total").type == pa.float64()
    assert t.schema.field("write_date").type == pa.timestamp("us")
    assert t.schema.field("locked").type == pa.bool_() and t.schema.field("id").type == pa.int64()
    assert [r["id"] for r in t.to_pylist()] == [1, 2, 3]  # ordered by write_date, id
    # 25.0 is stored as INTEGER 25 by SQLite's NUMERIC affinity, NULL stays NULL: one double column everywhere
    assert t.column("amount_total").to_pylist() == [pytest.approx(110.28), 25.0, None]
    partners, _ = read_load(by["res_partner"]["path"])
    assert HOSTILE in {p["name"] for p in partners}
    countries, _ = read_load(by["res_country"]["path"])
    assert json.loads(countries[0]["name"])["vi_VN"] == "Việt Nam"
    # every table (even the empty-window ones) got a load with _load.json
    for l in rep["loads"]:
        assert os.path.exists(os.path.join(l["path"], "_load.json"))


def test_incremental_lookback_and_exclusive_end(db, dirs):
    url, engine = db
    odoo.extract(settings=settings(url, entities=["sale_order"]), **run_kwargs(dirs, end=T0))
    with engine.begin() as c:
        c.execute(sa.text("UPDATE sale_order SET state = 'cancel', write_date = :wd WHERE id = 1"),
                  {"wd": ts(T0 + timedelta(hours=5))})
        c.execute(sa.text("INSERT INTO sale_order (id, name, partner_id, date_order, write_date) "
                          "VALUES (5, 'S00005', 1, :wd, :wd)"), {"wd": ts(T0 + timedelta(hours=6))})
    rep = odoo.extract(settings=settings(url, entities=["sale_order"]), **run_kwargs(dirs, end=T0 + timedelta(days=1)))
    [l] = [l for l in rep["loads"] if l["entity"] == "sale_order"]
    rows, meta = read_load(l["path"])
    # lookback 2 days from the cursor (T0): ids 2, 3 re-read, 4 (exactly at old end) now in, 1 changed, 5 new
    assert sorted(r["id"] for r in rows) == [1, 2, 3, 4, 5]
    assert {r["id"]: r["state"] for r in rows}[1] == "cancel"
    assert meta["cursor_before"] == "2025-03-10T00:00:00.000000Z"
    assert meta["cursor_after"] == "2025-03-11T00:00:00.000000Z"
    state = json.loads((dirs["state"] / "odoo.json").read_text())
    assert state["entities"]["sale_order"]["cursor"] == meta["cursor_after"]


def test_window_mode_exact_and_idempotent(db, dirs):
    url, _ = db
    kw = run_kwargs(dirs, T0 - timedelta(days=1), T0, mode="window")
    a = odoo.extract(settings=settings(url, entities=["sale_order", "res_country"]), **kw)
    b = odoo.extract(settings=settings(url, entities=["sale_order", "res_country"]), **kw)
    ra, rb = loads(a)["sale_order"], loads(b)["sale_order"]
    rows, _ = read_load(ra["path"])
    assert sorted(r["id"] for r in rows) == [2, 3]  # [T0-1d, T0): start inclusive, end exclusive
    assert fingerprint(rows) == fingerprint(read_load(rb["path"])[0])
    assert ra["cursor_after"] is None  # a backfill never creates or moves a cursor


def test_mapping_identifiers_are_allow_listed(tmp_path, dirs):
    bad = tmp_path / "bad.yml"
    bad.write_text(textwrap.dedent("""
        entities:
          sale_order:
            table: "sale_order; DROP TABLE sale_order"
            columns: [id]
    """))
    with pytest.raises(MappingError, match="not an allowed identifier"):
        odoo.extract(settings=settings("sqlite:////nonexistent.sqlite", mapping_path=str(bad)), **run_kwargs(dirs))
    bad.write_text("entities:\n  x:\n    table: t\n    columns: [{name: a, expr: \"1; DELETE FROM t\"}]\n")
    with pytest.raises(MappingError, match="disallowed"):
        load_mapping(str(bad))


def test_url_conversion_and_password_never_in_errors(dirs):
    assert to_connectorx("sqlite:////tmp/x/odoo.sqlite").cx_url == "sqlite:///tmp/x/odoo.sqlite"
    assert to_connectorx("mysql+pymysql://root@db:3306/odoo").cx_url == "mysql://root@db:3306/odoo"
    c = to_connectorx("postgresql+psycopg2://u:p%40ss@h/odoo?sslmode=disable")
    assert c.cx_url == "postgresql://u:p%40ss@h:5432/odoo?sslmode=disable" and c.secrets == ["p@ss"]
    secret = "Sup3rSecretPw"
    with pytest.raises(odoo.OdooReadError, match="cannot connect") as ei:
        odoo.extract(settings=settings(f"postgresql://postgres:{secret}@127.0.0.1:1/odoo", entities=["res_country"]),
                     **run_kwargs(dirs))
    assert secret not in str(ei.value)
    with pytest.raises(odoo.OdooReadError, match="does not exist"):
        odoo.extract(settings=settings("sqlite:////nonexistent/odoo.sqlite"), **run_kwargs(dirs))
    assert visible_loads(dirs["raw"], "odoo", "res_country") == []


def test_hard_delete_seen_in_ids_snapshot(db, dirs):
    """Odoo deletes rows without a tombstone: the periodic <entity>__ids snapshot (ids present now) lacks them."""
    url, engine = db
    s = settings(url, entities=["sale_order", "res_country"])
    r1 = loads(odoo.extract(settings=s, **run_kwargs(dirs, end=T0)))
    assert "res_country__ids" not in r1  # full-snapshot entities need no reconciliation
    ids1, meta1 = read_load(r1["sale_order__ids"]["path"])
    assert sorted(r["id"] for r in ids1) == [1, 2, 3, 4]  # every id present now, whatever its write_date
    assert meta1["snapshot_of"] == "sale_order" and meta1["entity"] == "sale_order__ids"
    assert pq.read_schema(os.path.join(r1["sale_order__ids"]["path"], "part-00000.parquet")).names[:1] == ["id"]
    with engine.begin() as c:
        c.execute(sa.text("DELETE FROM sale_order WHERE id = 3"))
    # mapping interval 1d: a run 12 h later does not reconcile, the next day's run does
    r2 = loads(odoo.extract(settings=s, **run_kwargs(dirs, end=T0 + timedelta(hours=12))))
    assert "sale_order__ids" not in r2
    r3 = loads(odoo.extract(settings=s, **run_kwargs(dirs, end=T0 + timedelta(days=1))))
    ids3, _ = read_load(r3["sale_order__ids"]["path"])
    assert sorted(r["id"] for r in ids3) == [1, 2, 4]
    # the incremental load itself cannot see the delete: that is what the snapshot is for
    assert 3 not in {r["id"] for r in read_load(r3["sale_order"]["path"])[0]}
    # a backfill never reconciles; "always" forces a snapshot every incremental run
    rw = loads(odoo.extract(settings=s, **run_kwargs(dirs, T0 - timedelta(days=1), T0, mode="window")))
    assert "sale_order__ids" not in rw
    r4 = loads(odoo.extract(settings=settings(url, entities=["sale_order"], id_snapshots="always"),
                            **run_kwargs(dirs, end=T0 + timedelta(days=1, hours=1))))
    assert "sale_order__ids" in r4 and r4["sale_order__ids"]["rows"] == 3


def test_id_snapshot_mapping_option(tmp_path):
    m = tmp_path / "m.yml"
    m.write_text("defaults: {id_snapshot: 7d, cursor: write_date}\nentities:\n"
                 "  a: {table: a, columns: [{name: id, type: int}, {name: write_date, type: timestamp}]}\n"
                 "  b: {table: b, id_snapshot: false, columns: [{name: id, type: int}, {name: write_date, type: timestamp}]}\n"
                 "  c: {table: c, cursor: null, columns: [{name: id, type: int}]}\n")
    mp = load_mapping(str(m))
    assert mp["a"].id_snapshot == timedelta(days=7) and mp["b"].id_snapshot is None and mp["c"].id_snapshot is None
    m.write_text("entities:\n  a: {table: a, id_snapshot: sometimes, columns: [id]}\n")
    with pytest.raises(MappingError, match="id_snapshot"):
        load_mapping(str(m))
    default = load_mapping(odoo.settings.DEFAULT_MAPPING)
    assert default["sale_order"].id_snapshot == timedelta(days=1) and default["res_country"].id_snapshot is None


def _as_text_column(engine, dialect: str, table: str, column: str) -> None:
    """The source's type drifted: the column now holds text (SQLite holds any value in any column already)."""
    alter = {"postgresql": f"ALTER TABLE {table} ALTER COLUMN {column} TYPE text USING {column}::text",
             "mysql": f"ALTER TABLE {table} MODIFY {column} VARCHAR(64)"}.get(dialect)
    if alter:
        with engine.begin() as c:
            c.execute(sa.text(alter))


def test_a_value_that_does_not_parse_in_full_lands_null_and_named_never_a_guessed_number(db, dirs):
    """amount_total stored as text: '327,80 EUR' used to land as 327.0 on SQLite (CAST AS REAL reads the prefix) and
    failed the whole read elsewhere; '1.234,56' is a locale-formatted number, never guessed. Each lands NULL with the
    field named in _type_error_fields and the value as delivered in _type_error_values (staging quarantines the
    record); '327.80' as text parses in full and lands as 327.8."""
    url, engine = db
    dialect = engine.dialect.name
    _as_text_column(engine, dialect, "sale_order", "amount_total")
    with engine.begin() as c:
        for i, v in ((1, "327,80 EUR"), (2, "1.234,56"), (4, "327.80")):
            c.execute(sa.text("UPDATE sale_order SET amount_total = :v WHERE id = :i"), {"v": v, "i": i})
    rep = odoo.extract(settings=settings(url, entities=["sale_order"]),
                       **run_kwargs(dirs, datetime(2025, 1, 1, tzinfo=UTC), T0 + timedelta(days=1), "window"))
    rows, meta = read_load(loads(rep)["sale_order"]["path"])
    got = {r["id"]: (r["amount_total"], r.get("_type_error_fields"), r.get("_type_error_values")) for r in rows}
    assert got[1] == (None, "amount_total", json.dumps({"amount_total": "327,80 EUR"}, ensure_ascii=False))
    assert got[2] == (None, "amount_total", json.dumps({"amount_total": "1.234,56"}, ensure_ascii=False))
    assert got[4] == (327.8, None, None)
    assert got[3] == (None, None, None)                       # a NULL stays a NULL, not an error
    assert meta["type_errors"] == {"amount_total": 2} and meta["rows"] == 4
    assert all(r["amount_untaxed"] == 100.25 for r in rows)  # the other fields of the rows land as they are


def test_a_number_that_does_not_fit_its_int_column_is_a_type_error_never_truncated(db, dirs):
    """customer_rank (mapped int) drifted to a floating-point column: 4.5 used to land as 4 (Arrow's unsafe cast
    truncates) and 1e20 as an overflowed integer on PostgreSQL / MariaDB (SQLite already read a REAL in an int
    column strictly). Each lands NULL, named in _type_error_fields with the value as delivered (staging quarantines
    the record); 7.0 is the integer 7."""
    url, engine = db
    dialect = engine.dialect.name
    alter = {"postgresql": "ALTER TABLE res_partner ALTER COLUMN customer_rank TYPE double precision",
             "mysql": "ALTER TABLE res_partner MODIFY customer_rank DOUBLE"}.get(dialect)
    with engine.begin() as c:
        if alter:
            c.execute(sa.text(alter))
        for i, v in ((1, 4.5), (2, 1e20), (3, 7.0)):
            c.execute(sa.text("UPDATE res_partner SET customer_rank = :v WHERE id = :i"), {"v": v, "i": i})
    rep = odoo.extract(settings=settings(url, entities=["res_partner"]),
                       **run_kwargs(dirs, datetime(2024, 1, 1, tzinfo=UTC), T0 + timedelta(days=1), "window"))
    rows, meta = read_load(loads(rep)["res_partner"]["path"])
    got = {r["id"]: (r["customer_rank"], r.get("_type_error_fields")) for r in rows}
    assert got == {1: (None, "customer_rank"), 2: (None, "customer_rank"), 3: (7, None)}
    values = {r["id"]: json.loads(r["_type_error_values"])["customer_rank"] for r in rows if r["_type_error_values"]}
    assert float(values[1]) == 4.5 and float(values[2]) == 1e20      # as delivered (a number or its text)
    assert meta["type_errors"] == {"customer_rank": 2}


@pytest.mark.parametrize("db", ["sqlite"], indirect=True)
def test_an_integral_real_in_a_sqlite_float_column_mapped_int_is_the_integer(db, dirs):
    """customer_rank (mapped int) as a double precision column in SQLite (REAL affinity keeps 7.0 a REAL, where an
    integer column stores 7): 7.0 and 20240726045927.0 are the integers (staging then checks the 32-bit range), 4.5
    is a type error. Every integral rank of such a column used to be a type error ('7.0' failed the strict int), so
    the demo's erp_bad_integer_rate quarantined every partner instead of the bad ones."""
    url, engine = db
    with engine.begin() as c:
        c.execute(sa.text("ALTER TABLE res_partner DROP COLUMN customer_rank"))
        c.execute(sa.text("ALTER TABLE res_partner ADD COLUMN customer_rank double precision"))
        for i, v in ((1, 7.0), (2, 20240726045927.0), (3, 4.5)):
            c.execute(sa.text("UPDATE res_partner SET customer_rank = :v WHERE id = :i"), {"v": v, "i": i})
        assert c.execute(sa.text("SELECT typeof(customer_rank) FROM res_partner WHERE id = 1")).scalar() == "real"
    rep = odoo.extract(settings=settings(url, entities=["res_partner"]),
                       **run_kwargs(dirs, datetime(2024, 1, 1, tzinfo=UTC), T0 + timedelta(days=1), "window"))
    rows, meta = read_load(loads(rep)["res_partner"]["path"])
    got = {r["id"]: (r["customer_rank"], r.get("_type_error_fields")) for r in rows}
    assert got == {1: (7, None), 2: (20240726045927, None), 3: (None, "customer_rank")}
    assert meta["type_errors"] == {"customer_rank": 1}


def test_source_columns_new_and_dropped_are_reported_and_a_dropped_required_column_fails_that_load(db, dirs,
                                                                                                    monkeypatch):
    from cxw import tasks

    monkeypatch.setenv("CXW_HOME", str(Path(dirs["state"]).parent / "home"))

    url, engine = db
    kw = run_kwargs(dirs, datetime(2025, 1, 1, tzinfo=UTC), T0 + timedelta(days=1))
    rep1 = odoo.extract(settings=settings(url, entities=["sale_order", "res_currency"]), **kw)
    assert rep1["schema_drift"] == []                          # the first run records the columns
    with engine.begin() as c:
        c.execute(sa.text("ALTER TABLE sale_order ADD COLUMN x_margin numeric"))
        c.execute(sa.text("ALTER TABLE sale_order DROP COLUMN commitment_date"))
    mapping = Path(dirs["state"]).parent / "odoo.yml"
    doc = __import__("yaml").safe_load(Path(odoo.OdooSettings.__dataclass_fields__["mapping_path"].default).read_text())
    for col in doc["entities"]["sale_order"]["columns"]:
        if col["name"] == "commitment_date":
            col["required"] = False                            # an optional column: lands NULL, reported
    mapping.write_text(__import__("yaml").safe_dump(doc))
    rep2 = odoo.extract(settings=settings(url, entities=["sale_order", "res_currency"], mapping_path=str(mapping)),
                        **kw)
    [drift] = rep2["schema_drift"]
    assert drift["entity"] == "sale_order" and drift["new_columns"] == ["x_margin"]
    assert drift["dropped_columns"] == ["commitment_date"] and drift["mapped_columns_missing"] == ["commitment_date"]
    rows, meta = read_load(loads(rep2)["sale_order"]["path"])
    assert meta["schema_drift"]["new_columns"] == ["x_margin"] and all(r["commitment_date"] is None for r in rows)
    tasks.summarize("run-drift", [rep2], None, None, None, None)
    from cxw.config import paths
    text = (paths().runs / "run-drift" / "summary.txt").read_text()
    assert "Schema drift: odoo sale_order (table sale_order): new columns x_margin; dropped columns commitment_date" \
        in text

    # a required column dropped: that entity's load fails with a clear message, the other entity lands
    with engine.begin() as c:
        c.execute(sa.text("ALTER TABLE res_currency DROP COLUMN symbol"))
    before = json.loads((dirs["state"] / "odoo.json").read_text())["entities"]["res_currency"]
    n_loads = len(visible_loads(dirs["raw"], "odoo", "res_currency"))
    with pytest.raises(odoo.OdooSchemaError) as exc:
        odoo.extract(settings=settings(url, entities=["res_currency", "sale_order"], mapping_path=str(mapping)), **kw)
    assert "odoo.res_currency: the source table res_currency has no column symbol any more" in str(exc.value)
    assert len(visible_loads(dirs["raw"], "odoo", "res_currency")) == n_loads          # nothing landed
    assert json.loads((dirs["state"] / "odoo.json").read_text())["entities"]["res_currency"] == before
    assert len(visible_loads(dirs["raw"], "odoo", "sale_order")) == 3                   # the other entity landed
