"""撤销工单: a resident withdraws their own report before it is done (撤销工单 0001, 不用修了).

Which ticket: the number the message names (in full, or its last digits), else the resident's only
open report or mediation. With several and no number, they are listed and the number asked for
(nothing is kept: 撤销 + the number starts again). The confirmation names the ticket; 确认 / 1
cancels it through bot.dispatch.apply_action (the assignee is told, its reminders dropped, the
event recorded with the resident as actor); 否 / 不撤销 keeps it.

A report other residents' reports were linked to (同一问题多人反映) is not cancelled, since they
still wait for it: the resident's word is added to it for the worker, and the resident told so.
Bookings (取消预约) and activity signups (取消报名) have their own words, served before this.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select

from bot import dispatch, outbox, tickets
from bot.flows import parsers
from bot.flows.base import Context, Flow, Step
from bot.flows.commands import normalize
from bot.flows.config import words
from bot.flows.engine import Outcome, start
from bot.flows.registry import register
from bot.notices import safe_text
from bot.privacy import hash_openid
from storage.models import Ticket

KINDS = ("complaint", "mediation")
WITHDRAWABLE = tickets.TRANSITIONS["cancel"].sources
LIST_LIMIT = 5
_REQUEST = re.compile(
    r"^(?:我要|我想|我|麻烦|请|帮我|能不能|可以)*(?:撤销|撤回|撤掉|作废|取消)(?:一下|掉)?"
    r"(?:我的|我|刚才|刚刚|之前|上次|这个|那个)*(?:的|报的|提交的|反映的|申请的)?"
    r"(?:工单|报修|投诉|单子|调解|这个单|那个单)?(?:号|单号)?"
    r"(?P<ref>\d{8}-\d{1,4}|\d{1,4})?(?:吧|了|吗)?$"
)


def request_of(text: str) -> tuple[bool, str | None] | None:
    """(explicit, ticket ref) when the message asks to withdraw a report, else None. Explicit:
    撤销/取消 said (答 "nothing to withdraw" when there is none); else a 不用修了 said of one."""
    norm = normalize(text)
    found = _REQUEST.match(norm)
    if found is not None and norm not in ("取消", "撤销一下"):
        return True, found.group("ref")
    if not parsers.is_question(text) and any(normalize(w) in norm for w in words("withdraw", "no_longer_needed")):
        return False, None
    return None


async def open_reports(ctx: Context) -> list[Ticket]:
    """The resident's own reports and mediations that can still be withdrawn, newest first."""
    rows = await ctx.session.execute(
        select(Ticket).where(Ticket.resident == ctx.openid, Ticket.kind.in_(KINDS), Ticket.status.in_(WITHDRAWABLE))
        .order_by(Ticket.id.desc())
    )
    return list(rows.scalars())


def _line(ticket: Ticket) -> str:
    return f"【{ticket.number}】{(ticket.summary or '')[:40]}"


def _pick(reports: list[Ticket], ref: str) -> Ticket | None:
    """The one open report ref names (by number or its last digits); None when none or several."""
    matching = [t for t in reports if tickets.number_matches(t.number, ref)]
    return matching[0] if len(matching) == 1 else None


async def begin(ctx: Context, text: str) -> Outcome | None:
    """The answer to a withdrawal request outside any flow; None when the message is not one (or
    only says 不用修了 with nothing open, which is then read as anything else)."""
    asked = request_of(text)
    if asked is None:
        return None
    explicit, ref = asked
    reports = await open_reports(ctx)
    if not reports:
        return Outcome(ctx.text("withdraw.none"), None) if explicit else None
    listed = "\n".join(_line(t) for t in reports[:LIST_LIMIT])
    if ref:
        target = _pick(reports, ref)
        if target is None:
            return Outcome(ctx.text("withdraw.not_found", ref=ref, tickets=listed), None)
    elif len(reports) == 1:
        target = reports[0]
    else:
        return Outcome(ctx.text("withdraw.which", count=len(reports), tickets=listed), None)
    flow = Withdraw()
    slots = {"ticket": {"number": target.number, "text": _line(target)}, "reason": text.strip()[:200]}
    return start(ctx, flow, slots)


@register
class Withdraw(Flow):
    """撤销工单: one confirmation, then the resident's own report cancelled."""

    name = "withdraw"
    title = "withdraw.title"
    confirm_prompt = "withdraw.confirm"
    declined = "withdraw.kept"

    # Nothing to ask: begin() names the ticket, and the flow goes straight to its confirmation.
    ticket = Step("withdraw.confirm", ask_if=lambda slots: False, label="withdraw.title")

    def opening(self, slots: dict[str, Any], text: str) -> dict[str, Any]:
        """The ticket and the resident's words, as begin() found them."""
        return {k: slots[k] for k in ("ticket", "reason") if slots.get(k)}

    def prompt_values(self, ctx: Context, slots: dict[str, Any]) -> dict[str, str]:
        """{ticket}: the ticket as the confirmation names it."""
        return {"ticket": str((slots.get("ticket") or {}).get("text") or "")}

    async def finish(self, ctx: Context, slots: dict[str, Any]) -> str:
        """Cancel the ticket in this message's transaction (or note the wish on a shared one)."""
        number = str((slots.get("ticket") or {}).get("number") or "")
        ticket = await tickets.get_by_number(ctx.session, number)
        if ticket is None or ticket.resident != ctx.openid:
            return ctx.text("withdraw.none")
        if ticket.status not in WITHDRAWABLE:
            return ctx.text("withdraw.too_late", number=number, status=ctx.text(f"status.labels.{ticket.status}"))
        actor = f"resident:{hash_openid(ctx.openid)}"
        reason = safe_text(str(slots.get("reason") or ""))
        note = ctx.text("withdraw.note", reason=reason)
        others = [k for k in await dispatch.children_of(ctx.session, ticket) if k.status in WITHDRAWABLE]
        if others:
            await tickets.add_event(ctx.session, ticket, "resident_wrote", actor, ctx.now, note=note)
            if ticket.assignee:
                await outbox.push_worker(
                    ctx.session, ticket.assignee,
                    ctx.text("withdraw.shared_worker", number=number, reason=reason, count=len(others)),
                    now=ctx.now, ticket_id=ticket.id, not_before=dispatch.held_until(ctx.svc, ticket),
                )
            return ctx.text("withdraw.shared", number=number, count=len(others))
        await dispatch.apply_action(ctx.svc, ctx.session, ticket, "cancel", actor, note=note, data={"by": "resident"})
        return ctx.text("withdraw.done", number=number)
