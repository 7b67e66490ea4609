"""要钱吗 / 收费吗 / 多少钱 in the middle of an elderly-service booking (config/flows.toml [asked]
cost): the fee line of the service (config/services.toml fee, the operator's words) or, for a
service without one, the general answer; then the question in hand is asked again. Both backends."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from bot.service_catalog import load_catalog
from bot.services import Services
from tests.conftest import WeChat
from tests.flow_helpers import tickets_of

CATALOG = load_catalog()


def oid() -> str:
    return "o" + uuid.uuid4().hex[:20]


def fee_of(name: str) -> str:
    spec = CATALOG.get(name)
    assert spec is not None and spec.fee, f"the sample config gives {name} a fee line"
    return f"{name}的费用：{spec.fee}"


async def test_the_fee_of_the_service_being_booked_then_the_question_again(wx: WeChat, services: Services) -> None:
    openid = oid()
    assert "给谁预约" in await wx.say(openid, "我想预约助浴")
    told = await wx.say(openid, "要钱吗")
    assert fee_of("助浴") in told and told.rstrip().endswith("“我妈”“我爸”等）"), told  # asked again
    await wx.say(openid, "我妈")
    told = await wx.say(openid, "收费吗？")
    assert fee_of("助浴") in told and "怎么称呼" in told, told
    told = await wx.say(openid, "理发多少钱")  # another service named: its fee, this booking's question
    assert fee_of("理发") in told and fee_of("助浴") not in told and "怎么称呼" in told, told
    for answer in ("王秀英", "82", "3栋2单元301", "周四上午10点", "跳过", "13812345678", "否"):
        await wx.say(openid, answer)
    at_summary = await wx.say(openid, "要钱吗")
    assert fee_of("助浴") in at_summary and "请核对" in at_summary, at_summary
    assert "已为助浴预约好" in await wx.say(openid, "1")  # nothing of the question kept in the booking
    [ticket] = await tickets_of(services, openid)
    assert ticket.fields["for_name"] == "王秀英" and ticket.fields["age"] == 82


async def test_a_service_without_a_fee_line_and_no_service_yet_get_the_general_answer(wx: WeChat, services: Services) -> None:
    general = services.texts.get("flow.asked.elderly_service.cost")
    daycare = CATALOG.get("日托")
    assert daycare is not None and not daycare.fee
    openid = oid()
    assert "给谁预约" in await wx.say(openid, "我想预约日托")
    told = await wx.say(openid, "要不要钱")
    assert general in told and "的费用：" not in told and "给谁预约" in told, told
    menu = oid()
    assert "哪项服务" in await wx.say(menu, "3")
    told = await wx.say(menu, "多少钱")
    assert general in told and "哪项服务" in told, told
    told = await wx.say(menu, "助餐多少钱")  # named at the service question: its fee, the service not yet chosen
    assert fee_of("助餐") in told and "哪项服务" in told, told


def test_a_fee_line_is_optional_text(tmp_path: Path) -> None:
    path = tmp_path / "services.toml"
    one = """[[services]]
name = "理发"
slot_minutes = 30
slot_capacity = 1
daily_capacity = 10
book_ahead_days = 14
hours = [{ days = ["wed"], times = ["09:00-11:30"] }]
"""
    path.write_text(one, encoding="utf-8")
    assert load_catalog(path).services[0].fee == ""
    path.write_text(one + 'fee = " 每次10元 "\n', encoding="utf-8")
    assert load_catalog(path).services[0].fee == "每次10元"
    path.write_text(one + "fee = 10\n", encoding="utf-8")
    with pytest.raises(ValueError, match="理发: fee must be text"):
        load_catalog(path)
