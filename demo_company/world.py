"""The in-memory truth of Hidden Cafe: people, orders, deliveries, tickets, surveys, reviews, campaigns.

Every record carries its whole timeline (creation, later edits); the renderers and the answer key read the
state "as of" an instant from the same timeline, so files and answer key agree by construction.
"""
from __future__ import annotations

import math
import unicodedata
from dataclasses import dataclass, field

import numpy as np

from . import texts
from .util import US_PER_DAY, US_PER_H, US_PER_S, date_to_us, hex_id, stream

MIN = 60 * US_PER_S
TAX_RATE_PCT = 10


def ascii_fold(s: str) -> str:
    s = s.replace("Đ", "D").replace("đ", "d").replace("Ø", "O").replace("ø", "o")
    return "".join(c for c in unicodedata.normalize("NFKD", s) if not unicodedata.combining(c))


def email_local(first: str, last: str) -> str:
    f = "".join(ch for ch in ascii_fold(first).lower() if ch.isalnum())
    l_ = "".join(ch for ch in ascii_fold(last).lower() if ch.isalnum())
    return f"{f}.{l_}"


@dataclass(slots=True)
class Company:
    cid: int
    name: str
    domain: str
    country: int          # index into texts.COUNTRIES
    city: str
    created_us: int
    partner_id: int = 0
    hs_id: int = 0


@dataclass(slots=True)
class Person:
    pid: int
    first: str
    last: str
    country: int
    city: str
    email: str            # canonical, lower-case
    phone: str
    created_us: int
    company: int          # -1 when a private customer
    in_odoo: bool = False
    in_hubspot: bool = True
    odoo_email: str = ""
    hs_email: str = ""
    partner_id: int = 0
    contact_ids: list = field(default_factory=list)    # HubSpot contact ids (first = main)
    dup_contact_created_us: int = 0
    dup_email: str = ""
    phone_change_us: int = 0                            # dirt: later edit of the phone
    new_phone: str = ""
    visitor: int = -1                                   # GA4 visitor index of this person's device
    first_confirm_us: int = 0
    dup_partner_id: int = 0                             # dirt: a second Odoo partner of the same person
    dup_partner_email: str = ""                         # ... whose e-mail differs in case / spaces only
    dup_partner_created_us: int = 0


@dataclass(slots=True)
class Line:
    product_id: int
    name: str
    qty: int
    price_cents: int
    discount: int
    subtotal: int
    tax: int
    display_type: str | None = None


@dataclass(slots=True)
class Order:
    oid: int
    name: str
    pid: int
    team: int             # 1 Website, 2 Sales, 3 B2B
    create_us: int
    final_state: str      # sale / draft / sent / cancel
    confirm_us: int = 0
    sent_us: int = 0
    cancel_us: int = 0
    lock_us: int = 0
    commitment_us: int = 0
    lines: list = field(default_factory=list)
    untaxed: int = 0
    tax: int = 0
    edit_us: int = 0      # dirt: an unrelated later edit
    deal_id: int = 0
    picking: int = -1
    dup_partner: bool = False   # placed under the person's second Odoo partner (Person.dup_partner_id)

    def state_at(self, t: int) -> str:
        if self.final_state == "sale":
            return "sale" if self.confirm_us <= t else "draft"
        if self.final_state == "sent":
            return "sent" if self.sent_us <= t else "draft"
        if self.final_state == "cancel":
            return "cancel" if self.cancel_us <= t else "draft"
        return "draft"


@dataclass(slots=True)
class Picking:
    kid: int
    name: str
    oid: int
    pid: int
    create_us: int
    scheduled_us: int
    deadline_us: int
    done_us: int          # 0 when never done
    cancel_us: int        # 0 when never cancelled

    @property
    def late(self) -> bool:
        return self.done_us > self.scheduled_us

    def state_at(self, t: int) -> str:
        if self.done_us and self.done_us <= t:
            return "done"
        if self.cancel_us and self.cancel_us <= t:
            return "cancel"
        return "assigned"


@dataclass(slots=True)
class Ticket:
    tid: int
    pid: int
    oid: int
    category: str
    subject: str
    content: str
    priority: str
    created_us: int
    reply_us: int
    customer_reply_us: int   # 0 when the customer never answered
    closed_us: int           # 0 when never closed
    hs_id: int = 0
    bad_created_at: str | None = None   # dirt hubspot_bad_created_at_rate: createdAt as delivered (not a timestamp)

    def stage_at(self, t: int) -> str:
        if self.closed_us and self.closed_us <= t:
            return "4"
        if self.customer_reply_us and self.customer_reply_us <= t:
            return "3"
        if self.reply_us <= t:
            return "2"
        return "1"


@dataclass(slots=True)
class Feedback:
    fid: int
    pid: int
    survey: str           # NPS / CSAT / CES
    score: int            # the true score
    raw_value: str        # what the file holds (may be dirty)
    channel: str
    submitted_us: int
    raw_timestamp: str | None   # None = format submitted_us; else an impossible date string
    comment: str | None
    modified_us: int      # >= submitted_us
    quarantine: str | None = None
    hs_id: int = 0
    contact_idx: int = 0


@dataclass(slots=True)
class Review:
    source: str           # google / trustpilot
    rid: str
    pid: int              # -1 anonymous / unknown person
    location: int         # google location index; trustpilot business unit index
    stars: int            # stars as first written
    created_us: int
    comment: str | None
    language: str
    reply_text: str | None
    reply_us: int
    edit_us: int = 0      # trustpilot: consumer edit
    edit_stars: int = 0
    late_edit_us: int = 0     # dirt review_late_edit_rate: stars edited weeks or months after creation
    late_edit_stars: int = 0
    reply_edit_us: int = 0    # dirt review_late_reply_rate: the company reply rewritten later
    reply_edit_text: str | None = None
    deleted_us: int = 0       # dirt review_deletion_rate: removed from the site (consumer or platform)
    order_name: str | None = None
    referral_email: str | None = None
    offset_min: int = 0
    quarantine: str | None = None    # missing_id / rating_invalid / bad_timestamp
    display_name: str = ""
    anonymous: bool = False
    bad_experienced_at: str | None = None   # dirt trustpilot_bad_experienced_at_rate: experiencedAt as delivered

    def stars_at(self, t: int) -> int:
        if self.late_edit_us and self.late_edit_us <= t:
            return self.late_edit_stars
        return self.edit_stars if self.edit_us and self.edit_us <= t else self.stars

    def edited_us_at(self, t: int) -> int:
        """Time of the latest consumer edit visible at t (0: never edited by then)."""
        return max((x for x in (self.edit_us, self.late_edit_us) if x and x <= t), default=0)

    def reply_at(self, t: int):
        """The company reply visible at t: (text, first written, last changed), or None."""
        if self.reply_text is None or self.reply_us > t:
            return None
        if self.reply_edit_us and self.reply_edit_us <= t:
            return self.reply_edit_text, self.reply_us, self.reply_edit_us
        return self.reply_text, self.reply_us, self.reply_us

    def deleted_at(self, t: int) -> bool:
        return bool(self.deleted_us) and self.deleted_us <= t


@dataclass(slots=True)
class Campaign:
    cid: int
    subject: str
    send_us: int


@dataclass
class World:
    seed: int
    scale: str
    start_us: int
    end_us: int
    dirt: dict
    companies: list
    persons: list
    orders: list
    pickings: list
    tickets: list
    feedback: list
    reviews: list
    campaigns: list
    email_events: list     # (created_ms, id, type, recipient, campaign_id, extra dict)
    products: list         # (product_id, template_id, code, en name, price_cents, category)
    visitor_first_touch: np.ndarray
    visitor_person: np.ndarray
    ids: dict


def _choice(rng, seq):
    return seq[int(rng.integers(len(seq)))]


def _weighted(rng, weights):
    w = np.asarray(weights, dtype=float)
    return int(rng.choice(len(w), p=w / w.sum()))


def _lognormal_us(rng, median_h: float, sigma: float) -> int:
    return int(median_h * US_PER_H * math.exp(sigma * rng.standard_normal()))


def build_world(seed: int, scale, start, days: int, dirt: dict) -> World:
    start_us = date_to_us(start)
    end_us = start_us + days * US_PER_DAY
    span = end_us - start_us
    ids = _ids(seed)

    # ---------------- people and companies ----------------
    rng = stream(seed, "persons")
    shares = np.array([c[5] for c in texts.COUNTRIES])
    n = scale.persons
    n_comp = max(3, n // 60)
    companies = []
    crng = stream(seed, "companies")
    used_names: dict[str, int] = {}
    for i in range(n_comp):
        c = int(crng.choice(len(shares), p=shares / shares.sum()))
        base = f"{_choice(crng, texts.COMPANY_WORDS_A)} {_choice(crng, texts.COMPANY_WORDS_B)}"
        k = used_names.get(base, 0)
        used_names[base] = k + 1
        name = base if k == 0 else f"{base} {k + 1}"
        dom = "".join(ch for ch in ascii_fold(name).lower() if ch.isalnum()) + ".example.net"
        created = start_us - int(crng.integers(30, 400)) * US_PER_DAY + int(crng.integers(0, US_PER_DAY))
        companies.append(Company(i, name, dom, c, _choice(crng, texts.COUNTRIES[c][6]), created))

    countries = rng.choice(len(shares), size=n, p=shares / shares.sum())
    # 40% of the people were known before the window, the rest arrive during it
    before = rng.random(n) < 0.4
    created = np.where(before,
                       start_us - rng.integers(1, 365 * US_PER_DAY, size=n),
                       start_us + (rng.random(n) ** 1.15 * (span - US_PER_DAY)).astype(np.int64))
    b2b = rng.random(n) < 0.05
    persons = []
    seen_local: dict[str, int] = {}
    case_rate = dirt["email_case_mismatch_rate"]
    for i in range(n):
        c = int(countries[i])
        cc = texts.COUNTRIES[c][0]
        first = _choice(rng, texts.FIRST_NAMES[cc])
        last = _choice(rng, texts.LAST_NAMES[cc])
        local = email_local(first, last)
        k = seen_local.get(local, 0)
        seen_local[local] = k + 1
        email = f"{local}{k}@{_choice(rng, texts.EMAIL_DOMAINS)}"
        phone = f"{texts.COUNTRIES[c][7]} {int(rng.integers(100_000_000, 999_999_999))}"
        comp = int(rng.integers(n_comp)) if b2b[i] else -1
        p = Person(i, first, last, c, _choice(rng, texts.COUNTRIES[c][6]), email, phone, int(created[i]), comp)
        p.odoo_email = email
        p.hs_email = email
        u = rng.random()
        if u < case_rate / 2:
            p.hs_email = email.upper() + "  "
        elif u < case_rate:
            p.odoo_email = email[0].upper() + email[1:] + " "
        persons.append(p)

    # ---------------- products ----------------
    products = []
    pid_ = 1
    for t_idx, (cat, en, vi, price, variants) in enumerate(texts.PRODUCTS, start=1):
        for suffix, factor in variants:
            code = "HC-" + "".join(w[0] for w in en.split()).upper() + f"{t_idx:02d}" + (f"-{suffix}" if suffix else "")
            label = en + (f" {suffix.replace('K', 'kg') if suffix != '250' else '250g'}" if suffix else "")
            products.append((pid_, t_idx, code, label, int(round(price * factor)), cat))
            pid_ += 1
    prod_weights = np.array([3, 1, 2, 1.5, 1, 0.6, 2.5, 1.2, 2, 0.6, 0.8, 1.5, 0.4, 0.4, 1.2, 1, 0.6, 0.8][:len(products)])
    prod_weights = prod_weights / prod_weights.sum()

    # ---------------- orders ----------------
    orng = stream(seed, "orders")
    orders: list[Order] = []
    buyers = orng.random(n) < 0.7
    for p in persons:
        if not buyers[p.pid]:
            continue
        k = 1 + int(orng.poisson(0.9 if p.company < 0 else 2.0))
        t = max(p.created_us, start_us) + int(orng.exponential(25 * US_PER_DAY))
        for _ in range(k):
            if t >= end_us - 10 * MIN:
                break
            team = 3 if (p.company >= 0 and orng.random() < 0.6) else (1 if orng.random() < 0.78 else 2)
            u = orng.random()
            final = "sale" if u < 0.86 else ("draft" if u < 0.91 else ("sent" if u < 0.95 else "cancel"))
            if team == 1 and final == "sent":
                final = "draft"
            o = Order(0, "", p.pid, team, 0, final)
            if team == 1:
                o.confirm_us = t
                o.create_us = t - int(orng.integers(2 * MIN, 12 * MIN))
            else:
                o.create_us = t - int(orng.integers(2 * US_PER_H, 5 * US_PER_DAY))
                o.confirm_us = t
            if final != "sale":
                o.confirm_us = 0
                o.create_us = t
                if final == "sent":
                    o.sent_us = t + int(orng.integers(10 * MIN, 2 * US_PER_DAY))
                elif final == "cancel":
                    o.cancel_us = t + int(orng.integers(30 * MIN, 4 * US_PER_DAY))
            if team != 1:
                o.commitment_us = t + int(orng.integers(3, 8)) * US_PER_DAY
            # lines
            n_lines = 1 + int(orng.poisson(0.9 if team != 3 else 2.5))
            chosen = orng.choice(len(products), size=n_lines, p=prod_weights)
            seq = 0
            for j in sorted(set(int(x) for x in chosen)):
                prod = products[j]
                qty = 1 + int(orng.poisson(0.4 if team != 3 else 6))
                disc = 10 if (team == 3 and qty >= 6) else (5 if orng.random() < 0.05 else 0)
                sub = (prod[4] * qty * (100 - disc) + 50) // 100
                tax = (sub * TAX_RATE_PCT + 50) // 100
                o.lines.append(Line(prod[0], f"[{prod[2]}] {prod[3]}", qty, prod[4], disc, sub, tax))
                seq += 1
            if orng.random() < 0.06:
                o.lines.insert(0, Line(0, "Coffee", 0, 0, 0, 0, 0, "line_section"))
            if orng.random() < 0.05:
                o.lines.append(Line(0, "Gift message: Chúc mừng sinh nhật! 🎂", 0, 0, 0, 0, 0, "line_note"))
            o.untaxed = sum(l_.subtotal for l_ in o.lines)
            o.tax = sum(l_.tax for l_ in o.lines)
            if orng.random() < dirt["record_update_rate"] * 0.5:
                o.edit_us = max(o.create_us, o.confirm_us, o.sent_us, o.cancel_us) + int(orng.integers(US_PER_H, 10 * US_PER_DAY))
            orders.append(o)
            t += int(orng.exponential(28 * US_PER_DAY)) + US_PER_DAY
    orders.sort(key=lambda o: (o.create_us, o.pid))
    for i, o in enumerate(orders):
        o.oid = i + 1
        o.name = f"S{i + 1:05d}"
    ordering_pids = sorted({o.pid for o in orders})
    _duplicate_partners(seed, persons, orders, dirt)
    for o in orders:
        if o.final_state == "sale":
            p = persons[o.pid]
            if not p.first_confirm_us or o.confirm_us < p.first_confirm_us:
                p.first_confirm_us = o.confirm_us

    # ---------------- deliveries ----------------
    krng = stream(seed, "pickings")
    pickings: list[Picking] = []
    slow = {"US": 1.0, "GB": 0.8, "FR": 0.8, "DE": 0.8, "AU": 1.4, "JP": 0.6, "VN": 0.3, "SG": 0.2}
    confirmed = sorted((o for o in orders if o.final_state == "sale"), key=lambda o: (o.confirm_us, o.oid))
    for o in confirmed:
        p = persons[o.pid]
        lead = int(krng.integers(1, 4)) * US_PER_DAY
        sched_day = (o.confirm_us + lead) // US_PER_DAY * US_PER_DAY
        scheduled = sched_day + 17 * US_PER_H
        deadline = o.commitment_us or (scheduled + US_PER_DAY)
        cancel = 0
        done = 0
        if krng.random() < 0.02:
            cancel = o.confirm_us + int(krng.integers(US_PER_H, 2 * US_PER_DAY))
        else:
            late_p = 0.08 + 0.12 * slow[texts.COUNTRIES[p.country][0]]
            if krng.random() < late_p:
                done = scheduled + int(krng.integers(2 * US_PER_H, 5 * US_PER_DAY))
            else:
                done = scheduled - int(krng.integers(0, 30 * US_PER_H))
            done = max(done, o.confirm_us + 30 * MIN)
        kid = len(pickings) + 1
        pk = Picking(kid, f"WH/OUT/{kid:05d}", o.oid, o.pid, o.confirm_us + int(krng.integers(US_PER_S, 60 * US_PER_S)),
                     scheduled, deadline, done, cancel)
        pickings.append(pk)
        o.picking = kid - 1
        if done and krng.random() < 0.3:
            o.lock_us = done + int(krng.integers(MIN, 3 * US_PER_H))

    # ---------------- systems membership ----------------
    mrng = stream(seed, "membership")
    has_order = np.zeros(n, dtype=bool)
    has_order[ordering_pids] = True
    for p in persons:
        p.in_odoo = bool(has_order[p.pid])
        p.in_hubspot = bool(mrng.random() < (0.93 if has_order[p.pid] else 1.0))
        if mrng.random() < dirt["record_update_rate"]:
            p.phone_change_us = max(p.created_us, start_us) + int(mrng.integers(US_PER_DAY, 90 * US_PER_DAY))
            cc = texts.COUNTRIES[p.country]
            p.new_phone = f"{cc[7]} {int(mrng.integers(100_000_000, 999_999_999))}"
        if p.in_hubspot and mrng.random() < dirt["hubspot_duplicate_contact_rate"]:
            p.dup_contact_created_us = max(p.created_us, start_us) + int(mrng.integers(US_PER_DAY, 120 * US_PER_DAY))
            p.dup_email = p.email[0].upper() + p.email[1:]

    # ---------------- tickets ----------------
    trng = stream(seed, "tickets")
    tickets: list[Ticket] = []
    topics = texts.TICKET_TOPICS
    for pk in pickings:
        if pk.cancel_us:
            continue
        prob = 0.45 if pk.late else 0.04
        if trng.random() >= prob or not persons[pk.pid].in_hubspot:
            continue
        j = _weighted(trng, [t[3] if pk.late else t[4] for t in topics])
        created = (pk.scheduled_us if pk.late else pk.done_us) + int(trng.integers(2 * US_PER_H, 3 * US_PER_DAY))
        tickets.append(_ticket(trng, pk.pid, pk.oid, topics[j], created))
    for p in persons:
        if p.in_hubspot and trng.random() < 0.015:
            j = _weighted(trng, [t[4] for t in topics])
            created = max(p.created_us, start_us) + int(trng.integers(0, span // 2))
            tickets.append(_ticket(trng, p.pid, 0, topics[j], created))
    tickets = [t for t in tickets if t.created_us < end_us]
    tickets.sort(key=lambda t: (t.created_us, t.pid))
    for i, t in enumerate(tickets):
        t.tid = i + 1

    # ---------------- surveys ----------------
    feedback = _surveys(seed, persons, orders, pickings, tickets, start_us, end_us, dirt)

    # ---------------- reviews ----------------
    reviews = _reviews(seed, persons, orders, pickings, start_us, end_us, dirt)

    # ---------------- HubSpot ids (one increasing counter, in creation order) ----------------
    _assign_hubspot_ids(seed, companies, persons, orders, tickets, feedback)
    reviews = _empty_entities(dirt, orders, reviews)
    tickets, feedback = _quiet_day(seed, dirt, end_us, tickets, feedback)
    _bad_timestamps(seed, dirt, tickets, reviews)

    # ---------------- Odoo partner ids ----------------
    partners = [(c.created_us, 0, c.cid) for c in companies] + [(p.created_us, 1, p.pid) for p in persons if p.in_odoo]
    partners += [(p.dup_partner_created_us, 2, p.pid) for p in persons if p.in_odoo and p.dup_partner_created_us]
    partners.sort()
    for i, (_, kind, idx) in enumerate(partners):
        if kind == 0:
            companies[idx].partner_id = 10 + i
        elif kind == 1:
            persons[idx].partner_id = 10 + i
        else:
            persons[idx].dup_partner_id = 10 + i

    # ---------------- email campaigns ----------------
    campaigns, email_events = _email(seed, persons, start_us, end_us, ids, dirt)

    # ---------------- GA4 visitors ----------------
    vrng = stream(seed, "visitors")
    n_anon = scale.anon_visitors
    anon_ft = start_us - 60 * US_PER_DAY + (vrng.random(n_anon) * (span + 60 * US_PER_DAY)).astype(np.int64)
    person_ft = np.array([min(p.created_us, (p.first_confirm_us or p.created_us)) - int(vrng.integers(0, 5 * US_PER_DAY))
                          for p in persons], dtype=np.int64)
    ft = np.concatenate([person_ft, anon_ft])
    owner = np.concatenate([np.arange(n, dtype=np.int64), np.full(n_anon, -1, dtype=np.int64)])
    order_ = np.argsort(ft, kind="stable")
    ft = ft[order_]
    owner = owner[order_]
    for v, o in enumerate(owner):
        if o >= 0:
            persons[int(o)].visitor = v
    return World(seed, scale.name, start_us, end_us, dirt, companies, persons, orders, pickings, tickets, feedback,
                 reviews, campaigns, email_events, products, ft, owner, ids)


def _duplicate_partners(seed, persons, orders, dirt) -> None:
    """Dirt: a person with two or more orders gets a second Odoo partner (a new account at checkout) whose e-mail
    differs from the first one's in case / spaces only; their second order and, at random, later ones are placed
    under it, so both records carry orders. One person, two ERP records: customer KPIs still count one customer."""
    rate = dirt.get("erp_duplicate_partner_rate", 0.0)
    if rate <= 0:
        return
    rng = stream(seed, "erp-duplicate-partners")
    by_person: dict[int, list] = {}
    for o in orders:                     # sorted by (create_us, pid)
        by_person.setdefault(o.pid, []).append(o)
    for pid in sorted(by_person):
        mine = by_person[pid]
        if len(mine) < 2 or rng.random() >= rate:
            continue
        p = persons[pid]
        moved = [mine[1]] + [o for o in mine[2:] if rng.random() < 0.5]
        for o in moved:
            o.dup_partner = True
        p.dup_partner_created_us = min(o.create_us for o in moved) - int(rng.integers(MIN, 60 * MIN))
        variants = [v for v in (p.email.upper(), " " + p.email + " ", p.email[0].upper() + p.email[1:] + "  ")
                    if v != p.odoo_email]
        p.dup_partner_email = _choice(rng, variants)


def _ids(seed: int) -> dict:
    r = stream(seed, "ids")
    return {
        "hubspot": {"portal_id": int(r.integers(1_000_000, 9_999_999)), "token": "pat-demo-" + hex_id(r, 16)},
        "google": {"account_id": str(int(r.integers(10**11, 10**12 - 1))),
                   "location_ids": [str(int(r.integers(10**6, 10**7 - 1))) for _ in texts.GOOGLE_LOCATIONS],
                   "token": "ya29.demo-" + hex_id(r, 16)},
        "trustpilot": {"business_unit_ids": [hex_id(r, 12)], "api_key": "tp-demo-" + hex_id(r, 12),
                       "api_secret": "tps-demo-" + hex_id(r, 16)},
        "ga4": {"property_id": str(int(r.integers(10**8, 10**9 - 1))), "stream_id": str(int(r.integers(10**9, 10**10 - 1)))},
        "email": {"subscription_id": int(r.integers(1_000_000, 9_999_999))},
    }


def _ticket(rng, pid, oid, topic, created) -> Ticket:
    cat, subject, content, _, _ = topic
    prio = texts.PRIORITIES[_weighted(rng, [3, 4, 2, 1 if cat != "SHIPPING" else 2])]
    reply = created + _lognormal_us(rng, 5.0, 1.0) + MIN
    cust = reply + _lognormal_us(rng, 6.0, 0.8) if rng.random() < 0.4 else 0
    closed = 0
    if rng.random() < 0.85:
        closed = max(reply, cust) + _lognormal_us(rng, 18.0, 1.0) + MIN
    return Ticket(0, pid, oid, cat, subject, content, prio, created, reply, cust, closed)


def _pick_comment(rng, sentiment: int, dirt: dict):
    if rng.random() < dirt["hostile_text_rate"]:
        return _choice(rng, texts.HOSTILE)
    pool = texts.POSITIVE if sentiment > 0 else (texts.NEGATIVE if sentiment < 0 else texts.NEUTRAL)
    return _choice(rng, pool)


# The NPS score model's planted drivers (points of NPS score per unit; see _surveys): what the key-driver analysis
# (cxw/analytics/key_drivers.py) must find, strongest first. The lookback equals the dbt var driver_lookback_days.
NPS_DRIVER_LOOKBACK_DAYS = 90
NPS_DRIVER_EFFECTS = {"delay_days": 1.5, "ticket_count": 1.5, "channel_email": 0.4}


def _surveys(seed, persons, orders, pickings, tickets, start_us, end_us, dirt) -> list:
    rng = stream(seed, "surveys")
    out: list[Feedback] = []
    ticket_by_order: dict[int, Ticket] = {}
    tickets_by_person: dict[int, list] = {}
    for t in tickets:
        if t.oid:
            ticket_by_order.setdefault(t.oid, t)
        tickets_by_person.setdefault(t.pid, []).append(t)

    def add(pid, survey, score, channel, ts):
        if ts >= end_us:
            return
        sent = 1 if (survey == "NPS" and score >= 9) or (survey == "CSAT" and score >= 4) or (survey == "CES" and score >= 5) else \
            (-1 if (survey == "NPS" and score <= 6) or (survey == "CSAT" and score <= 2) or (survey == "CES" and score <= 3) else 0)
        comment = None
        if rng.random() < 0.6:
            comment = _pick_comment(rng, sent, dirt)[1]
        raw = str(score)
        quarantine = None
        raw_ts = None
        u = rng.random()
        if u < dirt["feedback_out_of_scale_rate"]:
            raw = {"NPS": "11", "CSAT": _choice(rng, ["0", "6"]), "CES": "8"}[survey]
            quarantine = "score_out_of_range"
        elif u < dirt["feedback_out_of_scale_rate"] + dirt["feedback_non_numeric_rate"]:
            raw = _choice(rng, ["five", "", "N/A", "4.5/5"])
            quarantine = "score_not_numeric"
        elif u < dirt["feedback_out_of_scale_rate"] + dirt["feedback_non_numeric_rate"] + dirt["feedback_bad_timestamp_rate"]:
            raw_ts = _choice(rng, ["2025-02-30T25:61:00Z", "2025-13-01T00:00:00Z", "0000-00-00T00:00:00Z"])
            quarantine = "bad_timestamp"
        modified = ts
        if rng.random() < dirt["record_update_rate"] * 0.3:
            modified = ts + int(rng.integers(US_PER_H, 20 * US_PER_DAY))
        contact_idx = 1 if (persons[pid].dup_contact_created_us and persons[pid].dup_contact_created_us < ts
                            and rng.random() < 0.3) else 0
        out.append(Feedback(0, pid, survey, score, raw, channel, ts, raw_ts, comment, modified, quarantine,
                            contact_idx=contact_idx))

    csat_good = [0.02, 0.03, 0.10, 0.35, 0.50]
    csat_late = [0.15, 0.20, 0.25, 0.28, 0.12]
    csat_bad = [0.40, 0.30, 0.15, 0.10, 0.05]
    for pk in pickings:
        if not pk.done_us or not persons[pk.pid].in_hubspot or rng.random() >= 0.3:
            continue
        ts = pk.done_us + int(rng.integers(US_PER_H, 3 * US_PER_DAY))
        t = ticket_by_order.get(pk.oid)
        unresolved = t is not None and (not t.closed_us or t.closed_us > ts) and t.created_us < ts
        probs = csat_bad if unresolved else (csat_late if pk.late else csat_good)
        add(pk.pid, "CSAT", 1 + _weighted(rng, probs), "EMAIL", ts)
    for t in tickets:
        if not t.closed_us or rng.random() >= 0.5:
            continue
        hours = (t.closed_us - t.created_us) / US_PER_H
        center = 6.2 - min(4.0, hours / 24)
        score = int(min(7, max(1, round(center + rng.normal(0, 1.0)))))
        add(t.pid, "CES", score, "CHAT", t.closed_us + int(rng.integers(MIN, 2 * US_PER_H)))
    span = end_us - start_us
    done_by_person: dict[int, list] = {}
    for pk in pickings:
        if pk.done_us:
            done_by_person.setdefault(pk.pid, []).append(pk)
    lookback = NPS_DRIVER_LOOKBACK_DAYS * US_PER_DAY
    for p in persons:
        if not p.in_hubspot or rng.random() >= 0.25:
            continue
        ts = max(p.created_us, start_us) + int(rng.integers(US_PER_H, span))
        # Planted key drivers (issue 19.2; cxw/analytics/key_drivers.py must rank them in this order, docs/analytics.md):
        # the delay of the person's latest delivery done in the lookback before the response (strong), the tickets
        # opened in the lookback (moderate), the survey channel (weak: e-mail answers a little lower than the web).
        recent = [k for k in done_by_person.get(p.pid, []) if ts - lookback <= k.done_us <= ts]
        last = max(recent, key=lambda k: (k.done_us, k.kid)) if recent else None
        delay = max(0.0, (last.done_us - last.scheduled_us) / US_PER_DAY) if last else 0.0
        n_tickets = sum(1 for t in tickets_by_person.get(p.pid, []) if ts - lookback <= t.created_us < ts)
        noise = rng.normal(0, 1.5)
        channel = "WEB" if rng.random() < 0.6 else "EMAIL"
        mu = (8.6 - NPS_DRIVER_EFFECTS["delay_days"] * min(delay, 6.0)
              - NPS_DRIVER_EFFECTS["ticket_count"] * min(n_tickets, 3)
              - NPS_DRIVER_EFFECTS["channel_email"] * (channel == "EMAIL"))
        score = int(min(10, max(0, round(mu + noise))))
        add(p.pid, "NPS", score, channel, ts)
    out.sort(key=lambda f: (f.submitted_us, f.pid, f.survey))
    for i, f in enumerate(out):
        f.fid = i + 1
    return out


def _reviews(seed, persons, orders, pickings, start_us, end_us, dirt) -> list:
    rng = stream(seed, "reviews")
    out: list[Review] = []

    def text_for(stars):
        return _pick_comment(rng, 1 if stars >= 4 else (-1 if stars <= 2 else 0), dirt)

    def reply(stars, created):
        if rng.random() < (0.75 if stars <= 2 else 0.5):
            return _choice(rng, texts.REPLIES), created + _lognormal_us(rng, 20.0, 1.1) + MIN
        return None, 0

    # Trustpilot: invitations after delivery, plus organic reviews
    for pk in pickings:
        if not pk.done_us or rng.random() >= 0.08:
            continue
        p = persons[pk.pid]
        stars = 1 + _weighted(rng, [0.18, 0.2, 0.2, 0.25, 0.17] if pk.late else [0.02, 0.03, 0.08, 0.27, 0.6])
        created = pk.done_us + int(rng.integers(US_PER_H, 8 * US_PER_DAY))
        lang, text = text_for(stars)
        rtext, rts = reply(stars, created)
        r = Review("trustpilot", hex_id(rng, 12), p.pid, 0, stars, created, text, lang, rtext, rts,
                   order_name=orders[pk.oid - 1].name, display_name=f"{p.first} {p.last}")
        if rng.random() < 0.5:
            r.referral_email = p.email
        out.append(r)
    n_org = max(3, len(persons) // 80)
    for _ in range(n_org):
        pid = int(rng.integers(len(persons))) if rng.random() < 0.5 else -1
        stars = 1 + _weighted(rng, [0.12, 0.08, 0.12, 0.28, 0.4])
        created = start_us + int(rng.integers(0, end_us - start_us))
        lang, text = text_for(stars)
        rtext, rts = reply(stars, created)
        name = f"{persons[pid].first} {persons[pid].last}" if pid >= 0 else f"Guest {int(rng.integers(1000, 9999))}"
        out.append(Review("trustpilot", hex_id(rng, 12), pid, 0, stars, created, text, lang, rtext, rts, display_name=name))
    for r in out:
        if r.source != "trustpilot":
            continue
        if rng.random() < dirt["record_update_rate"] * 0.5:
            r.edit_us = r.created_us + int(rng.integers(US_PER_H, 15 * US_PER_DAY))
            r.edit_stars = min(5, r.stars + 1) if r.reply_text else max(1, r.stars - 1)
        if rng.random() < dirt["trustpilot_offset_timestamp_rate"]:
            r.offset_min = _choice(rng, [120, 60, 420, -300, 480, 330])
        if rng.random() < dirt["trustpilot_missing_id_rate"]:
            r.quarantine = "missing_id"
    # Google: walk-in guests at the cafes
    n_g = max(6, len(persons) // 12)
    for _ in range(n_g):
        loc = _weighted(rng, [0.5, 0.3, 0.2])
        pid = int(rng.integers(len(persons))) if rng.random() < 0.4 else -1
        stars = 1 + _weighted(rng, [0.06, 0.05, 0.1, 0.29, 0.5])
        created = start_us + int(rng.integers(0, end_us - start_us))
        if rng.random() < 0.25:
            text, lang = None, "en"
        else:
            lang, text = text_for(stars)
        rtext, rts = reply(stars, created)
        if pid >= 0:
            name = f"{persons[pid].first} {persons[pid].last[0]}."
        else:
            cc = texts.COUNTRIES[_weighted(rng, [c[5] for c in texts.COUNTRIES])][0]
            name = f"{_choice(rng, texts.FIRST_NAMES[cc])} {_choice(rng, texts.LAST_NAMES[cc])[0]}."
        r = Review("google", "AbFvOq" + hex_id(rng, 15), pid, loc, stars, created, text, lang, rtext, rts, display_name=name)
        r.anonymous = rng.random() < 0.05
        if rng.random() < dirt["google_unspecified_rating_rate"]:
            r.quarantine = "rating_invalid"
        out.append(r)
    out = [r for r in out if r.created_us < end_us]
    out.sort(key=lambda r: (r.source, r.created_us, r.rid))
    _review_changes(seed, out, dirt)
    return out


def _review_changes(seed, reviews, dirt) -> None:
    """Changes weeks and months after a review was written (own stream: the draws above stay as they were).
    Stars edited late (half within 3-12 weeks, half 100-400 days later: beyond a rolling re-read of recent creation
    time), a company reply added late to an unanswered review or rewritten later, and reviews removed from the site.
    Times may fall after the window end: they show only for a later as_of."""
    rng = stream(seed, "review-changes")
    for r in reviews:
        u_edit, u_reply, u_del = rng.random(3)
        weeks = rng.random() < 0.5
        edit_after = int(rng.integers(21 * US_PER_DAY, 85 * US_PER_DAY)) if weeks else \
            int(rng.integers(100 * US_PER_DAY, 400 * US_PER_DAY))
        reply_after = int(rng.integers(21 * US_PER_DAY, 180 * US_PER_DAY))
        delete_after = int(rng.integers(US_PER_DAY, 300 * US_PER_DAY))
        reply_text = _choice(rng, texts.REPLIES)
        if r.quarantine:
            continue
        if u_edit < dirt.get("review_late_edit_rate", 0.0):
            r.late_edit_us = r.created_us + edit_after
            before = r.stars_at(r.late_edit_us - 1)
            replied = r.reply_text is not None and r.reply_us < r.late_edit_us
            up = (replied or before == 1) and before < 5
            r.late_edit_stars = before + 1 if up else before - 1
        if u_reply < dirt.get("review_late_reply_rate", 0.0):
            if r.reply_text is None:
                r.reply_text, r.reply_us = reply_text, r.created_us + reply_after
            else:
                r.reply_edit_us = r.reply_us + reply_after
                r.reply_edit_text = reply_text + " (updated)"
        if u_del < dirt.get("review_deletion_rate", 0.0):
            r.deleted_us = r.created_us + delete_after


def _assign_hubspot_ids(seed, companies, persons, orders, tickets, feedback):
    rng = stream(seed, "hubspot-ids")
    objs = []
    for c in companies:
        objs.append((c.created_us, 0, c.cid, 0))
    for p in persons:
        if p.in_hubspot:
            objs.append((p.created_us, 1, p.pid, 0))
            if p.dup_contact_created_us:
                objs.append((p.dup_contact_created_us, 1, p.pid, 1))
    for o in orders:
        if o.team == 3:
            objs.append((o.create_us, 2, o.oid, 0))
    for t in tickets:
        objs.append((t.created_us, 3, t.tid, 0))
    for f in feedback:
        objs.append((f.submitted_us, 4, f.fid, 0))
    objs.sort()
    gaps = rng.integers(1, 6, size=len(objs))
    next_id = 100_000
    for (_, kind, idx, sub), g in zip(objs, gaps):
        next_id += int(g)
        if kind == 0:
            companies[idx].hs_id = next_id
        elif kind == 1:
            persons[idx].contact_ids.append(next_id)
        elif kind == 2:
            orders[idx - 1].deal_id = next_id
        elif kind == 3:
            tickets[idx - 1].hs_id = next_id
        else:
            feedback[idx - 1].hs_id = next_id


def _empty_entities(dirt, orders, reviews) -> list:
    """Entities that never deliver a row (dirt ``hubspot_no_deals``, ``trustpilot_no_reviews`` > 0): removed after
    every random draw, so the rest of the company is byte-identical to the one with them; the answer key, computed
    from the world, agrees."""
    if dirt.get("hubspot_no_deals", 0) > 0:
        for o in orders:
            o.deal_id = 0      # no deal, no deal association
    if dirt.get("trustpilot_no_reviews", 0) > 0:
        reviews = [r for r in reviews if r.source != "trustpilot"]
    return reviews


def _quiet_day(seed, dirt, end_us, tickets, feedback):
    """Dirt ``quiet_day_rate``: the window's last day is a quiet day for customer service — that share of the
    tickets opened and of the feedback submitted (or edited) that day never happens, like a holiday or a closed
    help desk (seen on real data: 4 association rows against a median of 56). Drawn after every other draw from
    its own stream, so everything else is unchanged; the answer key, computed from the world, agrees. The catch-up
    run of the multi-extraction test reads that day: a ≥ 90 % drop on a baseline too short to block (a warning).
    Earlier tickets are still replied to and closed on the day, as a help desk works through its backlog."""
    rate = dirt.get("quiet_day_rate", 0.0)
    if rate <= 0:
        return tickets, feedback
    rng = stream(seed, "quiet-day")
    day = end_us - US_PER_DAY
    tickets = [t for t in tickets if not (day <= t.created_us < end_us and rng.random() < rate)]
    kept = []
    for f in feedback:
        if day <= f.submitted_us < end_us and rng.random() < rate:
            continue
        if f.modified_us != f.submitted_us and day <= f.modified_us < end_us and rng.random() < rate:
            f.modified_us = f.submitted_us      # the edit of an older submission does not happen either
        kept.append(f)
    return tickets, kept


# Present-but-unparsable timestamps (issue 15.2), as a vendor's API can deliver them: an impossible calendar date or
# the zero date of a MySQL-backed connector (the same shapes as feedback_bad_timestamp_rate).
BAD_TIMESTAMPS = ("2025-02-30T25:61:00.000Z", "0000-00-00T00:00:00.000Z", "2025-13-01T00:00:00.000Z")


def _bad_timestamps(seed, dirt, tickets, reviews) -> None:
    """Dirt ``hubspot_bad_created_at_rate``: that share of the HubSpot tickets (at least one when > 0) has a
    ``createdAt`` that is not a timestamp (its ``properties.createdate`` stays good: createdAt is only created_at's
    fallback, yet a present value parses in full or the record is quarantined, bad_timestamp).
    Dirt ``trustpilot_bad_experienced_at_rate``: that share of the Trustpilot reviews that are not quarantined
    otherwise (at least one when > 0) has an ``experiencedAt`` that is not a timestamp (bad_timestamp).
    Both from their creation on (the record never had a good version), drawn after every other draw from their own
    streams, so the rest of the company stays byte-identical; the answer key leaves those records out of every KPI."""
    rate = float(dirt.get("hubspot_bad_created_at_rate", 0.0))
    if rate > 0 and tickets:
        rng = stream(seed, "hubspot-bad-created-at")
        hit = [t for t in tickets if rng.random() < rate] or [tickets[0]]
        for k, t in enumerate(hit):
            t.bad_created_at = BAD_TIMESTAMPS[k % len(BAD_TIMESTAMPS)]
    rate = float(dirt.get("trustpilot_bad_experienced_at_rate", 0.0))
    tp = [r for r in reviews if r.source == "trustpilot" and not r.quarantine]
    if rate > 0 and tp:
        rng = stream(seed, "trustpilot-bad-experienced-at")
        hit = [r for r in tp if rng.random() < rate] or [tp[0]]
        for k, r in enumerate(hit):
            r.quarantine = "bad_timestamp"
            r.bad_experienced_at = BAD_TIMESTAMPS[k % len(BAD_TIMESTAMPS)].replace(".000Z", "Z")


def _email(seed, persons, start_us, end_us, ids, dirt):
    rng = stream(seed, "email")
    campaigns = []
    n_c = max(1, (end_us - start_us) // (14 * US_PER_DAY))
    subjects = ["coffee news", "new harvest from Đà Lạt", "brew guide", "spring sale ☕", "gift ideas", "subscriber perks"]
    for k in range(int(n_c)):
        day = start_us + (k * 14 + int(rng.integers(0, 5))) * US_PER_DAY
        campaigns.append(Campaign(31_000_000 + k, f"Campaign {k}: {subjects[k % len(subjects)]}", day + 9 * US_PER_H))
    unsub: set = set()
    events = []
    portal = ids["hubspot"]["portal_id"]
    sub_id = ids["email"]["subscription_id"]
    recipients_all = [p for p in persons if p.in_hubspot]
    # each campaign goes to a segment: 30% of the list, capped so that M/L scales stay bounded
    share = min(0.3, 40_000 / max(1, len(recipients_all)))
    for c in campaigns:
        for p in recipients_all:
            if p.created_us >= c.send_us or p.pid in unsub or rng.random() >= share:
                continue
            email = p.hs_email.strip().lower()
            t = c.send_us + int(rng.integers(0, 3600)) * US_PER_S
            t_ms = t // 1000
            sent_by = {"id": "sb-" + hex_id(rng, 12), "created": t_ms}
            base = {"recipient": email, "emailCampaignId": c.cid, "portalId": portal, "appId": 113, "appName": "BatchEmail",
                    "sentBy": sent_by}

            def ev(ms, typ, **extra):
                events.append((ms, hex_id(rng, 16), typ, base, extra))
            ev(t_ms, "SENT", subject=c.subject, fromAddress="news@hidden-cafe.example.com")
            if rng.random() < 0.03:
                ev(t_ms + int(rng.integers(1000, 9000)), "BOUNCE", category=_choice(rng, ["UNKNOWN_USER", "MAILBOX_FULL"]),
                   response="550 5.1.1 user unknown", status="5.1.1")
                continue
            ev(t_ms + int(rng.integers(1000, 9000)), "DELIVERED", response="250 OK", smtpId=f"<{hex_id(rng, 6)}@hubspot>")
            dev = _choice(rng, ["COMPUTER", "MOBILE"])
            if rng.random() < 0.12:
                ev(t_ms + int(rng.integers(10_000, 120_000)), "OPEN", filteredEvent=True, deviceType="COMPUTER",
                   userAgent="Mozilla/5.0 (Macintosh) AppleWebKit/605.1.15 (KHTML, like Gecko)")
            last = t_ms
            if rng.random() < 0.32:
                n_open = 1 + int(rng.poisson(0.4))
                for _ in range(n_open):
                    o_ms = t_ms + _lognormal_us(rng, 6.0, 1.2) // 1000 + 60_000
                    ev(o_ms, "OPEN", filteredEvent=False, deviceType=dev, userAgent="Mozilla/5.0")
                    last = max(last, o_ms)
                if rng.random() < 0.3:
                    last += int(rng.integers(5_000, 600_000))
                    ev(last, "CLICK", url="https://hidden-cafe.example.com/collections/coffee?utm_source=hubspot&utm_medium=email",
                       linkId=int(rng.integers(1, 5)), filteredEvent=False, deviceType=dev, userAgent="Mozilla/5.0")
            if rng.random() < 0.008:
                ev(last + int(rng.integers(10_000, 900_000)), "STATUSCHANGE",
                   subscriptions=[{"id": sub_id, "status": "UNSUBSCRIBED"}], portalSubscriptionStatus="UNSUBSCRIBED",
                   source="SOURCE_RECIPIENT", requestedBy=email)
                unsub.add(p.pid)
    events.sort(key=lambda e: (e[0], e[1]))
    return campaigns, events
