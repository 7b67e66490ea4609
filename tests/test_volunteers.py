"""Volunteer records: kept only with consent, updated in place, erased on request (both backends)."""

from __future__ import annotations

from sqlalchemy import func, select

from bot.services import Services
from bot.volunteers import VolunteerForm, erase_volunteer, save_volunteer, volunteer_of
from storage.models import Volunteer

FORM = VolunteerForm(
    name="王芳", phone="13812345678", skills="会理发", availability="周末上午", areas=("助老", "文化"),
    party_member=True, consent=True,
)


async def test_a_record_is_kept_only_with_consent(services: Services) -> None:
    now = services.clock.now()
    async with services.sessions() as session, session.begin():
        refused = await save_volunteer(session, openid="o_v", form=FORM.__class__(**{**FORM.__dict__, "consent": False}),
                                       ticket_id=None, now=now)
        assert refused is None
        assert await session.scalar(select(func.count(Volunteer.id))) == 0
        kept = await save_volunteer(session, openid="o_v", form=FORM, ticket_id=None, now=now)
        assert kept is not None and kept.status == "pending" and kept.consent and kept.party_member
        assert kept.areas == ["助老", "文化"] and kept.phone == "13812345678"


async def test_signing_up_again_updates_the_same_record(services: Services) -> None:
    now = services.clock.now()
    async with services.sessions() as session, session.begin():
        first = await save_volunteer(session, openid="o_v", form=FORM, ticket_id=None, now=now)
        assert first is not None
        first.status = "approved"
        again = VolunteerForm(**{**FORM.__dict__, "areas": ("巡逻",), "party_member": False})
        second = await save_volunteer(session, openid="o_v", form=again, ticket_id=None, now=now)
        assert second is not None and second.id == first.id
        assert second.areas == ["巡逻"] and second.status == "approved" and not second.party_member
    async with services.sessions() as session, session.begin():
        assert await erase_volunteer(session, "o_v") == 1
        assert await volunteer_of(session, "o_v") is None


async def test_a_record_needs_a_name_and_a_phone(services: Services) -> None:
    import pytest

    async with services.sessions() as session, session.begin():
        with pytest.raises(ValueError, match="name and a phone"):
            await save_volunteer(session, openid="o_v", form=VolunteerForm(**{**FORM.__dict__, "phone": " "}),
                                 ticket_id=None, now=services.clock.now())
