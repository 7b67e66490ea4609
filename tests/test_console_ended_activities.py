"""The console's 志愿活动 page lists the ended activities too, below those not ended: latest
first, ten a page (?ended=N), each with who was still signed up at its end (name, address, the
phone masked; a withdrawn signup not listed; an erased resident said so), a cancelled one with
when, by whom and why; an activity taken out of the file with nobody signed up stays out. Who
came is not recorded, and the page says so. Both backends."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

from aiohttp.test_utils import TestClient
from sqlalchemy import select

from bot import activities
from bot.clock import FakeClock
from bot.services import Services
from storage.models import Activity, ActivitySignup, Resident
from tests.staff_support import logged_in, make_resident
from tests.test_activities import local, svc  # noqa: F401  (svc: the fixture)

Client = TestClient[Any, Any]


def _ended_part(html: str) -> str:
    return html[html.index('<h2 id="ended">'):]


async def _signups(services: Services, key: str, *who: tuple[str, str, datetime]) -> None:
    async with services.sessions() as session, session.begin():
        activity = await session.scalar(select(Activity).where(Activity.key == key))
        assert activity is not None
        for openid, status, at in who:
            session.add(ActivitySignup(activity_id=activity.id, openid=openid, status=status, created_at=at))


async def test_ended_activities_are_listed_with_who_signed_up(
    svc: Services, client: Client, clock: FakeClock,  # noqa: F811
) -> None:
    await make_resident(svc, "oE1", phone="13812345678")
    await make_resident(svc, "oE3", phone=None)
    async with svc.sessions() as session, session.begin():
        one = await session.scalar(select(Resident).where(Resident.openid == "oE1"))
        assert one is not None
        one.name, one.unit, one.room = "张阿姨", "2", "502"
        three = await session.scalar(select(Resident).where(Resident.openid == "oE3"))
        assert three is not None
        three.erased_at = clock.now()
        session.add(Activity(key="gone", title="被移除的讲座", place="", start_at=local(18, 9), end_at=local(18, 10),
                             created_at=clock.now(), cancelled_at=local(17, 9), cancelled_by=activities.CONFIG))
        session.add(Activity(key="rained", title="雨天取消的义卖", place="广场", start_at=local(19, 9),
                             end_at=local(19, 10), created_at=clock.now(), cancelled_at=local(18, 20),
                             cancelled_by="liuxin", cancel_reason="下雨"))
    await _signups(svc, "past", ("oE1", "signed", local(15, 8)), ("oE2", "cancelled", local(15, 9)),
                   ("oE3", "signed", local(16, 8)))
    await logged_in(client, "admin", "community123")
    html = await (await client.get("/console/activities")).text()
    ended = _ended_part(html)
    top = html[:html.index('<h2 id="ended">')]
    assert "上周的义诊" not in top and "楼道清洁志愿行动" in top  # the ones not ended stay above
    assert "共 2 个" in ended and ended.index("上周的义诊") < ended.index("雨天取消的义卖")  # latest first (20th, 19th)
    assert "被移除的讲座" not in ended  # taken out of the file with nobody signed up
    assert "2 人（查看名单）" in ended
    assert "张阿姨 · 3号楼2单元502 · 138****5678" in ended and "13812345678" not in html
    assert "（居民信息已删除）" in ended and "oE2" not in ended  # withdrawn: not listed
    assert "已取消" in ended and "原因：下雨" in ended and "系统不记录实际到场的人" in ended
    assert not re.search(r"\b(past|rained)\b", re.sub(r"<[^>]+>", " ", ended))  # no activity keys


async def test_ended_activities_come_a_page_at_a_time(
    svc: Services, client: Client, clock: FakeClock,  # noqa: F811
) -> None:
    async with svc.sessions() as session, session.begin():
        for n in range(23):  # 24 ended with the file's own 上周的义诊, each a day earlier
            start = local(19, 9) - timedelta(days=n)
            session.add(Activity(key=f"old{n}", title=f"旧活动{n:02d}号", place="", start_at=start,
                                 end_at=start + timedelta(hours=1), created_at=clock.now()))
    await logged_in(client, "admin", "community123")
    seen: list[str] = []
    for page in (1, 2, 3):
        ended = _ended_part(await (await client.get(f"/console/activities?ended={page}")).text())
        assert f"第 {page} / 3 页" in ended and "共 24 个" in ended
        seen += re.findall(r'<td class="title">([^<]+)</td>', ended)
        assert ('href="/console/activities?ended=%d#ended">下一页' % (page + 1) in ended) == (page < 3)
        assert ('href="/console/activities?ended=%d#ended">上一页' % (page - 1) in ended) == (page > 1)
    assert len(seen) == 24 == len(set(seen)) and seen[0] == "上周的义诊" and seen[1] == "旧活动00号"
    for bad in ("0", "x", "-3", "99999999999999999999"):  # never a 500: a page there is, or none
        resp = await client.get(f"/console/activities?ended={bad}")
        assert resp.status == 200, bad
