"""What the console reads: the escalation queue, filtered ticket lists, a ticket's timeline, counts."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import yitizi
import zhconv
from sqlalchemy import and_, case, exists, func, literal, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot import report
from bot.channels.push import LEFT_ROSTER, MAYBE_SENT, error_code, shown_text
from bot.dispatch import BREACH_KINDS
from bot.intents.normalize import simplified
from bot.console.labels import SHARED_TYPES, shared_words
from bot.notices import safe_text
from bot.privacy import mask_phone
from bot.tickets import ACTIVE
from storage.models import Grid, Message, OutboxItem, Person, Resident, StaffUser, Ticket, TicketEvent

URGENCY_RANK = {"urgent": 0, "utility": 1, "normal": 2, "complex": 3}
PAGE_SIZE = 50
QUEUE_LIMIT = 100  # the queue page shows this many (most urgent, then by age) and the total
CONVERSATION_BEFORE = timedelta(minutes=30)  # messages just before a ticket belong to its story


@dataclass(frozen=True)
class QueueItem:
    """A ticket that needs a person, with why, (for hand-offs) what the resident last said, the
    last staff answer, and since when the resident has waited (None: answered, nothing new since)."""

    ticket: Ticket
    reasons: tuple[str, ...]
    said: tuple[str, ...]
    answered_by: str | None = None
    answered_at: datetime | None = None
    waiting_since: datetime | None = None
    added: tuple[str, ...] = ()  # (hand-offs) what the resident wrote on it since, the last few


@dataclass(frozen=True)
class Filters:
    """Ticket list filters from the query string (empty string: any)."""

    kind: str = ""
    status: str = ""
    grid: str = ""
    assignee: str = ""
    missed: str = ""  # a time limit missed (dispatch.BREACH_KINDS): resolve_breach is 超期
    needs_person: bool = False  # the queue's tickets: what needs a person now
    q: str = ""
    of: str = ""  # a ticket number: the tickets of that ticket's resident (no openid in the address)
    page: int = 1

    @classmethod
    def parse(cls, query: Any) -> Filters:
        """Read filters from a request's query (bad values become 'any' or page 1; a NUL, which
        PostgreSQL refuses in any text, is dropped: ?kind=%00 was a 500 there)."""

        def value(name: str) -> str:
            return str(query.get(name, "")).replace("\x00", "")

        return cls(
            kind=value("kind")[:24], status=value("status")[:16],
            grid=value("grid")[:32], assignee=value("assignee")[:64],
            missed=_missed_filter(value("overdue")),
            needs_person=query.get("queue", "") in ("1", "on", "true"), q=value("q").strip()[:100],
            of=value("of").strip()[:20],
            page=page_number(query),
        )


def page_number(query: Any, name: str = "page") -> int:
    """A list's page number from a request's query: 1 to 10,000, anything else page 1 (never an
    offset past what a database takes)."""
    try:
        return max(1, min(10_000, int(str(query.get(name, "1")))))
    except ValueError:
        return 1


def _missed_filter(raw: str) -> str:
    """The list's 时限 filter from ?overdue=: a limit's name, or 1 / on / true (the checkbox it
    was) for 超期; anything else is any."""
    if raw in BREACH_KINDS:
        return raw
    return "resolve_breach" if raw in ("1", "on", "true") else ""


@dataclass(frozen=True)
class TimelineEntry:
    """One line of a ticket's story: an event or a message, in time order."""

    at: datetime
    kind: str  # event | in | out | staff
    actor: str
    action: str
    text: str
    data: dict[str, Any] | None = None


@dataclass(frozen=True)
class Load:
    """Open and overdue tickets of one grid or person."""

    key: str
    name: str
    open: int = 0
    overdue: int = 0


@dataclass(frozen=True)
class Counts:
    """Open/overdue counts per grid and per worker, and totals."""

    grids: list[Load] = field(default_factory=list)
    workers: list[Load] = field(default_factory=list)
    open: int = 0
    overdue: int = 0
    queue: int = 0


def _urgency_order() -> Any:
    return case(URGENCY_RANK, value=Ticket.urgency, else_=9)


def _owner_left() -> Any:
    """The ticket's owner is no longer active in the roster (a roster import took them out)."""
    return Ticket.assignee.in_(select(Person.id).where(Person.active.is_(False)))


def _owner_unreached() -> Any:
    """A push to the ticket's owner was given up (a dead WeCom row) and they have done nothing on
    the ticket since: they may not know of it. Reassigning it, or their own 接单, ends this."""
    return exists().where(
        OutboxItem.ticket_id == Ticket.id, OutboxItem.channel == "wecom", OutboxItem.state == "dead",
        OutboxItem.target == Ticket.assignee,
        ~exists().where(
            TicketEvent.ticket_id == Ticket.id, TicketEvent.actor == Ticket.assignee,
            TicketEvent.created_at >= OutboxItem.created_at,
        ),
    )


def _limit_missed_now(now: datetime) -> Any:
    """A missed time limit that still needs a person at now: the 办结 limit (超期, as the figures
    and badges read it), or a 接单 limit missed while the job waits, untaken, in the window that
    missed it. A late 接单 by the owner, or staff's 改派 giving a new owner a fresh 接单 window,
    settles the latter: the miss stays 响应率's and the badge's, but the job is in hand again (it
    comes back, escalated, when that window is missed too). An overdue flag no breach event names
    (older tickets) counts as it always did."""
    named = select(TicketEvent.ticket_id).where(
        TicketEvent.action == "overdue", TicketEvent.data["limit"].as_string().in_(BREACH_KINDS),
    )
    return or_(
        report.past_resolve_limit_where(now),
        and_(Ticket.overdue.is_(True), Ticket.id.not_in(named)),
        and_(Ticket.overdue.is_(True), Ticket.status.in_(("open", "dispatched")),
             or_(Ticket.accept_due_at.is_(None), Ticket.accept_due_at <= now)),
    )


def _needs_person(now: datetime) -> Any:
    return and_(
        Ticket.parent_id.is_(None),
        Ticket.status.in_(ACTIVE),
        or_(
            Ticket.status.in_(("escalated", "reopened")),
            _limit_missed_now(now),
            and_(Ticket.status == "open", Ticket.assignee.is_(None)),
            _owner_left(),
            _owner_unreached(),
        ),
    )


async def owner_trouble(session: AsyncSession, tickets: list[Ticket]) -> dict[int, tuple[str, ...]]:
    """For each of these tickets whose owner cannot work it, why (keys under console.reasons):
    'owner_left' (no longer in the roster), 'push_failed' (a push to them was given up)."""
    ids = [t.id for t in tickets if t.assignee]
    if not ids:
        return {}
    left = set(await session.scalars(select(Ticket.id).where(Ticket.id.in_(ids), _owner_left())))
    unreached = set(await session.scalars(select(Ticket.id).where(Ticket.id.in_(ids), _owner_unreached())))
    found = {i: tuple(r for r, hit in (("owner_left", i in left), ("push_failed", i in unreached)) if hit) for i in ids}
    return {i: why for i, why in found.items() if why}


async def missed_limits(session: AsyncSession, tickets: list[Ticket], now: datetime) -> dict[int, tuple[str, ...]]:
    """Which time limits each of these tickets missed, as the figures read them (bot.report), for
    those that missed one: 'accept_breach' (接单超时, 响应率's) from its breach events,
    'resolve_breach' (超期) by report.past_resolve_limit. A ticket flagged overdue with no breach
    event naming its limit (written before events named it) missed its 接单 limit when it did not
    miss its 办结 one: only those two set the flag."""
    named: dict[int, set[str]] = {}
    if tickets:
        rows = await session.scalars(select(TicketEvent).where(
            TicketEvent.ticket_id.in_([t.id for t in tickets]), TicketEvent.action == "overdue",
        ))
        for event in rows:
            for limit in BREACH_KINDS:
                if report.breach(event, limit):
                    named.setdefault(event.ticket_id, set()).add(limit)
    late = {i for i, limits in named.items() if "resolve_breach" in limits}
    found: dict[int, tuple[str, ...]] = {}
    for t in tickets:
        past = report.past_resolve_limit(t, now, late)
        limits = named.get(t.id, set())
        accept = "accept_breach" in limits or (t.overdue and not limits and not past)
        missed = tuple(name for name, hit in (("accept_breach", accept), ("resolve_breach", past)) if hit)
        if missed:
            found[t.id] = missed
    return found


def missed_where(limit: str, now: datetime) -> Any:
    """missed_limits as a SQL condition on tickets, for the list filtered by one limit:
    'resolve_breach' (超期, report.past_resolve_limit_where) or 'accept_breach' (接单超时)."""
    past = report.past_resolve_limit_where(now)
    if limit == "resolve_breach":
        return past
    breaches = select(TicketEvent.ticket_id).where(TicketEvent.action == "overdue")
    named = breaches.where(TicketEvent.data["limit"].as_string().in_(BREACH_KINDS))
    return or_(
        Ticket.id.in_(breaches.where(TicketEvent.data["limit"].as_string() == "accept_breach")),
        and_(Ticket.overdue.is_(True), Ticket.id.not_in(named), ~past),
    )


async def escalated_by_limit(session: AsyncSession, tickets: list[Ticket]) -> set[int]:
    """Those of these escalated tickets whose latest escalation was a missed time limit's (the
    breach check's, naming its limit), not a 吹哨 or staff's 升级: their 接单超时 / 超期 says why."""
    ids = [t.id for t in tickets if t.status == "escalated"]
    latest: dict[int, TicketEvent] = {}
    if ids:
        for event in await session.scalars(select(TicketEvent).where(
            TicketEvent.ticket_id.in_(ids), TicketEvent.action == "escalate",
        ).order_by(TicketEvent.id)):
            latest[event.ticket_id] = event
    return {i for i, e in latest.items() if (e.data or {}).get("limit") in BREACH_KINDS}


def queue_reasons(ticket: Ticket, missed: tuple[str, ...] = (), trouble: tuple[str, ...] = (),
                  by_limit: bool = False) -> tuple[str, ...]:
    """Why a ticket is in the queue (keys under console.reasons); `missed`: its missed_limits;
    `trouble`: its owner_trouble; `by_limit`: escalated by a missed limit (escalated_by_limit),
    which its missed limit says (接单超时), not again as 升级/吹哨."""
    reasons = []
    if ticket.kind == "handoff":
        reasons.append("handoff")
    elif ticket.status == "escalated" and not (by_limit and missed):
        reasons.append("escalated")
    reasons.extend(missed)
    if ticket.status == "reopened":
        reasons.append("reopened")
    if ticket.status == "open" and ticket.assignee is None:
        reasons.append("no_owner")
    reasons.extend(trouble)
    return tuple(reasons)


def transcript_said(ticket: Ticket, last: int = 3) -> tuple[str, ...]:
    """The resident's last lines from a hand-off's transcript (carried in its fields), if any."""
    lines = (ticket.fields or {}).get("transcript") or []
    said = [str(x.get("text") or "") for x in lines if isinstance(x, dict) and x.get("direction") == "in"]
    return tuple(x for x in said if x)[-last:]


async def queue(session: AsyncSession, now: datetime, *, newest_first: bool = False,
                limit: int | None = None) -> list[QueueItem]:
    """Tickets that need a person: escalated (hand-offs, 吹哨), overdue, unowned, reopened —
    most urgent first, then oldest (or newest) first; the limits they missed as at now."""
    when = Ticket.created_at.desc() if newest_first else Ticket.created_at.asc()
    rows = await session.execute(
        select(Ticket).where(_needs_person(now)).order_by(_urgency_order(), when).limit(limit or QUEUE_LIMIT)
    )
    found = list(rows.scalars())
    answers = await last_answers(session, [t.id for t in found])
    added = await additions(session, [t for t in found if t.kind == "handoff"])
    missed = await missed_limits(session, found, now)
    trouble = await owner_trouble(session, found)
    by_limit = await escalated_by_limit(session, found)
    items = []
    for ticket in found:
        said: tuple[str, ...] = ()
        if ticket.kind == "handoff" and ticket.resident:
            said = transcript_said(ticket) or tuple(
                m.content for m in await conversation(session, ticket, limit=3, inbound_only=True)
            )
        answer = answers.get(ticket.id)
        waiting: datetime | None = ticket.created_at
        if answer is not None:
            waiting = await first_word_since(session, ticket, answer.created_at)
        items.append(QueueItem(
            ticket, queue_reasons(ticket, missed.get(ticket.id, ()), trouble.get(ticket.id, ()), ticket.id in by_limit), said,
            answer.author if answer else None,
            answer.created_at if answer else None, waiting, added.get(ticket.id, ()),
        ))
    return items


async def additions(session: AsyncSession, handoffs: list[Ticket], last: int = 3) -> dict[int, tuple[str, ...]]:
    """What each hand-off's resident wrote on it after it was opened, the last few, oldest first:
    what the person they wait for must read first. Its 居民补充 events, and every message of theirs
    tied to it since — 能不能有人来看看我 said right after 转人工 is taken as 人工 asked again and
    recorded as no event, yet it is what the resident wants."""
    if not handoffs:
        return {}
    ids = [t.id for t in handoffs]
    # The note has phones masked; the message it records (tied to the ticket, same moment) is
    # whole, as staff may read it (the template masks it for read-only users).
    said = and_(Message.ticket_id == TicketEvent.ticket_id, Message.created_at == TicketEvent.created_at,
                Message.direction == "in")
    rows = await session.execute(
        select(TicketEvent.id, TicketEvent.ticket_id, TicketEvent.created_at, TicketEvent.note, Message.content)
        .outerjoin(Message, said).where(
            TicketEvent.ticket_id.in_(ids), TicketEvent.action == "resident_wrote",
        ).order_by(TicketEvent.id)
    )
    lines: dict[int, tuple[int, datetime, str]] = {}
    for event_id, ticket_id, at, note, content in rows.all():
        if not note:
            continue
        whole = (content or "").strip()
        if whole and safe_text(whole)[:500] == safe_text(note):
            lines[event_id] = (ticket_id, at, whole[:500])
        else:
            lines.setdefault(event_id, (ticket_id, at, note))
    recorded = {(ticket_id, at) for ticket_id, at, _ in lines.values()}
    found: dict[int, list[tuple[datetime, str]]] = {}
    for ticket_id, at, line in lines.values():
        found.setdefault(ticket_id, []).append((at, line))
    since = [and_(Message.openid == t.resident, Message.created_at > t.created_at, Message.ticket_id == t.id)
             for t in handoffs if t.resident]  # by the resident's messages index, not a table scan
    if since:
        messages = await session.execute(
            select(Message.ticket_id, Message.created_at, Message.content).where(
                or_(*since), Message.direction == "in", ~Message.msg_type.startswith("event:"),
            ).order_by(Message.id)
        )
        for ticket_id, at, content in messages.all():
            text = (content or "").strip()
            if text and (ticket_id, at) not in recorded:
                found.setdefault(ticket_id, []).append((at, text[:500]))
    return {i: tuple(line for _, line in sorted(got, key=lambda x: x[0])[-last:]) for i, got in found.items()}


async def last_answers(session: AsyncSession, ticket_ids: list[int]) -> dict[int, Message]:
    """The last staff answer to each of these tickets' residents (tickets never answered left out)."""
    if not ticket_ids:
        return {}
    rows = await session.execute(
        select(Message).where(
            Message.ticket_id.in_(ticket_ids), Message.direction == "out", Message.author.is_not(None),
        ).order_by(Message.created_at, Message.id)
    )
    return {m.ticket_id: m for m in rows.scalars() if m.ticket_id is not None}


def _answers_on(ticket: Ticket) -> Any:
    """Staff answers to the ticket's resident or to a reporter linked to it."""
    linked = select(Ticket.id).where(Ticket.parent_id == ticket.id)
    return and_(
        or_(Message.ticket_id == ticket.id, Message.ticket_id.in_(linked)),
        Message.direction == "out", Message.author.is_not(None),
    )


async def last_answer_id(session: AsyncSession, ticket: Ticket) -> int:
    """The newest staff answer on the ticket or its linked reports (0: none): what its page shows."""
    return int(await session.scalar(select(func.max(Message.id)).where(_answers_on(ticket))) or 0)


async def answer_since(session: AsyncSession, ticket: Ticket, after_id: int, author: str) -> Message | None:
    """The newest staff answer on the ticket or its linked reports by someone other than `author`
    sent after the message `after_id` (last_answer_id of the page the clerk wrote on): a colleague
    answered meanwhile."""
    return await session.scalar(
        select(Message).where(_answers_on(ticket), Message.author != author, Message.id > after_id)
        .order_by(Message.id.desc()).limit(1)
    )


async def first_word_since(session: AsyncSession, ticket: Ticket, since: datetime) -> datetime | None:
    """When the ticket's resident first wrote after `since` (an answer): what they wait on since; None
    when they have not written since."""
    if not ticket.resident:
        return None
    return await session.scalar(
        select(func.min(Message.created_at)).where(
            Message.openid == ticket.resident, Message.direction == "in", Message.created_at > since,
            Message.msg_type.not_like("event:%"),
        )
    )


WATCH_LIMIT = 20  # the queue page's 留意 list shows at most this many


async def watch(session: AsyncSession, many: int, now: datetime) -> list[Ticket]:
    """Tickets in hand that are not the queue's yet but a desk clerk keeps an eye on: urgent ones
    not taken yet (电梯困人 dispatched a few minutes ago), and jobs `many` or more residents reported
    (a water cut: answered all at once) — urgent first, then most reporters, then oldest."""
    taken_or_not = and_(Ticket.urgency == "urgent", Ticket.status.in_(("open", "dispatched")))
    crowd = Ticket.reporters >= many if many > 0 else Ticket.id.is_(None)
    rows = await session.execute(
        select(Ticket).where(
            Ticket.parent_id.is_(None), Ticket.status.in_(ACTIVE), ~_needs_person(now), or_(taken_or_not, crowd),
        ).order_by(_urgency_order(), Ticket.reporters.desc(), Ticket.created_at).limit(WATCH_LIMIT)
    )
    return list(rows.scalars())


async def queue_size(session: AsyncSession, now: datetime) -> int:
    """How many tickets wait in the queue at now."""
    return int(await session.scalar(select(func.count()).select_from(Ticket).where(_needs_person(now))) or 0)


def _resident_of(number: str) -> Any:
    """The resident (openid) of the ticket with this number, as a subquery (NULL: none, matching nothing)."""
    return select(Ticket.resident).where(Ticket.number == number).scalar_subquery()


async def resident_tickets(session: AsyncSession, ticket: Ticket) -> int:
    """How many tickets the ticket's resident has (this one included; 0 without a resident)."""
    if not ticket.resident:
        return 0
    return int(await session.scalar(select(func.count()).where(Ticket.resident == ticket.resident)) or 0)


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


_WIDE_DIGITS = str.maketrans("0123456789", "０１２３４５６７８９")


# Folk forms no maintained table lists (zhconv, OpenCC, Unihan's variants, yitizi were checked):
# 氺 is the radical form of 水 (Unicode's EquivalentUnifiedIdeograph maps ⺢ CJK RADICAL WATER TWO
# to it; it reads shuǐ) and residents write 漏氺 for 漏水. Keep this to what the tables miss
# (test_console_variants checks none of it is in them).
FOLK_FORMS = {"氺": "水"}


def _common(char: str) -> bool:
    """A character of GB 2312, the common simplified set (a search reads the others as one of it)."""
    try:
        char.encode("gb2312")
    except UnicodeEncodeError:
        return False
    return True


def _fold_map() -> dict[str, str]:
    """Each character the search reads as another one, one character for one so that folding keeps
    every substring a substring: traditional → simplified (zhconv's one-character table, the one
    bot.intents.normalize.simplified converts with); a variant outside GB 2312 whose variants
    (yitizi's table) simplify to exactly one GB 2312 character → that one (亊 → 事, 歳 → 岁,
    囯 → 国); compatibility ideographs and Kangxi radicals → their ideograph (NFKC); FOLK_FORMS;
    full-width ASCII → ASCII (NFKC)."""
    try:
        table = zhconv.zhconv.getdict("zh-cn")
    except AttributeError:  # a zhconv without the table accessor (as normalize allows): full-width only
        table = {}
    fold = {k: v for k, v in table.items() if len(k) == 1 and len(v) == 1 and k != v}
    for char, variants in yitizi.yitizi_data.items():
        if char in fold or _common(char):
            continue
        common = {fold.get(v, v) for v in variants} - {char}
        common = {v for v in common if _common(v)}
        if len(common) == 1:
            fold[char] = common.pop()
    for start, end in ((0x2F00, 0x2FD6), (0xF900, 0xFADA), (0x2F800, 0x2FA1E)):
        for code in range(start, end):
            plain = unicodedata.normalize("NFKC", chr(code))
            if len(plain) == 1 and plain != chr(code):
                fold[chr(code)] = fold.get(plain, plain)
    fold.update(FOLK_FORMS)
    for code in range(0xFF01, 0xFF5F):  # ！ … ～
        wide = chr(code)
        fold[wide] = unicodedata.normalize("NFKC", wide)
    for char, to in fold.items():  # 剗 → 刬 → 铲: read as the end of the chain, so folding twice changes nothing
        seen = {char}
        while to in fold and to not in seen:
            seen.add(to)
            to = fold[to]
        fold[char] = to
    return {k: v for k, v in fold.items() if k != v}


_FOLD = _fold_map()
_FOLD_TABLE = str.maketrans(_FOLD)
_VARIANTS: dict[str, list[str]] = {}
for _from, _to in _FOLD.items():
    _VARIANTS.setdefault(_to, []).append(_from)
for _letter in "abcdefghijklmnopqrstuvwxyz":  # ILIKE lower-cases ASCII; Ｂ and ｂ both read as b
    _VARIANTS[_letter] = _VARIANTS[_letter.upper()] = [*_VARIANTS.get(_letter, []), *_VARIANTS.get(_letter.upper(), [])]


def fold(text: str) -> str:
    """text as the search reads it: traditional and variant characters simplified and full-width
    characters made ASCII, one character at a time (7號樓, 7号樓, ７号楼 → 7号楼; 漏氺 → 漏水)."""
    return text.translate(_FOLD_TABLE)


_PHONE_TYPED = re.compile(r"[+]?[0-9][0-9 \-]*[0-9]")


def phone_typed(q: str) -> str:
    """A mobile number as a clerk types it from a caller, in groups (138 1234 5678, 138-1234-5678,
    +86 138 1234 5678, full-width too), as the digits residents write: what the search looks for.
    Anything else (a ticket number, 20261124-0009; a landline, 0571-8888…) is left as it is."""
    plain = unicodedata.normalize("NFKC", q).strip()
    if not _PHONE_TYPED.fullmatch(plain):
        return q
    digits = re.sub(r"[^0-9]", "", plain)
    if len(digits) == 13 and digits.startswith("86"):
        digits = digits[2:]
    return digits if re.fullmatch(r"1[0-9]{10}", digits) else q


_BUILDING_ASKED = re.compile(r"([0-9]{1,4}) *(?:号楼|号|栋|幢|座|楼)")


def building_asked(q: str) -> str:
    """The building a search names and nothing else (9号楼, 9栋, 9號樓, ９幢: read folded), as the
    tickets' 楼栋 holds it (9), or ''. A report of 9号楼 whose resident wrote 9栋1单元 is found by it."""
    found = _BUILDING_ASKED.fullmatch(fold(q).strip())
    return str(int(found.group(1))) if found else ""


def folded(column: Any, query: str) -> Any:
    """The column folded as `fold` folds text, for the characters of a folded `query` only (what
    the search can tell apart): 号 and 楼 for 7号楼 — replace() on SQLite and PostgreSQL alike."""
    for char in dict.fromkeys(query):
        for variant in _VARIANTS.get(char, ()):
            column = func.replace(column, variant, char)
    return column


def search_forms(q: str) -> tuple[str, ...]:
    """Words a search also looks for as they are written where the traditional vocabulary differs
    from the simplified character by character (软件 → 軟體, Taiwan's and Hong Kong's, zhconv):
    what `fold` cannot read. The text folded is searched for besides (ticket_list)."""
    plain = simplified(unicodedata.normalize("NFKC", q))
    if plain.isascii():
        return ()
    forms = [zhconv.convert(plain, variant) for variant in ("zh-tw", "zh-hk")]
    return tuple(dict.fromkeys(form for form in forms if form and fold(form) != fold(q)))


async def ticket_list(session: AsyncSession, filters: Filters, now: datetime,
                      limit: int | None = None) -> tuple[list[Ticket], int]:
    """One page of tickets matching the filters (a time limit missed as at now), newest first
    (tickets whose number matches the search before the rest), and the total count; with a
    limit, the first `limit` of them all instead of a page (the list's export)."""
    conds: list[Any] = []
    if filters.kind:
        conds.append(Ticket.kind == filters.kind)
    if filters.status:
        conds.append(Ticket.status == filters.status)
    if filters.grid:
        conds.append(Ticket.grid == filters.grid)
    if filters.assignee:
        conds.append(Ticket.assignee.is_(None) if filters.assignee == "-" else Ticket.assignee == filters.assignee)
    if filters.missed:
        conds.append(missed_where(filters.missed, now))
    if filters.needs_person:
        conds.append(_needs_person(now))
    if filters.of:
        conds.append(Ticket.resident == _resident_of(filters.of))
    asked = phone_typed(filters.q)
    if asked:
        wanted = fold(asked)
        pattern = _like(wanted)
        others = [_like(form) for form in search_forms(asked)]
        if asked != filters.q:  # a number written in groups in a message is found as typed too
            others.append(_like(filters.q))

        def found(column: Any) -> Any:
            # both sides folded: 7號楼, 7号樓, 7號樓 and 7号楼 find each other
            return or_(folded(column, wanted).ilike(pattern, escape="\\"),
                       *[column.ilike(other, escape="\\") for other in others])

        said = Ticket.id.in_(  # one pass over the messages, not one per ticket
            # what the resident wrote and staff answered: the bot's own words are no match (its
            # example 补充一下：是3号楼1单元 listed 9号楼's lift under 3号楼)
            select(Message.ticket_id).where(Message.ticket_id.is_not(None), found(Message.content),
                                            or_(Message.direction == "in", Message.msg_type == "staff"))
        )
        building = building_asked(asked)
        conds.append(or_(
            Ticket.number.ilike(pattern, escape="\\"), found(Ticket.summary), found(Ticket.rating_comment), said,
            *([Ticket.building == building] if building else []),
        ))
    total = int(await session.scalar(select(func.count()).select_from(Ticket).where(*conds)) or 0)
    # A number searched for (20261124-0009, or 0009) comes before the tickets whose talk mentions it.
    named = case((Ticket.number.ilike(_like(fold(asked)), escape="\\"), 0), else_=1) if asked else literal(1)
    ordered = select(Ticket).where(*conds).order_by(named, Ticket.created_at.desc(), Ticket.id.desc())
    rows = await session.execute(
        ordered.limit(limit) if limit is not None else ordered.offset((filters.page - 1) * PAGE_SIZE).limit(PAGE_SIZE)
    )
    return list(rows.scalars()), total


def conversation_start(ticket: Ticket) -> datetime:
    """Where a ticket's story begins: just before it was opened, or where a hand-off's transcript starts."""
    start = ticket.created_at - CONVERSATION_BEFORE
    for line in (ticket.fields or {}).get("transcript") or []:
        try:
            at = datetime.fromisoformat(str(line.get("at"))) if isinstance(line, dict) else None
        except ValueError:
            at = None
        if at is not None and at.tzinfo is not None and at < start:
            start = at
    return start


async def conversation(
    session: AsyncSession, ticket: Ticket, *, limit: int = 300, inbound_only: bool = False,
) -> list[Message]:
    """The ticket's conversation: messages tied to it, and the resident's untied messages from just
    before it was opened until it was closed (the last `limit`, oldest first)."""
    tied = Message.ticket_id == ticket.id
    conds: list[Any] = [tied]
    if ticket.resident:
        window = [
            Message.openid == ticket.resident, Message.ticket_id.is_(None),
            Message.created_at >= conversation_start(ticket),
        ]
        if ticket.closed_at is not None:
            window.append(Message.created_at <= ticket.closed_at)
        conds.append(and_(*window))
    stmt = select(Message).where(or_(*conds))
    if inbound_only:
        stmt = stmt.where(Message.direction == "in")
    rows = await session.execute(stmt.order_by(Message.created_at.desc(), Message.id.desc()).limit(limit))
    return list(reversed(list(rows.scalars())))


_MARK = re.compile(r"^\[[^\]\s]{1,12}\] ")  # [链接] , [文件] : what dialog puts before a shared title
NOTE_CHARS = 500  # a 居民补充 note is cut at this length (bot/flows/handoff.py)


def _written(event: TicketEvent, said: set[tuple[datetime, str]]) -> bool:
    """Whether a 居民补充 note records a message of that moment (its text, or a shared link's or
    file's title and address after the mark dialog puts before them: [链接] 标题 https://…)."""
    note = safe_text(event.note or "")
    if (event.created_at, note) in said:
        return True
    marked = _MARK.match(note)
    if marked is None:
        return False
    rest = note[marked.end():]
    if len(note) < NOTE_CHARS:
        return (event.created_at, rest) in said
    return any(at == event.created_at and words.startswith(rest) for at, words in said)  # a note cut at its length


def _with_holders(events: list[TicketEvent]) -> list[tuple[TicketEvent, dict[str, Any] | None]]:
    """Each event with its data, a 派单 given while someone held the ticket marked with who
    ("previous": a 改派, as the audit log says it; the history said 派单 twice). A 退回 leaves it
    nobody's."""
    holder: str | None = None
    out: list[tuple[TicketEvent, dict[str, Any] | None]] = []
    for e in events:
        data = e.data
        if e.action == "assign" and isinstance((e.data or {}).get("assignee"), str):
            if holder is not None:
                data = {**(e.data or {}), "previous": holder}
            holder = str((e.data or {})["assignee"])
        elif e.action == "return":
            holder = None
        out.append((e, data))
    return out


async def timeline(session: AsyncSession, ticket: Ticket) -> list[TimelineEntry]:
    """Events and conversation messages interleaved by time (on a tie the message first: what a
    resident says comes before what it causes)."""
    messages = await conversation(session, ticket)
    # a resident_wrote note is the message's text masked (older notes whole): compared masked
    said = {(m.created_at, safe_text((m.content or "").strip())[:500]) for m in messages if m.direction == "in"}
    # a link, file or card is noted marked ([链接] 标题 https://…): the message shows it so itself
    said |= {(m.created_at, safe_text(shared_words(m.msg_type, m.media)))
             for m in messages if m.direction == "in" and m.msg_type in SHARED_TYPES}
    events = await session.execute(select(TicketEvent).where(TicketEvent.ticket_id == ticket.id).order_by(TicketEvent.id))
    entries = [
        (e.created_at, 1, e.id, TimelineEntry(e.created_at, "event", e.actor, e.action, e.note, data))
        for e, data in _with_holders(list(events.scalars()))
        if e.action != "reply"  # a staff answer shows once, as the message it sent
        and not (e.action == "resident_wrote" and _written(e, said))  # shown as the message itself
    ]
    for m in messages:
        kind = "in" if m.direction == "in" else ("staff" if m.author else "out")
        entries.append((m.created_at, 0, m.id, TimelineEntry(m.created_at, kind, m.author or "", m.msg_type, m.content, m.media)))
    entries.sort(key=lambda x: (x[0], x[1], x[2]))
    return [e[3] for e in entries]


@dataclass(frozen=True)
class FailedPush:
    """A push of the ticket that was given up (an outbox row gone dead): to its resident, or in
    WeCom to a worker."""

    at: datetime
    text: str
    errcode: int | None  # WeChat's or WeCom's refusal, when it gave one
    attempts: int
    to: str = ""  # the worker's userid; "" for the resident
    left_roster: bool = False  # not sent: the worker is no longer in the roster


async def failed_pushes(session: AsyncSession, ticket: Ticket) -> list[FailedPush]:
    """Pushes of the ticket that never arrived (dead outbox rows: to the resident, or to a worker
    in WeCom), oldest first."""
    rows = await session.execute(
        select(OutboxItem).where(
            OutboxItem.ticket_id == ticket.id, OutboxItem.channel.in_(("wechat", "wecom")), OutboxItem.state == "dead",
        ).order_by(OutboxItem.id)
    )
    return [
        FailedPush(
            row.created_at, shown_text(row.payload or {}), error_code(row.last_error), row.attempts,
            "" if row.channel == "wechat" else row.target, (row.last_error or "").startswith(LEFT_ROSTER),
        )
        for row in rows.scalars()
    ]


@dataclass(frozen=True)
class UndeliveredPush:
    """A push given up (an outbox row gone dead) or one that may have arrived twice (an attempt
    timed out after sending: bot.channels.push.MAYBE_SENT), for the console's 消息未送达 page. Who
    it was for is said by the page in words (recipient), never by openid or WeCom account."""

    id: int
    at: datetime  # queued
    sent_at: datetime | None
    channel: str  # wechat | wecom | group
    state: str  # dead | sent | pending | sending
    number: str | None  # the ticket it was about
    text: str
    errcode: int | None
    attempts: int
    maybe: bool
    left_roster: bool
    recipient: str  # the resident's name or the worker's, never an account
    phone: str  # the resident's phone, masked; "" for a worker or the staff group


async def undelivered(session: AsyncSession, since: datetime, labels: dict[str, str],
                      limit: int = 200) -> list[UndeliveredPush]:
    """Pushes queued since a time that were given up, or may have been delivered twice, newest
    first. labels: the words for a recipient not known by name (keys resident, worker, group)."""
    rows = (await session.execute(
        select(OutboxItem, Ticket.number).outerjoin(Ticket, Ticket.id == OutboxItem.ticket_id)
        .where(OutboxItem.created_at >= since,
               or_(OutboxItem.state == "dead", OutboxItem.last_error.like(f"%{MAYBE_SENT}%")))
        .order_by(OutboxItem.id.desc()).limit(limit)
    )).all()
    openids = {o.target for o, _ in rows if o.channel == "wechat"}
    userids = {o.target for o, _ in rows if o.channel == "wecom"}
    residents = {r.openid: r for r in (await session.execute(
        select(Resident).where(Resident.openid.in_(openids)))).scalars()} if openids else {}
    people = {p.id: p.name for p in (await session.execute(
        select(Person).where(Person.id.in_(userids)))).scalars()} if userids else {}
    found = []
    for row, number in rows:
        resident = residents.get(row.target) if row.channel == "wechat" else None
        if row.channel == "wechat":
            recipient = (resident.name if resident is not None and resident.name else "") or labels["resident"]
        elif row.channel == "wecom":
            recipient = people.get(row.target) or labels["worker"]
        else:
            recipient = labels["group"]
        error = row.last_error or ""
        found.append(UndeliveredPush(
            row.id, row.created_at, row.sent_at, row.channel, row.state, number, shown_text(row.payload or {}),
            error_code(error), row.attempts, MAYBE_SENT in error, error.startswith(LEFT_ROSTER), recipient,
            mask_phone(resident.phone) if resident is not None and resident.phone else "",
        ))
    return found


async def parent_numbers(session: AsyncSession, rows: list[Ticket]) -> dict[int, str]:
    """The numbers of the jobs these tickets are linked to (同一问题多人反映), by the job's id."""
    ids = {t.parent_id for t in rows if t.parent_id}
    if not ids:
        return {}
    found = await session.execute(select(Ticket.id, Ticket.number).where(Ticket.id.in_(ids)))
    return {i: n for i, n in found.all()}


async def linked_reports(session: AsyncSession, ticket: Ticket) -> list[Ticket]:
    """Later reports of the same problem linked to this ticket (同一问题多人反映)."""
    rows = await session.execute(select(Ticket).where(Ticket.parent_id == ticket.id).order_by(Ticket.id))
    return list(rows.scalars())


async def names(session: AsyncSession) -> dict[str, str]:
    """Display names by id: console users (by username), roster people and grids (these win)."""
    users = {u.username: u.display_name for u in (await session.execute(select(StaffUser))).scalars() if u.display_name}
    people = {p.id: p.name for p in (await session.execute(select(Person))).scalars()}
    grids = {g.id: g.name for g in (await session.execute(select(Grid))).scalars()}
    return {**users, **people, **grids}


async def grids_and_people(session: AsyncSession) -> tuple[list[Grid], list[Person]]:
    """All grids and active people, for filter menus."""
    grids = list((await session.execute(select(Grid).order_by(Grid.id))).scalars())
    people = list((await session.execute(select(Person).where(Person.active.is_(True)).order_by(Person.id))).scalars())
    return grids, people


async def counts(session: AsyncSession, now: datetime) -> Counts:
    """Open and overdue tickets per grid and per owner (linked duplicates not counted twice)."""
    base = and_(Ticket.status.in_(ACTIVE), Ticket.parent_id.is_(None))
    overdue = func.sum(case((Ticket.overdue.is_(True), 1), else_=0))
    shown = await names(session)

    async def per(column: Any) -> list[Load]:
        rows = await session.execute(
            select(column, func.count(), overdue).where(base).group_by(column).order_by(func.count().desc())
        )
        return [
            Load(str(k) if k else "-", shown.get(str(k), str(k)) if k else "", int(n), int(o or 0))
            for k, n, o in rows.all()
        ]

    grids = await per(Ticket.grid)
    return Counts(
        grids=grids, workers=await per(Ticket.assignee),
        open=sum(g.open for g in grids), overdue=sum(g.overdue for g in grids), queue=await queue_size(session, now),
    )
