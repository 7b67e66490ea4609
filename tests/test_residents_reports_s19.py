"""Residents' reports walked in session 19, driven through /wechat on both backends: voice filler
kept out of the report, a question at the place question answered (not taken for the place), 好的
at the photo question read as willing, and 我家还是没电 after a 恢复通知 placed in the building the
outage registration knows."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from bot.clock import FakeClock
from bot.services import Services
from tests.conftest import WeChat
from tests.flow_helpers import tickets_of
from tests.wecom_driver import WeCom, load_demo_roster, outbox_rows


def oid() -> str:
    return "o" + uuid.uuid4().hex[:20]


async def _through(wx: WeChat, openid: str, *answers: str) -> str:
    reply = ""
    for said in answers:
        reply = await wx.say(openid, said)
    return reply


@pytest.mark.parametrize("heard", [
    "嗯 那个 3号楼楼道的灯坏了", "嗯，那个，3号楼楼道的灯坏了。", "呃 就是说 3号楼楼道的灯 嗯 坏了",
])
async def test_voice_filler_stays_out_of_the_report(wx: WeChat, services: Services, heard: str) -> None:
    """A voice message's Recognition (嗯 那个 3号楼楼道的灯坏了) was stored and shown to the owner
    as it was heard, 情况：嗯 那个 3号楼…; the report keeps the resident's words without the filler."""
    openid = oid()
    reply = await wx.send("voice", openid, MediaId="m1", Format="amr", Recognition=heard)
    assert "拍张照片" in reply, reply
    summary = await _through(wx, openid, "跳过", "13812345678", "否")
    assert "情况：3号楼楼道的灯" in summary and "嗯" not in summary and "那个" not in summary, summary
    await wx.say(openid, "确认")
    [ticket] = await tickets_of(services, openid)
    said = ticket.fields["description"]
    assert said.startswith("3号楼楼道的灯") and "坏了" in said and "嗯" not in said and "那个" not in said, said
    [card] = await outbox_rows(services, "wecom", "wangwei")
    assert "嗯" not in str(card.payload) and "3号楼楼道的灯" in str(card.payload), card.payload


async def test_words_that_look_like_filler_inside_a_report_are_kept(wx: WeChat, services: Services) -> None:
    openid = oid()
    await _through(wx, openid, "那个人天天在3号楼楼道里抽烟", "消防安全", "跳过", "13812345678", "否", "确认")
    [ticket] = await tickets_of(services, openid)
    assert ticket.fields["description"] == "那个人天天在3号楼楼道里抽烟"


async def test_voice_filler_stays_out_of_what_happened_answered_later(wx: WeChat, services: Services) -> None:
    openid = oid()
    await wx.say(openid, "我要报修")
    for said in ("照明", "3号楼2单元"):
        await wx.say(openid, said)
    await wx.send("voice", openid, MediaId="m2", Format="amr", Recognition="嗯，就是，楼道的灯一直不亮。")
    summary = await _through(wx, openid, "跳过", "13812345678", "否")
    assert "情况：楼道的灯一直不亮" in summary, summary


@pytest.mark.parametrize("nod", ["好的", "好", "嗯", "行", "好的，我去拍", "嗯 等一下我回去再拍"])
async def test_a_nod_at_the_photo_question_is_told_how_to_send_one(wx: WeChat, services: Services, nod: str) -> None:
    """好的 where a photo is asked got 请发送照片；发完或者没有照片，请回复“好了”, the question again and,
    the second time, 如果不方便回答，回复“人工” (好的，我去拍 was even added to what happened); it is
    the resident saying they will send one: told how, now, and the photo that follows is taken."""
    openid = oid()
    assert "拍张照片" in await wx.say(openid, "3号楼楼道灯坏了")
    for _ in range(3):
        reply = await wx.say(openid, nod)
        assert "拍摄" in reply and "相册" in reply and "人工" not in reply and "补充" not in reply, reply
    assert "第1张" in await wx.send("image", openid, PicUrl="http://img.example/1.jpg", MediaId="p1")
    assert "联系电话" in await wx.say(openid, "好的")  # after a photo, a nod ends the photos
    summary = await _through(wx, openid, "13812345678", "否")
    assert "照片：1张" in summary and "情况：3号楼楼道灯坏了\n" in summary, summary


@pytest.mark.parametrize("none", ["没有", "不用", "没有照片"])
async def test_no_photo_at_the_photo_question_goes_on(wx: WeChat, none: str) -> None:
    openid = oid()
    await wx.say(openid, "3号楼楼道灯坏了")
    assert "联系电话" in await wx.say(openid, none)


@pytest.mark.parametrize("question", ["小区大门晚上几点锁啊", "东门什么时候有人值班", "南门停车场怎么申请车位"])
async def test_a_question_with_a_place_word_at_the_place_question_is_no_place(
        wx: WeChat, services: Services, question: str) -> None:
    """小区大门晚上几点锁啊 where the place is asked was stored as the place (it names 小区大门) and the
    report went on to the photo; a question is answered (the FAQ, or a person can) and the place
    asked again."""
    openid = oid()
    assert "问题在哪里" in await wx.say(openid, "楼道灯坏了")
    reply = await wx.say(openid, question)
    assert "问题在哪里" in reply and "拍张照片" not in reply and "人工" in reply, reply
    assert "拍张照片" in await wx.say(openid, "3号楼2单元")
    summary = await _through(wx, openid, "跳过", "13812345678", "否")
    assert "地点：3号楼2单元" in summary, summary


async def test_a_place_said_with_when_it_broke_is_still_the_place(wx: WeChat) -> None:
    openid = oid()
    await wx.say(openid, "路灯坏了")
    assert "拍张照片" in await wx.say(openid, "南门那边 不知道什么时候坏的")


async def test_no_at_the_place_question_is_not_taken_for_a_question(wx: WeChat) -> None:
    """没有 where the place is asked was answered 您问的“没有”我这里答不上来 (没有 ends as 修了没有 does)."""
    openid = oid()
    await wx.say(openid, "楼道灯坏了")
    reply = await wx.say(openid, "没有")
    assert "答不上来" not in reply and "问题在哪里" in reply, reply


async def _told_power_is_back(wx: WeChat, wc: WeCom, openid: str) -> None:
    """3号楼 is announced without power, the resident registers from 3号楼, staff end it: the 恢复通知."""
    assert "已发布" in await wc.say("liustaff", "停电 3 预计18:00 线路检修")
    assert "回复 1 登记" in await wx.say(openid, "3号楼停电了")
    assert "已为您登记" in await wx.say(openid, "1")
    assert "已通知登记的 1 户" in await wc.say("liustaff", "恢复 停电 3")


async def test_still_no_power_after_the_restored_notice_is_reported_at_the_registered_building(
        client: Any, wx: WeChat, services: Services) -> None:
    """我家还是没电 after the 恢复通知 asked 问题在哪里 though the outage registration knew 3号楼; the
    report now goes there (said, with how to correct it), to 3号楼's grid worker."""
    await load_demo_roster(services)
    wc, openid = WeCom(client, services), oid()
    await _told_power_is_back(wx, wc, openid)
    reply = await wx.say(openid, "我家还是没电")
    assert "问题在哪里" not in reply and "3号楼" in reply and "改地址" in reply, reply
    summary = reply
    for said in ("跳过", "13812345678", "否"):
        if "请核对" not in summary:
            summary = await wx.say(openid, said)
    assert "地点：3栋" in summary and "情况：我家还是没电" in summary, summary
    await wx.say(openid, "确认")
    [ticket] = await tickets_of(services, openid)
    assert (ticket.building, ticket.grid, ticket.assignee) == ("3", "G1", "wangwei"), ticket.fields


async def test_still_no_power_long_after_or_never_registered_asks_the_place(
        client: Any, wx: WeChat, services: Services, clock: FakeClock) -> None:
    await load_demo_roster(services)
    wc, openid = WeCom(client, services), oid()
    await _told_power_is_back(wx, wc, openid)
    assert "问题在哪里" in await wx.say(oid(), "我家还是没电")  # someone else: no building known
    assert "问题在哪里" in await wx.say(openid, "我家楼道灯不亮")  # no outage named: asked
    await wx.say(openid, "取消")
    clock.advance(hours=49)
    assert "问题在哪里" in await wx.say(openid, "我家还是没电")


async def test_two_reports_typed_in_traditional_characters_are_both_taken(wx: WeChat, services: Services) -> None:
    """我要報修 廚房水管漏水了 還有 樓下的路燈也不亮 (a phone set to traditional characters) was one
    水电气暖 report, the street light lost in its description: 還有 was not read as 还有. Now the leak is
    reported first and the light taken right after, each in the resident's own characters."""
    openid = oid()
    reply = await wx.say(openid, "我要報修 廚房水管漏水了 還有 樓下的路燈也不亮")
    assert "两件事" in reply and "樓下的路燈也不亮" in reply, reply
    done = await _through(wx, openid, "5號樓3單元502", "沒有", "13612345678", "否", "確認")
    assert "工单号" in done and "接着办您说的另一件事" in done, done
    [ticket] = await tickets_of(services, openid)
    assert ticket.fields["description"] == "我要報修 廚房水管漏水了" and ticket.category == "水电气暖", ticket.fields


async def test_a_voiced_opening_that_says_nothing_yet_is_not_what_happened(wx: WeChat, services: Services) -> None:
    """嗯 那个 就是 我想反映个事儿 was taken as what happened (its filler counted as words), and the
    matter told next was added after it (情况：嗯 那个 就是 我想反映个事儿；…)."""
    openid = oid()
    assert "哪一类问题" in await wx.say(openid, "嗯 那个 就是 我想反映个事儿")
    reply = await wx.say(openid, "楼下那个垃圾桶 好几天没人倒了 臭死了")
    assert "问题在哪里" in reply and "已补充" not in reply, reply
    summary = await _through(wx, openid, "3号楼门口", "跳过", "13812345678", "中")
    assert "情况：楼下那个垃圾桶 好几天没人倒了 臭死了\n" in summary and "绑定号码：是" in summary, summary


@pytest.mark.parametrize("none", ["没得", "木有"])
async def test_no_photo_said_in_dialect_goes_on(wx: WeChat, none: str) -> None:
    """没得 (没有 in south-western speech) where a photo is asked got 请发送照片 and the question again."""
    openid = oid()
    await wx.say(openid, "4号楼1单元楼道灯坏了")
    assert "联系电话" in await wx.say(openid, none)
