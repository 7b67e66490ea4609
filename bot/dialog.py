"""One message in: lock the resident, record the message, and decide the reply.

Inside the resident's lock and one transaction: record the message (the same statement touches the
resident and returns its row, dialog state included) and route it — a command (取消, 返回, 人工 …),
the running flow's next step, a pending satisfaction survey, a menu pick, or the classifier's
intent, which starts its flow with the slots the opening message already gave. The next dialog
state is written in that transaction too, so a failed message leaves the conversation where it was
and WeChat's retry replays it, and a handled one can never leave its state behind.
"""

from __future__ import annotations

import asyncio
import functools
import importlib
import logging
import re
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import datetime, timedelta
from types import ModuleType
from typing import TYPE_CHECKING, Any

from aiohttp import web
from sqlalchemy import bindparam, insert, literal, select, union_all, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot import dispatch, metrics, reminders, roster
from bot.clock import local
from bot.flows import engine, registry
from bot.flows import state as flow_state
from bot.flows.base import SWITCH, Answer, Context, Flow, Invalid
from bot.flows.commands import command_of, declines_nudge, is_word, leaves, normalize
from bot.flows.config import flow_config
from bot.flows.engine import Intent, Outcome
from bot.flows.handoff import hand_off, urgent_while_waiting, with_staff
from bot.flows.parsers import asks, is_question, place, place_building
from bot.flows.state import DialogState
from bot.flows.status import added_detail, chased, digits_asked, number_in, short_reply, status_line, status_reply, urges
from bot.inbound import AlreadyHandled, Inbound
from bot.limits import load_limits
from bot.notices import clip
from bot.privacy import hash_openid
from bot.services import Services
from bot.tickets import ACTIVE, add_event, get_by_number
from storage import fastsql
from storage.fastsql import Prepared, Transaction
from storage.models import Message, Person, Reminder, Resident, Ticket, TicketEvent

if TYPE_CHECKING:
    from bot.intents.requests import TwoRequests

log = logging.getLogger(__name__)

TRANSACTIONS_AT_ONCE = 8
BARE_THING_CHARS = 4  # an unknown message this short naming a complaint category is asked about
ABOUT = "about"  # the complaint flow's part while such a category waits for what is wrong with it
ABOUT_WINDOW_S = 600  # how long the category named alone is carried into the next message
AGAIN = "again"  # the complaint flow's part while a resident is asked whether a report is one made already
AGAIN_WITHIN = timedelta(days=7)  # the resident's own open report this recent, same kind and building
OUTAGE = "outage"  # the complaint flow's part while an announced outage's 1 登记 / 2 继续报修 waits (bot.outage_dialog.OFFER)
WAITING_PARTS = (ABOUT, AGAIN, OUTAGE)  # parts that wait for one answer: no nudge, no lapse notice
REPLY_SUFFIX = "#reply"  # a reply's row in the message log carries its delivery with this suffix

# Menu picks that are not flows: the digit / CLICK key → what to do.
MENU_DIGITS = {"5": "status", "6": "handoff"}
MENU_KEYS = {"MENU_MY_TICKETS": "status", "MENU_HANDOFF": "handoff"}


_RESIDENTS = Resident.__table__
_MESSAGES = Message.__table__
_REMINDERS = Reminder.__table__


def _bind(*names: str) -> dict[str, Any]:
    """Column name → a bind parameter named v_<column> (a SET/VALUES parameter may not share the
    column's own name)."""
    return {name: bindparam(f"v_{name}") for name in names}


@functools.cache
def _touch_statement(columns: frozenset[str]) -> Prepared:
    """UPDATE residents SET <columns> WHERE openid RETURNING the row, compiled once per column set."""
    return Prepared(
        update(_RESIDENTS).where(_RESIDENTS.c.openid == bindparam("v_openid"))
        .values(_bind(*sorted(columns))).returning(*_RESIDENTS.c)
    )


_FIRST_CONTACT = Prepared(insert(_RESIDENTS).values(
    _bind("openid", "subscribed", "last_message_at", "last_inbound_at", "window_opened_by", "created_at",
          "updated_at")
).returning(*_RESIDENTS.c))
_LOG = Prepared(insert(_MESSAGES).values(
    _bind("openid", "direction", "msg_type", "content", "media", "ticket_id", "author", "delivery", "created_at")
))
_LINK = Prepared(
    update(_MESSAGES)
    .where(_MESSAGES.c.openid == bindparam("v_openid"), _MESSAGES.c.created_at >= bindparam("v_since"),
           _MESSAGES.c.ticket_id.is_(None))
    .values(_bind("ticket_id"))
)
_MOVE_NUDGE = Prepared(
    update(_REMINDERS)
    .where(_REMINDERS.c.kind == "flow_nudge", _REMINDERS.c.target == bindparam("v_target"),
           _REMINDERS.c.state == "pending")
    .values(_bind("due_at", "cause_id", "dedup_key", "payload"))
)


def _touch(inbound: Inbound, now: datetime) -> tuple[Prepared, dict[str, Any]]:
    """The resident's UPDATE for this message: the 48-hour window opened, the follow state."""
    changes: dict[str, Any] = {"updated_at": now}
    if inbound.event == "unsubscribe":
        changes["subscribed"] = False
    elif inbound.event not in ("view", "location"):
        # Messages (48 hours), follows, scans and clicks (1 minute) open the customer-service
        # window (bot.cs_window).
        changes.update(subscribed=True, last_inbound_at=now,
                       window_opened_by="message" if not inbound.is_event else inbound.event)
        if not inbound.is_event:
            changes["last_message_at"] = now
    params = {f"v_{name}": value for name, value in changes.items()}
    return _touch_statement(frozenset(changes)), {"v_openid": inbound.openid, **params}


async def _first_contact(tx: AsyncSession | Transaction, params: dict[str, Any], now: datetime) -> dict[str, Any]:
    values = {"v_subscribed": True, "v_last_message_at": None, "v_last_inbound_at": None,
              "v_window_opened_by": None, **params}
    return (await fastsql.run(tx, _FIRST_CONTACT, {**values, "v_created_at": now})).rows[0]


def _inbound_row(inbound: Inbound, now: datetime, delivery: str | None = None) -> tuple[Prepared, dict[str, Any]]:
    content = inbound.text or (f"[{inbound.event}] {inbound.event_key}".strip() if inbound.is_event else "")
    msg_type = inbound.msg_type if not inbound.is_event else f"event:{inbound.event}"
    return _LOG, _message_params(inbound.openid, "in", msg_type, content, now, inbound.media or None,
                                 delivery=delivery)


def _message_params(openid: str, direction: str, msg_type: str, content: str, now: datetime,
                    media: dict[str, Any] | None = None, ticket_id: int | None = None,
                    delivery: str | None = None) -> dict[str, Any]:
    return {"v_openid": openid, "v_direction": direction, "v_msg_type": msg_type, "v_content": content,
            "v_media": media, "v_ticket_id": ticket_id, "v_author": None, "v_delivery": delivery,
            "v_created_at": now}


async def arrive(
    tx: AsyncSession | Transaction, inbound: Inbound, now: datetime, delivery: str | None = None
) -> dict[str, Any]:
    """The message's first writes, in one hop: the resident touched (created on first contact) and
    the message appended to the log, under its delivery's unique key when it came through the
    webhook (a delivery already recorded fails here, before anything else is written). Returns
    the resident's row (column → value).

    Fixed statements on the connection itself (storage.fastsql), sent together (one round trip on
    PostgreSQL): no unit of work, no ORM object until a flow asks for `ctx.resident`. The
    resident's lock keeps first contacts apart."""
    touch = _touch(inbound, now)
    touched = await fastsql.run_together(tx, [_inbound_row(inbound, now, delivery), touch])
    if touched.rows:
        return touched.rows[0]
    return await _first_contact(tx, touch[1], now)


def menu_text(svc: Services) -> str:
    """The service menu, as residents read it."""
    return svc.texts.get("menu.text")


def _optional(module: str) -> ModuleType | None:
    """A feature module written by another part of the project, when it is installed."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name != module:
            raise
        return None


def classify(svc: Services, text: str) -> Intent:
    """The classifier's intent, confidence and slots for text (unknown without a classifier)."""
    module = _optional("bot.intents.classifier")
    if module is None or not text.strip():
        return Intent("unknown", 0.0, {})
    result = module.get_classifier().classify(text, now=local(svc.clock.now(), svc.tz))
    return Intent(str(result.intent), float(result.confidence), dict(result.slots or {}))


def _in_transaction(svc: Services) -> asyncio.Semaphore:
    """At most TRANSACTIONS_AT_ONCE messages of this process inside their transaction at a time.

    One event loop interleaves every message it holds: with dozens in flight, each open
    transaction (and any lock it took, such as the duplicate search's) waits for all the others'
    turns on the CPU before it can commit. Fewer at once finish sooner and hold locks shorter."""
    gate = svc.extras.get("dialog.transactions")
    if gate is None:
        gate = svc.extras["dialog.transactions"] = asyncio.Semaphore(TRANSACTIONS_AT_ONCE)
    return gate


async def handle(svc: Services, inbound: Inbound, delivery: str | None = None) -> str | None:
    """Handle one inbound message for a resident, one at a time per resident; returns the reply.

    delivery identifies a webhook delivery across WeChat's retries ("openid:MsgId"): it is
    recorded with the message under a unique index, so a delivery the state store has forgotten
    (Redis restarted; a takeover after this process's heartbeat lapsed) is still handled once —
    the second attempt raises AlreadyHandled with the first one's reply."""
    try:
        return await _handle(svc, inbound, delivery)
    except Exception as exc:
        if delivery is None or not _is_repeat(exc):
            raise
        log.warning("delivery already handled: answered with its first reply",
                    extra={"fields": {"openid": hash_openid(inbound.openid)}})
        raise AlreadyHandled(await _earlier_reply(svc, delivery)) from exc


def _is_repeat(exc: BaseException) -> bool:
    """Whether exc is the unique index on messages.delivery refusing a second record (the driver's
    own IntegrityError on the reply path's fixed statements, or SQLAlchemy's wrapping of it)."""
    return type(exc).__name__ == "IntegrityError" and "delivery" in str(exc)


async def _earlier_reply(svc: Services, delivery: str) -> str | None:
    async with svc.sessions() as session:
        found = await session.scalar(select(Message.content).where(Message.delivery == delivery + REPLY_SUFFIX))
    return None if found is None else str(found)


def resident_lock(openid: str) -> str:
    """The state-store lock a resident's messages are handled under, one at a time."""
    return f"resident:{openid}"


async def _handle(svc: Services, inbound: Inbound, delivery: str | None) -> str | None:
    async with svc.store.lock(resident_lock(inbound.openid)):
        now = svc.clock.now()
        async with _in_transaction(svc), svc.sessions.message() as tx:
            row = await arrive(tx, inbound, now, delivery)
            held = flow_state.stored(row.get("dialog"))
            state = flow_state.live(svc, held)
            ctx = Context(svc, tx, row, inbound, now)
            lapsed = held if state is None and held is not None and not inbound.is_event else None
            resumed = _resumed(ctx, lapsed) or _dropped_after_lapse(ctx, lapsed)
            outcome = await engine.submitted(ctx, resumed or await route(ctx, state))
            if state is not None and state.slots.get(NEXT_MATTER):
                outcome = await _next_matter(ctx, state, outcome)
            if lapsed is not None and resumed is None:  # 继续 / 取消 answered as such, not 已经没有保存
                outcome = _lapse_told(ctx, lapsed, outcome)
            ticket_id = ctx.tickets[-1].id if ctx.tickets else None
            last: list[tuple[Prepared, dict[str, Any]]] = []
            if ticket_id is not None:
                last.append(_link_conversation(ctx, state, ticket_id))
            if outcome.reply:
                # Right after an erasure the conversation is kept only under the hashed openid.
                erased_at = _erased_at(ctx, row)
                who = hash_openid(inbound.openid) if erased_at is not None and erased_at >= now else inbound.openid
                last.append((_LOG, _message_params(
                    who, "out", "reply", outcome.reply, now, ticket_id=ticket_id,
                    delivery=None if delivery is None else delivery + REPLY_SUFFIX,
                )))
            if outcome.state is not state or (outcome.state is None and held is not None):
                # The next state in the same transaction (an expired one is cleared too).
                last.append(flow_state.save_statement(inbound.openid, outcome.state))
            if (outcome.state is not None and outcome.state is not state
                    and outcome.state.part not in WAITING_PARTS and not outcome.state.slots.get(LAPSE_TOLD)):
                last.append(_nudge(ctx, outcome.state))
            if last:
                # Independent writes (no one reads a row another writes): one round trip on PostgreSQL.
                done = await fastsql.run_together(tx, last)
                if last[-1][0] is _MOVE_NUDGE and not done.rowcount:
                    await _first_nudge(ctx, last[-1][1])
            metrics.MESSAGES.labels(inbound.msg_type, outcome.state.flow if outcome.state else "-").inc()
        if ctx.tickets:
            log.info("ticket from dialog", extra={"fields": {
                "openid": hash_openid(inbound.openid), "number": ctx.tickets[-1].number}})
        return outcome.reply or None


def _erased_at(ctx: Context, row: dict[str, Any]) -> datetime | None:
    """The resident's erasure time as this message left it: an erasure changes ctx.resident
    (bot.flows.profile); without one the row read on arrival holds."""
    value = ctx.resident.erased_at if "resident" in vars(ctx) else row.get("erased_at")
    return value if isinstance(value, datetime) else None


LAPSE_TOLD = "_lapse_told"  # slots key of a lapsed dialog kept for one message after saying so
LAPSE_GRACE = timedelta(hours=24)  # a request left longer than this is forgotten without a word
_CONTINUE = {"继续", "接着填", "接着办", "继续填", "继续办", "接着来", "继续吧"}


def _lapsed_flow(ctx: Context, lapsed: DialogState) -> Flow | None:
    """The flow of a dialog that lapsed (idle past flow_expire_s) less than LAPSE_GRACE ago."""
    flow = registry.get(lapsed.flow)
    idle = ctx.now - datetime.fromisoformat(lapsed.updated_at)
    return flow if flow is not None and lapsed.part not in WAITING_PARTS and idle < LAPSE_GRACE else None


def _resumed(ctx: Context, lapsed: DialogState | None) -> Outcome | None:
    """继续 after a request lapsed: it goes on where it stopped, with what was answered."""
    asked = lapsed is not None and engine.recalls(ctx.inbound.text)  # 我刚才说到哪了, hours later
    if lapsed is None or (normalize(ctx.inbound.text) not in _CONTINUE and not asked):
        return None
    flow = _lapsed_flow(ctx, lapsed)
    if flow is None:
        return None
    slots = {k: v for k, v in lapsed.slots.items() if k != LAPSE_TOLD}
    state = flow_state.touched(replace(lapsed, slots=slots), ctx.now)
    lead = ctx.text("flow.lapse_resumed", title=ctx.text(flow.title))
    return engine.recall(ctx, flow, state, lead) if asked else engine.resume(ctx, flow, state, lead)


def _dropped_after_lapse(ctx: Context, lapsed: DialogState | None) -> Outcome | None:
    """取消 after a request lapsed (its notice offers 继续): the request is dropped as 取消 drops a
    live one, not answered 现在没有正在办理的事 with the menu under the offer to go on."""
    flow = _lapsed_flow(ctx, lapsed) if lapsed is not None else None
    if flow is None or command_of(ctx.inbound.text) != "cancel":
        return None
    return _cancelled(ctx, flow)


def _lapse_told(ctx: Context, lapsed: DialogState, outcome: Outcome) -> Outcome:
    """The first message after a request lapsed unfinished says so (before: the request was gone
    without a word): with 继续 offered when nothing new began, the lapsed dialog kept, not live,
    for that one next message."""
    flow = _lapsed_flow(ctx, lapsed)
    if flow is None or lapsed.slots.get(LAPSE_TOLD) or outcome.state is lapsed:
        return outcome
    title = ctx.text(flow.title)
    if outcome.state is not None:  # something new began: the old request is gone
        return Outcome(engine.join_lines(ctx.text("flow.lapsed", title=title), outcome.reply), outcome.state)
    kept = replace(lapsed, slots={**lapsed.slots, LAPSE_TOLD: True})
    return Outcome(engine.join_lines(ctx.text("flow.lapsed_continue", title=title), outcome.reply), kept)


def _emergency_advice(ctx: Context, text: str) -> str:
    """What to do right now when text names an emergency (complaint.emergency_of), else ''."""
    complaint_module = _optional("bot.flows.complaint")
    advice = complaint_module.emergency_of(text) if complaint_module is not None else None
    return ctx.text(f"complaint.urgent.{advice}") if advice else ""


def _person_asked_in_emergency(found: Intent, text: str) -> bool:
    """Whether an opening names an emergency and asks for a person in words (config/flows.toml
    [handoff] emergency_words: 人工 我家水管爆了, 转人工 我老伴晕倒了)."""
    conf = flow_config()["handoff"]
    said = normalize(text)
    for word in conf.get("emergency_not", ()):
        said = said.replace(word, "")
    if not any(word in said for word in conf.get("emergency_words", ())):
        return False
    complaint_module = _optional("bot.flows.complaint")
    return complaint_module is not None and bool(complaint_module.urgent_said(found.slots, text))


def _cry_for_help(text: str) -> bool:
    """Whether an opening is a bare cry for help (快来人啊, 有没有人 快来): the emergency of
    config/flows.toml with hand_off = true, which goes to a person at once."""
    complaint_module = _optional("bot.flows.complaint")
    return complaint_module is not None and bool(complaint_module.hands_off(text))


async def _urgent_hand_off(ctx: Context, found: Intent, text: str) -> Outcome:
    """The urgent hand-off of an emergency told with a request for a person: the report's opening
    (what, where, which advice) is the emergency in hand (bot.flows.handoff), nothing else asked."""
    flow = registry.get("complaint")
    if flow is None:
        return Outcome(await hand_off(ctx, ctx.text("handoff.reason_intent")), None)
    opening = flow.opening(found.slots, text)
    state = flow_state.new_state(flow.name, flow.state(flow.steps[0].slot), ctx.now, opening)
    return Outcome(await hand_off(ctx, ctx.text("handoff.reason_intent"), flow, state), None)


def _in_english(text: str) -> bool:
    """Whether a message is written in English (bot.intents: no Chinese, a few Latin words)."""
    module = _optional("bot.intents.classifier")
    return module is not None and module.get_classifier().in_english(text)


async def _english(ctx: Context, found: Intent, text: str) -> Outcome:
    """A message in English: the dialog's questions are Chinese, so a person answers — the resident
    told so in English above the Chinese reply. An emergency (gas leak, trapped in the lift) is the
    urgent hand-off with the emergency numbers; hello, or thanks, the courtesy reply with a line in
    English; anything else the hand-off, with what the classifier made of it for staff."""
    complaint_module = _optional("bot.flows.complaint")
    urgent = complaint_module.urgent_said(found.slots, text) if complaint_module is not None else (
        found.slots.get("urgency") == "urgent")
    if urgent:
        handed = await _urgent_hand_off(ctx, found, text)
        return Outcome(ctx.text("dialog.english.urgent") + "\n" + handed.reply, handed.state)
    if found.intent == "greeting":
        line = "dialog.english.greeting" if _greets(text) else "dialog.english.courtesy"
        return Outcome(ctx.text(line) + "\n" + _courtesy(ctx, text), None)
    waiting = await with_staff(ctx, text)  # a second message while a person is awaited: for them
    if waiting is not None:
        return Outcome(ctx.text("dialog.english.waiting") + "\n" + waiting, None)
    kind = found.intent if found.intent in _ENGLISH_GUESSED else "unknown"
    guess = ctx.text(f"dialog.english.guess.{kind}")
    if kind == "complaint" and found.slots.get("category"):
        guess = ctx.text("dialog.english.guess_category", guess=guess, category=found.slots["category"])
    handed_off = await hand_off(ctx, ctx.text("dialog.english.reason", guess=guess))
    return Outcome(ctx.text("dialog.english.handed") + "\n" + handed_off, None)


# what the classifier made of an English message, said to staff in the hand-off's reason
_ENGLISH_GUESSED = ("complaint", "mediation", "elderly_service", "volunteer_signup", "ticket_status", "handoff")


async def route(ctx: Context, state: DialogState | None) -> Outcome:
    """Decide the reply and the next dialog state for the message in hand."""
    inbound = ctx.inbound
    flow = registry.get(state.flow) if state is not None else None
    if flow is None:
        state = None
    if state is not None and state.part in WAITING_PARTS:
        if inbound.msg_type in ("text", "voice") and inbound.text:
            if state.part == OUTAGE:
                return await _after_outage(ctx, state)
            return await (_after_about if state.part == ABOUT else _after_again)(ctx, state)
        state, flow = None, None  # a menu click, a photo: nothing is running yet
    if inbound.is_event:
        return await _event(ctx, state, flow)
    if inbound.msg_type == "voice" and not inbound.text:
        return Outcome(ctx.text("voice.unrecognized"), state)
    if inbound.unreadable or inbound.msg_type == "link":
        return await _unreadable(ctx, state, flow)
    command = command_of(inbound.text) if inbound.text else None
    if command is None and flow is not None and inbound.text and leaves(flow.name, inbound.text):
        command = "cancel"  # 我不想去了 in the volunteer signup: leaving it, as 取消 is
    if flow is not None and state is not None and inbound.text and await _declined_after_nudge(ctx, flow, state):
        return await _cancelled_kept(ctx, flow, state)  # 不用了 answering the idle nudge's 不需要了可以不用理会
    if command is not None:
        handled = await _command(ctx, command, state, flow)
        if handled is not None:
            return handled
    if state is not None and flow is not None:
        return await _in_flow(ctx, flow, state)
    survey = _optional("bot.flows.survey")
    if survey is not None and inbound.text:
        reply = await survey.handle_answer(ctx.svc, ctx.tx, inbound)
        if reply is not None:
            return Outcome(reply, None)
    if inbound.msg_type in ("image", "video", "shortvideo", "location"):
        attached = await _photo_for_report(ctx)
        if attached is None and inbound.msg_type == "location" and inbound.text:
            attached = await with_staff(ctx, inbound.text)  # where they are, for the person awaited
        return Outcome(attached, None) if attached is not None else _media_opening(ctx)
    return await _opening(ctx, inbound.text)


_TITLE_SHOWN = 40  # characters of a shared link's title said back


async def _unreadable(ctx: Context, state: DialogState | None, flow: Flow | None) -> Outcome:
    """A file, a sticker, a mini-program card or a shared link: nothing to read (a link's title is
    an article's, not an answer: 关于小区停车收费的通知 was read as the category 停车). Said so,
    and the question in hand asked again, or, outside a request, what to send instead — unless a
    person the resident asked for is awaited: a link's or file's title and address go to them."""
    media = ctx.inbound.media
    title = str(media.get("title") or "").strip()
    if flow is None or state is None:
        shared = " ".join(p for p in (title, str(media.get("url") or "").strip()) if p)
        label = f"console.inbound.{ctx.inbound.msg_type}"  # [链接], [文件] as the console says them
        kind = ctx.text(label) if ctx.svc.texts.has(label) else ""
        waiting = await with_staff(ctx, f"{kind} {shared}".strip()) if shared else None
        if waiting is not None:
            return Outcome(waiting, state)
    if ctx.inbound.msg_type == "link" and title:
        said = ctx.text("dialog.link_unread", title=clip(title, _TITLE_SHOWN))
    else:
        said = ctx.text("dialog.unreadable")
    if flow is not None and state is not None:
        return engine.resume(ctx, flow, state, said + ctx.text("dialog.unreadable_answer"))
    return Outcome(said + ctx.text("dialog.unreadable_tell"), state)


async def _emergency_midway(ctx: Context, flow: Flow, state: DialogState, text: str) -> Outcome | None:
    """An emergency said in the middle of another request (我闻到煤气味了 where a booking asks the
    name, 我妈摔倒了 起不来了 at its age, 快来人啊): served as an opening is — the advice and the
    urgent report, or the urgent hand-off — the request in hand left unsubmitted, said so. It was
    taken for the name, or asked 要先放下它吗 with no advice. None otherwise; a report's own
    questions keep their answers (its description may name the emergency it is) — except a report
    of something else, not urgent, that already says what it is about (楼道灯坏了, then 快来人啊 or
    我闻到煤气味了 where the place is asked: it was 好像不是一个地点)."""
    complaint_module = _optional("bot.flows.complaint")
    if complaint_module is None or complaint_module.emergency_of(text) is None:
        return None
    if flow.name == "complaint" and (
        state.slots.get("urgency") == "urgent" or not state.slots.get("description")
        or state.part in ("description", "confirm", "edit", "switch")
    ):
        found = classify(ctx.svc, text) if state.slots.get("urgency") != "urgent" else None
        if found is not None and complaint_module.urgent_said(found.slots, text):
            # 1 (报事报修), then 我家老人摔倒了起不来 while a person is awaited: the report's own
            # questions go on, and the waiting hand-off shows it too, as at an opening
            await urgent_while_waiting(ctx, text, complaint_module.emergency_of(text) or "generic",
                                       str(found.slots.get("category") or ""))
        return None
    if not complaint_module.urgent_said(classify(ctx.svc, text).slots, text):
        return None
    served = await _opening(ctx, text, cut=False)
    return Outcome(engine.join_lines(served.reply, ctx.text("flow.left_for_emergency", current=ctx.text(flow.title))),
                   served.state)


async def _in_flow(ctx: Context, flow: Flow, state: DialogState) -> Outcome:
    """The running flow's next step; a status question or a request for a person is served at once."""
    text = ctx.inbound.text
    survey = _optional("bot.flows.survey")
    rated = await survey.answer_in_flow(ctx.svc, ctx.tx, ctx.inbound) if survey is not None else None
    if rated is not None:  # 满意 to a survey, sent where a booking asks a name: rated, then asked again
        return engine.resume(ctx, flow, state, rated)
    urgent = await _emergency_midway(ctx, flow, state, text)
    if urgent is not None:
        return urgent
    if state.part not in ("confirm", "edit", "switch") and number_in(text):
        reply = await status_reply(ctx, number_in(text))
        return engine.resume(ctx, flow, state, reply)
    if state.part not in ("edit", "switch") and digits_asked(text) and not (
        normalize(text).isdigit() and engine.asks_place(flow, state)  # 502 where the place is asked: a room
    ):  # 0006怎么样了 (not a phone number)
        reply = await short_reply(ctx, text)
        if reply is not None:
            return engine.resume(ctx, flow, state, reply)
    if state.part == "confirm" and len(normalize(text)) >= 4:  # 我的工单怎么样了 at the summary
        found = classify(ctx.svc, text)
        if found.intent == "ticket_status" and found.confidence >= float(flow_config()["switch"]["min_confidence"]):
            return engine.resume(ctx, flow, state, await status_reply(ctx, None))
    said = normalize(text)
    if _ACTIVITY_LIST.match(said) or _SIGNUP.match(said) or _CANCEL_SIGNUP.match(said):
        # 有什么活动, 报名/取消报名 楼道清洁 in the middle of something: served, then back to it
        listed = await _activity_request(ctx, text, known_only=True)
        if listed is not None:
            return engine.resume(ctx, flow, state, listed)
    activities = _optional("bot.activities")
    if activities is not None and activities.asks_mine(text):  # 我的报名 is no answer to the question in hand
        return engine.resume(ctx, flow, state, await activities.my_signups_reply(ctx.svc, ctx.session, ctx.openid))
    outage = _optional("bot.outage_dialog")
    if outage is not None and state.part != "edit" and outage.kind_of(text):
        found = classify(ctx.svc, text)
        complaint_module = _optional("bot.flows.complaint")
        if complaint_module is None or not complaint_module.urgent_said(found.slots, text):
            told = await outage.said_midway(ctx, state, text, found.slots)
            if told is not None:  # 停水了 where a booking asks who it is for: the announcement, then back
                return engine.resume(ctx, flow, state, told)
    read: list[Intent] = []

    def classify_answer(said: str) -> Intent:
        read.append(classify(ctx.svc, said))
        return read[-1]

    mediation = _optional("bot.flows.mediation")
    told = mediation.talked_answer(ctx, flow, state) if mediation is not None else None
    if told is not None:  # 没找过他 at 沟通过吗: its words, not the 找过 inside them
        return told
    outcome = await engine.answer(ctx, flow, state, classify=classify_answer)
    offered = await outage.after_answer(ctx, state, outcome) if outage is not None else None
    if offered is not None:  # 家里没水了, then 几号楼: 3号楼, where 3号楼's water cut is announced
        return offered
    again = await _reported_midway(ctx, state, outcome)
    if again is not None:  # 跟上次一样 暖气又不热了, then the place: their own report of it is open
        return again
    refused = outcome.state is not None and outcome.state.invalid > state.invalid
    sure = float(flow_config()["switch"]["min_confidence"])
    if refused and read and read[-1].intent == "ticket_status" and (
        read[-1].confidence >= sure or len(normalize(text)) <= 6  # 我的工单, 进度: short, whatever the confidence
    ):
        # 我的工单怎么样了 where the question in hand could not read it: answered, then asked again.
        return engine.resume(ctx, flow, state, await status_reply(ctx, None))
    # …or its check turned it away (垃圾几点收 where the place is asked: 好像不是一个地点)
    checked_away = outcome.state is not None and outcome.state.slots.get(engine.REFUSED) not in (
        None, state.slots.get(engine.REFUSED))
    if (refused or checked_away) and (
            asks(text)):
        if outage is not None and outage.kind_of(text):
            announced = await outage.answer_midway(ctx, text, classify(ctx.svc, text).slots)
            if announced is not None:  # 什么时候来水 where a phone is asked: staff's announcement, then back
                return engine.resume(ctx, flow, state, announced)
        faq = _optional("bot.faq")
        known = faq.answer(text) if faq is not None else None
        if known is not None:  # 你们几点上班 where a photo is asked: the operators' answer, then back
            return engine.resume(ctx, flow, state, ctx.text("dialog.faq", answer=known))
        if engine.asks_place(flow, state):  # 小区几点锁门 where the place is asked: a question, not a wrong place
            return engine.resume(ctx, flow, state, ctx.text("dialog.question_midway", question=clip(text.strip(), 30)))
    return outcome


async def _event(ctx: Context, state: DialogState | None, flow: Flow | None) -> Outcome:
    inbound = ctx.inbound
    if inbound.event == "subscribe":
        return Outcome(ctx.text("welcome.subscribe", menu=menu_text(ctx.svc)), state)
    if inbound.event == "unsubscribe":
        return Outcome("", None)
    if inbound.event == "click":
        return await _menu_pick(ctx, state, key=inbound.event_key)
    if inbound.event == "scan":  # a follower scanned the account's code (a poster): the chat opens
        running, held = _running(state)
        if running is not None and held is not None:
            return engine.recall(ctx, running, held)
        return Outcome(ctx.text("dialog.greeting", menu=menu_text(ctx.svc)), state)
    return Outcome("", state)


async def _menu_pick(ctx: Context, state: DialogState | None, *, key: str = "", digit: str = "") -> Outcome:
    """A service picked from the menu (a CLICK key or a digit)."""
    action = MENU_KEYS.get(key) if key else MENU_DIGITS.get(digit)
    running, held = _running(state)
    if action == "status":
        reply = await status_reply(ctx, None)
        if running is not None and held is not None:  # 我的工单 pressed mid-request: then its question
            return engine.resume(ctx, running, held, reply)
        return Outcome(reply, state)
    if action == "handoff":
        return Outcome(await hand_off(ctx, ctx.text("handoff.reason_command"), *_running(state)), None)
    flow = registry.for_menu_key(key) if key else registry.for_menu_number(digit)
    if flow is None:
        if running is not None and held is not None:
            # A key no service has (a button of a menu since replaced, still on the phone) in the
            # middle of a request: where it stands — the menu alone left a 1 to be read as its answer.
            return engine.recall(ctx, running, held)
        return Outcome(menu_text(ctx.svc), state)
    if key and running is not None and held is not None and running.name == flow.name:
        # The button of the request in hand, pressed again (to find the way back): it goes on
        # where it was, with what is noted — it began again, dropping what was said without a word.
        return engine.recall(ctx, running, held)
    if flow.name == "volunteer_signup" and state is None:
        registered = await _registered_volunteer(ctx)
        if registered is not None:
            return registered
    lead = ""
    if state is not None and state.flow != flow.name and registry.get(state.flow) is not None:
        lead = ctx.text("flow.switched", current=ctx.text(registry.FLOWS[state.flow].title))
    return engine.start(ctx, flow, {}, "", lead=lead)


def _running(state: DialogState | None) -> tuple[Flow | None, DialogState | None]:
    flow = registry.get(state.flow) if state is not None else None
    return (flow, state) if flow is not None else (None, None)


async def _command(ctx: Context, command: str, state: DialogState | None, flow: Flow | None) -> Outcome | None:
    """A command word; None when it is not served here (the message is then read as an answer)."""
    if command == "handoff":
        reason = ctx.text("handoff.reason_command")
        return Outcome(await hand_off(ctx, reason, flow, state), None)
    if command == "my_info":
        profile = _optional("bot.flows.profile")
        if profile is None:
            return None
        info = await profile.my_info(ctx.svc, ctx.session, ctx.openid)
        if state is not None and flow is not None:
            return engine.resume(ctx, flow, state, info)
        return Outcome(info, None)
    if command == "erase_info":
        erase = registry.for_command("erase_info")
        if erase is None:
            return None
        if state is not None and flow is not None and flow.name != erase.name:
            # asked first, as for any other request: 否 keeps what was being filled in
            pending = {"flow": erase.name, "slots": {}, "text": ctx.inbound.text, "back": state.step}
            question = ctx.text("flow.switch_ask", current=ctx.text(flow.title), other=ctx.text(erase.title))
            return Outcome(question, replace(state, step=flow.state(SWITCH), pending=pending))
        return engine.start(ctx, erase, {}, ctx.inbound.text)
    if state is None or flow is None:
        if command == "cancel":
            offered = await _booking_reminded(ctx)  # 取消 right after a booking's reminder: that booking
            if offered is not None:
                return offered
            activities = _optional("bot.activities")
            dropped = await activities.bare_drop(ctx, ctx.inbound.text) if activities is not None else None
            if dropped is not None:  # 不报了 right after 报名: that signup
                return Outcome(dropped, None)
            return Outcome(ctx.text("flow.nothing_to_cancel") + "\n" + menu_text(ctx.svc), None)
        return Outcome(menu_text(ctx.svc), None)
    if command == "cancel":
        if engine.answers_step(flow, state, ctx.inbound.text):
            return None  # read as the answer: cancelling would drop everything said so far
        return await _cancelled_kept(ctx, flow, state)
    if command == "back":
        return engine.back(ctx, flow, state)
    if command == "restart":
        return engine.restart(ctx, flow, state)
    return engine.help_text(ctx, flow, state)


async def _opening(ctx: Context, text: str, *, cut: bool = True) -> Outcome:
    """A message outside any flow: a menu digit, or the classifier's intent (the first of two
    requests in it, unless cut is False: a side already cut from one)."""
    digit = normalize(text)
    undo = _optional("bot.flows.booking_undo")
    booking = registry.get("elderly_service")
    back = await undo.bring_back(ctx, booking, text) if undo is not None and booking is not None else None
    if back is not None:  # 那还是订吧 right after a booking was dropped: that booking again
        return back
    activities = _optional("bot.activities")
    picked = await activities.picked(ctx, text) if activities is not None and len(digit) <= 4 else None
    if picked is not None:  # 4 right after 近期活动's list: that activity, not the menu's 4
        return Outcome(picked, None)
    if len(digit) == 1 and digit.isdigit():
        return await _menu_pick(ctx, None, digit=digit)
    change = _optional("bot.flows.booking_change")
    if change is not None and change.drops_reminded(text):  # 不要了 to a booking's reminder: that booking
        offered = await change.reminded_cancel(ctx)
        if offered is not None:
            return offered
        dropped = await activities.reminded_drop(ctx) if activities is not None else None
        if dropped is not None:  # 明天去不了了 to an activity's reminder: that signup withdrawn
            return Outcome(dropped, None)
    dropped = await activities.bare_drop(ctx, text) if activities is not None else None
    if dropped is not None:  # 我不想去了 right after 报名 (or an activity's reminder): that signup
        return Outcome(dropped, None)
    dropped = await activities.named_drop(ctx, text) if activities is not None else None
    if dropped is not None:  # 楼道清洁我不去了: that signup, not a 助洁 booking
        return Outcome(dropped, None)
    fixed = await activities.reminded_move(ctx, text) if activities is not None else None
    if fixed is not None:  # 改到下午 to an activity's reminder: its time stays, not "no booking"
        return Outcome(fixed, None)
    booking_flow = registry.get("elderly_service")
    if booking_flow is not None and _is_booking_reply(text):
        # The words reminders tell residents to answer with: 取消预约 / 改时间.
        return await _booking_change(ctx, booking_flow, {}, text)
    activity_reply = await _activity_request(ctx, text)
    if activity_reply is not None:
        return Outcome(activity_reply, None)
    volunteer = _optional("bot.flows.volunteer")
    changed = await volunteer.change_areas(ctx, text) if volunteer is not None else None
    if changed is not None:  # 改方向 助老 文化 / 加方向 文化 from a registered volunteer
        return Outcome(changed, None)
    correction = _optional("bot.flows.correction")
    moved = await correction.corrected_place(ctx, text) if correction is not None else None
    if moved is not None:  # 不对，是5号楼 right after an emergency was submitted at once: the report moved
        return Outcome(moved, None)
    added = await added_detail(ctx, text)  # 补充一下：灯罩也掉了 — to the report already made
    if added is not None:
        lead = _emergency_advice(ctx, text)
        return Outcome(engine.join_lines(lead, added), None)
    withdraw = _optional("bot.flows.withdraw")
    withdrawn = await withdraw.begin(ctx, text) if withdraw is not None else None
    if withdrawn is not None:  # 撤销工单 0001, 不用修了: the resident's own report withdrawn
        return withdrawn
    profile = _optional("bot.flows.profile")
    new_phone = await profile.phone_changed(ctx, text) if profile is not None else None
    if new_phone is not None:  # 电话改成139…: the bound phone, and open tickets' contact
        return Outcome(new_phone, None)
    both = _two_requests(ctx, text) if cut else None
    if both is not None:  # 楼道灯坏了 还有我想约个理发: the first served, the other noted for next
        return await _first_of_two(ctx, both.first, both.second)
    found = classify(ctx.svc, text)
    if _in_english(text):  # The light in my corridor is broken: a person answers, in both languages
        return await _english(ctx, found, text)
    if found.intent == "ticket_status":
        number = str(found.slots.get("ticket_number") or "") or number_in(text)
        short = None if number else await short_reply(ctx, text)  # 0001进度: by its last digits
        if not (number or short):
            fresh = await _unreported_thing(ctx, found.slots, text)
            if fresh is not None:  # 啥时候来修电梯 with no lift reported: the lift's report
                return fresh
            # 怎么还没人来啊 都一天了: the owner chased, as 催一下 does (only then: chased reads the
            # open tickets through the session, a plain 我的工单怎么样了 lists them on the driver)
            chase = await chased(ctx, text) if urges(text) else None
            if chase is not None:
                return Outcome(chase, None)
        return Outcome(short or await status_reply(ctx, number or None), None)
    if _person_asked_in_emergency(found, text) or _cry_for_help(text):
        # 人工 我家水管爆了 6号楼: the urgent hand-off now (staff group, the building's grid workers,
        # the advice), as 人工 inside the urgent report is — not the report's questions first; and
        # 快来人啊 alone, an old person's cry for help, reaches a person at once and is asked where
        return await _urgent_hand_off(ctx, found, text)
    if found.intent == "handoff":
        return Outcome(await hand_off(ctx, ctx.text("handoff.reason_intent")), None)
    # An emergency skips what follows: advice first (摔倒了 头上流血了 too, which no intent names).
    complaint_module = _optional("bot.flows.complaint")
    urgent = complaint_module.urgent_said(found.slots, text) if complaint_module is not None else (
        found.slots.get("urgency") == "urgent")
    if not urgent:
        told = await _outage_told(ctx, found, text)
        if told is not None:  # 什么时候来水 / 3号楼停水了 where staff announced it: what they know
            return told
        faq = _optional("bot.faq")
        early = found.intent not in ("greeting", "unknown")  # 什么时候停水: a question, not a report
        known = faq.answer(text, before_services=early) if faq is not None else None
        if known is not None:  # 几点上班, 居住证怎么办: the operators' answer (config/faq.toml)
            return Outcome(ctx.text("dialog.faq", answer=known), None)
    if found.intent == "greeting" and not urgent:  # 你好 我闻到煤气味了: the emergency, not a greeting
        if _greets(text):  # 你好 在吗 while a person is awaited: for that person, not the menu
            waiting = await with_staff(ctx, text)
            if waiting is not None:
                return Outcome(waiting, None)
        acked = await _reminder_acked(ctx, text)
        if acked is not None:  # 好的 准时到 to a booking's reminder: 到时见, not 不客气
            return acked
        early = await _rated_before_done(ctx)
        if early is not None:  # 满意 while the job is still being handled: rated once it is done
            return early
        if not _ack_only(text):  # 好的 我下来了 after a worker's 回复: for them, not 不客气
            answer = await _answer_to_staff(ctx, text)
            if answer is not None:
                return Outcome(answer, None)
        return Outcome(_courtesy(ctx, text), None)
    if not urgent and found.intent == "complaint" and _about_staff(text):
        # 投诉网格员: to the service centre, not to the building's grid worker it may be about
        handed = await hand_off(ctx, ctx.text("handoff.reason_about_staff"))
        return Outcome(ctx.text("handoff.about_staff") + "\n" + handed, None)
    if not urgent:
        waiting = await with_staff(ctx, text)  # 人工 asked for: what follows is for that person
        if waiting is not None:
            return Outcome(waiting, None)
    advice = complaint_module.emergency_of(text) if urgent and complaint_module is not None else None
    if urgent:  # 我家老人摔倒了起不来 while a person is awaited: that hand-off shows it too (the report goes on)
        await urgent_while_waiting(ctx, text, advice or "generic", str(found.slots.get("category") or ""))
    flow = registry.for_intent(found.intent)
    if urgent and (flow is None or flow.name == "mediation"):
        # an emergency is never answered with the menu, nor with a dispute's questions (楼下两个人
        # 打起来了 动刀了 was asked 您和对方沟通过吗): its advice first, and the urgent report
        flow = registry.get("complaint")
    if flow is None:
        if number_in(text):
            return Outcome(await status_reply(ctx, number_in(text)), None)
        short = await short_reply(ctx, text)  # 0001怎么样了, 工单1: a ticket by its last digits
        if short is not None:
            return Outcome(short, None)
        chase = await chased(ctx, text)  # 怎么还没人来, 催一下 with a report open: about that report
        if chase is not None:
            return Outcome(chase, None)
        if engine.another_thing(text):  # 还有一个事: they are about to say it
            return Outcome(ctx.text("dialog.another_thing"), None)
        if _only_fillers(text):  # 喂, 喂喂, 嗯: someone starting to talk
            return Outcome(ctx.text("dialog.greeting", menu=menu_text(ctx.svc)), None)
        answer = await _answer_to_staff(ctx, text)
        if answer is not None:  # 3号楼2单元502 after staff asked 请问是几号楼: for them, not the menu
            return Outcome(answer, None)
        if found.slots.get("category") and len(normalize(text)) <= BARE_THING_CHARS:
            # 电梯, 路灯, 下水道: a thing named, not yet what is wrong with it; the next message
            # (坏了, 是的, 南门那边) is read with it (_after_about).
            about = registry.get("complaint")
            waiting = None if about is None else replace(flow_state.new_state(
                about.name, about.state(ABOUT), ctx.now, {"category": found.slots["category"]}),
                pending={"said": text.strip()})
            return Outcome(ctx.text("dialog.unknown_about", category=found.slots["category"]), waiting)
        noted = await _booking_noted(ctx, text)
        if noted is not None:  # 明天那个饭 少放点盐啊: that booking's note, its provider told
            return noted
        asked = await _booking_asked(ctx, text)
        if asked is not None:  # 几点来着, 谁来送啊 (to a booking's reminder): the bookings ahead
            return asked
        acked = await _reminder_acked(ctx, text)
        if acked is not None:  # 一定到 (to a reminder): 到时见
            return acked
        early = await _rated_before_done(ctx)
        if early is not None:  # 5分 while the job is still being handled
            return early
        return Outcome(ctx.text("dialog.unknown", menu=menu_text(ctx.svc)), None)
    if flow.name == "volunteer_signup" and "党员" not in text:  # 党员报到 adds to the record: the flow
        registered = await _registered_volunteer(ctx)
        if registered is not None:
            return registered
    if flow.name == "elderly_service":
        return await _booking_change(ctx, flow, found.slots, text)
    if flow.name == "complaint" and urgent:
        again = await _emergency_again(ctx, found.slots, text)
        if again is not None:  # 电梯困人 again minutes after reporting it: that report chased at once
            return again
    if flow.name == "complaint" and not urgent:
        again = await _reported_already(ctx, flow, found.slots, text)
        if again is not None:
            return again
        outage = _optional("bot.outage_dialog")
        restored = await outage.restored_place(ctx, found.slots, text) if outage is not None else None
        if restored is not None:  # 我家还是没电 after the 恢复通知: the building the outage registration knows
            return engine.start(ctx, flow, restored[0], text, lead=restored[1])
        complaint_module = _optional("bot.flows.complaint")
        if complaint_module is not None:  # 跟上次一样 楼道灯又坏了: the last report's place offered
            return engine.start(ctx, flow, await complaint_module.with_last_place(ctx, found.slots, text), text)
    return engine.start(ctx, flow, found.slots, text)


NEXT_MATTER = "_next_matter"  # slots key: the other request of the opening, taken when this one ends
_QUOTED_CHARS = 30


def _two_requests(ctx: Context, text: str) -> TwoRequests | None:
    """The two requests an opening holds (bot.intents.requests), unless it names an emergency."""
    module = _optional("bot.intents.classifier")
    if module is None:
        return None
    both = module.get_classifier().two_requests(text, now=local(ctx.now, ctx.svc.tz))
    complaint_module = _optional("bot.flows.complaint")
    if both is None or (complaint_module is not None
                        and complaint_module.urgent_said(classify(ctx.svc, text).slots, text)):
        return None
    return both


def _quoted(text: str) -> str:
    said = text.strip()
    return said if len(said) <= _QUOTED_CHARS else said[:_QUOTED_CHARS] + "…"


async def _first_of_two(ctx: Context, first: str, second: str) -> Outcome:
    """Two requests in one opening, served as a desk clerk would: the first now, the resident told
    the other is noted and taken next; one answered at once (a status question) is followed by the
    other in the same reply. Never two flows at once."""
    served = await _opening(ctx, first, cut=False)
    if served.state is None:
        then = await _opening(ctx, second, cut=False)
        lead = ctx.text("dialog.next_matter", other=_quoted(second))
        return Outcome(engine.join_lines(served.reply, lead, then.reply), then.state)
    state = replace(served.state, slots={**served.state.slots, NEXT_MATTER: second})
    return Outcome(engine.join_lines(ctx.text("dialog.two_matters", other=_quoted(second)), served.reply), state)


async def _next_matter(ctx: Context, state: DialogState, outcome: Outcome) -> Outcome:
    """The opening's other request once the one in hand ends: taken at once after its ticket (or
    after 1 催一下 chased the report made already), else (cancelled, handed to a person) the
    resident reminded of it; carried into what the request in hand became (2 重新登记, another flow
    switched to)."""
    other = str(state.slots[NEXT_MATTER])
    if outcome.state is not None:
        if outcome.state.slots.get(NEXT_MATTER):
            return outcome
        return Outcome(outcome.reply, replace(outcome.state, slots={**outcome.state.slots, NEXT_MATTER: other}))
    text = ctx.inbound.text or ""
    dropped = command_of(text) == "cancel" or leaves(state.flow, text)
    if dropped or any(t.kind == "handoff" for t in ctx.tickets):
        return Outcome(engine.join_lines(outcome.reply, ctx.text("dialog.next_matter_left", other=_quoted(other))), None)
    then = await _opening(ctx, other, cut=False)
    lead = ctx.text("dialog.next_matter", other=_quoted(other))
    return Outcome(engine.join_lines(outcome.reply, lead, then.reply), then.state)


async def _answer_to_staff(ctx: Context, text: str) -> str | None:
    """A message nothing else reads, or more than thanks (好的 我下来了, 好的 大概什么时候到), from a
    resident answered on an open ticket of theirs (by staff, from the console or WeCom, or by its
    owner) within the last [handoff] attention_hours: most likely the answer to what they were
    told or asked (请问是几号楼几室？), added to that ticket as 补充一下 adds (its owner told, else
    the staff group) instead of 没太明白 and the menu or 不客气 — and whoever answered from WeCom,
    when not the owner, hears it too. None when nobody answered them lately."""
    since = ctx.now - timedelta(hours=float(flow_config()["handoff"]["attention_hours"]))
    answer = await dispatch.last_answer(ctx.tx, ctx.openid, since)
    if answer is None:
        return None
    added = await added_detail(ctx, f"补充一下{answer['number']}：{text.strip()}")
    if added is not None:
        await dispatch.tell_answerer(ctx.svc, ctx.session, answer, text)
    return added


def _ack_only(text: str) -> bool:
    """Whether a courtesy message is nothing but thanks, praise, a greeting or a goodbye (好的 谢谢,
    辛苦了 你们真好): no news for whoever answered the resident, a word back is enough."""
    module = _optional("bot.intents.classifier")
    if module is None:
        return True
    classifier = module.get_classifier()
    words = [w for w in classifier.segments(text) if w.strip()]
    courteous = {"@greet", "@thanks", "@closing", "@praise"}
    return engine.courtesy(text) or all(classifier.terms(w) & courteous or not classifier.normalize(w).strip()
                                        for w in words)


_TICKETS = Ticket.__table__


def _open_complaint(*where: Any) -> Any:
    """The ids of open complaints of the category asked about, matching where."""
    return select(_TICKETS.c.id).where(
        _TICKETS.c.kind == "complaint", _TICKETS.c.category == bindparam("category"),
        _TICKETS.c.status.in_([literal(status) for status in ACTIVE]), *where)  # no expanding IN


# The resident's own open report of a kind and building (the latest), and the neighbours' jobs
# (the earliest, not themselves linked, as many as dispatch weighs), with their words: one
# statement on the driver, where the complaint opening sent two ORM queries (ix_tickets_resident;
# ix_tickets_duplicate). Of the neighbours' jobs the first of the very problem said is told (a
# flat's leak reported first is not the building's water cut reported next).
_WORDS = (_TICKETS.c.summary, _TICKETS.c.fields, _TICKETS.c.created_at)
_OWN = _open_complaint(
    _TICKETS.c.resident == bindparam("openid"), _TICKETS.c.building == bindparam("building"),
    _TICKETS.c.created_at >= bindparam("own_since"),
).add_columns(*_WORDS).order_by(_TICKETS.c.id.desc()).limit(1).subquery()
_NEIGHBOURS = _open_complaint(
    _TICKETS.c.building_key == bindparam("key"), _TICKETS.c.parent_id.is_(None),
    _TICKETS.c.created_at >= bindparam("since"), _TICKETS.c.resident != bindparam("openid"),
).add_columns(*_WORDS).order_by(_TICKETS.c.created_at, _TICKETS.c.id).limit(dispatch.DUPLICATE_CANDIDATES).subquery()
_REPORTED = Prepared(union_all(*(
    select(part.c.id, part.c.summary, part.c.fields, part.c.created_at, literal(own).label("own"))
    for part, own in ((_OWN, True), (_NEIGHBOURS, False))
)))


async def _unreported_thing(ctx: Context, slots: dict[str, Any], text: str) -> Outcome | None:
    """啥时候来修电梯 (a when-is-it-fixed question naming no report of theirs), asked by a resident with
    no open report of that kind (电梯): nothing to tell the status of, so it is the report of it, the
    complaint's questions asked. None when the question names no kind of problem, says a report
    exists (我那个修灯的事怎么样了) or the resident has an open report of it (its status then)."""
    category = slots.get("category")
    flow = registry.get("complaint")
    module = _optional("bot.intents.classifier")
    if not category or flow is None or module is None:
        return None
    terms = module.get_classifier().terms(text)
    if "@when_fix" not in terms or terms & {"@past_report", "@prior", "@report_noun", "@worker"}:
        return None  # 我那个修灯的事怎么样了, 上回报的电梯什么时候修: a report said to exist
    open_one = await ctx.session.scalar(
        select(Ticket.id).where(Ticket.resident == ctx.openid, Ticket.category == category,
                                Ticket.status.in_(ACTIVE)).limit(1))
    if open_one is not None:
        return None
    return engine.start(ctx, flow, slots, text)


AGAIN_DECLINED = "again_declined"  # a report's slot: its resident answered 2 重新登记 midway (not asked again)


async def _reported_midway(ctx: Context, before: DialogState, outcome: Outcome) -> Outcome | None:
    """A report whose building came only now (跟上次一样 暖气又不热了, then the last place 确认ed, or
    5号楼2单元301 answered) while the resident's own report of that kind there is still open: the
    same "you reported this already" choice as at an opening, 2 going on from the question it was
    at. It was a second ticket, dispatched to another grid worker of the building. None otherwise
    (no building or kind yet, both known before, declined before, an emergency)."""
    after = outcome.state
    if after is None or after.flow != "complaint" or before.flow != "complaint" or after.part in WAITING_PARTS:
        return None
    slots = after.slots
    if slots.get(AGAIN_DECLINED) or slots.get("emergency") or slots.get("urgency") == "urgent":
        return None
    building = place_building(slots)
    if building is None or place_building(before.slots) is not None or not slots.get("category"):
        return None
    flow = registry.get("complaint")
    said = str(slots.get("description") or slots.get("opening_text") or "")
    if flow is None:
        return None
    return await _reported_already(ctx, flow, {**slots, "building": building}, said, resume=after)


async def _reported_already(
    ctx: Context, flow: Flow, slots: dict[str, Any], text: str, *, resume: DialogState | None = None
) -> Outcome | None:
    """三号楼二单元楼道灯坏了 again, ten minutes after reporting it: the resident's own open report
    of that kind and building, and a choice (催一下, or a new report after all), instead of the
    questionnaire again and a second ticket linked to their own; else a neighbour's open report
    of it (_reported_by_neighbours). None when there is none."""
    category, building = slots.get("category"), slots.get("building")
    if not category or not building:
        return None
    key = roster.normalize_building(str(building))
    found = await fastsql.run(ctx.tx, _REPORTED, {
        "category": category, "openid": ctx.openid, "building": str(building),
        "own_since": ctx.now - AGAIN_WITHIN, "key": key,
        "since": ctx.now - timedelta(hours=load_limits().duplicate_window_hours),
    })
    own = next((row for row in found.rows if row["own"]), None)
    ticket = await fastsql.get(ctx.session, Ticket, int(own["id"])) if own is not None else None
    if ticket is not None and not dispatch.may_share(text, ticket, own=True):
        ticket = None  # 楼上漏水 after their own 停水了: another problem (config/flows.toml [linking])
    if ticket is None and resume is not None:
        return None  # midway, only their own: a neighbours' job is linked when this one is written
    if ticket is None:
        # The neighbours' first job of this very problem: a leak into one flat is not the
        # building's water cut, whichever of them was reported first.
        theirs = sorted((row for row in found.rows if not row["own"]), key=lambda row: (row["created_at"], row["id"]))
        same = None
        for row in theirs if key else ():
            if (dispatch.may_share(text, dispatch.said_in(row["summary"], row["fields"]))
                    and dispatch.same_place(text, slots, row["fields"])  # 3号楼门口's street light: not the stairwell's
                    and await dispatch.same_spot_as_linked(
                        ctx.tx, text, slots, int(row["id"]), category=str(category), building_key=key,
                        since=ctx.now - timedelta(hours=load_limits().duplicate_window_hours))):
                same = row
                break
        parent = await fastsql.get(ctx.session, Ticket, int(same["id"])) if same is not None else None
        if parent is None:
            return None
        return await _reported_by_neighbours(ctx, flow, slots, text, parent)
    if resume is not None:  # midway: 2 goes on from the question it was at
        waiting = replace(resume, step=flow.state(AGAIN),
                          pending={"said": text.strip(), "ticket": ticket.number, "resume": resume.step})
    else:
        waiting = replace(flow_state.new_state(flow.name, flow.state(AGAIN), ctx.now, dict(slots)),
                          pending={"said": text.strip(), "ticket": ticket.number})
    reported = local(ticket.created_at, ctx.svc.tz)
    reply = ctx.text("dialog.reported_already", when=f"{reported:%m月%d日 %H:%M}",
                     line=await status_line(ctx, ticket))
    return Outcome(reply, waiting)


async def _reported_by_neighbours(ctx: Context, flow: Flow, slots: dict[str, Any], text: str,
                                  parent: Ticket) -> Outcome:
    """停水了 from the twentieth resident of a building: the report is taken as usual, its first
    question led by what is known already — how many reported that kind of problem there (parent,
    the first open job of that problem and building), its status and who has it (nothing of the
    neighbours' own words) — and that it will be handled together (dispatch links it)."""
    owner = await fastsql.get(ctx.session, Person, parent.assignee) if parent.assignee else None
    lead = ctx.text(
        "dialog.reported_by_neighbours", building=parent.building or parent.building_key,
        category=parent.category, count=parent.reporters, status=ctx.text(f"status.labels.{parent.status}"),
        who=ctx.text("dialog.reported_by_neighbours_who", name=owner.name) if owner is not None else "",
    )
    return engine.start(ctx, flow, slots, text, lead=lead)


# The resident's latest open urgent complaints (their whole rows) on the driver.
_URGENT_OPEN = Prepared(select(_TICKETS).where(
    _TICKETS.c.resident == bindparam("openid"), _TICKETS.c.kind == literal("complaint"),
    _TICKETS.c.urgency == literal("urgent"), _TICKETS.c.status.in_([literal(status) for status in ACTIVE]),
    _TICKETS.c.created_at >= bindparam("since"),
).order_by(_TICKETS.c.id.desc()).limit(5))


async def _emergency_again(ctx: Context, slots: dict[str, Any], text: str) -> Outcome | None:
    """电梯困人 said again by the resident who reported it minutes ago: no second urgent ticket for
    another worker, nor the 1 催一下 / 2 重新登记 question (_reported_already, which an emergency
    skips) — their open urgent report of that emergency (the same emergency, at the building if one
    is named, within the urgent limit) is chased at once (dispatch.emergency_again), and they hear
    its number and what to do right now again. None when there is no such report."""
    complaint_module = _optional("bot.flows.complaint")
    if complaint_module is None:
        return None
    advice = complaint_module.emergency_of(text)
    key = roster.normalize_building(str(slots.get("building") or ""))
    rows = await fastsql.read(ctx.tx, _URGENT_OPEN, {
        "openid": ctx.openid, "since": ctx.now - load_limits().resolve_limit("complaint", "urgent")})
    row = next((t for t in rows if (not key or t["building_key"] == key)
                and complaint_module.emergency_of(dispatch.said_in(t["summary"], t["fields"])) == advice
                and (advice or slots.get("category") in (None, t["category"]))), None)
    if row is None:
        return None
    ticket = fastsql.adopt(ctx.session, Ticket, row)
    chase = await dispatch.emergency_again(ctx.svc, ctx.session, ticket, text, f"resident:{hash_openid(ctx.openid)}")
    values = {"when": f"{local(ticket.created_at, ctx.svc.tz):%H:%M}", "number": ticket.number,
              "chased": f"{local(chase.at, ctx.svc.tz):%H:%M}"}
    key = "dialog.emergency_again" + ("" if chase.who else "_staff") + ("" if chase.now else "_lately")
    told = ctx.text(key, **values, **({"who": chase.who} if chase.who else {}))
    return Outcome(engine.join_lines(told, _emergency_advice(ctx, text) or ctx.text("complaint.urgent.generic")), None)


_NOT_THAT = re.compile(r"^(?:不是|不对|不一样)(?:的|啊|呀)?[，,。\s]*")


async def _after_again(ctx: Context, state: DialogState) -> Outcome:
    """The answer to "you reported this already": 1 / 催一下 / 是 chases that report, 2 / 不是 /
    重新登记 starts the new report with what was said; anything else is read afresh."""
    text = ctx.inbound.text
    flow = registry.get(state.flow)
    idle = (ctx.now - datetime.fromisoformat(state.updated_at)).total_seconds()
    pending = state.pending or {}
    ticket = await get_by_number(ctx.session, str(pending.get("ticket", "")))
    if flow is None or ticket is None or idle > ABOUT_WINDOW_S:
        return await route(ctx, None)
    said = normalize(text)
    if said in ("1", "催", "催一下", "催催") or is_word(text, "yes") or "催" in said:
        return Outcome(await chased(ctx, "催一下", ticket) or await status_reply(ctx, ticket.number), None)
    if said in ("2", "重新登记", "新问题", "新的问题", "另一个问题") or is_word(text, "no"):
        if pending.get("resume"):  # asked midway: the report goes on where it was
            going = replace(state, step=str(pending["resume"]), pending=None, slots={**state.slots, AGAIN_DECLINED: True})
            return engine.advance(ctx, flow, going)
        return engine.start(ctx, flow, dict(state.slots), str(pending.get("said", "")))
    denied = _NOT_THAT.match(text.strip())
    if denied is not None and len(normalize(text[denied.end():])) >= 2:
        # 不是，我说的是5楼的灯: a new report, told with what was said first
        more = f"{pending.get('said', '')}，{text[denied.end():].strip()}".lstrip("，")
        return engine.start(ctx, flow, {**classify(ctx.svc, more).slots, **dict(state.slots)}, more)
    found = classify(ctx.svc, text)
    if registry.for_intent(found.intent) is flow and command_of(text) is None:
        # 不是，是5楼的灯: a report told again after being asked is registered, not asked again
        return engine.start(ctx, flow, found.slots, text)
    return await route(ctx, None)


async def _outage_told(ctx: Context, found: Intent, text: str) -> Outcome | None:
    """An announced outage's answer to a question or a report about it (bot.outage_dialog), or None."""
    module = _optional("bot.outage_dialog")
    return await module.for_resident(ctx, found, text) if module is not None else None


async def _after_outage(ctx: Context, state: DialogState) -> Outcome:
    """The answer to an announced outage's 1 登记 / 2 继续报修; anything else is read afresh, or
    in the report it was asked in the middle of (bot.outage_dialog.after_answer)."""
    module = _optional("bot.outage_dialog")
    done = await module.after_offer(ctx, state) if module is not None else None
    if done is not None:
        return done
    going = module.resumed(state) if module is not None else None
    return await route(ctx, going)


async def _registered_volunteer(ctx: Context) -> Outcome | None:
    """我想当志愿者 from someone registered already: their record and how to change it, not the
    questionnaire again (bot.flows.volunteer.registered_reply); None otherwise."""
    volunteer = _optional("bot.flows.volunteer")
    reply = await volunteer.registered_reply(ctx) if volunteer is not None else None
    return Outcome(reply, None) if reply is not None else None


async def _booking_change(ctx: Context, flow: Flow, slots: dict[str, Any], text: str) -> Outcome:
    """A booking flow begun; a request to cancel or move a booking instead (把助餐取消了吧, 我想改个
    时间, 预约改到后天) goes to the resident's bookings (bot.flows.booking_change), told at once
    when there is none ahead."""
    from bot.flows.booking_change import begin

    changed = await begin(ctx, text)
    if changed is not None:
        return changed
    noted = await _booking_noted(ctx, text)  # 明天助餐少放盐 with that meal booked: its note
    if noted is not None:
        return noted
    asked = await _booking_asked(ctx, text)  # 我预约了什么: the bookings ahead, not a new one
    if asked is not None:
        return asked
    elderly = _optional("bot.flows.elderly")
    if elderly is not None:  # 给我妈订… again: the last booking's 我妈 offered
        slots = await elderly.with_last_person(ctx, slots)
    return engine.start(ctx, flow, slots, text)


async def _booking_asked(ctx: Context, text: str) -> Outcome | None:
    """A question about the bookings ahead (bot.flows.booking_asked.answer); None otherwise."""
    module = _optional("bot.flows.booking_asked")
    reply = await module.answer(ctx, text) if module is not None else None
    return Outcome(reply, None) if reply is not None else None


async def _rated_before_done(ctx: Context) -> Outcome | None:
    """满意 while a job of the resident's is still being handled (bot.flows.survey.rated_before_done)."""
    module = _optional("bot.flows.survey")
    reply = await module.rated_before_done(ctx.svc, ctx.tx, ctx.inbound) if module is not None else None
    return Outcome(reply, None) if reply is not None else None


async def _reminder_acked(ctx: Context, text: str) -> Outcome | None:
    """好的 准时到 to a booking's or an activity's reminder (bot.flows.reminded_ack.answer); None otherwise."""
    module = _optional("bot.flows.reminded_ack")
    reply = await module.answer(ctx, text) if module is not None else None
    return Outcome(reply, None) if reply is not None else None


async def _booking_noted(ctx: Context, text: str) -> Outcome | None:
    """A care note for a booking ahead (bot.flows.booking_note.care_note); None otherwise."""
    module = _optional("bot.flows.booking_note")
    reply = await module.care_note(ctx, text) if module is not None else None
    return Outcome(reply, None) if reply is not None else None


async def _booking_reminded(ctx: Context) -> Outcome | None:
    """A bare 取消 with nothing in hand, soon after a booking's reminder: the confirmation to
    cancel that booking (bot.flows.booking_change.reminded_cancel); None otherwise."""
    module = _optional("bot.flows.booking_change")
    return await module.reminded_cancel(ctx) if module is not None else None


async def _after_about(ctx: Context, state: DialogState) -> Outcome:
    """The message after a complaint category named alone (电梯): 是 starts the report with it, 不是
    lets it go, and a report that names no category of its own (坏了, 南门那边的) gets it; anything
    else, or a message long after, is read as if the category had not been said."""
    text = ctx.inbound.text
    flow = registry.get(state.flow)
    idle = (ctx.now - datetime.fromisoformat(state.updated_at)).total_seconds()
    if flow is None or idle > ABOUT_WINDOW_S or not text:
        return await route(ctx, None)
    if is_word(text, "yes"):
        return engine.start(ctx, flow, dict(state.slots))
    if is_word(text, "no"):
        return Outcome(ctx.text("dialog.about_not", menu=menu_text(ctx.svc)), None)
    if command_of(text) is None and not number_in(text) and not _only_fillers(text):
        found = classify(ctx.svc, text)
        reports = found.intent == "unknown" or registry.for_intent(found.intent) is flow
        if reports and not found.slots.get("category"):
            # Read as one report with the word said before: 电梯，坏了 is what happened.
            said = f"{(state.pending or {}).get('said', '')}，{text.strip()}".lstrip("，")
            told = classify(ctx.svc, said)
            return engine.start(ctx, flow, {**told.slots, **state.slots}, said)
    return await route(ctx, None)


def _only_fillers(text: str) -> bool:
    """Whether a message holds nothing but the spoken fillers the classifier drops (喂, 嗯, 那个)."""
    module = _optional("bot.intents.classifier")
    return module is not None and bool(text.strip()) and not module.get_classifier().normalize(text).strip()


def _greets(text: str) -> bool:
    """Whether a courtesy message is a hello (你好, 在吗) rather than thanks or a goodbye."""
    module = _optional("bot.intents.classifier")
    terms = module.get_classifier().terms(text) if module is not None else set()
    return "@greet" in terms or not terms & {"@thanks", "@praise", "@closing"}


def _courtesy(ctx: Context, text: str) -> str:
    """A greeting is answered with the menu; thanks or praise, and a goodbye (好的, 再见), with a
    word back: the menu again would read as not having been understood."""
    module = _optional("bot.intents.classifier")
    terms = module.get_classifier().terms(text) if module is not None else set()
    asks = is_question(text)  # 灯修好了吗 is not a thank-you
    if asks or "@greet" in terms or not terms & {"@thanks", "@praise", "@closing"}:
        return ctx.text("dialog.greeting", menu=menu_text(ctx.svc))
    return ctx.text("dialog.thanks" if terms & {"@thanks", "@praise"} else "dialog.closing")


def _is_booking_reply(text: str) -> bool:
    """取消预约 / 改时间 as residents say them (那个 把助餐取消了吧, 取消我的预约, 能不能改个时间,
    改到后天中午, 那个饭不要了, 不去了: bot.flows.elderly.booking_request), read before the
    classifier (which took some for a new booking, a status question or nothing)."""
    from bot.flows.elderly import booking_request

    return booking_request(text) is not None



# 近期活动 as residents ask it: 活动, 社区活动, 有什么志愿活动, 最近有啥活动, 志愿活动有哪些, 有活动吗.
_ACTIVITY_LIST = re.compile(
    r"^(?:请问)?(?:最近|近期|这几天|这周|这个月|下个月)?(?:社区)?(?:还)?(?:有)?(?:什么|啥|哪些|没有)?"
    r"(?:志愿服务|志愿者|志愿|社区)?活动(?:吗|么|呢|啊|呀|没有)?(?:有哪些|有什么|有啥|可以报名)?(?:吗|呢|啊|呀)?$"
)
_SIGNUP = re.compile(r"^(?:我要|我想)?报名(?:参加)?\s*[“\"]?(?P<name>[^”\"]+)[”\"]?$")
_CANCEL_SIGNUP = re.compile(r"^(?:我要|我想)?取消报名\s*[“\"]?(?P<name>[^”\"]+)[”\"]?$")


async def _activity_request(ctx: Context, text: str, *, known_only: bool = False) -> str | None:
    """近期活动 lists the volunteer activities; 报名/取消报名 + a real activity's name signs up or
    withdraws. Anything else (报名助餐, 报名志愿者 …) is left to the classifier; with known_only
    (in the middle of a request), a name that is no activity is left to the request too."""
    activities = _optional("bot.activities")
    if activities is None:
        return None
    words = normalize(text)
    if _ACTIVITY_LIST.match(words):
        await activities.listed(ctx)
        return str(await activities.upcoming_reply(ctx.svc, ctx.session))
    for pattern, act in ((_CANCEL_SIGNUP, activities.cancel_signup), (_SIGNUP, activities.sign_up)):
        match = pattern.match(words)
        if match is None:
            continue
        name = match.group("name").strip()
        found = await activities.activity_row(ctx.tx, name, ctx.now)
        if found is None and (known_only or _not_an_activity(name)):
            return None  # 报名助餐, 报名志愿者: the classifier's; 报名 广场舞比赛: no such activity, said so
        result = await act(ctx.svc, ctx.session, ctx.openid, name)
        return str(result.reply)
    # 我的报名, a bare 取消报名, 报名 2, 我要参加楼道清洁, 敬老院探访 报名 (bot.activities.request)
    return None if known_only else await activities.request(ctx, text)


def _about_staff(text: str) -> bool:
    """Whether a complaint is about the community's own people (config/flows.toml about_staff)."""
    conf = flow_config()["complaint"]["about_staff"]
    said = normalize(text)
    return any(w in said for w in conf["staff"]) and any(w in said for w in conf["against"])


def _not_an_activity(name: str) -> bool:
    """Whether what follows 报名 names a service or the volunteer signup rather than an activity."""
    from bot.flows.elderly import CATALOG

    said = normalize(name)
    services = {normalize(n) for spec in CATALOG.services for n in (spec.name, *spec.aliases)}
    return said in services or any(w in said for w in ("志愿", "义工", "党员", "报到"))


PHOTO_AFTER_REPORT = timedelta(hours=2)  # a photo this soon after a report is taken as its photo


async def _photo_for_report(ctx: Context) -> str | None:
    """A photo sent (outside any request) soon after the resident's report: attached to that
    report and its owner told, rather than starting a new report. None when there is none."""
    if ctx.inbound.msg_type not in ("image", "video", "shortvideo"):
        return None
    ticket = await ctx.session.scalar(
        select(Ticket).where(Ticket.resident == ctx.openid, Ticket.status.in_(ACTIVE),
                             Ticket.created_at >= ctx.now - PHOTO_AFTER_REPORT)
        .order_by(Ticket.id.desc()).limit(1)
    )
    if ticket is None:
        return None
    media = dict(ctx.inbound.media, type=ctx.inbound.msg_type)
    event = await add_event(ctx.session, ticket, "photo", f"resident:{hash_openid(ctx.openid)}", ctx.now, data=media)
    ctx.tickets.append(ticket)
    if ticket.assignee and ticket.status != "escalated":
        await dispatch.photo_added(ctx.svc, ctx.session, ticket, event)  # told, with the photo
    return ctx.text("dialog.photo_added", number=ticket.number)


def _media_opening(ctx: Context) -> Outcome:
    """A photo or a location sent first: start a complaint with it already in hand."""
    flow = registry.get("complaint")
    if flow is None:
        return Outcome(menu_text(ctx.svc), None)
    outcome = engine.start(ctx, flow, {}, "", lead=ctx.text("dialog.media_first"))
    assert outcome.state is not None
    slots = dict(outcome.state.slots)
    if ctx.inbound.msg_type == "location":
        try:
            slots["place"] = place(Answer(ctx.inbound.text, ctx.inbound, local(ctx.now, ctx.svc.tz)))
        except Invalid:
            return outcome
    else:
        slots["photos"] = [dict(ctx.inbound.media, type=ctx.inbound.msg_type)]
    return Outcome(outcome.reply, replace(outcome.state, slots=slots))


def _link_conversation(ctx: Context, state: DialogState | None, ticket_id: int) -> tuple[Prepared, dict[str, Any]]:
    """Tie the messages of this flow run to the ticket it produced (the conversation staff see).
    The log is written by fixed statements only, so nothing needs flushing first."""
    since = ctx.now if state is None else min(ctx.now, datetime.fromisoformat(state.started_at))
    return _LINK, {"v_openid": ctx.openid, "v_since": since, "v_ticket_id": ticket_id}


def _cancelled(ctx: Context, flow: Flow) -> Outcome:
    """The flow in hand left, as 取消 leaves it. A flow about something already there (a booking's
    move, a withdrawal) says it stays as it was, as its 否 does: 已取消 alone read as if the booking
    itself was cancelled."""
    return Outcome(ctx.text(flow.declined or "flow.cancelled"), None)


async def _cancelled_kept(ctx: Context, flow: Flow, state: DialogState) -> Outcome:
    """The flow in hand left (取消, or 不用了 to the idle nudge); a booking request is kept so that
    那还是订吧 within [elderly] undo_minutes brings it back, and the reply says so."""
    undo = _optional("bot.flows.booking_undo")
    if undo is None or flow.name != "elderly_service":
        return _cancelled(ctx, flow)
    await undo.keep_request(ctx, state)
    hint = ctx.text("elderly.undo_hint", minutes=undo.undo_minutes())
    return Outcome(engine.join_lines(_cancelled(ctx, flow).reply, hint), None)


async def _declined_after_nudge(ctx: Context, flow: Flow, state: DialogState) -> bool:
    """Whether the message is only 不用了 (config/flows.toml [nudge] declined), the question in
    hand does not take it as its answer (不用了 to the photos is no photo) and the idle nudge of
    this very step went out: the resident declines the request the nudge reminded them of."""
    text = ctx.inbound.text
    if not declines_nudge(text) or (engine.answers_step(flow, state, text) and not engine.refuses_skip(flow, state, text)):
        return False
    sent = await ctx.session.scalar(
        select(Reminder.id).where(Reminder.kind == "flow_nudge", Reminder.target == ctx.openid,
                                  Reminder.cause_id == state.version, Reminder.state == "done").limit(1)
    )
    return sent is not None


def _nudge(ctx: Context, state: DialogState) -> tuple[Prepared, dict[str, Any]]:
    """Move the resident's idle nudge to after the idle time; it goes out only if the dialog has
    not moved since. A resident has at most one pending nudge: each step moves it (one UPDATE)
    rather than adding a row per message; _first_nudge writes it when there is none yet."""
    flow = registry.get(state.flow)
    title = ctx.text(flow.title) if flow is not None else state.flow
    return _MOVE_NUDGE, {
        "v_target": ctx.openid, "v_due_at": ctx.now + timedelta(seconds=ctx.svc.settings.flow_idle_nudge_s),
        "v_cause_id": state.version, "v_dedup_key": f"flow_nudge:{ctx.openid}:{state.version}",
        "v_payload": {"channel": "wechat", "message": {"text": ctx.text("flow.nudge", title=title)}, "urgent": False},
    }


async def _first_nudge(ctx: Context, moved: dict[str, Any]) -> None:
    """The resident's nudge when there was none to move (a fixed statement, as the move is)."""
    await fastsql.run(ctx.tx, reminders.NEW, reminders.new_row({
        "kind": "flow_nudge", "due_at": moved["v_due_at"], "channel": "wechat", "target": ctx.openid,
        "payload": {"text": moved["v_payload"]["message"]["text"]}, "cause_type": "flow",
        "cause_id": moved["v_cause_id"], "dedup_key": moved["v_dedup_key"],
    }, now=ctx.now))


def setup(app: web.Application) -> None:
    """Once this app's services are open: register the idle-nudge cause check, and move dialogs an
    earlier version kept in the state store into the residents' rows."""
    from bot.app import SERVICES

    async def register_checks(app: web.Application) -> AsyncIterator[None]:
        svc = app[SERVICES]
        reminders.register_cause_check("flow", flow_state.nudge_check(svc))
        moved = await flow_state.adopt_store_dialogs(svc)
        if moved:
            log.info("dialogs moved from the state store into residents", extra={"fields": {"count": moved}})
        yield

    app.cleanup_ctx.append(register_checks)
