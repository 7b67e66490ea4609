"""Residents' reports walked through /sim in session 18, driven through /wechat on both backends:
a fee complaint is not asked for a photo, a question at the place question is answered, a cry for
help reads once to staff, an emergency's place corrected after it was submitted re-routes it."""

from __future__ import annotations

import uuid

import pytest

from bot.services import Services
from tests.conftest import WeChat
from tests.flow_helpers import group_posts, tickets_of
from tests.wecom_driver import outbox_rows


def oid() -> str:
    return "o" + uuid.uuid4().hex[:20]


@pytest.mark.parametrize("opening", ["物业费凭什么涨价", "停车费乱收", "这个月的水费多收了一百多"])
async def test_a_fee_complaint_is_not_asked_for_a_photo(wx: WeChat, services: Services, opening: str) -> None:
    openid = oid()
    reply = await wx.say(openid, opening)
    if "哪一类" in reply:
        reply = await wx.say(openid, "物业服务")
    assert "问题在哪里" in reply, reply
    reply = await wx.say(openid, "3号楼2单元")
    assert "拍张照片" not in reply and "联系电话" in reply, reply
    await wx.say(openid, "13812345678")
    summary = await wx.say(openid, "否")
    assert "请核对" in summary and "照片" not in summary, summary
    await wx.say(openid, "确认")
    [ticket] = await tickets_of(services, openid)
    assert ticket.fields["photos"] == []


async def test_a_broken_thing_is_still_asked_for_a_photo(wx: WeChat) -> None:
    openid = oid()
    await wx.say(openid, "楼道灯坏了")
    assert "拍张照片" in await wx.say(openid, "3号楼2单元")

@pytest.mark.parametrize(("question", "answer"), [
    ("垃圾几点收", "垃圾分四类"), ("物业电话多少", "0571-8888 5678"), ("你们几点上班？", "办公时间"),
])
async def test_a_question_where_the_place_is_asked_is_answered_then_the_place_asked(
        wx: WeChat, services: Services, question: str, answer: str) -> None:
    openid = oid()
    assert "问题在哪里" in await wx.say(openid, "楼道灯坏了")
    reply = await wx.say(openid, question)
    assert answer in reply and "问题在哪里" in reply and "不是一个地点" not in reply, reply
    assert "拍张照片" in await wx.say(openid, "3号楼2单元")
    await wx.say(openid, "跳过")
    await wx.say(openid, "13812345678")
    await wx.say(openid, "否")
    await wx.say(openid, "确认")
    [ticket] = await tickets_of(services, openid)
    assert ticket.fields["place"] == "3号楼2单元"


async def test_a_question_nobody_configured_is_told_so_at_the_place_question(wx: WeChat) -> None:
    openid = oid()
    await wx.say(openid, "楼道灯坏了")
    reply = await wx.say(openid, "明天会下雨吗？")
    assert "答不上来" in reply and "人工" in reply and "问题在哪里" in reply and "不是一个地点" not in reply, reply
    assert "拍张照片" in await wx.say(openid, "3号楼2单元")

async def test_a_cry_for_help_reads_once_to_staff_and_where_they_are_reaches_them(
        wx: WeChat, services: Services) -> None:
    """快来人啊: the staff group read it as 事项 (【紧急】其他：快来人啊) and again as 原因 (居民要求人工服务
    （紧急：其他｜快来人啊）); and 3号楼2单元, the answer to 您在哪里, got the menu's numbers and left the
    ticket 地点：未说明. Now the emergency is named once, in words, the place is kept on the ticket and
    the building's grid worker told."""
    openid = oid()
    assert "您在哪里" in await wx.say(openid, "快来人啊")
    [ticket] = await tickets_of(services, openid)
    [post] = [p for p in await group_posts(services) if p.ticket_id == ticket.id]
    content = post.payload["content"]
    assert content.count("快来人啊") == 1 and "其他" not in content and "居民呼救" in content, content
    reply = await wx.say(openid, "3号楼2单元")
    assert ticket.number in reply and "菜单" not in reply and "1 报事报修" not in reply, reply
    [ticket] = await tickets_of(services, openid)
    assert ticket.building == "3" and "3" in ticket.fields["place"] and ticket.grid == "G1"
    [push] = await outbox_rows(services, "wecom", "wangwei")
    assert "紧急求助" in push.payload["text"] and ticket.number in push.payload["text"]
    assert push.payload["text"].count("快来人啊") == 1 and "（其他）" not in push.payload["text"]

async def test_an_emergency_s_place_corrected_after_it_went_is_re_routed(wx: WeChat, services: Services) -> None:
    """An emergency is submitted once its place and phone are known; 不对，是5号楼 then got 没太明白 and the
    menu, and 补充一下：是5号楼 only a note to 3号楼's grid worker. The report now moves to 5号楼 and to its
    grid's worker (the first told 已改派他人, 不用上门), the resident told who has it."""
    openid = oid()
    await wx.say(openid, "我闻到很大的煤气味")
    await wx.say(openid, "3号楼2单元")
    assert "工单号" in await wx.say(openid, "13812345679")
    [ticket] = await tickets_of(services, openid)
    assert ticket.assignee == "wangwei" and ticket.urgency == "urgent"
    reply = await wx.say(openid, "不对，是5号楼")
    assert ticket.number in reply and "5号楼" in reply and "没太明白" not in reply, reply
    [ticket] = await tickets_of(services, openid)
    assert (ticket.building, ticket.grid, ticket.fields["place"]) == ("5", "G2", "5号楼"), ticket.fields
    assert ticket.assignee in ("lina", "zhaoqiang") and ticket.urgency == "urgent" and ticket.status == "dispatched"
    away = (await outbox_rows(services, "wecom", "wangwei"))[-1]
    assert "已改派他人" in away.payload["text"] and ticket.number in away.payload["text"], away.payload
    [card] = await outbox_rows(services, "wecom", ticket.assignee)
    assert "5号楼" in str(card.payload) and card.urgent


async def test_a_place_corrected_within_the_same_grid_tells_its_owner(wx: WeChat, services: Services) -> None:
    openid = oid()
    for said in ("楼道里冒烟了", "3号楼2单元", "13812345679"):
        await wx.say(openid, said)
    reply = await wx.say(openid, "补充一下：是2号楼1单元")
    assert "2号楼1单元" in reply and "王伟" in reply, reply
    [ticket] = await tickets_of(services, openid)
    assert (ticket.building, ticket.assignee, ticket.fields["place"]) == ("2", "wangwei", "2号楼1单元")
    told = (await outbox_rows(services, "wecom", "wangwei"))[-1]
    assert "更正地点" in told.payload["text"] and "2号楼1单元" in told.payload["text"], told.payload
    # 是3号楼 alone, or 补充 of something else, is no correction
    assert "已补充到工单" in await wx.say(openid, "补充一下：烟是从地下室冒出来的")
    [ticket] = await tickets_of(services, openid)
    assert ticket.building == "2"



async def test_a_report_linked_to_neighbours_job_and_moved_elsewhere_is_its_own(
        wx: WeChat, services: Services) -> None:
    """A neighbour reported gas at 3号楼 first, so this report was linked to that job; 不对，是5号楼 left
    it linked (only 3号楼's worker told). Now it leaves that job and goes to 5号楼's grid worker."""
    first, second = oid(), oid()
    for openid, phone in ((first, "13812345670"), (second, "13812345671")):
        for said in ("我闻到很大的煤气味", "3号楼2单元", phone):
            await wx.say(openid, said)
    [job] = await tickets_of(services, first)
    [mine] = await tickets_of(services, second)
    assert mine.parent_id == job.id
    reply = await wx.say(second, "不对，是5号楼")
    assert "5号楼" in reply and "改派" in reply, reply
    [mine] = await tickets_of(services, second)
    [job] = await tickets_of(services, first)
    assert mine.parent_id is None and mine.building == "5" and mine.assignee in ("lina", "zhaoqiang")
    assert job.reporters == 1 and job.building == "3" and job.assignee == "wangwei"

async def test_a_unit_said_by_voice_at_the_photo_question_is_added_to_the_place(
        wx: WeChat, services: Services) -> None:
    """嗯 就是说 三单元, recognised from a voice message where photos are asked after 三号楼 was the
    place: it was 请发送照片 and the unit lost; now it is added to the place and the photo asked again."""
    openid = oid()
    reply = await wx.send("voice", openid, MediaId="v1", Format="amr", Recognition="嗯 那个 就是说 我们那个 三号楼 那个电梯啊 又坏了 嗯 老人下不来")
    assert "拍张照片" in reply, reply
    reply = await wx.send("voice", openid, MediaId="v2", Format="amr", Recognition="嗯 就是说 三单元")
    assert "3单元" in reply and "拍张照片" in reply and "请发送照片" not in reply, reply
    for said in ("跳过", "13812345678", "否"):
        reply = await wx.say(openid, said)
    assert "请核对" in reply and "3单元" in reply, reply
    await wx.say(openid, "确认")
    [ticket] = await tickets_of(services, openid)
    assert (ticket.building, ticket.fields["unit"]) == ("3", "3")


async def test_a_dark_stairwell_told_at_length_is_no_fire(wx: WeChat, services: Services) -> None:
    """黑灯瞎火 (pitch dark) in an old resident's long message about a corridor light got the fire advice
    (拨打 119) and an urgent report: the 火 inside the idiom was read as a fire."""
    openid = oid()
    reply = await wx.say(openid, "你好啊小同志 我是7号楼的老李 今年78了 我们这个单元的楼道灯啊 坏了有一个多礼拜了 "
                                 "晚上黑灯瞎火的 我上下楼都得扶着墙 前天差点摔一跤 你们赶紧派人来看看吧 谢谢啦")
    assert "119" not in reply and "⚠️" not in reply, reply
    assert "火情" not in await wx.say(openid, "3单元")
    assert "119" in await wx.say(oid(), "楼道里着火了 黑灯瞎火的什么都看不见")  # a fire said is still one


@pytest.mark.parametrize(("cry", "then"), [("快来人啊", "转接人工服务"), ("我闻到煤气味了", "96777")])
async def test_an_emergency_said_inside_another_report_is_served_at_once(
        wx: WeChat, services: Services, cry: str, then: str) -> None:
    """楼道灯坏了, then 快来人啊 (or 我闻到煤气味了) where the place is asked: it was 好像不是一个地点 and the
    place question again. It is served as an opening is, the lamp report left unsubmitted, said so."""
    openid = oid()
    assert "问题在哪里" in await wx.say(openid, "楼道灯坏了")
    reply = await wx.say(openid, cry)
    assert then in reply and "不是一个地点" not in reply and "还没有提交" in reply, reply


@pytest.mark.parametrize("leaving", ["算了 不报了", "我不想报了", "算了，不投诉了"])
async def test_a_report_left_in_words_is_cancelled(wx: WeChat, services: Services, leaving: str) -> None:
    """算了 不报了 where the photo is asked got 请发送照片 and the photo question again."""
    openid = oid()
    await wx.say(openid, "电梯又坏了😡😡")
    assert "拍张照片" in await wx.say(openid, "9栋")
    reply = await wx.say(openid, leaving)
    assert "请发送照片" not in reply and "拍张照片" not in reply, reply
    assert await tickets_of(services, openid) == []
    assert "哪一类" in await wx.say(openid, "1")  # nothing left running: the menu's 1 starts afresh


async def test_a_place_corrected_in_traditional_characters_is_read(wx: WeChat, services: Services) -> None:
    """不對，是5號樓 (a phone set to traditional characters) got 没太明白 and the menu."""
    openid = oid()
    for said in ("電梯裡有人出不來了", "8號樓", "13700001111"):
        await wx.say(openid, said)
    reply = await wx.say(openid, "不對，是5號樓")
    assert "5号楼" in reply and "没太明白" not in reply, reply
    [ticket] = await tickets_of(services, openid)
    assert (ticket.building, ticket.grid) == ("5", "G2") and ticket.assignee in ("lina", "zhaoqiang")


@pytest.mark.parametrize("asked", ["喂 喂 那个 我要报个修", "我想报一下修"])
async def test_a_repair_asked_for_in_loose_words_starts_a_report(wx: WeChat, asked: str) -> None:
    """喂 喂 那个 我要报个修 (an old resident by voice) got 没太明白 and the menu: 报个修 is 报修."""
    reply = await wx.send("voice", oid(), MediaId="v1", Format="amr", Recognition=asked)
    assert "没太明白" not in reply and ("哪一类" in reply or "什么问题" in reply or "描述" in reply), reply
