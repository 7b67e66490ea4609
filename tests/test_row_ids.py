"""A row id in a path past what the databases hold (BigId: bigint, SQLite's INTEGER) names no row:
every route that takes one answers 404, as for an id no row has, not a database error. Both backends."""

from __future__ import annotations

import secrets
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from bot.services import Services
from storage.db import MAX_ROW_ID, row_id
from tests.staff_support import logged_in
from tests.test_outages import BEARER, settings_overrides  # noqa: F401  (the API token)

Client = TestClient[Any, Any]

# the largest id a row can have (no row has it here), and the first no row can have
IDS = (str(MAX_ROW_ID), str(MAX_ROW_ID + 1), "9" * 40)


def test_row_id_is_none_past_the_largest_id() -> None:
    assert row_id("7") == 7 and row_id("007") == 7
    assert row_id(str(MAX_ROW_ID)) == MAX_ROW_ID
    assert row_id(str(MAX_ROW_ID + 1)) is None and row_id("9" * 40) is None


@pytest.mark.parametrize("said", IDS)
async def test_console_and_api_routes_answer_404(client: Client, services: Services, said: str) -> None:
    csrf = await logged_in(client, "admin", "community123")

    def form(**fields: str) -> dict[str, str]:
        return {"csrf_token": csrf, "form_id": secrets.token_hex(8), **fields}

    resp = await client.post(f"/console/users/{said}", data=form(op="role", role="readonly"))
    assert resp.status == 404
    resp = await client.post(f"/console/outages/{said}", data=form(op="end"))
    assert resp.status == 404 and "没有这条通知" in await resp.text()
    assert (await client.get(f"/console/outages/{said}/confirm")).status == 404
    resp = await client.post(f"/console/activities/{said}/cancel", data=form(reason="暴雨"))
    assert resp.status == 404 and "没有这个活动" in await resp.text()
    resp = await client.post(f"/api/outages/{said}", json={"action": "end"}, headers=BEARER)
    assert resp.status == 404 and (await resp.json())["error"]
