"""Loose ends of the dialogs found walking /sim as residents, driven through /wechat on both
backends: a phone after the country code, 确认 at 您是党员吗, an emergency submitted as soon as its
place and phone are known."""

from __future__ import annotations

import uuid

import pytest

from bot.services import Services
from tests.conftest import WeChat
from tests.flow_helpers import resident, tickets_of
from tests.wecom_driver import outbox_rows


def oid() -> str:
    return "o" + uuid.uuid4().hex[:20]


@pytest.mark.parametrize("typed", ["+8613812345678", "008613812345678", "+86 138 1234 5678", "＋86-138-1234-5678"])
async def test_a_phone_after_the_country_code_is_taken(wx: WeChat, services: Services, typed: str) -> None:
    openid = oid()
    for said in ("楼道灯坏了", "5号楼2单元", "跳过"):
        await wx.say(openid, said)
    assert "绑定" in await wx.say(openid, typed)
    summary = await wx.say(openid, "否")
    assert "联系电话：13812345678" in summary, summary
    await wx.say(openid, "确认")
    [ticket] = await tickets_of(services, openid)
    assert ticket.fields["phone"] == "13812345678"


async def test_a_landline_and_a_short_number_are_unchanged(wx: WeChat) -> None:
    openid = oid()
    for said in ("楼道灯坏了", "5号楼2单元", "跳过"):
        await wx.say(openid, said)
    assert "手机号好像不对" in await wx.say(openid, "+86 1381234")
    assert "绑定" in await wx.say(openid, "0571-87654321")


async def test_confirm_at_the_party_question_is_no_answer(wx: WeChat, services: Services) -> None:
    openid = oid()
    for said in ("4", "王芳", "13812345678", "会电脑", "周末上午"):
        await wx.say(openid, said)
    assert "党员" in await wx.say(openid, "1 3")
    for said in ("确认", "好的"):
        again = await wx.say(openid, said)
        assert "请回复“是”或“否”" in again and "您是党员吗" in again, again
    assert "同意吗" in await wx.say(openid, "不是党员")
    summary = await wx.say(openid, "同意")
    assert "党员报到：否" in summary, summary
    await wx.say(openid, "1")
    [ticket] = await tickets_of(services, openid)
    assert ticket.fields["party_member"] is False


async def test_yes_at_the_party_question_is_still_yes(wx: WeChat, services: Services) -> None:
    openid = oid()
    for said in ("4", "王芳", "13812345678", "会电脑", "周末上午", "1"):
        await wx.say(openid, said)
    assert "同意吗" in await wx.say(openid, "是的")
    await wx.say(openid, "同意")
    await wx.say(openid, "1")
    [ticket] = await tickets_of(services, openid)
    assert ticket.fields["party_member"] is True


async def test_an_emergency_is_submitted_once_its_place_and_phone_are_known(wx: WeChat, services: Services) -> None:
    """楼道里好大一股煤气味: place, phone, 要把这个号码绑定吗, the summary and 确认 — four messages before
    anyone was told, while the advice says to leave the building. Now place and phone, and it is in."""
    openid = oid()
    first = await wx.say(openid, "楼道里好大一股煤气味 是不是漏气了")
    assert "关闭燃气阀门" in first and "问题在哪里" in first
    assert "联系电话" in await wx.say(openid, "3号楼2单元")
    done = await wx.say(openid, "13812345678")
    assert done.startswith("已按紧急情况登记，工单号：20261123-0001"), done
    assert "绑定" not in done and "请核对" not in done
    assert "地点：3号楼2单元" in done and "联系电话：13812345678" in done and "补充一下" in done
    assert done.rstrip().endswith("必要时拨打 119。")  # the advice is the last thing read
    [ticket] = await tickets_of(services, openid)
    assert ticket.urgency == "urgent" and ticket.fields["phone"] == "13812345678" and ticket.building == "3"
    assert (await resident(services, openid)).phone in (None, "")  # never asked, so not bound
    cards = [r for r in await outbox_rows(services, "wecom") if r.ticket_id == ticket.id]
    assert cards and all(r.urgent for r in cards)
    # what was wrong or more is added to the report and its owner told, as the reply says
    added = await wx.say(openid, "补充一下：是3号楼1单元 不是2单元")
    assert ticket.number in added, added
    assert any("3号楼1单元" in str(r.payload) for r in await outbox_rows(services, "wecom") if r.ticket_id == ticket.id)


async def test_an_emergency_with_a_bound_phone_needs_only_the_place(wx: WeChat, services: Services) -> None:
    openid = oid()
    for said in ("楼道灯坏了", "5号楼2单元", "跳过", "13900001111", "是", "确认"):  # an ordinary report binds it
        await wx.say(openid, said)
    assert "在哪里" in await wx.say(openid, "电线冒火花了")
    done = await wx.say(openid, "6号楼1单元")
    assert "已按紧急情况登记" in done and "联系电话：13900001111" in done and "切断电源" in done, done
    _, urgent = await tickets_of(services, openid)
    assert urgent.urgency == "urgent" and urgent.building == "6"


async def test_an_ordinary_report_still_asks_binding_and_confirmation(wx: WeChat, services: Services) -> None:
    openid = oid()
    for said in ("楼道灯坏了", "5号楼2单元", "跳过"):
        await wx.say(openid, said)
    assert "绑定" in await wx.say(openid, "13812345678")
    assert "请核对" in await wx.say(openid, "否")
    assert await tickets_of(services, openid) == []


@pytest.mark.parametrize("said", ["我們樓的電梯又壞了 老人下不了樓", "5号楼电梯停了 好几天了"])
async def test_a_lift_out_of_service_is_a_24_hour_job(wx: WeChat, services: Services, said: str) -> None:
    """我們樓的電梯又壞了 老人下不了樓 got 紧急程度：一般 (7 days); a lift is given the 24-hour class by
    config/limits.toml [category_class], and its label says 24 hours, not 水电燃气暖."""
    openid = oid()
    reply = await wx.say(openid, said)
    for answer in ("5号楼", "跳过", "13812345678", "否"):
        if "请核对" in reply:
            break
        reply = await wx.say(openid, answer)
    assert "问题类别：电梯" in reply and "紧急程度：较急（24小时内）" in reply, reply
    assert "水电" not in reply
    done = await wx.say(openid, "确认")
    assert "11月24日 10:00前" in done, done  # a day from now (10:00 on the 23rd), not a week
    [ticket] = await tickets_of(services, openid)
    assert ticket.urgency == "utility" and ticket.category == "电梯"


async def test_a_lamp_stays_a_seven_day_job(wx: WeChat, services: Services) -> None:
    openid = oid()
    for said in ("楼道灯坏了", "5号楼2单元", "跳过", "13812345678"):
        await wx.say(openid, said)
    assert "紧急程度：一般" in await wx.say(openid, "否")
    assert "11月30日 10:00前" in await wx.say(openid, "确认")


def test_category_class_is_checked() -> None:
    from bot.limits import parse_limits

    base = {"resolve_hours": {"urgent": 2, "utility": 24, "normal": 168, "complex": 360}}
    assert parse_limits({**base, "category_class": {"电梯": "utility"}}).category_class == {"电梯": "utility"}
    assert parse_limits(base).category_class == {}
    with pytest.raises(ValueError, match="category_class.电梯"):
        parse_limits({**base, "category_class": {"电梯": "complex"}})


async def test_impatience_with_a_report_open_chases_its_owner(wx: WeChat, services: Services) -> None:
    """怎么还没人来啊 都一天了 got only the status line and 等了半天了 the menu; impatience chases the
    owner as 催一下 does (once in twelve hours), a plain status question does not."""
    openid = oid()
    for said in ("楼道灯坏了", "5号楼2单元", "跳过", "13812345678", "否", "确认"):
        await wx.say(openid, said)
    [ticket] = await tickets_of(services, openid)
    asked = await wx.say(openid, "我的工单怎么样了")
    assert ticket.number in asked and "催促" not in asked
    chased = await wx.say(openid, "怎么还没人来啊 都一天了")
    assert chased.startswith(f"已帮您催促工单 {ticket.number}") and "李娜" in chased, chased
    pushes = [r for r in await outbox_rows(services, "wecom") if "居民催办" in str(r.payload)]
    assert len(pushes) == 1 and pushes[0].ticket_id == ticket.id
    again = await wx.say(openid, "等了半天了")
    assert again.startswith(f"工单 {ticket.number} 已经催促过"), again
    assert len([r for r in await outbox_rows(services, "wecom") if "居民催办" in str(r.payload)]) == 1


async def test_impatience_with_nothing_open_is_no_chase(wx: WeChat, services: Services) -> None:
    reply = await wx.say(oid(), "等了半天了")
    assert "催促" not in reply
    assert not [r for r in await outbox_rows(services, "wecom") if "居民催办" in str(r.payload)]


async def test_thanks_at_the_place_question_is_no_wrong_place(wx: WeChat, services: Services) -> None:
    openid = oid()
    await wx.say(openid, "楼道灯坏了")
    reply = await wx.say(openid, "谢谢")
    assert reply.startswith("不客气") and "问题在哪里" in reply and "请告诉我具体位置" not in reply, reply
    assert "照片" in await wx.say(openid, "5号楼2单元")


async def test_an_empty_location_at_a_later_question_keeps_the_place(wx: WeChat, services: Services) -> None:
    """A location with no label and no point sent where the photo is asked said 请告诉我具体位置, then
    asked for the photo; the place answered stays, said so, and the photo is asked."""
    openid = oid()
    for said in ("楼道灯坏了", "5号楼2单元"):
        await wx.say(openid, said)
    reply = await wx.send("location", openid, Location_X="", Location_Y="", Scale=15, Label="")
    assert "没有地点信息" in reply and "5号楼2单元" in reply and "照片" in reply, reply
    assert "请告诉我具体位置" not in reply
    for said in ("跳过", "13812345678", "否", "确认"):
        await wx.say(openid, said)
    [ticket] = await tickets_of(services, openid)
    assert ticket.fields["place"] == "5号楼2单元" and ticket.fields["location"] is None


async def test_a_care_note_from_the_time_or_address_answer_is_kept_as_typed(wx: WeChat, services: Services) -> None:
    """明天上午 我腿腳不好 at the time question, 要人扶著 at the phone's: the notes were stored simplified
    (我腿脚不好), unlike every other answer, which is kept as typed and read simplified."""
    openid = oid()
    assert "给谁预约" in await wx.say(openid, "约个陪诊")
    for answer in ("我自己", "王秀蘭", "80"):
        await wx.say(openid, answer)
    assert "想约哪一天" in await wx.say(openid, "3棟")
    told = await wx.say(openid, "明天上午 我腿腳不好")
    assert "11月24日 07:30" in told and "联系电话" in told, told
    assert "備註" not in told and "要人扶著" in await wx.say(openid, "要人扶著")
    await wx.say(openid, "13812345678")
    summary = await wx.say(openid, "否")
    assert "备注：我腿腳不好，要人扶著" in summary, summary
    await wx.say(openid, "确认")
    [ticket] = await tickets_of(services, openid)
    assert ticket.fields["notes"] == "我腿腳不好，要人扶著"
