"""More of a grid worker's day in WeCom, several jobs in hand, on both backends: wanting a job to go
to a colleague (转派 3 给李娜, 转给李娜, 我接不了, 取消接单 3) was 没有看懂这条指令 and the command
list — it is answered with the 退回 to send, as 去不了 换个人吧 is; and a number said first in
numerals (二号办好了, as voice input writes it) was not understood where 2号办好了 was."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from bot import worker_commands
from bot.clock import FakeClock
from bot.services import Services
from tests.wecom_driver import WeCom, actions, load_demo_roster, new_ticket, outbox_rows, ticket

Client = TestClient[Any, Any]


@pytest.mark.parametrize(("said", "ref", "reason"), [
    ("转派 3 给李娜", "3", "转派 给李娜"),
    ("转派3", "3", "转派"),
    ("转交第2单 给赵强", "2", "转交 给赵强"),
    ("3号单子转给李娜吧", "3", "转给李娜吧"),
    ("转给李娜", None, "转给李娜"),
    ("我接不了", None, "我接不了"),
    ("取消接单 3", "3", "取消接单"),
    ("3 下午去不了，找别人吧", "3", "下午去不了，找别人吧"),
])
def test_wanting_a_job_to_go_to_someone_else_is_a_hand_over(said: str, ref: str | None, reason: str) -> None:
    assert worker_commands.parse(said) == worker_commands.Command("hand_over", ref, reason)


@pytest.mark.parametrize(("said", "verb", "ref", "note"), [
    ("二号办好了", "resolve", "2", "办好了"),
    ("十二号已修好", "resolve", "12", "已修好"),
    ("二号 调解成功", "resolve", "2", "调解成功"),
    ("三号接单", "accept", "3", ""),
])
def test_a_number_said_first_in_numerals_is_read_as_its_digits(said: str, verb: str, ref: str, note: str) -> None:
    assert worker_commands.parse(said) == worker_commands.Command(verb, ref, note)


def test_numerals_first_naming_a_place_are_no_number() -> None:
    # A 办结 said in words (tests/test_worker_phone_words.py): the building, not a ticket number.
    assert worker_commands.parse("一号楼的灯修好了") == worker_commands.Command("resolve", None, "一号楼的灯修好了", place="1", topic="照明")
    assert worker_commands.parse("一切处理好了") == worker_commands.Command("resolve", None, "一切处理好了")


async def test_zhuanpai_is_answered_with_the_tuihui_to_send_and_nothing_is_done(
    client: Client, services: Services,
) -> None:
    await load_demo_roster(services)
    wc = WeCom(client, services)
    lamp = (await new_ticket(services, resident="oT1", summary="3号楼楼道灯坏了", fields={"description": "楼道灯坏了"})).ticket
    leak = (await new_ticket(services, resident="oT2", building="2", summary="2号楼水管漏水",
                             fields={"description": "厨房水管漏水"})).ticket
    drain = (await new_ticket(services, resident="oT3", building="1", summary="1号楼下水道堵了",
                              fields={"description": "下水道堵了"})).ticket
    head = "需要换人的话，请把工单退回服务中心重新派单（这条消息还没有退回工单），回复：\n"
    assert await wc.say("wangwei", "转派 3 给李娜") == head + "退回 0003 转派 给李娜（下水道堵了）"
    assert await wc.say("wangwei", "转给李娜") == head + (
        "退回 0001 转给李娜（楼道灯坏了）\n退回 0002 转给李娜（厨房水管漏水）\n退回 0003 转给李娜（下水道堵了）")
    assert await wc.say("wangwei", "取消接单 1") == head + "退回 0001 取消接单（楼道灯坏了）"
    assert [(await ticket(services, x.number)).status for x in (lamp, leak, drain)] == ["dispatched"] * 3
    assert await outbox_rows(services, "group") == []
    # Voice input: the number in numerals, first.
    assert (await wc.say("wangwei", "二号办好了")).startswith(f"已办结：工单 {leak.number}")
    assert (await ticket(services, leak.number)).status == "resolved"


async def test_banjie_sent_again_says_it_was_done_and_when(client: Client, services: Services, clock: FakeClock) -> None:
    """办结 1 灯换好了 sent a second time (the first reply not seen on a bad signal) was answered
    当前状态是“已办结”，不能办结 — read as a refusal. It says the job was done, and when."""
    await load_demo_roster(services)
    wc = WeCom(client, services)
    lamp = (await new_ticket(services, resident="oT4")).ticket
    leak = (await new_ticket(services, resident="oT5", building="2", summary="2号楼水管漏水")).ticket
    assert (await wc.say("wangwei", "办结 1 灯换好了")).startswith(f"已办结：工单 {lamp.number}")
    clock.advance(120)
    assert await wc.say("wangwei", "办结 1 灯换好了") == f"工单 {lamp.number} 已于 11月23日 10:00 办结，不用再发。"
    assert await wc.say("wangwei", "辦結 1 燈換好了") == f"工单 {lamp.number} 已于 11月23日 10:00 办结，不用再发。"
    assert await wc.say("wangwei", "办结 1 2 都好了") == (
        f"工单 {lamp.number} 已于 11月23日 10:00 办结，不用再发。\n已办结：工单 {leak.number}。已通知居民。\n"
        f"如有现场照片，现在发送会附到工单 {leak.number}。")
    assert [e for e in await actions(services, lamp.number)].count("resolve") == 1


async def test_a_neighbours_report_ended_with_its_job_is_said_so(client: Client, services: Services) -> None:
    """Three neighbours reported one dark stairwell: their reports were merged into the first, the
    worker finished it, then sent 办结 2 已修好 for a neighbour's number from the card — answered
    不能单独办结。请对工单 0001 操作，例如“办结 0001 …”, a job already done. It says the report was
    done with its job, and nothing more is to send."""
    await load_demo_roster(services)
    wc = WeCom(client, services)
    job = (await new_ticket(services, resident="oN1", category="照明", fields={"description": "3楼灯坏了"})).ticket
    kid = (await new_ticket(services, resident="oN2", category="照明", fields={"description": "3楼灯坏了"})).ticket
    assert (await ticket(services, kid.number)).parent_id == job.id
    assert "请对工单" in await wc.say("wangwei", "接单 2")  # while the job is open: act on the job
    assert (await wc.say("wangwei", "办结 1 灯换好了")).startswith(f"已办结：工单 {job.number}")
    ended = f"工单 {kid.number} 是并入工单 {job.number} 的同一问题反映，该工单已办结，这张反映随它一起结束，不用再发。"
    assert await wc.say("wangwei", "办结：2，已修好。") == ended
    assert await wc.say("wangwei", "接单 2") == ended
    assert (await ticket(services, kid.number)).status == "resolved"
