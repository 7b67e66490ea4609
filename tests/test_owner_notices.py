"""What a ticket's owner (grid worker, mediator, care provider, volunteer coordinator) and its
resident are told as the ticket moves, driven through /wechat, the WeCom callback, the API and the
scheduler on both backends: reminders that stop with the job, the resident's words reaching the
owner of a reopened job, a coordinator's approval and decline, bookings moved or cancelled after
办结, the number the owner types, neighbours' reports of the same problem, and emergencies (never
linked to a slower ticket, posted to the staff group as urgent)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from bot import roster
from bot.clock import FakeClock
from bot.schedule import run_due
from bot.services import Services
from storage.models import Reminder, TicketEvent, Volunteer
from tests.conftest import WeChat
from tests.flow_helpers import PHOTO, group_posts, reminders_of, tickets_of
from tests.wecom_driver import WeCom, new_ticket, outbox_rows, ticket

TOKEN = "api-token-for-owner-tests"
BEARER = {"Authorization": f"Bearer {TOKEN}"}
Client = TestClient[Any, Any]
DEMO_ROSTER = Path(__file__).resolve().parents[1] / "config" / "roster.toml"


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    """An API token, for staff actions through /api."""
    return {"api_token": TOKEN}


def oid() -> str:
    return "o" + uuid.uuid4().hex[:20]


async def texts_to(svc: Services, channel: str, target: str) -> list[str]:
    """The text pushes queued for one person, oldest first."""
    return [o.payload.get("text", "") for o in await outbox_rows(svc, channel, target)]


async def mediation(wx: WeChat, svc: Services, openid: str, when: str) -> str:
    """A mediation asked for through the dialog, with its preferred time; its number."""
    for said in ("楼上天天半夜吵，想请人调解", "1", when, "13812345678"):
        await wx.say(openid, said)
    assert "工单号" in await wx.say(openid, "是")
    [made] = await tickets_of(svc, openid)
    return made.number


# --- 1. a session's reminder stops with the job ------------------------------------------------------


async def test_a_mediation_settled_before_its_session_sends_no_session_reminder(
    wx: WeChat, client: Client, services: Services, clock: FakeClock
) -> None:
    """方便的时间 后天下午, 接单, then 办结 (settled by phone): the day-before reminder of the session
    is dropped; another resident's mediation, still in hand, gets its reminder."""
    wc = WeCom(client, services)
    settled, waiting = oid(), oid()
    number = await mediation(wx, services, settled, "后天下午")
    other = await mediation(wx, services, waiting, "后天下午")
    assert (await wc.say("chenmediator", f"接单 {number[-4:]}")).startswith("已接单")
    assert (await wc.say("chenmediator", f"办结 {number[-4:]} 电话里双方谈妥了")).startswith("已办结")
    reminders = await reminders_of(services, "mediation_session")
    assert len(reminders) == 2
    clock.set(max(r.due_at for r in reminders) + timedelta(minutes=1))
    await run_due(services)
    assert not any("提醒：您预约的矛盾调解" in x for x in await texts_to(services, "wechat", settled))
    assert any(f"提醒：您预约的矛盾调解（工单{other}）" in x for x in await texts_to(services, "wechat", waiting))
    states = {r.target: r.state for r in await reminders_of(services, "mediation_session")}
    assert states == {settled: "dropped", waiting: "done"}


# --- 2. the resident's words reach the owner of a reopened job ---------------------------------------


async def resolved_and_surveyed(wc: WeCom, svc: Services, clock: FakeClock, openid: str) -> str:
    """A lighting report of openid's, taken and finished by 王伟, its survey sent; its number."""
    number = (await new_ticket(svc, resident=openid)).ticket.number
    assert (await wc.say("wangwei", f"接单 {number}")).startswith("已接单")
    assert (await wc.say("wangwei", f"办结 {number} 已更换灯泡")).startswith("已办结")
    clock.advance(seconds=svc.settings.survey_delay_s)
    await run_due(svc)
    return number


async def test_a_reopen_brings_the_owner_the_residents_words_masked(
    wx: WeChat, client: Client, services: Services, clock: FakeClock
) -> None:
    wc = WeCom(client, services)
    openid = oid()
    number = await resolved_and_surveyed(wc, services, clock, openid)
    reply = await wx.say(openid, "不满意，灯还是不亮，师傅根本没来 有事打我电话13812345678")
    assert "已重新交给承办人" in reply
    reopened = (await texts_to(services, "wecom", "wangwei"))[-1]
    assert reopened.startswith(f"工单 {number}（3号楼）居民反馈未解决，已重新打开")
    assert "居民说：灯还是不亮，师傅根本没来 有事打我电话138****5678" in reopened  # as typed (cf92bbe)
    assert "13812345678" not in reopened


async def test_a_reopen_whose_owner_left_the_roster_goes_to_the_staff_queue(
    wx: WeChat, client: Client, services: Services, clock: FakeClock, tmp_path: Path
) -> None:
    """王伟 finished the job and then left the roster (钱丽 took his grid); the resident's 不满意
    reopened it and pushed it to him anyway, where nobody would take it. Now it goes to the staff
    queue at once (escalated, the staff group told 承办人已离开名册), as his open tickets did."""
    wc = WeCom(client, services)
    openid = oid()
    number = await resolved_and_surveyed(wc, services, clock, openid)
    pushed = len(await outbox_rows(services, "wecom", "wangwei"))
    file = tmp_path / "roster.toml"
    file.write_text(DEMO_ROSTER.read_text(encoding="utf-8").replace('"wangwei"', '"qianli"').replace("王伟", "钱丽"),
                    encoding="utf-8")
    changes = await roster.import_roster(services, file)
    assert changes.people_deactivated == ("wangwei",) and changes.tickets_to_staff == ()  # nothing of his was open
    await wx.say(openid, "不满意，灯还是不亮")
    reopened = await ticket(services, number)
    assert (reopened.status, reopened.assignee) == ("escalated", "wangwei")  # who had it stays on record
    assert len(await outbox_rows(services, "wecom", "wangwei")) == pushed  # nothing to who left
    posts = [o.payload["content"] for o in await group_posts(services) if number in o.payload["content"]]
    assert len([p for p in posts if "承办人已离开名册" in p]) == 1, posts
    async with services.sessions() as session:
        events = list(await session.scalars(select(TicketEvent.action).where(TicketEvent.ticket_id == reopened.id)))
    assert events[events.index("reopen"):] == ["reopen", "escalate", "staff_alerted", "staff_alerted"], events
    # Staff give it to the grid's worker now: the card goes to her.
    resp = await client.post(f"/api/tickets/{number}/transition", json={"action": "assign", "assignee": "qianli"},
                             headers=BEARER)
    assert resp.status == 200, await resp.text()
    cards = [o.payload for o in await outbox_rows(services, "wecom", "qianli") if o.payload["msgtype"] == "textcard"]
    assert [number in card["title"] for card in cards] == [True], cards


async def test_a_comment_after_a_bare_bu_manyi_is_pushed_to_the_owner(
    wx: WeChat, client: Client, services: Services, clock: FakeClock
) -> None:
    wc = WeCom(client, services)
    openid = oid()
    number = await resolved_and_surveyed(wc, services, clock, openid)
    assert "还有什么问题没有解决" in await wx.say(openid, "不满意")
    reopened = (await texts_to(services, "wecom", "wangwei"))[-1]
    assert "前办结。\n办完请回复" in reopened and "居民说" not in reopened  # nothing said yet: nothing to add
    assert "承办人会尽快处理" in await wx.say(openid, "灯泡换了第二天又不亮了")
    assert (await texts_to(services, "wecom", "wangwei"))[-1] == f"【居民补充】工单 {number}：灯泡换了第二天又不亮了"


# --- 3. the coordinator approves or declines a volunteer signup ---------------------------------------


async def signup(wx: WeChat, openid: str) -> None:
    for said in ("我想当志愿者", "张国强", "13511112222", "会开车", "周末上午", "1 3", "是", "同意"):
        await wx.say(openid, said)
    assert "感谢您报名" in await wx.say(openid, "确认")


async def volunteer(svc: Services, openid: str) -> Volunteer:
    async with svc.sessions() as session:
        found = await session.scalar(select(Volunteer).where(Volunteer.openid == openid))
        assert found is not None
        return found


async def test_banjie_of_a_signup_approves_the_volunteer_without_a_survey(
    wx: WeChat, client: Client, services: Services, clock: FakeClock
) -> None:
    wc = WeCom(client, services)
    openid = oid()
    await signup(wx, openid)
    [made] = await tickets_of(services, openid)
    reply = await wc.say("zhouvol", "办结 0001 审核通过，欢迎加入")
    assert reply == f"已通过：工单 {made.number} 的志愿者登记已通过审核，已通知居民。", reply  # no photo asked
    assert (await volunteer(services, openid)).status == "approved"
    told = (await texts_to(services, "wechat", openid))[-1]
    assert told.startswith(f"您的志愿者登记（工单 {made.number}）已通过审核") and "负责人留言：审核通过，欢迎加入" in told
    assert "近期活动" in told
    assert (await ticket(services, made.number)).status == "closed"
    assert "已通过" in await wx.say(openid, "我的信息")
    clock.advance(days=3)
    await run_due(services)
    assert await reminders_of(services, "survey") == []  # 满意率 rates jobs done for residents
    assert not any("服务回访" in x for x in await texts_to(services, "wechat", openid))


async def test_tuihui_of_a_signup_by_the_coordinator_declines_it_and_a_new_signup_is_taken(
    wx: WeChat, client: Client, services: Services
) -> None:
    wc = WeCom(client, services)
    openid = oid()
    await signup(wx, openid)
    [made] = await tickets_of(services, openid)
    said = await wc.say("zhouvol", "退回 0001 不通过，我们巡逻队只收60岁以下的")
    assert said == f"已退回：工单 {made.number} 的志愿者登记未通过，已把结果和原因告诉居民。"  # not 重新派单
    assert (await volunteer(services, openid)).status == "rejected"
    told = (await texts_to(services, "wechat", openid))[-1]
    assert "这次没有通过审核。原因：不通过，我们巡逻队只收60岁以下的" in told and "再次报名" in told
    row = await ticket(services, made.number)
    assert (row.status, row.assignee) == ("closed", "zhouvol")  # decided: not back in the staff queue
    assert await group_posts(services) == []
    assert "未通过" in await wx.say(openid, "我的信息")
    assert "您已经登记" not in await wx.say(openid, "我想当志愿者")  # may sign up again


async def test_the_staff_group_hears_who_returned_a_ticket(client: Client, services: Services) -> None:
    """退回 by a mediator is 调解员退回 in the staff group, not 网格员退回."""
    wc = WeCom(client, services)
    t = (await new_ticket(services, kind="mediation", category=None, fields={"party": "邻居"})).ticket
    assert (await wc.say("chenmediator", f"退回 {t.number} 这是物业的事")).startswith("已退回")
    [post] = await group_posts(services)
    assert "调解员退回：这是物业的事" in post.payload["content"] and "网格员" not in post.payload["content"]
    assert not post.urgent and post.payload["content"].startswith("### 工单 ")  # no emergency


# --- 5. a booking moved or cancelled after 办结 -------------------------------------------------------


async def booking(wx: WeChat, openid: str) -> None:
    for said in ("明天中午给我妈订个助餐", "王秀英", "82", "3号楼2单元301", "少盐 软一点", "13912345678", "否"):
        await wx.say(openid, said)
    assert "已为助餐预约好" in await wx.say(openid, "1")


async def test_a_booking_moved_then_cancelled_after_banjie_tells_the_provider(
    wx: WeChat, client: Client, services: Services
) -> None:
    openid = oid()
    await booking(wx, openid)
    [made] = await tickets_of(services, openid)
    resp = await client.post(f"/api/tickets/{made.number}/transition",
                             json={"action": "resolve", "note": "已安排"}, headers=BEARER)
    assert resp.status == 200, await resp.text()
    await wx.say(openid, "改时间")
    await wx.say(openid, "后天中午")
    assert "11月25日" in await wx.say(openid, "是")
    row = await ticket(services, made.number)
    assert row.status == "resolved" and "11月25日（周三）11:00" in row.summary and "11月24日" not in row.summary
    assert row.fields["when"] == "11月25日（周三）11:00"
    moved = (await texts_to(services, "wecom", "canteen"))[-1]
    assert moved == f"工单 {made.number} 已办结，但居民把预约的服务改到了 11月25日 11:00，请按新时间安排服务。"
    await wx.say(openid, "取消预约")
    assert "已取消" in await wx.say(openid, "是")
    cancelled = (await texts_to(services, "wecom", "canteen"))[-1]
    assert cancelled == f"工单 {made.number}（已办结）预约在 11月25日 11:00 的服务，居民已经取消，无需再安排。"


# --- 6. the number the owner types ---------------------------------------------------------------------


async def test_the_card_names_the_ticket_with_its_day_when_the_owner_holds_another_of_that_number(
    client: Client, services: Services, clock: FakeClock
) -> None:
    wc = WeCom(client, services)
    first = (await new_ticket(services, kind="mediation", category=None, fields={"party": "邻居"})).ticket
    clock.advance(days=1)
    second = (await new_ticket(services, resident="oRes2", kind="mediation", category=None,
                               fields={"party": "物业"})).ticket
    assert (first.number[-4:], second.number[-4:]) == ("0001", "0001")
    one, two = [o.payload["description"] for o in await outbox_rows(services, "wecom", "chenmediator")]
    assert "回复：接单 0001｜办结 0001 说明" in one
    assert "回复：接单 1124-0001｜办结 1124-0001 说明｜退回 1124-0001 原因" in two
    async with services.sessions() as session:
        remind = await session.scalar(select(Reminder).where(
            Reminder.cause_id == second.id, Reminder.kind == "accept_remind"))
    assert remind is not None and "回复“接单 1124-0001”" in remind.payload["message"]["text"]
    assert (await wc.say("chenmediator", "接单 1124-0001")).startswith(f"已接单：工单 {second.number}")
    assert (await ticket(services, first.number)).status == "dispatched"


# --- 7. the same problem reported twice --------------------------------------------------------------


async def report_lamp(wx: WeChat, openid: str, phone: str, *, photo: bool = False) -> str:
    """三号楼二单元楼道灯坏了 through the dialog (with a photo or none); the reply to 确认."""
    assert "照片" in await wx.say(openid, "三号楼二单元楼道灯坏了")
    if photo:
        assert "第1张" in await wx.send("image", openid, **PHOTO)
        await wx.say(openid, "好了")
    else:
        await wx.say(openid, "否")
    for answer in (phone, "否"):
        await wx.say(openid, answer)
    return await wx.say(openid, "确认")


async def test_a_residents_own_report_again_is_never_a_neighbours(wx: WeChat, services: Services) -> None:
    """Registered again after the offered chase (不是，我说的是5楼的灯): a ticket of its own for the
    grid worker, not linked to the resident's first as if a neighbour had reported it."""
    openid = oid()
    assert "工单号" in await report_lamp(wx, openid, "13812345678")
    assert "已经反映过" in await wx.say(openid, "3号楼2单元楼道灯又坏了")
    assert "拍张照片" in await wx.say(openid, "不是，我说的是5楼的灯")
    for answer in ("否", "13812345678", "否"):
        await wx.say(openid, answer)
    done = await wx.say(openid, "确认")
    assert "其他居民反映" not in done and "已派给网格员王伟" in done
    first, second = await tickets_of(services, openid)
    assert second.parent_id is None and (await ticket(services, first.number)).reporters == 1
    cards = [o for o in await outbox_rows(services, "wecom", "wangwei") if o.payload["msgtype"] == "textcard"]
    assert [second.number in c.payload["title"] for c in cards] == [False, True]


async def test_a_neighbours_report_linked_is_told_to_the_owner_with_the_photo(
    wx: WeChat, services: Services
) -> None:
    first, second = oid(), oid()
    assert "工单号" in await report_lamp(wx, first, "13812345678")
    [parent] = await tickets_of(services, first)
    done = await report_lamp(wx, second, "13900001111", photo=True)
    assert f"这个问题已有其他居民反映，正在工单{parent.number}中处理" in done
    card, told, photo = await outbox_rows(services, "wecom", "wangwei")
    assert card.payload["msgtype"] == "textcard"
    assert told.payload["text"].startswith(f"又有居民反映工单 {parent.number} 的问题（现共 2 位）：")
    assert told.payload["text"].endswith("（附 1 张照片，随后发来）")
    assert photo.payload == {"msgtype": "image", "photo": PHOTO["MediaId"], "number": parent.number}


async def test_a_neighbour_withdrawing_a_linked_report_leaves_the_job_in_hand(wx: WeChat, services: Services) -> None:
    """A neighbour's 撤销 of their report linked to a job told its owner 工单 0002 已撤销，您无需再处理
    — a number the owner never had a card for, read as the job called off. Now the job is named as
    going on; the job and the other reports stay as they were."""
    first, second = oid(), oid()
    assert "工单号" in await report_lamp(wx, first, "13812345678")
    await report_lamp(wx, second, "13900001111")
    [job] = await tickets_of(services, first)
    [mine] = await tickets_of(services, second)
    assert mine.parent_id == job.id
    assert "要撤销" in await wx.say(second, "撤销工单")
    assert "已撤销" in await wx.say(second, "是")
    assert (await ticket(services, mine.number)).status == "cancelled"
    assert (await ticket(services, job.number)).status == "dispatched"
    told = (await texts_to(services, "wecom", "wangwei"))[-1]
    assert told == f"工单 {mine.number}（与工单 {job.number} 合并处理）的居民撤销了自己的反映；工单 {job.number} 照常办理。"


async def test_a_withdrawn_linked_report_leaves_the_jobs_count_and_its_answers(
    client: Client, wx: WeChat, services: Services
) -> None:
    """A neighbour who withdrew (撤销) their report linked to a job still counted among its reporters
    (the owner's 我的工单, the staff's 答复全部 N 位), and staff's 回复全部 still answered them. Now
    the job counts one fewer, and neither 回复全部 nor the job's 接单 reach who withdrew."""
    first, second, third = oid(), oid(), oid()
    await report_lamp(wx, first, "13812345678")
    await report_lamp(wx, second, "13900001111")
    await report_lamp(wx, third, "13900002222")
    [job] = await tickets_of(services, first)
    assert (await ticket(services, job.number)).reporters == 3
    assert "要撤销" in await wx.say(second, "撤销工单")
    assert "已撤销" in await wx.say(second, "是")
    assert (await ticket(services, job.number)).reporters == 2
    wc = WeCom(client, services)
    mine = await wc.say("wangwei", "我的工单")
    assert job.number in mine and "（2 位居民反映）" in mine, mine
    said = "灯泡已买好，下午更换。"
    reply = await wc.say("liustaff", f"回复全部 {job.number[-4:]} {said}")
    assert reply.startswith(f"已答复工单 {job.number} 的反映居民：2 位已发出"), reply
    answered = sorted(o.target for o in await outbox_rows(services, "wechat") if said in o.payload.get("text", ""))
    assert answered == sorted([first, third])
    assert (await wc.say("wangwei", f"接单 {job.number[-4:]}")).startswith("已接单")
    assert not any("接单" in text for text in await texts_to(services, "wechat", second))
    assert any("接单" in text for text in await texts_to(services, "wechat", third))
    # Their report again later is a neighbour's report of the job once more.
    await report_lamp(wx, second, "13900001111")
    again = [t for t in await tickets_of(services, second) if t.status != "cancelled"]
    assert [t.parent_id for t in again] == [job.id]
    assert (await ticket(services, job.number)).reporters == 3


async def test_staff_reopening_a_linked_report_alone_gives_it_to_the_owner(client: Client, services: Services) -> None:
    """Staff reopen (POST /api/…/transition) one neighbour's report after the job was 办结: it is the
    owner's own job from then on (in 我的工单, finished by its number), not a linked report they
    cannot touch; the job stays 办结."""
    wc = WeCom(client, services)
    job = (await new_ticket(services, resident=oid())).ticket.number
    linked = (await new_ticket(services, resident=oid())).ticket.number
    assert "已办结" in await wc.say("wangwei", f"办结 {job[-4:]} 灯已换好")
    resp = await client.post(f"/api/tickets/{linked}/transition", json={"action": "reopen", "note": "居民来电说楼梯口还黑"},
                             headers=BEARER)
    assert resp.status == 200, await resp.text()
    assert ((await ticket(services, job)).status, (await ticket(services, linked)).parent_id) == ("resolved", None)
    told = (await texts_to(services, "wecom", "wangwei"))[-1]
    assert linked in told and "说明：居民来电说楼梯口还黑" in told and "单独交给您办理" in told, told
    assert linked in await wc.say("wangwei", "我的工单")
    assert (await wc.say("wangwei", f"办结 {linked[-4:]} 楼梯口的灯也换了")).startswith(f"已办结：工单 {linked}")


# --- 8. an emergency is never linked to a slower ticket ------------------------------------------------


async def report(wx: WeChat, openid: str, said: str, phone: str, more: dict[str, str] | None = None) -> str:
    """A complaint through the dialog, answering what is asked (no photo, the phone not bound; more:
    other questions' answers by words of the question, for a booking's); the reply to 确认, or to the
    last answer of an emergency (submitted once its place and phone are known)."""
    answers = {**(more or {}), "照片": "否", "联系电话": phone, "绑定": "否"}
    reply = await wx.say(openid, said)
    for _ in range(9):
        if reply.startswith("已按紧急情况登记"):
            return reply
        if "请核对" in reply:
            return await wx.say(openid, "确认")
        answer = next((a for k, a in answers.items() if k in reply), None)
        assert answer is not None, reply
        reply = await wx.say(openid, answer)
    raise AssertionError(reply)


async def test_a_person_trapped_in_a_lift_is_not_linked_to_the_lifts_seven_day_ticket(
    wx: WeChat, services: Services, clock: FakeClock
) -> None:
    """电梯按钮不灵了 (a lift: 较急, 24 hours — it was 一般, 7 days), then 电梯里关了人了 from a neighbour: the emergency is dispatched on
    its own — its owner's card urgent and at once, 办结 in 2 hours — and the button's ticket keeps its
    limit and its one reporter. A second neighbour trapped is linked to the emergency, its owner
    told at once."""
    button_owner, trapped, also_trapped = oid(), oid(), oid()
    assert "工单号" in await report(wx, button_owner, "5号楼2单元电梯按钮不灵了 有时候按了没反应", "13812345678")
    [button] = await tickets_of(services, button_owner)
    done = await report(wx, trapped, "5号楼电梯里关了人了！出不来 快来人", "13900001111")
    assert done.startswith("已按紧急情况登记") and "其他居民反映" not in done and "11月23日 12:00前处理" in done
    [lift] = await tickets_of(services, trapped)
    assert (lift.parent_id, lift.urgency, lift.status) == (None, "urgent", "dispatched")
    [card] = [o for o in await outbox_rows(services, "wecom", lift.assignee)
              if lift.number in o.payload.get("title", "")]
    assert card.urgent and "紧急（2小时）" in card.payload["description"]
    after = await ticket(services, button.number)
    assert (after.reporters, after.urgency, after.due_at) == (1, "utility", button.due_at)  # a lift: 24 hours
    assert not any(lift.number in x for x in await texts_to(services, "wecom", button.assignee or ""))
    done = await report(wx, also_trapped, "5号楼电梯困人了 快来人", "13700002222")
    assert f"这个问题已有其他居民反映，正在工单{lift.number}中处理" in done
    told = (await outbox_rows(services, "wecom", lift.assignee))[-1]
    assert told.urgent and told.payload["text"].startswith(f"又有居民反映工单 {lift.number} 的问题（现共 2 位）")


async def test_an_emergency_said_again_chases_the_open_report_at_once(
    wx: WeChat, client: Client, services: Services, clock: FakeClock
) -> None:
    """电梯困人 twice within minutes from the same resident made a second urgent ticket for another
    worker (a resident's own report is never linked to itself), and the dialog's 你已经反映过 (1 催一下 /
    2 重新登记) skips emergencies. Now the open report is chased at once — its owner pushed, urgent,
    with the words — and the resident hears the number and what to do right now again; once the
    owner hands it back (退回), the staff group is told, marked 【紧急】."""
    wc = WeCom(client, services)
    resident = oid()
    done = await report(wx, resident, "5号楼电梯里关了人了！出不来 快来人", "13900001111")
    assert done.startswith("已按紧急情况登记")
    [lift] = await tickets_of(services, resident)
    owner = lift.assignee
    assert owner is not None
    clock.advance(minutes=3)
    again = await wx.say(resident, "5号楼电梯困人了 快来人啊 电话13900001111")
    assert f"已报告过这个紧急情况，工单号：{lift.number}" in again and "再次催促" in again, again
    assert "电梯内警铃" in again  # what to do right now, again
    assert [t.number for t in await tickets_of(services, resident)] == [lift.number]  # no second job
    chased = (await outbox_rows(services, "wecom", owner))[-1]
    assert chased.urgent and chased.payload["text"].startswith(f"【紧急·居民再次求助】工单 {lift.number}")
    assert "139****1111" in chased.payload["text"] and "13900001111" not in chased.payload["text"]
    # Said again after its owner handed it back: the staff group, urgent, with the words.
    assert (await wc.say(owner, f"退回 {lift.number[-4:]} 我不在附近")).startswith("已退回")
    clock.advance(minutes=1)
    again = await wx.say(resident, "电梯里的人还出不来 快点")
    assert f"工单号：{lift.number}" in again and "社区服务中心" in again and "电梯内警铃" in again, again
    assert [t.number for t in await tickets_of(services, resident)] == [lift.number]
    [post] = [o for o in await group_posts(services) if "居民再次报告紧急情况" in o.payload["content"]]
    assert post.urgent and "紧急" in post.payload["content"] and lift.number in post.payload["content"]
    # Another emergency of theirs is a report of its own: a fire is not the lift.
    fire = await wx.say(resident, "5号楼楼道里着火了")
    assert "119" in fire and "联系电话" in fire and lift.number not in fire, fire  # its own report begins


async def test_an_emergency_handed_to_a_person_is_posted_to_the_staff_group_as_urgent(
    wx: WeChat, services: Services
) -> None:
    """困在电梯里 then 转人工: the staff group's post is 【紧急】 and goes before the pushes that are
    not; a plain 我要跟人说话 is an ordinary post."""
    trapped, plain = oid(), oid()
    await wx.say(trapped, "5号楼电梯里关了人了！出不来 快来人")
    await wx.say(trapped, "转人工")
    await wx.say(plain, "我要跟人说话")
    urgent, ordinary = await group_posts(services)
    assert urgent.urgent and urgent.payload["content"].startswith("### 【紧急】工单 ")
    assert not ordinary.urgent and ordinary.payload["content"].startswith("### 工单 ")
