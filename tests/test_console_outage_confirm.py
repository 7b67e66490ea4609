"""The 已恢复 dialog of the console's 停水停电 page says how many residents will be told, counted on
the server by the rule the end uses (bot.outages.to_tell): of the whole announcement in the page,
of the buildings typed through /console/outages/{id}/confirm. Both backends."""

from __future__ import annotations

import html
from datetime import timedelta
from typing import Any

from aiohttp.test_utils import TestClient
from sqlalchemy import update

from bot import outages
from bot.clock import FakeClock
from bot.console import auth
from bot.services import Services
from storage.models import Resident
from tests.staff_support import logged_in
from tests.test_outages import _resident
from tests.wecom_driver import load_demo_roster

Client = TestClient[Any, Any]


async def _whole_cut(svc: Services, clock: FakeClock) -> int:
    """A 全小区 water cut: registered from 3号楼 two residents (one has unfollowed), from 5号楼 one."""
    await load_demo_roster(svc)
    now = clock.now()
    async with svc.sessions() as session, session.begin():
        water, _ = await outages.announce(svc, session, kind="water", buildings=(), reason="主管道爆管",
                                          expected_end=now + timedelta(hours=5), actor="liustaff", via="wecom")
    for openid, building in (("oThreeA", "3"), ("oThreeB", "3"), ("oFive", "5")):
        await _resident(svc, openid, building)
        async with svc.sessions() as session, session.begin():
            await outages.register(session, outages.notice_of(water), openid, building, now)
    async with svc.sessions() as session, session.begin():
        await session.execute(update(Resident).where(Resident.openid == "oThreeB").values(subscribed=False))
    return water.id


async def test_the_end_dialog_counts_whom_the_end_tells(client: Client, services: Services, clock: FakeClock) -> None:
    """It said 只填了楼号则只恢复这几栋…这些楼登记的居民会收到通知 without a number, and the whole
    announcement's number counted residents who no longer follow the account (never told)."""
    outage_id = await _whole_cut(services, clock)
    csrf = await logged_in(client, "admin", "community123")
    page = html.unescape(await (await client.get("/console/outages")).text())
    assert 'data-confirm="确定已恢复？登记的 2 户居民会收到通知。"' in page
    assert "恢复时通知 2 户" in page  # beside 登记户数 3: the one who unfollowed is not told
    assert f'data-confirm-url="/console/outages/{outage_id}/confirm"' in page
    asked = await client.get(f"/console/outages/{outage_id}/confirm", params={"buildings": "3号楼"})
    assert await asked.json() == {"confirm": "确定3号楼已恢复？其余楼栋仍未恢复；3号楼登记的 1 户居民会收到通知。"}
    asked = await client.get(f"/console/outages/{outage_id}/confirm", params={"buildings": "3、5"})
    assert (await asked.json())["confirm"].endswith("登记的 2 户居民会收到通知。")
    asked = await client.get(f"/console/outages/{outage_id}/confirm", params={"buildings": ""})
    assert await asked.json() == {"confirm": "确定已恢复？登记的 2 户居民会收到通知。"}
    asked = await client.get(f"/console/outages/{outage_id}/confirm", params={"buildings": "3楼东边"})
    assert asked.status == 200 and "要恢复的楼号只能写数字或楼名" in (await asked.json())["error"]
    assert (await client.get("/console/outages/999/confirm")).status == 404
    huge = "9" * 20  # beyond what the databases hold: no outage, not a server error
    assert (await client.get(f"/console/outages/{huge}/confirm")).status == 404
    resp = await client.post(f"/console/outages/{huge}", data={"csrf_token": csrf, "op": "end"})
    assert resp.status == 404 and "没有这条通知" in await resp.text()
    # the end tells the number the dialog said
    resp = await client.post(f"/console/outages/{outage_id}", data={"csrf_token": csrf, "op": "end", "buildings": "3"})
    assert "已通知登记的 1 户居民" in await resp.text()
    asked = await client.get(f"/console/outages/{outage_id}/confirm", params={"buildings": ""})
    assert await asked.json() == {"confirm": "确定已恢复？登记的 1 户居民会收到通知。"}


async def test_a_read_only_user_is_not_given_the_count(client: Client, services: Services, clock: FakeClock) -> None:
    outage_id = await _whole_cut(services, clock)
    await auth.create_user(services, "ro", "readonly1", "readonly", display_name="只读")
    await logged_in(client, "ro", "readonly1")
    assert (await client.get(f"/console/outages/{outage_id}/confirm", params={"buildings": "3"})).status == 403
