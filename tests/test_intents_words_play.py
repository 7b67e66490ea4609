"""Residents' words read at the opening of a conversation (both backends): a neighbour already
spoken to in vain is a mediation, the noise alone a complaint, a haircut said the old way a booking."""

from __future__ import annotations

import uuid

import pytest

from bot.services import Services
from tests.conftest import WeChat
from tests.flow_helpers import dialog_of, group_posts, tickets_of


def oid() -> str:
    return "o" + uuid.uuid4().hex[:20]


@pytest.mark.parametrize(("said", "asked"), [
    # the neighbour named: the mediation knows the other side and asks when the resident is free
    ("楼上邻居天天半夜跺脚 说了也不听", "调解员会约双方一起坐下来谈"),
    ("跟他说了没用", "请问是和谁发生的矛盾"),
    ("沟通过了 不管用", "请问是和谁发生的矛盾"),
    # not spoken to yet: the noise is reported
    ("楼上太吵了", "问题在哪里"),
    # what neighbours are heard doing is the noise; spoken to in vain and going on still, the mediation
    ("楼下天天半夜唱歌", "问题在哪里"),
    ("楼上那家 跟他说了也不听 到现在还没消停", "调解员会约双方一起坐下来谈"),
    # 剪个头, 剃个头: 理发, booked
    ("俺想找人上门剪个头", "请问是给谁预约"),
    ("想剪个头发", "请问是给谁预约"),
    ("剃个头", "请问是给谁预约"),
])
async def test_the_first_message_opens_the_matter_the_resident_means(wx: WeChat, said: str, asked: str) -> None:
    reply = await wx.say(oid(), said)
    assert asked in reply, reply


async def test_no_signal_in_a_shared_part_is_a_report_and_at_home_the_carriers_number(wx: WeChat) -> None:
    # the stairwell, the lift, the car park: the property asks the carriers — a report of the place
    reply = await wx.say(oid(), "楼道里没信号")
    assert "问题在哪里" in reply and "抱歉" not in reply, reply
    # one's own phone or TV: the carrier's matter, said with their numbers (config/faq.toml)
    reply = await wx.say(oid(), "我家手机没信号")
    assert "10086" in reply and "抱歉" not in reply, reply


async def test_an_old_person_locked_out_reaches_a_person_at_once(wx: WeChat, services: Services) -> None:
    """我家老头子进不去家门了 was asked 请问是哪一类问题 (a plain report, a grid worker by the next day):
    an old person or a child outside their door in the cold is the urgent hand-off now — the staff
    group told 【紧急】, the resident told where to wait and to call 110 for a registered locksmith.
    Anyone else locked out hears how to get the door opened; a door-entry fault stays a report."""
    for said in ("我家老头子进不去家门了", "俺妈出门忘带钥匙 进不了家", "鑰匙鎖屋裡了 老伴在外頭凍著呢",
                 "孩子放学回来进不去家 在楼道里哭呢"):
        openid = oid()
        reply = await wx.say(openid, said)
        assert "转接人工服务" in reply and "110" in reply and "保暖" in reply and "哪一类" not in reply, (said, reply)
        [ticket] = await tickets_of(services, openid)
        assert ticket.kind == "handoff" and ticket.urgency == "urgent", (said, ticket)
        [post] = [p for p in await group_posts(services) if p.ticket_id == ticket.id]
        assert "【紧急】" in post.payload["content"], post.payload
    alone = oid()
    reply = await wx.say(alone, "我钥匙锁屋里了 进不去家门了")
    assert "公安备案的开锁人员" in reply and "转接人工服务" not in reply, reply
    assert await tickets_of(services, alone) == []
    door = oid()
    assert "问题在哪里" in await wx.say(door, "单元门禁刷不开了 俺在外头进不去")
    assert await tickets_of(services, door) == []


async def test_a_message_in_english_goes_to_a_person_with_a_reply_in_both_languages(
    wx: WeChat, services: Services
) -> None:
    """The light in my corridor is broken / I need to talk to someone got 没太明白 and the Chinese menu.
    The dialog's questions are Chinese, so a person answers: the hand-off, told in English above the
    Chinese reply, with what the classifier made of it for staff (config/intents.toml [normalize.english])."""
    for said, guess in (("The light in my corridor is broken", "报事报修·照明"), ("I need to talk to someone", "要求人工服务")):
        openid = oid()
        reply = await wx.say(openid, said)
        assert "has gone to our staff" in reply and "转接人工服务" in reply and "没太明白" not in reply, reply
        [ticket] = await tickets_of(services, openid)
        assert ticket.kind == "handoff" and ticket.urgency != "urgent", ticket
        assert "居民用英文留言" in ticket.summary and guess in ticket.summary and said in ticket.summary, ticket.summary
    # what they write next is for that person: the same ticket
    more = await wx.say(openid, "I live in building 3, unit 2")
    assert "added for the member of staff" in more and "没太明白" not in more, more
    assert len(await tickets_of(services, openid)) == 1
    # an emergency: the urgent hand-off at once, the numbers in English and the advice
    lift = oid()
    reply = await wx.say(lift, "The elevator is stuck and someone is inside")
    assert reply.startswith("EMERGENCY") and "96333" in reply and "转接人工服务" in reply, reply
    [ticket] = await tickets_of(services, lift)
    assert ticket.kind == "handoff" and ticket.urgency == "urgent", ticket
    [post] = [p for p in await group_posts(services) if p.ticket_id == ticket.id]
    assert "【紧急】" in post.payload["content"], post.payload
    # an old person locked out, said in English: the same urgent hand-off as in Chinese
    father = oid()
    reply = await wx.say(father, "My dad is locked out and it is freezing")
    assert reply.startswith("EMERGENCY") and "保暖" in reply, reply
    [ticket] = await tickets_of(services, father)
    assert ticket.urgency == "urgent", ticket
    # hello: the greeting, a line in English above the menu; nothing handed to anyone
    hello = oid()
    reply = await wx.say(hello, "hello")
    assert reply.startswith("Hello!") and "6. 转人工服务" in reply, reply
    assert await tickets_of(services, hello) == []
    # ok, or a report with a Latin word in it, are read as before
    assert "Hello" not in await wx.say(oid(), "ok")
    assert "哪一类问题" in await wx.say(oid(), "小区的wifi信号好差 公共区域的网是不是坏了")


async def test_harm_in_the_family_reaches_a_person_at_once(wx: WeChat, services: Services) -> None:
    """我儿子儿媳妇不让我住家里了 把我锁在门外 我都七十多了 got the locksmith's answer (找家人备用钥匙),
    and 儿子打我 我不敢回家 没太明白: an old person hit or shut out by their own family is the urgent
    hand-off now — the staff group told 【紧急】, the resident told to call 110 and where to wait.
    A family quarrel about money or grandchildren stays mediation; a call or a transfer is no blow."""
    for said in ("我儿子儿媳妇不让我住家里了 把我锁在门外 我都七十多了", "儿子打我 我不敢回家",
                 "我女婿喝了酒就打我闺女 她跑到我这来了", "兒媳婦把我趕出來了 我沒地方去"):
        openid = oid()
        reply = await wx.say(openid, said)
        assert "转接人工服务" in reply and "110" in reply and "12338" in reply, (said, reply)
        assert "备用钥匙" not in reply and "没太明白" not in reply, (said, reply)
        [ticket] = await tickets_of(services, openid)
        assert ticket.kind == "handoff" and ticket.urgency == "urgent", (said, ticket)
        [post] = [p for p in await group_posts(services) if p.ticket_id == ticket.id]
        assert "【紧急】" in post.payload["content"], post.payload
    for said in ("儿子不给生活费", "儿媳妇不让我看孙子 能不能帮我们调解调解"):
        openid = oid()
        reply = await wx.say(openid, said)
        assert "转接人工服务" not in reply and "110" not in reply, (said, reply)
        assert await tickets_of(services, openid) == []
    for said in ("儿子打我电话没人接", "小时候我爸打我 现在想起来还难受"):
        openid = oid()
        assert "110" not in await wx.say(openid, said), said
        assert await tickets_of(services, openid) == []


async def test_practical_help_no_service_covers_goes_to_a_person(wx: WeChat, services: Services) -> None:
    """能帮我换个灯泡吗 我够不着 and 我想给我爸申请个轮椅 were 没太明白 and the menu: what an older
    resident needs at home that no bookable service covers reaches a person, as 提不动水 does; a
    shared part's lamp is still a report, and an offer to help is still a volunteer's."""
    for said in ("能帮我换个灯泡吗 我够不着", "我想给我爸申请个轮椅", "能不能借个轮椅用几天",
                 "煤气罐太沉了我搬不动 能不能找人帮忙", "老伴住院了 家里没人 谁能帮我买点菜"):
        openid = oid()
        reply = await wx.say(openid, said)
        assert "转接人工服务" in reply and "没太明白" not in reply, (said, reply)
        [ticket] = await tickets_of(services, openid)
        assert ticket.kind == "handoff", (said, ticket)
    assert "问题在哪里" in await wx.say(oid(), "楼道灯泡坏了 能不能派人换一下")
    assert "转接人工服务" not in await wx.say(oid(), "我可以帮老人买菜")


async def test_a_raised_property_fee_is_a_complaint_about_the_property(wx: WeChat, services: Services) -> None:
    """物业费凭什么涨价 was 没太明白: a complaint about the property company (物业服务), as 物业乱收费
    is; asked (物业费涨了吗) it is no report."""
    openid = oid()
    assert "问题在哪里" in await wx.say(openid, "物业费凭什么涨价")
    await wx.say(openid, "整个小区")
    await wx.say(openid, "跳过")
    reply = await wx.say(openid, "13812345678")
    if "确认" not in reply:  # offered to bind the phone first
        reply = await wx.say(openid, "否")
    assert "物业服务" in reply, reply
    asked = oid()
    assert "问题在哪里" not in await wx.say(asked, "物业费涨了吗")
    assert await tickets_of(services, asked) == []


async def test_a_corridor_full_of_clutter_is_a_fire_hazard_report(wx: WeChat, services: Services) -> None:
    """楼道里堆满了杂物 was 没太明白 and the menu (its 消防安全 read, no report): a corridor blocked with
    things is a fire hazard the grid worker clears — reported as 楼道被人堆满了纸箱子 is."""
    openid = oid()
    reply = await wx.say(openid, "8号楼3单元楼道里堆满了杂物")
    assert "拍张照片" in reply and "抱歉" not in reply, reply
    state = await dialog_of(services, openid)
    assert state is not None and state.slots["category"] == "消防安全"
    assert state.slots["place"]["building"] == "8" and state.slots["place"]["unit"] == "3"
    reply = await wx.say(oid(), "楼道里堆满了杂物")
    assert "问题在哪里" in reply and "抱歉" not in reply, reply


async def test_asking_whether_it_is_fixed_yet_is_the_status_of_ones_own_report(
    wx: WeChat, services: Services
) -> None:
    """我想问下那个路灯修了没有 began a new 照明 report (a complaint at 0.49) and 修了没有 got the menu:
    asked of a report already made, it is that report's status — no second ticket."""
    openid = oid()
    await wx.say(openid, "小区南门的路灯不亮了")
    await wx.say(openid, "跳过")
    reply = await wx.say(openid, "13800138003")
    if "确认" not in reply:  # offered to bind the phone first
        await wx.say(openid, "否")
    await wx.say(openid, "确认")
    [ticket] = await tickets_of(services, openid)
    for said in ("我想问下那个路灯修了没有", "修了没有", "那个灯修好了吗", "路灯弄好了没"):
        reply = await wx.say(openid, said)
        assert ticket.number in reply and "问题在哪里" not in reply and "抱歉" not in reply, (said, reply)
    assert len(await tickets_of(services, openid)) == 1
    # a repair that did not hold is a report again, not its status
    reply = await wx.say(oid(), "3号楼楼道灯修了没几天又坏了")
    assert "拍张照片" in reply, reply
