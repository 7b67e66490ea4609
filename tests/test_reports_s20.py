"""Residents' reports walked in session 20, driven through /wechat on both backends: 中 (Henan's 好的)
at the photo question, the building kept in 我的信息 offered where a report names no place, 否 at a
report's summary, and a question about the estate's gate not answered with the office's hours."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from bot import faq
from bot.services import Services
from tests.conftest import WeChat
from tests.flow_helpers import dialog_of, tickets_of
from tests.staff_support import make_resident
from tests.test_residents_reports_s19 import _through, oid


async def test_zhong_at_the_photo_question_is_a_nod(wx: WeChat, services: Services) -> None:
    """中 (好的 in Henan) where a photo is asked got 请发送照片；发完或者没有照片，请回复“好了” and
    the question again, then 如果不方便回答，回复“人工”; it is answered as 好的 is (2f062f1): how to
    send one now, no wrong answer counted, and after a photo it ends the photos."""
    openid = oid()
    assert "拍张照片" in await wx.say(openid, "3号楼楼道灯坏了")
    told = [await wx.say(openid, nod) for nod in ("中", "中嘞", "中 我去拍", "中")]
    assert all("拍摄" in r and "相册" in r and "人工" not in r and "请发送照片" not in r for r in told), told
    assert "第1张" in await wx.send("image", openid, PicUrl="http://img.example/1.jpg", MediaId="p1")
    assert "联系电话" in await wx.say(openid, "中")  # after a photo, 中 ends the photos
    await _through(wx, openid, "13812345678", "否", "确认")
    [ticket] = await tickets_of(services, openid)
    assert len(ticket.fields["photos"]) == 1 and ticket.fields["description"] == "3号楼楼道灯坏了", ticket.fields


async def test_a_question_about_the_gate_is_not_answered_with_the_office_hours(wx: WeChat, services: Services) -> None:
    """小区大门晚上几点关门 got the service centre's office hours (几点关门 was a word of that entry);
    no entry is about the gate, so a person answers it (the FAQ's fallback, 人工 offered), while the
    office's own closing time is still its hours."""
    for said in ("小区大门晚上几点关门", "超市几点关门", "菜市场早上几点开门"):
        openid = oid()
        reply = await wx.say(openid, said)
        assert "办公时间：" not in reply and "需要工作人员解答" in reply and "人工" in reply, (said, reply)
        assert "抱歉" not in reply and await dialog_of(services, openid) is None, (said, reply)
    for said in ("几点关门", "你们周末几点开门啊", "请问居委会星期六上不上班", "服务中心下午几点下班"):
        assert "服务中心办公时间" in await wx.say(oid(), said), said


def test_an_asks_word_needs_its_subject(tmp_path: Path) -> None:
    path = tmp_path / "faq.toml"
    path.write_text('plain = ["晚上"]\n[[faq]]\nasks = ["几点关门"]\nsubject = ["你们"]\nanswer = "五点半。"\n\n'
                    '[[faq]]\nwords = ["找谁"]\nanswer = "请问工作人员"\nfallback = true\n', encoding="utf-8")
    assert faq.answer("你们晚上几点关门", path) == "五点半。"
    assert faq.answer("几点关门？", path) == "五点半。"
    assert faq.answer("大门晚上几点关门", path) == "请问工作人员"
    with pytest.raises(ValueError, match="subject"):
        faq.parse(tomllib.loads('[[faq]]\nasks = ["几点关门"]\nanswer = "x"\n'), "faq.toml")
    with pytest.raises(ValueError, match="plain"):
        faq.parse(tomllib.loads('plain = "晚上"\n'), "faq.toml")


async def test_a_report_naming_no_place_is_offered_the_building_of_my_info(wx: WeChat, services: Services) -> None:
    """楼道灯坏了 from a resident whose 我的信息 keeps 3号楼 was asked 问题在哪里 as if nothing were
    known; the building is offered (是 takes it, as 就是我们楼 does) and another place can still be said."""
    openid = oid()
    await make_resident(services, openid)  # 我的信息: 3号楼, phone bound
    asked = await wx.say(openid, "楼道灯坏了")
    assert "您登记的住址是“3栋”" in asked and "问题在哪里" in asked, asked
    assert "地点按您登记的住址：3栋" in await wx.say(openid, "是")
    summary = await _through(wx, openid, "跳过")
    assert "地点：3栋" in summary, summary
    await wx.say(openid, "确认")
    [ticket] = await tickets_of(services, openid)
    assert ticket.building == "3" and ticket.fields["place"] == "3栋", ticket.fields
    other = oid()
    await make_resident(services, other)
    await wx.say(other, "电梯坏了")
    assert "地点按您登记的住址：3栋" in await wx.say(other, "就是我们楼")
    henan = oid()
    await make_resident(services, henan)
    await wx.say(henan, "电梯坏了")
    assert "地点按您登记的住址：3栋" in await wx.say(henan, "中")  # 是 in Henan, not 请告诉我具体位置
    elsewhere = oid()
    await make_resident(services, elsewhere)
    await _through(wx, elsewhere, "路灯不亮了", "南门停车场", "跳过", "确认")
    [lamp] = await tickets_of(services, elsewhere)
    assert lamp.fields["place"] == "南门停车场" and not lamp.building, lamp.fields


async def test_the_building_is_not_offered_for_another_household_nor_when_none_is_kept(wx: WeChat, services: Services) -> None:
    openid = oid()
    await make_resident(services, openid)
    reply = await wx.say(openid, "帮我妈报修 她家水管漏了")
    assert "问题在哪里" in reply and "您登记的住址" not in reply, reply
    reply = await wx.say(oid(), "楼道灯坏了")  # nothing in 我的信息
    assert "问题在哪里" in reply and "您登记的住址" not in reply, reply


async def test_no_at_a_reports_summary_says_nothing_went_and_how_to_drop_it(wx: WeChat, services: Services) -> None:
    """否 at 请核对…1. 确认提交 2. 修改 says the summary is not right: what to change is asked, as
    before, but the menu did not say the report was not sent, nor how to drop it, to a resident
    whose 否 meant "don't send it"; it says both, 取消 then drops it and 0 goes back to the summary."""
    openid = oid()
    menu = await _through(wx, openid, "3号楼楼道灯坏了", "跳过", "13812345678", "否", "否")
    assert "修改哪一项" in menu and "还没有提交" in menu and "取消" in menu, menu
    assert "没有提交任何内容" in await wx.say(openid, "取消")
    assert await tickets_of(services, openid) == [] and await dialog_of(services, openid) is None
    again = oid()
    await _through(wx, again, "3号楼楼道灯坏了", "跳过", "13812345678", "否", "否")
    assert "请核对" in await wx.say(again, "0")
    await wx.say(again, "确认")
    assert len(await tickets_of(services, again)) == 1
