"""The ERP extractor's mapping is the documented way to read another schema (issue 17.7): renamed columns
(`source`), other state names (`values`), amounts in cents (`divide_by`), constants (`expr`); checked at start
against what staging reads (cxw/raw_contract.yml), every problem a ConfigurationError naming the key or column.
The worked example, extractors/odoo/mappings/webshop.yml, reads the demo company's webshop schema back into the
same raw rows as the Odoo 17 mapping reads the Odoo tables (on SQLite here; MariaDB: tests/e2e/test_webshop_erp.py).
"""
from __future__ import annotations

import json
import sqlite3
from datetime import datetime, timezone
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from conftest import run_kwargs
from extractors import odoo
from extractors.common.settings import ConfigurationError
from extractors.odoo.mapping import CONTRACT_FILE, MappingError, contract_problems, load_mapping

MAPPINGS = Path(odoo.__file__).resolve().parent / "mappings"
ODOO17, WEBSHOP = MAPPINGS / "odoo17.yml", MAPPINGS / "webshop.yml"
UTC = timezone.utc


def _settings(url: str, mapping, **kw) -> odoo.OdooSettings:
    return odoo.OdooSettings(url=url, mapping_path=str(mapping), history_start=datetime(2025, 1, 1, tzinfo=UTC),
                             **kw)


def _write(tmp_path: Path, doc) -> Path:
    p = tmp_path / "mapping.yml"
    p.write_text(yaml.safe_dump(doc, sort_keys=False) if not isinstance(doc, str) else doc)
    return p


def _webshop_without(entity: str, column: str) -> dict:
    doc = yaml.safe_load(WEBSHOP.read_text())
    doc["entities"][entity]["columns"] = [c for c in doc["entities"][entity]["columns"] if c["name"] != column]
    return doc


def _retyped(entity: str, column: str, typ: str) -> dict:
    doc = yaml.safe_load(WEBSHOP.read_text())
    for c in doc["entities"][entity]["columns"]:
        if c["name"] == column:
            c["type"] = typ
    return doc


BROKEN = {
    "no entities": ({"version": 1, "defaults": {"cursor": "write_date"}}, "no 'entities' key"),
    "entity without columns": ({"entities": {"res_currency": {"table": "res_currency", "cursor": None}}},
                               "entity res_currency has no 'columns' key"),
    "column without name": ({"entities": {"res_currency": {"cursor": None, "columns": [{"type": "int"}]}}},
                            "column #1 of entity res_currency has no 'name' key"),
    "typo in a column key": ({"entities": {"res_currency": {"cursor": None, "columns": [
        {"name": "id", "sorce": "currency_id", "type": "int"}]}}}, "res_currency.id has unknown key(s) sorce"),
    "typo in an entity key": ({"entities": {"res_currency": {"cursour": None, "columns": ["id"]}}},
                              "entity res_currency has unknown key(s) cursour"),
    "a column staging reads is missing": (_webshop_without("sale_order", "amount_total"),
                                          "entity sale_order has no column amount_total"),
    "a column of another type": (_retyped("res_partner", "customer_rank", "string"),
                                 "res_partner.customer_rank is mapped as type string, staging reads BIGINT"),
    "divide_by on a column that is not a number": (_retyped("sale_order", "amount_total", "string"),
                                                   "sale_order.amount_total divide_by must be a positive number"),
    "not YAML": ("entities: {res_currency: [\n", "not valid YAML"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_a_broken_mapping_fails_at_start_with_a_configuration_error_naming_the_key(case, tmp_path, dirs):
    doc, needle = BROKEN[case]
    path = _write(tmp_path, doc)
    # the database does not exist: the mapping is checked before any connection is tried
    with pytest.raises(MappingError) as ei:
        odoo.extract(settings=_settings(f"sqlite:///{tmp_path / 'absent.sqlite'}", path), **run_kwargs(dirs))
    exc = ei.value
    assert isinstance(exc, ConfigurationError)  # never retried (cxw.tasks.fail_fast)
    assert needle in str(exc), str(exc)
    d = exc.details()
    assert d["source"] == "odoo" and d["setting"] == "CXW_ODOO_MAPPING" and "README" in d["fix"]
    assert not (dirs["raw"] / "odoo").exists()


def test_a_missing_mapping_file_is_a_configuration_error_naming_the_setting(tmp_path, dirs):
    with pytest.raises(MappingError) as ei:
        odoo.extract(settings=_settings("sqlite:////nonexistent.sqlite", tmp_path / "nope.yml"), **run_kwargs(dirs))
    assert "cannot be read" in str(ei.value) and ei.value.setting == "CXW_ODOO_MAPPING"


def test_both_shipped_mappings_give_staging_every_column_it_reads_with_its_type():
    contract = yaml.safe_load(Path(CONTRACT_FILE).read_text())["odoo"]
    for path in (ODOO17, WEBSHOP):
        assert contract_problems(load_mapping(str(path)), contract) == ([], []), path


def test_an_entity_left_out_is_a_note_not_an_error():
    contract = yaml.safe_load(Path(CONTRACT_FILE).read_text())["odoo"]
    mapping = load_mapping(str(WEBSHOP))
    del mapping["stock_picking"]
    errors, notes = contract_problems(mapping, contract)
    assert errors == [] and notes == ["entity stock_picking is not mapped: it lands nothing and its staging model "
                                      "builds empty"]


def _land(url: str, mapping: Path, root: Path) -> dict:
    kw = {"raw_root": root / "raw", "state_root": root / "state", "deadletter_root": root / "dl",
          "window_start": datetime(2025, 1, 1, tzinfo=UTC), "window_end": datetime(2025, 7, 1, tzinfo=UTC)}
    odoo.extract(settings=_settings(url, mapping), **kw)
    out = {}
    for ent in sorted((root / "raw" / "odoo").iterdir()):
        files = sorted(ent.glob("*/*.parquet"))
        table = pq.ParquetDataset(files).read()
        out[ent.name] = table.drop_columns([c for c in table.column_names if c.startswith("_")])
    return out


def test_the_webshop_mapping_lands_the_demo_webshop_as_the_odoo17_mapping_lands_its_odoo_tables(tmp_path):
    import demo_company

    demo_company.generate(tmp_path / "odoo17", scale="XS", seed=7)
    demo_company.generate(tmp_path / "webshop", scale="XS", seed=7, erp_schema="webshop")
    assert not (tmp_path / "webshop" / "odoo" / "odoo.sqlite").exists()
    a = _land(f"sqlite:///{tmp_path / 'odoo17' / 'odoo' / 'odoo.sqlite'}", ODOO17, tmp_path / "a")
    b = _land(f"sqlite:///{tmp_path / 'webshop' / 'odoo' / 'webshop.sqlite'}", WEBSHOP, tmp_path / "b")
    assert sorted(a) == sorted(b) and "sale_order__ids" in a
    translated = {"res_country", "crm_team", "product_template", "stock_picking_type"}   # Odoo's JSON names
    for entity in sorted(a):
        assert a[entity].schema == b[entity].schema, entity
        rows_a, rows_b = a[entity].to_pylist(), b[entity].to_pylist()
        if entity in translated:   # the shop keeps the English name as text: what staging reads from the JSON
            for r in rows_a:
                r["name"] = json.loads(r["name"])["en_US"]
        assert rows_a == rows_b, entity
    orders = b["sale_order"].to_pylist()
    assert {r["state"] for r in orders} <= {"draft", "sent", "sale", "cancel"} and len(orders) > 100
    assert all(r["amount_total"] == round(r["amount_total"], 2) for r in orders if r["amount_total"] is not None)


def _shop(tmp_path: Path) -> str:
    path = tmp_path / "shop.sqlite"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE shop_orders (id INTEGER, order_no INTEGER, status TEXT, gross_cents INTEGER, "
                "updated_at TIMESTAMP)")
    con.executemany("INSERT INTO shop_orders VALUES (?, ?, ?, ?, ?)", [
        (30, 1, "new", 32780, "2025-03-01 10:00:00"), (20, 2, "on_hold", 123456, "2025-03-01 11:00:00"),
        (10, 3, None, None, "2025-03-01 12:00:00"), (5, 4, "quoted", 5, "2025-03-01 13:00:00")])
    con.commit()
    con.close()
    return f"sqlite:///{path}"


SHOP = {"entities": {"orders": {"table": "shop_orders", "cursor": None, "tie_breaker": "id", "columns": [
    {"name": "id", "source": "order_no", "type": "int"},
    {"name": "legacy_id", "source": "id", "type": "int"},
    {"name": "state", "source": "status", "type": "string", "values": {"new": "draft", "quoted": "sent",
                                                                       "sent": "WRONG"}},
    {"name": "amount_total", "source": "gross_cents", "type": "float", "divide_by": 100},
    {"name": "type", "expr": "'contact'", "type": "string"}]}}}


def test_source_values_and_divide_by_land_the_shops_columns_as_named_and_valued_by_the_mapping(tmp_path, dirs):
    url = _shop(tmp_path)
    rep = odoo.extract(settings=_settings(url, _write(tmp_path, SHOP), entities=["orders"]), **run_kwargs(dirs))
    load = rep["loads"][0]
    table = pq.read_table(sorted((dirs["raw"] / "odoo" / "orders" / load["load_id"]).glob("*.parquet"))[0])
    rows = [{k: v for k, v in r.items() if not k.startswith("_")} for r in table.to_pylist()]
    # ordered by the source column `id` (the tie-breaker), not by the landed column `id` (the shop's order_no)
    assert [r["legacy_id"] for r in rows] == [5, 10, 20, 30]
    assert rows == [
        {"id": 4, "legacy_id": 5, "state": "sent", "amount_total": 0.05, "type": "contact"},   # never cascades
        {"id": 3, "legacy_id": 10, "state": None, "amount_total": None, "type": "contact"},
        {"id": 2, "legacy_id": 20, "state": "on_hold", "amount_total": 1234.56, "type": "contact"},  # as delivered
        {"id": 1, "legacy_id": 30, "state": "draft", "amount_total": 327.8, "type": "contact"}]


def test_a_renamed_source_column_that_disappears_fails_that_load_naming_the_shops_column(tmp_path, dirs):
    url = _shop(tmp_path)
    mapping = _write(tmp_path, SHOP)
    odoo.extract(settings=_settings(url, mapping, entities=["orders"]), **run_kwargs(dirs))
    con = sqlite3.connect(url[len("sqlite:///"):])
    con.execute("ALTER TABLE shop_orders DROP COLUMN gross_cents")
    con.commit()
    con.close()
    with pytest.raises(odoo.OdooSchemaError) as ei:
        odoo.extract(settings=_settings(url, mapping, entities=["orders"]), **run_kwargs(dirs))
    assert "shop_orders has no column gross_cents" in str(ei.value)


def test_a_mapping_error_fails_the_airflow_task_at_once_and_the_summary_record_names_the_mapping(tmp_path,
                                                                                                 monkeypatch):
    from cxw import tasks

    bad = _write(tmp_path, _webshop_without("res_partner", "email"))
    monkeypatch.setenv("CXW_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CXW_ODOO_URL", f"sqlite:///{tmp_path / 'absent.sqlite'}")
    monkeypatch.setenv("CXW_ODOO_MAPPING", str(bad))
    with pytest.raises(Exception) as ei:
        tasks.extract("odoo", "2025-06-30T00:00:00Z", "2025-07-01T00:00:00Z", run_id="manual__webshop")
    assert type(ei.value).__name__ == "AirflowFailException"
    assert "CXW_ODOO_MAPPING" in str(ei.value) and "res_partner has no column email" in str(ei.value)
    record = json.loads((tasks.run_dir("manual__webshop") / "config_error_extract_odoo.json").read_text())
    assert record["source"] == "odoo" and record["setting"] == "CXW_ODOO_MAPPING"
