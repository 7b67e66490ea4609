"""What service-centre staff do to a ticket: answer the resident, change its status, add notes.

Shared by the console, the `/api/tickets/...` write routes and WeCom's `回复 N 内容`. Each action
runs in one transaction: the ticket event, the conversation log, the outbox push and the audit row
commit together or not at all.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot import cs_window, delivery_record, dispatch, notices, outbox, roster, tickets
from bot.clock import local
from bot.intents.normalize import simplified
from bot.services import Services
from storage.models import AuditLog, Message, OutboxItem, Person, Resident, StaffUser, Ticket

MAX_REPLY_CHARS = 600  # a template message keyword holds little; longer answers belong in a call
MAX_NOTE_CHARS = 2000
# The same answer to the same ticket by the same person within this time (a worker tapping send
# twice, or typing the 回复 again) is sent once; the second is told it already went.
REPEAT_WINDOW = timedelta(minutes=2)
STAFF_ACTIONS = ("assign", "accept", "resolve", "reopen", "close", "escalate", "cancel")
# A report linked to a job (同一问题多人反映) follows its job, as in WeCom: staff act on the job. What
# they may still do to the report itself: cancel it (a duplicate filed by mistake; the job goes on,
# its owner told so) and reopen it (after the job's 办结 it becomes its owner's own job: dispatch).
LINKED_ACTIONS = ("reopen", "cancel")


class ActionRefused(ValueError):
    """A staff action refused for what was asked (empty text, unknown action, bad assignee);
    `reason` is the refusal's code in the audit log ([console.audit_reasons])."""

    reason = "refused"

    def __init__(self, message: str, reason: str | None = None) -> None:
        super().__init__(message)
        if reason:
            self.reason = reason


class StaleView(ActionRefused):
    """The ticket changed since the page the action came from showed it (another clerk acted)."""

    reason = "stale"


class LinkedReport(ActionRefused, tickets.TransitionError):
    """An action on a report linked to a job that only the job takes (the API answers 409)."""

    reason = "linked_report"
    job = ""  # the job's number


class StatusForbids(ActionRefused, tickets.TransitionError):
    """An action the ticket's status does not allow (the API answers 409)."""

    reason = "status_forbids"


class SameOwner(ActionRefused, tickets.TransitionError):
    """A 改派 to the person who already holds the ticket: it would only restart their 接单 window
    (the API answers 409)."""

    reason = "same_assignee"


@dataclass(frozen=True)
class Seen:
    """What the page an action came from showed of the ticket: its status and owner. via: 'page'
    (the console, /api's expect), 'wecom' (what a staff member's WeCom command read of it) or 'api'
    (an /api action without expect: the ticket as the request found it on arrival)."""

    status: str
    assignee: str | None
    via: str = "page"


class AlreadySent(ActionRefused):
    """The same answer went to the ticket's resident from the same person moments ago."""

    reason = "already_sent"


class ResidentUnreachable(ValueError):
    """The ticket has no resident to answer (erased, created without one, or no longer following)."""

    reason = "resident_unreachable"

    def __init__(self, message: str, reason: str | None = None) -> None:
        super().__init__(message)
        if reason:
            self.reason = reason


def _window(resident: Resident) -> cs_window.Window:
    return cs_window.Window(resident.last_message_at, resident.last_inbound_at, resident.window_opened_by)


def delivery_channel(resident: Resident | None, now: datetime, sent: Sequence[datetime] = ()) -> str:
    """'custom' while one of the resident's customer-service windows is open (bot.cs_window) with
    messages left in its quota, counting `sent` (when customer-service messages to them went or
    were queued), else 'template' — as the outbox sender and WeChat will decide."""
    if resident is None:
        return "template"
    for allowance in _window(resident).allowances(now):
        if sum(1 for at in sent if at >= allowance.since) < allowance.quota:
            return "custom"
    return "template"


async def custom_sent(session: AsyncSession, openid: str, since: datetime, now: datetime) -> list[datetime]:
    """When pushes to a resident count against windows opened since `since`: those sent as
    customer-service messages since then (sent_at), however long they had waited in the outbox
    before, and every one still queued, whenever it was queued (the sender tries it as one while a
    window is open), at the earliest it can go (its next attempt, not before now). Found through
    the outbox's (channel, target) index."""
    rows = await session.execute(
        select(OutboxItem.state, OutboxItem.sent_at, OutboxItem.next_attempt_at).where(
            OutboxItem.channel == "wechat", OutboxItem.target == openid,
            or_(
                and_(OutboxItem.state == "sent", OutboxItem.sent_via == "custom", OutboxItem.sent_at >= since),
                OutboxItem.state.in_(("pending", "sending")),
            ),
        )
    )
    return [sent_at if state == "sent" and sent_at is not None else max(due, now) for state, sent_at, due in rows]


def label(svc: Services, table: str, name: str) -> str:
    """The Chinese label of a status or an action (falls back to the name itself)."""
    key = f"staff_actions.{table}.{name}"
    return svc.texts.get(key) if svc.texts.has(key) else name


def audit(
    session: AsyncSession, actor: str, action: str, target: str, now: datetime,
    detail: dict[str, Any] | None = None,
) -> None:
    """Add one audit row to the caller's transaction."""
    session.add(AuditLog(actor=actor, action=action, target=target, detail=detail, created_at=now))


def refusal_reason(exc: BaseException) -> str:
    """The audit code of why an action was refused (its exception)."""
    if isinstance(exc, LookupError):
        return "unknown_ticket"
    if isinstance(exc, (ActionRefused, ResidentUnreachable)):
        return exc.reason
    if isinstance(exc, tickets.TransitionError):
        return "status_forbids"
    return "refused"


async def record_refusal(
    svc: Services, actor: str, action: str, target: str, reason: str, message: str, **detail: Any,
) -> None:
    """Audit an action that was refused (nothing else done: its own transaction rolled back), as
    `ticket.<action>.refused` with why — its code and the words the clerk was shown."""
    async with svc.sessions() as session, session.begin():
        audit(session, actor, f"ticket.{action}.refused", target[:20], svc.clock.now(),
              {"reason": reason, "message": message[:300], **detail})
        delivery_record.record(session)  # refused from WeCom: its retry must not audit it again


async def _refused(svc: Services, actor: str, action: str, target: str, exc: BaseException, **detail: Any) -> None:
    """Audit the refusal `exc` of an action (record_refusal), naming the job of a linked report."""
    if isinstance(exc, LinkedReport) and exc.job:
        detail["job"] = exc.job
    message = str(exc.args[0]) if isinstance(exc, LookupError) and exc.args else str(exc)
    await record_refusal(svc, actor, action, target, refusal_reason(exc), message, **detail)


REFUSALS = (ValueError, LookupError, tickets.TransitionError)  # what a staff action is refused with


def _clean(svc: Services, text: str, limit: int, what: str) -> str:
    body = (text or "").strip()
    if not body:
        raise ActionRefused(svc.texts.get(f"staff_actions.{what}_empty"), "empty")
    if len(body) > limit:
        raise ActionRefused(svc.texts.get(f"staff_actions.{what}_too_long", limit=limit, length=len(body)), "too_long")
    return body


async def _ticket(svc: Services, session: AsyncSession, number: str) -> Ticket:
    """The ticket numbered number, held for the transaction as it now is (dispatch.hold: on SQLite
    an owner's 办结 or a roster import committed by another process right after the read would
    otherwise be written over)."""
    ticket = await tickets.get_by_number(session, number.strip(), for_update=True)
    if ticket is None:
        raise LookupError(svc.texts.get("staff_actions.unknown_ticket", number=number))
    await dispatch.hold(session, ticket)
    return ticket


async def resident_of(session: AsyncSession, ticket: Ticket) -> Resident | None:
    """The resident row behind a ticket, or None (erased or never known)."""
    if not ticket.resident:
        return None
    return await session.scalar(select(Resident).where(Resident.openid == ticket.resident))


def unreachable(ticket: Ticket, resident: Resident | None) -> str | None:
    """Why no answer can reach the ticket's resident: 'gone' (erased or never known),
    'unsubscribed' (no longer follows the account: WeChat refuses every message), or None."""
    if ticket.resident is None or (resident is not None and resident.erased_at is not None):
        return "gone"
    if resident is not None and not resident.subscribed:
        return "unsubscribed"
    return None


async def reply_outlook(svc: Services, session: AsyncSession, ticket: Ticket) -> str:
    """How a staff answer would reach this ticket's resident now: 'custom'; 'template' (no window
    open); 'quota' (a window is open but its customer-service messages are used up: a template);
    or why it cannot: 'unsubscribed', 'gone'."""
    resident = await resident_of(session, ticket)
    why = unreachable(ticket, resident)
    if why is not None or resident is None or ticket.resident is None:
        return why or "template"  # a resident never seen: WeChat decides, a template is tried
    now = svc.clock.now()
    window = _window(resident)
    if not window.is_open(now):
        return "template"
    earliest = min(a.since for a in window.allowances(now))
    sent = await custom_sent(session, ticket.resident, earliest, now)
    return "custom" if delivery_channel(resident, now, sent) == "custom" else "quota"


def channel_of(outlook: str) -> str | None:
    """The channel an answer takes for a reply_outlook: 'custom', 'template', or None (unreachable)."""
    return {"custom": "custom", "template": "template", "quota": "template"}.get(outlook)


async def reply_channel(svc: Services, session: AsyncSession, ticket: Ticket) -> str | None:
    """How a staff answer would reach this ticket's resident now: 'custom', 'template' or None."""
    return channel_of(await reply_outlook(svc, session, ticket))


async def answered_as(svc: Services, session: AsyncSession, actor: str) -> tuple[str, str] | None:
    """Who an answer reaches the resident from: (role, name) of a ticket owner on the roster who is
    not service-centre staff (a grid worker, a mediator: 【网格员 王伟】); None for staff and
    console users (【社区服务中心】)."""
    person = await session.get(Person, actor)
    if person is None or roster.is_staff(person):
        return None
    return notices.role_label(svc, list(person.roles or [])), person.name


def _reply_payload(svc: Services, number: str, body: str, sender: tuple[str, str] | None = None) -> dict[str, Any]:
    """What a staff answer pushes: the text (a customer-service message) and the template's fields;
    sender: the owner answering (answered_as), else the service centre."""
    t = svc.texts
    if sender is not None:
        role, name = sender
        text = t.get("staff_actions.reply_text_owner", role=role, name=name, number=number, text=body)
        title = t.get("staff_actions.reply_template_title_owner", role=role, name=name)
    else:
        text = t.get("staff_actions.reply_text", number=number, text=body)
        title = t.get("staff_actions.reply_template_title")
    return {
        "text": text,
        "template": {
            "title": title,
            "fields": {t.get("staff_actions.reply_field_number"): number, t.get("staff_actions.reply_field_text"): body},
        },
    }


async def _deliver(
    svc: Services, session: AsyncSession, ticket: Ticket, shown: str, body: str, actor: str, via: str,
    sender: tuple[str, str] | None = None, **data: Any,
) -> OutboxItem | None:
    """Queue one staff answer to the ticket's resident (shown: the number they read), with its
    conversation-log row and the ticket's reply event."""
    assert ticket.resident is not None
    now = svc.clock.now()
    item = await outbox.enqueue(session, "wechat", ticket.resident, _reply_payload(svc, shown, body, sender), now=now,
                                ticket_id=ticket.id)
    session.add(Message(
        openid=ticket.resident, direction="out", msg_type="staff", content=body,
        ticket_id=ticket.id, author=actor, created_at=now,
    ))
    await tickets.add_event(session, ticket, "reply", actor, now, note=body, data={"via": via, **data})
    return item


async def staff_reply(svc: Services, number: str, text: str, actor: str, *, source: str = "console") -> str:
    """Deliver a staff answer to the ticket's resident through the outbox; 'custom' or 'template'.
    source: where it was sent from ('wecom': what the resident answers is pushed back there). A
    refusal is audited (ticket.reply.refused) and raised."""
    try:
        return await _staff_reply(svc, number, text, actor, source)
    except REFUSALS as exc:
        await _refused(svc, actor, "reply", number, exc)
        raise


async def _staff_reply(svc: Services, number: str, text: str, actor: str, source: str) -> str:
    body = _clean(svc, text, MAX_REPLY_CHARS, "reply")
    t = svc.texts
    async with svc.sessions() as session, session.begin():
        ticket = await _ticket(svc, session, number)  # row-locked: a second answer waits for the first
        outlook = await reply_outlook(svc, session, ticket)
        if outlook in ("gone", "unsubscribed") or ticket.resident is None:
            raise ResidentUnreachable(t.get(f"staff_actions.resident_{outlook}", number=ticket.number),
                                      f"resident_{outlook}")
        await _not_sent_already(svc, session, ticket, body, actor)
        via = channel_of(outlook) or "template"
        item = await _deliver(svc, session, ticket, ticket.number, body, actor, via,
                              sender=await answered_as(svc, session, actor), source=source)
        detail: dict[str, Any] = {"via": via, "chars": len(body), "outbox": item.id if item else None}
        if outlook == "quota":
            detail["quota_used"] = True  # the window was open, its customer-service messages used up
        audit(session, actor, "ticket.reply", ticket.number, svc.clock.now(), detail)
        delivery_record.record(session)  # sent from WeCom: its retry must not push it again
    return via


async def _not_sent_already(svc: Services, session: AsyncSession, ticket: Ticket, body: str, actor: str) -> None:
    """Raise AlreadySent when actor sent this very answer to the ticket's resident within
    REPEAT_WINDOW (two deliveries of one 回复, a send tapped twice)."""
    now = svc.clock.now()
    earlier = await session.scalar(
        select(Message.created_at).where(
            Message.openid == ticket.resident, Message.ticket_id == ticket.id, Message.direction == "out",
            Message.msg_type == "staff", Message.author == actor, Message.content == body,
            Message.created_at >= now - REPEAT_WINDOW,
        ).order_by(Message.id.desc()).limit(1)
    )
    if earlier is not None:
        raise AlreadySent(svc.texts.get("staff_actions.reply_already_sent", number=ticket.number,
                                        at=local(earlier, svc.tz).strftime("%H:%M")))


@dataclass(frozen=True)
class ReplyAll:
    """How an answer to every reporter of a ticket went: the job's number, how many residents it
    was queued for (by channel) and how many could not be reached (unfollowed or erased)."""

    number: str
    custom: int
    template: int
    missed: int

    @property
    def reached(self) -> int:
        return self.custom + self.template


async def reporters_of(session: AsyncSession, ticket: Ticket) -> list[Ticket]:
    """The job a report belongs to, then every report linked to it (同一问题多人反映), one per
    resident (the first of theirs): those an answer to all of them goes to."""
    job = await session.get(Ticket, ticket.parent_id) if ticket.parent_id else ticket
    job = job or ticket
    seen: set[str | None] = set()
    reports = []
    for own in [job, *await dispatch.children_of(session, job)]:
        key = own.resident or f"#{own.id}"  # reports without a resident each count (unreachable)
        if key not in seen:
            seen.add(key)
            reports.append(own)
    return reports


async def staff_reply_all(
    svc: Services, number: str, text: str, actor: str, *, seen: Seen | None = None, reporters: int | None = None,
) -> ReplyAll:
    """Answer every resident who reported the problem (the ticket's job and its linked reports):
    one push each, through that resident's own channel, with their own number (a linked report's
    followed by （与工单 … 合并处理））; residents who unfollowed or were erased are skipped and
    counted. One audit row with the counts. Raises StaleView when the job's status or owner is not
    what `seen` says or the page showed another number of reporters, ResidentUnreachable when
    nobody can be reached (refusals audited: ticket.reply_all.refused)."""
    try:
        return await _staff_reply_all(svc, number, text, actor, seen=seen, reporters=reporters)
    except REFUSALS as exc:
        await _refused(svc, actor, "reply_all", number, exc)
        raise


async def _staff_reply_all(
    svc: Services, number: str, text: str, actor: str, *, seen: Seen | None, reporters: int | None,
) -> ReplyAll:
    body = _clean(svc, text, MAX_REPLY_CHARS, "reply")
    t = svc.texts
    async with svc.sessions() as session, session.begin():
        asked = await _ticket(svc, session, number)
        job = await session.get(Ticket, asked.parent_id, with_for_update=True) if asked.parent_id else asked
        if job is not None and job is not asked:
            await dispatch.hold(session, job)
        job = job or asked
        if seen is not None and (seen.status, seen.assignee) != (job.status, job.assignee):
            raise await _stale(svc, session, job, seen, "reply_all")
        reports = await reporters_of(session, job)
        if reporters is not None and reporters != len(reports):
            raise StaleView(t.get("staff_actions.stale", who="", action=label(svc, "action", "reply_all"),
                                  changes=t.get("staff_actions.stale_reporters", was=reporters, now=len(reports))))
        counts = {"custom": 0, "template": 0}
        missed: list[str] = []
        quota_used = 0
        for own in reports:
            outlook = await reply_outlook(svc, session, own)
            via = channel_of(outlook)
            if via is None or own.resident is None:
                missed.append(own.number)
                continue
            shown = own.number if own is job else own.number + t.get("dispatch.merged_with", parent=job.number)
            await _deliver(svc, session, own, shown, body, actor, via, **({"all": job.number} if own is not job else {}))
            counts[via] += 1
            quota_used += outlook == "quota"
        if not counts["custom"] + counts["template"]:
            raise ResidentUnreachable(t.get("staff_actions.reply_all_nobody", number=job.number, count=len(reports)),
                                      "nobody_reachable")
        detail: dict[str, Any] = {"chars": len(body), "reporters": len(reports), "reached": sum(counts.values()),
                                  "custom": counts["custom"], "template": counts["template"], "missed": missed}
        if quota_used:
            detail["quota_used"] = quota_used
        audit(session, actor, "ticket.reply_all", job.number, svc.clock.now(), detail)
        delivery_record.record(session)  # sent from WeCom: its retry must not push it again
    return ReplyAll(job.number, counts["custom"], counts["template"], len(missed))


# Who a clerk may give a hand-off to besides staff: a person's request (an old person fallen,
# locked out, a quarrel at the door) may be the building's grid worker's, a mediator's or a care
# provider's to handle; the console lists the ticket's own grid's workers first.
HANDOFF_ROLES = ("grid_worker", "mediator", "provider")


async def assignable_people(session: AsyncSession, kind: str) -> list[Person]:
    """Active roster people who may own a ticket of kind: its role's people (for a hand-off, grid
    workers, mediators and care providers), then staff."""
    role = dispatch.ROLE_OF_KIND.get(kind)
    roles = HANDOFF_ROLES if kind == "handoff" else (role,) if role else ()
    seen: dict[str, Person] = {}
    for wanted in roles + roster.STAFF_ROLES:
        for person in await roster.people_with_role(session, wanted):
            seen.setdefault(person.id, person)
    return list(seen.values())


async def display_name(session: AsyncSession, who: str | None) -> str:
    """A person as staff read them: the roster name, else the console user's display name, else the id."""
    if not who:
        return ""
    person = await session.get(Person, who)
    if person is not None:
        return person.name
    user = await session.scalar(select(StaffUser).where(StaffUser.username == who))
    return user.display_name if user is not None and user.display_name else who


async def _stale(svc: Services, session: AsyncSession, ticket: Ticket, seen: Seen, action: str) -> StaleView:
    """The refusal of an action taken on an outdated page, naming what changed and who changed it."""
    t = svc.texts
    nobody = t.get("staff_actions.nobody")
    changes = []
    if ticket.status != seen.status:
        changes.append(t.get("staff_actions.stale_status", was=label(svc, "status", seen.status),
                             now=label(svc, "status", ticket.status)))
    if ticket.assignee != seen.assignee:
        changes.append(t.get("staff_actions.stale_assignee", was=await display_name(session, seen.assignee) or nobody,
                             now=await display_name(session, ticket.assignee) or nobody))
    last = [e for e in await tickets.events_of(session, ticket) if e.action in tickets.TRANSITIONS][-1:]
    who = await display_name(session, last[0].actor) if last and not last[0].actor.startswith("resident:") else ""
    key = "staff_actions.stale" if seen.via == "page" else "staff_actions.stale_wecom"
    return StaleView(t.get(key, changes="；".join(changes), action=label(svc, "action", action),
                           who=f"（{who}）" if who else ""))


@dataclass(frozen=True)
class Transitioned:
    """What a staff action did: the ticket as it now is, and the owner (a roster id) whose WeCom
    push that the job was ended was queued, None when nobody was told."""

    ticket: Ticket
    owner_told: str | None = None


async def staff_transition(
    svc: Services, number: str, action: str, actor: str, *, assignee: str | None = None, note: str = "",
    seen: Seen | None = None,
) -> Ticket:
    """Apply a status action for staff via dispatch.apply_action; raises ActionRefused (StaleView
    when the ticket's status or owner is no longer what `seen` says: the page was outdated; a 关闭
    without a reason where one is required), LookupError or tickets.TransitionError (the status forbids it; LinkedReport:
    a report linked to a job). Every refusal is audited (ticket.<action>.refused, with why) before
    it is raised."""
    return (await staff_transition_told(svc, number, action, actor, assignee=assignee, note=note, seen=seen)).ticket


async def staff_transition_told(
    svc: Services, number: str, action: str, actor: str, *, assignee: str | None = None, note: str = "",
    seen: Seen | None = None, reason_required: bool = False,
) -> Transitioned:
    """staff_transition, saying also whom it told (the owner of a job staff closed or resolved).
    reason_required: a 关闭 without a note is refused (the console's form; WeCom's 关闭 N asks for
    the reason itself; /api keeps the contract's close without one)."""
    try:
        return await _staff_transition(svc, number, action, actor, assignee=assignee, note=note, seen=seen,
                                       reason_required=reason_required)
    except REFUSALS as exc:
        known = action in STAFF_ACTIONS
        await _refused(svc, actor, action if known else "transition", number, exc,
                       **({} if known else {"asked": action[:24]}))
        raise


async def _staff_transition(
    svc: Services, number: str, action: str, actor: str, *, assignee: str | None, note: str, seen: Seen | None,
    reason_required: bool,
) -> Transitioned:
    t = svc.texts
    if action not in STAFF_ACTIONS:
        raise ActionRefused(t.get("staff_actions.unknown_action", action=action, allowed="、".join(STAFF_ACTIONS)),
                            "unknown_action")
    note = (note or "").strip()
    if len(note) > MAX_NOTE_CHARS:
        raise ActionRefused(t.get("staff_actions.note_too_long", limit=MAX_NOTE_CHARS, length=len(note)), "too_long")
    async with svc.sessions() as session, session.begin():
        ticket = await _ticket(svc, session, number)
        before, previous = ticket.status, ticket.assignee
        if seen is not None and (seen.status, seen.assignee) != (before, previous):
            raise await _stale(svc, session, ticket, seen, action)
        if ticket.parent_id is not None and action not in LINKED_ACTIONS:
            job = await session.get(Ticket, ticket.parent_id)
            if job is not None:
                refused = LinkedReport(t.get("staff_actions.linked_report", number=ticket.number, parent=job.number,
                                             action=label(svc, "action", action),
                                             allowed="、".join(label(svc, "action", a) for a in LINKED_ACTIONS)))
                refused.job = job.number
                raise refused
        if action == "assign":
            if not assignee:
                raise ActionRefused(t.get("staff_actions.assignee_missing"), "assignee_missing")
            allowed = {p.id for p in await assignable_people(session, ticket.kind)}
            if assignee not in allowed:
                raise ActionRefused(t.get("staff_actions.assignee_not_allowed", assignee=assignee), "assignee_not_allowed")
        rule = tickets.TRANSITIONS[action]
        if ticket.status not in rule.sources:
            raise StatusForbids(t.get(
                "staff_actions.status_forbids", action=label(svc, "action", action), status=label(svc, "status", ticket.status),
            ))
        if action == "assign" and assignee == ticket.assignee:
            raise SameOwner(t.get("staff_actions.assign_same_owner", name=await display_name(session, assignee)))
        if action == "accept" and ticket.assignee is None:
            # 接单 of a ticket nobody holds (a hand-off in the queue) left it 已接单 by no one, out of
            # the queue: a resident's 转人工 nobody answered
            raise ActionRefused(t.get("staff_actions.accept_nobody"), "nobody_holds")
        if reason_required and action == "close" and not note:  # as WeCom's 关闭 N asks: unresolved, so say why
            raise ActionRefused(t.get("staff_actions.close_reason_missing"), "reason_missing")
        event = await dispatch.apply_action(svc, session, ticket, action, actor, note=note, assignee=assignee,
                                            note_on_card=True)  # a 派单's 说明 is for the new owner
        detail: dict[str, Any] = {"from": before, "to": ticket.status}
        if note:
            detail["note"] = note
        told = None
        if action in OWNER_TOLD and before in tickets.ACTIVE and previous and previous != actor:
            if await _tell_owner(svc, session, ticket, previous, action, actor, note, event.id):
                detail["owner_told"] = told = previous
        if action == "assign":
            detail.update(assignee=ticket.assignee, previous=previous)
        name = "ticket.reassign" if action == "assign" and previous else f"ticket.{action}"
        audit(session, actor, name, ticket.number, svc.clock.now(), detail)
        delivery_record.record(session)  # sent from WeCom: its retry must not act again
    return Transitioned(ticket, told)


# Staff ending a job its owner holds: the owner is told, or they would keep it on their list and
# may walk over for nothing.
OWNER_TOLD = ("close", "resolve")


async def _tell_owner(
    svc: Services, session: AsyncSession, ticket: Ticket, owner_id: str, action: str, actor: str, note: str,
    event_id: int,
) -> bool:
    """Push the owner (a grid worker, mediator …) of a job staff just closed or resolved: which job
    (its number as they type it, what and where, the resident's phone masked), who ended it and
    why, and that nothing more is asked of them. Once per event (outbox dedup key), after the quiet
    hours unless urgent; nobody is pushed who left the roster. True when queued."""
    owner = await roster.person(session, owner_id)
    if owner is None or not owner.active:
        return False
    t = svc.texts
    given = (ticket.fields or {}).get("phone")
    if not isinstance(given, str) or not given.strip():
        resident = await resident_of(session, ticket)
        given = resident.phone if resident is not None else None
    phone = notices.masked_phone(given)
    text = t.get(
        f"staff_actions.owner_{action}d",
        number=ticket.number, short=await dispatch.worker_ref(session, ticket, owner_id),
        topic=notices.topic_of(svc, ticket), place=notices.clip(notices.safe_text(notices.place_of(svc, ticket)), 30),
        phone=phone or t.get("dispatch.no_phone"),
        who=t.get("staff_actions.owner_by_api") if actor == "api" else await display_name(session, actor),
        reason=notices.clip(notices.safe_text(note), 200) if note else t.get("staff_actions.owner_no_reason"),
    )
    item = await outbox.push_worker(session, owner_id, text, now=svc.clock.now(), ticket_id=ticket.id,
                                    dedup_key=f"owner_ended:{ticket.id}:{event_id}",
                                    not_before=dispatch.held_until(svc, ticket))
    return item is not None


async def settle_from_wecom(svc: Services, who: Person, ref: str | None, note: str) -> str | None:
    """`办结 N 说明` from a service-centre staff member (roster role staff) on a ticket in the staff
    queue — no owner: a 转人工 hand-off, a job handed back: settled as from the console
    (staff_transition: the resident told, audited; a refusal audited and said). None when the
    sender is no staff member or N names no such ticket: the command goes on as an owner's."""
    from bot import worker_commands

    if ref is None or not roster.is_staff(who):
        return None
    t = svc.texts
    async with svc.sessions() as session:
        matches = await worker_commands.by_ref(session, ref)
    meant = [x for x in matches if x.status in tickets.ACTIVE] or matches  # an open one before a settled one
    if len(meant) != 1 or meant[0].assignee is not None or meant[0].parent_id is not None:
        return None
    number = meant[0].number
    if not note:
        return t.get("wecom.need_note", what=t.get("wecom.note_resolve"), example=f"{t.get('wecom.verbs.resolve')} {ref} …")
    try:  # as read: a job given to an owner meanwhile is theirs to finish (StaleView says so)
        await staff_transition(svc, number, "resolve", who.id, note=note, seen=Seen(meant[0].status, None, "wecom"))
    except REFUSALS as exc:
        return t.get("wecom.staff_settle_refused", number=number, reason=str(exc))
    return t.get("wecom.resolved_one", number=number)


# 关闭 N 原因 (WeCom, staff): the number right after 关闭, then a separator or the end — so words
# beginning with 关闭 (关闭阀门, 关闭3楼总闸) are no command, and a note such as 办结 3 关闭阀门 stays a note.
_CLOSE = re.compile(
    r"^关闭(?:工单)?[\s:,;、。]*(?:#|no\.?|第)?\s*(?P<ref>\d{8}-\d{1,4}|\d{4}-\d{1,4}|\d{1,12})(?:号|单|号单)?"
    r"(?:$|[\s:,;、。]+(?P<reason>.*)|(?P<joined>[和与及]\s*\d.*))$",
    re.DOTALL | re.IGNORECASE,
)
# 关闭 2 3 重复: a second number where the reason starts — never dropped nor taken as the reason.
_CLOSE_MORE = re.compile(r"^(?:[和与及]\s*)?(?:#|第)?(\d{8}-\d{1,4}|\d{4}-\d{1,4}|\d{1,12})(?:号|单)?(?:$|[\s:,;、。和与及])")


def parse_close(text: str) -> tuple[str, str] | None:
    """`关闭 N 原因` read as (N, the reason as typed, '' when none); None when text is not that."""
    found = _CLOSE.match(simplified(unicodedata.normalize("NFKC", text)).strip())
    if found is None:
        return None
    from bot import worker_commands

    reason = (found.group("reason") or found.group("joined") or "").strip()  # 关闭 1和2: see _CLOSE_MORE
    return found.group("ref"), worker_commands.as_typed(text, reason) if reason else ""  # as typed


async def close_from_wecom(svc: Services, who: Person, ref: str, reason: str) -> str:
    """`关闭 N 原因` from service-centre staff (roster role staff): the ticket closed without a
    resolution, as the console's 关闭 does (staff_transition: audited ticket.close, counted as
    unresolved; a refusal audited and said). A bare 关闭 N asks for the reason; anyone else is
    refused politely (audited wecom.close.refused) — a ticket's owner 办结 or 退回 it."""
    from bot import worker_commands

    t = svc.texts
    if not roster.is_staff(who):
        async with svc.sessions() as session, session.begin():
            audit(session, who.id, "wecom.close.refused", ref[:20], svc.clock.now(), {"reason": "not staff"})
            delivery_record.record(session, t.get("wecom.close_staff_only"))
        return t.get("wecom.close_staff_only")
    if not reason:
        return t.get("wecom.need_note", what=t.get("wecom.note_close"), example=f"{t.get('wecom.verbs.close')} {ref} …")
    more = _CLOSE_MORE.match(simplified(unicodedata.normalize("NFKC", reason)))
    if more is not None:  # nothing done: each ticket is closed by itself, with its own reason
        return t.get("wecom.close_one", numbers=f"{ref}、{more.group(1)}", example=f"{t.get('wecom.verbs.close')} {ref} …")
    async with svc.sessions() as session:
        matches = await worker_commands.by_ref(session, ref)
    if not matches:
        return t.get("wecom.no_ticket", ref=ref)
    meant = [x for x in matches if x.status in tickets.ACTIVE] or matches  # an open one before a finished one
    if len(meant) > 1:
        return worker_commands.ambiguous(svc, ref, t.get("wecom.verbs.close"), meant)
    number = meant[0].number
    try:  # as read: a change committed meanwhile (the owner's 办结, a 改派) is said, nothing closed
        await staff_transition(svc, number, "close", who.id, note=reason,
                               seen=Seen(meant[0].status, meant[0].assignee, "wecom"))
    except REFUSALS as exc:
        return t.get("wecom.staff_close_refused", number=number, reason=str(exc))
    return t.get("wecom.closed_one", number=number)


async def add_note(svc: Services, number: str, text: str, actor: str) -> None:
    """Add an internal note to a ticket (never shown to residents), audited (a refusal too)."""
    try:
        await _add_note(svc, number, text, actor)
    except REFUSALS as exc:
        await _refused(svc, actor, "note", number, exc)
        raise


async def _add_note(svc: Services, number: str, text: str, actor: str) -> None:
    body = _clean(svc, text, MAX_NOTE_CHARS, "note")
    async with svc.sessions() as session, session.begin():
        ticket = await _ticket(svc, session, number)
        now = svc.clock.now()
        await tickets.add_event(session, ticket, "note", actor, now, note=body)
        audit(session, actor, "ticket.note", ticket.number, now, {"chars": len(body)})
