"""A grid worker's day in WeCom, played through /wecom, /wechat and /api on both backends, and
what it showed wrong: verbs as voice input writes them (接丹, 办洁) read as words, a reopened job's
push naming neither its place nor what to send, a result sent for a job reassigned meanwhile
lost, and a photo sent before its 办结 dropped."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from bot import schedule, worker_commands
from bot.clock import FakeClock, local
from bot.services import Services
from storage.models import TicketEvent
from tests.conftest import WeChat
from tests.staff_support import audit_rows
from tests.test_owner_notices import oid, resolved_and_surveyed, texts_to
from tests.wecom_driver import WeCom, load_demo_roster, new_ticket, outbox_rows, ticket

TOKEN = "api-token-for-the-workers-day"
Client = TestClient[Any, Any]


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    """An API token: staff reassign a job through /api while its worker is at it."""
    return {"api_token": TOKEN}


async def events_of(svc: Services, number: str, action: str) -> list[TicketEvent]:
    """A ticket's events of one action, oldest first."""
    found = await ticket(svc, number)
    async with svc.sessions() as session:
        rows = await session.scalars(select(TicketEvent).where(
            TicketEvent.ticket_id == found.id, TicketEvent.action == action).order_by(TicketEvent.id))
        return list(rows)


async def photo(wc: WeCom, user: str, media_id: str) -> str:
    """A photo sent from the WeCom app; the reply."""
    status, reply = await wc.post(wc.message_xml(user, "image", PicUrl=f"http://pic.example/{media_id}.jpg",
                                                 MediaId=media_id))
    assert status == 200, reply
    return reply


def test_verbs_as_voice_input_writes_them_are_asked_back() -> None:
    assert worker_commands.misheard("接丹 1") == "接单 1"
    assert worker_commands.misheard("姐单3") == "接单3"
    assert worker_commands.misheard("办洁 1 灯换好了") == "办结 1 灯换好了"
    assert worker_commands.misheard("办杰二号 修好了") == "办结二号 修好了"
    assert worker_commands.parse("接丹 1") is None and worker_commands.parse("办洁 1 灯换好了") is None


async def test_jie_dan_and_ban_jie_misheard_do_nothing_and_are_never_offered_for_the_resident(
    client: Client, services: Services,
) -> None:
    """接丹 1 got 没有看懂这条指令 and the command list; 办洁 1 灯换好了 was offered as 回复 0001 办洁 1
    灯换好了, the slip sent to the resident. Both are now asked back, nothing done."""
    await load_demo_roster(services)
    wc = WeCom(client, services)
    first = (await new_ticket(services, resident="oDay1")).ticket
    await new_ticket(services, resident="oDay2", category="水电气暖", summary="3号楼水管漏了")
    assert await wc.say("wangwei", "接丹 1") == "这条指令没有办理。您是要发“接单 1”吗？是的话请照这样再发一次。"
    said = await wc.say("wangwei", "办洁 1 灯换好了")
    assert said == "这条指令没有办理。您是要发“办结 1 灯换好了”吗？是的话请照这样再发一次。"
    assert (await ticket(services, first.number)).status == "dispatched"
    assert not await audit_rows(services, "wecom.accept") and not await audit_rows(services, "wecom.resolve")


async def test_a_reopened_jobs_push_names_its_place_and_what_to_send(
    wx: WeChat, client: Client, services: Services, clock: FakeClock,
) -> None:
    """工单 0001 居民反馈未解决，已重新打开 … 居民说：灯还是不亮 — which of the worker's jobs, and
    what then? Every other push that asks for work names the place and the command; so does this."""
    wc = WeCom(client, services)
    openid = oid()
    number = await resolved_and_surveyed(wc, services, clock, openid)
    await wx.say(openid, "不满意，灯还是不亮")
    reopened = (await texts_to(services, "wecom", "wangwei"))[-1]
    assert reopened.startswith(f"工单 {number}（3号楼）居民反馈未解决，已重新打开"), reopened
    assert reopened.endswith("居民说：灯还是不亮\n办完请回复“办结 0001 说明”；要先联系居民请回复“电话 0001”。"), reopened
    assert (await wc.say("wangwei", "办结 0001 换了整个灯座")).startswith(f"已办结：工单 {number}")


async def test_a_result_sent_for_a_job_reassigned_meanwhile_reaches_its_new_owner(
    client: Client, services: Services, clock: FakeClock,
) -> None:
    """王伟 took the blocked drain, staff gave it to 李娜 while he was clearing it, and his 办结 2
    疏通好了 was answered 已改派他人 — his result lost, 李娜 on her way to a drain already clear. Now
    the result is kept on the job (内部备注), pushed to 李娜 (after the quiet hours, as the bot's
    pushes are) and audited, and he hears who has it; the job stays hers to finish."""
    await load_demo_roster(services)
    wc = WeCom(client, services)
    clock.set(datetime(2026, 11, 23, 14, 0, tzinfo=timezone.utc))  # 22:00 in Shanghai
    job = (await new_ticket(services, resident="oDrain", category="环境卫生", summary="下水道堵了",
                           fields={"phone": "13812345678", "place": "3栋1单元"})).ticket
    assert (await wc.say("wangwei", "接单 1")).startswith("已接单")
    moved = await client.post(f"/api/tickets/{job.number}/transition", json={"action": "assign", "assignee": "lina"},
                              headers={"Authorization": f"Bearer {TOKEN}"})
    assert moved.status == 200, await moved.text()
    assert await wc.say("wangwei", "办结 1") == f"工单 {job.number} 已改派他人，您无需再处理。"  # no result: nothing to pass on
    said = await wc.say("wangwei", "办结 1 疏通好了，打我电话13900001111")
    assert said == f"工单 {job.number} 已改派给 李娜，这张单不用您再办结。您写的办理情况已转告 李娜，并记在工单上。"
    [told] = [o for o in await outbox_rows(services, "wecom", "lina") if "原承办人" in o.payload.get("text", "")]
    assert told.payload["text"] == (f"工单 {job.number}（3栋1单元）原承办人 王伟 报告：疏通好了，打我电话139****1111。"
                                    "请核实情况，办好后回复“办结 0001 说明”。")
    assert local(told.next_attempt_at.replace(tzinfo=timezone.utc), services.tz).strftime("%d %H:%M") == "24 08:00"
    [note] = await events_of(services, job.number, "note")
    assert note.actor == "wangwei" and note.note == "原承办人 王伟 在企业微信报告：疏通好了，打我电话139****1111"
    [audited] = await audit_rows(services, "wecom.passed_on")
    assert (audited.actor, audited.target) == ("wangwei", job.number)
    after = await ticket(services, job.number)
    assert (after.status, after.assignee) == ("dispatched", "lina")
    # Someone else's job, never his: refused as before, nothing passed on.
    other = (await new_ticket(services, resident="oOther", building="5", summary="5号楼楼道灯坏了")).ticket
    assert "不是派给您的" in await wc.say("wangwei", f"办结 {other.number} 修好了")
    assert len(await audit_rows(services, "wecom.passed_on")) == 1


async def test_a_photo_sent_before_its_banjie_is_kept_and_attached_by_it(client: Client, services: Services) -> None:
    """On the spot a worker takes the photo and sends it, then types 办结: the photo was answered
    请先发送办结 and dropped. Now it is kept (the reply names the 办结 to send) and attached by that
    办结, audited; past the number kept, a photo is refused with what to do."""
    await load_demo_roster(services)
    wc = WeCom(client, services)
    job = (await new_ticket(services, resident="oLamp")).ticket
    assert (await wc.say("wangwei", "接单")).startswith("已接单")
    minutes = worker_commands.PHOTO_TTL_S // 60
    assert await photo(wc, "wangwei", "M1") == \
        f"收到照片（第 1 张），先替您留着。{minutes} 分钟内发送“办结 0001 说明”办结，照片会一起附到那张工单。"
    assert "第 2 张" in await photo(wc, "wangwei", "M2")
    done = await wc.say("wangwei", "办结 1 灯换好了")
    assert done.startswith(f"已办结：工单 {job.number}") and done.endswith(f"您之前发的 2 张照片已附到工单 {job.number}。")
    assert [e.data["media_id"] for e in await events_of(services, job.number, "photo")] == ["M1", "M2"]
    assert len(await audit_rows(services, "wecom.photo")) == 2
    # … and one after the 办结 goes to it as before.
    assert await photo(wc, "wangwei", "M3") == f"照片已附到工单 {job.number}。"
    # Several picked at once arrive together, none lost; at most KEPT_PHOTOS are kept (李娜, with a
    # job of her own and nothing finished lately).
    second = (await new_ticket(services, resident="oLamp2", building="5", summary="5号楼楼道灯坏了")).ticket
    assert second.assignee == "lina" and (await wc.say("lina", "接单")).startswith("已接单")
    together = await asyncio.gather(*(photo(wc, "lina", f"K{n}") for n in range(3)))
    assert sorted(said.split("（")[1][:5] for said in together) == ["第 1 张", "第 2 张", "第 3 张"]
    for n in range(3, worker_commands.KEPT_PHOTOS):
        assert f"第 {n + 1} 张" in await photo(wc, "lina", f"K{n}")
    assert "这张没有再留" in await photo(wc, "lina", "K-extra")
    assert (await wc.say("lina", "办结 灯换好了")).endswith(
        f"您之前发的 {worker_commands.KEPT_PHOTOS} 张照片已附到工单 {second.number}。")
    assert len(await events_of(services, second.number, "photo")) == worker_commands.KEPT_PHOTOS
    assert "现场照片在办结前后发来都会附到工单" in await wc.say("lina", "帮助")


async def test_photos_kept_before_a_banjie_whose_commit_fails_are_kept_for_its_retry(
    client: Client, services: Services, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The kept photos were removed from the store before the 办结 attaching them was committed: a
    failed commit lost them. Now they leave the store only once it is committed."""
    await load_demo_roster(services)
    wc = WeCom(client, services)
    job = (await new_ticket(services, resident="oLampFail")).ticket
    assert (await wc.say("wangwei", "接单")).startswith("已接单")
    assert "第 1 张" in await photo(wc, "wangwei", "F1")
    assert "第 2 张" in await photo(wc, "wangwei", "F2")

    def fail(*_: Any) -> None:
        raise RuntimeError("the commit fails")

    with monkeypatch.context() as patched:
        patched.setattr(worker_commands.delivery_record, "record", fail)
        with pytest.raises(RuntimeError):
            await worker_commands.run(services, "wangwei", "办结 1 灯换好了")
    assert (await ticket(services, job.number)).status == "accepted" and not await events_of(services, job.number, "photo")
    done = await wc.say("wangwei", "办结 1 灯换好了")
    assert done.endswith(f"您之前发的 2 张照片已附到工单 {job.number}。"), done
    assert [e.data["media_id"] for e in await events_of(services, job.number, "photo")] == ["F1", "F2"]
    assert not await services.store.get(services.store.key("wecom-photo-kept", "wangwei"))


async def test_mine_says_chaoqi_for_a_missed_banjie_limit_and_jiedan_chaoshi_for_a_missed_jiedan(
    client: Client, services: Services, clock: FakeClock,
) -> None:
    """我的工单 said （已超时） for either limit, where the console says 超期 for a missed 办结 limit
    (the figures' rule, report.past_resolve_limit: breached, or open past it) and 接单超时 for a
    missed 接单 — and nothing for a job open past its 办结 limit before its check ran."""
    await load_demo_roster(services)
    wc = WeCom(client, services)
    clock.set(datetime(2026, 11, 23, 2, 0, tzinfo=timezone.utc))  # 10:00 in Shanghai
    slow = (await new_ticket(services, resident="oMine1")).ticket
    clock.advance(minutes=31)
    await schedule.run_due(services)  # its 接单 limit missed: escalated for it
    late = (await new_ticket(services, resident="oMine2", category="水电气暖", urgency="urgent", summary="3号楼水管漏了")).ticket
    assert (await wc.say("wangwei", f"接单 {late.number}")).startswith("已接单")
    on_time = (await new_ticket(services, resident="oMine3", building="2", category="环境卫生", summary="下水道堵了")).ticket
    assert (await wc.say("wangwei", f"接单 {on_time.number}")).startswith("已接单")
    clock.set(late.due_at + timedelta(minutes=5))  # past its 办结 limit, its check not yet run
    mine = await wc.say("wangwei", "我的工单")
    line = {n: next(x for x in mine.splitlines() if x.startswith(n)) for n in (slow.number, late.number, on_time.number)}
    assert "（接单超时）" in line[slow.number] and "超期" not in line[slow.number], mine
    assert "（超期）" in line[late.number] and "接单超时" not in line[late.number], mine
    assert "超" not in line[on_time.number] and "已超时" not in mine, mine


async def test_a_photo_well_after_a_banjie_with_another_job_in_hand_waits_for_that_jobs_banjie(
    client: Client, services: Services, clock: FakeClock,
) -> None:
    """A photo sent within 30 minutes after one 办结 went to that job, though the worker had walked
    on to the next and taken it there. Right after a 办结 (PHOTO_AFTER_S) it is still that job's
    result; later, with another job in hand, it is kept for that job's 办结 and the worker is told
    it was not put on the one finished; with no job left it goes to the one finished."""
    await load_demo_roster(services)
    wc = WeCom(client, services)
    clock.set(datetime(2026, 11, 23, 2, 0, tzinfo=timezone.utc))
    lamp = (await new_ticket(services, resident="oNext1")).ticket
    drain = (await new_ticket(services, resident="oNext2", building="2", category="环境卫生", summary="下水道堵了")).ticket
    assert (await wc.say("wangwei", f"接单 {lamp.number} {drain.number}")).count("已接单") == 2
    assert (await wc.say("wangwei", f"办结 {lamp.number} 灯换好了")).startswith("已办结")
    clock.advance(minutes=2)
    assert await photo(wc, "wangwei", "N1") == f"照片已附到工单 {lamp.number}。"  # the result, sent right after
    clock.advance(seconds=worker_commands.PHOTO_AFTER_S)
    said = await photo(wc, "wangwei", "N2")
    assert said.startswith(f"工单 {lamp.number} 办结已超过 {worker_commands.PHOTO_AFTER_S // 60} 分钟，这张照片没有附到它"), said
    assert "第 1 张" in said and f"办结 {drain.number[-4:]} 说明" in said, said
    done = await wc.say("wangwei", f"办结 {drain.number} 疏通好了")
    assert done.endswith(f"您之前发的 1 张照片已附到工单 {drain.number}。"), done
    assert [e.data["media_id"] for e in await events_of(services, lamp.number, "photo")] == ["N1"]
    assert [e.data["media_id"] for e in await events_of(services, drain.number, "photo")] == ["N2"]
    clock.advance(minutes=10)  # no job left in hand: a late photo is still the last one finished's
    assert await photo(wc, "wangwei", "N3") == f"照片已附到工单 {drain.number}。"


EVENING = (("1", "照明", "1号楼楼道灯不亮"), ("1", "环境卫生", "1号楼下水道堵了"), ("1", "电梯", "1号楼电梯不动了"),
           ("1", "噪音", "1号楼楼上装修太吵"), ("2", "照明", "2号楼路灯坏了"), ("2", "水电气暖", "2号楼水管漏水"),
           ("2", "物业服务", "2号楼单元门禁坏了"), ("2", "消防安全", "2号楼楼道堆满纸箱"))


async def test_a_grid_workers_evening_with_eight_jobs_over_two_buildings(
    wx: WeChat, client: Client, services: Services, clock: FakeClock,
) -> None:
    """王伟's evening walked through (8 jobs at 1号楼 and 2号楼, into the quiet hours): 明天的单子 was
    没有看懂这条指令, offered as 回复 0001 明天的单子 for a resident — it is 我的工单, as 今天的单子 is;
    1号楼的电梯修好了 for the lift staff had just given 李娜 said he held no lift job there — his result
    is passed on to her as 办结 3 电梯修好了 is. The rest held: the jobs' words pick the job at the
    building, a job reopened by 不满意 at 21:30 reaches him at 08:00 and 明天去 asks its 接单."""
    await load_demo_roster(services)
    wc = WeCom(client, services)
    clock.set(datetime(2026, 11, 23, 10, 0, tzinfo=timezone.utc))  # 18:00 in Shanghai
    jobs = [(await new_ticket(services, resident=f"oEve{n}", building=b, category=c, summary=s,
                              fields={"phone": "13812345678", "description": s})).ticket
            for n, (b, c, s) in enumerate(EVENING)]
    assert {x.assignee for x in jobs} == {"wangwei"}
    listed = await wc.say("wangwei", "我的工单")
    assert listed.startswith("您手上的工单（8 张）：") and await wc.say("wangwei", "明天的单子") == listed
    assert await wc.say("wangwei", "今天的单子") == listed
    for said, count in (("接单 1 2 3 4 5 6", 6), ("接单 7 8", 2)):  # at most 6 numbers a command
        assert (await wc.say("wangwei", said)).count("已接单") == count
    assert (await wc.say("wangwei", "1号楼的灯修好了")).startswith(f"已办结：工单 {jobs[0].number}")
    assert (await wc.say("wangwei", "1号楼的下水道通了")).startswith(f"已办结：工单 {jobs[1].number}")
    moved = await client.post(f"/api/tickets/{jobs[2].number}/transition", json={"action": "assign", "assignee": "lina"},
                              headers={"Authorization": f"Bearer {TOKEN}"})
    assert moved.status == 200, await moved.text()
    assert await wc.say("wangwei", "1号楼的电梯修好了") == (
        f"工单 {jobs[2].number} 已改派给 李娜，这张单不用您再办结。您写的办理情况已转告 李娜，并记在工单上。")
    assert [o for o in await outbox_rows(services, "wecom", "lina") if "原承办人 王伟 报告：1号楼的电梯修好了" in str(o.payload)]
    assert ((job := await ticket(services, jobs[2].number)).status, job.assignee) == ("dispatched", "lina")  # hers
    assert [a.target for a in await audit_rows(services, "wecom.passed_on")] == [jobs[2].number]
    # 21:30, the lamp's survey answered 不满意: the reopened job reaches him after the quiet hours
    clock.set(datetime(2026, 11, 23, 13, 30, tzinfo=timezone.utc))
    await schedule.run_due(services)
    await wx.say("oEve0", "不满意，灯还是不亮")
    [reopened] = [o for o in await outbox_rows(services, "wecom", "wangwei") if "重新打开" in str(o.payload)]
    assert local(reopened.next_attempt_at.replace(tzinfo=timezone.utc), services.tz).strftime("%d %H:%M") == "24 08:00"
    later = await wc.say("wangwei", "明天去")
    assert "接单 0001（1号楼楼道灯不亮）" in later and "回复 0001 明天去（1号楼楼道灯不亮）" in later
    assert await wc.say("wangwei", "1号楼的灯明天一早修") == (  # the job named, not the 6 in hand
        "收到。这句话没有发给居民，工单也没有变动。\n还没接单的请先接单（超过接单时限会上报服务中心）：\n"
        "接单 0001（1号楼楼道灯不亮）\n要让居民知道什么时候来、办到哪一步了，请回复：\n回复 0001 明天一早修（1号楼楼道灯不亮）")
    assert (await wc.say("wangwei", "还有单吗")).startswith("您手上的工单（6 张）：")
    put_off = await wc.say("wangwei", "太晚了今天去不了 明天去")  # a plan: no 退回 offered
    assert put_off.startswith("收到。这句话没有发给居民，工单也没有变动。") and "退回" not in put_off, put_off
    assert (await wc.say("wangwei", "还有几单")).startswith("您手上的工单（6 张）：")


async def test_at_night_a_job_taken_then_reassigned_is_said_at_once(
    client: Client, services: Services, clock: FakeClock, caplog: Any,
) -> None:
    """22:00: 王伟 took the lamp (接单 1) and set off; staff gave it to 李娜. His 已改派他人，不用上门
    waited for 08:00 with the bot's other pushes, so he went there for nothing. One who took the job
    is told at once. The lift, given him at 22:00 and to 李娜 before its card left the quiet hours,
    came at 08:00 as a new job of his and then as 已改派他人: its card is taken back and nothing is
    said. His 修好了, with nothing left in hand, is passed on to 李娜 as 办结 1 修好了 is."""
    await load_demo_roster(services)
    wc = WeCom(client, services)
    clock.set(datetime(2026, 11, 23, 14, 0, tzinfo=timezone.utc))  # 22:00 in Shanghai
    lamp = (await new_ticket(services, resident="oNight1", building="1")).ticket
    lift = (await new_ticket(services, resident="oNight2", building="2", category="电梯", summary="电梯坏了")).ticket
    assert (await wc.say("wangwei", "接单 1")).startswith("已接单")
    for job in (lamp, lift):
        moved = await client.post(f"/api/tickets/{job.number}/transition", json={"action": "assign", "assignee": "lina"},
                                  headers={"Authorization": f"Bearer {TOKEN}"})
        assert moved.status == 200, await moved.text()
    told = {o.payload["text"].split("（")[0]: local(o.next_attempt_at.replace(tzinfo=timezone.utc), services.tz).strftime("%d %H:%M")
            for o in await outbox_rows(services, "wecom", "wangwei") if "已改派他人" in o.payload.get("text", "")}
    assert told == {f"工单 {lamp.number}": "23 22:00"}
    assert not [o for o in await outbox_rows(services, "wecom", "wangwei") if o.payload.get("msgtype") == "textcard"]
    assert not [o for o in await outbox_rows(services, "wecom", "wangwei") if lift.number in str(o.payload)]
    [card] = [o for o in await outbox_rows(services, "wecom", "lina") if lift.number in str(o.payload)]
    assert local(card.next_attempt_at.replace(tzinfo=timezone.utc), services.tz).strftime("%d %H:%M") == "24 08:00"
    assert await wc.say("wangwei", "修好了") == "您目前没有可以办结的工单。"  # two were his: which one, unsaid
    closed = await client.post(f"/api/tickets/{lift.number}/transition", json={"action": "close", "note": "重复登记"},
                               headers={"Authorization": f"Bearer {TOKEN}"})
    assert closed.status == 200, await closed.text()
    import logging

    caplog.set_level(logging.INFO, logger="bot.channels.wecom")
    assert await wc.say("wangwei", "修好了 换了灯泡") == (
        f"工单 {lamp.number} 已改派给 李娜，这张单不用您再办结。您写的办理情况已转告 李娜，并记在工单上。")
    [line] = [r.fields for r in caplog.records if r.getMessage() == "wecom text"]  # type: ignore[attr-defined]
    assert (line["verb"], line["outcome"]) == ("resolve", "passed_on")  # not "refused": the result went on
