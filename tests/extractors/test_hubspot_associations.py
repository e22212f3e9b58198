"""HubSpot associations on a first run: a pair configured both ways is read from one side and the other derived
(issue 20), against the loopback DemoServer (real HTTP, fake clock)."""
from __future__ import annotations

import json
import math
import shutil
from datetime import datetime

from conftest import WINDOW_END, FakeClock, read_load, run_kwargs, visible_loads
from demo_company.server import DemoServer
from extractors import hubspot
from test_hubspot_extract import (ASSOC_PATH, OBJECTS, UTC, jsonl, load_of, served_associations,
                                  settings)


REVERSE = {"contacts->tickets", "contacts->deals", "contacts->feedback_submissions", "deals->companies",
           "contacts->companies"}


def assoc_rows(raw_root):
    """Every landed association row with all its columns (type id, label, category)."""
    out = []
    for path in visible_loads(raw_root, "hubspot", "associations"):
        out.extend(read_load(path)[0])
    return sorted((a["from_type"], a["from_id"], a["to_type"], a["to_id"], a["type_id"], a["label"] or "",
                   a["category"] or "") for a in out)


def assoc_requests(log):
    return [e for e in log if e["path"].startswith(ASSOC_PATH)]


def _first_run_serving(store, served, tmp_path, batch: int):
    """A first run (via list) against the demo server of ``store`` serving the associations ``served``."""
    with open(store / "api" / "hubspot" / "associations.jsonl", "w") as fh:
        fh.writelines(json.dumps(r) + "\n" for r in served)
    clock = FakeClock()
    d = {k: tmp_path / k for k in ("raw", "state", "deadletter")}
    with DemoServer(store, port=0, clock=clock, realism=False) as srv:
        s = settings(srv, clock, include_email_events=False, archived_objects=[], association_batch_size=batch)
        return hubspot.extract(settings=s, **run_kwargs(d)), d


def test_first_run_derives_the_reverse_pairs_same_rows_fewer_requests(demo_dir, tmp_path):
    """A first run lists every object over its whole history: each pair whose reverse is configured is read from
    the side with fewer ids (plus one sample batch of the other side, to learn its type ids and check the
    derivation) and the other side is derived. The rows are exactly those of a first run through search (which
    reads both sides) and those the demo serves: type ids per direction (contact->company 279, company->contact
    280, ...), labels, category; with fewer batch requests, counted alike by the server and the load's
    ``batch_reads``; the client limits hold (the server enforces HubSpot's 100 / 10 s: no 429)."""
    got = {}
    for via in ("list", "search"):
        clock = FakeClock()
        d = {k: tmp_path / via / k for k in ("raw", "state", "deadletter")}
        with DemoServer(demo_dir, port=0, clock=clock, realism=False, limits={"hubspot_per_10s": 100}) as srv:
            s = settings(srv, clock, include_email_events=False, archived_objects=[], association_batch_size=5,
                         history_via_list=via == "list")
            rep = hubspot.extract(settings=s, **run_kwargs(d))
            got[via] = (assoc_rows(d["raw"]), assoc_requests(srv.request_log()),
                        read_load(load_of(rep, "associations")["path"])[1])
            assert not [e for e in srv.request_log() if e["status"] == 429]
    (rows_l, log_l, meta_l), (rows_s, log_s, meta_s) = got["list"], got["search"]
    assert rows_l == rows_s
    assert {r[:5] for r in rows_l} == served_associations(demo_dir) and len(rows_l) == len(set(rows_l))
    types = {(r[0], r[2]): r[4] for r in rows_l}
    assert types[("contacts", "companies")] == 279 and types[("companies", "contacts")] == 280
    assert types[("contacts", "tickets")] == 15 and types[("tickets", "contacts")] == 16
    assert meta_s["derived"] == {} and set(meta_l["derived"]) == REVERSE
    assert all(v["derived_ids"] > 0 and v["read_ids"] == 0 and "refused" not in v
               for v in meta_l["derived"].values())
    assert sum(meta_l["batch_reads"].values()) == len(log_l) < len(log_s) == sum(meta_s["batch_reads"].values())
    for pair in REVERSE:   # the derived side: one sample batch of 5 ids, not ⌈ids / 5⌉ batches
        assert meta_l["batch_reads"][pair] == 1 < meta_s["batch_reads"][pair], pair
    assert meta_l["to_ids_read_back"] == {} == meta_s["to_ids_read_back"]


def test_a_first_run_ending_before_some_changes_derives_what_reading_would_land(server, clock, dirs, tmp_path):
    """Records modified after the window end are listed but not landed (left to the next run); an owed contact's
    link to such a ticket must still land from the contact's side, as a read of contacts->tickets would land it:
    the read side is read for the records the listing saw outside the window too. Same rows as a first run through
    search; the next run lands the rest, as before."""
    mid = datetime(2025, 4, 1, tzinfo=UTC)
    rows = {}
    for via in ("list", "search"):
        d = {k: tmp_path / via / k for k in ("raw", "state", "deadletter")}
        s = settings(server, clock, include_email_events=False, archived_objects=[], association_batch_size=20,
                     history_via_list=via == "list")
        rep = hubspot.extract(settings=s, **run_kwargs(d, end=mid))
        rows[via] = assoc_rows(d["raw"])
        meta = read_load(load_of(rep, "associations")["path"])[1]
        if via == "list":
            assert set(meta["derived"]) == REVERSE
            assert not [v for v in meta["derived"].values() if "refused" in v or v["read_ids"]]
            assert sum(read_load(load_of(rep, o)["path"])[1]["list_outside_window"] for o in OBJECTS) > 0
        hubspot.extract(settings=s, **run_kwargs(d, end=WINDOW_END))
        rows[via + "_2"] = assoc_rows(d["raw"])
    assert rows["list"] == rows["search"]
    assert set(rows["list_2"]) == set(rows["search_2"])


def test_a_type_the_sample_did_not_show_is_read_not_guessed(demo_dir, tmp_path):
    """Custom labels have their own type id per direction (not derivable from the other direction's row). A
    contact<->company link carrying one (type 1001 "Billing" from the contact, 1002 "Billed company" from the
    company) only on the last 3 contacts with a company (the sample of 5 holds the first 4): those contacts'
    contacts->companies rows are read, the others derived; every row lands as served."""
    store = tmp_path / "store"
    shutil.copytree(demo_dir, store, ignore=shutil.ignore_patterns("ga4", "odoo"))
    served = jsonl(store, "associations")
    cc = sorted((a for a in served if a["from_type"] == "contacts" and a["to_type"] == "companies"),
                key=lambda a: int(a["from_id"]))
    labelled = cc[-3:]
    for a in labelled:
        served.append(dict(a, type_id=1001, label="Billing"))
        served.append({"from_type": "companies", "from_id": a["to_id"], "to_type": "contacts", "to_id": a["from_id"],
                       "type_id": 1002, "label": "Billed company"})
    rep, d = _first_run_serving(store, served, tmp_path, batch=5)
    rows = assoc_rows(d["raw"])
    assert {r[:5] for r in rows} == {(a["from_type"], a["from_id"], a["to_type"], a["to_id"], a["type_id"])
                                     for a in served}
    assert {(r[1], r[4], r[5]) for r in rows if r[0] == "contacts" and r[2] == "companies" and r[5]} == \
        {(a["from_id"], 1001, "Billing") for a in labelled}
    info = read_load(load_of(rep, "associations")["path"])[1]["derived"]["contacts->companies"]
    assert info["read_ids"] == len(labelled) and info["derived_ids"] > 0 and "refused" not in info


def test_a_sample_that_disagrees_with_the_derivation_reads_the_pair(demo_dir, tmp_path):
    """The derivation is checked on the sample (the first batch of the derived side, read): a link HubSpot shows
    from one side only (here: the first contact's company link, missing from the company's side) makes the rows
    derived for the sample differ from those read, and the whole pair is read as before. (A link missing from the
    read side for a contact outside the sample would not land on a first run: HubSpot shows every link from both
    sides, README "Associations".)"""
    store = tmp_path / "store"
    shutil.copytree(demo_dir, store, ignore=shutil.ignore_patterns("ga4", "odoo"))
    served = jsonl(store, "associations")
    # the sample holds the first 10 (of 40) contacts without a company link from the companies' side, in list order
    cc = [a for a in served if a["from_type"] == "contacts" and a["to_type"] == "companies"]
    first = min(cc, key=lambda a: int(a["from_id"]))
    with_company = {a["from_id"] for a in cc}
    assert sum(1 for c in jsonl(store, "contacts") if c["id"] not in with_company
               and int(c["id"]) < int(first["from_id"])) < 10
    served = [a for a in served if not (a["from_type"] == "companies" and a["to_type"] == "contacts"
                                        and a["from_id"] == first["to_id"] and a["to_id"] == first["from_id"])]
    rep, d = _first_run_serving(store, served, tmp_path, batch=40)
    assert {r[:5] for r in assoc_rows(d["raw"])} == {(a["from_type"], a["from_id"], a["to_type"], a["to_id"],
                                                     a["type_id"]) for a in served}
    meta = read_load(load_of(rep, "associations")["path"])[1]
    assert meta["derived"]["contacts->companies"]["refused"]
    n_contacts = len(jsonl(store, "contacts"))
    assert meta["batch_reads"]["contacts->companies"] >= math.ceil(n_contacts / 40)


def test_read_back_skips_only_ids_covered_for_that_pair():
    """The ids already covered are tracked per pair: a contact whose contacts->companies were read but whose
    contacts->tickets were not is read back for contacts->tickets."""
    from extractors.hubspot.assoc import read_back_ids
    configured = [("tickets", "contacts"), ("contacts", "tickets"), ("contacts", "companies")]
    assoc = [{"from_type": "tickets", "from_id": "t1", "to_type": "contacts", "to_id": "c1"},
             {"from_type": "tickets", "from_id": "t2", "to_type": "contacts", "to_id": "c2"}]
    covered = {("tickets", "contacts"): {"t1", "t2"}, ("contacts", "tickets"): {"c1"},
               ("contacts", "companies"): {"c1", "c2"}}
    assert read_back_ids(assoc, configured, covered) == {("contacts", "tickets"): ["c2"]}
    covered[("contacts", "tickets")].add("c2")
    assert read_back_ids(assoc, configured, covered) == {}
