"""Speaks to /wecom as WeCom's servers do (encrypted with wechatpy's enterprise crypto), and
helpers shared by the dispatch tests: a roster in the database, tickets routed, outbox rows."""

from __future__ import annotations

import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any

import xmltodict
from aiohttp.test_utils import TestClient
from sqlalchemy import select
from wechatpy.enterprise.crypto import WeChatCrypto

from bot import dispatch, roster, tickets
from bot.dispatch import DispatchResult
from bot.services import Services
from storage.models import OutboxItem, Ticket, TicketEvent


def _cdata(value: str) -> str:
    return "<![CDATA[" + value.replace("]]>", "]]]]><![CDATA[>") + "]]>"


class WeCom:
    """Posts encrypted app messages to /wecom and decrypts the passive reply."""

    def __init__(self, client: TestClient[Any, Any], svc: Services) -> None:
        s = svc.settings
        self.client = client
        self.corpid = s.wecom_corpid
        self.crypto = WeChatCrypto(s.wecom_token, s.wecom_aes_key, s.wecom_corpid)

    def message_xml(self, user: str, msg_type: str, msg_id: int | None = None, **fields: str) -> str:
        """A WeCom app message (text, image …) from user."""
        parts = [
            f"<ToUserName>{_cdata(self.corpid)}</ToUserName>",
            f"<FromUserName>{_cdata(user)}</FromUserName>",
            f"<CreateTime>{int(time.time())}</CreateTime>",
            f"<MsgType>{_cdata(msg_type)}</MsgType>",
        ]
        parts += [f"<{k}>{_cdata(v)}</{k}>" for k, v in fields.items()]
        if msg_type != "event":
            parts.append(f"<MsgId>{msg_id if msg_id is not None else secrets.randbits(62)}</MsgId>")
        parts.append("<AgentID>1000002</AgentID>")
        return "<xml>" + "".join(parts) + "</xml>"

    def wrap(self, xml: str, *, sent_at: float | None = None) -> tuple[dict[str, str], bytes]:
        """Query parameters and encrypted body, as WeCom posts them (signed now, or at sent_at)."""
        ts, nonce = str(int(time.time() if sent_at is None else sent_at)), secrets.token_hex(6)
        envelope = xmltodict.parse(self.crypto.encrypt_message(xml, nonce, ts))["xml"]
        params = {"msg_signature": envelope["MsgSignature"], "timestamp": ts, "nonce": nonce}
        body = f"<xml><ToUserName>{_cdata(self.corpid)}</ToUserName><AgentID>{_cdata('1000002')}</AgentID><Encrypt>{_cdata(envelope['Encrypt'])}</Encrypt></xml>"
        return params, body.encode()

    async def post(self, xml: str) -> tuple[int, str]:
        """Post one message; (status, decrypted reply Content or the error body)."""
        params, body = self.wrap(xml)
        resp = await self.client.post("/wecom", params=params, data=body)
        text = await resp.text()
        if resp.status != 200 or not text:
            return resp.status, text
        sig = xmltodict.parse(text)["xml"]["MsgSignature"]
        plain = self.crypto.decrypt_message(text, sig, params["timestamp"], params["nonce"])
        reply = xmltodict.parse(plain)["xml"]
        assert reply["ToUserName"] == xmltodict.parse(xml)["xml"]["FromUserName"]
        return resp.status, str(reply["Content"])

    async def say(self, user: str, text: str, msg_id: int | None = None) -> str:
        """Send a text command; the reply text."""
        status, reply = await self.post(self.message_xml(user, "text", msg_id, Content=text))
        assert status == 200, reply
        return reply


def stopping_after(run: Callable[..., Awaitable[str]]) -> Callable[..., Awaitable[str]]:
    """worker_commands.run as a process that stops after the command's transaction committed and
    before its reply went out would run it: the command done, then an error (WeCom retries)."""

    async def stops_after_the_command(*args: Any, **kwargs: Any) -> str:
        await run(*args, **kwargs)
        raise RuntimeError("the process stopped here")

    return stops_after_the_command


async def load_demo_roster(svc: Services) -> None:
    """The demo roster in the database."""
    await roster.import_roster(svc, svc.settings.roster_path)


async def new_ticket(
    svc: Services,
    *,
    kind: str = "complaint",
    resident: str | None = "oRes1",
    building: str | None = "3",
    category: str | None = "照明",
    urgency: str = "normal",
    summary: str = "楼道灯坏了",
    fields: dict[str, Any] | None = None,
) -> DispatchResult:
    """Create a ticket as a flow does and route it, in one transaction. A report's category is
    its kind of problem as the complaint flow stores it (照明, 水电气暖 …, 其他: what owners read
    on cards and lists); anything else is refused, so tests see what owners see."""
    if kind == "complaint" and category is not None and category not in report_categories():
        raise ValueError(f"category {category!r} is none a report is filed under: {sorted(report_categories())}")
    async with svc.sessions() as session, session.begin():
        ticket = await tickets.create_ticket(
            session, kind=kind, resident=resident, fields=fields or {"phone": "13812345678"},
            now=svc.clock.now(), tz=svc.tz, actor="test", summary=summary, category=category,
            urgency=urgency, building=building,
        )
        return await dispatch.dispatch_new(svc, session, ticket)


# Every category a report may be filed under, each once: reports of different ones at one building
# are never linked as the same problem (dispatch.same_problem), so a test can make many jobs.
KINDS = ("照明", "电梯", "环境卫生", "噪音", "水电气暖", "物业服务", "消防安全", "违建", "停车", "动物", "治安", "其他")


def report_categories() -> frozenset[str]:
    """The categories the complaint flow files a report under (config: its choices, 其他 too)."""
    from bot.flows.complaint import CATEGORIES

    return frozenset(choice.value for choice in CATEGORIES)


async def outbox_rows(svc: Services, channel: str | None = None, target: str | None = None) -> list[OutboxItem]:
    """Queued pushes, oldest first, optionally of one channel and target."""
    stmt = select(OutboxItem).order_by(OutboxItem.id)
    if channel:
        stmt = stmt.where(OutboxItem.channel == channel)
    if target:
        stmt = stmt.where(OutboxItem.target == target)
    async with svc.sessions() as session:
        return list((await session.execute(stmt)).scalars())


async def ticket(svc: Services, number: str) -> Ticket:
    """A ticket by number, fresh from the database."""
    async with svc.sessions() as session:
        found = await tickets.get_by_number(session, number)
        assert found is not None
        return found


async def actions(svc: Services, number: str) -> list[str]:
    """The actions in a ticket's history."""
    async with svc.sessions() as session:
        t = await tickets.get_by_number(session, number)
        assert t is not None
        rows = await session.execute(select(TicketEvent.action).where(TicketEvent.ticket_id == t.id).order_by(TicketEvent.id))
        return list(rows.scalars())
