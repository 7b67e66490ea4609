"""Satisfaction surveys (回访), on both backends with the FakeClock: when they go out, how (custom
message inside the 48-hour window, template outside), every answer form, reopening on 不满意 with
the staff group told, the comment, and the one reminder then 未评价 when nobody answers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer, unused_port
from sqlalchemy import select

from bot import dispatch, tickets
from bot.channels import push
from bot.clock import FakeClock
from bot.flows import survey
from bot.inbound import Inbound
from bot.schedule import run_due
from bot.services import Services
from bot.sim.api import SIM_RECORDER, SimRecorder, make_app
from storage.models import OutboxItem, Reminder, Resident, Ticket
from tests.conftest import WeChat
from tests.wecom_driver import actions, load_demo_roster, new_ticket, outbox_rows, ticket

DELAY = 7200


@pytest.fixture
async def svc(services: Services) -> Services:
    await load_demo_roster(services)
    return services


async def act(svc: Services, number: str, action: str, actor: str = "wangwei", note: str = "") -> None:
    async with svc.sessions() as session, session.begin():
        t = await tickets.get_by_number(session, number, for_update=True)
        assert t is not None
        await dispatch.apply_action(svc, session, t, action, actor, note=note)


async def resolved(svc: Services, resident: str = "o_res") -> str:
    """A complaint dispatched, accepted and resolved; its number."""
    number = (await new_ticket(svc, resident=resident)).ticket.number
    await act(svc, number, "accept")
    await act(svc, number, "resolve", note="已更换灯泡")
    return number


async def answer(svc: Services, openid: str, text: str) -> str | None:
    async with svc.sessions() as session, session.begin():
        return await survey.handle_answer(svc, session, Inbound(openid=openid, msg_type="text", text=text))


async def surveys_to(svc: Services, openid: str) -> list[OutboxItem]:
    return [p for p in await outbox_rows(svc, "wechat", openid) if "template" in p.payload]


async def sent_survey(svc: Services, clock: FakeClock, resident: str = "o_res") -> str:
    number = await resolved(svc, resident)
    clock.advance(seconds=DELAY)
    await run_due(svc)
    assert len(await surveys_to(svc, resident)) == 1
    return number


async def test_one_survey_per_resolution_after_the_delay(svc: Services, clock: FakeClock) -> None:
    number = await resolved(svc)
    async with svc.sessions() as session, session.begin():
        t = await tickets.get_by_number(session, number)
        assert t is not None
        await survey.schedule_survey(svc, session, t)  # a second call for the same resolution: no-op
    clock.advance(seconds=DELAY - 1)
    await run_due(svc)
    assert await surveys_to(svc, "o_res") == []
    clock.advance(seconds=1)
    await run_due(svc)
    [item] = await surveys_to(svc, "o_res")
    assert number in item.payload["text"] and "1–5" in item.payload["text"]
    assert item.payload["template"]["fields"]["工单号"] == number
    assert await svc.store.get(svc.store.key("survey", "o_res")) == {"number": number, "resolution": 1}
    assert (await actions(svc, number))[-1] == "survey_sent"
    await run_due(svc)
    assert len(await surveys_to(svc, "o_res")) == 1


# --- custom message inside the 48-hour window, template outside --------------------------------


@pytest.fixture
def api_port() -> int:
    return unused_port()


@pytest.fixture
def settings_overrides(api_port: int) -> dict[str, Any]:
    base = f"http://127.0.0.1:{api_port}/sim"
    return {"wechat_api_base": f"{base}/wechat-api", "wecom_api_base": f"{base}/wecom-api"}


@pytest.fixture
async def sim(services: Services, api_port: int) -> AsyncIterator[SimRecorder]:
    app = make_app(services)
    server = TestServer(app, host="127.0.0.1", port=api_port)
    await server.start_server()
    yield app[SIM_RECORDER]
    await server.close()


@pytest.mark.parametrize(("last_message_h", "api"), [(1, "custom_send"), (60, "template_send")])
async def test_survey_is_a_custom_message_in_the_window_and_a_template_outside(
    svc: Services, clock: FakeClock, sim: SimRecorder, last_message_h: int, api: str
) -> None:
    async with svc.sessions() as session, session.begin():
        last = clock.now() + timedelta(seconds=DELAY) - timedelta(hours=last_message_h)
        session.add(Resident(openid="o_res", subscribed=True, created_at=clock.now(), updated_at=clock.now(),
                             last_message_at=last, last_inbound_at=last, window_opened_by="message"))
    number = await sent_survey(svc, clock)
    async with aiohttp.ClientSession() as http:
        while await push.drain(svc, http):
            pass
    delivered = sim.of(api, "o_res")
    assert delivered, sim.records
    body = delivered[-1]["payload"]
    if api == "custom_send":
        assert "服务回访" in body["text"]["content"] and number in body["text"]["content"]
    else:
        values = [v["value"] for v in body["data"].values()]
        assert any(number in v for v in values) and any("满意" in v for v in values)
        assert body["data"]["first"]["value"].startswith("服务回访")


# --- answers -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "score", "label", "comment"),
    [
        ("5", 5, "满意", ""), ("4分", 4, "满意", ""), ("3", 3, "基本满意", ""), ("2", 2, "不满意", ""),
        ("1分", 1, "不满意", ""), ("５", 5, "满意", ""), ("五星", 5, "满意", ""),
        ("满意", 5, "满意", ""), ("非常满意！", 5, "满意", ""), ("基本满意", 3, "基本满意", ""),
        ("不满意", 2, "不满意", ""), ("很好", 5, "满意", ""), ("还行", 3, "基本满意", ""),
        ("不好", 2, "不满意", ""), ("太差了", 1, "不满意", ""), ("👍", 5, "满意", ""),
        ("👍🏻👍🏻", 5, "满意", ""), ("👎", 1, "不满意", ""), ("[强]", 5, "满意", ""),
        ("不满意，灯还是不亮", 2, "不满意", "灯还是不亮"), ("5分 师傅来得很快", 5, "满意", "师傅来得很快"),
        ("还行吧，就是慢了点", 3, "基本满意", "就是慢了点"),
    ],
)
async def test_every_answer_form_lands_on_the_ticket(
    svc: Services, clock: FakeClock, text: str, score: int, label: str, comment: str
) -> None:
    number = await sent_survey(svc, clock)
    reply = await answer(svc, "o_res", text)
    assert reply is not None
    t = await ticket(svc, number)
    assert (t.satisfaction, t.satisfaction_label, t.rating_comment or "") == (score, label, comment)
    assert "rated" in await actions(svc, number)
    if score >= 3:
        assert t.status == "closed" and "感谢" in reply
    else:
        assert t.status == "reopened" and "重新交给" in reply


@pytest.mark.parametrize("text", ["5号楼灯坏了", "我要投诉", "几点上班", "6", "12", "好的", "满"])
def test_words_that_are_not_a_rating(text: str) -> None:
    assert survey.parse_rating(text) is None


async def test_a_message_that_is_not_an_answer_leaves_the_survey_open(svc: Services, clock: FakeClock) -> None:
    number = await sent_survey(svc, clock)
    assert await answer(svc, "o_res", "3号楼电梯又坏了") is None
    assert await answer(svc, "o_other", "5") is None  # someone without a survey
    assert (await ticket(svc, number)).satisfaction is None
    assert await answer(svc, "o_res", "满意") is not None
    assert await answer(svc, "o_res", "5") is None  # answered: the next message is the dialog's
    assert (await ticket(svc, number)).satisfaction == 5


async def test_thanks_are_answered_with_the_rating_asked_again_not_read_as_a_rating(
    svc: Services, clock: FakeClock
) -> None:
    """修好了 谢谢你们 to the survey: thanked back, and asked for the score (the satisfaction rate
    counts ratings, not guesses); the survey stays open. Thanks with a problem in it are not thanks."""
    number = await sent_survey(svc, clock)
    for text in ("修好了 谢谢你们", "辛苦了", "师傅很负责 谢谢"):
        reply = await answer(svc, "o_res", text)
        assert reply is not None and "不客气" in reply and "1–5 分" in reply
    assert await answer(svc, "o_res", "谢谢 但是我家门口的垃圾没人清") is None  # a new matter: the dialog's
    assert (await ticket(svc, number)).satisfaction is None
    assert "感谢您的评价" in (await answer(svc, "o_res", "5") or "")
    assert (await ticket(svc, number)).satisfaction == 5


async def test_unsatisfied_reopens_to_the_owner_tells_staff_and_takes_the_comment(
    svc: Services, clock: FakeClock
) -> None:
    number = await sent_survey(svc, clock)
    reply = await answer(svc, "o_res", "不满意")
    assert reply is not None and "还有什么问题" in reply
    t = await ticket(svc, number)
    assert (t.status, t.assignee, t.satisfaction) == ("reopened", "wangwei", 2)
    [group] = await outbox_rows(svc, "group")
    assert number in group.payload["content"] and "回访不满意" in group.payload["content"]
    assert any(number in p.payload.get("text", "") and "重新打开" in p.payload.get("text", "")
               for p in await outbox_rows(svc, "wecom", "wangwei"))
    reply = await answer(svc, "o_res", "灯还是不亮，电话13812345678")
    assert reply is not None and "补充到工单" in reply
    t = await ticket(svc, number)
    assert t.rating_comment == "灯还是不亮，电话138****5678"
    assert (await actions(svc, number))[-2:] == ["rating_comment", "staff_alerted"]
    assert await answer(svc, "o_res", "还有一件事") is None


async def test_unsatisfied_with_a_comment_does_not_ask_again(svc: Services, clock: FakeClock) -> None:
    number = await sent_survey(svc, clock)
    reply = await answer(svc, "o_res", "不满意，灯还是不亮")
    assert reply is not None and "灯还是不亮" in reply and "已重新交给" in reply
    assert (await ticket(svc, number)).rating_comment == "灯还是不亮"
    assert await answer(svc, "o_res", "谢谢") is None


async def test_no_answer_one_reminder_then_unrated(svc: Services, clock: FakeClock) -> None:
    number = await sent_survey(svc, clock)
    clock.advance(hours=48)
    await run_due(svc)
    sent = await surveys_to(svc, "o_res")
    assert len(sent) == 2 and "回访提醒" in sent[1].payload["text"]
    assert (await ticket(svc, number)).status == "resolved"
    clock.advance(hours=24)
    await run_due(svc)
    t = await ticket(svc, number)
    assert (t.status, t.satisfaction, t.satisfaction_label) == ("closed", None, "未评价")
    assert "unrated" in await actions(svc, number)
    clock.advance(days=5)
    await run_due(svc)
    assert len(await surveys_to(svc, "o_res")) == 2
    assert await answer(svc, "o_res", "5") is None


async def test_an_answer_before_the_reminder_cancels_it(svc: Services, clock: FakeClock) -> None:
    number = await sent_survey(svc, clock)
    clock.advance(hours=20)
    await answer(svc, "o_res", "满意")
    clock.advance(days=4)
    await run_due(svc)
    assert len(await surveys_to(svc, "o_res")) == 1
    async with svc.sessions() as session:
        states = set(await session.scalars(select(Reminder.state).where(Reminder.kind.like("survey%"))))
    assert states == {"done", "dropped"}
    assert (await ticket(svc, number)).satisfaction_label == "满意"


async def test_a_second_resolution_gets_its_own_survey(svc: Services, clock: FakeClock) -> None:
    number = await sent_survey(svc, clock)
    await answer(svc, "o_res", "1")
    await act(svc, number, "resolve", note="重新维修")
    clock.advance(seconds=DELAY)
    await run_due(svc)
    # Five pushes today already (accepted, resolved, survey, reopened, resolved): the daily cap
    # holds the second survey until the next morning.
    assert len(await surveys_to(svc, "o_res")) == 1
    clock.advance(hours=18)
    await run_due(svc)
    assert len(await surveys_to(svc, "o_res")) == 2
    assert await svc.store.get(svc.store.key("survey", "o_res")) == {"number": number, "resolution": 2}
    assert await answer(svc, "o_res", "很好") is not None
    t = await ticket(svc, number)
    assert (t.status, t.satisfaction) == ("closed", 5)


async def test_a_linked_reporter_rates_their_own_report_and_can_reopen_the_job(
    svc: Services, clock: FakeClock
) -> None:
    first = (await new_ticket(svc, resident="o_first")).ticket.number
    linked = await new_ticket(svc, resident="o_second")
    assert linked.linked_to is not None and linked.linked_to.number == first
    await act(svc, first, "accept")
    await act(svc, first, "resolve", note="已修好")
    clock.advance(seconds=DELAY)
    await run_due(svc)
    assert len(await surveys_to(svc, "o_first")) == 1 and len(await surveys_to(svc, "o_second")) == 1
    reply = await answer(svc, "o_second", "不好，还是黑的")
    assert reply is not None
    child = await ticket(svc, linked.ticket.number)
    assert (child.satisfaction, child.rating_comment, child.status) == (2, "还是黑的", "reopened")
    assert (await ticket(svc, first)).status == "reopened"


async def test_answering_in_the_chat(svc: Services, clock: FakeClock, wx: WeChat) -> None:
    number = await sent_survey(svc, clock, resident="o_chat")
    reply = await wx.say("o_chat", "满意")
    assert "感谢" in reply and number in reply
    async with svc.sessions() as session:
        t = await session.scalar(select(Ticket).where(Ticket.number == number))
        assert t is not None and (t.status, t.satisfaction) == ("closed", 5)


def test_labels_follow_the_scores() -> None:
    assert [survey.label_of(s) for s in (1, 2, 3, 4, 5)] == ["不满意", "不满意", "基本满意", "满意", "满意"]
    assert survey.parse_rating("不满意") == survey.Rating(2, "不满意", "")


async def sent_lighting_survey(svc: Services, clock: FakeClock) -> str:
    """A survey sent for a resolved ticket whose category is the flows' label (照明)."""
    number = (await new_ticket(svc, resident="o_res", category="照明")).ticket.number
    await act(svc, number, "accept")
    await act(svc, number, "resolve", note="已更换灯泡")
    clock.advance(seconds=DELAY)
    await run_due(svc)
    return number


@pytest.mark.parametrize("text", ["灯还是不亮", "没修好", "还没人来", "又坏了，晚上还是黑的"])
async def test_the_problem_still_there_is_unsatisfied_without_a_rating_word(
    svc: Services, clock: FakeClock, text: str
) -> None:
    number = await sent_lighting_survey(svc, clock)
    reply = await answer(svc, "o_res", text)
    assert reply is not None and "已重新交给" in reply
    t = await ticket(svc, number)
    assert (t.status, t.satisfaction_label, t.rating_comment) == ("reopened", "不满意", text.strip())


@pytest.mark.parametrize("text", ["3号楼电梯又坏了", "电梯还是不动"])
async def test_another_problem_is_not_an_answer(svc: Services, clock: FakeClock, text: str) -> None:
    number = await sent_lighting_survey(svc, clock)
    assert await answer(svc, "o_res", text) is None  # a new report: the dialog's
    assert (await ticket(svc, number)).satisfaction is None


@pytest.mark.parametrize("text", ["一般般", "⭐⭐⭐"])
async def test_stars_and_yibanban_are_basically_satisfied(svc: Services, clock: FakeClock, text: str) -> None:
    number = await sent_lighting_survey(svc, clock)
    assert await answer(svc, "o_res", text) is not None
    t = await ticket(svc, number)
    assert (t.satisfaction, t.satisfaction_label, t.rating_comment or "") == (3, "基本满意", "")
