"""Announced outages, round two, on both backends: the console ends some buildings of an
announcement (as 恢复 停水 3 does in WeCom and "buildings" in /api), and a 全小区 announcement
said again covers the buildings that were left out of it."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from bot.services import Services
from tests.conftest import WeChat
from tests.staff_support import audit_rows, logged_in
from tests.test_outages import BEARER, STAFF, _outages, _resident, settings_overrides  # noqa: F401
from tests.wecom_driver import WeCom, load_demo_roster, outbox_rows

Client = TestClient[Any, Any]


async def _told(svc: Services) -> list[str]:
    return sorted(p.target for p in await outbox_rows(svc, "wechat"))


async def test_the_console_ends_some_buildings_of_an_announcement(client: Client, services: Services) -> None:
    await load_demo_roster(services)
    wc, wx = WeCom(client, services), WeChat(client, services.settings)
    await wc.say(STAFF, "停水 全小区 预计15:00 爆管")
    for openid, building in (("oThree", "3"), ("oFive", "5")):
        await _resident(services, openid, building)
        await wx.say(openid, "家里没水了")
        assert "已为您登记" in await wx.say(openid, "1")
    csrf = await logged_in(client, "admin", "community123")
    page = await (await client.get("/console/outages")).text()
    assert 'name="buildings" maxlength="200" size="12" placeholder="几号楼，不填=全部"' in page
    (row,) = await _outages(services)
    url = f"/console/outages/{row.id}"
    html = await (await client.post(url, data={"csrf_token": csrf, "op": "end", "buildings": "3"})).text()
    assert "已标记恢复：3号楼停水（爆管）已于今天10:00恢复。已通知登记的 1 户居民" in html
    assert "全小区（3号楼除外）停水（爆管），预计今天15:00恢复" in html  # the rest is on, listed
    assert await _told(services) == ["oThree"]
    assert "3号楼停水（爆管）已于今天10:00恢复" in await wx.say("oThree", "什么时候来水")
    assert "全小区（3号楼除外）停水" in await wx.say("oFive", "什么时候来水")
    # bad buildings get a clear answer and change nothing
    for said, answer in (("3", "3号楼不在这条通知里"), ("99", "名册里没有99号楼"), ("3楼东边", "要恢复的楼号只能写数字"),
                         ("全小区", "整条通知都恢复请不填楼号")):
        resp = await client.post(url, data={"csrf_token": csrf, "op": "end", "buildings": said})
        assert resp.status == 200 and answer in await resp.text(), said
    assert await _told(services) == ["oThree"]
    # announcing: 全小区 chosen with buildings typed is asked which is meant
    resp = await client.post("/console/outages", data={"csrf_token": csrf, "kind": "power", "whole": "1",
                                                       "buildings": "4 5"})
    assert "范围选了“全小区”就不用填楼号" in await resp.text() and len(await _outages(services)) == 2
    # a building list ends building by building too; an empty field ends what is left
    await wc.say(STAFF, "停电 4 5 6 预计16:00")
    power = (await _outages(services))[-1]
    html = await (await client.post(f"/console/outages/{power.id}", data={
        "csrf_token": csrf, "op": "end", "buildings": "4、6"})).text()
    assert "已标记恢复：4、6号楼停电已于今天10:00恢复" in html and "5号楼停电，预计今天16:00恢复" in html
    html = await (await client.post(url, data={"csrf_token": csrf, "op": "end", "buildings": ""})).text()
    assert "已标记恢复：全小区（3号楼除外）停水（爆管）已于今天10:00恢复。已通知登记的 1 户居民" in html
    assert await _told(services) == ["oFive", "oThree"]  # each told once
    ends = [(a.actor, a.detail["via"], a.detail["buildings"]) for a in await audit_rows(services, "outage.end")]
    assert ends == [("admin", "console", ["3"]), ("admin", "console", ["4", "6"]), ("admin", "console", [])]


async def test_a_whole_community_announced_again_covers_the_buildings_left_out(client: Client, services: Services) -> None:
    await load_demo_roster(services)
    wc, wx = WeCom(client, services), WeChat(client, services.settings)
    await wc.say(STAFF, "停水 全小区 预计15:00 爆管")
    await wc.say(STAFF, "恢复 停水 3")
    await wc.say(STAFF, "停水 5 预计17:00 水泵更换")  # 5 apart: left out of 全小区 too
    await _resident(services, "oFive", "5")
    await wx.say("oFive", "家里没水了")
    assert "已为您登记。5号楼停水（水泵更换）" in await wx.say("oFive", "1")
    assert "全小区（3、5号楼除外）" in await wc.say(STAFF, "停水")
    reply = await wc.say(STAFF, "停水 全小区 预计18:00")
    assert "已更新：全小区停水（爆管），预计今天18:00恢复。" in reply and "除外" not in reply
    assert "3、5号楼重新包括在内" in reply
    assert "原先的“5号楼停水（水泵更换），预计今天17:00恢复。”已并入这条" in reply
    assert "全小区停水（爆管），预计今天18:00恢复。（已登记 1 户）" in await wc.say(STAFF, "停水")
    await _resident(services, "oThree", "3")
    for openid in ("oThree", "oFive"):  # 3 ended before is off again; 5 hears the newest word
        told = await wx.say(openid, "什么时候来水")
        assert "全小区停水（爆管），预计今天18:00恢复" in told and "已于" not in told and "17:00" not in told
    updates = [a.detail for a in await audit_rows(services, "outage.update") if "included_again" in a.detail]
    assert [u["included_again"] for u in updates] == [["3", "5"]]
    # the console and the API alike; the API says which buildings are covered again
    csrf = await logged_in(client, "admin", "community123")
    await wc.say(STAFF, "恢复 停水 4")
    html = await (await client.post("/console/outages", data={
        "csrf_token": csrf, "kind": "water", "whole": "1", "expected_end": "2026-11-23T19:00"})).text()
    assert "已更新：全小区停水（爆管），预计今天19:00恢复。 4号楼重新包括在内" in html
    await wc.say(STAFF, "恢复 停水 6")
    resp = await client.post("/api/outages", json={"kind": "water", "whole": True}, headers=BEARER)
    body = await resp.json()
    assert resp.status == 200 and body["included_again"] == ["6"] and body["excluded"] == []
    assert [o.status for o in await _outages(services)].count("active") == 1
    assert "已通知登记的 1 户" in await wc.say(STAFF, "恢复 停水")
    assert await _told(services) == ["oFive"]
