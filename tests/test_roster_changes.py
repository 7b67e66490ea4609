"""What a roster change does to the work in hand, on both backends: a worker an import takes out
of the roster leaves no ticket waiting on her (the import lists them and sends them to the staff
queue; chases, additions and pushes reach staff instead), and an import the next start would undo
(CB_ROSTER names another file) says so."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select

from bot import cli, roster, schedule
from bot.app import create_app
from bot.channels import push
from bot.clock import FakeClock
from bot.console import auth
from bot.services import Services
from storage.models import AuditLog, TicketEvent
from tests.conftest import WeChat
from tests.flow_helpers import group_posts, tickets_of
from tests.staff_support import logged_in
from tests.test_flows_status_handoff import complaint
from tests.wecom_driver import WeCom, outbox_rows

Client = TestClient[Any, Any]
DEMO = Path(__file__).resolve().parents[1] / "config" / "roster.toml"
# Merged into the demo roster: 钱丽 takes the first grid (buildings 1–3) over from 王伟.
QIANLI = """
[[grids]]
id = "G1"
name = "望湖第一网格"
buildings = ["1", "2", "3"]
workers = ["qianli"]

[[people]]
id = "qianli"
name = "钱丽"
roles = ["grid_worker"]
"""


@pytest.fixture(autouse=True)
def cli_env(services: Services, monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI on the test's database and store; every ticket routed by the roster of the moment."""
    monkeypatch.setenv("CB_DATABASE_URL", services.settings.database_url)
    monkeypatch.setenv("CB_REDIS_URL", services.settings.redis_url)
    monkeypatch.setenv("CB_VAR_DIR", services.settings.var_dir)
    monkeypatch.delenv("CB_ROSTER", raising=False)
    monkeypatch.setattr(roster, "SNAPSHOT_MAX_AGE_S", 0.0)  # the CLI's store prefix is not the test's
    monkeypatch.setattr(auth, "BCRYPT_ROUNDS", 4)


async def roster_import(*args: str) -> int:
    """`communitybot roster import …`, as the operator runs it."""
    return await asyncio.to_thread(cli.main, ["roster", "import", *args])


async def test_a_worker_taken_out_of_the_roster_leaves_no_ticket_waiting_on_her(
    client: Client, services: Services, clock: FakeClock, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    wx, wecom = WeChat(client, services.settings), WeCom(client, services)
    file = tmp_path / "qianli.toml"
    file.write_text(QIANLI, encoding="utf-8")
    assert await roster_import(str(file)) == 0
    resident, other, neighbour = "oRosterResA", "oRosterResB", "oRosterResC"
    await complaint(wx, resident, building="3")
    await complaint(wx, other, building="2")
    [held] = await tickets_of(services, resident)
    [done] = await tickets_of(services, other)
    assert held.assignee == done.assignee == "qianli" and held.status == "dispatched"
    assert "已办结" in await wecom.say("qianli", "办结 0002 灯已换好")
    capsys.readouterr()

    # --dry-run names her open ticket (not the one she finished) and changes nothing.
    assert await roster_import("--replace", "--dry-run", str(DEMO)) == 0
    out = capsys.readouterr().out
    assert "people deactivated: qianli" in out
    assert f"open tickets of people deactivated, to the staff queue (承办人已离开名册): qianli {held.number}" in out
    assert done.number not in out
    [held] = await tickets_of(services, resident)
    posts = len(await group_posts(services))
    assert held.status == "dispatched" and posts == 0

    assert await roster_import("--replace", str(DEMO)) == 0
    out = capsys.readouterr().out
    assert "people deactivated: qianli" in out and f"(承办人已离开名册): qianli {held.number}" in out
    [held] = await tickets_of(services, resident)
    assert held.status == "escalated" and held.assignee == "qianli"  # who had it stays on record
    [alert] = await group_posts(services)
    assert held.number in alert.payload["content"] and "承办人已离开名册" in alert.payload["content"]
    async with services.sessions() as session:
        events = list(await session.scalars(select(TicketEvent).where(TicketEvent.ticket_id == held.id)))
        audit = await session.scalar(select(AuditLog).where(AuditLog.action == "roster.import").order_by(AuditLog.id.desc()))
    assert [(e.action, e.actor, e.note) for e in events if e.action == "escalate"] == [
        ("escalate", "cli", "承办人已离开名册，请改派")
    ]
    assert audit is not None and any(held.number in line for line in audit.detail["changes"])

    # Her reminder to take it never goes, and her 接单 is refused.
    clock.advance(hours=3)
    await schedule.run_due(services)
    assert not [r for r in await outbox_rows(services, "wecom", "qianli") if "提醒" in str(r.payload)]
    assert "不在社区工作人员名册中" in await wecom.say("qianli", "接单 0001")

    # The resident's chase and addition reach the staff group, and the resident is told so.
    urged = await wx.say(resident, "催一下")
    assert "已转告服务中心" in urged and "钱丽" not in urged
    added = await wx.say(resident, "补充一下：灯罩也掉下来了")
    assert "服务中心的工作人员会看到" in added
    assert "钱丽" not in await wx.say(resident, "5")
    assert not [r for r in await outbox_rows(services, "wecom", "qianli") if r.created_at >= clock.now()]
    texts = [p.payload["content"] for p in await group_posts(services)]
    assert any("居民催办" in t for t in texts) and any("灯罩也掉下来了" in t for t in texts)

    # A neighbour's report of the same problem joins the ticket; the push to its owner is not sent
    # to someone who left: staff are told instead, and the ticket page shows it.
    await complaint(wx, neighbour, building="3")
    [linked] = await tickets_of(services, neighbour)
    assert linked.parent_id == held.id
    async with aiohttp.ClientSession() as http:
        await push.drain(services, http)
    dead = [r for r in await outbox_rows(services, "wecom", "qianli") if r.state == "dead"]
    assert dead and all(r.last_error == push.LEFT_ROSTER for r in dead)
    assert any("企业微信消息未送达：钱丽" in p.payload["content"] and "承办人已离开名册" in p.payload["content"]
               for p in await group_posts(services))

    # The console: her ticket is in the queue with why; the one she finished, reopened, too.
    csrf = await logged_in(client, "admin", "community123")
    resp = await client.post(f"/console/tickets/{done.number}/transition", data={"action": "reopen", "csrf_token": csrf})
    assert resp.status == 200
    queue = await (await client.get("/console")).text()
    for number in (held.number, done.number):
        item = queue[queue.index(f'data-number="{number}"'):]
        item = item[:item.index("</li>")]
        assert "承办人已离开名册" in item, number
    page = await (await client.get(f"/console/tickets/{held.number}")).text()
    assert "钱丽 <span class=\"badge overdue\">承办人已离开名册</span>" in page
    assert "发给钱丽：承办人已离开名册，消息没有发出。" in page
    before = len(await outbox_rows(services, "wecom", "qianli"))
    assert "已转告服务中心" in await wx.say(other, "催一下")  # reopened, its owner gone: to staff
    assert len(await outbox_rows(services, "wecom", "qianli")) == before

    # The reopen went to the staff queue at once (nothing queued for her to be found dead later),
    # the staff group told why.
    assert (await tickets_of(services, other))[0].status == "escalated"
    assert not [r for r in await outbox_rows(services, "wecom", "qianli") if r.ticket_id == done.id
                and "重新打开" in str(r.payload)]
    assert any(done.number in p.payload["content"] and "承办人已离开名册" in p.payload["content"]
               for p in await group_posts(services))
    async with aiohttp.ClientSession() as http:
        await push.drain(services, http)
    alerts = [p.id for p in await group_posts(services) if "企业微信消息未送达" in p.payload["content"]]

    # Staff give her open ticket to 王伟: it leaves the queue; the 已改派 notice to her is dropped
    # without a word to staff (it needs nobody).
    resp = await client.post(f"/console/tickets/{held.number}/transition",
                             data={"action": "assign", "assignee": "wangwei", "csrf_token": csrf})
    assert resp.status == 200
    async with aiohttp.ClientSession() as http:
        await push.drain(services, http)
    assert [r.state for r in await outbox_rows(services, "wecom", "qianli") if "改派" in str(r.payload)] == ["dead"]
    assert [p.id for p in await group_posts(services) if "企业微信消息未送达" in p.payload["content"]] == alerts
    assert f'data-number="{held.number}"' not in await (await client.get("/console")).text()


async def test_an_import_the_next_start_undoes_says_so_and_the_start_warns(
    services: Services, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    configured = tmp_path / "production.toml"
    configured.write_text(DEMO.read_text(encoding="utf-8"), encoding="utf-8")
    added = tmp_path / "qianli.toml"
    added.write_text(QIANLI, encoding="utf-8")
    settings = services.settings.model_copy(update={"roster": str(configured)})

    def start() -> TestClient[Any, Any]:
        """The app as a start with CB_ROSTER=configured runs it (loading that roster first)."""
        return TestClient(TestServer(create_app(settings, services=dataclasses.replace(services, settings=settings))))

    async with start() as client:
        monkeypatch.setenv("CB_ROSTER", str(configured))
        assert await roster_import(str(added)) == 0
        err = capsys.readouterr().err
        assert f"the next start reloads {configured} as the whole roster and undoes this" in err
        assert f"edit {configured} instead, or import {configured}" in err
        await complaint(WeChat(client, settings), "oRosterUndone", building="1")
        [ticket] = await tickets_of(services, "oRosterUndone")
        assert ticket.assignee == "qianli"
        assert await roster_import("--dry-run", str(configured)) == 0  # that file itself: nothing to undo
        assert "undoes this" not in capsys.readouterr().err
        monkeypatch.delenv("CB_ROSTER")
        assert await roster_import("--dry-run", str(added)) == 0  # no CB_ROSTER: nothing reloads
        assert "undoes this" not in capsys.readouterr().err

    # The next start reloads CB_ROSTER: she is out again, and the log says so loudly, with her ticket.
    caplog.set_level(logging.INFO, logger="bot.roster")
    async with start():
        pass
    warned = [r for r in caplog.records if r.name == "bot.roster" and r.levelno == logging.WARNING]
    assert len(warned) == 1, [r.getMessage() for r in caplog.records]
    said = warned[0].getMessage()
    assert "deactivated qianli" in said and f"qianli {ticket.number}" in said and str(configured) in said
    [ticket] = await tickets_of(services, "oRosterUndone")
    assert ticket.status == "escalated"


async def test_a_grid_worker_on_leave_his_grids_reports_move_to_the_worker_taking_it_over(
    client: Client, services: Services, capsys: pytest.CaptureFixture[str],
) -> None:
    """钱丽 takes the first grid over from 王伟 (on leave, still in the roster): his open reports of
    it stayed his, with nothing said — new ones went to her while his waited. They now move with
    the grid: to her (a card each, 王伟 told 已改派他人), listed by the import; a report staff gave
    someone outside the grid stays theirs."""
    wx, wecom = WeChat(client, services.settings), WeCom(client, services)
    taken, waiting, elsewhere = "oLeaveA", "oLeaveB", "oLeaveC"
    for openid, building in ((taken, "3"), (waiting, "1"), (elsewhere, "2")):
        await complaint(wx, openid, building=building)
    [a], [b], [c] = [await tickets_of(services, o) for o in (taken, waiting, elsewhere)]
    assert a.assignee == b.assignee == c.assignee == "wangwei"
    assert (await wecom.say("wangwei", "接单 1")).startswith(f"已接单：工单 {a.number}")
    csrf = await logged_in(client, "admin", "community123")
    resp = await client.post(f"/console/tickets/{c.number}/transition",
                             data={"action": "assign", "assignee": "lina", "csrf_token": csrf})
    assert resp.status == 200
    file = Path(services.settings.var_dir) / "qianli.toml"
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_text(QIANLI, encoding="utf-8")
    capsys.readouterr()

    assert await roster_import("--dry-run", str(file)) == 0
    moved = f"open tickets of workers taken out of their grid, moved with the grid: {a.number} wangwei → qianli, " \
            f"{b.number} wangwei → qianli"
    assert moved in capsys.readouterr().out
    assert [t.assignee for t in await tickets_of(services)] == ["wangwei", "wangwei", "lina"]

    assert await roster_import(str(file)) == 0
    assert moved in capsys.readouterr().out
    [a], [b], [c] = [await tickets_of(services, o) for o in (taken, waiting, elsewhere)]
    assert [(t.assignee, t.status, t.grid) for t in (a, b, c)] == [
        ("qianli", "dispatched", "G1"), ("qianli", "dispatched", "G1"), ("lina", "dispatched", "G1")]
    cards = [r.payload.get("title", "") for r in await outbox_rows(services, "wecom", "qianli")]
    assert cards == [f"新工单 {a.number}｜报事报修", f"新工单 {b.number}｜报事报修"]
    told = [r.payload.get("text") for r in await outbox_rows(services, "wecom", "wangwei")]
    assert f"工单 {a.number}（3栋1单元）已改派他人，您无需再处理，不用上门。" in told
    assert f"工单 {b.number}（1栋1单元）已改派他人，您无需再处理，不用上门。" in told
    # his result is not lost: kept on the job and passed on to the worker who has it now (5f0a555)
    assert await wecom.say("wangwei", "办结 1 修好了") == (
        f"工单 {a.number} 已改派给 钱丽，这张单不用您再办结。您写的办理情况已转告 钱丽，并记在工单上。")
    mine = await wecom.say("qianli", "我的工单")
    assert "（2 张）" in mine and a.number in mine and b.number in mine
    assert "钱丽" in await wx.say(taken, "5")
    assert (await wecom.say("qianli", "接单 1 2")).count("已接单") == 2
    async with services.sessions() as session:
        notes = list(await session.scalars(select(TicketEvent.note).where(
            TicketEvent.ticket_id == a.id, TicketEvent.action == "assign").order_by(TicketEvent.id)))
    assert notes[-1] == "原网格员已调出本网格，转给本网格网格员"
    # the same file again: nothing left to move
    assert await roster_import(str(file)) == 0
    assert "moved with the grid" not in capsys.readouterr().out


async def test_a_report_at_a_grids_place_moves_with_the_grid_too(
    client: Client, services: Services, capsys: pytest.CaptureFixture[str],
) -> None:
    """A report at a common place the second grid lists (小区西门: no building) is that grid's
    worker's; 李娜 taken out of the grid (merged: 望湖第二网格 with 赵强 alone, its places kept in the
    file) hands it to 赵强 as a building's report would be handed."""
    from tests.test_owner_notices import report

    wx = WeChat(client, services.settings)
    assert "工单号" in await report(wx, "oGate", "小区西门那个路灯晚上不亮", "13812345678")
    [gate] = await tickets_of(services, "oGate")
    assert (gate.building, gate.grid, gate.status) == (None, "G2", "dispatched")
    if gate.assignee != "lina":  # the least loaded of the two took it: give it to 李娜 first
        csrf = await logged_in(client, "admin", "community123")
        await client.post(f"/console/tickets/{gate.number}/transition",
                          data={"action": "assign", "assignee": "lina", "csrf_token": csrf})
    file = Path(services.settings.var_dir) / "g2.toml"
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_text('[[grids]]\nid = "G2"\nname = "望湖第二网格"\nbuildings = ["4", "5", "6", "7"]\n'
                    'places = ["小区东门", "小区西门", "地下车库", "垃圾站", "快递柜"]\nworkers = ["zhaoqiang"]\n',
                    encoding="utf-8")
    capsys.readouterr()
    assert await roster_import(str(file)) == 0
    assert f"{gate.number} lina → zhaoqiang" in capsys.readouterr().out
    [gate] = await tickets_of(services, "oGate")
    assert (gate.assignee, gate.grid) == ("zhaoqiang", "G2")
