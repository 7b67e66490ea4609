"""/healthz, /metrics and the logs: JSON lines with a request id, openids only hashed, phones masked."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client.parser import text_string_to_metric_families

from bot import dialog
from bot.app import create_app
from bot.inbound import Inbound
from bot.logs import JsonFormatter, fields
from bot.privacy import hash_openid
from bot.services import Services, open_services
from bot.sim.wechat_client import WeChatSigner
from tests.conftest import make_settings
from tests.fixtures.wechat import FIXTURE_OPENID, load, sign

PHONE = "13812345678"


def _signer(svc: Services) -> WeChatSigner:
    s = svc.settings
    return WeChatSigner(s.wechat_token, s.wechat_appid, s.wechat_aes_key)


async def _metrics(client: TestClient[Any, Any]) -> dict[str, list[Any]]:
    resp = await client.get("/metrics")
    assert resp.status == 200 and resp.content_type == "text/plain"
    families = text_string_to_metric_families(await resp.text())
    return {f.name: list(f.samples) for f in families}


def _value(samples: list[Any], name: str, **labels: str) -> float:
    return sum(s.value for s in samples if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()))


async def test_healthz_is_json_while_serving(client: TestClient[Any, Any]) -> None:
    resp = await client.get("/healthz")
    assert resp.status == 200 and resp.content_type == "application/json"
    assert await resp.json() == {"ok": True, "database": "ok", "state": "ok"}
    assert resp.headers["X-Request-Id"]


async def test_healthz_503_with_json_when_the_database_is_gone(tmp_path: Any) -> None:
    settings = make_settings("embedded", tmp_path, "postgresql+asyncpg://postgres@127.0.0.1:1/nowhere")
    svc = open_services(settings)
    try:
        async with TestClient(TestServer(create_app(settings, services=svc, features=_health_only()))) as c:
            resp = await c.get("/healthz")
            body = await resp.json()
    finally:
        await svc.close()
    assert resp.status == 503
    assert body["ok"] is False and body["database"].startswith("error: ")


def _health_only() -> list[Any]:
    from bot import health

    return [health.setup]


async def test_metrics_count_messages_latency_refusals_and_outbox(
    client: TestClient[Any, Any], services: Services
) -> None:
    signer = _signer(services)
    before = await _metrics(client)
    for name in ("text", "text", "unknown_type", "unknown_event"):  # the second text is WeChat's retry
        signed = sign(signer, load(name), "safe")
        resp = await client.post("/wechat", params=signed.params, data=signed.body)
        assert resp.status == 200
    resp = await client.post("/wechat", params=dict(signed.params, signature="0" * 40), data=signed.body)
    assert resp.status == 403
    after = await _metrics(client)

    def grew(family: str, sample: str, **labels: str) -> float:
        return _value(after[family], sample, **labels) - _value(before.get(family, []), sample, **labels)

    assert grew("cb_messages", "cb_messages_total", type="text") == 1
    assert grew("cb_messages", "cb_messages_total", type="unknown") == 1  # the event no resident sent
    assert grew("cb_messages", "cb_messages_total", type="other") == 1  # a mini-program card: answered
    assert {s.labels["intent"] for s in after["cb_messages"] if s.labels["type"] == "text"}  # by intent too
    assert grew("cb_duplicates", "cb_duplicates_total") == 1
    assert grew("cb_reply_seconds", "cb_reply_seconds_count") == 3
    assert grew("cb_reply_seconds", "cb_reply_seconds_bucket", le="+Inf") == 3
    assert grew("cb_rejected", "cb_rejected_total", reason="signature") == 1
    assert "cb_outbox_depth" in after and "cb_outbox_failures" in after and "cb_outbox_sent" in after


@pytest.fixture
def json_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """caplog formatting every record as the service does (bot.logs.JsonFormatter)."""
    caplog.set_level(logging.DEBUG)
    caplog.handler.setFormatter(JsonFormatter())
    return caplog


async def test_logs_never_show_the_openid_or_the_phone(
    client: TestClient[Any, Any], services: Services, json_logs: pytest.LogCaptureFixture
) -> None:
    signer = _signer(services)
    for mode in ("plain", "safe"):
        xml = load("text").replace(">24700000000000001<", f">2470000000000000{ord(mode[0])}<")
        signed = sign(signer, xml, mode)
        signed.params["openid"] = FIXTURE_OPENID  # WeChat puts the openid in the query string too
        resp = await client.post("/wechat", params=signed.params, data=signed.body)
        assert resp.status == 200
    text = json_logs.text
    assert text, "nothing was logged"
    assert FIXTURE_OPENID not in text and PHONE not in text
    assert hash_openid(FIXTURE_OPENID) in text
    for line in text.splitlines():
        record = json.loads(line)
        assert record["rid"] and record["level"] and record["logger"]
    handled = [json.loads(line) for line in text.splitlines() if json.loads(line)["msg"].startswith("wechat text")]
    assert len(handled) == 2 and all(r["openid"] == hash_openid(FIXTURE_OPENID) for r in handled)
    assert len({r["rid"] for r in handled}) == 2  # one request id per request


async def test_a_failure_is_logged_scrubbed_and_answered_politely(
    client: TestClient[Any, Any], services: Services, json_logs: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def breaks(svc: Services, inbound: Inbound, delivery: str | None = None) -> str | None:
        raise RuntimeError(f"could not save {inbound.openid} / {PHONE}")

    monkeypatch.setattr(dialog, "handle", breaks)
    signer = _signer(services)
    signed = sign(signer, load("text"), "plain")
    resp = await client.post("/wechat", params=signed.params, data=signed.body, headers={"X-Request-Id": "req-42"})
    assert resp.status == 200 and resp.headers["X-Request-Id"] == "req-42"
    reply = signer.unwrap(await resp.text(), signed.params)
    assert reply is not None and reply["Content"] == services.texts.get("errors.resend")
    failures = [json.loads(line) for line in json_logs.text.splitlines() if '"message not handled"' in line]
    assert len(failures) == 1
    failure = failures[0]
    assert failure["rid"] == "req-42" and failure["level"] == "ERROR"
    assert "RuntimeError: could not save " + hash_openid(FIXTURE_OPENID) in failure["exc"]
    assert "138****5678" in failure["exc"]
    assert FIXTURE_OPENID not in json_logs.text and PHONE not in json_logs.text


async def test_request_id_is_ours_unless_the_callers_is_sane(client: TestClient[Any, Any]) -> None:
    mine = (await client.get("/healthz")).headers["X-Request-Id"]
    other = (await client.get("/healthz")).headers["X-Request-Id"]
    assert mine and other and mine != other
    given = await client.get("/healthz", headers={"X-Request-Id": "abc.DEF-123_x"})
    assert given.headers["X-Request-Id"] == "abc.DEF-123_x"
    odd = await client.get("/healthz", headers={"X-Request-Id": "a b<script>" + "x" * 100})
    assert odd.headers["X-Request-Id"] != "a b<script>" + "x" * 100 and odd.headers["X-Request-Id"].isalnum()


def test_formatter_hashes_openid_fields_and_masks_phones() -> None:
    record = logging.LogRecord("bot.test", logging.INFO, __file__, 1, "call %s at 021-12345678", ("13900001111",), None)
    record.__dict__.update(fields(openid="oSomeResident", resident=hash_openid("oOther"), note=f"电话{PHONE}", n=3))
    line = json.loads(JsonFormatter().format(record))
    assert line["msg"] == "call 139****1111 at 021-****5678"
    assert line["openid"] == hash_openid("oSomeResident")
    assert line["resident"] == hash_openid("oOther")  # already hashed: left alone
    assert line["note"] == "电话138****5678" and line["n"] == 3


def test_formatter_hashes_openid_query_parameters() -> None:
    record = logging.LogRecord(
        "aiohttp.access", logging.INFO, __file__, 1,
        '127.0.0.1 "POST /wechat?signature=ab&openid=oQueryResident&nonce=1 HTTP/1.1" 200', (), None,
    )
    line = json.loads(JsonFormatter().format(record))
    assert "oQueryResident" not in line["msg"]
    assert f"openid={hash_openid('oQueryResident')}&nonce=1" in line["msg"]


async def _block_resident_pushes(services: Services, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make writing a push to a resident fail with an error that quotes the row: PostgreSQL's own
    'Failing row contains (…)' of a CHECK constraint; SQLite's errors quote no values, so there the
    outbox's write raises the same text."""
    from sqlalchemy import text

    if services.engine.dialect.name == "postgresql":
        async with services.engine.begin() as conn:
            await conn.execute(text("ALTER TABLE outbox ADD CONSTRAINT obs_block CHECK (channel <> 'wechat') NOT VALID"))
        return
    from bot import outbox

    async def refused(_session: Any, channel: str, target: str, *_args: Any, **_kw: Any) -> None:
        raise RuntimeError(f'new row for relation "outbox" violates check constraint\n'
                           f"DETAIL:  Failing row contains (24, {channel}, {target}, pending)")

    monkeypatch.setattr(outbox, "enqueue", refused)


async def _unblock(services: Services) -> None:
    from sqlalchemy import text

    if services.engine.dialect.name == "postgresql":
        async with services.engine.begin() as conn:
            await conn.execute(text("ALTER TABLE outbox DROP CONSTRAINT IF EXISTS obs_block"))


async def test_a_background_jobs_failure_names_no_resident(
    client: TestClient[Any, Any], services: Services, clock: Any, json_logs: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The reminder job's failure quotes the row it could not write, openid and all; the job runs
    bound to no request, and the openid is the short kind tests and the simulator use."""
    from bot import schedule
    from tests.conftest import WeChat

    openid = "oRes_int2"
    wx = WeChat(client, services.settings)
    assert await wx.say(openid, "路灯坏了")  # a question asked: the idle nudge is planned
    await _block_resident_pushes(services, monkeypatch)
    try:
        json_logs.clear()
        clock.advance(services.settings.flow_idle_nudge_s + 60)
        await schedule.run_due(services)
    finally:
        await _unblock(services)
    failures = [json.loads(line) for line in json_logs.text.splitlines() if "reminder delivery failed" in line]
    assert failures and "Failing row contains" in failures[0]["exc"], json_logs.text[-2000:]
    assert hash_openid(openid) in failures[0]["exc"]
    assert openid not in json_logs.text


def test_formatter_hashes_wechat_shaped_openids_it_never_saw_and_leaves_words_alone() -> None:
    unseen = "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"  # WeChat's shape: o and 27 letters, digits, _ or -
    words = "outbox_sender_lease_expired_ reminder:22 flow_nudge 2026-11-24T10:27:49 oRes_never_bound"
    try:
        raise RuntimeError(f"Failing row contains (24, wechat, {unseen}, pending) {words}")
    except RuntimeError:
        import sys

        record = logging.LogRecord("bot.schedule", logging.ERROR, __file__, 1, "for %s", (unseen,), sys.exc_info())
    line = json.loads(JsonFormatter().format(record))
    assert unseen not in json.dumps(line)
    assert line["msg"] == f"for {hash_openid(unseen)}"
    assert f"(24, wechat, {hash_openid(unseen)}, pending) {words}" in line["exc"]


def test_log_times_carry_their_utc_offset() -> None:
    import re
    from datetime import datetime

    record = logging.LogRecord("bot.test", logging.INFO, __file__, 1, "x", (), None)
    line = json.loads(JsonFormatter().format(record))
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d", line["t"]), line["t"]
    assert abs(datetime.fromisoformat(line["t"]).timestamp() - record.created) < 1


def test_the_schema_check_at_start_logs_nothing_at_info(capfd: pytest.CaptureFixture[str], tmp_path: Any) -> None:
    """A gunicorn worker configures logging, then checks the schema (alembic): its plugin and
    context lines were 8 INFO lines per worker at every start, noise before the service's own."""
    import asyncio

    from bot import logs
    from storage.migrate import current_revision

    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        logs.configure("INFO")
        asyncio.run(current_revision(f"sqlite+aiosqlite:///{tmp_path / 'x.db'}"))
        logging.getLogger("bot.test").info("ours")
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
    lines = [json.loads(line) for line in capfd.readouterr().err.splitlines() if line.startswith("{")]
    assert [line["msg"] for line in lines] == ["ours"], lines
