"""派单 / 改派 names what each person covers — a grid worker's grids, a provider's services, else
their role — the ticket's own grid's workers first, marked 本工单网格. It listed 李娜（lina）,
孙丽（sunli）, 王伟（wangwei） …: a clerk handing on 8号楼's job, its grid worker late, could not tell
who covers 8号楼 (found walking the console as a desk clerk). Both backends."""

from __future__ import annotations

import re
from typing import Any

from aiohttp.test_utils import TestClient

from bot.console.views import assignee_options
from bot.services import Services
from storage.models import Grid, Person
from tests.staff_support import load_roster, logged_in, make_ticket
from tests.wecom_driver import new_ticket

Client = TestClient[Any, Any]


def _choices(page: str) -> list[tuple[str, str]]:
    box = page[page.index('<select name="assignee"'):page.index("</select>", page.index('<select name="assignee"'))]
    return [(v, w) for v, w in re.findall(r'<option value="([^"]*)"[^>]*>([^<]*)</option>', box) if v]


async def test_the_choices_say_who_covers_what_the_tickets_grid_first(client: Client, services: Services) -> None:
    await load_roster(services)
    lamp = (await new_ticket(services, building="8", summary="8号楼门口路灯不亮了")).ticket.number  # 孙丽's
    meal = await make_ticket(services, None, kind="elderly_service", summary="助餐｜王秀英（83岁）", building="5")
    talk = await make_ticket(services, None, kind="mediation", summary="楼上天天半夜吵", building=None)
    await logged_in(client, "admin", services.settings.console_admin_password)

    got = _choices(await (await client.get(f"/console/tickets/{lamp}")).text())
    assert got[0] == ("sunli", "孙丽 · 望湖第三网格（本工单网格）（现负责人）"), got  # she holds it
    assert ("wangwei", "王伟 · 望湖第一网格") in got and ("lina", "李娜 · 望湖第二网格") in got
    assert ("liustaff", "刘敏 · 工作人员") in got  # staff may take it too
    assert sum("本工单网格" in w for _, w in got) == 1

    got = _choices(await (await client.get(f"/console/tickets/{meal}")).text())
    assert ("canteen", "望湖长者食堂 · 助餐") in got and not any("网格" in w for _, w in got), got
    got = _choices(await (await client.get(f"/console/tickets/{talk}")).text())
    assert got[0] == ("chenmediator", "陈调解 · 调解员"), got

    # the one who has it now is marked, not selected (a second 改派 would hand it to them again)
    page = await (await client.get(f"/console/tickets/{lamp}")).text()
    assert '<option value="sunli" disabled>孙丽 · 望湖第三网格（本工单网格）（现负责人）</option>' in page


def test_two_people_of_one_name_are_told_apart_by_their_id(services: Services) -> None:
    people = [Person(id="wangwei", name="王伟", roles=["grid_worker"], services=[]),
              Person(id="wangwei2", name="王伟", roles=["grid_worker"], services=[]),
              Person(id="liu", name="刘敏", roles=["staff"], services=[])]
    grids = [Grid(id="G1", name="望湖第一网格", buildings=["1"], workers=["wangwei"]),
             Grid(id="G2", name="望湖第二网格", buildings=["4"], workers=["wangwei2"])]
    assert assignee_options(services.texts, people, grids, "G2", "complaint") == [
        ("wangwei2", "王伟（wangwei2） · 望湖第二网格（本工单网格）"),
        ("wangwei", "王伟（wangwei） · 望湖第一网格"),
        ("liu", "刘敏 · 工作人员"),
    ]
