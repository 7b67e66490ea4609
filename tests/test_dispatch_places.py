"""Where a neighbour's report is: the owner of the job it is linked to reads it in WeCom (the
又有居民反映 push names each new reporter's place, masked as the card is), and a report is linked
only to a job at its very place — never one at a place with no building (南门, 小区广场, 东门车库,
routed by the grids' `places`) to a building's, nor a street light at a building's door or another unit's stairwell light to the
building's stairwell job. Driven through /wechat on both backends."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from aiohttp.test_utils import TestClient

from bot import dispatch
from bot.clock import FakeClock
from bot.services import Services
from storage import fastsql
from tests.conftest import WeChat
from tests.flow_helpers import group_posts, tickets_of
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


async def reported(wx: WeChat, svc: Services, clock: FakeClock, said: str) -> tuple[str, Any]:
    """said reported by a new resident a few minutes after the last: the reply to the opening (its
    lead names the neighbours' job it will be handled with, if any) and the ticket."""
    openid = oid()
    opening = await wx.say(openid, said)
    await wx.say(openid, "取消")
    assert "工单号" in await report(wx, openid, said, "13812345678")
    [made] = await tickets_of(svc, openid)
    clock.advance(minutes=3)
    return opening, made


async def test_a_report_at_a_place_with_no_building_goes_to_the_grid_covering_it_linked_only_at_that_place(
    client: Client, services: Services, clock: FakeClock,
) -> None:
    """A place with no building goes to the grid whose roster `places` list it (南门 → 望湖第三网格's
    孙丽, 东门车库 → 望湖第二网格, which lists 小区东门), never linked to the 3号楼 stairwell light's
    job nor to another place's; the same 南门 light said again by a neighbour is linked to the first
    南门 report, as reports of one building are. A place no grid lists (小区广场: 望湖第一网格 lists
    中心广场) waits in the staff queue, the staff group's post naming it and saying no grid has it."""
    wx = WeChat(client, services.settings)
    _, stairwell = await reported(wx, services, clock, "3号楼楼道灯坏了")
    places = {"南门的路灯坏了": ("南门", "G3"), "东门车库的灯坏了": ("东门", "G2"), "南门路灯不亮了": ("南门", "G3"),
              "小区广场的路灯不亮": ("小区广场", None)}
    made = []
    for said, (place, grid) in places.items():
        opening, ticket = await reported(wx, services, clock, said)
        assert "已有" not in opening, opening
        assert (ticket.building, ticket.grid) == (None, grid)
        assert ticket.fields["place"] == place and ticket.category == stairwell.category
        made.append(ticket)
    south, east, south_again, square = made
    assert south.parent_id is None and east.parent_id is None and square.parent_id is None
    assert south_again.parent_id == south.id  # the same listed place, category and problem
    assert (await tickets_of(services, south.resident or ""))[0].reporters == 2
    assert south.assignee == south_again.assignee == "sunli" and south.status == "dispatched"
    assert east.assignee in ("lina", "zhaoqiang") and east.status == "dispatched"
    assert (square.status, square.assignee) == ("open", None)
    assert (await tickets_of(services, stairwell.resident or ""))[0].reporters == 1
    posts = {post.payload["content"] for post in await group_posts(services)}
    [post] = [p for p in posts if f"工单 {square.number} " in p]
    assert "> 地点：小区广场" in post and "这个地点不在任何网格" in post
    assert not [p for p in posts if f"工单 {south.number} " in p or f"工单 {east.number} " in p]


async def test_a_street_light_at_a_door_or_another_units_stairwell_is_not_the_stairwells_job(
    client: Client, services: Services, clock: FakeClock,
) -> None:
    """3号楼门口的路灯坏了 was linked to the 3号楼 stairwell light's job (照明 at 3号楼 both), and
    3号楼1单元's stairwell to the job a 2单元 neighbour had already joined: the worker 办结s the one
    light and the others hear 已办结 in the dark. Now a spot word of the place (门口) or another unit
    than the job's or its linked reports' makes a ticket of its own, and its resident is not told
    at the opening that neighbours reported it; the same spot, or a building's water cut from any
    unit, is linked as before."""
    wx = WeChat(client, services.settings)
    _, stairwell = await reported(wx, services, clock, "3号楼楼道灯坏了")
    opening, unit_two = await reported(wx, services, clock, "3号楼2单元楼道灯不亮")
    assert "已有1位居民反映" in opening and unit_two.parent_id == stairwell.id
    opening, door = await reported(wx, services, clock, "3号楼门口的路灯坏了")
    assert "已有" not in opening and door.parent_id is None and door.assignee == stairwell.assignee
    opening, unit_one = await reported(wx, services, clock, "3号楼1单元楼道灯不亮")
    assert "已有" not in opening and unit_one.parent_id is None
    opening, same_stairwell = await reported(wx, services, clock, "3号楼的楼道灯不亮了")
    assert "已有2位居民反映" in opening and same_stairwell.parent_id == stairwell.id
    opening, same_door = await reported(wx, services, clock, "3号楼门口路灯不亮")
    assert "已有1位居民反映" in opening and same_door.parent_id == door.id
    _, cut = await reported(wx, services, clock, "3号楼停水了")
    opening, cut_too = await reported(wx, services, clock, "3号楼2单元没水了")
    assert "已有1位居民反映" in opening and cut_too.parent_id == cut.id


def test_the_spot_of_a_report_at_its_building() -> None:
    assert dispatch.same_spot({"place": "3栋"}, {"place": "3栋2单元", "unit": "2"})
    assert dispatch.same_spot({"place": "3栋2单元502", "unit": "2"}, {"place": "3栋2单元", "unit": "2"})
    assert not dispatch.same_spot({"place": "3栋1单元", "unit": "1"}, {"place": "3栋2单元", "unit": "2"})
    assert not dispatch.same_spot({"place": "3号楼门口", "landmark": "3号楼门口"}, {"place": "3栋"})
    assert not dispatch.same_spot({"place": "3号楼门口"}, {"place": "3号楼楼下"})
    assert dispatch.same_spot({"landmark": "3号楼 门口"}, {"place": "3号楼门口"})
    assert dispatch.same_spot(None, {})
    # a building-wide problem links from any spot; a flat's leak only with its own flat
    assert dispatch.same_place("3号楼门口停水了", {"place": "3号楼门口"}, {"place": "3栋1单元", "unit": "1"})
    assert not dispatch.same_place("楼上漏水", {"unit": "1", "room": "301"}, {"unit": "1", "room": "401"})


async def test_a_burst_at_one_spot_is_read_as_one_place(services: Services) -> None:
    """Each new report naming a unit checks the places of the reports already linked to the job;
    a burst links hundreds. They are read out of the JSON by the database, each distinct place
    once, so the check does not grow with the burst (it decoded every linked report's fields in
    Python: 2,800 → 37,900 function calls per linked ticket in bench.ticket_bench --calls)."""
    await load_demo_roster(services)
    job = (await new_ticket(services, resident="oB0", summary="楼道灯坏了")).ticket
    spot = {"phone": "13812345678", "unit": "2", "place": "3号楼2单元楼道"}
    for n in range(1, 13):
        made = (await new_ticket(services, resident=f"oB{n}", summary="楼道灯不亮", fields=spot)).ticket
        assert made.parent_id == job.id
    async with services.sessions() as session:
        places = await fastsql.run(session, dispatch._LINKED_PLACES, {
            "category": job.category, "building_key": job.building_key, "parent_id": job.id,
            "since": job.created_at - timedelta(hours=1),
        })
    assert places.rows == [{"unit": "2", "place": "3号楼2单元楼道", "landmark": None}]
    elsewhere = {**spot, "unit": "1", "place": "3号楼1单元楼道"}
    assert (await new_ticket(services, resident="oB99", summary="楼道灯不亮", fields=elsewhere)).ticket.parent_id is None


async def test_reports_at_one_common_place_are_linked_as_a_buildings_are(
    client: Client, services: Services, clock: FakeClock,
) -> None:
    """小区西门 路灯 reported by three neighbours: routed to the grid listing 西门 and linked into one
    job (its owner told 又有居民反映, the resident told it is handled with the first), as reports
    about one building are. Another category at 西门 (垃圾), the 东门's light, a report by the same
    resident again, and one after the duplicate window are jobs of their own."""
    wx = WeChat(client, services.settings)
    _, first = await reported(wx, services, clock, "小区西门的路灯坏了")
    assert (first.grid, first.parent_id) == ("G2", None)
    openid = oid()
    done = await report(wx, openid, "西门那边的路灯不亮了", "13900001111")
    assert first.number in done, done
    [second] = await tickets_of(services, openid)
    assert second.parent_id == first.id and second.assignee == first.assignee
    told = linked_pushes(await texts_to(services, "wecom", first.assignee or ""), first.number)
    assert told and "西门那边的路灯不亮了" in told[0]
    _, rubbish = await reported(wx, services, clock, "小区西门垃圾堆成山了没人清")
    _, east = await reported(wx, services, clock, "小区东门的路灯坏了")
    assert rubbish.parent_id is None and east.parent_id is None
    clock.advance(hours=25)  # past [duplicates] window_hours (24)
    _, late = await reported(wx, services, clock, "西门路灯又不亮了")
    assert late.parent_id is None
