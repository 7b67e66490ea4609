"""Whether a person is awaited (every opening that is no emergency asks) and who has a ticket
(every status line) are read on the driver (storage.fastsql.read), not through the ORM, yet see
what an ORM query would: the transaction's changes not yet flushed count. A message that used no
session opens none for them. On both backends."""

from __future__ import annotations

import pytest
from sqlalchemy import select, update

from bot.flows import handoff, status
from bot.services import Services
from storage import fastsql
from storage.message_tx import InlineTx
from storage.models import Person, Ticket
from tests.conftest import WeChat
from tests.wecom_driver import load_demo_roster, new_ticket


@pytest.fixture
async def svc(services: Services) -> Services:
    await load_demo_roster(services)
    return services


async def test_a_hand_off_closed_in_the_same_transaction_is_awaited_no_longer(svc: Services) -> None:
    made = (await new_ticket(svc, kind="handoff", resident="oWait", category=None, summary="转人工")).ticket
    async with svc.sessions() as session, session.begin():
        ticket = await session.get(Ticket, made.id)
        assert ticket is not None
        ticket.status = "escalated"
    params = {"openid": "oWait", "since": svc.clock.now()}
    async with svc.sessions.message() as tx:
        found = await fastsql.read(tx, handoff._AWAITED, params)
        assert [row["id"] for row in found] == [made.id]
        if isinstance(tx, InlineTx):
            assert not tx.session_used  # the read opened no session for the message
        ticket = await tx.session.get(Ticket, made.id)
        assert ticket is not None
        ticket.status = "closed"  # not flushed yet
        assert await fastsql.read(tx, handoff._AWAITED, params) == []


async def test_an_owner_who_left_the_roster_in_the_same_transaction_is_not_named(svc: Services) -> None:
    made = (await new_ticket(svc, resident="oOwner", building="5", category="照明")).ticket
    assert made.assignee == "lina"
    async with svc.sessions() as session, session.begin():
        assert await fastsql.read(session, status._OWNER_NAME, {"id": "lina"}) == [{"name": "李娜"}]
        lina = await session.get(Person, "lina")
        assert lina is not None
        lina.active = False  # not flushed yet
        assert await fastsql.read(session, status._OWNER_NAME, {"id": "lina"}) == []


async def test_the_status_line_names_the_owner_while_in_the_roster(wx: WeChat, services: Services) -> None:
    for answer in ["1", "1", "9栋1单元", "楼道灯不亮三天了", "好了", "13812345678", "否", "1"]:
        await wx.say("oLine", answer)
    assert "孙丽" in await wx.say("oLine", "20261123-0001 怎么样了")
    async with services.sessions() as session, session.begin():
        owner = (await session.scalars(select(Ticket.assignee).where(Ticket.number == "20261123-0001"))).one()
        await session.execute(update(Person).where(Person.id == owner).values(active=False))
    line = await wx.say("oLine", "20261123-0001 怎么样了")
    assert line.startswith("【20261123-0001】") and "孙丽" not in line
