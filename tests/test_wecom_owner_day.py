"""An owner's working day in WeCom, read as a grid worker or a care provider on a phone would:
a verb misheard by voice input is asked back (never offered as words for the resident), a
booking's 接单 says when to be there, 到了 with one job in hand says what to send when done, and
the command list says what the resident sees of a 回复 and what a volunteer coordinator may do.
On both backends."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from aiohttp.test_utils import TestClient

from bot import worker_commands
from bot.clock import FakeClock
from bot.services import Services
from tests.staff_support import audit_rows
from tests.wecom_driver import WeCom, new_ticket, outbox_rows, ticket

Client = TestClient[Any, Any]


def test_misheard_verbs_are_read_as_the_command_they_were_meant_to_be() -> None:
    assert worker_commands.misheard("办姐 2 好了") == "办结 2 好了"
    assert worker_commands.misheard("结办2") == "办结2"
    assert worker_commands.misheard("推回 3 不归我管") == "退回 3 不归我管"
    assert worker_commands.misheard("借单 一") == "接单 一"
    assert worker_commands.misheard("辦姐 2") == "办结 2"  # traditional characters too
    for words in ("办结 2 好了", "推回去再说", "办姐妹的事", "周六上午十点在社区调解室", "电化学"):
        assert worker_commands.misheard(words) is None, words


async def test_a_misheard_verb_does_nothing_and_is_asked_back(client: Client, services: Services) -> None:
    """办姐 2 好了 was 没有看懂 with 如果这句话是要告诉居民的，请回复：回复 0002 办姐 2 好了 — which would
    send the slip to the resident. Now nothing is done, nothing sent, and the command is asked back."""
    wc = WeCom(client, services)
    job = (await new_ticket(services, resident="oM1")).ticket
    assert (await wc.say("wangwei", "接单 1")).startswith("已接单")
    pushed = len(await outbox_rows(services))
    said = await wc.say("wangwei", "办姐 1 灯换好了")
    assert said == "这条指令没有办理。您是要发“办结 1 灯换好了”吗？是的话请照这样再发一次。"
    assert "回复 0001" not in said
    assert (await ticket(services, job.number)).status == "accepted"
    assert len(await outbox_rows(services)) == pushed
    assert not await audit_rows(services, "wecom.resolve")
    assert (await wc.say("wangwei", "办结 1 灯换好了")).startswith(f"已办结：工单 {job.number}")


async def test_a_bookings_accept_says_when_to_be_there(
    client: Client, services: Services, clock: FakeClock,
) -> None:
    """A provider's 马上去 was answered 请在 11月25日 11:00 前办结 — the limit a day after the
    service, read as time to spare; it now says the booked time and the place."""
    wc = WeCom(client, services)
    start = clock.now().replace(hour=3, minute=0) + timedelta(days=1)  # 11月24日 11:00 in Shanghai
    fields = {"phone": "13912345678", "service": "助餐", "start": start.isoformat(), "address": "3号楼2单元301"}
    made = (await new_ticket(services, kind="elderly_service", resident="oB1", category=None, summary="助餐",
                             fields=fields)).ticket
    assert made.assignee == "canteen"
    said = await wc.say("canteen", "马上去")
    assert said == (f"已接单：工单 {made.number}（3号楼2单元301），预约时间 11月24日 11:00，请按时到场服务。"
                    "服务完成后回复“办结 0001 说明”。")
    # 到了 with that one booking in hand: what to send when done, with its number
    assert await wc.say("canteen", "到了") == \
        f"好的。工单 {made.number}（3号楼2单元301）办完后请回复“办结 0001 说明”。"


async def test_the_command_list_for_owners_and_the_coordinator(client: Client, services: Services) -> None:
    wc = WeCom(client, services)
    owner = await wc.say("wangwei", "帮助")
    assert "以社区服务中心名义" not in owner and "居民看到的是您的身份和名字" in owner  # 【网格员 王伟】
    assert "取消活动" not in owner and "审核通过" not in owner
    coordinator = await wc.say("zhouvol", "帮助")
    assert "取消活动 活动名称或编号 原因" in coordinator and "办结 N 说明（或“通过 N”）—— 审核通过" in coordinator
    assert "关闭 N 原因" not in coordinator


def test_a_number_said_digit_by_digit_with_yao_is_read() -> None:
    assert worker_commands.parse("接单 零零零幺").ref == "0001"
    assert worker_commands.parse("办结 幺号 灯换好了").ref == "1"
    assert worker_commands.parse("接单 幺幺").ref == "11"
    assert worker_commands.parse("办结 一幺楼灯好了").ref is None  # words, not a number


async def test_a_signups_card_tells_the_coordinator_what_approves_and_what_declines(
    wx: Any, client: Client, services: Services,
) -> None:
    """The coordinator's card for a volunteer signup read 接单｜办结｜退回｜吹哨 like a repair job: that
    办结 approves and 退回 declines (its reason told to the resident) was nowhere."""
    from tests.test_owner_notices import signup

    await signup(wx, "oVol1")
    [card] = [r for r in await outbox_rows(services, "wecom", "zhouvol") if r.payload.get("msgtype") == "textcard"]
    howto = card.payload["description"]
    assert "审核通过回复：办结 0001 说明｜不通过回复：退回 0001 原因（会告诉居民）｜电话 0001" in howto
    assert "接单 0001" not in howto and "吹哨" not in howto
