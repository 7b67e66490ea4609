"""How a ticket reads in a push: the worker's text card, the staff group's markdown, short labels.

Resident text is escaped for each medium (HTML for text cards, markdown for the group robot),
phone numbers are masked, and each payload is kept within the platform's size limit.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from bot.clock import local
from bot.privacy import mask_phone
from bot.services import Services
from storage.models import Ticket

CARD_DESCRIPTION_MAX_BYTES = 512  # WeCom text card description limit
STAFF_NOTE_CLIP = 40  # characters of staff's 派单 note on a card (the 事项 gives way first)
MARKDOWN_MAX_BYTES = 4096  # WeCom group robot markdown limit
_MD_SPECIAL = str.maketrans({
    "[": "［", "]": "］", "(": "（", ")": "）", "*": "＊", "_": "＿", "#": "＃", ">": "＞",
    "<": "＜", "`": "｀", "&": "＆", "~": "～", "|": "｜", "\\": "＼", "\r": " ", "\n": " ",
})
# A long run of digits in resident text may be a number to keep private (an ID, a card); a ticket
# number (20261123-0001) is not one and is left whole, so staff posts can name the ticket.
_LONG_DIGITS = re.compile(r"(?<!\d)\d{7,}(?!\d)(?!-\d{4}(?!\d))")


def masked_phone(phone: str | None) -> str | None:
    """A phone number safe to push: mask_phone, and any other long digit run masked too."""
    if not phone:
        return None
    value = mask_phone(phone.strip())
    return _LONG_DIGITS.sub(lambda m: m.group(0)[:3] + "****" + m.group(0)[-2:], value)


def safe_text(text: str) -> str:
    """Resident text with phone numbers masked (for pushes and logs)."""
    return _LONG_DIGITS.sub(lambda m: m.group(0)[:3] + "****" + m.group(0)[-2:], mask_phone(text))


def md_escape(text: str) -> str:
    """Resident text made inert for WeCom markdown (markup characters become full-width)."""
    return safe_text(text).translate(_MD_SPECIAL)


def short_number(number: str) -> str:
    """The part of a ticket number a worker types: '20261123-0007' → '0007'."""
    return number.rsplit("-", 1)[-1]


def ref_forms(number: str) -> tuple[str, ...]:
    """What a worker may type for a ticket number, shortest first: 0001, 1124-0001, 20261124-0001."""
    day, _, seq = number.partition("-")
    if len(day) != 8 or not day.isdigit() or not seq.isdigit():
        return (number,)
    return (seq, f"{day[4:]}-{seq}", number)


def worker_ref(number: str, others: Iterable[str]) -> str:
    """The shortest form of number a worker can type that none of others (the worker's other
    tickets in hand) shares: 0001 when it is their only 0001, else 1124-0001, else the whole number."""
    taken = {form for other in others if other != number for form in ref_forms(other)}
    return next((form for form in ref_forms(number) if form not in taken), number)


def kind_label(svc: Services, kind: str) -> str:
    """The Chinese name of a ticket kind."""
    key = f"dispatch.kinds.{kind}"
    return svc.texts.get(key) if svc.texts.has(key) else kind


def urgency_label(svc: Services, urgency_class: str) -> str:
    """The Chinese name of an urgency class, with its limit."""
    key = f"dispatch.urgency.{urgency_class}"
    return svc.texts.get(key) if svc.texts.has(key) else urgency_class


def role_label(svc: Services, roles: list[Any]) -> str:
    """How a resident hears of the owner's role: 网格员, 调解员 …"""
    for role in roles:
        key = f"dispatch.roles.{role}"
        if svc.texts.has(key):
            return svc.texts.get(key)
    return svc.texts.get("dispatch.roles.staff")


def local_time(svc: Services, when: datetime | None) -> str:
    """A due time as people read it: 11月23日 12:00 (local)."""
    if when is None:
        return "-"
    return local(when, svc.tz).strftime("%m月%d日 %H:%M")


def _said_address(ticket: Ticket) -> str:
    """A building (with its unit and flat) a mediation's resident named in the matter (我家3号楼2单元
    502，楼上602 → 3号楼2单元502), else ''."""
    from bot.flows.parsers import address_parts

    said = (ticket.fields or {}).get("issue")
    parts = address_parts(said) if isinstance(said, str) and said.strip() else {}
    if "building" not in parts:
        return ""
    return f"{parts['building']}号楼" + (f"{parts['unit']}单元" if parts.get("unit") else "") + (parts.get("room") or "")


def place_known(svc: Services, ticket: Ticket) -> str:
    """Where the problem is, when known: the place the resident gave, else (a mediation) the
    building and flat named in the matter, else the building; '' when nothing says."""
    fields = ticket.fields or {}
    for key in ("place", "address", "location"):
        value = fields.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
    said = _said_address(ticket) if ticket.kind == "mediation" else ""
    if said and (not ticket.building or said.startswith(f"{ticket.building}号楼")):
        return said
    if ticket.building:
        return f"{ticket.building}号楼"
    return ""


def place_of(svc: Services, ticket: Ticket) -> str:
    """Where the problem is (place_known); a mediation whose place nobody said reads as its
    parties (与邻居; else 矛盾调解), anything else as 未说明."""
    known = place_known(svc, ticket)
    if known:
        return known
    if ticket.kind == "mediation":
        party = (ticket.fields or {}).get("party")
        if isinstance(party, str) and party.strip() and party.strip() != "其他":
            return svc.texts.get("dispatch.mediation_parties", party=party.strip())
        return kind_label(svc, ticket.kind)
    return svc.texts.get("dispatch.no_place")


def what_of(ticket: Ticket) -> str:
    """What happened, in the resident's words (summary, else the description fields)."""
    if ticket.summary.strip():
        return ticket.summary.strip()
    fields = ticket.fields or {}
    for key in ("description", "detail", "issue", "what", "service", "text"):
        value = fields.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return ""


def matter_of(ticket: Ticket) -> str:
    """what_of without the place a report's summary carries (照明｜3栋2单元｜灯不亮 → 照明｜灯不亮), for
    a push with a place line of its own."""
    what = what_of(ticket)
    place = (ticket.fields or {}).get("place")
    parts = what.split("｜")
    if isinstance(place, str) and place.strip() and len(parts) >= 3 and parts[1].strip() == place.strip():
        return "｜".join(p for p in (parts[0], *parts[2:]) if p.strip())
    return what


def clip(text: str, limit: int) -> str:
    """text cut to limit characters, an ellipsis ending what was cut."""
    return text if len(text) <= limit else text[: max(limit - 1, 0)] + "…"


def topic_of(svc: Services, ticket: Ticket, limit: int = 16) -> str:
    """What a ticket is about in a worker's list of tickets: a report's kind of problem and the
    resident's words, masked and clipped (水电气暖：3号楼停水了), so that a building's water cut is told
    from a flat's leak at the same building; another kind's name (矛盾调解)."""
    kind = kind_label(svc, ticket.kind)
    if ticket.kind != "complaint":
        return kind
    words = (ticket.fields or {}).get("description")
    words = words.strip() if isinstance(words, str) else ""
    category = ticket.category or kind
    return svc.texts.get("wecom.mine_topic", category=category, what=clip(safe_text(words), limit)) if words else category


def delivery_said(text: str) -> bool:
    """Whether words ask for a booked service brought home (送到家, 送上门: config/flows.toml
    [elderly] delivery_words)."""
    from bot.flows.config import words  # config only: the flows package is not imported here

    said = "".join(str(text or "").split())
    return bool(said) and any(word in said for word in words("elderly", "delivery_words"))


def delivery_asked(ticket: Ticket) -> bool:
    """Whether an elderly-service booking asks for the service brought home: said in the opening
    (fields.delivery), or in the request or the care note it kept (午饭送到家里 少放盐)."""
    return ticket.kind == "elderly_service" and delivery_in(ticket.fields or {})


def delivery_in(fields: dict[str, Any]) -> bool:
    """Whether a booking's fields (or its dialog's slots, before it is written) ask for the service
    brought home: fields.delivery, or delivery words in the request or the care note."""
    return fields.get("delivery") is True or any(
        delivery_said(str(fields.get(key) or "")) for key in ("request", "notes"))


def dispatch_card(
    svc: Services, ticket: Ticket, phone: str | None, urgency_class: str, *, photos: int = 0,
    short: str | None = None, staff_note: str = "", said: str = "",
) -> dict[str, Any]:
    """The WeCom text card a worker gets for a new ticket (kind, place, what, urgency, due, phone,
    and how many of the resident's photos follow it as images); short: the number as the worker
    types it (worker_ref: 0001, or 1124-0001 when another ticket of theirs ends 0001 too);
    staff_note: what staff wrote to the owner with their 派单 / 改派 (服务中心交代：…); said: a
    hand-off's resident's own words (居民说：…), after what it is."""
    t = svc.texts
    short = short or short_number(ticket.number)
    # A mediation whose place nobody said has no 地点 line (its 事项 names the parties), nor a
    # volunteer signup (a person to approve, no place to go: it read 地点：未说明).
    known = place_known(svc, ticket) if ticket.kind in ("mediation", "volunteer_signup") else place_of(svc, ticket)
    place = html.escape(clip(safe_text(known), 30))
    head = [
        # A job given on past its 办结 limit (staff reassigning keeps the limit): already late.
        t.get("dispatch.card_due_past" if ticket.due_at is not None and ticket.due_at <= svc.clock.now()
              else "dispatch.card_due", due=local_time(svc, ticket.due_at), urgency=urgency_label(svc, urgency_class)),
        # a booking to be brought home says so with where (送到家：5号楼1单元301), as the provider must go there
        t.get("dispatch.card_delivery", place=place or t.get("dispatch.no_place")) if delivery_asked(ticket)
        else t.get("dispatch.card_place", place=place) if place else "",
    ]
    tail = [t.get("dispatch.card_phone", phone=html.escape(masked_phone(phone) or t.get("dispatch.no_phone")))]
    if staff_note.strip():
        tail.insert(0, t.get("dispatch.card_staff_note", note=html.escape(clip(safe_text(staff_note), STAFF_NOTE_CLIP))))
    if photos:
        tail.append(t.get("dispatch.card_photos", count=photos))
    if ticket.reporters > 1:
        tail.append(t.get("dispatch.card_reporters", count=ticket.reporters))
    # A volunteer signup's 办结 approves it and 退回 declines it (dispatch._decide_signup): say so.
    tail.append(t.get("dispatch.card_howto_signup" if ticket.kind == "volunteer_signup" else "dispatch.card_howto",
                      short=short))
    what = safe_text(matter_of(ticket))  # its place is the 地点 line
    if said.strip():  # a hand-off given to a worker: what the resident said, not only 居民要求人工服务
        what = t.get("dispatch.card_said", what=what, said=safe_text(said.strip()))
    description = ""
    for limit in (*range(120, 0, -10), 0):  # the longest 事项 that fits (from 80 it fell to 40: a care note cut)
        lines = [f'<div class="gray">{head[0]}</div>'] + ([f'<div class="normal">{head[1]}</div>'] if head[1] else [])
        if what and limit:
            clipped = html.escape(clip(what, limit))
            lines.append(f'<div class="normal">{t.get("dispatch.card_what", what=clipped)}</div>')
        lines += [f'<div class="normal">{x}</div>' for x in tail[:-1]]
        lines.append(f'<div class="highlight">{tail[-1]}</div>')
        description = "".join(lines)
        if len(description.encode("utf-8")) <= CARD_DESCRIPTION_MAX_BYTES:
            break
    return {
        "msgtype": "textcard",
        "title": t.get("dispatch.card_title", number=ticket.number, kind=kind_label(svc, ticket.kind)),
        "description": description,
        "url": f"{svc.settings.self_url}/console/tickets/{ticket.number}",
        "btntxt": t.get("dispatch.card_button"),
    }


def staff_markdown(
    svc: Services, ticket: Ticket, reason: str, assignee_name: str | None, *, urgent: bool = False
) -> str:
    """The staff group's markdown for a ticket that needs a person (escaped, masked, ≤ 4 KiB);
    urgent: titled 【紧急】."""
    t = svc.texts
    what = md_escape(matter_of(ticket))  # the place has its own line
    limit = 300
    while True:
        lines = [
            t.get("staff_group.title_urgent" if urgent else "staff_group.title", number=ticket.number),
            t.get("staff_group.kind", kind=kind_label(svc, ticket.kind)),
            t.get("staff_group.place", place=clip(md_escape(place_of(svc, ticket)), 60)),
        ]
        if what:
            lines.append(t.get("staff_group.what", what=clip(what, limit)))
        lines.append(t.get("staff_group.reason", reason=clip(md_escape(reason), limit)))
        lines.append(t.get("staff_group.reporters", count=ticket.reporters))
        if assignee_name:
            lines.append(t.get("staff_group.assignee", name=md_escape(assignee_name)))
        lines.append(t.get("staff_group.link", url=f"{svc.settings.self_url}/console/tickets/{ticket.number}"))
        content = "\n".join(lines)
        if len(content.encode("utf-8")) <= MARKDOWN_MAX_BYTES or limit <= 10:
            return content
        limit //= 2


def staff_addendum_markdown(svc: Services, ticket: Ticket, text: str, *, chases: int = 0) -> str:
    """The staff group's markdown for what a resident wrote while waiting for a person (escaped,
    masked, clipped): who is waiting on which ticket, and where to answer; chases: the text is the
    resident's chase, the how-many-th (titled 居民催促（第 N 次）)."""
    t = svc.texts
    return "\n".join([
        t.get("staff_group.chase_title", number=ticket.number, count=chases) if chases
        else t.get("staff_group.addendum_title", number=ticket.number),
        t.get("staff_group.place", place=clip(md_escape(place_of(svc, ticket)), 60)),
        t.get("staff_group.chase" if chases else "staff_group.addendum", text=clip(md_escape(text), 300)),
        t.get("staff_group.link", url=f"{svc.settings.self_url}/console/tickets/{ticket.number}"),
    ])
