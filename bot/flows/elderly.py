"""养老服务预约: which service, for whom, where, when, notes, contact — then a booking and a ticket.

The date/time question is one Step per service (only the chosen service's is asked), so the answer
is checked against that service's hours, lead time and booking horizon as it is read, and against
its capacity (Step.check): a full time is said at once with the nearest free ones, and the same
time given again is taken. Capacity is checked again under the per service+day lock when the
booking is written (bot/bookings.py): a full slot then becomes a waitlist booking, and the reply
names the nearest free times.

Cancelling or moving a booking (取消预约, 把助餐取消了吧, 改个时间, 改到后天中午 …: booking_request
reads them) is bot/flows/booking_change.py's.
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam, literal, select

from bot import bookings, faq, notices
from bot.clock import local
from bot.flows import parsers
from bot.flows.base import LOCATION, Answer, Choice, Context, Flow, Invalid, Step
from bot.flows.commands import is_word, normalize
from bot.flows.complaint import BIND, already_bound
from bot.flows.config import words
from bot.flows.engine import Outcome, as_typed, match_choice, start
from bot.flows.finish import create_and_dispatch, created_reply
from bot.flows.mediation import SURNAMES
from bot.flows.registry import register
from bot.intents.classifier import get_classifier
from bot.privacy import mask_phone
from bot.service_catalog import ServiceSpec, load_catalog
from bot.settings import load_settings
from bot.when import When, cn_number, parse_when, without_when
from storage import fastsql
from storage.fastsql import Prepared
from storage.models import Resident, Ticket

CATALOG = load_catalog()
TZ = load_settings().timezone
SELF = bookings.FOR_SELF  # 给谁预约: 我自己
SELF_WORDS = ("我自己", "自己", "本人", "我本人", "我", "给我自己")


# Cancelling or moving a booking as residents say it: a cancel word with what is cancelled, in
# either order (把助餐取消了吧, 那个饭不要了, 取消我的预约, 不想预约了), a cancel word that can only
# mean a booking (不去了), a change of time (改个时间, 能不能换个日子), or a move to a time (预约改到
# 后天, 改到后天中午). 我想订个助餐 is none of these.
_BOOKED = "|".join(sorted({"预约", "预订", "预定", "订餐", "饭", "餐", *CATALOG.names,
                           *(a for s in CATALOG.services for a in s.aliases)}, key=len, reverse=True))
_DROP = "取消|不要了|不去了|退掉|退了|不订了|不约了|不用了|不需要了|不吃了|不做了|不来了"
_CANCEL = re.compile(
    rf"(?:{_DROP}).{{0,8}}?(?:{_BOOKED})|(?:{_BOOKED}).{{0,8}}?(?:{_DROP})|(?:不用|不要|不想|不去)(?:{_BOOKED})了"
)
_CANCEL_ALONE = re.compile(r"^(?:那|那就|那我|我|俺)?就?(?:不去了|不约了|不订了)(?:吧|啦|呀|啊)?$")
_CHANGE = re.compile(r"(?:改|换|挪|调)(?:一?个|一下|下)?(?:时间|日子|日期|时候|天)|改约|改期|推迟|往后推|延后")
_MOVE_TO = re.compile(r"(?:改到|改成|改为|改在|换到|换成|挪到|推到|调到)(?P<rest>.+)$")
_NOT_A_TIME = re.compile(r"楼|栋|幢|单元|室|电话|手机|地址|1[3-9][0-9]{9}")


_ANY_DAY = date(2026, 1, 5)  # whether a time is named does not depend on which day it is


def booking_request(text: str) -> tuple[str, str] | None:
    """("cancel", "") or ("change", the new time said, or "") when text asks to cancel or move a
    booking in the resident's words; None otherwise (a new booking, anything else)."""
    said = normalize(text)
    if not said or "报名" in said:  # 取消报名楼道清洁: an activity's (bot.activities)
        return None
    moved = _MOVE_TO.search(said)
    if moved is not None and not _NOT_A_TIME.search(moved.group("rest")):
        rest = moved.group("rest").rstrip("吧呀啊啦")
        if not parse_when(rest, _ANY_DAY).empty:
            return "change", rest
    if _CANCEL.search(said) or _CANCEL_ALONE.match(said):
        return "cancel", ""
    if _CHANGE.search(said):
        return "change", ""
    return None


def _service_choices() -> tuple[Choice, ...]:
    """The services as numbered choices; the label carries the hours."""
    return tuple(
        Choice(spec.name, f"{spec.name}（{spec.hours_text()}）", (spec.name, *spec.aliases))
        for spec in CATALOG.services
    )


def when_value(spec: ServiceSpec, when: When, now_local: datetime) -> dict[str, Any]:
    """A date/time answer checked against the service's rules; Invalid with the reason's hint."""
    if when.day is None:
        raise Invalid("elderly.hint.when_day")
    day = when.day
    # 明天七点 for a service that starts at 19:00 but not at 07:00 is 19:00 (When.within)
    when = when.within(lambda t: bookings.hours_refusal(spec, day, t, now_local) is None)
    reason = bookings.hours_refusal(spec, when.day, when.at, now_local)
    if reason == "outside_hours":
        raise _outside_hours(spec, when.day)
    if reason == "too_far":  # how far it can be booked, so the next try is not too far again
        last = now_local.date() + timedelta(days=spec.book_ahead_days)
        raise Invalid("elderly.hint.when_too_far", days=spec.book_ahead_days, last=bookings.day_text(last))
    if reason == "closed":
        raise _closed_day(spec, now_local)
    if reason is not None:
        raise Invalid(f"elderly.hint.when_{reason}")
    if when.at is None and when.part is not None:
        lo, hi = when.window() or (time(0), time(23, 59))
        if not any(lo <= t < hi for t in spec.slots_on(when.day)):
            near = _start_near(spec, when.day, lo, hi)
            if near is None:
                raise _outside_hours(spec, when.day)
            # 陪诊 明天上午: its morning slot starts at 07:30, before 上午 (08:00-12:00)
            return {**when_value(spec, When(when.day, near, None), now_local), "picked": when.part}
    return {
        "day": when.day.isoformat(),
        "at": when.at.strftime("%H:%M") if when.at else None,
        "part": when.part if when.at is None else None,
        "text": when_text(when.day, when.at, when.part),
    }


SHOWN_STARTS = 8  # start times listed when a time is outside the service's slots
PART_REACH = timedelta(hours=1)  # a part of the day no slot starts in takes a start this close to it


def _start_near(spec: ServiceSpec, day: date, lo: time, hi: time) -> time | None:
    """The slot start nearest to the part of the day [lo, hi) when none starts inside it, if it is
    within PART_REACH of it (07:30 for 上午, 08:00-12:00); None when every start is farther."""
    def off(at: time) -> timedelta:
        when, first, end = (datetime.combine(day, t) for t in (at, lo, hi))
        return first - when if when < first else when - end

    starts = spec.slots_on(day)
    near = min(starts, key=off, default=None)
    return near if near is not None and off(near) <= PART_REACH else None


SOONEST_SHOWN = 2  # days offered listed when a day the service is not offered is asked for


def _closed_day(spec: ServiceSpec, now_local: datetime) -> Invalid:
    """A day the service is not offered (助浴 on a Friday), with the days it is (config/services.toml)
    and the nearest of them still bookable, so the next try is one of them."""
    today = now_local.date()
    soonest = [today + timedelta(days=n) for n in range(spec.book_ahead_days + 1)]
    soonest = [d for d in soonest if bookings.hours_refusal(spec, d, None, now_local) is None][:SOONEST_SHOWN]
    if not soonest:
        return Invalid("elderly.hint.when_closed_none", service=spec.name, days=spec.days_text())
    return Invalid("elderly.hint.when_closed", service=spec.name, days=spec.days_text(),
                   soonest="、".join(bookings.day_text(d) for d in soonest))


def _outside_hours(spec: ServiceSpec, day: date) -> Invalid:
    """A time the service cannot start at that day, with the times it can (a 4-hour 陪诊 starts at
    07:30 or 13:00, so 上午九点 is refused although 09:00 is inside its hours)."""
    starts = [t.strftime("%H:%M") for t in spec.slots_on(day)]
    shown = "、".join(starts[:SHOWN_STARTS]) + ("…" if len(starts) > SHOWN_STARTS else "")
    return Invalid("elderly.hint.when_outside_hours", starts=shown, minutes=spec.slot_minutes)


def when_text(day: date, at: time | None, part: str | None) -> str:
    """A requested date and time as residents read it."""
    said = f"{day.month}月{day.day}日"
    return f"{said} {at:%H:%M}" if at else f"{said} {part or ''}".strip()


def _when_parser(spec: ServiceSpec) -> Any:
    def parse(answer: Answer) -> dict[str, Any]:
        when = parse_when(answer.text.strip(), answer.now.date())
        if when.empty:
            raise Invalid("elderly.hint.when")
        value = when_value(spec, when, answer.now)
        note = care_clauses(answer.text, answer.now.date(), typed=answer.inbound.text)
        return {**value, "note": note} if note else value  # 明天上午 我腿脚不好: the note kept too

    return parse


_CLAUSES = re.compile(r"[\s,，。；;、！!]+")


def care_clauses(text: str, today: date, typed: str = "") -> str:
    """The clauses of text that are a care note (a care word, no time): 我腿脚不好 of 明天上午 我腿脚不好,
    and of 明天上午我腿脚不好 too (a clause naming a time is read without it); each as the resident
    typed it when text is simplified(typed) (我腿腳不好 stays so, as other answers are)."""
    care = words("elderly", "care_words")
    pieces = [p for c in _CLAUSES.split(text.strip()) if c
              for p in ([c] if parse_when(c, today).empty else _CLAUSES.split(without_when(c).strip()))]
    found = [_NOTE_LEAD.sub("", p) for p in pieces if p and any(w in normalize(p) for w in care)]
    return "，".join(as_typed(typed, f) if typed else f for f in found if f)


_NOTE_LEAD = re.compile(r"^[的吧啊呀哈，,]+")  # what a time leaves before the note (明天上午的 …)


def _note_with_time(slots: dict[str, Any], _resident: Resident) -> str | None:
    """The care note said with the time (明天上午 我腿脚不好): the notes, not asked again."""
    return (when_of(slots) or {}).get("note") or None


def _opening_when(spec: ServiceSpec, raw: Any, now_local: datetime) -> dict[str, Any] | Invalid | None:
    """The time the opening message named (slots' when_raw) as the service's answer, the Invalid
    saying why it cannot be booked, or None when it named none."""
    if not isinstance(raw, dict):
        return None
    when = parse_when(str(raw.get("text") or ""), now_local.date())
    if when.empty and raw.get("date"):
        at = time.fromisoformat(raw["time"]) if raw.get("time") else None
        when = When(date.fromisoformat(raw["date"]), at, None)
    try:
        return when_value(spec, when, now_local)
    except Invalid as exc:
        return exc


def _when_prefill(spec: ServiceSpec, tz: str) -> Any:
    def prefill(slots: dict[str, Any], resident: Resident) -> dict[str, Any] | None:
        if resident.updated_at is None:
            return None
        now_local = resident.updated_at.astimezone(ZoneInfo(tz))  # the message in hand's time
        found = _opening_when(spec, slots.get("when_raw"), now_local)
        return found if isinstance(found, dict) else None  # else asked, saying why (prompt_values)

    return prefill


def _still_free(spec: ServiceSpec) -> Any:
    """The time step's check: a slot (or part of a day) already full is said at once, with the
    nearest free times, instead of only at the end; the same time again is taken (waitlisted when
    the booking is written). Capacity is checked again under the day's lock at booking."""

    async def check(ctx: Context, _slots: dict[str, Any], value: dict[str, Any]) -> str | None:
        found = await bookings.check_slot(ctx.svc, ctx.session, spec, as_when(value))
        if found.ok or found.reason not in ("slot_full", "day_full"):
            return None  # free, or a rule the parser already judged on the same clock
        times = "\n".join(f"{i}. {bookings.describe(ctx.svc, s)}" for i, s in enumerate(found.alternatives, 1))
        return ctx.text("elderly.full_at_step", service=spec.name, when=value["text"],
                        times=times or ctx.text("elderly.no_free_soon"))

    return check


def _when_steps() -> dict[str, Step]:
    """One date/time question per service (asked only for the chosen one)."""
    steps: dict[str, Step] = {}
    for index, spec in enumerate(CATALOG.services):
        steps[f"when_{index}"] = Step(
            "elderly.ask.when", parse=_when_parser(spec), prefill=_when_prefill(spec, TZ), check=_still_free(spec),
            ask_if=lambda slots, name=spec.name: slots.get("service") == name,
            label="elderly.labels.when", show=lambda v: str((v or {}).get("text") or ""),
            edit_words=("改时间", "时间不对", "时间错了", "换个时间"),
        )
    return steps


def when_of(slots: dict[str, Any]) -> dict[str, Any] | None:
    """The date/time answer of whichever service was chosen."""
    for index, spec in enumerate(CATALOG.services):
        if slots.get("service") == spec.name and slots.get(f"when_{index}"):
            return dict(slots[f"when_{index}"])
    return None


def for_whom(answer: Answer) -> str | dict[str, Any]:
    """本人 for 'me', else the person as said (母亲, 我爸, 邻居王奶奶); with the name or the age said
    too (给我爸 他叫李建国 今年八十一了, or a name alone: 张桂兰), {"text": who, "name", "age"}, so
    those questions are not asked again."""
    text = normalize(answer.text)
    if text in SELF_WORDS:
        return SELF
    told = _person_told(answer.text)
    who = told.pop("who", None)
    if told.get("name") or "age" in told:
        shown = who or told.get("name")
        if shown:
            return {"text": shown, **told}
    if parsers.says_nothing(answer.text) or text.isdigit() or len(text) > 20 or _ASKS.search(answer.text):
        raise Invalid("elderly.hint.for_whom")  # 有什么活动？ is a question, not a person
    return answer.text.strip()


_ASKS = re.compile(r"什么|怎么|哪里|哪个|为什么|吗|[?？]")


def person_name(answer: Answer) -> str | dict[str, Any]:
    """The person's name (bot.flows.parsers.person_name), without the age or address said with it:
    李建国 八十一了 and 他叫李建国 今年八十一了 are 李建国, {"text", "name", "age"} keeping the age for
    its question, and 张桂兰 住3号楼2单元502 keeps the address so (it was dropped and asked for);
    an age alone is no name."""
    if parsers.unknown_said(answer.text) and not parsers.name_said(answer.text):  # 不知道叫啥: a way to call them is enough
        raise Invalid("elderly.hint.name_unknown")
    told = _person_told(answer.text)
    rest = list(told.get("rest", ()))
    places = [w for w in rest if parsers.only_address(w) is not None]
    if told.get("name") and places:  # 张桂兰 住3号楼2单元502: the address kept for its question
        parts = {k: v for k, v in (parsers.only_address(places[0]) or {}).items() if k != "text"}
        told["address"] = {**parts, "text": parsers.place_text(parts)}  # 3栋2单元502, not 住3号楼…
    name = told.get("name") or " ".join(rest)
    if not name and _called(answer.text):  # 王奶奶: how the provider will call her
        name = answer.text.strip()
    if not name or _ASKS.search(answer.text):  # 我的工单怎么样了 is no name
        raise Invalid("elderly.hint.name")
    name = parsers.person_name(replace(answer, text=name), "elderly.hint.name")
    kept = {k: told[k] for k in ("age", "address") if k in told}
    return {"text": name, "name": name, **kept} if kept else name


_AGE = re.compile(
    r"^(?:[他她我俺]|老人家?)?(?:今年|已经|都|有|虚岁|周岁|大概|差不多)*(?P<soon>快要|快|将近)?"
    r"(?P<n>[0-9]{1,3}|[一二两三四五六七八九十]{1,3})(?P<more>多|来|几)?(?:周岁|岁)?(?P<tail>多|左右|出头)?"
    r"(?:了|啦|吧|呀|啊)*$"
)


def age_said(text: str) -> int | str | None:
    """An age as said (82, 八十二岁, 八十三了, 今年八十三, 她今年83); said roughly, the words kept
    as shown (八十多 → '80多', 快九十了 → '快90', 九十来岁 → '90左右'); None when text is none."""
    found = _AGE.match(normalize(text))
    if found is None:
        return None
    years = cn_number(found.group("n"))
    if years is None or not 1 <= years <= 120:
        return None
    if found.group("soon"):
        return f"快{years}"
    if found.group("more") in ("多", "几") or found.group("tail") in ("多", "出头"):
        return f"{years}多"
    if found.group("more") == "来" or found.group("tail") == "左右":
        return f"{years}左右"
    return years


def years_of(value: Any) -> int | None:
    """The age in years of an age answer (80多 → 80, 快90 → 89)."""
    if isinstance(value, int):
        return value
    digits = re.sub(r"\D", "", str(value or ""))
    if not digits:
        return None
    return int(digits) - 1 if str(value).startswith("快") else int(digits)


def age(answer: Answer) -> int | str:
    """An age between 1 and 120 (age_said)."""
    value = age_said(answer.text)
    if value is None:
        raise Invalid("elderly.hint.age")
    return value


_KIN = set("妈爸爷奶婆公姥伯叔姨姑舅哥姐弟妹伴儿女孙爹娘嫂师")
_SPLIT = re.compile(r"[\s\u3000，,。.、；;！!？?]+")
_NAME_AGE = re.compile(r"^(?P<name>[\u4e00-\u9fa5]{2,4}?)(?P<age>(?:今年|已经)?[0-9一二两三四五六七八九十]{1,3}.*)$")


_CALLED = re.compile(r"^(?P<surname>[\u4e00-\u9fa5]{1,2}?)(?:奶奶|爷爷|大爷|大妈|大娘|阿姨|叔叔|伯伯|婆婆|姥姥|姥爷|外婆|外公|老太太|老太|老爷子)$")


def _called(text: str) -> bool:
    """Whether text, at the name question, is how the person is called: a surname and a kin word
    (王奶奶, 李大爷), not a relation of the resident's (我奶奶)."""
    found = _CALLED.match(normalize(text))
    return found is not None and found.group("surname") in SURNAMES


def _a_name(word: str) -> bool:
    """Whether a word reads as a person's name said alone (张桂兰, 李建国; not 王奶奶, 邻居, 老李)."""
    return (2 <= len(word) <= 4 and re.fullmatch(r"[\u4e00-\u9fa5]+", word) is not None
            and word[0] in SURNAMES and not _KIN & set(word[1:]))


def _person_told(text: str) -> dict[str, Any]:
    """Who the person is (the classifier's reading: 父亲, 本人), their name (叫李建国, or a name
    alone) and age (今年八十一了), as an answer about the person tells them; "rest": the words
    left that are neither an age nor a relation."""
    told: dict[str, Any] = {}
    whom = get_classifier().classify(text).slots.get("for_whom")
    if whom:
        told["who"] = str(whom)
    named = parsers.name_said(text)
    words_: list[str] = []
    for word in _SPLIT.split(parsers.name_phrase(text) if named else text):
        pair = _NAME_AGE.match(word)
        if age_said(word) is None and pair is not None and age_said(pair.group("age")) is not None:
            words_ += [pair.group("name"), pair.group("age")]  # 李建国八十一了
        elif word:
            words_.append(word)
    rest = []
    for word in words_:
        years = age_said(word)
        if years is not None and "age" not in told:
            told["age"] = years
        elif named is None and _a_name(word):
            named = word
        elif whom is None or normalize(word) not in (normalize(w) for w in (*SELF_WORDS, "给", "给我")):
            rest.append(word)
    if named:
        told["name"] = named
    if rest and "who" not in told:
        told["rest"] = rest
    return told


def _said(value: Any) -> str:
    """An answer about the person as shown (the words, without the name or age kept with them)."""
    return str(value.get("text") or "") if isinstance(value, dict) else str(value or "")


def whom(slots: dict[str, Any]) -> str:
    """Who the booking is for, as answered (本人, 母亲, 我爸 …)."""
    return _said(slots.get("for_whom"))


def notes(answer: Answer) -> str:
    """Diet or mobility notes in the resident's words; a bare yes (是, 有, 对) says there is one,
    not what: asked for with the examples (it was 备注：是, shown to the provider)."""
    if is_word(answer.text, "yes") or normalize(answer.text) in words("elderly", "notes_yes"):
        raise Invalid("elderly.hint.notes_what")
    return parsers.short_text(answer)


def _name_told(slots: dict[str, Any], resident: Resident) -> str | None:
    """The name the for-whom answer told (张桂兰, 他叫李建国), or the resident's own when booking for
    themselves."""
    said = slots.get("for_whom")
    if isinstance(said, dict) and said.get("name"):
        return str(said["name"])
    return resident.name if whom(slots) == SELF and resident.name else None


def _age_told(slots: dict[str, Any], _resident: Resident) -> int | str | None:
    """The age said with the person or the name (给我爸 今年八十一了, 李建国 八十一了)."""
    for slot in ("for_whom", "for_name"):
        said = slots.get(slot)
        if isinstance(said, dict) and said.get("age") is not None:
            return said["age"]
    return None


def _home_address(slots: dict[str, Any], resident: Resident) -> dict[str, Any] | None:
    """The address said with the name (张桂兰 住3号楼2单元502), else the resident's registered one."""
    said = slots.get("for_name")
    if isinstance(said, dict) and isinstance(said.get("address"), dict):
        return dict(said["address"])
    if not resident.building:
        return None
    place = {"building": resident.building, "unit": resident.unit or "", "room": resident.room or ""}
    return {**{k: v for k, v in place.items() if v}, "text": parsers.place_text(place)}


def _bound_phone(_slots: dict[str, Any], resident: Resident) -> str | None:
    return resident.phone or None


_DIGIT = "[0-9零〇一二两三四五六七八九十幺]"
_TOLD_ELSEWHERE = re.compile(
    rf"(?:电话|手机|手机号)?(?:是|号码是)?\s*1[3-9][0-9\s-]{{9,12}}"  # the phone
    rf"|(?:住在?|家住|地址是?)?{_DIGIT}+(?:号楼|栋|幢|座){_DIGIT}*(?:单元)?{_DIGIT}*(?:室|号)?"  # the address
    rf"|(?:今年|已经)?{_DIGIT}+多?岁了?|今年{_DIGIT}+多?了?"  # the age
)


def _request_rest(text: str, slots: dict[str, Any]) -> str:
    """The opening without what other questions take from it (name, phone, address, age, time),
    so the request kept is the resident's words about the service (她腿脚不好 要坐轮椅)."""
    rest = _TOLD_ELSEWHERE.sub(" ", parsers.name_phrase(text))
    when = str(slots.get("when_text") or "")
    if when:
        rest = rest.replace(when, " ")
    return re.sub(r"[\s，,。；;]+", " ", rest).strip(" ，,")


def _says_more(text: str, spec: ServiceSpec, slots: dict[str, Any]) -> bool:
    """Whether the opening asks for more than the service, a time and a person (适老化改造 家里
    卫生间装个扶手, not 明天中午给我妈订助餐): a few characters left without those words."""
    rest = normalize(text)
    said = [spec.name, *spec.aliases, str(slots.get("when_text") or ""), *words("elderly", "request_words")]
    for word in sorted((normalize(w) for w in said if w), key=len, reverse=True):
        rest = rest.replace(word, "")
    return len(rest) >= 4


LAST_PERSON = "last_person"  # slots key: the person, address and phone of the last booking for the same 我妈
_LOOKED_BACK = 20  # of the resident's newest bookings


_T = Ticket.__table__
# On the driver, not the ORM (an ORM read costs ~0.19 ms of CPU on the reply path, bench/README.md).
_NEWEST_BOOKINGS = Prepared(
    select(_T.c.fields).where(_T.c.resident == bindparam("openid"), _T.c.kind == literal("elderly_service"))
    .order_by(_T.c.id.desc()).limit(_LOOKED_BACK)
)


async def _newest_bookings(ctx: Context) -> list[dict[str, Any]]:
    """The fields of the resident's newest booking tickets (at most _LOOKED_BACK), newest first."""
    found = await fastsql.run(ctx.tx, _NEWEST_BOOKINGS, {"openid": ctx.openid})
    return [row["fields"] or {} for row in found.rows]


async def with_last_person(ctx: Context, slots: dict[str, Any]) -> dict[str, Any]:
    """The classifier's slots of a booking for someone the resident booked for before (给我妈订明天
    的午饭, 我妈 booked last week) and not named now, with that booking's name, age, address and
    phone under LAST_PERSON, for the name question to offer (还是给王秀英…吗？); slots unchanged
    otherwise (for themselves: their own name and address fill in already)."""
    said = slots.get("for_whom")
    if not said or said == SELF:
        return slots
    for fields in await _newest_bookings(ctx):
        if fields.get("for_whom") == str(said) and fields.get("for_name"):
            place = {k: str(fields[k]) for k in ("building", "unit", "room") if fields.get(k)}
            last = {"name": str(fields["for_name"]), "age": fields.get("age_said") or fields.get("age"),
                    "address": {**place, "text": str(fields["address"])} if fields.get("address") else None,
                    "phone": fields.get("phone")}
            return {**slots, LAST_PERSON: {k: v for k, v in last.items() if v not in (None, "")}}
    return slots


def _last_person_kept(ctx: Context, slots: dict[str, Any], text: str) -> tuple[dict[str, Any], str] | None:
    """是 / 对 / 还是她 / 跟上次一样 where the name question offers the last booking's person: the
    name, age, address and phone taken from it (each still changeable at the summary)."""
    last = slots.get(LAST_PERSON)
    said = normalize(text)
    if not last or slots.get("for_name") or not (
            said in words("answers", "yes") or said in words("elderly", "same_person")
            or any(w in said for w in words("complaint", "same_as_last"))):
        return None
    kept = {**slots, "for_name": last["name"]}
    for slot, key in (("age", "age"), ("address", "address"), ("phone", "phone")):
        if last.get(key) and slot not in slots:
            kept[slot] = last[key]
    if last.get("phone") and last["phone"] != ctx.profile.phone:
        kept.setdefault("bind_phone", "no")  # not bound then: not offered again
    return kept, ctx.text("elderly.same_person.kept", person=_person_line(ctx, last))


def _person_line(ctx: Context, last: dict[str, Any]) -> str:
    """王秀英（82岁），地址5栋2单元301，电话138****5678: the last booking's person as offered."""
    parts = [last["name"] + (ctx.text("elderly.same_person.age", age=last["age"]) if last.get("age") else "")]
    if last.get("address"):
        parts.append(ctx.text("elderly.same_person.address", address=last["address"]["text"]))
    if last.get("phone"):
        parts.append(ctx.text("elderly.same_person.phone", phone=mask_phone(str(last["phone"]))))
    return "，".join(parts)


_FILLER = re.compile(r"^(?:那|那就|那么|哎|唉|嗯|呃|算了)+|(?:吧|啊|呀|啦|哈|了)+$")


def says_own_address(text: str) -> bool:
    """Whether text is only `[elderly] own_address` words (跟我一个地址, 就是我家), 那/嗯 and 吧/啊 aside."""
    said = _FILLER.sub("", normalize(text))
    return bool(said) and said in {normalize(w) for w in words("elderly", "own_address")}


async def _own_address(ctx: Context, text: str) -> dict[str, Any] | None:
    """跟我一个地址 / 就是我家 / 我们住一起 at the address question (`[elderly] own_address`): the
    resident's registered address, else the one of their newest booking for themselves; None when
    text says no such thing or no address of theirs is known (the question is asked again)."""
    if not says_own_address(text):
        return None
    own = _home_address({}, ctx.profile)
    if own is not None:
        return own
    for fields in await _newest_bookings(ctx):
        if fields.get("for_whom") == SELF and fields.get("address"):
            return {**{k: str(fields[k]) for k in ("building", "unit", "room") if fields.get(k)},
                    "text": str(fields["address"])}
    return None


_SEP = r"[\s，,。；;、！!]"
# What a delivery word leaves around an address (5号楼301，麻烦送到家里吧 → 5号楼301).
_DELIVERY_LEFT = re.compile(rf"^{_SEP}+|{_SEP}*(?:麻烦|请|帮忙|给我|给|要)?{_SEP}*(?:里|去|来)?(?:吧|啊|呀|哈|了)*{_SEP}*$")


async def _address_brought_home(
    ctx: Context, slots: dict[str, Any], text: str
) -> tuple[dict[str, Any], str] | None:
    """5号楼301 送到家 / 送上门 跟我一个地址 at the address question: the address (said, or the
    resident's own) taken and the booking marked to be brought home (slots' delivery, as 送到家 in
    the opening: the summary's 送到家：是, the provider's card and 接单); 送到家 alone is noted and
    the address asked again. None when text asks for no delivery ([elderly] delivery_words)."""
    if not notices.delivery_said(text):
        return None
    rest = text
    for word in sorted(words("elderly", "delivery_words"), key=len, reverse=True):
        rest = rest.replace(word, " ")
    rest = _DELIVERY_LEFT.sub("", parsers.unfilled(rest).strip()).strip()
    kept = {**slots, "delivery": True}
    if not _FILLER.sub("", normalize(rest)):
        return kept, ctx.text("elderly.delivery_noted")
    place = parsers.only_address(rest) or await _own_address(ctx, rest)
    if place is None:
        return None  # 送到家 with more than an address (送到家里 少放盐): read as before
    return {**kept, "address": place}, ctx.text("elderly.address_delivery", address=_place_show(place))


def books_after_all(text: str) -> bool:
    """Whether text only says to book after all (那还是订吧, 还是约吧, 算了还是订上吧: `[elderly]
    undo_words`), said after the booking was cancelled or at its summary."""
    said = _FILLER.sub("", normalize(text))
    return bool(said) and said in {_FILLER.sub("", normalize(w)) for w in words("elderly", "undo_words")}


def books_as_is(text: str) -> bool:
    """Whether text at a booking's summary says to book it as shown: a `[elderly] book_words` phrase
    (就这么订吧, 就这样约吧), alone or after yes words (行 就这么订吧, 好的 就这么定了)."""
    said = _FILLER.sub("", normalize(text))
    book = sorted({normalize(w) for w in words("elderly", "book_words")} - {""}, key=len, reverse=True)
    if not any(w in said for w in book):
        return False
    for word in (*book, *sorted({normalize(w) for w in words("answers", "yes")} - {""}, key=len, reverse=True)):
        said = said.replace(word, "")
    return not _FILLER.sub("", said)


def _place_show(value: Any) -> str:
    return parsers.place_text(value) if isinstance(value, dict) else str(value or "")


@register
class ElderlyService(Flow):
    """养老服务预约 (elderly_service): a booking with the service's provider, and its ticket."""

    name = "elderly_service"
    kind = "elderly_service"
    intents = ("elderly_service",)
    menu_keys = ("MENU_ELDERLY",)
    menu_number = "3"
    edit_examples = ("改时间", "改地址")
    confirm_prompt = "elderly.confirm"  # flow.confirm, with 送到家 under the summary when asked for

    service = Step(
        "elderly.ask.service", label="elderly.labels.service", choices=_service_choices(),
        edit_words=("改服务", "服务不对", "换个服务"),
    )
    # What the first message asked for beyond the service (家里卫生间装个扶手): never asked, shown
    # in the summary and given to the provider when said.
    request = Step("elderly.ask.request", label="elderly.labels.request", parse=parsers.short_text,
                   ask_if=lambda slots: bool(slots.get("request")), edit_words=("改需求",))
    for_whom = Step("elderly.ask.for_whom", label="elderly.labels.for_whom", parse=for_whom, show=_said,
                    check=parsers.not_a_time("elderly.labels.for_whom"), edit_words=("改对象", "不是给他", "不是给她"))
    for_name = Step("elderly.ask.for_name", label="elderly.labels.for_name", parse=person_name, prefill=_name_told,
                    show=_said, check=parsers.not_a_time("elderly.labels.for_name"),
                    edit_words=("改姓名", "名字错了", "姓名不对", "名字写错了", "名字打错了", "姓名写错了", "名字不对"))
    age = Step("elderly.ask.age", label="elderly.labels.age", parse=age, prefill=_age_told,
               edit_words=("改年龄", "年龄不对"))
    address = Step(
        "elderly.ask.address", label="elderly.labels.address", parse=parsers.place, accepts=LOCATION, prefill=_home_address,
        show=_place_show, check=parsers.checked_place("elderly.labels.address"),
        edit_words=("改地址", "地址错了", "地址不对"),
    )
    vars().update(_when_steps())
    notes = Step("elderly.ask.notes", label="elderly.labels.notes", parse=notes, optional=True,
                 prefill=_note_with_time, edit_words=("改备注", "备注不对"))
    phone = Step(
        "elderly.ask.phone", label="elderly.labels.phone", parse=parsers.phone, prefill=_bound_phone,
        edit_words=("电话不对", "电话错了", "改电话", "手机号不对"),
    )
    # As a report asks it (bot.flows.complaint): a phone typed here, bound on 是, is the next
    # booking's without asking (_bound_phone); the bound phone itself is not asked about.
    bind_phone = Step("elderly.ask.bind_phone", label="elderly.labels.bind_phone", choices=BIND,
                      prefill=already_bound, ask_if=lambda slots: slots.get("bind_phone") != "bound")

    first_ask_only = ("why_not", "picked", "picked_told")

    def prompt_values(self, ctx: Context, slots: dict[str, Any]) -> dict[str, str]:
        """{who}: 您 when the resident books for themselves (请问您多大年纪), else 老人; {why_not}:
        why the time the opening message named cannot be booked (said before asking for one);
        {picked}: the start taken for a part of the day no slot starts in (陪诊 明天上午: 07:30),
        said with the question after the time (the notes; the phone's, {picked_told}, when the
        notes were told with the time or before it and are not asked)."""
        values = {"who": ctx.text("elderly.who_self" if whom(slots) == SELF else "elderly.who_other")}
        values["delivery"] = ctx.text("elderly.delivery_line") if notices.delivery_in(slots) else ""
        last = slots.get(LAST_PERSON)
        values["same_person"] = ctx.text("elderly.same_person.offer", person=_person_line(ctx, last)) if last else ""
        spec = CATALOG.get(str(slots.get("service") or ""))
        raw = slots.get("when_raw")
        found = _opening_when(spec, raw, local(ctx.now, ctx.svc.tz)) if spec is not None else None
        values["why_not"] = "" if not isinstance(found, Invalid) else ctx.text(
            "elderly.opening_time_refused", said=str(raw.get("text") or ""), why=ctx.text(found.hint, **found.values),
        ) + "\n"
        wanted = when_of(slots) or {}
        values["picked"] = "" if spec is None or not wanted.get("picked") else ctx.text(
            "elderly.start_picked", service=spec.name, part=wanted["picked"], at=wanted["at"], when=wanted["text"],
        ) + "\n"
        told = slots.get(NOTES_TOLD) or (slots.get("notes") and wanted.get("note") == slots.get("notes"))
        values["picked_told"] = values["picked"] if told else ""  # the notes not asked: said at the phone
        return values

    def asked(self, ctx: Context, topic: str, slots: dict[str, Any], said: str) -> str | None:
        """要钱吗 / 助浴收费吗: the fee line (config/services.toml) of the service the question names,
        else of the one being booked; None (the general answer) when that service has none or no
        service is chosen yet."""
        if topic != "cost":
            return None
        spec = CATALOG.find(said) or CATALOG.get(str(slots.get("service") or ""))
        if spec is None or not spec.fee:
            return None
        return ctx.text("elderly.fee", service=spec.name, fee=spec.fee)

    async def midway(
        self, ctx: Context, slots: dict[str, Any], step: Step, text: str
    ) -> tuple[dict[str, Any], str] | Outcome | None:
        """What is said while a question is asked that belongs elsewhere: a new time (改成后天,
        换到周六上午: _time_moved); 取消预约 / 改个时间 (booking_request: the booking in hand is not
        submitted yet, so how to stop it is said, or its time asked again); the age or the address
        said where the person is asked (85, 3栋2单元301 at 怎么称呼: kept for their questions); a
        clock time alone at the notes after a day without one (上午十点 after 那就周三吧: that hour);
        a care note at the time or phone question (少盐: _care_noted); at the service question, a report or a need instead of a service (_no_service_named)."""
        if step is self.service:
            left = await self._no_service_named(ctx, text)
            if left is not None:
                return left
        aid = _aid_asked(ctx, slots, text)
        if aid is not None:  # 能不能带轮椅: answered, and kept on the booking's note
            return aid
        spec = CATALOG.get(str(slots.get("service") or ""))
        norm = normalize(text)
        found = _CHANGE_TO.match(norm)
        asked = booking_request(text)
        rest = found.group("rest") if found is not None else (asked[1] if asked is not None else "")
        if not rest and slots.get(TIME_NEXT) == step.slot:
            rest = text  # the time asked for after 改个时间 at this question
        if rest and spec is not None and not step.slot.startswith("when_"):
            moved = await _time_moved(ctx, {k: v for k, v in slots.items() if k != TIME_NEXT}, spec, rest)
            if moved is not None:
                return moved
        if asked is not None and asked[1] and step.slot.startswith("when_"):
            return None  # 算了改到大后天上午吧 at the time question: its answer, read by the question
        if asked is not None:
            return await _asked_in_booking(ctx, slots, step, spec, asked[0])
        if (spec is not None and step.slot in _BEFORE_TIME and when_of(slots) is None and not slots.get("when_raw")
                and _time_alone(text, local(ctx.now, ctx.svc.tz).date())):
            # 明天中午 at 老人怎么称呼, the time not asked yet: kept for its question, this one asked again
            moved = await _time_moved(ctx, slots, spec, text, first=True)
            if moved is not None:
                return moved
        if step is self.notes and spec is not None:
            both = await _time_with_note(ctx, slots, spec, text)
            if both is not None:  # 明天中午我腿脚不好 at the notes: the time moved, the note kept
                return both
        hourless = not (when_of(slots) or {}).get("at")
        if step is self.notes and spec is not None and hourless and _CLOCK_ALONE.match(norm):
            # 那就周三吧, then 上午十点 at the notes: the hour of that day, not a note (it was booked at 09:00)
            moved = await _time_moved(ctx, slots, spec, text)
            if moved is not None:
                return moved
        if spec is not None and step.slot.startswith("when_"):
            day_for = await _day_for_time_of_day(ctx, slots, spec, text)
            if day_for is not None:
                return day_for
            other_day = await _time_of_day_kept(ctx, slots, spec, text)
            if other_day is not None:  # 周五下午 refused (助浴), then 那就周六吧: 周六下午
                return other_day
        if step is self.for_name:
            same = _last_person_kept(ctx, slots, text)
            if same is not None:  # 是 to 还是给王秀英…吗
                return same
        if step.slot in ("for_whom", "for_name"):
            return _told_ahead(ctx, slots, text)
        if step is self.age:  # 5号楼2单元301 at 多大年纪: kept for the address (it was re-asked and lost)
            ahead = _address_ahead(ctx, slots, text)
            if ahead is not None:
                return ahead
        if step is self.address:
            home = await _address_brought_home(ctx, slots, text)
            if home is not None:  # 5号楼301 送到家: the address, and 送到家 as the opening's is kept
                return home
            own = await _own_address(ctx, text)
            if own is not None:  # 跟我一个地址 (booking for 我妈): the resident's own
                return {**slots, "address": own}, ctx.text("elderly.own_address", address=own["text"])
            if says_own_address(text):  # and none of theirs known: asked for it, not 好像不是一个地点
                return slots, ctx.text("elderly.own_address_unknown")
        no_place = step is self.address and not parsers.address_parts(text)  # 少放盐 at the address
        if step.slot.startswith("when_") or step is self.phone or no_place:
            return _care_noted(ctx, slots, text)
        return None

    async def _no_service_named(self, ctx: Context, text: str) -> Outcome | None:
        """At 您需要哪项服务, a sentence that names none of them but a report or a need (家里没水了,
        送水, 能不能派人送点水) is not asked again and again for a number: a report starts its own
        flow (nothing of the booking was said yet), a need no service covers goes to a person.
        None when text picks a service, or is neither (the question is asked again)."""
        if match_choice(self.service, text) is not None or CATALOG.find(text) is not None:
            return None
        said = normalize(text)
        if not said or said.isdigit():
            return None
        found = get_classifier().classify(text, now=local(ctx.now, ctx.svc.tz))
        if found.intent == "complaint":
            from bot.flows import registry

            report = registry.get("complaint")
            if report is not None:
                lead = ctx.text("flow.switched", current=ctx.text(self.title))
                return start(ctx, report, dict(found.slots or {}), text, lead=lead)
        if found.intent == "handoff" or (found.intent == "unknown" and _A_NEED.search(said)):
            from bot.flows.handoff import hand_off

            return Outcome(await hand_off(ctx, ctx.text("handoff.reason_intent")), None)
        return None

    def opening(self, slots: dict[str, Any], text: str) -> dict[str, Any]:
        """Service, date/time, for whom, age, address and phone from the opening message."""
        kept: dict[str, Any] = {}
        spec = CATALOG.get(str(slots.get("service") or "")) or (CATALOG.find(text) if text else None)
        if spec is not None:
            kept["service"] = spec.name
        if slots.get("date") or slots.get("when_text"):
            kept["when_raw"] = {"text": slots.get("when_text") or "", "date": slots.get("date"),
                                "time": slots.get("time")}
        meal = _meal_said(text, str(slots.get("when_text") or ""))
        if meal:  # 明天的晚饭: the classifier's when_text is 明天 alone, and 11:00 was booked for a dinner
            raw = kept.get("when_raw") or {"text": "", "date": None, "time": None}
            kept["when_raw"] = {**raw, "text": f"{raw['text']} {meal}".strip()}
        said_whom = slots.get("for_whom")
        if said_whom:
            kept["for_whom"] = SELF if said_whom == SELF else str(said_whom)
        if isinstance(slots.get("age"), int) and 1 <= slots["age"] <= 120:
            kept["age"] = slots["age"]
        place = {k: str(slots[k]) for k in ("building", "unit", "room") if slots.get(k)}
        if place.get("building"):
            kept["address"] = {**place, "text": parsers.place_text(place)}
        if slots.get("phone"):
            kept["phone"] = str(slots["phone"])
        named = parsers.name_said(text)
        if named and kept.get("for_whom"):  # 给我爸约个洗澡 他叫李建国: not asked again
            kept["for_name"] = named
        if notices.delivery_said(text):  # 午饭送到家: on the provider's card
            kept["delivery"] = True
        if slots.get(LAST_PERSON) and "for_name" not in kept:
            kept[LAST_PERSON] = slots[LAST_PERSON]
        rest = _request_rest(text, slots) if spec is not None else ""
        if spec is not None and _says_more(rest, spec, slots):
            kept["request"] = rest[:200]
        return kept

    async def at_summary(self, ctx: Context, slots: dict[str, Any], text: str) -> Outcome | None:
        """那还是订吧 at the summary (after 否 or a moment's doubt), or 行 就这么订吧: submitted, as 确认 is."""
        return Outcome(await self.finish(ctx, slots), None) if books_after_all(text) or books_as_is(text) else None

    async def finish(self, ctx: Context, slots: dict[str, Any]) -> str:
        """Book (or waitlist) and write the ticket; a booking dropped earlier is not brought back now."""
        from bot.flows.booking_undo import forget  # it reads this module

        await forget(ctx)
        return await book(ctx, self, slots)


# Something wanted done that is no bookable service (送水, 帮忙买药, 搬东西): for a person to arrange.
_A_NEED = re.compile(r"送|搬|扛|提不动|拎不动|买|取|帮忙|帮我|需要|要人|派人|来人|没水|没电|没气")

# A clock time alone (上午十点, 10点半, 14:00吧), said after a day without one (那就周三吧).
_CLOCK_ALONE = re.compile(
    r"^(?:那就|那|就|约|定)?(?:早上|上午|中午|下午|晚上|傍晚)?"
    r"(?:[0-9]{1,2}[:：][0-9]{2}|[0-9一二两三四五六七八九十]{1,3}[点點时](?:半|一刻|三刻|[0-9一二三四五六七八九十]{1,3}分?)?)"
    r"钟?(?:吧|呀|啊|左右)?$"
)
# A new time for the booking said in the middle of it ("改成后天", "时间换到周六上午").
_CHANGE_TO = re.compile(r"^(?:把?(?:时间|日子|日期)|那就)?(?:改成|改到|改为|改在|换成|换到|挪到)(?P<rest>.+)$")


def _meal_said(text: str, when_text: str) -> str:
    """The meal (午饭, 晚饭) a message names as its time of day when the classifier's time phrase
    (when_text) names no time of day of its own; "" otherwise."""
    if not text:
        return ""
    said, told = parse_when(text, _ANY_DAY), parse_when(when_text, _ANY_DAY)
    if said.at is not None or said.part not in _MEALS or told.at is not None or told.part is not None:
        return ""
    return str(said.part)


_MEALS = ("午饭", "晚饭")


async def _time_moved(
    ctx: Context, slots: dict[str, Any], spec: ServiceSpec, said: str, *, first: bool = False
) -> tuple[dict[str, Any], str] | None:
    """改成后天 / 换到周六上午 / 时间改成下午 while another question of a booking is asked: the
    time changes (a day alone keeps the time of day, a time alone the day), checked as the time
    question checks it; refused, the time stays and the reason is said. None when said names no
    time. `first`: no time was said before (明天中午 at the name question), so it is noted, not changed."""
    slot = f"when_{CATALOG.services.index(spec)}"
    now_local = local(ctx.now, ctx.svc.tz)
    when = parse_when(said, now_local.date())
    if when.empty:
        return None
    old = slots.get(slot)
    if not isinstance(old, dict):  # not asked yet: the time the opening message named, if bookable
        opened = _opening_when(spec, slots.get("when_raw"), now_local)
        old = opened if isinstance(opened, dict) else None
    if old is not None:
        when = moved_when(old, when)
    try:
        value = when_value(spec, when, now_local)
    except Invalid as exc:
        why = ctx.text(exc.hint, **exc.values)
        return slots, ctx.text("elderly.time_not_taken" if first else "elderly.time_not_changed", why=why)
    refusal = await _still_free(spec)(ctx, slots, value)
    if refusal is not None:
        return slots, ctx.text("elderly.time_not_taken" if first else "elderly.time_not_changed", why=refusal)
    if first:
        return {**slots, slot: value}, ctx.text("flow.noted", field=ctx.text("elderly.labels.when"), value=value["text"])
    return {**slots, slot: value}, ctx.text("elderly.time_changed", when=value["text"])


async def _day_for_time_of_day(
    ctx: Context, slots: dict[str, Any], spec: ServiceSpec, text: str
) -> tuple[dict[str, Any], str] | None:
    """A day alone (后天) where the time is asked after the opening named a time of day with no day
    (订个饭 晚上送过去, asked 您说的“晚上”：请说是哪一天): that day at that time of day. The day
    alone was booked at the day's first slot, 11:00 — lunch for a dinner. None otherwise."""
    raw = slots.get("when_raw")
    today = local(ctx.now, ctx.svc.tz).date()
    if not isinstance(raw, dict) or not _time_alone(text, today):
        return None
    opened, said = parse_when(str(raw.get("text") or ""), today), parse_when(text, today)
    if opened.day is not None or (opened.at is None and opened.part is None):
        return None
    if said.day is None or said.at is not None or said.part is not None:
        return None
    return await _time_moved(ctx, slots, spec, f"{text} {raw.get('text')}", first=True)


REFUSED_AT = "_refused_at"  # slots key: what a refused time said that still holds (its day, or its time of day)
_DAY_REFUSALS = ("elderly.hint.when_closed", "elderly.hint.when_closed_none", "elderly.hint.when_too_far")


async def _time_of_day_kept(
    ctx: Context, slots: dict[str, Any], spec: ServiceSpec, text: str
) -> tuple[dict[str, Any], str] | None:
    """At the time question, a time refused is refused as the question refuses it, what of it still
    holds kept: its time of day when the day was refused (周五下午 for 助浴, offered on other days),
    its day when the hour was (明天下午两点 for 助洁, which starts 13:30 or 15:30). The other half
    said next takes it: 那就周六吧 is 周六下午 (it was the day's first slot, a morning for an
    afternoon asked), 那就一点半吧 is 明天13:30 (it was 请说是哪一天). A day alone after the opening's
    time refused for its day takes that time of day too. None otherwise (the question reads it)."""
    now_local = local(ctx.now, ctx.svc.tz)
    today = now_local.date()
    said = parse_when(text, today)
    if said.day is not None and (said.at is not None or said.part is not None):
        try:
            when_value(spec, said, now_local)
        except Invalid as exc:
            if exc.hint in _DAY_REFUSALS:
                kept = {"tod": said.at.strftime("%H:%M") if said.at else str(said.part)}
            elif exc.hint == "elderly.hint.when_outside_hours":
                kept = {"day": said.day.isoformat()}
            else:
                return None
            return {**slots, REFUSED_AT: kept}, ctx.text(exc.hint, **exc.values)
        return None
    earlier = dict(slots.get(REFUSED_AT) or {})
    if not earlier:
        opened = _opening_when(spec, slots.get("when_raw"), now_local)
        raw = parse_when(str((slots.get("when_raw") or {}).get("text") or ""), today)
        if isinstance(opened, Invalid) and opened.hint in _DAY_REFUSALS and (raw.at or raw.part):
            earlier = {"tod": raw.at.strftime("%H:%M") if raw.at else str(raw.part)}
    if said.empty or not _time_alone(text, today):
        return None
    if said.day is not None and earlier.get("tod"):
        together = f"{text} {earlier['tod']}"
    elif said.day is None and earlier.get("day"):
        day = date.fromisoformat(earlier["day"])
        together = f"{day.month}月{day.day}日 {text}"
    else:
        return None
    return await _time_moved(ctx, {k: v for k, v in slots.items() if k != REFUSED_AT}, spec, together, first=True)


_BEFORE_TIME = ("for_whom", "for_name", "age", "address")  # the questions asked before the time
_TIME_FILLER = re.compile(r"[\s，,。！!的吧啊呀就那是要在]+")


def _time_alone(text: str, today: date) -> bool:
    """Whether text says a time and nothing else (明天中午, 周三上午十点吧), not 刘明天 or 明天中午送."""
    return not parse_when(text, today).empty and not _TIME_FILLER.sub("", without_when(text))


def moved_when(old: dict[str, Any], when: When) -> When:
    """A new time said against an earlier one ({"day", "at", "part"}): a day alone keeps the time
    of day (改到后天), a time alone the day (改成下午3点)."""
    if when.day is None:
        return When(date.fromisoformat(old["day"]), when.at, when.part)
    if when.at is None and when.part is None:
        return When(when.day, time.fromisoformat(old["at"]) if old.get("at") else None, old.get("part"))
    return when


async def _asked_in_booking(
    ctx: Context, slots: dict[str, Any], step: Step, spec: ServiceSpec | None, kind: str
) -> tuple[dict[str, Any], str]:
    """取消预约 / 改个时间 said in the middle of a new booking. To cancel: this one is not
    submitted, so how to stop it is said (and how to cancel one booked before, when there is
    one), instead of reading the words as the answer. To change its time: the new time is asked
    for, and a time said next at this question changes it (TIME_NEXT)."""
    service = spec.name if spec is not None else ctx.text("flow.titles.elderly_service")
    if kind == "change":
        if spec is None or step.slot.startswith("when_"):
            return slots, ""  # at the time question: asked again, without "not understood"
        return {**slots, TIME_NEXT: step.slot}, ctx.text("elderly.time_asked")
    said = ctx.text("elderly.cancel_in_booking", service=service)
    if await bookings.upcoming(ctx.svc, ctx.session, ctx.openid):
        said = "\n".join((said, ctx.text("elderly.cancel_booked_too")))
    return slots, said


TIME_NEXT = "_time_next"  # slots key: the question 改个时间 was said at; a time said next there moves the booking
AGE_SAID_AHEAD = 50  # a bare number at the person's questions is taken for the age from this on


def _told_ahead(ctx: Context, slots: dict[str, Any], text: str) -> tuple[dict[str, Any], str] | None:
    """An age (85, 八十多了) or an address (3栋2单元301) sent where the person or the name is asked,
    and its question still to come: kept for it (then not asked), and the question in hand asked
    again, instead of "please tell me the name"."""
    years = age_said(text)
    if years is not None and (years_of(years) or 0) >= AGE_SAID_AHEAD and "age" not in slots:
        said = ctx.text("flow.noted", field=ctx.text("elderly.labels.age"), value=str(years))
        return {**slots, "age": years}, said
    return _address_ahead(ctx, slots, text)


def _address_ahead(ctx: Context, slots: dict[str, Any], text: str) -> tuple[dict[str, Any], str] | None:
    """An address alone (5号楼2单元301) said before its question (at the person, the name or the
    age): kept for it, then not asked."""
    place = parsers.only_address(text)
    if place is not None and "address" not in slots:
        said = ctx.text("flow.noted", field=ctx.text("elderly.labels.address"), value=_place_show(place))
        return {**slots, "address": place}, said
    return None


NOTES_TOLD = "_notes_told"  # slots key: the notes were told at another question, so not asked
_ASKS_IF = re.compile(r"能不能|可不可以|可以不|行不行|能否|要不要|需不需要|用不用|方不方便|有没有|[吗么嘛?？][\s。.!！~～]*$")


def _aid_asked(ctx: Context, slots: dict[str, Any], text: str) -> tuple[dict[str, Any], str] | None:
    """A question about an aid or a need of the person's at any question of the booking (能不能带
    轮椅, 可以坐轮椅去吗, 要不要带拐杖; `[elderly] aid_words`): answered — config/faq.toml's entry on
    it, else that the provider will answer it when they call —, kept on the booking's note for the
    provider (added to one kept before), and the question in hand asked again (before: taken as the
    name at 怎么称呼, or kept as a note with no answer). None for anything else."""
    said = text.strip()
    norm = normalize(said)
    if not norm or len(norm) > 30 or not _ASKS_IF.search(norm):
        return None
    if not any(w in norm for w in words("elderly", "aid_words")):
        return None
    known = faq.answer(said)
    answer = ctx.text("elderly.aid.known", answer=known) if known else ctx.text("elderly.aid.provider")
    said = as_typed(ctx.inbound.text.strip(), said)
    noted = ctx.text("flow.noted", field=ctx.text("elderly.labels.notes"), value=said)
    return _noted(slots, said), "\n".join((answer, noted))


def _noted(slots: dict[str, Any], said: str) -> dict[str, Any]:
    """slots with said added to the booking's note (after one kept before), told at another question."""
    kept = str(slots.get("notes") or "")
    return {**slots, "notes": (f"{kept}，{said}" if kept else said)[:NOTES_MAX], NOTES_TOLD: True}
NOTES_MAX = 200  # characters of a booking's note kept from what was said at other questions


def _care_noted(ctx: Context, slots: dict[str, Any], text: str) -> tuple[dict[str, Any], str] | None:
    """A care note said at the time or the phone question, with no time in it (少盐, 不要辣, 我腿脚
    不好): kept as the booking's note (added to one kept before), and the question asked again,
    instead of 没有看懂时间. None when text names a time or no care word ([elderly] care_words)."""
    said = text.strip()
    norm = normalize(said)
    if not norm or not any(w in norm for w in words("elderly", "care_words")):
        return None
    if not parse_when(said, local(ctx.now, ctx.svc.tz).date()).empty:
        return None
    said = as_typed(ctx.inbound.text.strip(), said)  # 我腿腳不好 kept as typed, read simplified
    return _noted(slots, said), ctx.text("flow.noted", field=ctx.text("elderly.labels.notes"), value=said)


async def _time_with_note(
    ctx: Context, slots: dict[str, Any], spec: ServiceSpec, text: str
) -> tuple[dict[str, Any], str] | None:
    """A time and a care note said together at the notes question (明天中午我腿脚不好): the time
    changes as 改成明天中午 would (said only when it does change), and the care clauses are the
    notes, which the question then has. None when text names no time or no care word."""
    today = local(ctx.now, ctx.svc.tz).date()
    note = care_clauses(text, today, typed=ctx.inbound.text)
    if not note or parse_when(text, today).day is None or not _only_time_and_care(text, today):
        return None  # 软一点 (一点 no hour), 下午三点以后不在家 (when to find them): a note
    moved = await _time_moved(ctx, slots, spec, text)
    if moved is None:
        return None
    after, said = moved
    if when_of(after) == when_of(slots):
        said = ""  # the same time said again (明天上午 少盐 after 明天上午): nothing changed to say
    noted = ctx.text("flow.noted", field=ctx.text("elderly.labels.notes"), value=note)
    return {**after, "notes": note[:NOTES_MAX]}, "\n".join(t for t in (said, noted) if t)


def _only_time_and_care(text: str, today: date) -> bool:
    """Whether every clause naming a time says nothing else but a care note (明天中午我腿脚不好;
    not 下午三点以后不在家)."""
    care = words("elderly", "care_words")
    for clause in _CLAUSES.split(text.strip()):
        if not clause or parse_when(clause, today).empty:
            continue
        for piece in _CLAUSES.split(without_when(clause).strip()):
            if _TIME_FILLER.sub("", piece) and not any(w in normalize(piece) for w in care):
                return False
    return True


def as_when(value: dict[str, Any]) -> When:
    """A time answer ({"day", "at", "part"}) as a When."""
    return When(
        date.fromisoformat(value["day"]),
        time.fromisoformat(value["at"]) if value.get("at") else None,
        value.get("part"),
    )


def _first_slot(svc: Any, spec: ServiceSpec, when: When) -> datetime:
    """The first slot of the day inside the part of day asked for (a waitlist's place)."""
    assert when.day is not None
    lo, hi = when.window() or (time(0), time(23, 59))
    starts = spec.slots_on(when.day)
    chosen = next((t for t in starts if lo <= t < hi), starts[0])
    return bookings.local_slot(svc, when.day, chosen)


def alternatives_text(ctx: Context, starts: tuple[datetime, ...]) -> str:
    """The nearest free times, numbered, or that there are none soon."""
    if not starts:
        return ctx.text("elderly.no_alternatives")
    lines = "\n".join(f"{i}. {bookings.describe(ctx.svc, s)}" for i, s in enumerate(starts, 1))
    return ctx.text("elderly.alternatives", times=lines)


async def book(ctx: Context, flow: Flow, slots: dict[str, Any]) -> str:
    """Hold the slot, write the ticket (routed to the provider) and the booking, in one transaction."""
    svc = ctx.svc
    spec = bookings.catalog_of(svc.extras).get(str(slots.get("service")))
    wanted = when_of(slots)
    if spec is None or wanted is None:
        raise ValueError("elderly_service finished without a service or a time")
    found = await bookings.check_slot(svc, ctx.session, spec, as_when(wanted))
    held = await bookings.hold_slot(svc, ctx.session, spec, found.start) if found.start else found
    waitlist = not held.ok
    start = held.start or _first_slot(svc, spec, as_when(wanted))
    if waitlist and held.reason not in ("slot_full", "day_full"):
        # The time became impossible meanwhile (e.g. too soon now): offer the nearest instead.
        return "\n".join([ctx.text("elderly.not_bookable", service=spec.name), alternatives_text(ctx, held.alternatives)])
    if slots.get("bind_phone") == "yes" and slots.get("phone"):
        ctx.resident.phone = str(slots["phone"])  # as a report binds it: the next booking's contact
        ctx.resident.updated_at = ctx.now
    address = slots.get("address") or {}
    who = _said(slots.get("for_name"))
    years = years_of(slots.get("age"))
    fields = {
        "service": spec.name, "for_whom": whom(slots), "for_name": who, "age": years,
        "address": _place_show(address), "building": address.get("building"), "unit": address.get("unit"),
        "room": address.get("room"), "start": start.isoformat(), "when": bookings.describe(svc, start),
        "notes": slots.get("notes"), "phone": slots.get("phone"), "waitlist": waitlist,
        "request": slots.get("request"),
        **({"delivery": True} if slots.get("delivery") is True else {}),  # 送到家: on the provider's card
    }
    if not isinstance(slots.get("age"), int) and years is not None:
        fields["age_said"] = str(slots["age"])  # 80多: the card shows it as said
    created = await create_and_dispatch(
        ctx, flow, fields=fields, summary=bookings.ticket_summary(svc, fields, start, waitlist=waitlist),
        category=spec.name, building=address.get("building"),
    )
    await bookings.create_booking(
        svc, ctx.session, ticket=created.ticket, resident=ctx.openid, spec=spec, start=start,
        for_name=who or None, for_age=years, address=_place_show(address) or None,
        notes=slots.get("notes"), waitlist=waitlist, provider=created.ticket.assignee,
    )
    if waitlist:
        return "\n".join([
            ctx.text("elderly.waitlisted", number=created.ticket.number, service=spec.name,
                     when=bookings.describe(svc, start)),
            alternatives_text(ctx, held.alternatives),
        ])
    return "\n".join([
        ctx.text("elderly.booked", service=spec.name, when=bookings.describe(svc, start)),
        created_reply(ctx, created, with_due=False),
        ctx.text("elderly.how_to_change"),
    ])


from bot.flows import booking_change  # noqa: E402,F401  (registers 取消预约 / 改时间: it reads this module)
