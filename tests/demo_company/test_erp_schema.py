"""The demo company's ERP in a second schema (issue 17.7): `erp_schema="webshop"` writes the same records in a
webshop's tables (other names, states, amounts in cents) with the answer key of the Odoo schema; the default stays
Odoo 17; what the shop cannot hold is refused, never dropped silently."""
from __future__ import annotations

import json
import sqlite3

import pytest

import demo_company


@pytest.fixture(scope="module")
def both(tmp_path_factory):
    root = tmp_path_factory.mktemp("erp_schema")
    odoo = demo_company.generate(root / "odoo17", scale="XS", seed=11)
    shop = demo_company.generate(root / "webshop", scale="XS", seed=11, erp_schema="webshop")
    return root, odoo, shop


def _tables(path) -> set[str]:
    con = sqlite3.connect(path)
    try:
        return {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    finally:
        con.close()


def test_the_default_is_odoo17_and_webshop_is_a_different_schema_with_the_same_answer_key(both):
    root, odoo, shop = both
    assert odoo["erp"] == {"schema": "odoo17", "file": "odoo/odoo.sqlite"}
    assert shop["erp"] == {"schema": "webshop", "file": "odoo/webshop.sqlite"}
    assert (root / "odoo17" / "answer_key.json").read_bytes() == (root / "webshop" / "answer_key.json").read_bytes()
    assert not (root / "webshop" / "odoo" / "odoo.sqlite").exists()
    assert {"sale_order", "res_partner"} <= _tables(root / "odoo17" / "odoo" / "odoo.sqlite")
    shop_tables = _tables(root / "webshop" / "odoo" / "webshop.sqlite")
    assert {"orders", "order_items", "customers", "shipments"} <= shop_tables and "sale_order" not in shop_tables
    # per raw entity, the same number of records
    assert odoo["counts"]["odoo/odoo.sqlite"] == shop["counts"]["odoo/webshop.sqlite"]


def test_webshop_states_and_cents_hold_the_odoo_values(both):
    root, _, _ = both
    o = sqlite3.connect(root / "odoo17" / "odoo" / "odoo.sqlite")
    s = sqlite3.connect(root / "webshop" / "odoo" / "webshop.sqlite")
    try:
        odoo_orders = dict((r[0], r[1:]) for r in o.execute("SELECT id, state, amount_total FROM sale_order"))
        shop_orders = dict((r[0], r[1:]) for r in s.execute("SELECT order_no, status, gross_cents FROM orders"))
    finally:
        o.close()
        s.close()
    assert odoo_orders.keys() == shop_orders.keys() and len(odoo_orders) > 100
    status = {"draft": "new", "sent": "quoted", "sale": "confirmed", "cancel": "cancelled"}
    for oid, (state, total) in odoo_orders.items():
        assert shop_orders[oid] == (status[state], round(total * 100)), oid
    assert {v[0] for v in shop_orders.values()} >= {"new", "confirmed"}


def test_a_webshop_cannot_hold_locale_text_amounts_and_says_so(tmp_path):
    with pytest.raises(ValueError, match="erp_amount_text_rate"):
        demo_company.generate(tmp_path / "x", scale="XS", seed=11, erp_schema="webshop",
                              dirt={"erp_amount_text_rate": 0.5})


def test_a_value_the_shop_has_no_column_for_must_be_the_constant_the_mapping_restores():
    from demo_company import erp, erp_webshop

    row = [None] * len(erp.SCHEMA["res_partner"])
    names = [c for c, _ in erp.SCHEMA["res_partner"]]
    row[names.index("supplier_rank")] = 3          # a supplier: the webshop mapping would land 0
    row[names.index("type")] = "contact"
    rows = {t: [] for t in erp.SCHEMA}
    rows["res_partner"] = [tuple(row)]
    with pytest.raises(ValueError, match="res_partner.supplier_rank"):
        erp_webshop.shop_rows(rows, erp.SCHEMA)


def test_regenerating_in_the_other_schema_leaves_one_erp_file(tmp_path):
    demo_company.generate(tmp_path, scale="XS", seed=11)
    demo_company.generate(tmp_path, scale="XS", seed=11, erp_schema="webshop")
    assert sorted(p.name for p in (tmp_path / "odoo").iterdir()) == ["webshop.sqlite"]
    assert json.loads((tmp_path / "manifest.json").read_text())["erp"]["schema"] == "webshop"
