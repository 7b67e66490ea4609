"""The outbox sender against the simulator's stand-ins of the WeChat and WeCom APIs, on both
backends: the 48-hour window, fallbacks, shared tokens, retries, leases, rate limits, batching."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from sqlalchemy import select

from bot import metrics
from bot.app import create_app
from bot.channels import push
from bot.clock import FakeClock
from bot.outbox import enqueue
from bot.privacy import hash_openid
from bot.services import Services, open_services
from bot.sim.api import SimRecorder
from storage.models import OutboxItem, Resident
from tests.conftest import WeChat
from tests.sim_support import api_bases, api_port, sim  # noqa: F401 (fixtures)


@pytest.fixture
def settings_overrides(api_port: int) -> dict[str, Any]:
    """Point both API bases at the stand-ins; a short timeout, three attempts. The timeout leaves
    room for a busy CI machine: at 0.3 s, answers of the stand-ins (which do real database work)
    timed out under load and made the two-process test flaky."""
    return {**api_bases(api_port), "outbox_timeout_s": 1.5, "outbox_max_attempts": 3}


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """The sender's HTTP client."""
    async with aiohttp.ClientSession() as session:
        yield session


async def add_resident(svc: Services, openid: str, last_inbound: datetime | None, subscribed: bool = True) -> None:
    """A follower whose last message came at last_inbound."""
    now = svc.clock.now()
    async with svc.sessions() as session, session.begin():
        session.add(
            Resident(openid=openid, subscribed=subscribed, last_message_at=last_inbound, last_inbound_at=last_inbound,
                     window_opened_by="message" if last_inbound else None, created_at=now, updated_at=now)
        )


async def queue(svc: Services, channel: str, target: str, payload: dict[str, Any], **kw: Any) -> int:
    """Enqueue one push in its own transaction; its id."""
    async with svc.sessions() as session, session.begin():
        item = await enqueue(session, channel, target, payload, now=svc.clock.now(), **kw)
        assert item is not None
        return item.id


async def rows(svc: Services) -> list[OutboxItem]:
    """Every outbox row, oldest first."""
    async with svc.sessions() as session:
        return list((await session.scalars(select(OutboxItem).order_by(OutboxItem.id))).all())


def counter(name: str, **labels: str) -> float:
    """The current value of a metric sample (0 before its first use)."""
    return metrics.REGISTRY.get_sample_value(name, labels) or 0.0


# --- residents: the 48-hour window and the fallbacks ------------------------------------------------


async def test_inside_the_window_a_customer_service_message(
    services: Services, sim: SimRecorder, http: aiohttp.ClientSession, clock: FakeClock
) -> None:
    await add_resident(services, "oZhang", clock.now() - timedelta(hours=1))
    before = counter("cb_outbox_sent_total", channel="wechat", via="custom")
    await queue(services, "wechat", "oZhang", {"text": "您的工单 20261123-0001 已受理。"})

    assert await push.drain(services, http) == 1

    [sent] = sim.of("custom_send")
    assert sent["to"] == "oZhang"
    assert sent["payload"] == {"touser": "oZhang", "msgtype": "text", "text": {"content": "您的工单 20261123-0001 已受理。"}}
    assert sim.of("template_send") == []
    [row] = await rows(services)
    assert (row.state, row.sent_via, row.attempts, row.sent_at) == ("sent", "custom", 0, clock.now())
    assert counter("cb_outbox_sent_total", channel="wechat", via="custom") == before + 1


async def test_outside_the_window_a_template_message_built_from_the_text(
    services: Services, sim: SimRecorder, http: aiohttp.ClientSession, clock: FakeClock
) -> None:
    await add_resident(services, "oLi", clock.now() - timedelta(hours=49))
    await queue(services, "wechat", "oLi", {"text": "您的工单已办结，请对服务进行评价。"})

    assert await push.drain(services, http) == 1

    assert sim.calls["custom_send"] == 0  # not even tried: the window is known to be closed
    [sent] = sim.of("template_send")
    payload = sent["payload"]
    assert payload["touser"] == "oLi"
    assert payload["template_id"] == services.settings.wechat_template_id
    assert payload["data"]["first"]["value"] == services.texts.get("push.template_first")
    assert payload["data"]["keyword1"]["value"] == "您的工单已办结，请对服务进行评价。"
    assert payload["data"]["keyword2"]["value"] == "2026-11-23 10:00"  # local time of the push
    assert payload["data"]["remark"]["value"] == services.texts.get("push.template_remark")
    [row] = await rows(services)
    assert (row.state, row.sent_via) == ("sent", "template")


async def test_template_from_the_payloads_title_and_fields(
    services: Services, sim: SimRecorder, http: aiohttp.ClientSession, clock: FakeClock
) -> None:
    await add_resident(services, "oWang", None)
    template = {"title": "工单进度通知", "fields": {"工单号": "20261123-0002", "状态": "已派单", "remark": "请留意电话 13812345678"}}
    await queue(services, "wechat", "oWang", {"text": "工单已派单", "template": template})

    assert await push.drain(services, http) == 1

    data = sim.of("template_send")[0]["payload"]["data"]
    assert data["first"] == {"value": "工单进度通知"}
    assert data["keyword1"] == {"value": "工单号：20261123-0002"}
    assert data["keyword2"] == {"value": "状态：已派单"}
    assert data["remark"] == {"value": "请留意电话 13812345678"}  # addressed to the resident: as written


@pytest.mark.parametrize("code", [45015, 45047])
async def test_custom_refused_by_wechat_falls_back_to_a_template(
    services: Services, sim: SimRecorder, http: aiohttp.ClientSession, clock: FakeClock, code: int
) -> None:
    await add_resident(services, "oZhang", clock.now() - timedelta(hours=2))
    sim.inject("custom_send", errcode=code)
    await queue(services, "wechat", "oZhang", {"text": "志愿活动明天上午九点开始。"})

    assert await push.drain(services, http) == 1

    assert sim.calls["custom_send"] == 1 and sim.of("custom_send") == []
    [sent] = sim.of("template_send")
    assert sent["payload"]["data"]["keyword1"]["value"] == "志愿活动明天上午九点开始。"
    [row] = await rows(services)
    assert (row.state, row.sent_via, row.attempts) == ("sent", "template", 0)


async def test_the_window_quota_of_five_is_enforced_for_real(
    services: Services, sim: SimRecorder, http: aiohttp.ClientSession, clock: FakeClock
) -> None:
    await add_resident(services, "oZhang", clock.now() - timedelta(minutes=5))
    for n in range(6):
        await queue(services, "wechat", "oZhang", {"text": f"第{n + 1}条通知"})

    assert await push.drain(services, http) == 6

    assert [r["payload"]["text"]["content"] for r in sim.of("custom_send")] == [f"第{n}条通知" for n in range(1, 6)]
    [late] = sim.of("template_send")
    assert late["payload"]["data"]["keyword1"]["value"] == "第6条通知"
    assert [r.sent_via for r in await rows(services)] == ["custom"] * 5 + ["template"]


async def test_after_a_menu_click_alone_three_messages_within_the_minute(
    services: Services, sim: SimRecorder, http: aiohttp.ClientSession, clock: FakeClock, wx: WeChat
) -> None:
    """A resident who has not written for days clicks the menu: WeChat allows 3 customer-service
    messages within one minute of the click (bot.cs_window); the fourth, and anything after the
    minute, goes as a template."""
    await wx.event("oClick", "CLICK", "MENU_MY_TICKETS")
    async with services.sessions() as session:
        resident = await session.scalar(select(Resident).where(Resident.openid == "oClick"))
    assert resident is not None and resident.last_message_at is None and resident.window_opened_by == "click"
    clock.advance(seconds=20)
    for n in range(4):
        await queue(services, "wechat", "oClick", {"text": f"第{n + 1}条通知"})

    assert await push.drain(services, http) == 4

    assert [r["payload"]["text"]["content"] for r in sim.of("custom_send", "oClick")] == ["第1条通知", "第2条通知", "第3条通知"]
    assert [r["payload"]["data"]["keyword1"]["value"] for r in sim.of("template_send", "oClick")] == ["第4条通知"]
    tried = sim.calls["custom_send"]

    clock.advance(seconds=41)  # 61 s after the click
    await queue(services, "wechat", "oClick", {"text": "第5条通知"})
    assert await push.drain(services, http) == 1

    assert sim.calls["custom_send"] == tried  # not tried: the click's minute is over
    assert sim.of("template_send", "oClick")[-1]["payload"]["data"]["keyword1"]["value"] == "第5条通知"


async def test_a_click_does_not_shorten_the_window_a_message_opened(
    services: Services, sim: SimRecorder, http: aiohttp.ClientSession, clock: FakeClock, wx: WeChat
) -> None:
    """A message an hour ago keeps its 48 hours (and its quota of 5) when the resident then clicks
    the menu: a push five minutes after the click is still a customer-service message."""
    assert await wx.say("oBoth", "你好")
    clock.advance(hours=1)
    await wx.event("oBoth", "CLICK", "MENU_MY_TICKETS")
    clock.advance(minutes=5)
    await queue(services, "wechat", "oBoth", {"text": "您的工单已派单。"})

    assert await push.drain(services, http) == 1

    assert [r["payload"]["text"]["content"] for r in sim.of("custom_send", "oBoth")] == ["您的工单已派单。"]
    assert sim.of("template_send", "oBoth") == []


async def test_pushes_to_residents_keep_phone_numbers_logs_mask_them_and_hash_openids(
    services: Services, sim: SimRecorder, http: aiohttp.ClientSession, clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await add_resident(services, "oSecretOpenid", clock.now())
    await queue(services, "wechat", "oSecretOpenid", {"text": "网格员电话 13912345678，有事请联系。"})
    await queue(services, "wechat", "oNobody", {"text": "电话 13912345678"})  # unknown: dead, logged

    with caplog.at_level(logging.INFO, logger="bot.channels.push"):
        await push.drain(services, http)

    assert sim.of("custom_send")[0]["payload"]["text"]["content"] == "网格员电话 13912345678，有事请联系。"
    logged = " ".join(f"{r.getMessage()} {getattr(r, 'fields', {})}" for r in caplog.records)
    assert hash_openid("oSecretOpenid") in logged
    assert "oSecretOpenid" not in logged.replace(hash_openid("oSecretOpenid"), "")
    assert "oNobody" not in logged and "13912345678" not in logged


# --- access tokens ------------------------------------------------------------------------------


@asynccontextmanager
async def second_process(services: Services, clock: FakeClock, backend: str) -> AsyncIterator[Services]:
    """Another process's services on the same database and state: its own engine, and on
    PostgreSQL + Redis its own Redis client (the embedded store is one process's by design)."""
    other = open_services(services.settings, clock=clock)
    if backend == "embedded":
        other = replace(other, store=services.store)
    else:
        other.store.with_prefix(services.store.prefix)
    try:
        yield other
    finally:
        if backend == "embedded":  # the store is the first process's: close only what is its own
            await other.sessions.close()
            await other.engine.dispose()
        else:
            await other.close()


async def test_one_token_fetch_shared_by_two_processes(
    services: Services, sim: SimRecorder, http: aiohttp.ClientSession, clock: FakeClock, backend: str
) -> None:
    async with second_process(services, clock, backend) as other:
        await add_resident(services, "oZhang", clock.now())
        for n in range(4):
            await queue(services, "wechat", "oZhang", {"text": f"消息{n}"})
            await queue(services, "wecom", "wangwei", {"msgtype": "text", "text": f"派单{n}"})
        # Both "processes" start together and both need tokens at once.
        sent = await asyncio.gather(push.drain(services, http, limit=4), push.drain(other, http, limit=4))
        assert sum(sent) == 8
        assert sim.calls["token"] == 1 and sim.calls["gettoken"] == 1
        # Still cached later, by either process.
        clock.advance(minutes=30)
        await queue(services, "wechat", "oZhang", {"text": "再来一条"})
        assert await push.drain(other, http) == 1
        assert sim.calls["token"] == 1


async def test_token_refetched_before_it_expires(
    services: Services, sim: SimRecorder, http: aiohttp.ClientSession, clock: FakeClock
) -> None:
    await add_resident(services, "oZhang", clock.now())
    await queue(services, "wechat", "oZhang", {"text": "一"})
    await push.drain(services, http)
    clock.advance(seconds=7200 - 300 + 1)  # the cache ends 300 s before WeChat's 7,200 s
    await add_resident(services, "oLi", clock.now())
    await queue(services, "wechat", "oLi", {"text": "二"})
    assert await push.drain(services, http) == 1
    assert sim.calls["token"] == 2
    assert sim.calls["custom_send"] == 2  # never refused for an expired token


@pytest.mark.parametrize("code", [40001, 42001])
async def test_refused_token_is_refreshed_once_and_the_call_retried(
    services: Services, sim: SimRecorder, http: aiohttp.ClientSession, clock: FakeClock, code: int
) -> None:
    await add_resident(services, "oZhang", clock.now())
    await queue(services, "wechat", "oZhang", {"text": "一"})
    await queue(services, "wecom", "wangwei", {"msgtype": "text", "text": "派单一"})
    await push.drain(services, http)
    sim.revoke_tokens(code)  # e.g. the secret was reset elsewhere, or WeChat expired it early

    await queue(services, "wechat", "oZhang", {"text": "二"})
    await queue(services, "wecom", "wangwei", {"msgtype": "text", "text": "派单二"})
    assert await push.drain(services, http) == 2

    assert (sim.calls["token"], sim.calls["gettoken"]) == (2, 2)
    assert [r["payload"]["text"]["content"] for r in sim.of("custom_send")] == ["一", "二"]
    assert [r["payload"]["text"]["content"] for r in sim.of("wecom_send")] == ["派单一", "派单二"]
    assert all(r.attempts == 0 for r in await rows(services))


# --- failures: retry with backoff, then dead ------------------------------------------------------


async def test_server_errors_retry_with_growing_backoff_then_dead(
    services: Services, sim: SimRecorder, http: aiohttp.ClientSession, clock: FakeClock
) -> None:
    await add_resident(services, "oZhang", clock.now())
    await queue(services, "wechat", "oZhang", {"text": "通知"})
    await push.drain(services, http)  # fetch the token first
    sim.inject("custom_send", status=502, times=3)
    await queue(services, "wechat", "oZhang", {"text": "会失败的通知"})
    dead_before = counter("cb_outbox_dead_total", channel="wechat")
    failures_before = counter("cb_outbox_failures_total", channel="wechat")

    delays = []
    for attempt in (1, 2):
        assert await push.drain(services, http) == 0
        row = (await rows(services))[-1]
        assert (row.state, row.attempts, row.last_error) == ("pending", attempt, "HTTP 502")
        delays.append((row.next_attempt_at - clock.now()).total_seconds())
        assert await push.drain(services, http) == 0  # not due yet: nothing is tried
        assert sim.calls["custom_send"] == 1 + attempt
        clock.advance(seconds=delays[-1] + 0.001)
    assert 2.5 <= delays[0] <= 5.0 and 5.0 <= delays[1] <= 10.0

    assert await push.drain(services, http) == 0
    row = (await rows(services))[-1]
    assert (row.state, row.attempts, row.last_error, row.sent_at) == ("dead", 3, "HTTP 502", None)
    assert counter("cb_outbox_dead_total", channel="wechat") == dead_before + 1
    assert counter("cb_outbox_failures_total", channel="wechat") == failures_before + 3
    clock.advance(hours=1)
    assert await push.drain(services, http) == 0 and sim.calls["custom_send"] == 4  # dead stays dead


async def test_timeout_and_system_busy_retry_then_succeed_once(
    services: Services, sim: SimRecorder, http: aiohttp.ClientSession, clock: FakeClock
) -> None:
    await add_resident(services, "oZhang", clock.now())
    await queue(services, "wechat", "oZhang", {"text": "预热"})
    await push.drain(services, http)
    sim.inject("custom_send", delay=3.5, status=504)  # longer than the answer's 3 s (2 × 1.5 s)
    sim.inject("custom_send", errcode=-1)
    await queue(services, "wechat", "oZhang", {"text": "重要通知"})

    assert await push.drain(services, http) == 0
    row = (await rows(services))[-1]
    assert row.state == "pending" and row.attempts == 1 and "Timeout" in (row.last_error or "")
    clock.advance(seconds=10)
    assert await push.drain(services, http) == 0
    row = (await rows(services))[-1]
    # the timed-out attempt may have arrived: the row says so whatever fails next
    assert row.state == "pending" and row.attempts == 2
    assert row.last_error == f"errcode -1: simulated error; {push.MAYBE_SENT}"
    clock.advance(seconds=20)
    assert await push.drain(services, http) == 1
    row = (await rows(services))[-1]
    assert (row.state, row.sent_via) == ("sent", "custom")
    assert [r["payload"]["text"]["content"] for r in sim.of("custom_send")] == ["预热", "重要通知"]


@pytest.mark.parametrize(("channel", "target", "payload", "api"), [
    ("wecom", "wangwei", {"msgtype": "text", "text": "派单：3号楼楼道灯"}, "wecom_send"),
    ("group", "staff", {"msgtype": "markdown", "content": "**转人工** 3号楼"}, "group_send"),
])
async def test_wecom_and_the_group_robot_retry_through_5xx_and_a_timeout_and_land_once(
    services: Services, sim: SimRecorder, http: aiohttp.ClientSession, clock: FakeClock,
    channel: str, target: str, payload: dict[str, Any], api: str,
) -> None:
    await queue(services, channel, target, payload)
    sim.inject(api, status=503)
    sim.inject(api, delay=3.5, status=504)  # longer than the answer's 3 s; the third try is the last
    errors = []
    for _ in range(2):
        assert await push.drain(services, http) == 0
        [row] = await rows(services)
        assert row.state == "pending" and row.next_attempt_at > clock.now()
        errors.append(row.last_error or "")
        assert await push.drain(services, http) == 0  # not due yet: nothing is tried
        clock.advance(seconds=(row.next_attempt_at - clock.now()).total_seconds() + 0.001)
    assert errors[0] == "HTTP 503" and "Timeout" in errors[1], errors
    assert await push.drain(services, http) == 1
    [row] = await rows(services)
    assert (row.state, row.attempts) == ("sent", 2)
    assert row.last_error == push.MAYBE_SENT  # the timeout came after sending: it may have arrived twice
    assert len(sim.of(api)) == 1 and sim.calls[api] == 3  # three tries, one delivery
    clock.advance(hours=1)
    assert await push.drain(services, http) == 0 and len(sim.of(api)) == 1  # sent stays sent


async def test_other_errcodes_are_dead_at_once(
    services: Services, sim: SimRecorder, http: aiohttp.ClientSession, clock: FakeClock
) -> None:
    await add_resident(services, "oGone", clock.now() - timedelta(days=3), subscribed=False)
    await queue(services, "wechat", "oGone", {"text": "通知"})
    await queue(services, "wecom", "wangwei", {"msgtype": "bogus"})

    assert await push.drain(services, http) == 0

    gone, bogus, alert = await rows(services)
    assert (gone.state, gone.attempts, gone.last_error) == ("dead", 1, "errcode 43004: require subscribe")
    assert (bogus.state, bogus.last_error) == ("dead", "unknown WeCom msgtype 'bogus'")
    # A worker's push given up is told to the staff group (a resident's shows on its ticket's page).
    assert alert.channel == "group" and "wangwei" in alert.payload["content"] and "msgtype" in alert.payload["content"]


# --- claiming: leases and exactly-once across processes ---------------------------------------------


async def test_a_crashed_senders_rows_are_sent_after_the_lease(
    services: Services, sim: SimRecorder, http: aiohttp.ClientSession, clock: FakeClock
) -> None:
    await add_resident(services, "oZhang", clock.now())
    await queue(services, "wechat", "oZhang", {"text": "一"})
    claimed = await push.claim(services)  # a process claims, then dies before sending
    assert [c.id for c in claimed] == [(await rows(services))[0].id]

    assert await push.drain(services, http) == 0  # still leased
    clock.advance(seconds=services.settings.outbox_lease_s + 1)
    assert await push.drain(services, http) == 1
    assert len(sim.of("custom_send")) == 1


async def test_two_processes_never_send_the_same_row(
    services: Services, sim: SimRecorder, http: aiohttp.ClientSession, clock: FakeClock, backend: str
) -> None:
    async with second_process(services, clock, backend) as other:
        texts = []
        for n in range(40):
            openid = f"oR{n % 10}"
            if n < 10:
                await add_resident(services, openid, None)  # outside the window: templates, no quota
            texts.append(f"通知{n}")
            await queue(services, "wechat", openid, {"text": texts[-1]})

        async def worker(svc: Services) -> int:
            total = 0
            while sent := await push.drain(svc, http, limit=3):
                total += sent
            return total

        counts = await asyncio.gather(worker(services), worker(other), worker(services), worker(other))
        assert sum(counts) == 40
        delivered = sorted(r["payload"]["data"]["keyword1"]["value"] for r in sim.of("template_send"))
        assert delivered == sorted(texts)  # every row exactly once
        assert {r.state for r in await rows(services)} == {"sent"}


# --- WeCom app: per-member limits ---------------------------------------------------------------


async def test_wecom_member_limit_delays_the_excess_and_drops_nothing(
    services: Services, sim: SimRecorder, http: aiohttp.ClientSession, clock: FakeClock
) -> None:
    for n in range(35):
        await queue(services, "wecom", "wangwei", {"msgtype": "text", "text": f"工单{n}"})
    await queue(services, "wecom", "liming", {"msgtype": "textcard", "title": "新工单", "description": "3号楼漏水"})

    assert await push.drain(services, http) == 31

    assert len(sim.of("wecom_send", "wangwei")) == 30 and len(sim.of("wecom_send", "liming")) == 1
    card = sim.of("wecom_send", "liming")[0]["payload"]
    assert card["agentid"] == services.settings.wecom_agentid and card["textcard"]["title"] == "新工单"
    waiting = [r for r in await rows(services) if r.state == "pending"]
    assert len(waiting) == 5 and all(r.attempts == 0 for r in waiting)
    assert all(r.next_attempt_at == clock.now() + timedelta(seconds=60) for r in waiting)
    clock.advance(seconds=30)
    assert await push.drain(services, http) == 0
    clock.advance(seconds=30)
    assert await push.drain(services, http) == 5
    assert [r["payload"]["text"]["content"] for r in sim.of("wecom_send", "wangwei")] == [f"工单{n}" for n in range(35)]
    assert not any(r.get("dropped") for r in sim.records)  # WeCom never had to drop one


async def test_sliding_windows_hold_both_limits(services: Services, clock: FakeClock) -> None:
    limits = ((3, 60.0), (5, 3600.0))  # the same code as 30/min and 1,000/h, smaller numbers
    took = []
    for _ in range(4):
        taken, _until = await push.take_slots(services, "wecom:t", limits, lambda free: 1)
        took.append(taken)
    assert took == [1, 1, 1, 0]
    clock.advance(seconds=61)
    assert (await push.take_slots(services, "wecom:t", limits, lambda free: 1))[0] == 1
    assert (await push.take_slots(services, "wecom:t", limits, lambda free: 1))[0] == 1
    taken, until = await push.take_slots(services, "wecom:t", limits, lambda free: 1)
    assert taken == 0 and until == clock.now() - timedelta(seconds=61) + timedelta(hours=1)


# --- the staff group robot: 20 a minute, merged when more wait -----------------------------------------


async def test_group_robot_rate_limit_and_batching(
    services: Services, sim: SimRecorder, http: aiohttp.ClientSession, clock: FakeClock
) -> None:
    for n in range(15):
        await queue(services, "group", "staff", {"msgtype": "markdown", "content": f"**转人工** 第{n}条"})
    assert await push.drain(services, http) == 15
    assert len(sim.of("group_send")) == 15  # room for all: one post each

    clock.advance(seconds=10)
    for n in range(15, 40):
        await queue(services, "group", "staff", {"msgtype": "markdown", "content": f"**转人工** 第{n}条"})
    assert await push.drain(services, http) == 25  # 5 posts left this minute: 25 merged into 5
    merged = sim.of("group_send")[15:]
    assert len(merged) == 5
    header = services.texts.get("push.group_batch_header", count=5)
    assert all(r["payload"]["markdown"]["content"].startswith(header) for r in merged)

    await queue(services, "group", "staff", {"msgtype": "markdown", "content": "**转人工** 第40条"})
    assert await push.drain(services, http) == 0  # the minute is used up: it waits
    [waiting] = [r for r in await rows(services) if r.state == "pending"]
    assert waiting.attempts == 0 and waiting.next_attempt_at == clock.now() + timedelta(seconds=50)
    clock.advance(seconds=50)
    assert await push.drain(services, http) == 1

    everything = "\n".join(r["payload"]["markdown"]["content"] for r in sim.of("group_send"))
    for n in range(41):
        assert everything.count(f"第{n}条") == 1
    assert sim.calls["group_send"] == 21  # never refused with 45009


async def test_group_posts_keep_under_4096_bytes(
    services: Services, sim: SimRecorder, http: aiohttp.ClientSession, clock: FakeClock
) -> None:
    for n in range(20):
        await queue(services, "group", "staff", {"msgtype": "markdown", "content": "占位"})
    await push.drain(services, http)
    clock.advance(seconds=59)
    assert push.pack_markdown(["长" * 600] * 6, 2) == [[0, 1], [2, 3]]  # 1,800 bytes each: two per post
    await queue(services, "group", "staff", {"msgtype": "markdown", "content": "超长" * 3000})
    clock.advance(seconds=2)
    assert await push.drain(services, http) == 1
    last = sim.of("group_send")[-1]["payload"]["markdown"]["content"]
    assert len(last.encode()) <= 4096 and last.endswith("…")


# --- the task in the app ------------------------------------------------------------------------


async def test_quiet_hours_hold_the_bots_own_pushes_but_not_a_staff_answer(
    services: Services, sim: SimRecorder, http: aiohttp.ClientSession, clock: FakeClock, client: Any
) -> None:
    """At 21:30 (quiet hours 21:00-08:00) a new ticket's card to its owner and the resident's 已办结
    notice wait in the outbox until 08:00; a staff member's 回复 N, a person answering now, goes at
    once."""
    from tests.wecom_driver import WeCom, new_ticket

    night = datetime(2026, 11, 23, 13, 30, tzinfo=timezone.utc)  # 21:30 in Shanghai
    clock.set(night)
    await add_resident(services, "oNight", night - timedelta(minutes=5))
    wc = WeCom(client, services)
    number = (await new_ticket(services, resident="oNight")).ticket.number
    assert (await wc.say("wangwei", f"办结 {number} 已更换灯泡")).startswith("已办结")
    assert (await wc.say("liustaff", f"回复 {number} 您好，明早再来看一次")).startswith("已回复")
    assert await push.drain(services, http) == 1
    [answer] = [r["payload"]["text"]["content"] for r in sim.of("custom_send")]
    assert answer.endswith("您好，明早再来看一次")
    assert sim.of("wecom_send") == []
    clock.set(night + timedelta(hours=10, minutes=29))  # 07:59
    assert await push.drain(services, http) == 0
    clock.set(night + timedelta(hours=10, minutes=30))  # 08:00
    assert await push.drain(services, http) == 2
    [card] = sim.of("wecom_send", "wangwei")
    assert card["payload"]["msgtype"] == "textcard" and number in card["payload"]["textcard"]["title"]
    assert sim.of("custom_send")[-1]["payload"]["text"]["content"] == f"您的工单 {number} 已办结：已更换灯泡"


async def test_the_app_runs_the_sender_and_a_wake_sends_at_once(
    services: Services, sim: SimRecorder, clock: FakeClock
) -> None:
    services.settings.outbox_sender = True
    app = create_app(services.settings, services=services)
    server = TestServer(app)
    await server.start_server()
    try:
        await add_resident(services, "oZhang", clock.now())
        await queue(services, "wechat", "oZhang", {"text": "后台发送"})
        push.notify(services)
        deadline = time.monotonic() + 5
        while (await rows(services))[0].state != "sent" and time.monotonic() < deadline:
            await asyncio.sleep(0.02)  # waiting for the background task, not for (fake) time
        assert [r["payload"]["text"]["content"] for r in sim.of("custom_send")] == ["后台发送"]
        depth = await push.update_depth(services)
        assert depth == 0 and counter("cb_outbox_depth") == 0
    finally:
        await server.close()
    assert "outbox_wake" not in services.extras  # the task was cancelled and awaited on cleanup


async def test_depth_gauge_counts_waiting_pushes(
    services: Services, sim: SimRecorder, http: aiohttp.ClientSession, clock: FakeClock
) -> None:
    await queue(services, "wechat", "oLater", {"text": "稍后"}, not_before=clock.now() + timedelta(hours=1))
    await queue(services, "group", "staff", {"msgtype": "markdown", "content": "现在"})
    assert await push.drain(services, http) == 1
    assert counter("cb_outbox_depth") == 1


async def test_drains_count_the_depth_at_most_once_a_second(
    services: Services, sim: SimRecorder, http: aiohttp.ClientSession, clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A drain follows every push committed; counting the waiting rows after each one cost more
    than the push's own bookkeeping, so the gauge is counted at most every DEPTH_EVERY_S."""
    later = clock.now() + timedelta(hours=1)
    await queue(services, "wechat", "oLater", {"text": "稍后"}, not_before=later)
    assert await push.drain(services, http) == 0
    assert counter("cb_outbox_depth") == 1
    await queue(services, "wechat", "oLater", {"text": "再稍后"}, not_before=later)
    assert await push.drain(services, http) == 0
    assert counter("cb_outbox_depth") == 1  # counted less than a second ago: not again
    monkeypatch.setattr(push, "DEPTH_EVERY_S", 0.0)  # as if the second had passed
    assert await push.drain(services, http) == 0
    assert counter("cb_outbox_depth") == 2


async def test_a_push_that_timed_out_after_delivering_is_marked_maybe_delivered_twice(
    services: Services, sim: SimRecorder, http: aiohttp.ClientSession, clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """WeCom delivered the card but answered after the sender gave up: WeCom's send takes no
    idempotency key, so the retry delivers it again. It cannot be undone; it is made visible — the
    log's maybe_delivered, cb_outbox_maybe_delivered_total, the row's last_error once sent — and an
    answer is awaited twice outbox_timeout_s once connected (a slow answer of 2 s is no timeout),
    while a failure that sent nothing (HTTP 503) is not marked."""
    from bot import metrics

    before = metrics.OUTBOX_MAYBE_DELIVERED.labels("wecom")._value.get()
    await queue(services, "wecom", "lina", {"msgtype": "text", "text": "派单：小区西门路灯"})
    sim.inject("wecom_send", delay=2.0)  # slower than outbox_timeout_s, within the answer's wait
    assert await push.drain(services, http) == 1
    [row] = await rows(services)
    assert (row.state, row.last_error) == ("sent", None) and len(sim.of("wecom_send")) == 1

    await queue(services, "wecom", "lina", {"msgtype": "text", "text": "提醒：请接单"})
    sim.inject("wecom_send", delay=3.5)  # delivered, answered after the sender gave up
    with caplog.at_level("WARNING", logger="bot.channels.push"):
        assert await push.drain(services, http) == 0
    row = (await rows(services))[-1]
    assert row.state == "pending" and push.MAYBE_SENT in (row.last_error or "")
    assert [r for r in caplog.records if getattr(r, "maybe_delivered", None) is True
            or "maybe delivered" in r.getMessage()]
    assert metrics.OUTBOX_MAYBE_DELIVERED.labels("wecom")._value.get() == before + 1
    clock.advance(seconds=(row.next_attempt_at - clock.now()).total_seconds() + 0.001)
    assert await push.drain(services, http) == 1
    row = (await rows(services))[-1]
    assert (row.state, row.last_error) == ("sent", push.MAYBE_SENT)
    assert sim.calls["wecom_send"] == 3  # the reminder went out twice: the first may have arrived too

    await queue(services, "wecom", "lina", {"msgtype": "text", "text": "提醒：请办结"})
    sim.inject("wecom_send", status=503)  # refused: nothing was sent
    assert await push.drain(services, http) == 0
    row = (await rows(services))[-1]
    assert row.last_error == "HTTP 503"
