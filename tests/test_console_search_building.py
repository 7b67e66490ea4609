"""全部工单's search (工单号、电话、楼栋或居民说的话) by a building: 9号楼 found nothing for the lift
report of 9号楼 whose resident wrote 9栋1单元 (its 楼栋 column said 9号楼), while 3号楼 listed it —
the bot's own reply on it gives the example 补充一下：是3号楼1单元. A building searched for alone
(9号楼, 9栋, 9號樓) finds the tickets of that building, and only what residents wrote and staff
answered is searched, not the bot's words. Both backends."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

from aiohttp.test_utils import TestClient

from bot import staff_actions
from bot.console import auth
from bot.services import Services
from tests.conftest import WeChat
from tests.flow_helpers import tickets_of
from tests.staff_support import logged_in

Client = TestClient[Any, Any]


async def test_a_building_finds_its_tickets_and_the_bots_words_find_nothing(client: Client, services: Services) -> None:
    wx = WeChat(client, services.settings)
    await auth.create_user(services, "liu", "staffpass1", "staff", display_name="刘敏")
    await wx.say("o_lift", "9栋1单元电梯卡住了有人出不来")
    submitted = await wx.say("o_lift", "13700001111")
    assert "工单号" in submitted and "3号楼1单元" in submitted  # the bot's example, in its reply on the ticket
    [lift] = [t.number for t in await tickets_of(services, "o_lift")]
    await wx.say("o_noise", "转人工")
    [noise] = [t.number for t in await tickets_of(services, "o_noise")]
    await logged_in(client, "liu", "staffpass1")

    async def listed(q: str) -> set[str]:
        page = await (await client.get(f"/console/tickets?q={quote(q)}")).text()
        return set(re.findall(r'href="/console/tickets/(\d{8}-\d{4})"', page))

    for q in ("9号楼", "9栋", "9號樓", "９幢"):
        assert await listed(q) == {lift}, q
    assert await listed("3号楼") == set()
    assert await listed("19号楼") == set()
    # a staff answer is searched, as what the resident wrote is
    await staff_actions.staff_reply(services, noise, "已联系物业，明天上午去7号楼查看", "liu")
    assert await listed("7号楼") == {noise}
    assert await listed("出不来") == {lift}
