"""Who saw a resident's whole phone number: staff see them whole (they call residents back), and
every console page or /api read that shows one to a person is audited, without the number."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from bot.privacy import hash_openid, mask_phone
from bot.services import Services
from bot.staff_actions import audit
from storage.models import Ticket

# One row per person, ticket and place in this window: the queue page reloads itself every
# minute, and a clerk answering a resident comes back to the ticket page after each action.
PHONE_VIEW_WINDOW_S = 1800
_WIDE_DIGITS = str.maketrans("０１２３４５６７８９", "0123456789")


def shows_phone(*texts: Any) -> bool:
    """Whether any of these texts (strings, or JSON-like values walked) holds a phone number that
    bot.privacy.mask_phone would mask."""
    for text in texts:
        if text is None or text == "":
            continue
        plain = (text if isinstance(text, str) else json.dumps(text, ensure_ascii=False)).translate(_WIDE_DIGITS)
        if mask_phone(plain) != plain:
            return True
    return False


async def record(svc: Services, actor: str, where: str, shown: Iterable[Ticket]) -> None:
    """Audit `ticket.phone_view` for each ticket whose resident's whole phone number `actor` was
    shown at `where` (queue, list, ticket, api): target the ticket's number, the resident as a
    hash, never the number itself; at most once per person, ticket and place in PHONE_VIEW_WINDOW_S."""
    fresh: list[Ticket] = []
    for ticket in {t.id: t for t in shown}.values():
        key = svc.store.key("console", "phone_view", actor, where, str(ticket.id))
        if await svc.store.set_if_absent(key, 1, ttl=PHONE_VIEW_WINDOW_S):
            fresh.append(ticket)
    if not fresh:
        return
    async with svc.sessions() as session, session.begin():
        now = svc.clock.now()
        for ticket in fresh:
            audit(session, actor, "ticket.phone_view", ticket.number, now,
                  {"page": where, "resident": hash_openid(ticket.resident) if ticket.resident else None})
