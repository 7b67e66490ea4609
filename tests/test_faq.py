"""Common questions answered from config/faq.toml (bot/faq.py), and only when nothing else fits."""

from __future__ import annotations

import os
import tomllib
import uuid
from pathlib import Path

import pytest

from bot import faq
from bot.services import Services
from tests.conftest import WeChat
from tests.flow_helpers import dialog_of


def oid() -> str:
    return "o" + uuid.uuid4().hex[:20]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("你们几点上班", "办公时间"),
        ("你好 請問居住證怎麼辦", "办理居住证"),  # traditional characters, a greeting before it
        ("我想开个居住证明", "开具证明"),  # the longer word wins: a certificate, not a permit
        ("家里有个旧沙发要扔 大件垃圾放哪", "大件垃圾请放到"),
        # 垃圾分类 (demo answer): new residents ask it, a greeting and who they are before it
        ("垃圾分类怎么弄", "垃圾分四类"),
        ("你好 我是新搬来的 住10号楼 想问问垃圾分类怎么弄", "垃圾分四类"),
        ("厨余垃圾扔哪个桶", "垃圾分四类"),
        ("废电池扔哪", "垃圾分四类"),
        ("装修垃圾扔哪", "大件垃圾请放到"),  # the same length of word: the entry before it
        ("我要办老年卡", "老年优待证"),
        ("高龄补贴怎么申请", "高龄补贴"),
        ("我想咨询一下 老房子加装电梯的事", "加装电梯"),  # 电梯 alone would be a lift report
        ("小区什么时候停水", "提前在小区公告栏"),  # a question in a report's words: before_services
        ("明天停电吗", "提前在小区公告栏"),
        ("什么时候来水啊", "回复“进度”"),  # an outage's own question: how to follow a report
        ("来水了吗", "回复“进度”"),
        ("咋还不来水", "回复“进度”"),
        ("供暖费在哪交 今年涨没涨", "供暖期"),  # late autumn: the heating fee asked after
        ("啥时候来暖气啊", "供暖期"),
        # a street office's policy questions (demo answers): the subject wins over how it is asked
        ("俺想问问低保咋申请", "申请低保"),
        ("給孩子辦殘疾證要啥手續", "残疾人证"),
        ("养老金认证怎么弄 我不会用手机", "资格认证"),  # was a booking: 养老 is a service word
        ("居家养老补贴能不能申请", "居家养老服务补贴"),  # the same
        ("今年的医保在哪交", "医保"),
        ("临时救助怎么申请啊", "临时救助"),
        ("独生子女奖励费去哪领", "独生子女父母奖励"),
        ("生孩子要去哪登记", "生育登记"),
    ],
)
async def test_a_common_question_gets_the_operators_answer(
    wx: WeChat, services: Services, text: str, expected: str
) -> None:
    openid = oid()
    reply = await wx.say(openid, text)
    assert expected in reply and "人工" in reply and "抱歉" not in reply
    assert await dialog_of(services, openid) is None


async def test_a_service_request_is_not_taken_for_a_question(wx: WeChat) -> None:
    # 装修垃圾 is a FAQ word; a pile of it nobody clears is a report.
    reply = await wx.say(oid(), "3号楼楼道里堆了装修垃圾好几天没人清")
    assert "拍张照片" in reply and "大件垃圾请放到" not in reply
    reply = await wx.say(oid(), "垃圾分类点的垃圾好几天没人收了")  # 垃圾分类 is a FAQ word too
    assert "垃圾分四类" not in reply and "拍张照片" in reply, reply
    assert "抱歉，我没太明白" in await wx.say(oid(), "今天天气怎么样")  # neither: the menu, as before
    assert "问题在哪里" in await wx.say(oid(), "我家停水了 什么时候来水")  # no water now: a report
    reply = await wx.say(oid(), "供暖费交了暖气还是不热 这钱白交了")  # the fee paid, no heat: a report
    assert "供暖期" not in reply and "问题在哪里" in reply, reply


def test_entries_are_checked_and_the_file_is_read_again_when_it_changes(tmp_path: Path) -> None:
    path = tmp_path / "faq.toml"
    assert faq.answer("几点上班", path) is None  # no file: no answers
    path.write_text('[[faq]]\nwords = ["几点上班"]\nanswer = "九点。"\n', encoding="utf-8")
    assert faq.answer("请问几点上班？", path) == "九点。"
    path.write_text('[[faq]]\nwords = ["几点上班"]\nanswer = "八点半。"\n', encoding="utf-8")
    stat = path.stat()
    os.utime(path, (stat.st_atime, stat.st_mtime + 5))  # a later modification time
    assert faq.answer("几点上班", path) == "八点半。"
    for bad, message in [
        ('[[faq]]\nwords = []\nanswer = "x"\n', "words"),
        ('[[faq]]\nwords = ["几点"]\nanswer = " "\n', "answer"),
        ('faq = "x"\n', "entries"),
        ('[[faq]]\nwords = ["几点"]\nanswer = "x"\nbefore_services = "yes"\n', "before_services"),
        ('[[faq]]\nwords = ["几点"]\nanswer = "x"\nfallback = 1\n', "fallback"),
        ('[[faq]]\nwords = ["几点"]\nanswer = "x"\nfallback = true\nbefore_services = true\n', "exclude"),
    ]:
        with pytest.raises(ValueError, match=message):
            faq.parse(tomllib.loads(bad), "faq.toml")


def test_a_fallback_entry_answers_only_what_no_other_entry_does(tmp_path: Path) -> None:
    path = tmp_path / "faq.toml"
    path.write_text('[[faq]]\nwords = ["低保"]\nanswer = "低保的答案"\n\n[[faq]]\nwords = ["怎么申请"]\n'
                    'answer = "请问工作人员"\nfallback = true\n', encoding="utf-8")
    assert faq.answer("低保怎么申请", path) == "低保的答案"  # 怎么申请 is the longer word, and still loses
    assert faq.answer("廉租房怎么申请", path) == "请问工作人员"
    assert faq.answer("廉租房怎么申请", path, before_services=True) is None  # a service's words: theirs


async def test_a_policy_question_no_entry_answers_goes_to_a_person(wx: WeChat, services: Services) -> None:
    """廉租房怎么申请 was 没太明白 and the menu: a procedure the FAQ cannot answer gets the office's
    hours and phone and the offer of 人工, which hands it to a person."""
    for said in ("廉租房怎么申请", "办这个需要带什么材料", "物业费在哪交"):
        openid = oid()
        reply = await wx.say(openid, said)
        assert "需要工作人员解答" in reply and "0571-8888 1234" in reply and "人工" in reply, (said, reply)
        assert "抱歉" not in reply and await dialog_of(services, openid) is None, (said, reply)
    openid = oid()
    await wx.say(openid, "廉租房怎么申请")
    assert "已为您转接人工服务" in await wx.say(openid, "人工")
    # not a question of procedure: the menu, as before
    reply = await wx.say(oid(), "垃圾分类点的垃圾好几天没人收了")  # 垃圾分类 is a FAQ word too
    assert "垃圾分四类" not in reply and "拍张照片" in reply, reply
    assert "抱歉，我没太明白" in await wx.say(oid(), "今天天气怎么样")


async def test_where_to_go_and_whom_to_ask_are_answered(wx: WeChat, services: Services) -> None:
    """社区里有没有老年大学, 那打疫苗去哪里 and 我家孩子上学的事找谁 got 没太明白 and the menu: the demo
    FAQ answers the first two (老年学堂, 卫生服务站), and a question of where to go or whom to ask
    that no entry answers is a person's (the office's hours and phone, 人工)."""
    assert "老年学堂" in await wx.say(oid(), "我想问问社区里有没有老年大学")
    assert "卫生服务站" in await wx.say(oid(), "那打疫苗去哪里")
    for said in ("我家孩子上学的事找谁", "办准迁证问谁啊", "楼下哪里有修鞋的"):
        reply = await wx.say(oid(), said)
        assert "需要工作人员解答" in reply and "人工" in reply and "抱歉" not in reply, (said, reply)
    assert "拍张照片" in await wx.say(oid(), "3号楼楼道灯坏了找谁修")  # a report still


def test_a_typo_while_editing_keeps_the_answers_in_force(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A half-typed faq.toml made every message fail ("系统有点忙") until it was fixed."""
    path = tmp_path / "faq.toml"
    path.write_text('[[faq]]\nwords = ["几点上班"]\nanswer = "九点。"\n', encoding="utf-8")
    assert faq.answer("几点上班", path) == "九点。"
    path.write_text('[[faq]] oops\nwords = [\n', encoding="utf-8")
    stat = path.stat()
    os.utime(path, (stat.st_atime, stat.st_mtime + 5))
    with caplog.at_level("ERROR"):
        assert faq.answer("几点上班", path) == "九点。"  # the answers in force stay
    assert "not reloaded" in caplog.text
    path.write_text('[[faq]]\nwords = ["几点上班"]\nanswer = "八点半。"\n', encoding="utf-8")
    os.utime(path, (stat.st_atime, stat.st_mtime + 10))
    assert faq.answer("几点上班", path) == "八点半。"  # fixed: read again


def test_the_shipped_file_parses() -> None:
    assert len(faq.load()) >= 5


async def test_a_question_in_the_middle_of_a_report_is_answered_and_the_report_goes_on(wx: WeChat) -> None:
    """你们几点上班 where a photo is asked: before, "please send a photo" again."""
    openid = "o" + uuid.uuid4().hex[:20]
    await wx.say(openid, "楼道灯坏了")
    await wx.say(openid, "3栋")
    reply = await wx.say(openid, "你们几点上班")
    assert "办公时间" in reply and "拍张照片" in reply and reply.index("办公时间") < reply.index("拍张照片")
    assert "联系电话" in await wx.say(openid, "跳过")  # the report went on where it was


async def test_a_policy_question_in_the_middle_of_a_report_is_answered_and_the_report_goes_on(wx: WeChat) -> None:
    """低保咋申请 where a photo is asked was asked for the photo again (a question without ？ that
    [_ASKING] did not know): the FAQ's answer, then the photo question again."""
    openid = oid()
    await wx.say(openid, "楼道灯坏了")
    await wx.say(openid, "3栋")
    reply = await wx.say(openid, "低保咋申请")
    assert "申请低保" in reply and "拍张照片" in reply and reply.index("申请低保") < reply.index("拍张照片"), reply
    reply = await wx.say(openid, "办这个要带什么材料")
    assert "需要工作人员解答" in reply and "拍张照片" in reply, reply
    assert "联系电话" in await wx.say(openid, "跳过")  # the report went on where it was
