"""A grid worker typing or speaking on the phone, on both backends: 这个单子我处理不了 / 办不了,
在吗, 灯修好了 3号, 3号灯修好了 and 7号楼的灯修好了 were 没有看懂这条指令 and the command list.
Beyond the worker is the 退回 to send (and 吹哨 for what needs the street office); 在吗 a short
answer; a job's end said in words is its 办结, as 2号办好了 is — by the number before or after the
words, else by the building when the worker holds one job there, else of the one job in hand."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from bot import worker_commands
from bot.services import Services
from tests.wecom_driver import WeCom, actions, load_demo_roster, new_ticket, outbox_rows, ticket

Client = TestClient[Any, Any]
Command = worker_commands.Command


@pytest.mark.parametrize(("said", "command"), [
    ("灯修好了 3号", Command("resolve", "3", "灯修好了")),
    ("灯修好了3号", Command("resolve", "3", "灯修好了")),
    ("修好了 三号", Command("resolve", "3", "修好了")),
    ("3号灯修好了", Command("resolve", "3", "灯修好了")),
    ("3号的灯已经换好了。", Command("resolve", "3", "灯已经换好了。")),
    ("三号的灯修好了", Command("resolve", "3", "灯修好了")),
    ("2号单子调解好了", Command("resolve", "2", "调解好了")),
    ("0003灯换好了", Command("resolve", "0003", "灯换好了")),
    ("灯换好了，换了个新灯泡", Command("resolve", None, "灯换好了，换了个新灯泡", topic="照明")),
    ("水管已经疏通了", Command("resolve", None, "水管已经疏通了", topic="水电气暖")),
    ("楼道已经清理干净了", Command("resolve", None, "楼道已经清理干净了")),
    ("7号楼的灯修好了", Command("resolve", None, "7号楼的灯修好了", place="7", topic="照明")),
    ("七号楼的灯修好了", Command("resolve", None, "七号楼的灯修好了", place="7", topic="照明")),
    ("3号楼2单元的灯修好了", Command("resolve", None, "3号楼2单元的灯修好了", place="3", topic="照明")),
    # the kind named picks the job (下水道: 环境卫生, as a report of it is filed); 好了 alone only that kind's
    ("1号楼的下水道通了", Command("resolve", None, "1号楼的下水道通了", place="1", topic="环境卫生")),
    ("下水道已经通了", Command("resolve", None, "下水道已经通了", topic="环境卫生")),
    ("1号楼的下水道好了", Command("resolve", None, "1号楼的下水道好了", place="1", topic="环境卫生", kind_only=True)),
    ("灯好了", Command("resolve", None, "灯好了", topic="照明", kind_only=True)),
    ("3号完事了", Command("resolve", "3", "完事了")),
    ("3号的活干完了", Command("resolve", "3", "活干完了")),
    ("3号好了", Command("resolve", "3")),  # no result said: asked for, as for 办结 3
    ("3号单子ok了", Command("resolve", "3")),
    ("这个单子我处理不了", Command("hand_over", None, "这个单子我处理不了")),
    ("3号办不了", Command("hand_over", "3", "办不了")),
    # found walking a grid worker's day: 这个不归我管 was a sentence for the resident (回复 0008 这个不归我管),
    # 到现场了 正在疏通 too, where 到了 alone was understood
    ("这个不归我管", Command("hand_over", None, "这个不归我管")),
    ("3号不是我们网格的", Command("hand_over", "3", "不是我们网格的")),
    ("到现场了 正在疏通", Command("noted")),
    ("到了，正在处理", Command("noted")),
    # found walking a hand-off given to a grid worker (an old person locked in): what they are at
    ("到现场了 正在联系开锁", Command("noted")), ("到了 正在敲门", Command("noted")),
    ("已到场", Command("noted")), ("上门了", Command("noted")), ("我在现场", Command("noted")),
    ("已修复", Command("resolve", None, "已修复")),
    # 纸箱子清走了 (a corridor cleared of boxes, a 消防安全 job) was a sentence for the resident
    ("纸箱子清走了", Command("resolve", None, "纸箱子清走了", topic="消防安全")),
    ("3号楼的杂物清走了", Command("resolve", None, "3号楼的杂物清走了", place="3", topic="消防安全")),
    ("0003 已修复 换了开关", Command("resolve", "0003", "已修复 换了开关")),
    ("在吗", Command("hello")),
    ("在不在？", Command("hello")),
    ("你好，在吗", Command("hello")),
])
def test_words_typed_on_the_phone(said: str, command: Command) -> None:
    assert worker_commands.parse(said) == command


@pytest.mark.parametrize("said", [
    "灯修好了吗", "灯还没修好", "等修好了再说", "居民说修好了", "处理好了一半", "什么时候能修好了",
    "我在3号楼", "周六上午十点在调解室", "好了好了", "3号楼好了", "办洁 1 灯换好了", "下水道好了吗", "我这边好了",
    "居民的电话打通了", "想通了", "明天修好了", "修复了吗", "上门了吗", "纸箱子清走了吗", "明天搬走了",
])
def test_words_that_say_no_job_is_done_are_no_command(said: str) -> None:
    assert worker_commands.parse(said) is None


async def test_cannot_handle_is_the_tuihui_to_send_and_chuishao_is_named(client: Client, services: Services) -> None:
    await load_demo_roster(services)
    wc = WeCom(client, services)
    job = (await new_ticket(services, resident="oP1", fields={"description": "楼道灯坏了"})).ticket
    said = await wc.say("wangwei", "这个单子我处理不了")
    assert said == ("需要换人的话，请把工单退回服务中心重新派单（这条消息还没有退回工单），回复：\n"
                    "退回 0001 这个单子我处理不了（楼道灯坏了）\n"
                    "如果要街道或有关部门出面才能解决，不用退回，可以吹哨上报，回复“吹哨 0001 …”写明原因。")
    assert "吹哨" not in await wc.say("wangwei", "下午去不了 换个人吧")  # not beyond them: only the 退回
    assert "退回 0001 这个不归我管（楼道灯坏了）" in await wc.say("wangwei", "这个不归我管")
    assert (await ticket(services, job.number)).status == "dispatched"
    assert "已接单" in await wc.say("wangwei", "接单 1")
    arrived = await wc.say("wangwei", "到现场了 正在疏通")  # as 到了: what to send when done
    assert arrived == f"好的。工单 {job.number}（3号楼）办完后请回复“办结 0001 说明”。", arrived
    assert await actions(services, job.number) == ["created", "assign", "accept"]


async def test_zaima_is_answered_with_the_jobs_in_hand(client: Client, services: Services) -> None:
    await load_demo_roster(services)
    wc = WeCom(client, services)
    assert await wc.say("wangwei", "在吗") == "在的。您手上暂时没有工单；有新工单会推送给您。回复“帮助”查看全部指令。"
    await new_ticket(services, resident="oP2")
    await new_ticket(services, resident="oP3", building="2")
    assert await wc.say("wangwei", "在不在？") == (
        "在的。您手上有 2 张工单，回复“我的工单”查看；办完回复“办结 N 说明”，回复“帮助”查看全部指令。")


async def test_a_banjie_said_in_words_by_its_number_or_its_building(client: Client, services: Services) -> None:
    """3号 is the ticket 0003, 三号楼 the building: 王伟 holds 0001 at 1号楼, 0002 at 3号楼, 0003 at 2号楼."""
    await load_demo_roster(services)
    wc = WeCom(client, services)
    first = (await new_ticket(services, resident="oP4", building="1", summary="1号楼楼道灯坏了")).ticket
    second = (await new_ticket(services, resident="oP5", building="3", summary="3号楼楼道灯坏了")).ticket
    third = (await new_ticket(services, resident="oP6", building="2", summary="2号楼下水道堵了", category="环境卫生")).ticket
    assert {(await ticket(services, x.number)).assignee for x in (first, second, third)} == {"wangwei"}
    assert (await wc.say("wangwei", "灯修好了 3号")).startswith(f"已办结：工单 {third.number}")
    assert (await wc.say("wangwei", "三号楼的灯修好了")).startswith(f"已办结：工单 {second.number}")
    assert (await actions(services, second.number))[-1] == "resolve"
    # No job of his at 5号楼: nothing done, his jobs listed.
    assert await wc.say("wangwei", "5号楼的灯修好了") == (
        "您手上没有 5 号楼可以办结的工单（您手上的：0001（1号楼楼道灯坏了））。请写明工单号，例如“办结 0001 …”。")
    assert (await ticket(services, first.number)).status == "dispatched"
    assert (await wc.say("wangwei", "灯修好了")).startswith(f"已办结：工单 {first.number}")  # his one job left


async def test_a_building_and_the_thing_done_finish_that_kinds_job(client: Client, services: Services) -> None:
    """1号楼的下水道通了 and 明天修好 were 没有看懂这条指令 and the command list. With a lamp and a drain
    at 1号楼, the drain's words finish the drain (通了, as 修好了; 好了 only with the thing named, and
    only a job of that kind), never the lamp beside it; 明天修好 is a plan, answered as 明天去 is."""
    await load_demo_roster(services)
    wc = WeCom(client, services)
    lamp = (await new_ticket(services, resident="oK1", building="1", category="照明", summary="楼道灯坏了",
                             fields={"phone": "13812345678", "description": "楼道灯坏了"})).ticket
    drain = (await new_ticket(services, resident="oK2", building="1", category="环境卫生", summary="下水道堵了",
                              fields={"phone": "13812345678", "description": "下水道堵了"})).ticket
    lift = (await new_ticket(services, resident="oK3", building="3", category="电梯", summary="电梯不动了",
                             fields={"phone": "13812345678", "description": "电梯不动了"})).ticket
    assert [x.assignee for x in (lamp, drain, lift)] == ["wangwei"] * 3
    said = await wc.say("wangwei", "明天修好")
    assert said.startswith("收到。这句话没有发给居民，工单也没有变动。") and "回复 0002 明天修好（下水道堵了）" in said
    assert await wc.say("wangwei", "2号楼的灯好了") == (
        "您手上没有 2 号楼可以办结的工单（您手上的：0001（楼道灯坏了）、0002（下水道堵了）、0003（电梯不动了））。"
        "请写明工单号，例如“办结 0001 …”。")
    assert await wc.say("wangwei", "3号楼的下水道好了") == (  # the lift's building: 好了 finishes no other kind
        "您手上 3 号楼没有“环境卫生”这类可以办结的工单（您手上的：0003（电梯不动了））。请写明工单号，例如“办结 0003 …”。")
    assert [(await ticket(services, x.number)).status for x in (lamp, drain, lift)] == ["dispatched"] * 3
    assert (await wc.say("wangwei", "1号楼的下水道通了")).startswith(f"已办结：工单 {drain.number}")
    assert (await ticket(services, lamp.number)).status == "dispatched"  # the lamp beside it stays
    assert (await wc.say("wangwei", "1号楼的灯好了")).startswith(f"已办结：工单 {lamp.number}")
    assert (await wc.say("wangwei", "电梯修好了")).startswith(f"已办结：工单 {lift.number}")
    assert [(await ticket(services, x.number)).status for x in (lamp, drain, lift)] == ["resolved"] * 3
    assert "1号楼的下水道通了" in str([r.payload for r in await outbox_rows(services, "wechat", "oK2")])


@pytest.mark.parametrize(("said", "command"), [
    ("电话打通了", Command("called", None, "打通了")),
    ("电话打不通", Command("called", None, "打不通")),
    ("电话没人接", Command("called", None, "没人接")),
    ("电话号码不对", Command("called", None, "号码不对")),
    ("电话联系过了 明天去", Command("later", None, "明天去")),
    ("电话 1", Command("phone", "1")),
    ("电话1", Command("phone", "1")),
])
def test_words_about_a_call_are_no_dianhua_command(said: str, command: Command) -> None:
    assert worker_commands.parse(said) == command


async def test_the_call_got_through_is_no_request_for_the_phone(client: Client, services: Services) -> None:
    """电话打通了 (the owner telling the bot the call got through) was read as 电话: the resident's
    whole number came back and a look at it was audited. Now it is answered as 好的 is; a call that
    did not get through (电话打不通) is offered the 回复 that reaches the resident in WeChat; 电话 1
    still gives the number."""
    from sqlalchemy import select

    from storage.models import AuditLog

    await load_demo_roster(services)
    wc = WeCom(client, services)
    job = (await new_ticket(services, resident="oCall1")).ticket
    await wc.say("wangwei", "接单 1")
    said = await wc.say("wangwei", "电话打通了")
    assert said == f"好的。工单 {job.number}（3号楼）办完后请回复“办结 0001 说明”。"
    said = await wc.say("wangwei", "电话没人接")
    assert said == "收到。电话联系不上的话，可以在微信上给居民留言：回复“回复 0001 内容”，居民看得到，居民的回答会转给您。"
    async with services.sessions() as session:
        looks = list(await session.scalars(select(AuditLog).where(AuditLog.action == "wecom.phone")))
    assert looks == []
    assert "13812345678" in await wc.say("wangwei", "电话 1")


async def test_boxes_cleared_finishes_the_corridor_job_not_the_lamp_beside_it(client: Client, services: Services) -> None:
    """Two jobs in hand, a stairwell lamp and a corridor full of boxes: 纸箱子清走了 finishes the
    boxes (消防安全, as the report was filed), the lamp stays."""
    await load_demo_roster(services)
    wc = WeCom(client, services)
    lamp = (await new_ticket(services, resident="oB1", fields={"description": "楼道灯坏了"})).ticket
    boxes = (await new_ticket(services, resident="oB2", category="消防安全", summary="3号楼1单元楼道堆满了纸箱子",
                              fields={"description": "3号楼1单元楼道堆满了纸箱子"})).ticket
    assert (await wc.say("wangwei", "纸箱子清走了")).startswith(f"已办结：工单 {boxes.number}")
    assert (await ticket(services, lamp.number)).status == "dispatched"


async def test_a_call_not_through_names_the_job_just_taken(client: Client, services: Services) -> None:
    """Two jobs in hand, 接单 2, then 电话打不通: the 回复 offered said 回复 N (found walking a grid
    worker's day); it names the job acted on last, 0002; with none acted on, still N."""
    await load_demo_roster(services)
    wc = WeCom(client, services)
    await new_ticket(services, resident="oC1", fields={"description": "楼道灯坏了"})
    await new_ticket(services, resident="oC2", category="消防安全", fields={"description": "楼道堆满了纸箱子"})
    assert "回复“回复 N 内容”" in await wc.say("wangwei", "电话打不通")
    assert "已接单" in await wc.say("wangwei", "接单 2")
    assert "回复“回复 0002 内容”" in await wc.say("wangwei", "电话打不通")


async def test_arrived_at_a_job_not_yet_taken_is_told_its_jie_dan_first(client: Client, services: Services) -> None:
    """到了 from a grid worker whose one job was pushed but not yet taken got the general hint
    (办理工单请回复指令，例如“接单 N”…), as if nothing were in hand; now the job is named and its
    接单 asked for first. 到了 does not take it; with a job taken, 到了 is answered as before."""
    await load_demo_roster(services)
    wc = WeCom(client, services)
    job = (await new_ticket(services, resident="oP9", fields={"description": "楼道灯坏了"})).ticket
    said = await wc.say("wangwei", "到了")
    assert said == (f"好的。工单 {job.number}（3号楼）您还没有接单，请先回复“接单 0001”；"
                    "办完后再回复“办结 0001 说明”。"), said
    assert "接单 0001" in await wc.say("wangwei", "我已经在路上了")
    assert (await ticket(services, job.number)).status == "dispatched"
    assert await actions(services, job.number) == ["created", "assign"]
    await new_ticket(services, resident="oP8", building="2")  # a second job waiting: which one (tests/test_owners_s20.py)
    assert "说的是哪一张" in await wc.say("wangwei", "到了")
    assert "已接单" in await wc.say("wangwei", "接单 1")  # one taken: 到了 is not about the other's 接单
    assert "您还没有接单" not in await wc.say("wangwei", "到了")
