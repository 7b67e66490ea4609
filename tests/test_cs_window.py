"""WeChat's customer-service window as the bot models it (bot.cs_window), and the console's
prediction of how a staff answer would reach the resident."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from bot import cs_window, outbox
from bot.channels import push
from bot.clock import FakeClock
from bot.console import auth
from bot.services import Services
from bot.sim.api import SimRecorder
from bot.staff_actions import delivery_channel
from storage.models import Resident
from tests.staff_support import audit_rows, logged_in, make_resident, make_ticket, outbox_rows
from tests.test_outbox import api_port, http, settings_overrides, sim  # noqa: F401 (fixtures)

Client = TestClient[Any, Any]

NOW = datetime(2026, 11, 24, 8, 0, tzinfo=timezone.utc)


def ago(**kw: float) -> datetime:
    return NOW - timedelta(**kw)


@pytest.mark.parametrize(
    ("window", "expected"),
    [
        (cs_window.Window(), []),
        (cs_window.Window(ago(hours=47, minutes=59), ago(hours=47, minutes=59), "message"), [(ago(hours=47, minutes=59), 5)]),
        (cs_window.Window(ago(hours=48), ago(hours=48), "message"), []),
        (cs_window.Window(None, ago(seconds=59), "click"), [(ago(seconds=59), 3)]),
        (cs_window.Window(None, ago(seconds=60), "click"), []),
        (cs_window.Window(None, ago(seconds=10), "subscribe"), [(ago(seconds=10), 3)]),
        (cs_window.Window(None, ago(seconds=10), "scan"), [(ago(seconds=10), 3)]),
        # a message an hour ago, then a click: both windows are open, the message's first
        (cs_window.Window(ago(hours=1), ago(seconds=5), "click"), [(ago(hours=1), 5), (ago(seconds=5), 3)]),
        (cs_window.Window(ago(hours=1), ago(minutes=5), "click"), [(ago(hours=1), 5)]),
        # a click whose message window is long gone opens only its own minute
        (cs_window.Window(ago(days=3), ago(seconds=30), "click"), [(ago(seconds=30), 3)]),
    ],
)
def test_the_windows_open_now(window: cs_window.Window, expected: list[tuple[datetime, int]]) -> None:
    assert [(a.since, a.quota) for a in window.allowances(NOW)] == expected
    assert window.is_open(NOW) is bool(expected)
    assert cs_window.channel(window, NOW) == ("custom" if expected else "template")


def test_an_unknown_resident_gets_a_template() -> None:
    assert cs_window.channel(None, NOW) == "template"


@pytest.mark.parametrize(
    ("last_message_at", "last_inbound_at", "opened_by", "expected"),
    [
        (ago(hours=47), ago(hours=47), "message", "custom"),
        (ago(hours=49), ago(hours=49), "message", "template"),
        (None, ago(seconds=30), "click", "custom"),
        (None, ago(minutes=2), "click", "template"),  # before: 'custom' for 48 hours after any click
        (ago(hours=3), ago(minutes=2), "click", "custom"),
    ],
)
def test_the_console_predicts_the_channel_a_staff_answer_takes(
    last_message_at: datetime | None, last_inbound_at: datetime | None, opened_by: str, expected: str
) -> None:
    resident = Resident(openid="o1", last_message_at=last_message_at, last_inbound_at=last_inbound_at,
                        window_opened_by=opened_by)
    assert delivery_channel(resident, NOW) == expected
    assert delivery_channel(None, NOW) == "template"


# --- the console's prediction counts every push of the window, however long it waited ---------------


async def test_pushes_that_waited_days_in_the_outbox_count_against_the_quota(
    client: Client, services: Services, clock: FakeClock, sim: SimRecorder, http: aiohttp.ClientSession,
) -> None:
    """The sender was down for three days with five notices queued for a resident. The resident
    writes (a new 48-hour window, 5 customer-service messages); the sender comes back and sends
    four of them as customer-service messages at once, the fifth still waits. Those five use the
    quota up: the console must say a staff answer now goes as a template, as WeChat will decide —
    not count only pushes last due within two days of the window, nor only those queued after it."""
    await auth.create_user(services, "liu", "staffpass1", "staff", display_name="刘敏")
    await make_resident(services, "o_wait", last_inbound_at=clock.now() - timedelta(days=5))
    number = await make_ticket(services, "o_wait", kind="handoff", summary="转人工：楼上漏水")
    async with services.sessions() as session, session.begin():
        for n in range(1, 6):
            await outbox.push_resident(session, "o_wait", f"第{n}条通知", now=clock.now())
    clock.advance(days=3)
    async with services.sessions() as session, session.begin():  # the resident writes again
        resident = await session.scalar(select(Resident).where(Resident.openid == "o_wait"))
        assert resident is not None
        resident.last_message_at = resident.last_inbound_at = clock.now()
    clock.advance(minutes=1)
    assert await push.drain(services, http, limit=4) == 4  # the sender is back: four go, one waits
    assert [r["payload"]["text"]["content"] for r in sim.of("custom_send", "o_wait")] == [
        f"第{n}条通知" for n in range(1, 5)]

    csrf = await logged_in(client, "liu", "staffpass1")
    page = await (await client.get(f"/console/tickets/{number}")).text()
    assert "客服消息条数已用完" in page and "答复将以【模板消息】" in page and "答复将以【客服消息】" not in page
    resp = await client.post(f"/console/tickets/{number}/reply", data={"text": "师傅明早九点上门", "csrf_token": csrf})
    assert "以模板消息送达" in await resp.text()
    [row] = await audit_rows(services, "ticket.reply")
    assert row.detail["via"] == "template" and row.detail["quota_used"] is True

    assert await push.drain(services, http) == 2  # the fifth notice, then the answer: as WeChat decides
    assert len(sim.of("custom_send", "o_wait")) == 5
    [template] = sim.of("template_send", "o_wait")
    assert "师傅明早九点上门" in str(template["payload"]["data"])
    assert [r.sent_via for r in await outbox_rows(services, "wechat")] == ["custom"] * 5 + ["template"]
