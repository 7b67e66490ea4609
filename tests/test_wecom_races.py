"""An owner's WeCom command racing another change of the same ticket: staff 改派 from another
process (a second bot worker, the console, `roster import`) committed between the command's read
of the ticket and its write. The command's status change is a compare-and-set on the status and
owner it read, so the other change is never overwritten, and the owner hears what happened
instead. Both backends; the other change runs on services of its own (its own engine, as another
process would), at the moment the command takes its row lock."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from bot import staff_actions, tickets
from bot.clock import FakeClock
from bot.services import Services, open_services
from storage.models import Ticket, TicketEvent
from tests.staff_support import audit_rows
from tests.wecom_driver import WeCom, load_demo_roster, new_ticket, outbox_rows, ticket

Client = TestClient[Any, Any]
Change = Callable[[Services, str], Awaitable[None]]


async def _reassign(other: Services, number: str) -> None:
    await staff_actions.staff_transition(other, number, "assign", "liustaff", assignee="lina")


async def _withdraw(other: Services, number: str) -> None:
    await staff_actions.staff_transition(other, number, "cancel", "liustaff", note="居民已自行解决")


def _meanwhile(monkeypatch: pytest.MonkeyPatch, svc: Services, clock: FakeClock, change: Change) -> list[str]:
    """Run change on other services once, when the next command locks its ticket (after it was
    found and read); the numbers it ran for."""
    real = tickets.get_by_number
    ran: list[str] = []

    async def changed_first(session: Any, number: str, *, for_update: bool = False) -> Ticket | None:
        if for_update and not ran:
            ran.append(number)
            other = open_services(svc.settings, clock=clock)
            try:
                await change(other, number)
            finally:
                await other.close()
        return await real(session, number, for_update=for_update)

    monkeypatch.setattr(tickets, "get_by_number", changed_first)
    return ran


async def _actions(svc: Services, number: str) -> list[tuple[str, str]]:
    found = await ticket(svc, number)
    async with svc.sessions() as session:
        rows = await session.execute(select(TicketEvent.action, TicketEvent.actor)
                                     .where(TicketEvent.ticket_id == found.id).order_by(TicketEvent.id))
        return [(a, b) for a, b in rows.all()]


async def test_jiedan_racing_a_reassign_leaves_it_with_the_new_owner(
    client: Client, services: Services, clock: FakeClock, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """接单 1 read the job as 王伟's, staff gave it to 李娜 and committed, then the 接单 wrote
    accepted over it: 李娜's job stood 已接单 by 王伟's event, the resident told 王伟 took it."""
    await load_demo_roster(services)
    wc = WeCom(client, services)
    job = (await new_ticket(services, resident="oRace1")).ticket
    ran = _meanwhile(monkeypatch, services, clock, _reassign)
    said = await wc.say("wangwei", "接单 1")
    assert ran == [job.number]
    assert said == f"工单 {job.number} 已改派他人，您无需再处理。"
    after = await ticket(services, job.number)
    assert (after.status, after.assignee, after.accepted_at) == ("dispatched", "lina", None)
    assert [a for a, _ in await _actions(services, job.number)] == ["created", "assign", "assign"]
    assert not await audit_rows(services, "wecom.accept")
    assert [r.target for r in await audit_rows(services, "wecom.accept.refused")] == [job.number]
    assert not [o for o in await outbox_rows(services, "wechat", "oRace1") if "接单" in str(o.payload)]


async def test_banjie_racing_a_reassign_passes_the_result_on(
    client: Client, services: Services, clock: FakeClock, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """办结 1 疏通好了 racing the reassign: the job stays 李娜's to finish, 王伟's result kept on it
    and passed to her, as when the reassign came before the 办结."""
    await load_demo_roster(services)
    wc = WeCom(client, services)
    job = (await new_ticket(services, resident="oRace2", category="环境卫生", summary="下水道堵了")).ticket
    assert (await wc.say("wangwei", "接单 1")).startswith("已接单")
    _meanwhile(monkeypatch, services, clock, _reassign)
    said = await wc.say("wangwei", "办结 1 疏通好了")
    assert said == f"工单 {job.number} 已改派给 李娜，这张单不用您再办结。您写的办理情况已转告 李娜，并记在工单上。"
    after = await ticket(services, job.number)
    assert (after.status, after.assignee, after.resolved_at) == ("dispatched", "lina", None)
    assert "resolve" not in [a for a, _ in await _actions(services, job.number)]
    assert [o for o in await outbox_rows(services, "wecom", "lina") if "原承办人 王伟 报告：疏通好了" in o.payload.get("text", "")]


async def test_tuihui_racing_a_withdrawal_leaves_it_cancelled(
    client: Client, services: Services, clock: FakeClock, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """退回 1 不归我管 read the job as 王伟's in hand while staff cancelled it: the 退回 reopened a
    cancelled ticket into the staff queue. Now it stays cancelled and 王伟 hears so."""
    await load_demo_roster(services)
    wc = WeCom(client, services)
    job = (await new_ticket(services, resident="oRace3")).ticket
    assert (await wc.say("wangwei", "接单 1")).startswith("已接单")
    _meanwhile(monkeypatch, services, clock, _withdraw)
    said = await wc.say("wangwei", "退回 1 不归我管")
    assert said == f"工单 {job.number} 已撤销，您无需再处理。"
    after = await ticket(services, job.number)
    assert (after.status, after.assignee) == ("cancelled", "wangwei")
    assert [a for a, _ in await _actions(services, job.number)][-1] == "cancel"

