"""Satisfaction surveys (回访): one per resolution, answered in the resident's own words.

Life of a survey (all durable, as reminder rows of cause type "survey"):
- `schedule_survey` (called by dispatch on 办结, for the ticket and each linked report) queues a
  "survey" reminder `CB_SURVEY_DELAY_S` later;
- when it is sent, the resident's pending survey is remembered in the state store and a
  "survey_remind" reminder is queued; with no answer by then, one reminder goes out and a
  "survey_expire" follows, which closes the ticket as 未评价;
- `handle_answer` (called by the dialog before classifying) takes 1–5, 满意 / 基本满意 / 不满意,
  很好 / 还行 / 不好 / 太差, 👍 👎 with an optional comment. 3–5 closes the ticket; 1–2 reopens it
  to its owner, tells the staff group and takes the next message as the comment.

Whether a survey is still open is read from the ticket's events (rated / unrated per resolution),
so the state-store key is only an index from the resident to the ticket: it is written after the
scheduler's commit and never inside the dialog's transaction.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot import dispatch, notices, reminders, tickets
from bot.flows import parsers
from bot.inbound import Inbound
from bot.intents.classifier import get_classifier
from bot.intents.normalize import simplified
from bot.privacy import hash_openid
from bot.schedule import after_commit, deliver_plain, load_schedule_config, register_kind_handler
from bot.services import Services
from storage.models import Reminder, Ticket, TicketEvent

CAUSE = "survey"
RATED = ("rated", "unrated")
GOOD_FROM = 3  # 3 (基本满意) and above close the ticket; 1–2 reopen it

# Rating words, longest and negative forms first (so 不满意 is never read as 满意).
_WORDS: tuple[tuple[str, int], ...] = (
    ("非常不满意", 1), ("很不满意", 1), ("特别差", 1), ("非常差", 1), ("太差了", 1), ("太差", 1),
    ("很差", 1), ("差评", 1), ("不太满意", 2), ("不满意", 2), ("不太好", 2), ("不好", 2), ("不行", 2),
    ("基本满意", 3), ("比较满意", 4), ("还可以", 3), ("还行", 3), ("一般般", 3), ("一般", 3), ("凑合", 3),
    ("非常满意", 5), ("很满意", 5), ("特别满意", 5), ("满意", 5), ("非常好", 5), ("很好", 5),
    ("好评", 5), ("挺好", 4), ("不错", 4),
    ("👍", 5), ("[强]", 5), ("/:strong", 5), ("👎", 1), ("[弱]", 1), ("/:weak", 1),
)
_DIGIT = re.compile(r"^([1-5])\s*(?:分|星)?(?=$|[\s，,。.!！、;；:：~～])(.*)$", re.S)
_CN_DIGIT = re.compile(r"^([一二三四五])\s*(?:分|星)(.*)$", re.S)
_CN_VALUE = {"一": 1, "二": 2, "三": 3, "四": 4, "五": 5}
_STARS = re.compile(r"^([⭐★]{1,5})\s*(.*)$", re.S)
# Said to a survey, the problem is still there (灯还是不亮, 没修好): 不满意, with these words as the
# comment, though no rating word was used; see still_unresolved.
_UNRESOLVED = re.compile(
    r"(?:还是|仍然|依然)(?:不|没|坏|漏|堵|吵|臭|有)|又(?:坏|漏|堵|不|没)|没(?:有)?(?:修好|弄好|解决|处理|修)|"
    r"还没(?:有)?(?:好|修|弄|解决|处理|来)|没人来|根本没|老样子"
)
_NOT_A_RATING_AFTER_DIGIT = re.compile(r"^\s*(?:号|栋|楼|单元|层|室|幢)")
_PUNCT = " \t\r\n，,。.!！?？、;；:：~～…-—"
_PARTICLES = "的了啊呀哦吧呢嘛"


@dataclass(frozen=True)
class Rating:
    """A parsed survey answer: score 1–5, its label, and the optional comment."""

    score: int
    label: str
    comment: str

    @property
    def good(self) -> bool:
        """Whether this rating closes the ticket (基本满意 or better)."""
        return self.score >= GOOD_FROM


def label_of(score: int) -> str:
    """满意 for 4–5, 基本满意 for 3, 不满意 for 1–2."""
    return "满意" if score >= 4 else "基本满意" if score == 3 else "不满意"


def parse_rating(text: str) -> Rating | None:
    """Read a survey answer from a resident's words; None when the text is not one."""
    norm = simplified(unicodedata.normalize("NFKC", text)).strip()  # 不滿意 is 不满意
    if not norm:
        return None
    score: int | None = None
    rest = ""
    if (m := _DIGIT.match(norm)) is not None and not _NOT_A_RATING_AFTER_DIGIT.match(m.group(2)):
        score, rest = int(m.group(1)), m.group(2)
    elif (m := _CN_DIGIT.match(norm)) is not None:
        score, rest = _CN_VALUE[m.group(1)], m.group(2)
    elif (m := _STARS.match(norm)) is not None:
        score, rest = len(m.group(1)), m.group(2)
    else:
        for word, value in _WORDS:
            if norm.startswith(word):
                score, rest = value, norm[len(word):]
                break
    if score is None:
        return None
    # A thumb may come with a skin tone, or repeated: drop what is left of the symbols.
    rest = rest.lstrip("\U0001f3fb\U0001f3fc\U0001f3fd\U0001f3fe\U0001f3ff👍👎")
    return Rating(score, label_of(score), rest.lstrip(_PUNCT + _PARTICLES).rstrip(_PUNCT))


# --- scheduling -----------------------------------------------------------------------------------


async def resolution_count(session: AsyncSession, ticket: Ticket) -> int:
    """How many times the ticket has been resolved (each resolution gets its own survey)."""
    count = await session.scalar(
        select(func.count(TicketEvent.id)).where(
            TicketEvent.ticket_id == ticket.id, TicketEvent.action == "resolve"
        )
    )
    return int(count or 0)


def _what(svc: Services, ticket: Ticket) -> str:
    what = notices.safe_text(notices.what_of(ticket)) or notices.kind_label(svc, ticket.kind)
    return what if len(what) <= 40 else what[:39] + "…"


def _message(svc: Services, ticket: Ticket, key: str) -> dict[str, Any]:
    t = svc.texts
    what = _what(svc, ticket)
    return {
        "text": t.get(f"survey.{key}", number=ticket.number, what=what),
        "template": {
            "title": t.get("survey.template_title"),
            "fields": {
                t.get("survey.field_number"): ticket.number,
                t.get("survey.field_what"): what,
                t.get("survey.field_how"): t.get("survey.template_how"),
            },
        },
    }


async def _queue(
    svc: Services, session: AsyncSession, ticket: Ticket, kind: str, after_s: float, n: int,
    channel: str, message: dict[str, Any],
) -> Reminder | None:
    assert ticket.resident is not None
    now = svc.clock.now()
    reminder = await reminders.schedule(
        session, kind=kind, due_at=now + timedelta(seconds=after_s), channel=channel,
        target=ticket.resident, payload=message, now=now, cause_type=CAUSE, cause_id=ticket.id,
        dedup_key=f"survey:{ticket.id}:{n}:{kind}",
    )
    if reminder is not None:
        reminder.payload = {**reminder.payload, "resolution": n, "ticket_id": ticket.id}
    return reminder


async def schedule_survey(svc: Services, session: AsyncSession, ticket: Ticket) -> None:
    """Queue this resolution's survey to the ticket's resident, CB_SURVEY_DELAY_S from now."""
    if not ticket.resident or ticket.status != "resolved":
        return
    n = await resolution_count(session, ticket)
    await _queue(svc, session, ticket, "survey", svc.settings.survey_delay_s, n, "wechat",
                 _message(svc, ticket, "question"))


# --- what the scheduler calls ---------------------------------------------------------------------


async def _answers(session: AsyncSession, ticket: Ticket) -> list[TicketEvent]:
    rows = await session.scalars(
        select(TicketEvent).where(
            TicketEvent.ticket_id == ticket.id,
            TicketEvent.action.in_((*RATED, "rating_comment")),
        ).order_by(TicketEvent.id)
    )
    return list(rows)


def _of_resolution(events: list[TicketEvent], n: int, actions: tuple[str, ...]) -> list[TicketEvent]:
    return [e for e in events if e.action in actions and (e.data or {}).get("resolution") == n]


async def awaiting_rating(session: AsyncSession, ticket: Ticket, n: int) -> bool:
    """Whether resolution n of the ticket still waits for its rating."""
    if ticket.resolved_at is None or ticket.status not in ("resolved", "closed"):
        return False
    if await resolution_count(session, ticket) != n:
        return False
    return not _of_resolution(await _answers(session, ticket), n, RATED)


async def _ticket_for(session: AsyncSession, reminder: Reminder) -> Ticket | None:
    if reminder.cause_id is None:
        return None
    return await session.scalar(select(Ticket).where(Ticket.id == reminder.cause_id).with_for_update())


async def _still_open(session: AsyncSession, reminder: Reminder) -> bool:
    """Cause check: the survey's resolution is still unrated and the resident still the same."""
    ticket = await session.get(Ticket, reminder.cause_id) if reminder.cause_id is not None else None
    if ticket is None or ticket.resident != reminder.target:
        return False
    return await awaiting_rating(session, ticket, int((reminder.payload or {}).get("resolution", -1)))


def _remember(svc: Services, session: AsyncSession, openid: str, ticket: Ticket, n: int, ttl: float) -> None:
    async def write() -> None:
        await svc.store.set(svc.store.key("survey", openid), {"number": ticket.number, "resolution": n}, ttl=ttl)

    after_commit(session, write)


async def _send(svc: Services, session: AsyncSession, reminder: Reminder, action: str, follow: str) -> bool:
    ticket = await _ticket_for(session, reminder)
    n = int((reminder.payload or {}).get("resolution", -1))
    if ticket is None or not await awaiting_rating(session, ticket, n):
        return False
    times = load_schedule_config().survey
    now = svc.clock.now()
    await deliver_plain(session, reminder, now)
    await tickets.add_event(session, ticket, action, "system", now, data={"resolution": n})
    if follow == "survey_remind":
        await _queue(svc, session, ticket, follow, times.remind_after_s, n, "wechat", _message(svc, ticket, "reminder"))
        ttl = times.remind_after_s + times.expire_after_s + 3600
    else:
        # Not a push: the "system" channel keeps it clear of quiet hours and the daily cap.
        await _queue(svc, session, ticket, follow, times.expire_after_s, n, "system", {"close": True})
        ttl = times.expire_after_s + 3600
    _remember(svc, session, reminder.target, ticket, n, ttl)
    return True


async def _send_survey(svc: Services, session: AsyncSession, reminder: Reminder) -> bool:
    """Kind "survey": send the question, remember it, queue the one reminder."""
    return await _send(svc, session, reminder, "survey_sent", "survey_remind")


async def _send_reminder(svc: Services, session: AsyncSession, reminder: Reminder) -> bool:
    """Kind "survey_remind": the one reminder, then queue the close as 未评价."""
    return await _send(svc, session, reminder, "survey_reminded", "survey_expire")


async def _expire(svc: Services, session: AsyncSession, reminder: Reminder) -> bool:
    """Kind "survey_expire": no answer — the ticket is closed as 未评价."""
    ticket = await _ticket_for(session, reminder)
    n = int((reminder.payload or {}).get("resolution", -1))
    if ticket is None or not await awaiting_rating(session, ticket, n):
        return False
    now = svc.clock.now()
    note = svc.texts.get("survey.unrated_note")
    ticket.satisfaction = None
    ticket.satisfaction_label = "未评价"
    await tickets.add_event(session, ticket, "unrated", "system", now, note=note, data={"resolution": n})
    if ticket.status == "resolved":
        await dispatch.apply_action(svc, session, ticket, "close", "system", note=note)
    return True


register_kind_handler("survey", _send_survey)
register_kind_handler("survey_remind", _send_reminder)
register_kind_handler("survey_expire", _expire)
reminders.register_cause_check(CAUSE, _still_open)


# --- the resident's answer ------------------------------------------------------------------------


async def _record(
    svc: Services, session: AsyncSession, ticket: Ticket, n: int, rating: Rating, openid: str
) -> str:
    t = svc.texts
    now = svc.clock.now()
    actor = f"resident:{hash_openid(openid)}"
    comment = notices.safe_text(rating.comment)
    ticket.satisfaction = rating.score
    ticket.satisfaction_label = rating.label
    ticket.rating_comment = comment or None
    await tickets.add_event(
        session, ticket, "rated", actor, now, note=f"{rating.label}（{rating.score}）{comment}",
        data={"resolution": n, "score": rating.score, "label": rating.label, "comment": comment,
              "awaiting_comment": not rating.good and not comment},
    )
    if rating.good:
        if ticket.status == "resolved":
            await dispatch.apply_action(svc, session, ticket, "close", actor, note=f"回访：{rating.label}")
        key = "survey.thanks_comment" if comment else "survey.thanks"
        return t.get(key, label=rating.label, number=ticket.number)
    owner_ticket = ticket
    if ticket.parent_id is not None:
        parent = await session.scalar(select(Ticket).where(Ticket.id == ticket.parent_id).with_for_update())
        owner_ticket = parent or ticket
        if ticket.status in tickets.TRANSITIONS["reopen"].sources:
            await tickets.transition(session, ticket, "reopen", actor, now, note=f"回访：{rating.label}")
    if owner_ticket.status in tickets.TRANSITIONS["reopen"].sources:
        await dispatch.apply_action(svc, session, owner_ticket, "reopen", actor, note=f"回访：{rating.label} {comment}".strip())
    reason = (
        t.get("survey.staff_reason", score=rating.score, comment=comment) if comment
        else t.get("survey.staff_reason_no_comment", score=rating.score)
    )
    await dispatch.escalate_to_staff(svc, session, owner_ticket, reason)
    if comment:
        return t.get("survey.bad_noted", comment=comment, number=ticket.number)
    return t.get("survey.bad_ask", number=ticket.number)


async def _add_comment(svc: Services, session: AsyncSession, ticket: Ticket, n: int, text: str, openid: str) -> str:
    now = svc.clock.now()
    actor = f"resident:{hash_openid(openid)}"
    comment = notices.safe_text(text.strip())
    ticket.rating_comment = comment
    await tickets.add_event(session, ticket, "rating_comment", actor, now, note=comment, data={"resolution": n})
    owner_ticket = ticket
    if ticket.parent_id is not None:
        owner_ticket = await session.get(Ticket, ticket.parent_id) or ticket
        await tickets.add_event(session, owner_ticket, "rating_comment", actor, now, note=comment,
                                data={"via": ticket.number})
    await dispatch.escalate_to_staff(svc, session, owner_ticket, svc.texts.get("survey.staff_comment", comment=comment))
    return svc.texts.get("survey.comment_noted", number=ticket.number)


def still_unresolved(text: str, ticket: Ticket) -> Rating | None:
    """灯还是不亮 / 没修好 / 还没人来, said to this ticket's survey: 不满意 with the words as the
    comment. Not when the message names a place or another kind of problem (3号楼电梯又坏了 to a
    lighting survey is a new report, for the dialog)."""
    norm = simplified(unicodedata.normalize("NFKC", text)).strip()
    if not _UNRESOLVED.search(norm) or parsers.address_parts(norm):
        return None
    named = get_classifier().extract_slots(norm).get("category")
    if named and named != ticket.category:
        return None
    return Rating(2, label_of(2), text.strip().strip(_PUNCT))  # the resident's own words


def _thanks(text: str) -> bool:
    """Thanks or praise and nothing else the classifier would act on (谢谢 但是灯还是不亮 is more)."""
    classifier = get_classifier()
    if not classifier.terms(text) & {"@thanks", "@praise"}:
        return False
    return classifier.classify(text).intent in ("greeting", "unknown")


async def handle_answer(svc: Services, session: AsyncSession, inbound: Inbound) -> str | None:
    """The reply when this message answers the resident's pending survey (or its comment), else None."""
    if inbound.is_event or not inbound.text.strip():
        return None
    pending = await svc.store.get(svc.store.key("survey", inbound.openid))
    if not isinstance(pending, dict) or not isinstance(pending.get("number"), str) \
            or not isinstance(pending.get("resolution"), int):
        return None
    ticket = await tickets.get_by_number(session, pending["number"], for_update=True)
    if ticket is None or ticket.resident != inbound.openid:
        return None
    n = pending["resolution"]
    answers = await _answers(session, ticket)
    rated = _of_resolution(answers, n, ("rated",))
    if not rated:
        if not await awaiting_rating(session, ticket, n):
            return None
        rating = parse_rating(inbound.text) or still_unresolved(inbound.text, ticket)
        if rating is None:
            # 修好了 谢谢你们: thanked, and asked once more for the score (thanks are not read as
            # 满意: the satisfaction rate counts what residents rate, not what is inferred).
            return svc.texts.get("survey.thanks_unrated") if _thanks(inbound.text) else None
        return await _record(svc, session, ticket, n, rating, inbound.openid)
    last = rated[-1]
    window = timedelta(seconds=load_schedule_config().survey.comment_window_s)
    if (
        (last.data or {}).get("awaiting_comment")
        and not _of_resolution(answers, n, ("rating_comment",))
        and svc.clock.now() - last.created_at < window
    ):
        return await _add_comment(svc, session, ticket, n, inbound.text, inbound.openid)
    return None
