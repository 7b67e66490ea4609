"""What a resident writes in traditional characters is kept as written at every question, as the
opening message is: 樓道燈壞了 typed at 请简单描述一下情况 was stored (and pushed to the grid worker,
and shown in the console) as 楼道灯坏了, while it is read in simplified characters."""

from __future__ import annotations

import uuid
from typing import Any

from aiohttp.test_utils import TestClient

from bot.console import auth
from bot.services import Services
from tests.conftest import WeChat
from tests.flow_helpers import tickets_of
from tests.staff_support import logged_in, outbox_rows


def oid() -> str:
    return "o" + uuid.uuid4().hex[:20]


async def test_a_later_answer_is_stored_as_typed_and_read_simplified(
    wx: WeChat, services: Services, client: TestClient[Any, Any]
) -> None:
    openid = oid()
    assert "哪一类问题" in await wx.say(openid, "我要報修")
    assert "问题在哪里" in await wx.say(openid, "照明")
    assert "描述" in await wx.say(openid, "5號樓2單元")
    assert "照片" in await wx.say(openid, "樓道燈壞了，晚上黑漆漆的")
    told = await wx.say(openid, "對了 燈罩也掉下來了")  # more of what happened, at the photos
    assert "燈罩也掉下來了" in told, told
    await wx.say(openid, "跳过")
    await wx.say(openid, "13912345678")
    summary = await wx.say(openid, "否")
    assert "情况：樓道燈壞了，晚上黑漆漆的；對了 燈罩也掉下來了" in summary, summary
    await wx.say(openid, "确认")
    [ticket] = await tickets_of(services, openid)
    assert ticket.fields["description"] == "樓道燈壞了，晚上黑漆漆的；對了 燈罩也掉下來了"
    assert ticket.category == "照明" and ticket.fields["building"] == "5"  # read in simplified characters
    pushed = [str(r.payload.get("text") or r.payload) for r in await outbox_rows(services, "wecom")]
    assert any("樓道燈壞了" in p for p in pushed), pushed
    await auth.create_user(services, "liu", "staffpass1", "staff", display_name="刘敏")
    await logged_in(client, "liu", "staffpass1")
    page = await (await client.get(f"/console/tickets/{ticket.number}")).text()
    assert "樓道燈壞了，晚上黑漆漆的" in page


async def test_a_mediation_matter_and_a_booking_note_are_kept_as_typed(wx: WeChat, services: Services) -> None:
    openid = oid()
    for said in ("2", "樓上"):
        await wx.say(openid, said)
    assert "沟通过吗" in await wx.say(openid, "樓上裝修太吵，每天早上七點就開始")
    for said in ("2", "都可以", "13900001111"):
        await wx.say(openid, said)
    assert "已为您登记" in await wx.say(openid, "确认")
    [ticket] = await tickets_of(services, openid)
    assert ticket.fields["issue"] == "樓上裝修太吵，每天早上七點就開始"
