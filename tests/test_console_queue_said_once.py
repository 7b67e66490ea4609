"""A hand-off's queue card says each of the resident's lines once: 我要转人工，我家楼上天天半夜装修
was in its summary (居民要求人工服务｜居民说：…) and again right under it as 居民：…, pushing the
next waiting resident down the clerk's screen. Lines the summary does not quote keep their 居民：
(人工客服; a long line the summary clipped with … is that line). Both backends."""

from __future__ import annotations

import re
from typing import Any

from aiohttp.test_utils import TestClient

from bot.console import auth
from bot.services import Services
from tests.conftest import WeChat
from tests.flow_helpers import tickets_of
from tests.staff_support import logged_in

Client = TestClient[Any, Any]
NOISE = "我要转人工，我家楼上天天半夜装修"
LONG = "我要转人工 我家厨房水管一直滴水 我一个人住 腿脚不好 能不能找个人来看看 我自己弄不了这个东西真的没有办法了 麻烦你们"


def _card(page: str, number: str) -> str:
    [card] = re.findall(rf'<li class="card item[^"]*" data-number="{number}">.*?</li>', page, re.S)
    return card


async def test_a_hand_offs_words_are_on_its_queue_card_once(client: Client, services: Services) -> None:
    wx = WeChat(client, services.settings)
    await auth.create_user(services, "liu", "staffpass1", "staff", display_name="刘敏")
    assert "转接人工服务" in await wx.say("o_noise", NOISE)
    assert "转接人工服务" in await wx.say("o_long", LONG)
    assert "转接人工服务" in await wx.say("o_plain", "人工客服")
    numbers = {who: (await tickets_of(services, who))[0].number for who in ("o_noise", "o_long", "o_plain")}
    await logged_in(client, "liu", "staffpass1")
    page = await (await client.get("/console")).text()

    noise = _card(page, numbers["o_noise"])
    assert noise.count(NOISE) == 1 and "居民说：" + NOISE in noise, noise
    assert '<span class="who-res">居民：</span>' not in noise
    long = _card(page, numbers["o_long"])
    assert long.count(LONG[:30]) == 1 and '<span class="who-res">居民：</span>' not in long, long
    plain = _card(page, numbers["o_plain"])
    assert '<span class="who-res">居民：</span>人工客服' in plain, plain


async def test_an_urgent_hand_offs_words_and_kind_are_on_its_card_once(client: Client, services: Services) -> None:
    """An emergency asked for a person: its summary (【紧急】急病、摔伤：…) quotes the resident's words,
    and the card said them again as 居民：…; and its kind 转人工 sat beside a reason badge 转人工."""
    wx = WeChat(client, services.settings)
    await auth.create_user(services, "liu", "staffpass1", "staff", display_name="刘敏")
    fall = "我要转人工，家里老人摔倒了想问问怎么办助浴"
    assert "转接人工服务" in await wx.say("o_fall", fall)
    number = (await tickets_of(services, "o_fall"))[0].number
    await logged_in(client, "liu", "staffpass1")
    card = _card(await (await client.get("/console")).text(), number)
    assert card.count(fall) == 1 and "【紧急】" in card and '<span class="who-res">居民：</span>' not in card, card
    assert re.sub(r"<[^>]+>", " ", card).count("转人工") == 2, card  # its kind once, and in the words


async def test_an_urgent_hand_offs_page_says_each_thing_once(client: Client, services: Services) -> None:
    """Its details said the resident's words three times (the summary, 已收集信息's 情况, 居民说) and
    问题类别：其他 twice (已收集信息 and 紧急情况): the words are in the summary and 居民说, the category once."""
    wx = WeChat(client, services.settings)
    fall = "我要转人工，家里老人摔倒了想问问怎么办助浴"
    assert "转接人工服务" in await wx.say("o_fall", fall)
    number = (await tickets_of(services, "o_fall"))[0].number
    await logged_in(client, "admin", "community123")
    page = await (await client.get(f"/console/tickets/{number}")).text()
    head, details = page[:page.index("<dl>")], page[page.index("<dl>"):page.index('id="history"')]
    assert head.count(fall) == 1 and details.count(fall) == 1, details  # 【紧急】…：<words>; 居民说（最近几条）
    assert details.count("问题类别") == 1 and "已告知的应急提示" in details and "急病、摔伤" in details, details
