"""The audit log's 对象 column names an outage and an activity as a clerk knows them — 3、4号楼停水,
楼道清洁志愿行动 — linked to their pages, not by internal id or key (outage:1, clean). Both backends."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from aiohttp.test_utils import TestClient

from bot import activities, outages
from bot.clock import FakeClock
from bot.services import Services
from tests.staff_support import logged_in
from tests.test_activities import svc  # noqa: F401 (fixture: the test activities loaded)
from tests.wecom_driver import load_demo_roster

Client = TestClient[Any, Any]


def _targets(page: str) -> list[str]:
    return [re.sub(r"\s+", " ", c).strip() for c in re.findall(r'<td class="target">(.*?)</td>', page, re.S)]


async def test_outages_and_activities_are_named_in_the_audit_log(
    client: Client, svc: Services, clock: FakeClock,  # noqa: F811
) -> None:
    await load_demo_roster(svc)
    await activities.load_activities(svc, svc.extras["test.activities_path"])
    async with svc.sessions() as session, session.begin():
        water, _ = await outages.announce(svc, session, kind="water", buildings=("3", "4"), reason="管道抢修",
                                          expected_end=clock.now() + timedelta(hours=5), actor="liustaff", via="wecom")
    await logged_in(client, "admin", "community123")
    page = await (await client.get("/console/activities")).text()
    [clean_id] = re.findall(r'action="/console/activities/(\d+)/cancel"', page)[:1]
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    form_id = re.search(rf'/console/activities/{clean_id}/cancel".*?name="form_id" value="([^"]+)"', page, re.S).group(1)  # type: ignore[union-attr]
    await client.post(f"/console/activities/{clean_id}/cancel", data={"csrf_token": csrf, "form_id": form_id, "reason": "下雨"})
    audit = await (await client.get("/console/audit")).text()
    shown = _targets(audit)
    assert f'<a href="/console/outages" title="outage:{water.id}">3、4号楼停水</a>' in shown, shown  # raw on hover
    assert '<a href="/console/activities" title="clean">楼道清洁志愿行动</a>' in shown, shown
    assert not any(t.startswith("outage:") or t == "clean" for t in shown), shown
