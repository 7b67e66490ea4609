"""WeCom owners, session 20: what a resident writes after a worker's 回复 reaches who answered — on
both backends."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from bot.clock import FakeClock
from bot.services import Services
from tests.conftest import WeChat
from tests.wecom_driver import WeCom, load_demo_roster, new_ticket, outbox_rows


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

