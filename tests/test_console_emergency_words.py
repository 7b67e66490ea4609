"""Every emergency a ticket can carry is named in Chinese on its console page: 快来人啊's `help`
and 老人多日不见's `welfare` showed as their codes (已告知的应急提示：help). And a hand-off's page
shows each of the resident's lines once: 快来人啊 was there as 居民原话, inside 紧急情况 and as
居民说（最近几条）. Both backends."""

from __future__ import annotations

import re
from typing import Any

from aiohttp.test_utils import TestClient
from sqlalchemy import select

from bot.console import auth
from bot.console.views import field_lines
from bot.flows.config import flow_config
from bot.services import Services
from bot.texts import Texts
from storage.models import Ticket
from tests.staff_support import logged_in

Client = TestClient[Any, Any]


def _details(page: str) -> str:
    return re.sub(r"\s+", " ", page[page.index("<dl>"):page.index("</dl>")])


def test_every_emergency_and_every_advice_has_its_words() -> None:
    texts = Texts()
    codes = {str(e["advice"]) for e in flow_config()["complaint"]["emergencies"]}
    codes |= set(texts.section("complaint.urgent"))
    assert {"welfare", "help", "locked_out"} <= codes
    missing = [c for c in sorted(codes) if not texts.has(f"console.advice.{c}")]
    assert missing == [], f"[console.advice] has no words for {missing}"


def test_a_code_without_words_is_never_shown_as_it_is() -> None:
    texts = Texts()
    shown = dict(field_lines(texts, {"emergency": {"category": "其他", "advice": "brand_new"}}, reveal=True, tz="Asia/Shanghai"))
    assert shown["紧急情况"] == ["问题类别：其他", "已告知的应急提示：其他紧急情况"]


async def _page(client: Client, services: Services, openid: str) -> str:
    async with services.sessions() as session:
        number = (await session.scalars(select(Ticket.number).where(Ticket.resident == openid))).one()
    return _details(await (await client.get(f"/console/tickets/{number}")).text())


async def test_the_hand_off_page_names_the_emergency_and_says_each_line_once(
    client: Client, services: Services, wx: Any,
) -> None:
    await auth.create_user(services, "liu", "staffpass1", "staff", display_name="刘敏")
    assert "告诉我们您在哪里" in await wx.say("o_help", "快来人啊")
    assert "敲门不应" in await wx.say("o_welfare", "人工 楼上王奶奶两天没见着了 敲门没人应 电话也不接")
    long = "我家厨房水管一直滴水 我一个人住 腿脚不好 能不能找个人来看看 我自己弄不了这个东西真的没有办法了 麻烦你们"
    await wx.say("o_long", long)
    assert "转接人工服务" in await wx.say("o_long", "转人工")
    await logged_in(client, "liu", "staffpass1")

    help_page = await _page(client, services, "o_help")
    assert "已告知的应急提示：居民呼救（未说明何事）" in help_page and "help" not in help_page
    assert help_page.count("快来人啊") == 1  # the line itself (转人工原因 and 已收集信息's 情况 no longer repeat it)
    assert "<dt>居民原话</dt>" not in help_page and "<dt>居民说（最近几条）</dt><dd>快来人啊</dd>" in help_page

    welfare_page = await _page(client, services, "o_welfare")
    assert "已告知的应急提示：老人多日不见、敲门不应" in welfare_page and "welfare" not in welfare_page
    assert welfare_page.count("<dd>人工 楼上王奶奶两天没见着了") == 1

    long_page = await _page(client, services, "o_long")  # 转人工 is the words that asked; the need is 居民说
    assert "<dt>居民原话</dt><dd>转人工</dd>" in long_page
    assert "<dt>居民说（最近几条）</dt><dd>我家厨房水管一直滴水" in long_page


def test_words_that_asked_clipped_in_the_list_are_given_whole_once() -> None:
    texts = Texts()
    whole = "我家厨房水管一直滴水 我一个人住 腿脚不好 能不能找个人来看看 我自己弄不了这个东西真的没有办法了 麻烦你们快点来"
    clipped = whole[:59] + "…"
    shown = dict(field_lines(texts, {"text": whole, "said": ["在吗", clipped],
                                     "emergency": {"category": "其他", "said": whole[:80], "advice": "help"}}, reveal=True, tz="Asia/Shanghai"))
    assert "居民原话" not in shown and shown["居民说（最近几条）"] == ["在吗", whole]
    assert shown["紧急情况"] == ["问题类别：其他", "已告知的应急提示：居民呼救（未说明何事）"]
    kept = dict(field_lines(texts, {"text": "人工", "said": ["楼道灯坏了"],
                                    "emergency": {"category": "其他", "said": "着火了", "advice": "fire"}}, reveal=True, tz="Asia/Shanghai"))
    assert kept["居民原话"] == ["人工"] and kept["紧急情况"][1] == "居民说的紧急情况：着火了"
