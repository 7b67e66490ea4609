"""A small, realistic month of one grid counted by hand and checked against `communitybot report`
and the console dashboard: taken in time and late, resolved, reopened after 不满意, closed by staff
with and without 办结, a survey never answered, a late rating, a reassigned job, a withdrawn
request — every step through the real entry points, on both backends."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiohttp.test_utils import TestClient

from bot import schedule
from bot.clock import FakeClock
from bot.report import percent
from bot.services import Services
from tests.conftest import WeChat
from tests.test_report_cases import _kpi, dashboard, report_cli, staff
from tests.wecom_driver import WeCom, load_demo_roster, new_ticket, ticket

TZ = ZoneInfo("Asia/Shanghai")
TOKEN = "api-token-for-report-tests"
Client = TestClient[Any, Any]


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    """An API token for staff's transitions."""
    return {"api_token": TOKEN}


@pytest.fixture
async def svc(services: Services) -> Services:
    await load_demo_roster(services)
    return services


def at(day: int, hour: int, minute: int = 0) -> datetime:
    """A local time in November 2026, as aware UTC."""
    return datetime(2026, 11, day, hour, minute, tzinfo=TZ).astimezone(timezone.utc)


async def tick(svc: Services, clock: FakeClock, **step: float) -> None:
    """Let time pass and the schedule run, as the periodic job does."""
    clock.advance(**step)
    await schedule.run_due(svc)


async def test_a_month_of_one_grid_counted_by_hand(
    client: Client, svc: Services, clock: FakeClock, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Eight reports in November (buildings 1–3 and 5, distinct problems, none linked):
    A taken in 5 min, 办结, rated 满意 (5);
    B taken 40 min after dispatch (breached at 30), 办结, 不满意 → reopened, 办结 again, the second
      survey unanswered (the 不满意 stands);
    C taken, 办结, survey unanswered (reminder, then 未评价), rated 4 afterwards (a late rating);
    D taken, then closed by staff without 办结 (重复登记);
    E taken, 办结, closed by staff before its survey, rated 5 (closing keeps the survey);
    F given to 王伟, reassigned by staff after 10 min to 李娜, who takes it in 5, 办结, 基本满意;
    G withdrawn by the resident 5 min after dispatch, untaken;
    H taken by 李娜 in 10 min, not finished (past its 7 days: escalated, 超期).
    By hand: 受理 8, 撤销 1; 派单 7 (G's window was open when withdrawn), 按时接单 6 (B late) → 响应率
    6/7; 办结 A B C E F = 5 of 7 → 解决率 5/7 (D closed unresolved, H open); ratings A 5, B 不满意,
    C 4, E 5, F 3 → 满意 3, 基本满意 1, 不满意 1 → 满意率 (3 + 0.9) / 5 = 78%; 未评价 0. Per worker:
    王伟 5 dispatches, 4 in time (B late; F, handed on untaken 10 minutes into his 30, is not his to
    count, as README says), 李娜 2 of 2."""
    wc = WeCom(client, svc)
    wx = WeChat(client, svc.settings)
    clock.set(at(3, 9))
    made: dict[str, Any] = {}
    for key, resident, building, category in (
        ("A", "oM_A", "1", "照明"), ("B", "oM_B", "2", "照明"), ("C", "oM_C", "3", "照明"),
        ("D", "oM_D", "1", "电梯"), ("E", "oM_E", "2", "电梯"), ("F", "oM_F", "3", "电梯"),
        ("G", "oM_G", "1", "水电气暖"), ("H", "oM_H", "5", "照明"),
    ):
        made[key] = (await new_ticket(svc, resident=resident, building=building, category=category)).ticket
        # Residents wrote in: their 48-hour window is open for the survey.
        await wx.say(resident, "你好")
    num = {k: t.number[-4:] for k, t in made.items()}
    assert len({(await ticket(svc, t.number)).parent_id for t in made.values()}) == 1  # none linked

    clock.advance(minutes=5)
    for key in "ACDE":
        assert (await wc.say("wangwei", f"接单 {num[key]}")).startswith("已接单"), key
    assert "已撤销" in await wx.say("oM_G", "撤销工单") + await wx.say("oM_G", "确认撤销")
    clock.advance(minutes=5)
    await staff(client, made["F"].number, "assign", assignee="lina")
    assert (await wc.say("lina", f"接单 {num['H']}")).startswith("已接单")
    clock.advance(minutes=5)
    assert (await wc.say("lina", f"接单 {num['F']}")).startswith("已接单")
    await tick(svc, clock, minutes=16)  # B's 30 minutes are up: escalated
    assert (await ticket(svc, made["B"].number)).status == "escalated"
    clock.advance(minutes=9)
    assert (await wc.say("wangwei", f"接单 {num['B']}")).startswith("已接单")

    clock.advance(hours=2)
    for key in "ABCE":
        assert (await wc.say("wangwei", f"办结 {num[key]} 已修好")).startswith("已办结"), key
    assert (await wc.say("lina", f"办结 {num['F']} 已修好")).startswith("已办结")
    await staff(client, made["D"].number, "close", note="重复登记")
    await staff(client, made["E"].number, "close", note="居民已电话确认修好")

    await tick(svc, clock, seconds=svc.settings.survey_delay_s)  # the surveys go out
    for resident, words in (("oM_A", "满意"), ("oM_B", "不满意"), ("oM_E", "5"), ("oM_F", "基本满意")):
        reply = await wx.say(resident, words)
        assert "感谢" in reply or "重新交给" in reply, (resident, reply)
    await wx.say("oM_B", "灯还是一闪一闪的")  # the reason asked for after 不满意
    assert (await ticket(svc, made["B"].number)).status == "reopened"
    await tick(svc, clock, hours=1)
    assert (await wc.say("wangwei", f"办结 {num['B']} 换了灯管")).startswith("已办结")
    for _ in range(6):  # surveys: B's second one and C's, reminded, then 未评价
        await tick(svc, clock, hours=12)
    assert (await ticket(svc, made["C"].number)).satisfaction_label == "未评价"
    await wx.say("oM_C", "4分")  # a late rating, within late_answer_s
    clock.set(at(30, 18))
    await schedule.run_due(svc)

    rows = {k: await ticket(svc, t.number) for k, t in made.items()}
    assert {k: r.status for k, r in rows.items()} == {
        "A": "closed", "B": "closed", "C": "closed", "D": "closed", "E": "closed", "F": "closed",
        "G": "cancelled", "H": "escalated"}  # H past its 7 days
    assert {k: r.satisfaction for k, r in rows.items()} == {
        "A": 5, "B": rows["B"].satisfaction, "C": 4, "D": None, "E": 5, "F": 3, "G": None, "H": None}
    assert rows["B"].satisfaction is not None and rows["B"].satisfaction <= 2

    args = ["--since", "2026-11-01", "--until", "2026-11-30", "--format", "json"]
    assert await report_cli(svc, monkeypatch, *args) == 0
    data = json.loads(capsys.readouterr().out)
    total = data["total"]
    assert {k: total[k] for k in ("created", "cancelled", "dispatched", "accepted", "accepted_in_time",
                                  "resolved", "rated", "satisfied", "basic", "unsatisfied", "unrated",
                                  "open")} == {
        "created": 8, "cancelled": 1, "dispatched": 7, "accepted": 7, "accepted_in_time": 6,
        "resolved": 5, "rated": 5, "satisfied": 3, "basic": 1, "unsatisfied": 1, "unrated": 0, "open": 1}
    assert total["response_rate"] == pytest.approx(6 / 7)
    assert total["resolution_rate"] == pytest.approx(5 / 7)
    assert total["satisfaction_rate"] == pytest.approx(0.78)
    workers = {w["key"]: w for w in data["by_worker"]}
    assert (workers["wangwei"]["dispatched"], workers["wangwei"]["accepted_in_time"]) == (5, 4)
    assert (workers["lina"]["dispatched"], workers["lina"]["accepted_in_time"]) == (2, 2)
    assert (total["overdue"], workers["lina"]["overdue"]) == (1, 1)  # H
    page = await dashboard(client, svc, monkeypatch, "2026-11-01", "2026-11-30")
    assert [_kpi(page, k) for k in ("response", "resolution", "satisfaction")] == [
        percent(6 / 7), percent(5 / 7), "78.0%"]
