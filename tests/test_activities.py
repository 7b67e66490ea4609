"""Volunteer activities: loaded from TOML, signed up for, reminded the evening before at 19:00 and
thanked afterwards; cancelled or moved activities never send a stale reminder."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from bot import activities
from bot.clock import FakeClock
from bot.schedule import run_due
from bot.services import Services, open_services
from storage.models import Activity, OutboxItem

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
    clock.set(local(26, 12))
    await run_due(svc)
    texts = await wechat_to(svc, "o_vol")
    assert len(texts) == 2 and "感谢您参加" in texts[1]
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
    assert await wechat_to(svc, "o_vol") == []


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
