"""WeCom owners, session 20: what a resident writes after a worker's 回复 reaches who answered, and
到了 from a worker with a job not yet taken among others — on both backends."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from bot.clock import FakeClock
from bot.services import Services
from tests.conftest import WeChat
from tests.wecom_driver import WeCom, actions, load_demo_roster, new_ticket, outbox_rows, ticket


async def _texts(svc: Services, userid: str) -> list[str]:
    return [o.payload["text"] for o in await outbox_rows(svc, "wecom", userid) if o.payload.get("msgtype") == "text"]


async def test_more_than_thanks_after_an_owners_answer_reaches_the_owner(
    client: TestClient[Any, Any], services: Services, clock: FakeClock,
) -> None:
    """好的 我下来了 after the grid worker's 回复 (我到楼下了) got 好的，有需要随时找我 and the worker
    never heard it; now it is added to the job and the owner told. A pure 好的谢谢 is still thanked."""
    wx, wc = WeChat(client, services.settings), WeCom(client, services)
    await load_demo_roster(services)
    number = (await new_ticket(services, resident="oAck1", summary="3号楼2单元楼道灯坏了")).ticket.number
    clock.advance(minutes=10)
    assert (await wc.say("wangwei", "回复 1 您好，我到楼下了，您下来开一下门")).startswith("已回复")
    before = len(await _texts(services, "wangwei"))
    for said in ("好的 我下来了", "好的 大概什么时候到"):
        clock.advance(minutes=1)
        assert await wx.say("oAck1", said) == f"已补充到工单 {number}：{said}。承办人会看到。"
    assert (await _texts(services, "wangwei"))[before:] == [
        f"【居民补充】工单 {number}：好的 我下来了", f"【居民补充】工单 {number}：好的 大概什么时候到"]
    for said in ("好的谢谢", "谢谢", "辛苦了"):
        assert (await wx.say("oAck1", said)).startswith("不客气")
    assert len(await _texts(services, "wangwei")) == before + 2


async def test_more_than_thanks_after_staffs_wecom_answer_reaches_them_and_the_owner(
    client: TestClient[Any, Any], services: Services, clock: FakeClock,
) -> None:
    """A member of staff answered from WeCom: the resident's 好的 那我明天在家等 reaches her
    (【居民回复】 with 回复 N to go on, phones masked) as well as the owner."""
    wx, wc = WeChat(client, services.settings), WeCom(client, services)
    await load_demo_roster(services)
    number = (await new_ticket(services, resident="oAck2", summary="3号楼门口下水道堵了")).ticket.number
    assert (await wc.say("liustaff", "回复 1 您好，物业明天上午过去疏通")).startswith("已回复")
    clock.advance(minutes=20)
    said = "好的 那我明天在家等 电话13812345678"
    assert (await wx.say("oAck2", said)).startswith(f"已补充到工单 {number}")
    [told] = [t for t in await _texts(services, "liustaff") if "居民回复" in t]
    assert told == (f"【居民回复】工单 {number}：您回复过的居民说：好的 那我明天在家等 电话138****5678\n"
                    "继续回复居民请发“回复 0001 内容”。")
    assert [t for t in await _texts(services, "wangwei") if t.startswith(f"【居民补充】工单 {number}：好的 那我明天在家等")]
    # long after the answer (beyond [handoff] attention_hours), 好的 我知道了 is only courtesy again
    clock.advance(hours=3)
    assert not (await wx.say("oAck2", "好的 我知道了")).startswith("已补充")


async def test_arrived_with_an_untaken_job_among_others_asks_which_or_takes_the_place_said(
    client: TestClient[Any, Any], services: Services,
) -> None:
    """到了 from a grid worker holding a job not yet taken and another got the general hint
    (例如“接单 N”…) naming neither; now each job is listed by its number, place and whether it is
    taken, and 到2号楼了 is about the one job there (its 接单 first). Nothing is taken by it."""
    await load_demo_roster(services)
    wc = WeCom(client, services)
    first = (await new_ticket(services, resident="oA1", building="3")).ticket
    second = (await new_ticket(services, resident="oA2", building="2", category="环境卫生",
                               summary="2号楼门口下水道堵了")).ticket
    assert "已接单" in await wc.say("wangwei", "接单 1")
    said = await wc.say("wangwei", "到了")
    assert said == ("好的。您手上有 2 张工单，说的是哪一张？\n0001：3号楼（已接单）\n0002：2号楼（还没接单）\n"
                    "还没接单的请先回复“接单 编号”；办完后回复“办结 编号 说明”。也可以说“到3号楼了”。"), said
    assert await wc.say("wangwei", "到2号楼了") == (
        f"好的。工单 {second.number}（2号楼）您还没有接单，请先回复“接单 0002”；办完后再回复“办结 0002 说明”。")
    assert await wc.say("wangwei", "3号楼到了 正在敲门") == (
        f"好的。工单 {first.number}（3号楼）办完后请回复“办结 0001 说明”。")
    assert (await ticket(services, second.number)).status == "dispatched"
    assert await actions(services, second.number) == ["created", "assign"]
    # a building none of the jobs is at: both listed
    assert "0001：3号楼（已接单）\n0002：2号楼（还没接单）" in await wc.say("wangwei", "我到1号楼了")
    # two jobs neither taken: both listed, each to be taken
    third = (await new_ticket(services, resident="oA3", building="1", category="环境卫生",
                              summary="1号楼垃圾没人清")).ticket
    assert "0003：1号楼（还没接单）" in await wc.say("wangwei", "在路上了")
    assert await wc.say("wangwei", "我到1号楼了") == (
        f"好的。工单 {third.number}（1号楼）您还没有接单，请先回复“接单 0003”；办完后再回复“办结 0003 说明”。")
