"""What grid workers and staff type in the WeCom app: 接单 / 办结 / 退回 / 吹哨 / 电话 / 我的工单 / 帮助 / 回复.

`parse` reads a command; `run` carries it out for a roster person and returns the reply text.
Only a ticket's assignee may act on it; every action (and every refusal to act on someone
else's ticket) goes to the audit log. A photo sent after 办结 is attached to that ticket.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot import delivery_record, dispatch, notices, roster, tickets
from bot.intents.normalize import simplified
from bot.services import Services
from storage.models import AuditLog, Person, Resident, Ticket

log = logging.getLogger(__name__)

VERBS = {"接单": "accept", "办结": "resolve", "退回": "return", "吹哨": "whistle", "回复": "reply", "电话": "phone"}
WORDS = {"我的工单": "mine", "帮助": "help", "help": "help", "?": "help", "？": "help"}
# The statuses a worker's ticket may be in for each verb (short forms look among these). An
# escalated ticket still names its owner, who may still take it, finish it or hand it back, and
# may blow the whistle again (staff are told once more).
FROM_STATUSES = {
    "accept": ("dispatched", "reopened", "escalated"),
    "resolve": ("dispatched", "accepted", "reopened", "escalated"),
    "return": ("dispatched", "accepted", "reopened", "escalated"),
    "whistle": ("dispatched", "accepted", "reopened", "escalated"),
    "phone": ("dispatched", "accepted", "reopened", "escalated"),
}
NEEDS_NOTE = {"resolve": "note_resolve", "return": "note_return", "whistle": "note_whistle", "reply": "note_reply"}
PHOTO_TTL_S = 1800
# Between a verb, its number and the note: spaces or the punctuation people type there (接单：0001,
# 办结 0001，已修好; NFKC has made full-width marks ASCII).
_SEP = r"[\s:,;、。]"
# What may end a short number (接单 7，马上去 / 接单 2。/ 接单 7号 / 接单 2.): a space, the end, a
# mark — but not a colon or point before a digit (办结 10:30修好, 办结 1.5米管子换了: notes).
_NUMBER_END = r"(?=\s|$|[,;、。!?]|[:.](?!\d))"
_COMMAND = re.compile(
    rf"^(接单|办结|退回|吹哨|回复|电话){_SEP}*"
    # A number: a full one or trailing digits (7, 7号) ended as above; or a full one or four or
    # more digits straight before the note (办结0001灯已换好), or digits and 号 (办结 2号已修好). In
    # 办结 3楼灯已换 or 办结 3号楼灯已换 there is no number: they are the note.
    rf"(?:(\d{{8}}-\d{{1,4}}|\d{{1,12}})(?:号?{_NUMBER_END}|号(?![楼院栋幢座单室门口]))"
    rf"|(\d{{8}}-\d{{1,4}}|\d{{4,12}})(?=\D))?"
    rf"{_SEP}*(.*)$",
    re.DOTALL,
)
_TRAILING = re.compile(r"[\s?!.。？！]+$")
# The number first (0002 接单, 20261123-0002办结 已修好): read as the verb first.
_NUMBER_FIRST = re.compile(rf"^(\d{{8}}-\d{{1,4}}|\d{{1,12}})号?{_SEP}*(接单|办结|退回|吹哨|回复|电话)(?=$|{_SEP}|\D)(.*)$", re.DOTALL)


@dataclass(frozen=True)
class Command:
    """A parsed command: verb (accept, resolve, return, whistle, reply, mine, help), ticket ref, text."""

    verb: str
    ref: str | None = None
    text: str = ""


def _normal(text: str) -> str:
    return simplified(unicodedata.normalize("NFKC", text)).strip()  # 接單 is 接单, ，is ,


def _as_typed(text: str, note: str) -> str:
    """The note as the worker typed it (已修好，晚了一点, not its normal form): the shortest tail of
    text that reads as note; the note itself when none does."""
    for start in range(len(text) - 1, -1, -1):
        tail = _normal(text[start:])
        if tail == note:
            return text[start:].strip()
        if len(tail) > len(note) + 8:
            break
    return note


def parse(text: str) -> Command | None:
    """Read a worker's message as a command, or None when it is not one."""
    value = _normal(text)
    word = _TRAILING.sub("", value).lower() or value.lower()  # 我的工单？
    if word in WORDS:
        return Command(WORDS[word])
    first = _NUMBER_FIRST.match(value)
    if first is not None:
        value = f"{first.group(2)} {first.group(1)} {first.group(3).lstrip()}".strip()
    match = _COMMAND.match(value)
    if match is None:
        return None
    verb, ref, joined, rest = match.groups()
    if ref or joined:
        rest = rest.strip().lstrip("!?.,;:、。").strip()  # 接单 7！/ 办结 2. 已修好
    note = rest.strip()
    return Command(VERBS[verb], ref or joined, _as_typed(text, note) if note else "")


@dataclass(frozen=True)
class Found:
    """A ticket lookup's outcome: the ticket, or the reply explaining why there is none."""

    ticket: Ticket | None
    reply: str = ""
    refused: bool = False  # the ticket exists but belongs to someone else


def _audit(session: AsyncSession, actor: str, action: str, target: str, now: datetime, **detail: Any) -> None:
    session.add(AuditLog(actor=actor, action=action, target=target, detail=detail or None, created_at=now))


async def _by_ref(session: AsyncSession, ref: str) -> list[Ticket]:
    """Tickets whose number is ref (see tickets.number_matches), newest first."""
    if "-" in ref:
        stmt = select(Ticket).where(Ticket.number == ref)
    elif len(ref) <= 4:  # a day's sequence: 7, 0007
        stmt = select(Ticket).where(Ticket.number.like(f"%-{int(ref):04d}"))
    else:  # a longer tail (230007); the exact test is number_matches
        stmt = select(Ticket).where(Ticket.number.like(f"%{ref[-4:]}"))
    rows = await session.execute(stmt.order_by(Ticket.id.desc()).limit(200))
    return [t for t in rows.scalars() if tickets.number_matches(t.number, ref)]


async def find_ticket(svc: Services, session: AsyncSession, who: Person, cmd: Command) -> Found:
    """The ticket a command means: by number or last digits, or the one open ticket of the worker.

    A number typed is never dropped: when the ticket it names (an active one before a finished
    one) is someone else's, the command is refused, never carried out on another ticket."""
    t = svc.texts
    verb_name = t.get(f"wecom.verbs.{cmd.verb}")
    if cmd.ref is None:
        rows = await session.execute(
            select(Ticket)
            .where(
                Ticket.assignee == who.id, Ticket.status.in_(FROM_STATUSES.get(cmd.verb, dispatch.HELD)),
                Ticket.parent_id.is_(None),
            )
            .order_by(Ticket.id)
        )
        own = list(rows.scalars())
        if not own:
            return Found(None, t.get("wecom.none_open", verb=verb_name))
        if len(own) > 1:
            numbers = "、".join(x.number for x in own[:8])
            example = f"{verb_name} {notices.short_number(own[0].number)}" + (" …" if cmd.verb in NEEDS_NOTE else "")
            return Found(None, t.get("wecom.several_open", verb=verb_name, numbers=numbers, example=example))
        return Found(await _locked(session, own[0]))
    matches = await _by_ref(session, cmd.ref)
    if not matches:
        return Found(None, t.get("wecom.no_ticket", ref=cmd.ref))
    active = [x for x in matches if x.status in tickets.ACTIVE]
    if cmd.verb != "reply":
        meant = active or matches
        own = [x for x in meant if x.assignee == who.id]
        if not own:
            return Found(None, t.get("wecom.not_yours", number=meant[0].number), refused=True)
        matches, active = own, [x for x in own if x.status in tickets.ACTIVE]
    if len(matches) > 1:
        if len(active) == 1:
            return Found(await _locked(session, active[0]))
        numbers = "、".join(x.number for x in matches[:8])
        return Found(None, t.get("wecom.ambiguous", ref=cmd.ref, numbers=numbers))
    return Found(await _locked(session, matches[0]))


async def _locked(session: AsyncSession, ticket: Ticket) -> Ticket:
    locked = await tickets.get_by_number(session, ticket.number, for_update=True)
    assert locked is not None
    return locked


def help_text(svc: Services, who: Person | None) -> str:
    """The command list (with the staff-only command for staff)."""
    text = svc.texts.get("wecom.help")
    return text + "\n" + svc.texts.get("wecom.help_staff") if roster.is_staff(who) else text


async def mine(svc: Services, session: AsyncSession, who: Person) -> str:
    """The worker's tickets in hand, one line each (escalated and overdue ones marked)."""
    t = svc.texts
    rows = await session.execute(
        select(Ticket)
        .where(Ticket.assignee == who.id, Ticket.status.in_(dispatch.HELD), Ticket.parent_id.is_(None))
        .order_by(Ticket.due_at, Ticket.id)
    )
    own = list(rows.scalars())
    if not own:
        return t.get("wecom.mine_empty")
    lines = [t.get("wecom.mine_head", count=len(own))]
    for x in own[:20]:
        lines.append(t.get(
            "wecom.mine_line", number=x.number, status=t.get(f"wecom.statuses.{x.status}"),
            overdue=t.get("wecom.mine_overdue") if x.overdue else "",
            kind=notices.kind_label(svc, x.kind), place=notices.safe_text(notices.place_of(svc, x))[:20],
            due=notices.local_time(svc, x.due_at),
        ))
    return "\n".join(lines)


async def act(svc: Services, session: AsyncSession, who: Person, cmd: Command) -> str:
    """Carry out 接单 / 办结 / 退回 / 吹哨 for the ticket's assignee; the reply to the worker."""
    t = svc.texts
    now = svc.clock.now()
    verb_name = t.get(f"wecom.verbs.{cmd.verb}")
    found = await find_ticket(svc, session, who, cmd)
    if found.ticket is None:
        if found.refused:
            _audit(session, who.id, f"wecom.{cmd.verb}.refused", cmd.ref or "", now, reason="not assignee")
        return found.reply
    ticket = found.ticket
    short = notices.short_number(ticket.number)
    if ticket.assignee != who.id:
        _audit(session, who.id, f"wecom.{cmd.verb}.refused", ticket.number, now, reason="not assignee")
        return t.get("wecom.not_yours", number=ticket.number)
    if cmd.verb in NEEDS_NOTE and not cmd.text:
        what = t.get(f"wecom.{NEEDS_NOTE[cmd.verb]}")
        return t.get("wecom.need_note", what=what, example=f"{verb_name} {short} …")
    if ticket.status not in FROM_STATUSES[cmd.verb]:
        return t.get("wecom.bad_status", number=ticket.number, status=t.get(f"wecom.statuses.{ticket.status}"), verb=verb_name)
    action = "escalate" if cmd.verb == "whistle" else cmd.verb
    note = t.get("dispatch.reason_whistle", note=cmd.text) if cmd.verb == "whistle" else cmd.text
    data = {"via": "wecom", "whistle": True} if cmd.verb == "whistle" else {"via": "wecom"}
    try:
        if cmd.verb == "whistle" and ticket.status == "escalated":
            await dispatch.whistle_again(svc, session, ticket, who.id, note=note, data=data)
        else:
            await dispatch.apply_action(svc, session, ticket, action, who.id, note=note, data=data)
    except tickets.TransitionError:
        return t.get("wecom.bad_status", number=ticket.number, status=t.get(f"wecom.statuses.{ticket.status}"), verb=verb_name)
    _audit(session, who.id, f"wecom.{cmd.verb}", ticket.number, now, note=notices.safe_text(cmd.text)[:500])
    if cmd.verb == "accept":
        return t.get("wecom.accepted", number=ticket.number, place=notices.safe_text(notices.place_of(svc, ticket)),
                     due=notices.local_time(svc, ticket.due_at), short=short)
    if cmd.verb == "resolve":
        await svc.store.set(svc.store.key("wecom-photo", who.id), {"number": ticket.number}, ttl=PHOTO_TTL_S)
        return t.get("wecom.resolved", number=ticket.number)
    if cmd.verb == "return":
        return t.get("wecom.returned", number=ticket.number)
    return t.get("wecom.whistled", number=ticket.number)


async def contact(svc: Services, session: AsyncSession, who: Person, cmd: Command) -> str:
    """电话 N: the resident's phone for the ticket's owner, whole (pushes show it masked), in the
    reply to the owner's own request only; every look is audited (without the number)."""
    t = svc.texts
    found = await find_ticket(svc, session, who, cmd)
    now = svc.clock.now()
    if found.ticket is None:
        if found.refused:
            _audit(session, who.id, "wecom.phone.refused", cmd.ref or "", now, reason="not assignee")
        return found.reply
    ticket = found.ticket
    if ticket.status not in FROM_STATUSES["phone"]:
        return t.get("wecom.phone_closed", number=ticket.number)
    phone = str((ticket.fields or {}).get("phone") or "")
    if not phone and ticket.resident:
        owner = await session.get(Resident, ticket.resident)
        phone = owner.phone if owner is not None and owner.phone else ""
    _audit(session, who.id, "wecom.phone", ticket.number, now, found=bool(phone))
    if not phone:
        return t.get("wecom.phone_none", number=ticket.number)
    return t.get("wecom.phone", number=ticket.number, phone=phone)


async def attach_photo(svc: Services, session: AsyncSession, who: Person, media: dict[str, Any]) -> str:
    """Attach a photo to the ticket the worker just finished (办结), if any."""
    t = svc.texts
    pending = await svc.store.get(svc.store.key("wecom-photo", who.id))
    number = pending.get("number") if isinstance(pending, dict) else None
    ticket = await tickets.get_by_number(session, str(number), for_update=True) if number else None
    if ticket is None or ticket.assignee != who.id:
        return t.get("wecom.photo_unexpected")
    now = svc.clock.now()
    await tickets.add_event(session, ticket, "photo", who.id, now, data={"via": "wecom", **media})
    _audit(session, who.id, "wecom.photo", ticket.number, now, media_id=media.get("media_id"))
    return t.get("wecom.photo_attached", number=ticket.number)


async def staff_reply(svc: Services, who: Person, cmd: Command) -> str:
    """`回复 N 内容` from staff: the answer reaches the resident exactly as a console answer does."""
    t = svc.texts
    if not roster.is_staff(who):
        async with svc.sessions() as session, session.begin():
            _audit(session, who.id, "wecom.reply.refused", cmd.ref or "", svc.clock.now(), reason="not staff")
            delivery_record.record(session, t.get("wecom.staff_only"))
        return t.get("wecom.staff_only")
    if not cmd.text or cmd.ref is None:
        return t.get("wecom.need_note", what=t.get("wecom.note_reply"), example="回复 0007 您好，……")
    async with svc.sessions() as session:
        found = await find_ticket(svc, session, who, cmd)
        number = found.ticket.number if found.ticket is not None else None
    if number is None:
        return found.reply
    try:
        from bot import staff_actions
    except ImportError:  # the console's staff_actions module is written alongside
        log.warning("bot.staff_actions not available; 回复 refused")
        return t.get("wecom.reply_unavailable")
    try:
        via = await staff_actions.staff_reply(svc, number, cmd.text, who.id)
    except (ValueError, LookupError) as exc:  # refused: empty or too long, resident unreachable, unknown
        return t.get("wecom.reply_failed", reason=str(exc))
    return t.get("wecom.replied", number=number, via=t.get(f"wecom.via_{via}") if t.has(f"wecom.via_{via}") else via)


async def run(svc: Services, userid: str, text: str | None, media: dict[str, Any] | None = None) -> str:
    """Handle one message from a WeCom user (text or photo); returns the passive reply."""
    t = svc.texts
    async with svc.sessions() as session:
        who = await roster.person(session, userid)
    if who is None or not who.active:
        return t.get("wecom.not_on_roster")
    if media is not None:
        async with svc.sessions() as session, session.begin():
            reply = await attach_photo(svc, session, who, media)
            delivery_record.record(session, reply)
            return reply
    if not text:
        return t.get("wecom.text_only")
    cmd = parse(text)
    if cmd is None:
        return t.get("wecom.not_understood") + "\n" + help_text(svc, who)
    if cmd.verb == "help":
        return help_text(svc, who)
    if cmd.verb == "reply":
        return await staff_reply(svc, who, cmd)
    async with svc.sessions() as session, session.begin():
        if cmd.verb == "mine":
            reply = await mine(svc, session, who)
        elif cmd.verb == "phone":
            reply = await contact(svc, session, who, cmd)
        else:
            reply = await act(svc, session, who, cmd)
        delivery_record.record(session, reply)
        return reply
