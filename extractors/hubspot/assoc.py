"""The associations pass: which configured pairs are read, which are derived from their reverse pair, and the
read-back of the other side of new links (README "Associations")."""
from __future__ import annotations

from typing import Any, Dict, Iterable, List, Optional, Set, Tuple

from .helpers import read_associations
from .settings import HubspotSettings

Pair = Tuple[str, str]
TypeKey = Tuple[Optional[int], Optional[str], Optional[str]]    # (type_id, label, category) of one row


def _name(pair: Pair) -> str:
    return f"{pair[0]}->{pair[1]}"


def plan_derived(pairs: List[Pair], owed: Dict[str, List[str]], listed_outside: Dict[str, List[str]]
                 ) -> Dict[Pair, Pair]:
    """{read pair S->D: derived pair D->S} for every configured pair whose reverse is configured too and whose two
    objects were both listed over their whole history in this run (``listed_outside`` has an entry for exactly
    those objects: the ids the listing saw but did not land). Only then is every record of either object known, so
    reading S->D for every listed S record yields every D->S association. S is the side with fewer ids."""
    plan: Dict[Pair, Pair] = {}
    done: Set[Pair] = set()
    for f, t in pairs:
        if (f, t) in done or (t, f) not in pairs or f not in listed_outside or t not in listed_outside:
            continue
        done.update({(f, t), (t, f)})
        size = {o: len(owed.get(o, ())) + len(listed_outside[o]) for o in (f, t)}
        s, d = (f, t) if size[f] <= size[t] else (t, f)
        plan[(s, d)] = (d, s)
    return plan


def _key(a: Dict[str, Any]) -> TypeKey:
    return a["type_id"], a["label"], a["category"]


def learn_reverse_types(forward: List[Dict[str, Any]], reverse: List[Dict[str, Any]]) -> Dict[TypeKey, TypeKey]:
    """What each (type id, label, category) of S->D is called in D->S, learnt from the links read both ways
    (HubSpot's type ids differ per direction, e.g. contact->company 279, company->contact 280; custom labels have
    their own ids): only from links carrying one type each way; a type seen mapped two ways is left out."""
    fwd: Dict[Tuple[str, str], List[TypeKey]] = {}
    for a in forward:
        fwd.setdefault((a["from_id"], a["to_id"]), []).append(_key(a))
    rev: Dict[Tuple[str, str], List[TypeKey]] = {}
    for a in reverse:
        rev.setdefault((a["to_id"], a["from_id"]), []).append(_key(a))
    mapping: Dict[TypeKey, TypeKey] = {}
    conflicts: Set[TypeKey] = set()
    for link, keys in rev.items():
        there = fwd.get(link)
        if there and len(there) == 1 and len(keys) == 1:
            if mapping.setdefault(there[0], keys[0]) != keys[0]:
                conflicts.add(there[0])
    for k in conflicts:
        mapping.pop(k, None)
    return mapping


def derive(forward: List[Dict[str, Any]], mapping: Dict[TypeKey, TypeKey], to_ids: Set[str]
           ) -> Tuple[List[Dict[str, Any]], Set[str]]:
    """The D->S rows of the D ids ``to_ids`` from the S->D rows, and the D ids that cannot be derived (a type
    not in ``mapping``): those are read."""
    rows: List[Dict[str, Any]] = []
    unknown: Set[str] = set()
    for a in forward:
        if a["to_id"] not in to_ids:
            continue
        k = mapping.get(_key(a))
        if k is None:
            unknown.add(a["to_id"])
            continue
        rows.append({"from_type": a["to_type"], "from_id": a["to_id"], "to_type": a["from_type"],
                     "to_id": a["from_id"], "type_id": k[0], "label": k[1], "category": k[2]})
    return [r for r in rows if r["from_id"] not in unknown], unknown


def _rowset(rows: Iterable[Dict[str, Any]]) -> Set[Tuple[Any, ...]]:
    return {(a["from_type"], a["from_id"], a["to_type"], a["to_id"]) + _key(a) for a in rows}


def pick_sample(ids: List[str], linked: Set[str], size: int) -> List[str]:
    """≤ ``size`` ids, in order: three quarters (or more) of them ids the other side shows links to (what the type
    ids are learnt from), a quarter ids it shows none to (HubSpot must show them none either)."""
    unlinked = [i for i in ids if i not in linked][:size // 4]
    return [i for i in ids if i in linked][:size - len(unlinked)] + unlinked


def read_pairs(client, settings: HubspotSettings, pairs: List[Pair], owed: Dict[str, List[str]],
               listed_outside: Dict[str, List[str]]
               ) -> Tuple[List[Dict[str, Any]], Dict[Pair, Set[str]], Dict[str, int], Dict[str, Any]]:
    """Every association of the owed ids for ``pairs``: (rows, ids covered per pair, batch requests per pair,
    what was derived). A derived pair D->S reads one batch of its own (the sample: ≤ 1000 owed D ids, see
    :func:`pick_sample`) to learn D->S's type ids and labels and to check that the rows derived for the sample
    equal those read; if they do not, every owed D id is read as before. D ids with a type the sample did not show
    are read too."""
    plan = plan_derived(pairs, owed, listed_outside)
    derived_pairs = set(plan.values())
    requests: Dict[str, int] = {}
    assoc: List[Dict[str, Any]] = []
    covered: Dict[Pair, Set[str]] = {}
    derived_meta: Dict[str, Any] = {}
    for pair in pairs:
        if pair in derived_pairs:
            continue
        f, t = pair
        ids = list(owed[f])
        if pair not in plan:
            assoc.extend(read_associations(client, settings, f, t, ids, requests))
            covered[pair] = set(ids)
            continue
        # S->D for every S record listed: also those the listing saw outside the window (a D->S read of an owed
        # D id returns its links to them too)
        mine = set(ids)
        extra = [i for i in listed_outside[f] if i not in mine]
        forward = read_associations(client, settings, f, t, ids + extra, requests)
        d_pair = plan[pair]
        d_owed = list(owed.get(t, ()))
        d_set = set(d_owed)
        # land S->D for the owed S ids, and for an outside S id linked to an owed D id (the read-back would read it)
        linked = {a["from_id"] for a in forward if a["from_id"] not in mine and a["to_id"] in d_set}
        assoc.extend(a for a in forward if a["from_id"] in mine or a["from_id"] in linked)
        covered[pair] = mine | linked
        sample = pick_sample(d_owed, {a["to_id"] for a in forward}, settings.association_batch_size)
        got = read_associations(client, settings, t, f, sample, requests)
        assoc.extend(got)
        mapping = learn_reverse_types(forward, got)
        check, unknown = derive(forward, mapping, set(sample))
        info: Dict[str, Any] = {"from": _name(pair), "sample_ids": len(sample)}
        in_sample = set(sample)
        rest = [i for i in d_owed if i not in in_sample]
        if _rowset(check) != _rowset(a for a in got if a["from_id"] not in unknown):
            info["refused"] = "rows derived for the sample differ from those read"
            assoc.extend(read_associations(client, settings, t, f, rest, requests))
        else:
            rows, unknown = derive(forward, mapping, set(rest))
            assoc.extend(rows)
            fallback = [i for i in rest if i in unknown]
            assoc.extend(read_associations(client, settings, t, f, fallback, requests))
            info.update(derived_ids=len(rest) - len(fallback), derived_rows=len(rows), read_ids=len(fallback))
        covered[d_pair] = d_set
        derived_meta[_name(d_pair)] = info
    return assoc, covered, requests, derived_meta


def read_back_ids(assoc: List[Dict[str, Any]], configured: List[Pair], covered: Dict[Pair, Set[str]]
                  ) -> Dict[Pair, List[str]]:
    """For every association X->Y just read whose reverse pair Y->X is configured: the Y ids whose Y->X
    associations must be read too (an association is bidirectional in HubSpot, but adding one does not change the
    other record's last-modified date, so that record is not searched again). Ids whose Y->X associations this load
    already holds (``covered[(Y, X)]``: read or derived for that pair) are left out."""
    wanted = set(configured)
    out: Dict[Pair, Dict[str, None]] = {}
    for a in assoc:
        pair = (a["to_type"], a["from_type"])
        if pair in wanted and a["to_id"] is not None:
            out.setdefault(pair, {})[a["to_id"]] = None
    result = {}
    for pair, ids in out.items():
        done = covered.get(pair, set())
        left = [i for i in ids if i not in done]
        if left:
            result[pair] = left
    return result
