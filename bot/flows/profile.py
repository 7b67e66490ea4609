"""A resident's own data: 我的信息 shows what is kept; 删除我的信息 erases it after a confirmation.

Erasing removes the personal data (phone, name, address, dialog state, message content, the
volunteer record, names and addresses on bookings, pending reminders and activity signups) and
keeps the tickets for the statistics, anonymised: no resident, no personal fields.

What is still open is withdrawn first, as the confirmation says: no one can do a job for, or call
back, a resident who is no longer known. Open tickets are cancelled (their owners told, limits
dropped) and upcoming bookings cancelled (the waitlist moves up). A report neighbours' reports
were linked to stays open for them, anonymised but keeping where the problem is: several
households reported that place, so it is a public one, not the resident's.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot import bookings, dispatch, outages, outbox
from bot.activities import signed_activities
from bot.clock import local
from bot.flows.base import Context, Flow, Step
from bot.flows.commands import normalize
from bot.flows.config import words
from bot.flows.registry import register
from bot.intents.classifier import get_classifier
from bot.privacy import hash_openid, mask_phone
from bot.services import Services
from bot.tickets import ACTIVE, TRANSITIONS, add_event
from bot.volunteers import erase_volunteer, volunteer_of
from storage.models import (
    ActivitySignup, AuditLog, Booking, Message, OutboxItem, Reminder, Resident, Ticket, TicketEvent,
)

# Ticket fields that name or locate a person; everything else (service, category, building …) stays.
PERSONAL_FIELDS = (
    "phone", "name", "for_name", "for_whom", "age", "address", "place", "unit", "room", "landmark",
    "location", "photos", "contact", "notes", "skills", "availability",
)
# Where a shared problem is (kept on a report neighbours' reports were linked to): not a home.
PLACE_FIELDS = ("place", "unit", "landmark", "location")
WITHDRAWABLE = TRANSITIONS["cancel"].sources
# What a resident may be asking for beside a new number (楼道灯坏了 电话改成139…): served as that.
SERVICE_INTENTS = ("complaint", "mediation", "elderly_service", "volunteer_signup")


async def my_info(svc: Services, session: AsyncSession, openid: str) -> str:
    """What is kept about the resident, as they read it (the phone masked)."""
    t = svc.texts
    resident = await session.scalar(select(Resident).where(Resident.openid == openid))
    lines = [t.get("profile.info_head")]
    phone = resident.phone if resident is not None else None
    lines.append(t.get("profile.phone", phone=mask_phone(phone)) if phone else t.get("profile.no_phone"))
    if resident is not None and resident.building:
        place = f"{resident.building}栋" + (f"{resident.unit}单元" if resident.unit else "") + (resident.room or "")
        lines.append(t.get("profile.address", address=place))
    else:
        lines.append(t.get("profile.no_address"))
    rows = await session.execute(
        select(Ticket).where(Ticket.resident == openid, Ticket.status.in_(ACTIVE)).order_by(Ticket.id)
    )
    open_tickets = list(rows.scalars())
    if open_tickets:
        lines.append(t.get("profile.tickets_head", count=len(open_tickets)))
        lines.extend(
            t.get("profile.ticket", number=x.number, kind=t.get(f"flow.titles.{x.kind}"),
                  status=t.get(f"status.labels.{x.status}"))
            for x in open_tickets[:5]
        )
    else:
        lines.append(t.get("profile.no_tickets"))
    for booking in await bookings.upcoming(svc, session, openid):
        lines.append(t.get(
            "profile.booking", service=booking.service, when=bookings.describe(svc, booking.start_at),
            status=t.get(f"profile.booking_status.{booking.status}"),
        ))
    for activity in await signed_activities(session, openid, svc.clock.now()):
        lines.append(t.get("profile.activity", title=activity.title,
                           when=f"{local(activity.start_at, svc.tz):%m月%d日 %H:%M}"))
    volunteer = await volunteer_of(session, openid)
    if volunteer is not None:
        lines.append(t.get(
            "profile.volunteer", name=volunteer.name or "", areas="、".join(volunteer.areas or []) or "-",
            status=t.get(f"profile.volunteer_status.{volunteer.status}"),
        ))
    lines.append(t.get("profile.info_tail"))
    return "\n".join(lines)


def _changes_phone(text: str) -> str | None:
    """The resident's own new number when the message says their phone changed (电话改成139…,
    我换号码了 新号是…) and nothing else the services take; None otherwise."""
    norm = normalize(text)
    if not any(normalize(w) in norm for w in words("profile", "phone_change")):
        return None
    if not any(normalize(w) in norm for w in words("profile", "phone_words")):
        return None
    classifier = get_classifier()
    # read without the change words, so 物业电话改成139… is the property office's number (a phone
    # word right after whose it is), as 物业电话139… is
    plain = text
    for word in sorted(words("profile", "phone_change"), key=len, reverse=True):
        plain = plain.replace(word, " ")
    phone = classifier.extract_slots(plain).get("phone")
    if not phone or classifier.classify(text).intent in SERVICE_INTENTS:
        return None  # 楼道灯坏了 电话改成139…: the report, its phone read by its own question
    return str(phone)


async def phone_changed(ctx: Context, text: str) -> str | None:
    """电话改成13912345678 / 我换号码了 新号是… outside any request: the bound phone changed, and
    the contact of open tickets that carried the old one (or none), each with an event for its
    owner and staff; the reply names the new number masked. None when the message is no such change."""
    phone = _changes_phone(text)
    if phone is None:
        return None
    resident = ctx.resident
    old = resident.phone
    if old == phone:
        return ctx.text("profile.phone_same", phone=mask_phone(phone))
    resident.phone = phone
    resident.updated_at = ctx.now
    rows = await ctx.session.execute(
        select(Ticket).where(Ticket.resident == ctx.openid, Ticket.status.in_(ACTIVE)).order_by(Ticket.id)
    )
    moved = [t for t in rows.scalars() if (t.fields or {}).get("phone") in (None, "", old)]
    note = ctx.text("profile.phone_changed_note", phone=mask_phone(phone))
    for ticket in moved:
        ticket.fields = {**(ticket.fields or {}), "phone": phone}
        await add_event(ctx.session, ticket, "resident_wrote", f"resident:{hash_openid(ctx.openid)}", ctx.now,
                        note=note)
    said = ctx.text("profile.phone_changed", phone=mask_phone(phone))
    if moved:
        said += "\n" + ctx.text("profile.phone_changed_tickets", count=len(moved))
    return said


def _scrub(fields: dict[str, Any] | None, keep: tuple[str, ...] = ()) -> dict[str, Any]:
    return {k: v for k, v in (fields or {}).items() if k not in PERSONAL_FIELDS or k in keep}


def _without_room(place: Any, room: Any) -> Any:
    """A kept place without the room number a resident may have added (3栋2单元502 → 3栋2单元)."""
    return place.replace(str(room), "").strip() if isinstance(place, str) and room else place


async def _withdraw_open(svc: Services, session: AsyncSession, openid: str, tickets: list[Ticket]) -> set[int]:
    """Cancel the resident's open tickets and upcoming bookings before the erasure (owners told,
    limits dropped); the ids of open tickets kept for the neighbours linked to them."""
    actor = f"resident:{hash_openid(openid)}"
    note = svc.texts.get("profile.erase_note")
    for booking in await bookings.upcoming(svc, session, openid):
        await bookings.cancel_booking(svc, session, booking, actor)
    shared: set[int] = set()
    for ticket in tickets:
        if ticket.status not in WITHDRAWABLE:
            continue
        if any(k.status in WITHDRAWABLE for k in await dispatch.children_of(session, ticket)):
            shared.add(ticket.id)  # the neighbours still wait for it: their owner is told who left
            await add_event(session, ticket, "resident_wrote", actor, svc.clock.now(), note=note)
            if ticket.assignee:
                text = svc.texts.get("profile.erase_shared_worker", number=ticket.number)
                await outbox.push_worker(session, ticket.assignee, text, now=svc.clock.now(), ticket_id=ticket.id,
                                         not_before=dispatch.held_until(svc, ticket))
            continue
        await dispatch.apply_action(svc, session, ticket, "cancel", actor, note=note, data={"by": "resident"})
    return shared


def _redact(text: str, values: list[str]) -> str:
    for value in sorted({v for v in values if v and len(v) >= 2}, key=len, reverse=True):
        text = text.replace(value, "***")
    return mask_phone(text)


async def erase_resident(svc: Services, session: AsyncSession, openid: str) -> None:
    """Remove the resident's personal data; tickets stay anonymised; the erasure is audited."""
    now = svc.clock.now()
    who = hash_openid(openid)
    resident = await session.scalar(select(Resident).where(Resident.openid == openid))
    personal: list[str] = []
    if resident is not None:
        personal += [resident.name or "", resident.phone or ""]
        resident.name = resident.phone = resident.building = resident.unit = resident.room = None
        resident.dialog = None  # its slots hold what the resident was telling us
        resident.erased_at = now
        resident.updated_at = now
    tickets = list((await session.execute(select(Ticket).where(Ticket.resident == openid))).scalars())
    shared = await _withdraw_open(svc, session, openid, tickets)
    for ticket in tickets:
        personal += [str(ticket.fields.get(k) or "") for k in PERSONAL_FIELDS if isinstance(ticket.fields.get(k), str)
                     and not (ticket.id in shared and k in PLACE_FIELDS)]
    for ticket in tickets:
        ticket.resident = None
        if ticket.id in shared:
            kept = _scrub(ticket.fields, PLACE_FIELDS)
            ticket.fields = {**kept, "place": _without_room(kept.get("place"), ticket.fields.get("room"))}
        else:
            ticket.fields = _scrub(ticket.fields)
        ticket.summary = _redact(ticket.summary or "", personal)
        ticket.rating_comment = None
    if tickets:
        events = await session.execute(select(TicketEvent).where(TicketEvent.ticket_id.in_([t.id for t in tickets])))
        for event in events.scalars():
            if event.data and "fields" in event.data:
                event.data = {**event.data, "fields": _scrub(event.data["fields"])}
            event.note = _redact(event.note or "", personal)
    messages = await session.execute(
        update(Message).where(Message.openid == openid).values(content="", media=None, openid=who)
    )
    booking_rows = await session.execute(
        update(Booking).where(Booking.resident == openid).values(resident=None, for_name=None, address=None, notes=None)
    )
    reminders = await session.execute(
        update(Reminder).where(Reminder.target == openid, Reminder.state == "pending").values(state="dropped")
    )
    signups = await session.execute(delete(ActivitySignup).where(ActivitySignup.openid == openid))
    registrations = await outages.erase(session, openid)  # to be told an announced outage ended
    # Pushes not yet sent to the resident carry their data (ticket updates, reminders): drop them.
    pushes = await session.execute(
        update(OutboxItem)
        .where(OutboxItem.channel == "wechat", OutboxItem.target == openid, OutboxItem.state == "pending")
        .values(state="dead", last_error="resident erased their data", payload={})
    )
    volunteers = await erase_volunteer(session, openid)
    session.add(AuditLog(
        actor=f"resident:{who}", action="resident_erased", target=who, created_at=now,
        detail={
            "tickets_anonymised": len(tickets), "messages_cleared": int(messages.rowcount or 0),
            "bookings_cleared": int(booking_rows.rowcount or 0), "reminders_dropped": int(reminders.rowcount or 0),
            "pushes_dropped": int(pushes.rowcount or 0),
            "signups_removed": int(signups.rowcount or 0), "volunteer_records_removed": volunteers,
            "outage_registrations_removed": registrations,
        },
    ))
    await session.flush()


@register
class EraseInfo(Flow):
    """删除我的信息: one confirmation, then the erasure (no ticket)."""

    name = "erase_info"
    title = "profile.title"
    commands = ("erase_info",)
    confirm_prompt = "profile.erase_confirm"
    declined = "profile.erase_declined"

    # Nothing to ask: the flow goes straight to its confirmation.
    scope = Step("profile.erase_confirm", ask_if=lambda slots: False, label="profile.title")

    async def finish(self, ctx: Context, slots: dict[str, Any]) -> str:
        """Erase the resident's personal data in this message's transaction."""
        ctx.resident  # noqa: B018 — in the session first, so the erasure changes ctx's own object
        await erase_resident(ctx.svc, ctx.session, ctx.openid)
        return ctx.text("profile.erased")
