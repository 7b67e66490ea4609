"""What a resident is told about an announced outage (bot.outages).

In an affected building (the one the message names, else the resident's own), a question about the
outage (什么时候来水, 怎么没水了, 停水了吗) is answered with the announcement — kind, buildings,
reason, expected end, or 已恢复 when it ended within outages.RECENT. A report of it (3号楼停水了,
家里没水了) hears that it is known, and is asked 1 登记（恢复后通知您） / 2 不是这个问题，继续报修:
1 records them (no ticket, no worker push), 2 goes on with the report. Emergencies never reach here
(bot.dialog checks first). Only messages naming an outage look at the announcements, and those
come from the per-process copy (outages.current).
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import datetime
from typing import Any

from bot import outages
from bot.flows import engine, registry
from bot.flows import state as flow_state
from bot.flows.base import Context
from bot.flows.commands import is_word, normalize
from bot.flows.engine import Intent, Outcome
from bot.flows.parsers import is_question, place_building
from bot.flows.state import DialogState
from bot.roster import normalize_building

OFFER = "outage"  # the complaint flow's part while the resident is asked 1 登记 / 2 继续报修
OFFER_WINDOW_S = 600  # how long that question waits for its answer
DECLINED = "outage_declined"  # a report's slot: its resident answered 2 继续报修 (not asked again)
# What names each kind of outage in residents' words (not a leak: 漏水, 有水 on the floor).
_KIND_WORDS = (
    # 暖气片冰凉, 暖气一点都不热 too: a few characters between (not 暖气漏水)
    ("heat", re.compile(r"停暖|供暖|来暖|没(?:有)?暖气|暖气(?:片)?(?:一点儿?(?:都|也)|也|都|还是|怎么)?"
                        r"(?:不热|不暖|凉|冰|停|没|还不|什么时候|啥时候|几点|怎么|咋)")),
    ("gas", re.compile(r"停气|没气|断气|来气|供气|没有气|没(?:有)?(?:燃气|煤气|天然气)|(?:燃气|煤气|天然气)(?:停|断)")),
    ("power", re.compile(r"停电|没电|断电|来电|供电|没有电|电停|(?:什么时候|啥时候|几点|何时|多久|还)(?:能)?有电|有电了?(?:吗|没)")),
    ("water", re.compile(r"停水|没水|没有水|断水|断了水|水停|来水|没得水|水都没|不出水|供水"
                         r"|(?:什么时候|啥时候|几点|何时|多久|还)(?:能)?有水|有水了?(?:吗|没)")),
)
_ASKS = re.compile(r"什么时候|啥时候|几点|何时|多久|怎么|咋|为什么|为啥|是不是|通知|吗|呢")
_YES = {"1", "登记", "要登记", "登记一下", "好", "好的", "要", "需要", "可以"}
_NO = {"2", "继续报修", "报修", "不是", "不是这个", "不是这个问题", "继续"}


def kind_of(text: str) -> str | None:
    """The kind of outage a message is about (water, power, gas, heat), or None."""
    said = normalize(text)
    for kind, words in _KIND_WORDS:
        if words.search(said):
            return kind
    return None


async def _current(ctx: Context) -> tuple[outages.Notice, ...]:
    """The announcements; the message's session is used (made) only when they must be read."""
    held = outages.held(ctx.svc)
    return held if held is not None else await outages.current(ctx.svc, ctx.session)


def _building(ctx: Context, slots: dict[str, Any]) -> str | None:
    return _key(slots.get("building") or getattr(ctx.profile, "building", None))


def _key(said: Any) -> str | None:
    """A building as said, reduced to its roster key ('３号楼' → '3'); None when nothing is said."""
    key = normalize_building(str(said)) if said else ""
    return key or None


async def for_resident(ctx: Context, found: Intent, text: str) -> Outcome | None:
    """The announcement, for a question or a report about an announced outage; None when the
    message names no outage or none announced concerns the resident."""
    kind = kind_of(text)
    if kind is None:
        return None
    notices = [n for n in await _current(ctx) if n.kind == kind]
    if not notices:
        return None
    building = _building(ctx, found.slots)
    mine = [n for n in notices if n.covers(building)]
    flow = registry.get("complaint")
    if _asks(text):
        told = _asked(ctx, notices, kind, building)
        if told is None:
            return None
        # 暖气怎么不热了 冻死了: asked, and the announcement's own answer offers the 1 登记 / 2 报修
        # of a report (it said 恢复后会在这里通知登记过的居民 and no way to register); from a building
        # not known, any active one of the kind (5号楼 said next is read as where: after_offer)
        live = [n for n in (mine if building is not None else notices) if n.active]
        if not live or flow is None:
            return Outcome(told, None)
        waiting = replace(flow_state.new_state(flow.name, flow.state(OFFER), ctx.now, dict(found.slots)),
                          pending={"said": text.strip(), "outage": live[0].id, "building": building})
        key = "outages.asked_offer" if building is not None else "outages.asked_offer_where"
        return Outcome(ctx.text(key, line=_lines(ctx, live)), waiting)
    if found.intent != "complaint":
        return None
    live = [n for n in mine if n.active]
    if not live or flow is None:
        return None
    waiting = replace(flow_state.new_state(flow.name, flow.state(OFFER), ctx.now, dict(found.slots)),
                      pending={"said": text.strip(), "outage": live[0].id, "building": building})
    return Outcome(ctx.text("outages.offer", line=_lines(ctx, live)), waiting)


async def after_answer(ctx: Context, before: DialogState, outcome: Outcome) -> Outcome | None:
    """A complaint whose building came only now (家里没水了, then 几号楼 answered 3号楼) where that
    building, or the whole community, has an active announcement of the outage it names: the
    same 1 登记 / 2 继续报修 as at the opening, the report kept to go on where it was after 2.
    None otherwise: no building or outage kind yet, both known before this answer, declined
    before, an emergency, or nothing announced."""
    after = outcome.state
    if after is None or after.flow != "complaint" or before.flow != "complaint" or after.part == OFFER:
        return None
    slots = after.slots
    if slots.get(DECLINED) or slots.get("emergency") or slots.get("urgency") == "urgent":
        return None
    said = str(slots.get("description") or slots.get("opening_text") or "")
    kind = kind_of(said) if said else None
    building = _key(place_building(slots))
    if kind is None or building is None or (_key(place_building(before.slots)) and before.slots.get("description")):
        return None
    live = [n for n in await _current(ctx) if n.kind == kind and n.active and n.covers(building)]
    if not live:
        return None
    waiting = replace(after, step=f"{after.flow}:{OFFER}",
                      pending={"said": said, "outage": live[0].id, "building": building, "resume": after.step})
    return Outcome(ctx.text("outages.offer", line=_lines(ctx, live)), waiting)


async def restored_place(ctx: Context, slots: dict[str, Any], text: str) -> tuple[dict[str, Any], str] | None:
    """A report naming an outage kind and no place (我家还是没电) from a resident told of that kind's
    end within outages.STILL_OUT: the classifier's slots with the building they registered with, and
    a line saying it was taken (改地址 corrects it); None otherwise."""
    kind = kind_of(text)
    if kind is None or any(slots.get(k) for k in ("building", "unit", "room", "landmark")):
        return None
    building = await outages.told_building(ctx.session, ctx.openid, kind, ctx.now - outages.STILL_OUT)
    if building is None:
        return None
    said = ctx.text("outages.still_out_place", building=building, kind=ctx.text(f"outages.kinds.{kind}"))
    return {**slots, "building": building}, said


async def answer_midway(ctx: Context, text: str, slots: dict[str, Any]) -> str | None:
    """The announcement for a question about an outage asked in the middle of another request
    (什么时候来水 where a photo or a phone number is asked), to say before that request's question
    again; None when the text asks about no outage or none is announced."""
    kind = kind_of(text)
    if kind is None or not _asks(text):
        return None
    notices = [n for n in await _current(ctx) if n.kind == kind]
    return _asked(ctx, notices, kind, _building(ctx, slots)) if notices else None


MIDWAY_MAX = 16  # longer sentences that name an outage are told in the request (or as another matter)


async def said_midway(ctx: Context, state: DialogState, text: str, slots: dict[str, Any]) -> str | None:
    """The announcement for an outage said (not asked) in the middle of another request (停水了,
    家里没水了 where a booking asks who it is for, or a report of a broken lamp asks for a photo), to
    say before that request's question again — every active one of that kind when the building is
    not known, as for a question; None when the text names no announced outage of the resident's
    building, asks, is long, or the request in hand is a report of that outage (or one not yet
    told). Emergencies are the caller's to keep out."""
    kind = kind_of(text)
    if kind is None or _asks(text) or len(normalize(text)) > MIDWAY_MAX:
        return None
    if state.flow == "complaint":
        told = str(state.slots.get("description") or state.slots.get("opening_text") or "")
        if not told or kind_of(told) == kind:
            return None
    building = _building(ctx, slots)
    live = [n for n in await _current(ctx) if n.kind == kind and n.active and (building is None or n.covers(building))]
    if not live:
        return None
    key = "outages.told_midway" if building is not None else "outages.told_midway_anywhere"
    return ctx.text(key, line=_lines(ctx, live), kind=ctx.text(f"outages.kinds.{kind}"))


def _asks(text: str) -> bool:
    return is_question(text) or _ASKS.search(text) is not None


def _asked(ctx: Context, notices: list[outages.Notice], kind: str, building: str | None) -> str | None:
    """The answer to a question about announced outages of a kind: those of the building (active
    first), else the active ones elsewhere (8号楼不在通知范围内); None when none is active."""
    mine = [n for n in notices if n.covers(building)]
    shown = [n for n in mine if n.active] or mine
    if shown:
        return _told(ctx, shown, "outages.answer" if shown[0].active else "outages.answer_ended")
    elsewhere = [n for n in notices if n.active]
    if not elsewhere:
        return None
    if building is None:  # not known where they live: every announcement of that kind
        return _told(ctx, elsewhere, "outages.answer")
    return ctx.text("outages.answer_elsewhere", line=_lines(ctx, elsewhere), building=building,
                    kind=ctx.text(f"outages.kinds.{kind}"))


def _lines(ctx: Context, notices: list[outages.Notice]) -> str:
    return "\n".join(outages.line(ctx.svc, n, ctx.now) for n in notices)


def _told(ctx: Context, notices: list[outages.Notice], key: str) -> str:
    kind = ctx.text(f"outages.kinds.{notices[0].kind}")
    return ctx.text(key, line=_lines(ctx, notices), kind=kind)


async def after_offer(ctx: Context, state: DialogState) -> Outcome | None:
    """The answer to 1 登记 / 2 继续报修: registered, the report begun with what was said, the
    question asked again for a bare digit or word that is neither; None for anything else (read
    afresh) or when the question was asked too long ago."""
    pending = state.pending or {}
    idle = (ctx.now - datetime.fromisoformat(state.updated_at)).total_seconds()
    flow = registry.get(state.flow)
    if flow is None:
        return None
    said = normalize(ctx.inbound.text)
    resume = pending.get("resume")
    if idle > OFFER_WINDOW_S:
        return await _late(ctx, flow, state, said) if _answers(ctx, said) else None
    if said in _NO or is_word(ctx.inbound.text, "no"):
        if resume:  # asked midway: the report goes on where it was
            return engine.advance(ctx, flow, _resumed(state, str(resume)))
        started = engine.start(ctx, flow, dict(state.slots), str(pending.get("said", "")))
        if started.state is None:
            return started
        return replace(started, state=replace(started.state, slots={**started.state.slots, DECLINED: True}))
    where = _building_alone(ctx.inbound.text) if not pending.get("building") else None
    if where is not None:  # 5号楼, answering the announcement from a building not known: there
        pending = {**pending, "building": where}
        notice = await _offered(ctx, pending)
        if notice is None or not notice.active or not notice.covers(where):
            elsewhere = [n for n in await _current(ctx) if n.active and n.kind == kind_of(str(pending.get("said", "")))]
            if not elsewhere:
                return Outcome(ctx.text("outages.ended_meanwhile"), None)
            kind = ctx.text(f"outages.kinds.{elsewhere[0].kind}")
            return Outcome(ctx.text("outages.answer_elsewhere", line=_lines(ctx, elsewhere), building=where, kind=kind), None)
    if where is not None or said in _YES or is_word(ctx.inbound.text, "yes"):
        notice = await _offered(ctx, pending)
        if notice is None or not notice.active:  # ended meanwhile: said so
            return Outcome(ctx.text("outages.ended_meanwhile") if notice is None else _told(
                ctx, [notice], "outages.answer_ended"), None)
        building = pending.get("building")
        new = await outages.register(ctx.session, notice, ctx.openid, str(building) if building else None, ctx.now)
        key = "outages.registered" if new else "outages.registered_before"
        return Outcome(ctx.text(key, line=outages.line(ctx.svc, notice, ctx.now)), None)
    if len(said) <= 2:  # 3, 嗯, 啊: neither answer
        return Outcome(ctx.text("outages.offer_hint"), flow_state.touched(state, ctx.now))
    return None


async def _offered(ctx: Context, pending: dict[str, Any]) -> outages.Notice | None:
    """The announcement the 1 / 2 question was about, as it is now: the one offered while it still
    covers the resident's building, else the active one of that kind that does (staff announced the
    building again, or the whole community, meanwhile); None when there is none."""
    notices = await _current(ctx)
    building = pending.get("building")
    building = str(building) if building else None
    offered = next((n for n in notices if n.id == pending.get("outage")), None)
    if offered is not None and offered.covers(building):
        return offered
    kind = kind_of(str(pending.get("said", "")))
    now = next((n for n in notices if n.kind == kind and n.active and n.covers(building)), None)
    return now or offered


# 5号楼, 5栋, 我住5号 (a bare 5 is no building here: 1 and 2 are the question's answers)
_BUILDING_ALONE = re.compile(r"^(?:(?:我家|我住|住)在?(\d{1,3})(?:号楼|栋|幢|号)?|(\d{1,3})(?:号楼|栋|幢))的?$")


def _building_alone(text: str) -> str | None:
    """The building a message says and nothing else (5号楼, 我住5栋), as the roster keys it."""
    found = _BUILDING_ALONE.match(normalize(text))
    key = normalize_building(found.group(1) or found.group(2)) if found is not None else ""
    return key or None


def _answers(ctx: Context, said: str) -> bool:
    text = ctx.inbound.text
    return said in _YES or said in _NO or is_word(text, "yes") or is_word(text, "no")


async def _late(ctx: Context, flow: Any, state: DialogState, said: str) -> Outcome:
    """A bare 1 / 2 (登记, 继续报修) long after the question (OFFER_WINDOW_S): not taken on trust —
    the announcement may have moved or ended since, and the resident may not remember what 1 was.
    Still on: the question again with the announcement as it is now (its time starts again); ended
    or gone: said so, and the report in progress (a midway question) asked where it was."""
    pending = state.pending or {}
    notice = await _offered(ctx, pending)
    if notice is not None and notice.active:
        return Outcome(ctx.text("outages.offer_again", line=outages.line(ctx.svc, notice, ctx.now)),
                       flow_state.touched(state, ctx.now))
    told = ctx.text("outages.ended_meanwhile") if notice is None else _told(ctx, [notice], "outages.answer_ended")
    going = resumed(state)
    return engine.resume(ctx, flow, going, told) if going is not None else Outcome(told, None)


def resumed(state: DialogState) -> DialogState | None:
    """The report in progress under a midway 1 / 2 question, to answer anything else in; None
    for the opening's question (nothing in progress yet)."""
    resume = (state.pending or {}).get("resume")
    return _resumed(state, str(resume)) if resume else None


def _resumed(state: DialogState, step: str) -> DialogState:
    return replace(state, step=step, pending=None, slots={**state.slots, DECLINED: True})
