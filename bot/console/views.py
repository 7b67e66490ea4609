"""The console's reading pages: the escalation queue, the ticket list, one ticket."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from math import ceil
from typing import Any

from aiohttp import web
from sqlalchemy import select

from bot import dispatch, staff_actions, tickets
from bot.console import auth, phone_views, queries
from bot.console.auth import ConsoleUser
from bot.console.canned import load_canned
from bot.console.export import EXPORT_LIMIT
from bot.console.labels import moment, openable
from bot.dispatch import BREACH_KINDS
from bot.console.common import page, refuse, render, services
from bot.limits import load_limits
from bot.clock import local
from bot.privacy import mask_phone
from bot.texts import Texts
from storage.models import Grid, Person, Resident

routes = web.RouteTableDef()
# Shown elsewhere on the page or internal: the transcript is in the timeline, the building in
# 楼栋 / 网格; the flow id is internal.
HIDDEN_FIELDS = ("transcript", "building", "flow")
# Shown by another field when that one is there: a booking's start by its 时间 (11月26日（周四）11:00),
# a mediation's session by its time in words (11月24日 15:00, or 晚上七点以后 with no day), a
# report's landmark or unit inside its 地点 (3栋2单元 then 单元：2 said it twice).
SHOWN_BY = {"start": "when", "session_time": "session_text", "landmark": "place", "unit": "place"}
SHOWN_AS = {"landmark": "{}", "unit": "{}单元"}  # how such a field reads inside the other one
SAID_WHEN_SO = ("waitlist",)  # yes/no fields worth a line only when yes (候补：否 on every booking)


QUEUE_REFRESH_S = 60  # the queue page reloads itself this often while it is on screen (console.js)
# Fields whose values are codes, and where their words are: a report's emergency and a hand-off's
# emergency advice are the [complaint.urgent] keys (burst, gas …), named in [console.advice].
VALUE_LABELS = {"urgency": "console.urgency", "emergency": "console.advice", "advice": "console.advice"}


def _field_label(texts: Texts, key: str, within: str = "") -> str:
    """A collected field's name in words: its label (inside another field, its own there first:
    紧急情况's said is 居民说的紧急情况), Chinese keys as they are, else 其他信息."""
    if within and texts.has(f"console.fields.{within}_{key}"):
        return texts.get(f"console.fields.{within}_{key}")
    if texts.has(f"console.fields.{key}"):
        return texts.get(f"console.fields.{key}")
    return key if not key.isascii() else texts.get("console.fields.other")


@dataclass(frozen=True)
class Photo:
    """A resident's photo on a ticket page: its words (照片 1) and the address it opens at ('' when
    the browser may not open it: not http or https)."""

    text: str
    url: str

    def __str__(self) -> str:
        return self.text


def _photos(texts: Texts, value: list[Any]) -> list[Photo]:
    """A report's photos as links to open (WeChat's PicUrl), numbered: the page showed each as
    the raw record ({'media_id': …, 'pic_url': …})."""
    return [Photo(texts.get("console.fields.photo_n", n=n),
                  openable(str(p.get("pic_url") or "")) if isinstance(p, dict) else "")
            for n, p in enumerate(value, start=1)]


def _field_value(texts: Texts, key: str, value: Any, tz: str) -> str:
    """A collected value in words: codes (紧急程度 normal → 一般) and yes/no translated, a moment
    written out (a mediation's 调解时间) as the community's local time."""
    if isinstance(value, bool):
        return texts.get("console.fields.yes" if value else "console.fields.no")
    when = moment(value)
    if when is not None:
        return local(when, tz).strftime("%Y-%m-%d %H:%M")
    table = VALUE_LABELS.get(key)
    if table and texts.has(f"{table}.{value}"):
        return texts.get(f"{table}.{value}")
    if table == "console.advice" and isinstance(value, str) and value.isascii():
        return texts.get("console.advice.generic")  # an emergency code without words: never the code
    return str(value)


def _same_line(shown: str, whole: str) -> bool:
    """Whether shown is whole, or whole cut short (a hand-off's 居民说 lines are clipped with …)."""
    shown, whole = shown.strip(), whole.strip()
    if not shown or not whole:
        return False
    if shown == whole:
        return True
    cut = shown.removesuffix("…")
    return len(cut) >= 20 and whole.startswith(cut)


def unquoted(texts: Texts, summary: str | None, lines: tuple[str, ...]) -> tuple[str, ...]:
    """A hand-off's 居民 lines on its queue card less those its summary quotes already (居民说：…,
    clipped with … past 60 characters; an emergency's 【紧急】急病、摔伤：…): 我要转人工，我家楼上天天半夜装修
    was on the card twice."""
    head = texts.get("handoff.summary_said", said="\0").partition("\0")[0]
    quoted = [line for part in (summary or "").split(texts.get("handoff.summary_joiner")) if part.startswith(head)
              for line in part[len(head):].split(texts.get("handoff.said_joiner"))]
    urgent = re.escape(texts.get("handoff.urgent_summary", category="\0", said="\1"))
    found = re.fullmatch(urgent.replace(re.escape("\0"), ".*?").replace(re.escape("\1"), "(.*)"),
                         summary or "", re.S)
    if found:
        quoted.append(found.group(1))
    return tuple(line for line in lines if not any(_same_line(q, line) for q in quoted))


def shown_once(fields: dict[str, Any]) -> dict[str, Any]:
    """A hand-off's fields with each of the resident's lines once: 居民原话 (the message that asked
    for a person) is left out when it is one of 居民说（最近几条）, that line given whole in its place
    (the list keeps its order), the emergency's words left out of 紧急情况 when a line above
    shows them — 快来人啊 was on the page three times —, a line of 已收集信息 (the flow in hand)
    that is one of the resident's lines left out there, and an item of 紧急情况 that 已收集信息
    says already (问题类别：其他 twice)."""
    said = [str(x) for x in fields.get("said") or [] if isinstance(x, str)]
    text = str(fields.get("text") or "").strip()
    out = dict(fields)
    if text and said and any(_same_line(line, text) for line in said):
        out["said"] = [text if _same_line(line, text) else line for line in said]
        del out["text"]
    lines = [*out.get("said", []), *([out["text"]] if out.get("text") else [])]
    emergency = out.get("emergency")
    if isinstance(emergency, dict) and any(_same_line(str(emergency.get("said") or ""), line)
                                           or _same_line(line, str(emergency.get("said") or "")) for line in lines):
        out["emergency"] = emergency = {k: v for k, v in emergency.items() if k != "said"}
    collected = out.get("collected")
    if isinstance(collected, dict):
        out["collected"] = {k: v for k, v in collected.items()
                            if not (isinstance(v, str) and any(_same_line(line, v) for line in lines))}
        if isinstance(emergency, dict):
            out["emergency"] = {k: v for k, v in emergency.items()
                                if not (k != "advice" and v in collected.values())}
    return out


def _shown_elsewhere(fields: dict[str, Any], key: str, value: Any) -> bool:
    """Whether another field already shows this one (SHOWN_BY): a booking's start its 时间, a
    landmark or a unit its 地点 that names it."""
    other = fields.get(SHOWN_BY.get(key, ""))
    return bool(other) and (key not in SHOWN_AS or SHOWN_AS[key].format(value) in str(other))


def field_lines(texts: Texts, fields: dict[str, Any], reveal: bool,
                tz: str) -> list[tuple[str, list[str | Photo]]]:
    """What the dialog collected, as (label, lines) for the page; phones masked unless reveal."""
    lines: list[tuple[str, list[str | Photo]]] = []
    for key, value in shown_once(fields).items():
        if key in HIDDEN_FIELDS or value in (None, "", [], {}) or _shown_elsewhere(fields, key, value) or (
                key in SAID_WHEN_SO and value is False):
            continue
        shown: list[str | Photo]
        if key == "photos" and isinstance(value, list):
            shown = list(_photos(texts, value))
        elif isinstance(value, dict):
            shown = [f"{_field_label(texts, k, key)}：{_field_value(texts, k, v, tz)}" for k, v in value.items()]
        elif isinstance(value, list):
            shown = [_field_value(texts, key, v, tz) for v in value]
        else:
            shown = [_field_value(texts, key, value, tz)]
        lines.append((_field_label(texts, key), shown if reveal else [
            x if isinstance(x, Photo) else mask_phone(x) for x in shown]))
    return lines


def said_phone(story: list[queries.TimelineEntry]) -> str:
    """The resident's own phone number as they last wrote it in the conversation (我电话139…, not
    物业电话是138…: the classifier's phone slot), or ''. Only what they wrote or said: a shared link's
    or file's title (通知 13912345678) is not their number."""
    from bot.intents.classifier import get_classifier

    classifier = get_classifier()
    for entry in reversed(story):
        if entry.kind == "in" and entry.action in ("text", "voice") and entry.text and any(ch.isdigit() for ch in entry.text):
            found = classifier.extract_slots(entry.text).get("phone")
            if found:
                return str(found)
    return ""


def accept_miss_before_last_dispatch(story: list[queries.TimelineEntry]) -> bool:
    """Whether the ticket's 接单 miss belongs to an earlier dispatch: staff gave it on (派单 / 改派)
    after its last 接单 breach, so the 接单时限 shown is the new owner's own window, not the one missed."""
    breaches = [i for i, e in enumerate(story) if e.kind == "event" and e.action == "overdue"
                and (e.data or {}).get("limit") == "accept_breach"]
    given = [i for i, e in enumerate(story) if e.kind == "event" and e.action == "assign"]
    return bool(breaches and given) and given[-1] > breaches[-1]  # the story is in time (and id) order


def assignee_options(texts: Texts, people: list[Person], grids: list[Grid], ticket_grid: str | None,
                     kind: str) -> list[tuple[str, str]]:
    """The 派单 / 改派 choices as (id, words): each person with what they cover — a grid worker's
    grids, a provider's services, else their role — the ticket's own grid's workers first, marked
    本工单网格; a clerk handing on 8号楼's job could not tell 孙丽 from 王伟. The id is added only
    where two share a name."""
    covers: dict[str, list[Grid]] = {}
    for grid in grids:
        for worker in grid.workers or []:
            covers.setdefault(str(worker), []).append(grid)
    wanted = dispatch.ROLE_OF_KIND.get(kind)
    names = [p.name for p in people]
    options: list[tuple[bool, int, str, str]] = []
    for i, p in enumerate(people):
        roles = list(p.roles or [])
        mine = covers.get(p.id, []) if "grid_worker" in roles else []
        if mine:
            what = "、".join(g.name for g in mine)
        elif "provider" in roles and p.services:
            what = "、".join(str(x) for x in p.services)
        else:
            role = wanted if wanted in roles else next(iter(roles), "staff")
            what = texts.get(f"dispatch.roles.{role}") if texts.has(f"dispatch.roles.{role}") else role
        home = bool(ticket_grid) and any(g.id == ticket_grid for g in mine)
        words = f"{p.name}{'（' + p.id + '）' if names.count(p.name) > 1 else ''} · {what}"
        options.append((not home, i, p.id, words + ("（本工单网格）" if home else "")))
    return [(pid, words) for _, _, pid, words in sorted(options)]


def draft_key(user: ConsoleUser, number: str) -> str:
    """Where the browser keeps this user's unsent answer to a ticket (console.js, localStorage):
    per user, so another clerk on the same browser never sees it, and across logins."""
    return f"cb-draft:{user.user_id}:{user.username}:{number}"


@routes.get("/console")
@page("readonly")
async def queue_page(request: web.Request, user: ConsoleUser) -> web.StreamResponse:
    """The escalation queue: what needs a person now."""
    svc = services(request)
    newest = request.query.get("order") == "newest"
    now = svc.clock.now()
    async with svc.sessions() as session:
        items = [replace(i, said=unquoted(svc.texts, i.ticket.summary, i.said))
                 for i in await queries.queue(session, now, newest_first=newest)]
        total = await queries.queue_size(session, now)
        watched = await queries.watch(session, load_limits().duplicate_alert_reporters, now)
        shown = await queries.names(session)
    if user.can("staff"):  # phones whole: who saw whose is audited
        await phone_views.record(svc, user.username, "queue", [
            *(i.ticket for i in items if phone_views.shows_phone(i.ticket.summary, *i.said, *i.added)),
            *(t for t in watched if phone_views.shows_phone(t.summary)),
        ])
    return await render(request, "queue.html", {
        "items": items, "total": total, "names": shown, "newest": newest, "now": now, "watched": watched,
        "refresh_s": QUEUE_REFRESH_S,
    })


@routes.get("/console/tickets")
@page("readonly")
async def list_page(request: web.Request, user: ConsoleUser) -> web.StreamResponse:
    """Tickets with filters (kind, status, grid, assignee, overdue) and search (number, text)."""
    svc = services(request)
    filters = queries.Filters.parse(request.query)
    now = svc.clock.now()
    async with svc.sessions() as session:
        rows, total = await queries.ticket_list(session, filters, now)
        missed = await queries.missed_limits(session, rows, now)
        parents = await queries.parent_numbers(session, rows)
        grids, people = await queries.grids_and_people(session)
        shown = await queries.names(session)
    if user.can("staff"):
        await phone_views.record(svc, user.username, "list", [t for t in rows if phone_views.shows_phone(t.summary)])
    pages = max(1, ceil(total / queries.PAGE_SIZE))
    return await render(request, "tickets.html", {
        "tickets": rows, "total": total, "filters": filters, "pages": pages, "grids": grids, "people": people,
        "names": shown, "kinds": tickets.KINDS, "statuses": tickets.STATUSES, "parents": parents,
        "missed": missed, "limits": BREACH_KINDS, "export_limit": EXPORT_LIMIT,
        "query": {k: v for k, v in request.query.items() if k != "page"},
    })


@routes.get("/console/tickets/{number}")
@page("readonly")
async def ticket_page(request: web.Request, user: ConsoleUser) -> web.StreamResponse:
    """One ticket: details, the whole timeline, linked reports and the staff actions."""
    svc = services(request)
    number = request.match_info["number"]
    async with svc.sessions() as session:
        ticket = await tickets.get_by_number(session, number)
        if ticket is None:
            return await refuse(request, 404, svc.texts.get("staff_actions.unknown_ticket", number=number[:20]))
        story = await queries.timeline(session, ticket)
        linked = await queries.linked_reports(session, ticket)
        reporters = len(await staff_actions.reporters_of(session, ticket)) if linked else 0  # 答复全部 offered
        parent = await session.get(type(ticket), ticket.parent_id) if ticket.parent_id else None
        outlook = await staff_actions.reply_outlook(svc, session, ticket)
        via = staff_actions.channel_of(outlook)
        resident: Resident | None = await staff_actions.resident_of(session, ticket)
        failed = await queries.failed_pushes(session, ticket)
        missed = (await queries.missed_limits(session, [ticket], svc.clock.now())).get(ticket.id, ())
        trouble = (await queries.owner_trouble(session, [ticket])).get(ticket.id, ())
        assignable = assignee_options(svc.texts, await staff_actions.assignable_people(session, ticket.kind),
                                      list(await session.scalars(select(Grid).order_by(Grid.id))), ticket.grid, ticket.kind)
        shown = await queries.names(session)
        seen_answer = await queries.last_answer_id(session, ticket)
        theirs = await queries.resident_tickets(session, ticket)
        # what a hand-off's resident wrote since it opened, as its queue card shows it (居民补充)
        added = (await queries.additions(session, [ticket])).get(ticket.id, ()) if ticket.kind == "handoff" else ()
    draft = await auth.take_draft(svc, user, ticket.number) if user.can("staff") else ""
    sent = await auth.take_sent(svc, user, ticket.number) if user.can("staff") else False
    offered = staff_actions.LINKED_ACTIONS if parent is not None else staff_actions.STAFF_ACTIONS  # a linked report follows its job
    allowed = [a for a in offered if a != "assign" and ticket.status in tickets.TRANSITIONS[a].sources
               and (a != "accept" or ticket.assignee)]  # 接单 is an owner's: nobody's ticket is 派单 or answered
    reveal = user.can("staff")  # staff call residents back; read-only users see phones masked
    phone = resident.phone if resident is not None and resident.phone else ""
    collected = str((ticket.fields or {}).get("phone") or "")
    # None registered: the one collected on this ticket (居民电话 — above 联系电话 139… read as no
    # number), else the one the resident wrote in the chat (a hand-off: 我电话139…), so the clerk
    # calling back need not read through the conversation for it.
    given = "" if phone else collected
    spoken = "" if phone or collected else said_phone(story)
    # 联系电话 is listed only when it is another number than 居民电话's.
    listed = {k: v for k, v in (ticket.fields or {}).items() if k != "phone" or (phone and v != phone)}
    phone, given, spoken = (phone, given, spoken) if reveal else (mask_phone(phone), mask_phone(given), mask_phone(spoken))
    fields = field_lines(svc.texts, listed, reveal, svc.tz)
    if reveal:  # who saw this resident's whole phone (or a neighbour's, in a linked report's summary)
        own = phone_views.shows_phone(phone, given, spoken, ticket.summary, ticket.rating_comment, *added,
                                      [str(x) for _, lines in fields for x in lines],
                                      [e.text for e in story], [f.text for f in failed])
        await phone_views.record(svc, user.username, "ticket", [
            *([ticket] if own else []), *(t for t in linked if phone_views.shows_phone(t.summary)),
        ])
    return await render(request, "ticket.html", {
        "ticket": ticket, "timeline": story, "linked": linked, "parent": parent, "via": via, "all_reporters": reporters,
        "via_key": outlook, "failed": failed, "missed": missed, "owner_left": "owner_left" in trouble,
        "accept_missed_before": "accept_breach" in missed and accept_miss_before_last_dispatch(story),
        "resident_phone": phone, "given_phone": given, "said_phone": spoken, "assignable": assignable, "names": shown, "actions": allowed,
        "can_assign": parent is None and ticket.status in tickets.TRANSITIONS["assign"].sources,
        "canned": [(c.title, c.for_ticket(ticket.number)) for c in load_canned()],
        "max_reply": staff_actions.MAX_REPLY_CHARS, "draft": draft,
        "draft_key": draft_key(user, ticket.number), "draft_sent": sent,
        "seen_answer": seen_answer,  # a colleague's later answer holds this one back
        "resident_tickets": theirs,
        "fields": fields, "added": added,
    })


@page("readonly")
async def no_page(request: web.Request, user: ConsoleUser) -> web.StreamResponse:
    """A console address that is no page (a typo, an old bookmark, a form's address opened): the
    console's own 404 in words, not the server's bare English 404: Not Found / 405."""
    return await refuse(request, 404, services(request).texts.get("console.errors.no_page"))
