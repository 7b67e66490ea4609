"""The dispatch card's 事项 line without the place the 地点 line already gives: a report's
summary is 照明｜3栋2单元｜楼道灯不亮了, and the card read 事项：照明｜3栋2单元｜楼道灯不亮了 under
地点：3栋2单元. Both backends."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from bot.services import Services
from tests.flow_helpers import group_posts
from tests.test_owner_notices import report
from tests.wecom_driver import WeCom, load_demo_roster, new_ticket, outbox_rows


async def test_the_cards_matter_leaves_out_the_place_it_shows_on_its_own_line(
    client: TestClient[Any, Any], services: Services,
) -> None:
    await load_demo_roster(services)
    await new_ticket(services, resident="oCard1", category="照明", summary="照明｜3栋2单元｜楼道灯不亮了",
                     fields={"phone": "13812345678", "place": "3栋2单元", "category": "照明"})
    await new_ticket(services, resident="oCard2", building="2", category="环境卫生", summary="环境卫生｜2号楼｜",
                     fields={"phone": "13812345678", "place": "2号楼", "category": "环境卫生"})
    first, second = [o.payload["description"] for o in await outbox_rows(services, "wecom", "wangwei")
                     if o.payload.get("msgtype") == "textcard"]
    assert "地点：3栋2单元" in first and "事项：照明｜楼道灯不亮了<" in first, first
    assert first.count("3栋2单元") == 1, first
    assert "地点：2号楼" in second and "事项：环境卫生<" in second, second


async def test_the_staff_groups_matter_leaves_out_the_place_too(
    client: TestClient[Any, Any], services: Services,
) -> None:
    """A report no grid takes (公交站: no building, a place no grid lists — 南门 is the third grid's
    since 50bff44) goes to the staff group, whose post has its own 地点 line: its 事项 read
    照明｜南门｜路灯不亮 under 地点：南门, as the card did."""
    await load_demo_roster(services)
    made = (await new_ticket(services, resident="oCard3", building=None, category="照明", summary="照明｜公交站｜路灯不亮",
                             fields={"phone": "13812345678", "place": "公交站", "category": "照明"})).ticket
    [post] = [p for p in await group_posts(services) if p.ticket_id == made.id]
    content = post.payload["content"]
    assert "事项：照明｜路灯不亮" in content and content.count("地点：公交站") == 1, content
    assert "公交站｜" not in content, content  # 地点 names the place, the 事项 not


async def test_a_volunteer_signups_card_has_no_place_line(client: TestClient[Any, Any], services: Services) -> None:
    """The coordinator's card for a signup read 地点：未说明 — a person to approve has no place to go
    to; it has no 地点 line now (a report with no place still says 未说明)."""
    await load_demo_roster(services)
    await new_ticket(services, kind="volunteer_signup", resident="oVol1", category=None, building=None,
                     summary="志愿者报名｜张伟｜助老", fields={"phone": "13500003333", "name": "张伟"})
    [card] = [o.payload["description"] for o in await outbox_rows(services, "wecom", "zhouvol")
              if o.payload.get("msgtype") == "textcard"]
    assert "地点" not in card and "张伟" in card, card


async def test_a_meal_to_be_brought_home_says_so_with_the_address_on_the_providers_card(
    wx: Any, client: TestClient[Any, Any], services: Services,
) -> None:
    """午饭送到家 asked in a meal booking was nowhere on the canteen's card (地点 alone reads as where
    the booking came from): the card now says 送到家：5号楼1单元301, whether it was said in the
    opening or in the care note; a booking that asks nothing of it keeps its 地点 line."""
    await load_demo_roster(services)
    for openid, opening, note in (("oMeal1", "我想给我妈订明天的午饭，送到家", "跳过"),
                                  ("oMeal2", "给我妈订明天的午饭", "送到家里 少放盐"),
                                  ("oMeal3", "给我妈订明天的午饭", "跳过")):
        more = {"怎么称呼": "王秀英", "多大年纪": "78", "地址": "5号楼1单元301", "注意": note}
        assert "工单号" in await report(wx, openid, opening, "13712345678", more)
    cards = [o.payload["description"] for o in await outbox_rows(services, "wecom", "canteen")
             if o.payload.get("msgtype") == "textcard"]
    assert len(cards) == 3, cards
    brought, noted, plain = cards
    assert "送到家：5号楼1单元301（居民要求送上门）" in brought and "地点：" not in brought, brought
    assert "送到家：5号楼1单元301" in noted and "送到家里 少放盐" in noted, noted
    assert "地点：5号楼1单元301" in plain and "送到家" not in plain, plain
    # its 接单 says where to bring it, the one not to be brought where to be
    taken = await WeCom(client, services).say("canteen", "接单 1")
    assert taken.startswith("已接单：工单 20261123-0001，预约时间") and "请按时送到家：5号楼1单元301。" in taken, taken
    plain_taken = await WeCom(client, services).say("canteen", "接单 3")
    assert "请按时到场服务" in plain_taken, plain_taken
