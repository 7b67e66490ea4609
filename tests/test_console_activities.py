"""The console's 志愿活动 page (/console/activities), on both backends: activities not ended with
their signups, 取消活动 with a reason (CSRF, a form sent twice acting once, audited, each resident
told once, reminders dropped — the same cancellation as WeCom's), read-only users seeing only, and
an activity taken out of config/activities.toml with residents still signed up marked so."""

from __future__ import annotations

import re
import secrets
from dataclasses import replace
from typing import Any

from aiohttp.test_utils import TestClient
from sqlalchemy import select

from bot import activities, schedule
from bot.clock import FakeClock
from bot.console import auth
from bot.schedule import run_due
from bot.services import Services
from storage.models import Activity, Reminder
from tests.staff_support import audit_rows, logged_in
from tests.test_activities import TOML, local, sign, svc, wechat_to  # noqa: F401  (svc: the fixture)

Client = TestClient[Any, Any]
FORM_ID = re.compile(r'action="/console/activities/(\d+)/cancel".*?name="form_id" value="([^"]+)"', re.DOTALL)


def _forms(html: str) -> dict[int, str]:
    """The page's cancel forms: activity id → the form's one-time id."""
    return {int(i): f for i, f in FORM_ID.findall(html)}


def _visible(html: str) -> str:
    """The page's text as a reader sees it (tags, scripts and styles left out)."""
    html = re.sub(r"<(script|style)\b.*?</\1>", " ", html, flags=re.DOTALL)
    return re.sub(r"<[^>]+>", " ", html)


def _flash(html: str) -> list[str]:
    return re.findall(r'class="flash [^"]*"[^>]*>([^<]*)', html)


async def _activity(services: Services, key: str) -> Activity:
    async with services.sessions() as session:
        row = await session.scalar(select(Activity).where(Activity.key == key))
        assert row is not None
        return row


async def test_the_page_lists_activities_and_a_clerk_cancels_one(
    svc: Services, client: Client, clock: FakeClock,  # noqa: F811
) -> None:
    await activities.load_activities(svc, svc.extras["test.activities_path"])  # after the app's own load
    for openid in ("oP1", "oP2"):
        await sign(svc, openid, "clean")
    await sign(svc, "oP3", "visit")
    csrf = await logged_in(client, "admin", "community123")
    html = await (await client.get("/console/activities")).text()
    assert 'href="/console/activities"' in html  # in the navigation
    assert "楼道清洁志愿行动" in html and "11月26日 09:00–11:00" in html and "3号楼前广场" in html
    assert "敬老院探访" in html and "上周的义诊" not in html[:html.index('<h2 id="ended">')]  # ended: below
    assert "已从活动安排中删除" not in html
    # what a clerk reads: names, times, places and counts — no activity key, no configuration file
    words = _visible(html)
    assert not re.search(r"\b(clean|visit|past)\b", words) and "activities.toml" not in words and "config/" not in words
    clean = await _activity(svc, "clean")
    forms = _forms(html)
    assert set(forms) == {clean.id, (await _activity(svc, "visit")).id}

    # without the CSRF token: refused, nothing done
    resp = await client.post(f"/console/activities/{clean.id}/cancel", data={"reason": "下雨"})
    assert resp.status == 403
    # a reason too long for the residents' push: said, the form may be sent again
    resp = await client.post(f"/console/activities/{clean.id}/cancel",
                             data={"csrf_token": csrf, "form_id": forms[clean.id], "reason": "雨" * 101})
    assert any("原因请写短一些" in f for f in _flash(await resp.text()))
    assert (await _activity(svc, "clean")).cancelled_at is None

    data = {"csrf_token": csrf, "form_id": forms[clean.id], "reason": "<b>暴雨</b>预警"}
    resp = await client.post(f"/console/activities/{clean.id}/cancel", data=data)
    page = await resp.text()
    assert resp.status == 200 and any("已取消活动“楼道清洁志愿行动”" in f and "已通知报名的 2 位居民" in f
                                      for f in _flash(page))
    assert "&lt;b&gt;暴雨&lt;/b&gt;预警" in page and "<b>暴雨" not in page  # escaped where shown
    assert "已取消" in page and clean.id not in _forms(page)
    # sent again (a double click, the page resent): nothing done twice
    again = await client.post(f"/console/activities/{clean.id}/cancel", data=data)
    assert any("已经提交过" in f for f in _flash(await again.text()))
    # another clerk's form for it, sent after: told it is cancelled already (random form ids: the
    # console's form keys are not under the test's Redis prefix, so a fixed one collides across runs)
    other = {"csrf_token": csrf, "form_id": secrets.token_hex(8), "reason": "x"}
    late = await client.post(f"/console/activities/{clean.id}/cancel", data=other)
    assert any("已于" in f and "取消" in f for f in _flash(await late.text())), _flash(await late.text())
    unknown = await client.post("/console/activities/99999/cancel", data={**other, "form_id": secrets.token_hex(8)})
    assert unknown.status == 404 and "没有这个活动" in await unknown.text()
    huge = await client.post("/console/activities/" + "9" * 30 + "/cancel", data={**other, "form_id": secrets.token_hex(8)})
    assert huge.status == 404

    for openid in ("oP1", "oP2"):
        told = [p for p in await wechat_to(svc, openid) if "【活动取消】" in p]
        assert len(told) == 1 and "原因：<b>暴雨</b>预警" in told[0]
    assert not [p for p in await wechat_to(svc, "oP3") if "【活动取消】" in p]
    [row] = await audit_rows(svc, "activity.cancel")
    assert (row.actor, row.target) == ("admin", "clean")
    assert row.detail == {"title": "楼道清洁志愿行动", "reason": "<b>暴雨</b>预警", "told": 2, "via": "console"}
    async with svc.sessions() as session:
        states = set(await session.scalars(select(Reminder.state).where(Reminder.target.in_(("oP1", "oP2")))))
    assert states == {"dropped"}
    for when in (local(25, 19), local(26, 8), local(26, 12)):
        clock.set(when)
        await run_due(svc)
    assert not [p for p in await wechat_to(svc, "oP1") if "活动提醒" in p or "【感谢】" in p]
    # residents no longer see it
    async with svc.sessions() as session:
        assert "楼道清洁" not in await activities.upcoming_reply(svc, session)


async def test_an_unreadable_activities_file_marks_nothing_removed(
    svc: Services, client: Client, tmp_path: Any, monkeypatch: Any,  # noqa: F811
) -> None:
    """No file loaded by this process (the scheduler off) and the configured one broken: the page
    still shows, with nothing said to be taken out of the file."""
    await activities.load_activities(svc, svc.extras["test.activities_path"])
    await sign(svc, "oU1", "clean")
    del svc.extras[activities.LOADED]
    broken = tmp_path / "broken.toml"
    broken.write_text("[[activities]\nkey = ", encoding="utf-8")
    config = schedule.load_schedule_config()
    broken_config = replace(config, activities=replace(config.activities, file=str(broken)))
    monkeypatch.setattr(activities, "load_schedule_config", lambda: broken_config)
    assert activities.configured_keys(svc) is None
    await logged_in(client, "admin", "community123")
    resp = await client.get("/console/activities")
    html = await resp.text()
    assert resp.status == 200 and "楼道清洁志愿行动" in html and "已从活动安排中删除" not in html


async def test_read_only_users_see_the_page_but_cannot_cancel(svc: Services, client: Client) -> None:  # noqa: F811
    await activities.load_activities(svc, svc.extras["test.activities_path"])
    await sign(svc, "oR1", "clean")
    await auth.create_user(svc, "ro", "readonly1", "readonly", display_name="只读")
    csrf = await logged_in(client, "ro", "readonly1")
    html = await (await client.get("/console/activities")).text()
    assert "楼道清洁志愿行动" in html and "取消活动</button>" not in html and not _forms(html)
    clean = await _activity(svc, "clean")
    resp = await client.post(f"/console/activities/{clean.id}/cancel", data={"csrf_token": csrf, "reason": "x"})
    assert resp.status == 403
    assert (await _activity(svc, "clean")).cancelled_at is None
    assert [(r.actor, r.action) for r in await audit_rows(svc, "console.role_refused")] == [("ro", "console.role_refused")]
    assert not [p for p in await wechat_to(svc, "oR1") if "【活动取消】" in p]


async def test_an_activity_taken_out_of_the_file_with_signups_is_marked_and_can_be_called_off(
    svc: Services, client: Client, tmp_path: Any,  # noqa: F811
) -> None:
    await activities.load_activities(svc, svc.extras["test.activities_path"])
    for openid in ("oM1", "oM2", "oM3"):
        await sign(svc, openid, "visit")
    smaller = tmp_path / "smaller.toml"
    smaller.write_text(TOML.split("[[activities]]\nkey = \"visit\"")[0], encoding="utf-8")  # clean only
    await activities.load_activities(svc, smaller)
    csrf = await logged_in(client, "admin", "community123")
    html = await (await client.get("/console/activities")).text()
    assert "已从活动安排中删除，仍有 3 人报名" in html and "visit" not in _visible(html)
    visit = await _activity(svc, "visit")
    assert visit.cancelled_at is None and visit.id in _forms(html)
    resp = await client.post(f"/console/activities/{visit.id}/cancel",
                             data={"csrf_token": csrf, "form_id": _forms(html)[visit.id], "reason": "活动取消"})
    page = await resp.text()
    assert any("已通知报名的 3 位居民" in f for f in _flash(page))
    assert "已从活动安排中删除" not in page
    for openid in ("oM1", "oM2", "oM3"):
        assert len([p for p in await wechat_to(svc, openid) if "【活动取消】" in p]) == 1
