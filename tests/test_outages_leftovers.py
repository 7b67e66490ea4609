"""Announced outages, the cases clerks and residents met after the first version, on both backends:
a 1 / 2 answered long after the question, a 全小区
announcement ending building by building, the same announcement made at once by two processes,
and a building announced again while an older announcement of it is open."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import event, select

from bot import outages
from bot.app import create_app
from bot.clock import FakeClock
from bot.services import Services, open_services
from storage.models import OutageRegistration
from tests.conftest import WeChat
from tests.staff_support import audit_rows
from tests.test_outages import BEARER, STAFF, _outages, _resident, settings_overrides  # noqa: F401
from tests.wecom_driver import WeCom, load_demo_roster, outbox_rows

Client = TestClient[Any, Any]


async def test_a_one_or_two_long_after_the_offer_is_asked_again_with_the_announcement_as_it_is_now(
        client: Client, services: Services, clock: FakeClock) -> None:
    await load_demo_roster(services)
    wc, wx = WeCom(client, services), WeChat(client, services.settings)
    await wc.say(STAFF, "停水 3 4 预计15:00 管道抢修")
    await _resident(services, "oSlow", "3")
    assert "回复 1 登记" in await wx.say("oSlow", "家里没水了")
    clock.advance(minutes=15)
    await wc.say(STAFF, "停水 3 4 预计17:00")  # moved meanwhile
    again = await wx.say("oSlow", "1")
    assert "您是在回复刚才的登记吗" in again and "预计今天17:00恢复" in again and "哪一类" not in again
    assert "已为您登记" in await wx.say("oSlow", "1")  # answered now: registered
    # midway (the building said after 家里没水了): a late 2 is not the photo question's answer
    await wx.say("oMid", "家里没水了")
    assert "回复 1 登记" in await wx.say("oMid", "3号楼")
    clock.advance(minutes=12)
    assert "您是在回复刚才的登记吗" in await wx.say("oMid", "2")
    assert "拍张照片" in await wx.say("oMid", "2")
    # ended meanwhile: told so, and the report goes on where it was
    await wx.say("oLate", "家里没水了")
    assert "回复 1 登记" in await wx.say("oLate", "4号楼")
    clock.advance(minutes=11)
    await wc.say(STAFF, "恢复 停水")
    late = await wx.say("oLate", "1")
    assert "已于今天" in late and "恢复" in late and "拍张照片" in late
    async with services.sessions() as session:
        regs = list((await session.scalars(select(OutageRegistration))).all())
    assert [r.openid for r in regs] == ["oSlow"]


async def test_a_whole_community_announcement_ends_building_by_building(client: Client, services: Services) -> None:
    await load_demo_roster(services)
    wc, wx = WeCom(client, services), WeChat(client, services.settings)
    await wc.say(STAFF, "停水 全小区 预计15:00 爆管")
    for openid, building in (("oThree", "3"), ("oFive", "5"), ("oNone", None)):
        await _resident(services, openid, building)
        assert "全小区停水（爆管）" in await wx.say(openid, "家里没水了" if building else "3号楼没水了")
        assert "已为您登记" in await wx.say(openid, "1")
    ended = await wc.say(STAFF, "恢复 停水 3")
    assert "已标记恢复：3号楼停水（爆管）已于今天10:00恢复。已通知登记的 2 户居民" in ended
    pushes = [(p.target, p.payload["text"]) for p in await outbox_rows(services, "wechat")]
    assert sorted(t for t, _ in pushes) == ["oNone", "oThree"]  # oNone registered saying 3号楼
    assert all("【恢复通知】3号楼停水" in text for _, text in pushes)
    listed = await wc.say(STAFF, "停水")
    assert "全小区（3号楼除外）停水（爆管），预计今天15:00恢复。（已登记 1 户）" in listed
    assert "3号楼停水（爆管）已于今天10:00恢复" in await wx.say("oThree", "什么时候来水")
    assert "全小区（3号楼除外）停水" in await wx.say("oFive", "什么时候来水")
    # the API shows it; ending 3 again or an unknown building is refused; the rest ends with all told
    rows = await (await client.get("/api/outages", headers=BEARER)).json()
    assert [(o["whole"], o["excluded"], o["status"], o["registered"]) for o in rows] == [
        (True, ["3"], "active", 1), (False, [], "ended", 2)]
    assert "目前没有3号楼的停水通知" in await wc.say(STAFF, "恢复 停水 3")
    assert "名册里没有99号楼" in await wc.say(STAFF, "恢复 停水 99")
    resp = await client.post(f"/api/outages/{rows[0]['id']}", json={"action": "end", "buildings": ["4"]},
                             headers=BEARER)
    assert resp.status == 200 and (await resp.json())["buildings"] == ["4"]
    assert "已通知登记的 1 户" in await wc.say(STAFF, "恢复 停水 全小区")
    assert sorted(p.target for p in await outbox_rows(services, "wechat")) == ["oFive", "oNone", "oThree"]
    assert [o.status for o in await _outages(services)] == ["ended", "ended", "ended"]
    assert [a.detail["buildings"] for a in await audit_rows(services, "outage.end")] == [["3"], ["4"], []]


async def test_a_building_announced_again_takes_it_from_the_older_announcement(client: Client, services: Services) -> None:
    await load_demo_roster(services)
    wc, wx = WeCom(client, services), WeChat(client, services.settings)
    await wc.say(STAFF, "停水 3 4 预计15:00 管道抢修")
    for openid in ("oThree", "oPending"):
        await _resident(services, openid, "3")
        assert "回复 1 登记" in await wx.say(openid, "家里没水了")
    await wx.say("oThree", "1")
    reply = await wc.say(STAFF, "停水 3 预计17:00 水泵更换")  # 3 is longer: one end per building
    assert "已发布：3号楼停水（水泵更换），预计今天17:00恢复" in reply
    assert "原先的通知已改为：4号楼停水（管道抢修），预计今天15:00恢复" in reply
    told = await wx.say("oAsk", "3号楼什么时候来水")
    assert "预计今天17:00恢复" in told and "15:00" not in told
    # asked before the change, answered after: registered for what 3号楼 has now
    assert "已为您登记。3号楼停水（水泵更换），预计今天17:00恢复" in await wx.say("oPending", "1")
    resp = await client.post("/api/outages", json={"kind": "water", "buildings": ["4", "5"]}, headers=BEARER)
    body = await resp.json()
    assert resp.status == 201 and [(t["buildings"], t["status"]) for t in body["taken"]] == [(["4"], "merged")]
    assert "已登记 2 户" in await wc.say(STAFF, "停水")  # both registrations went with building 3
    await wc.say(STAFF, "停水 全小区 预计18:00")  # the whole community now: every older one merged into it
    assert sorted(o.status for o in await _outages(services)) == ["active", "merged", "merged", "merged"]
    assert "已通知登记的 2 户" in await wc.say(STAFF, "恢复 停水")
    assert sorted(p.target for p in await outbox_rows(services, "wechat")) == ["oPending", "oThree"]


async def test_the_same_announcement_from_two_workers_at_once_is_one(client: Client, services: Services) -> None:
    await load_demo_roster(services)
    other = open_services(services.settings, clock=services.clock)
    try:
        async with TestClient(TestServer(create_app(other.settings, services=other))) as second:
            body = {"kind": "water", "buildings": ["3", "4"], "expected_end": "2026-11-23T15:00"}
            answers = await asyncio.gather(*(c.post("/api/outages", json=body, headers=BEARER)
                                             for c in (client, second, client, second)))
            statuses = sorted(r.status for r in answers)
            ids = {(await r.json())["id"] for r in answers}
    finally:
        await other.close()
    assert statuses == [200, 200, 200, 201] and len(ids) == 1
    assert [(o.buildings, o.status) for o in await _outages(services)] == [(["3", "4"], "active")]


async def test_an_announcement_racing_one_not_yet_committed_updates_it(services: Services) -> None:
    """Two processes: the first has written the announcement but not committed it when the second,
    which found none, writes the same; the second waits and updates the first's row."""
    await load_demo_roster(services)
    at_insert = threading.Event()

    async def second_process() -> bool:
        svc = open_services(services.settings, clock=services.clock)

        def seen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
            if statement.startswith("INSERT INTO outages"):
                at_insert.set()

        event.listen(svc.engine.sync_engine, "before_cursor_execute", seen)
        try:
            async with svc.sessions() as session, session.begin():
                _, new = await outages.announce(svc, session, kind="power", buildings=["5"], reason="",
                                                expected_end=None, actor="api", via="api")
            return new
        finally:
            await svc.close()

    async with services.sessions() as session, session.begin():
        first, new = await outages.announce(services, session, kind="power", buildings=["5"], reason="线路检修",
                                            expected_end=None, actor=STAFF, via="wecom")
        racing = asyncio.ensure_future(asyncio.to_thread(asyncio.run, second_process()))
        assert await asyncio.to_thread(at_insert.wait, 20)
    assert new and await racing is False
    assert [(o.id, o.status) for o in await _outages(services)] == [(first.id, "active")]
    assert [a.action for a in await audit_rows(services) if a.action.startswith("outage.")] == [
        "outage.announce", "outage.update"]


def test_0009_gives_existing_announcements_their_key_without_failing_on_twins(tmp_path: Path) -> None:
    """Announcements made before the unique index get their key from their buildings; two active
    twins (the race it now prevents) keep both rows, the later with its own key, instead of the
    upgrade failing."""
    from tests.test_migrations import _upgraded

    insert = ("INSERT INTO outages (id, kind, buildings, reason, status, created_by, created_at, updated_at)"
              " VALUES (?, ?, ?, '', ?, 'liustaff', '2026-11-23 00:00:00', '2026-11-23 00:00:00')")
    db = _upgraded(tmp_path, "0008", [(insert, row) for row in [
        (1, "water", '["4", "3"]', "active"), (2, "water", '["3", "4"]', "active"), (3, "power", "[]", "active"),
        (4, "water", '["3", "4"]', "ended"),
    ]])
    try:
        keys = db.execute("SELECT id, scope_key, excluded FROM outages ORDER BY id").fetchall()
        indexes = {row[1] for row in db.execute("PRAGMA index_list('outages')")}
    finally:
        db.close()
    assert keys == [(1, "3,4", "[]"), (2, "3,4#2", "[]"), (3, "*", "[]"), (4, "3,4", "[]")]
    assert "uq_outages_active_scope" in indexes


async def test_a_question_from_an_unknown_building_is_offered_registration_and_its_building_read(
    client: Any, services: Services
) -> None:
    """暖气怎么不热了 冻死了 while 5、6号楼停暖 was announced heard the announcement and 恢复后会在这里通知
    登记过的居民 with no way to register; 5号楼 said next got 没太明白 and the menu. The question is
    offered the 1 登记 / 2 报修 of a report, and a building said next is read as where they live.
    And 我家5号楼2单元 暖气片冰凉 began a report (暖气片冰凉 named no outage): it is offered too."""
    from storage.models import OutageRegistration
    from sqlalchemy import select
    from tests.conftest import WeChat
    from tests.wecom_driver import WeCom, load_demo_roster

    await load_demo_roster(services)
    wc, wx = WeCom(client, services), WeChat(client, services.settings)
    assert "已发布" in await wc.say("liustaff", "停暖 5 6 预计明天8:00 锅炉检修")
    told = await wx.say("oHeatAsk", "暖气怎么不热了 冻死了")
    assert "社区通知：5、6号楼停暖（锅炉检修）" in told and "回复 1 登记" in told and "几号楼" in told, told
    assert "已为您登记" in await wx.say("oHeatAsk", "5号楼")
    told = await wx.say("oHeatFar", "暖气什么时候能热啊")
    assert "回复 1 登记" in told, told
    told = await wx.say("oHeatFar", "我住8号楼")
    assert "8号楼不在通知范围内" in told, told
    told = await wx.say("oHeatLow", "暖气一点都不热")  # a report from a building not known: where, first
    assert "问题在哪里" in told, told
    assert "社区已经知道" in await wx.say("oHeatLow", "6号楼3单元")
    told = await wx.say("oHeatCold", "我家5号楼2单元 暖气片冰凉")
    assert "社区已经知道" in told and "回复 1 登记" in told, told
    assert "已为您登记" in await wx.say("oHeatCold", "1")
    async with services.sessions() as session:
        who = {r.openid: r.building for r in await session.scalars(select(OutageRegistration))}
    assert who == {"oHeatAsk": "5", "oHeatCold": "5"}
