"""投诉/报修: what, where, what happened, photos, how urgent, a phone number — then a ticket.

Read this class as the example of a flow: every question is a Step, in the order asked; the
opening message and the resident's profile fill what they can, so "9栋1单元电梯卡住了有人出不来"
goes straight to the questions still open. Emergencies (燃气, 困人, 爆管, 火, 触电) are told what to
do right now before anything else, and skip the optional photos so the ticket is quick.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from sqlalchemy import select

from bot.flows import parsers
from bot.flows.base import IMAGES, LOCATION, Choice, Context, Flow, Step
from bot.flows.commands import normalize
from bot.flows.config import flow_config, vocabulary_choices, words
from bot.flows.engine import match_choice, summary
from bot.flows.finish import create_and_dispatch, created_reply
from bot.flows.registry import register
from bot.intents.classifier import get_classifier
from bot.intents.emergency import Emergencies, Said
from bot.limits import load_limits
from storage.models import Resident, Ticket

OTHER = str(flow_config()["complaint"]["other_category"])
CATEGORIES = vocabulary_choices("category", extra=OTHER)
URGENCY = (
    Choice("urgent", "紧急（危及人身或财产安全）", ("紧急", "很急", "急", "危险")),
    # the 24-hour class: water, power, gas, heating, a lift ([category_class] in config/limits.toml)
    Choice("utility", "较急（24小时内）", ("较急", "比较急", "水电", "停水", "停电")),
    Choice("normal", "一般", ("一般", "不急", "不紧急", "普通")),
)
# Binding the phone, answered in its own words (绑吧, 要的; 不绑, 别绑了).
BIND = (
    Choice("yes", "是", (*words("answers", "yes"), "绑", "绑吧", "绑定", "绑定吧", "帮我绑", "帮我绑定", "要", "要的", "要绑",
                         "绑上", "绑上吧", "好绑吧", "好的绑吧", "存上", "记上", "记下来", "记住",
                         "中", "中啊", "中嘞", "要得", "得嘞")),  # 中 (Henan), 要得 (Sichuan): yes
    Choice("no", "否", (*words("answers", "no"), "不绑", "不绑了", "别绑", "别绑了", "不绑定", "不用绑", "不用绑定", "先不绑",
                        "不要绑", "不存", "不用记")),
)


@lru_cache(maxsize=1)
def _emergencies() -> Emergencies:
    return Emergencies.of(flow_config()["complaint"]["emergencies"])


def _said(text: str) -> Said:
    """text as emergency words are matched: the classifier's normal form (a voice homophone fixed:
    电题里有人 is 电梯里有人), without spaces and punctuation."""
    return Said.of(get_classifier().normalize(text))


def _emergency(text: str) -> dict[str, Any] | None:
    """The first emergency of config/flows.toml a word of which text says of now (not calmed by
    its context, nor past, feared, denied or over: bot.intents.emergency)."""
    entry = _emergencies().find(_said(text), get_classifier().urgency_context())
    return dict(entry) if entry is not None else None


def _calm_context(text: str) -> bool:
    """Whether the text says what makes an emergency word no emergency (油烟, 燃气灶, 垃圾桶都爆了)."""
    return _emergencies().calmed(_said(text))


def urgent_said(slots: dict[str, Any], text: str) -> bool:
    """Whether an opening names an emergency: a word of config/flows.toml's emergencies (calmed
    where its context says otherwise), or the classifier's urgency words unless such a context
    is there (烧烤店…冒烟 is smoke from a grill, not a fire)."""
    if _emergency(text) is not None:
        return True
    return slots.get("urgency") == "urgent" and not _calm_context(text)


def hands_off(text: str) -> bool:
    """Whether the emergency text names goes to a person at once (config/flows.toml hand_off:
    快来人啊, a cry for help that says nothing else)."""
    entry = _emergency(text)
    return bool(entry and entry.get("hand_off"))


def emergency_of(text: str) -> str | None:
    """The emergency the text names (gas, electric, fire, trapped, burst, medical), if any."""
    entry = _emergency(text)
    return str(entry["advice"]) if entry else None


def derived_urgency(slots: dict[str, Any], _resident: Resident) -> str:
    """Urgency from what was said: an emergency, else the class config/limits.toml [category_class]
    gives the category (水电气暖 and 电梯: 24 hours), else normal."""
    said = " ".join(str(slots.get(k) or "") for k in ("description", "opening_text"))
    if slots.get("emergency") or emergency_of(said):
        return "urgent"
    return load_limits().category_class.get(str(slots.get("category") or ""), "normal")


def photo_helps(slots: dict[str, Any]) -> bool:
    """Whether a photo helps with the report: not one about a fee, a price or a charge (config/flows.toml
    [complaint] no_photo: 物业费凭什么涨价, 停车费乱收), where there is nothing broken or messy to show."""
    said = normalize(" ".join(str(slots.get(k) or "") for k in ("description", "opening_text")))
    return not any(w in said for w in words("complaint", "no_photo"))


def bound_phone(_slots: dict[str, Any], resident: Resident) -> str | None:
    """The phone the resident bound before, offered as the contact."""
    return resident.phone or None


def already_bound(slots: dict[str, Any], resident: Resident) -> str | None:
    """No need to offer binding when the contact is the bound phone."""
    return "bound" if resident.phone and resident.phone == slots.get("phone") else None


def _place_show(value: Any) -> str:
    return parsers.place_text(value) if isinstance(value, dict) else str(value or "")


def _photos_show(value: Any) -> str:
    return f"{len(value)}张" if isinstance(value, list) and value else "无"


@register
class Complaint(Flow):
    """投诉/报修 (complaint): a problem in the community, routed to the building's grid worker."""

    name = "complaint"
    kind = "complaint"
    intents = ("complaint",)
    related = ("mediation",)
    menu_keys = ("MENU_COMPLAINT",)
    menu_number = "1"
    edit_examples = ("改地址", "电话不对")

    category = Step("complaint.ask.category", choices=CATEGORIES, edit_words=("改类别", "类别不对", "类型不对"))
    place = Step(
        "complaint.ask.place", parse=parsers.place, accepts=LOCATION, show=_place_show,
        check=parsers.checked_place("complaint.labels.place"),
        edit_words=("改地址", "地址错了", "地址不对", "位置不对", "改位置"),
    )
    description = Step(
        "complaint.ask.description", parse=parsers.description,
        edit_words=("改描述", "描述不对", "情况不对"),
    )
    urgency = Step(
        "complaint.ask.urgency", choices=URGENCY, prefill=derived_urgency,
        edit_words=("改紧急程度", "不紧急", "紧急程度不对"),
    )
    photos = Step(
        "complaint.ask.photos", collect=True, optional=True, accepts=IMAGES, show=_photos_show,
        edit_words=("改照片", "换照片", "照片不对", "照片发错了", "重新发照片", "重新拍"),
        ask_if=lambda slots: slots.get("urgency") != "urgent" and not slots.get("emergency") and photo_helps(slots),
    )
    phone = Step(
        "complaint.ask.phone", parse=parsers.phone, prefill=bound_phone,
        edit_words=("电话不对", "电话错了", "改电话", "号码不对", "手机号不对", "改手机号"),
    )
    bind_phone = Step(
        "complaint.ask.bind_phone", choices=BIND, prefill=already_bound,
        # not in an emergency: every question more is a message more before anyone is told
        ask_if=lambda slots: slots.get("bind_phone") != "bound" and slots.get("urgency") != "urgent",
    )

    def opening(self, slots: dict[str, Any], text: str) -> dict[str, Any]:
        """Category, place, urgency, phone and what happened, from the classifier and the text."""
        kept: dict[str, Any] = {}
        category = match_choice(self.category, str(slots.get("category") or "")) if slots.get("category") else None
        category = category or (match_choice(self.category, text) if text else None)
        if category is not None and category.value != OTHER:
            kept["category"] = category.value
        place = {k: str(slots[k]) for k in ("building", "unit", "room", "landmark") if slots.get(k)}
        if place:
            kept["place"] = {**place, "text": parsers.place_text(place)}
        if slots.get("phone"):
            kept["phone"] = str(slots["phone"])
        if text and parsers.says_what(text):
            kept["description"] = parsers.unfilled(text)  # 嗯 那个 3号楼楼道的灯坏了, by voice: without 嗯 那个
            kept["opening_text"] = text.strip()
        if slots.get(LAST_PLACE) and "place" not in kept:
            kept[LAST_PLACE] = slots[LAST_PLACE]
        emergency = _emergency(text) if text else None
        if emergency or urgent_said(slots, text):
            kept["urgency"] = "urgent"
            kept["emergency"] = str(emergency["advice"]) if emergency else "generic"
            # Not "which kind of problem?" with twelve choices while someone is in danger; the
            # emergency's own category wins over a place's word (摔倒在卫生间 is no sanitation report).
            if emergency and emergency.get("category"):
                kept["category"] = str(emergency["category"])
            kept.setdefault("category", OTHER)
        return kept

    def prompt_values(self, ctx: Context, slots: dict[str, Any]) -> dict[str, str]:
        """{same_place}: offered at the place question, the last report's place (跟上次一样 …), else
        the building the resident's profile keeps (我的信息)."""
        if _place_changed(slots):
            return {"same_place": ""}
        last = slots.get(LAST_PLACE)
        if last:
            return {"same_place": ctx.text("complaint.same_place.offer", place=last["text"])}
        home = _home(ctx.profile, slots)
        return {"same_place": ctx.text("complaint.home_place.offer", place=home["text"]) if home else ""}

    async def midway(
        self, ctx: Context, slots: dict[str, Any], step: Step, text: str
    ) -> tuple[dict[str, Any], str] | None:
        """Where the place is asked with a place offered: 确认 (or 还是那里) takes the last report's,
        是 (or 就是我家楼) the building of the resident's profile."""
        if step is not self.place or slots.get("place") or _place_changed(slots):
            return None
        said = normalize(text)
        last = slots.get(LAST_PLACE)
        if last:
            if said not in words("answers", "yes") and not any(w in said for w in words("complaint", "same_as_last")):
                return None
            place = {k: v for k, v in last.items() if k != "number"}
            return {**slots, "place": place}, ctx.text("complaint.same_place.kept", place=place["text"])
        home = _home(ctx.profile, slots)
        if home is None or (said not in words("answers", "yes") and said not in words("complaint", "home_place")):
            return None
        return {**slots, "place": home}, ctx.text("complaint.home_place.kept", place=home["text"])

    def submits_at_once(self, slots: dict[str, Any]) -> bool:
        """An urgent report is submitted as soon as its place and phone are known: no summary and
        确认 while the advice says to leave the building; the reply says what was submitted."""
        return slots.get("urgency") == "urgent"

    def preface(self, ctx: Context, slots: dict[str, Any]) -> str | None:
        """What to do right now, before any question, when the opening names an emergency."""
        emergency = slots.get("emergency")
        return ctx.text(f"complaint.urgent.{emergency}") if emergency else None

    async def finish(self, ctx: Context, slots: dict[str, Any]) -> str:
        """Write the complaint ticket, bind the phone if asked, route it, and give the number."""
        place = slots.get("place") or {}
        if slots.get("bind_phone") == "yes":  # only then is the resident's row changed (an object made)
            _bind(ctx, slots, place)
        fields = {
            "category": slots.get("category"),
            "place": parsers.place_text(place),
            "building": place.get("building"), "unit": place.get("unit"), "room": place.get("room"),
            "landmark": place.get("landmark"), "location": _point(place),
            "description": slots.get("description"),
            "photos": slots.get("photos") or [],
            "urgency": slots.get("urgency"),
            "phone": slots.get("phone"),
        }
        urgent = slots.get("urgency") == "urgent"
        created = await create_and_dispatch(
            ctx, self, fields=fields,
            summary=f"{fields['category']}｜{fields['place']}｜{str(slots.get('description') or '')[:80]}",
            category=str(slots.get("category") or OTHER), urgency=str(slots.get("urgency") or "normal"),
            building=place.get("building"),
        )
        reply = created_reply(ctx, created, head="flow.created_urgent" if urgent else "flow.created")
        if urgent:  # submitted without a summary: what went, and how to add to it or correct it
            reply += "\n" + ctx.text("complaint.submitted_at_once", summary=summary(ctx, self, slots))
            reply += "\n" + ctx.text(f"complaint.urgent.{slots.get('emergency') or 'generic'}")
        return reply


LAST_PLACE = "last_place"  # slots key: the place of the resident's last report, offered (same_as_last)


async def with_last_place(ctx: Context, slots: dict[str, Any], text: str) -> dict[str, Any]:
    """The classifier's slots of an opening that says the place is last time's (跟上次一样 楼道灯又坏
    了) and names none, with the place of the resident's newest report of that kind (else of any
    kind) under LAST_PLACE, for the place question to offer; slots unchanged otherwise."""
    said = normalize(text)
    if any(slots.get(k) for k in ("building", "unit", "room", "landmark")) or not any(
            w in said for w in words("complaint", "same_as_last")):
        return slots
    found = None
    for category in ([slots["category"]] if slots.get("category") else []) + [None]:
        stmt = select(Ticket.number, Ticket.fields).where(
            Ticket.resident == ctx.openid, Ticket.kind == "complaint").order_by(Ticket.id.desc()).limit(1)
        if category is not None:
            stmt = stmt.where(Ticket.category == category)
        found = (await ctx.session.execute(stmt)).first()
        if found is not None and (found.fields or {}).get("place"):
            break
        found = None
    if found is None:
        return slots
    fields = found.fields
    place: dict[str, Any] = {k: str(fields[k]) for k in ("building", "unit", "room", "landmark") if fields.get(k)}
    location = fields.get("location")
    if isinstance(location, dict) and "latitude" in location:
        place.update(latitude=location["latitude"], longitude=location["longitude"])
    place["text"] = str(fields["place"])
    return {**slots, LAST_PLACE: place}


def _place_changed(slots: dict[str, Any]) -> bool:
    """Whether the place question is asked to change the place (改地址 at the summary): every
    later answer is in, the binding of the phone last of them. The place it changes away from (the
    building offered, or the last report's, taken with 是) is not offered again, nor taken by 是."""
    return "bind_phone" in slots


def _bind(ctx: Context, slots: dict[str, Any], place: dict[str, Any]) -> None:
    """The phone bound to the resident, and the report's building kept as theirs if they had none
    and the report is not another household's (a booking's home and a mediation's grid come from it)."""
    if slots.get("phone"):
        ctx.resident.phone = str(slots["phone"])
        ctx.resident.updated_at = ctx.now
    if place.get("building") and not ctx.resident.building and not _someone_elses(slots):
        ctx.resident.building = str(place["building"])


def _home(resident: Resident, slots: dict[str, Any]) -> dict[str, Any] | None:
    """The building (and unit) the resident's profile keeps, as a report's place: offered where a
    report names no place, unless the report is another household's (帮我妈报修 她家…)."""
    if not resident.building or _someone_elses(slots):
        return None
    home = {k: str(v) for k, v in (("building", resident.building), ("unit", resident.unit)) if v}
    return {**home, "text": parsers.place_text(home)}


def _someone_elses(slots: dict[str, Any]) -> bool:
    """Whether the report says it is for another household or about one (帮邻居报修 他家…,
    帮我妈报修 她家5号楼…, 楼上漏水): the classifier's party or a for_whom other than 本人."""
    said = " ".join(str(slots.get(k) or "") for k in ("description", "opening_text"))
    found = get_classifier().extract_slots(said)
    return bool(found.get("party")) or found.get("for_whom") not in (None, "本人")


def _point(place: dict[str, Any]) -> dict[str, Any] | None:
    if "latitude" in place:
        return {"latitude": place["latitude"], "longitude": place["longitude"]}
    return None
