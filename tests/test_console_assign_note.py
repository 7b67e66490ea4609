"""A clerk's 说明 with a 派单 / 改派 reaches the new owner: the form asks for it (说明（可选）) and the
history kept it, but the WeCom card to the grid worker left it out — 南门路灯，先看看是不是线路问题
reached nobody who goes there. The card says it as 服务中心交代：…, escaped and with a phone in it
masked as in every push; a 派单 without one, and the bot's own dispatch, have no such line. Both
backends."""

from __future__ import annotations

import re
from typing import Any

from aiohttp.test_utils import TestClient

from bot.console import auth
from bot.services import Services
from tests.staff_support import logged_in
from tests.wecom_driver import new_ticket, outbox_rows, ticket

Client = TestClient[Any, Any]


def _card(row: Any) -> str:
    assert row.payload["msgtype"] == "textcard", row.payload
    return str(row.payload["description"])


async def test_the_note_given_with_a_dispatch_is_on_the_new_owners_card(client: Client, services: Services) -> None:
    await auth.create_user(services, "liu", "staffpass1", "staff", display_name="刘敏")
    job = (await new_ticket(services, resident="oA", building="3")).ticket
    assert job.assignee == "wangwei"
    assert "服务中心交代" not in _card((await outbox_rows(services, "wecom", "wangwei"))[-1])
    csrf = await logged_in(client, "liu", "staffpass1")
    note = "先看看是不是线路问题<b>急</b>，居民电话13812345678"
    resp = await client.post(f"/console/tickets/{job.number}/transition",
                             data={"action": "assign", "assignee": "zhaoqiang", "note": note, "csrf_token": csrf})
    body = await resp.text()
    assert resp.status == 200 and "派给 赵强" in body, re.findall(r"class=\"flash[^>]*>[^<]*", body)
    assert (await ticket(services, job.number)).assignee == "zhaoqiang"
    card = _card((await outbox_rows(services, "wecom", "zhaoqiang"))[-1])
    assert "服务中心交代：先看看是不是线路问题&lt;b&gt;急&lt;/b&gt;，居民电话138****5678" in card, card
    assert "13812345678" not in card
    # given on again without a word: no empty line for it
    await client.post(f"/console/tickets/{job.number}/transition",
                      data={"action": "assign", "assignee": "lina", "note": "", "csrf_token": csrf})
    assert "服务中心交代" not in _card((await outbox_rows(services, "wecom", "lina"))[-1])
