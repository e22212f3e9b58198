"""The demo ERP's data in a second, different schema: a small webshop database ("erp_schema": "webshop").

Not every ERP is Odoo 17 (issue 17.7). The same truth as the Odoo tables of erp.py (same records, same instants), in
the tables a home-grown webshop keeps: other table and column names (`orders.order_no`, `customers.customer_no`,
`updated_at`), other order / shipment states (`new`, `quoted`, `confirmed`, `cancelled`; `ready`, `shipped`),
amounts in integer cents, plain-text names instead of Odoo's translated JSON, and no column for what is the same on
every row of this shop (one currency, one company, one sales user, no suppliers; invoice and shipping customer are
the ordering one). extractors/odoo/mappings/webshop.yml reads it back into the raw tables staging knows, so the
answer key is that of the Odoo schema.

Written by the generator with ``erp_schema="webshop"`` to ``odoo/webshop.sqlite``; `erp.load_into` copies it into
PostgreSQL / MariaDB like the Odoo file.
"""
from __future__ import annotations

import json

ORDER_STATUS = {"draft": "new", "sent": "quoted", "sale": "confirmed", "cancel": "cancelled"}
SHIPMENT_STATUS = {"assigned": "ready", "done": "shipped", "cancel": "cancelled"}
SHIPMENT_DIRECTION = {"incoming": "inbound", "outgoing": "outbound", "internal": "internal"}
_VALUES = {"order_status": ORDER_STATUS, "shipment_status": SHIPMENT_STATUS, "direction": SHIPMENT_DIRECTION}

# Odoo table -> (webshop table, [(webshop column, type as in erp.SCHEMA, Odoo column, conversion)],
#                {Odoo column: the constant every row has (no webshop column)},
#                {Odoo column: the Odoo column it always equals (no webshop column)})
# conversions: None (as is), "cents" (amount -> integer cents), "en" (translated JSON name -> its en_US text),
# or a name of _VALUES (Odoo state -> webshop status)
TABLES: dict[str, tuple[str, list[tuple[str, str, str, str | None]], dict, dict]] = {
    "res_country": ("countries", [
        ("country_id", "pk", "id", None), ("iso2", "varchar2", "code", None),
        ("country_name", "varchar!", "name", "en")], {}, {}),
    "res_currency": ("currencies", [
        ("currency_id", "pk", "id", None), ("iso_code", "varchar!", "name", None),
        ("sign", "varchar", "symbol", None)], {}, {}),
    "crm_team": ("sales_channels", [
        ("channel_id", "pk", "id", None), ("channel_name", "varchar!", "name", "en"),
        ("enabled", "bool", "active", None)], {}, {}),
    "res_partner": ("customers", [
        ("customer_no", "pk", "id", None), ("full_name", "varchar", "name", None),
        ("display_name", "varchar", "complete_name", None), ("email_address", "varchar", "email", None),
        ("phone_no", "varchar", "phone", None), ("is_business", "bool", "is_company", None),
        ("paid_orders", "int", "customer_rank", None), ("city", "varchar", "city", None),
        ("country_id", "int", "country_id", None), ("is_active", "bool", "active", None),
        ("created_at", "ts", "create_date", None), ("updated_at", "ts", "write_date", None)],
        {"supplier_rank": 0, "type": "contact"}, {}),
    "product_category": ("categories", [
        ("category_id", "pk", "id", None), ("title", "varchar!", "name", None),
        ("path", "varchar", "complete_name", None), ("parent_category_id", "int", "parent_id", None),
        ("created_at", "ts", "create_date", None), ("updated_at", "ts", "write_date", None)], {}, {}),
    "product_template": ("products", [
        ("product_id", "pk", "id", None), ("title", "varchar!", "name", "en"),
        ("product_kind", "varchar", "type", None), ("price_cents", "int", "list_price", "cents"),
        ("category_id", "int", "categ_id", None), ("sellable", "bool", "sale_ok", None),
        ("is_active", "bool", "active", None), ("created_at", "ts", "create_date", None),
        ("updated_at", "ts", "write_date", None)], {}, {"detailed_type": "type"}),
    "product_product": ("product_variants", [
        ("variant_id", "pk", "id", None), ("product_id", "int", "product_tmpl_id", None),
        ("sku", "varchar", "default_code", None), ("is_active", "bool", "active", None),
        ("created_at", "ts", "create_date", None), ("updated_at", "ts", "write_date", None)], {}, {}),
    "sale_order": ("orders", [
        ("order_no", "pk", "id", None), ("order_ref", "varchar!", "name", None),
        ("customer_no", "int", "partner_id", None), ("ordered_at", "ts!", "date_order", None),
        ("status", "varchar", "state", "order_status"), ("is_locked", "bool", "locked", None),
        ("promised_at", "ts", "commitment_date", None), ("net_cents", "int", "amount_untaxed", "cents"),
        ("tax_cents", "int", "amount_tax", "cents"), ("gross_cents", "int", "amount_total", "cents"),
        ("channel_id", "int", "team_id", None), ("created_at", "ts", "create_date", None),
        ("updated_at", "ts", "write_date", None)],
        {"currency_id": 1, "user_id": 2, "company_id": 1},
        {"partner_invoice_id": "partner_id", "partner_shipping_id": "partner_id"}),
    "sale_order_line": ("order_items", [
        ("item_id", "pk", "id", None), ("order_no", "int", "order_id", None),
        ("variant_id", "int", "product_id", None), ("label", "text", "name", None),
        ("qty", "num", "product_uom_qty", None), ("unit_price_cents", "int", "price_unit", "cents"),
        ("discount_pct", "num", "discount", None), ("net_cents", "int", "price_subtotal", "cents"),
        ("tax_cents", "int", "price_tax", "cents"), ("gross_cents", "int", "price_total", "cents"),
        ("status", "varchar", "state", "order_status"), ("row_kind", "varchar", "display_type", None),
        ("created_at", "ts", "create_date", None), ("updated_at", "ts", "write_date", None)], {}, {}),
    "stock_picking_type": ("shipment_types", [
        ("type_id", "pk", "id", None), ("label", "varchar!", "name", "en"),
        ("direction", "varchar!", "code", "direction"), ("prefix", "varchar", "sequence_code", None)], {}, {}),
    "stock_picking": ("shipments", [
        ("shipment_id", "pk", "id", None), ("reference", "varchar", "name", None),
        ("source_doc", "varchar", "origin", None), ("order_no", "int", "sale_id", None),
        ("customer_no", "int", "partner_id", None), ("type_id", "int", "picking_type_id", None),
        ("planned_at", "ts", "scheduled_date", None), ("due_at", "ts", "date_deadline", None),
        ("shipped_at", "ts", "date_done", None), ("status", "varchar", "state", "shipment_status"),
        ("created_at", "ts", "create_date", None), ("updated_at", "ts", "write_date", None)], {}, {}),
}

#: webshop table -> [(column, type)] (the erp.SCHEMA format; no foreign keys: the shop declares none)
SCHEMA: dict[str, list[tuple[str, str]]] = {shop: [(c, t) for c, t, _o, _v in cols]
                                            for shop, cols, _k, _s in TABLES.values()}
TABLE_ORDER = [TABLES[t][0] for t in TABLES]
ENTITY_OF = {shop: odoo for odoo, (shop, _c, _k, _s) in TABLES.items()}


def _cents(value, where: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, str):
        raise ValueError(f"erp_schema webshop keeps amounts in integer cents: {where} is text (dirt "
                         "erp_amount_text_rate is supported with the odoo17 schema only)")
    return int(round(value * 100))


def _convert(value, conv: str | None, where: str):
    if value is None or conv is None:
        return value
    if conv == "cents":
        return _cents(value, where)
    if conv == "en":
        return json.loads(value)["en_US"]
    return _VALUES[conv][value]


def shop_rows(odoo_rows: dict[str, list[tuple]],
              odoo_schema: dict[str, list[tuple[str, str]]]) -> dict[str, list[tuple]]:
    """The webshop tables holding the Odoo rows (``erp.build_rows``). A value the shop has no column for must be
    the constant (or the other column) the mapping restores, else ValueError: the two schemas never disagree."""
    out: dict[str, list[tuple]] = {}
    for odoo, (shop, cols, constants, same) in TABLES.items():
        names = [c for c, _t in odoo_schema[odoo]]
        covered = {o for _c, _t, o, _v in cols} | set(constants) | set(same)
        if covered != set(names):
            raise ValueError(f"webshop schema: {odoo} columns not covered: {sorted(set(names) - covered)}")
        rows = []
        for row in odoo_rows[odoo]:
            r = dict(zip(names, row))
            for col, value in constants.items():
                if r[col] != value:
                    raise ValueError(f"webshop schema: {odoo}.{col} is {r[col]!r}, the shop has only {value!r}")
            for col, other in same.items():
                if r[col] != r[other]:
                    raise ValueError(f"webshop schema: {odoo}.{col} differs from {other}")
            rows.append(tuple(_convert(r[o], v, f"{odoo}.{o}") for _c, _t, o, v in cols))
        out[shop] = rows
    return out
