"""How residents actually answer, through /wechat on both backends: traditional characters, a
cancel word that answers the question in hand, "no photo" in words, and a time given where a
name or a person is asked."""

from __future__ import annotations

import uuid

from bot.flows import survey
from bot.clock import FakeClock
from bot.services import Services
from tests.conftest import WeChat
from tests.flow_helpers import PHOTO, dialog_of, group_posts, tickets_of


def oid() -> str:
    return "o" + uuid.uuid4().hex[:20]


async def to_the_number(wx: WeChat, openid: str, reply: str) -> str:
    """An urgent report's remaining questions answered 否 (none understood as 没太明白), and 确认
    if asked: the reply that gives the ticket's number."""
    while "请核对" not in reply and "工单号" not in reply:
        assert "没太明白" not in reply, reply
        reply = await wx.say(openid, "否")
    if "工单号" not in reply:
        reply = await wx.say(openid, "确认")
    return reply


async def test_a_complaint_in_traditional_characters_is_read_and_routed(wx: WeChat, services: Services) -> None:
    openid = oid()
    assert "问题在哪里" in await wx.say(openid, "我家樓道的燈壞了")
    assert "拍张照片" in await wx.say(openid, "3號樓2單元")
    assert "联系电话" in await wx.say(openid, "跳過")
    assert "绑定" in await wx.say(openid, "13800138001")
    summary = await wx.say(openid, "否")
    assert "请核对" in summary and "3号楼2单元" in summary
    done = await wx.say(openid, "確認")
    assert "工单号" in done and "王伟" in done  # building 3 is 王伟's grid
    [ticket] = await tickets_of(services, openid)
    assert ticket.building == "3" and ticket.assignee == "wangwei" and ticket.fields["unit"] == "2"
    assert ticket.fields["description"] == "我家樓道的燈壞了"  # the resident's own words are kept


async def test_traditional_commands_and_survey_words() -> None:
    # read in simplified characters; the comment kept as typed (test_survey: stored as typed)
    assert survey.parse_rating("不滿意，燈還是不亮") == survey.Rating(2, "不满意", "燈還是不亮")
    assert survey.parse_rating("滿意") == survey.Rating(5, "满意", "")


async def test_cancel_words_that_answer_the_question_do_not_drop_the_report(wx: WeChat, services: Services) -> None:
    openid = oid()
    await wx.say(openid, "3号楼2单元楼道灯坏了")
    # 不用了 at the optional photos: no photo, not "cancel everything said so far".
    assert "联系电话" in await wx.say(openid, "不用了")
    # 不用了 at a question that must be answered: said why, and asked again.
    again = await wx.say(openid, "不用了")
    assert "这一项需要填写" in again and "取消" in again and "联系电话" in again
    state = await dialog_of(services, openid)
    assert state is not None and state.flow == "complaint"
    assert "绑定" in await wx.say(openid, "13800138001")
    # 不用了 to binding the phone is 否.
    summary = await wx.say(openid, "不用了")
    assert "请核对" in summary and "绑定号码：否" in summary
    # At the summary it is still a cancel: nothing written.
    assert "已取消" in await wx.say(openid, "不用了")
    assert await tickets_of(services, openid) == []
    assert await dialog_of(services, openid) is None


async def test_no_photo_in_words_and_the_plain_cancel_words(wx: WeChat, services: Services) -> None:
    openid = oid()
    await wx.say(openid, "9栋1单元楼道灯坏了")
    assert "联系电话" in await wx.say(openid, "没有照片")
    assert "已取消" in await wx.say(openid, "算了")  # a cancel word that answers nothing cancels
    assert await dialog_of(services, openid) is None
    other = oid()
    await wx.say(other, "9栋1单元楼道灯坏了")
    assert "联系电话" in await wx.say(other, "结束")  # 结束 after the photos ends them
    assert "请告诉我具体位置" not in await wx.say(other, "13800138002")


async def test_a_place_that_says_nothing_is_asked_again(wx: WeChat, services: Services) -> None:
    openid = oid()
    assert "问题在哪里" in await wx.say(openid, "楼道灯坏了，晚上很黑")
    again = await wx.say(openid, "不用了")
    assert "这一项需要填写" in again and "问题在哪里" in again
    assert "拍张照片" in await wx.say(openid, "南门停车场")


async def test_a_time_where_a_person_or_a_name_is_asked_is_questioned_once(wx: WeChat, services: Services) -> None:
    openid = oid()
    assert "给谁预约" in await wx.say(openid, "订个助浴")
    # A time alone is the booking's time, checked as its question checks it: 助浴 is not given on Wednesdays.
    refused = await wx.say(openid, "下周三上午十点")
    assert "您说的时间约不上：这一天不提供" in refused and "给谁预约" in refused, refused
    assert "怎么称呼" in await wx.say(openid, "我妈")
    refused = await wx.say(openid, "改成后天")  # a change of time, and 助浴 is not given that day
    assert "时间没有改动" in refused and "姓名" in refused
    refused = await wx.say(openid, "下周三上午十点")
    assert "约不上" in refused and "姓名" in refused
    for not_a_name in ("我自己", "不用了", "谢谢"):
        assert "怎么称呼" in await wx.say(openid, not_a_name)
    state = await dialog_of(services, openid)
    assert state is not None and "for_name" not in state.slots
    # A real name that reads as a time (刘明天) is taken when said again.
    assert "听起来像是时间" in await wx.say(openid, "刘明天")
    assert "多大年纪" in await wx.say(openid, "刘明天")
    state = await dialog_of(services, openid)
    assert state is not None and state.slots["for_name"] == "刘明天" and state.slots["for_whom"] == "我妈"


async def test_thanks_and_goodbye_get_a_word_back_not_the_menu(wx: WeChat) -> None:
    openid = oid()
    hello = await wx.say(openid, "你好")
    assert "有什么可以帮您" in hello and "报事报修" in hello
    for said, answer in (("谢谢", "不客气"), ("谢谢你们，辛苦了", "不客气"), ("网格员很负责", "不客气"),
                         ("好的", "有需要随时找我"), ("再见", "有需要随时找我")):
        reply = await wx.say(openid, said)
        assert answer in reply and "报事报修" not in reply, (said, reply)


async def test_a_status_question_where_a_photo_is_asked_is_answered_and_the_photo_asked_again(
    wx: WeChat, services: Services
) -> None:
    openid = oid()
    await wx.say(openid, "9栋1单元楼道灯坏了")
    for answer in ("跳过", "13800138003", "否", "确认"):
        await wx.say(openid, answer)
    [first] = await tickets_of(services, openid)
    assert "拍张照片" in await wx.say(openid, "3号楼门口垃圾好几天没人收了")
    before = await dialog_of(services, openid)
    reply = await wx.say(openid, "我的工单怎么样了")
    assert first.number in reply and "拍张照片" in reply
    after = await dialog_of(services, openid)
    assert after is not None and before is not None
    assert (after.step, after.slots, after.invalid) == (before.step, before.slots, before.invalid)
    assert "联系电话" in await wx.say(openid, "好了")


async def test_a_time_inside_the_hours_that_no_slot_starts_at_is_told_the_starts(wx: WeChat) -> None:
    openid = oid()
    # 陪诊 runs in 4-hour slots from 07:30 and 13:00: 上午九点 is inside its hours, not a start.
    await wx.say(openid, "给我自己约个陪诊")
    for answer in ("张桂兰", "76", "3栋2单元301"):
        await wx.say(openid, answer)
    refused = await wx.say(openid, "后天上午九点")
    assert "每次240分钟" in refused and "07:30、13:00 开始" in refused and "{" not in refused
    assert "注意" in await wx.say(openid, "后天上午七点半")


async def test_a_choice_answered_with_a_whole_sentence_keeps_the_rest_of_it(wx: WeChat, services: Services) -> None:
    openid = oid()
    assert "哪一类" in await wx.say(openid, "我要报修")
    # Which kind? — the resident tells the whole matter: kind, place and what happened.
    assert "拍张照片" in await wx.say(openid, "小区南门的路灯不亮了")
    state = await dialog_of(services, openid)
    assert state is not None and state.slots["category"] == "照明"
    assert state.slots["description"] == "小区南门的路灯不亮了" and state.slots["place"]["landmark"] == "小区南门"
    # An emergency told that way gets what to do right now, as an opening message does.
    other = oid()
    await wx.say(other, "我要报修")
    urgent = await wx.say(other, "煤气泄漏了，在7号楼")
    assert "燃气抢修热线" in urgent and "联系电话" in urgent
    # A bare choice says nothing more: the next question is asked as before.
    third = oid()
    await wx.say(third, "我要报修")
    assert "问题在哪里" in await wx.say(third, "照明")


async def test_a_question_is_not_thanked(wx: WeChat) -> None:
    openid = oid()
    for said in ("灯修好了吗？", "好的吗", "谢谢，在吗"):
        reply = await wx.say(openid, said)
        assert "不客气" not in reply and "有需要随时找我" not in reply, (said, reply)


async def test_a_field_named_then_changed_at_the_summary(wx: WeChat, services: Services) -> None:
    openid = oid()
    await wx.say(openid, "3号楼2单元楼道灯坏了")
    for answer in ("跳过", "13800138001", "否"):
        await wx.say(openid, answer)
    summary = await wx.say(openid, "地址改成5号楼1单元")
    assert "请核对" in summary and "地点：5号楼1单元" in summary
    summary = await wx.say(openid, "把电话改为13900139000")
    assert "联系电话：13900139000" in summary
    assert "工单号" in await wx.say(openid, "确认")
    [ticket] = await tickets_of(services, openid)
    assert ticket.building == "5" and ticket.fields["phone"] == "13900139000"


async def test_a_bare_thing_named_is_asked_about(wx: WeChat) -> None:
    openid = oid()
    for said, category in (("电梯", "电梯"), ("路灯", "照明"), ("垃圾", "环境卫生")):
        reply = await wx.say(openid, said)
        assert f"您是要反映“{category}”方面的问题吗" in reply and "我可以帮您" not in reply
    # A longer message the classifier cannot place still gets the menu; 垃圾分类怎么弄, which got it,
    # is answered from config/faq.toml.
    assert "我可以帮您" in await wx.say(openid, "电梯里贴的那张海报是什么意思")
    assert "垃圾分四类" in await wx.say(openid, "垃圾分类到底应该怎么弄")
    assert "哪一类" not in await wx.say(openid, "3号楼电梯坏了")


async def test_what_a_resident_says_instead_of_answering(wx: WeChat, services: Services) -> None:
    # 喂 alone: someone starting to talk gets the greeting, not "not understood".
    openid = oid()
    for said in ("喂", "喂喂"):
        reply = await wx.say(openid, said)
        assert "有什么可以帮您" in reply and "没太明白" not in reply
    # A time given where the place is asked is questioned once.
    await wx.say(openid, "邻居装修太吵了，天天早上七点就开始砸墙")
    refused = await wx.say(openid, "周六上午")
    assert "听起来像是时间" in refused and "地点" in refused
    assert "拍张照片" in await wx.say(openid, "5号楼2单元")
    # 不想说 where a name must be given: said why, and how to cancel.
    other = oid()
    assert "姓名" in await wx.say(other, "我想报名志愿者")
    refused = await wx.say(other, "不想说")
    assert "这一项需要填写" in refused and "姓名" in refused
    state = await dialog_of(services, other)
    assert state is not None and "full_name" not in state.slots
    # 上门做饭 is the meal service.
    third = oid()
    assert "给谁预约" in await wx.say(third, "家里老人想找人上门做饭")
    state = await dialog_of(services, third)
    assert state is not None and state.slots["service"] == "助餐"


async def test_a_phone_number_sent_where_photos_are_asked_answers_the_phone(
    wx: WeChat, services: Services
) -> None:
    openid = oid()
    await wx.say(openid, "小区里有只流浪狗咬人")
    assert "拍张照片" in await wx.say(openid, "东门附近")
    assert "绑定" in await wx.say(openid, "我电话13700000014")
    state = await dialog_of(services, openid)
    assert state is not None and state.slots["phone"] == "13700000014" and state.slots["photos"] is None
    summary = await wx.say(openid, "否")
    assert "请核对" in summary and "照片：无" in summary


async def test_booking_for_oneself_is_asked_about_oneself(wx: WeChat) -> None:
    openid = oid()
    assert "请问您怎么称呼" in await wx.say(openid, "给我自己约个陪诊")
    assert "请问您多大年纪" in await wx.say(openid, "张桂兰")
    other = oid()
    assert "请问老人怎么称呼" in await wx.say(other, "给我妈订个助餐")
    assert "请问老人多大年纪" in await wx.say(other, "王秀英")


async def test_a_time_named_first_that_cannot_be_booked_is_said_when_the_time_is_asked(wx: WeChat) -> None:
    openid = oid()
    await wx.say(openid, "给我自己约个陪诊 后天上午九点")
    for answer in ("张桂兰", "76"):
        await wx.say(openid, answer)
    asked = await wx.say(openid, "3栋2单元301")
    assert "您说的“后天上午九点”" in asked and "07:30、13:00 开始" in asked and "想约哪一天" in asked
    # said once: an answer that is not a time gets the hint and the question, not the reason again
    again = await wx.say(openid, "他耳朵不太好")
    assert "没有看懂时间" in again and "想约哪一天" in again and "您说的" not in again
    # A time the opening named that can be booked is simply taken (the existing tests), and a
    # question without one says nothing of it.
    other = oid()
    await wx.say(other, "给我自己约个陪诊")
    for answer in ("张桂兰", "76"):
        await wx.say(other, answer)
    asked = await wx.say(other, "3栋2单元301")
    assert "想约哪一天" in asked and "您说的" not in asked


async def test_words_with_nothing_of_a_place_are_questioned_once_as_the_place(wx: WeChat, services: Services) -> None:
    openid = oid()
    assert "问题在哪里" in await wx.say(openid, "我要投诉！！！物业什么都不管😡😡")
    refused = await wx.say(openid, "就是不管")
    assert "好像不是一个地点" in refused and "问题在哪里" in refused
    assert "拍张照片" in await wx.say(openid, "就是不管")  # said again: taken as it is
    state = await dialog_of(services, openid)
    assert state is not None and state.slots["place"]["landmark"] == "就是不管"
    for place in ("花坛边", "地下车库", "快递柜旁边"):
        other = oid()
        await wx.say(other, "我要投诉！！！物业什么都不管😡😡")
        assert "拍张照片" in await wx.say(other, place), place


async def test_a_bare_thing_then_what_is_wrong_with_it_is_one_report(wx: WeChat, services: Services) -> None:
    openid = oid()
    assert "您是要反映“电梯”方面的问题吗" in await wx.say(openid, "电梯")
    assert "问题在哪里" in await wx.say(openid, "坏了")  # not "which kind of problem" again
    assert "拍张照片" in await wx.say(openid, "3号楼2单元")
    assert "联系电话" in await wx.say(openid, "否")  # 否 to "a photo if you can" is none
    assert "绑定" in await wx.say(openid, "13800138001")
    summary = await wx.say(openid, "否")
    assert "问题类别：电梯" in summary and "情况：电梯，坏了" in summary and "照片：无" in summary
    assert "工单号" in await wx.say(openid, "确认")
    [ticket] = await tickets_of(services, openid)
    assert ticket.category == "电梯" and ticket.building == "3"


async def test_after_a_bare_thing_yes_no_another_request_or_a_long_pause(
    wx: WeChat, services: Services, clock: FakeClock
) -> None:
    yes, no, other, later = oid(), oid(), oid(), oid()
    for openid in (yes, no, other, later):
        await wx.say(openid, "电梯")
    assert "问题在哪里" in await wx.say(yes, "是的")
    state = await dialog_of(services, yes)
    assert state is not None and state.flow == "complaint" and state.slots["category"] == "电梯"
    assert "请直接说您要办的事" in await wx.say(no, "不是")
    assert await dialog_of(services, no) is None
    assert "没有正在办理的工单" in await wx.say(other, "我的工单怎么样了")
    assert await dialog_of(services, other) is None
    clock.advance(11 * 60)  # the category said alone is carried for ten minutes
    assert "哪一类" in await wx.say(later, "坏了")


async def test_a_phone_number_sent_before_its_question_is_kept_for_it(wx: WeChat, services: Services) -> None:
    openid = oid()
    await wx.say(openid, "明天上午给我妈订助餐")
    kept = await wx.say(openid, "13900139000")
    assert "电话已经记下了" in kept and "请问老人怎么称呼" in kept
    for answer in ("王秀英", "82", "3号楼2单元301"):
        await wx.say(openid, answer)
    assert "绑定" in await wx.say(openid, "跳过")  # the notes; the phone is not asked again
    summary = await wx.say(openid, "否")  # not bound
    assert "请核对" in summary and "13900139000" in summary and "王秀英" in summary


async def test_one_character_inside_a_sentence_does_not_pick_a_choice(wx: WeChat) -> None:
    openid = oid()
    await wx.say(openid, "3号楼2单元楼道灯坏了")
    await wx.say(openid, "跳过")
    assert "绑定" in await wx.say(openid, "13800138001")
    # 好 (yes) is inside 好几天了: not a yes to binding the number.
    again = await wx.say(openid, "晚上一片黑，好几天了")
    assert "请回复选项前面的数字" in again and "绑定" in again
    assert "绑定号码：否" in await wx.say(openid, "不是")


async def test_a_booking_time_changed_while_another_question_is_asked(wx: WeChat, services: Services) -> None:
    openid = oid()
    await wx.say(openid, "明天上午给我妈订助餐")
    await wx.say(openid, "王秀英")
    changed = await wx.say(openid, "改成后天")  # 11-23 is a Monday: the day moves, the morning stays
    assert "时间改为11月25日 上午" in changed and "多大年纪" in changed
    refused = await wx.say(openid, "改成晚上十一点")
    assert "时间没有改动" in refused and "17:00" in refused and "多大年纪" in refused
    assert "服务地址" in await wx.say(openid, "82")
    await wx.say(openid, "3号楼2单元301")
    assert "时间改为11月28日 中午" in await wx.say(openid, "时间换到周六中午")
    await wx.say(openid, "跳过")
    await wx.say(openid, "13800138001")
    summary = await wx.say(openid, "否")  # not bound
    assert "请核对" in summary and "11月28日 中午" in summary


async def test_a_menu_click_or_a_photo_after_a_thing_named_alone(wx: WeChat, services: Services) -> None:
    clicked, sent = oid(), oid()
    await wx.say(clicked, "电梯")
    opened = await wx.event(clicked, "CLICK", "MENU_ELDERLY")  # nothing was running: no "switched from"
    assert "预约" in opened and "报事报修" not in opened
    state = await dialog_of(services, clicked)
    assert state is not None and state.flow == "elderly_service"
    await wx.say(sent, "电梯")
    assert "我们来登记一下这个问题" in await wx.send("image", sent, **PHOTO)  # a report begun with the photo
    state = await dialog_of(services, sent)
    assert state is not None and state.flow == "complaint" and state.part != "about" and state.slots["photos"]


async def test_an_earlier_answer_changed_while_another_question_is_asked(wx: WeChat, services: Services) -> None:
    """地址改成… / 电话错了，是… before the summary: the field changes there and then, the question
    in hand is asked again; a sentence that only mentions an edit word is still the answer."""
    openid = oid()
    await wx.say(openid, "3号楼2单元楼道灯坏了")
    assert "联系电话" in await wx.say(openid, "没有照片")
    changed = await wx.say(openid, "地址改成5号楼1单元")
    assert "好的，地点已改为：5号楼1单元" in changed and "联系电话" in changed
    assert "绑定" in await wx.say(openid, "13800138001")
    changed = await wx.say(openid, "电话错了，是13900139002")
    assert "联系电话已改为：13900139002" in changed and "绑定" in changed
    # A change that its own question would refuse is not made, and said why.
    kept = await wx.say(openid, "地址改成明天上午")
    assert "地点没有改动" in kept and "如果没有说错，请再发一次" in kept and "绑定" in kept
    state = await dialog_of(services, openid)
    assert state is not None and state.slots["place"]["building"] == "5"
    # said again, it is taken (as the address question itself would), and then changed back
    assert "地点已改为：明天上午" in await wx.say(openid, "地址改成明天上午")
    assert "地点已改为：5号楼1单元" in await wx.say(openid, "地址改成5号楼1单元")
    summary = await wx.say(openid, "否")
    assert "5号楼1单元" in summary and "13900139002" in summary
    await wx.say(openid, "确认")
    [ticket] = await tickets_of(services, openid)
    assert ticket.building == "5" and ticket.fields["phone"] == "13900139002"

    # Not answered yet, or only mentioned inside the answer: read as the answer in hand.
    other = oid()
    assert "问题在哪里" in await wx.say(other, "楼道灯坏了，晚上很黑")
    assert "拍张照片" in await wx.say(other, "地址改成7号楼")  # no address before: it is the address
    state = await dialog_of(services, other)
    assert state is not None and state.slots["place"]["building"] == "7"


async def test_a_field_named_before_its_question_is_kept_for_it(wx: WeChat, services: Services) -> None:
    """电话是… / 地址改成… before their questions: kept, said so, and those questions not asked."""
    openid = oid()
    assert "怎么称呼" in await wx.say(openid, "明天中午给我妈订助餐")
    assert "多大年纪" in await wx.say(openid, "王秀英")
    noted = await wx.say(openid, "电话是13900139002")
    assert "好的，联系电话先记下了：13900139002" in noted and "多大年纪" in noted
    noted = await wx.say(openid, "地址改成3号楼2单元")
    assert "地址先记下了：3号楼2单元" in noted and "多大年纪" in noted
    await wx.say(openid, "80")
    assert "绑定" in await wx.say(openid, "没有")
    summary = await wx.say(openid, "否")  # not bound
    assert "请核对" in summary and "13900139002" in summary and "3号楼2单元" in summary
    # at the summary, "电话是…" is an edit too
    assert "13800138003" in await wx.say(openid, "电话是13800138003")
    state = await dialog_of(services, openid)
    assert state is not None and state.slots["phone"] == "13800138003"


async def test_the_unit_and_room_added_later_complete_the_place(wx: WeChat, services: Services) -> None:
    """三号楼 in the first message, 2单元502 at the photo request: added to the place, not refused
    as "not a photo"; a bare number is not read as a room."""
    openid = oid()
    first = await wx.say(openid, "喂 你好 我是三号楼的 我们家那个 下水道堵了 好几天了 你们能不能派人来看看")
    assert "拍张照片" in first
    added = await wx.say(openid, "2单元502")
    assert "好的，地点补充为：3栋2单元502" in added and "拍张照片" in added
    assert "联系电话" in await wx.say(openid, "没有")
    assert "地点补充为：3栋2单元602" in await wx.say(openid, "602室")  # the room corrected, the unit kept
    assert "绑定" in await wx.say(openid, "13800138000")
    again = await wx.say(openid, "502")  # a bare number: not a room; the question asked again
    assert "绑定" in again and "补充" not in again
    summary = await wx.say(openid, "否")
    assert "地点：3栋2单元602" in summary
    await wx.say(openid, "确认")
    [ticket] = await tickets_of(services, openid)
    assert ticket.building == "3" and ticket.fields["unit"] == "2" and ticket.fields["room"] == "602"


def test_place_more_reads_only_a_unit_or_a_room() -> None:
    from bot.flows.parsers import place_more

    three = {"building": "3", "text": "三号楼"}
    assert place_more(three, "2单元502") == {"building": "3", "unit": "2", "room": "502", "text": "3栋2单元502"}
    assert place_more(three, "二单元") == {"building": "3", "unit": "2", "text": "3栋2单元"}
    assert place_more({**three, "unit": "2"}, "502室。") == {"building": "3", "unit": "2", "room": "502",
                                                            "text": "3栋2单元502"}
    for text in ("502", "5号", "2单元502，水管漏了", "13800138000", "是"):
        assert place_more(three, text) is None, text
    assert place_more({"landmark": "南门", "text": "南门"}, "2单元") is None  # no building to add to


async def test_a_dispute_told_with_a_try_already_made_skips_did_you_talk(wx: WeChat, services: Services) -> None:
    """找他他不认账: they talked; 还没跟他说: they did not; neither: the question is asked."""
    openid = oid()
    asked = await wx.say(openid, "楼上邻居家漏水把我家天花板泡坏了 找他他不认账 想请社区帮忙调解一下")
    assert "什么时候方便" in asked and "沟通过吗" not in asked
    await wx.say(openid, "这周六上午")
    summary = await wx.say(openid, "13800138000")
    assert "是否沟通过：已经沟通过，没谈拢" in summary
    assert "（也可以直接说“改时间”“电话不对”）" in summary  # the mediation's own edit words
    other = oid()
    assert "什么时候方便" in await wx.say(other, "楼下邻居天天晚上吵 我还没跟他说 想请社区出面调解")
    state = await dialog_of(services, other)
    assert state is not None and state.slots["talked"] == "no"
    third = oid()
    assert "沟通过吗" in await wx.say(third, "和楼上邻居因为漏水闹矛盾了 想申请调解")


async def test_the_time_of_a_booking_is_changed_at_its_summary(wx: WeChat, services: Services) -> None:
    """改时间 / 时间改成… at a booking's summary: the time of the chosen service is asked again or
    changed (before, 改时间 was answered "reply 1 or 2")."""
    openid = oid()
    for text in ("明天中午给我妈订助餐", "王秀英", "80", "3号楼2单元", "没有"):
        await wx.say(openid, text)
    await wx.say(openid, "13800138000")
    summary = await wx.say(openid, "否")  # not bound
    assert "请核对" in summary and "（也可以直接说“改时间”“改地址”）" in summary
    assert "想约哪一天" in await wx.say(openid, "改时间")
    changed = await wx.say(openid, "后天中午")
    assert "请核对" in changed and "11月25日 中午" in changed
    changed = await wx.say(openid, "时间改成大后天中午")
    assert "请核对" in changed and "11月26日 中午" in changed
    refused = await wx.say(openid, "时间改成后天凌晨三点")  # outside the service's hours: asked again
    assert "想约哪一天" in refused and "请核对" not in refused


async def test_an_edit_at_the_summary_is_checked_as_its_question_checks_it(wx: WeChat, services: Services) -> None:
    openid = oid()
    await wx.say(openid, "3号楼2单元楼道灯坏了")
    await wx.say(openid, "没有")
    await wx.say(openid, "13800138000")
    assert "请核对" in await wx.say(openid, "否")
    refused = await wx.say(openid, "地址改成明天上午")
    assert "听起来像是时间" in refused and "问题在哪里" in refused and "请核对" not in refused
    taken = await wx.say(openid, "明天上午")  # said again: taken, as the place question does
    assert "请核对" in taken and "地点：明天上午" in taken


def test_a_landmark_that_names_its_building_is_not_prefixed_with_it() -> None:
    from bot.flows.parsers import place_text

    assert place_text({"building": "3", "landmark": "3号楼门口"}) == "3号楼门口"  # not 3栋3号楼门口
    assert place_text({"building": "3", "landmark": "南门"}) == "3栋南门"
    assert place_text({"building": "3", "unit": "2", "room": "502"}) == "3栋2单元502"


async def test_a_phone_number_at_a_choice_question_is_kept_for_the_phone(wx: WeChat, services: Services) -> None:
    """13800138000 where 沟通过吗 is asked: kept for the phone question (before: 'reply a number')."""
    openid = oid()
    await wx.say(openid, "我想申请调解")
    await wx.say(openid, "邻居")
    assert "沟通过吗" in await wx.say(openid, "楼上漏水到我家天花板")
    kept = await wx.say(openid, "13800138000")
    assert "电话已经记下了" in kept and "沟通过吗" in kept
    await wx.say(openid, "2")
    summary = await wx.say(openid, "都可以")
    assert "请核对" in summary and "13800138000" in summary  # the phone question was not asked


async def test_a_change_said_after_a_correction_word(wx: WeChat, services: Services) -> None:
    """哎呀不对 还是改成后天吧 / 算了 改成后天吧 were kept as the booking's notes, and 不对 是5号楼
    at the photos was asked for photos again, the report staying with building 3's grid worker."""
    openid = oid()
    await wx.say(openid, "明天上午给我妈订助餐")
    await wx.say(openid, "王秀英")
    changed = await wx.say(openid, "哎呀不对 还是改成后天吧")
    assert "时间改为11月25日 上午" in changed and "多大年纪" in changed
    assert "时间改为11月26日 上午" in await wx.say(openid, "算了 改成大后天吧")
    await wx.say(openid, "取消")
    other = oid()
    await wx.say(other, "3号楼电梯坏了")
    moved = await wx.say(other, "不对 是5号楼")
    assert "地点已改为：5号楼" in moved and "拍张照片" in moved
    for said in ("跳过", "13812345678", "否", "确认"):
        await wx.say(other, said)
    [ticket] = await tickets_of(services, other)
    assert ticket.building == "5"


async def test_a_request_left_too_long_is_said_lapsed_and_can_go_on(
    wx: WeChat, services: Services, clock: FakeClock
) -> None:
    """3号楼2单元楼道灯坏了 → 跳过, then the phone two hours later: before, "I did not understand"
    and the report was gone without a word. Now the resident is told, and 继续 goes on."""
    openid = oid()
    await wx.say(openid, "3号楼2单元楼道灯坏了")
    assert "联系电话" in await wx.say(openid, "跳过")
    clock.advance(hours=2, minutes=1)
    told = await wx.say(openid, "13900007777")
    assert told.startswith("（您之前没办完的“报事报修”") and "继续" in told
    resumed = await wx.say(openid, "继续")
    assert "接着办" in resumed and "联系电话" in resumed  # where it stopped, with what was answered
    await wx.say(openid, "13900007777")
    await wx.say(openid, "否")
    assert "工单号" in await wx.say(openid, "确认")
    [ticket] = await tickets_of(services, openid)
    assert ticket.building == "3" and ticket.fields["phone"] == "13900007777"
    # told once: the message after the notice, if not 继续, lets it go
    other = oid()
    await wx.say(other, "5号楼1单元楼道灯坏了")  # not 3号楼: that one is reported now
    clock.advance(hours=3)
    assert "没办完" in await wx.say(other, "你好")
    assert "没办完" not in (after := await wx.say(other, "你好")) and "接着办" not in after
    assert "接着办" not in await wx.say(other, "继续")
    # a day later: forgotten without a word
    third = oid()
    await wx.say(third, "7号楼1单元楼道灯坏了")
    clock.advance(hours=25)
    assert "没办完" not in await wx.say(third, "你好")
    # something new begun at once: said, and the new request goes on
    fourth = oid()
    await wx.say(fourth, "9号楼1单元楼道灯坏了")
    clock.advance(hours=3)
    new = await wx.say(fourth, "明天中午给我妈订个助餐")
    assert "已经没有保存" in new and "怎么称呼" in new


async def test_erasing_asked_in_the_middle_of_a_request_is_asked_first(wx: WeChat, services: Services) -> None:
    """删除我的信息 while a mediation was being filled in: before, the mediation was thrown away even
    when the erasure was then declined. Now it is asked first, and 否 goes on with the mediation."""
    openid = oid()
    await wx.say(openid, "楼上天天半夜吵，想请人调解")
    asked = await wx.say(openid, "删除我的信息")
    assert "矛盾调解" in asked and "删除我的信息" in asked and "是" in asked
    back = await wx.say(openid, "否")
    assert "沟通过吗" in back
    assert "什么时候方便" in await wx.say(openid, "还没有")
    await wx.say(openid, "删除我的信息")
    assert "确定要删除" in await wx.say(openid, "是")


async def test_an_activity_signup_or_cancel_in_the_middle_of_a_request(wx: WeChat, services: Services) -> None:
    """取消报名 楼道清洁 while a report was asked for its place: before, "leave it for a booking?";
    报名敬老院探访 at the volunteer signup's name question became the volunteer's name."""
    from bot.activities import load_activities

    await load_activities(services)
    openid = oid()
    assert "报名成功" in await wx.say(openid, "报名 楼道清洁")
    await wx.say(openid, "楼道灯坏了")
    cancelled = await wx.say(openid, "取消报名 楼道清洁")
    assert "已为您取消" in cancelled and "问题在哪里" in cancelled  # served, then back to the report
    assert "拍张照片" in await wx.say(openid, "3栋")
    other = oid()
    assert "姓名" in await wx.say(other, "我想当志愿者")
    signed = await wx.say(other, "报名敬老院探访")
    assert "报名成功" in signed and "姓名" in signed
    state = await dialog_of(services, other)
    assert state is not None and "full_name" not in state.slots


async def test_activities_by_the_residents_own_words(wx: WeChat, services: Services) -> None:
    """我要参加楼道清洁 began the volunteer questionnaire; 我的报名 and a bare 取消报名 were not understood."""
    from bot.activities import load_activities

    await load_activities(services)
    openid = oid()
    joined = await wx.say(openid, "我要参加楼道清洁")
    assert "报名成功" in joined and "姓名" not in joined
    mine = await wx.say(openid, "我的报名")
    assert "楼道清洁志愿行动" in mine
    assert "楼道清洁志愿行动" in await wx.say(openid, "取消报名")  # which one: listed
    assert "姓名" in await wx.say(oid(), "我要参加志愿服务")  # still the volunteer signup


async def test_a_registered_volunteer_and_a_mediation_answer_in_their_own_words(wx: WeChat, services: Services) -> None:
    """A second 我想当志愿者 ran the whole questionnaire again; 没找过他 at 沟通过吗 was stored as talked."""
    openid = oid()
    for said in ("我想当志愿者", "张国强", "13600008888", "电工", "周末", "1 3", "否", "1", "1"):
        await wx.say(openid, said)
    again = await wx.say(openid, "我想当志愿者")
    assert "已经登记为社区志愿者" in again and "张国强" in again
    assert "已经登记为社区志愿者" in await wx.say(openid, "4")  # the menu's 志愿者 too
    talker = oid()
    await wx.say(talker, "对门养的狗天天在楼道里拉屎，我想申请调解")
    reply = await wx.say(talker, "没找过他")
    assert "什么时候方便" in reply
    state = await dialog_of(services, talker)
    assert state is not None and state.slots["talked"] == "no"


async def test_an_emergency_said_with_a_greeting_gets_the_advice_not_the_menu(wx: WeChat, services: Services) -> None:
    """你好 我闻到煤气味了 / 楼道里好大的煤气味 were answered with the menu or 好的，有需要随时找我."""
    for said in ("你好 我闻到煤气味了", "楼道里好大的煤气味", "谢谢你们 我家厨房着火了"):
        reply = await wx.say(oid(), said)
        assert "⚠️" in reply and "问题在哪里" in reply, (said, reply)


async def test_the_same_report_again_offers_a_chase_instead_of_a_second_ticket(wx: WeChat, services: Services) -> None:
    """A resident repeating their own open report (same kind, same building) is told it is in
    hand, with 1 催一下 / 2 a new report after all; 2 or 不是，… registers the new one."""
    openid = oid()
    await wx.say(openid, "三号楼二单元楼道灯坏了")
    for answer in ("否", "13812345678", "否"):
        await wx.say(openid, answer)
    assert "工单号" in await wx.say(openid, "确认")
    [first] = await tickets_of(services, openid)

    again = await wx.say(openid, "三号楼二单元楼道灯坏了 你们快来修啊")
    assert "已经反映过这个问题" in again and first.number in again and "1. 催一下" in again, again
    chased = await wx.say(openid, "1")
    assert f"已帮您催促工单 {first.number}" in chased, chased
    assert len(await tickets_of(services, openid)) == 1
    async with services.sessions() as session:
        from sqlalchemy import select

        from storage.models import OutboxItem, TicketEvent
        urged = list(await session.scalars(select(TicketEvent).where(
            TicketEvent.ticket_id == first.id, TicketEvent.action == "urged")))
        pushes = [i.payload for i in await session.scalars(select(OutboxItem).where(OutboxItem.target == "wangwei"))]
    assert len(urged) == 1 and any("居民催办" in str(p) for p in pushes), pushes

    assert "已经反映过" in await wx.say(openid, "3号楼2单元楼道灯又坏了")
    assert "拍张照片" in await wx.say(openid, "不是，我说的是5楼的灯")
    for answer in ("否", "13812345678"):
        await wx.say(openid, answer)
    summary = await wx.say(openid, "否")
    assert "请核对" in summary and "5楼的灯" in summary, summary
    assert "工单号" in await wx.say(openid, "确认")
    assert len(await tickets_of(services, openid)) == 2


async def test_another_building_or_kind_is_a_new_report_without_asking(wx: WeChat, services: Services) -> None:
    openid = oid()
    await wx.say(openid, "三号楼二单元楼道灯坏了")
    for answer in ("否", "13812345678", "否", "确认"):
        await wx.say(openid, answer)
    assert "已经反映过" not in await wx.say(openid, "五号楼一单元楼道灯坏了")
    await wx.say(openid, "取消")
    assert "已经反映过" not in await wx.say(openid, "三号楼二单元电梯坏了")


async def test_an_old_person_fallen_is_an_emergency_and_a_fall_feared_is_not(wx: WeChat, services: Services) -> None:
    """我老伴摔倒了 / 老头子在卫生间摔了 got 没太明白 and the menu: a person fallen is the urgent report
    with the 120 advice; a fall nearly had or feared, one long past, or a thing dropped is not."""
    for said in ("我老伴摔倒了", "我妈摔倒了", "老头子在卫生间摔了", "我爸在楼下摔了一跤"):
        openid = oid()
        reply = await wx.say(openid, said)
        assert reply.startswith("⚠️") and "120" in reply and "问题在哪里" in reply, (said, reply)
        state = await dialog_of(services, openid)
        assert state is not None and state.slots["urgency"] == "urgent" and state.slots["emergency"] == "medical"
    calm = ("差点摔倒了", "怕摔倒", "地滑容易摔倒", "楼梯扶手坏了老人容易摔倒", "我妈去年摔倒过", "我妈去年摔倒了一次",
            "手机摔坏了", "碗摔了", "我把碗摔了")
    for said in calm:
        openid = oid()
        reply = await wx.say(openid, said)
        assert "⚠️" not in reply and "120" not in reply, (said, reply)
        state = await dialog_of(services, openid)
        assert state is None or state.slots.get("urgency") != "urgent", (said, state)
    # the hazard is an ordinary report, asked as any other
    hazard = oid()
    assert "哪一类问题" in await wx.say(hazard, "楼梯扶手坏了 老人容易摔倒")
    state = await dialog_of(services, hazard)
    assert state is not None and state.flow == "complaint" and state.slots.get("urgency") != "urgent"


async def test_a_fall_with_a_phone_number_becomes_an_urgent_ticket(wx: WeChat, services: Services) -> None:
    openid = oid()
    reply = await wx.say(openid, "我老伴摔倒了 13812345678")
    assert reply.startswith("⚠️") and "120" in reply and "问题在哪里" in reply, reply
    reply = await wx.say(openid, "3号楼2单元502")
    reply = await to_the_number(wx, openid, reply)
    assert "工单号" in reply and "120" in reply, reply
    [ticket] = await tickets_of(services, openid)
    assert ticket.kind == "complaint" and ticket.urgency == "urgent" and ticket.category == "其他"
    assert ticket.building == "3" and ticket.fields["phone"] == "13812345678"


async def test_asking_for_a_person_in_an_older_residents_words(wx: WeChat, services: Services) -> None:
    """喂 喂 我想找个人, 住在七号楼三单元 有没有人啊 and the voice homophone 转人公 got 没太明白: each
    hands off to a person (the building said is the hand-off's); 有人吗 / 有没有人啊 alone is a hello
    (the menu, whose 6 is a person), and 我想找个人帮忙修水管 is about the pipe."""
    for said, building in (("喂 喂 我想找个人", None), ("喂 喂 我想找个人 住在七号楼三单元", "7"),
                           ("住在七号楼三单元, 有没有人啊", "7"), ("转人公", None)):
        openid = oid()
        reply = await wx.say(openid, said)
        assert "转接人工服务" in reply and "没太明白" not in reply, (said, reply)
        [ticket] = await tickets_of(services, openid)
        assert ticket.kind == "handoff" and ticket.building == building, (said, ticket.building)
    voiced = oid()
    reply = await wx.send("voice", voiced, MediaId="v_h1", Format="amr", Recognition="转人公")
    assert "转接人工服务" in reply, reply
    for said in ("有人吗", "有没有人啊"):
        openid = oid()
        reply = await wx.say(openid, said)
        assert "有什么可以帮您" in reply and "6. 转人工服务" in reply, (said, reply)
        assert await tickets_of(services, openid) == []
    openid = oid()
    assert "转接人工服务" not in await wx.say(openid, "我想找个人帮忙修水管")
    assert await tickets_of(services, openid) == []


async def test_a_person_asked_for_with_an_emergency_is_the_urgent_hand_off(wx: WeChat, services: Services) -> None:
    """人工 我家水管爆了 6号楼 started the urgent report and asked for a phone number — the person
    the resident asked for was not told. Now it is the urgent hand-off at once: the ticket urgent in
    building 6, the staff group and the building's grid workers told, the burst advice said."""
    from tests.wecom_driver import outbox_rows

    openid = oid()
    reply = await wx.say(openid, "人工 我家水管爆了 6号楼")
    assert "马上通知社区工作人员" in reply and "网格员" in reply and "总水阀" in reply, reply
    assert "联系电话" not in reply
    [ticket] = await tickets_of(services, openid)
    assert ticket.kind == "handoff" and ticket.urgency == "urgent" and ticket.building == "6"
    assert "水管爆了" in ticket.summary
    [post] = [p for p in await group_posts(services) if p.ticket_id == ticket.id]
    assert "紧急" in post.payload["content"]
    for worker in ("lina", "zhaoqiang"):  # 望湖第二网格 has building 6
        [push] = [r for r in await outbox_rows(services, "wecom", worker) if r.ticket_id == ticket.id]
        assert push.urgent and "紧急求助" in push.payload["text"]
    assert await dialog_of(services, openid) is None
    fainted = oid()
    reply = await wx.say(fainted, "转人工 我老伴晕倒了")
    assert "马上通知社区工作人员" in reply and "120" in reply, reply
    [ticket] = await tickets_of(services, fainted)
    assert ticket.kind == "handoff" and ticket.urgency == "urgent"
    # 有人吗 with an emergency asks no person by name: the urgent report, its advice and questions
    other = oid()
    reply = await wx.say(other, "喂 喂 有人吗 我家老头子晕过去了")
    assert reply.startswith("⚠️") and "120" in reply and "问题在哪里" in reply, reply
    assert await tickets_of(services, other) == []
    # 人工 with no emergency is left as it was (here the report, asked where): nothing urgent
    calm = oid()
    assert "马上通知" not in await wx.say(calm, "人工 我家楼道灯坏了")
    assert all(t.urgency != "urgent" for t in await tickets_of(services, calm))


async def _urgent_reply(wx: WeChat, services: Services, said: str, advice: str, kind: str) -> None:
    """said opens the urgent report: the advice of its kind first, then where it is."""
    openid = oid()
    reply = await wx.say(openid, said)
    assert reply.startswith("⚠️") and advice in reply and "问题在哪里" in reply, (said, reply)
    state = await dialog_of(services, openid)
    assert state is not None and state.slots["urgency"] == "urgent" and state.slots["emergency"] == kind, (said, state)


async def _no_emergency(wx: WeChat, services: Services, said: str) -> None:
    """said gets no advice and starts nothing urgent."""
    openid = oid()
    reply = await wx.say(openid, said)
    assert "⚠️" not in reply and "120" not in reply, (said, reply)
    state = await dialog_of(services, openid)
    assert state is None or state.slots.get("urgency") != "urgent", (said, state)
    assert all(t.urgency != "urgent" for t in await tickets_of(services, openid))


async def test_a_person_fallen_while_washing_up_is_urgent_and_a_dish_dropped_is_not(
    wx: WeChat, services: Services
) -> None:
    """老伴在厨房洗碗摔了 got 没太明白 and the menu: 洗碗摔 holds 碗摔 (a bowl broke), which calmed it."""
    for said in ("老伴在厨房洗碗摔了", "我妈在厨房刷碗摔倒了", "老头子看手机摔了一跤", "老伴洗碗的时候摔了"):
        await _urgent_reply(wx, services, said, "120", "medical")
    for said in ("碗摔了", "我把碗摔了", "手机摔坏了", "杯子摔碎了", "老伴把碗摔在地上了"):
        await _no_emergency(wx, services, said)


async def test_a_fall_long_past_is_no_emergency_and_one_just_now_is(wx: WeChat, services: Services) -> None:
    """我去年在家摔了 got the 120 advice and an urgent report: a fall long past is no emergency;
    one said of now (刚才, 刚刚, 今天, 现在) is, even after an old one (去年摔过 今天又摔倒了)."""
    for said in ("我去年在家摔了", "我妈上个月在楼下摔了一跤", "以前摔过一次", "前几年摔倒过", "好几年前摔了",
                 "差点摔倒", "怕摔倒", "万一老人摔倒了怎么办"):
        await _no_emergency(wx, services, said)
    for said in ("我妈刚才摔倒了", "我爸刚刚在卫生间摔了", "老伴今天在家摔了", "现在我妈摔倒在地上",
                 "我妈去年摔过 今天又摔倒了", "老伴以前是电工 刚才在厨房摔倒了"):
        await _urgent_reply(wx, services, said, "120", "medical")


async def test_other_emergencies_in_an_older_residents_words(wx: WeChat, services: Services) -> None:
    """没气了, 喘不过气, 胸口疼, 中风/嘴歪, 烧着了, 水漫进屋, 走丢了, 有人要跳楼 got 没太明白 and the
    menu, or the twelve categories: each is now the urgent report with the advice of its kind —
    in traditional characters and through voice recognition too."""
    said = {
        "我老伴没气了": ("120", "medical"), "老头子喘不过气来了": ("120", "medical"),
        "我胸口疼得厉害": ("120", "medical"), "我爸中风了": ("120", "medical"),
        "老伴嘴歪了 说不出话": ("120", "medical"), "我爸突然倒下了": ("120", "medical"),
        "我妈心脏病犯了": ("120", "medical"), "人没反应了": ("120", "medical"),
        "我妈是不是中风了": ("120", "medical"), "老伴喘不過氣來了": ("120", "medical"),
        "厨房烧着了": ("119", "fire"), "廚房燒著了": ("119", "fire"),
        "插座冒火花": ("95598", "electric"),
        "水漫进屋了": ("总水阀", "burst"), "水都漫到屋里了": ("总水阀", "burst"),
        "老人走丢了": ("110", "missing"), "我爸找不到了": ("110", "missing"),
        "我妈出门到现在没回来": ("110", "missing"),
        "楼顶有人要跳楼": ("110", "danger"), "有人拿刀": ("110", "danger"), "孩子掉水里了": ("110", "danger"),
    }
    for text, (advice, kind) in said.items():
        await _urgent_reply(wx, services, text, advice, kind)
    for n, text in enumerate(("我老伴没气了", "老人走丢了")):
        openid = oid()
        reply = await wx.send("voice", openid, MediaId=f"v_em{n}", Format="amr", Recognition=text)
        assert reply.startswith("⚠️") and ("120" in reply or "110" in reply), (text, reply)
    # what shares their words is none: gas run out, a pet lost, a phone dropped in water, a wristband
    for text in ("家里没气了", "煤气罐没气了", "我家狗走丢了", "手机掉水里了", "防走失手环怎么申请"):
        await _no_emergency(wx, services, text)


async def test_an_emergency_said_to_be_over_or_no_hurry_is_not_urgent(wx: WeChat, services: Services) -> None:
    """我老伴摔倒了 现在不疼了 / 我摔了一下 没事了 / 老人走丢了 已经找到了 / 不是急事 … got the 120
    advice and an urgent report; what is over, or said to be no hurry, is not. An emergency said
    after the words that it is over still is (晕倒了 刚醒了 还是起不来)."""
    for said in ("我老伴摔倒了 现在不疼了", "我摔了一下 没事了", "我老伴晕倒了 已经好了",
                 "不是急事 我妈摔了 已经没事了", "老人走丢了 已经找到了", "摔倒的老人已经送医院了",
                 "我老伴没有摔倒"):
        await _no_emergency(wx, services, said)
    await _urgent_reply(wx, services, "我妈晕倒了 刚醒了 还是起不来", "120", "medical")
    # said to be over, the rest of the message is served as it would be: the handrail asked for
    openid = oid()
    reply = await wx.say(openid, "我妈摔倒了 现在已经好了 就是想问问能不能装扶手")
    assert "⚠️" not in reply, reply
    state = await dialog_of(services, openid)
    assert state is not None and state.flow == "elderly_service" and state.slots.get("service") == "适老化改造", state


async def test_a_person_lost_becomes_an_urgent_ticket_with_its_advice(wx: WeChat, services: Services) -> None:
    openid = oid()
    reply = await wx.say(openid, "老人走丢了 13812345678")
    assert reply.startswith("⚠️") and "110" in reply and "衣着" in reply, reply
    reply = await wx.say(openid, "3号楼2单元502")
    reply = await to_the_number(wx, openid, reply)
    assert "工单号" in reply and "110" in reply, reply
    [ticket] = await tickets_of(services, openid)
    assert ticket.kind == "complaint" and ticket.urgency == "urgent" and ticket.category == "其他"
    assert ticket.building == "3" and ticket.fields["description"] == "老人走丢了 13812345678"


async def test_more_emergencies_as_older_residents_say_them(wx: WeChat, services: Services) -> None:
    """A broken leg, someone dying, a stroke's signs, choking, black smoke, sparks, poison, someone
    wandered off, a life in danger: each got 没太明白 and the menu (or the 110/119/120 line with no
    advice of its kind); now each is the urgent report with its advice. Their look-alikes are not."""
    said = {
        "老人从床上掉下来了": ("120", "medical"), "我爸摔断腿了": ("120", "medical"),
        "人快不行了 快来人": ("120", "medical"), "老头子抽过去了": ("120", "medical"),
        "老伴一边手脚不能动了": ("120", "medical"), "我爸突然说话不清楚了": ("120", "medical"),
        "老伴气喘不上来": ("120", "medical"), "我老伴被噎住了": ("120", "medical"),
        "老伴喝了半瓶敌敌畏": ("120", "medical"), "手被刀割了 流了好多血": ("120", "medical"),
        "马蜂把老人蛰了 肿得很厉害": ("120", "medical"),
        "一氧化碳中毒": ("96777", "gas"), "楼下冒黑烟了": ("119", "fire"), "插线板烧了 冒火星": ("95598", "electric"),
        "电梯里关着人呢": ("96333", "trapped"), "我奶奶有老年痴呆 出去了没回来": ("110", "missing"),
        "有个人站在楼顶上 好像要跳": ("110", "danger"), "楼下两个人打起来了 动刀了": ("110", "danger"),
        "有人撬我家门": ("110", "danger"), "孩子被关在车里了": ("110", "danger"), "我不想活了": ("110", "danger"),
        "我老伴摔倒了 没事吧": ("120", "medical"),  # asked whether it is over: it is not said to be
        # a quarrel turned violent was asked 您和对方沟通过吗 (the dispute's questions): the emergency first
        "邻居跟我吵起来了 他拿刀了": ("110", "danger"), "跟楼上吵架 他把我老伴推倒了 流血了": ("120", "medical"),
    }
    for text, (advice, kind) in said.items():
        await _urgent_reply(wx, services, text, advice, kind)
    for text in ("手机摔断了", "牙龈出血了 能预约陪诊吗", "工厂烟囱冒黑烟", "路太滑了 好几个老人摔了",
                 "老伴摔了一下 还好没什么事", "我老伴没事 就是摔了一下", "电视不行了"):
        await _no_emergency(wx, services, text)
    # a quarrel with nothing of the kind is still a dispute to mediate
    openid = oid()
    assert "⚠️" not in await wx.say(openid, "跟楼上邻居吵起来了 想找人调解一下")
    state = await dialog_of(services, openid)
    assert state is not None and state.flow == "mediation", state


async def test_a_fall_heard_by_voice_recognition_is_read_as_meant(wx: WeChat, services: Services) -> None:
    """Voice recognition writes 摔倒了 as 摔到了 (跌到了, 晕到了, 中疯了, 喘不上起): each got 没太明白 and
    the menu; now each is the urgent report with the 120 advice, typed or by voice. 手机摔到了地上
    is still a phone dropped, and 我摔到了 不要紧 is said to be nothing."""
    for n, said in enumerate(("我妈摔到了", "我爸跌到了", "老头子晕到了", "老伴中疯了", "我爸喘不上起来",
                              "我妈在厕所跌跤了", "我妈摔了个大跟头", "老人摔得起不了身")):
        await _urgent_reply(wx, services, said, "120", "medical")
        reply = await wx.send("voice", oid(), MediaId=f"v_fall{n}", Format="amr", Recognition=said)
        assert reply.startswith("⚠️") and "120" in reply, (said, reply)
    for said in ("手机摔到了地上", "我摔到了 不要紧", "孩子在翻跟头"):
        await _no_emergency(wx, services, said)


async def test_weak_water_pressure_is_a_water_report(wx: WeChat, services: Services) -> None:
    """3号楼水压太小了 got 没太明白 and the menu (水压低 was a fault, 水压太小 not): low pressure in
    its usual words is a 水电气暖 report of that building."""
    openid = oid()
    reply = await wx.say(openid, "3号楼水压太小了")
    assert "没太明白" not in reply and "拍张照片" in reply, reply
    assert "联系电话" in await wx.say(openid, "跳过")
    assert "绑定" in await wx.say(openid, "13800138001")
    assert "请核对" in await wx.say(openid, "否")
    assert "工单号" in await wx.say(openid, "确认")
    [ticket] = await tickets_of(services, openid)
    assert (ticket.category, ticket.building) == ("水电气暖", "3")


async def test_a_cry_for_help_alone_reaches_a_person_at_once(wx: WeChat, services: Services) -> None:
    """快来人啊 / 来人啊 / 有没有人 快来 said alone (an old person's cry for help) got 没太明白 and the
    menu. It is the urgent hand-off now: the staff group told 【紧急】, the resident asked where they
    are; where they then say is on the ticket for staff. A repair asked for in the same words
    (楼道灯坏了 快来人修一下) stays a report, and a lift with someone in it stays the lift emergency."""
    for said in ("快来人啊", "来人啊", "有没有人 快来", "救命啊 快来人"):
        openid = oid()
        reply = await wx.say(openid, said)
        assert "转接人工服务" in reply and "您在哪里" in reply and "没太明白" not in reply, (said, reply)
        [ticket] = await tickets_of(services, openid)
        assert ticket.kind == "handoff" and ticket.urgency == "urgent", (said, ticket)
        [post] = [p for p in await group_posts(services) if p.ticket_id == ticket.id]
        assert "【紧急】" in post.payload["content"], post.payload
        assert await dialog_of(services, openid) is None
    then = await wx.say(openid, "5号楼3单元502")
    assert ticket.number in then and "没太明白" not in then, then
    calm = oid()
    reply = await wx.say(calm, "楼道灯坏了 快来人修一下")
    assert "问题在哪里" in reply and "⚠️" not in reply and "转接人工服务" not in reply, reply
    state = await dialog_of(services, calm)
    assert state is not None and state.flow == "complaint" and state.slots.get("urgency") != "urgent"
    lift = oid()
    assert "96333" in await wx.say(lift, "5号楼电梯困人了 快来人")
    state = await dialog_of(services, lift)
    assert state is not None and state.slots["emergency"] == "trapped"
    assert await tickets_of(services, lift) == []
    for hello in ("有人吗", "有没有人啊"):  # a hello, not a cry: the menu, whose 6 is a person
        assert "6. 转人工服务" in await wx.say(oid(), hello)


async def test_an_old_neighbour_not_seen_for_days_is_urgent(wx: WeChat, services: Services) -> None:
    """独居老人好几天没出门 敲门没人应 and the like got the menu (or a 环境卫生 report of a smell): an
    old person possibly collapsed inside is the urgent report, with 110/120 and the property to open
    the door first; a neighbour merely not met, or an old person who will not go out, is not."""
    for said in ("独居老人好几天没出门 敲门没人应", "楼上王奶奶两天没见着了 电话也不接",
                 "对门老人屋里有臭味 好几天没动静", "隔壁大爷三天没下楼了 敲门也没人应"):
        await _urgent_reply(wx, services, said, "开门查看", "welfare")
    openid = oid()
    await wx.say(openid, "楼上王奶奶两天没见着了 电话也不接")
    assert "联系电话" in await wx.say(openid, "7号楼2单元301")
    done = await wx.say(openid, "13800138021")  # submitted once place and phone are known
    assert "工单号" in done and "开门查看" in done, done
    [ticket] = await tickets_of(services, openid)
    assert ticket.urgency == "urgent" and ticket.building == "7" and ticket.fields["category"] == "其他"
    for said in ("我爸好几天没出门了 想约个人陪他散步", "好几天没见着网格员了"):
        await _no_emergency(wx, services, said)


async def test_smoke_said_to_be_no_hurry_is_an_ordinary_report(wx: WeChat, services: Services) -> None:
    """3号楼冒烟了 不是急事 got the menu: 不是急事 took the emergency away and nothing was left. The
    resident says it is no hurry (smoke seen, nobody in danger): it is the ordinary 消防安全 report of
    what was said, no 119 advice; 不是急事吧 asked is still the fire."""
    openid = oid()
    reply = await wx.say(openid, "3号楼冒烟了 不是急事")
    assert "⚠️" not in reply and "没太明白" not in reply, reply
    state = await dialog_of(services, openid)
    assert state is not None and state.flow == "complaint", state
    assert state.slots["category"] == "消防安全" and state.slots.get("urgency") != "urgent"
    assert state.slots["place"]["building"] == "3"
    await _urgent_reply(wx, services, "楼道里冒烟了 不是急事吧", "119", "fire")


async def test_older_residents_dialect_words_in_reports_and_bookings(wx: WeChat, services: Services) -> None:
    """俺家暖气不热乎, 俺家门口的路灯黑了, 楼道里的灯瞎了, 咋回事 楼道里黑咕隆咚的, 水管子滋水了,
    楼道灯不着了, 电梯按钮不灵了, 电梯不走了, 下水道返水了 got 没太明白 and the menu: each is a report of
    its category, asked where; 给俺妈约个陪诊 asked whom the booking is for: 俺妈 is 我妈."""
    for said, category in (("俺家暖气不热乎", "水电气暖"), ("俺家门口的路灯黑了", "照明"),
                           ("楼道里的灯瞎了", "照明"), ("咋回事 楼道里黑咕隆咚的", "照明"),
                           ("水管子滋水了", "水电气暖"), ("楼道灯不着了", "照明"), ("电梯按钮不灵了", "电梯"),
                           ("电梯不走了", "电梯"), ("家里下水道返水了", "环境卫生")):
        openid = oid()
        reply = await wx.say(openid, said)
        assert "问题在哪里" in reply and "没太明白" not in reply, (said, reply)
        state = await dialog_of(services, openid)
        assert state is not None and state.flow == "complaint" and state.slots["category"] == category, (said, state)
        assert state.slots["description"] == said  # the resident's own words are kept
    openid = oid()
    reply = await wx.say(openid, "给俺妈约个陪诊 明天上午")
    assert "给谁预约" not in reply and "怎么称呼" in reply, reply
    state = await dialog_of(services, openid)
    assert state is not None and state.slots["service"] == "陪诊" and state.slots["for_whom"] == "母亲", state
    # 事儿 is 事: 俺那个修灯的事儿咋样了 asks after a report, as 我那个修灯的事怎么样了 does
    asked = await wx.say(oid(), "俺那个修灯的事儿咋样了")
    assert "没有正在办理的工单" in asked and "没太明白" not in asked, asked
