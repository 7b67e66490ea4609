"""Neighbours' reports of a building's problem, driven through /wechat and /wecom on both
backends: told about and linked to the open job of the very problem they report (a building's
water cut, not a flat's leak of the same category that was reported first), and an emergency
said again chased at once, then at most once in the configured time however often it is said."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from bot.clock import FakeClock
from bot.services import Services
from tests.conftest import WeChat
from tests.flow_helpers import tickets_of
from tests.test_owner_notices import oid, report, texts_to
from tests.wecom_driver import WeCom, ticket

Client = TestClient[Any, Any]


async def test_a_water_cut_report_is_told_of_and_linked_to_the_water_cut_not_the_leak_reported_first(
    wx: WeChat, client: Client, services: Services, clock: FakeClock,
) -> None:
    """A flat's leak, then the building's water cut, both open (水电气暖, 3号楼): a third resident's
    停水了 was led by the first open job of the kind — the leak, which a water cut never shares —
    so heard nothing of the neighbours; now it hears of the water cut, with its count and owner,
    and is linked to it; the owner's 又有居民反映 names the water cut."""
    leak, cut, third = oid(), oid(), oid()
    assert "工单号" in await report(wx, leak, "3号楼2单元201 楼上漏水 天花板一直滴水", "13812345678")
    clock.advance(minutes=5)
    assert "工单号" in await report(wx, cut, "3号楼停水了 水龙头不出水", "13900001111")
    [leak_job], [cut_job] = await tickets_of(services, leak), await tickets_of(services, cut)
    assert leak_job.category == cut_job.category and cut_job.parent_id is None
    clock.advance(minutes=5)
    first = await wx.say(third, "3号楼停水了 怎么回事")
    assert "已有1位居民反映" in first and "一并处理" in first, first
    assert "王伟" in first or (cut_job.assignee or "") == "", first
    for answer in ("否", "13700002222", "否"):
        if "请核对" in first:
            break
        first = await wx.say(third, answer)
    done = await wx.say(third, "确认")
    assert cut_job.number in done, done
    [mine] = await tickets_of(services, third)
    assert mine.parent_id == cut_job.id
    assert (await ticket(services, cut_job.number)).reporters == 2
    assert (await ticket(services, leak_job.number)).reporters == 1
    told = await texts_to(services, "wecom", cut_job.assignee or "")
    assert any(t.startswith(f"又有居民反映工单 {cut_job.number} 的问题（现共 2 位）") for t in told), told
    # The worker's 我的工单 over /wecom lists the water cut with its two reporters.
    listing = await WeCom(client, services).say(cut_job.assignee or "", "我的工单")
    assert "2 位居民反映" in listing, listing
