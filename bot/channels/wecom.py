"""The WeCom app callback (/wecom) for grid workers and staff: always encrypted.

GET is the URL check (decrypts `echostr`); POST carries a worker's message, which is verified,
decrypted, de-duplicated (FromUserName + MsgId, as /wechat does) and answered with an encrypted
passive reply from bot/worker_commands.py. Bad signature 403, malformed 400, over 1 MiB 413.

Each message's log line names the command's verb and its outcome: done, refused (not carried
out: not on the roster, someone else's ticket, a status that does not allow it, a number that
names nothing …), partly (some of several numbers), passed_on (a 办结 of a job reassigned
meanwhile: its result went to the new owner), answered (words that carry nothing out by
design, answered with what to send: 好的, 在吗, 明天去, 下午去不了 换个人吧, 办结 3 材料到了再修),
unknown (no command read) or repeat (a retry answered with the first reply). Whether a command
was carried out is read from the audit log, where worker_commands records every action it
carries out; an answer that carries nothing out is said by worker_commands.answered.
"""

from __future__ import annotations

import logging
import struct
import time
from collections.abc import Mapping
from dataclasses import dataclass

from aiohttp import web
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from wechatpy.enterprise.crypto import WeChatCrypto
from wechatpy.enterprise.exceptions import InvalidCorpIdException
from wechatpy.exceptions import InvalidSignatureException

from bot import delivery_record, metrics, roster, worker_commands
from bot.channels.wechat import BadRequest, Forbidden, answer_once, check_fresh, decrypt, parse_xml, refusal, reply_xml
from bot.logs import fields
from bot.services import Services
from storage.models import AuditLog, InboundDedup

log = logging.getLogger(__name__)

Fields = Mapping[str, str | None]
_MAX_USERID = 64


def crypto(svc: Services) -> WeChatCrypto:
    """The WeCom app's message crypto (token, EncodingAESKey, corp id from settings)."""
    return WeChatCrypto(svc.settings.wecom_token, svc.settings.wecom_aes_key, svc.settings.wecom_corpid)


def decode_body(svc: Services, query: Mapping[str, str], body: bytes) -> Fields:
    """Verify and decrypt a callback body; the message's fields. Raises Forbidden or BadRequest."""
    if not body.strip():
        raise BadRequest("empty body")
    encrypt = parse_xml(body).get("Encrypt")
    if not encrypt:
        raise BadRequest("no <Encrypt> element")
    plain = decrypt(crypto(svc), encrypt, query, InvalidCorpIdException, "corpid")
    check_fresh(svc, query.get("timestamp", ""))
    values = parse_xml(plain)
    user = values.get("FromUserName")
    if not user or len(user) > _MAX_USERID or not values.get("MsgType"):
        raise BadRequest("no sender or message type")
    return values


async def url_check(request: web.Request) -> web.Response:
    """GET /wecom: answer the decrypted echostr when the signature is right."""
    from bot.app import SERVICES

    svc = request.app[SERVICES]
    q = request.query
    if not all(q.get(k) for k in ("msg_signature", "timestamp", "nonce", "echostr")):
        metrics.REJECTED.labels("malformed").inc()
        return web.Response(status=400, text="missing parameters")
    try:
        echo = crypto(svc).check_signature(q["msg_signature"], q["timestamp"], q["nonce"], q["echostr"])
    except (InvalidSignatureException, InvalidCorpIdException):
        metrics.REJECTED.labels("signature").inc()
        log.info("wecom url check refused: bad signature")
        return web.Response(status=403, text="invalid signature")
    except (ValueError, IndexError, struct.error) as exc:  # an echostr that does not decrypt
        metrics.REJECTED.labels("malformed").inc()
        log.info("wecom url check refused: %s", type(exc).__name__)
        return web.Response(status=400, text="malformed echostr")
    try:
        check_fresh(svc, q["timestamp"])
    except Forbidden:
        metrics.REJECTED.labels("signature").inc()
        log.info("wecom url check refused: stale timestamp")
        return web.Response(status=403, text="invalid signature")
    return web.Response(text=echo.decode("utf-8") if isinstance(echo, bytes) else str(echo))


async def _reply_for(svc: Services, values: Fields) -> str | None:
    userid = str(values.get("FromUserName"))
    kind = (values.get("MsgType") or "").lower()
    if kind == "event":
        if (values.get("Event") or "").lower() not in ("enter_agent", "subscribe"):
            return None
        async with svc.sessions() as session:
            who = await roster.person(session, userid)
        if who is None or not who.active:
            return svc.texts.get("wecom.not_on_roster")
        return worker_commands.help_text(svc, who)
    if kind == "image":
        media = {"media_id": values.get("MediaId"), "pic_url": values.get("PicUrl")}
        return await worker_commands.run(svc, userid, None, media)
    if kind == "text":
        return await worker_commands.run(svc, userid, values.get("Content") or "")
    return await worker_commands.run(svc, userid, None)


@dataclass(frozen=True)
class Handled:
    """What became of one message, for its log line: the command's verb ('-' when none was read)
    and its outcome (done, refused, partly, passed_on, answered, unknown, repeat)."""

    verb: str
    outcome: str


REPEAT = Handled("-", "repeat")
# What the audit log holds for a verb carried out (worker_commands audits wecom.<verb>; a staff
# 回复 is audited by staff_actions as the console's answer is).
_DONE_ACTION = {"reply": "ticket.reply"}
_ALWAYS_DONE = ("help", "mine")  # they answer, whatever the worker's tickets
# The audit rows a command read before the owners' ones writes when carried out (a refusal's end
# in .refused); none written: it answered (关闭 N with no reason asked for one).
_OTHER_DONE = {
    "close": ("ticket.close",), "cancel_activity": ("activity.cancel",),
    "outage_announce": ("outage.announce", "outage.update"), "outage_end": ("outage.end",),
}
_OTHER_READS = ("activities", "outage_show")  # they show what is on: done unless refused


async def _audit_mark(svc: Services) -> int:
    """The newest audit row's id: what a command writes comes after it."""
    async with svc.sessions() as session:
        return int(await session.scalar(select(func.max(AuditLog.id))) or 0)


async def _handled(svc: Services, values: Fields, mark: int, said: str | None = None, read: str | None = None) -> Handled:
    """The verb of a message and whether it was carried out (the audit rows the sender's command
    wrote after mark); said: the outcome worker_commands gave an answer that carries nothing out;
    read: the verb of a command it read before the owners' ones (关闭, 停水 …)."""
    userid = str(values.get("FromUserName"))
    kind = (values.get("MsgType") or "").lower()
    if kind == "event":
        return Handled(f"event:{(values.get('Event') or '').lower()[:32]}", "done")
    if kind not in ("image", "text"):
        return Handled(kind or "-", "unknown")
    async with svc.sessions() as session:
        who = await roster.person(session, userid)
        if kind == "image":
            verb, wanted = "photo", 1
        elif read is not None:
            return await _other_handled(session, userid, read, mark)
        else:
            content = values.get("Content") or ""
            cmd = worker_commands.parse(content)
            if cmd is None and who is not None and "volunteer_coordinator" in (who.roles or []):
                cmd = worker_commands.decision(content)  # 通过 / 不通过 2 原因, as run() reads it
            if cmd is None:
                return Handled("-", "unknown")
            verb, wanted = cmd.verb, max(1, len(dict.fromkeys(cmd.refs)))
        if who is None or not who.active:
            return Handled(verb, "refused")
        if verb in _ALWAYS_DONE:
            return Handled(verb, "done")
        if said is not None:  # 明天去, 好的 …: nothing to carry out, answered (or a number named none)
            return Handled(verb, said)
        done = int(await session.scalar(
            select(func.count()).select_from(AuditLog).where(
                AuditLog.id > mark, AuditLog.actor == userid,
                AuditLog.action == _DONE_ACTION.get(verb, f"wecom.{verb}"),
            )
        ) or 0)
        if done == 0 and verb == "resolve" and await session.scalar(select(AuditLog.id).where(
                AuditLog.id > mark, AuditLog.actor == userid, AuditLog.action == "wecom.passed_on").limit(1)):
            return Handled(verb, "passed_on")  # a job reassigned meanwhile: the result went to its owner
    return Handled(verb, "refused" if done == 0 else "done" if done >= wanted else "partly")


async def _other_handled(session: AsyncSession, userid: str, verb: str, mark: int) -> Handled:
    """关闭 / 停水 / 恢复 停水 / 取消活动 / 活动: done when its audit row was written, refused when a
    refusal was, else answered (asked for the reason, told what is on)."""
    actions = list(await session.scalars(
        select(AuditLog.action).where(AuditLog.id > mark, AuditLog.actor == userid)
    ))
    if any(action in _OTHER_DONE.get(verb, ()) for action in actions):
        return Handled(verb, "done")
    if any(action.endswith(".refused") for action in actions):
        return Handled(verb, "refused")
    return Handled(verb, "done" if verb in _OTHER_READS else "answered")


def delivery_parts(values: Fields) -> tuple[str, ...]:
    """FromUserName + MsgId for messages; FromUserName + CreateTime + event for events."""
    user = str(values.get("FromUserName"))[:64]
    msg_id = values.get("MsgId")
    if msg_id:
        return (user, msg_id[:64])
    return (user, "ev", (values.get("CreateTime") or "")[:16], (values.get("Event") or "")[:32])


def dedup_key(svc: Services, values: Fields) -> str:
    """The state store's key for a delivery (its first answer, while retries may come)."""
    return svc.store.key("wecom-dedup", *delivery_parts(values))


async def _answered_before(svc: Services, delivery: str) -> InboundDedup | None:
    async with svc.sessions() as session:
        return await session.get(InboundDedup, delivery)


async def _once_on_record(svc: Services, values: Fields) -> tuple[str | None, bool]:
    """_reply_for, unless the database already holds this delivery's answer; (the reply, whether
    this handling ran the command).

    Behind the state store's de-duplication: a delivery the store forgot (Redis restarted empty)
    and WeCom retried is answered from its record instead of running the command again (a note
    added twice, a 回复 pushed to the resident twice). A command that writes adds the record in
    its own transaction (bot.delivery_record), so a process stopped right after the command
    cannot leave it unrecorded; a read-only answer (帮助, an event) is recorded afterwards."""
    delivery = ":".join(("wecom", *delivery_parts(values)))
    earlier = await _answered_before(svc, delivery)
    if earlier is not None:
        return _repeat(values, earlier.reply), False
    with delivery_record.recording(delivery, svc.clock.now(), svc.texts.get("wecom.already_handled")) as pending:
        try:
            reply = await _reply_for(svc, values)
        except IntegrityError:
            # Another handling of this delivery committed its record first: the command's own
            # transaction, which carried the record too, was refused whole. That one stands.
            earlier = await _answered_before(svc, delivery)
            if earlier is None:
                raise
            return _repeat(values, earlier.reply), False
    if pending.added and pending.reply == reply:
        return reply, True  # recorded with the command, as it stands
    try:
        async with svc.sessions() as session, session.begin():
            record = InboundDedup(key=delivery, reply=reply, created_at=pending.now)
            if pending.added:  # recorded with a provisional answer: the reply replaces it
                await session.merge(record)
            else:
                session.add(record)
    except IntegrityError:  # a concurrent first handling recorded it meanwhile: that one stands
        log.info("wecom delivery recorded by another handling",
                 extra=fields(user=str(values.get("FromUserName"))))
    return reply, True


def _repeat(values: Fields, reply: str | None) -> str | None:
    log.warning("wecom delivery already handled: answered with its first reply",
                extra=fields(user=str(values.get("FromUserName"))))
    return reply


async def receive(request: web.Request) -> web.Response:
    """POST /wecom: one message from a worker or staff member, one encrypted passive reply."""
    from bot.app import SERVICES

    svc = request.app[SERVICES]
    started = time.perf_counter()
    try:
        values = decode_body(svc, request.query, await request.read())
    except (web.HTTPRequestEntityTooLarge, Forbidden, BadRequest) as exc:
        return refusal(exc, "wecom")
    user = str(values.get("FromUserName"))
    handled = REPEAT  # unless this request handles the message itself

    async def handle() -> str | None:
        nonlocal handled
        mark = await _audit_mark(svc)
        with worker_commands.answered() as said:
            reply, first = await _once_on_record(svc, values)
        handled = await _handled(svc, values, mark, said.outcome, said.verb) if first else REPEAT
        return reply

    try:
        reply = await answer_once(svc, dedup_key(svc, values), handle)
    except Exception:  # the entry point's boundary: log it, answer politely, never a 500
        log.exception("wecom message not handled", extra=fields(user=user, type=values.get("MsgType")))
        reply, handled = svc.texts.get("errors.resend"), Handled(handled.verb, "failed")
    log.info(
        "wecom %s", values.get("MsgType"),
        extra=fields(user=user, verb=handled.verb, outcome=handled.outcome, replied=bool(reply),
                     ms=round((time.perf_counter() - started) * 1000, 1)),
    )
    if not reply:
        return web.Response(text="")
    q = request.query
    xml = reply_xml(values, reply, svc.clock.now())
    encrypted = crypto(svc).encrypt_message(xml, q.get("nonce", ""), q.get("timestamp") or None)
    return web.Response(text=encrypted, content_type="application/xml")


def setup(app: web.Application) -> None:
    """Add GET and POST /wecom."""
    app.router.add_get("/wecom", url_check)
    app.router.add_post("/wecom", receive)
