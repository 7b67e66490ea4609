"""转人工: a ticket of kind `handoff`, created escalated, carrying the conversation so far, put in
front of the staff (group robot); the resident is told a person will answer, and when.

Asked for in the middle of an emergency (the flow in hand is urgent: 困在电梯里 then 转人工), the
ticket is urgent and names the emergency, the building's grid workers are told at once too, and
the resident is told staff are alerted now (not "tomorrow at 08:30") and what to do meanwhile.

What the hand-off writes of the resident's words (the summary, the reason, the words quoted, the
emergency, what the request collected, the message in hand) has phone numbers masked, as every
push and page built from it must; the phone given as the request's contact is kept whole, and so
is the transcript, the record of the conversation like the messages it copies.

The place the request in hand collected, else a building the words quoted name (我是3号楼2单元
502的, 转人工 5栋的电梯又坏了), else the resident's registered home is the ticket's place (the staff
group's 地点) and building, and the ticket is in that building's grid."""

from __future__ import annotations

import functools
import importlib
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import bindparam, exists, func, literal, select

from bot import notices, outbox, roster
from bot.clock import local
from bot.flows import parsers
from bot.flows.base import Context, Flow
from bot.flows.commands import normalize, only_asks
from bot.flows.config import flow_config
from bot.flows.finish import dispatch_module
from bot.flows.state import DialogState
from bot.flows.status import urges
from bot.intents.classifier import get_classifier
from bot.privacy import hash_openid
from bot.tickets import ACTIVE, add_event, create_ticket
from storage import fastsql
from storage.fastsql import Prepared
from storage.models import Grid, Message, Person, Ticket, TicketEvent

TRANSCRIPT_LIMIT = 40
_WEEKDAYS = "一二三四五六日"


_M = Message.__table__
_LOGGED = select(_M.c.direction, _M.c.msg_type, _M.c.content, _M.c.created_at).where(_M.c.openid == bindparam("openid"))
# The resident's last messages, since a time or not, on the driver (storage.fastsql), newest first.
_LAST_MESSAGES = Prepared(_LOGGED.order_by(_M.c.id.desc()).limit(TRANSCRIPT_LIMIT))
_MESSAGES_SINCE = Prepared(_LOGGED.where(_M.c.created_at >= bindparam("since")).order_by(_M.c.id.desc())
                           .limit(TRANSCRIPT_LIMIT))


async def transcript(ctx: Context, since: datetime | None) -> list[dict[str, Any]]:
    """The resident's conversation since the flow began (or the last messages), oldest first:
    the record, whole like the messages it copies (the console masks phones for who may not see them)."""
    rows = await fastsql.read(ctx.tx, *((_LAST_MESSAGES, {"openid": ctx.openid}) if since is None else
                                        (_MESSAGES_SINCE, {"openid": ctx.openid, "since": since})))
    return [
        {"direction": m["direction"], "type": m["msg_type"], "text": m["content"], "at": m["created_at"].isoformat()}
        for m in reversed(rows)
    ]


def answer_time(ctx: Context) -> str:
    """When a person will answer: soon inside service hours, else when the centre opens."""
    conf = flow_config()["handoff"]
    days = {int(d) for d in conf["days"]}
    open_h, open_m = (int(x) for x in str(conf["open"]).split(":"))
    close_h, close_m = (int(x) for x in str(conf["close"]).split(":"))
    now = local(ctx.now, ctx.svc.tz)
    opens = now.replace(hour=open_h, minute=open_m, second=0, microsecond=0)
    closes = now.replace(hour=close_h, minute=close_m, second=0, microsecond=0)
    if now.isoweekday() in days and opens <= now < closes:
        return ctx.text("handoff.when_open", minutes=int(conf["answer_within_min"]))
    day = now if now < opens else now + timedelta(days=1)
    for _ in range(7):
        if day.isoweekday() in days:
            break
        day += timedelta(days=1)
    if day.date() == now.date():
        when = ctx.text("handoff.today")
    elif day.date() == now.date() + timedelta(days=1):
        when = ctx.text("handoff.tomorrow")
    else:
        when = ctx.text("handoff.weekday", day=_WEEKDAYS[day.weekday()])
    return ctx.text("handoff.when_closed", day=when, time=f"{open_h:02d}:{open_m:02d}",
                    hours=f"{conf['open']}-{conf['close']}")


def _emergency_in_hand(ctx: Context, flow: Flow | None, state: DialogState | None,
                       where: dict[str, str]) -> dict[str, str] | None:
    """What the urgent flow in hand is about (its urgency slot says urgent): category, the words
    the resident said (phone numbers masked), the advice key (config/messages.toml
    [complaint.urgent]), the place said (not a registered home) and the building (`where`). None
    when no flow is in hand or it is not urgent."""
    if flow is None or state is None or state.slots.get("urgency") != "urgent":
        return None
    slots = state.slots
    said = notices.safe_text(str(slots.get("opening_text") or slots.get("description") or "").strip())
    advice = str(slots.get("emergency") or "generic")
    category = str(slots.get("category") or ctx.text("handoff.urgent_category"))
    return {
        "category": category, "what": _what(ctx, category, advice),
        "said": said[:80] or ctx.text("handoff.urgent_unsaid"),
        "advice": advice,
        "place": "" if where.get("home") else where.get("text", ""),
        "building": where.get("building", ""),
    }


def _what(ctx: Context, category: str, advice: str) -> str:
    """What an emergency is, as staff read it: its category, or, for 其他 (which says nothing), the
    emergency in words (居民呼救（未说明何事）, 急病、摔伤: config/messages.toml [console.advice])."""
    if category != flow_config()["complaint"]["other_category"]:
        return category
    label = f"console.advice.{advice}"
    return ctx.text(label) if ctx.svc.texts.has(label) else ctx.text("handoff.urgent_category")


def _where(ctx: Context, state: DialogState | None, heard: list[dict[str, Any]]) -> dict[str, str]:
    """Where the hand-off is about, as {"text", "building"} (and "home" when it is the resident's
    registered home): the place the request in hand collected, else the latest of the words quoted
    that names a building (`heard`: their slots, 我是3号楼2单元502的, 转人工 5栋的电梯又坏了), else
    the resident's registered home; {} when nothing is known. A place in hand without a building
    (南门停车场, a location sent) keeps its words, and the building is looked for as above; words
    kept where a place was asked that name none (家里还有个老人) are no place."""
    found: dict[str, str] = {}
    for key in ("place", "address"):
        value = (state.slots if state is not None else {}).get(key)
        if isinstance(value, dict) and (value.get("building") or value.get("landmark") or "latitude" in value):
            found = {"text": parsers.place_text(value), "building": str(value.get("building") or "")}
            break
    if found.get("building"):
        return found
    for named in reversed(heard):
        if named.get("building"):
            place = {k: str(named[k]) for k in ("building", "unit", "room", "landmark") if named.get(k)}
            return {"text": found.get("text") or parsers.place_text(place), "building": place["building"]}
    resident = ctx.resident
    if not resident.building:
        return found
    if found:
        return {**found, "building": str(resident.building)}
    home = {k: str(v) for k, v in (("building", resident.building), ("unit", resident.unit),
                                    ("room", resident.room)) if v}
    return {"text": parsers.place_text(home), "building": str(resident.building), "home": "1"}


async def _tell_grid_workers(ctx: Context, ticket: Ticket, grid: Grid | None, emergency: dict[str, str]) -> bool:
    """The grid workers of the emergency's building (the place said, else the resident's own) get
    it in WeCom at once: they may be nearest. False when no building or grid worker is known.
    An emergency already reported (_reported_emergency: 人工 after the urgent report) is one
    emergency: the worker holding the report (its card) is not pushed it again, the others are
    told it is that report's (the report's number, as they type it)."""
    if grid is None or not grid.workers:
        return False
    place = emergency["place"] or ctx.text("handoff.urgent_home", building=emergency["building"])
    what = _what(ctx, emergency["category"], emergency["advice"])
    text = ctx.text("handoff.urgent_worker", number=ticket.number, category=what,
                    said=notices.safe_text(emergency["said"]), place=notices.safe_text(place))
    if emergency.get("report"):
        text += ctx.text("handoff.urgent_worker_reported", report=emergency["report"])
    for userid in grid.workers or ():
        if emergency.get("holder") == str(userid):
            continue  # has the report's card: the same emergency, one message for it
        await outbox.push_worker(ctx.session, str(userid), text, now=ctx.now, ticket_id=ticket.id, urgent=True,
                                 dedup_key=f"ticket:{ticket.id}:urgent_handoff:{userid}")
    return True


def _collected(ctx: Context, flow: Flow | None, state: DialogState | None) -> dict[str, str]:
    """What the request in hand collected, label → value as read; the resident's words masked,
    except the phone given as the contact (staff call it)."""
    collected: dict[str, str] = {}
    if flow is None or state is None:
        return collected
    for step in flow.steps:
        if state.slots.get(step.slot) not in (None, "", []):
            shown = step.display(state.slots[step.slot])
            collected[ctx.text(step.label)] = shown if step.parse is parsers.phone else notices.safe_text(shown)
    return collected


def _place_field(ctx: Context, where: dict[str, str]) -> str:
    """The staff group's 地点 for `where`: the place said, or the registered home said to be one."""
    if not where.get("text"):
        return ""
    return ctx.text("handoff.place_home", place=where["text"]) if where.get("home") else where["text"]


def _category(state: DialogState | None, heard: list[dict[str, Any]]) -> str:
    """The kind of problem the hand-off is about, as a report's (水电气暖 for 我家暖气不热): the one the
    request in hand collected, else the latest the words quoted name; "" when none is named (其他
    names none). Given to an owner, the hand-off takes that kind's limit (dispatch.handoff_urgency)."""
    other = str(flow_config()["complaint"]["other_category"])
    found = [(state.slots if state is not None else {}).get("category"), *(n.get("category") for n in reversed(heard))]
    return next((str(c) for c in found if isinstance(c, str) and c and c != other), "")


def _contact(state: DialogState | None, heard: list[dict[str, Any]]) -> str:
    """The phone to reach the resident at: the one the request in hand collected, else the latest
    said in the words quoted (你们找个人给我打电话吧 13812345678); "" when none was given."""
    collected = (state.slots if state is not None else {}).get("phone")
    if isinstance(collected, str) and collected.strip():
        return collected.strip()
    return next((str(named["phone"]) for named in reversed(heard) if named.get("phone")), "")


async def _grid(ctx: Context, ticket: Ticket) -> Grid | None:
    """The grid of the hand-off's building, recorded on it (the console's and the report's grid)."""
    grid = await roster.grid_of_ticket(ctx.session, ticket)
    if grid is not None:
        ticket.grid = grid.id
    return grid


async def _placed_later(ctx: Context, ticket: Ticket, where: dict[str, str], phone: str,
                        category: str = "") -> Grid | None:
    """A hand-off already waiting takes the place known now when it had none, or when the place
    was said now (人工 again after 5栋的电梯坏了: the words said now win over a registered home),
    and the contact phone and the kind of problem (fields.category) said now when it had none."""
    fields = ticket.fields or {}
    if phone and not fields.get("phone"):
        ticket.fields = fields = {**fields, "phone": phone}
    if category and not fields.get("category"):
        ticket.fields = fields = {**fields, "category": category}
    if where.get("building") and (not ticket.building or not where.get("home")):
        ticket.building = where["building"]
        ticket.building_key = roster.normalize_building(where["building"]) or None
    place = _place_field(ctx, where)
    if place and (not fields.get("place") or not where.get("home")) and fields.get("place") != place:
        ticket.fields = {**fields, "place": place}
    return await _grid(ctx, ticket)


async def hand_off(ctx: Context, reason: str, flow: Flow | None = None, state: DialogState | None = None) -> str:
    """Create (or add to) the resident's hand-off ticket and alert the staff; returns the reply."""
    since = datetime.fromisoformat(state.started_at) if state is not None else None
    lines = await transcript(ctx, since)
    said = _last_said(ctx, lines)
    now = local(ctx.now, ctx.svc.tz)
    heard = [get_classifier().extract_slots(text, now) for text in said]  # the slot extractors' reading
    where = _where(ctx, state, heard)
    emergency = _emergency_in_hand(ctx, flow, state, where)
    waiting = await fastsql.read(ctx.tx, _WAITING, {"openid": ctx.openid})
    if emergency is None and flow is None and not waiting:  # 人工 after the urgent report was made
        emergency = await _reported_emergency(ctx, where)
    if emergency is not None:  # staff see what the emergency is, not only "wants a person": the
        # ticket's summary (事项) says it, a waiting one's made so too, so its reason does not again
        reason = ctx.text("handoff.urgent_reason_new", reason=reason)
        if emergency.get("report"):  # staff see it is the emergency of a report already made
            reason = ctx.text("handoff.urgent_reason_reported", reason=reason, report=emergency["report"])
    fields: dict[str, Any] = {
        "reason": reason, "flow": flow.name if flow else None,
        "flow_title": ctx.text(flow.title) if flow else None,
        "collected": _collected(ctx, flow, state), "transcript": lines,
        "text": notices.safe_text(ctx.inbound.text),
    }
    if emergency is not None:
        fields["emergency"] = {k: emergency[k] for k in ("category", "said", "advice")}
    category = _category(state, heard)
    if category:
        fields["category"] = category  # the kind of problem: the limit it takes when given to an owner
    place = _place_field(ctx, where)
    if place:
        fields["place"] = place  # the staff group's 地点
    phone = _contact(state, heard)
    if phone:
        fields["phone"] = phone  # the contact, whole: staff and an owner (电话 0001) call it
    actor = f"resident:{hash_openid(ctx.openid)}"
    existing = fastsql.adopt(ctx.session, Ticket, waiting[0]) if waiting else None
    if existing is not None:
        grid = await _placed_later(ctx, existing, where, phone, category)
        told = False
        if flow is None:  # 人工 again with nothing in hand: the resident chases the person awaited
            told = await _chased(ctx, existing)
        else:  # what the request in hand collected goes on the ticket
            noted = reason if emergency is None else ctx.text(  # the timeline says what the emergency is
                "handoff.urgent_summary", category=emergency["what"], said=emergency["said"])
            await add_event(ctx.session, existing, "note", actor, ctx.now, note=noted, data=fields)
            ctx.tickets.append(existing)
        if emergency is None and existing.urgency == "urgent":  # still waiting in the emergency
            earlier = (existing.fields or {}).get("emergency") or {}
            return ctx.text("handoff.urgent_waiting", number=existing.number,
                            advice=ctx.text(f"complaint.urgent.{earlier.get('advice') or 'generic'}"))
        if emergency is None:
            again = "handoff.again" if flow is not None else "handoff.again_chased" if told else "handoff.again_asked"
            return ctx.text(again, number=existing.number, when=answer_time(ctx))
        _made_urgent(ctx, existing, emergency, reason)  # the request waiting becomes urgent, and says why
        return await _alert(ctx, existing, grid, reason, emergency, "handoff.urgent_again")
    open_reports = await _open_reports(ctx)
    if said:
        fields["said"] = [notices.clip(notices.safe_text(line), SAID_CLIP) for line in said]
    if open_reports:
        fields["open_reports"] = open_reports
    if emergency is not None:
        summary = ctx.text("handoff.urgent_summary", category=emergency["what"], said=emergency["said"])
        why = summary
    else:
        why = reason if flow is None else f"{ctx.text(flow.title)}：{reason}"
        summary = _with_context(ctx, why, fields.get("said") or [], open_reports)
    ticket = await create_ticket(
        ctx.session, kind="handoff", resident=ctx.openid, fields=fields, now=ctx.now, tz=ctx.svc.tz,
        actor=actor, summary=summary, status="escalated",
        building=where.get("building") or None, urgency="urgent" if emergency is not None else "normal",
    )
    grid = await _grid(ctx, ticket)
    ctx.tickets.append(ticket)
    if emergency is not None:
        return await _alert(ctx, ticket, grid, reason, emergency, "handoff.urgent_created")
    dispatch = dispatch_module()
    if dispatch is not None:
        await dispatch.escalate_to_staff(ctx.svc, ctx.session, ticket, why)
    return ctx.text("handoff.created", number=ticket.number, when=answer_time(ctx))


SAID_SHOWN = 3  # the resident's last messages a hand-off's summary quotes
SAID_CLIP = 60  # characters of each
SAID_WITHIN = timedelta(hours=2)  # older messages did not lead to this hand-off
SAID_TYPES = ("text", "voice")  # messages that carry the resident's words (a voice's recognised text)


def _last_said(ctx: Context, lines: list[dict[str, Any]]) -> list[str]:
    """The resident's last few messages that led to the hand-off (提不动水 … 能不能给送点水), most
    recent last, as said (mask them to show them): not menu clicks or digits, a 是 / 否 or a
    message that only asks for a person (人工, 转人工, 我要转人工, 你是机器人吗), which say nothing of it."""
    since = ctx.now - SAID_WITHIN
    said: list[str] = []
    for line in lines:
        text = str(line.get("text") or "").strip()
        norm = normalize(text)
        if line.get("direction") != "in" or line.get("type") not in SAID_TYPES:  # a menu click, a photo
            continue
        if len(norm) < 2 or norm.isdigit() or only_asks(text):
            continue
        try:
            at = datetime.fromisoformat(str(line.get("at")))
        except ValueError:
            at = None
        if at is not None and (at if at.tzinfo else at.replace(tzinfo=timezone.utc)) < since:
            continue
        said.append(text)
    return said[-SAID_SHOWN:]


def _made_urgent(ctx: Context, ticket: Ticket, emergency: dict[str, str], reason: str) -> None:
    """A waiting hand-off an emergency makes urgent: its summary (the staff group's 事项, the queue
    card) says what the emergency is, as a hand-off asked for in one says it (【紧急】急病、摔伤：
    我家老人摔倒了起不来, not 居民要求人工服务), its reason and fields carry it (fields.emergency)."""
    ticket.summary = ctx.text("handoff.urgent_summary", category=emergency["what"], said=emergency["said"])
    ticket.fields = {**(ticket.fields or {}), "reason": reason,
                     "emergency": {k: emergency[k] for k in ("category", "said", "advice")}}
    ticket.urgency = "urgent"


async def _reported_emergency(ctx: Context, where: dict[str, str]) -> dict[str, str] | None:
    """The emergency of the resident's urgent report still open and made within SAID_WITHIN (我家老人
    摔倒了起不来, submitted; then 人工): the hand-off asked for now is about it, as one asked for while
    the report was still being told is (_emergency_in_hand); None when there is none."""
    rows = await fastsql.read(ctx.tx, _URGENT_REPORT, {"openid": ctx.openid, "since": ctx.now - SAID_WITHIN})
    if not rows:
        return None
    fields = rows[0]["fields"] or {}
    said = notices.safe_text(str(fields.get("description") or "").strip())
    complaint = _complaint_module()
    advice = (complaint.emergency_of(said) if complaint is not None else None) or "generic"
    category = str(rows[0]["category"] or fields.get("category") or flow_config()["complaint"]["other_category"])
    return {
        "category": category, "what": _what(ctx, category, advice),
        "said": said[:80] or ctx.text("handoff.urgent_unsaid"), "advice": advice,
        "place": "" if where.get("home") else where.get("text", "") or str(fields.get("place") or ""),
        "building": where.get("building", "") or str(fields.get("building") or ""),
        "report": _typed(rows[0]["number"]),  # the same emergency's report, as workers type it
        "holder": str(rows[0]["assignee"] or "") if rows[0]["status"] in _HELD else "",
    }


def _typed(number: str) -> str:
    """A ticket number as workers type it (1123-0001)."""
    forms = notices.ref_forms(number)
    return forms[-2] if len(forms) > 1 else number


def _complaint_module() -> Any:
    """bot.flows.complaint (what an emergency's words are), imported when used: it imports the flows."""
    return importlib.import_module("bot.flows.complaint")


async def _open_reports(ctx: Context) -> list[str]:
    """The numbers of the resident's reports and requests still open (not hand-offs), oldest first."""
    return [row["number"] for row in await fastsql.read(ctx.tx, _OPEN_REPORTS, {"openid": ctx.openid})]


def _with_context(ctx: Context, why: str, said: list[str], open_reports: list[str]) -> str:
    """The hand-off ticket's summary (the staff group's 事项): why, what the resident last said,
    and their open report numbers."""
    parts = [why]
    if said:
        parts.append(ctx.text("handoff.summary_said", said=ctx.text("handoff.said_joiner").join(said)))
    if open_reports:
        # 1123-0001, as workers type it
        parts.append(ctx.text("handoff.summary_open", numbers="、".join(_typed(n) for n in open_reports)))
    return ctx.text("handoff.summary_joiner").join(parts)


async def _alert(ctx: Context, ticket: Ticket, grid: Grid | None, reason: str, emergency: dict[str, str],
                 reply: str) -> str:
    """An emergency hand-off: the staff group told with the emergency named, and the building's
    grid workers; the reply (message key `reply`) says so now and repeats what to do meanwhile."""
    dispatch = dispatch_module()
    if dispatch is not None:
        await dispatch.escalate_to_staff(ctx.svc, ctx.session, ticket, reason)
    told = await _tell_grid_workers(ctx, ticket, grid, emergency)
    return ctx.text(reply, number=ticket.number, grid=ctx.text("handoff.urgent_grid") if told else "",
                    advice=ctx.text(f"complaint.urgent.{emergency['advice']}"))


_T = Ticket.__table__
_E = TicketEvent.__table__
# The resident's hand-offs still escalated, found by the resident's tickets (ix_tickets_resident):
# the status is compared as `status || ''`, which no index serves, or SQLite, without statistics,
# went through every escalated ticket (the queue).
_HANDOFF_WAITING = (_T.c.resident == bindparam("openid"), _T.c.kind == literal("handoff"),
                    _T.c.status.concat(literal("")) == literal("escalated"))
# The resident's latest hand-off still escalated, and whether staff answered it since a time:
# asked on the driver (storage.fastsql), for every opening that is no emergency — most find
# nothing, and through the ORM each opened a session for it (~0.2 ms, not ~0.02).
# … or given from the desk to a grid worker, mediator or provider (派单) and not yet ended, or
# handed back by them (退回: open, in the queue again): what the resident writes is still for a person.
_HANDOFF_HANDLED = (_T.c.resident == bindparam("openid"), _T.c.kind == literal("handoff"),
                    _T.c.status.concat(literal("")).in_([literal(s) for s in ("escalated", "open", "dispatched", "accepted", "reopened")]))
_AWAITED = Prepared(
    select(
        _T.c.id, _T.c.created_at,
        exists().where(_E.c.ticket_id == _T.c.id, _E.c.action == literal("reply"),
                       _E.c.created_at >= bindparam("since")).label("answered"),
    )
    .where(*_HANDOFF_HANDLED)
    .order_by(_T.c.id.desc())
    .limit(1)
)
# A hand-off's own reads on the driver: the resident's latest hand-off still waiting (its whole
# row, made the session's object), and the numbers of their other open tickets.
_WAITING = Prepared(select(_T).where(*_HANDOFF_WAITING).order_by(_T.c.id.desc()).limit(1))
# The resident's newest urgent report still open, made since a time: 人工 said after it is about it.
_URGENT_REPORT = Prepared(select(_T.c.number, _T.c.category, _T.c.fields, _T.c.assignee, _T.c.status).where(
    _T.c.resident == bindparam("openid"), _T.c.kind == literal("complaint"), _T.c.urgency == literal("urgent"),
    _T.c.created_at >= bindparam("since"), _T.c.status.in_([literal(status) for status in ACTIVE]))
    .order_by(_T.c.id.desc()).limit(1))
_HELD = ("dispatched", "accepted", "reopened")  # a report whose assignee holds it (dispatch.WORKING)
_OPEN_REPORTS = Prepared(select(_T.c.number).where(
    _T.c.resident == bindparam("openid"), _T.c.kind != literal("handoff"),
    _T.c.status.in_([literal(status) for status in ACTIVE])).order_by(_T.c.id))


async def with_staff(ctx: Context, text: str) -> str | None:
    """A message that would start a service while the resident waits for a person they asked for
    (a hand-off ticket still escalated, opened or answered by staff within the last hours): not a questionnaire they
    asked to be spared. It is recorded on that ticket (staff see it there) and answered that a
    person will answer (in full once every few minutes, a short 收到 in between). None when no
    one is awaited. Emergencies, menu picks, status questions and commands never come here."""
    ticket = await _awaited(ctx)
    if ticket is None:
        return None
    chase = urges(text)
    if chase and ticket.status != "escalated" and ticket.assignee:
        return None  # given to an owner: chased as a report is (its owner pushed, status.chased)
    await _placed_meanwhile(ctx, ticket, text)  # 催一下, 怎么还没人来: heard as a chase, not only after the additions' quiet spell
    told = await _written_on(ctx, ticket, text, chase=chase)
    if ticket.urgency == "urgent":  # 3号楼 after 快来人啊 was asked where they are: not the menu's numbers
        return ctx.text("handoff.urgent_noted", number=ticket.number)
    if chase:
        return ctx.text("handoff.chased" if told else "handoff.chased_lately", number=ticket.number)
    return ctx.text("handoff.waiting" if told else "handoff.noted", number=ticket.number)


async def _awaited(ctx: Context) -> Ticket | None:
    """The resident's hand-off a person is awaited on: still escalated, opened or answered by
    staff within the last [handoff] attention_hours; None when there is none."""
    since = ctx.now - timedelta(hours=float(flow_config()["handoff"]["attention_hours"]))
    found = await fastsql.read(ctx.tx, _AWAITED, {"openid": ctx.openid, "since": since})
    if not found:
        return None
    if found[0]["created_at"] < since and not found[0]["answered"]:
        return None  # asked for long ago, and staff have not answered lately: no one is awaited
    return await fastsql.get(ctx.session, Ticket, found[0]["id"])


async def urgent_while_waiting(ctx: Context, text: str, advice: str, category: str) -> None:
    """An emergency told while the resident waits for a person (人工, then 我家老人摔倒了起不来),
    which the urgent report serves: the hand-off awaited carries it too, for the clerk about to
    answer it — the words recorded as the resident's addition, the ticket raised to urgent with the
    emergency in its reason (原因) and fields, and the staff group told once, 【紧急】, as an urgent
    hand-off is (not again for the same emergency said again while it waits). `advice` is the
    emergency's key ([complaint.urgent]), `category` the report's (may be empty). The resident's
    reply is the urgent report's: nothing here answers them."""
    ticket = await _awaited(ctx)
    if ticket is None:
        return
    said = notices.safe_text(text.strip())[:80] or ctx.text("handoff.urgent_unsaid")
    category = category or str(flow_config()["complaint"]["other_category"])  # 其他: named by its advice
    fields = ticket.fields or {}
    earlier = fields.get("emergency")
    known = ticket.urgency == "urgent" and isinstance(earlier, dict) and earlier.get("advice") == advice
    dispatch = dispatch_module()
    held = ticket.status != "escalated" and bool(ticket.assignee)  # given to an owner (派单)
    # given to an owner, they are told once below (dispatch.turned_urgent), not also as an addition
    await _written_on(ctx, ticket, text, group=False, answerer=known or not held or dispatch is None)
    if known:
        return  # the same emergency again: on the ticket, the group told of it already
    reason = str(fields.get("reason") or ctx.text("handoff.reason_intent"))
    if not ticket.urgency == "urgent":
        reason = ctx.text("handoff.urgent_reason_new", reason=reason)
    _made_urgent(ctx, ticket, {"category": category, "what": _what(ctx, category, advice), "said": said,
                               "advice": advice}, reason)
    if dispatch is not None:
        if held:  # its limits and reminders become an urgent job's, its owner told
            await dispatch.turned_urgent(ctx.svc, ctx.session, ticket, text, f"resident:{hash_openid(ctx.openid)}")
        await dispatch.escalate_to_staff(ctx.svc, ctx.session, ticket, reason, urgent=True)


async def _placed_meanwhile(ctx: Context, ticket: Ticket, text: str) -> None:
    """Where they are, a phone or the kind of problem (我家暖气不热), said while the hand-off waits (3号楼2单元 after 快来人啊 asked
    where): the ticket's place and building (its grid) and contact, as 人工 said again with them
    would (_placed_later), so the staff group's 地点 is no longer 未说明; an emergency's first
    building known so tells that building's grid workers, as one said at once would have."""
    if ctx.inbound.msg_type not in ("text", "voice"):
        return  # a shared link's or file's title is no place or phone of the resident's
    named = get_classifier().extract_slots(text, local(ctx.now, ctx.svc.tz))
    place = {k: str(named[k]) for k in ("building", "unit", "room", "landmark") if named.get(k)}
    where = {"text": parsers.place_text(place), "building": place.get("building", "")} if place else {}
    phone = str(named.get("phone") or "")
    category = _category(None, [named])  # 我家暖气不热 after 人工: what the person given it is to see to
    if not where and not phone:
        if category and not (ticket.fields or {}).get("category"):
            ticket.fields = {**(ticket.fields or {}), "category": category}
        return
    unplaced = not ticket.building
    grid = await _placed_later(ctx, ticket, where, phone, category)
    emergency = (ticket.fields or {}).get("emergency")
    if ticket.urgency == "urgent" and unplaced and ticket.building and isinstance(emergency, dict):
        await _tell_grid_workers(ctx, ticket, grid, {**emergency, "place": where["text"], "building": ticket.building})


async def _quiet(ctx: Context, ticket: Ticket, actions: tuple[str, ...], every: str = "ack_every_min") -> bool:
    """Whether none of `actions` happened on the ticket within the last `every` minutes ([handoff])."""
    since = ctx.now - timedelta(minutes=float(flow_config()["handoff"][every]))
    return not await fastsql.read(ctx.tx, _events_since(actions), {"ticket_id": ticket.id, "since": since})


@functools.cache
def _events_since(actions: tuple[str, ...]) -> Prepared:
    """One event of a ticket with one of actions since a time (a fixed statement per actions)."""
    return Prepared(select(_E.c.id).where(
        _E.c.ticket_id == bindparam("ticket_id"), _E.c.action.in_([literal(a) for a in actions]),
        _E.c.created_at >= bindparam("since")).limit(1))


async def _chased(ctx: Context, ticket: Ticket) -> bool:
    """人工 said again while the hand-off waits: the staff group reminded (as for what a waiting
    resident writes) unless the group heard of it within ack_every_min; the message is tied to the
    ticket either way. Returns whether the group was reminded."""
    if await _quiet(ctx, ticket, ("resident_wrote", "staff_alerted")):
        return await _written_on(ctx, ticket, ctx.inbound.text)
    ctx.tickets.append(ticket)
    return False


_P = Person.__table__
# The latest answer to a hand-off within a time, with who sent it, how, and whether they are still
# on the roster: a member of staff who asked the resident something from WeCom hears the answer there.
_LAST_ANSWER = Prepared(
    select(_E.c.actor, _E.c.data, _P.c.active)
    .select_from(_E.outerjoin(_P, _P.c.id == _E.c.actor))
    .where(_E.c.ticket_id == bindparam("ticket_id"), _E.c.action == literal("reply"),
           _E.c.created_at >= bindparam("since"))
    .order_by(_E.c.id.desc())
    .limit(1)
)


async def _tell_who_answered(ctx: Context, ticket: Ticket, said: str) -> None:
    """What a waiting resident writes after a member of staff answered them from WeCom (回复 N …,
    most likely a question: 方便留个电话吗？): pushed to that member in WeCom, who would otherwise
    have to open the console to see the answer. Answered from the console: nothing pushed. A hand-off
    given to an owner (派单): pushed to that owner, who is handling it, whoever answered."""
    since = ctx.now - timedelta(hours=float(flow_config()["handoff"]["attention_hours"]))
    rows = await fastsql.read(ctx.tx, _LAST_ANSWER, {"ticket_id": ticket.id, "since": since})
    if ticket.status != "escalated" and ticket.assignee:  # given to an owner: they hear it, answered or not
        who = ticket.assignee
    elif not rows or not rows[0]["active"] or (rows[0]["data"] or {}).get("source") != "wecom":
        return
    else:
        who = str(rows[0]["actor"])
    await outbox.push_worker(ctx.session, who, ctx.text(
        "handoff.resident_answered", number=ticket.number, text=notices.clip(said, 200),
        short=notices.short_number(ticket.number)), now=ctx.now, ticket_id=ticket.id)


async def _written_on(ctx: Context, ticket: Ticket, text: str, *, chase: bool = False, group: bool = True,
                      answerer: bool = True) -> bool:
    """What the resident wrote recorded on their waiting hand-off (the console shows it as their
    message, tied to the ticket; the note has phone numbers masked, as the rest of the hand-off);
    the staff group is told too after a quiet spell (no such record within ack_every_min). chase:
    the words chase (催一下, 怎么还没人来, 快点), also recorded as `urged`; the group is told of it,
    with how many times the resident has chased, whenever no chase was posted within
    chase_every_min, whatever else it heard meanwhile (a chase after a 补充 or after staff's answer
    was recorded and nobody pushed), while 催 催 typed in a row is one post. group=False: never
    told here (the caller posts what it is); answerer=False: nor who answered or holds it
    (_tell_who_answered). Returns whether the group was told."""
    if not group:
        told = False
    elif chase:
        told = await _quiet(ctx, ticket, ("urged",), "chase_every_min")
    else:
        told = await _quiet(ctx, ticket, ("resident_wrote",))
    said = notices.safe_text(text.strip())  # phones masked: staff who may see them read the message itself
    actor = f"resident:{hash_openid(ctx.openid)}"
    await add_event(ctx.session, ticket, "resident_wrote", actor, ctx.now, note=said[:500],
                    data={"chase": True} if chase else None)
    if chase:
        # no note: the words are the message beside it (the console's timeline shows them once)
        await add_event(ctx.session, ticket, "urged", actor, ctx.now, data={"pushed": told})
    ctx.tickets.append(ticket)  # the message and the answer are tied to it: the console's conversation
    if answerer:
        await _tell_who_answered(ctx, ticket, said)
    if ticket.status != "escalated" and ticket.assignee:
        return False  # given to an owner: they were pushed it (_tell_who_answered), not the staff group
    if told:  # the first word after a quiet spell: the staff group is told too, not every 收到
        times = await ctx.session.scalar(select(func.count()).select_from(_E).where(
            _E.c.ticket_id == ticket.id, _E.c.action == "urged")) if chase else 0
        await outbox.push_group(ctx.session, notices.staff_addendum_markdown(ctx.svc, ticket, said, chases=int(times or 0)),
                                now=ctx.now, ticket_id=ticket.id)
    return told
