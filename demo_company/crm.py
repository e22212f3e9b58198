"""HubSpot CRM v3 records, v4-style association rows and v1 email events, as they stood at `as_of`."""
from __future__ import annotations

import hashlib

from . import texts
from .util import US_PER_DAY, hs_ts, iso_seconds, rfc3339_us


def _record(obj_id: int, props: dict, created_us: int, updated_us: int) -> dict:
    return {"id": str(obj_id), "properties": props, "createdAt": hs_ts(created_us), "updatedAt": hs_ts(updated_us),
            "archived": False}


def contacts(world, as_of: int):
    for p in world.persons:
        if not p.in_hubspot:
            continue
        company = world.companies[p.company].name if p.company >= 0 else None
        versions = [(p.created_us, p.contact_ids[0], p.hs_email, True)]
        if p.dup_contact_created_us:
            versions.append((p.dup_contact_created_us, p.contact_ids[1], p.dup_email, False))
        for created, cid, email, main in versions:
            if created > as_of:
                continue
            modified = created
            stage = "lead"
            if main and p.first_confirm_us and p.first_confirm_us <= as_of:
                stage = "customer"
                modified = max(modified, p.first_confirm_us)
            phone = p.phone
            if main and p.phone_change_us and p.phone_change_us <= as_of:
                phone = p.new_phone
                modified = max(modified, p.phone_change_us)
            props = {"email": email, "firstname": p.first, "lastname": p.last, "phone": phone,
                     "lifecyclestage": stage, "company": company, "lastmodifieddate": hs_ts(modified),
                     "createdate": hs_ts(created), "hs_object_id": str(cid)}
            yield created, cid, _record(cid, props, created, modified)


def contact_rows(world, as_of):
    rows = sorted(contacts(world, as_of), key=lambda x: x[1])
    return [r for _, _, r in rows]


def companies(world, as_of: int):
    out = []
    for c in world.companies:
        if c.created_us > as_of:
            continue
        props = {"name": c.name, "domain": c.domain, "city": c.city, "country": texts.COUNTRIES[c.country][2],
                 "industry": "FOOD_BEVERAGES", "createdate": hs_ts(c.created_us),
                 "hs_lastmodifieddate": hs_ts(c.created_us), "hs_object_id": str(c.hs_id)}
        out.append((c.hs_id, _record(c.hs_id, props, c.created_us, c.created_us)))
    return [r for _, r in sorted(out, key=lambda x: x[0])]


def deal_stage(o, as_of):
    if o.confirm_us and o.confirm_us <= as_of:
        return "closedwon", o.confirm_us
    if o.cancel_us and o.cancel_us <= as_of:
        return "closedlost", o.cancel_us
    if o.sent_us and o.sent_us <= as_of:
        return "contractsent", o.sent_us
    return "appointmentscheduled", o.create_us


def deals(world, as_of: int):
    out = []
    for o in world.orders:
        if not o.deal_id or o.create_us > as_of:
            continue
        stage, modified = deal_stage(o, as_of)
        close = o.confirm_us or o.cancel_us or (o.create_us + 14 * US_PER_DAY)
        props = {"dealname": f"B2B order {o.name}", "amount": f"{o.untaxed / 100:.2f}", "dealstage": stage,
                 "pipeline": "default", "closedate": hs_ts(close), "hs_lastmodifieddate": hs_ts(modified),
                 "createdate": hs_ts(o.create_us), "hs_object_id": str(o.deal_id)}
        out.append((o.deal_id, _record(o.deal_id, props, o.create_us, modified)))
    return [r for _, r in sorted(out, key=lambda x: x[0])]


def tickets(world, as_of: int):
    out = []
    for t in world.tickets:
        if t.created_us > as_of:
            continue
        replied = t.reply_us <= as_of
        closed = bool(t.closed_us) and t.closed_us <= as_of
        modified = max(x for x in (t.created_us, t.reply_us if replied else 0,
                                   t.customer_reply_us if t.customer_reply_us and t.customer_reply_us <= as_of else 0,
                                   t.closed_us if closed else 0))
        props = {"subject": t.subject, "content": t.content, "hs_pipeline": "0", "hs_pipeline_stage": t.stage_at(as_of),
                 "hs_ticket_priority": t.priority, "hs_ticket_category": t.category, "createdate": hs_ts(t.created_us),
                 "closed_date": hs_ts(t.closed_us) if closed else None,
                 "first_agent_reply_date": hs_ts(t.reply_us) if replied else None,
                 "time_to_close": str((t.closed_us - t.created_us) // 1000) if closed else None,
                 "time_to_first_agent_reply": str((t.reply_us - t.created_us) // 1000) if replied else None,
                 "hs_lastmodifieddate": hs_ts(modified), "hs_object_id": str(t.hs_id)}
        rec = _record(t.hs_id, props, t.created_us, modified)
        if t.bad_created_at:          # dirt hubspot_bad_created_at_rate
            rec["createdAt"] = t.bad_created_at
        out.append((t.hs_id, rec))
    return [r for _, r in sorted(out, key=lambda x: x[0])]


def _sentiment(f) -> str:
    if f.survey == "NPS":
        return "POSITIVE" if f.score >= 9 else ("NEGATIVE" if f.score <= 6 else "NEUTRAL")
    if f.survey == "CSAT":
        return "POSITIVE" if f.score >= 4 else ("NEGATIVE" if f.score <= 2 else "NEUTRAL")
    return "POSITIVE" if f.score >= 5 else ("NEGATIVE" if f.score <= 3 else "NEUTRAL")


def feedback(world, as_of: int):
    out = []
    for f in world.feedback:
        if f.submitted_us > as_of:
            continue
        p = world.persons[f.pid]
        modified = f.modified_us if f.modified_us <= as_of else f.submitted_us
        survey_id, survey_name = texts.SURVEYS[f.survey]
        group = None
        if f.survey == "NPS" and f.quarantine not in ("score_out_of_range", "score_not_numeric"):
            group = "PROMOTER" if f.score >= 9 else ("PASSIVE" if f.score >= 7 else "DETRACTOR")
        # HubSpot fills the sentiment later for the records that were edited after submission
        sentiment = _sentiment(f) if (f.modified_us == f.submitted_us or f.modified_us <= as_of) else None
        props = {"hs_survey_type": f.survey, "hs_value": f.raw_value, "hs_content": f.comment,
                 "hs_submission_timestamp": f.raw_timestamp or hs_ts(f.submitted_us),
                 "hs_contact_id": str(p.contact_ids[f.contact_idx]), "hs_survey_channel": f.channel,
                 "hs_survey_id": survey_id, "hs_survey_name": survey_name, "hs_response_group": group,
                 "hs_sentiment": sentiment, "hs_lastmodifieddate": hs_ts(modified), "hs_createdate": hs_ts(f.submitted_us),
                 "hs_object_id": str(f.hs_id)}
        out.append((f.hs_id, _record(f.hs_id, props, f.submitted_us, modified)))
    return [r for _, r in sorted(out, key=lambda x: x[0])]


ASSOC = {("tickets", "contacts"): 16, ("contacts", "tickets"): 15, ("deals", "contacts"): 3, ("contacts", "deals"): 4,
         ("contacts", "companies"): 279, ("companies", "contacts"): 280, ("deals", "companies"): 5,
         ("companies", "deals"): 6,
         # HubSpot-defined "Feedback submission to contact" / "Contact to feedback submission" (v4 type ids)
         ("feedback_submissions", "contacts"): 98, ("contacts", "feedback_submissions"): 97}


def associations(world, as_of: int):
    rows = []

    def both(a_type, a_id, b_type, b_id):
        rows.append({"from_type": a_type, "from_id": str(a_id), "to_type": b_type, "to_id": str(b_id),
                     "type_id": ASSOC[(a_type, b_type)], "label": None})
        rows.append({"from_type": b_type, "from_id": str(b_id), "to_type": a_type, "to_id": str(a_id),
                     "type_id": ASSOC[(b_type, a_type)], "label": None})

    for p in world.persons:
        if p.in_hubspot and p.company >= 0 and p.created_us <= as_of:
            both("contacts", p.contact_ids[0], "companies", world.companies[p.company].hs_id)
    for o in world.orders:
        if o.deal_id and o.create_us <= as_of:
            p = world.persons[o.pid]
            if p.in_hubspot and p.created_us <= as_of:
                both("deals", o.deal_id, "contacts", p.contact_ids[0])
            if p.company >= 0:
                both("deals", o.deal_id, "companies", world.companies[p.company].hs_id)
    for t in world.tickets:
        if t.created_us <= as_of:
            both("tickets", t.hs_id, "contacts", world.persons[t.pid].contact_ids[0])
    # a survey submission is associated with the contact who answered (the same id as its hs_contact_id)
    for f in world.feedback:
        if f.submitted_us <= as_of and world.persons[f.pid].in_hubspot:
            both("feedback_submissions", f.hs_id, "contacts", world.persons[f.pid].contact_ids[f.contact_idx])
    rows.sort(key=lambda r: (r["from_type"], int(r["from_id"]), r["to_type"], int(r["to_id"])))
    return rows


def email_events(world, as_of: int):
    as_of_ms = as_of // 1000
    for created, eid, typ, base, extra in world.email_events:
        if created > as_of_ms:
            break
        ev = {"id": eid, "created": created, "type": typ, **base}
        ev.update(extra)
        yield ev


# ------------------------------------------------------------------ review sites

def consumer_id(seed: int, pid: int, rid: str) -> str:
    key = f"{seed}:person:{pid}" if pid >= 0 else f"{seed}:anon:{rid}"
    return hashlib.sha256(key.encode()).hexdigest()[:24]


STAR_ENUM = {1: "ONE", 2: "TWO", 3: "THREE", 4: "FOUR", 5: "FIVE"}


def google_reviews(world, as_of: int):
    acct = world.ids["google"]["account_id"]
    locs = world.ids["google"]["location_ids"]
    out = []
    for r in world.reviews:
        if r.source != "google" or r.created_us > as_of or r.deleted_at(as_of):
            continue
        loc = f"accounts/{acct}/locations/{locs[r.location]}"
        reviewer = ({"displayName": r.display_name, "isAnonymous": False,
                     "profilePhotoUrl": f"https://lh3.googleusercontent.com/a/{r.rid[:10]}"}
                    if not r.anonymous else {"isAnonymous": True})
        reply = r.reply_at(as_of)
        # updateTime: the latest change of the review or of its reply (an edit or a reply moves it)
        updated = max(r.created_us, r.edited_us_at(as_of), reply[2] if reply else 0)
        rev = {"name": f"{loc}/reviews/{r.rid}", "reviewId": r.rid, "reviewer": reviewer,
               "starRating": "STAR_RATING_UNSPECIFIED" if r.quarantine == "rating_invalid"
               else STAR_ENUM[r.stars_at(as_of)],
               "createTime": rfc3339_us(r.created_us), "updateTime": rfc3339_us(updated)}
        if r.comment is not None:
            rev["comment"] = r.comment
        if reply:
            rev["reviewReply"] = {"comment": reply[0], "updateTime": rfc3339_us(reply[2])}
        out.append({"location": loc, "review": rev})
    return out


def trustpilot_reviews(world, as_of: int):
    bu = world.ids["trustpilot"]["business_unit_ids"][0]
    out = []
    for r in world.reviews:
        if r.source != "trustpilot" or r.created_us > as_of or r.deleted_at(as_of):
            continue
        p = world.persons[r.pid] if r.pid >= 0 else None
        edited = r.edited_us_at(as_of)
        stars = r.stars_at(as_of)
        reply = r.reply_at(as_of)
        rev = {}
        if r.quarantine != "missing_id":
            rev["links"] = [{"href": f"https://api.trustpilot.com/v1/reviews/{r.rid}", "method": "GET", "rel": "reviews"}]
            rev["id"] = r.rid
        else:
            rev["links"] = []
        rev.update({
            "consumer": {"id": consumer_id(world.seed, r.pid, r.rid), "displayName": r.display_name,
                         "displayLocation": p.city if p else "Singapore", "numberOfReviews": 1},
            "businessUnit": {"id": bu, "identifyingName": texts.DOMAIN, "displayName": texts.COMPANY_NAME},
            "stars": stars, "title": texts.TP_TITLES[stars], "text": r.comment or "",
            "language": r.language, "createdAt": iso_seconds(r.created_us, r.offset_min),
            "updatedAt": iso_seconds(edited) if edited else None,
            # dirt trustpilot_bad_experienced_at_rate: a value that is not a timestamp
            "experiencedAt": r.bad_experienced_at or iso_seconds((r.created_us - 2 * US_PER_DAY) // (US_PER_DAY) * US_PER_DAY),
            "referenceId": r.order_name,
        })
        if r.referral_email:
            rev["referralEmail"] = r.referral_email
        rev.update({"isVerified": r.order_name is not None, "source": "InvitationApi" if r.order_name else "Organic",
                    "status": "active", "numberOfLikes": 0,
                    "companyReply": _company_reply(reply)})
        out.append({"business_unit_id": bu, "review": rev})
    return out


def _company_reply(reply):
    """Trustpilot companyReply: createdAt stays the first reply's time, updatedAt appears once it is rewritten."""
    if reply is None:
        return None
    text, first, last = reply
    out = {"text": text, "createdAt": iso_seconds(first)}
    if last != first:
        out["updatedAt"] = iso_seconds(last)
    return out
