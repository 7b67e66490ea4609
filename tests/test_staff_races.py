"""A staff action (the console, WeCom's 关闭 N / 办结 N from staff) racing another process's change
of the same ticket: an owner's 办结 or another clerk's 派单 committed after the action read the
ticket and before it wrote. The action holds the row as it read it (dispatch.hold, the compare-
and-set of dispatch.claim) and decides on the ticket as it now is: the clerk is shown what changed
and nothing is written over. Both backends; the other change runs on services of its own (its own
engine, as another process would). On SQLite it commits right after the action's read (a read
there takes no lock); on PostgreSQL the action's FOR UPDATE read holds the row, so it commits just
before it — where WeCom's staff commands read the ticket once already (to find it by its number)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from bot import staff_actions, tickets, worker_commands
from bot.clock import FakeClock
from bot.console import auth
from bot.services import Services, open_services
from storage.models import Ticket
from tests.staff_support import audit_rows, logged_in, make_resident, make_ticket
from tests.wecom_driver import WeCom, actions, load_demo_roster, new_ticket, ticket

Client = TestClient[Any, Any]
Change = Callable[[Services, str], Awaitable[None]]


async def _owner_resolves(other: Services, number: str) -> None:
    assert (await worker_commands.run(other, "wangwei", "办结 1 灯修好了")).startswith("已办结")


async def _clerk_assigns(other: Services, number: str) -> None:
    await staff_actions.staff_transition(other, number, "assign", "admin", assignee="admin")


def _meanwhile(monkeypatch: pytest.MonkeyPatch, svc: Services, clock: FakeClock, change: Change,
               *, after_read: bool) -> list[str]:
    """Run change on other services once, at the next locked read of a ticket: right after it when
    after_read and the database is SQLite, else just before it. The numbers it ran for."""
    real = tickets.get_by_number
    ran: list[str] = []
    after = after_read and svc.settings.database_url.startswith("sqlite")

    async def other_process(number: str) -> None:
        ran.append(number)
        other = open_services(svc.settings, clock=clock)
        try:
            await change(other, number)
        finally:
            await other.close()

    async def changed_meanwhile(session: Any, number: str, *, for_update: bool = False) -> Ticket | None:
        if not for_update or ran:
            return await real(session, number, for_update=for_update)
        if not after:
            await other_process(number)
            return await real(session, number, for_update=True)
        found = await real(session, number, for_update=True)
        await other_process(number)
        return found

    monkeypatch.setattr(tickets, "get_by_number", changed_meanwhile)
    return ran


async def test_a_console_reassign_racing_the_owners_banjie_shows_what_changed(
    client: Client, services: Services, clock: FakeClock, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The clerk's page showed 王伟's job 已接单 and she 改派 it to 李娜 while 王伟's 办结 committed:
    the reassign was written over the resolved job (李娜 sent to a light already fixed, the
    resident's 办结 undone). Now the page comes back saying it was finished meanwhile, by whom."""
    await load_demo_roster(services)
    await auth.create_user(services, "liu", "staffpass1", "staff", display_name="刘敏")
    wc = WeCom(client, services)
    job = (await new_ticket(services, resident="oStaffRace1")).ticket
    assert (await wc.say("wangwei", "接单 1")).startswith("已接单")
    csrf = await logged_in(client, "liu", "staffpass1")
    ran = _meanwhile(monkeypatch, services, clock, _owner_resolves, after_read=True)
    resp = await client.post(f"/console/tickets/{job.number}/transition", data={
        "action": "assign", "assignee": "lina", "seen_status": "accepted", "seen_assignee": "wangwei", "csrf_token": csrf,
    })
    body = await resp.text()
    assert ran == [job.number]
    assert resp.status == 200 and resp.url.path == f"/console/tickets/{job.number}"
    assert "已被他人更新（王伟）" in body and "状态由“已接单”变为“已办结”" in body and "未执行“派单”" in body
    assert 'name="seen_status" value="resolved"' in body  # the page as it now is, to act on again
    after = await ticket(services, job.number)
    assert (after.status, after.assignee) == ("resolved", "wangwei")
    assert await actions(services, job.number) == ["created", "assign", "accept", "resolve"]
    assert [r.detail["reason"] for r in await audit_rows(services, "ticket.assign.refused")] == ["stale"]


async def test_a_wecom_close_racing_the_owners_banjie_says_so(
    client: Client, services: Services, clock: FakeClock, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """关闭 1 重复反映 from staff found the job 已接单, then 王伟's 办结 committed: the close turned a
    resolved job into 已关闭 (counted unresolved, the resident's survey dropped). Now nothing is
    closed and the clerk hears who changed it to what."""
    await load_demo_roster(services)
    wc = WeCom(client, services)
    job = (await new_ticket(services, resident="oStaffRace2")).ticket
    assert (await wc.say("wangwei", "接单 1")).startswith("已接单")
    ran = _meanwhile(monkeypatch, services, clock, _owner_resolves, after_read=False)
    said = await wc.say("liustaff", "关闭 1 重复反映")
    assert ran == [job.number]
    assert said == (f"工单 {job.number} 没有关闭：刚刚已被他人更新（王伟）：状态由“已接单”变为“已办结”。"
                    "未执行“关闭”，请看清现在的情况后再发。")
    after = await ticket(services, job.number)
    assert (after.status, after.closed_at) == ("resolved", None)
    assert "close" not in await actions(services, job.number)


async def test_a_wecom_banjie_of_a_hand_off_racing_a_colleagues_taking_it_says_so(
    client: Client, services: Services, clock: FakeClock, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """办结 1 已电话答复 from 刘敏 found a 转人工 hand-off with nobody on it while 管理员 took it on
    himself: it was settled under his hands and he pushed that 刘敏 ended it. Now it stays his, and
    刘敏 hears so."""
    await load_demo_roster(services)
    wc = WeCom(client, services)
    await make_resident(services, "oStaffRace3")
    number = await make_ticket(services, "oStaffRace3", kind="handoff", status="escalated", summary="转人工：楼道灯坏了")
    _meanwhile(monkeypatch, services, clock, _clerk_assigns, after_read=False)
    said = await wc.say("liustaff", "办结 1 已电话答复")
    assert said == (f"工单 {number} 没有办结：刚刚已被他人更新（管理员）：状态由“待人工处理”变为“已派单”；"
                    "负责人由“无人负责”变为“管理员”。未执行“办结”，请看清现在的情况后再发。")
    after = await ticket(services, number)
    assert (after.status, after.assignee) == ("dispatched", "admin")
    assert [r.detail["reason"] for r in await audit_rows(services, "ticket.resolve.refused")] == ["stale"]
