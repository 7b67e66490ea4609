"""The complaint flow driven through /wechat on both backends, plaintext and safe mode."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from bot import dialog
from bot.app import create_app
from bot.clock import FakeClock
from bot.flows.base import Context
from bot.flows.complaint import Complaint
from bot.inbound import Inbound
from bot.services import Services, open_services
from bot.sim.wechat_client import text_xml
from storage.models import Reminder, Resident
from tests.conftest import WeChat
from tests.flow_helpers import LOCATION, PHOTO, dialog_of, messages_of, resident, set_dialog, tickets_of

# The menu path through every step, and a marker of each step's question.
ANSWERS = ["1", "9栋1单元", "楼道灯不亮三天了", "好了", "13812345678", "否"]
MARKERS = ["哪一类", "问题在哪里", "描述一下", "拍张照片", "联系电话", "绑定", "请核对"]


def oid() -> str:
    return "o" + uuid.uuid4().hex[:20]


async def to_step(wx: WeChat, openid: str, k: int) -> str:
    """Open the complaint from the menu and answer the first k questions; returns the last reply."""
    reply = await wx.say(openid, "1")
    for answer in ANSWERS[:k]:
        reply = await wx.say(openid, answer)
    assert MARKERS[k] in reply, reply
    return reply


async def test_complaint_start_to_finish_with_photo_and_phone_binding(wx: WeChat, services: Services) -> None:
    openid = oid()
    assert "哪一类" in await wx.say(openid, "1")
    assert "问题在哪里" in await wx.say(openid, "1")
    assert "描述一下" in await wx.say(openid, "9栋1单元502")
    assert "拍张照片" in await wx.say(openid, "楼道灯不亮三天了，晚上很黑")
    assert "第1张" in await wx.send("image", openid, **PHOTO)
    assert "联系电话" in await wx.say(openid, "好了")
    assert "绑定" in await wx.say(openid, "138 1234 5678")
    summary = await wx.say(openid, "是")
    assert "请核对" in summary and "9栋1单元502" in summary and "照明" in summary and "1张" in summary
    done = await wx.say(openid, "1")
    assert "20261123-0001" in done and "孙丽" in done  # building 9 is 孙丽's grid
    [ticket] = await tickets_of(services, openid)
    assert ticket.kind == "complaint" and ticket.status == "dispatched" and ticket.assignee == "sunli"
    assert ticket.building == "9" and ticket.category == "照明" and ticket.urgency == "normal"
    assert ticket.fields["place"] == "9栋1单元502" and ticket.fields["room"] == "502"
    assert ticket.fields["phone"] == "13812345678" and len(ticket.fields["photos"]) == 1
    person = await resident(services, openid)
    assert person is not None and person.phone == "13812345678"
    # The conversation is tied to the ticket, and the flow is over: the next message starts afresh.
    linked = [m for m in await messages_of(services, openid) if m.ticket_id == ticket.id]
    assert len(linked) >= 16
    assert "哪一类" in await wx.say(openid, "1")


async def test_bound_phone_is_not_asked_again(wx: WeChat, services: Services) -> None:
    openid = oid()
    await to_step(wx, openid, 5)
    await wx.say(openid, "13812345678")
    await wx.say(openid, "是")
    await wx.say(openid, "1")
    await wx.say(openid, "1")
    await wx.say(openid, ANSWERS[0])
    # the same kind at the same place, while the first is open: 2, a new report after all
    assert "已经反映过这个问题" in await wx.say(openid, ANSWERS[1])
    assert "描述一下" in await wx.say(openid, "2")
    await wx.say(openid, "楼道的插座也坏了")
    reply = await wx.say(openid, "好了")  # photos → straight to the summary: phone is bound
    summary = reply
    assert "请核对" in summary and "13812345678" in summary and "绑定" not in summary, reply
    assert "20261123-0002" in await wx.say(openid, "确认")


async def test_location_and_photo_feed_the_steps(wx: WeChat, services: Services) -> None:
    openid = oid()
    await wx.say(openid, "1")
    kept = await wx.send("image", openid, **PHOTO)  # a photo while the category is asked
    assert "记下" in kept and "哪一类" in kept
    await wx.say(openid, "垃圾")
    assert "描述一下" in await wx.send("location", openid, **LOCATION)
    await wx.say(openid, "垃圾桶满了没人清理")
    assert "第2张" in await wx.send("image", openid, **PHOTO)
    await wx.say(openid, "好了")
    await wx.say(openid, "13812345678")
    summary = await wx.say(openid, "否")
    assert "望湖小区南门停车场" in summary and "环境卫生" in summary and "2张" in summary
    await wx.say(openid, "1")
    [ticket] = await tickets_of(services, openid)
    assert ticket.fields["location"] == {"latitude": 30.2741, "longitude": 120.1551}
    # no building, but the location's label names 南门停车场, which the third grid lists (places)
    assert (ticket.status, ticket.grid, ticket.assignee) == ("dispatched", "G3", "sunli")


async def test_photo_first_starts_a_complaint(wx: WeChat, services: Services) -> None:
    openid = oid()
    reply = await wx.send("image", openid, **PHOTO)
    assert "哪一类" in reply
    for answer in ["1", "3栋", "门口路灯坏了"]:
        await wx.say(openid, answer)
    assert "第2张" in await wx.send("image", openid, **PHOTO)


async def test_voice_answers_and_unrecognised_voice(wx: WeChat) -> None:
    openid = oid()
    await wx.say(openid, "1")
    assert "问题在哪里" in await wx.send("voice", openid, MediaId="v1", Format="amr", Recognition="路灯")
    assert "没有听清" in await wx.send("voice", openid, MediaId="v2", Format="amr", Recognition="")
    assert "描述一下" in await wx.say(openid, "3栋")


@pytest.mark.parametrize("command", ["取消", "返回", "重新开始", "人工", "帮助"])
async def test_every_command_at_every_step(wx: WeChat, services: Services, command: str) -> None:
    for k in range(len(MARKERS)):
        openid = oid()
        await to_step(wx, openid, k)
        reply = await wx.say(openid, command)
        if command == "取消":
            assert "已取消" in reply
            assert "我可以帮您" in await wx.say(openid, "嗯嗯")  # no flow left: the menu
            assert await tickets_of(services, openid) == []
        elif command == "返回":
            if k == 0:
                assert "第一个问题" in reply and MARKERS[0] in reply
            else:
                assert MARKERS[k - 1] in reply, (k, reply)
                assert MARKERS[k] in await wx.say(openid, ANSWERS[k - 1])
        elif command == "重新开始":
            assert "重新开始" in reply and MARKERS[0] in reply
        elif command == "人工":
            [ticket] = await tickets_of(services, openid)
            assert ticket.kind == "handoff" and ticket.status == "escalated" and ticket.number in reply
            said = [line["text"] for line in ticket.fields["transcript"] if line["direction"] == "in"]
            assert said == ["1", *ANSWERS[:k], "人工"]
            assert ticket.fields["flow"] == "complaint"
        else:
            assert "返回" in reply and MARKERS[k] in reply


async def test_edits_from_the_summary(wx: WeChat, services: Services) -> None:
    openid = oid()
    await to_step(wx, openid, 6)
    summary = await wx.say(openid, "地址错了，是10栋2单元")
    assert "请核对" in summary and "10栋2单元" in summary and "9栋1单元" not in summary
    assert "联系电话" in await wx.say(openid, "电话不对")
    summary = await wx.say(openid, "13900001111")
    assert "13900001111" in summary and "请核对" in summary
    menu = await wx.say(openid, "2")
    assert "修改哪一项" in menu
    assert "描述一下" in await wx.say(openid, "3")
    summary = await wx.say(openid, "路灯一闪一闪的")
    assert "路灯一闪一闪的" in summary
    await wx.say(openid, "1")
    [ticket] = await tickets_of(services, openid)
    assert ticket.building == "10" and ticket.fields["phone"] == "13900001111"


async def test_three_invalid_answers_offer_a_person(wx: WeChat, services: Services) -> None:
    openid = oid()
    await wx.say(openid, "1")
    first = await wx.say(openid, "啊")
    assert "数字" in first and "人工" not in first
    await wx.say(openid, "15")
    third = await wx.say(openid, "嗯")
    assert "回复“人工”" in third and "哪一类" in third
    await wx.say(openid, "1")
    await wx.say(openid, "3栋")
    await wx.say(openid, "楼下路灯不亮")
    await wx.say(openid, "好了")
    assert "11位手机号" in await wx.say(openid, "12345")
    assert "人工" in (await wx.say(openid, "转人工"))
    [ticket] = await tickets_of(services, openid)
    assert ticket.kind == "handoff"


async def test_idle_nudge_then_quiet_expiry(wx: WeChat, services: Services, clock: FakeClock) -> None:
    from bot import reminders
    from bot.flows.state import nudge_check
    from tests.flow_helpers import reminders_of

    openid = oid()
    await to_step(wx, openid, 2)
    nudges = [r for r in await reminders_of(services, "flow_nudge") if r.target == openid]
    last = nudges[-1]
    assert last.cause_type == "flow" and last.payload["channel"] == "wechat"
    assert "还没有办完" in last.payload["message"]["text"]
    assert (last.due_at - clock.now()).total_seconds() == services.settings.flow_idle_nudge_s
    check = nudge_check(services)
    async with services.sessions() as session:  # the scheduler's session, as it delivers reminders
        assert await check(session, last) is True
        assert len(nudges) == 1  # one pending nudge per resident, moved at each step
        stale = Reminder(kind="flow_nudge", target=openid, cause_type="flow", cause_id=last.cause_id - 1,
                         due_at=last.due_at, payload=last.payload, created_at=last.created_at)
        assert not await check(session, stale)  # an older version is stale
        assert reminders.CAUSE_CHECKS["flow"] is not None
        clock.advance(services.settings.flow_expire_s + 1)
        assert await check(session, last) is False
    reply = await wx.say(openid, "路灯不亮")  # not read as the description: the flow is gone
    assert "描述一下" not in reply
    assert await tickets_of(services, openid) == []


async def test_restart_resumes_in_another_process(wx: WeChat, services: Services, clock: FakeClock) -> None:
    openid = oid()
    await to_step(wx, openid, 3)
    other = open_services(services.settings, clock=clock)
    other.store.with_prefix(services.store.prefix)
    try:
        async with TestClient(TestServer(create_app(other.settings, services=other))) as client2:
            wx2 = WeChat(client2, other.settings, encrypt=wx.encrypt)
            assert "联系电话" in await wx2.say(openid, "好了")
            assert "绑定" in await wx2.say(openid, "13812345678")
            assert "请核对" in await wx2.say(openid, "否")
            assert "20261123-0001" in await wx2.say(openid, "1")
    finally:
        await other.close()
    assert len(await tickets_of(services, openid)) == 1


async def test_a_dialog_kept_in_the_state_store_by_an_earlier_version_is_taken_over_at_start(
    wx: WeChat, services: Services, clock: FakeClock
) -> None:
    """Before migration 0005 the dialog lived in the state store: a process started on the new
    version moves it into the resident's row, and the resident carries on where they were."""
    from bot.flows import state as flow_state

    openid, other_id = oid(), oid()
    await to_step(wx, openid, 3)
    await to_step(wx, other_id, 2)
    held = await dialog_of(services, openid)
    assert held is not None
    old_key = services.store.key("dialog", openid)
    await services.store.set(old_key, held.to_json(), ttl=services.settings.flow_expire_s)
    await set_dialog(services, openid, None)  # as the earlier version left the row: no dialog
    mine = await dialog_of(services, other_id)
    await services.store.set(services.store.key("dialog", other_id), {**held.to_json(), "step": "complaint:photos"})
    other = open_services(services.settings, clock=clock)
    other.store.with_prefix(services.store.prefix)
    try:
        async with TestClient(TestServer(create_app(other.settings, services=other))) as client2:
            assert await services.store.get(old_key) is None
            assert await dialog_of(services, other_id) == mine  # a row's own dialog is kept
            wx2 = WeChat(client2, other.settings, encrypt=wx.encrypt)
            assert "联系电话" in await wx2.say(openid, "好了")
    finally:
        await other.close()


async def test_the_dialog_survives_the_state_store_losing_everything(wx: WeChat, services: Services) -> None:
    """Redis restarted empty (or the embedded store's file lost): the dialog is in the database,
    so the resident carries on at the same step."""
    openid = oid()
    await to_step(wx, openid, 3)
    lost = await services.store.keys(services.store.key(""))  # this test's namespace, all of it
    assert lost
    for key in lost:
        await services.store.delete(key)
    assert "联系电话" in await wx.say(openid, "好了")


async def test_retried_confirmation_creates_one_ticket(wx: WeChat, services: Services) -> None:
    openid = oid()
    await to_step(wx, openid, 6)
    xml = text_xml(openid, "1", msg_id=987654321)
    first, second = await asyncio.gather(wx.post_xml(xml), wx.post_xml(xml))
    third = await wx.post_xml(xml)
    replies = {str(r[1]["Content"]) for r in (first, second, third) if r[1]}
    assert len(replies) == 1 and "20261123-0001" in replies.pop()
    assert len(await tickets_of(services, openid)) == 1


async def test_two_messages_at_once_are_handled_one_after_the_other(
    wx: WeChat, services: Services, clock: FakeClock, backend: str
) -> None:
    """Two posts at once (on two app instances sharing PostgreSQL + Redis; one on the embedded store)."""
    openid = oid()
    await to_step(wx, openid, 1)
    second = wx
    other: Services | None = None
    client2: TestClient[Any, Any] | None = None
    if backend == "pg_redis":
        other = open_services(services.settings, clock=clock)
        other.store.with_prefix(services.store.prefix)
        client2 = TestClient(TestServer(create_app(other.settings, services=other)))
        await client2.start_server()
        second = WeChat(client2, other.settings, encrypt=wx.encrypt)
    try:
        replies = await asyncio.gather(wx.say(openid, "9栋1单元"), second.say(openid, "楼道灯不亮三天了"))
    finally:
        if client2 is not None:
            await client2.close()
        if other is not None:
            await other.close()
    assert sorted(MARKERS.index(next(m for m in MARKERS if m in r)) for r in replies) == [2, 3]
    inbound = [m.content for m in await messages_of(services, openid) if m.direction == "in"]
    assert inbound[-2:] in (["9栋1单元", "楼道灯不亮三天了"], ["楼道灯不亮三天了", "9栋1单元"])
    assert "联系电话" in await wx.say(openid, "好了")



async def test_prefilled_emergency_says_what_to_do_first_and_asks_only_the_phone(
    wx: WeChat, services: Services
) -> None:
    openid = oid()
    reply = await wx.say(openid, "9栋1单元电梯卡住了有人出不来")
    assert reply.index("警铃") < reply.index("联系电话")  # advice before any question
    assert "哪一类" not in reply and "在哪里" not in reply and "拍张照片" not in reply
    done = await wx.say(openid, "13812345678")  # the phone was all it lacked: submitted, no 确认
    assert "紧急情况" in done and "20261123-0001" in done and "警铃" in done
    assert "电梯" in done and "9栋1单元" in done and "补充一下" in done and "绑定" not in done
    [ticket] = await tickets_of(services, openid)
    assert ticket.urgency == "urgent" and ticket.category == "电梯" and ticket.building == "9"
    assert ticket.fields["description"] == "9栋1单元电梯卡住了有人出不来"


async def test_gas_smell_without_a_clear_intent_still_gets_advice(wx: WeChat) -> None:
    reply = await wx.say(oid(), "3栋有煤气味")
    assert "关闭燃气阀门" in reply and "哪一类" not in reply


@pytest.mark.parametrize(
    ("text", "advice", "category"),
    [
        ("电梯里关了人了！快来", "警铃", "电梯"),  # before: the menu
        ("有人被关在电梯里了", "警铃", "电梯"),
        ("电梯卡住了 里面有人", "警铃", "电梯"),
        ("老人摔倒了起不来", "120 急救", "其他"),  # before: the menu
        ("有人晕倒在楼道里了", "120 急救", "其他"),  # before: "which kind of problem?" with 12 choices
        ("电线冒火花了", "切断电源", "水电气暖"),  # before: the menu
        ("厨房闻到臭鸡蛋味", "关闭燃气阀门", "水电气暖"),  # before: a sanitation report, no advice
        ("能不能帮我叫个救护车", "120 急救", "其他"),  # before: the menu
        ("我家老头子在卫生间摔倒了 头上流血了", "120 急救", "其他"),  # before: "I did not understand"
        ("火锅店着火了", "119", "消防安全"),  # 火锅 calms 火, not 着火
        ("燃气灶打不着火 还有煤气味", "关闭燃气阀门", "水电气暖"),
        ("我老伴摔倒了 好疼 起不来", "120 急救", "其他"),  # before: 110/119/120 in general
        ("我家老头子晕过去了 叫不醒", "120 急救", "其他"),
    ],
)
async def test_emergencies_in_residents_words_get_advice_first_and_no_category_question(
    wx: WeChat, services: Services, text: str, advice: str, category: str
) -> None:
    openid = oid()
    reply = await wx.say(openid, text)
    assert advice in reply and reply.index(advice) < reply.index("在哪里")
    assert "哪一类" not in reply
    await wx.say(openid, "5号楼1单元301")
    done = await wx.say(openid, "13812345678")  # submitted at once: no binding, no summary
    assert "紧急情况" in done and "5号楼1单元301" in done and advice in done, done
    [ticket] = await tickets_of(services, openid)
    assert ticket.urgency == "urgent" and ticket.category == category and ticket.building == "5"


@pytest.mark.parametrize(
    "text",
    [
        "小区里有人在火锅店门口乱停车 挡路 2栋",  # before: fire advice (火), an urgent ticket
        "垃圾站那边气味很难闻 好几天没人清了 在5栋后面",  # before: gas advice (气味)
        "3栋门口的垃圾桶都爆了 没人收",  # before: burst-pipe advice (爆了)
        "楼下烧烤店油烟太大 一到晚上就冒烟 3栋",  # before: fire advice (冒烟)
        "燃气灶打不着火了",  # before: fire advice; a stove to repair
        "下大雨地下车库又淹了",  # before: burst-pipe advice (淹)
        "无关人员在小区里乱转 没人管 3栋",  # before: urgent (关人 inside 无关人员)
    ],
)
async def test_everyday_reports_with_an_emergencys_word_are_no_emergency(
    wx: WeChat, services: Services, text: str
) -> None:
    openid = oid()
    reply = await wx.say(openid, text)
    assert "⚠️" not in reply and "没太明白" not in reply, reply  # a report, without wrong advice
    state = await dialog_of(services, openid)
    assert state is not None and state.flow == "complaint" and state.slots.get("urgency") != "urgent"
    assert not state.slots.get("emergency")


async def test_a_house_with_people_in_it_is_no_lift_emergency(wx: WeChat) -> None:
    reply = await wx.say(oid(), "楼上家里面有人天天吵")
    assert "⚠️" not in reply


async def test_natural_opening_asks_only_what_is_missing(wx: WeChat, services: Services) -> None:
    openid = oid()
    reply = await wx.say(openid, "我要报修")
    assert "哪一类" in reply
    openid = oid()
    reply = await wx.say(openid, "我要投诉，5栋门口垃圾堆了好几天没人清理")
    assert "拍张照片" in reply  # category, place and description came with the message
    await wx.say(openid, "好了")
    await wx.say(openid, "13812345678")
    summary = await wx.say(openid, "否")
    assert "环境卫生" in summary and "5栋" in summary


async def test_switching_intent_mid_flow_asks_first(wx: WeChat, services: Services) -> None:
    openid = oid()
    await to_step(wx, openid, 2)
    ask = await wx.say(openid, "我想找人调解一下")
    assert "报事报修" in ask and "矛盾调解" in ask and "是" in ask
    assert "是" in await wx.say(openid, "什么意思")  # neither yes nor no: asked again
    stay = await wx.say(openid, "否")
    assert "继续" in stay and MARKERS[2] in stay
    await wx.say(openid, "我想找人调解一下")
    moved = await wx.say(openid, "是")
    assert "没有提交" in moved and "和谁" in moved
    assert "因为什么事" in await wx.say(openid, "邻居")
    assert await tickets_of(services, openid) == []


async def test_a_dispute_told_in_a_complaint_is_an_answer(wx: WeChat) -> None:
    openid = oid()
    await to_step(wx, openid, 2)
    assert "拍张照片" in await wx.say(openid, "楼上邻居装修太吵，每天早上7点就开始打电钻")


async def test_courtesy_is_not_taken_for_a_place(wx: WeChat) -> None:
    openid = oid()
    reply = await wx.say(openid, "楼道灯不亮了")
    if "哪一类" in reply:
        reply = await wx.say(openid, "照明")
    assert "问题在哪里" in reply
    again = await wx.say(openid, "谢谢")
    assert "问题在哪里" in again or "楼栋" in again  # re-asked with the hint, not accepted
    assert "描述" not in again
    after = await wx.say(openid, "3号楼2单元楼道")
    assert "问题在哪里" not in after and ("拍张照片" in after or "描述" in after)


async def test_a_complaint_about_the_communitys_own_people_goes_to_the_centre(wx: WeChat, services: Services) -> None:
    """投诉网格员: before, a report dispatched to the building's grid worker, who may be the very one
    complained about. Now a hand-off to the service centre, which the staff group is told of."""
    openid = oid()
    reply = await wx.say(openid, "我要投诉网格员 王伟 态度很差 报了三次都不来")
    assert "不会派给被投诉的人" in reply and "转接人工服务" in reply
    [ticket] = await tickets_of(services, openid)
    assert ticket.kind == "handoff" and ticket.assignee is None and ticket.fields["reason"] == "居民投诉社区工作人员"
    # A report that only mentions staff is still a report.
    assert "拍张照片" in await wx.say(oid(), "3号楼楼道灯坏了 工作人员说会来")


async def test_more_of_what_happened_at_a_later_question_is_added_to_the_description(
    wx: WeChat, services: Services
) -> None:
    """对了 灯罩也掉下来了 at the photos or the binding question: before, "reply with a number" and
    the sentence was lost to the ticket. Now it is added to 情况 and the question asked again; said
    after a choice (否，…) the choice is taken too; another matter is asked for after this one."""
    openid = oid()
    await to_step(wx, openid, 3)  # the photos are asked
    added = await wx.say(openid, "对了 灯罩也掉下来了 差点砸到人")
    assert "已补充到情况：对了 灯罩也掉下来了 差点砸到人" in added and "拍张照片" in added
    await wx.say(openid, "好了")
    await wx.say(openid, "13812345678")  # the binding question
    assert "已补充到情况：还有楼梯扶手也松了" in (more := await wx.say(openid, "还有楼梯扶手也松了")) and "绑定" in more
    other = await wx.say(openid, "另外小区东门垃圾没人清")  # another category: not this report's
    assert "另一件事" in other and "绑定" in other and "已补充" not in other
    unknown = await wx.say(openid, "不知道")  # says nothing: re-asked, not added
    assert "已补充" not in unknown and "绑定" in unknown
    summary = await wx.say(openid, "否，另外楼道窗户也关不上")  # the choice, and more
    assert "已补充到情况：另外楼道窗户也关不上" in summary and "请核对" in summary and "绑定号码：否" in summary
    await wx.say(openid, "1")
    [ticket] = await tickets_of(services, openid)
    assert ticket.fields["description"] == (
        "楼道灯不亮三天了；对了 灯罩也掉下来了 差点砸到人；还有楼梯扶手也松了；另外楼道窗户也关不上"
    )
    assert (await resident(services, openid)).phone in (None, "")  # 否 to binding was taken


@pytest.mark.parametrize(
    ("said", "building", "unit", "room"),
    [
        ("3-2-502", "3", "2", "502"),  # before: "sounds like a time", then a landmark, no building
        ("三号楼二单元五零二", "3", "2", "502"),  # before: no room
        ("3号院2号楼", "2", None, None),  # before: building 3 (the courtyard)
    ],
)
async def test_places_as_residents_write_them(
    wx: WeChat, services: Services, said: str, building: str, unit: str | None, room: str | None
) -> None:
    openid = oid()
    await wx.say(openid, "楼道灯坏了")
    assert "拍张照片" in await wx.say(openid, said)
    state = await dialog_of(services, openid)
    assert state is not None
    place = state.slots["place"]
    assert (place.get("building"), place.get("unit"), place.get("room")) == (building, unit, room)


async def test_a_place_said_with_when_it_happens_is_a_place(wx: WeChat) -> None:
    """晚上 in 家门口那个灯 晚上黑乎乎的 is when, not the answer (before: "sounds like a time")."""
    openid = oid()
    await wx.say(openid, "楼道灯坏了")
    assert "拍张照片" in await wx.say(openid, "就是我们家门口那个灯 晚上黑乎乎的 老人下楼不方便")


async def test_what_happened_given_for_the_place_and_the_address_after_are_uncrossed(
    wx: WeChat, services: Services
) -> None:
    """The place question answered with what happened, then the description question with the
    address: before, place and description were swapped and the ticket reached no grid worker."""
    openid = oid()
    for said in ("我要报修", "漏水", "厨房天花板一直往下滴水 楼上那家不在家"):
        await wx.say(openid, said)
    reply = await wx.say(openid, "6栋2单元302")
    assert "地点是：6栋2单元302" in reply and "拍张照片" in reply
    for said in ("好了", "13812345678", "否", "确认"):
        await wx.say(openid, said)
    [ticket] = await tickets_of(services, openid)
    assert ticket.building == "6" and ticket.fields["room"] == "302"
    assert ticket.fields["description"] == "厨房天花板一直往下滴水 楼上那家不在家"
    assert ticket.status == "dispatched"


async def test_a_phone_said_digit_by_digit_and_a_phone_refused(wx: WeChat, services: Services) -> None:
    """一三八… / 幺三九… from voice were refused as no phone; 不说了 got "the number looks wrong"."""
    openid = oid()
    await to_step(wx, openid, 4)  # the phone is asked
    refused = await wx.say(openid, "不说了")
    assert "手机号好像不对" not in refused and "上门或回访前" in refused and "取消" in refused
    assert "绑定" in await wx.say(openid, "我电话是幺三九 一二三四 五六七八")
    await wx.say(openid, "否")
    await wx.say(openid, "确认")
    [ticket] = await tickets_of(services, openid)
    assert ticket.fields["phone"] == "13912345678"


@pytest.mark.parametrize("said", ["南门停车场的路灯坏了好几天了", "停车场的路灯坏了", "地下车库的灯坏了"])
async def test_a_whole_report_at_the_category_question_naming_a_place_of_another_category(
    wx: WeChat, services: Services, said: str
) -> None:
    # 停车场 is where the lamp is, not a parking problem: the sentence is read as an opening is.
    openid = oid()
    assert "哪一类" in await wx.event(openid, "CLICK", "MENU_COMPLAINT")
    reply = await wx.say(openid, said)
    assert "请回复选项" not in reply and "拍张照片" in reply, reply
    await wx.say(openid, "好了")
    await wx.say(openid, "13812345678")
    summary = await wx.say(openid, "否")
    assert "问题类别：照明" in summary and f"情况：{said}" in summary, summary
    # One character inside a sentence still picks nothing, and a sentence that tells no kind is asked again.
    other = oid()
    await wx.say(other, "1")
    assert "请回复选项" in await wx.say(other, "好几天了")


async def test_a_location_at_a_later_question_keeps_the_typed_building(wx: WeChat, services: Services) -> None:
    openid = oid()
    await wx.event(openid, "CLICK", "MENU_COMPLAINT")
    assert "拍张照片" in await wx.say(openid, "3号楼2单元楼道灯坏了")
    reply = await wx.send("location", openid, **LOCATION)
    assert "3栋2单元" in reply and "拍张照片" in reply, reply
    await wx.say(openid, "好了")
    await wx.say(openid, "13812345678")
    summary = await wx.say(openid, "否")
    assert "地点：3栋2单元" in summary and "南门停车场" not in summary, summary
    await wx.say(openid, "1")
    [ticket] = await tickets_of(services, openid)
    assert ticket.building == "3" and ticket.fields["place"] == "3栋2单元"
    assert ticket.fields["location"] == {"latitude": 30.2741, "longitude": 120.1551}


@pytest.mark.parametrize("landmark", ["小区南门", "东门垃圾站", "地下车库"])
async def test_a_location_at_a_later_question_keeps_a_typed_landmark(
    wx: WeChat, services: Services, landmark: str
) -> None:
    """A landmark without a building, then a map pin: the typed landmark stays the place (the
    pin's label no longer replaces it), the point is attached, and the resident is told."""
    openid = oid()
    await wx.say(openid, "1")
    await wx.say(openid, "1")
    assert "描述一下" in await wx.say(openid, landmark)
    reply = await wx.send("location", openid, **LOCATION)
    assert f"已附在地点“{landmark}”上" in reply and "描述一下" in reply, reply
    await wx.say(openid, "路灯不亮好几天了")
    await wx.say(openid, "好了")
    await wx.say(openid, "13812345678")
    summary = await wx.say(openid, "否")
    assert f"地点：{landmark}" in summary and "望湖小区南门停车场" not in summary, summary
    await wx.say(openid, "1")
    [ticket] = await tickets_of(services, openid)
    assert (ticket.fields["place"], ticket.fields["landmark"]) == (landmark, landmark)
    assert ticket.fields["location"] == {"latitude": 30.2741, "longitude": 120.1551}


async def test_a_location_at_the_photos_keeps_a_landmark_said_in_the_opening(wx: WeChat, services: Services) -> None:
    openid = oid()
    assert "拍张照片" in await wx.say(openid, "小区南门的路灯不亮了")
    reply = await wx.send("location", openid, **{**LOCATION, "Label": "望湖路88号"})
    assert "已附在地点“小区南门”上" in reply and "拍张照片" in reply, reply
    await wx.say(openid, "好了")
    await wx.say(openid, "13812345678")
    await wx.say(openid, "否")
    await wx.say(openid, "1")
    [ticket] = await tickets_of(services, openid)
    assert ticket.fields["place"] == "小区南门" and "望湖路88号" not in ticket.summary
    assert ticket.fields["location"] == {"latitude": 30.2741, "longitude": 120.1551}


async def test_a_second_location_replaces_the_first_saying_so(wx: WeChat) -> None:
    openid = oid()
    await wx.say(openid, "1")
    await wx.say(openid, "1")
    assert "描述一下" in await wx.send("location", openid, **{**LOCATION, "Label": "望湖路88号"})
    reply = await wx.send("location", openid, **LOCATION)
    assert "地点已改为：望湖小区南门停车场" in reply and "描述一下" in reply, reply


async def test_back_goes_only_to_a_question_answered_before_the_one_in_hand(wx: WeChat, services: Services) -> None:
    openid = oid()
    await wx.event(openid, "CLICK", "MENU_COMPLAINT")
    await wx.say(openid, "3号楼2单元楼道灯坏了")
    await wx.send("image", openid, **PHOTO)
    # The category was the one question answered: asked again, saying what it was.
    reply = await wx.say(openid, "返回")
    assert "之前的回答：照明" in reply and "哪一类" in reply, reply
    kept = await wx.say(openid, "13900001111")
    assert "电话已经记下" in kept and "哪一类" in kept
    # The phone kept early is ahead of the category, not behind it: 返回 never moves forward.
    reply = await wx.say(openid, "返回")
    assert "第一个问题" in reply and "哪一类" in reply and "联系电话" not in reply, reply
    assert "已收到1张照片" in await wx.say(openid, "1")  # the photo sent early: not asked from scratch
    reply = await wx.say(openid, "返回")
    assert "哪一类" in reply and "之前的回答：照明" in reply, reply
    assert "已收到1张照片" in await wx.say(openid, "照明")
    assert "绑定" in await wx.say(openid, "好了")  # the phone kept early is not asked again
    summary = await wx.say(openid, "否")
    assert "请核对" in summary and "13900001111" in summary and "3栋2单元" in summary
    reply = await wx.say(openid, "返回")
    assert "绑定" in reply and "之前的回答：否" in reply, reply
    assert "请核对" in await wx.say(openid, "否")


async def test_back_to_the_photos_keeps_those_sent(wx: WeChat, services: Services) -> None:
    """返回 from the phone to the photos: the two photos sent stay, the question says so, 好了
    keeps them, and a photo sent after a second 返回 is the third."""
    openid = oid()
    await to_step(wx, openid, 3)
    await wx.send("image", openid, **PHOTO)
    await wx.send("image", openid, **{**PHOTO, "MediaId": "media-lamp-2"})
    assert "联系电话" in await wx.say(openid, "好了")
    reply = await wx.say(openid, "返回")
    assert "已收到2张照片" in reply and "跳过" not in reply, reply
    assert "联系电话" in await wx.say(openid, "好了")
    assert "已收到2张照片" in await wx.say(openid, "返回")
    assert "第3张" in await wx.send("image", openid, **{**PHOTO, "MediaId": "media-lamp-3"})
    await wx.say(openid, "好了")
    await wx.say(openid, "13812345678")
    summary = await wx.say(openid, "否")
    assert "照片：3张" in summary, summary
    await wx.say(openid, "1")
    [ticket] = await tickets_of(services, openid)
    assert [p["media_id"] for p in ticket.fields["photos"]] == ["media-lamp-1", "media-lamp-2", "media-lamp-3"]


async def test_a_very_long_report_is_clipped_in_replies_and_kept_whole_in_the_ticket(
    wx: WeChat, services: Services
) -> None:
    openid = oid()
    long_text = "楼道灯不亮" + "晚上很黑看不见台阶" * 220  # about 2,000 characters
    await to_step(wx, openid, 2)
    await wx.say(openid, long_text)
    await wx.say(openid, "好了")
    await wx.say(openid, "13812345678")
    summary = await wx.say(openid, "否")
    assert "请核对" in summary and "确认提交" in summary and "…" in summary
    assert len(summary.encode()) <= 2048 and long_text[:150] in summary
    await wx.say(openid, "1")
    [ticket] = await tickets_of(services, openid)
    assert ticket.fields["description"] == long_text


async def test_a_photo_sent_first_is_not_asked_for_again(wx: WeChat, services: Services) -> None:
    """A photo, then 3号楼2单元楼道灯坏了: before, "方便的话拍张照片发给我" as if none had come."""
    openid = oid()
    await wx.send("image", openid, **PHOTO)
    assert "问题在哪里" in await wx.say(openid, "1")  # the category
    assert "描述一下" in await wx.say(openid, "3号楼2单元")
    reply = await wx.say(openid, "楼道灯坏了")
    assert "已收到1张照片" in reply and "方便的话拍张照片" not in reply, reply


async def test_a_number_said_to_be_someone_elses_is_not_the_contact_phone(wx: WeChat, services: Services) -> None:
    """物业电话是138 1234 5678 打了没人接 in the opening: before, the property company's number was
    taken as the resident's contact and the phone never asked (the grid worker would have called
    the wrong person). Now the phone is asked; the resident's own number in an opening still counts."""
    openid = oid()
    assert "拍张照片" in await wx.say(openid, "3号楼2单元楼道灯坏了，物业电话是138 1234 5678 打了没人接")
    assert "联系电话" in await wx.say(openid, "好了")
    assert "绑定" in await wx.say(openid, "13900002222")
    summary = await wx.say(openid, "否")
    assert "联系电话：13900002222" in summary, summary
    await wx.say(openid, "1")
    [ticket] = await tickets_of(services, openid)
    assert ticket.fields["phone"] == "13900002222" and "物业电话是138 1234 5678" in ticket.fields["description"]
    own = oid()
    await wx.say(own, "3号楼2单元楼道灯坏了，物业不管，我电话13900003333")
    assert "绑定" in await wx.say(own, "好了")  # the phone is not asked: it was the resident's own


async def test_a_phone_said_before_its_question_in_digits_spoken_or_after_a_word_is_kept(
    wx: WeChat, services: Services
) -> None:
    """幺三八 一二三四 五六七八 (voice) or 电话13812345678 at the category question: before, "reply
    with the number of an option" and the number lost. Now kept for the phone question, which is
    then not asked."""
    openid = oid()
    await wx.say(openid, "1")
    kept = await wx.send("voice", openid, MediaId="v1", Format="amr", Recognition="幺三八 一二三四 五六七八。")
    assert "电话已经记下" in kept and "哪一类" in kept and "数字" not in kept, kept
    await wx.say(openid, "1")
    await wx.say(openid, "3号楼2单元")
    await wx.say(openid, "楼道灯不亮三天了")
    assert "绑定" in await wx.say(openid, "好了")
    other = oid()
    await wx.say(other, "1")
    assert "电话已经记下" in await wx.say(other, "电话13812345679")
    state = await dialog_of(services, other)
    assert state is not None and state.slots["phone"] == "13812345679"


@pytest.mark.parametrize("said", ["谢谢啊", "辛苦了 谢谢", "@voice:嗯 好的好的"])
async def test_thanks_at_a_choice_question_are_not_added_to_what_happened(
    wx: WeChat, services: Services, said: str
) -> None:
    """3号楼2单元的那个东西坏了, then 谢谢啊 at the category question: before, "已补充到情况：谢谢啊".
    Courtesy is no detail: the question is asked again with its hint, the description unchanged."""
    openid = oid()
    assert "哪一类" in await wx.say(openid, "3号楼2单元的那个东西坏了")
    if said.startswith("@voice:"):
        reply = await wx.send("voice", openid, MediaId="v1", Format="amr", Recognition=said.removeprefix("@voice:"))
    else:
        reply = await wx.say(openid, said)
    assert "已补充" not in reply and "数字" in reply and "哪一类" in reply, reply
    state = await dialog_of(services, openid)
    assert state is not None and state.slots["description"] == "3号楼2单元的那个东西坏了"
    assert "已补充到情况：晚上很黑 谢谢" in await wx.say(openid, "晚上很黑 谢谢")  # a detail, with thanks


@pytest.mark.parametrize("said", ["你是机器人吗", "喂 喂 有人吗 我要跟人说话"])
async def test_asking_for_a_person_at_any_question_hands_off(wx: WeChat, services: Services, said: str) -> None:
    """你是机器人吗 at the place question: before, "“你是机器人吗”好像不是一个地点". A request for a
    person is served at any question as 人工 is: a hand-off carrying what was said so far; at the
    summary too."""
    openid = oid()
    await to_step(wx, openid, 1)  # the place is asked
    reply = await wx.say(openid, said)
    assert "转接人工服务" in reply and "地点" not in reply, reply
    [ticket] = await tickets_of(services, openid)
    assert ticket.kind == "handoff" and ticket.fields["flow"] == "complaint"
    assert ticket.fields["collected"] == {"问题类别": "照明"} and ticket.fields["text"] == said
    assert await dialog_of(services, openid) is None
    at_summary = oid()
    await to_step(wx, at_summary, 6)
    assert "转接人工服务" in await wx.say(at_summary, "我要跟人说话")
    [handed] = await tickets_of(services, at_summary)
    assert handed.kind == "handoff" and handed.fields["collected"]["联系电话"] == "13812345678"


@pytest.mark.parametrize("said", ["书记说会处理的", "麻烦领导重视一下", "需要找物业负责人"])
async def test_naming_someone_mid_request_is_no_hand_off(wx: WeChat, services: Services, said: str) -> None:
    """书记说会处理的 in the middle of a report names a person, it does not ask for one: the request
    goes on (a hand-off would drop the form in progress); outside a request the same words are
    read as the classifier reads them."""
    openid = oid()
    await to_step(wx, openid, 1)  # the place is asked
    reply = await wx.say(openid, said)
    assert "转接人工服务" not in reply, reply
    assert not [t for t in await tickets_of(services, openid) if t.kind == "handoff"]
    state = await dialog_of(services, openid)
    assert state is not None and state.flow == "complaint"


@pytest.mark.parametrize("said", ["不改了", "都对", "0"])
async def test_nothing_to_change_in_the_edit_menu_goes_back_to_the_summary(
    wx: WeChat, services: Services, said: str
) -> None:
    """否 at the summary, then 不改了 / 都对: before, "请回复选项前面的数字" again and again. The menu
    has 0. 不用改了; it and the words for it go back to the summary."""
    openid = oid()
    await to_step(wx, openid, 6)
    menu = await wx.say(openid, "否")
    assert "修改哪一项" in menu and "0. 不用改了" in menu, menu
    summary = await wx.say(openid, said)
    assert "请核对" in summary and "数字" not in summary, summary
    assert "20261123-" in await wx.say(openid, "1")


@pytest.mark.parametrize("said", ["确认提交", "提交吧"])
async def test_a_submit_word_in_the_edit_menu_submits(wx: WeChat, services: Services, said: str) -> None:
    openid = oid()
    await to_step(wx, openid, 6)
    await wx.say(openid, "否")
    done = await wx.say(openid, said)
    assert "已为您登记" in done and "数字" not in done, done
    [ticket] = await tickets_of(services, openid)
    assert ticket.kind == "complaint" and ticket.fields["phone"] == "13812345678"


async def test_a_yes_word_at_the_place_question_is_never_the_place(wx: WeChat, services: Services) -> None:
    """确认 sent twice where the place is asked: before, the second was taken as the place (a refused
    answer said again is taken). A yes word is no place: the question is asked again each time."""
    openid = oid()
    await to_step(wx, openid, 1)
    for _ in range(2):
        again = await wx.say(openid, "确认")
        assert "问题在哪里" in again and "描述" not in again, again
    state = await dialog_of(services, openid)
    assert state is not None and "place" not in state.slots


async def test_the_whole_address_of_the_building_said_later_completes_the_place(
    wx: WeChat, services: Services
) -> None:
    """7号楼 in the first message, then 7号楼1单元602 at the photo request (or 7栋602室 at the
    phone question): the unit and room are added to the place, as 1单元602 alone would be; the
    ticket said 7栋. Another building's address is not taken as this one's flat."""
    openid = oid()
    assert "拍张照片" in await wx.say(openid, "7号楼楼道灯坏了")
    added = await wx.say(openid, "7号楼1单元602")
    assert "好的，地点补充为：7栋1单元602" in added and "拍张照片" in added
    assert "联系电话" in await wx.say(openid, "好了")
    added = await wx.say(openid, "7栋603室")
    assert "地点补充为：7栋1单元603" in added and "联系电话" in added  # the unit said before kept
    other = await wx.say(openid, "5号楼1单元302")
    assert "补充" not in other and "联系电话" in other
    assert "绑定" in await wx.say(openid, "13812345678")
    summary = await wx.say(openid, "否")
    assert "地点：7栋1单元603" in summary
    await wx.say(openid, "确认")
    [ticket] = await tickets_of(services, openid)
    assert ticket.building == "7" and ticket.fields["place"] == "7栋1单元603"
    assert ticket.fields["unit"] == "1" and ticket.fields["room"] == "603"


async def test_a_report_without_binding_makes_no_resident_object(services: Services) -> None:
    """complaint.finish reads and changes the resident only when the phone is bound: a report
    with 否 to binding (a building in its place) puts no Resident in the session; with 是 the
    phone is bound and the building kept as the resident's."""
    slots = {"category": "照明", "place": {"building": "7", "text": "7号楼"}, "description": "楼道灯坏了",
             "urgency": "normal", "photos": [], "phone": "13812345678"}
    for openid, bind in (("oFinishNo", "no"), ("oFinishYes", "yes")):
        now = services.clock.now()
        inbound = Inbound(openid=openid, msg_type="text", text="确认")
        async with services.sessions.begin() as session:
            row = await dialog.arrive(session, inbound, now)
            ctx = Context(services, session, row, inbound, now)
            assert "工单号" in await Complaint().finish(ctx, {**slots, "bind_phone": bind})
            made = [o for o in session.sync_session.identity_map.values() if isinstance(o, Resident)]
            assert (made == [] and "resident" not in vars(ctx)) if bind == "no" else len(made) == 1
        stored = await resident(services, openid)
        assert stored is not None
        assert (stored.phone, stored.building) == ((None, None) if bind == "no" else ("13812345678", "7"))


async def test_a_report_for_another_household_does_not_become_the_residents_building(
    wx: WeChat, services: Services
) -> None:
    """帮我妈报修 她家5号楼…, with the phone bound: the phone is the resident's, but 5号楼 is the
    mother's — it was kept as the resident's building, and a later 上门 booking or mediation went
    there. A report of the resident's own (3号楼楼道灯坏了) still keeps its building."""
    for said, building in (("帮我妈报修 她家5号楼厨房水管漏了", None), ("帮邻居报修 他家3号楼2单元501门口的灯坏了", None),
                           ("3号楼楼道灯坏了", "3")):
        openid = oid()
        await wx.say(openid, said)
        assert "联系电话" in await wx.say(openid, "好了")
        assert "绑定" in await wx.say(openid, "13812345678")
        assert "绑定号码：是" in await wx.say(openid, "是")
        assert "工单号" in await wx.say(openid, "确认")
        person = await resident(services, openid)
        assert person is not None and (person.phone, person.building) == ("13812345678", building), said


async def test_a_thing_and_what_is_wrong_at_the_category_question_is_what_happened(
    wx: WeChat, services: Services
) -> None:
    """路灯坏了 at 哪一类问题 picked 照明 and then 请简单描述一下情况 was asked (after a location, at
    once): the choice's word left 坏了, too short to count. The sentence is what happened; 照明 好的
    is still only the choice."""
    openid = oid()
    await wx.say(openid, "1")
    await wx.send("location", openid, **LOCATION)
    told = await wx.say(openid, "路灯坏了")
    assert "拍张照片" in told and "描述" not in told, told
    await wx.say(openid, "好了")
    await wx.say(openid, "13812345678")
    summary = await wx.say(openid, "否")
    assert "照明" in summary and "情况：路灯坏了" in summary, summary
    other = oid()
    await wx.say(other, "1")
    assert "问题在哪里" in await wx.say(other, "照明 好的")
    assert "描述" in await wx.say(other, "3号楼门口")  # 好的 is no matter: asked


async def test_the_same_place_as_last_time_is_offered(wx: WeChat, services: Services) -> None:
    """跟上次一样 楼道灯又坏了 was asked 问题在哪里 as if never reported: the place of the resident's
    last report of that kind is offered, taken with 确认; another place said is taken instead; with
    no report before, nothing is offered."""
    openid = oid()
    for said in ("3号楼2单元楼道灯坏了", "跳过", "13912345678", "否"):
        await wx.say(openid, said)
    assert "工单号" in await wx.say(openid, "确认")
    offered = await wx.say(openid, "跟上次一样 楼道灯又坏了")
    assert "您上次报的地点是“3栋2单元”" in offered and "问题在哪里" in offered, offered
    taken = await wx.say(openid, "确认")
    # the first is still open: the resident is asked whether it is that one (bot.dialog._reported_midway)
    assert "已经反映过这个问题" in taken and "2. 不是同一个问题" in taken, taken
    taken = await wx.say(openid, "2")
    assert "照片" in taken and "问题在哪里" not in taken, taken
    await wx.say(openid, "跳过")
    summary = await wx.say(openid, "13912345678")
    summary = summary if "请核对" in summary else await wx.say(openid, "否")
    assert "地点：3栋2单元" in summary and "情况：跟上次一样 楼道灯又坏了" in summary, summary
    await wx.say(openid, "确认")
    first, second = await tickets_of(services, openid)
    assert second.fields["building"] == "3" and second.fields["unit"] == "2" and second.fields["place"] == "3栋2单元"

    offered = await wx.say(openid, "和上次一样 灯又不亮了")
    assert "3栋2单元" in offered, offered
    told = await wx.say(openid, "这次是5号楼1单元")
    assert "地点还是上次" not in told and "照片" in told, told
    assert (await wx.say(openid, "取消"))

    stranger = oid()
    asked = await wx.say(stranger, "跟上次一样 楼道灯又坏了")
    assert "问题在哪里" in asked and "上次报的地点" not in asked, asked


async def test_the_residents_own_open_report_found_when_the_place_comes_later(wx: WeChat, services: Services) -> None:
    """跟上次一样 暖气又不热了, its place 确认ed from the last report, while that report of the heating
    was still open (reopened after 不满意): a second ticket was written and dispatched to another grid
    worker of the building. As at an opening, the resident is told it is reported already: 1 chases
    it, 2 goes on with the new report from the question it was at, and is not asked again."""
    openid = oid()
    for said in ("暖气一点都不热", "5号楼2单元301", "跳过", "13912345678", "否"):
        await wx.say(openid, said)
    assert "工单号" in await wx.say(openid, "确认")
    assert "您上次报的地点" in await wx.say(openid, "跟上次一样 暖气又不热了")
    told = await wx.say(openid, "确认")
    assert "已经反映过这个问题" in told and "1. 催一下" in told, told
    told = await wx.say(openid, "1")
    assert "照片" not in told, told
    assert len(await tickets_of(services, openid)) == 1

    told = await wx.say(openid, "暖气还是不热")
    assert "问题在哪里" in told, told
    told = await wx.say(openid, "5号楼2单元301")
    assert "已经反映过这个问题" in told, told
    told = await wx.say(openid, "2")
    assert "照片" in told, told
