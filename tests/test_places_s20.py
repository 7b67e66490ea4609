"""Places residents say, walked in session 20 on both backends: 住在/我住在/家住/我家在/在 before a
place is not part of it (reports and bookings), and a place changed at a report's summary (改地址) is
not offered again. The clock is 2026-11-23 (a Monday) 10:00 in Shanghai."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import pytest

from bot.flows import parsers
from bot.flows.base import Answer
from bot.services import Services
from tests.conftest import WeChat
from tests.flow_helpers import tickets_of
from tests.staff_support import make_resident


def oid() -> str:
    return "o" + uuid.uuid4().hex[:20]


class _Typed:
    msg_type = "text"
    media: dict[str, Any] = {}


def _place(text: str) -> dict[str, Any]:
    return parsers.place(Answer(text=text, inbound=_Typed(), now=datetime(2026, 11, 23, 10)))  # type: ignore[arg-type]


@pytest.mark.parametrize(("said", "kept"), [
    ("住在12号楼1单元", "12号楼1单元"), ("我住在3栋2单元502", "3栋2单元502"), ("家住5号楼", "5号楼"),
    ("我家在7号楼1单元", "7号楼1单元"), ("我家住在5栋", "5栋"), ("我们家在3号楼", "3号楼"), ("在3栋", "3栋"),
    ("我住的是5号楼2单元301", "5号楼2单元301"), ("嗯 我住在 3号楼 那个 2单元", "3号楼 2单元"),
    ("在东门", "东门"), ("就在地下车库", "地下车库"), ("住在东门旁边", "东门旁边"),
    ("我妈住在7号楼", "7号楼"), ("嗯 那个 她住在 三号楼 二单元", "三号楼 二单元"), ("他们家门口", "他们家门口"),
    ("我是5号楼的", "5号楼"), ("住3栋2单元的", "3栋2单元"), ("3-2-501", "3-2-501"), ("住宅楼东门", "住宅楼东门"), ("我家门口", "我家门口"),
])
def test_the_words_before_a_place_are_not_the_place(said: str, kept: str) -> None:
    value = _place(said)
    assert value["text"] == kept, value
    assert parsers.place is _place.__globals__["parsers"].place  # the engine reads `step.parse is place`


def test_an_address_alone_is_read_without_the_words_before_it() -> None:
    assert parsers.only_address("我住在5号楼2单元301") == {"text": "5号楼2单元301", "building": "5", "unit": "2", "room": "301"}
    assert parsers.only_address("住在5号楼") == {"text": "5号楼", "building": "5"}
    assert parsers.only_address("我住在5号楼 楼道灯坏了") is None  # more than an address


@pytest.mark.parametrize("said", ["住在12號樓1單元", "我住在12号楼1单元", "家住12号楼1单元", "我家在12號樓1單元"])
async def test_a_report_place_said_with_where_i_live_keeps_only_the_place(
        wx: WeChat, services: Services, said: str) -> None:
    """住在12號樓1單元 at 问题在哪里 was kept whole: 地点：住在12号楼1单元 on the summary and the ticket."""
    openid = oid()
    assert "问题在哪里" in await wx.say(openid, "楼道灯坏了")
    await wx.say(openid, said)
    await wx.say(openid, "跳过")
    summary = await wx.say(openid, "13812345678")
    summary = await wx.say(openid, "否") if "绑定" in summary else summary
    assert "地点：12号楼1单元\n" in summary and "住" not in summary.split("地点：")[1].split("\n")[0], summary
    await wx.say(openid, "确认")
    [ticket] = await tickets_of(services, openid)
    assert ticket.fields["place"] == "12号楼1单元" and ticket.building == "12", ticket.fields


@pytest.mark.parametrize("said", ["住在12號樓1單元", "我住在12号楼1单元", "我家在12号楼1单元", "我是12号楼1单元的"])
async def test_a_booking_address_said_with_where_i_live_keeps_only_the_address(
        wx: WeChat, services: Services, said: str) -> None:
    """The same at a booking's 服务地址: 地址：住在12号楼1单元."""
    openid = oid()
    for answer in ("我想约个助浴", "我自己", "王秀英", "82"):
        await wx.say(openid, answer)
    assert "想约哪一天" in await wx.say(openid, said)
    summary = ""
    for answer in ("周四上午十点", "没有", "13812345678", "否"):
        summary = await wx.say(openid, answer)
    assert "地址：12号楼1单元\n" in summary, summary


async def test_a_place_changed_at_the_summary_is_not_offered_again(wx: WeChat, services: Services) -> None:
    """楼道灯坏了 from a resident whose 我的信息 keeps 3号楼: 是 took 3栋 (546ee83); 改地址 at the summary
    asked 问题在哪里 offering 您登记的住址是“3栋”…回复“是” again — the place being changed — and 是
    took it back. The question is asked without the offer, 是 is no place, and the new one is kept."""
    openid = oid()
    await make_resident(services, openid)  # 我的信息: 3号楼, phone bound
    assert "您登记的住址是“3栋”" in await wx.say(openid, "楼道灯坏了")
    await wx.say(openid, "是")
    summary = await wx.say(openid, "跳过")
    assert "地点：3栋" in summary, summary
    asked = await wx.say(openid, "改地址")
    assert "问题在哪里" in asked and "您登记的住址" not in asked, asked
    again = await wx.say(openid, "是")
    assert "地点按您登记的住址" not in again and "请核对" not in again, again
    assert "您登记的住址" not in again, again
    summary = await wx.say(openid, "我住在5号楼2单元")
    assert "地点：5号楼2单元\n" in summary, summary
    await wx.say(openid, "确认")
    [ticket] = await tickets_of(services, openid)
    assert ticket.building == "5" and ticket.fields["place"] == "5号楼2单元", ticket.fields


@pytest.mark.parametrize("said", ["3单元", "3單元", "在3单元502"])
async def test_a_unit_without_its_building_asks_for_the_building(wx: WeChat, services: Services, said: str) -> None:
    """3單元 at 问题在哪里 (found walking /sim) was taken as the place, 地点：3单元, a landmark no grid
    worker can find and no building to route by; it is asked for its building, as a room alone is."""
    openid = oid()
    await wx.say(openid, "楼道灯坏了")
    asked = await wx.say(openid, said)
    assert "是几号楼的" in asked and "拍张照片" not in asked, asked
    await wx.say(openid, "5号楼3单元")
    summary = ""
    for answer in ("跳过", "13812345678", "否"):
        summary = await wx.say(openid, answer)
    assert "地点：5号楼3单元\n" in summary, summary
    await wx.say(openid, "确认")
    [ticket] = await tickets_of(services, openid)
    assert ticket.building == "5", ticket.fields


async def test_a_booking_address_of_a_unit_alone_asks_for_the_building(wx: WeChat) -> None:
    openid = oid()
    for answer in ("我想约个助浴", "我自己", "王秀英", "82"):
        await wx.say(openid, answer)
    asked = await wx.say(openid, "2单元301")
    assert "是几号楼的" in asked and "想约哪一天" not in asked, asked
    assert "想约哪一天" in await wx.say(openid, "5号楼2单元301")


async def test_the_address_of_the_person_booked_for_said_with_she_lives_keeps_only_the_address(wx: WeChat) -> None:
    """嗯 那个 她住在 三號樓 二單元 幺零二 for 我妈's haircut (found walking /sim) kept 她住在 in the address."""
    openid = oid()
    for answer in ("我想约个理发", "给我妈", "张桂兰", "85"):
        await wx.say(openid, answer)
    assert "想约哪一天" in await wx.say(openid, "嗯 那个 她住在 三號樓 二單元 五零二")
    summary = ""
    for answer in ("周三上午十点", "没有", "13812345678", "否"):
        summary = await wx.say(openid, answer)
    assert "地址：三号楼 二单元 五零二\n" in summary, summary


@pytest.mark.parametrize("said", ["3#楼2单元", "3＃2单元502"])
async def test_a_building_written_with_a_hash_is_the_building(wx: WeChat, services: Services, said: str) -> None:
    """3#楼2单元 (3号楼 as written on estate signs and forms) was kept as a landmark with no building
    (found walking /sim): the report reached no grid worker by its building."""
    openid = oid()
    await wx.say(openid, "路灯坏了")
    for answer in (said, "跳过", "13812345678", "否", "确认"):
        await wx.say(openid, answer)
    [ticket] = await tickets_of(services, openid)
    assert ticket.building == "3" and ticket.fields["unit"] == "2", ticket.fields
