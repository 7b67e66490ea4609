"""Residents' reports walked in session 20, driven through /wechat on both backends: 中 (Henan's 好的)
at the photo question, the building kept in 我的信息 offered where a report names no place, 否 at a
report's summary, and a question about the estate's gate not answered with the office's hours."""

from __future__ import annotations

from bot.services import Services
from tests.conftest import WeChat
from tests.flow_helpers import tickets_of
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
