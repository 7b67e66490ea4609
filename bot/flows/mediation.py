"""矛盾调解: who the other party is, what it is about, whether they talked, when to meet, a phone.

A preferred session time gets the resident a reminder the day before (a durable reminder caused
by the ticket, dropped when the ticket closes).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from bot import reminders
from bot.flows import parsers
from bot.flows.base import Choice, Context, Flow, Step
from bot.flows.complaint import bound_phone
from bot.flows.commands import normalize
from bot.flows.config import choices, flow_config, words
from bot.flows.engine import match_choice
from bot.flows.finish import create_and_dispatch, created_reply
from bot.flows.registry import register

PARTIES = choices("mediation", "parties")
TALKED = (
    Choice("yes", "已经沟通过，没谈拢", ("沟通过", "谈过", "说过", "找过", *words("answers", "yes"))),
    Choice("no", "还没有沟通过", ("没沟通", "没谈过", "没说过", "还没", *words("answers", "no"))),
)


def _talked(text: str) -> str | None:
    """Whether the opening says the two sides talked already ('yes', 'no'), or None."""
    norm = normalize(text)
    conf = flow_config()["mediation"]
    if any(w in norm for w in conf["not_talked_words"]):
        return "no"
    if any(w in norm for w in conf["talked_words"]):
        return "yes"
    return None


def _when_show(value: Any) -> str:
    return str(value.get("text", "")) if isinstance(value, dict) else str(value or "")


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
    talked = Step("mediation.ask.talked", choices=TALKED, prefill=lambda slots, _resident: _talked(str(slots.get("issue") or "")))
    session_time = Step(
        "mediation.ask.session_time", parse=parsers.future_time, show=_when_show,
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
            talked = _talked(text)
            if talked is not None:
                kept["talked"] = talked
        if slots.get("phone"):
            kept["phone"] = str(slots["phone"])
        return kept

    async def finish(self, ctx: Context, slots: dict[str, Any]) -> str:
        """Write the mediation ticket, route it to a mediator, remind the day before the session."""
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
            summary=f"与{fields['party']}：{str(slots.get('issue') or '')[:80]}",
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
                reply += "\n" + ctx.text("mediation.reminder_set", when=when.get("text", ""))
        return reply
