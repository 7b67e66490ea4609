"""A care provider's day in WeCom, as the canteen's staff type it (found walking the owners' day,
session 17), on both backends: 送到了, 1号送到了, 2号已送达, 服务完了 were 没有看懂这条指令 and the
command list, where 修好了 / 2号办好了 finish a grid worker's job; 明天中午送 and 还没送到 were not
understood either. They are now the booking's 办结 (not before its booked start, as 办结 N is) and
a plan (the 回复 that tells the resident)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from bot import worker_commands
from bot.clock import FakeClock
from bot.services import Services
from tests.wecom_driver import WeCom, load_demo_roster, new_ticket, ticket

Client = TestClient[Any, Any]
Command = worker_commands.Command


@pytest.mark.parametrize(("said", "ref", "note"), [
    ("送到了", None, "送到了"),
    ("饭送到了", None, "饭送到了"),
    ("都送到了", None, "都送到了"),
    ("1号送到了", "1", "送到了"),
    ("二号送到了", "2", "送到了"),
    ("2号已送达", "2", "已送达"),
    ("服务完了", None, "服务完了"),
    ("陪诊完了 老人已送回家", None, "陪诊完了 老人已送回家"),
])
def test_a_providers_words_for_done_are_a_banjie(said: str, ref: str | None, note: str) -> None:
    assert worker_commands.parse(said) == Command("resolve", ref, note)


@pytest.mark.parametrize("said", ["送到了吗", "送达了吗", "已送到3号楼"])
def test_a_question_or_a_place_is_no_banjie(said: str) -> None:
    parsed = worker_commands.parse(said)
    assert parsed is None or parsed.verb != "resolve", parsed


@pytest.mark.parametrize(("said", "words"), [("明天中午送", "明天中午送"), ("好的 明天中午送", "明天中午送"),
                                             ("还没送到", "还没送到")])
def test_when_the_meal_comes_is_a_plan(said: str, words: str) -> None:
    assert worker_commands.parse(said) == Command("later", None, words)


@pytest.mark.parametrize(("said", "command"), [
    ("今天送不了，人手不够", Command("hand_over", None, "今天送不了，人手不够")),
    ("人手不够", Command("hand_over", None, "人手不够")),
    ("2 送不了", Command("hand_over", "2", "送不了")),
    ("今天送不了 明天中午送", Command("later", None, "今天送不了 明天中午送")),
])
def test_a_provider_who_cannot_serve_is_a_hand_over(said: str, command: Command) -> None:
    """今天送不了，人手不够 was 没有看懂这条指令 and the command list: the canteen cannot serve it, so
    the answer is the 退回 to send, as for a grid worker's 下午去不了; a later time said is a plan."""
    assert worker_commands.parse(said) == command


async def test_the_canteens_day(client: Client, services: Services, clock: FakeClock) -> None:
    await load_demo_roster(services)
    wc = WeCom(client, services)
    day = clock.now().replace(hour=0, minute=0) + timedelta(days=1)  # 11月24日 08:00 Shanghai
    numbers = []
    for n, at in enumerate((timedelta(hours=3, minutes=30), timedelta(hours=4))):  # 11:30, 12:00
        fields = {"phone": "13912345678", "service": "助餐", "start": (day + at).isoformat(), "address": "5号楼2单元301"}
        made = await new_ticket(services, kind="elderly_service", resident=f"oMeal{n}", category=None, summary="助餐",
                                fields=fields)
        assert made.ticket.assignee == "canteen"
        numbers.append(made.ticket.number)
    assert "已接单" in await wc.say("canteen", "接单 1 2")
    assert await wc.say("canteen", "好的 明天中午送") == (
        "收到。这句话没有发给居民，工单也没有变动。\n要让居民知道什么时候来、办到哪一步了，请回复：\n"
        "回复 0001 明天中午送（助餐 11月24日 11:30）\n回复 0002 明天中午送（助餐 11月24日 12:00）")
    # Before the booked start: not finished, as 办结 1 is not.
    assert await wc.say("canteen", "1号送到了") == f"工单 {numbers[0]} 预约的服务在 11月24日 11:30 开始，服务开始后才能办结。"
    clock.set(day + timedelta(hours=3, minutes=50))  # 11:50: the first has begun, the second not
    assert (await wc.say("canteen", "送到了")).startswith(f"已办结：工单 {numbers[0]}")
    assert (await ticket(services, numbers[1])).status == "accepted"
    clock.set(day + timedelta(hours=4, minutes=10))
    assert (await wc.say("canteen", "2号已送达")).startswith(f"已办结：工单 {numbers[1]}")
    assert [(await ticket(services, x)).status for x in numbers] == ["resolved", "resolved"]
