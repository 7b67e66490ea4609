"""Neighbours' reports of a building's problem, driven through /wechat and /wecom on both
backends: told about and linked to the open job of the very problem they report (a building's
water cut, not a flat's leak of the same category that was reported first), and an emergency
said again chased at once, then at most once in the configured time however often it is said."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from aiohttp.test_utils import TestClient
from sqlalchemy import select

from bot import dispatch
from bot.clock import FakeClock, local
from bot.services import Services
from storage.models import TicketEvent
from tests.conftest import WeChat
from tests.flow_helpers import tickets_of
from tests.test_owner_notices import oid, report, texts_to
from tests.wecom_driver import WeCom, ticket

Client = TestClient[Any, Any]


async def test_a_water_cut_report_is_told_of_and_linked_to_the_water_cut_not_the_leak_reported_first(
    wx: WeChat, client: Client, services: Services, clock: FakeClock,
) -> None:
    """A flat's leak, then the building's water cut, both open (水电气暖, 3号楼): a third resident's
    停水了 was led by the first open job of the kind — the leak, which a water cut never shares —
    so heard nothing of the neighbours; now it hears of the water cut, with its count and owner,
    and is linked to it; the owner's 又有居民反映 names the water cut."""
    leak, cut, third = oid(), oid(), oid()
    assert "工单号" in await report(wx, leak, "3号楼2单元201 楼上漏水 天花板一直滴水", "13812345678")
    clock.advance(minutes=5)
    assert "工单号" in await report(wx, cut, "3号楼停水了 水龙头不出水", "13900001111")
    [leak_job], [cut_job] = await tickets_of(services, leak), await tickets_of(services, cut)
    assert leak_job.category == cut_job.category and cut_job.parent_id is None
    clock.advance(minutes=5)
    first = await wx.say(third, "3号楼停水了 怎么回事")
    assert "已有1位居民反映" in first and "一并处理" in first, first
    assert "王伟" in first or (cut_job.assignee or "") == "", first
    for answer in ("否", "13700002222", "否"):
        if "请核对" in first:
            break
        first = await wx.say(third, answer)
    done = await wx.say(third, "确认")
    assert cut_job.number in done, done
    [mine] = await tickets_of(services, third)
    assert mine.parent_id == cut_job.id
    assert (await ticket(services, cut_job.number)).reporters == 2
    assert (await ticket(services, leak_job.number)).reporters == 1
    told = await texts_to(services, "wecom", cut_job.assignee or "")
    assert any(t.startswith(f"又有居民反映工单 {cut_job.number} 的问题（现共 2 位）") for t in told), told
    # The worker's 我的工单 over /wecom lists the water cut with its two reporters.
    listing = await WeCom(client, services).say(cut_job.assignee or "", "我的工单")
    assert "2 位居民反映" in listing, listing


async def chases_of(svc: Services, owner: str, number: str) -> list[str]:
    """The 【紧急·居民再次求助】 pushes owner got about a ticket."""
    return [t for t in await texts_to(svc, "wecom", owner) if t.startswith(f"【紧急·居民再次求助】工单 {number}")]


async def test_an_emergency_said_ten_times_in_a_minute_chases_the_owner_once_and_answers_every_time(
    wx: WeChat, client: Client, services: Services, clock: FakeClock,
) -> None:
    """电梯困人 said again and again by a panicking resident pushed its owner every time (ten in a
    minute, ten urgent pushes). Now the first is pushed at once, the rest within
    [complaint] emergency_chase_minutes only recorded, each answered with the time of that chase and
    what to do; after that time the next is pushed again; a neighbour trapped too, linked to the job,
    does not push it again within the time either. The owner, who takes it over /wecom, is chased
    as before."""
    every = dispatch.emergency_chase_every()
    assert every >= timedelta(minutes=2)
    resident, neighbour = oid(), oid()
    assert (await report(wx, resident, "5号楼电梯里关了人了！出不来 快来人", "13900001111")).startswith("已按紧急情况登记")
    [lift] = await tickets_of(services, resident)
    owner = lift.assignee or ""
    name = {"lina": "李娜", "zhaoqiang": "赵强"}.get(owner, owner)
    clock.advance(minutes=1)
    chased_at = f"{local(clock.now(), services.tz):%H:%M}"
    first = await wx.say(resident, "5号楼电梯困人了 快来人啊")
    assert f"工单号：{lift.number}。已立即再次催促" in first and "电梯内警铃" in first, first
    assert len(await chases_of(services, owner, lift.number)) == 1
    for _ in range(9):
        clock.advance(seconds=6)
        again = await wx.say(resident, "电梯困人了 快点啊 人还在里面")
        assert f"工单号：{lift.number}。{chased_at}已再次催促" in again and "正在处理中" in again, again
        assert "电梯内警铃" in again, again
    assert len(await chases_of(services, owner, lift.number)) == 1  # not ten
    assert [t.number for t in await tickets_of(services, resident)] == [lift.number]
    async with services.sessions() as session:
        urged = (await session.scalars(select(TicketEvent).where(
            TicketEvent.ticket_id == lift.id, TicketEvent.action == "urged"))).all()
    assert len(urged) == 10 and sum(bool(e.data.get("chased")) for e in urged) == 1  # every word kept
    # A neighbour trapped too: linked to the job, told of it; their 困人 again within the time is
    # no second push.
    done = await report(wx, neighbour, "5号楼电梯困人了 快来人", "13700002222")
    assert f"正在工单{lift.number}中处理" in done, done
    again = await wx.say(neighbour, "电梯困人 还没人来")
    assert f"{chased_at}已再次催促" in again, again
    assert len(await chases_of(services, owner, lift.number)) == 1
    # The owner takes it over /wecom; once the time has passed since the chase, the next is pushed.
    wc = WeCom(client, services)
    assert (await wc.say(owner, f"接单 {lift.number[-4:]}")).startswith("已接单"), owner
    clock.advance(seconds=int(every.total_seconds()))
    later = await wx.say(resident, "电梯里的人还出不来 快点")
    assert "已立即再次催促" in later and name in later, later
    assert len(await chases_of(services, owner, lift.number)) == 2


async def test_a_grid_workers_burst_morning(wx: WeChat, client: Client, services: Services, clock: FakeClock) -> None:
    """One grid worker (王伟: 1–3号楼) on a morning of reports, as a worker saw it over /wecom:
    三号楼一滴水都没有 was a second water-cut job (滴水 read as a flat's leak), 1号楼电梯里关着人 got the
    menu (没太明白) and reached nobody, and 我的工单 listed three jobs at 3栋 all as 报事报修, the
    water cut not told from the flat's leak. Now the water cut is one job, the trapped person an
    urgent card at once, and each line of 我的工单 names the kind of problem and the words."""
    said = [("3号楼停水了", "1"), ("3号楼没水了 怎么回事", "2"), ("三号楼一滴水都没有", "3"),
            ("3号楼2单元301 楼上漏水 天花板一直滴水", "4"), ("1号楼电梯坏了", "5"), ("一号楼电梯不能用了", "6"),
            ("2号楼楼道灯坏了", "7")]
    numbers: dict[str, str] = {}
    for words, n in said:
        clock.advance(seconds=40)
        who = f"oMorning{n}"
        reply = await wx.say(who, words)
        if "哪一类" in reply:  # 一滴水都没有 names no kind of problem: 5 is 水电气暖
            reply = await wx.say(who, "5")
        answers = {"照片": "跳过", "联系电话": f"1380000000{n}", "绑定": "否"}
        for _ in range(5):
            if "请核对" in reply:
                reply = await wx.say(who, "确认")
                break
            answer = next((a for k, a in answers.items() if k in reply), None)
            assert answer is not None, reply
            reply = await wx.say(who, answer)
        assert "工单号" in reply, reply
        [made] = await tickets_of(services, who)
        numbers[words] = made.number
        assert made.assignee == "wangwei"
    cut = await ticket(services, numbers["3号楼停水了"])
    dry = await ticket(services, numbers["三号楼一滴水都没有"])
    assert dry.parent_id == cut.id and cut.reporters == 3, (dry.parent_id, cut.reporters)
    leak = await ticket(services, numbers["3号楼2单元301 楼上漏水 天花板一直滴水"])
    assert leak.parent_id is None
    # Someone trapped in 1号楼's lift: the urgent report, its card to 王伟 at once.
    trapped = oid()
    done = await report(wx, trapped, "1号楼电梯里关着人 快来", "13700002222")
    assert done.startswith("已按紧急情况登记"), done
    [lift] = await tickets_of(services, trapped)
    assert (lift.urgency, lift.assignee, lift.parent_id) == ("urgent", "wangwei", None)
    mine = await WeCom(client, services).say("wangwei", "我的工单")
    lines = {line.split("｜")[0]: line for line in mine.splitlines()[1:]}
    assert "水电气暖：3号楼停水了" in lines[cut.number] and "3 位居民反映" in lines[cut.number], mine
    assert "水电气暖：3号楼2单元301 楼上漏水" in lines[leak.number], mine
    assert "电梯：1号楼电梯里关着人" in lines[lift.number], mine
    assert "照明：2号楼楼道灯坏了" in lines[numbers["2号楼楼道灯坏了"]], mine
    assert set(lines) == {cut.number, leak.number, lift.number, numbers["1号楼电梯坏了"], numbers["2号楼楼道灯坏了"]}


async def test_a_residents_hurry_up_on_an_urgent_report_reaches_its_owner_after_the_emergency_chase(
    wx: WeChat, services: Services, clock: FakeClock,
) -> None:
    """An emergency said again is recorded as a chase; the resident's 快点 / 催一下 afterwards was
    answered 已经催促过 for twelve hours (a 催一下's own limit) — an hour after the lift's chase, a
    trapped resident's hurry-up reached nobody. An urgent job is chased by 催 at most once in
    [complaint] emergency_chase_minutes, as the emergency said again is; an ordinary one still once
    in twelve hours (tests/test_flows_status_handoff.py)."""
    every = dispatch.emergency_chase_every()
    resident = oid()
    assert (await report(wx, resident, "5号楼电梯里关了人了！出不来 快来人", "13900001111")).startswith("已按紧急情况登记")
    [lift] = await tickets_of(services, resident)
    owner = lift.assignee or ""
    clock.advance(minutes=1)
    assert "已立即再次催促" in await wx.say(resident, "5号楼电梯困人了 快来人啊")

    def hurried(texts: list[str]) -> list[str]:
        return [t for t in texts if t.startswith(f"【居民催办】工单 {lift.number}")]

    clock.advance(hours=1)
    urged = await wx.say(resident, "催一下 快点")
    assert "已帮您催促" in urged and lift.number in urged, urged
    assert len(hurried(await texts_to(services, "wecom", owner))) == 1
    clock.advance(seconds=30)
    assert "已经催促过" in await wx.say(resident, "催一下")  # within the chase time: recorded, not pushed
    assert len(hurried(await texts_to(services, "wecom", owner))) == 1
    clock.advance(seconds=int(every.total_seconds()))
    assert "已帮您催促" in await wx.say(resident, "快点来人啊 催一下")
    assert len(hurried(await texts_to(services, "wecom", owner))) == 2
