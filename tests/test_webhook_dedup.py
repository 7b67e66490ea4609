"""WeChat's retries: the same message is handled once and every delivery gets the first answer —
within one process, across two app instances sharing PostgreSQL + Redis, and after a failure."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import func, select

from bot import dialog
from bot.app import create_app
from bot.channels import wechat
from bot.channels.wechat import answer_once
from bot.clock import FakeClock
from bot.inbound import Inbound
from bot.metrics import REGISTRY
from bot.services import Services, open_services
from bot.sim.wechat_client import Signed, WeChatSigner, text_xml
from storage.models import Message
from storage.state import LockTimeout
from tests.conftest import make_settings, truncate_all
from tests.fixtures.wechat import FIXTURE_OPENID, MODES, load, sign
from tests.flow_helpers import dialog_of


def _signer(svc: Services) -> WeChatSigner:
    s = svc.settings
    return WeChatSigner(s.wechat_token, s.wechat_appid, s.wechat_aes_key)


async def _post(client: TestClient[Any, Any], signed: Signed) -> tuple[int, str]:
    resp = await client.post("/wechat", params=signed.params, data=signed.body)
    return resp.status, await resp.text()


def _reply(signer: WeChatSigner, signed: Signed, body: str) -> dict[str, Any] | None:
    return signer.unwrap(body, signed.params)


async def _inbound_rows(svc: Services, openid: str = FIXTURE_OPENID) -> int:
    async with svc.sessions() as session:
        return int(
            await session.scalar(
                select(func.count()).select_from(Message).where(Message.openid == openid, Message.direction == "in")
            )
            or 0
        )


def _duplicates() -> float:
    return REGISTRY.get_sample_value("cb_duplicates_total") or 0.0


async def _until(predicate: Any, timeout: float = 5.0) -> None:
    """Wait (polling another task's progress, not the clock) until predicate() holds."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition never held"
        await asyncio.sleep(0.01)


@pytest.mark.parametrize("mode", MODES)
async def test_three_deliveries_one_handling_same_reply(
    mode: str, client: TestClient[Any, Any], services: Services
) -> None:
    signer = _signer(services)
    replies = []
    for _ in range(3):
        signed = sign(signer, load("text"), mode)  # each retry is signed afresh, as WeChat does
        status, body = await _post(client, signed)
        assert status == 200
        replies.append(_reply(signer, signed, body))
    assert replies[0] is not None and replies[0]["Content"]
    assert replies[1] == replies[0] and replies[2] == replies[0]
    assert await _inbound_rows(services) == 1


@pytest.mark.parametrize("mode", ["plain", "safe"])
async def test_a_delivery_the_store_forgot_is_still_handled_once(
    mode: str, client: TestClient[Any, Any], services: Services
) -> None:
    """Redis restarted without its data, or a retry took over after this process's heartbeat
    lapsed: the store no longer knows the delivery, yet the database does (its unique record),
    so the message is not handled a second time and the retry gets the first answer."""
    openid = "oForgot00000000000000000001"
    signer = _signer(services)
    xml = text_xml(openid, "3号楼楼道灯坏了", msg_id=24700000000099001)
    status, body = await _post(client, s := sign(signer, xml, mode))
    first = _reply(signer, s, body)
    assert status == 200 and first is not None and first["Content"]
    state = await dialog_of(services, openid)
    assert state is not None and state.flow == "complaint"

    await services.store.for_retries().delete(services.store.key("dedup", openid, "24700000000099001"))
    status, body = await _post(client, s := sign(signer, xml, mode))
    again = _reply(signer, s, body)
    assert status == 200 and again is not None and again["Content"] == first["Content"]
    assert await _inbound_rows(services, openid) == 1
    assert await dialog_of(services, openid) == state  # the step was not taken twice
    async with services.sessions() as session:
        replies = await session.scalar(select(func.count()).select_from(Message).where(
            Message.openid == openid, Message.direction == "out"))
    assert replies == 1
    # And the store knows it again: a further retry is answered from there.
    status, body = await _post(client, s := sign(signer, xml, mode))
    assert _reply(signer, s, body) == again


async def test_direct_calls_without_a_delivery_are_not_deduplicated(services: Services) -> None:
    """Only webhook deliveries carry a key: internal callers (the simulator's tools, tests) may
    hand the same text twice and get two handlings."""
    for _ in range(2):
        assert await dialog.handle(services, Inbound(openid="oNoKey", msg_type="text", text="你好"))
    assert await _inbound_rows(services, "oNoKey") == 2


async def test_event_retry_collapsed_but_same_second_events_are_not(
    client: TestClient[Any, Any], services: Services
) -> None:
    """A follow retried is one follow; the LOCATION event sent in the same second is its own."""
    signer = _signer(services)
    follow = load("event_subscribe")
    first = _reply(signer, s := sign(signer, follow, "safe"), (await _post(client, s))[1])
    again = _reply(signer, s := sign(signer, follow, "safe"), (await _post(client, s))[1])
    assert first is not None and again == first
    location = load("event_location").replace("1795399214", "1795399208")  # same CreateTime
    status, body = await _post(client, sign(signer, location, "safe"))
    assert status == 200 and body == "success"
    assert await _inbound_rows(services) == 2


async def test_same_msgid_from_two_residents_is_two_messages(
    client: TestClient[Any, Any], services: Services
) -> None:
    """MsgId has collided between residents (simultaneous voice): the key includes FromUserName."""
    signer = _signer(services)
    for openid in ("oResidentA000000000000000001", "oResidentB000000000000000002"):
        signed = sign(signer, load("voice_recognition", openid=openid), "safe")
        status, body = await _post(client, signed)
        reply = _reply(signer, signed, body)
        assert status == 200 and reply is not None and reply["ToUserName"] == openid
        assert await _inbound_rows(services, openid) == 1


async def test_failed_first_delivery_releases_the_key(
    client: TestClient[Any, Any], services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = dialog.handle
    attempts: list[str] = []

    async def fails_once(svc: Services, inbound: Inbound, delivery: str | None = None) -> str | None:
        attempts.append(inbound.msg_id)
        if len(attempts) == 1:
            raise ConnectionError("database went away mid-message")
        return await real(svc, inbound, delivery)

    monkeypatch.setattr(dialog, "handle", fails_once)
    signer = _signer(services)
    signed = sign(signer, load("text"), "plain")
    status, body = await _post(client, signed)
    first = _reply(signer, signed, body)
    assert status == 200 and first is not None
    assert first["Content"] == services.texts.get("errors.resend")
    assert await _inbound_rows(services) == 0  # nothing half-written

    status, body = await _post(client, signed)
    retry = _reply(signer, signed, body)
    assert status == 200 and retry is not None and retry["Content"] != first["Content"]
    status, body = await _post(client, signed)
    assert _reply(signer, signed, body) == retry  # and from then on the retry's answer
    assert attempts == ["24700000000000001", "24700000000000001"]
    assert await _inbound_rows(services) == 1


async def test_retry_while_first_still_pending_answers_nothing(
    client: TestClient[Any, Any], services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past the wait, a retry answers 'success' (WeChat then shows nothing), never a duplicate."""
    real = dialog.handle
    gate = asyncio.Event()
    calls: list[str] = []

    async def slow(svc: Services, inbound: Inbound, delivery: str | None = None) -> str | None:
        calls.append(inbound.msg_id)
        await gate.wait()
        return await real(svc, inbound, delivery)

    monkeypatch.setattr(dialog, "handle", slow)
    monkeypatch.setattr(wechat, "RETRY_WAIT_S", 0.2)
    signer = _signer(services)
    signed = sign(signer, load("text"), "safe")
    first = asyncio.create_task(_post(client, signed))
    await _until(lambda: bool(calls))
    assert await _post(client, signed) == (200, "success")
    gate.set()
    status, body = await first
    assert status == 200 and _reply(signer, signed, body) is not None
    assert calls == ["24700000000000001"]
    assert await _inbound_rows(services) == 1


def _fixture_key(svc: Services) -> str:
    values = wechat.parse_xml(load("text"))
    inbound = wechat.to_inbound(values)
    assert inbound is not None
    return wechat.dedup_key(svc, inbound, values)


async def test_message_pending_in_a_stopped_process_is_handled_by_the_retry(
    client: TestClient[Any, Any], services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker killed mid-message leaves its entry pending; the retry sees its heartbeat gone and
    handles the message (its transaction had rolled back: nothing of it was kept) instead of
    answering 'success' until the entry expires."""
    monkeypatch.setattr(wechat, "RETRY_WAIT_S", 2.0)
    await services.store.for_retries().set(_fixture_key(services), {"state": "pending", "owner": "gone:4242:dead"}, 300)
    signer = _signer(services)
    signed = sign(signer, load("text"), "safe")
    status, body = await _post(client, signed)
    assert status == 200 and body != "success"
    assert _reply(signer, signed, body) is not None
    assert await _inbound_rows(services) == 1
    # A second retry now gets the same answer, from the entry the takeover completed.
    status, again = await _post(client, signed)
    assert status == 200 and _reply(signer, signed, again) == _reply(signer, signed, body)
    assert await _inbound_rows(services) == 1


async def test_message_pending_in_a_live_process_is_not_taken_over(
    client: TestClient[Any, Any], services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While the owner beats, a retry waits and answers nothing rather than handling it twice;
    this process's own heartbeat is in the store from startup."""
    assert await services.store.get(wechat.alive_key(services, wechat.OWNER)) is not None
    monkeypatch.setattr(wechat, "RETRY_WAIT_S", 0.3)
    other = "busy:4343:alive"
    await services.store.set(wechat.alive_key(services, other), {"pid": 4343}, ttl=30)
    await services.store.for_retries().set(_fixture_key(services), {"state": "pending", "owner": other}, 300)
    assert await _post(client, sign(_signer(services), load("text"), "safe")) == (200, "success")
    assert await _inbound_rows(services) == 0


async def test_answer_once_contract(services: Services) -> None:
    """Ten concurrent deliveries of one key: produce runs once, all get its answer; keys are separate."""
    runs: list[str] = []

    def producer(answer: str) -> Any:
        async def produce() -> str:
            runs.append(answer)
            await asyncio.sleep(0.05)  # stay pending while the others arrive
            return answer

        return produce

    key = services.store.key("dedup", "oContract", "1")
    got = await asyncio.gather(*(answer_once(services, key, producer(f"a{i}")) for i in range(10)))
    assert len(runs) == 1 and got == [runs[0]] * 10
    other = await answer_once(services, services.store.key("dedup", "oContract", "2"), producer("b"))
    assert other == "b" and runs[1:] == ["b"]
    none_key = services.store.key("dedup", "oContract", "3")

    async def nothing() -> None:
        return None

    assert await answer_once(services, none_key, nothing) is None
    assert await answer_once(services, none_key, producer("never")) is None  # 'no reply' is an answer
    assert "never" not in runs


async def test_answer_once_holds_the_lock_it_is_given_while_producing(services: Services) -> None:
    """produce() runs with the named lock held for it (taken with the claim on Redis): it takes
    the lock itself without waiting, nobody else can meanwhile, and it is free afterwards —
    whether produce() answered or raised."""
    name = "resident:oLocked"

    async def elsewhere() -> bool:
        try:
            async with services.store.lock(name, wait=0.1):
                return True
        except LockTimeout:
            return False

    async def produce() -> str:
        async with services.store.lock(name, wait=0.1):
            assert not await asyncio.create_task(elsewhere())
        if services.settings.redis_url:  # taken with the claim: held until the answer is kept
            assert not await asyncio.create_task(elsewhere())
        return "好"

    key = services.store.key("dedup", "oLocked", "1")
    assert await answer_once(services, key, produce, lock=name) == "好"
    assert await asyncio.create_task(elsewhere())

    async def breaks() -> str:
        raise ConnectionError("database went away mid-message")

    with pytest.raises(ConnectionError):
        await answer_once(services, services.store.key("dedup", "oLocked", "2"), breaks, lock=name)
    assert await asyncio.create_task(elsewhere())
    assert await services.store.for_retries().get(services.store.key("dedup", "oLocked", "2")) is None


# --- two app instances on one PostgreSQL + Redis ------------------------------------------------


@pytest.fixture
async def two_instances(
    pg_url: str, tmp_path: Path, clock: FakeClock
) -> AsyncIterator[tuple[list[Services], list[TestClient[Any, Any]]]]:
    """Two apps, each with its own services (engine, Redis client), sharing database and key prefix."""
    await truncate_all(pg_url)
    settings = make_settings("pg_redis", tmp_path, pg_url)
    prefix = f"cbt{uuid.uuid4().hex[:8]}"
    svcs = [open_services(settings, clock=clock) for _ in range(2)]
    for svc in svcs:
        svc.store.with_prefix(prefix)
    clients = [TestClient(TestServer(create_app(settings, services=svc))) for svc in svcs]
    for c in clients:
        await c.start_server()
    yield svcs, clients
    for c in clients:
        await c.close()
    for svc in svcs:
        await svc.close()


async def test_two_instances_one_handling_both_answer_the_same(
    two_instances: tuple[list[Services], list[TestClient[Any, Any]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    svcs, clients = two_instances
    real = dialog.handle
    gate = asyncio.Event()
    handled_by: list[int] = []

    async def gated(svc: Services, inbound: Inbound, delivery: str | None = None) -> str | None:
        handled_by.append(svcs.index(svc))
        await gate.wait()  # hold the first delivery until the second is waiting on it
        return await real(svc, inbound, delivery)

    monkeypatch.setattr(dialog, "handle", gated)
    signer = _signer(svcs[0])
    signed = sign(signer, load("text"), "safe")
    before = _duplicates()
    tasks = [asyncio.create_task(_post(c, signed)) for c in clients]
    await _until(lambda: _duplicates() > before and bool(handled_by))
    gate.set()
    results = await asyncio.gather(*tasks)
    assert [status for status, _ in results] == [200, 200]
    replies = [_reply(signer, signed, body) for _, body in results]
    assert replies[0] is not None and replies[0] == replies[1]
    assert len(handled_by) == 1
    assert await _inbound_rows(svcs[0]) == 1


async def test_two_instances_flooded_with_retries(
    two_instances: tuple[list[Services], list[TestClient[Any, Any]]]
) -> None:
    """Eight deliveries of each of three messages, spread over both instances, all at once."""
    svcs, clients = two_instances
    signer = _signer(svcs[0])
    posts = []
    for n, name in enumerate(("text", "voice_recognition", "event_click")):
        xml = load(name, openid=f"oFlood{n:022d}")
        posts += [(clients[i % 2], sign(signer, xml, "safe")) for i in range(8)]
    results = await asyncio.gather(*(_post(c, s) for c, s in posts))
    by_message: dict[str, list[Any]] = {}
    for (_, signed), (status, body) in zip(posts, results):
        assert status == 200
        reply = _reply(signer, signed, body)
        assert reply is not None
        by_message.setdefault(reply["ToUserName"], []).append(reply)
    assert len(by_message) == 3
    for openid, replies in by_message.items():
        assert all(r == replies[0] for r in replies), openid
        assert await _inbound_rows(svcs[1], openid) == 1


async def test_a_retry_in_the_same_process_is_woken_by_the_first_delivery(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A retry arriving where the first delivery is being handled waits on it, not on the store's
    poll: with polling made far slower than the test's limit, it still gets the first answer as
    soon as that is written, and so does a retry of a first delivery that failed (it handles the
    message itself)."""
    monkeypatch.setattr(wechat, "_POLL_S", 60.0)
    gate = asyncio.Event()
    runs: list[str] = []

    async def first() -> str:
        runs.append("first")
        await gate.wait()
        return "答复"

    async def second() -> str:
        runs.append("second")
        return "不该运行"

    key = services.store.key("dedup", "oWake", "1")
    delivery = asyncio.create_task(answer_once(services, key, first, wait=30.0))
    await _until(lambda: bool(runs))
    retry = asyncio.create_task(answer_once(services, key, second, wait=30.0))
    await asyncio.sleep(0)
    gate.set()
    assert await asyncio.wait_for(asyncio.gather(delivery, retry), timeout=10) == ["答复", "答复"]
    assert runs == ["first"]

    failing = asyncio.Event()

    async def breaks() -> str:
        runs.append("breaks")
        await failing.wait()
        raise ConnectionError("database went away")

    async def recovers() -> str:
        runs.append("recovers")
        return "重试答复"

    key = services.store.key("dedup", "oWake", "2")
    broken = asyncio.create_task(answer_once(services, key, breaks, wait=30.0))
    await _until(lambda: "breaks" in runs)
    retry = asyncio.create_task(answer_once(services, key, recovers, wait=30.0))
    await asyncio.sleep(0)
    failing.set()
    with pytest.raises(ConnectionError):
        await broken
    assert await asyncio.wait_for(retry, timeout=10) == "重试答复"
    assert runs[-2:] == ["breaks", "recovers"]


async def test_a_retry_that_just_missed_its_first_delivery_looks_again_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The first delivery in this process can settle between the retry's read of the pending
    entry and its wait: then nothing is in hand to wait on, and the retry must not sleep a whole
    poll interval (made 60 s here) before reading the answer."""
    monkeypatch.setattr(wechat, "_POLL_S", 60.0)
    mine = {"state": "pending", "owner": wechat.OWNER}
    await asyncio.wait_for(wechat._settled_or_poll("k-settled", 30.0, mine), timeout=5)
    elsewhere = {"state": "pending", "owner": "another-process"}
    with pytest.raises(asyncio.TimeoutError):  # a delivery in another process: the poll interval
        await asyncio.wait_for(wechat._settled_or_poll("k-elsewhere", 30.0, elsewhere), timeout=0.2)
