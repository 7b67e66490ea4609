"""Putting pushes on the outbox, in the caller's transaction; bot/channels/push.py sends them.

Channels and payloads:
- "wechat" → target openid; payload {"text": str, "template": {"title": str, "fields": {k: v}}?}.
  Sent as a customer-service message inside the resident's 48-hour window, else as a template
  message (template built from payload["template"], or from the text).
- "wecom" → target WeCom userid; payload {"msgtype": "text", "text": str} or
  {"msgtype": "textcard", "title": str, "description": str, "url": str, "btntxt": str} or
  {"msgtype": "image", "photo": str, "number": str}: a resident's photo, by its official-account
  MediaId, fetched from WeChat and uploaded to WeCom at send time (bot/channels/photos.py); an
  expired one becomes a text naming the ticket.
- "group" → target "staff"; payload {"msgtype": "markdown", "content": str} (batched, ≤20/min).

not_before: the earliest time a push may go; the bot's own pushes that are not urgent carry the
end of the quiet hours they are queued in (`schedule.held_until`), a staff answer none.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, insert, text
from sqlalchemy.ext.asyncio import AsyncSession

from storage import fastsql
from storage.fastsql import Prepared
from storage.models import OutboxItem

CHANNELS = ("wechat", "wecom", "group")


_OUTBOX = OutboxItem.__table__
_COLUMNS = ("channel", "target", "payload", "dedup_key", "ticket_id", "urgent", "state", "attempts",
            "next_attempt_at", "created_at")
# Fixed statements (storage.fastsql: written at once, without the unit of work; pushes are never
# changed here), run on the driver itself in a message's transaction.
_INSERT = Prepared(insert(_OUTBOX).values({c: bindparam(c) for c in _COLUMNS}).returning(_OUTBOX.c.id))
# A push with a dedup key in one statement: no row (and no id back) when the key was queued before
# (the unique dedup_key). Text, as SQLite and PostgreSQL spell ON CONFLICT alike.
_INSERT_ONCE = Prepared(text(
    f"INSERT INTO outbox ({', '.join(_COLUMNS)}) VALUES ({', '.join(':' + c for c in _COLUMNS)}) "
    "ON CONFLICT (dedup_key) DO NOTHING RETURNING id"
).bindparams(*(bindparam(c, type_=_OUTBOX.c[c].type) for c in _COLUMNS)).columns(_OUTBOX.c.id))


async def enqueue(
    session: AsyncSession,
    channel: str,
    target: str,
    payload: dict[str, Any],
    *,
    now: datetime,
    ticket_id: int | None = None,
    dedup_key: str | None = None,
    urgent: bool = False,
    not_before: datetime | None = None,
) -> OutboxItem | None:
    """Write a push in the caller's transaction (committed with it); None when dedup_key was
    queued before. The returned item carries its id and is not tracked by the session."""
    if channel not in CHANNELS:
        raise ValueError(f"unknown outbox channel {channel!r}")
    values: dict[str, Any] = {
        "channel": channel,
        "target": target,
        "payload": payload,
        "dedup_key": dedup_key,
        "ticket_id": ticket_id,
        "urgent": urgent,
        "state": "pending",
        "attempts": 0,
        "next_attempt_at": not_before or now,
        "created_at": now,
    }
    rows = (await fastsql.run(session, _INSERT if dedup_key is None else _INSERT_ONCE, values)).rows
    if not rows:
        return None
    return fastsql.loaded(OutboxItem, {"id": rows[0]["id"], **values})


async def push_resident(
    session: AsyncSession, openid: str, text: str, *, now: datetime, **kwargs: Any
) -> OutboxItem | None:
    """Queue a message to a resident's chat."""
    return await enqueue(session, "wechat", openid, {"text": text}, now=now, **kwargs)


async def push_worker(
    session: AsyncSession, userid: str, text: str, *, now: datetime, **kwargs: Any
) -> OutboxItem | None:
    """Queue a WeCom app text message to a worker or staff member."""
    return await enqueue(session, "wecom", userid, {"msgtype": "text", "text": text}, now=now, **kwargs)


async def push_photo(
    session: AsyncSession, userid: str, media_id: str, number: str, *, now: datetime, **kwargs: Any
) -> OutboxItem | None:
    """Queue a resident's photo (official-account MediaId) to a worker, as a WeCom image message."""
    payload = {"msgtype": "image", "photo": media_id, "number": number}
    return await enqueue(session, "wecom", userid, payload, now=now, **kwargs)


async def push_group(
    session: AsyncSession, markdown: str, *, now: datetime, **kwargs: Any
) -> OutboxItem | None:
    """Queue a markdown post to the staff group robot."""
    return await enqueue(
        session, "group", "staff", {"msgtype": "markdown", "content": markdown}, now=now, **kwargs
    )
