"""Satisfaction surveys (回访): one per resolution, answered in the resident's own words.

Life of a survey (all durable, as reminder rows of cause type "survey"):
- `schedule_survey` (called by dispatch on 办结, for the ticket and each linked report) queues a
  "survey" reminder `CB_SURVEY_DELAY_S` later;
- when it is sent, a "survey_remind" reminder is queued; with no answer by then, one reminder goes
  out and a "survey_expire" follows, which closes the ticket as 未评价 (or keeps the score the
  resident gave an earlier resolution of it);
- `handle_answer` (called by the dialog before classifying) takes 1–5, 满意 / 基本满意 / 不满意,
  很好 / 还行 / 不好 / 太差, 👍 👎, with negation and degree (不是很满意, 非常非常满意) and an
  optional comment. 3–5 closes the ticket; 1–2 reopens it to its owner, tells the staff group and
  takes the next message as the comment when it reads as one. Several surveys may be open at once;
  a dissatisfied answer to the 已办结 push before the survey went out counts too.

Which surveys are open is read from the tickets' events (resolve, sent, rated / unrated, comment).
The state store holds only a mark per resident, set on resolution and on each sending, so that a
resident with nothing resolved lately costs the dialog no database query.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot import dispatch, notices, outbox, reminders, tickets
from bot.clock import local
from bot.flows import complaint, parsers
from bot.flows.commands import command_of, is_word
from bot.flows.config import flow_config
from bot.flows.status import digits_asked, handoff_words, number_in, shown_summary
from bot.inbound import Inbound
from bot.intents.classifier import get_classifier
from bot.intents.normalize import simplified
from bot.privacy import hash_openid
from bot.schedule import after_commit, deliver_plain, load_schedule_config, register_kind_handler
from bot.services import Services
from storage import fastsql
from storage.fastsql import Transaction
from storage.models import Reminder, Ticket, TicketEvent

CAUSE = "survey"
RATED = ("rated", "unrated")
GOOD_FROM = 3  # 3 (基本满意) and above close the ticket; 1–2 reopen it
HELD_BY_CAP_S = 86400  # a survey the daily push cap held goes out the next morning
HELD_ANSWER_S = 1800  # an answer waiting for the resident to say which ticket it is for

_P = r"\s，,。.!！?？、;；:：~～…"  # what ends a clause
_END = rf"(?=[了的啊呀吧呢哈]*(?:$|[{_P}]))"  # a word that must stand alone (差, not 差不多)
# Rating words read at the start of an answer, in order: negations and their degrees before the
# plain words, so 不是很满意 is never read as 满意 and 非常不满意 never as 不满意.
_WORDS: tuple[tuple[re.Pattern[str], int], ...] = tuple((re.compile(p), v) for p, v in (
    (r"(?:没有?|并没有?|也没有?)(?:什么|啥)?不满(?:意)?(?:的(?:地方)?)?", 4),  # 没有不满意: no complaint
    (r"(?:非常|特别|十分|极其|极|太|很|超级|相当|真)不满意?", 1),
    (r"不(?:是|算|怎么|太|大|够|咋|那么)*(?:很|太|特别|非常|十分|那么)?满意", 2),
    (r"(?:非常|特别|十分|极其|超级|太|很|真)差(?:劲|了)?", 1),
    (r"差评|差劲|垃圾" + _END, 1),
    (r"差不多", 3),
    (r"差" + _END, 1),
    (r"不(?:太|怎么|大|是很|是太|是特别)?(?:好|行)(?!意思|吃|喝|看|用|听|闻)", 2),  # 不好吃: care_fault
    (r"不怎么样|不咋样|不咋地|不给力|不靠谱", 2),
    (r"(?:基本|还算|算是|总体|总的来说)满意", 3),
    (r"(?:比较|挺|蛮|还挺|还蛮|还比较|还是挺|还是比较|还算比较)满意", 4),
    (r"(?:非常|特别|十分|超级|很|相当|真|太|好|极其)+满意", 5),
    (r"满意|满分|好评|点赞|五星好评", 5),
    # 一百分, 打十分: the top of whatever scale the resident has in mind (十分满意 is read above).
    (r"(?:一百|100|百)分|(?:十|10)分(?!钟|不|差|一般|失望|糟|烂)", 5),
    (r"还可以|还行|一般般|一般|凑合|马马虎虎|过得去|还过得去", 3),
    (r"(?:非常|特别|真|太|很)(?:好|棒)|棒棒?" + _END, 5),
    (r"(?:挺|蛮|还挺|还蛮)(?:好|不错)|(?:还|真)?不错", 4),
    (r"👍|\[强\]|/:strong|👎|\[弱\]|/:weak", 0),  # 0: read from the symbol (below)
    # A face or a sign alone, as an elderly resident answers (😊 was the menu): WeChat's own
    # emoji arrive as their [names].
    (r"[😊😀😃😄😁☺🥰😍]+|[🙂👌💯]|\[(?:微笑|愉快|呲牙|憨笑|OK|好的|玫瑰|爱心|抱拳)\]", 5),
    (r"[😞😔😟🙁☹😣😢😭😒]+|\[(?:难过|流泪|大哭|撇嘴)\]", 2),
    (r"[😠😡😤🤬]+|\[(?:发怒|怒)\]", 1),
))
# 满意 as voice recognition writes it (满一, 瞒意), where a clause ends: 满一年 is no rating.
_HEARD_SATISFIED = re.compile(r"(?:满[一以义亿]|瞒[意一以])" + _END)
_SYMBOLS = {"👍": 5, "[强]": 5, "/:strong": 5, "👎": 1, "[弱]": 1, "/:weak": 1}
_DIGIT = re.compile(rf"^([1-5])\s*(?:(?:分|星|颗星)(?!钟)|(?=$|[{_P}]))(.*)$", re.S)
_CN_DIGIT = re.compile(r"^([一二两三四五])\s*(?:分|星|颗星)(?!钟)(.*)$", re.S)
_CN_VALUE = {"一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5}
_STARS = re.compile(r"^([⭐★]{1,5})\s*(.*)$", re.S)
# What comes before the answer proper: 嗯, 给, 打, 我觉得 (嗯满意, 给5分, 打五分, 我觉得还行).
_LEAD = re.compile(
    rf"^(?:[嗯恩哦噢喔额呃唔]+|那就|那|就)*[{_P}]*(?:我)?(?:觉得|感觉)?"
    r"(?:(?:给你们|给您|给|打|评)(?:个|了)?|评价|评分|打分)*[\s:：]*"
)
_CLAUSE = re.compile(rf"[{_P}]+")
# 修好了 但是师傅态度不太好: no rating word at the start, but a complaint about the service after
# a "but": 不满意, with the whole message as the comment.
_BUT_BAD = re.compile(
    r"(?:但是|但|可是|不过|只是|就是)[^，,。.!！?？]*?"
    r"(?:不太好|不好|不行|太差|很差|差劲|不满意|不耐烦|不礼貌|不客气|很凶|太凶|敷衍|态度差)"
)
# 师傅挺好 就是来得太晚了: praise, then lateness after a "but" — the job was done and the worker
# thanked, so 基本满意 (3: closed, the words kept as the comment), not 不满意 (1–2 sends the job back
# to its owner, with nothing left to fix).
_BUT_LATE = re.compile(
    r"(?:但是|但|可是|不过|只是|就是)[^，,。.!！?？]*?"
    r"(?:太晚|太慢|(?:晚|慢)了(?:点儿?|一点|些)|有点儿?(?:晚|慢)|来得?(?:有点儿?|太|比较|很|挺|稍微)?(?:晚|慢)|"
    r"等了?(?:好久|很久|半天|好几天|好长时间|太久|挺久|几天)|拖了?(?:好久|很久|好几天|太久)|不(?:太|够)?及时|"
    r"没(?:有)?人?(?:通知|说明|说一声|告诉|讲一声)|也?不(?:通知|说明|说一声)|没(?:个|有)?(?:通知|说法))"
)
# 水来了 / 来水了 / 有水了 / 电通了: an outage's own 修好了 (said to its survey: thanked, and the
# score asked; before a "but", the praise _BUT_LATE weighs).
_RESTORED = re.compile(
    r"(?:水|电|气|燃气|煤气|暖气)(?:是|也|总算|终于|已经|都)*(?:来了|通了|有了|恢复了|好了)|"
    r"(?:总算|终于|已经)?(?:来|有|通|恢复)(?:了)?(?:水|电|气|暖气|供水|供电|供气|供暖)(?:了)?"
)
# 态度不好, 太慢了, 服务太差, 师傅很不耐烦: the whole answer is a complaint about the service (each
# clause one): 不满意, with the words as the comment. Whole clauses only, and no 不/没 before the
# bad word (不慢, 态度挺好的 are no complaint).
_SERVICE_BAD_CLAUSE = re.compile(
    r"(?:师傅|工人|维修工|网格员|工作人员|你们|他们|人家)?的?"
    r"(?:服务态度|工作态度|服务|态度|速度|效率|办事效率|(?:来|修|处理|办|弄|干)得?)?"
    r"(?:也|真是?|实在|太|很|好|特别|非常|极其|超级|十分|相当|有点儿?|有些|比较|忒|贼|都)*"
    r"(?:不(?:太|怎么|大|够)?(?:好|行|耐烦|礼貌|客气|专业|负责|认真|及时)|差劲?|烂|慢|低|凶|敷衍|恶劣|糟糕|马虎|拖拉|磨蹭)"
    r"(?:了点儿?|了一点|一点|得很|极了|死了|透了|[了的啊呀吧哦])*"
)
# Said to a survey, the problem is still there (灯还是不亮, 没修好): 不满意, with these words as the
# comment, though no rating word was used; see still_unresolved.
_UNRESOLVED = re.compile(
    r"(?:还是|仍然|依然)(?:不|没|坏|漏|堵|吵|臭|有|黑|暗|冷)|还(?:在|是)?(?:堵|漏)着|又(?:坏|漏|堵|不|没)|没(?:有)?(?:修好|弄好|解决|处理|修)|"
    r"还没(?:有)?(?:好|修|弄|解决|处理|来)|没(?:有)?人来|根本没|老样子|还是那样|还那样|"
    r"(?:跟|和|同)(?:原来|以前|之前|修之前|没修(?:的时候)?)(?:一样|一个样|差不多)|没(?:有|什么|啥)?(?:变化|变)(?!好)|"
    r"一点(?:都|也)?没变"
)
# 还是 / 又 / 照样 before a malfunction word of the classifier's lexicon (还是一闪一闪的, 又不亮了).
_STILL = ("还是", "仍然", "依然", "照样", "照旧", "又", "还", "仍")
# 电梯那个不满意, 灯的满意: which job, then its rating (no comment in it).
_SCORE_SIGNS = "0123456789一二两三四五⭐★"
_POINTING = re.compile(r"(?:那个|这个|那件|这件|那单|这单|的)$")
_NEGATED = re.compile(r"(?:没|不是|并不|谈不上|说不上|算不上)$")  # 不是|不满意: no rating said
_NOT_A_RATING_AFTER_DIGIT = re.compile(r"^\s*(?:号|栋|楼|单元|层|室|幢)")
_PUNCT = " \t\r\n，,。.!！?？、;；:：~～…-—"
_PARTICLES = "的了啊呀哦吧呢嘛"
_SKIN = "\U0001f3fb\U0001f3fc\U0001f3fd\U0001f3fe\U0001f3ff\ufe0f👍👎😊😀😃😄😁☺🥰😍🙂👌💯"  # and faces said twice


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


def _tidy(rest: str) -> str:
    """What is left of an answer once its rating is read: no thumbs, particles or punctuation."""
    return rest.lstrip(_SKIN).lstrip(_PUNCT + _PARTICLES).rstrip(_PUNCT)


def _read_start(norm: str) -> tuple[int, str] | None:
    """A rating at the very start of norm, and what follows it."""
    if (m := _DIGIT.match(norm)) is not None and not _NOT_A_RATING_AFTER_DIGIT.match(m.group(2)):
        return int(m.group(1)), m.group(2)
    if (m := _CN_DIGIT.match(norm)) is not None:
        return _CN_VALUE[m.group(1)], m.group(2)
    if (m := _STARS.match(norm)) is not None:
        return len(m.group(1)), m.group(2)
    for pattern, value in _WORDS:
        if (m := pattern.match(norm)) is not None:
            return value or _SYMBOLS[m.group(0)], norm[m.end():]
    return None


def _whole_rating(clause: str) -> int | None:
    """The score when the clause is a rating and nothing more (满意, 给5分, 嗯 还可以吧)."""
    found = _read_start(_LEAD.sub("", clause, count=1))
    if found is None or _tidy(found[1]):
        return None
    return found[0]


def _scale_said(words: str) -> bool:
    """Whether a rating was said on the survey's own scale (5分, ⭐⭐⭐⭐, 满意, 好评), not as praise."""
    return any(ch.isdigit() or ch in "满星分评⭐★" for ch in words)


_THANKS_ONLY = re.compile(
    r"(?:谢谢|谢了|多谢|感谢|辛苦了|辛苦|麻烦了|麻烦你们了)(?:你们|您|你|师傅|师傅们|大家|了)*[啦了啊呀哈]*"
    r"(?:[，,、\s]*(?:谢谢|谢了|多谢|感谢|辛苦了|辛苦|麻烦了)(?:你们|您|你|师傅|师傅们|大家|了)*[啦了啊呀哈]*)*"
)


def _heard(text: str) -> str:
    """An answer in simplified characters (不滿意 is 不满意), voice's 满一 read as 满意."""
    return _HEARD_SATISFIED.sub("满意", simplified(unicodedata.normalize("NFKC", text)).strip())


def _nfkc_at(text: str) -> tuple[str, list[int]]:
    """text in NFKC (５ is 5, ， is ,) with, for each of its characters, the index of the typed
    character it came from."""
    heard, origin = "", []
    for i, ch in enumerate(text):
        n = unicodedata.normalize("NFKC", ch)
        heard += n
        origin += [i] * len(n)
    return heard, origin


def _heard_at(text: str) -> tuple[str, list[int]] | None:
    """_heard(text) with, for each of its characters, the index of the typed character it came
    from; None when a conversion changed the length (the typed words cannot then be found)."""
    heard, origin = _nfkc_at(text)
    converted = _HEARD_SATISFIED.sub("满意", simplified(heard))
    if len(converted) != len(heard):
        return None
    lead = len(converted) - len(converted.lstrip())
    return converted.strip(), origin[lead:]


def as_typed(text: str, heard: str) -> str:
    """The resident's own words behind `heard`, a piece of _heard(text): 不满意，灯还是不亮 keeps its
    full-width comma and 燈 its traditional form (normalised text is for reading, not storing)."""
    at = _heard_at(text)
    start = at[0].find(heard) if at is not None and heard else -1
    if at is None or start < 0:
        return heard
    return text[at[1][start]: at[1][start + len(heard) - 1] + 1]


def parse_rating(text: str) -> Rating | None:
    """A survey answer (_parse_rating), with thanks alone not kept as a comment (满意 谢谢: the
    rating, with nothing recorded as 意见), and the comment in the resident's own words."""
    rating = _parse_rating(text)
    if rating is not None and rating.comment and _THANKS_ONLY.fullmatch(rating.comment):
        return Rating(rating.score, rating.label, "")
    if rating is not None and rating.comment:
        return Rating(rating.score, rating.label, as_typed(text, rating.comment))
    return rating


def _parse_rating(text: str) -> Rating | None:
    """Read a survey answer from a resident's words; None when the text is not one.

    The rating is read at the start (不满意，灯还是不亮; 嗯满意; 给5分 师傅来得很快), else as the last
    clause (师傅很负责，满意), else from a complaint about the service after a "but" (修好了 但是
    师傅态度不太好) or making the whole answer (态度不好, 太慢了): 不满意, the whole message kept as
    the comment."""
    norm = _heard(text)
    if not norm:
        return None
    body = _LEAD.sub("", norm, count=1)
    found = _read_start(body) if body else None
    if found is not None:
        score, rest = found[0], _tidy(found[1])
        if _whole_rating(rest) is not None:  # 5星好评, 满意 非常好: the rating said twice
            rest = ""
        if score > 3 and _BUT_LATE.match(rest) and not _scale_said(body[: len(body) - len(found[1])]):
            score = 3  # 挺好 就是来得太晚了: praise with a but (see _BUT_LATE)
        return Rating(score, label_of(score), rest)
    clauses = [c for c in _CLAUSE.split(norm) if c]
    if len(clauses) > 1 and (score := _whole_rating(clauses[-1])) is not None:
        return Rating(score, label_of(score), _tidy(norm[: norm.rfind(clauses[-1])]))
    last = clauses[-1] if clauses else ""
    for i in range(1, len(last)):  # 电梯那个不满意, 修得太慢不满意: the rating ends the message
        tail, pointing = last[i:], bool(_POINTING.search(last[:i])) and len(clauses) == 1
        if _NEGATED.search(last[:i].rstrip("有什么啥")):
            break  # 不是不满意: no rating said
        if (tail[0] in _SCORE_SIGNS and not pointing) or (score := _whole_rating(tail)) is None:
            continue  # 12 is no 2 分
        if pointing:
            return Rating(score, label_of(score), "")
        if "满意" in tail or "评" in tail:  # not 天气很好: only a word that can only be a rating
            return Rating(score, label_of(score), _tidy(norm))
    if _BUT_BAD.search(norm):
        return Rating(2, label_of(2), _tidy(norm))
    late = _BUT_LATE.search(norm)
    if late is not None and (get_classifier().terms(norm[: late.start()]) & {"@praise", "@thanks"}
                             or _RESTORED.search(norm[: late.start()])):
        return Rating(3, label_of(3), _tidy(norm))
    if all(_SERVICE_BAD_CLAUSE.fullmatch(c) for c in clauses):
        return Rating(2, label_of(2), text.strip().strip(_PUNCT))  # the resident's own words
    return None


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
    """What the survey names, cut at its ｜-parts as a status line is (status.shown_summary): a
    booking's never ends 备注：坐轮…; a hand-off's is what the resident asked (人工服务：楼上漏水), not
    the staff's 居民要求人工服务 its summary begins with."""
    if ticket.kind == "handoff":
        said = handoff_words(svc.texts, ticket.summary or "")
        title = svc.texts.get("flow.titles.handoff")
        return shown_summary(notices.safe_text(svc.texts.get("survey.handoff_what", title=title, said=said)) if said
                             else title)
    return shown_summary(notices.safe_text(notices.what_of(ticket)) or notices.kind_label(svc, ticket.kind))


def _of_kind(svc: Services, key: str, ticket: Ticket) -> str:
    """survey.{key}_{kind} when the ticket's kind has its own words (a booked meal is no 反映的事项,
    and 灯还是不亮 no example for it), else survey.{key}."""
    own = f"survey.{key}_{ticket.kind}"
    return own if svc.texts.has(own) else f"survey.{key}"


def _example(svc: Services, ticket: Ticket) -> str:
    """The answer the survey suggests, fitting the report's category (survey.example.<category>:
    standing water is no lamp), else survey.example.default."""
    own = f"survey.example.{ticket.category}"
    return svc.texts.get(own if ticket.kind == "complaint" and ticket.category and svc.texts.has(own)
                         else "survey.example.default")


def _message(svc: Services, ticket: Ticket, key: str) -> dict[str, Any]:
    t = svc.texts
    what = _what(svc, ticket)
    return {
        "text": t.get(_of_kind(svc, key, ticket), number=ticket.number, what=what, example=_example(svc, ticket)),
        "template": {
            "title": t.get(_of_kind(svc, "template_title", ticket)),
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


def _reach_s(svc: Services) -> float:
    """How long after a resolution (or a survey's sending) an answer may still come: the delay,
    a night's hold by the daily cap, the reminder, the expiry and the comment window."""
    times = load_schedule_config().survey
    return (svc.settings.survey_delay_s + HELD_BY_CAP_S + times.remind_after_s + times.expire_after_s
            + max(times.comment_window_s, times.late_answer_s))


def _early_s(svc: Services) -> float:
    """How long after a resolution a dissatisfied answer is taken before the survey went out."""
    times = load_schedule_config().survey
    return svc.settings.survey_delay_s + HELD_BY_CAP_S + times.remind_after_s + times.expire_after_s


async def _mark(svc: Services, openid: str) -> None:
    """Remember that the resident may answer a survey (the dialog looks no further without it)."""
    await svc.store.set(svc.store.key("survey", openid), {"at": svc.clock.now().isoformat()}, ttl=_reach_s(svc))


async def schedule_survey(svc: Services, session: AsyncSession, ticket: Ticket) -> None:
    """Queue this resolution's survey to the ticket's resident, CB_SURVEY_DELAY_S from now; from
    now on a dissatisfied answer to the resolution is taken as the survey's (see handle_answer)."""
    if not ticket.resident or ticket.status != "resolved":
        return
    n = await resolution_count(session, ticket)
    await _queue(svc, session, ticket, "survey", svc.settings.survey_delay_s, n, "wechat",
                 _message(svc, ticket, "question"))
    # The index lives in the state store, not this transaction: a rollback leaves a mark that only
    # makes the dialog look at the database once more, and finds nothing.
    await _mark(svc, ticket.resident)


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


def _remember(svc: Services, session: AsyncSession, openid: str) -> None:
    async def write() -> None:
        await _mark(svc, openid)

    after_commit(session, write)


async def _send(svc: Services, session: AsyncSession, reminder: Reminder, action: str, follow: str) -> bool:
    ticket = await _ticket_for(session, reminder)
    n = int((reminder.payload or {}).get("resolution", -1))
    if ticket is None or not await awaiting_rating(session, ticket, n):
        return False
    times = load_schedule_config().survey
    now = svc.clock.now()
    # Not pushed to a resident who unfollowed: the next step is still queued, so the survey still
    # ends as 未评价 in its time (or is asked, when they follow again before the reminder).
    sent = await deliver_plain(session, reminder, now)
    if sent:
        await tickets.add_event(session, ticket, action, "system", now, data={"resolution": n})
    if follow == "survey_remind":
        await _queue(svc, session, ticket, follow, times.remind_after_s, n, "wechat", _message(svc, ticket, "reminder"))
    else:
        # Not a push: the "system" channel keeps it clear of quiet hours and the daily cap.
        await _queue(svc, session, ticket, follow, times.expire_after_s, n, "system", {"close": True})
    if sent:
        _remember(svc, session, reminder.target)
    return sent


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
    given = [e for e in await _answers(session, ticket) if e.action == "rated"]
    if given:
        # Silence on a re-survey does not take back what the resident said before (不满意 stays
        # counted in 满意率): the last score given stays on the ticket.
        data = given[-1].data or {}
        if isinstance(data.get("score"), int):
            ticket.satisfaction = data["score"]
            ticket.satisfaction_label = str(data.get("label") or label_of(data["score"]))
    else:
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
    svc: Services, session: AsyncSession, ticket: Ticket, n: int, rating: Rating, openid: str, *, later: bool = False
) -> str:
    """Record the rating (closing or reopening the job) and the reply. later: said in the middle of
    another request, so what was not right is asked for once that request is done, not now."""
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
        return t.get(key, label=rating.label, number=ticket.number, what=_what(svc, ticket))
    if ticket.parent_id is not None:
        parent = await session.scalar(select(Ticket).where(Ticket.id == ticket.parent_id).with_for_update())
        if parent is not None and still_unresolved(comment, ticket) is None:
            return await _reopen_own(svc, session, ticket, parent, rating, comment, actor, later=later)
        owner_ticket = parent or ticket
        if ticket.status in tickets.TRANSITIONS["reopen"].sources:
            await tickets.transition(session, ticket, "reopen", actor, now, note=f"回访：{rating.label}")
    else:
        owner_ticket = ticket
    if owner_ticket.status in tickets.TRANSITIONS["reopen"].sources:
        # The owner is sent the resident's words with the reopened job (data["comment"]).
        await dispatch.apply_action(svc, session, owner_ticket, "reopen", actor,
                                    note=f"回访：{rating.label} {comment}".strip(), data={"comment": comment})
    elif comment and owner_ticket is not ticket:
        # The job a neighbour's words already reopened: its owner reads these too (they reached
        # only the staff group).
        await tickets.add_event(session, owner_ticket, "rating_comment", actor, now, note=comment,
                                data={"via": ticket.number})
        await comment_to_owner(svc, session, owner_ticket, comment)
    await dispatch.escalate_to_staff(svc, session, owner_ticket, _staff_reason(svc, rating, comment))
    if comment:
        return t.get("survey.bad_noted", comment=comment, number=ticket.number)
    return t.get("survey.bad_ask_later" if later else "survey.bad_ask", number=ticket.number)


def _staff_reason(svc: Services, rating: Rating, comment: str) -> str:
    t = svc.texts
    if comment:
        return t.get("survey.staff_reason", score=rating.score, comment=comment)
    return t.get("survey.staff_reason_no_comment", score=rating.score)


async def _reopen_own(
    svc: Services, session: AsyncSession, ticket: Ticket, parent: Ticket, rating: Rating, comment: str, actor: str,
    *, later: bool = False,
) -> str:
    """A linked reporter unsatisfied, without saying the problem is still there (停了一上午也没人通知):
    only their own report is reopened — the shared job stays as its owner and the neighbours who
    rated it left it (one neighbour's 不满意 is no reason to send the work out again) — and the
    staff group is told, naming the job."""
    t = svc.texts
    if ticket.status in tickets.TRANSITIONS["reopen"].sources:
        # A linked report: its owner gets no new limit for it (dispatch.apply_action).
        await dispatch.apply_action(svc, session, ticket, "reopen", actor,
                                    note=f"回访：{rating.label} {comment}".strip(), data={"comment": comment})
    # The job as 1123-0001, as workers type it.
    forms = notices.ref_forms(parent.number)
    reason = t.get("survey.staff_reason_linked", reason=_staff_reason(svc, rating, comment),
                   parent=forms[min(1, len(forms) - 1)])
    await dispatch.escalate_to_staff(svc, session, ticket, reason)
    if comment:
        return t.get("survey.bad_noted_linked", comment=comment, number=ticket.number)
    return t.get("survey.bad_ask_linked_later" if later else "survey.bad_ask_linked", number=ticket.number)


async def _add_comment(svc: Services, session: AsyncSession, ticket: Ticket, n: int, text: str, openid: str) -> str:
    now = svc.clock.now()
    actor = f"resident:{hash_openid(openid)}"
    comment = notices.safe_text(text.strip())
    # More said after a comment is added to it (the console shows both), never written over it.
    ticket.rating_comment = f"{ticket.rating_comment}；{comment}" if ticket.rating_comment else comment
    await tickets.add_event(session, ticket, "rating_comment", actor, now, note=comment, data={"resolution": n})
    owner_ticket, key = ticket, "survey.comment_noted"
    parent = await dispatch.linked_job(session, ticket)
    if parent is not None:
        if still_unresolved(comment, ticket) is not None and parent.status in tickets.TRANSITIONS["reopen"].sources:
            # 不满意, then 还是没水: the problem itself is still there — the shared job goes back
            # to its owner with these words (as 不满意，还是没水 at once would have sent it), and
            # the report, reopened on its own at the bare 不满意, follows it again (once the job is
            # reopened: its resident, told of their own reopen already, is not told again).
            detached = ticket.parent_id is None
            await dispatch.apply_action(svc, session, parent, "reopen", actor,
                                        note=f"回访：不满意 {comment}", data={"comment": comment})
            if detached:
                await dispatch.relink(svc, session, ticket, parent, actor)
            await tickets.add_event(session, parent, "rating_comment", actor, now, note=comment,
                                    data={"via": ticket.number})
            await dispatch.escalate_to_staff(svc, session, parent, svc.texts.get("survey.staff_comment", comment=comment))
            return svc.texts.get("survey.comment_noted", number=ticket.number)
        # A report reopened on its own is its owner's own job, which hears the comment itself.
        if ticket.parent_id is not None and parent.status == "reopened":
            # The job itself was reopened (by this resident's words or a neighbour's): its owner
            # hears the comment.
            owner_ticket = parent
            await tickets.add_event(session, owner_ticket, "rating_comment", actor, now, note=comment,
                                    data={"via": ticket.number})
        elif ticket.parent_id is not None:
            key = "survey.comment_noted_linked"  # the resident's own report only: staff follow it up
    await dispatch.escalate_to_staff(svc, session, owner_ticket, svc.texts.get("survey.staff_comment", comment=comment))
    if owner_ticket.parent_id is None:
        await comment_to_owner(svc, session, owner_ticket, comment)
    return svc.texts.get(key, number=ticket.number)


async def comment_to_owner(svc: Services, session: AsyncSession, ticket: Ticket, comment: str) -> None:
    """The resident's comment after 不满意 to the reopened job's owner in WeCom (【居民补充】, masked
    and clipped, as an addition to a report is), after the quiet hours; none while no one holds it
    (the staff group has it)."""
    if not ticket.assignee or ticket.status not in dispatch.HELD:
        return
    now = svc.clock.now()
    text = svc.texts.get("status.added_worker", number=ticket.number, text=notices.clip(notices.safe_text(comment), 200))
    await outbox.push_worker(session, ticket.assignee, text, now=now, ticket_id=ticket.id,
                             not_before=dispatch.held_until(svc, ticket))


def _categories(ticket: Ticket) -> set[str]:
    """The ticket's category, and the classifier's for what it is about (flows store their label)."""
    found = {ticket.category} if ticket.category else set()
    named = get_classifier().extract_slots(simplified(notices.what_of(ticket))).get("category")
    if named:
        found.add(str(named))
    return found


def still_unresolved(text: str, ticket: Ticket) -> Rating | None:
    """灯还是不亮 / 没修好 / 还没人来, said to this ticket's survey: 不满意 with the words as the
    comment. Not when the message names a place or another kind of problem (3号楼电梯又坏了 to a
    lighting survey is a new report, for the dialog)."""
    norm = simplified(unicodedata.normalize("NFKC", text)).strip()
    if not (_UNRESOLVED.search(norm) or _still_malfunction(norm)) or parsers.address_parts(norm):
        return None
    named = get_classifier().extract_slots(norm).get("category")
    if named and named not in _categories(ticket):
        return None
    return Rating(2, label_of(2), text.strip().strip(_PUNCT))  # the resident's own words


def slow_fix(text: str, ticket: Ticket) -> Rating | None:
    """停了一上午，太慢了 said to this ticket's survey: the job's own trouble told as it was (a
    malfunction word, no other kind of problem, no place) and a complaint about the service in
    the other clauses: 不满意 with the words as the comment, not a new report."""
    norm = simplified(unicodedata.normalize("NFKC", text)).strip()
    clauses = [c for c in _CLAUSE.split(norm) if c]
    bad = [c for c in clauses if _SERVICE_BAD_CLAUSE.fullmatch(c)]
    told = [c for c in clauses if not _SERVICE_BAD_CLAUSE.fullmatch(c)]
    if not bad or not told or parsers.address_parts(norm):
        return None
    classifier = get_classifier()
    if not all("@malfunction" in classifier.terms(c) for c in told):
        return None
    named = classifier.extract_slots(norm).get("category")
    if named and named not in _categories(ticket):
        return None
    return Rating(2, label_of(2), text.strip().strip(_PUNCT))  # the resident's own words


# 饭有点凉, 菜太咸了, 送晚了, 送错了: what an older resident says of a booked service (a meal, a
# visit) to its survey — each clause such a fault; see care_fault.
_CARE_FAULT_CLAUSE = re.compile(
    r"(?:饭|菜|饭菜|汤|粥|面条?|饺子|馒头|米饭)?(?:是|也|都|有点儿?|有些|太|很|好|特别|比较|还是)*"
    r"(?:凉|冷|咸|淡|硬|油|辣|难吃|不好吃|不热|不新鲜|不够吃|馊)(?:了|的|啊|呀|点儿?)*"
    r"|(?:送|来|到)得?(?:太|有点儿?|比较|又|也)?(?:晚|迟)了?(?:点儿?|一点|好久|半天)?"
    r"|(?:送|拿|给)错了?(?:菜|饭|东西)?|少(?:送)?了?(?:一份|一个|一样|东西|菜)"
    r"|(?:没|没有|还没)(?:送|来)(?:来|到)?了?"
)


def care_fault(text: str, ticket: Ticket) -> Rating | None:
    """饭有点凉, 菜太咸了，送得也晚 said to a booked service's survey: 不满意 with the words as the
    comment (it was 没太明白 and the menu, the survey left open)."""
    if ticket.kind != "elderly_service":
        return None
    clauses = [c for c in _CLAUSE.split(simplified(unicodedata.normalize("NFKC", text)).strip()) if c]
    if not clauses or not all(_CARE_FAULT_CLAUSE.fullmatch(c) for c in clauses):
        return None
    return Rating(2, label_of(2), text.strip().strip(_PUNCT))


def _restored(text: str) -> bool:
    """水来了 / 来水了 / 有水了, and nothing more than thanks (水来了 谢谢): the outage's 修好了."""
    norm = simplified(unicodedata.normalize("NFKC", text)).strip()
    found = _RESTORED.search(norm)
    if found is None:
        return False
    rest = _tidy(norm[: found.start()] + " " + norm[found.end():])
    return not rest or _thanks(rest)


def _still_malfunction(norm: str) -> bool:
    """Whether 还是 / 又 comes right before (at most one word between) a malfunction word of the
    classifier's lexicon: 还是一闪一闪的, 又一闪一闪了, 灯又不亮了."""
    classifier = get_classifier()
    said = [w for w in classifier.segments(norm) if w.strip()]
    return any(
        w in _STILL and any("@malfunction" in classifier.terms(after) for after in said[i + 1:i + 3])
        for i, w in enumerate(said)
    )


def _thanks(text: str) -> bool:
    """Thanks or praise and nothing else the classifier would act on (谢谢 但是灯还是不亮 is more)."""
    classifier = get_classifier()
    if not classifier.terms(text) & {"@thanks", "@praise"}:
        return False
    return classifier.classify(text).intent in ("greeting", "unknown")


# --- which survey a message answers ---------------------------------------------------------------


@dataclass(frozen=True)
class Pending:
    """A survey the resident may answer now: sent and unrated ("sent"); the resolution pushed but
    the survey not sent yet ("early": only a dissatisfied answer counts); closed as 未评价 within
    late_answer_s ("late"); rated 不满意 without a comment, within the comment window ("comment"); or
    rated 不满意 and commented already, within that window and not resolved since ("more": more said
    about the same problem is added to the job, not taken for a new report)."""

    ticket: Ticket
    resolution: int
    state: str
    at: datetime


def _resolution_of(event: TicketEvent) -> int | None:
    value = (event.data or {}).get("resolution")
    return value if isinstance(value, int) else None


def _pending_of(svc: Services, ticket: Ticket, events: list[TicketEvent], more: bool) -> list[Pending]:
    now = svc.clock.now()
    found: list[Pending] = []
    resolves = [e for e in events if e.action == "resolve"]
    n = len(resolves)
    answered = {_resolution_of(e) for e in events if e.action in RATED}
    if n and ticket.resolved_at is not None and ticket.status in ("resolved", "closed") and n not in answered:
        sent = [e for e in events if e.action in ("survey_sent", "survey_reminded") and _resolution_of(e) == n]
        if sent:
            found.append(Pending(ticket, n, "sent", sent[-1].created_at))
        elif now - resolves[-1].created_at < timedelta(seconds=_early_s(svc)):
            found.append(Pending(ticket, n, "early", resolves[-1].created_at))
    elif n and ticket.status == "closed":
        # 未评价 a little while ago: a rating said now still counts (不满意 the day after the survey
        # closed began a new report, asked 哪一类问题; 满意 was thanked and lost).
        last = [e for e in events if e.action in RATED and _resolution_of(e) == n]
        late = timedelta(seconds=load_schedule_config().survey.late_answer_s)
        if last and last[-1].action == "unrated" and now - last[-1].created_at < late:
            found.append(Pending(ticket, n, "late", last[-1].created_at))
    rated = [e for e in events if e.action == "rated"]
    if rated and (rated[-1].data or {}).get("awaiting_comment"):
        last, m = rated[-1], _resolution_of(rated[-1])
        commented = any(e.action == "rating_comment" and _resolution_of(e) == m for e in events)
        window = timedelta(seconds=load_schedule_config().survey.comment_window_s)
        # Only until the job is resolved again: then the new resolution's survey is asked.
        if m == n and not commented and now - last.created_at < window:
            found.append(Pending(ticket, m, "comment", last.created_at))
            return found
    if more and rated and _resolution_of(rated[-1]) == n and ticket.status not in ("resolved", "closed"):
        last, score = rated[-1], (rated[-1].data or {}).get("score")
        window = timedelta(seconds=load_schedule_config().survey.comment_window_s)
        if isinstance(score, int) and score < GOOD_FROM and now - last.created_at < window:
            found.append(Pending(ticket, n, "more", last.created_at))
    return found


async def pending_surveys(svc: Services, session: AsyncSession, openid: str, *, more: bool = False) -> list[Pending]:
    """The surveys the resident may answer now, most recent first (tickets row-locked); with more,
    also the jobs a commented 不满意 reopened that may hear more about the problem ("more")."""
    since = svc.clock.now() - timedelta(seconds=_reach_s(svc))
    rows = list(await session.scalars(
        select(Ticket).where(Ticket.resident == openid, Ticket.updated_at >= since)
        .order_by(Ticket.id).with_for_update()
    ))
    if not rows:
        return []
    events = list(await session.scalars(
        select(TicketEvent).where(
            TicketEvent.ticket_id.in_([t.id for t in rows]),
            TicketEvent.action.in_(("resolve", "survey_sent", "survey_reminded", *RATED, "rating_comment")),
        ).order_by(TicketEvent.id)
    ))
    found = [p for t in rows for p in _pending_of(svc, t, [e for e in events if e.ticket_id == t.id], more)]
    return sorted(found, key=lambda p: (p.at, p.ticket.id), reverse=True)


# A ticket named in an answer: the whole number, its last three or more digits, or any digits
# after 工单/单号/编号 (0002 满意, 工单2不满意); 5 alone is a score, never a ticket.
_REF = re.compile(
    r"(?:(?:工单号?|单号|编号|#)\s*[:：]?\s*(?P<short>\d{1,8})|(?<![\d-])(?P<ref>\d{8}-\d{1,6}|\d{3,8}))"
    r"(?!\d)(?:号)?(?:工单|单)?(?:的)?"
)


def _named(candidates: list[Pending], text: str) -> tuple[Pending | None, str]:
    """The one candidate the text names by number, and the text as typed without that number."""
    norm, origin = _nfkc_at(text)
    norm = norm.replace("—", "-")
    for m in _REF.finditer(norm):
        ref = m.group("short") or m.group("ref")
        hits = {p.ticket.id: p for p in candidates if tickets.number_matches(p.ticket.number, ref)}
        if len(hits) == 1:
            cut = text[: origin[m.start()]] + " " + text[origin[m.end() - 1] + 1:]
            return next(iter(hits.values())), cut.strip()
    return None, text


_NOT_TOPIC = {"坏了", "修好了", "好了", "满意", "不满意", "还是", "师傅", "那个", "这个", "工单"}


def _topic_words(text: str) -> set[str]:
    return {t for t in get_classifier().terms(simplified(text)) if t[:1] not in "@!" and t not in _NOT_TOPIC}


def _by_words(candidates: list[Pending], text: str) -> Pending | None:
    """The candidate whose category and words the text matches best, when exactly one does."""
    named = get_classifier().extract_slots(simplified(text)).get("category")
    words = _topic_words(text)
    scored: list[tuple[int, Pending]] = []
    for p in candidates:
        score = 2 if named and named in _categories(p.ticket) else 0
        score += len(words & _topic_words(notices.what_of(p.ticket)))
        scored.append((score, p))
    best = max(s for s, _ in scored)
    winners = [p for s, p in scored if s == best]
    return winners[0] if best > 0 and len(winners) == 1 else None


def _reading(text: str, p: Pending) -> Rating | None:
    """The rating text gives the candidate's survey; before the survey, a dissatisfied one, or a
    satisfied one said on the survey's scale (满意, 5分, 👍 to the 已办结 push: it was lost, and the
    survey asked again later; 修好了 谢谢 is still thanks, not 满意)."""
    said = parse_rating(text)
    rating = said or still_unresolved(text, p.ticket) or slow_fix(text, p.ticket) or care_fault(text, p.ticket)
    if rating is None or (p.state == "early" and rating.good and (said is None or not on_scale(text))):
        return None
    if p.state in ("early", "late") and said is not None and not on_scale(text):
        # before the survey went out, or days after 未评价, no scale was asked for: 2 is the menu's
        # 2 (矛盾调解; it reopened the job as 2 分), 5 the menu's 5 and 还行 an answer to something else
        return None
    return rating


def _urgent(text: str) -> bool:
    """An emergency is never a survey answer: the dialog gives the advice and takes the report."""
    return complaint.urgent_said(get_classifier().extract_slots(text), text)


async def _which(svc: Services, openid: str, text: str, candidates: list[Pending]) -> str:
    """Ask which ticket the answer is for; the answer is held until the resident names one."""
    await svc.store.set(svc.store.key("survey_held", openid), {"text": text}, ttl=HELD_ANSWER_S)
    t = svc.texts
    lines = "\n".join(t.get("survey.which_line", number=p.ticket.number, what=_what(svc, p.ticket))
                      for p in candidates)
    example = candidates[0].ticket.number.rsplit("-", 1)[-1]
    return t.get("survey.which", count=len(candidates), lines=lines, example=example)


async def _answer(
    svc: Services, session: AsyncSession, inbound: Inbound, open_: list[Pending], *, later: bool = False
) -> str | None:
    """The reply when the message rates one of the open surveys (or says which one), else None."""
    text, openid = inbound.text, inbound.openid
    held_key = svc.store.key("survey_held", openid)
    named, rest = _named(open_, text)
    if named is not None:
        rating = _reading(rest, named)
        if rating is None and not _tidy(rest):  # 0002, answering which one: the answer held
            held = await svc.store.get(held_key)
            if isinstance(held, dict) and isinstance(held.get("text"), str):
                rating = _reading(held["text"], named)
        if rating is None:
            return None
        await svc.store.delete(held_key)
        return await _record(svc, session, named.ticket, named.resolution, rating, openid, later=later)
    readings = {p.ticket.id: _reading(text, p) for p in open_}
    eligible = [p for p in open_ if readings[p.ticket.id] is not None]
    if not eligible:
        held = await svc.store.get(held_key) if len(open_) > 1 else None
        if isinstance(held, dict) and isinstance(held.get("text"), str) and len(text.strip()) <= 10:
            chosen = _by_words(open_, text)  # 灯那个, 电梯的: which one, in words
            rating = _reading(held["text"], chosen) if chosen is not None else None
            if chosen is not None and rating is not None:
                await svc.store.delete(held_key)
                return await _record(svc, session, chosen.ticket, chosen.resolution, rating, openid, later=later)
        if any(p.state == "sent" for p in open_) and (_thanks(text) or _restored(text)):
            # 修好了 谢谢你们: thanked, and asked once more for the score (thanks are not read as
            # 满意: the satisfaction rate counts what residents rate, not what is inferred).
            return svc.texts.get("survey.thanks_unrated")
        sent = [p for p in open_ if p.state == "sent"]
        if sent and is_word(text, "ack"):  # 嗯 / 哦 / 好的: the question, briefly, not the menu
            return svc.texts.get("survey.ack_reask", number=sent[0].ticket.number, what=_what(svc, sent[0].ticket))
        return None
    chosen = eligible[0] if len(eligible) == 1 else _by_words(eligible, text)
    if chosen is None:
        return await _which(svc, openid, text, eligible)
    rating = readings[chosen.ticket.id]
    assert rating is not None
    return await _record(svc, session, chosen.ticket, chosen.resolution, rating, openid, later=later)


# After a bare 不满意, what is not a comment on the job: pleasantries without a complaint in them.
_COMPLAINING = re.compile(r"不|没|但|可是|差|慢|坏|漏|吵|臭|乱|脏")
# A question, which alone preempts the comment (一早上没水 没人说明情况 is the comment).
_ASKING = re.compile(r"吗|么|[?？]|怎么样|咋样|如何|进度|进展|到哪|什么时候|啥时候|几点|多久|呢$")
# Intents the dialog acts on (a new request): not a comment, unless about the same problem.
_CHAT = ("greeting", "unknown")


def _same_problem(text: str, ticket: Ticket) -> bool:
    """灯还是不亮 about the lighting job: the same problem, whatever the classifier calls it."""
    if still_unresolved(text, ticket) is not None:
        return True
    norm = simplified(unicodedata.normalize("NFKC", text))
    named = get_classifier().extract_slots(norm).get("category")
    return bool(named) and named in _categories(ticket) and not parsers.address_parts(norm)


def reads_as_comment(svc: Services, text: str, ticket: Ticket) -> bool:
    """Whether a message after a bare 不满意 is the comment on that job: not a command, a status
    question, a pleasantry or a new request (the classifier sure of another intent), unless it is
    about the same problem (灯还是不亮 根本没修好)."""
    classifier = get_classifier()
    if command_of(text) or number_in(text) or digits_asked(text) or not classifier.normalize(text).strip():
        return False
    found = classifier.classify(text, now=local(svc.clock.now(), svc.tz))
    if found.intent == "greeting" and not _COMPLAINING.search(simplified(text)):
        return False  # 谢谢, 好的
    asks = found.intent == "ticket_status" or classifier.terms(text) & {"@progress", "@status_question"}
    if asks and _ASKING.search(simplified(text)):
        return False  # 我的工单怎么样了 (not 没人说明情况: 情况 is a word of progress, but no question)
    sure = float(flow_config()["switch"]["min_confidence"])
    if found.intent not in _CHAT and found.confidence >= sure:
        return _same_problem(text, ticket)
    return True


async def handle_answer(svc: Services, tx: AsyncSession | Transaction, inbound: Inbound) -> str | None:
    """The reply when this message answers one of the resident's pending surveys (or is the
    comment after a bare 不满意), else None for the dialog to serve it. tx is the message's
    transaction (or a session): its session is made only when a survey may be pending.

    Every pending survey of the resident stays answerable: an answer naming a ticket goes to it,
    else to the only survey it can be for, else to the one its words are about, else the resident
    is asked which. A dissatisfied answer to a resolution whose survey has not gone out yet counts
    as that survey's. An emergency is never taken as an answer."""
    if inbound.is_event or not inbound.text.strip():
        return None
    if await svc.store.get(svc.store.key("survey", inbound.openid)) is None:
        return None  # nothing resolved for this resident lately: the database is not asked
    if _urgent(inbound.text):
        return None
    session = fastsql.session_of(tx)
    pending = await pending_surveys(svc, session, inbound.openid, more=True)
    open_ = [p for p in pending if p.state not in ("comment", "more")]
    if open_:
        reply = await _answer(svc, session, inbound, open_)
        if reply is not None:
            return reply
    commenting = [p for p in pending if p.state == "comment"]
    if commenting and reads_as_comment(svc, inbound.text, commenting[0].ticket):
        p = commenting[0]
        return await _add_comment(svc, session, p.ticket, p.resolution, inbound.text, inbound.openid)
    more = [p for p in pending if p.state == "more"]
    if more and not commenting and reads_as_more(inbound.text, more[0].ticket):
        # 不满意，还是有点积水 then 下水口那边还堵着: the reopened job's, not a new report asking 哪一类问题.
        p = more[0]
        return await _add_comment(svc, session, p.ticket, p.resolution, inbound.text, inbound.openid)
    return None


async def rated_before_done(svc: Services, tx: AsyncSession | Transaction, inbound: Inbound) -> str | None:
    """满意 / 5分 / 👍 alone (on the survey's scale, nothing more said) outside any request while no
    survey of the resident's waits (handle_answer found none) but a job of theirs is still being
    handled: it is said that the job is not finished and that it will be rated once it is (it got
    不客气 and was lost). None otherwise."""
    text = inbound.text
    rating = parse_rating(text) if on_scale(text) else None
    if rating is None or rating.comment or not rating.good:
        return None  # 不满意 while a job is open is a chase or a complaint, read as such
    session = fastsql.session_of(tx)
    handled = list(await session.scalars(
        select(Ticket).where(Ticket.resident == inbound.openid, Ticket.status.in_(tickets.ACTIVE))
        .order_by(Ticket.id.desc())))
    if not handled:
        return None
    if len(handled) == 1:
        return svc.texts.get("survey.not_done_yet", number=handled[0].number, what=_what(svc, handled[0]))
    # Several being handled: each named (the newest alone read as if the rating were for it).
    lines = "\n".join(svc.texts.get("survey.which_line", number=t.number, what=_what(svc, t)) for t in handled)
    return svc.texts.get("survey.not_done_yet_many", count=len(handled), lines=lines)


def reads_as_more(text: str, ticket: Ticket) -> bool:
    """Whether a message after a commented 不满意 says more about that same problem (下水口那边还堵着
    after 不满意，还是有点积水): not a command nor a ticket number, and _same_problem."""
    return not command_of(text) and not number_in(text) and _same_problem(text, ticket)


# A rating on the survey's own scale (not a bare digit, which may be an age or a choice; not 一般,
# which may be a report's urgency): taken from the middle of another request, and days after 未评价.
_ON_SCALE = re.compile(
    r"满意|[1-5一二两三四五]\s*(?:分|星|颗星)(?!钟)|好评|差评|满分|[⭐★👍👎😊😀😃😄😁☺🥰😍🙂👌💯😞😔😟🙁☹😣😢😭😒😠😡😤🤬]"
    r"|\[(?:强|弱|微笑|愉快|呲牙|憨笑|OK|好的|玫瑰|爱心|抱拳|难过|流泪|大哭|撇嘴|发怒|怒)\]|/:(?:strong|weak)"
)


def on_scale(text: str) -> bool:
    """Whether text says a rating on the survey's own scale (满意, 4分, 好评, 👍, 😊), not a bare digit."""
    return bool(_ON_SCALE.search(_heard(text)))


async def answer_in_flow(svc: Services, tx: AsyncSession | Transaction, inbound: Inbound) -> str | None:
    """The reply when a message sent in the middle of another request (a booking's 怎么称呼) is
    only a rating on the survey's scale (满意, 不满意, 4分, 👍, 😊) and a survey that went out is
    waiting for one: recorded as handle_answer would, for the dialog to ask its question again.
    None otherwise (the message is the request's answer: 5 to 多大年纪 stays an age). As for
    handle_answer, tx's session is made only when a survey may be waiting."""
    if inbound.is_event or not inbound.text.strip():
        return None
    if not on_scale(inbound.text):  # most answers: no store or database asked
        return None
    if await svc.store.get(svc.store.key("survey", inbound.openid)) is None:
        return None
    session = fastsql.session_of(tx)
    # A survey sent, or a resolution pushed whose survey has not gone out yet (满意 to the 已办结
    # push counts as its answer, as handle_answer takes it): either waits for this rating.
    waiting = [p for p in await pending_surveys(svc, session, inbound.openid) if p.state in ("sent", "early")]
    named, rest = _named(waiting, inbound.text)
    rating = parse_rating(rest if named is not None else inbound.text)
    if not waiting or rating is None or rating.comment:
        return None  # with more said (不满意，灯还是不亮) it may be the answer the request asks for
    if len(waiting) > 1 and named is None:
        # Which one is not asked now: the answer would go to the request's question (0002 to a
        # status question). Said how to rate them once the request is done.
        example = waiting[0].ticket.number.rsplit("-", 1)[-1]
        return svc.texts.get("survey.which_later", count=len(waiting), example=example)
    return await _answer(svc, session, inbound, waiting, later=True)
