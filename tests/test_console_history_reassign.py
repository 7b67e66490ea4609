"""A ticket's history names a 改派 as one: staff giving 3号楼's lamp from 王伟 to 赵强 read 派单
twice (系统 → 王伟, 管理员 → 赵强) while the audit log said 改派 — now 改派, with whom it was taken
from (刘敏 → 赵强（原负责人 王伟）). A 派单 after the owner's 退回 (nobody held it) stays 派单.
Both backends."""

from __future__ import annotations

import re
from typing import Any

from aiohttp.test_utils import TestClient

from bot.console import auth
from bot.services import Services
from tests.staff_support import logged_in
from tests.wecom_driver import WeCom, new_ticket

Client = TestClient[Any, Any]


def _story(page: str) -> list[str]:
    timeline = page[page.index('class="timeline"'):page.index("</ol>", page.index('class="timeline"'))]
    return [re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", line)).strip()
            for line in re.findall(r'<li class="tl-event">(.*?)</li>', timeline, re.S)]


async def test_a_reassignment_reads_as_one_in_the_history(client: Client, services: Services) -> None:
    await auth.create_user(services, "liu", "staffpass1", "staff", display_name="刘敏")
    job = (await new_ticket(services, resident="oA", building="3")).ticket
    assert job.assignee == "wangwei"
    csrf = await logged_in(client, "liu", "staffpass1")
    await client.post(f"/console/tickets/{job.number}/transition",
                      data={"action": "assign", "assignee": "zhaoqiang", "csrf_token": csrf})
    assert (await WeCom(client, services).say("zhaoqiang", "退回 1 下午去不了")).startswith("已退回")
    await client.post(f"/console/tickets/{job.number}/transition",
                      data={"action": "assign", "assignee": "lina", "csrf_token": csrf})
    story = _story(await (await client.get(f"/console/tickets/{job.number}")).text())
    given = [line for line in story if "→" in line]
    assert [line.split(" ", 3)[2:] for line in given] == [
        ["派单", "系统 → 王伟"], ["改派", "刘敏 → 赵强（原负责人 王伟）"], ["派单", "刘敏 → 李娜"]], story
