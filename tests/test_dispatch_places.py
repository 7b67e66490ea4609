"""Where a neighbour's report is, as the owner of the job it is linked to reads it in WeCom (the
又有居民反映 push names each new reporter's place, masked as the card is), driven through /wechat
on both backends."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from bot.clock import FakeClock
from bot.services import Services
from tests.conftest import WeChat
from tests.flow_helpers import tickets_of
from tests.test_owner_notices import oid, report, texts_to
from tests.wecom_driver import load_demo_roster, new_ticket

Client = TestClient[Any, Any]


def linked_pushes(told: list[str], number: str) -> list[str]:
    """The 又有居民反映 pushes about one job."""
    return [t for t in told if t.startswith(f"又有居民反映工单 {number} ")]


async def test_the_owner_hears_where_each_neighbour_reporting_the_job_is(
    wx: WeChat, client: Client, services: Services, clock: FakeClock,
) -> None:
    """又有居民反映工单 0001 的问题（现共 2 位）：照明｜3栋2单元502｜… named the place only inside the
    summary's category｜place｜words, and two neighbours within the half hour read as the last one
    alone. Now the push says the resident's words and 地点 on its own, every neighbour's place the
    push brought up to date covers, and never a reporter's phone."""
    first, second, third = oid(), oid(), oid()
    assert "工单号" in await report(wx, first, "3号楼2单元楼道灯坏了", "13812345678")
    [job] = await tickets_of(services, first)
    clock.advance(minutes=40)
    assert job.number in await report(wx, second, "3号楼2单元502门口楼道灯不亮", "13900001111")
    owner = job.assignee or ""
    [told] = linked_pushes(await texts_to(services, "wecom", owner), job.number)
    assert told == f"又有居民反映工单 {job.number} 的问题（现共 2 位）：3号楼2单元502门口楼道灯不亮（地点：3栋2单元502）"
    clock.advance(minutes=5)  # the push not gone yet: it is brought up to date, and carries both places
    assert job.number in await report(wx, third, "三号楼二单元六楼的灯也不亮", "13700002222")
    [merged] = linked_pushes(await texts_to(services, "wecom", owner), job.number)
    assert merged.startswith(f"又有居民反映工单 {job.number} 的问题（现共 3 位）：三号楼二单元六楼的灯也不亮"), merged
    assert merged.endswith("（地点：3栋2单元502、3栋2单元）"), merged
    for phone in ("13900001111", "13700002222", "139****1111", "137****2222"):
        assert phone not in told + merged


async def test_a_place_with_a_number_in_it_is_masked_in_the_push(services: Services) -> None:
    """A place given with a long number (a phone typed into the place answer) reaches the owner
    masked, as on the card."""
    await load_demo_roster(services)
    job = (await new_ticket(services, resident="oP1", summary="楼道灯坏了")).ticket
    await new_ticket(services, resident="oP2", summary="灯不亮", fields={"place": "3号楼 电话13912345678"})
    [told] = linked_pushes(await texts_to(services, "wecom", job.assignee or ""), job.number)
    assert told.endswith("：灯不亮（地点：3号楼 电话139****5678）") and "13912345678" not in told, told
