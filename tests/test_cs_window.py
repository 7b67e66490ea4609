"""WeChat's customer-service window as the bot models it (bot.cs_window), and the console's
prediction of how a staff answer would reach the resident."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from bot import cs_window
from bot.staff_actions import delivery_channel
from storage.models import Resident

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
