"""A console form's one-time id is kept in the state store under the store's own key prefix, as
every other entry is: two runs (or two communities) sharing one Redis never share a form's claim."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient
from sqlalchemy import select

from bot.clock import FakeClock
from bot.console import auth
from bot.services import Services
from storage.models import StaffUser
from tests.staff_support import audit_rows, logged_in, make_resident, make_ticket


async def test_a_forms_claim_is_kept_in_the_stores_namespace_and_released_from_it(
    client: TestClient[Any, Any], services: Services, clock: FakeClock,
) -> None:
    await auth.create_user(services, "liu", "staffpass1", "staff", display_name="刘敏")
    async with services.sessions() as session:
        user_id = (await session.scalars(select(StaffUser.id).where(StaffUser.username == "liu"))).one()
    await make_resident(services, "o_form")
    number = await make_ticket(services, "o_form")
    csrf = await logged_in(client, "liu", "staffpass1")
    forms = services.store.key("console", "form")
    note = {"csrf_token": csrf, "form_id": "fixed-id"}  # the same id a page of another run could carry

    refused = await (await client.post(f"/console/tickets/{number}/note", data={**note, "text": " "})).text()
    assert "这份表单刚才已经提交过" not in refused
    assert await services.store.keys(forms) == []  # the refused form's claim is released

    for _ in range(2):
        body = await (await client.post(f"/console/tickets/{number}/note", data={**note, "text": "居民说下午在家"})).text()
    assert "这份表单刚才已经提交过" in body
    assert len(await audit_rows(services, "ticket.note")) == 1
    assert await services.store.keys(forms) == [services.store.key("console", "form", str(user_id), "fixed-id")]
