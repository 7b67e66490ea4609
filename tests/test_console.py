"""The staff console over HTTP, on both backends: login, lockout, CSRF, roles, the queue, the
ticket page and its actions, escaping of what residents wrote, the dashboard and the audit log."""

from __future__ import annotations

import re
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from bot import outbox, staff_actions, tickets
from bot.clock import FakeClock
from bot.console import auth
from bot.services import Services
from storage.models import Message, OutboxItem, Resident, StaffUser
from tests.staff_support import (
    audit_rows, load_roster, logged_in, login, make_resident, make_ticket, outbox_rows,
)

XSS = "<script>alert(1)</script>"
Client = TestClient[Any, Any]


async def _users(services: Services) -> None:
    await auth.create_user(services, "liu", "staffpass1", "staff", display_name="刘敏")
    await auth.create_user(services, "ro", "readonly1", "readonly", display_name="只读")


async def _handoff(services: Services, clock: FakeClock, said: str = "我要找人工，楼上天天漏水") -> str:
    await make_resident(services, "o_hand")
    async with services.sessions() as session, session.begin():
        session.add(Message(openid="o_hand", direction="in", msg_type="text", content=said, created_at=clock.now()))
        session.add(Message(openid="o_hand", direction="out", msg_type="reply", content="好的，马上为您转人工。", created_at=clock.now()))
    clock.advance(seconds=5)
    return await make_ticket(services, "o_hand", kind="handoff", status="escalated", summary="转人工：楼上漏水", building="5")


async def test_first_login_seeds_the_demo_admin_and_is_audited(client: Client, services: Services) -> None:
    page = await client.get("/console", allow_redirects=False)
    assert page.status == 303 and page.headers["Location"].startswith("/console/login?next=")
    resp = await login(client, "admin", "community123")
    assert resp.status == 303 and resp.headers["Location"] == "/console"
    cookie = resp.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
    queue = await client.get("/console")
    assert queue.status == 200 and "待处理队列" in await queue.text()
    assert "script-src 'self'" in queue.headers["Content-Security-Policy"]
    assert queue.headers["X-Frame-Options"] == "DENY" and queue.headers["Cache-Control"] == "no-store"
    actions = [r.action for r in await audit_rows(services) if r.action != "roster.import"]
    assert actions == ["user.create", "console.login"]
    async with services.sessions() as session:
        admin = await session.scalar(select(StaffUser).where(StaffUser.username == "admin"))
    assert admin is not None and admin.role == "admin" and admin.password_hash.startswith("$2")


async def test_wrong_password_and_lockout_follow_the_clock(client: Client, services: Services, clock: FakeClock) -> None:
    await _users(services)
    for _ in range(auth.MAX_FAILURES - 1):
        resp = await login(client, "liu", "wrong-pass")
        assert resp.status == 401 and "用户名或密码不正确" in await resp.text()
    resp = await login(client, "liu", "wrong-pass")
    assert resp.status == 429 and "已锁定" in await resp.text()
    resp = await login(client, "liu", "staffpass1")  # the right password is refused while locked
    assert resp.status == 429
    clock.advance(minutes=14, seconds=59)
    assert (await login(client, "liu", "staffpass1")).status == 429
    clock.advance(seconds=2)
    assert (await login(client, "liu", "staffpass1")).status == 303
    rows = await audit_rows(services)
    failed = [r for r in rows if r.action == "console.login_failed"]
    assert len(failed) == auth.MAX_FAILURES and "locked_until" in failed[-1].detail
    assert [r.action for r in rows].count("console.login_locked") == 2
    assert rows[-1].action == "console.login"
    client.session.cookie_jar.clear()
    resp = await login(client, "nobody", "whatever1")
    assert resp.status == 401  # unknown names answer exactly like a wrong password


async def test_a_password_typed_as_the_username_never_reaches_the_audit_log(
    client: Client, services: Services, clock: FakeClock,
) -> None:
    """An unknown username is audited as its tag: people type their password into that field."""
    await _users(services)
    typed = "Linxiao-2026!"
    for _ in range(auth.IP_MAX_FAILURES):
        assert (await login(client, typed, "staffpass1")).status == 401
    assert (await login(client, typed, "staffpass1")).status == 429  # the address is throttled now
    assert (await login(client, "liu", "wrong-pass")).status == 429
    rows = await audit_rows(services)
    failed = [r for r in rows if r.action == "console.login_failed"]
    throttled = [r for r in rows if r.action == "console.login_throttled"]
    tag = auth.unknown_username(typed.lower())
    assert tag.startswith("unknown:") and len(failed) == auth.IP_MAX_FAILURES and len(throttled) == 1
    assert {(r.actor, r.target, r.detail["known"]) for r in failed} == {(tag, tag, False)}
    assert (throttled[0].actor, throttled[0].target) == (tag, tag)
    assert all(typed.lower() not in f"{r.actor} {r.target} {r.detail}" for r in rows)
    clock.advance(seconds=auth.IP_WINDOW.total_seconds() + 1)
    assert (await login(client, "liu", "wrong-pass")).status == 401  # a known name is audited as it is
    assert [(r.actor, r.detail["known"]) for r in await audit_rows(services, "console.login_failed")][-1] == ("liu", True)
    await auth.create_user(services, "boss", "bosspass1", "admin")
    await logged_in(client, "boss", "bosspass1")
    page = await (await client.get("/console/audit")).text()
    assert tag in page and typed.lower() not in page.lower()


async def test_login_form_needs_its_csrf_token(client: Client, services: Services) -> None:
    await _users(services)
    await client.get("/console/login")
    resp = await client.post(
        "/console/login", data={"username": "liu", "password": "staffpass1", "csrf_token": "forged"},
        allow_redirects=False,
    )
    assert resp.status == 403
    assert (await client.get("/console", allow_redirects=False)).status == 303


async def test_console_posts_without_csrf_are_refused_and_audited(
    client: Client, services: Services, clock: FakeClock,
) -> None:
    await _users(services)
    number = await _handoff(services, clock)
    await logged_in(client, "liu", "staffpass1")
    resp = await client.post(f"/console/tickets/{number}/reply", data={"text": "你好"}, allow_redirects=False)
    assert resp.status == 403 and "CSRF" in await resp.text()
    resp = await client.post(
        f"/console/tickets/{number}/note", data={"text": "x", "csrf_token": "guess"}, allow_redirects=False,
    )
    assert resp.status == 403
    assert await outbox_rows(services) == []
    assert [r.action for r in await audit_rows(services, "console.csrf_refused")] == ["console.csrf_refused"] * 2


async def test_roles(client: Client, services: Services, clock: FakeClock) -> None:
    await _users(services)
    number = await _handoff(services, clock)
    csrf = await logged_in(client, "ro", "readonly1")
    page = await client.get(f"/console/tickets/{number}")
    body = await page.text()
    assert page.status == 200 and "只读账号" in body and "发送答复" not in body
    assert "138****5678" in body and "13812345678" not in body  # read-only users see phones masked
    resp = await client.post(f"/console/tickets/{number}/reply", data={"text": "你好", "csrf_token": csrf}, allow_redirects=False)
    assert resp.status == 403 and await outbox_rows(services) == []
    assert (await client.get("/console/audit")).status == 403
    assert (await client.get("/console/users")).status == 403
    assert (await client.get("/console/dashboard")).status == 200

    client.session.cookie_jar.clear()
    csrf = await logged_in(client, "liu", "staffpass1")
    body = await (await client.get(f"/console/tickets/{number}")).text()
    assert "发送答复" in body and "13812345678" in body
    assert (await client.get("/console/users")).status == 403
    assert (await client.get("/console/audit")).status == 403


async def test_admin_manages_users_and_reads_the_audit_log(client: Client, services: Services, clock: FakeClock) -> None:
    await _users(services)
    await auth.create_user(services, "boss", "bosspass1", "admin")
    csrf = await logged_in(client, "boss", "bosspass1")
    resp = await client.post("/console/users", data={"username": "wang", "password": "short", "role": "staff", "csrf_token": csrf})
    assert "密码长度" in await resp.text()
    resp = await client.post("/console/users", data={"username": "wang", "password": "wangpass1", "role": "staff", "csrf_token": csrf})
    assert "已添加用户 wang" in await resp.text()
    async with services.sessions() as session:
        ids = {u.username: u.id for u in (await session.execute(select(StaffUser))).scalars()}
    await client.post(f"/console/users/{ids['wang']}", data={"op": "role", "role": "readonly", "csrf_token": csrf})
    for _ in range(auth.MAX_FAILURES):
        await auth.attempt_login(services, "ro", "nope-nope")
    assert (await auth.attempt_login(services, "ro", "readonly1")).reason == "locked"
    resp = await client.post(f"/console/users/{ids['ro']}", data={"op": "reset", "password": "fresh-pass1", "csrf_token": csrf})
    assert "锁定已解除" in await resp.text()
    resp = await client.post(f"/console/users/{ids['boss']}", data={"op": "delete", "csrf_token": csrf})
    assert "不能修改自己" in await resp.text()
    await client.post(f"/console/users/{ids['liu']}", data={"op": "delete", "csrf_token": csrf})
    audit_page = await (await client.get("/console/audit")).text()
    for action in ("user.create", "user.role", "user.password_reset", "user.delete", "console.login_failed"):
        assert action in audit_page
    async with services.sessions() as session:
        users = {u.username: u.role for u in (await session.execute(select(StaffUser))).scalars()}
    assert users == {"boss": "admin", "ro": "readonly", "wang": "readonly"}
    client.session.cookie_jar.clear()
    assert (await login(client, "ro", "fresh-pass1")).status == 303


async def test_queue_shows_the_handoff_with_its_conversation(client: Client, services: Services, clock: FakeClock) -> None:
    await _users(services)
    await load_roster(services)
    number = await _handoff(services, clock)
    quiet = await make_ticket(services, None, status="open", summary="已派出的工单")
    from bot import staff_actions

    await staff_actions.staff_transition(services, quiet, "assign", "liu", assignee="wangwei")
    await logged_in(client, "liu", "staffpass1")
    body = await (await client.get("/console")).text()
    assert number in body and "转人工" in body and "我要找人工，楼上天天漏水" in body
    assert quiet not in body  # dispatched and in time: not the staff's to handle now
    page = await (await client.get(f"/console/tickets/{number}")).text()
    assert page.index("我要找人工，楼上天天漏水") < page.index("好的，马上为您转人工。") < page.index('<span class="ev">受理</span>')


async def test_resident_text_is_escaped_everywhere(client: Client, services: Services, clock: FakeClock) -> None:
    await _users(services)
    number = await _handoff(services, clock, said=f"灯坏了{XSS}")
    async with services.sessions() as session, session.begin():
        from bot import tickets

        ticket = await tickets.get_by_number(session, number)
        assert ticket is not None
        ticket.summary = f"转人工：{XSS}"
        ticket.fields = {"text": XSS, "collected": {"地点": XSS}}
    await logged_in(client, "liu", "staffpass1")
    for path in ("/console", f"/console/tickets/{number}", "/console/tickets?q=script"):
        body = await (await client.get(path)).text()
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body, path
        assert XSS not in body, path
    listed = await (await client.get("/console/tickets?q=script")).text()
    assert number in listed


async def test_answering_from_the_ticket_page(client: Client, services: Services, clock: FakeClock) -> None:
    await _users(services)
    number = await _handoff(services, clock)
    csrf = await logged_in(client, "liu", "staffpass1")
    page = await (await client.get(f"/console/tickets/{number}")).text()
    assert "客服消息" in page and "常用回复" in page
    resp = await client.post(f"/console/tickets/{number}/reply", data={"text": "您好，已安排师傅下午上门。", "csrf_token": csrf})
    body = await resp.text()
    assert resp.status == 200 and "以客服消息送达" in body and "您好，已安排师傅下午上门。" in body
    [push] = await outbox_rows(services, "wechat")
    assert push.target == "o_hand" and "已安排师傅下午上门" in push.payload["text"]
    resp = await client.post(f"/console/tickets/{number}/reply", data={"text": "  ", "csrf_token": csrf})
    assert "答复内容不能为空" in await resp.text()
    clock.advance(hours=49)
    client.session.cookie_jar.clear()  # (on the embedded store the 12-hour session has run out too)
    csrf = await logged_in(client, "liu", "staffpass1")
    page = await (await client.get(f"/console/tickets/{number}")).text()
    assert "模板消息" in page
    resp = await client.post(f"/console/tickets/{number}/reply", data={"text": "再次跟进：已修好。", "csrf_token": csrf})
    assert "以模板消息送达" in await resp.text()
    [row, again] = await audit_rows(services, "ticket.reply")
    assert (row.actor, row.detail["via"], again.detail["via"]) == ("liu", "custom", "template")
    assert (await client.get("/console/tickets/20990101-0001")).status == 404


async def test_transitions_reassign_and_notes_from_the_page(client: Client, services: Services, clock: FakeClock) -> None:
    await _users(services)
    await load_roster(services)
    await make_resident(services, "o_t")
    number = await make_ticket(services, "o_t", status="open")
    csrf = await logged_in(client, "liu", "staffpass1")
    page = await (await client.get(f"/console/tickets/{number}")).text()
    assert 'value="wangwei"' in page and 'value="canteen"' not in page  # the right role only
    resp = await client.post(f"/console/tickets/{number}/transition", data={"action": "assign", "assignee": "wangwei", "csrf_token": csrf})
    assert "已派单" in await resp.text()
    resp = await client.post(f"/console/tickets/{number}/transition", data={"action": "assign", "assignee": "lina", "csrf_token": csrf})
    assert resp.status == 200
    resp = await client.post(f"/console/tickets/{number}/transition", data={"action": "reopen", "csrf_token": csrf})
    assert "不能重新打开" in await resp.text()
    resp = await client.post(f"/console/tickets/{number}/transition", data={"action": "resolve", "note": "灯已换好", "csrf_token": csrf})
    assert "已办结" in await resp.text()
    resp = await client.post(f"/console/tickets/{number}/note", data={"text": "居民很满意", "csrf_token": csrf})
    body = await resp.text()
    assert "内部备注已保存" in body and "居民很满意" in body
    actions = [r.action for r in await audit_rows(services) if r.action.startswith("ticket.") and r.action != "ticket.phone_view"]
    assert actions == ["ticket.assign", "ticket.reassign", "ticket.reopen.refused", "ticket.resolve", "ticket.note"]
    assert not [p for p in await outbox_rows(services, "wechat") if "居民很满意" in str(p.payload)]


async def test_list_filters_dashboard_and_logout(client: Client, services: Services, clock: FakeClock) -> None:
    await _users(services)
    await load_roster(services)
    first = await make_ticket(services, None, status="open", summary="3号楼路灯不亮")
    second = await make_ticket(services, None, status="open", summary="8号楼垃圾没人收", building="8")
    from bot import staff_actions

    await staff_actions.staff_transition(services, second, "assign", "liu", assignee="sunli")
    csrf = await logged_in(client, "liu", "staffpass1")
    body = await (await client.get("/console/tickets?assignee=sunli")).text()
    assert second in body and first not in body
    body = await (await client.get("/console/tickets?q=路灯")).text()
    assert first in body and second not in body
    body = await (await client.get(f"/console/tickets?q={first}&status=open&kind=complaint&page=x")).text()
    assert first in body
    dash = await client.get("/console/dashboard?since=2026-11-01&until=bad")
    body = await dash.text()
    assert dash.status == 200 and "响应率" in body and "解决率" in body and "满意率" in body and "<svg" in body
    assert "望湖第三网格" in body
    resp = await client.post("/console/logout", data={"csrf_token": csrf}, allow_redirects=False)
    assert resp.status == 303
    assert (await client.get("/console", allow_redirects=False)).status == 303
    assert [r.action for r in await audit_rows(services, "console.logout")] == ["console.logout"]


async def test_forged_or_expired_session_cookie_is_not_a_login(client: Client, services: Services, clock: FakeClock) -> None:
    await _users(services)
    await logged_in(client, "liu", "staffpass1")
    cookie = next(c for c in client.session.cookie_jar if c.key == auth.COOKIE)
    token, mac = cookie.value.rsplit(".", 1)
    home = client.make_url("/")
    client.session.cookie_jar.clear()
    client.session.cookie_jar.update_cookies({auth.COOKIE: f"{token}.{'0' * len(mac)}"}, response_url=home)
    assert (await client.get("/console", allow_redirects=False)).status == 303
    client.session.cookie_jar.update_cookies({auth.COOKIE: "no-dot-at-all"}, response_url=home)
    assert (await client.get("/console", allow_redirects=False)).status == 303
    client.session.cookie_jar.update_cookies({auth.COOKIE: f"{token}.{mac}"}, response_url=home)
    assert (await client.get("/console", allow_redirects=False)).status == 200
    clock.advance(seconds=auth.SESSION_TTL_S + 1)
    if not services.settings.redis_url:  # the embedded store expires by the service clock; Redis by its own
        assert (await client.get("/console", allow_redirects=False)).status == 303


async def test_queue_reasons_order_and_many_reporters(client: Client, services: Services, clock: FakeClock) -> None:
    from bot import dispatch, staff_actions, tickets

    await _users(services)
    await load_roster(services)
    late = await make_ticket(services, None, status="open", summary="3号楼楼道灯全不亮")
    await staff_actions.staff_transition(services, late, "assign", "liu", assignee="lina")
    clock.advance(minutes=5)
    again = await make_ticket(services, None, status="open", summary="8号楼门禁坏了", building="8")
    for action in ("assign", "accept", "resolve", "reopen"):
        await staff_actions.staff_transition(services, again, action, "liu", assignee="sunli")
    clock.advance(minutes=5)
    urgent = await make_ticket(services, None, status="escalated", summary="9号楼电梯困人", building="9")
    async with services.sessions() as session, session.begin():
        row = await tickets.get_by_number(session, late)
        assert row is not None
        row.overdue = True
        urgent_row = await tickets.get_by_number(session, urgent)
        assert urgent_row is not None
        urgent_row.urgency = "urgent"
    clock.advance(minutes=5)
    async with services.sessions() as session, session.begin():  # a second resident reports the same lights
        child = await tickets.create_ticket(
            session, kind="complaint", resident=None, fields={}, now=clock.now(), tz=services.tz, actor="test",
            summary="3号楼楼道黑漆漆的", category="照明", building="3",
        )
        linked = await dispatch.dispatch_new(services, session, child)
        assert linked.linked_to is not None and linked.linked_to.number == late
        child_number = child.number
    await logged_in(client, "liu", "staffpass1")
    body = await (await client.get("/console")).text()
    order = [body.index(n) for n in (urgent, late, again)]
    assert order == sorted(order)  # urgent first, then oldest first
    assert "接单超时" in body and "重新办理" in body and "升级/吹哨" in body  # flagged, its 办结 limit ahead
    newest = await (await client.get("/console?order=newest")).text()
    assert newest.index(urgent) < newest.index(again) < newest.index(late)
    assert child_number not in body  # a linked report waits with its parent, not twice
    page = await (await client.get(f"/console/tickets/{late}")).text()
    assert "2 人反映" in page and "同一问题多人反映：共 2 位居民" in page and child_number in page
    page = await (await client.get(f"/console/tickets/{child_number}")).text()
    assert f'href="/console/tickets/{late}"' in page  # the later report points to the first


def test_cookie_secret_is_generated_once_and_kept(tmp_path: Any) -> None:
    from bot.settings import load_settings

    settings = load_settings(var_dir=str(tmp_path / "var"), console_secret="")
    first = auth.console_secret(settings)
    assert len(first) == 64 and auth.console_secret(settings) == first
    path = tmp_path / "var" / "console_secret"
    assert path.stat().st_mode & 0o777 == 0o600
    assert auth.console_secret(load_settings(var_dir=str(tmp_path / "var"), console_secret="from-env")) == b"from-env"


async def test_a_resident_who_unfollowed_cannot_be_answered_and_failed_pushes_are_shown(
    client: Client, services: Services, clock: FakeClock,
) -> None:
    await _users(services)
    number = await _handoff(services, clock)
    async with services.sessions() as session, session.begin():
        resident = await session.scalar(select(Resident).where(Resident.openid == "o_hand"))
        assert resident is not None
        resident.subscribed = False
        ticket = await tickets.get_by_number(session, number)
        assert ticket is not None
        item = await outbox.enqueue(session, "wechat", "o_hand", {"text": "您的工单已受理。"}, now=clock.now(),
                                    ticket_id=ticket.id)
        assert item is not None
        row = await session.get(OutboxItem, item.id)
        assert row is not None
        row.state, row.attempts, row.last_error = "dead", 1, "errcode 43004: require subscribe"
    clock.advance(minutes=1)
    csrf = await logged_in(client, "liu", "staffpass1")
    page = await (await client.get(f"/console/tickets/{number}")).text()
    assert "居民已取消关注公众号" in page and 'id="reply-form"' not in page  # told before writing
    assert "未送达的消息（1 条）" in page and "发给居民：居民已取消关注" in page and "消息被微信拒收" in page and "您的工单已受理。" in page
    resp = await client.post(f"/console/tickets/{number}/reply", data={"text": "您好", "csrf_token": csrf})
    body = await resp.text()
    assert "已取消关注公众号，消息无法送达" in body and "答复已发出" not in body
    assert [r.payload["text"] for r in await outbox_rows(services, "wechat")] == ["您的工单已受理。"]


async def test_read_only_users_see_every_phone_masked_staff_see_them_whole(
    client: Client, services: Services, clock: FakeClock,
) -> None:
    await _users(services)
    number = await _handoff(services, clock, said="转人工，我电话13900001111，座机0571-88881234")
    async with services.sessions() as session, session.begin():
        ticket = await tickets.get_by_number(session, number)
        assert ticket is not None
        ticket.summary = "转人工：回电13900001111"
        await tickets.add_event(session, ticket, "note", "liu", clock.now(), note="已拨13900001111无人接")
    await logged_in(client, "ro", "readonly1")
    pages = {path: await (await client.get(path)).text()
             for path in ("/console", "/console/tickets", f"/console/tickets/{number}")}
    for path, body in pages.items():
        assert "13900001111" not in body and "88881234" not in body, path
        assert "139****1111" in body, path
    assert "0571-****1234" in pages[f"/console/tickets/{number}"]
    client.session.cookie_jar.clear()
    await logged_in(client, "liu", "staffpass1")
    for path in pages:
        assert "13900001111" in await (await client.get(path)).text(), path


async def test_a_password_reset_or_removal_ends_the_users_sessions(client: Client, services: Services) -> None:
    await _users(services)
    await auth.create_user(services, "boss", "bosspass1", "admin")
    await logged_in(client, "liu", "staffpass1")
    liu_cookie = next(c for c in client.session.cookie_jar if c.key == auth.COOKIE).value
    client.session.cookie_jar.clear()
    await logged_in(client, "ro", "readonly1")
    ro_cookie = next(c for c in client.session.cookie_jar if c.key == auth.COOKIE).value
    client.session.cookie_jar.clear()
    csrf = await logged_in(client, "boss", "bosspass1")
    async with services.sessions() as session:
        ids = {u.username: u.id for u in (await session.execute(select(StaffUser))).scalars()}
    resp = await client.post(f"/console/users/{ids['liu']}", data={"op": "reset", "password": "new-pass-1", "csrf_token": csrf})
    assert "已登录的会话都已退出" in await resp.text()
    await client.post(f"/console/users/{ids['ro']}", data={"op": "delete", "csrf_token": csrf})
    resp = await client.post(f"/console/users/{ids['boss']}", data={"op": "reset", "password": "boss-new-1", "csrf_token": csrf})
    assert resp.status == 200 and "用户管理" in await resp.text()  # one's own reset keeps this session
    [reset, own] = await audit_rows(services, "user.password_reset")
    assert reset.detail == {"sessions_ended": True} and own.target == "boss"
    home = client.make_url("/")
    for cookie in (liu_cookie, ro_cookie):
        client.session.cookie_jar.clear()
        client.session.cookie_jar.update_cookies({auth.COOKIE: cookie}, response_url=home)
        assert (await client.get("/console", allow_redirects=False)).status == 303
        api = await client.get("/api/tickets", allow_redirects=False)
        assert api.status == 401
    client.session.cookie_jar.clear()
    assert (await login(client, "liu", "new-pass-1")).status == 303


async def test_an_outdated_page_cannot_overwrite_another_clerks_assignment(
    client: Client, services: Services, clock: FakeClock,
) -> None:
    await _users(services)
    await load_roster(services)
    number = await _handoff(services, clock)
    csrf = await logged_in(client, "liu", "staffpass1")
    stale = await (await client.get(f"/console/tickets/{number}")).text()
    assert 'name="seen_status" value="escalated"' in stale and 'name="seen_assignee" value=""' in stale
    await staff_actions.staff_transition(services, number, "assign", "liu", assignee="liustaff")  # clerk 1
    resp = await client.post(f"/console/tickets/{number}/transition", data={  # clerk 2, from the old page
        "action": "assign", "assignee": "admin", "seen_status": "escalated", "seen_assignee": "", "csrf_token": csrf,
    })
    body = await resp.text()
    assert resp.status == 200 and resp.url.path == f"/console/tickets/{number}"
    assert "已被他人更新（刘敏）" in body and "负责人由“无人负责”变为“刘敏”" in body and "状态由“待人工处理”变为“已派单”" in body
    assert "未执行“派单”" in body and "已派给" not in body and "已改派给" not in body
    assert 'name="seen_assignee" value="liustaff"' in body  # the current page, to act on again
    assert [r.detail["assignee"] for r in await audit_rows(services, "ticket.assign")] == ["liustaff"]
    assert await audit_rows(services, "ticket.reassign") == []
    resp = await client.post(f"/console/tickets/{number}/transition", data={
        "action": "assign", "assignee": "admin", "seen_status": "dispatched", "seen_assignee": "liustaff", "csrf_token": csrf,
    })
    assert "已改派给 " in await resp.text()  # the flash names who has it now


async def test_the_queue_shows_an_answered_hand_off_and_waits_from_the_residents_next_word(
    client: Client, services: Services, clock: FakeClock,
) -> None:
    await _users(services)
    number = await _handoff(services, clock)
    clock.advance(hours=2)
    await logged_in(client, "liu", "staffpass1")
    body = await (await client.get("/console")).text()
    assert "已等待 2 小时" in body and "已答复" not in body
    await staff_actions.staff_reply(services, number, "您好，马上安排。", "liu")
    clock.advance(minutes=20)
    body = await (await client.get("/console")).text()
    assert number in body and "已答复 · 刘敏" in body and "答复后居民暂无新消息" in body and "已等待" not in body
    async with services.sessions() as session, session.begin():
        session.add(Message(openid="o_hand", direction="in", msg_type="text", content="师傅几点到？", created_at=clock.now()))
    clock.advance(minutes=7)
    body = await (await client.get("/console")).text()
    assert "已答复 · 刘敏" in body and "居民答复后又来消息，已等待 7 分钟" in body


async def test_the_customer_service_quota_decides_the_channel_said_and_audited(
    client: Client, services: Services, clock: FakeClock,
) -> None:
    await _users(services)
    number = await _handoff(services, clock)
    csrf = await logged_in(client, "liu", "staffpass1")
    for n in range(1, 6):  # five answers inside the 48 hours: customer-service messages
        clock.advance(minutes=10)
        assert await staff_actions.staff_reply(services, number, f"第{n}次答复", "liu") == "custom"
    page = await (await client.get(f"/console/tickets/{number}")).text()
    assert "客服消息条数已用完" in page and "答复将以【模板消息】" in page
    resp = await client.post(f"/console/tickets/{number}/reply", data={"text": "第6次答复", "csrf_token": csrf})
    assert "以模板消息送达" in await resp.text()
    rows = await audit_rows(services, "ticket.reply")
    assert [r.detail["via"] for r in rows] == ["custom"] * 5 + ["template"]
    assert rows[-1].detail["quota_used"] is True and rows[-1].detail["outbox"] is not None
    async with services.sessions() as session, session.begin():  # the sender delivers them as predicted
        for row in (await session.scalars(select(OutboxItem).order_by(OutboxItem.id))).all():
            row.state, row.sent_at = "sent", clock.now()
            row.sent_via = "custom" if row.id < rows[-1].detail["outbox"] else "template"
    clock.advance(hours=48)  # the resident writes again: a new window, a new quota
    async with services.sessions() as session, session.begin():
        resident = await session.scalar(select(Resident).where(Resident.openid == "o_hand"))
        assert resident is not None
        resident.last_message_at = resident.last_inbound_at = clock.now()
    client.session.cookie_jar.clear()  # (the 12-hour session ran out on the embedded store)
    await logged_in(client, "liu", "staffpass1")
    assert "答复将以【客服消息】" in await (await client.get(f"/console/tickets/{number}")).text()


async def test_a_refused_answer_comes_back_in_the_box_and_an_expired_session_says_so(
    client: Client, services: Services, clock: FakeClock,
) -> None:
    await _users(services)
    number = await _handoff(services, clock)
    csrf = await logged_in(client, "liu", "staffpass1")
    long_text = "您好，" + "情况说明" * staff_actions.MAX_REPLY_CHARS
    resp = await client.post(f"/console/tickets/{number}/reply", data={"text": long_text, "csrf_token": csrf})
    body = await resp.text()
    assert "答复太长了" in body and f">{long_text}</textarea>" in body
    again = await (await client.get(f"/console/tickets/{number}")).text()
    assert long_text not in again and "></textarea>" in again  # given back once
    assert await outbox_rows(services, "wechat") == []
    client.session.cookie_jar.clear()  # the session is gone (expired or logged out elsewhere)
    resp = await client.post(f"/console/tickets/{number}/reply", data={"text": "你好", "csrf_token": csrf},
                             allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"].startswith("/console/login?expired=1&next=")
    html = await (await client.get(resp.headers["Location"])).text()
    assert "登录已过期，请重新登录后再发送" in html and f'name="next" value="/console/tickets/{number}"' in html
    assert "刚才的操作没有执行" in html and "答复仍留在这台电脑的浏览器里" in html  # console.js keeps the draft


def _reply_box(page: str) -> str:
    """The answer box's opening tag on a ticket page ('' when the page has none)."""
    found = re.search(r'<textarea name="text" id="reply-text"[^>]*>', page)
    return found.group(0) if found else ""


async def test_the_answer_box_keeps_its_draft_per_clerk_until_the_answer_goes(
    client: Client, services: Services, clock: FakeClock,
) -> None:
    """The browser keeps what a clerk types (console.js) under a key of their own and the ticket,
    so it outlives a login and another clerk's box never shows it; the page after a sent answer
    tells it to drop the draft, once; a refused answer does not."""
    await _users(services)
    await auth.create_user(services, "wang", "staffpass2", "staff", display_name="王芳")
    number = await _handoff(services, clock)
    async with services.sessions() as session:
        ids = dict((await session.execute(select(StaffUser.username, StaffUser.id))).tuples().all())
    csrf = await logged_in(client, "liu", "staffpass1")
    box = _reply_box(await (await client.get(f"/console/tickets/{number}")).text())
    assert f'data-draft="cb-draft:{ids["liu"]}:liu:{number}"' in box and "data-draft-sent" not in box
    resp = await client.post(f"/console/tickets/{number}/reply", data={"text": "   ", "csrf_token": csrf})
    assert "data-draft-sent" not in _reply_box(await resp.text())  # refused: the draft stays
    resp = await client.post(f"/console/tickets/{number}/reply", data={"text": "您好，已安排师傅。", "csrf_token": csrf})
    page = await resp.text()
    assert "以客服消息送达" in page and "data-draft-sent" in _reply_box(page)
    assert "data-draft-sent" not in _reply_box(await (await client.get(f"/console/tickets/{number}")).text())

    client.session.cookie_jar.clear()  # another clerk at the same browser: a key of her own
    await logged_in(client, "wang", "staffpass2")
    box = _reply_box(await (await client.get(f"/console/tickets/{number}")).text())
    assert f'data-draft="cb-draft:{ids["wang"]}:wang:{number}"' in box and f":{ids['liu']}:liu:" not in box
    client.session.cookie_jar.clear()
    await logged_in(client, "ro", "readonly1")
    assert _reply_box(await (await client.get(f"/console/tickets/{number}")).text()) == ""  # no box, no draft


async def test_what_a_resident_adds_after_a_hand_off_shows_once(
    client: Client, services: Services, wx: Any,
) -> None:
    await _users(services)
    assert "转接人工服务" in await wx.say("o_more", "人工")
    await wx.say("o_more", "我家楼上漏水了 想找个人说说")
    await wx.say("o_more", "水一直往下滴")
    async with services.sessions() as session:
        number = await session.scalar(select(tickets.Ticket.number).where(tickets.Ticket.resident == "o_more"))
    await logged_in(client, "liu", "staffpass1")
    page = await (await client.get(f"/console/tickets/{number}")).text()
    timeline = page[page.index('class="timeline"'):]
    assert timeline.count("我家楼上漏水了 想找个人说说") == 1 and timeline.count("水一直往下滴") == 1


async def test_the_ticket_page_speaks_chinese_only(client: Client, services: Services, clock: FakeClock) -> None:
    await _users(services)
    number = await _handoff(services, clock)
    async with services.sessions() as session, session.begin():
        ticket = await tickets.get_by_number(session, number)
        assert ticket is not None
        ticket.fields = {"urgency": "normal", "talked": True, "collected": {"place": "5号楼", "urgency": "urgent"},
                         "internal_code": "x1"}
        await tickets.add_event(session, ticket, "survey_sent", "system", clock.now(), data={"resolution": 1})
        await tickets.add_event(session, ticket, "something_new", "system", clock.now())
        session.add(Message(openid="o_hand", direction="in", msg_type="event:unsubscribe", content="[unsubscribe]",
                            created_at=clock.now()))
        session.add(Message(openid="o_hand", direction="in", msg_type="image", content="", created_at=clock.now()))
    await staff_actions.staff_reply(services, number, "您好", "liu")
    await staff_actions.add_note(services, number, "已电话联系", "liu")
    await logged_in(client, "liu", "staffpass1")
    page = await (await client.get(f"/console/tickets/{number}")).text()
    shown = re.sub(r"<[^>]+>", " ", page)  # what the clerk reads
    for raw in ("survey_sent", "something_new", "[unsubscribe]", "normal", "internal_code", "talked", " liu "):
        assert raw not in shown, raw
    for words in ("发出满意度回访", "其他记录", "取消关注了公众号", "[图片]", "紧急程度</dt><dd>一般", "是否已沟通</dt><dd>是",
                  "地点：5号楼", "紧急程度：紧急", "其他信息"):
        assert words in page, words
    timeline = page[page.index('class="timeline"'):page.index("</ol>", page.index('class="timeline"'))]
    assert timeline.count("刘敏") == 2  # the answer and the note, by name


@pytest.mark.parametrize("query", [
    "until=9999-12-31", "until=0001-01-01", "since=0001-01-01&until=0001-01-05", "since=9999-12-31",
    "since=2026-13-01", "since=2020-01-01&until=2030-01-01",
])
async def test_dashboard_dates_never_fail_and_a_cut_range_says_so(client: Client, services: Services, query: str) -> None:
    await _users(services)
    await logged_in(client, "ro", "readonly1")
    resp = await client.get(f"/console/dashboard?{query}")
    body = await resp.text()
    assert resp.status == 200 and "响应率" in body and 'class="flash error"' in body
    if query.startswith("since=2020"):
        assert "一次最多统计 366 天：已只统计 2029-01-01 至 2030-01-01" in body
    else:
        assert "已改用默认范围" in body


async def test_a_missed_accept_limit_is_not_shown_as_a_missed_resolve_limit(
    client: Client, services: Services, clock: FakeClock,
) -> None:
    from bot import dispatch
    from storage.models import Reminder

    await _users(services)
    await load_roster(services)
    number = await make_ticket(services, None, status="open")
    await staff_actions.staff_transition(services, number, "assign", "liu", assignee="wangwei")
    clock.advance(seconds=services.settings.accept_sla_s + 1)
    async with services.sessions() as session, session.begin():
        ticket = await tickets.get_by_number(session, number)
        assert ticket is not None
        breach = await session.scalar(select(Reminder).where(Reminder.cause_id == ticket.id, Reminder.kind == "accept_breach"))
        assert breach is not None
        assert await dispatch.handle_due_reminder(services, session, breach)
    await logged_in(client, "liu", "staffpass1")
    page = await (await client.get(f"/console/tickets/{number}")).text()
    due = page[page.index("<dt>办结时限</dt>"):page.index("</dd>", page.index("<dt>办结时限</dt>"))]
    accept = page[page.index("<dt>接单时限</dt>"):page.index("</dd>", page.index("<dt>接单时限</dt>"))]
    assert "超期" not in due and "接单超时" in accept
    queue = await (await client.get("/console")).text()
    assert "接单超时" in queue and "超期" not in queue


async def test_the_queues_see_all_link_lists_exactly_the_queue(
    client: Client, services: Services, monkeypatch: pytest.MonkeyPatch,
) -> None:
    from bot.console import queries

    await _users(services)
    await load_roster(services)
    escalated = await make_ticket(services, None, status="escalated", summary="升级的")
    reopened = await make_ticket(services, None, status="open", summary="重办的")
    for action in ("assign", "accept", "resolve", "reopen"):
        await staff_actions.staff_transition(services, reopened, action, "liu", assignee="wangwei")
    unowned = await make_ticket(services, None, status="open", summary="无人负责的")
    dispatched = await make_ticket(services, None, status="open", summary="已派出的")
    await staff_actions.staff_transition(services, dispatched, "assign", "liu", assignee="wangwei")
    monkeypatch.setattr(queries, "QUEUE_LIMIT", 1)  # (100 in use) fewer shown than wait
    await logged_in(client, "liu", "staffpass1")
    queue = await (await client.get("/console")).text()
    assert 'href="/console/tickets?queue=1">查看全部 3 件' in queue
    listed = await (await client.get("/console/tickets?queue=1")).text()
    assert all(n in listed for n in (escalated, reopened, unowned)) and dispatched not in listed
    assert "共 3 件" in listed


async def test_a_push_a_worker_never_got_reaches_the_staff_group_once_and_the_queue(
    client: Client, services: Services, clock: FakeClock,
) -> None:
    """WeCom refusing the server's address (60020, 企业可信IP not set) made every card die unseen:
    the queue was empty and the ticket page listed only the resident's failed pushes."""
    import dataclasses

    import aiohttp
    from aiohttp.test_utils import TestServer, unused_port

    from bot.channels import push
    from bot.sim.api import SIM_RECORDER, make_app
    from tests.wecom_driver import new_ticket

    await _users(services)
    await load_roster(services)
    number = (await new_ticket(services, building="3")).ticket.number  # wangwei's card is queued
    stand_ins = make_app(services)
    server = TestServer(stand_ins, host="127.0.0.1", port=unused_port())
    await server.start_server()
    base = f"http://127.0.0.1:{server.port}/sim"
    sender = dataclasses.replace(services, settings=services.settings.model_copy(update={
        "wecom_api_base": f"{base}/wecom-api", "wechat_api_base": f"{base}/wechat-api",
    }))
    stand_ins[SIM_RECORDER].inject("wecom_send", status=502)  # a retry first: no alert for it
    stand_ins[SIM_RECORDER].inject("wecom_send", errcode=60020, times=5)
    try:
        async with aiohttp.ClientSession() as http:
            await push.drain(sender, http)
            assert [r.state for r in await outbox_rows(services, "wecom")] == ["pending"]
            assert await outbox_rows(services, "group") == []
            for _ in range(3):
                clock.advance(hours=1)
                await push.drain(sender, http)
    finally:
        await server.close()
    [card] = await outbox_rows(services, "wecom")
    assert card.state == "dead" and card.last_error.startswith("errcode 60020")
    [alert] = await outbox_rows(services, "group")  # one, for the push given up
    content = alert.payload["content"]
    assert "企业微信消息未送达：王伟" in content and number in content and "企业可信IP" in content

    await logged_in(client, "liu", "staffpass1")
    queue = await (await client.get("/console")).text()
    assert f'data-number="{number}"' in queue and "消息未送达承办人" in queue
    page = await (await client.get(f"/console/tickets/{number}")).text()
    assert "未送达的消息（1 条）" in page and "发给王伟：服务器的 IP 不在企业微信应用的可信 IP 中" in page
    assert "企业可信IP" in page and "新工单" in page
    # Given to someone who gets it, it leaves the queue.
    await staff_actions.staff_transition(services, number, "assign", "liu", assignee="lina")
    assert f'data-number="{number}"' not in await (await client.get("/console")).text()


async def test_answering_every_reporter_of_a_burst_from_the_ticket_page(
    client: Client, services: Services, clock: FakeClock,
) -> None:
    """A water-main burst five residents reported: the job's page offers 答复全部 5 位反映居民; it
    reaches the three who can be reached, each through their own channel, says how many could not
    be, is audited once; an outdated page (the job changed, or a sixth report came) is refused,
    the typed answer kept; read-only users neither see nor may post it."""
    from tests.test_worker_words import burst
    from tests.wecom_driver import new_ticket

    await _users(services)
    await load_roster(services)
    job, kids = await burst(services)
    csrf = await logged_in(client, "ro", "readonly1")
    page = await (await client.get(f"/console/tickets/{job}")).text()
    assert "答复全部" not in page
    said = "抢修队已到场，预计今晚六点前恢复供水。"
    resp = await client.post(f"/console/tickets/{job}/reply", data={"text": said, "to": "all", "csrf_token": csrf},
                             allow_redirects=False)
    assert resp.status == 403
    client.session.cookie_jar.clear()
    csrf = await logged_in(client, "liu", "staffpass1")
    page = await (await client.get(f"/console/tickets/{job}")).text()
    assert "答复全部 5 位反映居民" in page and 'name="seen_reporters" value="5"' in page
    child_page = await (await client.get(f"/console/tickets/{kids[0]}")).text()
    assert "答复全部" not in child_page  # offered on the job the reports are linked to
    form = {"text": said, "to": "all", "seen_status": "dispatched", "seen_assignee": "wangwei",
            "seen_reporters": "5", "csrf_token": csrf}
    # another report came since the page was drawn: refused, the answer kept in the box
    assert (await new_ticket(services, resident="oW6", category="水电气暖", summary="也停水了")).linked_to is not None
    body = await (await client.post(f"/console/tickets/{job}/reply", data=form)).text()
    assert "反映居民由 5 位变为 6 位" in body and "未执行“答复全部反映居民”" in body and said in body
    assert [o for o in await outbox_rows(services, "wechat") if said in o.payload["text"]] == []
    # the job was taken meanwhile: refused too
    await staff_actions.staff_transition(services, job, "accept", "wangwei")
    body = await (await client.post(f"/console/tickets/{job}/reply", data=form | {"seen_reporters": "6"})).text()
    assert "状态由“已派单”变为“已接单”" in body and said in body
    body = await (await client.post(f"/console/tickets/{job}/reply",
                                    data=form | {"seen_reporters": "6", "seen_status": "accepted"})).text()
    assert "答复已发给 4 位反映居民（客服消息 1 位、模板消息 3 位），2 位无法送达（已取消关注或信息已删除）。" in body
    told = [o.target for o in await outbox_rows(services, "wechat") if said in o.payload["text"]]
    assert sorted(told) == ["oW1", "oW2", "oW5", "oW6"]
    [row] = await audit_rows(services, "ticket.reply_all")
    assert (row.actor, row.target, row.detail["reached"], len(row.detail["missed"])) == ("liu", job, 4, 2)
    # the plain answer still goes to the job's own resident only
    body = await (await client.post(f"/console/tickets/{job}/reply", data={"text": "只给您", "to": "one", "csrf_token": csrf})).text()
    assert "以客服消息送达" in body
    assert [o.target for o in await outbox_rows(services, "wechat") if "只给您" in o.payload["text"]] == ["oW1"]


def _hidden(html: str, name: str, after: str = 'id="reply-form"') -> str:
    """A hidden field's value in the first form of the page after `after` (the answer form)."""
    assert after in html, after
    found = re.search(rf'name="{name}" value="([^"]*)"', html[html.index(after):])
    assert found, f"no {name} on the page"
    return found.group(1)


async def test_a_double_click_answers_the_resident_once_and_acts_once(
    client: Client, services: Services, clock: FakeClock,
) -> None:
    """A double click (or the page sent again) on 发送答复, 保存备注 or 接单: the first acts, the
    second does nothing and says so; a refused form can be sent again once corrected."""
    import asyncio

    await _users(services)
    await load_roster(services)
    number = await _handoff(services, clock)
    csrf = await logged_in(client, "liu", "staffpass1")
    page = await (await client.get(f"/console/tickets/{number}")).text()
    form = {"text": "您好，师傅下午到。", "csrf_token": csrf, "form_id": _hidden(page, "form_id"),
            "seen_answer": _hidden(page, "seen_answer")}
    first, second = await asyncio.gather(*(client.post(f"/console/tickets/{number}/reply", data=form) for _ in range(2)))
    bodies = [await first.text(), await second.text()]
    assert first.status == second.status == 200
    assert len(await outbox_rows(services, "wechat")) == 1 and len(await audit_rows(services, "ticket.reply")) == 1
    assert any("这份表单刚才已经提交过" in b for b in bodies) and any("以客服消息送达" in b for b in bodies)

    # A refused answer (empty) keeps its form usable: sent again with text, it goes.
    page = await (await client.get(f"/console/tickets/{number}")).text()
    again = {"csrf_token": csrf, "form_id": _hidden(page, "form_id"), "seen_answer": _hidden(page, "seen_answer")}
    assert "答复内容不能为空" in await (await client.post(f"/console/tickets/{number}/reply", data={**again, "text": " "})).text()
    resp = await client.post(f"/console/tickets/{number}/reply", data={**again, "text": "补充：请留门。"})
    assert "以客服消息送达" in await resp.text() and len(await outbox_rows(services, "wechat")) == 2

    page = await (await client.get(f"/console/tickets/{number}")).text()
    note = {"text": "居民说下午在家", "csrf_token": csrf, "form_id": _hidden(page, "form_id", f'action="/console/tickets/{number}/note"')}
    for _ in range(2):
        await client.post(f"/console/tickets/{number}/note", data=note)
    assert len(await audit_rows(services, "ticket.note")) == 1
    page = await (await client.get(f"/console/tickets/{number}")).text()
    assign = {"action": "assign", "assignee": "liustaff", "csrf_token": csrf, "seen_status": "escalated", "seen_assignee": "",
              "form_id": _hidden(page, "form_id", "派单 / 改派")}
    body = await (await client.post(f"/console/tickets/{number}/transition", data=assign)).text()
    assert "已派给 刘敏，工单现在是“已派单”" in body, re.findall(r'class="flash[^>]*>([^<]*)', body)
    body = await (await client.post(f"/console/tickets/{number}/transition", data=assign)).text()
    assert "这份表单刚才已经提交过" in body and "未执行" not in body  # not an "outdated page" error
    assert len(await audit_rows(services, "ticket.assign")) == 1


async def test_an_answer_written_while_a_colleague_answered_is_held_until_read(
    client: Client, services: Services, clock: FakeClock,
) -> None:
    """Two clerks on one hand-off: 王芳 answers while 刘敏 writes; 刘敏's answer is held back with
    王芳's words shown and her own text kept in the box; pressed again, it goes."""
    await _users(services)
    await auth.create_user(services, "wang", "staffpass2", "staff", display_name="王芳")
    number = await _handoff(services, clock)
    csrf = await logged_in(client, "liu", "staffpass1")
    page = await (await client.get(f"/console/tickets/{number}")).text()
    assert _hidden(page, "seen_answer") == "0"
    clock.advance(minutes=3)
    await staff_actions.staff_reply(services, number, f"您好，物业师傅10点上门{XSS}", "wang")
    mine = "您好，我们已联系物业。"
    form = {"text": mine, "csrf_token": csrf, "form_id": _hidden(page, "form_id"), "seen_answer": "0"}
    resp = await client.post(f"/console/tickets/{number}/reply", data=form)
    body = await resp.text()
    assert resp.url.path == f"/console/tickets/{number}"
    assert "王芳 已在" in body and "您的答复还没有发送" in body and f"物业师傅10点上门&lt;script&gt;" in body
    assert XSS not in body
    assert f">{mine}</textarea>" in body  # her text is back in the box
    assert len(await outbox_rows(services, "wechat")) == 1  # only 王芳's
    resp = await client.post(f"/console/tickets/{number}/reply", data={
        **form, "form_id": _hidden(body, "form_id"), "seen_answer": _hidden(body, "seen_answer"),
    })
    assert "以客服消息送达" in await resp.text()
    assert [r.actor for r in await audit_rows(services, "ticket.reply")] == ["wang", "liu"]
    [held] = await audit_rows(services, "ticket.reply.refused")  # the hold is in the audit log
    assert (held.actor, held.target, held.detail["reason"]) == ("liu", number, "answered_meanwhile")
    # Her own answer sent meanwhile (another tab, WeCom) never holds her back.
    page = await (await client.get(f"/console/tickets/{number}")).text()
    await staff_actions.staff_reply(services, number, "师傅已出发。", "liu")
    resp = await client.post(f"/console/tickets/{number}/reply", data={
        "text": "再补充一句。", "csrf_token": csrf, "form_id": _hidden(page, "form_id"),
        "seen_answer": _hidden(page, "seen_answer"),
    })
    assert "以客服消息送达" in await resp.text()


async def test_the_queue_shows_what_a_resident_added_after_the_hand_off(
    client: Client, services: Services, wx: Any,
) -> None:
    """The queue's card of a hand-off shows the resident's last words on it since (居民补充),
    escaped, phones whole for staff and masked for read-only users — not only the 转人工 itself."""
    await _users(services)
    assert "转接人工服务" in await wx.say("o_add", "转人工")
    for text in ("在吗", f"楼上漏水{XSS}泡坏了地板", "我电话13812345678 下午在家", "快点来人"):
        await wx.say("o_add", text)
    await logged_in(client, "liu", "staffpass1")
    body = await (await client.get("/console")).text()
    card = body[body.index('class="card item'):]
    assert "居民补充：" in card and "在吗" not in card  # the last three
    assert "楼上漏水&lt;script&gt;alert(1)&lt;/script&gt;泡坏了地板" in card and XSS not in body
    assert "13812345678 下午在家" in card and card.index("泡坏了地板") < card.index("快点来人")
    client.session.cookie_jar.clear()
    await logged_in(client, "ro", "readonly1")
    body = await (await client.get("/console")).text()
    assert "13812345678" not in body and "下午在家" in body


async def test_the_queue_shows_what_a_resident_asked_right_after_the_hand_off(
    client: Client, services: Services, wx: Any, clock: FakeClock,
) -> None:
    """能不能有人定期来看看我 right after 转人工 is taken as 人工 asked again (no 居民补充 event: the
    staff group heard of the hand-off a minute ago), yet it is what the resident wants: the queue's
    card shows it, escaped, phone whole for staff and masked for read-only users; the 转人工 that
    opened the hand-off is not repeated as an addition."""
    await _users(services)
    assert "转接人工服务" in await wx.say("o_alone", "转人工")
    clock.advance(seconds=30)
    await wx.say("o_alone", f"我是独居老人{XSS} 能不能有人定期来看看我 我电话13512349876")
    await logged_in(client, "liu", "staffpass1")
    body = await (await client.get("/console")).text()
    card = body[body.index('class="card item'):]
    assert "居民补充：</span>我是独居老人&lt;script&gt;alert(1)&lt;/script&gt; 能不能有人定期来看看我 我电话13512349876" in card
    assert XSS not in body and card.count("转人工</p>") == 1  # the opening words once, as 居民：
    client.session.cookie_jar.clear()
    await logged_in(client, "ro", "readonly1")
    body = await (await client.get("/console")).text()
    assert "13512349876" not in body and "能不能有人定期来看看我" in body


async def test_the_queue_card_of_a_job_reopened_by_a_rating_says_what_the_resident_said(
    client: Client, services: Services, wx: Any, clock: FakeClock,
) -> None:
    """A job the resident rated 不满意 is back in the queue as 重新办理; its card says the rating
    and their words (灯还是不亮), escaped, a phone in them masked as the comment is kept — the clerk
    need not open the ticket to learn why it is back. 重新办理 is said once, not as reason and status."""
    from bot.schedule import run_due

    await _users(services)
    await load_roster(services)
    await make_resident(services, "o_rate")
    number = await make_ticket(services, "o_rate", status="open", summary="照明｜3栋2单元｜楼道灯坏了")
    for action in ("assign", "accept", "resolve"):
        await staff_actions.staff_transition(services, number, action, "liu", assignee="wangwei", note="已更换灯泡")
    clock.advance(seconds=services.settings.survey_delay_s)
    await run_due(services)
    await wx.say("o_rate", f"不满意，灯还是不亮{XSS} 有事打13812345678")
    await logged_in(client, "liu", "staffpass1")
    body = await (await client.get("/console")).text()
    card = body[body.index(f'data-number="{number}"'):]
    card = card[:card.index("</li>")]
    assert card.count("重新办理") == 1  # the reason's badge; the same status is not said twice
    assert "居民评价：</span>不满意：灯还是不亮&lt;script&gt;" in card
    assert XSS not in body and "138****5678" in card and "13812345678" not in body
    client.session.cookie_jar.clear()
    await logged_in(client, "ro", "readonly1")
    assert "居民评价：</span>不满意：灯还是不亮" in await (await client.get("/console")).text()


async def test_the_queue_page_keeps_urgent_and_crowded_tickets_in_hand_in_sight(
    client: Client, services: Services, clock: FakeClock,
) -> None:
    """Above the queue, 留意 lists what has an owner but a clerk watches: an urgent ticket not yet
    taken (how long since it was dispatched) and a job many residents reported (5, the staff
    group's alert) — not a normal ticket in hand, not a linked report, and the urgent one no
    longer once taken; the job's summary escaped."""
    from bot import dispatch

    await _users(services)
    await load_roster(services)

    async def report(summary: str, building: str, category: str, urgency: str = "normal") -> tuple[str, str | None]:
        async with services.sessions() as session, session.begin():
            ticket = await tickets.create_ticket(
                session, kind="complaint", resident=None, fields={"description": summary}, now=clock.now(),
                tz=services.tz, actor="test", summary=summary, category=category, urgency=urgency, building=building,
            )
            done = await dispatch.dispatch_new(services, session, ticket)
            return ticket.number, done.linked_to.number if done.linked_to else None

    trapped, _ = await report("6号楼电梯困人了", "6", "电梯", "urgent")
    quiet, _ = await report("2号楼楼道灯不亮", "2", "照明")
    water, _ = await report(f"7号楼停水了{XSS}", "7", "水电气暖", "utility")
    children = []
    for n in range(4):
        clock.advance(minutes=1)
        child, parent = await report(f"7号楼没水了 {n}", "7", "水电气暖", "utility")
        assert parent == water
        children.append(child)
    clock.advance(minutes=6)
    await logged_in(client, "liu", "staffpass1")
    body = await (await client.get("/console")).text()
    watch = body[body.index('id="watch"'):body.index("</section>", body.index('id="watch"'))]
    assert trapped in watch and water in watch and quiet not in watch and not any(c in watch for c in children)
    assert watch.index(trapped) < watch.index(water)  # urgent first
    assert "已派单 10 分钟，未接单" in watch and "5 人反映" in watch
    assert "已派单 · " not in watch and "已派 10" not in watch  # 派 said once on the card
    assert "7号楼停水了&lt;script&gt;" in watch and XSS not in body
    await staff_actions.staff_transition(services, trapped, "accept", "liu")
    body = await (await client.get("/console")).text()
    watch = body[body.index('id="watch"'):body.index("</section>", body.index('id="watch"'))]
    assert trapped not in watch and water in watch


async def test_searching_a_ticket_number_lists_that_ticket_first(client: Client, services: Services, clock: FakeClock) -> None:
    """Twenty neighbours' reports say 正在工单…0001中处理; searched for, 0001 itself comes first,
    not at the bottom of the newest-first list."""
    await _users(services)
    first = await make_ticket(services, None, status="open", summary="7号楼停水了")
    for n in range(3):
        clock.advance(minutes=1)
        await make_ticket(services, None, status="open", summary=f"7号楼没水了，已并入工单{first}处理 {n}")
    await logged_in(client, "liu", "staffpass1")
    for q in (first, first[-4:]):
        body = await (await client.get("/console/tickets", params={"q": q})).text()
        rows = re.findall(r'<td><a href="/console/tickets/([0-9-]+)">', body)
        assert len(rows) == 4 and rows[0] == first, (q, rows)
        assert rows[1:] == sorted(rows[1:], reverse=True)  # then newest first


async def test_forms_a_console_page_never_sent_get_a_clear_answer_not_a_server_error(
    client: Client, services: Services, clock: FakeClock,
) -> None:
    """Bytes that are not UTF-8, an id too large for any message, a status 1,000 letters long:
    400 with words, or the action as usual — never a 500, nothing half done."""
    await _users(services)
    number = await _handoff(services, clock)
    garbage = {"Content-Type": "application/x-www-form-urlencoded"}
    resp = await client.post("/console/login", data=b"\xff\xfe\x00username=liu", headers=garbage)
    assert resp.status == 400 and "提交的内容无法识别" in await resp.text()
    csrf = await logged_in(client, "liu", "staffpass1")
    for path in ("reply", "transition", "note"):
        resp = await client.post(f"/console/tickets/{number}/{path}", data=b"text=\xff\xfe", headers=garbage)
        assert resp.status == 400 and "提交的内容无法识别" in await resp.text(), path
    assert await outbox_rows(services, "wechat") == [] and await audit_rows(services, "ticket.note") == []
    resp = await client.post(f"/console/tickets/{number}/reply", data={
        "text": "您好。", "csrf_token": csrf, "seen_answer": "9" * 40,
    })
    assert resp.status == 200 and "以客服消息送达" in await resp.text()
    resp = await client.post(f"/console/tickets/{number}/transition", data={
        "action": "close", "csrf_token": csrf, "seen_status": "x" * 1000, "seen_assignee": "y" * 1000,
    })
    body = await resp.text()
    assert resp.status == 200 and "未执行“关闭”" in body and "x" * 17 not in body and "y" * 65 not in body


async def test_a_ticket_page_says_each_thing_once(client: Client, services: Services, wx: Any) -> None:
    """A hand-off's quoted words are 居民说（最近几条）, not 其他信息; a report's building is in
    楼栋 / 网格, not again as 楼栋 7."""
    await _users(services)
    await wx.say("o_once", "你好")
    await wx.say("o_once", "我要跟人说话")
    async with services.sessions() as session:
        number = await session.scalar(select(tickets.Ticket.number).where(tickets.Ticket.resident == "o_once"))
        row = await tickets.get_by_number(session, number)
        assert row is not None and row.fields.get("said")
    await logged_in(client, "liu", "staffpass1")
    page = await (await client.get(f"/console/tickets/{number}")).text()
    details = page[page.index('class="card details"'):page.index("</dl>")]
    assert "其他信息" not in details and "居民说（最近几条）" in details, details
    ticket = await make_ticket(services, "o_once", status="open", fields={"building": "7", "place": "7栋"}, building="7")
    page = await (await client.get(f"/console/tickets/{ticket}")).text()
    details = page[page.index('class="card details"'):page.index("</dl>")]
    assert "7号楼" in details and "<dt>楼栋</dt>" not in details and "7栋" in details


async def test_two_clerks_answering_every_reporter_of_a_job_do_not_both_send(
    client: Client, services: Services, clock: FakeClock,
) -> None:
    """刘敏 writes an answer to all five reporters of a burst while 王芳 sends hers to all from
    WeCom: 刘敏's is held with 王芳's words shown, nobody gets a second message until she sends again."""
    from tests.test_worker_words import burst

    await _users(services)
    await load_roster(services)
    job, kids = await burst(services)
    csrf = await logged_in(client, "liu", "staffpass1")
    page = await (await client.get(f"/console/tickets/{job}")).text()
    await auth.create_user(services, "wang", "staffpass2", "staff", display_name="王芳")
    done = await staff_actions.staff_reply_all(services, job, "抢修队已到场。", "wang")
    sent = len(await outbox_rows(services, "wechat"))
    form = {"text": "预计六点来水。", "to": "all", "csrf_token": csrf, "form_id": _hidden(page, "form_id"),
            "seen_answer": _hidden(page, "seen_answer"), "seen_status": "dispatched", "seen_assignee": "wangwei",
            "seen_reporters": "5"}
    body = await (await client.post(f"/console/tickets/{job}/reply", data=form)).text()
    assert done.reached > 0 and "王芳 已在" in body and "抢修队已到场。" in body and "您的答复还没有发送" in body
    assert len(await outbox_rows(services, "wechat")) == sent
    body = await (await client.post(f"/console/tickets/{job}/reply", data={
        **form, "form_id": _hidden(body, "form_id"), "seen_answer": _hidden(body, "seen_answer"),
    })).text()
    assert f"答复已发给 {done.reached} 位反映居民" in body
    # 王芳 answers one linked reporter alone: the job's page, drawn before, holds 刘敏's next answer.
    page = await (await client.get(f"/console/tickets/{job}")).text()
    await staff_actions.staff_reply(services, kids[-1], "您家的情况已记下。", "wang")
    body = await (await client.post(f"/console/tickets/{job}/reply", data={
        **form, "form_id": _hidden(page, "form_id"), "seen_answer": _hidden(page, "seen_answer"),
    })).text()
    assert "您家的情况已记下。" in body and "您的答复还没有发送" in body


async def test_the_ticket_list_says_which_reports_were_merged_into_a_job(
    client: Client, services: Services, clock: FakeClock,
) -> None:
    """After a water cut the list holds the job and its linked reports: each linked one says
    并入 <job>, linking to it; the job says how many reported it."""
    from tests.test_worker_words import burst

    await _users(services)
    await load_roster(services)
    job, kids = await burst(services)
    await logged_in(client, "liu", "staffpass1")
    body = await (await client.get("/console/tickets")).text()
    rows = {n: body[body.index(f'<td><a href="/console/tickets/{n}">'):][:2000].split("</tr>")[0] for n in [job, *kids]}
    for kid in kids:
        assert f'<a class="badge merged" href="/console/tickets/{job}"' in rows[kid] and f"并入 {job}" in rows[kid]
    assert "并入" not in rows[job] and "5 人反映" in rows[job]


async def test_a_residents_history_is_one_click_from_any_of_their_tickets(
    client: Client, services: Services, clock: FakeClock,
) -> None:
    """On the phone with a resident: her ticket page links to every ticket of hers (by the ticket's
    number, never her openid in the address), the filters keep to her, and a resident with one
    ticket, or a ticket without a resident, offers no link; an unknown number lists nothing."""
    await _users(services)
    await make_resident(services, "o_wang")
    await make_resident(services, "o_li")
    mine = [await make_ticket(services, "o_wang", status="open", summary=s) for s in ("3号楼楼道灯坏了", "家里停水了")]
    handoff = await make_ticket(services, "o_wang", kind="handoff", summary="转人工：水什么时候来")
    other = await make_ticket(services, "o_li", status="open", summary="5号楼电梯异响")
    nobody = await make_ticket(services, None, status="open", summary="东门路灯不亮")
    await logged_in(client, "liu", "staffpass1")
    page = await (await client.get(f"/console/tickets/{mine[0]}")).text()
    assert f'href="/console/tickets?of={mine[0]}"' in page and "这位居民共 3 件工单" in page and "o_wang" not in page
    listed = await (await client.get("/console/tickets", params={"of": mine[0]})).text()
    rows = re.findall(r'<td><a href="/console/tickets/([0-9-]+)">', listed)
    assert sorted(rows) == sorted([*mine, handoff]) and "共 3 件" in listed and "o_wang" not in listed
    assert f'name="of" value="{mine[0]}"' in listed  # the filters keep to her
    narrowed = await (await client.get("/console/tickets", params={"of": mine[0], "kind": "handoff"})).text()
    assert re.findall(r'<td><a href="/console/tickets/([0-9-]+)">', narrowed) == [handoff]
    for alone in (other, nobody):
        assert "这位居民共" not in await (await client.get(f"/console/tickets/{alone}")).text()
    for unknown in (nobody, "20990101-0001", "<script>"):
        body = await (await client.get("/console/tickets", params={"of": unknown})).text()
        assert "共 0 件" in body and "<script>" not in body.split("<main>")[1]


async def test_a_linked_reports_page_points_at_its_job_instead_of_acting_on_it_alone(
    client: Client, services: Services
) -> None:
    """A report linked to a job (5 residents, one water cut) offered 派单/接单/办结/关闭/吹哨 for
    itself, which WeCom refuses (it follows its job): its page now names the job with a link and
    offers only what the report itself takes (撤销, a duplicate filed by mistake); an action sent
    anyway is refused naming the job, nothing changed; 撤销 of it leaves the job in hand."""
    from tests.test_worker_words import burst

    await _users(services)
    await load_roster(services)
    job, kids = await burst(services)
    csrf = await logged_in(client, "liu", "staffpass1")
    page = await (await client.get(f"/console/tickets/{kids[0]}")).text()
    assert f"这张反映已并入工单 {job}" in page and f'<a href="/console/tickets/{job}">前往工单 {job}</a>' in page
    for action in ("assign", "accept", "resolve", "close", "escalate"):
        assert f'value="{action}"' not in page, action
    assert 'name="action" value="cancel"' in page and "这张反映本身只能撤销" in page
    job_page = await (await client.get(f"/console/tickets/{job}")).text()
    assert 'name="action" value="resolve"' in job_page and 'value="assign"' in job_page and "linked-hint" not in job_page
    for action, word in (("resolve", "办结"), ("accept", "接单"), ("escalate", "升级（吹哨）"), ("close", "关闭")):
        body = await (await client.post(f"/console/tickets/{kids[0]}/transition",
                                        data={"action": action, "note": "水来了", "csrf_token": csrf})).text()
        assert f"工单 {kids[0]} 是并入工单 {job} 的同一问题反映" in body and f"不能单独{word}" in body, action
    body = await (await client.post(f"/console/tickets/{kids[0]}/transition",
                                    data={"action": "assign", "assignee": "lina", "csrf_token": csrf})).text()
    assert f"请对工单 {job} 操作" in body
    async with services.sessions() as session:
        kid = await tickets.get_by_number(session, kids[0])
        assert kid is not None and (kid.status, kid.assignee) == ("dispatched", "wangwei")
    assert await audit_rows(services, "ticket.resolve") == []
    body = await (await client.post(f"/console/tickets/{kids[0]}/transition",
                                    data={"action": "cancel", "note": "重复提交", "csrf_token": csrf})).text()
    assert "已撤销，工单现在是“已撤销”。" in body
    async with services.sessions() as session:
        kid = await tickets.get_by_number(session, kids[0])
        parent = await tickets.get_by_number(session, job)
        assert kid is not None and parent is not None and (kid.status, parent.status) == ("cancelled", "dispatched")


async def test_the_search_reads_traditional_and_full_width_characters_as_the_simplified(
    client: Client, services: Services, wx: Any,
) -> None:
    """Searching 7号楼 did not find a report written 7號樓 (a resident's phone set to traditional
    characters) nor ７号楼 (full-width digits): the search and the text are now read in the same
    forms, in the summary and in what the resident said, either way round."""
    await _users(services)
    written = await make_ticket(services, None, status="open", summary="7號樓路燈不亮")
    plain = await make_ticket(services, None, status="open", summary="8号楼垃圾没人收", building="8")
    other = await make_ticket(services, None, status="open", summary="17栋电梯坏了", building="17")
    assert "转接人工服务" in await wx.say("o_trad", "转人工")
    await wx.say("o_trad", "７號樓的水管一直漏")
    from tests.flow_helpers import tickets_of

    [handoff] = [t.number for t in await tickets_of(services, "o_trad")]
    await logged_in(client, "liu", "staffpass1")
    body = await (await client.get("/console/tickets?q=7号楼")).text()
    assert written in body and handoff in body and plain not in body and other not in body
    body = await (await client.get("/console/tickets?q=8號樓")).text()
    assert plain in body and written not in body
    body = await (await client.get("/console/tickets?q=路灯不亮")).text()
    assert written in body and plain not in body
    body = await (await client.get("/console/tickets?q=水管一直漏")).text()
    assert handoff in body and written not in body


async def test_a_tickets_emergency_is_named_in_words_not_its_code(
    client: Client, services: Services, wx: Any,
) -> None:
    """The ticket page showed a hand-off's emergency advice as trapped, a report's as burst: now
    电梯困人 / 水管爆裂 (config/messages.toml [console.advice])."""
    await _users(services)
    assert "96333" in await wx.say("o_lift", "3栋电梯困人了 我老伴在里面")
    await wx.say("o_lift", "人工")
    from tests.flow_helpers import tickets_of

    [handoff] = [t.number for t in await tickets_of(services, "o_lift") if t.kind == "handoff"]
    report = await make_ticket(services, None, status="open", summary="5号楼水管爆了",
                               fields={"description": "5号楼水管爆了", "emergency": "burst"})
    await logged_in(client, "liu", "staffpass1")
    page = await (await client.get(f"/console/tickets/{handoff}")).text()
    assert "已告知的应急提示：电梯困人" in page and "trapped" not in page
    page = await (await client.get(f"/console/tickets/{report}")).text()
    assert "水管爆裂" in page and "burst" not in page


async def test_the_audit_log_names_actions_in_words_with_the_code_on_hover(
    client: Client, services: Services, clock: FakeClock,
) -> None:
    """The audit log listed ticket.reply, console.login …: now 答复居民, 登录工作台 (the code in the
    title), a refusal as the action 被拒绝, a code without words as it is; the filter takes either."""
    from storage.models import AuditLog

    await _users(services)
    number = await _handoff(services, clock)
    await staff_actions.staff_reply(services, number, "我们马上安排人上门。", "liu")
    async with services.sessions() as session, session.begin():
        session.add(AuditLog(actor="wangwei", action="wecom.accept.refused", target=number, created_at=clock.now()))
        session.add(AuditLog(actor="ops", action="ops.custom_thing", target="-", created_at=clock.now()))
    await auth.create_user(services, "boss", "bosspass1", "admin")
    await logged_in(client, "boss", "bosspass1")
    page = await (await client.get("/console/audit")).text()
    assert '<span class="audit-action" title="ticket.reply">答复居民</span>' in page
    assert '<span class="audit-action" title="console.login">登录工作台</span>' in page
    assert '<span class="audit-action" title="user.create">新建账号</span>' in page
    assert '<span class="audit-action" title="wecom.accept.refused">企业微信接单（被拒绝）</span>' in page
    assert '<span class="audit-action" title="ops.custom_thing">ops.custom_thing</span>' in page
    for asked in ("答复居民", "ticket.reply"):
        page = await (await client.get("/console/audit", params={"action": asked})).text()
        assert "共 1 条" in page and "答复居民" in page and "登录工作台" not in page, asked


async def test_the_search_finds_a_word_that_mixes_both_scripts_whichever_way_it_is_typed(
    client: Client, services: Services, wx: Any,
) -> None:
    """7號楼 (a phone's input switching scripts mid-word) was found by none of 7号楼, 7號樓, 7号樓:
    the search and the text are both folded to the simplified, character by character, so the four
    spellings find the same tickets — in summaries and in what residents said."""
    await _users(services)
    mixed = await make_ticket(services, None, status="open", summary="7號楼漏水了 水管")
    other_mix = await make_ticket(services, None, status="open", summary="7号樓楼道灯不亮")
    elsewhere = await make_ticket(services, None, status="open", summary="8號楼漏水", building="8")
    assert "转接人工服务" in await wx.say("o_mix", "转人工")
    await wx.say("o_mix", "７號樓的電梯又壞了")
    from tests.flow_helpers import tickets_of

    [handoff] = [t.number for t in await tickets_of(services, "o_mix")]
    await logged_in(client, "liu", "staffpass1")
    for q in ("7号楼", "7號樓", "7号樓", "7號楼", "７號楼"):
        body = await (await client.get("/console/tickets", params={"q": q})).text()
        found = set(re.findall(r'<td><a href="/console/tickets/([0-9-]+)">', body))
        assert found == {mixed, other_mix, handoff}, (q, found)
    body = await (await client.get("/console/tickets", params={"q": "号樓漏水"})).text()
    assert set(re.findall(r'<td><a href="/console/tickets/([0-9-]+)">', body)) == {mixed, elsewhere}
    body = await (await client.get("/console/tickets", params={"q": "电梯又坏"})).text()
    assert handoff in body and mixed not in body
    body = await (await client.get("/console/tickets", params={"q": "100%_"})).text()  # LIKE's wildcards are text
    assert "共 0 件" in body


async def test_refused_console_actions_are_in_the_audit_log_with_why_in_words(
    client: Client, services: Services,
) -> None:
    """办结 of a report merged into a job, a status the ticket forbids, a read-only user's form:
    refused and, until now, nowhere in the audit log. Each is a row by who tried, and the audit
    page says what was refused and why in words."""
    from tests.test_worker_words import burst

    await _users(services)
    await load_roster(services)
    job, kids = await burst(services)
    csrf = await logged_in(client, "liu", "staffpass1")
    for action in ("resolve", "close"):
        body = await (await client.post(f"/console/tickets/{kids[0]}/transition",
                                        data={"action": action, "csrf_token": csrf})).text()
        assert f"请对工单 {job} 操作" in body, action
    refused = await audit_rows(services)
    refused = [r for r in refused if r.action.endswith(".refused")]
    assert [(r.action, r.actor, r.target, r.detail["reason"], r.detail["job"]) for r in refused] == [
        ("ticket.resolve.refused", "liu", kids[0], "linked_report", job),
        ("ticket.close.refused", "liu", kids[0], "linked_report", job)]
    client.session.cookie_jar.clear()
    csrf = await logged_in(client, "ro", "readonly1")
    resp = await client.post(f"/console/tickets/{job}/transition", data={"action": "resolve", "csrf_token": csrf})
    assert resp.status == 403
    [row] = await audit_rows(services, "console.role_refused")
    assert (row.actor, row.target, row.detail["needed"]) == ("ro", f"/console/tickets/{job}/transition", "staff")
    await auth.create_user(services, "boss", "bosspass1", "admin")
    client.session.cookie_jar.clear()
    await logged_in(client, "boss", "bosspass1")
    page = await (await client.get("/console/audit")).text()
    assert '<span class="audit-action" title="ticket.close.refused">关闭（被拒绝）</span>' in page
    assert f"<b>拒绝原因</b>：工单 {kids[0]} 是并入工单 {job} 的同一问题反映" in page
    assert '<span class="audit-action" title="console.role_refused">无权限的操作（被拒绝）</span>' in page
    assert "<b>角色</b>：只读" in page and "<b>需要的角色</b>：" in page


async def test_seeing_a_residents_whole_phone_number_is_audited_without_the_number(
    client: Client, services: Services, clock: FakeClock,
) -> None:
    """Staff see phone numbers whole (they call back), and nobody could tell afterwards who had
    looked at whose: each page or /api read that shows a staff user a whole number is now an audit
    row (ticket.phone_view: who, when, which ticket, where, the resident hashed), never the number;
    once per person, ticket and page in half an hour (the queue reloads every minute). Read-only
    users, who see them masked, leave none."""
    from bot.privacy import hash_openid

    await _users(services)
    number = await _handoff(services, clock, said="转人工，我电话13900001111")
    async with services.sessions() as session, session.begin():
        ticket = await tickets.get_by_number(session, number)
        assert ticket is not None
        ticket.fields = {**(ticket.fields or {}), "phone": "13900001111"}
    quiet = await make_ticket(services, None, status="open", summary="路灯不亮")
    await logged_in(client, "ro", "readonly1")
    for path in ("/console", f"/console/tickets/{number}", "/console/tickets"):
        assert "13900001111" not in await (await client.get(path)).text()
    assert await audit_rows(services, "ticket.phone_view") == []
    client.session.cookie_jar.clear()
    await logged_in(client, "liu", "staffpass1")
    assert "13900001111" in await (await client.get("/console")).text()
    for _ in range(2):  # the ticket page, opened again after an action: one row
        assert "13900001111" in await (await client.get(f"/console/tickets/{number}")).text()
    assert "13900001111" in await (await client.get(f"/api/tickets/{number}")).text()
    assert (await client.get(f"/console/tickets/{quiet}")).status == 200  # no phone on it: nothing to audit
    rows = await audit_rows(services, "ticket.phone_view")
    assert [(r.actor, r.target, r.detail["page"]) for r in rows] == [
        ("liu", number, "queue"), ("liu", number, "ticket"), ("liu", number, "api")]
    assert {r.detail["resident"] for r in rows} == {hash_openid("o_hand")}
    everything = [f"{r.actor} {r.target} {r.detail}" for r in await audit_rows(services)]
    assert not any("13900001111" in line or "o_hand" in line for line in everything)
    await auth.create_user(services, "boss", "bosspass1", "admin")
    client.session.cookie_jar.clear()
    await logged_in(client, "boss", "bosspass1")
    page = await (await client.get("/console/audit", params={"action": "查看居民完整电话"})).text()
    # the admin's own login opened the queue, which shows the number whole: that is a row too
    assert "共 4 条" in page and "<b>在哪里看到</b>：工单页" in page and "<b>在哪里看到</b>：待处理队列" in page
    assert "13900001111" not in page


async def test_the_dashboards_figures_download_as_a_csv_excel_opens_with_its_chinese(
    client: Client, services: Services, clock: FakeClock,
) -> None:
    """The figures could be had as CSV only from the command line, whose UTF-8 without a BOM Excel
    on Windows shows garbled: the dashboard offers 下载表格, the same CSV with a BOM, for the
    range on screen; the download is audited."""
    import csv
    import io
    from urllib.parse import unquote

    await _users(services)
    await load_roster(services)
    await make_ticket(services, None, status="open", summary="路灯不亮")
    await logged_in(client, "ro", "readonly1")  # the figures are for every console user
    page = await (await client.get("/console/dashboard?since=2026-11-01&until=2026-11-23")).text()
    assert 'href="/console/dashboard.csv?since=2026-11-01&amp;until=2026-11-23"' in page
    resp = await client.get("/console/dashboard.csv", params={"since": "2026-11-01", "until": "2026-11-23"})
    assert resp.status == 200 and resp.headers["Content-Type"].startswith("text/csv")
    disposition = resp.headers["Content-Disposition"]
    assert disposition.startswith('attachment; filename="figures-2026-11-01-2026-11-23.csv"')
    assert unquote(disposition.split("UTF-8''")[1]) == "社区服务统计_2026-11-01至2026-11-23.csv"
    raw = await resp.read()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert rows[0][:3] == ["分组", "代码", "名称"] and rows[1][:3] == ["合计", "", "合计"] and rows[1][3] == "1"
    [row] = await audit_rows(services, "report.download")
    assert (row.actor, row.detail) == ("ro", {"since": "2026-11-01", "until": "2026-11-23"})
    resp = await client.get("/console/dashboard.csv", params={"since": "junk"})  # a bad date: the default range
    assert resp.status == 200 and (await resp.read()).startswith(b"\xef\xbb\xbf")


async def test_the_audit_log_names_who_acted_and_links_the_ticket(
    client: Client, services: Services, clock: FakeClock,
) -> None:
    """The audit log listed liu, wangwei, system and bare ticket numbers while every other page says
    刘敏, 王伟, 系统: now names (the account on hover), each ticket number a link to its page, and
    the 操作人 filter takes the name as well as the account."""
    await _users(services)
    await load_roster(services)
    number = await _handoff(services, clock)
    await staff_actions.staff_reply(services, number, "我们马上安排人上门。", "liu")
    await staff_actions.add_note(services, number, "已电话联系", "liu")
    await auth.create_user(services, "boss", "bosspass1", "admin")
    await logged_in(client, "boss", "bosspass1")
    page = await (await client.get("/console/audit")).text()
    assert '<td title="liu">刘敏</td>' in page and '<td title="system">系统</td>' in page
    assert f'<a href="/console/tickets/{number}">{number}</a>' in page
    for asked in ("刘敏", "liu"):
        page = await (await client.get("/console/audit", params={"actor": asked})).text()
        assert "共 2 条" in page and "答复居民" in page and "内部备注" in page and "新建账号" not in page, asked


async def test_a_hand_offs_page_shows_the_phone_the_resident_left_in_the_chat(
    client: Client, services: Services, wx: Any,
) -> None:
    """A hand-off whose resident wrote 我电话139… after 转人工 showed 居民电话 — : the clerk calling
    back had to read the conversation for it. The number they left is now shown there (whole for
    staff, masked for read-only users), not a number they gave as someone else's."""
    await _users(services)
    assert "转接人工服务" in await wx.say("o_callme", "转人工")
    await wx.say("o_callme", "物业电话是13800001111 打了没人接")
    await wx.say("o_callme", "我电话13912345678 下午在家")
    from tests.flow_helpers import tickets_of

    [number] = [t.number for t in await tickets_of(services, "o_callme")]
    await logged_in(client, "liu", "staffpass1")
    page = await (await client.get(f"/console/tickets/{number}")).text()
    shown = page[page.index('id="resident-phone"'):page.index("</dd>", page.index('id="resident-phone"'))]
    # kept on the waiting hand-off as its contact since 6e86ced (本工单留的), no longer read out of
    # the chat (居民在对话中留的): the same number either way, never the property company's
    assert "13912345678" in shown and "本工单留的" in shown and "13800001111" not in shown
    client.session.cookie_jar.clear()
    await logged_in(client, "ro", "readonly1")
    page = await (await client.get(f"/console/tickets/{number}")).text()
    shown = page[page.index('id="resident-phone"'):page.index("</dd>", page.index('id="resident-phone"'))]
    assert "139****5678" in shown and "13912345678" not in page


async def test_a_tickets_page_says_the_residents_phone_once(
    client: Client, services: Services, wx: Any, clock: FakeClock,
) -> None:
    """A hand-off whose resident left 我电话135… right after 转人工 (kept on the ticket as its phone)
    said 居民电话 — and, lower, 联系电话 135…: a clerk read the first and thought there was no number.
    居民电话 now shows the number left on the ticket (本工单留的), and 联系电话 is listed only when
    it is another number than the registered one."""
    await _users(services)
    assert "转接人工服务" in await wx.say("o_alone", "转人工")
    clock.advance(seconds=30)
    await wx.say("o_alone", "我是独居老人 能不能有人定期来看看我 我电话13512349876")
    from tests.flow_helpers import tickets_of

    [handoff] = [t.number for t in await tickets_of(services, "o_alone")]
    await make_resident(services, "o_same", phone="13812345678")
    same = await make_ticket(services, "o_same", status="open", fields={"phone": "13812345678"})
    await make_resident(services, "o_other", phone="13812345678")
    other = await make_ticket(services, "o_other", status="open", fields={"phone": "13700001111"})
    await logged_in(client, "liu", "staffpass1")

    def phone_row(page: str) -> str:
        at = page.index('id="resident-phone"')
        return page[at:page.index("</dd>", at)]

    page = await (await client.get(f"/console/tickets/{handoff}")).text()
    assert "13512349876" in phone_row(page) and "本工单留的" in phone_row(page)
    assert "<dt>联系电话</dt>" not in page
    page = await (await client.get(f"/console/tickets/{same}")).text()
    assert "13812345678" in phone_row(page) and "本工单留的" not in page and "<dt>联系电话</dt>" not in page
    page = await (await client.get(f"/console/tickets/{other}")).text()
    assert "13812345678" in phone_row(page) and "<dt>联系电话</dt><dd>13700001111</dd>" in page
    client.session.cookie_jar.clear()
    await logged_in(client, "ro", "readonly1")
    page = await (await client.get(f"/console/tickets/{handoff}")).text()
    assert "135****9876" in phone_row(page) and "13512349876" not in page


async def test_the_list_says_when_a_tickets_building_and_grid_are_unknown(client: Client, services: Services) -> None:
    """全部工单 left 楼栋 and 网格 blank for 小区东门路灯不亮 (no building): blank looked like a page still
    loading; now — as for 负责人. The search box says what it finds (电话 and 楼栋 too)."""
    await _users(services)
    number = await make_ticket(services, None, status="open", summary="小区东门路灯不亮", building=None)
    await logged_in(client, "liu", "staffpass1")
    body = await (await client.get("/console/tickets")).text()
    row = body[body.index(f'<a href="/console/tickets/{number}">'):]
    row = row[:row.index("</tr>")]
    assert re.findall(r"<td>([^<]*)</td>", row)[1:4] == ["—", "—", "—"]  # 楼栋, 网格, 负责人
    assert 'placeholder="工单号、电话、楼栋或居民说的话"' in body


def test_a_wait_under_a_minute_is_not_zero_minutes() -> None:
    """The queue said 已等待 0 分钟 of a hand-off that had just come in."""
    from datetime import UTC, datetime, timedelta

    from bot.console.labels import Labels
    from bot.texts import Texts

    labels = Labels(Texts(), "Asia/Shanghai")
    now = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
    assert labels.waited(now - timedelta(seconds=20), now) == "不到 1 分钟"
    assert labels.waited(now - timedelta(minutes=7), now) == "7 分钟"
    assert labels.waited(now - timedelta(hours=3), now) == "3 小时"
