"""The console's 关闭 asks for a reason, as WeCom's 关闭 N does (the form re-shown with the error,
nothing changed, the refusal audited, the field required in the page), and its flash after 关闭 or
办结 of a job a grid worker holds says the owner was told — on both backends."""

from __future__ import annotations

import re
from typing import Any

from aiohttp.test_utils import TestClient

from bot.console import auth
from bot.services import Services
from tests.staff_support import audit_rows, logged_in
from tests.wecom_driver import new_ticket, outbox_rows, ticket

Client = TestClient[Any, Any]


async def test_a_console_close_without_a_reason_is_refused_and_changes_nothing(client: Client, services: Services) -> None:
    await auth.create_user(services, "liu", "staffpass1", "staff", display_name="刘敏")
    job = (await new_ticket(services, resident="oA", building="3")).ticket
    assert job.assignee == "wangwei"
    before = len(await outbox_rows(services, "wecom", "wangwei"))
    csrf = await logged_in(client, "liu", "staffpass1")
    page = await (await client.get(f"/console/tickets/{job.number}")).text()
    [close_form] = re.findall(r'<form[^>]*class="actions close-form">.*?</form>', page, re.S)
    assert '<input name="note" required' in close_form and 'value="close"' in close_form
    for blank in ("", "   "):
        resp = await client.post(f"/console/tickets/{job.number}/transition",
                                 data={"action": "close", "note": blank, "csrf_token": csrf})
        body = await resp.text()
        assert resp.status == 200 and "关闭工单请写明原因（填在“说明”里），工单未改动。" in body
    assert (await ticket(services, job.number)).status == job.status
    assert len(await outbox_rows(services, "wecom", "wangwei")) == before  # the owner was not told
    assert await audit_rows(services, "ticket.close") == []
    refused = await audit_rows(services, "ticket.close.refused")
    assert [(r.actor, r.target, r.detail["reason"]) for r in refused] == [("liu", job.number, "reason_missing")] * 2
    # with a reason it is closed, and the flash says the owner was pushed
    body = await (await client.post(f"/console/tickets/{job.number}/transition",
                                    data={"action": "close", "note": "居民说不用修了", "csrf_token": csrf})).text()
    assert (await ticket(services, job.number)).status == "closed"
    assert "已关闭，工单现在是“已关闭”。已通知负责人 王伟（企业微信）。" in body


async def test_the_flash_names_the_owner_only_when_one_was_pushed(client: Client, services: Services) -> None:
    await auth.create_user(services, "liu", "staffpass1", "staff")
    held = (await new_ticket(services, resident="oB", building="3")).ticket
    csrf = await logged_in(client, "liu", "staffpass1")
    body = await (await client.post(f"/console/tickets/{held.number}/transition",
                                    data={"action": "resolve", "csrf_token": csrf})).text()
    assert "已办结" in body and "已通知负责人 王伟" in body
    # ended already: closing it now tells nobody, and the flash does not claim it did
    body = await (await client.post(f"/console/tickets/{held.number}/transition",
                                    data={"action": "close", "note": "归档", "csrf_token": csrf})).text()
    assert (await ticket(services, held.number)).status == "closed"
    assert "已关闭" in body and "已通知负责人" not in body
