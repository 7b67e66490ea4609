"""What ticket owners really type in WeCom, through the /wecom callback: several numbers in one
command, a lone 了 after the verb, plain replies (接了, 收到, 调解成功, 我有哪些单), the 0001 of two
days, and a booking finished before its service."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from aiohttp.test_utils import TestClient
from sqlalchemy import select

from bot.clock import FakeClock
from bot.services import Services
from storage.models import AuditLog
from tests.wecom_driver import KINDS, WeCom, actions, new_ticket, outbox_rows, ticket

HELP_LINE = "接单 N —— 接下派给您的工单"


async def _audit(svc: Services, actor: str) -> list[tuple[str, str]]:
    async with svc.sessions() as session:
        rows = await session.execute(select(AuditLog).where(AuditLog.actor == actor).order_by(AuditLog.id))
        return [(a.action, a.target) for a in rows.scalars()]


async def _told(svc: Services, openid: str) -> list[str]:
    return [o.payload["text"] for o in await outbox_rows(svc, "wechat", openid)]


async def _mediation(svc: Services, resident: str, issue: str) -> str:
    fields = {"phone": "13812345678", "party": "邻居", "issue": issue}
    result = await new_ticket(svc, kind="mediation", resident=resident, building=None, category=None,
                              summary=f"与邻居｜方便的时间：-｜{issue}", fields=fields)
    assert result.ticket.assignee == "chenmediator"
    return result.ticket.number


# --- (a) several numbers in one command -----------------------------------------------------------


async def test_each_number_listed_is_acted_on_with_its_own_line(client: TestClient[Any, Any], services: Services) -> None:
    wc = WeCom(client, services)
    a, b, c = [(await new_ticket(services, resident=f"oN{n}", category=cat)).ticket.number
               for n, cat in ((1, "照明"), (2, "水电气暖"), (3, "电梯"))]
    reply = await wc.say("wangwei", "接单 1 2 3")
    assert [line.split("（")[0] for line in reply.splitlines()] == [f"已接单：工单 {n}" for n in (a, b, c)]
    assert [(await ticket(services, n)).status for n in (a, b, c)] == ["accepted"] * 3
    # 接单 2、3 again: each one says it is theirs already, nothing dropped
    assert await wc.say("wangwei", "接单 2、3") == "\n".join(
        f"工单 {n} 您已经接单了，正在办理中。办完请回复“办结 {n[-4:]} 说明”。" for n in (b, c))
    # the words after the numbers are the note of each, never a number pushed as a note
    assert await wc.say("wangwei", "办结 2 3 都修好了") == "\n".join(
        [f"已办结：工单 {b}。已通知居民。", f"已办结：工单 {c}。已通知居民。", f"如有现场照片，现在发送会附到工单 {c}。"])
    assert (await _told(services, "oN2"))[-1] == f"您的工单 {b} 已办结：都修好了"
    assert (await _told(services, "oN3"))[-1] == f"您的工单 {c} 已办结：都修好了"
    assert (await ticket(services, a)).status == "accepted"
    status, photo = await wc.post(wc.message_xml("wangwei", "image", PicUrl="http://img.example/1.jpg", MediaId="m1"))
    assert status == 200 and photo == f"照片已附到工单 {c}。"
    audit = await _audit(services, "wangwei")
    assert [x for x in audit if x[0] in ("wecom.accept", "wecom.resolve")] == [
        ("wecom.accept", a), ("wecom.accept", b), ("wecom.accept", c), ("wecom.resolve", b), ("wecom.resolve", c)]


async def test_a_number_that_names_none_of_the_workers_tickets_stops_the_whole_command(
    client: TestClient[Any, Any], services: Services
) -> None:
    wc = WeCom(client, services)
    mine = (await new_ticket(services, resident="oM1")).ticket.number  # 0001, 王伟's (building 3)
    theirs = (await new_ticket(services, resident="oM2", building="5")).ticket.number  # 0002, 李娜's
    reply = await wc.say("wangwei", "接单 1 9")
    assert reply == ("找不到工单 9，请核对工单号（回复“我的工单”查看）。\n您手上可以接单的工单：0001（楼道灯坏了）。\n"
                     "以上工单都还没有办理，请核对工单号后重新发送。")
    reply = await wc.say("wangwei", "接单 1和2")
    assert reply.splitlines() == [f"工单 {theirs} 不是派给您的，您不能处理。如需协助请联系服务中心。",
                                  "您手上可以接单的工单：0001（楼道灯坏了）。",
                                  "以上工单都还没有办理，请核对工单号后重新发送。"]
    assert (await ticket(services, mine)).status == "dispatched" and await _told(services, "oM1") == []
    assert ("wecom.accept.refused", "2") in await _audit(services, "wangwei")
    # 电话 for several: a line each (read only, so each is answered on its own)
    await wc.say("lina", "接单 2")
    assert await wc.say("wangwei", "电话 1 2") == "\n".join([
        f"工单 {mine} 居民电话：13812345678\n仅供办理本工单联系居民使用，请勿外传。",
        f"工单 {theirs} 不是派给您的，您不能处理。如需协助请联系服务中心。",
        "您手上可以查看电话的工单：0001（楼道灯坏了）。"])
    assert await wc.say("wangwei", " ".join(["接单", *map(str, range(1, 14))])) == "一条指令最多处理 12 张工单，请分几次发送。"
    assert (await ticket(services, mine)).status == "dispatched"


async def test_ten_jobs_after_a_water_cut_are_taken_in_one_command(client: TestClient[Any, Any], services: Services) -> None:
    """接单 took at most 6 numbers: after a water cut a grid worker holding ten jobs had to split
    them over two messages. Twelve are taken now, and the reply — a short line a job when the full
    ones would pass the 2,048 bytes WeCom cuts a reply at — names every one, taken or taken before."""
    wc = WeCom(client, services)
    place = "望湖小区3号楼2单元502室厨房水龙头下面的进水管"
    numbers = [(await new_ticket(services, resident=f"oCut{n}", category=kind, summary=f"{kind}的问题",
                                 fields={"phone": "13812345678", "place": place})).ticket.number
               for n, kind in enumerate(KINDS)]
    assert len(numbers) == 12
    refs = [n[-4:].lstrip("0") for n in numbers]
    reply = await wc.say("wangwei", "接单 " + " ".join(refs[:10]) + " 明天上午去")
    assert len(reply.encode()) <= 2048, len(reply.encode())
    lines = reply.splitlines()
    assert [line.split("（")[0] for line in lines[:10]] == [f"已接单：工单 {n}" for n in numbers[:10]]
    assert "（望湖小区3号楼2单元5…）" in lines[0] and "前办结。" in lines[0]
    assert lines[10:] == ["“明天上午去”没有发给居民；要告诉居民请分别回复“回复 工单号 明天上午去”。",
                          "办完一张回复一张“办结 工单号 说明”，工单号写末几位即可，例如“办结 0001 已修好”。"]
    assert [(await ticket(services, n)).status for n in numbers] == ["accepted"] * 10 + ["dispatched"] * 2
    # numbers that name none: the worker's own listed once, not after each of them
    reply = await wc.say("wangwei", "接单 97 98 99")
    assert reply.count("您手上可以接单的工单") == 1 and reply.count("找不到工单") == 3, reply
    # all twelve again: the ten taken before said so, the last two taken, every one named
    reply = await wc.say("wangwei", "接单 " + "、".join(refs))
    assert len(reply.encode()) <= 2048, len(reply.encode())
    lines = reply.splitlines()
    assert all(n in line for n, line in zip(numbers, lines))
    assert all("您已经接单了" in line for line in lines[:10]) and lines[10].startswith(f"已接单：工单 {numbers[10]}")
    assert [(await ticket(services, n)).status for n in numbers] == ["accepted"] * 12


async def test_a_job_a_colleague_took_first_names_who_took_it(client: TestClient[Any, Any], services: Services) -> None:
    """赵强 sent 接单 6 for the 5号楼 lift 李娜 of the same grid had taken and was told only 不是派给您的
    — as for a slip of the number; now he is told 李娜 has it. A job waiting for its owner, or
    another verb, is refused as before."""
    wc = WeCom(client, services)
    lift = (await new_ticket(services, resident="oTk1", building="5", category="电梯", summary="电梯坏了")).ticket
    assert lift.assignee in ("lina", "zhaoqiang")
    owner = lift.assignee
    colleague = "zhaoqiang" if owner == "lina" else "lina"
    name = "李娜" if owner == "lina" else "赵强"
    assert await wc.say(colleague, "接单 1") == f"工单 {lift.number} 不是派给您的，您不能处理。如需协助请联系服务中心。"
    assert (await wc.say(owner, "接单 1")).startswith(f"已接单：工单 {lift.number}")
    assert await wc.say(colleague, "接单 1") == \
        f"工单 {lift.number} 已由 {name} 接单，不是派给您的，您不用再接。如需协助请联系服务中心。"
    assert await wc.say(colleague, "办结 1 修好了") == f"工单 {lift.number} 不是派给您的，您不能处理。如需协助请联系服务中心。"
    assert (await ticket(services, lift.number)).assignee == owner


async def test_a_result_said_with_two_jobs_in_hand_is_kept_in_the_example(
    client: TestClient[Any, Any], services: Services,
) -> None:
    """搞定了 with two jobs in hand was asked which, with the example 办结 0001 … — the words said were
    dropped, to be typed again; the example now carries them (办结 0001 搞定了), nothing done."""
    wc = WeCom(client, services)
    a = (await new_ticket(services, resident="oTwo1")).ticket.number
    b = (await new_ticket(services, resident="oTwo2", category="环境卫生", summary="下水道堵了")).ticket.number
    assert "已接单" in await wc.say("wangwei", "接单 1 2")
    assert await wc.say("wangwei", "搞定了") == (
        f"您有多张可以办结的工单：{a}（楼道灯坏了）、{b}（下水道堵了）。请写明工单号，例如“办结 0001 搞定了”。")
    assert [(await ticket(services, n)).status for n in (a, b)] == ["accepted", "accepted"]
    assert await wc.say("wangwei", "办结") == (
        f"您有多张可以办结的工单：{a}（楼道灯坏了）、{b}（下水道堵了）。请写明工单号，例如“办结 0001 …”。")


async def test_several_numbers_with_no_note_ask_for_it(client: TestClient[Any, Any], services: Services) -> None:
    wc = WeCom(client, services)
    a = (await new_ticket(services, resident="oQ1")).ticket.number
    b = (await new_ticket(services, resident="oQ2", category="水电气暖")).ticket.number
    assert "已接单" in await wc.say("wangwei", "接单 1、2")
    assert await wc.say("wangwei", "办结 1 2") == "请写明办理结果，例如“办结 1 2 …”。"
    assert [(await ticket(services, n)).status for n in (a, b)] == ["accepted", "accepted"]


# --- (b) a lone particle is no note ---------------------------------------------------------------


async def test_a_lone_particle_after_the_verb_is_no_note(client: TestClient[Any, Any], services: Services) -> None:
    wc = WeCom(client, services)
    number = (await new_ticket(services, resident="oP1")).ticket.number
    assert (await wc.say("wangwei", "接单了")).startswith(f"已接单：工单 {number}")
    for said in ("办结了", "办结啦", "办结 好了", "办结 1 了", "办结1了"):
        assert await wc.say("wangwei", said) == "请写明办理结果，例如“办结 " + ("1" if "1" in said else "0001") + " …”。", said
    assert await wc.say("wangwei", "退回了") == "请写明退回原因，例如“退回 0001 …”。"
    assert (await ticket(services, number)).status == "accepted"
    assert [t for t in await _told(services, "oP1") if "已办结" in t] == []
    assert (await wc.say("wangwei", "办结了，灯管换了")).startswith(f"已办结：工单 {number}")
    assert (await _told(services, "oP1"))[-1] == f"您的工单 {number} 已办结：灯管换了"


# --- (c) plain replies ----------------------------------------------------------------------------


async def test_plain_words_for_taking_a_ticket(client: TestClient[Any, Any], services: Services) -> None:
    wc = WeCom(client, services)
    a = (await new_ticket(services, resident="oW1")).ticket.number
    assert (await wc.say("wangwei", "接了")).startswith(f"已接单：工单 {a}")
    b = (await new_ticket(services, resident="oW2", category="水电气暖")).ticket.number
    # 收到 with exactly one ticket waiting to be taken (a is already in hand): takes b
    assert (await wc.say("wangwei", "收到")).startswith(f"已接单：工单 {b}")
    # with none waiting: acknowledged, nothing done
    assert await wc.say("wangwei", "收到") == "收到。您目前没有等待接单的工单；办理工单请回复指令（回复“帮助”查看）。"
    c = (await new_ticket(services, resident="oW3", category="电梯")).ticket.number
    d = (await new_ticket(services, resident="oW4", category="物业服务")).ticket.number
    # with two waiting: which one is asked, none taken
    reply = await wc.say("wangwei", "收到！")
    assert reply == f"您有多张可以接单的工单：{c}（楼道灯坏了）、{d}（楼道灯坏了）。请写明工单号，例如“接单 0003”。"
    assert [(await ticket(services, n)).status for n in (c, d)] == ["dispatched", "dispatched"]
    assert (await wc.say("wangwei", "接啦 4")).startswith(f"已接单：工单 {d}")
    assert (await wc.say("wangwei", "0003 已接单")).startswith(f"已接单：工单 {c}")


async def test_i_will_go_and_look_takes_the_one_job_waiting(client: TestClient[Any, Any], services: Services) -> None:
    """好的我去看看 / 我去看看 (a grid worker answering a card) was 没有看懂这条指令 and the whole command
    list: it is taken as 收到 is — the one job waiting taken; with it in hand already, what to send
    when done; with nothing in hand, acknowledged."""
    wc = WeCom(client, services)
    assert await wc.say("wangwei", "我去看看") == "收到。您目前没有等待接单的工单；办理工单请回复指令（回复“帮助”查看）。"
    a = (await new_ticket(services, resident="oLook1")).ticket.number
    assert (await wc.say("wangwei", "好的我去看看")).startswith(f"已接单：工单 {a}")
    assert (await ticket(services, a)).status == "accepted"
    for said in ("我去看看", "我这就去看一下", "好的，马上过去看看"):
        assert await wc.say("wangwei", said) == f"好的。工单 {a}（3号楼）办完后请回复“办结 0001 说明”。", said


async def test_plain_words_for_finishing_and_listing(client: TestClient[Any, Any], services: Services) -> None:
    wc = WeCom(client, services)
    a = (await new_ticket(services, resident="oF1")).ticket.number
    await wc.say("wangwei", "接单")
    for said in ("我有哪些单", "我的单子", "我的任务？", "查看工单"):
        mine = await wc.say("wangwei", said)
        assert mine.startswith("您手上的工单（1 张）：") and a in mine, said
    # 已完成 / 完成 N say only "done": the result is asked, as for a bare 办结
    assert await wc.say("wangwei", "已完成") == "请写明办理结果，例如“办结 0001 …”。"
    assert await wc.say("wangwei", "完成 0001") == "请写明办理结果，例如“办结 0001 …”。"
    assert (await wc.say("wangwei", "修好了吗")).startswith("这句话还没有发给居民。")  # words: nothing done
    assert (await wc.say("wangwei", "完成情况怎么样")).startswith("这句话还没有发给居民。")
    assert (await ticket(services, a)).status == "accepted"
    assert (await wc.say("wangwei", "弄好了，灯管换了新的")).startswith(f"已办结：工单 {a}")
    assert (await _told(services, "oF1"))[-1] == f"您的工单 {a} 已办结：弄好了，灯管换了新的"
    b = (await new_ticket(services, resident="oF2", category="水电气暖")).ticket.number
    assert (await wc.say("wangwei", "处理好了")).startswith(f"已办结：工单 {b}")  # 办结 without 接单
    assert (await _told(services, "oF2"))[-1] == f"您的工单 {b} 已办结：处理好了"


async def test_a_mediators_result_is_the_note(client: TestClient[Any, Any], services: Services) -> None:
    wc = WeCom(client, services)
    first = await _mediation(services, "oD1", "楼上天天半夜吵")
    second = await _mediation(services, "oD2", "隔壁装修太吵")
    assert "已接单" in await wc.say("chenmediator", "接单 1 2")
    assert (await wc.say("chenmediator", "0001 调解成功")).startswith(f"已办结：工单 {first}")
    assert (await _told(services, "oD1"))[-1] == f"您的工单 {first} 已办结：调解成功"
    assert (await wc.say("chenmediator", "调解不成，双方分歧太大，建议走诉讼")).startswith(f"已办结：工单 {second}")
    assert (await _told(services, "oD2"))[-1] == f"您的工单 {second} 已办结：调解不成，双方分歧太大，建议走诉讼"


async def test_a_mediators_settlement_in_words_is_the_note_and_a_sentence_names_its_ticket_once(
    client: TestClient[Any, Any], services: Services,
) -> None:
    """0003 双方已经和解了 (found walking a mediator's day) was not read as the result and was
    suggested as “回复 0003 0003 双方已经和解了”, the number twice. 和解 and 达成协议 are a
    mediation's end as 调解成功 is; a sentence that names its ticket first is suggested with it once,
    that ticket even with two in hand; 还没和解 and 和解不了 finish nothing."""
    wc = WeCom(client, services)
    first = await _mediation(services, "oH1", "楼上天天半夜吵")
    second = await _mediation(services, "oH2", "隔壁装修太吵")
    third = await _mediation(services, "oH3", "和邻居因为车位吵架")
    assert "已接单" in await wc.say("chenmediator", "接单 1 2 3")
    for words in ("还没和解", "0001 和解不了 对方不来"):
        assert (await wc.say("chenmediator", words)).startswith("这句话还没有发给居民。")
    assert (await ticket(services, first)).status == "accepted"
    suggested = await wc.say("chenmediator", "0002 周六上午十点在社区调解室，请准时到")
    assert "回复 0002 周六上午十点在社区调解室，请准时到" in suggested and "0002 0002" not in suggested
    assert (await wc.say("chenmediator", "0001 双方已经和解了")).startswith(f"已办结：工单 {first}")
    assert (await _told(services, "oH1"))[-1] == f"您的工单 {first} 已办结：双方已经和解了"
    assert (await wc.say("chenmediator", "3 达成调解协议了 双方签字")).startswith(f"已办结：工单 {third}")
    assert (await ticket(services, second)).status == "accepted"


async def test_a_sentence_with_no_number_is_shown_as_the_reply_of_the_job_acted_on_last(
    client: TestClient[Any, Any], services: Services, clock: FakeClock,
) -> None:
    """接单 2, then 打了两次电话 对方没接 (found walking a mediator's day): the 回复 suggested named 0001,
    the job due first, not the one just taken; it names the job acted on last (within two hours)."""
    wc = WeCom(client, services)
    await _mediation(services, "oL1", "楼上天天半夜吵")
    await _mediation(services, "oL2", "隔壁装修太吵")
    assert "已接单" in await wc.say("chenmediator", "接单 2")
    clock.advance(minutes=20)
    said = await wc.say("chenmediator", "打了两次电话 对方没接")
    assert "回复 0002 打了两次电话 对方没接" in said, said
    clock.advance(hours=3)  # long after: no job is the one in mind, the first due is the example
    assert "回复 0001 打了两次电话 对方没接" in await wc.say("chenmediator", "打了两次电话 对方没接")


# --- (d) the same short number on two days -------------------------------------------------------


async def test_the_0001_of_two_days(client: TestClient[Any, Any], services: Services, clock: FakeClock) -> None:
    """Yesterday's 0001 still in hand, today's 0001 dispatched: 接单 0001 (as the card says) is
    today's; 办结 0001 then fits both and lists them by month and day, which names one."""
    wc = WeCom(client, services)
    old = await _mediation(services, "oY1", "楼上天天半夜吵")
    assert (await wc.say("chenmediator", "接单 0001")).startswith(f"已接单：工单 {old}")
    clock.advance(days=1)
    new = await _mediation(services, "oY2", "和儿媳妇吵架")
    assert (old, new) == ("20261123-0001", "20261124-0001")
    taken = await wc.say("chenmediator", "接单 0001")
    assert taken.startswith(f"已接单：工单 {new}") and taken.endswith("办结后回复“办结 1124-0001 说明”。")
    assert (await _told(services, "oY2"))[-1] == f"您的工单 {new} 已由调解员 陈调解 接单，正在处理。"
    reply = await wc.say("chenmediator", "办结 0001 调解成功")
    assert reply == ("工单号 0001 对应多张工单：1124-0001（和儿媳妇吵架）、1123-0001（楼上天天半夜吵）。"
                     "请写明是哪一张（月日-序号），例如“办结 1124-0001”。")
    assert [(await ticket(services, n)).status for n in (old, new)] == ["accepted", "accepted"]
    assert (await wc.say("chenmediator", "办结 1123-0001 调解成功")).startswith(f"已办结：工单 {old}")
    assert (await ticket(services, new)).status == "accepted"
    # now only one 0001 can be finished: the short number is enough again
    assert (await wc.say("chenmediator", "办结 1 调解成功")).startswith(f"已办结：工单 {new}")
    assert "找不到工单 1125-0001" in await wc.say("chenmediator", "办结 1125-0001 调解成功")


# --- (e) a booking is finished from its start on -----------------------------------------------------


async def test_a_booking_is_not_finished_before_its_service(
    client: TestClient[Any, Any], services: Services, clock: FakeClock
) -> None:
    wc = WeCom(client, services)
    start = clock.now() + timedelta(days=1, hours=1)  # 11月24日 11:00
    fields = {"phone": "13912345678", "service": "助餐", "start": start.isoformat(), "address": "3号楼2单元301"}
    number = (await new_ticket(services, kind="elderly_service", resident="oB1", category=None,
                               summary="助餐", fields=fields)).ticket.number
    assert (await ticket(services, number)).assignee == "canteen"
    assert (await wc.say("canteen", "收到")).startswith(f"已接单：工单 {number}")
    refused = f"工单 {number} 预约的服务在 11月24日 11:00 开始，服务开始后才能办结。"
    assert await wc.say("canteen", "办结 已送餐") == refused
    assert await wc.say("canteen", "办结 1 已送餐") == refused
    assert await wc.say("canteen", "办结") == refused
    assert (await ticket(services, number)).status == "accepted"
    assert [t for t in await _told(services, "oB1") if "已办结" in t] == []
    assert ("wecom.resolve.refused", number) in await _audit(services, "canteen")
    clock.set(start)
    assert (await wc.say("canteen", "办结 已送餐")).startswith(f"已办结：工单 {number}")
    assert (await _told(services, "oB1"))[-1] == f"您的工单 {number} 已办结：已送餐"
    assert await actions(services, number) == ["created", "assign", "accept", "resolve"]


async def test_a_neighbours_linked_report_is_not_finished_alone(client: TestClient[Any, Any], services: Services) -> None:
    """办结 0002 of a report linked to the water job 0001 would tell that resident 已办结 while the
    water is still off: refused, pointing at the job, audited; 办结 of the job finishes both."""
    wc = WeCom(client, services)
    job = (await new_ticket(services, resident="oJob", category="水电气暖")).ticket.number
    linked = await new_ticket(services, resident="oNext", category="水电气暖")
    assert linked.linked_to is not None
    child = linked.ticket.number
    reply = await wc.say("wangwei", f"办结 {child[-4:]} 已恢复供水")
    assert reply == (f"工单 {child} 是并入工单 {job} 的同一问题反映，随该工单一起处理，不能单独办结。"
                     f"请对工单 {job} 操作，例如“办结 {job[-4:]} …”。")
    assert (await ticket(services, child)).status == "dispatched"
    assert not [t for t in await _told(services, "oNext") if "已办结" in t]
    assert ("wecom.resolve.refused", child) in await _audit(services, "wangwei")
    assert (await wc.say("wangwei", f"办结 {job[-4:]} 已恢复供水")).startswith("已办结")
    assert (await ticket(services, child)).status == "resolved"
    assert (await _told(services, "oNext"))[-1] == f"您的工单 {child}（与工单 {job} 合并处理） 已办结：已恢复供水"


# --- 回复全部: one answer to every resident who reported the same problem ------------------------


async def burst(svc: Services) -> tuple[str, list[str]]:
    """A water-main burst reported by five residents: the job and its four linked reports. oW1 wrote
    just now (customer-service window), oW2 three days ago and oW5 was never seen (templates),
    oW3 unfollowed and oW4 was erased (unreachable)."""
    from storage.models import Resident

    numbers = []
    for n in range(1, 6):
        result = await new_ticket(svc, resident=f"oW{n}", category="水电气暖", summary="停水了，水管爆了")
        assert (result.linked_to is None) == (n == 1)
        numbers.append(result.ticket.number)
    now = svc.clock.now()
    async with svc.sessions() as session, session.begin():
        for n, (wrote, subscribed, erased) in {1: (now, True, None), 2: (now - timedelta(days=3), True, None),
                                               3: (now, False, None), 4: (now, True, now)}.items():
            session.add(Resident(openid=f"oW{n}", subscribed=subscribed, erased_at=erased, last_message_at=wrote,
                                 last_inbound_at=wrote, window_opened_by="message", created_at=now, updated_at=now))
    return numbers[0], numbers[1:]


async def test_reply_all_reaches_every_reporter_once_through_their_own_channel(
    client: TestClient[Any, Any], services: Services,
) -> None:
    wc = WeCom(client, services)
    job, kids = await burst(services)
    said = "抢修队已到场，预计今晚六点前恢复供水。"
    assert await wc.say("wangwei", f"回复全部 {job[-4:]} {said}") == "只有服务中心工作人员可以直接回复居民。"
    assert [o for o in await outbox_rows(services, "wechat") if said in o.payload["text"]] == []
    # a linked report's number answers the whole job just the same
    reply = await wc.say("liustaff", f"回复全部 {kids[0][-4:]} {said}")
    assert reply == (f"已答复工单 {job} 的反映居民：3 位已发出（客服消息 1 位、模板消息 2 位），"
                     "2 位无法送达（已取消关注或信息已删除）。")
    told = {o.target: o.payload for o in await outbox_rows(services, "wechat") if said in o.payload["text"]}
    assert sorted(told) == ["oW1", "oW2", "oW5"]  # one each; nothing to who unfollowed or was erased
    assert told["oW1"]["text"] == f"【社区服务中心】关于您的工单 {job}：\n{said}"
    assert told["oW2"]["text"].startswith(f"【社区服务中心】关于您的工单 {kids[0]}（与工单 {job} 合并处理）：")
    assert f"{kids[3]}（与工单 {job} 合并处理）" in told["oW5"]["template"]["fields"].values()
    async with services.sessions() as session:
        rows = list((await session.execute(select(AuditLog).where(AuditLog.action == "ticket.reply_all"))).scalars())
    assert len(rows) == 1 and (rows[0].actor, rows[0].target) == ("liustaff", job)
    assert rows[0].detail | {"missed": sorted(rows[0].detail["missed"])} == {
        "chars": len(said), "reporters": 5, "reached": 3, "custom": 1, "template": 2, "missed": sorted(kids[1:3])}
    assert (await actions(services, job))[-1] == "reply" and (await actions(services, kids[0]))[-1] == "reply"
    assert "reply" not in await actions(services, kids[1])
    # 回复 still answers only the ticket's own resident; 回复全部 wants a number and words
    assert await wc.say("liustaff", f"回复 {job[-4:]} 只告诉您") == f"已回复工单 {job} 的居民，居民在微信对话里就能看到。"
    assert [o.target for o in await outbox_rows(services, "wechat") if "只告诉您" in o.payload["text"]] == ["oW1"]
    assert "请写明回复内容，例如“回复全部 0007" in await wc.say("liustaff", "回复全部 抢修队已到场")
    assert "回复全部 N 内容" in await wc.say("liustaff", "帮助")


async def test_reply_all_when_nobody_can_be_reached_says_so(client: TestClient[Any, Any], services: Services) -> None:
    from storage.models import Resident

    wc = WeCom(client, services)
    job = (await new_ticket(services, resident="oGone1", category="水电气暖")).ticket.number
    assert (await new_ticket(services, resident="oGone2", category="水电气暖")).linked_to is not None
    now = services.clock.now()
    async with services.sessions() as session, session.begin():
        for openid in ("oGone1", "oGone2"):
            session.add(Resident(openid=openid, subscribed=False, created_at=now, updated_at=now))
    reply = await wc.say("liustaff", f"回复全部 {job[-4:]} 正在抢修")
    assert reply == (f"回复没有发出：工单 {job} 的 2 位反映居民都已取消关注或信息已删除，答复无法送达，请改用电话联系。")
    assert [o for o in await outbox_rows(services, "wechat") if "正在抢修" in o.payload["text"]] == []


# --- (g) a busy day's number typos ----------------------------------------------------------------


async def test_marks_around_a_number_are_read_and_a_mistyped_number_does_nothing(
    client: TestClient[Any, Any], services: Services
) -> None:
    """接单 #3 took the worker's only other ticket waiting (0005) — the number dropped, as in 接单 No.3,
    接单 第3单, 接单 3单; 接单 0O3 (a letter O) did the same, and 00003 was 找不到. Now the marks are
    read around the number, and a number with letters in it is answered without doing anything."""
    wc = WeCom(client, services)
    n = {k: (await new_ticket(services, resident=f"oT{k}", category=cat)).ticket.number
         for k, cat in ((1, "照明"), (2, "水电气暖"), (3, "电梯"))}
    for said in ("接单 0O3", "接单 O03", "办结 0O3 已修好", "电话 0o3"):
        reply = await wc.say("wangwei", said)
        assert "没看懂工单号" in reply and "没有办理" in reply, (said, reply)
    assert "例如“接单 003”" in await wc.say("wangwei", "接单 0O3")
    assert "没看懂工单号“999999999999999…”" in await wc.say("wangwei", "接单 " + "9" * 40)  # a digit too many
    long = await wc.say("wangwei", f"办结 {n[1][-4:]} " + "换了灯泡。" * 130)  # 650: too long for the resident's push
    assert "说明太长了（650 字）" in long and "没有办理" in long, long
    assert [(await ticket(services, x)).status for x in n.values()] == ["dispatched"] * 3
    assert (await wc.say("wangwei", "接单 #3")).startswith(f"已接单：工单 {n[3]}")
    assert (await wc.say("wangwei", "接单 No.2")).startswith(f"已接单：工单 {n[2]}")
    assert (await wc.say("wangwei", "接单 第1单")).startswith(f"已接单：工单 {n[1]}")
    assert (await wc.say("wangwei", "办结 3单 已修好")).startswith(f"已办结：工单 {n[3]}")
    assert (await wc.say("wangwei", "办结 00002 已修好")).startswith(f"已办结：工单 {n[2]}")
    # a unit (3单元) is still the note's, and a time stays a note
    assert (await wc.say("wangwei", "办结 3单元楼道灯已换好")).startswith(f"已办结：工单 {n[1]}")
    assert (await _told(services, "oT1"))[-1].endswith("3单元楼道灯已换好")
    fresh = (await new_ticket(services, resident="oT4", category="噪音")).ticket.number
    assert (await wc.say("wangwei", "接单，10分钟后到")).startswith(f"已接单：工单 {fresh}")
    more = [(await new_ticket(services, resident=f"oT{k}", category=KINDS[k + 5])).ticket.number for k in (5, 6)]
    reply = await wc.say("wangwei", f"接单 #{more[0][-1]} #{more[1][-1]}")  # the second # number too
    assert [line.split("（")[0] for line in reply.splitlines()] == [f"已接单：工单 {x}" for x in more], reply


async def test_an_acknowledgement_is_answered_shortly_and_changes_nothing(
    client: TestClient[Any, Any], services: Services
) -> None:
    """好的 / 謝謝 / 知道了，辛苦了 after a push got 没有看懂这条指令 and the whole command list."""
    wc = WeCom(client, services)
    number = (await new_ticket(services, resident="oK1")).ticket.number
    for said in ("好的", "謝謝", "知道了，辛苦了", "ok", "👌"):
        reply = await wc.say("wangwei", said)
        assert reply.startswith("好的。办理工单请回复指令") and HELP_LINE not in reply, (said, reply)
    assert (await ticket(services, number)).status == "dispatched"
    assert (await wc.say("wangwei", "好的收到")).startswith(f"已接单：工单 {number}")  # 收到 still takes it


async def test_a_number_in_chinese_numerals_as_voice_input_writes_it(
    client: TestClient[Any, Any], services: Services
) -> None:
    """接单三号 (a phone's voice input) was 接单 with no number: with one other ticket waiting it took
    that one. Now the numerals are the number, while 三楼 / 三号楼 / 一切正常 stay the note."""
    wc = WeCom(client, services)
    n = {k: (await new_ticket(services, resident=f"oV{k}", category=cat)).ticket.number
         for k, cat in ((1, "照明"), (2, "水电气暖"), (3, "电梯"))}
    assert (await wc.say("wangwei", "接单三号")).startswith(f"已接单：工单 {n[3]}")
    assert (await wc.say("wangwei", "接單 零零零二")).startswith(f"已接单：工单 {n[2]}")
    assert (await wc.say("wangwei", "办结 二号 已修好")).startswith(f"已办结：工单 {n[2]}")
    assert (await _told(services, "oV2"))[-1].endswith("已修好")
    assert "请写明工单号" in await wc.say("wangwei", "办结 三楼灯已换")  # 1 and 3 in hand: which?
    assert (await wc.say("wangwei", "办结 三 三号楼灯已换")).startswith(f"已办结：工单 {n[3]}")
    assert (await _told(services, "oV3"))[-1].endswith("三号楼灯已换")
    assert (await wc.say("wangwei", "办结 一切正常")).startswith(f"已办结：工单 {n[1]}")  # the one left
    assert (await _told(services, "oV1"))[-1].endswith("一切正常")
    # several, as voice input writes them: 接单四号五号 took 4 and dropped 五号 (digits: 4号5号 too)
    more = [(await new_ticket(services, resident=f"oV{k}", category=KINDS[k + 5])).ticket.number for k in (4, 5)]
    assert [line.split("（")[0] for line in (await wc.say("wangwei", "接单四号五号")).splitlines()] == [
        f"已接单：工单 {x}" for x in more]
    assert (await wc.say("wangwei", "办结 4号5号都修好了")).splitlines()[:2] == [
        f"已办结：工单 {x}。已通知居民。" for x in more]


async def test_my_tickets_says_how_many_residents_reported_a_job(client: TestClient[Any, Any], services: Services) -> None:
    """On a water-main morning 我的工单 listed the job like any other: now with its reporters."""
    wc = WeCom(client, services)
    job = (await new_ticket(services, resident="oW1", category="水电气暖", summary="停水了")).ticket.number
    for n in (2, 3):
        assert (await new_ticket(services, resident=f"oW{n}", category="水电气暖", summary="没水了")).linked_to is not None
    single = (await new_ticket(services, resident="oW4", building="1", category="照明")).ticket.number
    lines = {line.split("｜")[0]: line for line in (await wc.say("wangwei", "我的工单")).splitlines()[1:]}
    assert set(lines) == {job, single}
    assert "（3 位居民反映）" in lines[job] and "位居民反映" not in lines[single], lines


async def _bookings(svc: Services, clock: FakeClock) -> list[str]:
    """A care provider's day: 助洁 at 08:30, 陪诊 at 07:30 and 助浴 at 13:00 tomorrow, all 安心上门服务's."""
    day = clock.now().replace(hour=0, minute=0) + timedelta(days=1)  # 11月24日 08:00 Shanghai
    numbers = []
    for n, (service, at) in enumerate((("助洁", timedelta(minutes=30)), ("陪诊", timedelta(minutes=-30)),
                                        ("助浴", timedelta(hours=5)))):
        fields = {"phone": "13912345678", "service": service, "start": (day + at).isoformat(), "address": "3号楼2单元301"}
        made = await new_ticket(svc, kind="elderly_service", resident=f"oP{n}", category=None, summary=service,
                                fields=fields)
        assert made.ticket.assignee == "homecare"
        numbers.append(made.ticket.number)
    return numbers


async def test_a_care_providers_bookings_are_told_apart_by_service_and_time(
    client: TestClient[Any, Any], services: Services, clock: FakeClock
) -> None:
    """我的工单 and 收到 with several bookings name each one's service and booked time (they all
    read 养老服务｜3号楼2单元301, and the listing gave only the 办结 limit)."""
    wc = WeCom(client, services)
    a, b, c = await _bookings(services, clock)
    mine = await wc.say("homecare", "我的工单")
    assert mine.splitlines() == [
        "您手上的工单（3 张）：",
        f"{b}｜待接单｜陪诊 11月24日 07:30｜3号楼2单元301｜11月25日 07:30 前",
        f"{a}｜待接单｜助洁 11月24日 08:30｜3号楼2单元301｜11月25日 08:30 前",
        f"{c}｜待接单｜助浴 11月24日 13:00｜3号楼2单元301｜11月25日 13:00 前",
    ]
    assert await wc.say("homecare", "收到") == (
        f"您有多张可以接单的工单：{a}（助洁 11月24日 08:30）、{b}（陪诊 11月24日 07:30）、"
        f"{c}（助浴 11月24日 13:00）。请写明工单号，例如“接单 0001”。"
    )


async def test_short_phone_words_of_a_worker_on_the_way(
    client: TestClient[Any, Any], services: Services, clock: FakeClock
) -> None:
    """马上去 alone is 收到，马上去 (the one waiting taken); 到了 / 在路上了 get a one-line answer, not
    没有看懂这条指令 with the whole command list."""
    wc = WeCom(client, services)
    a, b, c = await _bookings(services, clock)
    assert "已接单" in await wc.say("homecare", "接单 1 2")
    assert (await wc.say("homecare", "马上去")).startswith(f"已接单：工单 {c}")
    assert (await ticket(services, c)).status == "accepted"
    noted = "好的。办理工单请回复指令，例如“接单 N”“办结 N 说明”；回复“我的工单”查看手上的工单，回复“帮助”查看全部指令。"
    for said in ("到了", "已经到了", "在路上了", "我已经出发了"):
        assert await wc.say("homecare", said) == noted
    assert await wc.say("homecare", "好的，马上过去") == "收到。您目前没有等待接单的工单；办理工单请回复指令（回复“帮助”查看）。"


async def test_cannot_go_change_the_person_is_answered_with_the_return_to_send(
    client: TestClient[Any, Any], services: Services, clock: FakeClock
) -> None:
    """下午去不了 换个人吧 was 没有看懂这条指令: it is answered with the 退回 to send, those words its
    reason, for each booking (or the one named); nothing is handed back until the 退回 comes."""
    wc = WeCom(client, services)
    a, b, c = await _bookings(services, clock)
    assert await wc.say("homecare", "下午去不了 换个人吧") == (
        "需要换人的话，请把工单退回服务中心重新派单（这条消息还没有退回工单），回复：\n"
        "退回 0002 下午去不了 换个人吧（陪诊 11月24日 07:30）\n"
        "退回 0001 下午去不了 换个人吧（助洁 11月24日 08:30）\n"
        "退回 0003 下午去不了 换个人吧（助浴 11月24日 13:00）"
    )
    assert await wc.say("homecare", "3 下午去不了，找别人吧") == (
        "需要换人的话，请把工单退回服务中心重新派单（这条消息还没有退回工单），回复：\n"
        "退回 0003 下午去不了，找别人吧（助浴 11月24日 13:00）"
    )
    assert [(await ticket(services, n)).status for n in (a, b, c)] == ["dispatched"] * 3
    assert await outbox_rows(services, "group") == []
    assert await wc.say("homecare", "退回 0003 下午去不了，找别人吧") == f"已退回：工单 {c}，服务中心会重新派单。"
    assert "服务机构退回：下午去不了，找别人吧" in (await outbox_rows(services, "group"))[-1].payload["content"]
    assert await wc.say("homecare", "9 去不了") == ("找不到工单 9，请核对工单号（回复“我的工单”查看）。\n"
                                                  "您手上可以退回的工单：0002（陪诊 11月24日 07:30）、0001（助洁 11月24日 08:30）。")
    assert await wc.say("lina", "今天走不开 换个人吧") == "您目前没有可以退回的工单。"
