"""Volunteer records (志愿者, 党员报到): written only with the resident's consent to keep them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage import fastsql
from storage.fastsql import Prepared, Transaction
from storage.models import Volunteer


REGISTERED = ("pending", "approved")  # a record that counts as signed up (rejected: may sign up anew)


@dataclass(frozen=True)
class VolunteerForm:
    """What a resident said when signing up."""

    name: str
    phone: str
    skills: str | None
    availability: str | None
    areas: tuple[str, ...]
    party_member: bool
    consent: bool


_V = Volunteer.__table__
# The resident's record (its whole row) and a new record, on the driver (storage.fastsql): a
# signup's 确认 read it twice and inserted it through the ORM, and 我想当志愿者 read it too.
_RECORD = Prepared(select(_V).where(_V.c.openid == bindparam("openid")).order_by(_V.c.id).limit(1))
_COLUMNS = tuple(c.key for c in _V.c if c.key != "id")
_INSERT = Prepared(insert(_V).values({c: bindparam(c) for c in _COLUMNS}).returning(_V.c.id))


async def volunteer_row(target: AsyncSession | Transaction, openid: str) -> dict[str, Any] | None:
    """The resident's volunteer record as its row (column → value), if one is kept: read on the
    driver after the session's pending changes, as an ORM query would see them."""
    rows = await fastsql.read(target, _RECORD, {"openid": openid})
    return rows[0] if rows else None


async def volunteer_of(session: AsyncSession, openid: str) -> Volunteer | None:
    """The resident's volunteer record, if one is kept (the session's object)."""
    row = await volunteer_row(session, openid)
    return fastsql.adopt(session, Volunteer, row) if row is not None else None


async def save_volunteer(
    session: AsyncSession, *, openid: str, form: VolunteerForm, ticket_id: int | None, now: datetime
) -> Volunteer | None:
    """Create or update the resident's record (status pending until the coordinator approves).

    Without consent nothing is kept: None is returned and an existing record is left as it was."""
    if not form.consent:
        return None
    if not form.name.strip() or not form.phone.strip():
        raise ValueError("a volunteer record needs a name and a phone")
    values: dict[str, Any] = {
        "ticket_id": ticket_id, "name": form.name.strip(), "phone": form.phone.strip(), "skills": form.skills,
        "availability": form.availability, "areas": list(form.areas), "party_member": form.party_member,
        "consent": True,
    }
    record = await volunteer_of(session, openid)
    if record is None:  # one INSERT on the driver, the row handed to the session as if loaded
        values.update(openid=openid, status="pending", hours=0.0, created_at=now)
        record_id = (await fastsql.run(session, _INSERT, values)).rows[0]["id"]
        return fastsql.adopt(session, Volunteer, {"id": record_id, **values})
    for key, value in values.items():
        setattr(record, key, value)
    if record.status != "approved":
        record.status = "pending"
    await fastsql.flush(session)  # the changed columns, one UPDATE
    return record


async def decide(session: AsyncSession, openid: str, ticket_id: int, status: str) -> Volunteer | None:
    """The coordinator's decision on the resident's signup of ticket_id: "approved", or "rejected"
    (the resident may then sign up again); None when no record came from that signup."""
    if status not in ("approved", "rejected"):
        raise ValueError(f"a signup is approved or rejected, not {status!r}")
    record = await session.scalar(
        select(Volunteer).where(Volunteer.openid == openid, Volunteer.ticket_id == ticket_id).order_by(Volunteer.id)
    )
    if record is not None:
        record.status = status
    return record


async def erase_volunteer(session: AsyncSession, openid: str) -> int:
    """Remove the resident's volunteer record(s); returns how many."""
    result = await session.execute(delete(Volunteer).where(Volunteer.openid == openid))
    return int(result.rowcount or 0)
