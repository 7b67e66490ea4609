"""The three figures on the hard cases of a street office's month, each built through the real
entry points (residents on /wechat, workers on /wecom, staff on /api) and checked by hand against
the definitions in bot/report.py and README — on both backends."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import re
from datetime import date, datetime, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from bot import cli, schedule
from bot.clock import FakeClock
from bot.console import auth
from bot.report import compute, percent
from bot.services import Services
from storage.models import Ticket
from tests.conftest import WeChat
from tests.staff_support import logged_in
from tests.wecom_driver import WeCom, load_demo_roster, new_ticket, ticket

TZ = ZoneInfo("Asia/Shanghai")
TOKEN = "api-token-for-report-tests"
BEARER = {"Authorization": f"Bearer {TOKEN}"}
Client = TestClient[Any, Any]
DAY = date(2026, 11, 23)  # the FakeClock's day


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    """An API token for staff's transitions."""
    return {"api_token": TOKEN}


@pytest.fixture
async def svc(services: Services) -> Services:
    await load_demo_roster(services)
    return services


@pytest.fixture
def wx_plain(client: Client, svc: Services) -> WeChat:
    """Residents on /wechat (plaintext; safe mode is the webhook tests' business)."""
    return WeChat(client, svc.settings)


async def staff(client: Client, number: str, action: str, **body: Any) -> None:
    """A staff transition through POST /api/tickets/{number}/transition."""
    resp = await client.post(f"/api/tickets/{number}/transition", json={"action": action, **body}, headers=BEARER)
    assert resp.status == 200, await resp.text()


async def day_figures(svc: Services, since: date = DAY, until: date = DAY) -> Any:
    return await compute(svc, since, until)


def worker(report: Any, key: str) -> Any:
    return {r.key: r.figures for r in report.by_worker}[key]


async def report_cli(svc: Services, monkeypatch: pytest.MonkeyPatch, *args: str) -> int:
    """`communitybot report ARGS` on the test's database, as an operator runs it."""
    monkeypatch.setenv("CB_DATABASE_URL", svc.settings.database_url)
    monkeypatch.setenv("CB_REDIS_URL", svc.settings.redis_url)
    return await asyncio.to_thread(cli.main, ["report", *args])


async def dashboard(client: Client, svc: Services, monkeypatch: pytest.MonkeyPatch, since: str, until: str) -> str:
    """The console dashboard for a range, as a logged-in clerk sees it."""
    monkeypatch.setattr(auth, "BCRYPT_ROUNDS", 4)
    await auth.create_user(svc, "liu", "staffpass1", "staff", display_name="刘敏")
    await logged_in(client, "liu", "staffpass1")
    resp = await client.get(f"/console/dashboard?since={since}&until={until}")
    assert resp.status == 200
    return await resp.text()


# --- 响应率: whose dispatch, which limit -----------------------------------------------------------


async def test_taken_in_time_then_reassigned_and_the_new_dispatch_missed(
    client: Client, svc: Services, clock: FakeClock
) -> None:
    """王伟 takes the ticket in 5 min; at noon staff give it to 李娜, who lets her 30 minutes pass
    (escalated). The ticket was taken in time (its first taking): 响应率 1/1 for the community, and
    for the workers each dispatch is theirs: 王伟 1/1, 李娜 0/1. (Before, 李娜's breach made the
    ticket late as a whole, though the docstring counts its first taking.)"""
    wc = WeCom(client, svc)
    t = (await new_ticket(svc, resident="oR1")).ticket
    clock.advance(minutes=5)
    assert (await wc.say("wangwei", "接单 1")).startswith("已接单")
    clock.advance(hours=2)
    await staff(client, t.number, "assign", assignee="lina")
    clock.advance(minutes=31)
    await schedule.run_due(svc)
    assert (await ticket(svc, t.number)).status == "escalated"
    r = await day_figures(svc)
    f = r.total
    assert (f.dispatched, f.accepted, f.accepted_in_time, f.response_rate) == (1, 1, 1, 1.0)
    assert f.avg_accept_s == pytest.approx(300)
    wang, li = worker(r, "wangwei"), worker(r, "lina")
    assert (wang.dispatched, wang.accepted_in_time, wang.response_rate) == (1, 1, 1.0)
    assert (li.dispatched, li.accepted_in_time, li.response_rate) == (1, 0, 0.0)


async def test_missed_then_reassigned_and_taken_is_late_however_fast_the_second(
    client: Client, svc: Services, clock: FakeClock
) -> None:
    """Untaken past its 30 minutes (escalated), given to 李娜 who takes it in 2 minutes: late for the
    community (its first dispatch was missed), in time for 李娜; the time to accept is hers."""
    wc = WeCom(client, svc)
    t = (await new_ticket(svc, resident="oR2")).ticket
    clock.advance(minutes=31)
    await schedule.run_due(svc)
    await staff(client, t.number, "assign", assignee="lina")
    clock.advance(minutes=2)
    assert (await wc.say("lina", "接单 1")).startswith("已接单")
    r = await day_figures(svc)
    assert (r.total.dispatched, r.total.accepted_in_time, r.total.response_rate) == (1, 0, 0.0)
    assert r.total.avg_accept_s == pytest.approx(120)
    assert (worker(r, "wangwei").dispatched, worker(r, "wangwei").accepted_in_time) == (1, 0)
    assert (worker(r, "lina").dispatched, worker(r, "lina").accepted_in_time) == (1, 1)


async def test_reassigned_inside_the_window_is_measured_on_the_dispatch_that_was_taken(
    client: Client, svc: Services, clock: FakeClock, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Given to 李娜 20 minutes after 王伟 got it (no breach), taken 25 minutes later: in time by her
    dispatch's limit, for her and the community. 王伟's dispatch, handed on untaken before his 30
    minutes were up, is not his miss (his time was not up: README, 响应率 per worker): none of his
    派单 — on the dashboard's 按负责人 as in `communitybot report`. (It was counted against him, 0/1.)
    His 接单 limit missed elsewhere that day, a job 改派ed after it passed untaken, stays his miss."""
    wc = WeCom(client, svc)
    t = (await new_ticket(svc, resident="oR3")).ticket
    late = (await new_ticket(svc, resident="oR4", category="电梯", summary="电梯坏了")).ticket  # another job
    clock.advance(minutes=20)
    await staff(client, t.number, "assign", assignee="lina")
    clock.advance(minutes=25)
    assert (await wc.say("lina", f"接单 {t.number[-4:]}")).startswith("已接单")
    await staff(client, late.number, "assign", assignee="lina")  # 王伟's 30 minutes passed at 30
    assert (await wc.say("lina", f"接单 {late.number[-4:]}")).startswith("已接单")
    r = await day_figures(svc)
    assert (r.total.dispatched, r.total.accepted_in_time) == (2, 2)  # nobody escalated: each taken in time
    wang, li = worker(r, "wangwei"), worker(r, "lina")
    assert (wang.dispatched, wang.accepted, wang.accepted_in_time, wang.response_rate) == (1, 0, 0, 0.0)
    assert (li.dispatched, li.accepted_in_time, li.response_rate) == (2, 2, 1.0)

    day = DAY.isoformat()
    assert await report_cli(svc, monkeypatch, "--since", day, "--until", day, "--format", "json") == 0
    printed = {w["key"]: w for w in json.loads(capsys.readouterr().out)["by_worker"]}
    assert (printed["wangwei"]["dispatched"], printed["wangwei"]["accepted_in_time"]) == (1, 0)
    page = await dashboard(client, svc, monkeypatch, day, day)
    table = page[page.index("<h2>按负责人</h2>"):]
    row = re.search(r"<tr><td>王伟</td><td>(\d+)</td><td>(\d+)</td><td>([^<]*)</td>", table)
    assert row is not None and row.groups()[1:] == ("1", "0.0%")


async def test_a_dispatch_reassigned_before_its_limit_alone_leaves_the_first_owner_nothing_to_count(
    client: Client, svc: Services, clock: FakeClock
) -> None:
    """王伟's only dispatch of the day given to 李娜 after 10 minutes: he has a row (派单 0, 响应率 —),
    not a 0% he could not have avoided; after 退回 of his own, untaken, a dispatch stays his miss."""
    wc = WeCom(client, svc)
    t = (await new_ticket(svc, resident="oR5")).ticket
    clock.advance(minutes=10)
    await staff(client, t.number, "assign", assignee="lina")
    r = await day_figures(svc)
    wang = worker(r, "wangwei")
    assert (wang.dispatched, wang.accepted, wang.response_rate) == (0, 0, None)
    assert (r.total.dispatched, worker(r, "lina").dispatched) == (0, 0)  # 李娜's window still open
    back = (await new_ticket(svc, resident="oR6", category="电梯", summary="电梯坏了")).ticket  # another job
    clock.advance(minutes=5)
    assert "退回" in await wc.say("wangwei", f"退回 {back.number[-4:]} 不是我的网格")
    await staff(client, back.number, "assign", assignee="lina")
    wang = worker(await day_figures(svc), "wangwei")
    assert (wang.dispatched, wang.accepted, wang.response_rate) == (1, 0, 0.0)


# --- cancelled and withdrawn ----------------------------------------------------------------------


async def test_a_ticket_withdrawn_after_its_window_passed_untaken_still_counts_as_missed(
    client: Client, svc: Services, clock: FakeClock, wx_plain: WeChat
) -> None:
    """Three reports: withdrawn by the resident (on /wechat) 10 minutes after dispatch, untaken —
    out of 响应率; withdrawn 2 hours after dispatch, never taken (escalated at 30 minutes) — a
    missed response, which a withdrawal does not erase; cancelled by staff after 王伟 took it in 5
    minutes — a response in time. None of them is in 解决率 (nothing left to resolve)."""
    wc = WeCom(client, svc)
    early = (await new_ticket(svc, resident="oW1")).ticket
    late = (await new_ticket(svc, resident="oW2", category="水电气暖")).ticket
    taken = (await new_ticket(svc, resident="oW3", category="电梯")).ticket
    clock.advance(minutes=5)
    assert (await wc.say("wangwei", f"接单 {taken.number[-4:]}")).startswith("已接单")
    clock.advance(minutes=5)
    assert "要撤销这个工单吗" in await wx_plain.say("oW1", "撤销工单")
    assert "已撤销" in await wx_plain.say("oW1", "确认撤销")
    clock.advance(minutes=25)
    await schedule.run_due(svc)  # the water report's 接单 limit breached
    clock.advance(hours=1, minutes=25)
    assert "要撤销这个工单吗" in await wx_plain.say("oW2", "撤销工单")
    assert "已撤销" in await wx_plain.say("oW2", "确认撤销")
    await staff(client, taken.number, "cancel", note="重复登记")
    assert {(await ticket(svc, n)).status for n in (early.number, late.number, taken.number)} == {"cancelled"}
    r = await day_figures(svc)
    f = r.total
    assert (f.created, f.cancelled) == (3, 3)
    assert (f.dispatched, f.accepted, f.accepted_in_time, f.response_rate) == (2, 1, 1, 0.5)
    assert (f.resolved, f.resolution_rate) == (0, None)
    wang = worker(r, "wangwei")
    assert (wang.dispatched, wang.accepted_in_time, wang.response_rate) == (2, 1, 0.5)


# --- 解决率 and 满意率 through the survey -----------------------------------------------------------

SURVEY_DELAY = 7200


async def surveys_answered(svc: Services, clock: FakeClock, wx: WeChat, answers: dict[str, str]) -> None:
    """Send the due surveys and answer them on /wechat (resident → words)."""
    clock.advance(seconds=SURVEY_DELAY)
    await schedule.run_due(svc)
    for openid, words in answers.items():
        reply = await wx.say(openid, words)
        assert "感谢" in reply or "重新交给" in reply, (openid, words, reply)


async def test_ratings_basic_scores_reopened_and_never_answered(
    client: Client, svc: Services, clock: FakeClock, wx_plain: WeChat
) -> None:
    """Five jobs 王伟 finishes without 接单: 基本满意 (3); 不满意 (reopened), finished again and then 5分 — the
    latest rating stands; 4; never answered (未评价 after the reminder); 2 and still reopened.
    By hand: rated 4 — 满意 2 (5, 4), 基本满意 1, 不满意 1 → 满意率 (2 + 0.9) / 4 = 72.5%; 未评价 1;
    解决率 4 / 5 (the reopened one is not resolved)."""
    wc = WeCom(client, svc)
    who = ("oS1", "oS2", "oS3", "oS4", "oS5")
    places = (("1", "照明"), ("2", "照明"), ("3", "照明"), ("1", "电梯"), ("2", "电梯"))
    made = [(await new_ticket(svc, resident=o, building=b, category=c)).ticket for o, (b, c) in zip(who, places, strict=True)]
    for t in made:
        assert (await wc.say("wangwei", f"办结 {t.number[-4:]} 已修好")).startswith("已办结")
    await surveys_answered(svc, clock, wx_plain, {"oS1": "基本满意", "oS2": "不满意", "oS3": "4", "oS5": "2"})
    assert (await wc.say("wangwei", f"办结 {made[1].number[-4:]} 换了灯座")).startswith("已办结")
    await surveys_answered(svc, clock, wx_plain, {"oS2": "5分"})
    for _ in range(3):  # oS4's reminder, then 未评价
        clock.advance(hours=24)
        await schedule.run_due(svc)
    rows = [await ticket(svc, t.number) for t in made]
    assert [(r.satisfaction, r.satisfaction_label) for r in rows] == [
        (3, "基本满意"), (5, "满意"), (4, "满意"), (None, "未评价"), (2, "不满意")]
    f = (await day_figures(svc)).total
    assert (f.rated, f.satisfied, f.basic, f.unsatisfied, f.unrated) == (4, 2, 1, 1, 1)
    assert f.satisfaction_rate == pytest.approx(0.725)
    assert (f.created, f.resolved, f.resolution_rate) == (5, 4, 0.8)
    assert (f.dispatched, f.accepted_in_time) == (5, 5)  # 办结 without 接单 is taking it


async def test_a_job_many_reported_is_one_problem_and_every_reporter_rates_it(
    client: Client, svc: Services, clock: FakeClock, wx_plain: WeChat
) -> None:
    """Two neighbours report the same dark stairwell: one job (the second linked to it). The job
    counts once in 派单, 办结 and 解决率; each reporter's rating counts: 满意 and 基本满意 →
    (1 + 0.9) / 2 = 95%."""
    wc = WeCom(client, svc)
    job = (await new_ticket(svc, resident="oL1")).ticket
    clock.advance(minutes=3)
    linked = (await new_ticket(svc, resident="oL2")).ticket
    assert (await ticket(svc, linked.number)).parent_id == job.id
    assert (await wc.say("wangwei", f"接单 {job.number[-4:]}")).startswith("已接单")
    assert (await wc.say("wangwei", f"办结 {job.number[-4:]} 已修好")).startswith("已办结")
    await surveys_answered(svc, clock, wx_plain, {"oL1": "满意", "oL2": "基本满意"})
    r = await day_figures(svc)
    f = r.total
    assert (f.created, f.dispatched, f.accepted_in_time, f.resolved, f.resolution_rate) == (1, 1, 1, 1, 1.0)
    assert (f.rated, f.satisfied, f.basic, f.satisfaction_rate) == (2, 1, 1, pytest.approx(0.95))
    wang = worker(r, "wangwei")
    assert (wang.created, wang.dispatched, wang.rated) == (1, 1, 2)


async def test_hand_offs_bookings_and_signups(client: Client, svc: Services, clock: FakeClock, wx_plain: WeChat) -> None:
    """A resident's 转人工 (on /wechat) is staff's: no dispatch, so not in 响应率; settled by staff
    (办结) it is resolved. A volunteer signup the coordinator approves (办结) was taken by it, with
    no survey: in 响应率 and 解决率, never in 满意率 nor 未评价. A booking the provider takes late."""
    wc = WeCom(client, svc)
    assert "人工" in await wx_plain.say("oH1", "转人工")
    [handoff] = [t for t in await _tickets(svc) if t.kind == "handoff"]
    assert (handoff.status, handoff.assignee) == ("escalated", None)
    signup = (await new_ticket(svc, kind="volunteer_signup", resident="oV1", category=None,
                               fields={"name": "张三", "phone": "13812345678"})).ticket
    booking = (await new_ticket(svc, kind="elderly_service", resident="oB1", category=None,
                                fields={"service": "助浴", "phone": "13812345678"})).ticket
    clock.advance(minutes=10)
    assert (await wc.say("zhouvol", f"办结 {signup.number[-4:]} 欢迎加入")).startswith("已")
    await staff(client, handoff.number, "resolve", note="已电话联系居民")
    clock.advance(minutes=40)
    assert (await wc.say("homecare", f"接单 {booking.number[-4:]}")).startswith("已接单")
    for _ in range(4):  # surveys sent, reminded, expired
        clock.advance(hours=24)
        await schedule.run_due(svc)
    r = await day_figures(svc)
    f = r.total
    assert (f.created, f.dispatched, f.accepted, f.accepted_in_time) == (3, 2, 2, 1)
    assert (f.resolved, f.resolution_rate) == (2, pytest.approx(2 / 3))
    assert (f.rated, f.unrated, f.satisfaction_rate) == (0, 1, None)  # the hand-off's survey unanswered
    kinds = {x.key: x.figures for x in r.by_kind}
    assert (kinds["handoff"].dispatched, kinds["handoff"].response_rate, kinds["handoff"].resolved) == (0, None, 1)
    assert (kinds["volunteer_signup"].response_rate, kinds["volunteer_signup"].unrated) == (1.0, 0)
    assert kinds["elderly_service"].response_rate == 0.0


async def _tickets(svc: Services) -> list[Ticket]:
    async with svc.sessions() as session:
        return list(await session.scalars(select(Ticket).order_by(Ticket.id)))


# --- which tickets a range holds ------------------------------------------------------------------


def local(month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=TZ).astimezone(timezone.utc)


async def test_local_midnight_until_inclusive_and_resolved_after_the_range(
    client: Client, svc: Services, clock: FakeClock
) -> None:
    """A range is of Shanghai dates, both ends whole days: a report at 23:59 on 31 October is
    October's (15:59 UTC), one at 00:01 on 1 November is November's (16:01 UTC on the 31st), one
    at 23:50 on 30 November is in `--until 2026-11-30`. A ticket counts in the range it was
    created in, with what has happened to it since: October's, finished on 2 November, is resolved
    in October's figures and is not in November's at all."""
    wc = WeCom(client, svc)
    clock.set(local(10, 31, 23, 59))
    october = (await new_ticket(svc, resident="oD1", category="照明")).ticket
    clock.set(local(11, 1, 0, 1))
    first = (await new_ticket(svc, resident="oD2", category="电梯")).ticket
    clock.set(local(11, 2, 9))
    assert (await wc.say("wangwei", f"办结 {october.number} 已修好")).startswith("已办结")
    clock.set(local(11, 30, 23, 50))
    last = (await new_ticket(svc, resident="oD3", category="水电气暖", urgency="urgent")).ticket
    clock.set(local(12, 1, 9))
    oct_r = await compute(svc, date(2026, 10, 1), date(2026, 10, 31))
    nov_r = await compute(svc, date(2026, 11, 1), date(2026, 11, 30))
    assert (oct_r.total.created, oct_r.total.resolved, oct_r.total.resolution_rate) == (1, 1, 1.0)
    assert (nov_r.total.created, nov_r.total.resolved, nov_r.total.resolution_rate) == (2, 0, 0.0)
    assert (await compute(svc, date(2026, 11, 30), date(2026, 11, 30))).total.created == 1
    assert (await compute(svc, date(2026, 11, 2), date(2026, 11, 29))).total.created == 0
    assert {first.number[:8], last.number[:8], october.number[:8]} == {"20261101", "20261130", "20261031"}


async def test_an_empty_range_shows_dashes_not_zero_everywhere(
    client: Client, svc: Services, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """No tickets in the range: every rate is undefined — '—' in the table and on the dashboard,
    null in JSON, empty in CSV — and nothing divides by zero."""
    args = ["--since", "2026-01-01", "--until", "2026-01-31"]
    assert await report_cli(svc, monkeypatch, *args) == 0
    table = capsys.readouterr().out
    assert table.count("这段时间没有工单。") == 3  # 按网格, 按承办人, 按类型
    total = next(line for line in table.splitlines() if line.startswith("合计"))
    assert total.split() == ["合计", "0", "0", "0", "—", "0", "—", "0", "—", "0", "0", "—", "—"]
    assert await report_cli(svc, monkeypatch, *args, "--format", "json") == 0
    data = json.loads(capsys.readouterr().out)
    assert [data["total"][k] for k in ("response_rate", "resolution_rate", "satisfaction_rate")] == [None] * 3
    assert data["by_grid"] == data["by_worker"] == data["by_kind"] == []
    assert await report_cli(svc, monkeypatch, *args, "--format", "csv") == 0
    [header, row] = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    record = dict(zip(header, row, strict=True))
    assert (record["响应率"], record["解决率"], record["满意率"], record["受理"]) == ("", "", "", "0")
    page = await dashboard(client, svc, monkeypatch, "2026-01-01", "2026-01-31")
    assert [_kpi(page, k) for k in ("response", "resolution", "satisfaction")] == ["—", "—", "—"]
    assert "这段时间没有工单" in page


def _kpi(page: str, name: str) -> str:
    found = re.search(rf'id="kpi-{name}">([^<]*)<', page)
    assert found is not None, name
    return found.group(1)


# --- the dashboard and the command agree ----------------------------------------------------------


async def test_the_dashboard_shows_what_the_command_prints_for_the_same_days(
    client: Client, svc: Services, clock: FakeClock, wx_plain: WeChat,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    """Three grids' reports: 王伟's taken in 5 minutes, finished and rated 基本满意; 李娜's taken 10
    minutes late; 孙丽's never taken (missed). By hand: 响应率 1/3, 解决率 1/3, 满意率 0.9/1. The
    console dashboard and `communitybot report --format json` for the same day show the same, in
    total and per grid, worker and kind."""
    wc = WeCom(client, svc)
    g1 = (await new_ticket(svc, resident="oC1", building="3")).ticket
    g2 = (await new_ticket(svc, resident="oC2", building="5")).ticket
    (await new_ticket(svc, resident="oC3", building="9")).ticket
    lina = (await ticket(svc, g2.number)).assignee
    clock.advance(minutes=5)
    assert (await wc.say("wangwei", f"接单 {g1.number[-4:]}")).startswith("已接单")
    assert (await wc.say("wangwei", f"办结 {g1.number[-4:]} 已修好")).startswith("已办结")
    clock.advance(minutes=35)
    await schedule.run_due(svc)
    assert (await wc.say(lina or "", f"接单 {g2.number[-4:]}")).startswith("已接单")
    await surveys_answered(svc, clock, wx_plain, {"oC1": "基本满意"})

    day = DAY.isoformat()
    assert await report_cli(svc, monkeypatch, "--since", day, "--until", day, "--format", "json") == 0
    printed = json.loads(capsys.readouterr().out)
    total = printed["total"]
    assert (total["dispatched"], total["accepted_in_time"], total["resolved"], total["rated"]) == (3, 1, 1, 1)
    assert (total["response_rate"], total["resolution_rate"], total["satisfaction_rate"]) == (
        pytest.approx(1 / 3), pytest.approx(1 / 3), pytest.approx(0.9))

    page = await dashboard(client, svc, monkeypatch, day, day)
    shown = [_kpi(page, k) for k in ("response", "resolution", "satisfaction")]
    assert shown == [percent(total[k]) for k in ("response_rate", "resolution_rate", "satisfaction_rate")]
    assert shown == ["33.3%", "33.3%", "90.0%"]
    assert "超期</th>" in page and "每位居民以最后一次评价为准" in page  # what each figure counts, said
    for section, rows in (("按网格", printed["by_grid"]), ("按负责人", printed["by_worker"]), ("按类型", printed["by_kind"])):
        table = page[page.index(f"<h2>{section}</h2>"):]
        table = table[:table.index("</table>")]
        cells = [c for tr in re.findall(r"<tr>(.*?)</tr>", table, re.S) if (c := re.findall(r"<td>([^<]*)</td>", tr))]
        expected = [[r["name"], str(r["created"]), str(r["dispatched"]), percent(r["response_rate"]),
                     percent(r["resolution_rate"]), percent(r["satisfaction_rate"]), str(r["overdue"])] for r in rows]
        assert [c[:7] for c in cells] == expected, section


async def test_csv_and_json_carry_the_same_figures_under_chinese_headers(
    client: Client, svc: Services, clock: FakeClock, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The CSV: the Chinese header spreadsheets get, a line for the total and per grid, worker and
    kind, rates to 4 places and averages in seconds — the JSON's numbers."""
    wc = WeCom(client, svc)
    t = (await new_ticket(svc, resident="oX1")).ticket
    (await new_ticket(svc, kind="mediation", resident="oX2", category=None, fields={"party": "楼上"})).ticket
    clock.advance(minutes=10)
    assert (await wc.say("wangwei", f"接单 {t.number[-4:]}")).startswith("已接单")
    clock.advance(minutes=30)
    args = ["--since", DAY.isoformat(), "--until", DAY.isoformat()]
    assert await report_cli(svc, monkeypatch, *args, "--format", "json") == 0
    data = json.loads(capsys.readouterr().out)
    assert await report_cli(svc, monkeypatch, *args, "--format", "csv") == 0
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert rows[0] == ["分组", "代码", "名称", "受理", "撤销", "派单", "接单", "按时接单", "响应率", "办结", "解决率",
                       "评价", "满意", "基本满意", "不满意", "未评价", "满意率", "超期", "未结",
                       "平均接单用时(秒)", "平均办结用时(秒)"]
    records = [dict(zip(rows[0], r, strict=True)) for r in rows[1:]]
    assert [(r["分组"], r["代码"]) for r in records] == [
        ("合计", ""), *(("按网格", g["key"]) for g in data["by_grid"]),
        *(("按承办人", w["key"]) for w in data["by_worker"]), *(("按类型", k["key"]) for k in data["by_kind"])]
    total = records[0]
    assert (total["派单"], total["按时接单"], total["响应率"], total["解决率"], total["满意率"]) == ("2", "1", "0.5000", "0.0000", "")
    assert total["平均接单用时(秒)"] == str(round(data["total"]["avg_accept_s"])) == "600"
    assert set(data) == {"since", "until", "generated_at", "total", "by_grid", "by_worker", "by_kind"}
    assert {"key", "name", "created", "dispatched", "response_rate"} <= set(data["by_worker"][0])


async def test_overdue_is_the_resolve_limit_missed_not_a_late_acceptance(
    client: Client, svc: Services, clock: FakeClock
) -> None:
    """超期 counts the 办结 limit: a report taken 31 minutes late (escalated for it) but finished in
    an hour is late in 响应率, not 超期 (before, the overdue mark of the 接单 breach counted it). An
    urgent one not finished in its 2 hours (escalated), given to 李娜 and finished half an hour
    later, stays 超期: the breach is recorded, and the reassignment kept its 办结 limit."""
    wc = WeCom(client, svc)
    slow = (await new_ticket(svc, resident="oO1")).ticket
    urgent = (await new_ticket(svc, resident="oO2", category="水电气暖", urgency="urgent")).ticket
    clock.advance(minutes=5)
    assert (await wc.say("wangwei", f"接单 {urgent.number[-4:]}")).startswith("已接单")
    clock.advance(minutes=26)
    await schedule.run_due(svc)
    assert (await wc.say("wangwei", f"接单 {slow.number[-4:]}")).startswith("已接单")
    clock.advance(hours=1)
    assert (await wc.say("wangwei", f"办结 {slow.number[-4:]} 已修好")).startswith("已办结")
    clock.advance(minutes=30)
    await schedule.run_due(svc)  # the urgent one's 2 hours are up
    assert (await ticket(svc, urgent.number)).status == "escalated"
    await staff(client, urgent.number, "assign", assignee="lina")
    clock.advance(minutes=30)
    assert (await wc.say("lina", f"办结 {urgent.number[-4:]} 已抢修")).startswith("已办结")
    row = await ticket(svc, urgent.number)
    assert row.resolved_at is not None and row.due_at is not None and row.resolved_at > row.due_at
    f = (await day_figures(svc)).total
    assert (f.overdue, f.resolved, f.dispatched, f.accepted_in_time) == (1, 2, 2, 1)
