"""志愿者报名 / 党员报到: name, phone, skills, availability, areas, party member, consent to keep the
data — then a pending volunteer record and a ticket for the coordinator to approve. Without
consent nothing is kept and the resident is thanked.

A resident already registered (pending or approved) is not signed up twice: registered_reply()
tells them their record and how to change it, change_areas() changes the areas (改方向 … replaces
them, 加方向 … adds) and tells the coordinator once, on the signup's own ticket. The name given
is kept as the resident's name, so 党员报到 later does not ask it again."""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from bot import dispatch, outbox
from bot import tickets as ticket_log
from bot.clock import local
from bot.flows import parsers
from bot.flows.base import Answer, Choice, Context, Flow, Invalid, Step
from bot.flows.commands import is_word, normalize
from bot.flows.config import flow_config, vocabulary_choices, words
from bot.flows.engine import match_choice
from bot.flows.finish import create_and_dispatch, created_reply
from bot.flows.mediation import own_phone
from bot.flows.registry import register
from bot.privacy import hash_openid
from bot.volunteers import REGISTERED, VolunteerForm, save_volunteer, volunteer_of, volunteer_row
from bot.when import parse_when
from storage import fastsql
from storage.models import Resident, Ticket, Volunteer

AREAS = vocabulary_choices("areas")
# 您是党员吗: a fact, so only words that state it (确认 or 好的 there is no 是).
PARTY = (Choice("yes", "是", words("volunteer", "party_yes")),
         Choice("no", "否", (*words("answers", "no"), *words("volunteer", "party_no"))))
CONSENT = (
    Choice("yes", "同意", ("同意", "可以", "愿意", "好", "好的", "是", "行", "确认", "确定")),
    Choice("no", "不同意", ("不同意", "不愿意", "不行", "不可以", "否", "不", "不确认", "不确定")),
)
_SPLIT = re.compile(r"[\s,，、;；和及跟与/]+")
# 改方向 助老 文化 replaces the areas; 加方向 文化 / 再加上文化 adds to them.
_CHANGE = re.compile(
    r"^(?:我想|我要)?把?(?:(?:志愿)?(?:服务)?方向(?:改成|改为|换成)|改(?:志愿)?(?:服务)?方向(?:为|成)?)[:：]?(?P<areas>.+)$"
)
_ADD = re.compile(r"^(?:我想|我要|我还想)?(?:再|也|还)?(?:加|加上|增加|添加)(?:志愿)?(?:服务)?方向?[:：]?(?P<areas>.+)$")


_AREA_FILLER = re.compile(r"^(?:那就|我|那|就|嗯|呃|其实)+|(?:吧|啊|呀|的|哈|了|呢|嘛|哦)+$")


def _every_area(text: str) -> bool:
    """Whether text says any area will do: only `[answers] any` and `[volunteer] any_area` words
    (都行, 我都可以啊, 都行 看你们安排, 哪个都可以), fillers aside."""
    said = _AREA_FILLER.sub("", normalize(text))
    if not said:
        return False
    for word in sorted({normalize(w) for w in (*words("answers", "any"), *words("volunteer", "any_area"))},
                       key=len, reverse=True):
        said = said.replace(word, "")
    return not _AREA_FILLER.sub("", said)


_ALL_BUT = re.compile(r"^除了?(?P<not>.+?)(?:以外|之外)?(?:其他的?|其余的?|别的)?(?P<any>都.*)$")


def _mentioned(text: str) -> list[str]:
    """The areas whose name or a word for it text holds."""
    said = normalize(text)
    return [c.value for c in AREAS if any(w and w in said for w in (c.label, *c.synonyms))]


def areas(answer: Answer) -> list[str]:
    """Several areas at once: '1 3', '1、3', '助老和巡逻'; '都可以' (都行吧, 我都可以啊) is every one."""
    picked: list[str] = []
    text = answer.text.strip()
    if is_word(text, "any") or _every_area(text):
        return [c.value for c in AREAS]
    but = _ALL_BUT.match(normalize(text))
    if but is not None and _every_area(but.group("any")):  # 除了法律都行: every area but 法律
        left_out = _mentioned(but.group("not"))
        if left_out and len(left_out) < len(AREAS):
            return [c.value for c in AREAS if c.value not in left_out]
    parts = [p for p in _SPLIT.split(text) if p]
    if len(parts) == 1 and parts[0].isdigit() and len(parts[0]) > 1:
        parts = list(parts[0])  # "13" typed without a space
    for part in parts:
        step = Step("volunteer.ask.areas", choices=AREAS)
        choice = match_choice(step, part)
        if choice is not None and choice.value not in picked:
            picked.append(choice.value)
    if not picked:
        picked = _mentioned(text)
    if not picked:
        raise Invalid("volunteer.hint.areas")
    return [c.value for c in AREAS if c.value in picked]


def skills(answer: Answer) -> str:
    """What the volunteer can do, in their words; a confirmation or yes (确认, 好的, 可以) is none:
    it was kept as the skills. 没有 skips (the step is optional)."""
    if is_word(answer.text, "yes"):
        raise Invalid("volunteer.hint.skills")
    return parsers.short_text(answer)


_CLAUSE = re.compile(r"[\s,，。.;；!！、]+")


def _told_ahead(text: str, today: date) -> dict[str, str] | None:
    """Skills and free time said in one message, clause by clause (会修电器 也能陪老人聊天 / 周末都
    有空): {"skills": …, "availability": …} as said; None when any clause is neither, or none is
    either (then it is read as the question in hand reads it)."""
    conf = flow_config()["volunteer"]
    found: dict[str, list[str]] = {"skills": [], "availability": []}
    for clause in (c for c in _CLAUSE.split(text.strip()) if c):
        if any(w in clause for w in conf["not_words"]) or parsers.is_question(clause):
            return None
        if not parse_when(clause, today).empty or any(w in clause for w in conf["free_words"]):
            found["availability"].append(clause)
        elif any(w in clause for w in conf["skill_words"]):
            found["skills"].append(clause)
        else:
            return None
    return {slot: "，".join(said) for slot, said in found.items() if said} or None


def person_name(answer: Answer) -> str:
    """The volunteer's name: 1–20 characters, no digits (bot.flows.parsers.person_name)."""
    return parsers.person_name(answer, "volunteer.hint.name")


def _areas_show(value: Any) -> str:
    return "、".join(value) if isinstance(value, list) else str(value or "")


def _bound_phone(_slots: dict[str, Any], resident: Resident) -> str | None:
    return resident.phone or None


def _own_name(_slots: dict[str, Any], resident: Resident) -> str | None:
    return resident.name or None


def _status(ctx: Context, status: str) -> str:
    return ctx.text(f"profile.volunteer_status.{status}")


async def registered_reply(ctx: Context) -> str | None:
    """For a resident already registered (pending or approved): their record and how to change
    it, instead of the questionnaire again; None when they are not registered."""
    record = await volunteer_row(ctx.tx, ctx.openid)  # on the driver: no session made for it
    if record is None or record["status"] not in REGISTERED:
        return None
    return ctx.text("volunteer.registered", name=record["name"] or "", status=_status(ctx, record["status"]),
                    areas=_areas_show(record["areas"]) or "-")


async def _tell_coordinator(ctx: Context, record: Volunteer, note: str) -> None:
    """The change noted on the signup's ticket and told to whoever has it (after the quiet hours
    now falls in), else the staff group."""
    ticket = await fastsql.get(ctx.session, Ticket, record.ticket_id) if record.ticket_id else None
    if ticket is not None:
        await ticket_log.add_event(ctx.session, ticket, "resident_wrote", f"resident:{hash_openid(ctx.openid)}",
                                   ctx.now, note=note)
    number = ticket.number if ticket is not None else "-"
    text = ctx.text("volunteer.changed_coordinator", number=number, name=record.name or "", note=note)
    if ticket is not None and ticket.assignee:
        await outbox.push_worker(ctx.session, ticket.assignee, text, now=ctx.now, ticket_id=ticket.id,
                                 not_before=dispatch.held_until(ctx.svc, ticket))
    else:
        await outbox.push_group(ctx.session, text, now=ctx.now)


async def change_areas(ctx: Context, text: str) -> str | None:
    """改方向 助老 文化 (replace) or 加方向 文化 (add) from a registered volunteer: the record
    changed and the coordinator told once. None when text is no such change or the resident is
    not registered (then it is no volunteer matter)."""
    said = normalize(text)
    replacing, adding = _CHANGE.match(said), _ADD.match(said)
    found = replacing or adding
    if found is None:
        return None
    record = await volunteer_of(ctx.session, ctx.openid)
    if record is None or record.status not in REGISTERED:
        return None
    try:
        picked = areas(Answer(text=found.group("areas"), inbound=ctx.inbound, now=ctx.now))
    except Invalid:
        return None  # 改成后天, 加一个电话: not the areas
    before = list(record.areas or [])
    after = picked if replacing else [c.value for c in AREAS if c.value in before or c.value in picked]
    if after == before:
        return ctx.text("volunteer.unchanged", areas=_areas_show(after))
    record.areas = after
    await ctx.session.flush()
    await _tell_coordinator(ctx, record, ctx.text("volunteer.changed_note", before=_areas_show(before) or "-",
                                                   after=_areas_show(after)))
    return ctx.text("volunteer.changed", areas=_areas_show(after), status=_status(ctx, record.status))


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
    skills = Step("volunteer.ask.skills", parse=skills, optional=True,
                  label="volunteer.labels.skills", edit_words=("改特长",))
    availability = Step("volunteer.ask.availability", parse=parsers.short_text, hint="volunteer.hint.availability",
                        label="volunteer.labels.availability", edit_words=("改时间", "时间不对"))
    areas = Step("volunteer.ask.areas", parse=areas, show=_areas_show,
                 label="volunteer.labels.areas", edit_words=("改方向", "改服务方向"))
    party_member = Step("volunteer.ask.party_member", choices=PARTY, hint="volunteer.hint.party_member",
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
        kept.update(own_phone(slots, text))  # not 她手机… (another volunteer's, a family member's)
        named = parsers.name_said(text) if "我叫" in text or "我的名字" in text or "本人" in text else None
        if named:  # 我叫张国强: not asked again
            kept["full_name"] = named
        return kept

    async def midway(
        self, ctx: Context, slots: dict[str, Any], step: Step, text: str
    ) -> tuple[dict[str, Any], str] | None:
        """Skills or free time said at the name or phone question (会修电器 也能陪老人聊天, 周末都
        有空), or free time at the skills question, alone or with skills (会修电器 周末有空): kept for
        their questions, which are then not asked (先记下了), and the question in hand asked again
        unless answered too — they were refused with the phone's hint and lost, 周末都有空 was kept
        as the skills, and 会修电器 周末有空 was all skills, the free time asked as if not said."""
        if step not in (self.full_name, self.phone, self.skills):
            return None
        told = _told_ahead(text, local(ctx.now, ctx.svc.tz).date())
        if told is None or (step is self.skills and "availability" not in told):  # a skill there is its answer
            return None  # (会修电器 周末有空 there is both: the free time was asked next as if not said)
        kept = dict(slots)
        said = []
        for slot, value in told.items():
            before = str(kept.get(slot) or "")
            kept[slot] = f"{before}，{value}"[:200] if before else value
            said.append(ctx.text("flow.noted", field=ctx.text(self.step(slot).label), value=value))
        return kept, "\n".join(said)

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
        if not ctx.resident.name:
            ctx.resident.name = form.name  # 党员报到 later: not asked again
        record = await volunteer_of(ctx.session, ctx.openid)
        if record is not None and record.status in REGISTERED:
            return await self._update(ctx, record, form)
        head = "党员报到" if form.party_member else "志愿者报名"
        created = await create_and_dispatch(
            ctx, self, fields=fields, summary=f"{head}｜{form.name}｜{'、'.join(form.areas)}",
            category=head,
        )
        await save_volunteer(ctx.session, openid=ctx.openid, form=form, ticket_id=created.ticket.id, now=ctx.now)
        return "\n".join([ctx.text("volunteer.thanks", name=form.name), created_reply(ctx, created)])

    async def _update(self, ctx: Context, record: Volunteer, form: VolunteerForm) -> str:
        """A registered volunteer who went through the questions again (the dialog asks them
        first): the record updated, the areas said added to those kept, the coordinator told on
        the signup's own ticket, and no second signup."""
        before = list(record.areas or [])
        merged = [c.value for c in AREAS if c.value in before or c.value in form.areas]
        merged_form = VolunteerForm(
            name=form.name, phone=form.phone, skills=form.skills or record.skills,
            availability=form.availability or record.availability, areas=tuple(merged),
            party_member=form.party_member or record.party_member, consent=True,
        )
        await save_volunteer(ctx.session, openid=ctx.openid, form=merged_form, ticket_id=record.ticket_id, now=ctx.now)
        note = ctx.text("volunteer.changed_note", before=_areas_show(before) or "-", after=_areas_show(merged))
        await _tell_coordinator(ctx, record, note)
        return ctx.text("volunteer.changed", areas=_areas_show(merged), status=_status(ctx, record.status))
