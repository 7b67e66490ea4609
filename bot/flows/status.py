"""查询进度: the resident's open tickets (status, who has them, by when), or one by its number."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam, case, literal, select
from sqlalchemy.orm import aliased

from bot import dispatch, notices, outbox
from bot.flows.base import Context
from bot.flows.commands import normalize, without_asking
from bot.flows.config import words
from bot.flows.finish import format_due
from bot.flows.parsers import is_question
from bot.intents.classifier import get_classifier
from bot.intents.slots import ticket_digits
from bot.privacy import hash_openid
from bot.texts import Texts
from bot.tickets import ACTIVE, add_event
from storage import fastsql
from storage.fastsql import Prepared
from storage.models import Person, Ticket, TicketEvent

NUMBER = re.compile(r"(?<!\d)(\d{8}-\d{4})(?!\d)")
LIST_LIMIT = 5
ENDED_LIMIT = 3  # tickets ended lately listed when none is open
ENDED_SHOWN = timedelta(days=7)  # how lately
URGE_EVERY = timedelta(hours=12)  # a resident's 催一下 reaches the owner at most this often per ticket
_URGE_WORDS = ("催", "快点", "快一点", "抓紧")
_NOBODY_CAME = ("没人来", "还没来", "没来人", "没人管", "没动静")
BOOKED_KINDS = ("elderly_service",)  # the booked time is in the summary: no "done by" date beside it


def digits_asked(text: str) -> str | None:
    """The last digits of a ticket a message asks about and nothing else ('0001' for 0001怎么样了)."""
    named = ticket_digits(normalize(text))
    if named is None:
        return None
    seq, rest = named
    if rest and not get_classifier().terms(rest) & {"@progress", "@status_question"}:
        return None
    return seq


async def short_reply(ctx: Context, text: str) -> str | None:
    """The status of the resident's own ticket the message names by its last digits (the newest,
    when several days' numbers end alike); None when the message is not such a question."""
    seq = digits_asked(text)
    if seq is None:
        return None
    number = await ctx.session.scalar(
        select(Ticket.number).where(Ticket.resident == ctx.openid, Ticket.number.like(f"%-{seq}"))
        .order_by(Ticket.id.desc()).limit(1)
    )
    if number is None:  # the job a report of theirs was linked to (与工单 … 合并处理)
        job = aliased(Ticket)
        number = await ctx.session.scalar(
            select(job.number).join(Ticket, Ticket.parent_id == job.id)
            .where(Ticket.resident == ctx.openid, job.number.like(f"%-{seq}"))
            .order_by(job.id.desc()).limit(1)
        )
    if number is None:
        return "\n".join([ctx.text("status.not_found_digits", digits=seq), await status_reply(ctx, None)])
    return await status_reply(ctx, number)


def number_in(text: str) -> str | None:
    """A ticket number written in text (20261123-0007), if any."""
    m = NUMBER.search(text.replace("－", "-").replace("—", "-"))
    return m.group(1) if m else None


async def _owner(ctx: Context, ticket: Ticket) -> Person | None:
    """Who has the ticket in hand now: its assignee while still in the roster (None when no one
    has it, or they left: the ticket is then the service centre's)."""
    if not ticket.assignee:
        return None
    person = await ctx.session.get(Person, ticket.assignee)
    return person if person is not None and person.active else None


_P = Person.__table__
# The name of who has a ticket in hand, while still in the roster: for every status line, on the
# driver (storage.fastsql; ~0.02 ms, not ~0.19 through the ORM).
_OWNER_NAME = Prepared(select(_P.c.name).where(_P.c.id == bindparam("id"), _P.c.active.is_(True)))


async def _owner_name(ctx: Context, ticket: Ticket | _Listed) -> str | None:
    """The name of who has the ticket in hand now (as _owner: None when no one has it, or they left)."""
    if not ticket.assignee:
        return None
    found = await fastsql.read(ctx.tx, _OWNER_NAME, {"id": ticket.assignee})
    return str(found[0]["name"]) if found else None


@dataclass(frozen=True)
class _Listed:
    """A resident's ticket as a status answer reads it (on the driver, not as an ORM object): what
    its status line shows, and whose it is."""

    id: int
    resident: str | None
    number: str
    kind: str
    status: str
    summary: str | None
    parent_id: int | None
    assignee: str | None
    due_at: datetime | None


_T = Ticket.__table__
_SHOWN_COLUMNS = (_T.c.id, _T.c.resident, _T.c.number, _T.c.kind, _T.c.status, _T.c.summary, _T.c.parent_id, _T.c.assignee, _T.c.due_at)
# The resident's open tickets, newest first, one more than are listed (to say there are more).
_OPEN_OF = Prepared(
    select(*_SHOWN_COLUMNS).where(_T.c.resident == bindparam("resident"),
                                  _T.c.status.in_([literal(s) for s in ACTIVE]))
    .order_by(_T.c.id.desc()).limit(LIST_LIMIT + 1)
)
# One ticket by its number, and a resident's own report linked to it (the newest).
_BY_NUMBER = Prepared(select(*_SHOWN_COLUMNS).where(_T.c.number == bindparam("number")))
_OWN_UNDER = Prepared(
    select(*_SHOWN_COLUMNS).where(_T.c.parent_id == bindparam("job"), _T.c.resident == bindparam("resident"))
    .order_by(_T.c.id.desc()).limit(1)
)
# The resident's tickets ended lately (办结 or 关闭), newest first: 我的路灯修好了吗 asked after the
# 已办结 push is answered with it, not 您目前没有正在办理的工单.
_E = TicketEvent.__table__
_ENDED_NOTE = (
    select(_E.c.note).where(_E.c.ticket_id == _T.c.id, _E.c.action.in_([literal("resolve"), literal("close")]))
    # the owner's 办结 note before a 关闭's (a survey's close notes 回访：满意)
    .order_by(case((_E.c.action == literal("resolve"), 0), else_=1), _E.c.id.desc())
    .limit(1).scalar_subquery().label("ended_note")
)
_ENDED_OF = Prepared(
    select(*_SHOWN_COLUMNS, _ENDED_NOTE).where(
        _T.c.resident == bindparam("resident"), _T.c.status.in_([literal("resolved"), literal("closed")]),
        _T.c.updated_at >= bindparam("since"))
    .order_by(_T.c.updated_at.desc(), _T.c.id.desc()).limit(ENDED_LIMIT)
)
# The number of the job a report was linked to, for its line (与工单 … 合并处理).
_NUMBER_OF = Prepared(select(_T.c.number).where(_T.c.id == bindparam("id")))


SUMMARY_SHOWN = 40  # characters of a ticket's summary in a status line


def shown_summary(summary: str, limit: int = SUMMARY_SHOWN) -> str:
    """A ticket's summary (its parts joined by ｜: 助浴｜11月24日（周二）09:00｜张桂兰（85岁）｜备注：…) cut
    to limit characters for a status line: the parts that fit whole, then as much of the next as
    still says something — at least 6 characters of it past a label such as 备注：, else none (a cut
    left 备注：｜ dangling) — and an ellipsis where something was cut."""
    if len(summary) <= limit:
        return summary
    shown: list[str] = []
    room = limit - 1  # the ellipsis
    for part in summary.split("｜"):
        room -= 1 if shown else 0  # its ｜
        if len(part) <= room:
            shown.append(part)
            room -= len(part)
            continue
        label, colon, _ = part.partition("：")
        if room - (len(label) + len(colon) if colon else 0) >= 6:
            shown.append(part[:room])
        break
    return "｜".join(shown) + "…" if shown else summary[: limit - 1] + "…"


def handoff_words(texts: Texts, summary: str) -> str:
    """What the resident said a hand-off is about, read back from its summary, which is written
    for staff (bot.flows.handoff: 居民要求人工服务｜居民说：楼上漏水 / 3号楼｜未办结的工单：…, or an
    emergency's 【紧急】急病、摔伤：我家老人摔倒了起不来, less a 人工 said with them): the words quoted
    ("" when it quotes none)."""
    urgent_head = texts.get("handoff.urgent_summary", category="\0", said="").split("\0")[0]
    if urgent_head and summary.startswith(urgent_head):  # not the 人工 said with it (人工 我家水管爆了)
        return without_asking(summary.partition("：")[2])
    label = texts.get("handoff.summary_said", said="")
    for part in summary.split(texts.get("handoff.summary_joiner"))[1:]:
        if label and part.startswith(label):
            return part[len(label):].strip()
    return ""


def resident_summary(texts: Texts, kind: str, summary: str) -> str:
    """A ticket's summary as its resident reads it: a hand-off's is what they asked, in their words
    (a status line names its kind 人工服务 beside it) — not the staff's 居民要求人工服务 —, else
    status.handoff_plain; any other kind's its summary."""
    if kind != "handoff":
        return summary
    return handoff_words(texts, summary) or texts.get("status.handoff_plain")


async def _line(ctx: Context, ticket: Ticket | _Listed) -> str:
    status = ctx.text(f"status.labels.{ticket.status}")
    kind = ctx.text(f"flow.titles.{ticket.kind}")
    number = ticket.number
    if ticket.parent_id is not None:
        job = await fastsql.read(ctx.tx, _NUMBER_OF, {"id": ticket.parent_id})
        if job:
            number += ctx.text("dispatch.merged_with", parent=job[0]["number"])
    line = ctx.text("status.line", number=number, kind=kind, status=status,
                    summary=shown_summary(resident_summary(ctx.svc.texts, ticket.kind, ticket.summary or "")))
    name = await _owner_name(ctx, ticket)
    if name is not None:
        line += ctx.text("status.who", name=name)
    if ticket.due_at is not None and ticket.status in ACTIVE and ticket.kind not in BOOKED_KINDS:
        line += ctx.text("status.due", due=format_due(ctx, ticket.due_at))
    return line


status_line = _line  # one ticket's status line, for the dialog's own answers about a ticket


async def status_reply(ctx: Context, number: str | None) -> str:
    """The answer to a status question, about one ticket or all open ones."""
    if number:
        found = await fastsql.read(ctx.tx, _BY_NUMBER, {"number": number})
        ticket = _Listed(**found[0]) if found else None
        if ticket is not None and ticket.resident != ctx.openid:
            # The job the resident's own report was linked to: their report's line, which follows it.
            own = await fastsql.read(ctx.tx, _OWN_UNDER, {"job": ticket.id, "resident": ctx.openid})
            if own:
                return await _line(ctx, _Listed(**own[0]))
        if ticket is None or ticket.resident != ctx.openid:
            return ctx.text("status.not_found", number=number)
        return await _line(ctx, ticket)
    tickets = [_Listed(**row) for row in await fastsql.read(ctx.tx, _OPEN_OF, {"resident": ctx.openid})]
    if not tickets:
        return await _ended_lately(ctx)
    lines = [await _line(ctx, t) for t in tickets[:LIST_LIMIT]]
    head = ctx.text("status.head", count=len(lines))
    tail = ctx.text("status.more") if len(tickets) > LIST_LIMIT else ctx.text("status.one_hint")
    return "\n".join([head, *lines, tail])


async def _ended_lately(ctx: Context) -> str:
    """With nothing open: the tickets ended in the last ENDED_SHOWN, each with what the owner wrote
    when finishing it (办理情况), else that nothing is being handled."""
    since = ctx.now - ENDED_SHOWN
    rows = await fastsql.read(ctx.tx, _ENDED_OF, {"resident": ctx.openid, "since": since})
    if not rows:
        return ctx.text("status.none")
    lines = []
    for row in rows:
        fields = dict(row)
        note = str(fields.pop("ended_note", None) or "").strip()
        line = await _line(ctx, _Listed(**fields))
        lines.append(line + ctx.text("status.ended_note", note=shown_summary(note)) if note else line)
    return "\n".join([ctx.text("status.ended_head", count=len(lines)), *lines, ctx.text("status.ended_tail")])


async def asked_after(ctx: Context, text: str, category: str | None) -> str | None:
    """The status of the resident's newest open report of the kind a question names (我想问一下我那个
    路灯修了没有, said where another question is asked); None when text is no question, names no
    kind of problem, or they have no open report of it."""
    if not category or not is_question(text):
        return None
    number = await ctx.session.scalar(
        select(Ticket.number).where(Ticket.resident == ctx.openid, Ticket.category == category,
                                    Ticket.status.in_(ACTIVE)).order_by(Ticket.id.desc()).limit(1))
    return None if number is None else await status_reply(ctx, number)


def urges(text: str) -> bool:
    """Whether text chases (催一下) or is impatient (怎么还没人来啊 都一天了: [chase] impatient)."""
    norm = normalize(text)
    return any(w in norm for w in (*_URGE_WORDS, *words("chase", "impatient")))


async def chased(ctx: Context, text: str, ticket: Ticket | None = None) -> str | None:
    """怎么还没人来 / 催一下 / 等了半天了 from a resident with open tickets, which names no report: their open
    tickets' status, and with 催 the owner of the newest one (or of `ticket`) is chased (a WeCom
    message to the worker; the staff group when no one has it, it is escalated, or its owner left
    the roster; once in URGE_EVERY per ticket — an urgent one's as often as its emergency said
    again chases — recorded as an event). None when the resident has
    nothing open or the text is no such question."""
    norm = normalize(text)
    # 怎么还没人来啊 都一天了: impatience is a chase, as 催一下 is ([chase] impatient)
    urged = urges(text)
    asks = get_classifier().terms(text) & {"@progress", "@neglect", "@status_question"}
    if not (urged or asks or any(w in norm for w in _NOBODY_CAME)):
        return None
    newest = ticket or await ctx.session.scalar(
        select(Ticket).where(Ticket.resident == ctx.openid, Ticket.status.in_(ACTIVE))
        .order_by(Ticket.id.desc()).limit(1)
    )
    if newest is None:
        return None
    listing = await status_reply(ctx, None)
    if not urged:
        return listing
    # A linked report's chase is the shared job's: its owner knows the job's number, and one
    # chase in URGE_EVERY reaches them however many neighbours chase it.
    job = await _job_of(ctx, newest)
    # An urgent job (电梯困人) is chased as its emergency said again is: at most once in
    # [complaint] emergency_chase_minutes, not once in twelve hours — a 快点 an hour after the
    # emergency's own chase must still reach someone.
    every = dispatch.emergency_chase_every() if job.urgency == "urgent" else URGE_EVERY
    # a chase after an answer (回复) is news: it reaches someone again
    if every and await dispatch.urged_unanswered(ctx.session, {newest.id, job.id}, ctx.now - every):
        return "\n".join([ctx.text("status.urged_lately", number=newest.number), listing])
    actor, note = f"resident:{hash_openid(ctx.openid)}", notices.safe_text(text.strip()[:200])
    await add_event(ctx.session, newest, "urged", actor, ctx.now, note=note)
    if job is not newest:
        await add_event(ctx.session, job, "urged", actor, ctx.now, note=note, data={"via": newest.number})
    what = notices.safe_text(notices.what_of(job))[:60]
    owner = await _worked_by(ctx, job)
    if owner is not None:
        await outbox.push_worker(ctx.session, owner.id,
                                 ctx.text("status.urge_worker", number=job.number, what=what,
                                          short=await dispatch.worker_ref(ctx.session, job, owner.id)),
                                 now=ctx.now, ticket_id=job.id, not_before=dispatch.held_until(ctx.svc, job))
    else:
        await outbox.push_group(ctx.session, ctx.text("status.urge_staff", number=job.number,
                                                      what=notices.md_escape(what)),
                                now=ctx.now, ticket_id=job.id)
    # whoever answered them with 回复 (staff from WeCom or the console) hears of it too
    await dispatch.urge_answerer(ctx.svc, ctx.session, newest, job, owner.id if owner is not None else None, text)
    said = "status.urged" if owner is not None else "status.urged_staff"
    return "\n".join([ctx.text(said, number=newest.number), listing])


async def _job_of(ctx: Context, ticket: Ticket) -> Ticket:
    """The ticket the work goes by: a linked report's parent (同一问题多人反映), else itself."""
    if ticket.parent_id is None:
        return ticket
    return await ctx.session.get(Ticket, ticket.parent_id) or ticket


async def _worked_by(ctx: Context, ticket: Ticket) -> Person | None:
    """The worker a chase or an addition goes to: the owner still in the roster of a ticket not
    escalated; None when it is the staff group's (no owner, escalated, or the owner left)."""
    return None if ticket.status == "escalated" else await _owner(ctx, ticket)


_ADDING = re.compile(r"^(?:我)?(?:想|要|再)?补充(?:一下|几句|一点|说明)?")
# A ticket the addition names: its whole number, or its last digits after 工单/单号/编号, before
# 号工单, or four digits standing alone (补充一下0001，…). Digits inside a longer run (a phone:
# 138-1234-5678, 138 1234 5678) or naming something else (1单元1502, 1502室, 2025年) name no ticket.
_ADDED_FULL = re.compile(r"(?<![\d-])(\d{8}-\d{4})(?![\d-])")
_ADDED_SHORT = re.compile(
    r"(?:工单|单号|编号)号?\s*(?P<after>\d{1,4})(?![\d-])"
    r"|(?<![\d-])(?P<before>\d{1,4})\s*号?工单"
    r"|(?<![\d-])(?<![\d-]\s)(?<![栋幢座楼元室])(?P<alone>\d{4})(?![\d-])(?!\s\d{3})"
    r"(?!号?[室房楼栋幢座院])(?![单元年月日点分元块米个次层岁])"
)
_LEAD = re.compile(r"^[\s，,。：:；;的号工单]+")


async def _named_elsewhere(ctx: Context, full: str | None, digits: str) -> str | None:
    """补充一下0009，… naming no open report of the resident's: said so with their open reports,
    the addition kept for none; None when they have nothing open, or when the number is a report
    of theirs no longer open (the message is then read as usual)."""
    mine = select(Ticket.status).where(Ticket.resident == ctx.openid)
    mine = mine.where(Ticket.number == full) if full else mine.where(Ticket.number.like(f"%-{digits}"))
    if await ctx.session.scalar(mine.limit(1)) is not None:
        return None
    has_open = await ctx.session.scalar(
        select(Ticket.id).where(Ticket.resident == ctx.openid, Ticket.status.in_(ACTIVE)).limit(1))
    if has_open is None:
        return None
    missing = ctx.text("status.not_found", number=full) if full else ctx.text("status.not_found_digits", digits=digits)
    return "\n".join([missing, await status_reply(ctx, None)])


async def added_detail(ctx: Context, text: str) -> str | None:
    """补充一下：灯罩也掉了 (or 我想补充一下20261123-0001，…) from a resident with a report open:
    what follows is added to that report (the one named, else the newest open one) and its
    owner told (the worker in WeCom; the staff group when no one has it, it is escalated, or its
    owner left the roster), instead of a new report or a status line. None when the message is no
    such addition or nothing is open."""
    said = text.strip()
    start = _ADDING.match(said)
    if start is None:
        return None
    rest = said[start.end():].replace("－", "-").replace("—", "-")
    named = _ADDED_FULL.search(rest[:24]) or _ADDED_SHORT.search(rest[:24])
    query = select(Ticket).where(Ticket.resident == ctx.openid, Ticket.status.in_(ACTIVE))
    full, wanted = None, ""
    if named is not None:
        full = named.group(1) if named.re is _ADDED_FULL else None
        wanted = full or (named["after"] or named["before"] or named["alone"]).zfill(4)
        query = query.where(Ticket.number == full if full else Ticket.number.like(f"%-{wanted}"))
        rest = rest[:named.start()] + rest[named.end():]
    ticket = await ctx.session.scalar(query.order_by(Ticket.id.desc()).limit(1))
    detail = _LEAD.sub("", rest).strip()
    if len(normalize(detail)) < 2:
        return None
    if ticket is None and named is not None:  # a number none of the resident's open reports has
        return await _named_elsewhere(ctx, full, wanted)
    if ticket is None:
        return None
    await add_event(ctx.session, ticket, "resident_wrote", f"resident:{hash_openid(ctx.openid)}", ctx.now,
                    note=detail[:500])
    ctx.tickets.append(ticket)  # the message is tied to the report: staff read it in its conversation
    job = await _job_of(ctx, ticket)  # a linked report's addition is told under the shared job's number
    owner = await _worked_by(ctx, job)
    if owner is not None:
        await outbox.push_worker(ctx.session, owner.id, ctx.text(
            "status.added_worker", number=job.number, text=notices.safe_text(detail)[:200]),
            now=ctx.now, ticket_id=job.id, not_before=dispatch.held_until(ctx.svc, job))
    else:
        await outbox.push_group(ctx.session, notices.staff_addendum_markdown(ctx.svc, job, detail),
                                now=ctx.now, ticket_id=job.id)
    return ctx.text("status.added" if owner is not None else "status.added_staff", number=ticket.number,
                    text=detail[:60])
