"""In-memory view of a generated demo directory (docs/contracts.md section 3), for the demo API server.

Everything is read once at start-up; the server never writes to the directory.
"""
from __future__ import annotations

import bisect
import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

try:  # orjson is in the project venv; the stdlib json is the fallback
    import orjson

    def _loads(data: bytes | str) -> Any:
        return orjson.loads(data)
except ImportError:  # pragma: no cover
    orjson = None

    def _loads(data: bytes | str) -> Any:
        return json.loads(data)


HUBSPOT_OBJECTS = ("contacts", "companies", "deals", "tickets", "feedback_submissions")

# path aliases HubSpot accepts for the same object type (plural, singular, object type id)
OBJECT_ALIASES = {
    "contacts": "contacts", "contact": "contacts", "0-1": "contacts",
    "companies": "companies", "company": "companies", "0-2": "companies",
    "deals": "deals", "deal": "deals", "0-3": "deals",
    "tickets": "tickets", "ticket": "tickets", "0-5": "tickets",
    "feedback_submissions": "feedback_submissions", "feedback_submission": "feedback_submissions",
    "0-19": "feedback_submissions",
}
SINGULAR = {
    "contacts": "contact", "companies": "company", "deals": "deal", "tickets": "ticket",
    "feedback_submissions": "feedback_submission",
}

# properties returned when the request names none (source-formats.md 2.4; contacts in the recorded order)
DEFAULT_PROPERTIES = {
    "contacts": ["firstname", "lastname", "email", "createdate", "lastmodifieddate", "hs_object_id"],
    "companies": ["name", "domain", "createdate", "hs_lastmodifieddate", "hs_object_id"],
    "deals": ["dealname", "amount", "closedate", "pipeline", "dealstage", "createdate",
              "hs_lastmodifieddate", "hs_object_id"],
    "tickets": ["content", "hs_pipeline", "hs_pipeline_stage", "hs_ticket_category", "hs_ticket_priority",
                "subject", "createdate", "hs_lastmodifieddate", "hs_object_id"],
    "feedback_submissions": ["hs_createdate", "hs_lastmodifieddate", "hs_object_id"],
}
# always returned in addition to the requested properties (as the recorded samples show)
ALWAYS_PROPERTIES = {
    "contacts": ["createdate", "lastmodifieddate", "hs_object_id"],
    "companies": ["createdate", "hs_lastmodifieddate", "hs_object_id"],
    "deals": ["createdate", "hs_lastmodifieddate", "hs_object_id"],
    "tickets": ["createdate", "hs_lastmodifieddate", "hs_object_id"],
    "feedback_submissions": ["hs_createdate", "hs_lastmodifieddate", "hs_object_id"],
}
# properties on each object's schema even when no demo record carries them (source-formats.md 2.4/2.5)
SCHEMA_EXTRA = {
    "contacts": ["email", "firstname", "lastname", "phone", "lifecyclestage", "hs_object_id", "createdate",
                 "lastmodifieddate", "company", "city", "country", "hs_lastmodifieddate"],
    "companies": ["name", "domain", "createdate", "hs_lastmodifieddate", "hs_object_id", "industry",
                  "country", "city"],
    "deals": ["dealname", "amount", "dealstage", "pipeline", "closedate", "createdate",
              "hs_lastmodifieddate", "hs_object_id", "hs_is_closed_won"],
    "tickets": ["subject", "content", "hs_pipeline", "hs_pipeline_stage", "hs_ticket_priority",
                "hs_ticket_category", "createdate", "hs_lastmodifieddate", "closed_date", "time_to_close",
                "first_agent_reply_date", "time_to_first_agent_reply", "hs_object_id", "source_type"],
    "feedback_submissions": ["hs_survey_type", "hs_survey_id", "hs_survey_name", "hs_survey_channel", "hs_value",
                             "hs_response_group", "hs_sentiment", "hs_content", "hs_submission_name",
                             "hs_submission_timestamp", "hs_contact_id", "hs_contact_email_rollup",
                             "hs_engagement_id", "hs_ticket_id", "hs_knowledge_article_id", "hs_form_guid",
                             "hs_visitor_id", "hs_createdate", "hs_lastmodifieddate", "hs_object_id"],
}
KNOWN_DATE_PROPERTIES = {
    "createdate", "lastmodifieddate", "hs_lastmodifieddate", "hs_createdate", "closedate", "closed_date",
    "first_agent_reply_date", "hs_submission_timestamp", "notes_last_updated", "hs_lastactivitydate",
}
_ISO_RE = re.compile(r"^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$")


def parse_instant(value: Any) -> datetime | None:
    """ISO-8601 / RFC 3339 text → aware UTC datetime (None when it does not parse, e.g. 2025-02-30T25:61)."""
    if not isinstance(value, str) or not _ISO_RE.match(value):
        return None
    text = value
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    # Python < 3.11 cannot read 9 fractional digits; trim to microseconds
    m = re.match(r"^(.*T\d{2}:\d{2}:\d{2})\.(\d+)(.*)$", text)
    if m:
        text = f"{m.group(1)}.{m.group(2)[:6].ljust(6, '0')}{m.group(3)}"
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.astimezone(timezone.utc)


def iso_to_ms(value: Any) -> int | None:
    dt = parse_instant(value)
    return None if dt is None else int(round(dt.timestamp() * 1000))


def id_sort_key(record_id: Any) -> tuple:
    """Numeric ids ascending, then other strings, then missing ids (bad rows stay servable)."""
    if isinstance(record_id, int):
        return (0, record_id, "")
    if isinstance(record_id, str):
        if record_id.isdigit():
            return (0, int(record_id), "")
        return (1, 0, record_id)
    return (2, 0, "")


def read_jsonl(path: Path) -> list[Any]:
    if not path.exists():
        return []
    rows = []
    with path.open("rb") as fh:
        for line in fh:
            line = line.strip()
            if line:
                rows.append(_loads(line))
    return rows


@dataclass
class HubSpotObject:
    name: str
    records: list[dict]                      # sorted by id ascending
    by_id: dict[str, dict]
    schema: set[str]                         # property names the object type knows
    date_props: set[str]
    _ms_cache: dict = field(default_factory=dict)

    def prop_ms(self, record: dict, prop: str) -> int | None:
        key = (id(record), prop)
        if key not in self._ms_cache:
            self._ms_cache[key] = iso_to_ms((record.get("properties") or {}).get(prop))
        return self._ms_cache[key]


@dataclass
class Store:
    data_dir: Path
    manifest: dict
    hubspot: dict[str, HubSpotObject]
    # (from_type, to_type) -> from_id -> list of (to_id, type_id, label), deduplicated, to_id ascending
    associations: dict[tuple[str, str], dict[str, list[tuple[str, int, Any]]]]
    email_events: list[dict]                 # sorted by created (stable)
    email_created: list[int]
    google: dict[str, list[dict]]            # "accounts/A/locations/L" -> reviews
    trustpilot: dict[str, list[dict]]        # business unit id -> private reviews
    trustpilot_units: dict[str, dict]        # business unit id -> {id, identifyingName, displayName}

    def email_range(self, start_ms: int | None, end_ms: int | None) -> tuple[int, int]:
        """Index range of events with start <= created <= end (HubSpot treats both bounds as inclusive)."""
        lo = 0 if start_ms is None else bisect.bisect_left(self.email_created, start_ms)
        hi = len(self.email_events) if end_ms is None else bisect.bisect_right(self.email_created, end_ms)
        return lo, max(lo, hi)


# HubSpot-defined association type ids for the reverse direction (source-formats.md section 6, item 11)
REVERSE_TYPE_IDS = {
    ("tickets", "contacts", 16): 15, ("contacts", "tickets", 15): 16,
    ("deals", "contacts", 3): 4, ("contacts", "deals", 4): 3,
    ("contacts", "companies", 1): 2, ("companies", "contacts", 2): 1,
    ("contacts", "companies", 279): 280, ("companies", "contacts", 280): 279,
    ("tickets", "companies", 26): 25, ("companies", "tickets", 25): 26,
    ("tickets", "companies", 339): 340, ("companies", "tickets", 340): 339,
    ("deals", "companies", 5): 6, ("companies", "deals", 6): 5,
    ("deals", "companies", 341): 342, ("companies", "deals", 342): 341,
    ("tickets", "deals", 28): 27, ("deals", "tickets", 27): 28,
    ("feedback_submissions", "contacts", 98): 97, ("contacts", "feedback_submissions", 97): 98,
}


def _normalise_object(name: Any) -> str | None:
    return OBJECT_ALIASES.get(str(name).lower()) if name is not None else None


def _load_hubspot_object(path: Path, name: str) -> HubSpotObject:
    records = read_jsonl(path)
    records.sort(key=lambda r: id_sort_key(r.get("id") if isinstance(r, dict) else None))
    by_id = {}
    schema = set(SCHEMA_EXTRA.get(name, ())) | set(DEFAULT_PROPERTIES[name]) | set(ALWAYS_PROPERTIES[name])
    date_props = set(KNOWN_DATE_PROPERTIES)
    seen_nondate: set[str] = set()
    for rec in records:
        if not isinstance(rec, dict):
            continue
        if rec.get("id") is not None:
            by_id[str(rec["id"])] = rec
        props = rec.get("properties") or {}
        for key, value in props.items():
            schema.add(key)
            if value is None or key in seen_nondate or key in date_props:
                continue
            if isinstance(value, str) and _ISO_RE.match(value) and "T" in value:
                date_props.add(key)
            else:
                seen_nondate.add(key)
    return HubSpotObject(name=name, records=[r for r in records if isinstance(r, dict)], by_id=by_id,
                         schema=schema, date_props=date_props)


def load_store(data_dir: str | Path) -> Store:
    data_dir = Path(data_dir)
    manifest_path = data_dir / "manifest.json"
    if not manifest_path.exists():
        raise FileNotFoundError(f"{manifest_path} not found: is {data_dir} a generated demo directory?")
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    api = data_dir / "api"

    hubspot = {name: _load_hubspot_object(api / "hubspot" / f"{name}.jsonl", name) for name in HUBSPOT_OBJECTS}

    assoc: dict[tuple[str, str], dict[str, dict[tuple[str, int], Any]]] = {}

    def add(f_type, f_id, t_type, t_id, type_id, label):
        bucket = assoc.setdefault((f_type, t_type), {}).setdefault(f_id, {})
        bucket.setdefault((t_id, type_id), label)

    explicit = read_jsonl(api / "hubspot" / "associations.jsonl")
    explicit_pairs = set()
    for row in explicit:
        f_type, t_type = _normalise_object(row.get("from_type")), _normalise_object(row.get("to_type"))
        if not f_type or not t_type or row.get("from_id") is None or row.get("to_id") is None:
            continue
        f_id, t_id = str(row["from_id"]), str(row["to_id"])
        type_id = int(row.get("type_id") or 0)
        add(f_type, f_id, t_type, t_id, type_id, row.get("label"))
        explicit_pairs.add((f_type, t_type))
    # associations are bidirectional in HubSpot: derive the reverse direction unless the file carries it
    for row in explicit:
        f_type, t_type = _normalise_object(row.get("from_type")), _normalise_object(row.get("to_type"))
        if not f_type or not t_type or (t_type, f_type) in explicit_pairs:
            continue
        if row.get("from_id") is None or row.get("to_id") is None:
            continue
        type_id = int(row.get("type_id") or 0)
        rev = REVERSE_TYPE_IDS.get((f_type, t_type, type_id), type_id)
        add(t_type, str(row["to_id"]), f_type, str(row["from_id"]), rev, row.get("label"))
    associations = {
        pair: {f_id: sorted(((t, ty, lab) for (t, ty), lab in items.items()), key=lambda x: (id_sort_key(x[0]), x[1]))
               for f_id, items in by_from.items()}
        for pair, by_from in assoc.items()
    }

    events = [e for e in read_jsonl(api / "hubspot" / "email_events.jsonl") if isinstance(e, dict)]
    events.sort(key=lambda e: e.get("created") if isinstance(e.get("created"), int) else 0)
    created = [e.get("created") if isinstance(e.get("created"), int) else 0 for e in events]

    google: dict[str, list[dict]] = {}
    for row in read_jsonl(api / "google_reviews" / "reviews.jsonl"):
        if isinstance(row, dict) and isinstance(row.get("review"), dict):
            google.setdefault(str(row.get("location")), []).append(row["review"])

    trustpilot: dict[str, list[dict]] = {}
    units: dict[str, dict] = {}
    for row in read_jsonl(api / "trustpilot" / "reviews.jsonl"):
        if not isinstance(row, dict) or not isinstance(row.get("review"), dict):
            continue
        bu = str(row.get("business_unit_id"))
        trustpilot.setdefault(bu, []).append(row["review"])
        info = row["review"].get("businessUnit")
        if isinstance(info, dict) and bu not in units:
            units[bu] = info
    for bu in (manifest.get("trustpilot") or {}).get("business_unit_ids") or []:
        trustpilot.setdefault(str(bu), [])
    return Store(data_dir=data_dir, manifest=manifest, hubspot=hubspot, associations=associations,
                 email_events=events, email_created=created, google=google, trustpilot=trustpilot,
                 trustpilot_units=units)
