"""Service-centre staff closing (关闭) or resolving (办结) a job a grid worker holds: the worker is
pushed once through the outbox (which job, what and where, the resident's phone masked, who ended
it and why, nothing more to do) — from the console and from WeCom, on both backends."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from bot import staff_actions
from bot.console import auth
from bot.services import Services
from tests.staff_support import audit_rows, logged_in
from tests.wecom_driver import WeCom, new_ticket, outbox_rows, ticket

Client = TestClient[Any, Any]
TOKEN = "api-token-for-owner-end-tests"


def _texts(rows: list[Any]) -> list[str]:
    return [r.payload["text"] for r in rows if r.payload.get("msgtype") == "text"]


async def test_a_console_close_and_resolve_tell_the_job_owner_once(client: Client, services: Services) -> None:
    await auth.create_user(services, "liu", "staffpass1", "staff", display_name="刘敏")
    first = (await new_ticket(services, resident="oA", summary="楼道灯坏了", category="照明",
                              fields={"phone": "13812345678", "description": "3栋楼道灯坏了", "place": "3号楼2单元"})).ticket
    second = (await new_ticket(services, resident="oB", building="3", category="电梯", summary="电梯不动了")).ticket
    assert first.assignee == second.assignee == "wangwei"
    before = len(await outbox_rows(services, "wecom", "wangwei"))
    csrf = await logged_in(client, "liu", "staffpass1")
    resp = await client.post(f"/console/tickets/{first.number}/transition",
                             data={"action": "close", "note": "居民打电话说已自己修好", "csrf_token": csrf})
    assert resp.status == 200
    told = _texts((await outbox_rows(services, "wecom", "wangwei"))[before:])
    assert told == [
        "【工单已关闭，不用再去】工单 0001（照明：3栋楼道灯坏了，3号楼2单元，居民电话 138****5678）\n"
        "服务中心 刘敏 已关闭此单，原因：居民打电话说已自己修好\n"
        "此单已从您的“我的工单”里去掉，无需上门，也不用回复。"]
    assert "13812345678" not in told[0]
    [row] = await audit_rows(services, "ticket.close")
    assert row.detail["owner_told"] == "wangwei"
    # the job is off the owner's list
    mine = await WeCom(client, services).say("wangwei", "我的工单")
    assert first.number not in mine and second.number in mine
    # a console 办结 of the owner's other job, without a note
    resp = await client.post(f"/console/tickets/{second.number}/transition",
                             data={"action": "resolve", "csrf_token": csrf})
    told = _texts((await outbox_rows(services, "wecom", "wangwei"))[before:])
    assert len(told) == 2 and told[1].startswith("【工单已办结，不用再去】工单 0002（")
    assert "服务中心 刘敏 已替您办结此单，说明：未写明" in told[1]
    # closing it now (after its 办结) is no news to the owner: nothing more pushed
    resp = await client.post(f"/console/tickets/{second.number}/transition",
                             data={"action": "close", "note": "归档", "csrf_token": csrf})
    assert (await ticket(services, second.number)).status == "closed"
    assert len(_texts((await outbox_rows(services, "wecom", "wangwei"))[before:])) == 2


async def test_a_wecom_close_tells_the_owner_and_a_retry_does_not_tell_twice(
    client: Client, services: Services,
) -> None:
    wc = WeCom(client, services)
    job = (await new_ticket(services, resident="oW")).ticket
    assert (await wc.say("wangwei", "接单 0001")).startswith("已接单")
    before = len(await outbox_rows(services, "wecom", "wangwei"))
    msg_id = 4242
    assert (await wc.say("liustaff", "关闭 0001 重复反映，居民电话13900001111已核实", msg_id=msg_id)).startswith("已关闭")
    retry = await wc.say("liustaff", "关闭 0001 重复反映，居民电话13900001111已核实", msg_id=msg_id)  # WeCom's retry
    assert not retry.startswith("工单")  # not refused as 已关闭
    told = _texts((await outbox_rows(services, "wecom", "wangwei"))[before:])
    assert len(told) == 1
    assert "服务中心 刘敏 已关闭此单，原因：重复反映，居民电话139****1111已核实" in told[0]
    assert "13900001111" not in told[0] and "138****5678" in told[0]
    assert (await ticket(services, job.number)).status == "closed"


async def test_an_owner_is_not_told_of_their_own_resolve(services: Services) -> None:
    job = (await new_ticket(services, resident="oS")).ticket
    before = len(await outbox_rows(services, "wecom", "wangwei"))
    await staff_actions.staff_transition(services, job.number, "resolve", "wangwei", note="灯已换好")
    assert len(await outbox_rows(services, "wecom", "wangwei")) == before
    [row] = await audit_rows(services, "ticket.resolve")
    assert "owner_told" not in row.detail


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    """An API token, for staff actions through /api."""
    return {"api_token": TOKEN}


async def test_an_api_resolve_tells_the_owner_without_naming_the_token(client: Client, services: Services) -> None:
    job = (await new_ticket(services, resident="oApi")).ticket
    resp = await client.post(f"/api/tickets/{job.number}/transition", json={"action": "resolve", "note": "已电话确认修好"},
                             headers={"Authorization": f"Bearer {TOKEN}"})
    assert resp.status == 200, await resp.text()
    [told] = [r.payload["text"] for r in await outbox_rows(services, "wecom", "wangwei") if "不用再去" in str(r.payload)]
    assert "服务中心 工作人员 已替您办结此单，说明：已电话确认修好" in told and " api " not in told
