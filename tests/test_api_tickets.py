"""GET /api/tickets and /api/tickets/{number} per CONTRACT: bearer token, filters, 400/401/404."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from bot.services import Services
from tests.conftest import WeChat

TOKEN = "test-api-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"api_token": TOKEN}


async def file_two(wx: WeChat) -> None:
    """A complaint (dispatched to 孙丽) by oA, and a hand-off by oB."""
    for answer in ["1", "1", "9栋1单元", "楼道灯不亮三天了", "好了", "13812345678", "否", "1"]:
        await wx.say("oA", answer)
    await wx.say("oB", "6")


async def test_token_is_required(client: TestClient[Any, Any]) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}, {"Authorization": "Basic x"}):
        resp = await client.get("/api/tickets", headers=headers)
        assert resp.status == 401
        resp = await client.get("/api/tickets/20261123-0001", headers=headers)
        assert resp.status == 401
    assert (await client.get("/api/tickets", headers=AUTH)).status == 200


async def test_list_with_filters_newest_first(wx: WeChat, client: TestClient[Any, Any]) -> None:
    await file_two(wx)
    resp = await client.get("/api/tickets", headers=AUTH)
    body = await resp.json()
    assert [t["number"] for t in body] == ["20261123-0002", "20261123-0001"]
    for key in ("number", "kind", "status", "resident", "fields", "grid", "assignee", "due_at",
                "satisfaction", "created_at", "updated_at"):
        assert key in body[0]
    escalated = await (await client.get("/api/tickets?status=escalated", headers=AUTH)).json()
    assert [t["kind"] for t in escalated] == ["handoff"] and escalated[0]["resident"] == "oB"
    mine = await (await client.get("/api/tickets?kind=complaint&resident=oA&assignee=sunli", headers=AUTH)).json()
    assert len(mine) == 1 and mine[0]["fields"]["phone"] == "13812345678" and mine[0]["grid"] == "G3"
    assert await (await client.get("/api/tickets?assignee=nobody", headers=AUTH)).json() == []
    page = await (await client.get("/api/tickets?limit=1&offset=1", headers=AUTH)).json()
    assert [t["number"] for t in page] == ["20261123-0001"]


@pytest.mark.parametrize(
    "query",
    ["kind=parcel", "status=done", "limit=0", "limit=500", "limit=abc", "offset=-1", "resident=" + "x" * 65],
)
async def test_bad_query_values_are_400(client: TestClient[Any, Any], query: str) -> None:
    resp = await client.get(f"/api/tickets?{query}", headers=AUTH)
    assert resp.status == 400 and "error" in await resp.json()


async def test_one_ticket_with_events_and_conversation(wx: WeChat, client: TestClient[Any, Any], services: Services) -> None:
    await file_two(wx)
    resp = await client.get("/api/tickets/20261123-0001", headers=AUTH)
    body = await resp.json()
    assert body["kind"] == "complaint" and body["assignee"] == "sunli"
    assert [e["action"] for e in body["events"]][:2] == ["created", "assign"]
    said = [m["text"] for m in body["conversation"] if m["direction"] == "in"]
    assert said == ["1", "1", "9栋1单元", "楼道灯不亮三天了", "好了", "13812345678", "否", "1"]
    assert "20261123-0001" in body["conversation"][-1]["text"]
    handoff = await (await client.get("/api/tickets/20261123-0002", headers=AUTH)).json()
    assert handoff["status"] == "escalated" and handoff["conversation"][0]["text"] == "6"
    for missing in ("20261123-0099", "nope", "x" * 40):
        resp = await client.get(f"/api/tickets/{missing}", headers=AUTH)
        assert resp.status == 404


async def test_no_token_configured_means_no_bearer_access(client: TestClient[Any, Any], services: Services) -> None:
    services.settings.api_token = ""
    resp = await client.get("/api/tickets", headers={"Authorization": "Bearer "})
    assert resp.status == 401
