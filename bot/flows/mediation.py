"""矛盾调解: who the other party is, what it is about, whether they talked, when to meet, a phone.

A preferred session time gets the resident a reminder the day before (a durable reminder caused
by the ticket, dropped when the ticket closes).
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import datetime, time, timedelta
from typing import Any

from bot import reminders
from bot.clock import local
from bot.flows import parsers
from bot.flows.base import Answer, Choice, Context, Flow, Invalid, Step
from bot.flows.complaint import bound_phone
from bot.flows.commands import normalize
from bot.flows.config import choices, flow_config, words
from bot.flows.engine import DETAIL_MAX, ELLIPSIS, SHOWN_MAX, Outcome, advance, match_choice
from bot.flows.finish import create_and_dispatch, created_reply
from bot.flows.registry import register
from bot.flows.state import DialogState, touched
from bot.intents.classifier import get_classifier
from bot.when import parse_when

PARTIES = choices("mediation", "parties")
TALKED = (
    Choice("yes", "已经沟通过，没谈拢", ("沟通过", "谈过", "说过", "找过", *words("answers", "yes"))),
    Choice("no", "还没有沟通过", ("没沟通", "没谈过", "没说过", "还没", *words("answers", "no"))),
)


def _spans(norm: str, words_: list[str]) -> list[tuple[int, int]]:
    """Where each word occurs in norm (start, end), every occurrence."""
    found = []
    for word in {normalize(w) for w in words_ if w}:
        at = norm.find(word)
        while at >= 0:
            found.append((at, at + len(word)))
            at = norm.find(word, at + 1)
    return found


def _told_again(norm: str) -> list[tuple[int, int]]:
    """Where norm says the other side was told again and again (说了好几回了, 找他好多次, 好几回
    了也不听): a talk verb then a number of times, or a number of times then an unheeded word
    (config/flows.toml [mediation] talked_verbs, talked_times, talked_unheeded)."""
    conf = flow_config()["mediation"]

    def any_of(key: str) -> str:
        return "|".join(re.escape(normalize(w)) for w in sorted(conf[key], key=len, reverse=True))

    times = any_of("talked_times")
    pattern = rf"(?:{any_of('talked_verbs')}).{{0,3}}?(?:{times})|(?:{times}).{{0,3}}?(?:{any_of('talked_unheeded')})"
    return [m.span() for m in re.finditer(pattern, norm)]


def talked_said(text: str) -> str | None:
    """Whether text says the two sides talked already ('yes'), not yet ('no'), or neither (None).

    Negations win: a word of one list found only inside a longer word of the other counts for
    that longer word (找过 inside 没找过 is no; 没谈 inside 没谈拢 is yes), and when both kinds are
    still said, it is no (没有沟通过: 没有沟通 and 沟通过)."""
    norm = normalize(text)
    conf = flow_config()["mediation"]
    yes, no = _spans(norm, conf["talked_words"]) + _told_again(norm), _spans(norm, conf["not_talked_words"])

    def inside(span: tuple[int, int], others: list[tuple[int, int]]) -> bool:
        return any(o[0] <= span[0] and span[1] <= o[1] and o[1] - o[0] > span[1] - span[0] for o in others)

    kept_yes = [s for s in yes if not inside(s, no)]
    kept_no = [s for s in no if not inside(s, yes)]
    if kept_no:
        return "no"
    return "yes" if kept_yes else None


def talked_answer(ctx: Context, flow: Flow, state: DialogState) -> Outcome | None:
    """The answer to 您和对方沟通过吗 when its words say it and the numbered choices read it wrong
    or not at all (没找过他 is no, though 找过 is a word of yes; 不好意思找他, 说了也不听): stored,
    and the flow goes on. None when this is not that question, or the choices read it as its
    words do (说过了，他还骂人 is then the engine's: the choice taken, the rest added to the matter).

    The dialog calls it for a running flow before the engine reads the answer."""
    if state.flow != Mediation.name or state.step != Mediation.talked.state:
        return None
    text = ctx.inbound.text.strip()
    said = talked_said(text)
    picked = match_choice(Mediation.talked, text)
    if said is None or (picked is not None and picked.value == said):
        return None
    slots = {**state.slots, "talked": said}
    history = tuple(s for s in state.history if s != "talked") + ("talked",)
    return advance(ctx, flow, replace(touched(state, ctx.now), slots=slots, history=history, invalid=0, editing=False))


# Whose a phone number said in a message is: the words right before 电话/手机/号码 and the number
# name someone else (他手机139…, 对方的电话是…, 物业电话…, 隔壁老李手机…, 楼上502的电话…).
_PRONOUNS = ("他们", "她们", "他", "她", "对方", "人家", "那家", "那户")
# Common surnames: the first character of most names (bot.flows.elderly tells a name said alone by it).
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦方白邹孟熊秦邱江尹薛段雷侯龙史陶黎贺顾毛郝龚邵万钱严武戴孔汤"
_NAMED = rf"[老小][{SURNAMES}]|[{SURNAMES}](?:阿姨|大爷|大妈|大叔|大姐|大哥|师傅|奶奶|爷爷|老师)"
_PHONE_WORD = r"(?:家里?|那边|那家|那户|[0-9]{1,4}(?:室|号)?)?的?(?:电话号码|手机号码|电话号|手机号|电话|手机|号码|联系方式)(?:是|为)?$"


def _whose_phone() -> re.Pattern[str]:
    who = {normalize(w) for c in PARTIES for w in (c.label, *c.synonyms)} | set(_PRONOUNS)
    names = "|".join(re.escape(w) for w in sorted(who, key=len, reverse=True) if w)
    return re.compile(rf"(?:{names}|{_NAMED}){_PHONE_WORD}")


_SOMEONE_ELSES = _whose_phone()


def someone_elses_phone(text: str, phone: str) -> bool:
    """Whether the phone number the classifier read from text is said to be another person's (the
    other party's, the property company's …): not the resident's contact, so not taken for it."""
    digits = re.sub(r"\D", "", phone)
    said = normalize(text).replace("-", "")
    at = said.find(digits) if digits else -1
    while at >= 0:
        if _SOMEONE_ELSES.search(said, 0, at):
            return True
        at = said.find(digits, at + 1)
    return False


def own_phone(slots: dict[str, Any], text: str) -> dict[str, str]:
    """The phone the classifier found in an opening, as the resident's contact: {} when there is
    none or it is said to be someone else's (他手机139…; the phone question is asked as usual)."""
    found = str(slots.get("phone") or "")
    if not found or (text and someone_elses_phone(text, found)):
        return {}
    return {"phone": found}


def _when_show(value: Any) -> str:
    return str(value.get("text", "")) if isinstance(value, dict) else str(value or "")


SESSION_HOURS = (time(8, 0), time(21, 0))  # a session with the mediator starts within these (local)


def session_time(answer: Answer) -> dict[str, Any]:
    """When the resident can meet the mediator (parsers.future_time), within SESSION_HOURS: 晚上
    十一点 or 凌晨 is refused with the hours; a part of the day that begins earlier (早上) starts at
    their beginning. A time with no day (晚上七点以后) is kept as said, with no date ("at" None):
    the mediator picks the day, and no day-before reminder is set."""
    first, last = SESSION_HOURS
    when = parse_when(answer.text.strip(), answer.now.date())
    if when.day is None and not when.empty:
        # 晚上七点以后 / 下午都行: any day at that time, for the mediator to fit both sides in; it
        # was today's date (11月25日 19:00), a day the resident never named
        when = when.within(lambda t: first <= t <= last)  # 七点以后: 19:00, the sessions' hours
        window = when.window()
        if (when.at is not None and not first <= when.at <= last) or (window is not None and window[1] <= first):
            raise Invalid("mediation.hint.session_hours", first=f"{first:%H:%M}", last=f"{last:%H:%M}")
        said = " ".join(answer.text.split())
        said = said if len(said) <= SHOWN_MAX else said[: SHOWN_MAX - 1] + ELLIPSIS
        if when.at is not None and when.other is not None:  # 七点以后 (19:00): how the hour was read
            said += f"（{when.at:%H:%M}）"
        return {"any": False, "at": None, "text": said}
    value = parsers.future_time(answer, SESSION_HOURS)
    if value.get("any"):
        return value
    start = datetime.fromisoformat(str(value["at"]))
    window = when.window()
    if window is not None and start.time() < first < window[1]:
        start = start.replace(hour=first.hour, minute=first.minute)  # 早上 (06:00-09:00): from 08:00
        value = {**value, "at": start.isoformat()}
    if not first <= start.time() <= last:
        raise Invalid("mediation.hint.session_hours", first=f"{first:%H:%M}", last=f"{last:%H:%M}")
    return value


# An answer at the time question that tells more of the matter rather than when to meet: when it
# happens (晚上十一点多还在跺脚, 他家每天半夜…), not when the resident is free (每天下午都有空).
_ONGOING = ("还在", "又在", "每天", "天天", "每晚", "经常", "总是", "老是", "一直", "整夜", "整晚", "动不动",
            "每次", "一到")
_FREE = ("有空", "方便", "在家", "可以", "都行", "也行", "没事", "下班", "休息", "空闲", "随时", "有时间")


def tells_the_matter(text: str) -> bool:
    """Whether an answer to 您什么时候方便 describes the dispute (when it happens, what it does)
    rather than a time to meet: a word of it going on (还在, 每天, 总是 …), or a sentence the
    classifier reads as a report or a dispute; never one that says the resident is free."""
    said = normalize(text)
    if not said or any(w in said for w in _FREE):
        return False
    if any(w in said for w in _ONGOING):
        return True
    found = get_classifier().classify(text)
    sure = float(flow_config()["switch"]["min_confidence"])
    return found.intent in ("mediation", "complaint") and found.confidence >= sure and parsers.says_what(text)


# A home said with a neighbour word and a flat number (隔壁202, 对门的502, 楼上402).
_NEIGHBOUR_FLAT = re.compile(r"(?:隔壁|对门|对面|楼上|楼下|我家|我住|住在)[^，,。]{0,6}?[0-9]{3,4}")
PLACE_SAID_MAX = 16  # longer, it says more than where


def _place_said(text: str) -> bool:
    """Whether text says where only: a building, unit or flat (我家在3栋, 2单元201, 隔壁202)."""
    said = normalize(text)
    return len(said) <= PLACE_SAID_MAX and bool(parsers.address_parts(text) or _NEIGHBOUR_FLAT.search(said))


def _no_time(ctx: Context, text: str) -> bool:
    """Whether text names no day and no time of day (its local date as of now)."""
    return parse_when(text, local(ctx.now, ctx.svc.tz).date()).empty


@register
class Mediation(Flow):
    """矛盾调解 (mediation): a dispute brought to the mediation committee."""

    name = "mediation"
    kind = "mediation"
    intents = ("mediation",)
    related = ("complaint",)
    menu_keys = ("MENU_MEDIATION",)
    menu_number = "2"
    edit_examples = ("改时间", "电话不对")

    party = Step("mediation.ask.party", choices=PARTIES, edit_words=("改对方", "对方不对"))
    issue = Step("mediation.ask.issue", parse=parsers.description, edit_words=("改事由", "事情不对", "改内容"))
    # Not asked when what the matter is tells it (说了也不听, 还没跟他说), first message or answer.
    talked = Step("mediation.ask.talked", choices=TALKED, prefill=lambda slots, _resident: talked_said(str(slots.get("issue") or "")))
    session_time = Step(
        "mediation.ask.session_time", parse=session_time, show=_when_show,
        edit_words=("改时间", "时间不对", "时间错了"),
    )
    phone = Step(
        "mediation.ask.phone", parse=parsers.phone, prefill=bound_phone,
        edit_words=("电话不对", "电话错了", "改电话", "号码不对", "手机号不对"),
    )

    def opening(self, slots: dict[str, Any], text: str) -> dict[str, Any]:
        """The other party and the matter, when the opening message names them."""
        kept: dict[str, Any] = {}
        party = match_choice(self.party, str(slots.get("party") or "")) if slots.get("party") else None
        party = party or (match_choice(self.party, text) if text else None)
        if party is not None and party.value != "其他":
            kept["party"] = party.value
        if text and parsers.says_what(text):
            kept["issue"] = text.strip()
            talked = talked_said(text)
            if talked is not None:
                kept["talked"] = talked
        kept.update(own_phone(slots, text))
        return kept

    async def midway(
        self, ctx: Context, slots: dict[str, Any], step: Step, text: str
    ) -> tuple[dict[str, Any], str] | None:
        """More of the matter said where the time to meet is asked (就是那个 晚上十一点多还在跺脚
        俺这心脏不好): added to the matter, and the time asked again, saying it is the time to
        meet (before, 十一点 became the session's time and the rest was lost). Where they live
        said at a choice (_place_said): added to the matter too, and the choice asked again."""
        before = str(slots.get("issue") or "")
        if step is self.session_time and before and _place_said(text) and _no_time(ctx, text):
            # 我住6号楼501，他们是601 where 您什么时候方便 is asked: where, for the mediator, and
            # the time asked again (6号楼 was once read as the 6th, and the place lost)
            return self._added(ctx, slots, before, text, "")
        if step.choices and before and match_choice(step, text) is None and _place_said(text):
            # 我家在3栋 / 2单元201 / 隔壁202 where 您和对方沟通过吗 is asked: where it is, for the
            # mediator (the card reads it from the matter), not "reply with a number" again and again
            return self._added(ctx, slots, before, text, "")
        if step is self.talked and match_choice(step, text) is None:
            kept = self._time_ahead(ctx, slots, text)
            if kept is not None:
                return kept
        if step is not self.session_time or not before or not tells_the_matter(text):
            return None
        return self._added(ctx, slots, before, text, ctx.text("mediation.time_to_meet"))

    def _time_ahead(self, ctx: Context, slots: dict[str, Any], text: str) -> tuple[dict[str, Any], str] | None:
        """A time to meet said where 您和对方沟通过吗 is asked (晚上吧 七点以后都行): kept for the
        time question, which is then not asked (said so), and the choice asked again; one that
        cannot be a session is told why. None when text is no time (or tells the matter)."""
        if talked_said(text) is not None or tells_the_matter(text):
            return None
        answer = Answer(text=text, inbound=ctx.inbound, now=local(ctx.now, ctx.svc.tz))
        if parse_when(text, answer.now.date()).empty:
            return None
        try:
            value = session_time(answer)
        except Invalid as exc:
            return slots, ctx.text(exc.hint, **exc.values)
        field = ctx.text(self.session_time.label)
        return {**slots, "session_time": value}, ctx.text("flow.noted", field=field, value=value["text"])

    def _added(
        self, ctx: Context, slots: dict[str, Any], before: str, text: str, then: str
    ) -> tuple[dict[str, Any], str]:
        """text added to the matter (unless said in it already), said so, then `then`."""
        more = text.strip()
        if normalize(more) not in normalize(before):
            slots = {**slots, "issue": f"{before}；{more}"[:DETAIL_MAX]}
        shown = more if len(more) <= SHOWN_MAX else more[: SHOWN_MAX - 1] + ELLIPSIS
        said = ctx.text("flow.detail_added", field=ctx.text(self.issue.label), value=shown)
        return slots, "\n".join(x for x in (said, then) if x)

    async def finish(self, ctx: Context, slots: dict[str, Any]) -> str:
        """Write the mediation ticket, route it to a mediator (the card's 事项 names the preferred
        time before the matter, so clipping keeps it), remind the day before the time preferred;
        the reply says the mediator sets the session with the resident (no session is set yet)."""
        when = slots.get("session_time") or {"any": True, "text": ""}
        fields = {
            "party": self.party.display(slots.get("party")),
            "issue": slots.get("issue"),
            "talked": slots.get("talked") == "yes",
            "session_time": None if when.get("any") else when.get("at"),
            "session_text": when.get("text"),
            "phone": slots.get("phone"),
        }
        created = await create_and_dispatch(
            ctx, self, fields=fields, building=ctx.resident.building,
            summary=ctx.text(
                "mediation.summary", party=fields["party"], when=when.get("text") or "-",
                issue=str(slots.get("issue") or "")[:80],
            ),
        )
        reply = created_reply(ctx, created)
        if not when.get("any") and when.get("at"):
            at = datetime.fromisoformat(str(when["at"]))
            remind_at = at - timedelta(days=1)
            if remind_at > ctx.now:
                ticket = created.ticket
                await reminders.schedule(
                    ctx.session, kind="mediation_session", due_at=remind_at, channel="wechat",
                    target=ctx.openid, now=ctx.now, cause_type="ticket", cause_id=ticket.id,
                    payload={"text": ctx.text("mediation.reminder", when=when.get("text", ""), number=ticket.number)},
                    dedup_key=f"mediation_session:{ticket.id}",
                )
        if when.get("any") or not when.get("text"):
            return reply + "\n" + ctx.text("mediation.time_to_agree")
        return reply + "\n" + ctx.text("mediation.time_passed_on", when=when["text"])
