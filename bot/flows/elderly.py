"""养老服务预约: which service, for whom, where, when, notes, contact — then a booking and a ticket.

The date/time question is one Step per service (only the chosen service's is asked), so the answer
is checked against that service's hours, lead time and booking horizon as it is read, and against
its capacity (Step.check): a full time is said at once with the nearest free ones, and the same
time given again is taken. Capacity is checked again under the per service+day lock when the
booking is written (bot/bookings.py): a full slot then becomes a waitlist booking, and the reply
names the nearest free times.

The same flow serves the words residents answer reminders with: "取消预约" (cancel the next
booking, after the summary's confirmation) and "改时间" (ask a new date/time for it).
"""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from bot import bookings
from bot.clock import local
from bot.flows import parsers
from bot.flows.base import LOCATION, Answer, Choice, Context, Flow, Invalid, Step
from bot.flows.commands import normalize
from bot.flows.config import words
from bot.flows.finish import create_and_dispatch, created_reply
from bot.flows.registry import register
from bot.privacy import hash_openid
from bot.service_catalog import ServiceSpec, load_catalog
from bot.settings import load_settings
from bot.when import When, cn_number, parse_when
from storage.models import Booking, Resident

CATALOG = load_catalog()
TZ = load_settings().timezone
SELF = "本人"
SELF_WORDS = ("我自己", "自己", "本人", "我本人", "我", "给我自己")
CANCEL_WORDS = ("取消预约", "取消订餐", "不约了", "取消助餐", "取消服务")
CHANGE_WORDS = ("改时间", "改约", "换时间", "改个时间", "改期", "改日期")


def _service_choices() -> tuple[Choice, ...]:
    """The services as numbered choices; the label carries the hours."""
    return tuple(
        Choice(spec.name, f"{spec.name}（{spec.hours_text()}）", (spec.name, *spec.aliases))
        for spec in CATALOG.services
    )


def _when_value(spec: ServiceSpec, when: When, now_local: datetime) -> dict[str, Any]:
    """A date/time answer checked against the service's rules; Invalid with the reason's hint."""
    if when.day is None:
        raise Invalid("elderly.hint.when_day")
    reason = bookings.hours_refusal(spec, when.day, when.at, now_local)
    if reason == "outside_hours":
        raise _outside_hours(spec, when.day)
    if reason is not None:
        raise Invalid(f"elderly.hint.when_{reason}")
    if when.at is None and when.part is not None:
        lo, hi = when.window() or (time(0), time(23, 59))
        if not any(lo <= t < hi for t in spec.slots_on(when.day)):
            raise _outside_hours(spec, when.day)
    return {
        "day": when.day.isoformat(),
        "at": when.at.strftime("%H:%M") if when.at else None,
        "part": when.part if when.at is None else None,
        "text": when_text(when.day, when.at, when.part),
    }


SHOWN_STARTS = 8  # start times listed when a time is outside the service's slots


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
        return _when_value(spec, when, answer.now)

    return parse


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
        return _when_value(spec, when, now_local)
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
        found = await bookings.check_slot(ctx.svc, ctx.session, spec, _as_when(value))
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
            ask_if=lambda slots, name=spec.name: _booking_mode(slots) and slots.get("service") == name,
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


def for_whom(answer: Answer) -> str:
    """本人 for 'me', else the person as said (母亲, 我爸, 邻居王奶奶)."""
    text = normalize(answer.text)
    if text in SELF_WORDS:
        return SELF
    if parsers.says_nothing(answer.text) or text.isdigit() or len(text) > 20 or _ASKS.search(answer.text):
        raise Invalid("elderly.hint.for_whom")  # 有什么活动？ is a question, not a person
    return answer.text.strip()


_ASKS = re.compile(r"什么|怎么|哪里|哪个|为什么|吗|[?？]")


def person_name(answer: Answer) -> str:
    """The person's name: 1–20 characters, no digits (bot.flows.parsers.person_name)."""
    return parsers.person_name(answer, "elderly.hint.name")


def age(answer: Answer) -> int:
    """An age between 1 and 120 ('82', '八十二岁')."""
    text = normalize(answer.text).removesuffix("岁").removesuffix("周")
    value = cn_number(text) if text else None
    if value is None and text.isdigit():
        value = int(text)
    if value is None or not 1 <= value <= 120:
        raise Invalid("elderly.hint.age")
    return value


def notes(answer: Answer) -> str:
    """Diet or mobility notes in the resident's words."""
    return parsers.short_text(answer)


def _self_name(slots: dict[str, Any], resident: Resident) -> str | None:
    return resident.name if slots.get("for_whom") == SELF and resident.name else None


def _home_address(slots: dict[str, Any], resident: Resident) -> dict[str, Any] | None:
    if not resident.building:
        return None
    place = {"building": resident.building, "unit": resident.unit or "", "room": resident.room or ""}
    return {**{k: v for k, v in place.items() if v}, "text": parsers.place_text(place)}


def _bound_phone(_slots: dict[str, Any], resident: Resident) -> str | None:
    return resident.phone or None


def _booking_ref(slots: dict[str, Any], _resident: Resident) -> str | None:
    action = slots.get("action")
    return f"{action}:next" if action in ("cancel", "change") else None


def _booking_show(value: Any) -> str:
    return "取消最近的一个预约" if str(value).startswith("cancel") else "更改最近的一个预约的时间"


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


def _booking_mode(slots: dict[str, Any]) -> bool:
    return slots.get("action", "book") == "book"


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

    action = Step("elderly.ask.action", label="elderly.labels.action", choices=(
        Choice("book", "预约服务"), Choice("cancel", "取消预约"), Choice("change", "改时间"),
    ), ask_if=lambda slots: False)
    booking = Step(
        "elderly.ask.booking", prefill=_booking_ref, ask_if=lambda slots: not _booking_mode(slots),
        label="elderly.labels.booking", show=_booking_show,
    )
    service = Step(
        "elderly.ask.service", label="elderly.labels.service", choices=_service_choices(), ask_if=_booking_mode,
        edit_words=("改服务", "服务不对", "换个服务"),
    )
    # What the first message asked for beyond the service (家里卫生间装个扶手): never asked, shown
    # in the summary and given to the provider when said.
    request = Step("elderly.ask.request", label="elderly.labels.request", parse=parsers.short_text,
                   ask_if=lambda slots: _booking_mode(slots) and bool(slots.get("request")), edit_words=("改需求",))
    for_whom = Step("elderly.ask.for_whom", label="elderly.labels.for_whom", parse=for_whom, ask_if=_booking_mode,
                    check=parsers.not_a_time("elderly.labels.for_whom"), edit_words=("改对象", "不是给他", "不是给她"))
    for_name = Step("elderly.ask.for_name", label="elderly.labels.for_name", parse=person_name, prefill=_self_name, ask_if=_booking_mode,
                    check=parsers.not_a_time("elderly.labels.for_name"), edit_words=("改姓名", "名字错了", "姓名不对"))
    age = Step("elderly.ask.age", label="elderly.labels.age", parse=age, ask_if=_booking_mode, edit_words=("改年龄", "年龄不对"))
    address = Step(
        "elderly.ask.address", label="elderly.labels.address", parse=parsers.place, accepts=LOCATION, prefill=_home_address,
        ask_if=_booking_mode, show=_place_show, check=parsers.checked_place("elderly.labels.address"),
        edit_words=("改地址", "地址错了", "地址不对"),
    )
    vars().update(_when_steps())
    new_time = Step(
        "elderly.ask.new_time", parse=lambda a: _new_time(a), ask_if=lambda slots: slots.get("action") == "change",
        label="elderly.labels.new_time", show=lambda v: str((v or {}).get("text") or ""),
    )
    notes = Step("elderly.ask.notes", label="elderly.labels.notes", parse=notes, optional=True, ask_if=_booking_mode,
                 edit_words=("改备注", "备注不对"))
    phone = Step(
        "elderly.ask.phone", label="elderly.labels.phone", parse=parsers.phone, prefill=_bound_phone, ask_if=_booking_mode,
        edit_words=("电话不对", "电话错了", "改电话", "手机号不对"),
    )

    first_ask_only = ("why_not",)

    def prompt_values(self, ctx: Context, slots: dict[str, Any]) -> dict[str, str]:
        """{who}: 您 when the resident books for themselves (请问您多大年纪), else 老人; {why_not}:
        why the time the opening message named cannot be booked (said before asking for one)."""
        values = {"who": ctx.text("elderly.who_self" if slots.get("for_whom") == SELF else "elderly.who_other")}
        spec = CATALOG.get(str(slots.get("service") or ""))
        raw = slots.get("when_raw")
        found = _opening_when(spec, raw, local(ctx.now, ctx.svc.tz)) if spec is not None else None
        values["why_not"] = "" if not isinstance(found, Invalid) else ctx.text(
            "elderly.opening_time_refused", said=str(raw.get("text") or ""), why=ctx.text(found.hint, **found.values),
        ) + "\n"
        return values

    async def midway(
        self, ctx: Context, slots: dict[str, Any], step: Step, text: str
    ) -> tuple[dict[str, Any], str] | None:
        """改成后天 / 换到周六上午 / 时间改成下午 while another question of a booking is asked: the
        time changes (a day alone keeps the time of day, a time alone the day), checked as the
        time question checks it; refused, the time stays and the reason is said."""
        found = _CHANGE_TO.match(normalize(text))
        spec = CATALOG.get(str(slots.get("service") or ""))
        if found is None or spec is None or not _booking_mode(slots) or step.slot.startswith("when_"):
            return None
        slot = f"when_{CATALOG.services.index(spec)}"
        now_local = local(ctx.now, ctx.svc.tz)
        when = parse_when(found.group("rest"), now_local.date())
        if when.empty:
            return None
        old = slots.get(slot)
        if not isinstance(old, dict):  # not asked yet: the time the opening message named, if bookable
            opened = _opening_when(spec, slots.get("when_raw"), now_local)
            old = opened if isinstance(opened, dict) else None
        if old is not None and when.day is None:
            when = When(date.fromisoformat(old["day"]), when.at, when.part)
        elif old is not None and when.at is None and when.part is None:
            when = When(when.day, time.fromisoformat(old["at"]) if old.get("at") else None, old.get("part"))
        try:
            value = _when_value(spec, when, now_local)
        except Invalid as exc:
            return slots, ctx.text("elderly.time_not_changed", why=ctx.text(exc.hint, **exc.values))
        refusal = await _still_free(spec)(ctx, slots, value)
        if refusal is not None:
            return slots, ctx.text("elderly.time_not_changed", why=refusal)
        return {**slots, slot: value}, ctx.text("elderly.time_changed", when=value["text"])

    def opening(self, slots: dict[str, Any], text: str) -> dict[str, Any]:
        """Service, date/time, for whom, age, address and phone from the opening message."""
        said = normalize(text)
        if any(w in said for w in CANCEL_WORDS):
            return {"action": "cancel"}
        if any(w in said for w in CHANGE_WORDS):
            return {"action": "change"}
        kept: dict[str, Any] = {}
        spec = CATALOG.get(str(slots.get("service") or "")) or (CATALOG.find(text) if text else None)
        if spec is not None:
            kept["service"] = spec.name
        if slots.get("date") or slots.get("when_text"):
            kept["when_raw"] = {"text": slots.get("when_text") or "", "date": slots.get("date"),
                                "time": slots.get("time")}
        whom = slots.get("for_whom")
        if whom:
            kept["for_whom"] = SELF if whom == SELF else str(whom)
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
        rest = _request_rest(text, slots) if spec is not None else ""
        if spec is not None and _says_more(rest, spec, slots):
            kept["request"] = rest[:200]
        return kept

    async def finish(self, ctx: Context, slots: dict[str, Any]) -> str:
        """Book (or waitlist) and write the ticket; or cancel/move the resident's next booking."""
        action = slots.get("action", "book")
        if action == "cancel":
            return await cancel_next(ctx)
        if action == "change":
            return await change_next(ctx, slots.get("new_time") or {})
        return await book(ctx, self, slots)


# A new time for the booking said in the middle of it ("改成后天", "时间换到周六上午").
_CHANGE_TO = re.compile(r"^(?:把?(?:时间|日子|日期)|那就)?(?:改成|改到|改为|改在|换成|换到|挪到)(?P<rest>.+)$")


def _new_time(answer: Answer) -> dict[str, Any]:
    """A new date/time for an existing booking (its service is checked when it is moved)."""
    when = parse_when(answer.text.strip(), answer.now.date())
    if when.day is None:
        raise Invalid("elderly.hint.when_day")
    if when.at is None and when.part is None:
        raise Invalid("elderly.hint.when")
    return {"day": when.day.isoformat(), "at": when.at.strftime("%H:%M") if when.at else None,
            "part": when.part if when.at is None else None, "text": when_text(when.day, when.at, when.part)}


def _as_when(value: dict[str, Any]) -> When:
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


def _alternatives_text(ctx: Context, starts: tuple[datetime, ...]) -> str:
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
    found = await bookings.check_slot(svc, ctx.session, spec, _as_when(wanted))
    held = await bookings.hold_slot(svc, ctx.session, spec, found.start) if found.start else found
    waitlist = not held.ok
    start = held.start or _first_slot(svc, spec, _as_when(wanted))
    if waitlist and held.reason not in ("slot_full", "day_full"):
        # The time became impossible meanwhile (e.g. too soon now): offer the nearest instead.
        return "\n".join([ctx.text("elderly.not_bookable", service=spec.name), _alternatives_text(ctx, held.alternatives)])
    address = slots.get("address") or {}
    who = slots.get("for_name") or ""
    fields = {
        "service": spec.name, "for_whom": slots.get("for_whom"), "for_name": who, "age": slots.get("age"),
        "address": _place_show(address), "building": address.get("building"), "unit": address.get("unit"),
        "room": address.get("room"), "start": start.isoformat(), "when": bookings.describe(svc, start),
        "notes": slots.get("notes"), "phone": slots.get("phone"), "waitlist": waitlist,
        "request": slots.get("request"),
    }
    created = await create_and_dispatch(
        ctx, flow, fields=fields, summary=bookings.ticket_summary(svc, fields, start, waitlist=waitlist),
        category=spec.name, building=address.get("building"),
    )
    booking = await bookings.create_booking(
        svc, ctx.session, ticket=created.ticket, resident=ctx.openid, spec=spec, start=start,
        for_name=who or None, for_age=slots.get("age"), address=_place_show(address) or None,
        notes=slots.get("notes"), waitlist=waitlist,
    )
    booking.provider = created.ticket.assignee
    if waitlist:
        return "\n".join([
            ctx.text("elderly.waitlisted", number=created.ticket.number, service=spec.name,
                     when=bookings.describe(svc, start)),
            _alternatives_text(ctx, held.alternatives),
        ])
    return "\n".join([
        ctx.text("elderly.booked", service=spec.name, when=bookings.describe(svc, start)),
        created_reply(ctx, created, with_due=False),
        ctx.text("elderly.how_to_change"),
    ])


async def _next_booking(ctx: Context) -> Booking | None:
    found = await bookings.upcoming(ctx.svc, ctx.session, ctx.openid)
    return found[0] if found else None


async def nothing_to_change(ctx: Context, text: str) -> str | None:
    """取消预约 / 改时间 from a resident with no booking ahead: said at once (before, a summary to
    confirm came first, and only then "no booking"); None when there is one, or text is no such request."""
    said = normalize(text)
    if not any(w in said for w in (*CANCEL_WORDS, *CHANGE_WORDS)):
        return None
    return ctx.text("elderly.no_booking") if await _next_booking(ctx) is None else None


async def cancel_next(ctx: Context) -> str:
    """Cancel the resident's next booking (its ticket is cancelled too)."""
    booking = await _next_booking(ctx)
    if booking is None:
        return ctx.text("elderly.no_booking")
    actor = f"resident:{hash_openid(ctx.openid)}"
    await bookings.cancel_booking(ctx.svc, ctx.session, booking, actor)
    await _cancel_ticket(ctx, booking, actor)
    return ctx.text("elderly.cancelled", service=booking.service, when=bookings.describe(ctx.svc, booking.start_at))


async def _cancel_ticket(ctx: Context, booking: Booking, actor: str) -> None:
    from bot.flows.finish import dispatch_module
    from bot.tickets import TRANSITIONS
    from storage.models import Ticket

    ticket = await ctx.session.get(Ticket, booking.ticket_id)
    if ticket is None or ticket.status not in TRANSITIONS["cancel"].sources:
        return
    dispatch = dispatch_module()
    note = ctx.text("elderly.cancel_note")
    if dispatch is not None:
        # The resident's own cancellation: answered in the chat, so no push to them (as 撤销工单);
        # the provider is still told.
        await dispatch.apply_action(ctx.svc, ctx.session, ticket, "cancel", actor, note=note, data={"by": "resident"})
    else:
        from bot.tickets import transition

        await transition(ctx.session, ticket, "cancel", actor, ctx.now, note=note)


async def change_next(ctx: Context, new_time: dict[str, Any]) -> str:
    """Move the resident's next booking to the new date/time, or say which times are free."""
    booking = await _next_booking(ctx)
    if booking is None:
        return ctx.text("elderly.no_booking")
    spec = bookings.catalog_of(ctx.svc.extras).get(booking.service)
    if spec is None or not new_time:
        return ctx.text("elderly.no_booking")
    found = await bookings.check_slot(ctx.svc, ctx.session, spec, _as_when(new_time), exclude=booking.id)
    if not found.ok or found.start is None:
        return "\n".join([ctx.text("elderly.change_refused", service=spec.name),
                          _alternatives_text(ctx, found.alternatives)])
    moved = await bookings.change_booking(ctx.svc, ctx.session, booking, found.start,
                                          f"resident:{hash_openid(ctx.openid)}")
    if not moved.ok:
        return "\n".join([ctx.text("elderly.change_refused", service=spec.name),
                          _alternatives_text(ctx, moved.alternatives)])
    return ctx.text("elderly.changed", service=spec.name, when=bookings.describe(ctx.svc, found.start))
