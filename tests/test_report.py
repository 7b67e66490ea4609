"""Service figures on a hand-built set of tickets with known answers, and `communitybot report`
in its three formats — on both backends."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from datetime import date, datetime, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from bot import cli
from bot.clock import FakeClock
from bot.report import compute, duration, percent
from bot.services import Services
from storage.models import Ticket
from tests.wecom_driver import load_demo_roster

TZ = ZoneInfo("Asia/Shanghai")
SINCE, UNTIL = date(2026, 11, 1), date(2026, 11, 23)


def at(month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=TZ).astimezone(timezone.utc)


def row(number: str, **kw: Any) -> Ticket:
    values: dict[str, Any] = {
        "number": number, "kind": "complaint", "status": "open", "fields": {}, "summary": "",
        "urgency": "normal", "reporters": 1, "proactive": False, "overdue": False,
    }
    values.update(kw)
    values.setdefault("updated_at", values["created_at"])
    return Ticket(**values)


@pytest.fixture
async def svc(services: Services, clock: FakeClock) -> Services:
    """The known set (clock: 2026-11-23 10:00 local)."""
    await load_demo_roster(services)
    async with services.sessions() as session, session.begin():
        t1 = row("T1", grid="G1", assignee="wangwei", status="closed", created_at=at(11, 2, 9),
                 dispatched_at=at(11, 2, 9), accept_due_at=at(11, 2, 9, 30), accepted_at=at(11, 2, 9, 10),
                 resolved_at=at(11, 2, 17), due_at=at(11, 9, 9), closed_at=at(11, 3, 9), satisfaction=5,
                 satisfaction_label="满意")
        session.add(t1)
        await session.flush()
        session.add_all([
            # accepted late, resolved after its limit, rated 3
            row("T2", grid="G1", assignee="wangwei", status="closed", created_at=at(11, 3, 9),
                dispatched_at=at(11, 3, 9), accept_due_at=at(11, 3, 9, 30), accepted_at=at(11, 3, 10),
                resolved_at=at(11, 5, 9), due_at=at(11, 4, 9), satisfaction=3, satisfaction_label="基本满意"),
            # never accepted, still open past its limit
            row("T3", grid="G2", assignee="lina", status="dispatched", created_at=at(11, 10, 9),
                dispatched_at=at(11, 10, 9), accept_due_at=at(11, 10, 9, 30), due_at=at(11, 17, 9)),
            # no recorded accept limit: CB_ACCEPT_SLA_S (30 min) applies; rated 2
            row("T4", kind="mediation", grid="G2", assignee="chenmediator", status="closed",
                created_at=at(11, 12, 9), dispatched_at=at(11, 12, 9), accepted_at=at(11, 12, 9, 20),
                resolved_at=at(11, 13, 9), due_at=at(11, 27, 9), satisfaction=2, satisfaction_label="不满意"),
            row("T5", status="cancelled", created_at=at(11, 20, 9), closed_at=at(11, 20, 10)),
            # a linked duplicate of T1: one problem, but its reporter's rating counts
            row("T6", grid="G1", assignee="wangwei", status="closed", parent_id=t1.id, created_at=at(11, 2, 10),
                dispatched_at=at(11, 2, 10), accepted_at=at(11, 2, 10), resolved_at=at(11, 2, 17),
                satisfaction=4, satisfaction_label="满意"),
            row("T7", grid="G1", status="closed", created_at=at(10, 31, 23), satisfaction=1),  # before the range
            row("T8", kind="elderly_service", grid="G1", status="open", created_at=at(11, 23, 9)),
            row("T9", grid="G2", status="closed", created_at=at(11, 15, 9), satisfaction_label="未评价",
                resolved_at=at(11, 16, 9), closed_at=at(11, 19, 9)),
        ])
    return services


async def test_total_figures(svc: Services) -> None:
    r = await compute(svc, SINCE, UNTIL)
    f = r.total
    assert (f.created, f.cancelled, f.dispatched, f.accepted, f.accepted_in_time) == (7, 1, 4, 3, 2)
    assert (f.resolved, f.rated, f.satisfied, f.basic, f.unsatisfied, f.unrated) == (4, 4, 2, 1, 1, 1)
    assert (f.overdue, f.open) == (2, 2)
    assert f.response_rate == pytest.approx(2 / 4)
    assert f.resolution_rate == pytest.approx(4 / 6)
    assert f.satisfaction_rate == pytest.approx((2 + 0.9) / 4)
    assert f.avg_accept_s == pytest.approx((600 + 3600 + 1200) / 3)
    assert f.avg_resolve_s == pytest.approx((8 * 3600 + 48 * 3600 + 24 * 3600 + 24 * 3600) / 4)


async def test_per_grid_worker_and_kind(svc: Services) -> None:
    r = await compute(svc, SINCE, UNTIL)
    grids = {x.key: x for x in r.by_grid}
    assert [x.name for x in r.by_grid] == ["望湖第一网格", "望湖第二网格", "未分网格"]
    g1, g2, none = grids["G1"].figures, grids["G2"].figures, grids[""].figures
    assert (g1.created, g1.dispatched, g1.accepted_in_time, g1.resolved, g1.rated) == (3, 2, 1, 2, 3)
    assert g1.satisfaction_rate == pytest.approx((2 + 0.9) / 3)
    assert g1.resolution_rate == pytest.approx(2 / 3)
    assert (g2.created, g2.overdue, g2.rated, g2.satisfaction_rate) == (3, 1, 1, 0.0)
    assert (none.created, none.cancelled, none.resolution_rate, none.response_rate) == (1, 1, None, None)
    workers = {x.key: (x.name, x.figures.created, x.figures.rated) for x in r.by_worker}
    assert workers == {
        "wangwei": ("王伟", 2, 3), "lina": ("李娜", 1, 0), "chenmediator": ("陈调解", 1, 1), "": ("未指派", 3, 0),
    }
    kinds = {x.key: x.figures.created for x in r.by_kind}
    assert kinds == {"complaint": 5, "mediation": 1, "elderly_service": 1}


async def test_a_range_of_local_dates(svc: Services) -> None:
    r = await compute(svc, date(2026, 10, 31), date(2026, 10, 31))
    assert (r.total.created, r.total.rated) == (1, 1)  # 23:00 local on the 31st is the 31st
    empty = await compute(svc, date(2026, 1, 1), date(2026, 1, 31))
    assert empty.total.created == 0 and empty.total.response_rate is None and empty.by_grid == ()
    with pytest.raises(ValueError):
        await compute(svc, UNTIL, SINCE)
    with pytest.raises(ValueError, match="2000-01-01 to 2099-12-31"):
        await compute(svc, date(1, 1, 1), date(1, 1, 2))


def test_readable_numbers() -> None:
    assert (percent(0.725), percent(None)) == ("72.5%", "—")
    assert [duration(s) for s in (None, 600, 3900, 2 * 86400 + 3 * 3600)] == ["—", "10分", "1小时05分", "2天3小时"]


async def run_cli(svc: Services, monkeypatch: pytest.MonkeyPatch, *args: str) -> int:
    monkeypatch.setenv("CB_DATABASE_URL", svc.settings.database_url)
    monkeypatch.setenv("CB_REDIS_URL", svc.settings.redis_url)
    return await asyncio.to_thread(cli.main, ["report", "--since", "2026-11-01", "--until", "2026-11-23", *args])


async def test_cli_table(svc: Services, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    assert await run_cli(svc, monkeypatch) == 0
    out = capsys.readouterr().out
    assert "社区服务报表 2026-11-01 至 2026-11-23" in out
    for header in ("响应率", "解决率", "满意率", "按网格", "按承办人", "按类型", "望湖第一网格", "王伟", "矛盾"):
        assert header in out, header
    total = next(line for line in out.splitlines() if line.startswith("合计"))
    assert total.split() == ["合计", "7", "4", "2", "50.0%", "4", "66.7%", "4", "72.5%", "2", "2", "30分", "1天2小时"]


async def test_cli_json(svc: Services, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    assert await run_cli(svc, monkeypatch, "--format", "json") == 0
    data = json.loads(capsys.readouterr().out)
    assert data["since"] == "2026-11-01" and data["total"]["created"] == 7
    assert data["total"]["satisfaction_rate"] == pytest.approx(0.725)
    assert {g["key"] for g in data["by_grid"]} == {"G1", "G2", ""}


async def test_cli_csv(svc: Services, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    assert await run_cli(svc, monkeypatch, "--format", "csv") == 0
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    header, total = rows[0], rows[1]
    assert header[:3] == ["分组", "代码", "名称"] and "满意率" in header
    record = dict(zip(header, total, strict=True))
    assert (record["分组"], record["受理"], record["按时接单"], record["满意率"]) == ("合计", "7", "2", "0.7250")
    assert len(rows) == 1 + 1 + 3 + 4 + 3


async def test_cli_csv_written_to_a_file_opens_in_excel_and_stdout_stays_plain(
    svc: Services, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Any,
) -> None:
    """Excel on Windows garbled the CSV's Chinese (it reads a file without a BOM as GBK): --output
    FILE writes it with a UTF-8 BOM, while stdout, read by pipes and scripts, stays without one;
    a file that cannot be written is said, exit 2."""
    assert await run_cli(svc, monkeypatch, "--format", "csv") == 0
    piped = capsys.readouterr().out
    assert not piped.startswith("\ufeff") and piped.startswith("分组,代码,名称")
    target = tmp_path / "报表.csv"
    assert await run_cli(svc, monkeypatch, "--format", "csv", "--output", str(target)) == 0
    captured = capsys.readouterr()
    assert captured.out == "" and f"written to {target}" in captured.err
    raw = target.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf") and raw[3:].decode("utf-8") == piped
    assert raw.decode("gbk", errors="replace") != piped  # what Excel would show without the BOM
    assert await run_cli(svc, monkeypatch, "--format", "json", "--output", str(tmp_path / "r.json")) == 0
    assert json.loads((tmp_path / "r.json").read_bytes())["total"]["created"] == 7  # JSON: no BOM
    assert await run_cli(svc, monkeypatch, "--format", "csv", "--output", str(tmp_path / "no" / "such" / "x.csv")) == 2
    assert "cannot write" in capsys.readouterr().err


async def test_cli_csv_keeps_a_name_that_looks_like_a_formula_as_text(
    svc: Services, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    """A roster name starting with = (or +, -, @) became a formula when the CSV was opened in a spreadsheet."""
    from sqlalchemy import update

    from storage.models import Person

    async with svc.sessions() as session, session.begin():
        await session.execute(update(Person).where(Person.id == "wangwei").values(name="=HYPERLINK(\"x\")"))
    assert await run_cli(svc, monkeypatch, "--format", "csv") == 0
    names = [r[2] for r in csv.reader(io.StringIO(capsys.readouterr().out))]
    assert "'=HYPERLINK(\"x\")" in names and not any(n.startswith("=") for n in names)


async def test_cli_default_range_is_the_dashboards_and_is_said(
    svc: Services, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Out of the box `report` counts the console dashboard's default days (not the month so far),
    so their figures agree, and says which dates it counted."""
    from datetime import timedelta

    from bot.console.dashboard import DEFAULT_DAYS

    monkeypatch.setenv("CB_DATABASE_URL", svc.settings.database_url)
    monkeypatch.setenv("CB_REDIS_URL", svc.settings.redis_url)
    assert await asyncio.to_thread(cli.main, ["report", "--until", "2026-11-23", "--format", "json"]) == 0
    captured = capsys.readouterr()
    since = date(2026, 11, 23) - timedelta(days=DEFAULT_DAYS - 1)
    assert json.loads(captured.out)["since"] == since.isoformat() == "2026-10-25"
    assert f"communitybot report: {since} to 2026-11-23" in captured.err
    assert await asyncio.to_thread(cli.main, ["report"]) == 0
    today = datetime.now(TZ).date()
    assert f"社区服务报表 {today - timedelta(days=DEFAULT_DAYS - 1)} 至 {today}" in capsys.readouterr().out


def test_cli_refuses_bad_dates(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["report", "--since", "2026-13-01"])
    assert exit_info.value.code == 2 and "not a date" in capsys.readouterr().err
    assert cli.main(["report", "--since", "2026-11-23", "--until", "2026-11-01"]) == 2
    assert "after --until" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["report", "--format", "xml"])
    # dates the figures cannot be computed for (they overflowed into a traceback): refused, said
    for args in (["--since", "0001-01-01", "--until", "0001-01-02"], ["--until", "0001-01-05"],
                 ["--since", "9999-12-30", "--until", "9999-12-31"]):
        assert cli.main(["report", *args]) == 2, args
        assert "outside the dates the figures can be asked for (2000-01-01 to 2099-12-31)" in capsys.readouterr().err


# --- 响应率 and 解决率 as the worker's commands make them ------------------------------------------


async def _figures(services: Services) -> Any:
    return (await compute(services, date(2026, 11, 23), date(2026, 11, 23))).total


async def _act(services: Services, number: str, action: str, actor: str, **kw: Any) -> None:
    from bot import dispatch, tickets

    async with services.sessions() as session, session.begin():
        t = await tickets.get_by_number(session, number, for_update=True)
        assert t is not None
        await dispatch.apply_action(services, session, t, action, actor, **kw)


async def test_taking_is_the_first_acceptance_or_a_resolve(client: Any, services: Services, clock: FakeClock) -> None:
    """(a) taken in 5 min, reopened by 不满意 and taken again: still in time; (b) 办结 10 min after
    dispatch without 接单 is taking it."""
    from tests.wecom_driver import WeCom, new_ticket

    wc = WeCom(client, services)
    await load_demo_roster(services)
    a = (await new_ticket(services, resident="oA")).ticket
    clock.advance(minutes=5)
    assert (await wc.say("wangwei", "接单 1")).startswith("已接单")
    await wc.say("wangwei", "办结 1 已修好")
    await _act(services, a.number, "reopen", "resident", note="不满意")
    clock.advance(hours=1)
    assert (await wc.say("wangwei", "接单 1")).startswith("已接单")
    f = await _figures(services)
    assert (f.dispatched, f.accepted, f.accepted_in_time, f.response_rate) == (1, 1, 1, 1.0)

    b = (await new_ticket(services, resident="oB", category="水电气暖")).ticket
    clock.advance(minutes=10)
    assert (await wc.say("wangwei", "办结 2 已修好")).startswith(f"已办结：工单 {b.number}")
    f = await _figures(services)
    assert (f.dispatched, f.accepted_in_time, f.response_rate) == (2, 2, 1.0)
    assert f.avg_accept_s == pytest.approx((300 + 600) / 2)


async def test_withdrawn_and_still_waiting_tickets_are_not_counted(
    client: Any, services: Services, clock: FakeClock
) -> None:
    """(c) withdrawn 2 min after dispatch: out of 响应率 and 解决率; (d) 3 min after dispatch, inside
    its 30-minute window: not counted until it is taken or the window closes."""
    from tests.wecom_driver import WeCom, new_ticket

    wc = WeCom(client, services)
    await load_demo_roster(services)
    taken = (await new_ticket(services, resident="oT")).ticket
    await wc.say("wangwei", "接单 1")
    withdrawn = (await new_ticket(services, resident="oW", category="水电气暖")).ticket
    clock.advance(minutes=2)
    await _act(services, withdrawn.number, "cancel", "resident:x", data={"by": "resident"})
    clock.advance(minutes=1)
    waiting = (await new_ticket(services, resident="oS", category="电梯")).ticket
    clock.advance(minutes=3)
    f = await _figures(services)
    assert (f.created, f.cancelled, f.dispatched, f.accepted_in_time, f.response_rate) == (3, 1, 1, 1, 1.0)
    assert (f.resolved, f.resolution_rate) == (0, 0.0)
    await wc.say("wangwei", f"办结 {taken.number[-4:]} 已修好")
    assert (await _figures(services)).resolution_rate == pytest.approx(1 / 2)
    clock.advance(minutes=30)  # the window closed untaken
    f = await _figures(services)
    assert (f.dispatched, f.accepted_in_time, f.response_rate) == (2, 1, 0.5)
    assert waiting.status == "dispatched"


async def test_a_breached_accept_limit_is_never_in_time(client: Any, services: Services, clock: FakeClock) -> None:
    """(e) not taken in 30 min (escalated at 31), reassigned to the same worker at 61 and taken at
    66: inside the new window, but the first was breached."""
    from bot import schedule
    from tests.wecom_driver import WeCom, new_ticket

    wc = WeCom(client, services)
    await load_demo_roster(services)
    t = (await new_ticket(services, resident="oE")).ticket
    clock.advance(minutes=31)
    await schedule.run_due(services)
    clock.advance(minutes=30)
    await _act(services, t.number, "assign", "liustaff", assignee="wangwei")
    clock.advance(minutes=5)
    assert (await wc.say("wangwei", "接单 1")).startswith("已接单")
    f = await _figures(services)
    assert (f.dispatched, f.accepted, f.accepted_in_time, f.response_rate) == (1, 1, 0, 0.0)


async def test_each_dispatch_counts_for_the_worker_it_went_to(client: Any, services: Services, clock: FakeClock) -> None:
    """(f) A ticket 王伟 took in 5 min and returned, given to 李娜 who took it in 10: both took their
    dispatch in time, each with their own time to accept. One 王伟 left untaken past its limit
    (escalated), then given to 李娜 who took it in 5: late for him, in time for her. One he returned
    untaken, left in the queue: his dispatch, not taken; nobody's in 未指派. The community's
    figures stay per ticket (before, the returned ticket left 王伟's row and 李娜 was credited with
    his 接单 time)."""
    from bot import schedule
    from tests.wecom_driver import WeCom, new_ticket

    wc = WeCom(client, services)
    await load_demo_roster(services)
    first = (await new_ticket(services, resident="oF1")).ticket
    clock.advance(minutes=5)
    assert (await wc.say("wangwei", "接单 1")).startswith("已接单")
    clock.advance(minutes=30)
    assert (await wc.say("wangwei", "退回 1 是供电公司的线路")).startswith("已退回")
    await _act(services, first.number, "assign", "liustaff", assignee="lina")
    clock.advance(minutes=10)
    assert (await wc.say("lina", "接单 1")).startswith("已接单")

    late = (await new_ticket(services, resident="oF2", category="水电气暖")).ticket
    clock.advance(minutes=31)
    await schedule.run_due(services)  # 王伟's 接单 limit breached: escalated
    await _act(services, late.number, "assign", "liustaff", assignee="lina")
    clock.advance(minutes=5)
    assert (await wc.say("lina", "接单 2")).startswith("已接单")

    (await new_ticket(services, resident="oF3", category="电梯")).ticket
    clock.advance(minutes=2)
    assert (await wc.say("wangwei", "退回 3 不归我们网格")).startswith("已退回")

    r = await _figures(services), await compute(services, date(2026, 11, 23), date(2026, 11, 23))
    total, workers = r[0], {x.key: x.figures for x in r[1].by_worker}
    assert set(workers) == {"wangwei", "lina", ""}
    wang, li, nobody = workers["wangwei"], workers["lina"], workers[""]
    assert (wang.dispatched, wang.accepted, wang.accepted_in_time, wang.response_rate) == (3, 1, 1, pytest.approx(1 / 3))
    assert wang.avg_accept_s == pytest.approx(300)
    assert wang.created == 0  # he owns none of them now
    assert (li.dispatched, li.accepted, li.accepted_in_time, li.response_rate) == (2, 2, 2, 1.0)
    assert li.avg_accept_s == pytest.approx((600 + 300) / 2)
    assert (li.created, li.open) == (2, 2)
    assert (nobody.created, nobody.dispatched, nobody.accepted_in_time, nobody.response_rate) == (1, 0, 0, None)
    # per ticket, as before: the first taken in time, the breached one late; the returned one, not
    # taken, counts once its 接单 window has closed
    assert (total.dispatched, total.accepted, total.accepted_in_time, total.response_rate) == (2, 2, 1, 0.5)
    clock.advance(minutes=30)
    total = await _figures(services)
    assert (total.dispatched, total.accepted, total.accepted_in_time, total.response_rate) == (3, 2, 1, pytest.approx(1 / 3))
