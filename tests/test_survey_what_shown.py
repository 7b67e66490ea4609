"""What a survey names is cut at its ｜-parts, as a status line is: a booking's long summary does
not end in half a care note (备注：坐轮…) in the question or its reminder. Both backends."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from bot.clock import FakeClock
from bot.schedule import run_due
from bot.services import Services
from tests.wecom_driver import WeCom, load_demo_roster, new_ticket, outbox_rows

SUMMARY = "助浴｜11月24日（周二）09:00｜张桂兰（85岁）｜帮老人洗澡｜备注：坐轮椅 需要两个人扶"


async def test_a_bookings_survey_names_whole_parts(
    client: TestClient[Any, Any], services: Services, clock: FakeClock
) -> None:
    await load_demo_roster(services)
    made = (await new_ticket(services, kind="elderly_service", resident="oSv1", category=None, building=None,
                             summary=SUMMARY, fields={"service": "助浴", "phone": "13812345678"})).ticket
    assert (await WeCom(client, services).say("homecare", f"办结 {made.number[-4:]} 洗好了")).startswith("已办结")
    clock.advance(seconds=services.settings.survey_delay_s)
    await run_due(services)
    clock.advance(days=2)
    await run_due(services)
    surveys = [str(r.payload["text"]) for r in await outbox_rows(services, "wechat", "oSv1") if "回访" in str(r.payload.get("text"))]
    assert len(surveys) == 2  # the question and its reminder
    for text in surveys:
        assert "助浴｜11月24日（周二）09:00｜张桂兰（85岁）｜帮老人洗澡…" in text
        assert "备注：坐" not in text
