"""Failed console logins throttled per client address, on both backends: the limit and its window,
unknown usernames and password sprays counted, other addresses unaffected, a success forgiving
only its own username's failures, and the client address read from X-Forwarded-For only when the
socket peer is a trusted proxy."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from bot.clock import FakeClock
from bot.console import auth
from bot.services import Services
from storage.models import StaffUser
from tests.staff_support import audit_rows, csrf_of

Client = TestClient[Any, Any]
THROTTLED = "登录失败次数过多"
ALICE, BOB = "203.0.113.7", "198.51.100.9"  # documentation addresses, as nginx forwards them


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    """The test client connects from 127.0.0.1, standing in for nginx on the same host."""
    return {"trusted_proxies": ["127.0.0.1"]}


async def login_from(client: Client, forwarded_for: str | None, username: str, password: str) -> ClientResponse:
    """Open the login page and submit it, both requests carrying X-Forwarded-For when given."""
    headers = {} if forwarded_for is None else {"X-Forwarded-For": forwarded_for}
    page = await client.get("/console/login", headers=headers)
    assert page.status == 200, await page.text()
    resp = await client.post(
        "/console/login", data={"username": username, "password": password, "csrf_token": csrf_of(await page.text())},
        headers=headers, allow_redirects=False,
    )
    if resp.status == 303:
        client.session.cookie_jar.clear()  # logged out again, so the next login page is a form
    return resp


async def fail_unknown(client: Client, forwarded_for: str | None, times: int, tag: str = "ghost") -> None:
    """times failed logins with usernames that do not exist."""
    for i in range(times):
        resp = await login_from(client, forwarded_for, f"{tag}{i}", "whatever1")
        assert resp.status == 401, f"attempt {i + 1}: {resp.status}"


async def _users(services: Services) -> None:
    await auth.create_user(services, "liu", "staffpass1", "staff", display_name="刘敏")
    for name in ("wang", "zhao", "sun", "zhou"):
        await auth.create_user(services, name, f"{name}-secret-1", "staff")


async def test_unknown_usernames_count_and_then_even_the_right_password_is_refused(
    client: Client, services: Services,
) -> None:
    await _users(services)
    await fail_unknown(client, ALICE, auth.IP_MAX_FAILURES)
    resp = await login_from(client, ALICE, "liu", "staffpass1")
    body = await resp.text()
    assert resp.status == 429 and THROTTLED in body and "工作人员登录" in body
    async with services.sessions() as session:
        liu = await session.scalar(select(StaffUser).where(StaffUser.username == "liu"))
    assert liu is not None and liu.failed_logins == 0 and liu.locked_until is None  # password never checked
    throttled = await audit_rows(services, "console.login_throttled")
    assert [(r.actor, r.target) for r in throttled] == [("liu", "liu")]
    assert throttled[0].detail["ip"] == ALICE and throttled[0].detail["failures"] == auth.IP_MAX_FAILURES
    assert "staffpass1" not in str(throttled[0].detail)
    assert not [r for r in await audit_rows(services, "console.login") if r.target == "liu"]
    failed = await audit_rows(services, "console.login_failed")
    assert len(failed) == auth.IP_MAX_FAILURES and {r.detail["ip"] for r in failed} == {ALICE}


async def test_a_password_spray_is_stopped_before_any_account_locks(client: Client, services: Services) -> None:
    await _users(services)
    names = ["liu", "wang", "zhao", "sun", "zhou"]
    per_user = auth.MAX_FAILURES - 1  # one short of each account's lockout
    assert per_user * len(names) == auth.IP_MAX_FAILURES
    for attempt in range(per_user):
        for name in names:
            resp = await login_from(client, ALICE, name, f"Spring2026-{attempt}")
            assert resp.status == 401
    resp = await login_from(client, ALICE, "wang", "wang-secret-1")
    assert resp.status == 429 and THROTTLED in await resp.text()
    async with services.sessions() as session:
        users = list((await session.execute(select(StaffUser))).scalars())
    assert all(u.locked_until is None for u in users)


async def test_another_address_is_unaffected(client: Client, services: Services) -> None:
    await _users(services)
    await fail_unknown(client, ALICE, auth.IP_MAX_FAILURES)
    assert (await login_from(client, ALICE, "ghost", "whatever1")).status == 429
    assert (await login_from(client, BOB, "ghost", "whatever1")).status == 401
    assert (await login_from(client, BOB, "liu", "staffpass1")).status == 303
    assert (await login_from(client, ALICE, "liu", "staffpass1")).status == 429  # Bob's success resets nothing of Alice's


async def test_logins_work_again_once_the_window_has_passed(
    client: Client, services: Services, clock: FakeClock,
) -> None:
    await _users(services)
    await fail_unknown(client, ALICE, auth.IP_MAX_FAILURES)
    clock.advance(seconds=auth.IP_WINDOW.total_seconds() - 1)
    assert (await login_from(client, ALICE, "liu", "staffpass1")).status == 429
    clock.advance(seconds=2)
    assert (await login_from(client, ALICE, "liu", "staffpass1")).status == 303


async def test_refusals_grow_the_audit_by_one_row_per_episode(
    client: Client, services: Services, clock: FakeClock,
) -> None:
    """Hammering a throttled address adds no row per request: the episode's row counts them."""
    await fail_unknown(client, ALICE, auth.IP_MAX_FAILURES)
    for i in range(12):
        clock.advance(seconds=1)
        assert (await login_from(client, ALICE, f"spray{i}", "whatever1")).status == 429
    (row,) = await audit_rows(services, "console.login_throttled")
    assert row.target == auth.unknown_username("spray0") and row.detail["refused"] == 12 and row.detail["ip"] == ALICE
    assert row.detail["last_at"] == clock.now().isoformat()
    assert (await login_from(client, BOB, "ghost", "whatever1")).status == 401  # Bob has his own count
    clock.advance(seconds=auth.IP_WINDOW.total_seconds() + 1)  # Alice's window has passed: a new episode
    await fail_unknown(client, ALICE, auth.IP_MAX_FAILURES, tag="again")
    assert (await login_from(client, ALICE, "ghost", "whatever1")).status == 429
    rows = await audit_rows(services, "console.login_throttled")
    assert [r.detail["refused"] for r in rows] == [12, 1]


async def test_the_window_slides_one_failure_at_a_time(
    client: Client, services: Services, clock: FakeClock,
) -> None:
    await fail_unknown(client, ALICE, 1, tag="early")
    clock.advance(minutes=5)
    await fail_unknown(client, ALICE, auth.IP_MAX_FAILURES - 1, tag="late")
    assert (await login_from(client, ALICE, "ghost", "whatever1")).status == 429
    clock.advance(seconds=auth.IP_WINDOW.total_seconds() - 5 * 60 + 1)  # only the early failure aged out
    assert (await login_from(client, ALICE, "ghost", "whatever1")).status == 401
    assert (await login_from(client, ALICE, "ghost", "whatever1")).status == 429


async def test_a_success_forgives_only_its_own_usernames_failures(client: Client, services: Services) -> None:
    await _users(services)
    others = auth.IP_MAX_FAILURES - 3
    await fail_unknown(client, ALICE, others)
    for _ in range(2):  # the user's own typos
        assert (await login_from(client, ALICE, "liu", "staffpas1")).status == 401
    assert (await login_from(client, ALICE, "liu", "staffpass1")).status == 303
    # liu's two typos are forgiven, the failures on other names are not: three more fit the limit
    await fail_unknown(client, ALICE, auth.IP_MAX_FAILURES - others, tag="after")
    assert (await login_from(client, ALICE, "liu", "staffpass1")).status == 429


async def test_the_right_most_untrusted_forwarded_address_is_the_client(client: Client, services: Services) -> None:
    await _users(services)
    # What nginx sends when a client forges the header itself: the forged part, then the real peer.
    for i in range(auth.IP_MAX_FAILURES):
        resp = await login_from(client, f"10.9.{i}.1, {ALICE}", f"ghost{i}", "whatever1")
        assert resp.status == 401
    assert (await login_from(client, f"10.9.99.1, {ALICE}", "liu", "staffpass1")).status == 429
    assert (await login_from(client, ALICE, "liu", "staffpass1")).status == 429
    assert (await login_from(client, BOB, "liu", "staffpass1")).status == 303


async def test_requests_without_the_header_keep_the_proxy_address(client: Client, services: Services) -> None:
    await _users(services)
    assert (await client.get("/healthz")).status == 200  # a local health check needs no header
    await fail_unknown(client, None, auth.IP_MAX_FAILURES)
    assert (await login_from(client, None, "liu", "staffpass1")).status == 429
    assert (await login_from(client, ALICE, "liu", "staffpass1")).status == 303
    throttled = await audit_rows(services, "console.login_throttled")
    assert [r.detail["ip"] for r in throttled] == ["127.0.0.1"]


class TestWithoutTrustedProxies:
    """The default: nobody is trusted, so the socket peer is the client whatever the headers say."""

    @pytest.fixture
    def settings_overrides(self) -> dict[str, Any]:
        """No trusted proxies."""
        return {}

    async def test_a_forged_forwarded_header_is_ignored(
        self, client: Client, services: Services, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        from bot.console import login

        monkeypatch.setattr(login, "_proxy_warned", False)
        await _users(services)
        for i in range(auth.IP_MAX_FAILURES):
            resp = await login_from(client, f"192.0.2.{i + 1}", f"ghost{i}", "whatever1")
            assert resp.status == 401
        resp = await login_from(client, BOB, "liu", "staffpass1")
        assert resp.status == 429 and THROTTLED in await resp.text()
        failed = await audit_rows(services, "console.login_failed")
        assert {r.detail["ip"] for r in failed} == {"127.0.0.1"}
        throttled = await audit_rows(services, "console.login_throttled")
        assert [r.detail["ip"] for r in throttled] == ["127.0.0.1"]
        # The operator is told once that logins arrive through a proxy nobody trusts.
        warned = [r for r in caplog.records if "CB_TRUSTED_PROXIES is empty" in r.getMessage()]
        assert len(warned) == 1


async def test_the_login_page_states_both_limits(client: Client) -> None:
    page = await (await client.get("/console/login")).text()
    assert f"连续 {auth.MAX_FAILURES} 次输错密码" in page
    assert f"登录失败 {auth.IP_MAX_FAILURES} 次" in page
