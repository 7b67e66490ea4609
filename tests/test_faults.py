"""Faults: PostgreSQL unreachable for a while, Redis restarting. Nothing a resident sent is lost,
no reply takes longer than WeChat's 5 seconds, no half-written state, never a 500."""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import func, select, text

from bot.app import create_app
from bot.clock import FakeClock
from bot.services import Services, open_services
from bot.sim.wechat_client import text_xml
from storage.models import Message, OutboxItem, Reminder, Ticket, TicketEvent
from tests.conftest import WeChat, make_settings, truncate_all
from tests.flow_helpers import tickets_of
from tests.harness import PrivateRedis, SilentNetwork, TcpProxy

RESEND = "请稍后再发"


@pytest.fixture
async def pg_proxy(pg_url: str, tmp_path: Path, clock: FakeClock) -> AsyncIterator[tuple[TcpProxy, Services, WeChat]]:
    """The app on PostgreSQL (and Redis) reached through a proxy that can cut the database off:
    the proxy, the app's services and a WeChat driver of it."""
    await truncate_all(pg_url)
    proxy = TcpProxy("127.0.0.1", 5432)
    await proxy.start()
    name = pg_url.rsplit("/", 1)[1]
    settings = make_settings("pg_redis", tmp_path, f"postgresql+asyncpg://postgres@127.0.0.1:{proxy.port}/{name}")
    svc = open_services(settings, clock=clock)
    svc.store.with_prefix(f"cbt{uuid.uuid4().hex[:8]}")
    try:
        async with TestClient(TestServer(create_app(settings, services=svc))) as client:
            yield proxy, svc, WeChat(client, settings)
    finally:
        await svc.close()
        await proxy.close()


async def _asked_to_resend_within_5_s(wx: WeChat, xml: str) -> None:
    """xml posted while the database is gone: 请稍后再发, within WeChat's 5 seconds."""
    started = time.monotonic()
    status, reply = await wx.post_xml(xml)
    elapsed = time.monotonic() - started
    assert status == 200 and reply is not None and RESEND in reply["Content"]
    assert elapsed < 5.0, f"reply took {elapsed:.1f}s"


async def test_postgres_unreachable_then_back(pg_proxy: tuple[TcpProxy, Services, WeChat]) -> None:
    proxy, svc, wx = pg_proxy
    assert "报事报修" in await wx.say("oPgFault", "你好")
    proxy.cut()
    xml = text_xml("oPgFault", "3号楼楼道灯坏了", msg_id=777001)
    await _asked_to_resend_within_5_s(wx, xml)
    proxy.restore()
    # WeChat retries the same message: it is handled now (the failed attempt released it).
    status, reply = await wx.post_xml(xml)
    assert status == 200 and reply is not None and RESEND not in reply["Content"]
    # Exactly what was handled is stored: the first message and the retried one, each with
    # its reply; nothing of the failed attempt.
    inbound = [m for m in await _messages(svc, "oPgFault") if m.direction == "in"]
    assert [m.content for m in inbound] == ["你好", "3号楼楼道灯坏了"]




async def test_postgres_silent_behind_a_network_cut_answers_within_5_s_then_the_retry_is_handled(
    pg_proxy: tuple[TcpProxy, Services, WeChat], silent: SilentNetwork,
) -> None:
    """Behind a cut nothing refuses a connection; the statement goes out and nothing comes back.
    The connection gives up on the silent server in time for the resident to hear 请稍后再发."""
    proxy, svc, wx = pg_proxy
    assert "报事报修" in await wx.say("oPgSilent", "你好")
    silent.cut(proxy.ports())
    xml = text_xml("oPgSilent", "3号楼楼道灯坏了", msg_id=777201)
    await _asked_to_resend_within_5_s(wx, xml)
    silent.restore()
    status, reply = await wx.post_xml(xml)
    assert status == 200 and reply is not None and RESEND not in reply["Content"], reply
    inbound = [m for m in await _messages(svc, "oPgSilent") if m.direction == "in"]
    assert [m.content for m in inbound] == ["你好", "3号楼楼道灯坏了"]


async def test_postgres_silent_at_the_commit_leaves_no_half_ticket_and_holds_no_locks(
    pg_proxy: tuple[TcpProxy, Services, WeChat], silent: SilentNetwork, pg_url: str,
) -> None:
    """The line goes silent as the ticket's COMMIT is sent: the resident hears 请稍后再发 within
    5 s; the database, told to watch its clients (storage.dead_peer), rolls the orphaned
    transaction back by itself, so its row locks do not hold up WeChat's retry, which writes
    the ticket once."""
    proxy, svc, wx = pg_proxy
    openid = "oPgSilentCommit"
    for answer in to_summary("5"):
        reply = await wx.say(openid, answer)
    assert "请核对" in reply, reply
    before = await _rows(svc)
    await svc.engine.dispose()  # fresh connections: the INSERT's text crosses the wire
    proxy.on_trip = lambda: silent.cut(proxy.ports())
    proxy.cut_at(b"INSERT INTO tickets", after=b"COMMIT")
    confirm = text_xml(openid, "1", msg_id=778201)
    started = time.monotonic()
    status, answered = await wx.post_xml(confirm)
    assert proxy.tripped and silent.cutting
    assert time.monotonic() - started < 5.0
    assert status == 200 and answered is not None and RESEND in answered["Content"], answered
    cut_ports = proxy.ports() - {proxy.port}
    # The server notices its silent client within seconds and ends its transaction.
    name = pg_url.rsplit("/", 1)[1]
    deadline = time.monotonic() + 20
    while True:
        orphans = await _backends_on(pg_url, name, cut_ports)
        if not orphans or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.5)
    assert not orphans, f"the server still holds the cut connections' sessions: {orphans}"
    silent.restore()
    assert await _rows(svc) == before
    status, answered = await wx.post_xml(confirm)
    assert status == 200 and answered is not None
    number = NUMBER.search(answered["Content"])
    assert number, answered["Content"]
    after = await _rows(svc)
    assert after["tickets"] == before["tickets"] + 1
    async with svc.sessions() as session:
        ticket = await session.scalar(select(Ticket).where(Ticket.number == number[1]))
        assert ticket is not None and ticket.resident == openid and ticket.building == "5"


async def _backends_on(pg_url: str, database: str, ports: set[int]) -> list[str]:
    """The states of the server's sessions on database whose client is one of ports."""
    import asyncpg

    conn = await asyncpg.connect(pg_url.replace("postgresql+asyncpg", "postgresql"))
    try:
        rows = await conn.fetch(
            "SELECT client_port, state FROM pg_stat_activity WHERE datname = $1 AND client_port = ANY($2::int[])",
            database, sorted(ports),
        )
    finally:
        await conn.close()
    return [f"{r['client_port']}: {r['state']}" for r in rows]


async def test_after_an_outage_a_busy_pools_dead_connections_fail_no_more_messages(
    pg_proxy: tuple[TcpProxy, Services, WeChat],
) -> None:
    """Under load the pool holds several connections, all killed by the outage; the first one found
    gone must retire the rest, or each fails one more message (WeChat's retry among them)."""
    proxy, svc, wx = pg_proxy
    assert "报事报修" in await wx.say("oPgBusy", "你好")
    await _warm_pool(svc, 4)
    proxy.cut()
    xml = text_xml("oPgBusy", "3号楼楼道灯坏了", msg_id=777101)
    status, reply = await wx.post_xml(xml)
    assert status == 200 and reply is not None and RESEND in reply["Content"]
    proxy.restore()
    status, reply = await wx.post_xml(xml)
    assert status == 200 and reply is not None and RESEND not in reply["Content"], reply
    for i in range(3):  # other residents, right after
        assert RESEND not in await wx.say(f"oPgBusy{i}", "你好")


async def _warm_pool(svc: Services, size: int) -> None:
    """Leave `size` connections idle in the pool, as concurrent messages would."""
    async def hold(ready: asyncio.Event, go: asyncio.Event) -> None:
        async with svc.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
            ready.set()
            await go.wait()

    go = asyncio.Event()
    readies = [asyncio.Event() for _ in range(size)]
    tasks = [asyncio.create_task(hold(r, go)) for r in readies]
    await asyncio.gather(*(r.wait() for r in readies))
    go.set()
    await asyncio.gather(*tasks)


# Where the connection drops while a complaint is submitted: as the ticket's INSERT is sent (it
# never arrives), a statement or two into the write, at the outbox push, and at the COMMIT itself.
CUTS: list[int | bytes] = [0, 1, 2, b"INSERT INTO outbox", b"COMMIT"]
BUILDINGS = ["2", "5", "9", "11", "7"]  # one report per building: none is linked to another's


def to_summary(building: str) -> list[str]:
    """A lighting report from the menu up to its summary, in building `building`."""
    return ["1", "1", f"{building}栋1单元", "楼道灯不亮三天了", "好了", "13812345678", "否"]


NUMBER = re.compile(r"工单号：(\d{8}-\d{4})")


async def _rows(svc: Services) -> dict[str, int]:
    """How many tickets, ticket events, pushes and reminders the database holds."""
    async with svc.sessions() as session:
        return {m.__tablename__: int(await session.scalar(select(func.count()).select_from(m)) or 0)
                for m in (Ticket, TicketEvent, OutboxItem, Reminder)}


async def test_postgres_lost_in_the_middle_of_a_submission_writes_no_half_ticket(
    pg_proxy: tuple[TcpProxy, Services, WeChat],
) -> None:
    proxy, svc, wx = pg_proxy
    for n, (cut, building) in enumerate(zip(CUTS, BUILDINGS, strict=True)):
        openid = f"oPgCut{n}"
        for answer in to_summary(building):
            reply = await wx.say(openid, answer)
        assert "请核对" in reply, reply
        before = await _rows(svc)
        confirm = text_xml(openid, "1", msg_id=778000 + n)
        # Fresh connections: a statement's text crosses the wire only when a connection first
        # prepares it (the earlier residents' connections hold the ticket's INSERT prepared).
        await svc.engine.dispose()
        proxy.cut_at(b"INSERT INTO tickets", after=cut)
        started = time.monotonic()
        status, answered = await wx.post_xml(confirm)
        assert proxy.tripped, f"cut {cut!r}: the write never reached that point"
        assert time.monotonic() - started < 5.0
        assert status == 200 and answered is not None and RESEND in answered["Content"], (cut, answered)
        proxy.restore()
        # Nothing of the failed write is kept: no ticket, event, push or reminder.
        assert await _rows(svc) == before, cut
        # WeChat's retry of the same message submits it, once; its next retry gets that answer.
        status, answered = await wx.post_xml(confirm)
        assert status == 200 and answered is not None, (cut, answered)
        number = NUMBER.search(answered["Content"])
        assert number, (cut, answered["Content"])
        status, again = await wx.post_xml(confirm)
        assert again is not None and number[1] in again["Content"], (cut, again)
        after = await _rows(svc)
        assert after["tickets"] == before["tickets"] + 1, (cut, before, after)
        async with svc.sessions() as session:
            ticket = await session.scalar(select(Ticket).where(Ticket.number == number[1]))
            assert ticket is not None and ticket.resident == openid and ticket.status == "dispatched"
            assert ticket.fields["phone"] == "13812345678" and ticket.building == building
            events = (await session.scalars(select(TicketEvent.action).where(TicketEvent.ticket_id == ticket.id))).all()
            pushes = (await session.scalars(select(OutboxItem.target).where(OutboxItem.ticket_id == ticket.id))).all()
        assert events.count("created") == events.count("assign") == 1, (cut, events)
        assert pushes.count(ticket.assignee) == 1, (cut, pushes)  # the worker's card, once


async def _messages(svc: Services, openid: str) -> list[Message]:
    async with svc.sessions() as session:
        rows = await session.scalars(select(Message).where(Message.openid == openid).order_by(Message.id))
        return list(rows)


async def _to_description(wx: WeChat, openid: str) -> None:
    """A lighting report in 9栋1单元 from the menu up to the question of what happened."""
    for answer, asked in (("1", "哪一类"), ("1", "问题在哪里"), ("9栋1单元", "描述一下")):
        assert asked in await wx.say(openid, answer)


@pytest.mark.parametrize("persist", [True, False], ids=["append-only", "no-persistence"])
async def test_redis_restart_keeps_answering_and_the_dialog_resumes(
    pg_url: str, tmp_path: Path, clock: FakeClock, persist: bool
) -> None:
    await truncate_all(pg_url)
    redis = PrivateRedis(persist=persist)
    redis.start()
    settings = make_settings("pg_redis", tmp_path, pg_url, redis_url=redis.url)
    svc = open_services(settings, clock=clock)
    try:
        async with TestClient(TestServer(create_app(settings, services=svc))) as client:
            wx = WeChat(client, settings)
            openid = "oRedisFault"
            await _to_description(wx, openid)
            redis.stop()
            started = time.monotonic()
            status, reply = await wx.post_xml(text_xml(openid, "楼道灯不亮三天了", msg_id=888001))
            assert status == 200 and time.monotonic() - started < 5.0
            assert reply is not None and RESEND in reply["Content"]
            redis.start()
            # The resident sends it again and the report goes on where it was, to its number.
            replies: list[str] = []
            for answer in ("楼道灯不亮三天了", "好了", "13812345678", "否", "1"):
                started = time.monotonic()
                replies.append(await wx.say(openid, answer))
                assert time.monotonic() - started < 5.0, answer
            assert "拍张照片" in replies[0] and "联系电话" in replies[1], replies
            assert "请核对" in replies[3] and "9栋1单元" in replies[3] and "工单号" in replies[4], replies
            [ticket] = await tickets_of(svc, openid)
            assert ticket.building == "9" and ticket.fields["phone"] == "13812345678"
    finally:
        await svc.close()
        redis.cleanup()


async def test_redis_silent_behind_a_network_cut_answers_within_5_s_and_the_dialog_resumes(
    pg_url: str, tmp_path: Path, clock: FakeClock, silent: SilentNetwork,
) -> None:
    """Redis cut off silently mid-report: 请稍后再发 within 5 s, then the report goes on."""
    await truncate_all(pg_url)
    redis = PrivateRedis(persist=False)
    redis.start()
    proxy = TcpProxy("127.0.0.1", redis.port)
    await proxy.start()
    settings = make_settings("pg_redis", tmp_path, pg_url, redis_url=f"redis://127.0.0.1:{proxy.port}/0")
    svc = open_services(settings, clock=clock)
    try:
        async with TestClient(TestServer(create_app(settings, services=svc))) as client:
            wx = WeChat(client, settings)
            openid = "oRedisSilent"
            await _to_description(wx, openid)
            silent.cut(proxy.ports())
            await _asked_to_resend_within_5_s(wx, text_xml(openid, "楼道灯不亮三天了", msg_id=888201))
            silent.restore()
            replies = [await wx.say(openid, answer) for answer in ("楼道灯不亮三天了", "好了", "13812345678", "否", "1")]
            assert "拍张照片" in replies[0] and "请核对" in replies[3] and "工单号" in replies[4], replies
            [ticket] = await tickets_of(svc, openid)
            assert ticket.building == "9"
    finally:
        await svc.close()
        await proxy.close()
        redis.cleanup()
