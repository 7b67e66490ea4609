"""Volunteer records (志愿者, 党员报到): written only with the resident's consent to keep them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

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


async def volunteer_of(session: AsyncSession, openid: str) -> Volunteer | None:
    """The resident's volunteer record, if one is kept."""
    return await session.scalar(select(Volunteer).where(Volunteer.openid == openid).order_by(Volunteer.id))


async def save_volunteer(
    session: AsyncSession, *, openid: str, form: VolunteerForm, ticket_id: int | None, now: datetime
) -> Volunteer | None:
    """Create or update the resident's record (status pending until the coordinator approves).

    Without consent nothing is kept: None is returned and an existing record is left as it was."""
    if not form.consent:
        return None
    if not form.name.strip() or not form.phone.strip():
        raise ValueError("a volunteer record needs a name and a phone")
    record = await volunteer_of(session, openid)
    if record is None:
        record = Volunteer(openid=openid, created_at=now, hours=0.0)
        session.add(record)
    record.ticket_id = ticket_id
    record.name = form.name.strip()
    record.phone = form.phone.strip()
    record.skills = form.skills
    record.availability = form.availability
    record.areas = list(form.areas)
    record.party_member = form.party_member
    record.consent = True
    if record.status != "approved":
        record.status = "pending"
    await session.flush()
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
