"""更正地点: 不对，是5号楼 (or 补充一下：是5号楼) right after a report was submitted — an emergency is
submitted as soon as its place and phone are known, without a summary to correct first — moves
the report to the place said: its place and building are changed, and when that building is
another grid's, the report is given to that grid's worker (the first owner told 已改派他人, 不用上门),
else its owner (or the staff group) is told the right place."""

from __future__ import annotations

import re
import unicodedata
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from bot import dispatch, notices, outbox, roster
from bot.flows import parsers
from bot.flows.base import Context
from bot.flows.config import flow_config
from bot.intents.normalize import simplified
from bot.privacy import hash_openid
from bot.tickets import ACTIVE, add_event
from storage.models import Ticket

_WRONG = r"(?:不对|不是|错了|说错了|搞错了|写错了|打错了|弄错了|(?:地址|地点|位置|楼号)(?:错了|不对|说错了|写错了))"
# 不对，是5号楼 / 地址错了 应该是5号楼2单元 / 补充一下：是5号楼 / 不是3号楼，是5号楼
_CORRECTING = re.compile(
    rf"^(?:(?:我)?(?:想|要)?补充(?:一下)?[\s：:，,]*)?(?:{_WRONG}[\s，,。！!]*)?"
    r"(?:不是[^，,。\s]{1,12}[\s，,。]*)?(?:应该|而)?(?:是|在)\s*(?P<place>[^，,。！!]+?)[\s。！!]*$"
)
_ADDING = re.compile(r"^(?:我)?(?:想|要)?补充")


def _said_place(text: str) -> dict[str, Any] | None:
    """The place a correction says (5号楼2单元), when the message is one: words saying the place was
    wrong, or 补充, then 是 and a building address and nothing more."""
    said = simplified(unicodedata.normalize("NFKC", text)).strip()  # 不對，是5號樓 and full-width ５号楼 too
    found = _CORRECTING.match(said)
    if found is None:
        return None
    lead = said[:found.start("place")]
    if not re.search(_WRONG, lead) and not _ADDING.match(lead):
        return None  # 是5号楼 alone says nothing of a correction
    return parsers.only_address(found["place"])


async def corrected_place(ctx: Context, text: str) -> str | None:
    """The resident's newest open report, submitted within [complaint] correct_place_minutes, moved to
    the place a correction names (不对，是5号楼): re-routed to that building's grid worker when it is
    another's, else its owner (the staff group, when nobody has it) told; the reply says which.
    None when the message is no correction or no such report is open."""
    place = _said_place(text)
    if place is None:
        return None
    since = ctx.now - timedelta(minutes=float(flow_config()["complaint"]["correct_place_minutes"]))
    ticket = await ctx.session.scalar(
        select(Ticket).where(Ticket.resident == ctx.openid, Ticket.kind == "complaint", Ticket.status.in_(ACTIVE),
                             Ticket.created_at >= since).order_by(Ticket.id.desc()).limit(1))
    if ticket is None:
        return None
    fields = dict(ticket.fields or {})
    before, shown = str(fields.get("place") or ""), parsers.place_text(place)
    if str(ticket.building or "") == place["building"] and before == shown:
        return ctx.text("complaint.corrected.same", number=ticket.number, place=shown)
    fields.update(place=shown, location=None,
                  **{k: place.get(k) for k in ("building", "unit", "room")}, landmark=None)
    ticket.fields = fields
    ticket.building = place["building"]
    ticket.building_key = roster.normalize_building(place["building"]) or None
    actor = f"resident:{hash_openid(ctx.openid)}"
    note = ctx.text("complaint.corrected.note", before=notices.safe_text(before), place=notices.safe_text(shown))
    await add_event(ctx.session, ticket, "resident_wrote", actor, ctx.now, note=note)
    ctx.tickets.append(ticket)
    job = await ctx.session.get(Ticket, ticket.parent_id) if ticket.parent_id is not None else None
    # linked to neighbours' job at the place first said: no longer the same problem, its own job now
    unlinked = job is not None and str(job.building or "") != place["building"] and (
        await dispatch.unlink_moved(ctx.svc, ctx.session, ticket, actor))
    route = await dispatch.route(ctx.svc, ctx.session, ticket)
    # a job neighbours' reports are linked to stays where they reported it: its owner is told
    movable = ticket.parent_id is None and ticket.status in ("open", "dispatched", "accepted", "reopened") and not (
        await dispatch.children_of(ctx.session, ticket))
    if movable and route.owner is not None and (unlinked or route.owner.id != ticket.assignee):
        await dispatch.apply_action(ctx.svc, ctx.session, ticket, "assign", actor, note=note,
                                    assignee=route.owner.id)
        ticket.grid = route.grid
        person = await roster.person(ctx.session, route.owner.id)
        role = notices.role_label(ctx.svc, person.roles if person else [])
        return ctx.text("complaint.corrected.moved", number=ticket.number, place=shown, role=role,
                        name=route.owner.name)
    job = job if ticket.parent_id is not None and job is not None else ticket  # a shared job: told by its number
    owner = await roster.person(ctx.session, job.assignee) if job.status != "escalated" else None
    if owner is not None and owner.active:
        await outbox.push_worker(ctx.session, owner.id, ctx.text("complaint.corrected.worker", number=job.number,
                                                                 note=note), now=ctx.now, ticket_id=job.id,
                                 urgent=job.urgency == "urgent", not_before=dispatch.held_until(ctx.svc, job))
        return ctx.text("complaint.corrected.told", number=ticket.number, place=shown, name=owner.name)
    await outbox.push_group(ctx.session, notices.staff_addendum_markdown(ctx.svc, job, note), now=ctx.now,
                            ticket_id=job.id)
    return ctx.text("complaint.corrected.told_staff", number=ticket.number, place=shown)
