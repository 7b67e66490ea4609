"""Status questions and hand-offs to a person, through /wechat on both backends."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select

from bot.clock import FakeClock
from bot.schedule import run_due
from bot.services import Services
from storage.models import TicketEvent
from tests.conftest import WeChat
from tests.flow_helpers import group_posts, tickets_of


def oid() -> str:
    return "o" + uuid.uuid4().hex[:20]


async def complaint(wx: WeChat, openid: str, building: str = "9") -> str:
    """File a lighting complaint from the menu; returns the confirmation."""
    for answer in ["1", "1", f"{building}栋1单元", "楼道灯不亮三天了", "好了", "13812345678", "否"]:
        await wx.say(openid, answer)
    return await wx.say(openid, "1")


async def test_status_lists_open_tickets_with_owner_and_due_time(wx: WeChat, services: Services) -> None:
    openid = oid()
    assert "没有正在办理" in await wx.say(openid, "5")
    await complaint(wx, openid)
    await complaint(wx, openid, building="2")
    listing = await wx.say(openid, "5")
    assert "2个" in listing and "20261123-0001" in listing and "20261123-0002" in listing
    assert "孙丽" in listing and "王伟" in listing and "已派单" in listing and "前办结" in listing
    assert listing.index("0002") < listing.index("0001")  # newest first
    assert "20261123-0002" in await wx.event(openid, "CLICK", "MENU_MY_TICKETS")


async def test_with_nothing_open_the_jobs_ended_this_week_are_told_with_what_was_done(
    wx: WeChat, client: Any, services: Services, clock: FakeClock,
) -> None:
    """我的路灯修好了吗 asked after the 已办结 push got 您目前没有正在办理的工单, as if nothing had been
    reported; now the jobs ended in the last 7 days are listed with the owner's 办结 note (not the
    survey's close note), and how to say it is not fixed — which reopens it, as the survey would."""
    from tests.wecom_driver import WeCom

    openid = oid()
    await complaint(wx, openid)
    [ticket] = await tickets_of(services, openid)
    assert "已办结" in await WeCom(client, services).say(str(ticket.assignee), f"办结 {ticket.number[-4:]} 换了灯泡，亮了")
    told = await wx.say(openid, "路灯修好了吗")
    assert told.startswith("您目前没有正在办理的工单。最近办完的1个："), told
    assert f"【{ticket.number}】报事报修｜已办结" in told and "｜办理情况：换了灯泡，亮了" in told
    assert "还是没修好" in told
    assert "已重新交给承办人" in await wx.say(openid, "还是没修好")
    [ticket] = await tickets_of(services, openid)
    assert ticket.status == "reopened"
    assert "您有1个正在办理的工单" in await wx.say(openid, "5")
    assert "已办结" in await WeCom(client, services).say(str(ticket.assignee), f"办结 {ticket.number[-4:]} 又换了一次")
    clock.advance(seconds=services.settings.survey_delay_s)
    await run_due(services)  # the survey goes out
    assert "感谢" in await wx.say(openid, "满意")
    [ticket] = await tickets_of(services, openid)
    assert ticket.status == "closed"
    told = await wx.say(openid, "5")
    assert "｜已关闭｜" in told and "｜办理情况：又换了一次" in told and "回访" not in told, told
    clock.advance(days=8)
    assert await wx.say(openid, "5") == "您目前没有正在办理的工单。需要办事请直接告诉我。"


async def test_status_by_number_only_for_ones_own_ticket(wx: WeChat, services: Services) -> None:
    owner, stranger = oid(), oid()
    await complaint(wx, owner)
    one = await wx.say(owner, "20261123-0001 怎么样了")
    assert "【20261123-0001】" in one and "孙丽" in one
    assert "没有找到" in await wx.say(stranger, "20261123-0001怎么样了")
    assert "没有找到" in await wx.say(owner, "20261123-0099 怎么样了")


async def test_status_by_the_last_digits_of_ones_own_ticket(wx: WeChat, services: Services) -> None:
    """0001怎么样了 / 工单1 / 0001进度 (before: "sorry, I did not understand" and the menu)."""
    owner, stranger = oid(), oid()
    await complaint(wx, owner)
    await complaint(wx, owner, building="2")
    for text in ("0001怎么样了", "工单1", "0001进度", "查一下0001号工单"):
        one = await wx.say(owner, text)
        assert one.startswith("【20261123-0001】") and "20261123-0002" not in one, text
    missing = await wx.say(owner, "0009怎么样了")
    assert "尾号为 0009" in missing and "20261123-0001" in missing  # said, with the ones there are
    assert "尾号为 0001" in await wx.say(stranger, "0001怎么样了")  # another resident's: not shown
    assert "【" not in await wx.say(owner, "12")  # two digits alone are no ticket
    assert "【" not in await wx.say(owner, "0001块钱")  # digits with something else are not a question
    assert "1000" not in await wx.say(owner, "10001怎么样了")  # five digits: not the ticket ending 1000


async def test_status_question_inside_a_flow_keeps_the_flow(wx: WeChat, services: Services) -> None:
    openid = oid()
    await complaint(wx, openid)
    await wx.say(openid, "1")
    reply = await wx.say(openid, "20261123-0001 到哪一步了")
    assert "【20261123-0001】" in reply and "哪一类" in reply
    assert "问题在哪里" in await wx.say(openid, "1")


async def test_handoff_from_the_menu_in_service_hours(wx: WeChat, services: Services) -> None:
    openid = oid()
    reply = await wx.say(openid, "6")
    [ticket] = await tickets_of(services, openid)
    assert ticket.kind == "handoff" and ticket.status == "escalated" and ticket.number in reply
    assert "30分钟内" in reply
    posts = [p for p in await group_posts(services) if p.ticket_id == ticket.id]
    assert len(posts) == 1 and ticket.number in posts[0].payload["content"]
    again = await wx.event(openid, "CLICK", "MENU_HANDOFF")
    assert ticket.number in again and "已经在人工服务" in again
    assert len(await tickets_of(services, openid)) == 1


async def test_handoff_out_of_hours_says_when(wx: WeChat, services: Services, clock: FakeClock) -> None:
    clock.advance(hours=12)  # 22:00 local
    openid = oid()
    reply = await wx.say(openid, "转人工")
    assert "非工作时间" in reply and "明天 08:30" in reply


async def test_handoff_mid_flow_carries_what_was_said(wx: WeChat, services: Services) -> None:
    openid = oid()
    for answer in ["2", "邻居", "楼上漏水到我家天花板，找他不理"]:
        await wx.say(openid, answer)
    reply = await wx.say(openid, "人工")
    [ticket] = await tickets_of(services, openid)
    assert ticket.number in reply and ticket.fields["flow"] == "mediation"
    # 找他不理 told that they talked: that question was not asked, its answer is carried too
    assert ticket.fields["collected"] == {"对方": "邻居", "事由": "楼上漏水到我家天花板，找他不理",
                                          "是否沟通过": "已经沟通过，没谈拢"}
    said = [m["text"] for m in ticket.fields["transcript"] if m["direction"] == "in"]
    assert said == ["2", "邻居", "楼上漏水到我家天花板，找他不理", "人工"]
    after = await wx.say(openid, "嗯")  # the flow ended with the hand-off: no next question of it
    assert "沟通过" not in after and "转给工作人员" in after  # what follows is for the person awaited


async def test_an_older_person_alone_asking_to_be_looked_in_on_reaches_a_person(wx: WeChat, services: Services) -> None:
    """No bookable service fits 能不能有人定期来看看我: a person arranges it (before: the menu)."""
    openid = oid()
    reply = await wx.say(openid, "我是独居老人 能不能有人定期来看看我")
    assert "转接人工服务" in reply
    [ticket] = await tickets_of(services, openid)
    assert ticket.kind == "handoff"


async def test_asking_for_water_to_be_delivered_reaches_a_person(wx: WeChat, services: Services) -> None:
    """A water-main burst morning: 提不动水 … 能不能给送点水 got 没太明白, 社区能帮忙送桶水吗 a
    volunteer signup and 能不能派人送点水 the elderly-service menu, which has no water."""
    said = [
        "我八十多了 提不动水 3号楼1单元101 家里一点水都没有 能不能给送点水",
        "社区能帮忙送桶水吗 老人在家 腿脚不好",
        "能不能派人送点水 我老伴瘫痪在床",
    ]
    for n, text in enumerate(said):
        openid = f"o_water_{n}_{oid()}"
        reply = await wx.say(openid, text)
        assert "转接人工服务" in reply, (text, reply)
        [ticket] = await tickets_of(services, openid)
        assert ticket.kind == "handoff", text
    # offering to carry water is still a volunteer's, not a request for a person
    assert "转接人工服务" not in await wx.say(oid(), "我可以帮老人送水")


async def test_the_staff_group_reads_what_led_to_a_handoff_and_the_open_reports(
    wx: WeChat, services: Services, clock: FakeClock
) -> None:
    """The post said only 类型：转人工 / 事项：居民要求人工服务: it now quotes the resident's last
    messages (phone masked, most recent last, not the bare 人工) and their open report numbers."""
    openid = oid()
    await complaint(wx, openid)
    [report] = await tickets_of(services, openid)
    clock.advance(minutes=5)
    await wx.say(openid, "一早上都没水 有事打我电话13812345678")
    await wx.say(openid, "家里还有个瘫痪的老人")
    reply = await wx.say(openid, "人工")
    assert "转接人工服务" in reply
    ticket = next(t for t in await tickets_of(services, openid) if t.kind == "handoff")
    assert ticket.fields["said"][-1] == "家里还有个瘫痪的老人" and "人工" not in ticket.fields["said"]
    assert "138****5678" in ticket.fields["said"][-2] and "13812345678" not in ticket.summary
    assert ticket.fields["open_reports"] == [report.number] and report.number[4:] in ticket.summary
    [post] = [p for p in await group_posts(services) if p.ticket_id == ticket.id]
    content = post.payload["content"]
    assert "家里还有个瘫痪的老人" in content and report.number[4:] in content and "13812345678" not in content
    assert "好了" not in content  # the earlier report's answers did not lead to this
    what = next(line for line in content.splitlines() if "事项" in line)
    assert what.index("一早上都没水") < what.index("瘫痪")  # most recent last


async def test_after_asking_for_a_person_what_follows_is_for_that_person(
    wx: WeChat, services: Services, clock: FakeClock
) -> None:
    """人工, then 我家楼上漏水了 想找个人说说: before, a questionnaire started (the very thing they asked
    to be spared). Now it goes on the hand-off ticket for staff and the resident is told so; a menu
    digit, a status question or an emergency is still served at once."""
    openid = oid()
    assert "转接人工服务" in await wx.say(openid, "人工")
    [ticket] = await tickets_of(services, openid)
    posts_before = len(await group_posts(services))
    told = await wx.say(openid, "我家楼上漏水了 想找个人说说")
    assert "转给工作人员" in told and ticket.number in told and "问题在哪里" not in told
    assert await wx.say(openid, "水一直往下滴 电话13812345678") == "收到，已转给工作人员。"  # not the whole text again
    # the staff group is told of the first addition after a quiet spell, not of every 收到
    added = (await group_posts(services))[posts_before:]
    assert len(added) == 1 and added[0].ticket_id == ticket.id
    content = added[0].payload["content"]
    assert ticket.number in content and "居民补充：我家楼上漏水了 想找个人说说" in content
    assert f"/console/tickets/{ticket.number}" in content
    clock.advance(minutes=11)  # after ack_every_min of quiet, the next addition is posted again
    assert "转给工作人员" in await wx.say(openid, "<b>还在滴</b> 13812345678")
    again = (await group_posts(services))[posts_before:]
    assert len(again) == 2 and "＜b＞还在滴＜/b＞" in again[1].payload["content"]
    assert "13812345678" not in again[1].payload["content"] and "138＊＊＊＊5678" in again[1].payload["content"]
    async with services.sessions() as session:
        notes = (await session.execute(
            select(TicketEvent.note).where(TicketEvent.ticket_id == ticket.id, TicketEvent.action == "resident_wrote")
            .order_by(TicketEvent.id)
        )).scalars().all()
    assert list(notes) == ["我家楼上漏水了 想找个人说说", "水一直往下滴 电话138****5678", "<b>还在滴</b> 138****5678"]
    assert [t.number for t in await tickets_of(services, openid)] == [ticket.number]  # no report started
    assert "已转服务中心" in await wx.say(openid, "我的工单怎么样了")
    assert "⚠️" in await wx.say(openid, "厨房闻到煤气味")  # an emergency: advice at once
    await wx.say(openid, "取消")
    assert "哪一类" in await wx.say(openid, "1")  # a menu pick starts the service asked for
    await wx.say(openid, "取消")
    clock.advance(hours=3)  # nobody came back within the hours: the bot serves again
    assert "问题在哪里" in await wx.say(openid, "我家楼上漏水了")


async def test_a_staff_answer_keeps_the_conversation_with_the_person(
    wx: WeChat, services: Services, clock: FakeClock
) -> None:
    from bot.staff_actions import staff_reply

    openid = oid()
    await wx.say(openid, "人工")
    [ticket] = await tickets_of(services, openid)
    clock.advance(hours=1, minutes=30)
    await staff_reply(services, ticket.number, "您好，请问是什么事？", actor="staff:admin")
    clock.advance(hours=1)  # 2.5 hours after 人工, one after the staff answer
    assert "转给工作人员" in await wx.say(openid, "我家楼上漏水了")
    clock.advance(hours=3)  # nobody since: the bot serves again
    assert "问题在哪里" in await wx.say(openid, "我家楼上漏水了")


async def test_what_a_waiting_resident_writes_is_tied_to_the_handoff(wx: WeChat, services: Services) -> None:
    """你好 在吗 after 人工 is for the person awaited (before: the greeting and the menu), and the
    messages after 人工 are tied to the hand-off ticket, so the console's queue and search show
    them (before: messages.ticket_id stayed empty); thanks still get a word back."""
    from tests.flow_helpers import messages_of

    openid = oid()
    await wx.say(openid, "人工")
    [ticket] = await tickets_of(services, openid)
    assert ticket.number in await wx.say(openid, "你好 在吗")
    await wx.say(openid, "我家楼上漏水了 电话13812345678")
    assert "不客气" in await wx.say(openid, "谢谢")
    tied = {m.content: m.ticket_id for m in await messages_of(services, openid) if m.direction == "in"}
    assert tied["你好 在吗"] == ticket.id and tied["我家楼上漏水了 电话13812345678"] == ticket.id


async def test_chasing_a_report_answers_with_its_status_and_chases_its_owner(
    wx: WeChat, services: Services, clock: FakeClock
) -> None:
    """怎么还没人来 / 催一下 with a report open: before, "I did not understand" and the menu. A plain
    status question only lists; 怎么还没人来, impatience, chases as 催一下 does ([chase] impatient)."""
    from tests.wecom_driver import outbox_rows

    openid = oid()
    assert "没太明白" in await wx.say(openid, "催一下")  # nothing open: nothing to chase
    await complaint(wx, openid)
    [ticket] = await tickets_of(services, openid)
    listing = await wx.say(openid, "我的工单怎么样了")
    assert ticket.number in listing and "经办：孙丽" in listing
    assert not [r for r in await outbox_rows(services, "wecom") if "居民催办" in r.payload.get("text", "")]
    urged = await wx.say(openid, "怎么还没人来")
    assert "已帮您催促" in urged and ticket.number in urged
    pushes = [r for r in await outbox_rows(services, "wecom") if "居民催办" in r.payload.get("text", "")]
    assert len(pushes) == 1 and pushes[0].target == ticket.assignee and ticket.number in pushes[0].payload["text"]
    assert "已经催促过" in await wx.say(openid, "催一下")  # once in twelve hours
    clock.advance(hours=13)
    assert "已帮您催促" in await wx.say(openid, "快点来修")
    pushes = [r for r in await outbox_rows(services, "wecom") if "居民催办" in r.payload.get("text", "")]
    assert len(pushes) == 2
    async with services.sessions() as session:
        urges = (await session.execute(
            select(TicketEvent).where(TicketEvent.ticket_id == ticket.id, TicketEvent.action == "urged")
        )).scalars().all()
    assert len(urges) == 2 and all(e.actor.startswith("resident:") and openid not in e.actor for e in urges)


async def test_adding_to_a_report_already_made(wx: WeChat, services: Services) -> None:
    """补充一下：… after a report: before, a status line (with the number) or a new report asking
    the place; the addition reached no one. Now it goes on the report, to its owner."""
    from tests.wecom_driver import outbox_rows

    openid = oid()
    assert "已补充" not in await wx.say(oid(), "补充一下 灯罩也掉了")  # nothing open: read as usual
    await complaint(wx, openid)
    [ticket] = await tickets_of(services, openid)
    added = await wx.say(openid, f"我想补充一下{ticket.number}，灯罩也掉了")
    assert f"已补充到工单 {ticket.number}：灯罩也掉了" in added
    hurt = await wx.say(openid, "补充一下：灯罩也掉下来了，砸到人了")
    assert hurt.startswith("⚠️") and "120" in hurt and "已补充到工单" in hurt  # advice first
    pushes = [r.payload["text"] for r in await outbox_rows(services, "wecom", ticket.assignee)
              if "居民补充" in r.payload.get("text", "")]
    assert pushes == [f"【居民补充】工单 {ticket.number}：灯罩也掉了",
                      f"【居民补充】工单 {ticket.number}：灯罩也掉下来了，砸到人了"]
    async with services.sessions() as session:
        notes = (await session.execute(select(TicketEvent.note).where(
            TicketEvent.ticket_id == ticket.id, TicketEvent.action == "resident_wrote").order_by(TicketEvent.id)
        )).scalars().all()
    assert list(notes) == ["灯罩也掉了", "灯罩也掉下来了，砸到人了"]
    assert [t.number for t in await tickets_of(services, openid)] == [ticket.number]  # no new report


async def test_a_photo_soon_after_a_report_goes_with_it(wx: WeChat, services: Services, clock: FakeClock) -> None:
    """A photo sent after the report was submitted: before, it began a new report ("what is the
    problem?"). Within two hours it is attached to that report and its owner told."""
    from tests.flow_helpers import PHOTO
    from tests.wecom_driver import outbox_rows

    openid = oid()
    await complaint(wx, openid)
    [ticket] = await tickets_of(services, openid)
    reply = await wx.send("image", openid, **PHOTO)
    assert f"照片已附到您刚才反映的工单 {ticket.number}" in reply
    async with services.sessions() as session:
        photos = (await session.execute(select(TicketEvent).where(
            TicketEvent.ticket_id == ticket.id, TicketEvent.action == "photo"))).scalars().all()
    assert len(photos) == 1 and photos[0].data["type"] == "image" and PHOTO["MediaId"] in str(photos[0].data)
    assert [r for r in await outbox_rows(services, "wecom", ticket.assignee) if "补充照片" in r.payload.get("text", "")]
    assert [t.number for t in await tickets_of(services, openid)] == [ticket.number]
    clock.advance(hours=3)  # long after: a photo starts a report again
    assert "登记一下这个问题" in await wx.send("image", openid, **PHOTO)


async def test_status_by_last_digits_or_at_the_summary_in_the_middle_of_a_report(wx: WeChat, services: Services) -> None:
    """0001怎么样了 at the phone question was read as a wrong phone number; 我的工单怎么样了 at the
    summary got only "reply 1 or 2"."""
    openid = oid()
    await complaint(wx, openid)
    [first] = await tickets_of(services, openid)
    for said in ("1", "1", "3栋2单元", "楼道灯又不亮了", "好了"):  # elsewhere: not their open report
        await wx.say(openid, said)
    asked = await wx.say(openid, "0001怎么样了")
    assert asked.startswith(f"【{first.number}】") and "联系电话" in asked and "手机号好像不对" not in asked
    await wx.say(openid, "13812345678")
    summary_asked = await wx.say(openid, "否")
    assert "请核对" in summary_asked
    at_summary = await wx.say(openid, "我的工单怎么样了")
    assert first.number in at_summary and "请核对" in at_summary


async def test_vague_status_questions_and_asking_for_a_person_in_plain_words(wx: WeChat, services: Services) -> None:
    """嗯 我那个事咋样了 got "没太明白"; 我要跟人说话 / 跟真人说话 / 找个人说说 reached no one."""
    openid = oid()
    await complaint(wx, openid)
    [ticket] = await tickets_of(services, openid)
    for text in ("嗯 我那个事咋样了", "修好没有", "啥时候来修啊"):
        reply = await wx.send("voice", openid, MediaId="v1", Format="amr", Recognition=text)
        assert f"【{ticket.number}】" in reply and "没太明白" not in reply, text
    for n, text in enumerate(("那个 我要跟人说话", "跟真人说话", "找个人说说")):
        asker = f"o_person_{n}"
        assert "转接人工服务" in await wx.say(asker, text), text
        [handoff] = await tickets_of(services, asker)
        assert handoff.kind == "handoff" and handoff.urgency == "normal"


async def test_handoff_in_an_emergency_keeps_the_emergency(wx: WeChat, services: Services, clock: FakeClock) -> None:
    """困在电梯里 then 转人工 in the evening: before, "明天 08:30 上班后回复", a hand-off of urgency
    normal, a staff group post saying only 居民要求人工服务, and no grid worker told."""
    from tests.wecom_driver import outbox_rows

    clock.advance(hours=12)  # 22:00 local, out of service hours
    openid = oid()
    assert "96333" in await wx.say(openid, "俺家老头子困在电梯里了 出不来 咋整啊")
    reply = await wx.say(openid, "转人工")
    assert "明天 08:30" not in reply and "非工作时间" not in reply
    assert "马上通知社区工作人员" in reply and "96333" in reply  # the advice said again
    [ticket] = await tickets_of(services, openid)
    assert ticket.kind == "handoff" and ticket.urgency == "urgent"
    assert "电梯" in ticket.summary and "困在电梯里了" in ticket.summary
    [post] = [p for p in await group_posts(services) if p.ticket_id == ticket.id]
    assert "紧急" in post.payload["content"] and "困在电梯里了" in post.payload["content"]
    assert ticket.number in (again := await wx.say(openid, "转人工")) and "明天 08:30" not in again
    assert "96333" in again
    # where the building is said, its grid workers (望湖第一网格: 王伟 for building 3) are told at once
    other = oid()
    await wx.say(other, "3栋电梯困人了 我老伴在里面")
    told = await wx.say(other, "人工")
    assert "网格员" in told and "96333" in told
    [handoff] = [t for t in await tickets_of(services, other) if t.kind == "handoff"]
    assert handoff.urgency == "urgent" and handoff.building == "3"
    [push] = [r for r in await outbox_rows(services, "wecom", "wangwei") if r.ticket_id == handoff.id]
    assert push.urgent and "紧急求助" in push.payload["text"] and "3栋电梯困人了" in push.payload["text"]
    # a hand-off in an ordinary report still says when a person will answer
    calm = oid()
    await wx.say(calm, "楼道灯坏了")
    assert "明天 08:30" in await wx.say(calm, "人工")
    [plain] = await tickets_of(services, calm)
    assert plain.urgency == "normal"


async def test_adding_a_phone_number_to_a_report(wx: WeChat, services: Services) -> None:
    """补充一下：我电话是138-1234-5678 … got "没太明白" and was lost: 1234 inside the phone was
    read as a ticket's last digits. A number naming none of the resident's reports is said so."""
    from tests.wecom_driver import outbox_rows

    openid = oid()
    await complaint(wx, openid)
    [ticket] = await tickets_of(services, openid)
    added = await wx.say(openid, "补充一下：我电话是138-1234-5678 下午都在家")
    assert f"已补充到工单 {ticket.number}：我电话是138-1234-5678 下午都在家" in added
    assert "已补充到工单" in await wx.say(openid, "补充一下 电话138 1234 5678")
    pushes = [r.payload["text"] for r in await outbox_rows(services, "wecom", ticket.assignee)
              if "居民补充" in r.payload.get("text", "")]
    assert len(pushes) == 2 and "1234" not in pushes[0] and "138****5678" in pushes[0]  # masked for the worker
    missing = await wx.say(openid, "补充一下0009，灯罩也掉了")
    assert "尾号为 0009" in missing and f"【{ticket.number}】" in missing and "已补充" not in missing
    async with services.sessions() as session:
        notes = (await session.execute(select(TicketEvent.note).where(
            TicketEvent.ticket_id == ticket.id, TicketEvent.action == "resident_wrote").order_by(TicketEvent.id)
        )).scalars().all()
    assert list(notes) == ["我电话是138-1234-5678 下午都在家", "电话138 1234 5678"]


async def test_neighbours_on_one_shared_job_chase_it_once_under_its_number_held_through_the_night(
    wx: WeChat, services: Services, clock: FakeClock
) -> None:
    """Six neighbours' reports linked to one water job, at 22:30: their 催一下 reach its owner once
    (URGE_EVERY per job), under the job's number he knows, and not before 08:00; an addition goes
    the same way; each can ask about the job's number and hears their own report's line."""
    from datetime import datetime, timezone

    from storage.models import OutboxItem
    from tests.wecom_driver import load_demo_roster, new_ticket

    await load_demo_roster(services)
    clock.set(datetime(2026, 11, 23, 14, 30, tzinfo=timezone.utc))  # 22:30 in Shanghai
    job = (await new_ticket(services, resident=oid(), category="水电气暖", summary="3号楼停水了")).ticket.number
    neighbours = [(await new_ticket(services, resident=oid(), category="水电气暖", summary="没水了")) for _ in range(6)]
    assert all(n.linked_to is not None and n.linked_to.number == job for n in neighbours)
    replies = [await wx.say(str(n.ticket.resident), "催一下") for n in neighbours]
    assert replies[0].startswith(f"已帮您催促工单 {neighbours[0].ticket.number}")
    assert all("已经催促过" in r for r in replies[1:])
    assert f"{neighbours[0].ticket.number}（与工单 {job} 合并处理）" in replies[0]
    added = await wx.say(str(neighbours[1].ticket.resident), "补充一下：水压也很低")
    assert added.startswith(f"已补充到工单 {neighbours[1].ticket.number}")
    async with services.sessions() as session:
        pushes = list((await session.execute(
            select(OutboxItem).where(OutboxItem.target == "wangwei", OutboxItem.channel == "wecom")
            .order_by(OutboxItem.id))).scalars())
    texts = [p.payload.get("text", "") for p in pushes]
    chases = [p for p, t in zip(pushes, texts) if "【居民催办】" in t]
    additions = [p for p, t in zip(pushes, texts) if "【居民补充】" in t]
    assert len(chases) == 1 and len(additions) == 1
    assert f"工单 {job}" in chases[0].payload["text"] and f"办结 {job[-4:]}" in chases[0].payload["text"]
    assert additions[0].payload["text"] == f"【居民补充】工单 {job}：水压也很低"
    for p in (*chases, *additions):
        assert p.next_attempt_at.replace(tzinfo=None) == datetime(2026, 11, 24, 0, 0)  # 08:00, after the quiet hours
    mine = neighbours[2]
    for question in (f"{job}怎么样了", f"{job[-4:]}怎么样了"):
        line = await wx.say(str(mine.ticket.resident), question)
        assert line.startswith(f"【{mine.ticket.number}（与工单 {job} 合并处理）】"), question
    assert "没有找到" in await wx.say(oid(), f"{job}怎么样了")  # a stranger still hears nothing of it


async def test_a_location_sent_while_a_person_is_awaited_is_for_that_person(wx: WeChat, services: Services) -> None:
    """人工, then the resident shares where they are: before, 我们来登记一下这个问题 and the
    complaint questionnaire they asked to be spared; now it goes on the hand-off for staff."""
    openid = oid()
    await wx.say(openid, "人工")
    [ticket] = await tickets_of(services, openid)
    reply = await wx.send("location", openid, Location_X="30.27", Location_Y="120.15", Scale="15", Label="望湖小区5号楼")
    assert "转给工作人员" in reply and ticket.number in reply and "哪一类" not in reply
    assert [t.number for t in await tickets_of(services, openid)] == [ticket.number]
    [added] = [p for p in await group_posts(services) if p.ticket_id == ticket.id][1:]
    assert "望湖小区5号楼" in added.payload["content"]
    fresh = oid()  # with no one awaited, a location still starts a report with the place in hand
    assert "哪一类" in await wx.send("location", fresh, Location_X="30.27", Location_Y="120.15", Scale="15", Label="南门")


async def test_a_menu_click_is_not_quoted_as_what_the_resident_said(wx: WeChat, services: Services) -> None:
    """3栋电梯困人了, then the 转人工 menu button: the hand-off quoted "[click] MENU_HANDOFF" as words."""
    openid = oid()
    await wx.say(openid, "3栋电梯困人了")
    assert "网格员" in await wx.event(openid, "CLICK", "MENU_HANDOFF")
    [ticket] = await tickets_of(services, openid)
    assert ticket.kind == "handoff" and ticket.fields["said"] == ["3栋电梯困人了"]


async def test_older_residents_ask_for_a_person_in_their_own_words(wx: WeChat, services: Services) -> None:
    """让社区的人打电话给我 / 叫你们的人给我回电话 / 我要跟社区的人说 / 我不会打字 got 没太明白 and the
    menu — the very residents least able to use it."""
    for n, text in enumerate(("让社区的人打电话给我", "叫你们的人给我回电话", "我要跟社区的人说", "我不会打字")):
        asker = f"o_older_{n}"
        assert "转接人工服务" in await wx.send("voice", asker, MediaId=f"v{n}", Format="amr", Recognition=text), text
        [handoff] = await tickets_of(services, asker)
        assert handoff.kind == "handoff", text
    # a call the property company promised is no request for a person
    assert "转接人工服务" not in await wx.say("o_older_x", "物业的人给我打电话说明天来修")
