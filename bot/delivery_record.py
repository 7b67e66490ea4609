"""A WeCom delivery's record, written in the same transaction as what its command changed.

WeCom retries a callback it got no answer to; the state store answers those retries, and behind
it the database's record of each delivery (InboundDedup) answers the ones the store forgot (Redis
restarted empty). Written after the command, that record left a window: a process stopped
between the command's commit and the record's would run the command again on the retry (a note
added twice, a 回复 pushed to the resident twice). A command's writing transaction therefore adds
the record itself (`record`), so the two commit together or not at all; a second handling of the
same delivery then fails on the record's key before anything it did is kept.

Outside a WeCom delivery (the console calls the same staff actions) `record` does nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import InboundDedup


@dataclass
class Pending:
    """The delivery being handled: its key, and what its record says once a transaction added it."""

    key: str
    now: datetime
    provisional: str  # the answer on record until the command's own reply is known
    added: bool = False
    reply: str | None = None


_CURRENT: ContextVar[Pending | None] = ContextVar("wecom_delivery", default=None)


@contextmanager
def recording(key: str, now: datetime, provisional: str) -> Iterator[Pending]:
    """Handle one delivery: transactions that call `record` meanwhile carry its record."""
    pending = Pending(key, now, provisional)
    token = _CURRENT.set(pending)
    try:
        yield pending
    finally:
        _CURRENT.reset(token)


def record(session: AsyncSession, reply: str | None = None) -> None:
    """Add the delivery's record to session, the command's writing transaction, with reply (or
    the provisional answer when the reply is composed after the transaction). Call it last in
    the transaction: a command that fails before it leaves no record, and its retry runs."""
    pending = _CURRENT.get()
    if pending is None or pending.added:
        return
    pending.reply = pending.provisional if reply is None else reply
    session.add(InboundDedup(key=pending.key, reply=pending.reply, created_at=pending.now))
    pending.added = True
