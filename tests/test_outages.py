"""Announced outages, on both backends: staff announce from the WeCom app and the console,
residents of the buildings asking or reporting through /wechat are told, those who register hear
when it ends (through the outbox), and the staff group is told once when the expected end passes."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import func, select

from bot.clock import FakeClock
from bot.console import auth
from bot.schedule import run_due
from bot.services import Services
from storage.models import Outage, OutageRegistration, Resident, Ticket
from tests.conftest import WeChat
from tests.staff_support import audit_rows, logged_in
from tests.wecom_driver import WeCom, load_demo_roster, outbox_rows

Client = TestClient[Any, Any]
STAFF = "liustaff"
TOKEN = "api-token-for-tests"
BEARER = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    """An API token for these tests."""
    return {"api_token": TOKEN}


async def _resident(svc: Services, openid: str, building: str | None) -> None:
    """A follower whose profile gives their building."""
    now = svc.clock.now()
    async with svc.sessions() as session, session.begin():
        session.add(Resident(openid=openid, building=building, subscribed=True, last_message_at=now,
                             last_inbound_at=now, window_opened_by="message", created_at=now, updated_at=now))


async def _count(svc: Services, model: Any) -> int:
    async with svc.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def _outages(svc: Services) -> list[Outage]:
    async with svc.sessions() as session:
        return list((await session.scalars(select(Outage).order_by(Outage.id))).all())


async def test_announced_outage_answers_registers_and_tells_on_its_end(client: Client, services: Services) -> None:
    await load_demo_roster(services)
    wc, wx = WeCom(client, services), WeChat(client, services.settings)
    reply = await wc.say(STAFF, "停水 3 4 5 预计15:00 管道抢修")
    assert "已发布" in reply and "3、4、5号楼停水（管道抢修），预计今天15:00恢复" in reply
    assert [(a.actor, a.detail["buildings"]) for a in await audit_rows(services, "outage.announce")] == [
        (STAFF, ["3", "4", "5"])]

    # a question, building from the message: the announcement
    answer = await wx.say("oAsk", "3号楼什么时候来水")
    assert "社区通知：3、4、5号楼停水（管道抢修），预计今天15:00恢复。" in answer
    # a report, building from the profile: known, 1 registers (no ticket, no push to anyone)
    await _resident(services, "oFour", "4")
    offer = await wx.say("oFour", "家里没水了")
    assert "社区已经知道" in offer and "回复 1 登记" in offer and "回复 2" in offer
    assert "已为您登记" in await wx.say("oFour", "1")
    # a report whose resident says it is something else: the normal report goes on
    assert "社区已经知道" in await wx.say("oFive", "5号楼停水了")
    assert "请回复 1" in await wx.say("oFive", "3")  # neither answer: asked again
    went_on = await wx.say("oFive", "2")
    assert "社区已经知道" not in went_on and "登记" not in went_on
    # a building not announced: the usual report
    assert "社区已经知道" not in await wx.say("oEight", "8号楼停水了")
    elsewhere = await wx.say("oEight2", "8号楼什么时候来水")
    assert "3、4、5号楼停水" in elsewhere and "8号楼不在通知范围内" in elsewhere
    assert await _count(services, Ticket) == 0
    assert await outbox_rows(services, "wecom") == [] and await outbox_rows(services, "wechat") == []
    async with services.sessions() as session:
        regs = list((await session.scalars(select(OutageRegistration))).all())
    assert [(r.openid, r.building) for r in regs] == [("oFour", "4")]

    # staff see the count, end building 4 only: its registered resident is told, 3 and 5 stay on
    assert "已登记 1 户" in await wc.say(STAFF, "停水")
    ended = await wc.say(STAFF, "恢复 停水 4")
    assert "已标记恢复：4号楼停水（管道抢修）已于今天10:00恢复。已通知登记的 1 户" in ended
    pushes = await outbox_rows(services, "wechat")
    assert [(p.target, "【恢复通知】4号楼停水" in p.payload["text"]) for p in pushes] == [("oFour", True)]
    assert "3、5号楼停水" in await wx.say("oAsk", "3号楼什么时候来水")
    assert "4号楼停水（管道抢修）已于今天10:00恢复" in await wx.say("oFour", "什么时候来水")
    actives = [o for o in await _outages(services) if o.status == "active"]
    assert [o.buildings for o in actives] == [["3", "5"]]
    assert [a.detail["told"] for a in await audit_rows(services, "outage.end")] == [1]


async def test_emergencies_and_other_problems_are_never_diverted(client: Client, services: Services) -> None:
    await load_demo_roster(services)
    wc, wx = WeCom(client, services), WeChat(client, services.settings)
    await wc.say(STAFF, "停气 3 预计16:00 燃气管道检修")
    await wc.say(STAFF, "停水 3 预计16:00")
    smell = await wx.say("oGas", "3号楼闻到很大的煤气味")
    assert "社区已经知道" not in smell and "社区通知" not in smell
    await wc.say(STAFF, "停电 3 预计16:00 线路抢修")
    for n, said in enumerate(["3号楼停电了 电梯里关了人出不来", "停水了 我妈摔倒了起不来", "家里没电了 楼道里冒烟了"]):
        await _resident(services, f"oUrgent{n}", "3")
        reply = await wx.say(f"oUrgent{n}", said)
        assert "社区已经知道" not in reply and "社区通知" not in reply, said
    leak = await wx.say("oLeak", "3号楼厨房水管漏水了")
    assert "社区已经知道" not in leak and "社区通知" not in leak


async def test_passed_expected_end_tells_the_staff_group_once(client: Client, services: Services, clock: FakeClock) -> None:
    await load_demo_roster(services)
    wc = WeCom(client, services)
    await wc.say(STAFF, "停电 全小区 预计11:00 线路检修")
    clock.advance(hours=1, minutes=5)
    await run_due(services)
    await run_due(services)
    posts = [p.payload["content"] for p in await outbox_rows(services, "group")]
    assert len(posts) == 1 and "全小区停电（线路检修），原定今天11:00恢复" in posts[0]
    assert "停电 全小区 预计17:00" in posts[0]
    # moved: told again only once the new end passes; ended: never
    assert "已更新" in await wc.say(STAFF, "停电 全小区 预计12:00")
    await run_due(services)
    assert len(await outbox_rows(services, "group")) == 1
    clock.advance(hours=1)
    await run_due(services)
    assert len(await outbox_rows(services, "group")) == 2
    await wc.say(STAFF, "停电 全小区 预计14:00")
    assert "已标记恢复" in await wc.say(STAFF, "恢复 停电")
    clock.advance(hours=3)
    await run_due(services)
    assert len(await outbox_rows(services, "group")) == 2


async def test_bad_commands_get_a_clear_answer_and_record_nothing(client: Client, services: Services) -> None:
    await load_demo_roster(services)
    wc = WeCom(client, services)
    assert "只有服务中心工作人员" in await wc.say("wangwei", "停水 3 预计15:00")
    assert [a.actor for a in await audit_rows(services, "wecom.outage.announce.refused")] == ["wangwei"]
    assert "没有看懂预计恢复时间" in await wc.say(STAFF, "停水 3 预计明天")
    assert "已经过去" in await wc.say(STAFF, "停水 3 预计今天9:00")
    assert "名册里没有99号楼" in await wc.say(STAFF, "停水 99 预计15:00")
    assert "请写明楼号" in await wc.say(STAFF, "停水 预计15:00")
    assert "目前没有3号楼的停水通知" in await wc.say(STAFF, "恢复 停水 3")
    assert "目前没有停水通知" in await wc.say(STAFF, "恢复 停水")
    assert await _outages(services) == []
    await wc.say(STAFF, "停水 全小区 预计15:00")
    assert "名册里没有99号楼" in await wc.say(STAFF, "恢复 停水 99")  # no building the roster lacks left out
    assert [o.status for o in await _outages(services)] == ["active"]


async def test_console_announces_moves_and_ends_with_audit(client: Client, services: Services, clock: FakeClock) -> None:
    await load_demo_roster(services)
    csrf = await logged_in(client, "admin", "community123")
    wx = WeChat(client, services.settings)
    page = await client.get("/console/outages")
    assert page.status == 200 and "近 7 天没有停水停电通知" in await page.text()
    resp = await client.post("/console/outages", data={
        "csrf_token": csrf, "kind": "water", "buildings": "3、4", "reason": "<b>爆管</b>",
        "expected_end": "2026-11-23T15:30",
    })
    html = await resp.text()
    assert resp.status == 200 and "&lt;b&gt;爆管&lt;/b&gt;" in html and "<b>爆管" not in html
    assert "预计今天15:30恢复" in html
    (row,) = await _outages(services)
    await _resident(services, "oThree", "3")
    await wx.say("oThree", "家里没水了")
    await wx.say("oThree", "1")
    resp = await client.post(f"/console/outages/{row.id}", data={
        "csrf_token": csrf, "op": "end_time", "expected_end": "2026-11-23T18:00"})
    assert "预计今天18:00恢复" in await resp.text()
    resp = await client.post(f"/console/outages/{row.id}", data={"csrf_token": csrf, "op": "end_time",
                                                                 "expected_end": "yesterday"})
    assert "格式不对" in await resp.text()
    resp = await client.post("/console/outages", data={"csrf_token": csrf, "kind": "water", "buildings": "3楼东边"})
    assert "楼号只能写" in await resp.text()
    resp = await client.post(f"/console/outages/{row.id}", data={"csrf_token": csrf, "op": "end"})
    assert "已通知登记的 1 户居民" in await resp.text()
    assert [p.target for p in await outbox_rows(services, "wechat")] == ["oThree"]
    actions = [(a.actor, a.action) for a in await audit_rows(services) if a.action.startswith("outage.")]
    assert actions == [("admin", "outage.announce"), ("admin", "outage.update"), ("admin", "outage.end")]
    resp = await client.post(f"/console/outages/{row.id}", data={"csrf_token": csrf, "op": "end"})
    assert "已经恢复了" in await resp.text()
    assert (await client.post("/console/outages/999", data={"csrf_token": csrf, "op": "end"})).status == 404


async def test_console_read_only_users_see_the_list_but_change_nothing(client: Client, services: Services) -> None:
    await load_demo_roster(services)
    await WeCom(client, services).say(STAFF, "停水 3 预计15:00")
    await auth.create_user(services, "ro", "readonly1", "readonly", display_name="只读")
    csrf = await logged_in(client, "ro", "readonly1")
    page = await (await client.get("/console/outages")).text()
    assert "3号楼停水，预计今天15:00恢复" in page and "发布通知" not in page and "已恢复</button>" not in page
    (row,) = await _outages(services)
    resp = await client.post(f"/console/outages/{row.id}", data={"csrf_token": csrf, "op": "end"})
    assert resp.status == 403
    resp = await client.post("/console/outages", data={"csrf_token": csrf, "kind": "water", "whole": "1"})
    assert resp.status == 403
    assert [o.status for o in await _outages(services)] == ["active"]


async def test_api_announces_updates_and_ends(client: Client, services: Services) -> None:
    await load_demo_roster(services)
    assert (await client.get("/api/outages")).status == 401
    resp = await client.post("/api/outages", json={"kind": "heat", "buildings": [8, "9"], "reason": "换热站检修",
                                                   "expected_end": "2026-11-23T18:00"}, headers=BEARER)
    body = await resp.json()
    assert resp.status == 201 and body["buildings"] == ["8", "9"] and body["status"] == "active"
    assert body["text"] == "8、9号楼停暖（换热站检修），预计今天18:00恢复。"
    again = await client.post("/api/outages", json={"kind": "heat", "buildings": ["9", "8"],
                                                    "expected_end": "2026-11-23T20:00+08:00"}, headers=BEARER)
    assert again.status == 200 and (await again.json())["id"] == body["id"]
    for bad in ({"kind": "wind", "whole": True}, {"kind": "water"}, {"kind": "water", "buildings": "3"},
                {"kind": "water", "whole": True, "expected_end": "soon"},
                {"kind": "water", "whole": True, "expected_end": "2026-11-23T09:00"}):
        resp = await client.post("/api/outages", json=bad, headers=BEARER)
        assert resp.status == 400 and (await resp.json())["error"], bad
    oid = body["id"]
    resp = await client.post(f"/api/outages/{oid}", json={"action": "update"}, headers=BEARER)
    assert resp.status == 400
    resp = await client.post(f"/api/outages/{oid}", json={"action": "end", "buildings": ["9"]}, headers=BEARER)
    ended = await resp.json()
    assert resp.status == 200 and ended["buildings"] == ["9"] and ended["status"] == "ended" and ended["told"] == 0
    listed = await (await client.get("/api/outages", headers=BEARER)).json()
    assert [(o["buildings"], o["status"]) for o in listed] == [(["8"], "active"), (["9"], "ended")]
    resp = await client.post(f"/api/outages/{ended['id']}", json={"action": "end"}, headers=BEARER)
    assert resp.status == 409
    assert (await client.post("/api/outages/999", json={"action": "end"}, headers=BEARER)).status == 404
    assert [a.actor for a in await audit_rows(services) if a.action.startswith("outage.")] == ["api"] * 3


async def test_residents_without_a_building_and_after_the_recent_hours(client: Client, services: Services,
                                                                       clock: FakeClock) -> None:
    await load_demo_roster(services)
    wc, wx = WeCom(client, services), WeChat(client, services.settings)
    await wc.say(STAFF, "停电 3 4 预计12:00 变压器检修")
    # no building said nor known: the question hears every announcement of that kind
    assert "3、4号楼停电（变压器检修）" in await wx.say("oNowhere", "什么时候来电")
    # a report without a building is not diverted: the report asks where
    assert "社区已经知道" not in await wx.say("oNowhere2", "家里停电了")
    await wc.say(STAFF, "恢复 停电")
    assert "已于今天10:00恢复" in await wx.say("oThree", "3号楼什么时候来电")
    clock.advance(hours=7)
    assert "已于" not in await wx.say("oThree2", "3号楼什么时候来电")


async def test_another_process_announcement_reaches_residents_within_the_cache_time(
        client: Client, services: Services, clock: FakeClock) -> None:
    from bot import outages

    await load_demo_roster(services)
    wx = WeChat(client, services.settings)
    assert "社区通知" not in await wx.say("oA", "3号楼什么时候来水")  # the (empty) list is now held
    now = clock.now()
    async with services.sessions() as session, session.begin():  # as another process writes it
        session.add(Outage(kind="water", buildings=["3"], reason="", expected_end=None, status="active",
                           created_by="other", created_at=now, updated_at=now))
    assert "社区通知" not in await wx.say("oB", "3号楼什么时候来水")
    clock.advance(seconds=outages.CACHE_TTL.total_seconds() + 1)
    assert "3号楼停水，恢复时间待定" in await wx.say("oC", "3号楼什么时候来水")


async def test_the_reply_path_reads_outages_only_for_outage_words_and_once_per_cache_time(
        client: Client, services: Services, clock: FakeClock) -> None:
    from sqlalchemy import event

    from bot import outages

    read: list[str] = []

    def seen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if "FROM outages" in statement:
            read.append(statement)

    await load_demo_roster(services)
    wc, wx = WeCom(client, services), WeChat(client, services.settings)
    await wc.say(STAFF, "停水 3 预计15:00")
    event.listen(services.engine.sync_engine, "before_cursor_execute", seen)
    try:
        await wx.say("oLamp", "3号楼2单元楼道灯坏了")
        await wx.say("oHi", "你好")
        assert read == []
        for n in range(3):
            assert "社区通知" in await wx.say(f"oAsk{n}", "3号楼什么时候来水")
        assert len(read) == 1
        clock.advance(seconds=outages.CACHE_TTL.total_seconds() + 1)
        assert "社区通知" in await wx.say("oAsk9", "3号楼什么时候来水")
        assert len(read) == 2
    finally:
        event.remove(services.engine.sync_engine, "before_cursor_execute", seen)


async def test_a_message_read_while_an_announcement_commits_does_not_keep_the_old_list(services: Services) -> None:
    from bot import outages

    await load_demo_roster(services)
    async with services.sessions() as staff, staff.begin():
        await outages.announce(services, staff, kind="water", buildings=["3"], reason="", expected_end=None,
                               actor=STAFF, via="test")
        async with services.sessions() as resident:  # a resident's message meanwhile: nothing yet
            assert await outages.current(services, resident) == ()
    async with services.sessions() as resident:
        assert [n.buildings for n in await outages.current(services, resident)] == [("3",)]


async def test_erasing_my_information_removes_my_registrations(client: Client, services: Services) -> None:
    await load_demo_roster(services)
    wc, wx = WeCom(client, services), WeChat(client, services.settings)
    await wc.say(STAFF, "停水 3 预计15:00")
    await _resident(services, "oGone", "3")
    await wx.say("oGone", "家里没水了")
    await wx.say("oGone", "1")
    assert await _count(services, OutageRegistration) == 1
    assert "确定要删除" in await wx.say("oGone", "删除我的信息")
    assert "已删除" in await wx.say("oGone", "1")
    assert await _count(services, OutageRegistration) == 0
    (erased,) = await audit_rows(services, "resident_erased")
    assert erased.detail["outage_registrations_removed"] == 1
    assert "已通知登记的 0 户" in await wc.say(STAFF, "恢复 停水")
    assert await outbox_rows(services, "wechat") == []


async def test_a_report_without_a_building_hears_the_announcement_once_the_building_is_said(
        client: Client, services: Services) -> None:
    await load_demo_roster(services)
    wc, wx = WeCom(client, services), WeChat(client, services.settings)
    await wc.say(STAFF, "停水 3 4 预计15:00 管道抢修")
    # 家里没水了, no building in the words nor the profile: where? then 3号楼 is in the announcement
    asked = await wx.say("oOld", "家里没水了")
    assert "社区已经知道" not in asked and "问题在哪里" in asked
    offer = await wx.say("oOld", "3号楼")
    assert "社区已经知道" in offer and "3、4号楼停水（管道抢修），预计今天15:00恢复" in offer
    assert "回复 1 登记" in offer and "回复 2" in offer
    assert "已为您登记" in await wx.say("oOld", "1")
    # 2: the report goes on where it was (the building kept, not asked again), once only
    await wx.say("oGoOn", "家里没水了")
    assert "社区已经知道" in await wx.say("oGoOn", "4号楼2单元301")
    assert "请回复 1" in await wx.say("oGoOn", "5")
    went_on = await wx.say("oGoOn", "2")
    assert "社区已经知道" not in went_on and "问题在哪里" not in went_on and "拍张照片" in went_on
    for said in ("好了", "13812345678", "否"):
        assert "社区已经知道" not in await wx.say("oGoOn", said), said
    assert "20261123-0001" in await wx.say("oGoOn", "确认")
    # anything else than 1 / 2 under the midway question is answered in the report, not lost
    await wx.say("oPhone", "家里没水了")
    assert "社区已经知道" in await wx.say("oPhone", "3号楼")
    added = await wx.say("oPhone", "不是停水 是水管冻住了")
    assert "已补充到情况：不是停水 是水管冻住了" in added and "拍张照片" in added
    async with services.sessions() as session:
        tickets = list((await session.scalars(select(Ticket).order_by(Ticket.id))).all())
        regs = list((await session.scalars(select(OutageRegistration))).all())
    assert [(t.building, t.fields["room"]) for t in tickets] == [("4", "301")]
    assert [(r.openid, r.building) for r in regs] == [("oOld", "3")]
    assert "联系电话" in await wx.say("oPhone", "好了")
    # a building not announced: the usual report
    await wx.say("oEight", "家里没水了")
    assert "社区已经知道" not in await wx.say("oEight", "8号楼")
    # an emergency said without a building is never diverted once the building comes
    await wx.say("oUrgent", "停水了 我妈摔倒了起不来")
    assert "社区已经知道" not in await wx.say("oUrgent", "3号楼")


async def test_a_whole_community_announcement_needs_no_building(client: Client, services: Services) -> None:
    await load_demo_roster(services)
    wc, wx = WeCom(client, services), WeChat(client, services.settings)
    await wc.say(STAFF, "停电 全小区 预计15:00 线路检修")
    offer = await wx.say("oAny", "家里停电了")
    assert "社区已经知道" in offer and "全小区停电（线路检修）" in offer
    went_on = await wx.say("oAny", "2")
    assert "问题在哪里" in went_on
    assert "社区已经知道" not in await wx.say("oAny", "6号楼")  # declined once: not asked again


async def test_an_outage_question_in_the_middle_of_another_request_is_answered_and_the_request_goes_on(
        client: Client, services: Services) -> None:
    await load_demo_roster(services)
    wc, wx = WeCom(client, services), WeChat(client, services.settings)
    await wc.say(STAFF, "停水 3 4 预计15:00 管道抢修")
    await _resident(services, "oLamp", "3")
    await wx.say("oLamp", "3号楼2单元楼道灯坏了")
    asked = await wx.say("oLamp", "什么时候来水")  # where a photo is asked
    assert "社区通知：3、4号楼停水（管道抢修），预计今天15:00恢复。" in asked and "拍张照片" in asked
    assert "以维修单位的说明为准" not in asked  # not the generic FAQ answer
    await wx.say("oLamp", "好了")
    asked = await wx.say("oLamp", "8号楼什么时候来水啊")  # where the phone is asked
    assert "8号楼不在通知范围内" in asked and "联系电话" in asked
    for said in ("13812345678", "否"):
        await wx.say("oLamp", said)
    assert "20261123-0001" in await wx.say("oLamp", "确认")
    # a booking in progress: the same, and the booking's question again
    await wx.say("oMeal", "我要预约助餐")
    asked = await wx.say("oMeal", "3号楼什么时候来水")
    assert "社区通知：3、4号楼停水" in asked and "给谁预约" in asked
    # nothing announced of that kind: the FAQ's answer as before
    asked = await wx.say("oMeal", "什么时候来电")
    assert "社区通知" not in asked and "以维修单位的说明为准" in asked and "给谁预约" in asked
    async with services.sessions() as session:
        assert [t.building for t in (await session.scalars(select(Ticket))).all()] == ["3"]
