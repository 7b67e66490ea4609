"""Residents' words, second round: a stroke's signs as relatives tell them, two requests in one
message, and residents who are not elderly (working parents, tenants, shop owners, neighbours
writing for someone, the angry, emoji and English) — through the classifier and, where the dialog
acts on them, through /wechat on both backends."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from pathlib import Path

import pytest

from bot.intents.classifier import Classifier
from bot.services import Services
from tests.conftest import WeChat
from tests.flow_helpers import dialog_of, tickets_of

CONFIG_DIR = Path(__file__).resolve().parents[1] / "config"
NOW = datetime.fromisoformat("2026-11-23T10:00:00+08:00")


@pytest.fixture(scope="module")
def classifier() -> Classifier:
    return Classifier(CONFIG_DIR)


def oid() -> str:
    return "o" + uuid.uuid4().hex[:20]


# ------------------------------------------------------------------ a stroke's signs

STROKE_NOW = ("我家老头子早上起来说话不利索 嘴有点歪", "我妈说话不清楚了 一边胳膊抬不起来", "老伴半边身子麻了",
              "我老伴右手突然没劲了 拿不住筷子", "我家老头子說話不利索 嘴有點歪", "我爸嘴角有点往一边歪")
STROKE_NOT_NOW = ("我妈说话一直不太清楚", "我爸中风后说话不利索 想约个康复训练", "物业的人说话不清不楚",
                  "上个月我妈嘴歪了一次", "我爸刚才嘴有点歪 现在好多了", "就怕说话不利索",
                  "我爸嘴有点歪过")


@pytest.mark.parametrize("text", STROKE_NOW)
def test_a_strokes_signs_said_of_now_are_the_emergency(classifier: Classifier, text: str) -> None:
    found = classifier.classify(text, NOW)
    assert found.intent == "complaint" and found.slots.get("urgency") == "urgent", found


@pytest.mark.parametrize("text", STROKE_NOT_NOW)
def test_a_strokes_signs_past_chronic_feared_or_over_are_not(classifier: Classifier, text: str) -> None:
    assert classifier.classify(text, NOW).slots.get("urgency") != "urgent", text


async def test_a_strokes_signs_get_the_120_advice_in_the_dialog(wx: WeChat, services: Services) -> None:
    """我家老头子早上起来说话不利索 嘴有点歪 was 没太明白 and the menu: now the urgent report with
    the medical advice (120); the same signs long past, always so or over get none."""
    for said in STROKE_NOW[:4]:
        openid = oid()
        reply = await wx.say(openid, said)
        assert reply.startswith("⚠️") and "120" in reply and "问题在哪里" in reply, (said, reply)
        state = await dialog_of(services, openid)
        assert state is not None and state.slots["emergency"] == "medical", (said, state)
    for said in ("我妈说话一直不太清楚", "上个月我妈嘴歪了一次", "我爸刚才嘴有点歪 现在好多了"):
        openid = oid()
        reply = await wx.say(openid, said)
        assert "⚠️" not in reply and "120" not in reply, (said, reply)
        assert all(t.urgency != "urgent" for t in await tickets_of(services, openid))


# ------------------------------------------------------------------ two requests in one message


@pytest.mark.parametrize(("text", "first", "second"), [
    ("楼道灯坏了 还有我想约个理发", "楼道灯坏了", "我想约个理发"),
    ("我想当志愿者 我上次报修的水管修了没有", "我想当志愿者", "我上次报修的水管修了没有"),
    ("我妈想订饭 另外楼下的灯也坏了", "我妈想订饭", "楼下的灯也坏了"),
    ("电梯坏了 顺便问下长者食堂咋订饭", "电梯坏了", "长者食堂咋订饭"),
    ("路灯坏了 还有楼上漏水", "路灯坏了", "楼上漏水"),  # two complaints of two kinds, joined
    ("楼上天天吵 另外我想请社区调解一下我家和儿子的矛盾", "楼上天天吵", "我想请社区调解一下我家和儿子的矛盾"),
    ("给我妈订明天的午饭 再给我爸约个后天上午的理发", "给我妈订明天的午饭", "再给我爸约个后天上午的理发"),  # two services
])
def test_two_requests_are_cut_in_the_order_said(classifier: Classifier, text: str, first: str, second: str) -> None:
    both = classifier.two_requests(text, NOW)
    assert both is not None and (both.first, both.second) == (first, second), both


@pytest.mark.parametrize("text", [
    "楼上邻居天天吵，跟他说了好几次谈不拢，想请社区来调解",  # the problem and the dispute it led to
    "我要投诉 上次投诉到现在都没人理", "我要投訴物業 垃圾好幾天沒人清",  # one complaint in two clauses
    "我想當志願者 幫老人送飯", "楼道灯坏了 什么时候来修", "楼道灯坏了 还要多久才修",
    "我老伴中风了 想请人上门护理", "楼道灯坏了 还有我老伴晕倒了",  # an emergency: served first, whole
    "3号楼2单元楼道灯坏了", "明天中午给我妈订个助餐 晚饭也要", "给我妈订个午饭 她腿脚不好 要送上门",
])
def test_one_request_or_an_emergency_is_not_cut(classifier: Classifier, text: str) -> None:
    assert classifier.two_requests(text, NOW) is None, text


def test_no_labelled_line_of_one_request_is_cut(classifier: Classifier) -> None:
    """Of the labelled lines only those that hold two requests are cut (their label is the first)."""
    lines = (Path(__file__).resolve().parent / "data" / "intents.jsonl").read_text(encoding="utf-8").splitlines()
    texts = [json.loads(line)["text"] for line in lines if line.strip()]
    cut = {text for text in texts if classifier.two_requests(text, NOW) is not None}
    assert cut == {"我妈想订饭 另外楼下的灯也坏了", "电梯坏了 顺便问下长者食堂咋订饭", "路灯坏了 还有楼上漏水",
                   "楼道灯坏了 还有那个 垃圾也好几天没人收了"}, cut


async def test_two_requests_the_first_served_the_other_taken_right_after(wx: WeChat, services: Services) -> None:
    """楼道灯坏了 还有我想约个理发 was one report and the haircut silently dropped: the report is
    served, the resident told the haircut is noted, and right after the report's number the
    booking begins — one flow at a time."""
    openid = oid()
    reply = await wx.say(openid, "3号楼2单元楼道灯坏了 还有我想约个理发")
    assert "两件事" in reply and "我想约个理发" in reply and "拍张照片" in reply, reply
    state = await dialog_of(services, openid)
    assert state is not None and state.flow == "complaint", state
    reply = await wx.say(openid, "否")
    assert "联系电话" in reply, reply
    reply = await wx.say(openid, "13800138001")
    if "绑定" in reply:
        reply = await wx.say(openid, "否")
    assert "请核对" in reply and "理发" not in reply.split("请核对")[1], reply
    done = await wx.say(openid, "确认")
    assert "工单号" in done and "接着办您说的另一件事" in done and "我想约个理发" in done, done
    state = await dialog_of(services, openid)
    assert state is not None and state.flow == "elderly_service" and state.slots.get("service") == "理发", state
    [ticket] = await tickets_of(services, openid)
    assert ticket.kind == "complaint" and ticket.fields["description"] == "3号楼2单元楼道灯坏了"
    assert "_next_matter" not in ticket.fields


async def test_two_bookings_in_one_message_are_both_taken(wx: WeChat, services: Services) -> None:
    """给我妈订明天的午饭 再给我爸约个后天上午的理发 booked the lunch and silently dropped the haircut.
    The lunch is booked first, then the haircut begins, its time taken."""
    openid = oid()
    reply = await wx.say(openid, "给我妈订明天的午饭 再给我爸约个后天上午的理发")
    assert "两件事" in reply and "再给我爸约个后天上午的理发" in reply and "怎么称呼" in reply, reply
    for answer in ("张桂兰", "83", "3号楼2单元502", "跳过", "13812345678", "否"):
        await wx.say(openid, answer)
    done = await wx.say(openid, "1")
    assert "已为助餐预约好" in done and "接着办您说的另一件事" in done, done
    state = await dialog_of(services, openid)
    assert state is not None and state.flow == "elderly_service" and state.slots.get("service") == "理发", state


async def test_two_requests_a_status_question_answered_with_the_other(wx: WeChat, services: Services) -> None:
    """我想当志愿者 我上次报修的水管修了没有 was a status question alone (the offer dropped): the
    volunteer signup begins, the status question noted; cancelling it reminds the resident of it."""
    openid = oid()
    reply = await wx.say(openid, "我想当志愿者 我上次报修的水管修了没有")
    assert "两件事" in reply and "我上次报修的水管修了没有" in reply, reply
    state = await dialog_of(services, openid)
    assert state is not None and state.flow == "volunteer_signup", state
    reply = await wx.say(openid, "取消")
    assert "已取消" in reply and "您刚才还说到“我上次报修的水管修了没有”" in reply, reply
    assert await dialog_of(services, openid) is None
    # the status question first: answered at once, and the other request begun in the same reply
    openid = oid()
    reply = await wx.say(openid, "我上次报修的水管修了没有 另外我想给我妈订饭")
    assert "接着办您说的另一件事" in reply and "我想给我妈订饭" in reply, reply
    state = await dialog_of(services, openid)
    assert state is not None and state.flow == "elderly_service", state


async def test_one_matter_in_two_clauses_is_not_cut(wx: WeChat, services: Services) -> None:
    """A problem and the dispute it led to, or a complaint and its report chased, is one matter."""
    for said, flow in (("楼上邻居天天吵，跟他说了好几次谈不拢，想请社区来调解", "mediation"),
                       ("我想当志愿者 帮老人送饭", "volunteer_signup")):
        openid = oid()
        reply = await wx.say(openid, said)
        assert "两件事" not in reply, (said, reply)
        state = await dialog_of(services, openid)
        assert state is not None and state.flow == flow and "_next_matter" not in state.slots, (said, state)


# ------------------------------------------------------------------ residents who are not elderly


@pytest.mark.parametrize(("text", "wanted"), [
    # the estate's network down is a report; a home's own wifi or TV is no community matter
    ("WiFi连不上 物业的网是不是断了", "complaint"), ("有没有人来修一下我们这的网 光纤断了", "complaint"),
    ("小区的wifi连不上了", "complaint"), ("我家wifi连不上", "unknown"), ("我家宽带断了 找谁修", "unknown"),
    # a neighbour's doing, said by who does it; where to throw rubbish is a question
    ("隔壁邻居把电动车停在消防通道 堵得人都过不去", "complaint"), ("我是楼下开超市的 楼上住户老往我店门口扔垃圾", "complaint"),
    ("在哪扔垃圾", "unknown"),
    # noise told by working parents and tenants; a child's games are no noise
    ("楼上的熊孩子天天跑 我们上班族晚上想睡个觉都不行", "complaint"), ("楼下烧烤摊天天弄到凌晨两点", "complaint"),
    ("孩子天天打游戏 不写作业 怎么办", "unknown"),
    # a flatmate spoken to already is a dispute, as a neighbour is
    ("合租的室友天天半夜打游戏大喊大叫 说了也不听", "mediation"),
    ("垃圾桶满了都没人倒 🤢", "complaint"),
    ("快递柜扫不了码🙃", "complaint"), ("停车场道闸抬不起来 进不去", "complaint"),
    # a report made, how long ago said: asked after (and said with the anger it comes with)
    ("什么破服务 投诉了一个礼拜了 屁用没有", "ticket_status"), ("我的报修都半个月了 还没人来", "ticket_status"),
    ("我要投诉 楼上漏水好几天了", "complaint"),
])
def test_working_residents_tenants_and_shops_are_read(classifier: Classifier, text: str, wanted: str) -> None:
    assert classifier.classify(text, NOW).intent == wanted, classifier.classify(text, NOW)


async def test_two_requests_after_a_chase_or_a_hand_off(wx: WeChat, services: Services) -> None:
    """The first request turns out to be a report made already: 1 催一下 chases it and the other
    request is taken up at once (no new ticket needed for that); handed to a person instead, the
    resident is reminded of the other one, nothing started."""
    openid = oid()
    await wx.say(openid, "三号楼二单元楼道灯坏了")
    for answer in ("否", "13812345678", "否"):
        await wx.say(openid, answer)
    assert "工单号" in await wx.say(openid, "确认")
    again = await wx.say(openid, "三号楼二单元楼道灯坏了 另外我想约个理发")
    assert "两件事" in again and "已经反映过这个问题" in again and "1. 催一下" in again, again
    chased = await wx.say(openid, "1")
    assert "已帮您催促工单" in chased and "接着办您说的另一件事：“我想约个理发”" in chased, chased
    state = await dialog_of(services, openid)
    assert state is not None and state.flow == "elderly_service" and state.slots.get("service") == "理发", state
    assert len(await tickets_of(services, openid)) == 1

    openid = oid()
    assert "两件事" in await wx.say(openid, "5号楼电梯坏了 另外我想报名当志愿者")
    handed = await wx.say(openid, "转人工")
    assert "您刚才还说到“我想报名当志愿者”" in handed, handed
    assert await dialog_of(services, openid) is None
