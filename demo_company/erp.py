"""Odoo 17 tables (or, erp_schema "webshop", the same records in a webshop's tables: erp_webshop.py): written to
SQLite by the generator, and loadable into PostgreSQL / MariaDB (`load_into`)."""
from __future__ import annotations

import datetime as dt
import io
import json
import os
import sqlite3
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.dialects import mysql, postgresql

from . import texts
from .util import US_PER_DAY, US_PER_H, odoo_ts, stream, us_to_dt

TABLE_ORDER = ["res_country", "res_currency", "crm_team", "res_partner", "product_category", "product_template",
               "product_product", "sale_order", "sale_order_line", "stock_picking_type", "stock_picking"]

# column name -> logical type; mirrors shared/samples/vendor-responses/odoo17_erp_schema.sql
SCHEMA: dict[str, list[tuple[str, str]]] = {
    "res_country": [("id", "pk"), ("code", "varchar2"), ("name", "json!")],
    "res_currency": [("id", "pk"), ("name", "varchar!"), ("symbol", "varchar")],
    "crm_team": [("id", "pk"), ("name", "json!"), ("active", "bool")],
    "res_partner": [("id", "pk"), ("name", "varchar"), ("complete_name", "varchar"), ("email", "varchar"),
                    ("phone", "varchar"), ("is_company", "bool"), ("customer_rank", "int"), ("supplier_rank", "int"),
                    ("city", "varchar"), ("country_id", "int>res_country"), ("type", "varchar"), ("active", "bool"),
                    ("create_date", "ts"), ("write_date", "ts")],
    "product_category": [("id", "pk"), ("name", "varchar!"), ("complete_name", "varchar"),
                         ("parent_id", "int>product_category"), ("create_date", "ts"), ("write_date", "ts")],
    "product_template": [("id", "pk"), ("name", "json!"), ("detailed_type", "varchar"), ("type", "varchar"),
                         ("list_price", "num"), ("categ_id", "int>product_category"), ("sale_ok", "bool"),
                         ("active", "bool"), ("create_date", "ts"), ("write_date", "ts")],
    "product_product": [("id", "pk"), ("product_tmpl_id", "int>product_template"), ("default_code", "varchar"),
                        ("active", "bool"), ("create_date", "ts"), ("write_date", "ts")],
    "sale_order": [("id", "pk"), ("name", "varchar!"), ("partner_id", "int>res_partner"), ("partner_invoice_id", "int"),
                   ("partner_shipping_id", "int"), ("date_order", "ts!"), ("state", "varchar"), ("locked", "bool"),
                   ("commitment_date", "ts"), ("amount_untaxed", "num"), ("amount_tax", "num"), ("amount_total", "num"),
                   ("currency_id", "int>res_currency"), ("team_id", "int>crm_team"), ("user_id", "int"),
                   ("company_id", "int"), ("create_date", "ts"), ("write_date", "ts")],
    "sale_order_line": [("id", "pk"), ("order_id", "int>sale_order"), ("product_id", "int>product_product"),
                        ("name", "text"), ("product_uom_qty", "num"), ("price_unit", "num"), ("discount", "num"),
                        ("price_subtotal", "num"), ("price_tax", "float"), ("price_total", "num"), ("state", "varchar"),
                        ("create_date", "ts"), ("display_type", "varchar"), ("write_date", "ts")],
    "stock_picking_type": [("id", "pk"), ("name", "json!"), ("code", "varchar!"), ("sequence_code", "varchar")],
    "stock_picking": [("id", "pk"), ("name", "varchar"), ("origin", "varchar"), ("sale_id", "int>sale_order"),
                      ("partner_id", "int>res_partner"), ("picking_type_id", "int>stock_picking_type"),
                      ("scheduled_date", "ts"), ("date_deadline", "ts"), ("date_done", "ts"), ("state", "varchar"),
                      ("create_date", "ts"), ("write_date", "ts")],
}

_SQLITE_TYPES = {"pk": "integer PRIMARY KEY", "varchar": "varchar", "varchar2": "varchar(2)", "json": "jsonb",
                 "bool": "boolean", "int": "integer", "ts": "timestamp", "num": "numeric", "float": "double precision",
                 "text": "text"}


# dirt erp_amount_text_rate (type drift): the day, before the window end, from which sale_order.amount_total is a
# text column in the ERP (a sales connector writes it with locale formatting for a share of the orders)
ERP_AMOUNT_TEXT_DRIFT_DAYS = 10
AMOUNT_TEXT_COLUMN = ("sale_order", "amount_total")


def amount_text_drift_us(world) -> int:
    """The instant sale_order.amount_total became a text column (00:00 UTC, ERP_AMOUNT_TEXT_DRIFT_DAYS before the
    window end)."""
    return world.end_us - ERP_AMOUNT_TEXT_DRIFT_DAYS * US_PER_DAY


def _locale_amount(cents: int, style: int) -> str:
    """A total as a de/fr-locale connector writes it: '327,80 EUR' or '1.234,56' (never a C-locale number)."""
    units, frac = divmod(cents, 100)
    if style == 0:
        return f"{units},{frac:02d} EUR"
    return f"{units:,}".replace(",", ".") + f",{frac:02d}"


def amount_text_orders(world) -> dict[int, str]:
    """{order id: amount_total as delivered} of the orders created since the drift whose total is locale text
    (dirt erp_amount_text_rate; at least one when the rate is > 0 and an order was created since). Depends only on
    the world (seed, scale, window, dirt), never on as_of: such an order is text from its creation on."""
    rate = float(world.dirt.get("erp_amount_text_rate", 0.0))
    if rate <= 0:
        return {}
    drift = amount_text_drift_us(world)
    rng = stream(world.seed, "erp-amount-text")
    out: dict[int, str] = {}
    since = [o for o in world.orders if o.create_us >= drift]
    for o in since:                        # world.orders is in id order: one draw per order since the drift
        if rng.random() < rate:
            out[o.oid] = _locale_amount(o.untaxed + o.tax, len(out) % 2)
    if not out and since:
        o = min(since, key=lambda x: (x.create_us, x.oid))
        out[o.oid] = _locale_amount(o.untaxed + o.tax, 0)
    return out


# dirt erp_bad_integer_rate: res_partner.customer_rank is a double precision column in the source (a connector module
# redefined the Integer field as a Float) and that share of the company partners (at least two) carries a value that
# is no 32-bit integer: a fraction (2.5) or the partner's creation stamp written as yyyymmddHHMMSS (20241103101500)
RANK_COLUMN = ("res_partner", "customer_rank")
# the logical type a drifted column has in the source (SQLite, PostgreSQL, MariaDB)
DRIFT_TYPES = {AMOUNT_TEXT_COLUMN: "varchar", RANK_COLUMN: "float"}


def bad_rank_partners(world) -> dict[int, float]:
    """{partner id: customer_rank as delivered} of the company partners whose rank is no 32-bit integer (dirt
    erp_bad_integer_rate; at least two when there are two): alternately a fraction and an overflowing yyyymmddHHMMSS
    stamp. Depends only on the world, never on as_of: the value is there from the partner's creation on."""
    rate = float(world.dirt.get("erp_bad_integer_rate", 0.0))
    if rate <= 0 or not world.companies:
        return {}
    rng = stream(world.seed, "erp-bad-integer")
    cs = sorted(world.companies, key=lambda c: c.partner_id)
    hit = [c for c in cs if rng.random() < rate]
    for c in cs:                     # at least two (both shapes) when there are two
        if len(hit) >= min(2, len(cs)):
            break
        if c not in hit:
            hit.append(c)
    hit.sort(key=lambda c: c.partner_id)
    return {c.partner_id: (2.5 + k) if k % 2 == 0 else float(us_to_dt(c.created_us).strftime("%Y%m%d%H%M%S"))
            for k, c in enumerate(hit)}


def _sqlite_ddl(table: str, text_columns: frozenset = frozenset(), schema: dict | None = None) -> str:
    cols = []
    for name, typ in (schema or SCHEMA)[table]:
        if (table, name) in text_columns:      # the source's type drifted (to text, to a float)
            typ = DRIFT_TYPES[(table, name)]
        base = typ.rstrip("!").split(">")[0]
        sql = f"{name} {_SQLITE_TYPES[base]}"
        if typ.endswith("!"):
            sql += " NOT NULL"
        if ">" in typ:
            sql += f" REFERENCES {typ.split('>')[1]}(id)"
        cols.append(sql)
    return f"CREATE TABLE {table} ({', '.join(cols)})"


def _money(cents: int) -> float:
    return round(cents / 100, 2)


def _j(d: dict) -> str:
    return json.dumps(d, ensure_ascii=False)


def build_rows(world, as_of: int) -> dict[str, list[tuple]]:
    """Every Odoo table as it stood at `as_of` (a list of tuples in SCHEMA column order)."""
    t0 = world.start_us - 400 * US_PER_DAY
    ts0 = odoo_ts(t0)
    rows: dict[str, list[tuple]] = {}
    rows["res_country"] = [(c[1], c[0], _j({"en_US": c[2], "vi_VN": c[3], "fr_FR": c[4]}))
                           for c in sorted(texts.COUNTRIES, key=lambda c: c[1])]
    rows["res_currency"] = [(1, "USD", "$")]
    rows["crm_team"] = [(1, _j({"en_US": "Website", "vi_VN": "Trang web"}), 1),
                        (2, _j({"en_US": "Sales", "vi_VN": "Bán hàng"}), 1),
                        (3, _j({"en_US": "B2B Wholesale", "vi_VN": "Bán sỉ"}), 1)]

    # partners
    confirmed_by_person: dict[int, list[int]] = {}      # main partner of a person
    confirmed_by_dup: dict[int, list[int]] = {}         # its second partner (dirt erp_duplicate_partner_rate)
    first_order_create: dict[int, int] = {}
    for o in world.orders:
        first_order_create[o.pid] = min(first_order_create.get(o.pid, o.create_us), o.create_us)
        if o.final_state == "sale":
            (confirmed_by_dup if o.dup_partner else confirmed_by_person).setdefault(o.pid, []).append(o.confirm_us)
    partners = []
    bad_rank = bad_rank_partners(world)
    for c in world.companies:
        if c.created_us <= as_of:
            partners.append((c.partner_id, c.name, c.name, f"info@{c.domain}", None, 1, bad_rank.get(c.partner_id, 0),
                             0, c.city, texts.COUNTRIES[c.country][1], "contact", 1, odoo_ts(c.created_us),
                             odoo_ts(c.created_us)))
    for p in world.persons:
        if not p.in_odoo:
            continue
        created = min(p.created_us, first_order_create.get(p.pid, p.created_us))
        if created > as_of:
            continue
        confirms = [x for x in confirmed_by_person.get(p.pid, []) if x <= as_of]
        write = max([created] + confirms)
        phone = p.phone
        if p.phone_change_us and p.phone_change_us <= as_of:
            phone = p.new_phone
            write = max(write, p.phone_change_us)
        name = f"{p.first} {p.last}"
        complete = f"{world.companies[p.company].name}, {name}" if p.company >= 0 else name
        partners.append((p.partner_id, name, complete, p.odoo_email, phone, 0, len(confirms), 0, p.city,
                         texts.COUNTRIES[p.country][1], "contact", 1, odoo_ts(created), odoo_ts(write)))
        if p.dup_partner_id and p.dup_partner_created_us <= as_of:
            dup_confirms = [x for x in confirmed_by_dup.get(p.pid, []) if x <= as_of]
            partners.append((p.dup_partner_id, name, complete, p.dup_partner_email, phone, 0, len(dup_confirms), 0,
                             p.city, texts.COUNTRIES[p.country][1], "contact", 1, odoo_ts(p.dup_partner_created_us),
                             odoo_ts(max([p.dup_partner_created_us] + dup_confirms))))
    partners.sort()
    rows["res_partner"] = partners

    cats = ["All", "Saleable"] + sorted({p[0] for p in texts.PRODUCTS}, key=[p[0] for p in texts.PRODUCTS].index)
    rows["product_category"] = [(1, "All", "All", None, ts0, ts0), (2, "Saleable", "All / Saleable", 1, ts0, ts0)] + [
        (i + 1, c, f"All / Saleable / {c}", 2, ts0, ts0) for i, c in enumerate(cats) if i >= 2]
    cat_id = {c: i + 1 for i, c in enumerate(cats)}
    rows["product_template"] = [
        (i, _j({"en_US": en, "vi_VN": vi}), "product", "product", _money(price), cat_id[cat], 1, 1, ts0, ts0)
        for i, (cat, en, vi, price, _v) in enumerate(texts.PRODUCTS, start=1)]
    rows["product_product"] = [(pid, tid, code, 1, ts0, ts0) for pid, tid, code, _n, _p, _c in world.products]

    orders, lines, pickings = [], [], []
    line_id = 0
    as_text = amount_text_orders(world)
    for o in world.orders:
        first_line = line_id          # line ids do not depend on as_of
        line_id += len(o.lines)
        if o.create_us > as_of:
            continue
        state = o.state_at(as_of)
        p = world.persons[o.pid]
        partner_id = p.dup_partner_id if o.dup_partner else p.partner_id
        date_order = o.confirm_us if state == "sale" else o.create_us
        changes = [o.create_us] + [x for x in (o.confirm_us, o.sent_us, o.cancel_us, o.lock_us, o.edit_us) if x and x <= as_of]
        write = max(changes)
        locked = 1 if (o.lock_us and o.lock_us <= as_of) else 0
        orders.append((o.oid, o.name, partner_id, partner_id, partner_id, odoo_ts(date_order), state, locked,
                       odoo_ts(o.commitment_us) if o.commitment_us else None, _money(o.untaxed), _money(o.tax),
                       as_text.get(o.oid, _money(o.untaxed + o.tax)), 1, o.team, 2, 1, odoo_ts(o.create_us), odoo_ts(write)))
        line_write = odoo_ts(max([o.create_us] + [x for x in (o.confirm_us, o.sent_us, o.cancel_us) if x and x <= as_of]))
        for seq, ln in enumerate(o.lines):
            lid = first_line + seq + 1
            if ln.display_type:
                lines.append((lid, o.oid, None, ln.name, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, state,
                              odoo_ts(o.create_us), ln.display_type, line_write))
            else:
                lines.append((lid, o.oid, ln.product_id, ln.name, float(ln.qty), _money(ln.price_cents),
                              float(ln.discount), _money(ln.subtotal), _money(ln.tax), _money(ln.subtotal + ln.tax),
                              state, odoo_ts(o.create_us), None, line_write))
    rows["sale_order"] = orders
    rows["sale_order_line"] = lines
    rows["stock_picking_type"] = [(1, _j({"en_US": "Receipts", "vi_VN": "Nhập kho"}), "incoming", "IN"),
                                  (2, _j({"en_US": "Delivery Orders", "vi_VN": "Giao hàng"}), "outgoing", "OUT"),
                                  (3, _j({"en_US": "Internal Transfers"}), "internal", "INT")]
    for pk in world.pickings:
        if pk.create_us > as_of:
            continue
        state = pk.state_at(as_of)
        o = world.orders[pk.oid - 1]
        done = pk.done_us if state == "done" else (pk.cancel_us if state == "cancel" else 0)
        write = max(pk.create_us, done)
        p = world.persons[pk.pid]
        pickings.append((pk.kid, pk.name, o.name, o.oid, p.dup_partner_id if o.dup_partner else p.partner_id, 2, odoo_ts(pk.scheduled_us),
                         odoo_ts(pk.deadline_us), odoo_ts(done) if done else None, state, odoo_ts(pk.create_us), odoo_ts(write)))
    # weekly supplier receipts (incoming; never part of delivery KPIs)
    rr = stream(world.seed, "receipts")
    base = len(world.pickings) + 1
    n_weeks = (world.end_us - world.start_us) // (7 * US_PER_DAY)
    for w in range(int(n_weeks)):
        created = world.start_us + w * 7 * US_PER_DAY + 8 * US_PER_H
        if created > as_of:
            break
        sched = created + 2 * US_PER_DAY
        done = sched + int(rr.integers(-6, 30)) * US_PER_H
        state = "done" if done <= as_of else "assigned"
        pickings.append((base + w, f"WH/IN/{w + 1:05d}", f"P{w + 1:05d}", None, None, 1, odoo_ts(sched), odoo_ts(sched),
                         odoo_ts(done) if state == "done" else None, state, odoo_ts(created),
                         odoo_ts(done if state == "done" else created)))
    pickings.sort()
    rows["stock_picking"] = pickings
    return rows


def text_columns(world, as_of: int) -> frozenset:
    """(table, column) pairs whose type drifted in the source by as_of (DRIFT_TYPES): amount_total to text (dirt
    erp_amount_text_rate, from its drift day on), customer_rank to a float (dirt erp_bad_integer_rate, always)."""
    out = set()
    if float(world.dirt.get("erp_amount_text_rate", 0.0)) > 0 and as_of >= amount_text_drift_us(world):
        out.add(AMOUNT_TEXT_COLUMN)
    if float(world.dirt.get("erp_bad_integer_rate", 0.0)) > 0:
        out.add(RANK_COLUMN)
    return frozenset(out)


ERP_SCHEMAS = ("odoo17", "webshop")
ERP_FILES = {"odoo17": "odoo.sqlite", "webshop": "webshop.sqlite"}   # under DIR/odoo/


def _tables(erp_schema: str) -> tuple[list[str], dict[str, list[tuple[str, str]]]]:
    if erp_schema == "odoo17":
        return TABLE_ORDER, SCHEMA
    if erp_schema == "webshop":
        from . import erp_webshop
        return erp_webshop.TABLE_ORDER, erp_webshop.SCHEMA
    raise ValueError(f"erp_schema must be one of {ERP_SCHEMAS}, got {erp_schema!r}")


def write_sqlite(path: str, rows: dict[str, list[tuple]], text_cols: frozenset = frozenset(),
                 erp_schema: str = "odoo17") -> dict[str, int]:
    """The Odoo tables as SQLite, or (``erp_schema="webshop"``) the same records in the webshop's tables
    (demo_company/erp_webshop.py). Returns the rows per Odoo table (= raw entity) either way. A column in
    ``text_cols`` is declared varchar (its numbers are then stored as text, '123.45', by SQLite's TEXT affinity), as
    after an ALTER COLUMN ... TYPE varchar in the source."""
    order, schema = _tables(erp_schema)
    if erp_schema == "webshop":
        from . import erp_webshop
        if text_cols:
            raise ValueError("erp_schema webshop keeps amounts in integer cents: dirt erp_amount_text_rate is "
                             "supported with the odoo17 schema only")
        rows = erp_webshop.shop_rows(rows, SCHEMA)
    if os.path.exists(path):
        os.remove(path)
    con = sqlite3.connect(path)
    try:
        for table in order:
            con.execute(_sqlite_ddl(table, text_cols, schema))
            cols = schema[table]
            con.executemany(f"INSERT INTO {table} VALUES ({', '.join('?' * len(cols))})", rows[table])
        con.commit()
    finally:
        con.close()
    if erp_schema == "webshop":
        return {erp_webshop.ENTITY_OF[t]: len(rows[t]) for t in order}
    return {t: len(rows[t]) for t in order}


# ---------------------------------------------------------------- PostgreSQL / MariaDB

def _sa_type(base: str):
    if base in ("pk", "int"):
        return sa.Integer()
    if base == "varchar":
        return sa.String().with_variant(mysql.VARCHAR(255), "mysql", "mariadb")
    if base == "varchar2":
        return sa.String(2)
    if base == "json":
        return sa.JSON().with_variant(postgresql.JSONB(), "postgresql").with_variant(mysql.LONGTEXT(), "mysql", "mariadb")
    if base == "bool":
        return sa.Boolean(create_constraint=False)
    if base == "ts":
        return sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
    if base == "num":
        return sa.Numeric().with_variant(mysql.DECIMAL(18, 4), "mysql", "mariadb")
    if base == "float":
        return sa.Float(precision=53).with_variant(mysql.DOUBLE(), "mysql", "mariadb")
    if base == "text":
        return sa.Text()
    raise ValueError(base)


def metadata(text_cols: frozenset = frozenset(), erp_schema: str = "odoo17") -> sa.MetaData:
    order, schema = _tables(erp_schema)
    md = sa.MetaData()
    for table in order:
        cols = []
        for name, typ in schema[table]:
            base = typ.rstrip("!").split(">")[0]
            if (table, name) in text_cols:
                base = DRIFT_TYPES[(table, name)]
            args = [sa.ForeignKey(f"{typ.split('>')[1]}.id")] if ">" in typ else []
            cols.append(sa.Column(name, _sa_type(base), *args, primary_key=(base == "pk"), autoincrement=False,
                                  nullable=not typ.endswith("!") and base != "pk"))
        sa.Table(table, md, *cols)
    return md


def _csv_field(v) -> str:
    if v is None:
        return ""
    s = v if isinstance(v, str) else repr(v) if isinstance(v, float) else str(v)
    return '"' + s.replace('"', '""') + '"'


def load_into(sqlalchemy_url: str, sqlite_path: str, chunk: int = 5_000) -> dict[str, int]:
    """Create the tables the SQLite file holds (Odoo's, or the webshop's: erp_schema) in the target database
    (dialect-correct types) and bulk-copy every row.

    PostgreSQL uses COPY; other dialects (MariaDB/MySQL) use executemany in chunks of `chunk` rows.
    Returns the row count per table.
    """
    src = sqlite3.connect(sqlite_path)
    # the schema the file holds (the generator's erp_schema): the Odoo tables or the webshop's
    have = {r[0] for r in src.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    erp_schema = "odoo17" if "sale_order" in have else "webshop"
    order, schema = _tables(erp_schema)
    # a drifted column (DRIFT_TYPES) the SQLite file declares with its drifted type: the same type in the target
    text_cols = frozenset((t, c) for t in order for _cid, c, decl, *_ in src.execute(f"pragma table_info({t})")
                          if (t, c) in DRIFT_TYPES and decl.lower() == _SQLITE_TYPES[DRIFT_TYPES[(t, c)]])
    md = metadata(text_cols, erp_schema)
    engine = sa.create_engine(sqlalchemy_url)
    counts = {}
    try:
        md.create_all(engine)
        dialect = engine.dialect.name
        with engine.begin() as conn:
            for table in order:
                names = [c for c, _ in schema[table]]
                pk = next(c for c, t in schema[table] if t == "pk")
                cur = src.execute(f"SELECT {', '.join(names)} FROM {table} ORDER BY {pk}")
                n = 0
                if dialect == "postgresql":
                    raw = conn.connection.dbapi_connection
                    with raw.cursor() as pgcur:
                        while True:
                            batch = cur.fetchmany(chunk * 4)
                            if not batch:
                                break
                            buf = io.StringIO()
                            for row in batch:
                                buf.write(",".join(_csv_field(v) for v in row))
                                buf.write("\n")
                            buf.seek(0)
                            pgcur.copy_expert(f"COPY {table} ({', '.join(names)}) FROM STDIN WITH (FORMAT csv)", buf)
                            n += len(batch)
                else:
                    ins = md.tables[table].insert()
                    while True:
                        batch = cur.fetchmany(chunk)
                        if not batch:
                            break
                        conn.execute(ins, [dict(zip(names, _coerce(table, row, text_cols, schema)))
                                           for row in batch])
                        n += len(batch)
                counts[table] = n
    finally:
        src.close()
        engine.dispose()
    return counts


def _coerce(table: str, row: tuple, text_cols: frozenset = frozenset(), schema: dict | None = None) -> tuple:
    """SQLite values → Python values the DB-API driver binds correctly."""
    out = []
    for (name, typ), v in zip((schema or SCHEMA)[table], row):
        base = typ.rstrip("!").split(">")[0]
        if (table, name) in text_cols and DRIFT_TYPES[(table, name)] == "varchar":
            out.append(None if v is None else str(v))
        elif (table, name) in text_cols:
            out.append(None if v is None else float(v))
        elif v is None:
            out.append(None)
        elif base == "ts":
            out.append(dt.datetime.strptime(v, "%Y-%m-%d %H:%M:%S.%f"))
        elif base == "bool":
            out.append(bool(v))
        elif base == "json":
            out.append(v)          # JSON text into LONGTEXT (MariaDB's JSON is LONGTEXT + json_valid)
        elif base == "num":
            out.append(Decimal(repr(v)) if isinstance(v, float) else Decimal(v))
        else:
            out.append(v)
    return tuple(out)
