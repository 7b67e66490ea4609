"""Volunteer activities: loaded from TOML, signed up for, reminded the evening before at 19:00 and
thanked afterwards; cancelled or moved activities never send a stale reminder."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from bot import activities
from bot.clock import FakeClock
from bot.schedule import run_due
from bot.services import Services, open_services
from storage.models import Activity, OutboxItem
from tests.conftest import WeChat
from tests.staff_support import audit_rows
from tests.wecom_driver import WeCom, load_demo_roster

TZ = ZoneInfo("Asia/Shanghai")

TOML = """
[[activities]]
key = "clean"
title = "楼道清洁志愿行动"
place = "3号楼前广场"
start = "2026-11-26 09:00"
end = "2026-11-26 11:00"

[[activities]]
key = "visit"
title = "敬老院探访"
place = "日间照料中心"
start = "2026-11-30 14:00"
end = "2026-11-30 16:00"

[[activities]]
key = "past"
title = "上周的义诊"
place = "服务中心"
start = "2026-11-20 09:00"
end = "2026-11-20 11:00"
"""


def local(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=TZ).astimezone(timezone.utc)


@pytest.fixture
async def svc(services: Services, tmp_path: Path) -> Services:
    path = tmp_path / "activities.toml"
    path.write_text(TOML, encoding="utf-8")
    assert await activities.load_activities(services, path) == 3
    services.extras["test.activities_path"] = path
    return services


async def sign(svc: Services, openid: str, name: str) -> activities.SignupResult:
    async with svc.sessions() as session, session.begin():
        return await activities.sign_up(svc, session, openid, name)


async def cancel(svc: Services, openid: str, name: str) -> activities.SignupResult:
    async with svc.sessions() as session, session.begin():
        return await activities.cancel_signup(svc, session, openid, name)


async def wechat_to(svc: Services, openid: str) -> list[str]:
    async with svc.sessions() as session:
        rows = await session.scalars(
            select(OutboxItem).where(OutboxItem.target == openid).order_by(OutboxItem.id)
        )
        return [str(r.payload["text"]) for r in rows]


async def test_loading_upserts_by_key(svc: Services, tmp_path: Path) -> None:
    path = tmp_path / "more.toml"
    path.write_text(TOML.replace("3号楼前广场", "4号楼前广场"), encoding="utf-8")
    assert await activities.load_activities(svc, path) == 3
    async with svc.sessions() as session:
        rows = list(await session.scalars(select(Activity).order_by(Activity.key)))
    assert [(a.key, a.place) for a in rows][0] == ("clean", "4号楼前广场")
    assert len(rows) == 3


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('[[activities]]\nkey = "x"\ntitle = "t"\nstart = "2026-11-26"\nend = "2026-11-26 11:00"\n', "YYYY-MM-DD HH:MM"),
        ('[[activities]]\nkey = "x"\ntitle = "t"\nstart = "2026-11-26 11:00"\nend = "2026-11-26 09:00"\n', "end must be after"),
        ('[[activities]]\ntitle = "t"\nstart = "2026-11-26 09:00"\nend = "2026-11-26 11:00"\n', "key and title"),
    ],
)
def test_bad_activity_files_are_refused_with_the_entry_named(tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ValueError, match=problem) as info:
        activities.read_activities(path, "Asia/Shanghai")
    assert "activities[0]" in str(info.value)


async def test_the_repository_activities_file_loads(services: Services) -> None:
    assert await activities.load_activities(services) >= 1


async def test_upcoming_lists_what_has_not_started(svc: Services, clock: FakeClock) -> None:
    async with svc.sessions() as session:
        keys = [a.key for a in await activities.list_upcoming(session, clock.now())]
    assert keys == ["clean", "visit"]


async def test_sign_up_reminds_the_evening_before_and_thanks_afterwards(svc: Services, clock: FakeClock) -> None:
    result = await sign(svc, "o_vol", "楼道清洁")
    assert result.status == "signed" and "报名成功" in result.reply and "11月26日 09:00–11:00" in result.reply
    clock.set(local(25, 18, 59))
    await run_due(svc)
    assert await wechat_to(svc, "o_vol") == []
    clock.set(local(25, 19))
    await run_due(svc)
    [reminder] = await wechat_to(svc, "o_vol")
    assert "明天 09:00" in reminder and "3号楼前广场" in reminder
    for hour in (8, 12):  # the hour-before reminder at its time, the thank-you after the end
        clock.set(local(26, hour))
        await run_due(svc)
    texts = await wechat_to(svc, "o_vol")  # the evening before, an hour before, the thank-you
    assert len(texts) == 3 and "将于 09:00 开始" in texts[1] and "感谢您参加" in texts[2]
    clock.set(local(28, 12))
    assert await run_due(svc) == 0


async def test_signing_up_twice_or_too_late_or_for_nothing(svc: Services) -> None:
    assert (await sign(svc, "o_vol", "clean")).status == "signed"
    again = await sign(svc, "o_vol", "楼道清洁志愿行动")
    assert again.status == "already" and "已经报过名" in again.reply
    late = await sign(svc, "o_vol", "义诊")
    assert late.status == "started" and "敬老院探访" in late.reply
    missing = await sign(svc, "o_vol", "<b>广场舞</b>")
    assert missing.status == "not_found" and "敬老院探访" in missing.reply and missing.activity is None



async def test_an_unknown_name_when_nothing_is_coming(svc: Services, clock: FakeClock) -> None:
    clock.advance(days=365)  # every activity of the file is over
    missing = await sign(svc, "o_vol", "广场舞")
    assert missing.status == "not_found" and "近期也暂时没有" in missing.reply and "近期活动有" not in missing.reply


async def test_cancelled_signup_sends_nothing_and_can_sign_again(svc: Services, clock: FakeClock) -> None:
    await sign(svc, "o_vol", "clean")
    assert (await cancel(svc, "o_vol", "clean")).status == "cancelled"
    assert (await cancel(svc, "o_vol", "clean")).status == "not_signed"
    clock.set(local(26, 12))
    await run_due(svc)
    assert await wechat_to(svc, "o_vol") == []
    assert (await sign(svc, "o_vol", "敬老院")).status == "signed"
    await sign(svc, "o_vol", "clean")  # too late now: started
    clock.set(local(29, 19))
    await run_due(svc)
    assert len(await wechat_to(svc, "o_vol")) == 1


async def test_signup_the_evening_before_gets_no_late_reminder(svc: Services, clock: FakeClock) -> None:
    clock.set(local(25, 20))
    assert (await sign(svc, "o_vol", "clean")).status == "signed"
    clock.set(local(26, 8, 30))
    await run_due(svc)
    [soon] = await wechat_to(svc, "o_vol")  # only the one an hour before: no 明天 said on the day
    assert "将于 09:00 开始" in soon and "明天" not in soon


async def test_a_moved_activity_reminds_at_its_new_time_only(svc: Services, clock: FakeClock, tmp_path: Path) -> None:
    await sign(svc, "o_vol", "clean")
    moved = tmp_path / "moved.toml"
    moved.write_text(TOML.replace("2026-11-26 09:00", "2026-11-27 09:00").replace("2026-11-26 11:00", "2026-11-27 11:00"),
                     encoding="utf-8")
    await activities.load_activities(svc, moved)
    clock.set(local(25, 19, 30))
    await run_due(svc)
    assert await wechat_to(svc, "o_vol") == []
    clock.set(local(26, 19))
    await run_due(svc)
    [text] = await wechat_to(svc, "o_vol")
    assert "明天 09:00" in text


async def test_processes_starting_together_on_a_new_database_both_load_the_activities(
    services: Services, tmp_path: Path
) -> None:
    """`serve --workers 2` on a new database: both workers load the activities at once, both find
    one missing and add it. The one that lost the race died at start (a unique-key error, seen
    when config/activities.toml gained December's); now it updates the row the other added."""
    path = tmp_path / "activities.toml"
    path.write_text(TOML, encoding="utf-8")
    other = open_services(services.settings, clock=services.clock)
    try:
        loaded = await asyncio.gather(*(activities.load_activities(s, path) for s in (services, other, services, other)))
    finally:
        await other.close()
    assert loaded == [3, 3, 3, 3]
    async with services.sessions() as session:
        keys = list(await session.scalars(select(Activity.key).order_by(Activity.key)))
    assert keys == ["clean", "past", "visit"]


# --- 取消活动: a coordinator (or staff) calls an activity off in WeCom ------------------------------


async def pushes_to(svc: Services, openid: str) -> list[str]:
    """Texts queued to a resident (the outbox; passive chat replies are not in it)."""
    return await wechat_to(svc, openid)


async def on_wecom(svc: Services, client: TestClient[Any, Any]) -> tuple[WeCom, WeChat]:
    """The demo roster and this file's activities (the app's start loaded the repository's, which
    this load takes out of the offer, nobody being signed up for them); the two drivers."""
    await load_demo_roster(svc)
    assert await activities.load_activities(svc, svc.extras["test.activities_path"]) == 3
    return WeCom(client, svc), WeChat(client, svc.settings)


async def test_a_coordinator_cancels_an_activity_and_everyone_signed_up_is_told_once(
    svc: Services, client: TestClient[Any, Any], clock: FakeClock
) -> None:
    wc, wx = await on_wecom(svc, client)
    for openid in ("oCan1", "oCan2"):
        assert "报名成功" in await wx.say(openid, "报名 楼道清洁")
    assert "报名成功" in await wx.say("oCan3", "报名 敬老院探访")
    assert "已为您取消" in await wx.say("oCan2", "取消报名 楼道清洁")  # withdrew before: not told
    assert "报名成功" in await wx.say("oCan4", "报名 楼道清洁")

    reply = await wc.say("zhouvol", "取消活动 楼道清洁 因为下雨改期")
    assert "已取消活动“楼道清洁志愿行动”" in reply and "下雨改期" in reply and "已通知报名的 2 位居民" in reply
    for openid in ("oCan1", "oCan4"):
        told = [p for p in await pushes_to(svc, openid) if "【活动取消】" in p]
        assert len(told) == 1 and "楼道清洁志愿行动" in told[0] and "原因：下雨改期" in told[0]
    assert not [p for p in await pushes_to(svc, "oCan2") + await pushes_to(svc, "oCan3") if "【活动取消】" in p]
    [row] = await audit_rows(svc, "activity.cancel")
    assert (row.actor, row.target) == ("zhouvol", "clean") and row.detail["told"] == 2
    assert row.detail["reason"] == "下雨改期"

    # Residents no longer see it, nor can sign up for it; 我的报名 lists only what still stands.
    listing = await wx.say("oCan5", "近期活动")
    assert "楼道清洁" not in listing and "敬老院探访" in listing
    assert "“楼道清洁志愿行动”已取消，不能再报名" in await wx.say("oCan5", "报名 楼道清洁")
    assert "您目前没有报名" in await wx.say("oCan1", "我的报名")

    # Said again (or by someone else): nothing more is sent.
    assert "已于" in await wc.say("liustaff", "取消活动 clean")
    assert len([p for p in await pushes_to(svc, "oCan1") if "【活动取消】" in p]) == 1

    # Neither the evening-before reminder nor the thank-you goes out; the other activity's does.
    for when in (local(25, 19), local(26, 12), local(29, 19), local(30, 18)):
        clock.set(when)
        await run_due(svc)
    assert not [p for p in await pushes_to(svc, "oCan1") + await pushes_to(svc, "oCan4")
                if "活动提醒" in p or "【感谢】" in p]
    assert [p for p in await pushes_to(svc, "oCan3") if "活动提醒" in p]


async def test_only_a_coordinator_or_staff_may_cancel(svc: Services, client: TestClient[Any, Any]) -> None:
    wc, wx = await on_wecom(svc, client)
    assert "报名成功" in await wx.say("oCan6", "报名 敬老院探访")
    assert "只有志愿者协调员或服务中心工作人员可以取消活动" in await wc.say("wangwei", "取消活动 敬老院探访")
    [refused] = await audit_rows(svc, "activity.cancel.refused")
    assert refused.actor == "wangwei"
    assert "敬老院探访" in await wx.say("oCan7", "近期活动")
    assert not [p for p in await pushes_to(svc, "oCan6") if "【活动取消】" in p]
    # Staff may, naming it by its date, without a reason.
    reply = await wc.say("liustaff", "取消活动 11月30日")
    assert "已取消活动“敬老院探访”" in reply and "已通知报名的 1 位居民" in reply
    [told] = [p for p in await pushes_to(svc, "oCan6") if "【活动取消】" in p]
    assert "原因" not in told


async def test_unknown_ambiguous_and_ended_activities_get_a_clear_answer(
    svc: Services, client: TestClient[Any, Any], tmp_path: Path
) -> None:
    path = tmp_path / "two.toml"
    path.write_text(TOML + """
[[activities]]
key = "clean-pm"
title = "楼道清洁志愿行动（下午场）"
place = "5号楼前"
start = "2026-11-26 14:00"
end = "2026-11-26 16:00"
""", encoding="utf-8")
    await load_demo_roster(svc)
    assert await activities.load_activities(svc, path) == 4
    wc = WeCom(client, svc)
    for said in ("取消活动 楼道清洁 下雨", "取消活動 樓道清潔 下雨", "取消活动 11月26日 下雨", "取消活动 11-26"):
        reply = await wc.say("zhouvol", said)
        assert "对应多个活动" in reply and "clean " in reply and "clean-pm" in reply, said
    unknown = await wc.say("zhouvol", "取消活动 广场舞比赛")
    assert "没有找到“广场舞比赛”" in unknown and "敬老院探访" in unknown and "上周的义诊" not in unknown
    usage = await wc.say("zhouvol", "取消活动")
    assert "取消活动 敬老院探访 因天气原因改期" in usage and "clean-pm" in usage
    assert "已经结束，无需取消" in await wc.say("zhouvol", "取消活动 上周的义诊")
    assert "不超过 100 个字" in await wc.say("zhouvol", "取消活动 clean-pm " + "原" * 101)
    assert not await audit_rows(svc, "activity.cancel")
    assert "已取消活动“楼道清洁志愿行动（下午场）”" in await wc.say("zhouvol", "取消活动 clean-pm，人手不够")
    async with svc.sessions() as session:
        rows = {a.key: a for a in await session.scalars(select(Activity))}
    assert rows["clean-pm"].cancelled_by == "zhouvol" and rows["clean-pm"].cancel_reason == "人手不够"
    assert rows["clean"].cancelled_at is None


async def test_an_activity_taken_out_of_the_file(
    svc: Services, client: TestClient[Any, Any], clock: FakeClock, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Taken out of activities.toml: with nobody signed up it is no longer offered (and back when
    added again); with residents signed up it is kept, reminders and all, with a warning at each
    load naming the 取消活动 that tells them — they are never left untold."""
    wc, wx = await on_wecom(svc, client)
    assert "报名成功" in await wx.say("oCan8", "报名 楼道清洁")
    only_past = tmp_path / "only_past.toml"
    only_past.write_text(TOML[TOML.index('[[activities]]\nkey = "past"'):], encoding="utf-8")
    with caplog.at_level("WARNING", logger="bot.activities"):
        assert await activities.load_activities(svc, only_past) == 1
    assert any("clean" in r.getMessage() and "取消活动 clean" in r.getMessage() for r in caplog.records)
    listing = await wx.say("oCan9", "近期活动")
    assert "楼道清洁志愿行动" in listing and "敬老院探访" not in listing
    assert "没有找到“敬老院探访”" in await wx.say("oCan9", "报名 敬老院探访")
    clock.set(local(25, 19))
    await run_due(svc)
    assert [p for p in await pushes_to(svc, "oCan8") if "活动提醒" in p]  # kept: still reminded

    # Added back: offered again.
    assert await activities.load_activities(svc, svc.extras["test.activities_path"]) == 3
    assert "敬老院探访" in await wx.say("oCan9", "近期活动")
    # The kept one is cancelled by the coordinator: its resident is told.
    assert await activities.load_activities(svc, only_past) == 1
    assert "已通知报名的 1 位居民" in await wc.say("zhouvol", "取消活动 clean 场地占用")
    assert [p for p in await pushes_to(svc, "oCan8") if "【活动取消】" in p]


async def test_a_coordinator_sees_the_activities_and_their_signups_in_wecom(
    svc: Services, client: TestClient[Any, Any],
) -> None:
    """The coordinator had no way in WeCom to see how many signed up (the key 取消活动 asks for was
    only in its refusals): 活动 / 报名情况 lists the activities not ended with their signups."""
    wc, wx = await on_wecom(svc, client)
    for openid in ("oOv1", "oOv2"):
        assert "报名成功" in await wx.say(openid, "报名 楼道清洁")
    assert await wc.say("zhouvol", "报名情况") == (
        "未结束的活动（2 个）：\n"
        "· clean  楼道清洁志愿行动（11月26日 09:00–11:00，3号楼前广场）已报名 2 人\n"
        "· visit  敬老院探访（11月30日 14:00–16:00，日间照料中心）已报名 0 人\n"
        "取消活动请发：取消活动 编号 原因")
    assert "已取消活动“敬老院探访”" in await wc.say("zhouvol", "取消活动 visit 人手不够")
    listing = await wc.say("liustaff", "活动")
    assert "敬老院探访（11月30日 14:00–16:00，日间照料中心）已报名 0 人（已取消）" in listing
    # a grid worker's 活动 is no such command
    assert (await wc.say("wangwei", "活动")).startswith("没有看懂这条指令")
