"""志愿者报名 / 党员报到: name, phone, skills, availability, areas, party member, consent to keep the
data — then a pending volunteer record and a ticket for the coordinator to approve. Without
consent nothing is kept and the resident is thanked."""

from __future__ import annotations

import re
from typing import Any

from bot.flows import parsers
from bot.flows.base import Answer, Choice, Context, Flow, Invalid, Step
from bot.flows.commands import is_word, normalize
from bot.flows.config import vocabulary_choices, words
from bot.flows.engine import match_choice
from bot.flows.finish import create_and_dispatch, created_reply
from bot.flows.registry import register
from bot.volunteers import VolunteerForm, save_volunteer
from storage.models import Resident

AREAS = vocabulary_choices("areas")
YES_NO = (Choice("yes", "是", words("answers", "yes")), Choice("no", "否", words("answers", "no")))
CONSENT = (
    Choice("yes", "同意", ("同意", "可以", "愿意", "好", "好的", "是", "行")),
    Choice("no", "不同意", ("不同意", "不愿意", "不行", "不可以", "否", "不")),
)
_SPLIT = re.compile(r"[\s,，、;；和及跟与/]+")


def areas(answer: Answer) -> list[str]:
    """Several areas at once: '1 3', '1、3', '助老和巡逻'; '都可以' is every one."""
    picked: list[str] = []
    text = answer.text.strip()
    if is_word(text, "any"):
        return [c.value for c in AREAS]
    parts = [p for p in _SPLIT.split(text) if p]
    if len(parts) == 1 and parts[0].isdigit() and len(parts[0]) > 1:
        parts = list(parts[0])  # "13" typed without a space
    for part in parts:
        step = Step("volunteer.ask.areas", choices=AREAS)
        choice = match_choice(step, part)
        if choice is not None and choice.value not in picked:
            picked.append(choice.value)
    if not picked:
        mentioned = [c.value for c in AREAS if any(w and w in normalize(text) for w in (c.label, *c.synonyms))]
        picked = mentioned
    if not picked:
        raise Invalid("volunteer.hint.areas")
    return [c.value for c in AREAS if c.value in picked]


def person_name(answer: Answer) -> str:
    """The volunteer's name: 1–20 characters, no digits (bot.flows.parsers.person_name)."""
    return parsers.person_name(answer, "volunteer.hint.name")


def _areas_show(value: Any) -> str:
    return "、".join(value) if isinstance(value, list) else str(value or "")


def _bound_phone(_slots: dict[str, Any], resident: Resident) -> str | None:
    return resident.phone or None


def _own_name(_slots: dict[str, Any], resident: Resident) -> str | None:
    return resident.name or None


@register
class VolunteerSignup(Flow):
    """志愿者报名 (volunteer_signup): a pending record and a ticket for the volunteer coordinator."""

    name = "volunteer_signup"
    kind = "volunteer_signup"
    intents = ("volunteer_signup",)
    menu_keys = ("MENU_VOLUNTEER",)
    menu_number = "4"
    edit_examples = ("改时间", "电话不对")

    full_name = Step("volunteer.ask.full_name", parse=person_name, prefill=_own_name,
                     check=parsers.not_a_time("volunteer.labels.full_name"),
                     label="volunteer.labels.full_name", edit_words=("改姓名", "名字错了"))
    phone = Step("volunteer.ask.phone", parse=parsers.phone, prefill=_bound_phone,
                 label="volunteer.labels.phone", edit_words=("电话不对", "改电话", "手机号不对"))
    skills = Step("volunteer.ask.skills", parse=parsers.short_text, optional=True,
                  label="volunteer.labels.skills", edit_words=("改特长",))
    availability = Step("volunteer.ask.availability", parse=parsers.short_text,
                        label="volunteer.labels.availability", edit_words=("改时间", "时间不对"))
    areas = Step("volunteer.ask.areas", parse=areas, show=_areas_show,
                 label="volunteer.labels.areas", edit_words=("改方向", "改服务方向"))
    party_member = Step("volunteer.ask.party_member", choices=YES_NO,
                        label="volunteer.labels.party_member")
    consent = Step("volunteer.ask.consent", choices=CONSENT, label="volunteer.labels.consent")

    def opening(self, slots: dict[str, Any], text: str) -> dict[str, Any]:
        """Areas, party membership and phone from the opening message."""
        kept: dict[str, Any] = {}
        found = [c.value for c in AREAS if c.value in (slots.get("areas") or [])]
        if found:
            kept["areas"] = found
        if slots.get("party_member") is True:
            kept["party_member"] = "yes"
        if slots.get("phone"):
            kept["phone"] = str(slots["phone"])
        named = parsers.name_said(text) if "我叫" in text or "我的名字" in text or "本人" in text else None
        if named:  # 我叫张国强: not asked again
            kept["full_name"] = named
        return kept

    async def finish(self, ctx: Context, slots: dict[str, Any]) -> str:
        """With consent: the pending record and the coordinator's ticket; without: nothing kept."""
        if slots.get("consent") != "yes":
            return ctx.text("volunteer.no_consent")
        form = VolunteerForm(
            name=str(slots["full_name"]), phone=str(slots["phone"]), skills=slots.get("skills"),
            availability=slots.get("availability"), areas=tuple(slots.get("areas") or ()),
            party_member=slots.get("party_member") == "yes", consent=True,
        )
        fields = {
            "name": form.name, "phone": form.phone, "skills": form.skills, "availability": form.availability,
            "areas": list(form.areas), "party_member": form.party_member, "consent": True,
        }
        head = "党员报到" if form.party_member else "志愿者报名"
        created = await create_and_dispatch(
            ctx, self, fields=fields, summary=f"{head}｜{form.name}｜{'、'.join(form.areas)}",
            category=head,
        )
        await save_volunteer(ctx.session, openid=ctx.openid, form=form, ticket_id=created.ticket.id, now=ctx.now)
        return "\n".join([ctx.text("volunteer.thanks", name=form.name), created_reply(ctx, created)])
