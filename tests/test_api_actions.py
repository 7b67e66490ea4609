"""POST /api/tickets/{number}/reply and /transition (CONTRACT): 401/400/404/409/200, bearer token
and console sessions (CSRF header on cookie writes), on both backends."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select

from bot.app import create_app
from bot.clock import FakeClock
from bot.console import auth
from bot.services import Services, open_services
from storage.models import Resident
from tests.staff_support import audit_rows, load_roster, logged_in, make_resident, make_ticket, outbox_rows

TOKEN = "api-token-for-tests"
BEARER = {"Authorization": f"Bearer {TOKEN}"}
Client = TestClient[Any, Any]


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    """An API token for these tests."""
    return {"api_token": TOKEN}


async def _ticket(services: Services, status: str = "escalated") -> str:
    await make_resident(services, "o_api")
    return await make_ticket(services, "o_api", status=status)


async def test_unauthorized_without_token_or_session(client: Client, services: Services) -> None:
    number = await _ticket(services)
    for path, body in ((f"/api/tickets/{number}/reply", {"text": "你好"}),
                       (f"/api/tickets/{number}/transition", {"action": "close"})):
        resp = await client.post(path, json=body)
        assert resp.status == 401 and (await resp.json())["error"]
        resp = await client.post(path, json=body, headers={"Authorization": "Bearer wrong"})
        assert resp.status == 401
    assert await outbox_rows(services) == []


async def test_reply_with_the_bearer_token(client: Client, services: Services, clock: FakeClock) -> None:
    number = await _ticket(services)
    resp = await client.post(f"/api/tickets/{number}/reply", json={"text": "您好，明天上午处理。"}, headers=BEARER)
    assert resp.status == 200
    assert await resp.json() == {"number": number, "queued": True, "via": "custom"}
    [push] = await outbox_rows(services, "wechat")
    assert push.target == "o_api" and "明天上午处理" in push.payload["text"]
    [row] = await audit_rows(services, "ticket.reply")
    assert row.actor == "api"
    one = await (await client.get(f"/api/tickets/{number}", headers=BEARER)).json()
    assert [m["text"] for m in one["conversation"] if m["author"] == "api"] == ["您好，明天上午处理。"]
    clock.advance(hours=72)
    resp = await client.post(f"/api/tickets/{number}/reply", json={"text": "跟进一下"}, headers=BEARER)
    assert (await resp.json())["via"] == "template"


@pytest.mark.parametrize("body", [b"{not json", b"[1, 2]", b'"text"', b"{}", b'{"text": ""}', b'{"text": 5}', "\u00ff".encode("latin-1")])
async def test_reply_bad_bodies_answer_400(client: Client, services: Services, body: bytes) -> None:
    number = await _ticket(services)
    resp = await client.post(
        f"/api/tickets/{number}/reply", data=body, headers={**BEARER, "Content-Type": "application/json"},
    )
    assert resp.status == 400 and "error" in await resp.json()
    assert await outbox_rows(services) == []


async def test_reply_refusals(client: Client, services: Services, clock: FakeClock) -> None:
    number = await _ticket(services)
    resp = await client.post(f"/api/tickets/{number}/reply", json={"text": "长" * 601}, headers=BEARER)
    assert resp.status == 400
    resp = await client.post("/api/tickets/20990101-0001/reply", json={"text": "你好"}, headers=BEARER)
    assert resp.status == 404
    async with services.sessions() as session, session.begin():
        resident = await session.scalar(select(Resident).where(Resident.openid == "o_api"))
        assert resident is not None
        resident.erased_at = clock.now()
    resp = await client.post(f"/api/tickets/{number}/reply", json={"text": "你好"}, headers=BEARER)
    assert resp.status == 409
    resp = await client.post(f"/api/tickets/{number}/reply", data=b"x" * 70_000, headers=BEARER)
    assert resp.status == 413
    assert await outbox_rows(services) == []


async def test_transitions(client: Client, services: Services) -> None:
    await load_roster(services)
    number = await _ticket(services, status="open")
    url = f"/api/tickets/{number}/transition"
    for body in ({}, {"action": ""}, {"action": "explode"}, {"action": "return"}, {"action": "assign"},
                 {"action": "assign", "assignee": 7}, {"action": "assign", "assignee": "canteen"},
                 {"action": "close", "note": ["x"]}):
        resp = await client.post(url, json=body, headers=BEARER)
        assert resp.status == 400, body
    assert (await client.post(url, json={"action": "accept"}, headers=BEARER)).status == 409
    assert (await client.post("/api/tickets/20990101-0001/transition", json={"action": "close"}, headers=BEARER)).status == 404
    resp = await client.post(url, json={"action": "assign", "assignee": "wangwei", "note": "请今天处理"}, headers=BEARER)
    assert resp.status == 200
    body = await resp.json()
    assert (body["number"], body["status"], body["assignee"]) == (number, "dispatched", "wangwei")
    assert [c.target for c in await outbox_rows(services, "wecom")] == ["wangwei"]
    # 改派 to the owner it already has: 409, nothing changed, no second card (it would only
    # restart the owner's 接单 window), audited as same_assignee
    resp = await client.post(url, json={"action": "assign", "assignee": "wangwei"}, headers=BEARER)
    assert resp.status == 409 and "已经是这张工单的负责人" in (await resp.json())["error"]
    assert [c.target for c in await outbox_rows(services, "wecom")] == ["wangwei"]
    # the contract's actions with no more than {"action": ...}: 关闭 too (outside tools rely on it;
    # the console's form asks for a reason, WeCom's 关闭 N too)
    for action, status in (("accept", "accepted"), ("resolve", "resolved"), ("reopen", "reopened"),
                           ("escalate", "escalated"), ("close", "closed")):
        resp = await client.post(url, json={"action": action}, headers=BEARER)
        assert resp.status == 200 and (await resp.json())["status"] == status, action
    resp = await client.post(url, json={"action": "cancel"}, headers=BEARER)
    assert resp.status == 409 and "已关闭" in (await resp.json())["error"]
    rows = [r for r in await audit_rows(services) if r.actor == "api"]
    assert [r.action for r in rows if not r.action.endswith(".refused")] == [
        "ticket.assign", "ticket.accept", "ticket.resolve", "ticket.reopen", "ticket.escalate", "ticket.close"]
    # the refusals of well-formed actions are audited with why (a malformed body is no action: 400, not audited)
    assert [(r.action, r.detail["reason"]) for r in rows if r.action.endswith(".refused")] == [
        ("ticket.assign.refused", "assignee_not_allowed"), ("ticket.accept.refused", "status_forbids"),
        ("ticket.close.refused", "unknown_ticket"), ("ticket.assign.refused", "same_assignee"), ("ticket.cancel.refused", "status_forbids")]


async def test_a_transition_with_what_the_client_saw_is_refused_when_it_changed(
    client: Client, services: Services
) -> None:
    """The console's stale-page check on the API: with "expect", an action on a ticket another
    clerk changed meanwhile is a 409 naming the change, not a silent overwrite."""
    await load_roster(services)
    number = await _ticket(services, status="open")
    url = f"/api/tickets/{number}/transition"
    for expect in ("open", {"status": "open"}, {"status": 1, "assignee": None}, {"status": "open", "assignee": 3}):
        resp = await client.post(url, json={"action": "close", "expect": expect}, headers=BEARER)
        assert resp.status == 400, expect
    seen = {"status": "open", "assignee": None}
    first = await client.post(url, json={"action": "assign", "assignee": "wangwei", "expect": seen}, headers=BEARER)
    assert first.status == 200
    late = await client.post(url, json={"action": "assign", "assignee": "sunli", "expect": seen}, headers=BEARER)
    assert late.status == 409 and "王伟" in (await late.json())["error"]
    assert (await _api_ticket(client, number))["assignee"] == "wangwei"  # not overwritten
    now = {"status": "dispatched", "assignee": "wangwei"}
    assert (await client.post(url, json={"action": "assign", "assignee": "sunli", "expect": now}, headers=BEARER)).status == 200


class _HeldTransaction:
    """A second process's session factory whose next action waits: once armed, its first session
    (the request's look at the ticket on arrival) runs, the next waits until `go` is set — so
    another caller's action lands in between, as when two callers send at the same moment."""

    def __init__(self, sessions: Any) -> None:
        self.sessions, self.opened = sessions, -1
        self.waiting, self.go = asyncio.Event(), asyncio.Event()

    def arm(self) -> None:
        """Hold the second session opened from now on."""
        self.opened = 0

    @contextlib.asynccontextmanager
    async def __call__(self) -> AsyncIterator[Any]:
        if self.opened >= 0:
            self.opened += 1
        if self.opened == 2:
            self.waiting.set()
            await self.go.wait()
        async with self.sessions() as session:
            yield session

    async def close(self) -> None:
        await self.sessions.close()


async def test_a_transition_that_lost_a_race_is_refused_with_the_ticket_as_it_now_is(
    client: Client, services: Services, clock: FakeClock,
) -> None:
    """Two callers (two worker processes) act on the same dispatched job at once, neither with
    "expect": the first 接单 is done; the other's 升级, decided on the job as it found it, is
    refused with 409 naming the change and carrying the ticket as it now is — it was carried out
    on the accepted job nobody had shown it. Sent again, now knowingly, it is done."""
    await load_roster(services)
    number = await _ticket(services, status="open")
    url = f"/api/tickets/{number}/transition"
    assert (await client.post(url, json={"action": "assign", "assignee": "wangwei"}, headers=BEARER)).status == 200
    opened = open_services(services.settings, clock=clock)
    held = _HeldTransaction(opened.sessions)
    other = dataclasses.replace(opened, sessions=held)
    try:
        async with TestClient(TestServer(create_app(other.settings, services=other))) as second:
            held.arm()
            late = asyncio.create_task(second.post(url, json={"action": "escalate", "note": "太慢"}, headers=BEARER))
            await asyncio.wait_for(held.waiting.wait(), 30)  # it has read the job as dispatched
            first = await client.post(url, json={"action": "accept"}, headers=BEARER)
            assert first.status == 200 and (await first.json())["status"] == "accepted"
            held.go.set()
            resp = await asyncio.wait_for(late, 30)
            body = await resp.json()
            assert resp.status == 409, body
            assert "未执行" in body["error"] and services.texts.get("staff_actions.status.accepted") in body["error"]
            assert (body["ticket"]["number"], body["ticket"]["status"], body["ticket"]["assignee"]) == (
                number, "accepted", "wangwei")
            again = await second.post(url, json={"action": "escalate", "note": "太慢"}, headers=BEARER)
            assert again.status == 200 and (await again.json())["status"] == "escalated"
    finally:
        await other.close()
    one = await _api_ticket(client, number)
    assert [e["action"] for e in one["events"] if e["action"] in ("accept", "escalate")] == ["accept", "escalate"]
    refused = await audit_rows(services, "ticket.escalate.refused")
    assert [(r.actor, r.detail["reason"]) for r in refused] == [("api", "stale")]


async def test_two_callers_at_once_act_once_on_both_backends(client: Client, services: Services, clock: FakeClock) -> None:
    """Two callers in two processes send 接单 for the same job at the same moment: one is done,
    the other is a 409 with the accepted ticket — never two 接单 events or two pushes."""
    await load_roster(services)
    number = await _ticket(services, status="open")
    url = f"/api/tickets/{number}/transition"
    assert (await client.post(url, json={"action": "assign", "assignee": "wangwei"}, headers=BEARER)).status == 200
    other = open_services(services.settings, clock=clock)
    try:
        async with TestClient(TestServer(create_app(other.settings, services=other))) as second:
            answers = await asyncio.gather(*(c.post(url, json={"action": "accept"}, headers=BEARER)
                                             for c in (client, second)))
            bodies = [await r.json() for r in answers]
    finally:
        await other.close()
    assert sorted(r.status for r in answers) == [200, 409], bodies
    [refused] = [b for r, b in zip(answers, bodies) if r.status == 409]
    assert refused["ticket"]["status"] == "accepted" and refused["error"]
    one = await _api_ticket(client, number)
    assert [e["action"] for e in one["events"]].count("accept") == 1


async def _api_ticket(client: Client, number: str) -> dict:
    resp = await client.get(f"/api/tickets/{number}", headers=BEARER)
    return dict(await resp.json())


async def test_console_session_on_the_api(client: Client, services: Services) -> None:
    number = await _ticket(services)
    await auth.create_user(services, "liu", "staffpass1", "staff")
    await auth.create_user(services, "ro", "readonly1", "readonly")
    csrf = await logged_in(client, "liu", "staffpass1")
    listed = await client.get("/api/tickets")
    assert listed.status == 200 and [t["number"] for t in await listed.json()] == [number]
    url = f"/api/tickets/{number}/reply"
    resp = await client.post(url, json={"text": "你好"})
    assert resp.status == 403 and "CSRF" in (await resp.json())["error"]
    resp = await client.post(url, json={"text": "你好"}, headers={"X-CSRF-Token": "forged"})
    assert resp.status == 403
    resp = await client.post(url, json={"text": "你好"}, headers={"X-CSRF-Token": csrf})
    assert resp.status == 200 and (await resp.json())["via"] == "custom"
    [row] = await audit_rows(services, "ticket.reply")
    assert row.actor == "liu"

    client.session.cookie_jar.clear()
    csrf = await logged_in(client, "ro", "readonly1")
    assert (await client.get(f"/api/tickets/{number}")).status == 200
    resp = await client.post(f"/api/tickets/{number}/transition", json={"action": "close"}, headers={"X-CSRF-Token": csrf})
    assert resp.status == 403
    resp = await client.post(f"/api/tickets/{number}/transition", json={"action": "close", "note": "重复"}, headers={**BEARER, "X-CSRF-Token": "x"})
    assert resp.status == 200  # the bearer token needs no CSRF header, whatever cookie rides along


async def test_read_only_users_get_phones_masked_from_the_api_too(client: Client, services: Services) -> None:
    """The console masks phones for read-only users; the same session on /api saw them whole."""
    await make_resident(services, "o_api_ro")
    number = await make_ticket(services, "o_api_ro", summary="灯坏了 电话13812345678",
                               fields={"description": "灯坏了", "phone": "13812345678"})
    await auth.create_user(services, "ro2", "readonly1", "readonly")
    await auth.create_user(services, "st2", "staffpass1", "staff")
    await logged_in(client, "ro2", "readonly1")
    for url in (f"/api/tickets/{number}", "/api/tickets"):
        text = await (await client.get(url)).text()
        assert "13812345678" not in text and "138****5678" in text, url
    client.session.cookie_jar.clear()
    await logged_in(client, "st2", "staffpass1")
    assert "13812345678" in await (await client.get(f"/api/tickets/{number}")).text()  # staff call back
    client.session.cookie_jar.clear()
    assert "13812345678" in await (await client.get(f"/api/tickets/{number}", headers=BEARER)).text()


async def test_reply_to_all_reporters_through_the_api(client: Client, services: Services) -> None:
    """{"all": true}: every resident who reported the burst, each by their own channel, the
    unreachable counted; "expect" (with "reporters") makes an outdated client's answer a 409;
    read-only console users are refused."""
    from tests.test_worker_words import burst

    await load_roster(services)
    job, kids = await burst(services)
    url = f"/api/tickets/{job}/reply"
    said = "抢修队已到场。"
    for body in ({"text": said, "all": "yes"}, {"text": said, "all": True, "expect": {"status": "dispatched"}},
                 {"text": said, "all": True, "expect": {"status": "dispatched", "assignee": "wangwei", "reporters": "5"}}):
        resp = await client.post(url, json=body, headers=BEARER)
        assert resp.status == 400, body
    stale = {"status": "dispatched", "assignee": "wangwei", "reporters": 4}
    resp = await client.post(url, json={"text": said, "all": True, "expect": stale}, headers=BEARER)
    assert resp.status == 409 and "反映居民由 4 位变为 5 位" in (await resp.json())["error"]
    resp = await client.post(url, json={"text": said, "all": True, "expect": {"status": "accepted", "assignee": "wangwei"}},
                             headers=BEARER)
    assert resp.status == 409 and "状态由“已接单”变为“已派单”" in (await resp.json())["error"]
    assert [o for o in await outbox_rows(services, "wechat") if said in o.payload["text"]] == []
    await auth.create_user(services, "ro", "readonly1", "readonly")
    csrf = await logged_in(client, "ro", "readonly1")
    resp = await client.post(url, json={"text": said, "all": True}, headers={"X-CSRF-Token": csrf})
    assert resp.status == 403
    client.session.cookie_jar.clear()
    resp = await client.post(f"/api/tickets/{kids[0]}/reply", json={"text": said, "all": True, "expect": stale | {"reporters": 5}},
                             headers=BEARER)
    assert resp.status == 200
    assert await resp.json() == {"number": job, "queued": True, "all": True, "reached": 3, "missed": 2,
                                 "via": {"custom": 1, "template": 2}}
    assert sorted(o.target for o in await outbox_rows(services, "wechat") if said in o.payload["text"]) == ["oW1", "oW2", "oW5"]
    [row] = await audit_rows(services, "ticket.reply_all")
    assert (row.actor, row.target, row.detail["reached"]) == ("api", job, 3)


async def test_a_linked_report_is_acted_on_through_its_job(client: Client, services: Services) -> None:
    """POST /transition on a report linked to a job (办结 of one of five reports of a water cut)
    was carried out for that report alone, while WeCom refuses it: now 409 naming the job, nothing
    changed; 撤销 (a duplicate filed by mistake) is still carried out, the job going on."""
    from tests.test_worker_words import burst

    await load_roster(services)
    job, kids = await burst(services)
    for action in ("resolve", "accept", "close", "escalate"):
        resp = await client.post(f"/api/tickets/{kids[0]}/transition", json={"action": action, "note": "水来了"},
                                 headers=BEARER)
        error = (await resp.json())["error"]
        assert resp.status == 409 and f"是并入工单 {job} 的同一问题反映" in error and f"请对工单 {job} 操作" in error, action
    resp = await client.post(f"/api/tickets/{kids[0]}/transition", json={"action": "assign", "assignee": "lina"},
                             headers=BEARER)
    assert resp.status == 409
    resp = await client.post(f"/api/tickets/{kids[1]}/transition", json={"action": "cancel", "note": "重复提交"},
                             headers=BEARER)
    assert resp.status == 200 and (await resp.json())["status"] == "cancelled"
    resp = await client.post(f"/api/tickets/{job}/transition", json={"action": "resolve", "note": "水管已修好"},
                             headers=BEARER)
    assert resp.status == 200 and (await resp.json())["status"] == "resolved"
    got = [await (await client.get(f"/api/tickets/{n}", headers=BEARER)).json() for n in kids]
    assert [g["status"] for g in got] == ["resolved", "cancelled", "resolved", "resolved"]
    assert [r.target for r in await audit_rows(services, "ticket.resolve")] == [job]


async def test_a_refused_action_on_a_linked_report_is_audited_with_why(client: Client, services: Services) -> None:
    """办结 / 接单 / 关闭 / 吹哨 of a report merged into a job answered 409 and left no trace in the
    audit log: each refusal is now a row (ticket.resolve.refused …) by who tried, naming the job
    and why, shown in words on the audit page; nothing else is written."""
    from tests.test_worker_words import burst

    await load_roster(services)
    job, kids = await burst(services)
    before = len(await audit_rows(services))
    for action in ("resolve", "accept", "close", "escalate"):
        resp = await client.post(f"/api/tickets/{kids[0]}/transition", json={"action": action}, headers=BEARER)
        assert resp.status == 409, action
    rows = (await audit_rows(services))[before:]
    assert [r.action for r in rows] == [f"ticket.{a}.refused" for a in ("resolve", "accept", "close", "escalate")]
    for row in rows:
        assert (row.actor, row.target, row.detail["reason"], row.detail["job"]) == ("api", kids[0], "linked_report", job)
        assert f"请对工单 {job} 操作" in row.detail["message"]
    resp = await client.post(f"/api/tickets/{job}/transition", json={"action": "reopen"}, headers=BEARER)
    assert resp.status == 409  # the status forbids it: audited too
    [row] = await audit_rows(services, "ticket.reopen.refused")
    assert (row.target, row.detail["reason"]) == (job, "status_forbids")
    resp = await client.post("/api/tickets/20991231-0001/reply", json={"text": "您好"}, headers=BEARER)
    assert resp.status == 404
    [row] = await audit_rows(services, "ticket.reply.refused")
    assert (row.target, row.detail["reason"]) == ("20991231-0001", "unknown_ticket")
    await auth.create_user(services, "boss", "bosspass1", "admin")
    await logged_in(client, "boss", "bosspass1")
    page = await (await client.get("/console/audit", params={"action": "ticket.resolve.refused"})).text()
    assert '<span class="audit-action" title="ticket.resolve.refused">办结（被拒绝）</span>' in page
    assert "<b>拒绝原因</b>：工单" in page and f"请对工单 {job} 操作" in page and f"<b>主工单</b>：{job}" in page


async def test_a_read_only_session_writing_through_the_api_is_refused_and_audited(
    client: Client, services: Services,
) -> None:
    """A read-only console user's write on /api answered 403 unaudited; now audited as the console's forms are."""
    number = await _ticket(services)
    await auth.create_user(services, "ro", "readonly1", "readonly")
    csrf = await logged_in(client, "ro", "readonly1")
    resp = await client.post(f"/api/tickets/{number}/reply", json={"text": "您好"}, headers={"X-CSRF-Token": csrf})
    assert resp.status == 403
    [row] = await audit_rows(services, "console.role_refused")
    assert (row.actor, row.target, row.detail["needed"]) == ("ro", f"/api/tickets/{number}/reply", "staff")
    assert await audit_rows(services, "ticket.reply") == []
