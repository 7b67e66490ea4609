"""A grid worker with several jobs in two buildings, saying in chat how many are left and when they
will go (found walking the owners' day, session 17), on both backends: 我手上还有几个单子 / 今天的单子 /
还有几单 were 没有看懂这条指令 and the command list; 明天去 / 3 明天去 the same, the job left untaken
while its 接单 limit ran; and 办结 2 材料到了再修 finished the job — the resident told 已办结 and sent
the survey for a leak nobody had fixed. Now the first are 我的工单; the others do nothing and say so,
with the 接单 of a job not yet taken and the 回复 that tells the resident."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from bot import worker_commands
from bot.services import Services
from tests.staff_support import audit_rows
from tests.wecom_driver import WeCom, load_demo_roster, new_ticket, outbox_rows, ticket

Client = TestClient[Any, Any]
Command = worker_commands.Command


@pytest.mark.parametrize("said", [
    "我手上还有几个单子", "今天的单子", "还有几单", "今天有几个单", "我还有几个工单", "手上还有多少单？", "还有哪些活没干",
    "今天的工单呢", "明天的单子", "明天有几个单", "今晚的单子", "还有单吗", "晚上还有单吗", "还有活吗",
])
def test_asking_how_many_jobs_are_left_is_my_jobs(said: str) -> None:
    assert worker_commands.parse(said) == Command("mine")


@pytest.mark.parametrize("said", ["3号楼有几个单元", "今天", "单子"])
def test_words_that_ask_no_count_of_jobs_are_not_my_jobs(said: str) -> None:
    assert worker_commands.parse(said) != Command("mine")


@pytest.mark.parametrize(("said", "ref", "words"), [
    ("明天去", None, "明天去"),
    ("材料到了再修", None, "材料到了再修"),
    ("等配件到了再换", None, "等配件到了再换"),
    ("好的 明天上午去", None, "明天上午去"),
    ("下午过去看看", None, "下午过去看看"),
    ("还没修好", None, "还没修好"),
    ("3 明天去", "3", "明天去"),
    ("0003 材料到了再修", "0003", "材料到了再修"),
    ("3号明天下午去", "3", "明天下午去"),
    ("明天修好", None, "明天修好"),  # to be finished tomorrow (上午修好 may be this morning's: words)
    ("过两天就能弄好", None, "过两天就能弄好"),
    # not today but a later time said: a plan, not a hand-over (换个人吧 / 明天也去不了 stay one)
    ("今天去不了 明天去", None, "今天去不了 明天去"),
    ("3 今天来不了，明天上午过去", "3", "今天来不了，明天上午过去"),
    ("今天走不开 明天一早去", None, "今天走不开 明天一早去"),
])
def test_when_the_job_will_be_done_is_a_plan(said: str, ref: str | None, words: str) -> None:
    assert worker_commands.parse(said) == Command("later", ref, words)


@pytest.mark.parametrize(("said", "verb"), [
    ("明天去不了", "hand_over"),          # a hand-over, as before
    ("3 下午去不了，找别人吧", "hand_over"),
    ("今天去不了 换个人吧", "hand_over"),
    ("今天去不了 明天也去不了", "hand_over"),
    ("灯修好了", "resolve"),
    ("办结 3 已修好", "resolve"),
    ("办结 3 下午去过了 已修好", "resolve"),
    ("办结 10:30修好", "resolve"),       # the time it was done
    ("办结 3 换了灯泡 明天再去看看", "resolve"),
    ("办结 3 明天去复查", "resolve"),    # done, and checked again tomorrow
    ("办结 3 没换灯泡 是开关坏了 已修好", "resolve"),  # what was not needed, then what was done
    ("办结 3 没去成 居民说自己修好了", "resolve"),  # 修好了: done, whoever did it
    ("接单 3 明天去", "accept"),
])
def test_what_is_done_or_handed_over_stays_so(said: str, verb: str) -> None:
    parsed = worker_commands.parse(said)
    assert parsed is not None and parsed.verb == verb, parsed


@pytest.mark.parametrize(("said", "ref", "words"), [
    ("办结 2 材料到了再修", "2", "材料到了再修"),
    ("办结2 等配件到了再换", "2", "等配件到了再换"),
    ("办结 0002 还没修好", "0002", "还没修好"),
    ("办结 2 明天去", "2", "明天去"),
])
def test_a_banjie_whose_note_says_not_done_is_a_plan(said: str, ref: str, words: str) -> None:
    assert worker_commands.parse(said) == Command("later", ref, words, instead="resolve")


async def test_a_workers_plans_do_nothing_and_say_what_to_send(client: Client, services: Services) -> None:
    await load_demo_roster(services)
    wc = WeCom(client, services)
    lamp = (await new_ticket(services, resident="oPlan1", summary="3号楼楼道灯坏了",
                             fields={"description": "楼道灯坏了", "phone": "13812345678"})).ticket
    leak = (await new_ticket(services, resident="oPlan2", building="2", category="水电气暖", summary="2号楼水管漏水",
                             fields={"description": "厨房水管漏水", "phone": "13912345678"})).ticket
    listed = await wc.say("wangwei", "我手上还有几个单子")
    assert listed.startswith("您手上的工单（2 张）：") and lamp.number in listed and leak.number in listed
    assert await wc.say("wangwei", "今天的单子") == listed

    said = await wc.say("wangwei", "2 明天去")
    assert said == ("收到。这句话没有发给居民，工单也没有变动。\n"
                    "还没接单的请先接单（超过接单时限会上报服务中心）：\n接单 0002（厨房水管漏水）\n"
                    "要让居民知道什么时候来、办到哪一步了，请回复：\n回复 0002 明天去（厨房水管漏水）")
    assert (await ticket(services, leak.number)).status == "dispatched"
    assert await outbox_rows(services, "wechat") == []

    assert (await wc.say("wangwei", "接单 2")).startswith("已接单")
    resident_told = len(await outbox_rows(services, "wechat"))  # the 接单 notice
    said = await wc.say("wangwei", "办结 2 材料到了再修")
    assert said == ("工单 0002 没有办结：“材料到了再修”说的是还没办好，办结会通知居民已办好并请居民评价。"
                    "办好后再回复“办结 0002 说明”。\n"
                    "要让居民知道什么时候来、办到哪一步了，请回复：\n回复 0002 材料到了再修（厨房水管漏水）")
    assert (await ticket(services, leak.number)).status == "accepted"
    assert len(await outbox_rows(services, "wechat")) == resident_told and not await audit_rows(services, "wecom.resolve")

    # Without a number: every job in hand, the one not yet taken asked to be taken first.
    said = await wc.say("wangwei", "好的，材料到了再修")
    assert said == ("收到。这句话没有发给居民，工单也没有变动。\n"
                    "还没接单的请先接单（超过接单时限会上报服务中心）：\n接单 0001（楼道灯坏了）\n"
                    "要让居民知道什么时候来、办到哪一步了，请回复：\n"
                    "回复 0001 材料到了再修（楼道灯坏了）\n回复 0002 材料到了再修（厨房水管漏水）")
    # The 回复 given reaches the resident; the 办结 with what was done finishes the job.
    assert (await wc.say("wangwei", "回复 0002 材料到了再修")).startswith(f"已回复工单 {leak.number} 的居民")
    assert "材料到了再修" in str((await outbox_rows(services, "wechat", "oPlan2"))[-1].payload)
    assert (await wc.say("wangwei", "办结 2 换了新水管")).startswith(f"已办结：工单 {leak.number}")
    assert await wc.say("wangwei", "2 明天去") == (
        f"工单 {leak.number} 当前状态是“已办结”，已不在您手上办理，不用再去。回复“我的工单”可查看手上的工单。")
    assert await wc.say("wangwei", "9 明天去") == "找不到工单 9，请核对工单号（回复“我的工单”查看）。\n您手上可以办理的工单：0001（楼道灯坏了）。"


async def test_a_plan_with_no_job_in_hand(client: Client, services: Services) -> None:
    await load_demo_roster(services)
    wc = WeCom(client, services)
    assert await wc.say("lina", "明天去") == "好的。您手上暂时没有工单；有新工单会推送给您。"


async def test_a_slip_of_the_number_lists_the_workers_own_tickets(client: Client, services: Services) -> None:
    """接单 0023 for 0003, or 接单 2 for a colleague's 0002: 找不到工单 / 不是派给您的 and nothing more
    — the worker, in the stairwell, had to send 我的工单 and type again. The refusal names the
    tickets in their hands that command can act on; nothing is done."""
    await load_demo_roster(services)
    wc = WeCom(client, services)
    lamp = (await new_ticket(services, resident="oSlip1", fields={"description": "楼道灯坏了"})).ticket
    other = (await new_ticket(services, resident="oSlip2", building="5", fields={"description": "门禁坏了"})).ticket
    drain = (await new_ticket(services, resident="oSlip3", building="1", fields={"description": "下水道堵了"})).ticket
    assert await wc.say("wangwei", "接单 0023") == (
        "找不到工单 0023，请核对工单号（回复“我的工单”查看）。\n您手上可以接单的工单：0001（楼道灯坏了）、0003（下水道堵了）。")
    assert await wc.say("wangwei", "接单 2") == (
        f"工单 {other.number} 不是派给您的，您不能处理。如需协助请联系服务中心。\n"
        "您手上可以接单的工单：0001（楼道灯坏了）、0003（下水道堵了）。")
    assert [(await ticket(services, x.number)).status for x in (lamp, other, drain)] == ["dispatched"] * 3
    assert (await wc.say("wangwei", "接单 3")).startswith(f"已接单：工单 {drain.number}")
    # Only what the command can act on: 0003 is taken, so 接单 lists 0001 alone, 办结 both.
    assert (await wc.say("wangwei", "接单 0023")).endswith("您手上可以接单的工单：0001（楼道灯坏了）。")
    assert (await wc.say("wangwei", "办结 0023 修好了")).endswith(
        "您手上可以办结的工单：0001（楼道灯坏了）、0003（下水道堵了）。")
    # Nothing in hand: the refusal as before.
    assert await wc.say("sunli", "接单 0023") == "找不到工单 0023，请核对工单号（回复“我的工单”查看）。"


async def test_words_after_a_jiedan_are_shown_as_the_answer_that_sends_them(client: Client, services: Services) -> None:
    """接单 1 明天去: taken, and 明天去 reached nobody — the worker believed the resident told. The
    reply gives the 回复 that tells the resident; 接单 1，马上去 is only taken, as before."""
    await load_demo_roster(services)
    wc = WeCom(client, services)
    lamp = (await new_ticket(services, resident="oWords1")).ticket
    leak = (await new_ticket(services, resident="oWords2", building="2")).ticket
    assert await wc.say("wangwei", "接单 1 明天上午过去看看") == (
        f"已接单：工单 {lamp.number}（3号楼），请在 11月30日 10:00 前办结。办结后回复“办结 0001 说明”。\n"
        "“明天上午过去看看”没有发给居民；要告诉居民请回复：回复 0001 明天上午过去看看")
    assert await wc.say("wangwei", "接单 2，马上去") == (
        f"已接单：工单 {leak.number}（2号楼），请在 11月30日 10:00 前办结。办结后回复“办结 0002 说明”。")
    assert [(await ticket(services, x.number)).status for x in (lamp, leak)] == ["accepted", "accepted"]


async def test_words_after_a_jiedan_of_several_numbers_are_shown_too(client: Client, services: Services) -> None:
    """接单 1 2 明天去 took both and dropped 明天去 without a word, where the one-number form gives
    the 回复 that sends it: now a 回复 for each job taken (a 回复 answers one resident); one that was
    not taken (already taken before) gets none, and 接单 1 2，马上去 is only taken."""
    await load_demo_roster(services)
    wc = WeCom(client, services)
    lamp = (await new_ticket(services, resident="oEach1")).ticket
    leak = (await new_ticket(services, resident="oEach2", building="2", category="环境卫生", summary="下水道堵了",
                             fields={"phone": "13812345678", "description": "下水道堵了"})).ticket
    bins = (await new_ticket(services, resident="oEach3", building="1", category="环境卫生", summary="垃圾没人清",
                             fields={"phone": "13812345678", "description": "垃圾没人清"})).ticket
    assert await wc.say("wangwei", "接单 1 2 明天上午去") == (
        f"已接单：工单 {lamp.number}（3号楼），请在 11月30日 10:00 前办结。办结后回复“办结 0001 说明”。\n"
        f"已接单：工单 {leak.number}（2号楼），请在 11月30日 10:00 前办结。办结后回复“办结 0002 说明”。\n"
        "“明天上午去”没有发给居民；要告诉居民请分别回复：\n"
        "回复 0001 明天上午去（楼道灯坏了）\n回复 0002 明天上午去（下水道堵了）")
    said = await wc.say("wangwei", "接单 2 3 下午去")
    assert said.endswith("“下午去”没有发给居民；要告诉居民请分别回复：\n回复 0003 下午去（垃圾没人清）"), said
    assert "回复 0002" not in said  # taken before: its line says so, no 回复 offered twice
    assert "没有发给居民" not in await wc.say("wangwei", "接单 1 2 3，马上去")
    assert [(await ticket(services, x.number)).status for x in (lamp, leak, bins)] == ["accepted"] * 3
    assert not [r for r in await outbox_rows(services, "wechat") if "明天上午去" in str(r.payload)]  # nothing sent


async def test_my_jobs_fits_one_wecom_reply(client: Client, services: Services) -> None:
    """After a storm, 王伟 held 18 jobs: 我的工单 ran to about 2,300 bytes, and WeCom cuts a reply
    past 2,048 — the list stopped mid-line, nothing said of the rest. The reply holds the most
    urgent that fit and says how many are left out."""
    await load_demo_roster(services)
    wc = WeCom(client, services)
    kinds = ("照明", "电梯", "环境卫生", "噪音", "水电气暖", "物业服务")
    for n in range(18):  # a different building or kind each: none linked to another as the same problem
        await new_ticket(services, resident=f"oStorm{n}", building=str(1 + n % 3), category=kinds[n // 3],
                         summary="楼道进水", fields={"description": f"{n + 1}单元楼道进水了，地下室也淹了，电闸不敢碰",
                                                   "place": f"{1 + n % 3}栋{n + 1}单元"})
    said = await wc.say("wangwei", "我的工单")
    lines = said.splitlines()
    assert len(said.encode()) <= 2048, len(said.encode())
    assert lines[0] == "您手上的工单（18 张）："
    listed = len(lines) - 2
    assert 5 <= listed < 18 and all(line.startswith("20261123-") for line in lines[1:-1])
    assert lines[-1] == (f"……还有 {18 - listed} 张没有列出（上面是办结时限最近的）。"
                         "办完几张后再发“我的工单”，或在工作台查看全部。")
    # A few fit whole, as before.
    assert "还有" not in await wc.say("lina", "我的工单")


@pytest.mark.parametrize(("said", "place", "topic", "words"), [
    ("1号楼的灯明天修", "1", "照明", "明天修"),
    ("2号楼的水管明天上午过去看看", "2", "水电气暖", "明天上午过去看看"),
    ("2号楼水管 明天上午去", "2", "水电气暖", "明天上午去"),
    ("3号楼明天去", "3", None, "明天去"),
])
def test_a_plan_naming_the_building_and_thing_is_that_jobs(said: str, place: str, topic: str | None, words: str) -> None:
    assert worker_commands.parse(said) == Command("later", None, words, place=place, topic=topic)
