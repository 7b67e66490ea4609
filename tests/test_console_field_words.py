"""A ticket page names everything the dialog collected in words. A booking's page listed three
其他信息 rows — 本人, 2026-11-26T03:00:00+00:00 (its start, raw and in UTC) and 否 (not waitlisted) —
a mediation's parties were 其他信息 and its time twice, as a raw UTC moment and as 其他信息,
a volunteer's 服务方向, 党员报到 and consent 其他信息, a report's landmark 其他信息 beside its 地点,
and a report's photo its raw record ({'media_id': …, 'pic_url': …}) instead of a link that opens it.
Conversations through the webhook, pages read as the clerk reads them; both backends."""

from __future__ import annotations

import re
from typing import Any

from aiohttp.test_utils import TestClient
from sqlalchemy import select

from bot.console import auth
from bot.console.views import Photo, field_lines
from bot.services import Services
from bot.texts import Texts
from storage.models import Ticket
from tests.conftest import WeChat
from tests.staff_support import logged_in

Client = TestClient[Any, Any]
RAW_MOMENT = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d")


def _details(page: str) -> str:
    return re.sub(r"\s+", " ", page[page.index("<dl>"):page.index("</dl>")])


async def _number(services: Services, openid: str) -> str:
    async with services.sessions() as session:
        return str((await session.scalars(select(Ticket.number).where(Ticket.resident == openid))).one())


async def _talk(wx: WeChat, openid: str, lines: list[str]) -> str:
    reply = ""
    for line in lines:
        reply = await wx.say(openid, line)
    return reply


async def test_every_collected_field_reads_in_words_on_the_ticket_page(client: Client, services: Services) -> None:
    wx = WeChat(client, services.settings)
    await auth.create_user(services, "liu", "staffpass1", "staff", display_name="刘敏")
    booked = await _talk(wx, "o_meal", ["我想预约助餐", "我自己", "张桂兰", "78", "5号楼1单元302", "明天中午",
                                        "跳过", "13611112222", "否", "1"])
    assert "工单号" in booked, booked
    settled = await _talk(wx, "o_noise", ["2", "楼上", "楼上装修太吵，每天早上7点就开始打电钻", "1", "明天下午3点",
                                          "13900001111", "确认"])
    assert "工单号" in settled, settled
    await wx.say("o_lamp", "小区南门的路灯不亮了")
    assert "第1张" in await wx.send("image", "o_lamp", PicUrl="https://mmbiz.qpic.cn/p/1.jpg", MediaId="m_lamp_1")
    reported = await _talk(wx, "o_lamp", ["好了", "13512340000", "否", "1"])
    assert "工单号" in reported, reported
    await logged_in(client, "liu", "staffpass1")

    pages = {who: _details(await (await client.get(f"/console/tickets/{await _number(services, who)}")).text())
             for who in ("o_meal", "o_noise", "o_lamp")}
    for who, page in pages.items():
        assert "其他信息" not in page, (who, page)
        assert not RAW_MOMENT.search(page), (who, page)
    meal = pages["o_meal"]
    assert "为谁预约</dt><dd>本人" in meal and "时间</dt><dd>11月24日" in meal, meal
    assert "候补" not in meal  # not waitlisted: no 候补：否 line
    noise = pages["o_noise"]
    assert "当事人</dt><dd>邻居" in noise and noise.count("调解时间</dt><dd>11月24日 15:00") == 1, noise
    lamp = pages["o_lamp"]
    assert "media_id" not in lamp and "m_lamp_1" not in lamp, lamp
    assert ('<a class="photo" href="https://mmbiz.qpic.cn/p/1.jpg" target="_blank" rel="noopener noreferrer">'
            "照片 1</a>") in lamp, lamp
    assert lamp.count("小区南门") == 2, lamp  # its 地点 and 问题描述; the landmark is not a row of its own


def test_a_volunteer_a_waitlist_and_an_unopenable_photo() -> None:
    texts = Texts()
    shown = dict(field_lines(texts, {
        "name": "王芳", "areas": ["助老", "环境"], "party_member": True, "consent": True, "waitlist": True,
        "location": {"latitude": 30.27, "longitude": 120.15}, "session_time": "2026-11-28T01:00:00+00:00",
        "photos": [{"media_id": "m1", "pic_url": "javascript:alert(1)"}, {"media_id": "m2"}],
    }, reveal=False, tz="Asia/Shanghai"))
    assert shown["服务方向"] == ["助老", "环境"] and shown["党员报到"] == ["是"] and shown["同意保存信息"] == ["是"]
    assert shown["候补"] == ["是"] and shown["位置"] == ["纬度：30.27", "经度：120.15"]
    assert shown["调解时间"] == ["2026-11-28 09:00"]  # no words for it kept: the moment, local
    assert shown["照片"] == [Photo("照片 1", ""), Photo("照片 2", "")]  # named, never opened as a script


async def test_a_unit_the_place_names_is_not_a_row_of_its_own(client: Client, services: Services) -> None:
    """3号楼2单元楼道灯坏了 read 地点 3栋2单元 and then 单元 2 (found on a phone-sized page, walking
    the console as a desk clerk); a unit the place does not name keeps its row."""
    wx = WeChat(client, services.settings)
    reported = await _talk(wx, "o_stair", ["3号楼2单元楼道灯坏了，晚上黑乎乎的", "跳过", "13812345678", "否", "1"])
    assert "工单号" in reported, reported
    await auth.create_user(services, "liu", "staffpass1", "staff", display_name="刘敏")
    await logged_in(client, "liu", "staffpass1")
    page = _details(await (await client.get(f"/console/tickets/{await _number(services, 'o_stair')}")).text())
    assert "<dt>地点</dt><dd>3栋2单元</dd>" in page and "<dt>单元</dt>" not in page, page
    lines = dict(field_lines(Texts(), {"place": "3号楼", "unit": "2"}, True, "Asia/Shanghai"))
    assert lines["单元"] == ["2"] and lines["地点"] == ["3号楼"]
