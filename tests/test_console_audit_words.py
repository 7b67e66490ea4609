"""The audit log page names what an outage's row holds in words, on both backends: its reason as
given (it read 拒绝原因：主管道爆管), its kind (kind：water), 全小区 for no buildings (buildings：—),
where from (送达方式：wecom) and times in local time (expected_end：2026-11-23T07:00:00+00:00)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient

from bot.clock import FakeClock
from bot.console import auth
from bot.services import Services
from tests.staff_support import logged_in
from tests.test_console_outage_confirm import _whole_cut

Client = TestClient[Any, Any]


def _details(page: str, action: str) -> list[str]:
    """The detail cells' text of the rows of this action, newest first."""
    rows = re.findall(rf'title="{re.escape(action)}">.*?<td class="detail"[^>]*>(.*?)</td>', page, re.S)
    return [re.sub(r"<[^>]+>", "", row).strip() for row in rows]


async def test_an_outage_row_reads_in_words(client: Client, services: Services, clock: FakeClock) -> None:
    outage_id = await _whole_cut(services, clock)  # announced via wecom, 5 hours from 10:00
    csrf = await logged_in(client, "admin", "community123")
    await client.post(f"/console/outages/{outage_id}", data={"csrf_token": csrf, "op": "end", "buildings": "3"})
    page = await (await client.get("/console/audit")).text()
    [announced] = _details(page, "outage.announce")
    assert announced == "来自：企业微信 类型：停水 楼栋：全小区 原因：主管道爆管 预计恢复：11-23 15:00", announced
    [ended] = _details(page, "outage.end")
    assert ended.startswith("来自：工作台 类型：停水 楼栋：3 已通知户数：1 拆自通知："), ended
    shown = " ".join(_details(page, "outage.announce") + _details(page, "outage.end") + _details(page, "outage.update"))
    assert "拒绝原因" not in shown and "expected_end" not in shown and "+00:00" not in shown


async def test_a_refusal_still_reads_as_one(client: Client, services: Services, clock: FakeClock) -> None:
    """A refused action's reason is still 拒绝原因 with the words the clerk was shown."""
    await auth.create_user(services, "ro", "readonly1", "readonly", display_name="只读")
    csrf = await logged_in(client, "ro", "readonly1")
    assert (await client.post("/console/outages", data={"csrf_token": csrf, "kind": "water", "whole": "1"})).status == 403
    await auth.create_user(services, "boss", "bosspass1", "admin")
    client.session.cookie_jar.clear()
    await logged_in(client, "boss", "bosspass1")
    page = await (await client.get("/console/audit")).text()
    [refused] = _details(page, "console.role_refused")
    assert "拒绝原因：" in refused and "需要的角色：工作人员" in refused, refused


async def test_a_reassignment_row_names_the_owners_as_the_other_pages_do(
    client: Client, services: Services, clock: FakeClock,
) -> None:
    """改派's row read 负责人：zhaoqiang 原负责人：sunli — account names a clerk never sees elsewhere
    (the queue, the ticket and the 操作人 column say 赵强, 孙丽) — after 原来：已派单 改为：已派单, a
    status that did not change; and an empty 说明： was shown as a label with nothing after it. Now
    what changed, the owners by name (负责人：孙丽 → 赵强), the accounts on hover, no empty label."""
    from bot import staff_actions
    from tests.staff_support import load_roster, make_ticket

    await load_roster(services)
    number = await make_ticket(services, None, status="open", summary="9号楼电梯按钮不灵", building="9")
    await staff_actions.staff_transition(services, number, "assign", "admin", assignee="sunli")
    await staff_actions.staff_transition(services, number, "assign", "admin", assignee="zhaoqiang")
    async with services.sessions() as session, session.begin():  # a WeCom 接单 with no words after it
        staff_actions.audit(session, "zhaoqiang", "wecom.accept", number, clock.now(), {"note": ""})
    await logged_in(client, "admin", "community123")
    page = await (await client.get("/console/audit")).text()
    [reassigned] = _details(page, "ticket.reassign")
    assert reassigned == "负责人：孙丽 → 赵强", reassigned  # not 原来：已派单 改为：已派单: the status stayed
    [assigned] = _details(page, "ticket.assign")
    assert assigned == "原来：待派单 改为：已派单 负责人：孙丽", assigned
    assert _details(page, "wecom.accept") == [""]  # not a bare 说明：
    row = page[page.index('title="ticket.reassign"'):]
    assert "assignee=zhaoqiang" in row[:row.index("</tr>")]  # the account on hover


async def test_a_roster_import_row_reads_in_chinese(
    client: Client, services: Services, clock: FakeClock, tmp_path: Path,
) -> None:
    """导入花名册's row read 变更：grids updated: G3、people deactivated: sunli、unchanged: 9、open
    tickets of people deactivated, to the staff queue (承办人已离开名册): sunli 2026…: English a
    clerk does not read, accounts for people. The same facts in Chinese, people and grids by name
    as the other pages show them (an id only where two share a name), one change after another."""
    from bot import roster, staff_actions
    from tests.staff_support import load_roster, make_ticket

    await load_roster(services)
    number = await make_ticket(services, None, status="open", summary="9号楼电梯按钮不灵", building="9")
    await staff_actions.staff_transition(services, number, "assign", "admin", assignee="sunli")
    demo = services.settings.roster_path.read_text(encoding="utf-8")
    without_sunli = re.sub(r'\[\[people\]\]\nid = "sunli"\n(?:(?!\[\[).)*', "", demo, flags=re.S).replace(
        'workers = ["sunli"]', 'workers = ["zhaoqiang"]')
    assert "sunli" not in without_sunli
    file = tmp_path / "roster.toml"
    file.write_text(without_sunli, encoding="utf-8")
    changes = await roster.import_roster(services, file, actor="cli")
    assert changes.people_deactivated == ("sunli",) and changes.grids_updated == ("G3",)
    assert "people deactivated: sunli" in changes.lines()  # the command's own output stays as it was
    await logged_in(client, "admin", "community123")
    page = await (await client.get("/console/audit")).text()
    [imported, first] = _details(page, "roster.import")
    assert imported == (
        f"变更：修改网格：望湖第三网格；移出名册：孙丽；未变动：{changes.unchanged} 项；"
        f"移出名册人员的未办结工单，转服务中心（承办人已离开名册）：孙丽 {number}"), imported
    assert first.startswith("变更：新增网格：望湖第一网格、望湖第二网格、望湖第三网格；新增人员：王伟、李娜、"), first
    assert not re.search(r"grids|people|unchanged|tickets", imported + first)
    # two people of one name are told apart by their id; a grid with no name is its id
    same = roster.RosterChanges(people_added=("wangwei2",), grids_added=("G9",), unchanged=3)
    assert same.audit_lines(services.texts, {"wangwei": "王伟", "wangwei2": "王伟"}, {"G9": ""}) == [
        "新增网格：G9", "新增人员：王伟（wangwei2）", "未变动：3 项"]


async def test_a_job_ended_by_staff_names_the_owner_told(
    client: Client, services: Services, clock: FakeClock,
) -> None:
    """Staff ending a job someone held pushes that owner; the row read owner_told：sunli, a key and an
    account. It reads 已通知承办人：孙丽."""
    from bot import staff_actions
    from tests.staff_support import load_roster, make_ticket

    await load_roster(services)
    number = await make_ticket(services, None, status="open", summary="9号楼电梯按钮不灵", building="9")
    await staff_actions.staff_transition(services, number, "assign", "admin", assignee="sunli")
    await staff_actions.staff_transition(services, number, "close", "admin", note="居民已自行解决")
    await logged_in(client, "admin", "community123")
    page = await (await client.get("/console/audit")).text()
    [closed] = _details(page, "ticket.close")
    assert "已通知承办人：孙丽" in closed and "owner_told" not in closed and "sunli" not in closed, closed
