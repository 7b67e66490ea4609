"""The WeCom app callback: URL check, every worker command, staff replies, refusals, bad input."""

from __future__ import annotations

import secrets
import time
from typing import Any

import xmltodict
from aiohttp.test_utils import TestClient
from sqlalchemy import select
from wechatpy.enterprise.crypto import WeChatCrypto

from bot.channels.wecom import dedup_key
from bot.services import Services
from storage.models import AuditLog, TicketEvent
from tests.wecom_driver import KINDS, WeCom, actions, load_demo_roster, new_ticket, outbox_rows, stopping_after, ticket


async def _audit(svc: Services) -> list[tuple[str, str, str]]:
    async with svc.sessions() as session:
        rows = await session.execute(select(AuditLog).order_by(AuditLog.id))
        return [(a.actor, a.action, a.target) for a in rows.scalars() if a.action != "roster.import"]


async def test_url_check(client: TestClient[Any, Any], services: Services) -> None:
    wc = WeCom(client, services)
    ts, nonce = str(int(time.time())), "n1"
    env = xmltodict.parse(wc.crypto.encrypt_message("echo-42", nonce, ts))["xml"]
    params = {"msg_signature": env["MsgSignature"], "timestamp": ts, "nonce": nonce, "echostr": env["Encrypt"]}
    resp = await client.get("/wecom", params=params)
    assert resp.status == 200 and await resp.text() == "echo-42"
    resp = await client.get("/wecom", params=dict(params, msg_signature="0" * 40))
    assert resp.status == 403
    resp = await client.get("/wecom", params={"timestamp": ts})
    assert resp.status == 400


async def test_accept_by_last_digits_and_resident_hears(client: TestClient[Any, Any], services: Services) -> None:
    wc = WeCom(client, services)
    t = (await new_ticket(services, resident="oR1")).ticket
    reply = await wc.say("wangwei", "接单 0001")
    assert reply.startswith(f"已接单：工单 {t.number}")
    assert (await ticket(services, t.number)).status == "accepted"
    [push] = await outbox_rows(services, "wechat", "oR1")
    assert push.payload["text"] == f"您的工单 {t.number} 已由网格员 王伟 接单，正在处理。"
    assert ("wangwei", "wecom.accept", t.number) in await _audit(services)
    # again: theirs already, said plainly with what comes next (not 不能接单, which reads as a fault)
    assert await wc.say("wangwei", f"接单 {t.number}") == \
        f"工单 {t.number} 您已经接单了，正在办理中。办完请回复“办结 0001 说明”。"


async def test_short_forms_when_one_ticket_is_open(client: TestClient[Any, Any], services: Services) -> None:
    wc = WeCom(client, services)
    t = (await new_ticket(services, resident="oR2")).ticket
    assert "已接单" in await wc.say("wangwei", "接单")
    assert "请写明办理结果" in await wc.say("wangwei", "办结")
    assert (await wc.say("wangwei", "办结 已修好")).startswith(f"已办结：工单 {t.number}")
    row = await ticket(services, t.number)
    assert row.status == "resolved"
    texts = [o.payload["text"] for o in await outbox_rows(services, "wechat", "oR2")]
    assert texts[-1] == f"您的工单 {t.number} 已办结：已修好"
    # the photo that follows is attached to the ticket
    status, reply = await wc.post(wc.message_xml("wangwei", "image", PicUrl="http://img.example/1.jpg", MediaId="m1"))
    assert status == 200 and reply == f"照片已附到工单 {t.number}。"
    async with services.sessions() as session:
        ev = (await session.execute(select(TicketEvent).where(TicketEvent.action == "photo"))).scalar_one()
    assert ev.actor == "wangwei" and ev.data is not None and ev.data["media_id"] == "m1"


async def test_several_open_tickets_need_a_number(client: TestClient[Any, Any], services: Services) -> None:
    wc = WeCom(client, services)
    a = (await new_ticket(services, resident="oA", category="照明")).ticket
    b = (await new_ticket(services, resident="oB", category="水电气暖")).ticket
    reply = await wc.say("wangwei", "接单")
    assert a.number in reply and b.number in reply and "请写明工单号" in reply
    assert "已接单" in await wc.say("wangwei", "接单 2")
    assert (await ticket(services, b.number)).status == "accepted"
    assert (await ticket(services, a.number)).status == "dispatched"
    mine = await wc.say("wangwei", "我的工单")
    assert "2 张" in mine and a.number in mine and b.number in mine and "待接单" in mine and "处理中" in mine


async def test_someone_elses_ticket_is_refused_and_audited(client: TestClient[Any, Any], services: Services) -> None:
    wc = WeCom(client, services)
    t = (await new_ticket(services, building="3")).ticket  # wangwei's
    for cmd in ("接单 0001", f"办结 {t.number} 修好了", "吹哨 1 太难"):
        assert await wc.say("sunli", cmd) == f"工单 {t.number} 不是派给您的，您不能处理。如需协助请联系服务中心。"
    assert (await ticket(services, t.number)).status == "dispatched"
    refused = [a for a in await _audit(services) if a[0] == "sunli"]
    assert [a[1] for a in refused] == ["wecom.accept.refused", "wecom.resolve.refused", "wecom.whistle.refused"]
    assert "没有可以接单" in await wc.say("sunli", "接单")
    assert "找不到工单 9999" in await wc.say("sunli", "接单 9999")


async def test_return_goes_back_to_the_queue_and_staff_are_told(client: TestClient[Any, Any], services: Services) -> None:
    wc = WeCom(client, services)
    t = (await new_ticket(services)).ticket
    assert "请写明退回原因" in await wc.say("wangwei", "退回 0001")
    assert await wc.say("wangwei", "退回 0001 不属于我的网格") == f"已退回：工单 {t.number}，服务中心会重新派单。"
    row = await ticket(services, t.number)
    assert (row.status, row.assignee) == ("open", None)
    [post] = await outbox_rows(services, "group")
    assert "不属于我的网格" in post.payload["content"] and t.number in post.payload["content"]


async def test_whistle_escalates(client: TestClient[Any, Any], services: Services) -> None:
    wc = WeCom(client, services)
    t = (await new_ticket(services)).ticket
    await wc.say("wangwei", "接单")
    assert (await wc.say("wangwei", "吹哨 需要供电公司处理")).startswith("已吹哨")
    assert (await ticket(services, t.number)).status == "escalated"
    [post] = await outbox_rows(services, "group")
    assert "吹哨上报：需要供电公司处理" in post.payload["content"]
    assert ("wangwei", "wecom.whistle", t.number) in await _audit(services)


async def test_help_unknown_and_strangers(client: TestClient[Any, Any], services: Services) -> None:
    wc = WeCom(client, services)
    owner_help = await wc.say("wangwei", "帮助")
    assert "接单 N" in owner_help and "回复 N 内容 —— 给您手上工单的居民发消息" in owner_help and "回复全部" not in owner_help
    assert "回复 N 内容 —— 回复任何工单的居民" in await wc.say("liustaff", "帮助")
    assert (await wc.say("wangwei", "今天天气不错")).startswith("没有看懂这条指令。")
    assert await wc.say("stranger", "接单 1") == "您不在社区工作人员名册中，无法处理工单。如有疑问请联系服务中心。"
    status, reply = await wc.post(wc.message_xml("wangwei", "voice", MediaId="v1", Format="amr"))
    assert status == 200 and reply == (  # a voice message: no words to read (WeCom gives an app none)
        "这条消息读不出文字（语音、位置、文件都读不出内容），没有办理。请用文字回复指令，例如“接单 0001”“办结 0001 已修好”；"
        "用手机输入法的语音输入，说完转成文字再发送也可以。")
    status, reply = await wc.post(wc.message_xml("wangwei", "image", MediaId="m9"))
    assert "请先发送“办结 N 说明”" in reply


async def test_staff_reply_reaches_the_resident(client: TestClient[Any, Any], services: Services) -> None:
    from datetime import timedelta

    from bot.inbound import Inbound

    wc = WeCom(client, services)
    t = (await new_ticket(services, resident="oR9")).ticket
    from bot import dialog

    async with services.sessions() as session, session.begin():
        await dialog.arrive(session, Inbound(openid="oR9", msg_type="text", text="hi"), services.clock.now() - timedelta(hours=1))
    assert await wc.say("sunli", "回复 0001 你好") == f"工单 {t.number} 不是派给您的，您不能处理。如需协助请联系服务中心。"
    assert await wc.say("liustaff", "回复 0001 您好，明天上午来修<b>") == f"已回复工单 {t.number} 的居民，居民在微信对话里就能看到。"
    pushes = await outbox_rows(services, "wechat", "oR9")
    assert any("明天上午来修" in o.payload["text"] for o in pushes)
    assert "reply" in await actions(services, t.number)
    assert "请写明回复内容" in await wc.say("liustaff", "回复 0001")
    assert "找不到工单" in await wc.say("liustaff", "回复 8888 在吗")


async def test_retry_is_answered_once(client: TestClient[Any, Any], services: Services) -> None:
    wc = WeCom(client, services)
    t = (await new_ticket(services)).ticket
    msg_id = secrets.randbits(62)
    first = await wc.say("wangwei", "接单", msg_id=msg_id)
    again = await wc.say("wangwei", "接单", msg_id=msg_id)
    assert first == again and first.startswith("已接单")
    assert (await actions(services, t.number)).count("accept") == 1


async def test_a_retry_the_store_forgot_is_answered_from_the_record(
    client: TestClient[Any, Any], services: Services
) -> None:
    """Redis restarted empty: WeCom's retry of a staff 回复 must not push it to the resident twice."""
    wc = WeCom(client, services)
    t = (await new_ticket(services, resident="oR9")).ticket
    msg_id = secrets.randbits(62)
    first = await wc.say("liustaff", f"回复 {t.number[-4:]} 明天上午来修", msg_id=msg_id)
    assert first.startswith("已回复工单")
    pushed = len(await outbox_rows(services, "wechat", "oR9"))
    await services.store.for_retries().delete(dedup_key(services, {"FromUserName": "liustaff", "MsgId": str(msg_id)}))
    again = await wc.say("liustaff", f"回复 {t.number[-4:]} 明天上午来修", msg_id=msg_id)
    assert again == first
    assert len(await outbox_rows(services, "wechat", "oR9")) == pushed
    assert (await actions(services, t.number)).count("reply") == 1


async def test_a_command_and_its_record_commit_together(
    client: TestClient[Any, Any], services: Services, monkeypatch: Any
) -> None:
    """The process stops right after a 回复's transaction committed (before anything else is
    written) and Redis forgot the delivery: WeCom's retry is answered from the record the
    command's own transaction wrote, and the resident is not pushed the answer twice."""
    from bot import worker_commands

    wc = WeCom(client, services)
    t = (await new_ticket(services, resident="oR8")).ticket
    run = worker_commands.run
    stops_after_the_command = stopping_after(run)
    monkeypatch.setattr(worker_commands, "run", stops_after_the_command)
    msg_id = secrets.randbits(62)
    said = f"回复 {t.number[-4:]} 明天上午来修"
    assert await wc.say("liustaff", said, msg_id=msg_id) == services.texts.get("errors.resend")
    pushed = await outbox_rows(services, "wechat", "oR8")
    assert len(pushed) == 1
    monkeypatch.setattr(worker_commands, "run", run)
    await services.store.for_retries().delete(dedup_key(services, {"FromUserName": "liustaff", "MsgId": str(msg_id)}))
    assert await wc.say("liustaff", said, msg_id=msg_id) == services.texts.get("wecom.already_handled")
    assert len(await outbox_rows(services, "wechat", "oR8")) == 1
    assert (await actions(services, t.number)).count("reply") == 1

    # A command whose reply is composed inside its transaction is answered with that reply.
    other = secrets.randbits(62)
    monkeypatch.setattr(worker_commands, "run", stops_after_the_command)
    await wc.say("wangwei", f"接单 {t.number[-4:]}", msg_id=other)
    monkeypatch.setattr(worker_commands, "run", run)
    await services.store.for_retries().delete(dedup_key(services, {"FromUserName": "wangwei", "MsgId": str(other)}))
    assert (await wc.say("wangwei", f"接单 {t.number[-4:]}", msg_id=other)).startswith("已接单")
    assert (await actions(services, t.number)).count("accept") == 1


async def test_two_handlings_of_one_delivery_keep_one_command(services: Services) -> None:
    """Both handlings pass the record check before either commits (the store had forgotten the
    delivery): the second command's transaction is refused on the record's key, whole, and it
    answers with the first one's reply."""
    import asyncio

    from bot.channels import wecom

    await load_demo_roster(services)
    t = (await new_ticket(services, resident="oR7")).ticket
    values = {"FromUserName": "liustaff", "MsgType": "text", "MsgId": str(secrets.randbits(62)),
              "Content": f"回复 {t.number[-4:]} 下午到", "CreateTime": str(int(time.time()))}
    (first, ran), (second, ran_too) = await asyncio.gather(wecom._once_on_record(services, values),
                                                           wecom._once_on_record(services, values))
    assert first == second and first is not None and first.startswith("已回复工单")
    assert sorted([ran, ran_too]) == [False, True]  # one ran the command, the other repeats its reply
    assert len(await outbox_rows(services, "wechat", "oR7")) == 1
    assert (await actions(services, t.number)).count("reply") == 1


async def test_bad_input_is_refused_never_500(client: TestClient[Any, Any], services: Services) -> None:
    wc = WeCom(client, services)
    params, body = wc.wrap(wc.message_xml("wangwei", "text", Content="帮助"))
    bad = await client.post("/wecom", params=dict(params, msg_signature="f" * 40), data=body)
    assert bad.status == 403
    for junk in (b"", b"not xml", b"<xml><Encrypt>!!!notbase64</Encrypt></xml>", b"<xml><a>1</a></xml>",
                 b'<!DOCTYPE x [<!ENTITY e "x">]><xml><Encrypt>&e;</Encrypt></xml>'):
        resp = await client.post("/wecom", params=params, data=junk)
        assert resp.status in (400, 403), junk
    # a correctly signed envelope whose ciphertext is not valid: 400
    import hashlib

    enc = "QUJDREVGR0g="
    sig = hashlib.sha1("".join(sorted([services.settings.wecom_token, params["timestamp"], params["nonce"], enc])).encode()).hexdigest()
    resp = await client.post("/wecom", params=dict(params, msg_signature=sig), data=f"<xml><Encrypt>{enc}</Encrypt></xml>".encode())
    assert resp.status == 400
    big = await client.post("/wecom", params=params, data=b"<xml>" + b"x" * (1024 * 1024 + 10) + b"</xml>")
    assert big.status == 413
    # a message with no sender, well encrypted: 400
    status, _ = await wc.post("<xml><MsgType>text</MsgType><Content>x</Content></xml>")
    assert status == 400
    # well signed, but encrypted for another company's app (its corp id inside): 403, not 400
    s = services.settings
    wc.crypto = WeChatCrypto(s.wecom_token, s.wecom_aes_key, "wwsomeoneelse000")
    other, _ = await wc.post(wc.message_xml("wangwei", "text", Content="帮助"))
    assert other == 403


async def test_done_when_light_in_building_3(wx: Any, client: TestClient[Any, Any], services: Services) -> None:
    """Issue 5's scenario: a resident reports a broken light in 3号楼 through /wechat; the grid
    worker of that building gets the card, takes and finishes it from WeCom; the resident hears."""
    openid = "oDone" + secrets.token_hex(4)
    assert "哪一类" in await wx.say(openid, "1")
    for answer in ("1", "3号楼2单元", "楼道灯坏了，晚上很黑", "好了", "13812345678", "否"):
        await wx.say(openid, answer)
    done = await wx.say(openid, "1")
    assert "王伟" in done
    [card] = await outbox_rows(services, "wecom", "wangwei")
    assert card.payload["msgtype"] == "textcard" and "138****5678" in card.payload["description"]
    number = card.payload["title"].split()[1].split("｜")[0]
    wc = WeCom(client, services)
    assert (await wc.say("wangwei", "接单")).startswith(f"已接单：工单 {number}")
    assert (await wc.say("wangwei", f"办结 {number} 已更换灯泡")).startswith("已办结")
    texts = [o.payload["text"] for o in await outbox_rows(services, "wechat", openid)]
    assert f"您的工单 {number} 已由网格员 王伟 接单，正在处理。" in texts
    assert f"您的工单 {number} 已办结：已更换灯泡" in texts


async def test_commands_as_workers_type_them(client: TestClient[Any, Any], services: Services) -> None:
    """A colon or a comma around the number, no space before the note, traditional characters, a
    question mark: the command is still read, and the note is the worker's words."""
    wc = WeCom(client, services)
    first = (await new_ticket(services, resident="oT1")).ticket
    second = (await new_ticket(services, resident="oT2", category="水电气暖", summary="水管漏水")).ticket
    assert (await wc.say("wangwei", f"接单：{first.number[-4:]}")).startswith(f"已接单：工单 {first.number}")
    assert (await wc.say("wangwei", f"接單 {second.number[-4:]}")).startswith(f"已接单：工单 {second.number}")
    assert (await wc.say("wangwei", f"办结{first.number[-4:]}灯已换好")).startswith(f"已办结：工单 {first.number}")
    assert (await wc.say("wangwei", f"办结 {second.number}，已修好")).startswith(f"已办结：工单 {second.number}")
    texts = [o.payload["text"] for o in await outbox_rows(services, "wechat", "oT1")]
    assert texts[-1] == f"您的工单 {first.number} 已办结：灯已换好"
    texts = [o.payload["text"] for o in await outbox_rows(services, "wechat", "oT2")]
    assert texts[-1] == f"您的工单 {second.number} 已办结：已修好"
    assert "您手上暂时没有工单" in await wc.say("wangwei", "我的工单？")  # both are resolved


def test_a_number_is_told_from_a_note_that_starts_with_digits() -> None:
    from bot.worker_commands import Command, parse

    assert parse("办结 3楼灯已换好") == Command("resolve", None, "3楼灯已换好")
    assert parse("办结 10:30修好了") == Command("resolve", None, "10:30修好了")
    assert parse("办结 1.5米管子换了") == Command("resolve", None, "1.5米管子换了")
    assert parse("办结 2 已修") == Command("resolve", "2", "已修")
    assert parse("回复0001：师傅下午到") == Command("reply", "0001", "师傅下午到")
    assert parse("已办结 0001") is None


def test_the_number_may_come_before_the_verb() -> None:
    """0002 接单 / 20261123-0002 办结 已修好: workers type the number they just read first."""
    from bot.worker_commands import Command, parse

    assert parse("0002 接单") == parse("0002接单") == Command("accept", "0002", "")
    assert parse("20261123-0002 办结 已修好") == Command("resolve", "20261123-0002", "已修好")
    assert parse("0002，办结，已清理") == Command("resolve", "0002", "已清理")
    assert parse("12345") is None and parse("3楼办结了") is None


async def _tickets_up_to(svc: Services, last: int, mine: dict[int, str]) -> dict[int, str]:
    """Tickets 0001..last of today: those in `mine` in a building of 王伟's grid (G1: 1-3), the
    rest spread over other grids (李娜 takes building 5 first, 孙丽 holds 8-12); number by seq."""
    others = ["5", "8", "9", "10", "11", "12", "4", "6", "7", "8"]
    numbers: dict[int, str] = {}
    for seq in range(1, last + 1):
        building = mine.get(seq) or others.pop(0)
        t = (await new_ticket(svc, resident=f"oS{seq}", building=building, category=KINDS[seq - 1])).ticket
        numbers[seq] = t.number
    return numbers


async def test_a_short_number_before_a_mark_or_hao_is_never_dropped(
    client: TestClient[Any, Any], services: Services
) -> None:
    """办结 7，已修好 / 接单 7号 / 办结 2号 已修好 name tickets 7 and 2 (someone else's): refused, and
    王伟's only open ticket is left alone; 接单 2 is 0002 (李娜's), never his own 0012."""
    wc = WeCom(client, services)
    numbers = await _tickets_up_to(services, 12, {1: "3", 12: "2"})
    assert [(await ticket(services, numbers[n])).assignee for n in (1, 2, 7, 12)] == ["wangwei", "lina", "sunli", "wangwei"]
    # Each refusal lists his own tickets: the number meant may be a slip (7 for 1).
    not_yours = "工单 {} 不是派给您的，您不能处理。如需协助请联系服务中心。\n您手上可以{}的工单：0001（楼道灯坏了）、0012（楼道灯坏了）。"
    assert await wc.say("wangwei", "办结 7，已修好") == not_yours.format(numbers[7], "办结")
    assert await wc.say("wangwei", "接单 7号") == not_yours.format(numbers[7], "接单")
    assert await wc.say("wangwei", "办结 2号 已修好") == not_yours.format(numbers[2], "办结")
    assert await wc.say("wangwei", "接单 2") == not_yours.format(numbers[2], "接单")
    assert "找不到工单 99" in await wc.say("wangwei", "办结 99，已修好")
    for n in (1, 2, 7, 12):
        assert (await ticket(services, numbers[n])).status == "dispatched"
    assert await outbox_rows(services, "wechat", "oS1") == []  # nothing told to 0001's resident
    assert [a[1] for a in await _audit(services) if a[0] == "wangwei"] == ["wecom.resolve.refused"] + [
        "wecom.accept.refused", "wecom.resolve.refused", "wecom.accept.refused"]
    # his own, named with a mark after the number
    assert (await wc.say("wangwei", "接单 12。")).startswith(f"已接单：工单 {numbers[12]}")
    assert (await wc.say("wangwei", "接单 1，马上去")).startswith(f"已接单：工单 {numbers[1]}")
    assert (await wc.say("wangwei", "办结 1号 已修好")).startswith(f"已办结：工单 {numbers[1]}")
    [*_, told] = await outbox_rows(services, "wechat", "oS1")
    assert told.payload["text"] == f"您的工单 {numbers[1]} 已办结：已修好"


async def test_two_open_tickets_named_with_a_mark(client: TestClient[Any, Any], services: Services) -> None:
    wc = WeCom(client, services)
    a = (await new_ticket(services, resident="oA", category="照明")).ticket
    b = (await new_ticket(services, resident="oB", category="水电气暖")).ticket
    assert (await wc.say("wangwei", "接单 1，马上去")).startswith(f"已接单：工单 {a.number}")
    assert (await wc.say("wangwei", "接单 2。")).startswith(f"已接单：工单 {b.number}")
    assert (await wc.say("wangwei", "办结 2！已修好")).startswith(f"已办结：工单 {b.number}")
    assert [o.payload["text"] for o in await outbox_rows(services, "wechat", "oB")][-1].endswith("已办结：已修好")


def test_short_numbers_with_marks_are_read() -> None:
    from bot.worker_commands import Command, parse

    assert parse("办结 7，已修好") == Command("resolve", "7", "已修好")
    assert parse("接单 7号") == parse("接单 7。") == parse("接单 7!") == parse("7号 接单") == Command("accept", "7", "")
    assert parse("办结 2号 已修好") == Command("resolve", "2", "已修好")
    assert parse("办结 3号楼灯已换") == Command("resolve", None, "3号楼灯已换")  # a building, not a number
    assert parse("办结 2号已修好") == Command("resolve", "2", "已修好")  # before: the note "2号已修好"
    assert parse("办结 2号门口的灯换了") == Command("resolve", None, "2号门口的灯换了")  # a place


async def test_the_owner_still_works_an_escalated_ticket(
    client: TestClient[Any, Any], services: Services, clock: Any
) -> None:
    """After an accept breach the ticket still names 王伟: 我的工单 lists it (已上报, 接单超时), and he may
    still take it and finish it; staff are told, the resident hears."""
    from bot import schedule

    wc = WeCom(client, services)
    t = (await new_ticket(services, resident="oE1")).ticket
    clock.advance(minutes=31)
    await schedule.run_due(services)
    assert (await ticket(services, t.number)).status == "escalated"
    mine = await wc.say("wangwei", "我的工单")
    assert t.number in mine and "已上报（接单超时）" in mine
    assert (await wc.say("wangwei", "接单")).startswith(f"已接单：工单 {t.number}")
    row = await ticket(services, t.number)
    assert (row.status, row.assignee) == ("accepted", "wangwei")
    posts = [p.payload["content"] for p in await outbox_rows(services, "group")]
    assert posts[-1] == f"工单 {t.number} 已上报，承办人 王伟 现已接单。"
    assert (await wc.say("wangwei", "办结 1 已修好，晚了一点")).startswith(f"已办结：工单 {t.number}")
    assert [o.payload["text"] for o in await outbox_rows(services, "wechat", "oE1")][-1] == (
        f"您的工单 {t.number} 已办结：已修好，晚了一点")
    assert await actions(services, t.number) == [
        "created", "assign", "overdue", "escalate", "staff_alerted", "accept", "resolve"]


async def test_after_a_whistle_or_a_resolve_breach_the_owner_may_finish(
    client: TestClient[Any, Any], services: Services, clock: Any
) -> None:
    from bot import schedule

    wc = WeCom(client, services)
    t = (await new_ticket(services, resident="oE2")).ticket
    await wc.say("wangwei", "接单")
    assert (await wc.say("wangwei", "吹哨 1 需要供电公司处理")).startswith("已吹哨")
    assert (await wc.say("wangwei", "吹哨 1 供电公司还没来")).startswith("已吹哨")  # told again
    posts = [p.payload["content"] for p in await outbox_rows(services, "group")]
    assert len(posts) == 2 and "供电公司还没来" in posts[-1]
    assert "已上报" in await wc.say("wangwei", "我的工单")
    assert (await wc.say("wangwei", "办结 1 已修好")).startswith(f"已办结：工单 {t.number}")
    assert (await ticket(services, t.number)).status == "resolved"

    urgent = (await new_ticket(services, resident="oE3", category="水电气暖", urgency="urgent")).ticket
    assert (await wc.say("wangwei", "接单")).startswith(f"已接单：工单 {urgent.number}")
    clock.advance(hours=2, minutes=1)
    await schedule.run_due(services)
    assert (await ticket(services, urgent.number)).status == "escalated"
    assert (await wc.say("wangwei", "办结 2 已修好，晚了一点")).startswith(f"已办结：工单 {urgent.number}")
    row = await ticket(services, urgent.number)
    assert (row.status, row.overdue) == ("resolved", True)


async def test_a_reopened_ticket_may_be_returned(client: TestClient[Any, Any], services: Services) -> None:
    from bot import dispatch, tickets

    wc = WeCom(client, services)
    t = (await new_ticket(services, resident="oR3")).ticket
    await wc.say("wangwei", "接单")
    await wc.say("wangwei", "办结 已修好")
    async with services.sessions() as session, session.begin():
        row = await tickets.get_by_number(session, t.number, for_update=True)
        assert row is not None
        await dispatch.apply_action(services, session, row, "reopen", "resident", note="不满意")
    assert await wc.say("wangwei", "退回 1 这是供电公司的线路问题") == f"已退回：工单 {t.number}，服务中心会重新派单。"
    row = await ticket(services, t.number)
    assert (row.status, row.assignee) == ("open", None)
    [post] = await outbox_rows(services, "group")
    assert "这是供电公司的线路问题" in post.payload["content"]


async def test_the_owner_asks_for_the_residents_phone(client: TestClient[Any, Any], services: Services) -> None:
    """The card shows the phone masked (a push); a grid worker who has to call the resident asks
    电话 N and gets it whole in the reply, audited without the number. Others are refused."""
    wc = WeCom(client, services)
    t = (await new_ticket(services, resident="oPhone1")).ticket
    [card] = [r for r in await outbox_rows(services, "wecom", "wangwei") if r.payload.get("msgtype") == "textcard"]
    assert "138****5678" in card.payload["description"] and "电话 0001" in card.payload["description"]
    reply = await wc.say("wangwei", "电话 1")
    assert f"工单 {t.number} 居民电话：13812345678" in reply
    assert "13812345678" in await wc.say("wangwei", "电话")  # the one ticket in hand
    assert "不是派给您的" in await wc.say("sunli", "电话 0001")
    audit = await _audit(services)
    assert ("wangwei", "wecom.phone", t.number) in audit and ("sunli", "wecom.phone.refused", "0001") in audit
    async with services.sessions() as session:
        details = [a.detail for a in (await session.execute(select(AuditLog))).scalars()]
    assert "13812345678" not in str(details)
    await wc.say("wangwei", "办结 1 灯已换好")
    assert "已不在您手上" in await wc.say("wangwei", "电话 1")  # finished: no longer


async def test_the_log_says_each_commands_verb_and_outcome(
    client: TestClient[Any, Any], services: Services, caplog: Any,
) -> None:
    """`"wecom text", "user": "wuhao", "replied": true` was the same for a refused command and a
    carried-out one: each line now names the verb and what became of it."""
    import logging

    caplog.set_level(logging.INFO, logger="bot.channels.wecom")
    wc = WeCom(client, services)
    t = (await new_ticket(services, building="3")).ticket  # wangwei's
    other = (await new_ticket(services, building="9", resident="oR2")).ticket  # sunli's
    said = [
        ("sunli", "接单 0001"),  # someone else's ticket
        ("wangwei", "办结 0001"),  # no note
        ("wangwei", "接单 0001"),
        ("wangwei", f"接单 0001 {other.number[-4:]}"),  # one of two is someone else's: nothing done
        ("wangwei", "今天天气不错"),
        ("stranger", "接单 1"),
        ("sunli", f"接单 {other.number[-4:]}"),
        ("wangwei", "我的工单"),
    ]
    for user, text in said:
        await wc.say(user, text)
    msg_id = secrets.randbits(62)
    await wc.say("wangwei", f"办结 {t.number[-4:]} 灯已换好", msg_id=msg_id)
    await wc.say("wangwei", f"办结 {t.number[-4:]} 灯已换好", msg_id=msg_id)  # WeCom's retry
    lines = [r.fields for r in caplog.records if r.getMessage() == "wecom text"]  # type: ignore[attr-defined]
    assert [(f["user"], f["verb"], f["outcome"]) for f in lines] == [
        ("sunli", "accept", "refused"), ("wangwei", "resolve", "refused"), ("wangwei", "accept", "done"),
        ("wangwei", "accept", "refused"), ("wangwei", "-", "unknown"), ("stranger", "accept", "refused"),
        ("sunli", "accept", "done"), ("wangwei", "mine", "done"), ("wangwei", "resolve", "done"),
        ("wangwei", "-", "repeat"),
    ]
    assert all(f["replied"] for f in lines)


async def test_the_log_names_staffs_close_and_outage_commands(
    client: TestClient[Any, Any], services: Services, caplog: Any,
) -> None:
    """Staff's 关闭 and the outage commands were logged `verb=-` (`unknown`, as if no command was
    read): the line now names each and what became of it."""
    import logging

    caplog.set_level(logging.INFO, logger="bot.channels.wecom")
    await load_demo_roster(services)
    wc = WeCom(client, services)
    await new_ticket(services, building="3")
    said = [
        ("liustaff", "关闭 0001"),  # asks the reason
        ("liustaff", "关闭 0001 重复反映"),
        ("wangwei", "关闭 0001 重复"),  # not staff
        ("liustaff", "停水 3 4 预计15:00 管道抢修"),
        ("liustaff", "停水"),
        ("wangwei", "停水 5 预计15:00"),
        ("liustaff", "恢复 停水 3 4"),
    ]
    for user, text in said:
        await wc.say(user, text)
    lines = [r.fields for r in caplog.records if r.getMessage() == "wecom text"]  # type: ignore[attr-defined]
    assert [(f["user"], f["verb"], f["outcome"]) for f in lines] == [
        ("liustaff", "close", "answered"), ("liustaff", "close", "done"), ("wangwei", "close", "refused"),
        ("liustaff", "outage_announce", "done"), ("liustaff", "outage_show", "done"),
        ("wangwei", "outage_announce", "refused"), ("liustaff", "outage_end", "done"),
    ]


async def test_the_log_says_answered_for_words_that_carry_nothing_out(
    client: TestClient[Any, Any], services: Services, caplog: Any,
) -> None:
    """明天去, 下午去不了 换个人吧, 好的, 在吗 and 办结 2 材料到了再修 are answered with what to send and
    change nothing by design: their log line said "refused", as for someone else's ticket, though the
    reply was right. They say "answered" now; "refused" stays for a number that names none of the
    sender's tickets (9 明天去, 0002 去不了 from a colleague)."""
    import logging

    caplog.set_level(logging.INFO, logger="bot.channels.wecom")
    wc = WeCom(client, services)
    await new_ticket(services, building="3")  # wangwei's 0001
    drain = (await new_ticket(services, building="3", resident="oR2", category="环境卫生", summary="下水道堵了")).ticket
    said = [
        ("wangwei", "明天去"), ("wangwei", "1 明天下午去"), ("wangwei", "下午去不了 换个人吧"),
        ("wangwei", "这个单子我处理不了"), ("wangwei", "好的"), ("wangwei", "在吗"),
        ("wangwei", "办结 2 材料到了再修"), ("wangwei", "9 明天去"), ("sunli", "0002 去不了 换个人吧"),
        ("wangwei", "接单 1"),
    ]
    for user, text in said:
        await wc.say(user, text)
    lines = [r.fields for r in caplog.records if r.getMessage() == "wecom text"]  # type: ignore[attr-defined]
    assert [(f["user"], f["verb"], f["outcome"]) for f in lines] == [
        ("wangwei", "later", "answered"), ("wangwei", "later", "answered"), ("wangwei", "hand_over", "answered"),
        ("wangwei", "hand_over", "answered"), ("wangwei", "noted", "answered"), ("wangwei", "hello", "answered"),
        ("wangwei", "later", "answered"), ("wangwei", "later", "refused"), ("sunli", "hand_over", "refused"),
        ("wangwei", "accept", "done"),
    ]
    assert (await ticket(services, drain.number)).status == "dispatched"  # 材料到了再修 finished nothing


async def test_a_ticket_gone_from_the_worker_is_answered_with_what_became_of_it(
    client: TestClient[Any, Any], services: Services, wx: Any
) -> None:
    """A busy day's answers to a ticket no longer in the worker's hands: one reassigned is 已改派他人
    (it said 不是派给您的, as if never theirs), one they handed back is 已退回 waiting for a new owner,
    one the resident withdrew is 已撤销 (it said 当前状态是“已撤销”，不能办结); a coordinator's 办结 of a
    volunteer signup says it was approved (it offered to attach a site photo). Each is refused and
    audited, nothing changes."""
    from bot import dispatch, tickets

    async def staff(number: str, action: str, **kw: Any) -> None:
        async with services.sessions() as session, session.begin():
            t = await tickets.get_by_number(session, number, for_update=True)
            assert t is not None
            await dispatch.apply_action(services, session, t, action, "liustaff", **kw)

    wc = WeCom(client, services)
    moved = (await new_ticket(services, resident="oG1", building="1", category="照明")).ticket.number
    back = (await new_ticket(services, resident="oG2", building="2", category="水电气暖")).ticket.number
    gone = (await new_ticket(services, resident="oG3", building="3", category="噪音")).ticket.number
    neighbour = await new_ticket(services, resident="oG5", building="1", category="照明")
    assert neighbour.linked_to is not None and neighbour.linked_to.number == moved
    await staff(moved, "assign", assignee="lina")
    assert await wc.say("wangwei", f"办结 {moved[-4:]}") == f"工单 {moved} 已改派他人，您无需再处理。"
    # … a result said with it is passed on to the new owner (tests/test_worker_day.py)
    assert await wc.say("wangwei", f"办结 {moved[-4:]} 已修好") == \
        f"工单 {moved} 已改派给 李娜，这张单不用您再办结。您写的办理情况已转告 李娜，并记在工单上。"
    linked = neighbour.ticket.number  # went with the job
    assert await wc.say("wangwei", f"接单 {linked[-4:]}") == f"工单 {linked} 已改派他人，您无需再处理。"
    assert (await wc.say("lina", "接单 1")).startswith(f"已接单：工单 {moved}")
    assert (await wc.say("wangwei", "退回 2 不在我的网格")).startswith(f"已退回：工单 {back}")
    assert "已退回服务中心，等待重新派单" in await wc.say("wangwei", f"接单 {back[-4:]}")
    assert "不是派给您的" in await wc.say("lina", f"接单 {back[-4:]}")  # never hers
    assert "撤销" in await wx.say("oG3", "撤销工单")
    assert "已撤销" in await wx.say("oG3", "是")
    assert (await ticket(services, gone)).status == "cancelled"
    assert await wc.say("wangwei", f"办结 {gone[-4:]} 已处理") == f"工单 {gone} 已撤销，您无需再处理。"
    assert await wc.say("wangwei", f"接单 {gone[-4:]}") == f"工单 {gone} 已撤销，您无需再处理。"
    assert [(await ticket(services, n)).status for n in (moved, back, gone)] == ["accepted", "open", "cancelled"]
    refused = [(a, t) for _, a, t in await _audit(services) if a.endswith(".refused")]
    assert ("wecom.resolve.refused", moved[-4:]) in refused and ("wecom.accept.refused", back[-4:]) in refused
    signup = (await new_ticket(services, kind="volunteer_signup", resident="oG4", building="5", category=None,
                               summary="志愿者报名", fields={"name": "张三", "phone": "13812345678"})).ticket.number
    assert await wc.say("zhouvol", "辦結 欢迎加入") == f"已通过：工单 {signup} 的志愿者登记已通过审核，已通知居民。"
    status, reply = await wc.post(wc.message_xml("zhouvol", "image", PicUrl="http://img.example/1.jpg", MediaId="m1"))
    assert status == 200 and "先发送" in reply  # no photo is attached to a signup
