"""Answering residents from WeCom (`回复 N 内容`): two staff answering the same resident at once, a
ticket's owner (the mediator) asking its resident, and the resident's answer coming back through
/wechat — on both backends."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient
from sqlalchemy import select

from bot.clock import FakeClock
from bot.services import Services
from storage.models import AuditLog
from tests.conftest import WeChat
from tests.flow_helpers import tickets_of
from tests.wecom_driver import WeCom, new_ticket, outbox_rows


async def _answers(svc: Services, openid: str) -> list[str]:
    """The answers from staff or a ticket's owner queued for the resident, oldest first."""
    return [o.payload["text"] for o in await outbox_rows(svc, "wechat", openid)
            if "】关于您的工单" in o.payload["text"]]


async def test_a_second_staff_answer_minutes_after_a_colleagues_is_held_back_showing_it(
    client: TestClient[Any, Any], services: Services, clock: FakeClock,
) -> None:
    wx, wc = WeChat(client, services.settings), WeCom(client, services)
    await wx.say("oH", "转人工")
    await wx.say("oH", "我家暖气不热，找物业没人管")
    [handoff] = await tickets_of(services, "oH")
    clock.advance(minutes=3)
    assert await wc.say("liustaff", "回复 1 您好，请问是几号楼？") == f"已回复工单 {handoff.number} 的居民，居民在微信对话里就能看到。"
    clock.advance(seconds=40)
    # the colleague saw only the group post: her answer waits until she has read 刘敏's
    held = await wc.say("admin", "回复 1 您好，我们马上联系物业")
    assert held == ("刘敏 在 10:03 已回复了这位居民：“您好，请问是几号楼？”。您的回复还没有发出；"
                    "看过同事的回复后如仍需发送，请再发一次。")
    assert await _answers(services, "oH") == [f"【社区服务中心】关于您的工单 {handoff.number}：\n您好，请问是几号楼？"]
    # sent again, it goes
    assert await wc.say("admin", "回复 1 您好，我们马上联系物业") == f"已回复工单 {handoff.number} 的居民，居民在微信对话里就能看到。"
    assert len(await _answers(services, "oH")) == 2
    # a staff member's own answers one after another are never held
    assert (await wc.say("admin", "回复 1 物业电话是 8888 6666")).startswith("已回复")
    # 刘敏 has not read 管理员's answers: hers is held once, naming the latest
    again = await wc.say("liustaff", "回复 1 请问您家是几单元？")
    assert again.startswith("管理员 在 10:03 已回复了这位居民：“物业电话是 8888 6666”。")
    assert len(await _answers(services, "oH")) == 3
    assert (await wc.say("liustaff", "回复 1 请问您家是几单元？")).startswith("已回复")
    assert len(await _answers(services, "oH")) == 4


async def _mediation(wx: WeChat, svc: Services, openid: str) -> str:
    """A noise dispute filed through /wechat: the mediation's ticket number."""
    await wx.say(openid, "楼上天天半夜吵，说过了不听，想请人调解")
    for said in ("周六上午", "13812345678", "确认"):
        await wx.say(openid, said)
    [filed] = await tickets_of(svc, openid)
    assert (filed.kind, filed.assignee) == ("mediation", "chenmediator")
    return filed.number


async def test_a_mediator_asks_the_resident_and_the_answer_comes_back_to_them(
    client: TestClient[Any, Any], services: Services, clock: FakeClock,
) -> None:
    """The mediator's question reached nobody (回复 was staff only), and a resident answering a question
    the community asked got 没太明白 and the menu: now the owner's 回复 reaches the resident and what
    they answer reaches the owner as 【居民补充】."""
    wx, wc = WeChat(client, services.settings), WeCom(client, services)
    number = await _mediation(wx, services, "oM")
    assert "已接单" in await wc.say("chenmediator", "收到")
    clock.advance(minutes=20)
    assert await wc.say("chenmediator", "回复 1 您好，请问您家是几号楼几室？楼上是哪一户？") == \
        f"已回复工单 {number} 的居民，居民在微信对话里就能看到。"
    assert (await _answers(services, "oM"))[-1] == \
        f"【调解员 陈调解】关于您的工单 {number}：\n您好，请问您家是几号楼几室？楼上是哪一户？"
    clock.advance(minutes=30)
    said = "我家3号楼2单元502，楼上602"
    assert await wx.say("oM", said) == f"已补充到工单 {number}：{said}。承办人会看到。"
    assert [o.payload.get("text") for o in await outbox_rows(services, "wecom", "chenmediator")][-1] == \
        f"【居民补充】工单 {number}：{said}"
    assert len(await tickets_of(services, "oM")) == 1
    # someone else's ticket: refused and audited, nothing sent
    assert await wc.say("wangwei", "回复 1 你好") == f"工单 {number} 不是派给您的，您不能处理。如需协助请联系服务中心。"
    assert await wc.say("wangwei", "回复全部 1 你好") == "只有服务中心工作人员可以直接回复居民。"
    assert len(await _answers(services, "oM")) == 1
    async with services.sessions() as session:
        rows = (await session.execute(select(AuditLog.actor, AuditLog.action, AuditLog.target)
                                      .where(AuditLog.action.like("%reply%")))).all()
    assert ("chenmediator", "ticket.reply", number) in rows and ("wangwei", "wecom.reply.refused", "1") in rows
    assert (await wc.say("chenmediator", "调解成功，双方约定晚十点后不拖椅子")).startswith(f"已办结：工单 {number}")
    assert await wc.say("chenmediator", "回复 1 谢谢配合") == \
        f"工单 {number} 已不在您手上办理，不能回复居民。如需联系居民请找服务中心。"
    assert len(await _answers(services, "oM")) == 1


async def test_an_answer_to_staff_on_a_repair_reaches_its_worker_and_only_while_fresh(
    client: TestClient[Any, Any], services: Services, clock: FakeClock,
) -> None:
    """Staff asking from WeCom on a grid worker's repair: the resident's answer goes to the ticket and
    its worker; two hours after the last answer, a message nothing reads is the menu again."""
    wx, wc = WeChat(client, services.settings), WeCom(client, services)
    report = (await new_ticket(services, resident="oR", summary="3号楼楼道灯坏了")).ticket
    assert report.assignee == "wangwei"
    assert (await wc.say("liustaff", f"回复 {report.number[-4:]} 请问是几楼的灯？")).startswith("已回复")
    assert await wx.say("oR", "五楼和六楼之间") == f"已补充到工单 {report.number}：五楼和六楼之间。承办人会看到。"
    assert [o.payload.get("text") for o in await outbox_rows(services, "wecom", "wangwei")][-1] == \
        f"【居民补充】工单 {report.number}：五楼和六楼之间"
    clock.advance(hours=2, minutes=1)
    assert "我可以帮您" in await wx.say("oR", "五楼和六楼之间")


async def test_words_for_the_resident_typed_without_回复_are_shown_as_the_回复_to_send(
    client: TestClient[Any, Any], services: Services,
) -> None:
    """周六上午十点在社区调解室 typed as it is got 没有看懂这条指令 and the command list, which never
    said how to tell the resident: the 回复 that sends it is now given, with the ticket's number —
    said as not sent yet, not as 没有看懂 followed by the whole command list (the sentence was read)."""
    wx, wc = WeChat(client, services.settings), WeCom(client, services)
    number = await _mediation(wx, services, "oM")
    said = "周六上午十点在社区调解室，双方都来"
    reply = await wc.say("chenmediator", said)
    assert reply == (f"这句话还没有发给居民。\n如果这句话是要告诉居民的，请回复：回复 0001 {said}\n"
                     "其他指令请回复“帮助”查看。")
    assert await _answers(services, "oM") == []  # nothing sent until the 回复 comes
    assert await wc.say("chenmediator", f"回复 0001 {said}") == f"已回复工单 {number} 的居民，居民在微信对话里就能看到。"
    assert await _answers(services, "oM") == [f"【调解员 陈调解】关于您的工单 {number}：\n{said}"]
    # several in hand: the first's number, to change; nothing in hand, or no sentence: as before
    await _mediation(wx, services, "oM2")
    assert "请回复：回复 0001 周六上午十点在社区调解室（换成要发的那张工单的号）" in \
        await wc.say("chenmediator", "周六上午十点在社区调解室")
    assert (await wc.say("chenmediator", "abc 123")).startswith("没有看懂这条指令。\n工单指令")
    assert (await wc.say("wangwei", "周六上午十点在社区调解室")).startswith("没有看懂这条指令。\n工单指令")


async def test_a_staff_member_who_asked_from_wecom_hears_the_residents_answer_there(
    client: TestClient[Any, Any], services: Services, clock: FakeClock,
) -> None:
    """刘敏 asked a waiting resident from WeCom (回复 1 方便留个电话吗？) and the answer stayed in the
    console: the staff group, told once in ten minutes, heard nothing of it, and she never knew it
    came. Now what the resident writes after a WeCom answer is pushed to whoever sent it (phones
    masked, as every push); after an answer from the console nothing is pushed."""
    wx, wc = WeChat(client, services.settings), WeCom(client, services)
    await wx.say("oAsk", "转人工")
    await wx.say("oAsk", "楼上天天半夜拖椅子，说了也不听")
    [handoff] = await tickets_of(services, "oAsk")
    clock.advance(minutes=2)
    assert (await wc.say("liustaff", "回复 1 您好，可以帮您申请调解，方便留个电话和门牌号吗？")).startswith("已回复")
    clock.advance(minutes=1)
    assert await wx.say("oAsk", "13900001111，我住5号楼302") == "收到，已转给工作人员。"
    [pushed] = [o.payload["text"] for o in await outbox_rows(services, "wecom", "liustaff")]
    assert pushed == (f"【居民回复】工单 {handoff.number}（转人工）：139****1111，我住5号楼302\n"
                      "继续回复居民请发“回复 0001 内容”，处理完请发“办结 0001 说明”。")
    # answered from the console by a colleague: the next words are not pushed to 刘敏
    from bot import staff_actions

    await staff_actions.staff_reply(services, handoff.number, "好的，已帮您转调解员", "admin")
    await wx.say("oAsk", "谢谢，什么时候能联系我")
    assert len(await outbox_rows(services, "wecom", "liustaff")) == 1
    assert await outbox_rows(services, "wecom", "admin") == []
