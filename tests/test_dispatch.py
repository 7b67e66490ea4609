"""Routing, time limits, duplicates and apply_action's side effects, on both backends."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from bot import dispatch, roster, tickets
from bot.clock import FakeClock
from bot.limits import load_limits
from bot.schedule import run_due
from bot.services import Services
from storage.models import Person, Reminder, TicketEvent
from tests.conftest import WeChat
from tests.flow_helpers import tickets_of
from tests.wecom_driver import WeCom, actions, load_demo_roster, new_ticket, outbox_rows, ticket


@pytest.fixture
async def svc(services: Services) -> Services:
    await load_demo_roster(services)
    return services


async def test_complaint_goes_to_the_grid_worker_with_a_masked_card(svc: Services, clock: FakeClock) -> None:
    result = await new_ticket(svc, building="3号楼", fields={"phone": "13812345678", "place": "3号楼2单元楼道"})
    t = result.ticket
    assert (t.status, t.assignee, t.grid, result.assignee_name) == ("dispatched", "wangwei", "G1", "王伟")
    assert result.linked_to is None
    assert t.accept_due_at == clock.now() + timedelta(minutes=30)
    assert t.due_at == result.due_at == clock.now() + timedelta(days=7)
    [card] = await outbox_rows(svc, "wecom", "wangwei")
    payload = card.payload
    assert payload["msgtype"] == "textcard" and t.number in payload["title"] and "报事报修" in payload["title"]
    desc = payload["description"]
    assert "13812345678" not in desc and "138****5678" in desc
    for part in ("3号楼2单元楼道", "楼道灯坏了", "一般", "11月30日 10:00", "接单 0001", "办结 0001", "退回 0001", "吹哨 0001"):
        assert part in desc
    assert len(desc.encode()) <= 512
    assert payload["url"].endswith(f"/console/tickets/{t.number}")
    async with svc.sessions() as session:
        kinds = sorted((await session.execute(select(Reminder.kind).where(Reminder.cause_id == t.id))).scalars())
    assert kinds == ["accept_breach", "accept_remind", "resolve_breach", "resolve_remind"]


async def test_least_loaded_worker_of_a_grid_takes_the_next(svc: Services) -> None:
    owners = []
    for i, cat in enumerate(["照明", "水电气暖", "电梯", "噪音"]):
        owners.append((await new_ticket(svc, resident=f"o{i}", building="5", category=cat)).ticket.assignee)
    assert owners == ["lina", "zhaoqiang", "lina", "zhaoqiang"]


@pytest.mark.parametrize(
    ("kind", "fields", "owner", "days"),
    [
        ("mediation", {"parties": "邻居"}, "chenmediator", 15),
        ("elderly_service", {"service": "助浴"}, "homecare", 7),
        ("elderly_service", {"service": "助餐"}, "canteen", 7),
        ("volunteer_signup", {"name": "张三"}, "zhouvol", 7),
    ],
)
async def test_each_kind_has_its_owner(
    svc: Services, clock: FakeClock, kind: str, fields: dict[str, str], owner: str, days: int
) -> None:
    t = (await new_ticket(svc, kind=kind, fields=fields, category=None)).ticket
    assert (t.status, t.assignee) == ("dispatched", owner)
    assert t.due_at == clock.now() + timedelta(days=days)
    assert [o.target for o in await outbox_rows(svc, "wecom")] == [owner]


@pytest.mark.parametrize(("urgency", "hours"), [("urgent", 2), ("utility", 24), ("normal", 168), ("complex", 360)])
async def test_time_limit_by_urgency(svc: Services, clock: FakeClock, urgency: str, hours: int) -> None:
    t = (await new_ticket(svc, urgency=urgency)).ticket
    assert t.due_at == clock.now() + timedelta(hours=hours)
    assert t.accept_due_at == clock.now() + timedelta(seconds=svc.settings.accept_sla_s)


@pytest.mark.parametrize(
    ("kind", "building", "fields", "why"),
    [
        ("complaint", "99", {}, "“99”不在任何网格"),
        ("complaint", None, {}, "没有楼栋信息"),
        ("elderly_service", "3", {"service": "理疗"}, "没有提供“理疗”的服务机构"),
        ("handoff", "3", {}, "居民要求人工服务"),
    ],
)
async def test_no_owner_stays_in_the_queue_and_staff_are_told(
    svc: Services, kind: str, building: str | None, fields: dict[str, str], why: str
) -> None:
    result = await new_ticket(svc, kind=kind, building=building, fields=fields)
    t = result.ticket
    assert (t.status, t.assignee, result.assignee_name, result.due_at) == ("open", None, None, None)
    assert await outbox_rows(svc, "wecom") == []
    [post] = await outbox_rows(svc, "group")
    assert t.number in post.payload["content"] and why in post.payload["content"]
    assert post.payload["content"].endswith(f"/console/tickets/{t.number})")
    assert await actions(svc, t.number) == ["created", "queued", "staff_alerted"]


async def test_nobody_with_the_role_is_queued(svc: Services) -> None:
    async with svc.sessions() as session, session.begin():
        (await session.get(Person, "chenmediator")).active = False  # type: ignore[union-attr]
    t = (await new_ticket(svc, kind="mediation", category=None)).ticket
    assert t.status == "open"
    [post] = await outbox_rows(svc, "group")
    assert "名册中没有调解员" in post.payload["content"]


async def test_same_problem_is_linked_and_every_reporter_hears_updates(svc: Services) -> None:
    first = (await new_ticket(svc, resident="oFirst", building="3")).ticket
    second = await new_ticket(svc, resident="oSecond", building="3号楼", summary="3号楼灯不亮",
                              fields={"phone": "13900001111", "place": "3号楼1单元"})
    assert second.linked_to is not None and second.linked_to.number == first.number
    assert second.assignee_name == "王伟" and second.ticket.status == "dispatched"
    assert (await ticket(svc, first.number)).reporters == 2
    assert "linked" in await actions(svc, first.number)
    card, linked = await outbox_rows(svc, "wecom", "wangwei")  # not dispatched twice: told once
    assert card.payload["msgtype"] == "textcard"
    assert linked.payload["text"] == f"又有居民反映工单 {first.number} 的问题（现共 2 位）：3号楼灯不亮（地点：3号楼1单元）"
    other = await new_ticket(svc, resident="oThird", building="3", category="水电气暖")
    assert other.linked_to is None

    async with svc.sessions() as session, session.begin():
        t = await tickets.get_by_number(session, first.number, for_update=True)
        assert t is not None
        await dispatch.apply_action(svc, session, t, "accept", "wangwei")
    async with svc.sessions() as session, session.begin():
        t = await tickets.get_by_number(session, first.number, for_update=True)
        assert t is not None
        await dispatch.apply_action(svc, session, t, "resolve", "wangwei", note="已更换灯泡")
    for openid, own in (("oFirst", first.number), ("oSecond", f"{second.ticket.number}（与工单 {first.number} 合并处理）")):
        texts = [o.payload["text"] for o in await outbox_rows(svc, "wechat", openid)]
        assert texts == [  # each reporter hears their own number, a linked one the job's beside it
            f"您的工单 {own} 已由网格员 王伟 接单，正在处理。",
            f"您的工单 {own} 已办结：已更换灯泡",
        ]
    assert (await ticket(svc, second.ticket.number)).status == "resolved"
    assert await outbox_rows(svc, "wechat", "oThird") == []


async def test_duplicate_window_is_respected(svc: Services, clock: FakeClock) -> None:
    first = (await new_ticket(svc, resident="oA")).ticket
    clock.advance(hours=25)
    later = await new_ticket(svc, resident="oB")
    assert later.linked_to is None and later.ticket.number != first.number
    assert (await ticket(svc, first.number)).reporters == 1


async def test_a_burst_of_one_problem_links_each_report_to_its_own_building(svc: Services, clock: FakeClock) -> None:
    """After a water cut: reports of one category at many buildings. Each new report joins the
    earliest active one at its own building, however the building is spelled; a finished report
    at that building is not reopened by it."""
    done = (await new_ticket(svc, resident="oOld", building="5", category="水电气暖")).ticket
    async with svc.sessions() as session, session.begin():
        t = await tickets.get_by_number(session, done.number, for_update=True)
        assert t is not None
        await dispatch.apply_action(svc, session, t, "cancel", "system")
    clock.advance(minutes=1)
    firsts = {}
    for building in ("1", "2", "3", "5"):
        result = await new_ticket(svc, resident=f"oFirst{building}", building=building, category="水电气暖")
        assert result.linked_to is None
        firsts[building] = result.ticket.number
        clock.advance(seconds=10)
    for n, spelled in enumerate(["５号楼", "5栋", " 5 ", "3号楼", "１号"]):
        result = await new_ticket(svc, resident=f"oLater{n}", building=spelled, category="水电气暖")
        assert result.linked_to is not None
        assert result.linked_to.number == firsts[roster.normalize_building(spelled)], spelled
        assert result.ticket.building_key == roster.normalize_building(spelled)
    assert (await ticket(svc, firsts["5"])).reporters == 4
    assert (await ticket(svc, firsts["2"])).reporters == 1
    assert (await ticket(svc, done.number)).reporters == 1


async def test_a_linked_report_names_the_owner_even_one_who_left_the_roster(svc: Services) -> None:
    """The owner's name comes from the routing snapshot; someone no longer active is not in it,
    and is read from the database instead."""
    first = (await new_ticket(svc, resident="oA", building="3")).ticket
    second = await new_ticket(svc, resident="oB", building="3")
    assert second.linked_to is not None and second.assignee_name == "王伟"
    async with svc.sessions() as session, session.begin():
        (await session.get(Person, "wangwei")).active = False  # type: ignore[union-attr]
        assert (await roster.snapshot(svc, session)).person("wangwei") is not None  # still held
    svc.extras.pop(roster._SNAPSHOT)  # as after an import that changed the roster
    third = await new_ticket(svc, resident="oC", building="3")
    assert third.linked_to is not None and third.linked_to.number == first.number
    assert third.assignee_name == "王伟"
    async with svc.sessions() as session:
        assert (await roster.snapshot(svc, session)).person("wangwei") is None


async def test_reassign_pushes_the_new_owner_and_releases_the_old(svc: Services) -> None:
    t = (await new_ticket(svc, building="3")).ticket
    async with svc.sessions() as session, session.begin():
        row = await tickets.get_by_number(session, t.number, for_update=True)
        assert row is not None
        await dispatch.apply_action(svc, session, row, "assign", "liustaff", assignee="sunli", note="改派")
    assert (await ticket(svc, t.number)).assignee == "sunli"
    [card] = await outbox_rows(svc, "wecom", "sunli")
    assert card.payload["msgtype"] == "textcard"
    old = await outbox_rows(svc, "wecom", "wangwei")
    assert old[-1].payload["text"] == f"工单 {t.number}（3号楼）已改派他人，您无需再处理，不用上门。"
    async with svc.sessions() as session:
        pending = (await session.execute(
            select(Reminder.target).where(Reminder.cause_id == t.id, Reminder.state == "pending")
        )).scalars().all()
    assert set(pending) == {"sunli"}
    with pytest.raises(ValueError):
        async with svc.sessions() as session, session.begin():
            row = await tickets.get_by_number(session, t.number, for_update=True)
            assert row is not None
            await dispatch.apply_action(svc, session, row, "assign", "liustaff", assignee="ghost")


async def test_cancel_drops_reminders_and_tells_everyone(svc: Services) -> None:
    t = (await new_ticket(svc, resident="oC")).ticket
    async with svc.sessions() as session, session.begin():
        row = await tickets.get_by_number(session, t.number, for_update=True)
        assert row is not None
        await dispatch.apply_action(svc, session, row, "cancel", "liustaff", note="居民已自行解决")
    async with svc.sessions() as session:
        states = set((await session.execute(select(Reminder.state).where(Reminder.cause_id == t.id))).scalars())
    assert states == {"dropped"}
    assert (await outbox_rows(svc, "wechat", "oC"))[-1].payload["text"].startswith(f"您的工单 {t.number} 已撤销")
    assert (await outbox_rows(svc, "wecom", "wangwei"))[-1].payload["text"] == \
        f"工单 {t.number}（3号楼）已撤销，您无需再处理，不用上门。"


async def test_resolve_schedules_the_survey_and_reopen_tells_resident_and_worker(svc: Services) -> None:
    t = (await new_ticket(svc, resident="oS")).ticket
    async with svc.sessions() as session, session.begin():
        row = await tickets.get_by_number(session, t.number, for_update=True)
        assert row is not None
        await dispatch.apply_action(svc, session, row, "resolve", "wangwei", note="")
        survey = (await session.execute(
            select(Reminder).where(Reminder.cause_id == row.id, Reminder.cause_type == "survey")
        )).scalars().all()
        assert len(survey) >= 1  # bot.flows.survey.schedule_survey ran
        await dispatch.apply_action(svc, session, row, "reopen", "system", note="居民不满意")
    texts = [o.payload["text"] for o in await outbox_rows(svc, "wechat", "oS")]
    assert texts == [f"您的工单 {t.number} 已办结。", f"您的工单 {t.number} 已重新打开，我们会继续处理。"]
    assert "重新打开" in (await outbox_rows(svc, "wecom", "wangwei"))[-1].payload["text"]


async def test_escalation_markdown_is_escaped_and_masked(svc: Services) -> None:
    evil = "**紧急** [点我](http://evil.example) <b>x</b> 电话13812345678"
    t = (await new_ticket(svc, summary=evil)).ticket
    async with svc.sessions() as session, session.begin():
        row = await tickets.get_by_number(session, t.number, for_update=True)
        assert row is not None
        await dispatch.apply_action(svc, session, row, "escalate", "wangwei", note="需要住建部门 [协调](x)")
    [post] = await outbox_rows(svc, "group")
    content = post.payload["content"]
    assert "13812345678" not in content and "138＊＊＊＊5678" in content
    assert "[点我](" not in content and "**紧急**" not in content and "<b>" not in content
    assert "[协调](" not in content and "反映人数：1" in content and "王伟" in content
    assert (await ticket(svc, t.number)).status == "escalated"


async def test_simultaneous_reports_of_one_problem_dispatch_once(svc: Services) -> None:
    import asyncio

    results = await asyncio.gather(*(new_ticket(svc, resident=f"oSim{i}", building="7") for i in range(4)))
    parents = [r for r in results if r.linked_to is None]
    assert len(parents) == 1
    assert (await ticket(svc, parents[0].ticket.number)).reporters == 4
    pushes = [o.payload for o in await outbox_rows(svc, "wecom")]
    assert [p["msgtype"] for p in pushes].count("textcard") == 1  # the others told as 又有居民反映
    # the others told as one 又有居民反映 carrying the count (LINKED_EVERY)
    assert sorted(p.get("text", "")[:6] for p in pushes) == ["", "又有居民反映"]
    assert "（现共 4 位）" in next(p["text"] for p in pushes if p.get("text"))


async def test_a_neighbour_unsatisfied_with_a_shared_job_does_not_reopen_it_for_those_who_rated(
    svc: Services, clock: FakeClock, wx: WeChat, client: TestClient[Any, Any]
) -> None:
    """The water is back; 居民 a (the job) and c rate it 满意, b says it is still off: the job is
    reopened to its owner, but a and c are neither told 已重新打开 nor surveyed again when it is
    办结 once more — b is."""
    wc = WeCom(client, svc)
    job = (await new_ticket(svc, resident="oA", category="水电气暖", summary="3号楼停水了")).ticket.number
    b = (await new_ticket(svc, resident="oB", category="水电气暖", summary="3号楼也停水了")).ticket.number
    c = (await new_ticket(svc, resident="oC", category="水电气暖", summary="3号楼没水了")).ticket.number
    assert "已接单" in await wc.say("wangwei", "接单")
    assert "已办结" in await wc.say("wangwei", f"办结 {job[-4:]} 已恢复供水")
    clock.advance(hours=2)
    await run_due(svc)
    assert "满意" in await wx.say("oA", "满意")
    assert "满意" in await wx.say("oC", "5")
    assert "重新" in await wx.say("oB", "不满意，还是没水")
    assert (await ticket(svc, job)).status == "reopened"
    for openid in ("oA", "oC"):
        assert not [o for o in await outbox_rows(svc, "wechat", openid) if "重新打开" in o.payload.get("text", "")]
    assert "已办结" in await wc.say("wangwei", f"办结 {job[-4:]} 供水正常")
    clock.advance(days=1)
    await run_due(svc)
    clock.advance(days=1)
    await run_due(svc)
    surveys = {o: len([p for p in await outbox_rows(svc, "wechat", o) if "template" in p.payload]) for o in ("oA", "oB", "oC")}
    assert surveys == {"oA": 1, "oB": 2, "oC": 1}
    told = [o.payload["text"] for o in await outbox_rows(svc, "wechat", "oB") if "template" not in o.payload]
    assert f"您的工单 {b}（与工单 {job} 合并处理） 已办结：供水正常" in told
    assert (await ticket(svc, c)).status == "closed"


async def test_neighbours_reports_of_one_job_reach_its_owner_as_one_push_with_the_latest_count(
    svc: Services, clock: FakeClock
) -> None:
    """Fifteen neighbours report the water off through the night: the owner gets one 又有居民反映
    at 08:00 with the count then, not fifteen; after one went, the next waits out LINKED_EVERY."""
    from datetime import datetime, timezone

    clock.set(datetime(2026, 11, 23, 14, 30, tzinfo=timezone.utc))  # 22:30 in Shanghai
    job = (await new_ticket(svc, resident="oW0", category="水电气暖", summary="停水了")).ticket.number
    for n in range(1, 16):
        clock.advance(minutes=10)
        await new_ticket(svc, resident=f"oW{n}", category="水电气暖", summary=f"{n}楼没水")
    linked = [o for o in await outbox_rows(svc, "wecom", "wangwei") if "又有居民反映" in o.payload.get("text", "")]
    assert [o.payload["text"] for o in linked] == [f"又有居民反映工单 {job} 的问题（现共 16 位）：15楼没水（地点：3号楼）"]
    assert linked[0].next_attempt_at.replace(tzinfo=None) == datetime(2026, 11, 24, 0, 0)  # 08:00
    clock.set(datetime(2026, 11, 24, 0, 5, tzinfo=timezone.utc))
    async with svc.sessions() as session, session.begin():  # the morning push went
        row = await session.get(type(linked[0]), linked[0].id)
        assert row is not None
        row.state, row.sent_at = "sent", clock.now()
    await new_ticket(svc, resident="oW16", category="水电气暖", summary="还是没水")
    clock.advance(minutes=5)
    await new_ticket(svc, resident="oW17", category="水电气暖", summary="没水")
    later = [o for o in await outbox_rows(svc, "wecom", "wangwei") if "又有居民反映" in o.payload.get("text", "")][1:]
    assert [o.payload["text"] for o in later] == [f"又有居民反映工单 {job} 的问题（现共 18 位）：没水（地点：3号楼）"]
    assert later[0].next_attempt_at.replace(tzinfo=None) == datetime(2026, 11, 24, 0, 35)  # 30 min after the last


async def _report(svc: Services, wx: WeChat, openid: str, text: str, phone: str) -> list[str]:
    """A resident's report through /wechat, its questions answered (photos skipped, the phone, not
    kept, confirmed); the replies."""
    replies = [await wx.say(openid, text)]
    for said in ("跳过", phone, "2", "1"):
        if "工单" in replies[-1] and "已" in replies[-1]:
            break
        replies.append(await wx.say(openid, said))
    assert await tickets_of(svc, openid), replies
    return replies


async def test_a_leak_into_one_flat_is_never_merged_into_the_buildings_water_cut(svc: Services, wx: WeChat) -> None:
    """A water-cut morning: 7号楼 楼上漏水 天花板一直滴水 is 水电气暖 like 7号楼停水了, and was linked to the
    water-cut job (same building and category) — one household's leak lost in the outage. Now
    linking asks for the same problem (config/flows.toml [linking]): outage words link with outage
    words, a household's leak only with a report of the same flat."""
    await _report(svc, wx, "oCut1", "7号楼停水了", "13900000071")
    [job] = await tickets_of(svc, "oCut1")
    said = await _report(svc, wx, "oLeak1", "7号楼 楼上漏水 天花板一直滴水", "13900000072")
    assert "位居民反映" not in said[0] and "一并处理" not in said[0], said  # not told it is the water cut
    [leak] = await tickets_of(svc, "oLeak1")
    assert leak.parent_id is None and leak.category == job.category == "水电气暖"
    assert leak.status == "dispatched" and leak.assignee and "合并" not in said[-1]
    await _report(svc, wx, "oCut2", "7号楼也没水了", "13900000073")
    [cut2] = await tickets_of(svc, "oCut2")
    assert cut2.parent_id == job.id
    await _report(svc, wx, "oLeak2", "7号楼 我家卫生间漏水", "13900000074")
    [leak2] = await tickets_of(svc, "oLeak2")
    assert leak2.parent_id is None  # another flat's leak (no flat said): its own ticket
    # The same flat's leak told by another of its household is that leak, linked to it.
    await _report(svc, wx, "oFlat1", "7号楼2单元301 楼上漏水 天花板一直滴水", "13900000075")
    await _report(svc, wx, "oFlat2", "7号楼2单元301 卫生间漏水 楼上渗水下来", "13900000076")
    [flat1], [flat2] = await tickets_of(svc, "oFlat1"), await tickets_of(svc, "oFlat2")
    assert flat1.parent_id is None and flat2.parent_id == flat1.id
    assert (await ticket(svc, job.number)).reporters == 2
    assert (await ticket(svc, leak.number)).reporters == 1
    # The water cut's own reporter telling of a leak is not asked whether it is the cut again.
    assert "已经反映过" not in await wx.say("oCut1", "7号楼 厨房漏水 天花板滴水")
    owner = job.assignee
    told = [o.payload.get("text", "") for o in await outbox_rows(svc, "wecom", owner) if o.ticket_id == job.id]
    assert not any("漏水" in text or "滴水" in text for text in told), told


async def test_the_staff_group_is_told_once_when_a_job_reaches_many_reporters(
    svc: Services, clock: FakeClock, wx: WeChat
) -> None:
    """A water-main burst: the fifth resident of 3号楼 to report no water makes one post to the
    staff group (duplicates.alert_reporters), naming the job, its category, the count and 5号楼,
    whose water job is open too; the sixth makes none."""
    async def report(openid: str, text: str, phone: str) -> None:
        await _report(svc, wx, openid, text, phone)

    async def alerts() -> list[str]:
        return [o.payload["content"] for o in await outbox_rows(svc, "group") if "多人反映" in o.payload["content"]]

    assert load_limits().duplicate_alert_reporters == 5
    await report("o_b5", "5号楼停水了", "13900000050")
    for n in range(4):
        await report(f"o_b3_{n}", "3号楼停水了", f"1390000003{n}")
        clock.advance(minutes=5)
    assert await alerts() == []
    await report("o_b3_4", "3号楼也没水了", "13900000034")
    posts = await alerts()
    job = (await tickets_of(svc, "o_b3_0"))[0]
    assert job.reporters == 5
    assert len(posts) == 1 and job.number in posts[0], posts
    assert "5 位居民" in posts[0] and "5号楼" in posts[0] and job.category in posts[0], posts[0]
    assert "紧急" not in posts[0]  # a water job is not urgent
    await report("o_b3_5", "3号楼停水", "13900000035")
    assert len(await alerts()) == 1
    async with svc.sessions() as session:
        events = await session.scalars(select(TicketEvent).where(
            TicketEvent.ticket_id == job.id, TicketEvent.action == "outage_alert"))
        assert [(e.data or {}).get("reporters") for e in events] == [5]


async def test_a_neighbours_photo_reaches_the_owner_under_the_job(svc: Services, wx: WeChat) -> None:
    """A photo a neighbour sends after their report, linked to a job, was told to the owner under the
    neighbour's own number alone, one the owner cannot finish: now with the job it is handled under."""
    job = (await new_ticket(svc, resident="oPJ1")).ticket
    linked = await new_ticket(svc, resident="oPJ2")
    assert linked.linked_to is not None and linked.linked_to.number == job.number
    reply = await wx.send("image", "oPJ2", PicUrl="http://img.example/n.jpg", MediaId="m_neighbour")
    assert linked.ticket.number in reply
    texts = [o.payload.get("text", "") for o in await outbox_rows(svc, "wecom", "wangwei")]
    told = [t for t in texts if "【居民补充照片】" in t]
    assert len(told) == 1 and f"工单 {linked.ticket.number}（与工单 {job.number} 合并处理）" in told[0], texts
    assert f"电话 {linked.ticket.number[-4:]}" in told[0]  # the neighbour's phone, by their own number
    images = [o for o in await outbox_rows(svc, "wecom", "wangwei") if o.payload.get("msgtype") == "image"]
    assert len(images) == 1
