"""The flow engine's own contract: declarations refused with a clear ValueError, states, registry,
commands, choices, parsers, and the dialog state in the store (both backends)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from bot.clock import FakeClock
from bot.flows import parsers, registry
from bot.flows import state as flow_state
from bot.flows.base import IMAGES, Answer, Choice, Context, Flow, Invalid, Step
from bot.flows.commands import command_of, is_word
from bot.flows.engine import match_choice
from bot.inbound import Inbound
from bot.services import Services
from bot.texts import Texts
from tests.conftest import WeChat
from tests.flow_helpers import dialog_of, set_dialog

TWO = (Choice("a", "甲", ("甲方",)), Choice("b", "乙", ("乙方",)))


def flow_class(**attrs: Any) -> type[Flow]:
    """Declare a flow from attributes (a finish that returns 'ok' unless given)."""

    async def finish(self: Flow, ctx: Context, slots: dict[str, Any]) -> str:
        return "ok"

    body: dict[str, Any] = {"name": "demo", "finish": finish}
    body.update(attrs)
    return type("Demo", (Flow,), body)


def test_a_flow_reads_as_a_table_of_states() -> None:
    cls = flow_class(first=Step("x.first", choices=TWO), second=Step("x.second", optional=True))
    assert [s.state for s in cls.steps] == ["demo:first", "demo:second"]
    assert [s.slot for s in cls.steps] == ["first", "second"]
    assert cls.title == "flow.titles.demo" and cls.steps[1].label == "demo.labels.second"
    assert cls().state("confirm") == "demo:confirm"


@pytest.mark.parametrize(
    ("attrs", "message"),
    [
        ({"name": "Bad Name", "s": Step("p")}, "lower-case identifier"),
        ({"kind": "parcel", "s": Step("p")}, "unknown ticket kind"),
        ({}, "at least one Step"),
        ({"finish": Flow.finish, "s": Step("p")}, "implement finish"),
        ({"confirm": Step("p")}, "reserved"),
        ({"s": Step("")}, "prompt"),
        ({"s": Step("p", parse=parsers.phone, choices=TWO)}, "either parse or choices"),
        ({"s": Step("p", collect=True, choices=TWO)}, "collecting step"),
        ({"s": Step("p", accepts=frozenset({"fax"}))}, "accepts"),
        ({"s": Step("p", choices=(Choice("a", "甲"), Choice("a", "乙")))}, "unique"),
        ({"s": Step("p", choices=tuple(Choice(str(i), str(i)) for i in range(13)))}, "at most 12"),
        ({"s": Step("p", edit_words=("改",)), "t": Step("q", edit_words=("改",))}, "already edits"),
        # the same question for exclusive cases may share them only when each has its ask_if
        ({"s": Step("p", edit_words=("改",)), "t": Step("p", edit_words=("改",))}, "already edits"),
        ({"edit_examples": ("改地址",), "s": Step("p", edit_words=("改",))}, "edit examples"),
        ({"menu_number": "12", "s": Step("p")}, "one digit"),
    ],
)
def test_bad_declarations_are_refused(attrs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        flow_class(**attrs)


def test_one_question_for_exclusive_cases_shares_its_edit_words() -> None:
    cls = flow_class(
        a=Step("p", edit_words=("改时间",), ask_if=lambda slots: slots.get("k") == "a"),
        b=Step("p", edit_words=("改时间",), ask_if=lambda slots: slots.get("k") == "b"),
        edit_examples=("改时间",),
    )
    assert [s.slot for s in cls.steps] == ["a", "b"]


def test_one_step_object_cannot_serve_two_slots() -> None:
    shared = Step("p")
    with pytest.raises(ValueError, match="two slots"):
        flow_class(one=shared, two=shared)


def test_registry_refuses_a_second_flow_of_the_same_name() -> None:
    flows = registry.load()
    assert {"complaint", "mediation"} <= set(flows)
    assert registry.for_intent("complaint") is flows["complaint"]
    assert registry.for_menu_key("MENU_MEDIATION") is flows["mediation"]
    assert registry.for_menu_number("1") is flows["complaint"]
    with pytest.raises(ValueError, match="registered already"):
        registry.register(flow_class(name="complaint", s=Step("p")))


def test_every_registered_flow_has_its_wording() -> None:
    texts = Texts()
    for flow in registry.load().values():
        assert texts.has(flow.title), flow.title
        for step in flow.steps:
            assert texts.has(step.prompt) and texts.has(step.label), (flow.name, step.slot)


@pytest.mark.parametrize(
    ("text", "command"),
    [("取消", "cancel"), (" 取 消！", "cancel"), ("上一步", "back"), ("重新开始", "restart"),
     ("转人工", "handoff"), ("人工。", "handoff"), ("帮助", "help"), ("？", "help"),
     ("我要取消报修", None), ("人工智能真厉害", None), ("", None)],
)
def test_commands_are_whole_messages(text: str, command: str | None) -> None:
    assert command_of(text) == command


def test_answer_words() -> None:
    assert is_word("好的！", "yes") and is_word("不是", "no") and is_word("跳过", "skip")
    assert not is_word("好的我再想想", "yes")


def test_choices_by_number_label_synonym_or_mention() -> None:
    step = Step("p", choices=TWO)
    assert match_choice(step, "2") == TWO[1]
    assert match_choice(step, "甲") == TWO[0] and match_choice(step, "乙方") == TWO[1]
    assert match_choice(step, "应该是甲方吧") == TWO[0]
    assert match_choice(step, "甲乙都有") is None  # ambiguous
    assert match_choice(step, "3") is None and match_choice(step, "丙") is None


def answer(text: str, **media: Any) -> Answer:
    msg_type = "location" if media else "text"
    now = datetime(2026, 11, 23, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))  # a Monday
    return Answer(text, Inbound(openid="o", msg_type=msg_type, text=text, media=media), now)


def test_parsers() -> None:
    assert parsers.phone(answer("我的电话 138 1234 5678")) == "13812345678"
    assert parsers.phone(answer("0571-88886666")) == "0571-88886666"
    with pytest.raises(Invalid):
        parsers.phone(answer("12345"))
    assert parsers.place(answer("九栋一单元502")) == {"text": "九栋一单元502", "building": "9", "unit": "1", "room": "502"}
    assert parsers.place(answer("南门停车场"))["landmark"] == "南门停车场"
    point = parsers.place(answer("望湖小区3号楼", latitude=30.1, longitude=120.2, label="望湖小区3号楼"))
    assert point["latitude"] == 30.1 and point["building"] == "3"
    with pytest.raises(Invalid):
        parsers.place(answer("1"))
    assert parsers.future_time(answer("周六上午"))["at"].startswith("2026-11-28T08:00")
    assert parsers.future_time(answer("都可以")) == {"any": True, "text": "时间都可以"}
    with pytest.raises(Invalid, match="time_past"):
        parsers.future_time(answer("今天早上7点"))
    assert parsers.says_what("9栋电梯坏了") and not parsers.says_what("我要报修")


def test_image_steps_take_photos() -> None:
    cls = flow_class(photos=Step("p", collect=True, accepts=IMAGES), where=Step("q"))
    assert cls().media_step("image") is cls.steps[0] and cls().media_step("location") is None


async def test_dialog_state_round_trip_and_quiet_expiry(services: Services, clock: FakeClock) -> None:
    """The dialog lives in the resident's row: stored, read back, over after flow_expire_s idle;
    the next message says so and keeps it (not live) for 继续, and the one after clears it."""
    from bot import dialog

    await dialog.handle(services, Inbound(openid="oState", msg_type="text", text="你好", created_at=clock.now()))
    assert await dialog_of(services, "oState") is None
    state = flow_state.new_state("complaint", "complaint:place", clock.now(), {"category": "照明"})
    await set_dialog(services, "oState", state)
    loaded = await dialog_of(services, "oState")
    assert loaded == state and loaded is not None and loaded.part == "place"
    moved = flow_state.touched(state, clock.advance(60))
    assert moved.version == state.version + 1
    await set_dialog(services, "oState", moved)
    clock.advance(services.settings.flow_expire_s - 1)
    assert await dialog_of(services, "oState") == moved
    clock.advance(1)
    assert await dialog_of(services, "oState") is None
    async with services.sessions() as session:
        assert await flow_state.read(session, "oState") == moved  # over, not yet cleared
    told = await dialog.handle(services, Inbound(openid="oState", msg_type="text", text="你好", created_at=clock.now()))
    assert told is not None and "继续" in told
    assert await dialog_of(services, "oState") is None  # kept for 继续, not live
    async with services.sessions() as session:
        kept = await flow_state.read(session, "oState")
    assert kept is not None and kept.updated_at == moved.updated_at and kept.slots.get(dialog.LAPSE_TOLD)
    await dialog.handle(services, Inbound(openid="oState", msg_type="text", text="你好", created_at=clock.now()))
    async with services.sessions() as session:
        assert await flow_state.read(session, "oState") is None

async def test_a_steps_check_refuses_once_and_the_same_answer_again_is_taken(services: Services) -> None:
    """Step.check: a refusal is said with the question again; a different answer is checked
    anew; the refused answer repeated right after is taken, and the refusal is not kept."""
    from bot import dialog
    from bot.flows import engine

    seen: list[str] = []

    async def check(_ctx: Context, _slots: dict[str, Any], value: str) -> str | None:
        seen.append(value)
        return "满了" if value in ("甲", "乙") else None

    cls = flow_class(pick=Step("complaint.ask.description", check=check), then=Step("complaint.ask.photos"))
    flow = cls()
    texts = services.texts

    async def say(text: str, state: flow_state.DialogState) -> engine.Outcome:
        now = services.clock.now()
        inbound = Inbound(openid="oCheck", msg_type="text", text=text)
        async with services.sessions.begin() as session:
            row = await dialog.arrive(session, inbound, now)
            return await engine.answer(Context(services, session, row, inbound, now), flow, state)

    state = flow_state.new_state("demo", "demo:pick", services.clock.now())
    refused = await say("甲", state)
    assert refused.reply.startswith("满了") and texts.get("complaint.ask.description") in refused.reply
    assert refused.state is not None and refused.state.part == "pick"
    other = await say("乙", refused.state)  # another answer: checked anew, refused too
    assert other.reply.startswith("满了") and other.state is not None and other.state.part == "pick"
    taken = await say("乙", other.state)  # the same again: taken as it is
    assert taken.state is not None and taken.state.part == "then"
    assert taken.state.slots == {"pick": "乙"}
    assert seen == ["甲", "乙"]
    free = await say("丙", state)
    assert free.state is not None and free.state.slots == {"pick": "丙"} and seen[-1] == "丙"


@pytest.mark.parametrize("said", ["幺三八 一二三四 五六七八", "电话13812345678", "我的手机是138-1234-5678"])
async def test_a_phone_at_an_optional_free_text_question_is_kept_for_the_phone(
    wx: WeChat, services: Services, said: str
) -> None:
    """At a booking's notes (有没有需要服务人员注意的), a phone said digit by digit or after 电话:
    before, saved as 备注 and the phone asked again. Now kept for the phone question (not asked),
    and the notes asked again."""
    openid = "oNotes" + uuid.uuid4().hex[:12]
    assert "怎么称呼" in await wx.say(openid, "明天中午给我妈订助餐")
    await wx.say(openid, "王秀英")
    await wx.say(openid, "80")
    assert "注意" in await wx.say(openid, "3号楼2单元302")
    kept = await wx.say(openid, said)
    assert "电话已经记下" in kept and "注意" in kept, kept
    assert "绑定" in await wx.say(openid, "没有")
    summary = await wx.say(openid, "否")  # not bound
    assert "请核对" in summary and "备注：无" in summary and "联系电话：13812345678" in summary, summary


async def test_a_name_said_in_a_sentence_is_the_name_alone(wx: WeChat, services: Services) -> None:
    """他叫李建国 今年八十一了 at the name question: before, the whole sentence was kept as the name."""
    openid = "oName" + uuid.uuid4().hex[:12]
    assert "怎么称呼" in await wx.say(openid, "明天中午给我爸订助餐")
    assert "地址" in await wx.say(openid, "他叫李建国 今年八十一了")  # the age said with it is kept for its question
    state = await dialog_of(services, openid)
    assert state is not None and state.slots["for_name"]["name"] == "李建国" and state.slots["age"] == 81
