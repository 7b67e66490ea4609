"""能不能带轮椅 asked in the middle of a booking, through /wechat on both backends: answered from
config/faq.toml (or, with no entry on it, told the provider will answer it when they call), kept on
the booking's note for the provider, and the question in hand asked again. Before: taken as the
name at 怎么称呼, or kept as a note with no answer."""

from __future__ import annotations

import uuid

from bot.services import Services
from tests.conftest import WeChat
from tests.flow_helpers import bookings_of


def oid() -> str:
    return "o" + uuid.uuid4().hex[:20]


async def test_an_aid_question_is_answered_and_kept_on_the_note(wx: WeChat, services: Services) -> None:
    openid = oid()
    assert "怎么称呼" in await wx.say(openid, "给我爸约个后天上午的陪诊")
    answered = await wx.say(openid, "能不能带轮椅")
    assert "陪诊可以推轮椅陪同" in answered and "备注先记下了：能不能带轮椅" in answered
    assert answered.rstrip().endswith("请问老人怎么称呼（姓名）？")  # not taken for the name
    assert "多大年纪" in await wx.say(openid, "李建国")
    await wx.say(openid, "81")
    asked = await wx.say(openid, "可以扶着去吗")  # no FAQ entry: the provider answers it
    assert "服务机构接单后会打电话跟您确认" in asked and "地址" in asked
    await wx.say(openid, "5号楼1单元202")
    await wx.say(openid, "13912345678")
    summary = await wx.say(openid, "否")
    assert "备注：能不能带轮椅，可以扶着去吗" in summary and "姓名：李建国" in summary
    assert "已为陪诊预约好" in await wx.say(openid, "1")
    [booking] = await bookings_of(services, openid)
    assert booking.notes == "能不能带轮椅，可以扶着去吗" and booking.for_name == "李建国"


async def test_a_need_said_is_still_a_note_without_an_answer(wx: WeChat, services: Services) -> None:
    openid = oid()
    await wx.say(openid, "给我爸约个后天上午的陪诊")
    for answer in ("李建国", "81"):
        await wx.say(openid, answer)
    noted = await wx.say(openid, "他要坐轮椅")  # said, not asked: a note as before
    assert "备注先记下了：他要坐轮椅" in noted and "陪诊可以推轮椅陪同" not in noted
