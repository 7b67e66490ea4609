"""What grid workers and staff type in the WeCom app: 接单 / 办结 / 退回 / 吹哨 / 电话 / 我的工单 / 帮助 / 回复.

`parse` reads a command; `run` carries it out for a roster person and returns the reply text.
Only a ticket's assignee may act on it; every action (and every refusal to act on someone
else's ticket) goes to the audit log. A photo sent after 办结 is attached to that ticket.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from functools import cache
from typing import Any

from sqlalchemy import bindparam, exists, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot import activities, delivery_record, dispatch, notices, outage_commands, outbox, roster, tickets
from bot.clock import local
from bot.intents.normalize import simplified
from bot.services import Services
from storage.models import AuditLog, Person, Resident, Ticket, TicketEvent

log = logging.getLogger(__name__)

VERBS = {"接单": "accept", "办结": "resolve", "退回": "return", "吹哨": "whistle", "回复": "reply", "回复全部": "reply_all",
         "电话": "phone"}
# Other words for a verb: 接了 / 已接单 is 接单; 完成 / 已完成 say only "done", so they are a 办结
# without a note (the result is asked for, as for a bare 办结). Read only before the end, a mark, a
# number or 了 (完成情况 is no command).
SYNONYMS = {"已接单": "accept", "已接": "accept", "接了": "accept", "接啦": "accept", "我接了": "accept",
            "已完成": "resolve", "完成": "resolve"}
COMMAND_WORD = {verb: word for word, verb in VERBS.items()}  # what the worker types for a verb
WORDS = {"我的工单": "mine", "帮助": "help", "help": "help", "?": "help", "？": "help"}
# 我有哪些单 / 我的单子 / 我的任务 / 查看工单: 我的工单.
_MINE = re.compile(
    r"^(?:我的|我有哪些|我有什么|我有几[个张]|我手[上里](?:的|有)?|查看?(?:一下)?(?:我的)?|看看?(?:我的)?)"
    r"(?:工单|单子|单|任务)(?:列表)?(?:呢|吗)?$|^(?:工单|任务)列表$"
)
# How many jobs are left, as people ask it in chat (我手上还有几个单子, 还有几单, 今天有几个单, 今天的单子,
# 还有哪些活没干; 明天的单子, 明天有几个单: the bot keeps no day's plan): 我的工单 — the list says each
# job's limit. A count or "which" is needed (单 alone
# is nothing), and 单 is never 单元 (3号楼有几个单元 is no question about jobs).
_MINE_ASKED = re.compile(
    r"^(?:我|我们)?(?:手[上里头])?(?:今天|今日|明天|明日|现在|目前)?(?:还|一共|总共)?(?:有|剩|剩下|要[办做干])?"
    r"(?:几[个张件]?|多少[个张件]?|哪些|哪几[个张件]|什么)(?:工单|单子|单|任务|活儿?|事儿?)"
    r"(?:没办|没做|没干|没办完|要办|要做|要干|待办)?(?:了|啊|呀|呢|吗)*$"
    r"|^(?:今天|今日|今晚|晚上|明天|明日|明儿|后天)(?:的|有)?(?:工单|单子|任务|活儿?)(?:呢|吗|有哪些|有几[个张])?$"
    r"|^(?:今天|今晚|晚上|手上|手里)?还有(?:工单|单子|单|任务|活儿?)(?:没办|没干|要办|要干)?(?:吗|么|嘛|没有?)$"
)
# 收到 (好的收到, 收到，马上去) takes the one ticket waiting to be taken, only when there is exactly one.
_ACK = re.compile(
    r"^(?:好的?)?[\s,]*(?:收到(?:了|啦)?(?:[\s,]*(?:马上去|马上到|这就去|马上处理|谢谢))?"
    r"|(?:我)?(?:马上|这就|现在)(?:就)?(?:过)?去(?:了|啦)?|马上到"
    r"|(?:我)?(?:马上|这就|现在)?(?:就)?(?:过)?去(?:看看|看一下|瞧瞧|瞅瞅)(?:吧|啊)?)$"
)
# A reply to a notice that asks for nothing (好的, 知道了, 谢谢, 辛苦了, 👌): a short answer, not the
# whole command list.
# 到了 / 在路上了 / 出发了 (where the worker is) ask for nothing either.
_NOTED = re.compile(
    r"^(?:好的?|好嘞|好滴|行|ok|okay|嗯+|知道了?|明白了?|了解了?|谢谢|多谢|辛苦了?|👌|👍|🙏"
    r"|(?:我)?(?:已经?)?到(?:了|啦|现场了?)|(?:我)?(?:已经?)?在路上了?|(?:我)?(?:已经?)?出发了"
    r"|(?:我|人)?(?:已经?)?(?:到场|到达现场|上门)了?|(?:我|人)?(?:已经?)?在现场了?)"
    # 到现场了 正在疏通: where the worker is and what they are at, nothing done yet
    r"(?:[\s,!~。.]*正在(?:处理|修|维修|疏通|检查|排查|查看|看|弄|清理|协调|调解|联系|找|叫|等|敲门|开门|开锁)[^\d?？]{0,10})?"
    r"(?:[\s,!~。.]*(?:谢谢|辛苦了?|👌|👍|🙏))*$"
)
# Of those, the ones saying where the worker is (到了, 在路上了, 出发了, 到现场了, 上门了, 在现场).
_ON_THE_WAY = re.compile(r"到(?:了|啦|场|达|现场)|在路上|出发|上门|在现场")
# Arrived at a building named (到3号楼了, 我已经到7栋了 正在敲门, 3号楼到了, 到了 3号楼): where the
# worker is, said with the place — the job there is meant when the worker holds several.
_BUILDING_WORD = r"(?P<b{n}>\d{{1,4}})\s*(?:号楼|号院|栋|幢|座)(?:\d{{1,2}}单元)?(?:门口|楼下|这边|这儿|这里)?"
_ARRIVED_AT = re.compile(
    r"^(?:我|人)?(?:已经?)?(?:"
    rf"到{_BUILDING_WORD.format(n=1)}(?:了|啦)?"
    rf"|{_BUILDING_WORD.format(n=2)}[\s,，]*(?:我|人)?(?:已经?)?到(?:了|啦)"
    rf"|到(?:了|啦)[\s,，]*{_BUILDING_WORD.format(n=3)}"
    r")"
    r"(?:[\s,!~。.]*正在(?:处理|修|维修|疏通|检查|排查|查看|看|弄|清理|协调|调解|联系|找|叫|等|敲门|开门|开锁)[^\d?？]{0,10})?"
    r"(?:[\s,!~。.]*(?:谢谢|辛苦了?|👌|👍|🙏))*$"
)
# Words asking for the job to go to someone else (下午去不了 换个人吧, 今天走不开 找别人吧): a 退回
# is the worker's to send, so nothing is done; the reply gives the 退回 to send, with these words.
# 转派 3 给李娜 / 转给李娜 / 我接不了 / 取消接单 3 too: a worker cannot give a job to a colleague or
# take back a 接单 (staff reassign), so the answer is the same 退回, the words its reason.
# 这个单子我处理不了 / 办不了 / 管不了 (beyond the worker): the same 退回, with a word on 吹哨 for
# what needs the street office or a department (_CANNOT).
_CANNOT = (r"(?:处理|办|弄|管|修|解决|搞|干|做|调解|协调)不了|(?:修|弄|搞|处理)不好|搞不定|没(?:法|办法)(?:处理|办|弄|修|解决)"
           r"|不归我(?:们)?管|不是我(?:们)?(?:网格|片区|辖区)的?")  # 这个不归我管: not theirs to do
# 送不了 / 人手不够 (a provider who cannot serve a booking) as 去不了 is.
_HAND_OVER = re.compile(r"去不了|来不了|去不成|走不开|抽不开身|送不了|送不过去|送不过来|人手不够|没有?人手|派不出人"
                        r"|换个人|换人|找别人|派给别人|让别人去|别人去"
                        rf"|转派|转交|转给|转单|接不了|取消接单|{_CANNOT}")
_CANNOT_SAID = re.compile(_CANNOT)
# In a hand-over, the words that ask for another person (not only "not now": 今天去不了 明天去 is a plan).
_ASKS_ANOTHER = re.compile(rf"换个人|换人|找别人|派给别人|让别人去|别人去|转派|转交|转给|转单|接不了|取消接单|{_CANNOT}")
# 在吗 / 有人吗 / 你好: a short answer as a colleague would give, with how to see 我的工单.
_HELLO = re.compile(r"^(?:喂|哈喽|hello|hi|你好|您好)?[\s,!~。.]*(?:在吗|在么|在嘛|在不在|有人吗|有人在吗|有人没|机器人)?"
                    r"[\s,!~。.？?]*$", re.IGNORECASE)
# Its number: first (3 去不了, 3号单子转给李娜吧), or right after the words that begin it (转派 3 给李娜).
_HAND_OVER_REF = re.compile(
    r"^(?P<verb>转派|转交|转单|取消接单)?[\s:,;、。]*(?:第)?(?P<ref>\d{8}-\d{1,4}|\d{4}-\d{1,4}|\d{1,12})"
    r"(?:号?单(?!元)子?|号)?[\s:,;、。]*"
)
# A message that says how the job ended (调解成功, 调解不成, 处理好了, 已修好; a provider's 送到了, 已送达,
# 服务完了) is a 办结 with those words
# as its note, as `办结 调解成功` is; never a question (修好了吗) or half a sentence (处理好了一半).
_OUTCOME = (
    r"(?:已经?)?(?:处理|弄|修|办|搞|做)(?:好|完)了?|已经?处理了?|处理完毕|搞定了?"
    r"|(?:已经?)?送(?:到|达)了|已经?送(?:到|达)|(?:已经?)?(?:服务|陪诊|助浴|洗)(?:完|好)了"
    r"|已经?修复(?:好|完)?了?|修复(?:好|完)?了"
    r"|调解(?:成功|不成功?|失败|未成功?|没成功?|没成)了?"
    r"|(?:双方)?(?:已经?)?(?:达成)?和解了?|(?:双方)?(?:已经?)?达成(?:了)?(?:调解)?(?:协议|一致)了?"
)
# The statuses a worker's ticket may be in for each verb (short forms look among these). An
# escalated ticket still names its owner, who may still take it, finish it or hand it back, and
# may blow the whistle again (staff are told once more).
FROM_STATUSES = {
    "accept": ("dispatched", "reopened", "escalated"),
    "resolve": ("dispatched", "accepted", "reopened", "escalated"),
    "return": ("dispatched", "accepted", "reopened", "escalated"),
    "whistle": ("dispatched", "accepted", "reopened", "escalated"),
    "phone": ("dispatched", "accepted", "reopened", "escalated"),
}
NEEDS_NOTE = {"resolve": "note_resolve", "return": "note_return", "whistle": "note_whistle", "reply": "note_reply"}
PHOTO_TTL_S = 1800
# A photo this soon after a 办结 is that job's result; later, with another job in hand, it was
# taken at the next job and is kept for its 办结 (with none in hand, it still goes to the one done).
PHOTO_AFTER_S = 300
KEPT_PHOTOS = 9  # photos kept from before a 办结 (WeCom sends at most 9 picked at once)
LAST_ACTED_WITHIN = timedelta(hours=2)  # a sentence with no number is shown as the 回复 of the job acted on last
REPLY_SEEN_TTL_S = 86400  # how long a colleague's answer shown on a held 回复 counts as read
MAX_NOTE = 600  # a note's characters: it is the resident's push (as a console answer, staff_actions)
REPLY_MAX_BYTES = 2048  # WeCom cuts a passive reply's text past this many UTF-8 bytes, without a word
# Numbers in one command (接单 1 2 3): a grid worker after a water cut may take ten at once. Each gets
# a line of the reply, shortened when the full lines would pass what one WeCom reply holds.
MAX_REFS = 12
# Between a verb, its number and the note: spaces or the punctuation people type there (接单：0001,
# 办结 0001，已修好; NFKC has made full-width marks ASCII).
_SEP = r"[\s:,;、。]"
# What may end a short number (接单 7，马上去 / 接单 2。/ 接单 7号 / 接单 7了 / 接单 2和3): a space,
# the end, a mark — but not a colon or point before a digit (办结 10:30修好, 办结 1.5米管子换了: notes).
_NUMBER_END = r"(?=\s|$|[,;、。!?]|[:.](?!\d)|[了啦](?=$|[\s,;、。!?])|[和与及]\s*\d)"
# A ticket number: whole (20261123-0002), month and day with the sequence (1123-0002, which tells
# apart the 0002 of two days), or digits (2, 0002, 230002).
_REF = r"\d{8}-\d{1,4}|\d{4}-\d{1,4}|\d{1,12}"
_JOINED = r"\d{8}-\d{1,4}|\d{4}-\d{1,4}|\d{4,12}"
# A number: any ref ended as above; or a whole one or four or more digits straight before the note
# (办结0001灯已换好), or digits and 号 (办结 2号已修好). In 办结 3楼灯已换 or 办结 3号楼灯已换 there is
# no number: they are the note.
_ENDED = rf"(?:号?{_NUMBER_END}|号(?![楼院栋幢座单室门口])|号?单(?!元))"
# Marks typed before a number (接单 #3, 接单 No.3, 接单 第3单): the number follows.
_REF_MARK = re.compile(r"(?:#|no\.?|第)\s*(?=\d)", re.IGNORECASE)
# A number in Chinese numerals where the number goes (接单三号, 办结 十二号 已修好, 接单 零零零三: how
# voice input writes it): read as its digits; never a place (办结 三楼灯已换) or words (办结 一切正常).
_CN = "零〇一幺二两三四五六七八九十百"  # 幺: the 1 of a number said digit by digit (零零零幺)
_CN_REF = re.compile(
    rf"第?([{_CN}]{{1,6}})(?=(?:号|单|号单)?(?:$|[\s,;、。!?和与及]|[了啦](?=$|[\s,;、。!?]))|(?:号|单)第?[{_CN}])"
)
# What may come between two numbers in numerals (一号二号, 一号、二号, 一号和二号).
_CN_NEXT = re.compile(rf"(?:号单|号|单)?(?:{_SEP}*[和与及]{_SEP}*|{_SEP}+)|(?:号单|号|单)")
_CN_DIGITS = {c: n for n, cs in enumerate(("零〇", "一幺", "二两", "三", "四", "五", "六", "七", "八", "九")) for c in cs}
# A mistyped number where the number goes (接单 0O3, 办结 O003 已修好: a letter for a zero; a digit
# too many, 接单 99999999999999): never read as no number, which would act on the worker's only
# ticket, or as the note. (办结 3楼灯已换 / 10:30修好 / 1.5米管子换了 are notes: no mark after them.)
_TYPO_REF = re.compile(r"[0-9A-Za-z#.\-]*\d[0-9A-Za-z#.\-]*(?=$|[\s,;、。!?])")
_FIRST_REF = re.compile(rf"({_REF}){_ENDED}|({_JOINED})(?=\D)")
# More numbers after the first (接单 1 2 3, 接单 2、3, 办结 2和3 都调解好了).
_MORE_REF = re.compile(rf"(?:{_SEP}*[和与及]{_SEP}*|{_SEP}+|(?<=[号单]))(?:#|no\.?|第)?(?:({_REF}){_ENDED}|({_JOINED})(?=\D))", re.IGNORECASE)
_VERB_WORDS = {**VERBS, **SYNONYMS}
_VERB = "|".join(sorted(_VERB_WORDS, key=len, reverse=True))
_HEAD = re.compile(rf"^({_VERB})(?:了|啦)?{_SEP}*")
_SYNONYM_END = re.compile(rf"$|{_SEP}|\d|[了啦!?]")
_TRAILING = re.compile(r"[\s?!.。？！]+$")
# A verb as voice input or a slip of the finger writes it (办姐 2 好了, 半结 2, 结办 2, 借单 3, 推回 4):
# nothing done — never offered as words for the resident either — the command asked back instead.
MISHEARD = {
    **dict.fromkeys(("办姐", "半结", "伴结", "扮结", "办解", "办接", "办节", "结办", "办洁", "办杰", "办捷", "半洁", "班结"),
                    "办结"),
    **dict.fromkeys(("借单", "接担", "街单", "节单", "单接", "接蛋", "接丹", "街丹", "节丹", "姐单"), "接单"),
    **dict.fromkeys(("推回", "腿回", "回退"), "退回"),
    **dict.fromkeys(("吹笑", "吹削", "催哨", "垂哨", "吹少", "哨吹"), "吹哨"),
    **dict.fromkeys(("电化", "店话", "话电"), "电话"),
}
_MISHEARD = re.compile(rf"^({'|'.join(MISHEARD)})(?=$|{_SEP}|\d|[零〇一二两三四五六七八九十])")
# The number first (0002 接单, 20261123-0002办结 已修好, 0002 调解成功): read as the verb first.
_NUMBER_FIRST = re.compile(
    rf"^(\d{{8}}-\d{{1,4}}|\d{{4}}-\d{{1,4}}|\d{{1,12}})号?{_SEP}*(?:({_VERB})|({_OUTCOME})(?=$|{_SEP}))(?=$|{_SEP}|\D)(.*)$",
    re.DOTALL,
)
_OUTCOME_FIRST = re.compile(rf"^({_OUTCOME})(?=$|{_SEP})(.*)$", re.DOTALL)
# A job's end said in words about it, as a worker types or speaks on the phone (灯修好了, 3号灯修好了,
# 灯修好了 3号, 3号单已修好, 7号楼的灯换好了): a 办结 with those words as its note, as 2号办好了 is —
# only when it says it is done (已 or 了), never asked (修好了吗) nor to come (等修好了, 明天修好了),
# not done (没修好, 处理好了一半) nor another's words (居民说修好了).
_DONE = (r"(?:已经?|都)?(?:处理|弄|修|办|搞|做|换|装|接|通|疏通|清理|清|补|打扫|收拾|调|调解)(?:好|完)了?"
         r"|(?:已经?|都)?(?<![打拨联沟接想说])(?:疏)?通了"
         r"|已经?(?:处理|修复|维修|更换|疏通|清理)(?:完毕|过)?了?|(?:已经?)?(?:清理|打扫|收拾|擦)干净了?|处理完毕|搞定了?"
         r"|(?:活儿?|事儿?)?(?:干完|完事)了|已经?完成了?|完成了|(?:已经?|都)?(?:清|搬|拉|运|挪)走了"
         r"|(?:已经?|都)?送(?:到|达)了|已经?送(?:到|达)|(?:已经?|都)?(?:服务|陪诊|助浴|洗)(?:完|好)了")
_SAID_DONE = re.compile(rf"^(?P<before>.{{1,30}}?)(?P<done>{_DONE})(?P<after>(?:$|{_SEP}|[!~.]|第|\d).*)$", re.DOTALL)
_NOT_DONE = re.compile(r"没|未|不|还|吗|么|嘛|[?？]|等|要|需|请|帮|能|会|快|马上|尽快|明天|后天|什么|怎么|啥|谁|哪|如果"
                       r"|要是|以后|之后|一半|准备|打算|正在|说|听|问|催|再")
# The number before the words (3号灯修好了, 0003灯换好了, 三号的灯修好了) or after them (灯修好了 3号).
_PLACE_WORD = r"(?:[楼院栋幢座室门口]|单元)"  # after 号: a place (3号楼, 3号单元), not a ticket
_REF_BEFORE = re.compile(rf"^(?:第)?(?P<ref>\d{{8}}-\d{{1,4}}|\d{{4}}-\d{{1,4}}|\d{{4,12}}(?!号?{_PLACE_WORD})"
                         rf"|\d{{1,3}}(?=号(?!{_PLACE_WORD})|单(?!元)))(?:号单子?|号(?!{_PLACE_WORD})|单子?(?!元))?的?{_SEP}*")
_REF_AFTER = re.compile(rf"^{_SEP}*(?:第)?(?P<ref>\d{{8}}-\d{{1,4}}|\d{{4}}-\d{{1,4}}|\d{{1,12}})(?:号单|号|单)?{_SEP}*$")
# 3号好了 / 3号单子ok了: a bare 好了 is a 办结 only right after the number.
_REF_OK = re.compile(r"^(?:第)?(\d{8}-\d{1,4}|\d{4}-\d{1,4}|\d{1,12})(?:号单子?|号|单子?)(?:的活儿?|的事儿?)?"
                     r"[\s,]*(?:已经)?(?:好了|好啦|ok了|弄好了)[\s!~。.]*$", re.IGNORECASE)
# A building named instead of the number (7号楼的灯修好了): the worker's one job there is meant.
_PLACE = re.compile(r"(\d{1,4})\s*(?:号楼|号院|栋|幢|座)")
# A thing named, then 好了 (1号楼的下水道好了, 灯好了): a 办结 only of the one job of the kind of
# problem the thing is (its report's category, read by the same words), never of another job.
_THING_OK = re.compile(r"^(?P<before>.{1,30}?)(?:已经|都)?(?:好了|好啦)[\s!~。.]*$", re.DOTALL)
# The number first in numerals, as voice input writes it (二号办好了, 三号接单): read as its digits
# when the verb or an outcome follows (一号楼的灯修好了 names a building: no number).
_CN_FIRST = re.compile(rf"^第?([{_CN}]{{1,6}})(?=号|单)")
# When the job will be done, said to the bot (明天去, 下午过去看看, 材料到了再修, 等配件到了再换, 还没修好;
# 3 明天去 names the job): nothing is done or sent, the reply gives the 接单 of a job not yet taken
# and the 回复 that tells the resident. As a 办结's note (办结 3 材料到了再修) it is the same: the job is
# not finished on words that say it is not done — the resident would be told 已办结 and surveyed.
# A time or day, then (within a few words) going or doing; never done already (下午去过了, 下午已修好),
# can't (明天去不了: a hand-over) or finished later (明天修好: too unclear to refuse a 办结 for).
_WHEN = (r"(?:今天|今儿|明天|明儿|后天|大后天)?(?:一早|早上|上午|中午|下午|傍晚|晚上|晚点|晚些)|今晚|明天|明儿|明早|后天|大后天"
         r"|待会儿?|等会儿?|等一下|一会儿?|过会儿?|过一会儿?|过两天|过几天|改天|回头|下周[一二三四五六日天]?|下礼拜|下星期"
         r"|(?:这|下)?(?:周|星期|礼拜)[一二三四五六日天]|\d{1,2}(?:点|:\d\d)(?:半|钟)?")
_GO = r"(?:过去|过来|上门|去|来|修|弄|处理|换|看看|看|办|装|疏通|送|到)(?![过了好完不])"
# A day or a while to come (明天, 下周, 过两天), never a time that may be past (上午修好: done this
# morning): 明天修好 / 过两天就能弄好 is a plan, as 明天去 is.
_FUTURE = (r"(?:明天|明儿|明早|后天|大后天|下周[一二三四五六日天]?|下礼拜|下星期|改天|回头|过两天|过几天"
           r"|待会儿?|等会儿?|过会儿?|过一会儿?)")
_LATER = re.compile(
    r"^(?:"
    rf"(?:我|我们|师傅)?(?:就|先)?(?:{_WHEN})[^了已]{{0,10}}?(?:再|就|才)?{_GO}"
    r"|(?:要)?等(?:到)?.{1,10}?(?:再|才)(?:去|来|修|弄|处理|换|装|办)"
    r"|(?:材料|配件|零件|货|东西|工具|师傅|灯泡|灯管|管子)(?:到了|来了|齐了|买到了|买回来了?|回来)(?:以后|之后)?再"
    r"|(?:还|暂时|目前|现在)?(?:没|未)有?(?:修|弄|处理|办|换|去|做|疏通|送)(?:好|完|到)?(?!过)"
    rf"|(?:我|我们|师傅)?(?:就|先)?{_FUTURE}[^了已]{{0,10}}?(?:能|就|才|再)?(?:修|弄|处理|换|装|办|疏通|清理|送)(?:好|完)(?![了啦]))",
    re.IGNORECASE,
)
# A volunteer coordinator's decision on a signup in words (通过, 审核通过 2, 2号通过, 同意; 不通过 2 年龄不符):
# the signup's 办结 (approve) or 退回 (decline, the words after it its reason), read only from a
# coordinator — from anyone else they are words, as before.
_APPROVE = re.compile(rf"^(?:(?P<pre>\d{{1,12}})号?{_SEP}*)?(?P<no>不|没)?(?:予以?)?(?:审核)?(?:通过|同意)(?:了|啦)?"
                      rf"(?:{_SEP}*(?P<ref>\d{{1,12}})(?:号|单)?)?(?:{_SEP}+(?P<rest>.*))?$", re.DOTALL)
# The job named by its building or thing first (1号楼的灯明天修, 2号楼水管 明天上午去): the plan is the rest.
_LATER_ABOUT = re.compile(rf"^(?P<what>.{{1,20}}?(?:号楼|栋|幢|座|的|{_SEP}).{{0,10}}?){_SEP}*(?P<plan>(?:{_WHEN}).*)$", re.DOTALL)
# Said after an acknowledgement (好的 明天去, 收到，明天上午去): the words for the resident are the rest.
_LATER_LEAD = re.compile(r"^(?:好的?|嗯+|收到了?|行|ok)[\s,.。!]*", re.IGNORECASE)
# A 办结 that says the job was done and will be checked (办结 3 明天去复查) is a 办结.
_CHECK_AFTER = re.compile(r"复查|回访|复核")
# Its number first (3 明天去, 0003 材料到了再修, 3号明天下午去): never a building (3号楼明天去).
_LATER_REF = re.compile(
    rf"^(?:第)?(?P<ref>\d{{8}}-\d{{1,4}}|\d{{4}}-\d{{1,4}}|\d{{1,12}})(?:号单子?|号(?!{_PLACE_WORD})|单子?(?!元))?的?{_SEP}+"
    rf"|^(?:第)?(?P<tight>\d{{8}}-\d{{1,4}}|\d{{4}}-\d{{1,4}}|\d{{1,12}})(?:号单子?|号(?!{_PLACE_WORD})|单子?(?!元))的?"
)
# A note that says nothing (办结了, 退回了, 办结 好了): no note, so the command is a bare one.
_FILLER = re.compile(r"(?:了|啦|喽|咯|啰|哈|吧|呢|啊|呀|哦|噢|嘛|好|好的|ok|okay|[.!~…])+", re.IGNORECASE)
_LEADING_FILLER = re.compile(r"^(?:了|啦|好了|好啦)(?:[\s,;:、。!?]+|$)")


@dataclass(frozen=True)
class Command:
    """A parsed command: verb (accept, resolve, return, whistle, reply, mine, help, noted, hello,
    hand_over: words asking for the job to go to someone else, later: when it will be done), ticket
    ref, text.

    more: further numbers typed (接单 1 2 3); soft: 收到, an accept only when one ticket waits;
    typo: what stands where the number goes but is none (0O3), so nothing is done; place: the
    building said instead of a number (7号楼的灯修好了), meaning the worker's job there; instead:
    the verb typed but not carried out (办结 3 材料到了再修 is a `later`, not a resolve); topic:
    the kind of problem a job's end said in words names (下水道通了: 环境卫生, a report's category),
    which picks the job among several; kind_only: only a job of that kind (1号楼的下水道好了)."""

    verb: str
    ref: str | None = None
    text: str = ""
    more: tuple[str, ...] = ()
    soft: bool = False
    typo: str = ""
    place: str | None = None
    instead: str | None = None
    topic: str | None = None
    kind_only: bool = False

    @property
    def refs(self) -> tuple[str, ...]:
        """Every number typed, in order."""
        return ((self.ref,) if self.ref else ()) + self.more


@dataclass
class Answered:
    """How run() answered a message that carries nothing out by design (好的, 在吗, 明天去, 下午去不了
    换个人吧): 'answered' — told what to send, nothing to change — or 'refused' when a number it
    named is none of the sender's; None for a command, whose outcome the audit log tells."""

    outcome: str | None = None
    # The command read before the owners' ones (关闭, 停水 …, 取消活动, 活动): its verb for the log
    # line, which parse() alone cannot tell.
    verb: str | None = None


_ANSWERED: ContextVar[Answered | None] = ContextVar("wecom_answered", default=None)


@contextmanager
def answered() -> Iterator[Answered]:
    """Handle one message: what run() says of an answer that carries nothing out is kept here
    (for /wecom's log line, which reads a command's outcome from the audit log)."""
    said = Answered()
    token = _ANSWERED.set(said)
    try:
        yield said
    finally:
        _ANSWERED.reset(token)


def _answered_as(outcome: str) -> None:
    said = _ANSWERED.get()
    if said is not None:
        said.outcome = outcome


def _read_as(verb: str) -> None:
    said = _ANSWERED.get()
    if said is not None:
        said.verb = verb


def _normal(text: str) -> str:
    return simplified(unicodedata.normalize("NFKC", text)).strip()  # 接單 is 接单, ，is ,


def as_typed(text: str, note: str) -> str:
    """The note as the worker typed it (已修好，晚了一点, not its normal form): the shortest tail of
    text that reads as note; the note itself when none does."""
    for start in range(len(text) - 1, -1, -1):
        tail = _normal(text[start:])
        if tail == note:
            return text[start:].strip()
        if len(tail) > len(note) + 8:
            break
    return note


def _cn_number(said: str) -> str | None:
    """Chinese numerals as digits: 零零零三 → 0003 (said digit by digit), 十二 → 12, 一百零三 → 103."""
    if "十" not in said and "百" not in said:
        return "".join(str(_CN_DIGITS[c]) for c in said)
    hundreds, _, rest = said.rpartition("百") if "百" in said else ("", "", said)
    tens, _, ones = rest.partition("十") if "十" in rest else ("", "", rest)
    if len(hundreds) > 1 or len(tens) > 1 or len(ones.lstrip("零〇")) > 1 or ("百" in said and not hundreds):
        return None
    value = (_CN_DIGITS[hundreds] * 100 if hundreds else 0) + ((_CN_DIGITS[tens] if tens else 1) * 10 if "十" in rest else 0)
    ones = ones.lstrip("零〇")
    return str(value + (_CN_DIGITS[ones] if ones else 0))


def _cn_refs(value: str, pos: int) -> str:
    """value with the numbers said in numerals at pos (接单三号, 接单一号二号) written in digits, when
    that makes them numbers (else value as it was: 办结 一和二楼都修好了 is a note)."""
    converted, start = value, pos
    while (said := _CN_REF.match(converted, pos)) is not None and (digits := _cn_number(said.group(1))):
        converted = converted[:said.start(1)] + digits + converted[said.end(1):]
        pos = said.start(1) + len(digits)
        gap = _CN_NEXT.match(converted, pos)
        if gap is None:
            break
        pos = gap.end()
    return converted if converted != value and _refs_at(converted, start)[0] else value


def _refs_at(value: str, pos: int) -> tuple[list[str], int]:
    """The numbers typed at pos (one, or a list: 1 2 3, 2、3, 2和3) and where they end."""
    mark = _REF_MARK.match(value, pos)
    first = _FIRST_REF.match(value, mark.end() if mark else pos)
    if first is None:
        return [], pos
    if first.group(2):  # straight before the note: nothing more
        return [first.group(2)], first.end()
    refs, pos = [first.group(1)], first.end()
    while (more := _MORE_REF.match(value, pos)) is not None:
        refs.append(more.group(1) or more.group(2))
        pos = more.end()
        if more.group(2):
            break
    return refs, pos


def _reordered(value: str) -> str:
    """The command with its verb first: 0002 接单 → 接单 0002; 调解成功 0002 / 0002 调解成功 →
    办结 0002 调解成功; 处理好了，换了灯管 → 办结 处理好了，换了灯管."""
    said = _CN_FIRST.match(value)
    digits = _cn_number(said.group(1)) if said is not None else None
    first = _NUMBER_FIRST.match(digits + value[said.end():] if said is not None and digits else value)
    if first is not None:
        ref, verb, outcome, rest = first.groups()
        if verb:
            return f"{verb} {ref} {rest.lstrip()}".strip()
        return f"办结 {ref} {outcome}{rest}".strip()
    outcome = _OUTCOME_FIRST.match(value)
    if outcome is not None:
        phrase, rest = outcome.groups()
        gap = len(rest) - len(rest.lstrip(" :,;、。"))
        rest = _cn_refs(rest, gap)  # 修好了 三号
        refs, end = _refs_at(rest, gap)
        if refs:
            return f"办结 {' '.join(refs)} {phrase}{rest[end:]}"
        return f"办结 {value}"
    return value


def misheard(text: str) -> str | None:
    """The command a message that begins with a misheard or mistyped verb (MISHEARD) was meant to
    be, as the worker would send it (办姐 2 好了 → 办结 2 好了); None when it begins otherwise."""
    value = _normal(text)
    found = _MISHEARD.match(value)
    if found is None:
        return None
    return MISHEARD[found.group(1)] + value[found.end():]


def parse(text: str) -> Command | None:
    """Read a worker's message as a command, or None when it is not one."""
    value = _normal(text)
    word = _TRAILING.sub("", value).lower() or value.lower()  # 我的工单？
    if word in WORDS:
        return Command(WORDS[word])
    if _MINE.match(word) or _MINE_ASKED.match(word):
        return Command("mine")
    if _ACK.match(word):
        return Command("accept", soft=True)
    if _NOTED.match(word):
        return Command("noted")
    arrived = _ARRIVED_AT.match(word)
    if arrived is not None:  # 到3号楼了: where the worker is, the job there meant
        building = next(b for b in arrived.group("b1", "b2", "b3") if b)
        return Command("noted", place=roster.normalize_building(building))
    if word and _HELLO.match(word):
        return Command("hello")
    value = _reordered(value)
    head = _HEAD.match(value)
    if head is None:
        if _HAND_OVER.search(value) is not None and len(value) <= MAX_NOTE and (put_off := _put_off(text, value)):
            return put_off  # 今天去不了 明天去: a plan, not a hand-over
        if _HAND_OVER.search(value) is not None and len(value) <= MAX_NOTE:
            ref = _HAND_OVER_REF.match(value)
            said = f"{ref.group('verb') or ''} {value[ref.end():]}" if ref else value
            return Command("hand_over", ref.group("ref") if ref else None, as_typed(text, said.strip()))
        return _said_done(text, value) or _later(text, value)
    verb_word = head.group(1)
    if verb_word in SYNONYMS and _SYNONYM_END.match(value, head.start(1) + len(verb_word)) is None:
        return None  # 完成情况, 接了解: words, not a command
    value = _cn_refs(value, head.end())
    refs, pos = _refs_at(value, head.end())
    rest = value[pos:]
    typo = None if refs else _TYPO_REF.match(rest)
    if typo is not None:
        return Command(_VERB_WORDS[verb_word], typo=typo.group(0))
    if refs:
        rest = rest.strip().lstrip("!?.,;:、。").strip()  # 接单 7！/ 办结 2. 已修好
    note = _LEADING_FILLER.sub("", rest.strip()).strip()  # 办结 1了，已调解
    if _FILLER.fullmatch(note):
        note = ""  # 办结了 / 办结 0001 好了: no result said
    if _VERB_WORDS[verb_word] == "phone" and note and not refs:
        return _about_the_call(text, note)  # 电话打通了 / 电话没人接: words about a call, no 电话 N
    if (_VERB_WORDS[verb_word] == "resolve" and note and _LATER.match(note) and not _CHECK_AFTER.search(note)
            and not _says_done(note) and len(note) <= MAX_NOTE):
        return Command("later", refs[0] if refs else None, as_typed(text, note), tuple(refs[1:]), instead="resolve")
    return Command(_VERB_WORDS[verb_word], refs[0] if refs else None, as_typed(text, note) if note else "",
                   tuple(refs[1:]))


# A call that did not reach the resident (电话打不通, 电话没人接, 电话号码不对): a message in WeChat may.
_CALL_FAILED = re.compile(r"不通|没人接|没接|无人接|不接|关机|停机|空号|不对|错了|有误|挂了|占线")


def _about_the_call(text: str, words: str) -> Command:
    """电话 followed by words, not a number (电话打通了, 电话打不通, 电话联系过了 明天去): what the owner
    says of a call. A plan said after it is a plan (明天去); else 'called', its words the text."""
    parts = [p for p in re.split(rf"{_SEP}+", words) if p]
    for start in range(1, len(parts)):
        plan = _later(text, " ".join(parts[start:]))
        if plan is not None:
            return plan
    return Command("called", None, as_typed(text, words))


def _said_done(text: str, value: str) -> Command | None:
    """灯修好了 / 3号灯修好了 / 灯修好了 3号 / 7号楼的灯修好了 (_SAID_DONE): a 办结 of the job named
    by its number (before or after the words), else of the job at the building named, else of the
    worker's one job in hand; its note the words without the number. None when value says no job
    is done."""
    bare = _REF_OK.match(value)
    if bare is not None:
        return Command("resolve", bare.group(1))
    said = _SAID_DONE.match(value)
    if said is None and (thing := _THING_OK.match(value)) is not None and not _NOT_DONE.search(thing.group("before")) \
            and not _MISHEARD.match(value) and (topic := _topic(thing.group("before"))) is not None:
        # 1号楼的下水道好了: a bare 好了 says too little alone — only the job of the kind named
        place = _PLACE.search(_cn_refs_in(value))
        return Command("resolve", None, as_typed(text, value.strip()), place=place.group(1) if place else None,
                       topic=topic, kind_only=True)
    if said is None or len(value) > MAX_NOTE or _NOT_DONE.search(said.group("before")) or _MISHEARD.match(value):
        # 办洁 1 灯换好了: a verb misheard is asked back (run), never done on a guess
        return None
    done, after = said.group("done"), said.group("after")
    if "已" not in done and "了" not in done and done not in ("处理完毕", "搞定") or _NOT_DONE.search(after):
        return None
    before = said.group("before")
    numeral = _CN_FIRST.match(before)
    digits = _cn_number(numeral.group(1)) if numeral is not None else None
    if numeral is not None and digits:
        before = digits + before[numeral.end():]
    ref = _REF_BEFORE.match(before)
    if ref is not None:
        note = before[ref.end():] + done + after
        return Command("resolve", ref.group("ref"), as_typed(text, note.strip()))
    tail = _REF_AFTER.match(after)
    if tail is not None:
        note = before + done
        return Command("resolve", tail.group("ref"), as_typed(text, note.strip()))
    place = _PLACE.search(_cn_refs_in(value))
    return Command("resolve", None, as_typed(text, value.strip()), place=place.group(1) if place else None,
                   topic=_topic(before))


def _topic(words: str) -> str | None:
    """The kind of problem words name (下水道: 环境卫生, 灯: 照明), as a report's category is read
    from the resident's words; None when they name none."""
    from bot.intents.classifier import get_classifier

    category = get_classifier().extract_slots(words, _SLOTS_NOW).get("category")
    return str(category) if category else None


_SLOTS_NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)  # a kind of problem has no date: any moment will do


@cache
def _named_kinds() -> frozenset[str]:
    """The kinds of problem a report's category may name (config/intents.toml [slots.category])."""
    from bot.flows.config import vocabulary_choices

    return frozenset(choice.value for choice in vocabulary_choices("category"))


def _later(text: str, value: str) -> Command | None:
    """明天去 / 3 明天去 / 材料到了再修 (_LATER): when the job will be done, of the ticket named first
    or of none named; None when value says no such thing."""
    value = value[_LATER_LEAD.match(value).end():] if _LATER_LEAD.match(value) else value
    ref = _LATER_REF.match(value)
    rest = value[ref.end():] if ref is not None else value
    if len(value) > MAX_NOTE:
        return None
    if _LATER.match(rest) is None:
        # 1号楼的灯明天修: the job named by its building and thing, then the plan
        said = _LATER_ABOUT.match(value) if ref is None else None
        if said is None or _LATER.match(said.group("plan")) is None or _NOT_DONE.search(said.group("what")):
            return None
        place = _PLACE.search(_cn_refs_in(said.group("what")))
        return Command("later", None, as_typed(text, said.group("plan").strip()), place=place.group(1) if place else None,
                       topic=_topic(said.group("what")))
    return Command("later", ref.group("ref") or ref.group("tight") if ref is not None else None, as_typed(text, rest.strip()))


def _put_off(text: str, value: str) -> Command | None:
    """今天去不了 明天去 / 今天来不了，明天上午过去: not today, but a later time said — a plan (as 明天去
    is), not the hand-over 去不了 alone would be; None when the words ask for someone else (换个人,
    找别人, 转给 …) or name no later time."""
    if _ASKS_ANOTHER.search(value) is not None:
        return None
    ref = _LATER_REF.match(value)  # 3 今天去不了 明天去
    rest = value[ref.end():] if ref is not None else value
    parts = [p for p in re.split(rf"{_SEP}+", rest) if p]
    if len(parts) < 2 or _HAND_OVER.search(parts[-1]) is not None or _LATER.match(parts[-1]) is None:
        return None
    return Command("later", ref.group("ref") or ref.group("tight") if ref is not None else None,
                   as_typed(text, rest.strip()))


def _says_done(note: str) -> bool:
    """Whether a note says somewhere that the work is done (没换灯泡 是开关坏了 已修好): a done word
    with 已 or 了 (_DONE), as a 办结 said in words needs."""
    return any("已" in m.group(0) or "了" in m.group(0) for m in re.finditer(_DONE, note))


def decision(text: str) -> Command | None:
    """通过 / 审核通过 2 / 2号通过 / 不通过 2 年龄不符, said by a volunteer coordinator: the signup's
    办结 (its note 审核通过 when none is said) or 退回 (the reason the rest); None otherwise."""
    said = _APPROVE.match(_TRAILING.sub("", _normal(text)))
    if said is None or (said.group("pre") and said.group("ref")):
        return None
    ref = said.group("pre") or said.group("ref")
    words = (said.group("rest") or "").strip()
    rest = as_typed(text, words) if words else ""
    if said.group("no"):
        return Command("return", ref, rest)
    return Command("resolve", ref, rest or "审核通过")


def _cn_refs_in(value: str) -> str:
    """value with a building said in numerals (七号楼) written in digits (7号楼)."""
    return re.sub(rf"([{_CN}]{{1,4}})(?=号楼|号院|栋|幢|座)", lambda m: _cn_number(m.group(1)) or m.group(1), value)


@dataclass(frozen=True)
class Found:
    """A ticket lookup's outcome: the ticket, or the reply explaining why there is none."""

    ticket: Ticket | None
    reply: str = ""
    refused: bool = False  # the ticket exists but belongs to someone else
    theirs: Ticket | None = None  # … that ticket


def _audit(session: AsyncSession, actor: str, action: str, target: str, now: datetime, **detail: Any) -> None:
    session.add(AuditLog(actor=actor, action=action, target=target, detail=detail or None, created_at=now))


_MONTH_DAY = re.compile(r"(\d{4})-(\d{1,4})")


async def by_ref(session: AsyncSession, ref: str) -> list[Ticket]:
    """Tickets whose number is ref (see tickets.number_matches; 1124-0001 is the 0001 of a 24
    November), newest first."""
    if ref.isdigit() and len(ref) > 4 and ref.startswith("0"):
        ref = ref.lstrip("0") or "0"  # 00003: a zero too many, no longer number's tail
    month_day = _MONTH_DAY.fullmatch(ref)
    if month_day is not None:
        tail = f"{month_day.group(1)}-{int(month_day.group(2)):04d}"
        rows = await session.execute(
            select(Ticket).where(Ticket.number.like(f"%{tail}")).order_by(Ticket.id.desc()).limit(200)
        )
        return [t for t in rows.scalars() if notices.ref_forms(t.number)[1:2] == (tail,)]  # its month-day form
    if "-" in ref:
        stmt = select(Ticket).where(Ticket.number == ref)
    elif len(ref) <= 4:  # a day's sequence: 7, 0007
        stmt = select(Ticket).where(Ticket.number.like(f"%-{int(ref):04d}"))
    else:  # a longer tail (230007); the exact test is number_matches
        stmt = select(Ticket).where(Ticket.number.like(f"%{ref[-4:]}"))
    rows = await session.execute(stmt.order_by(Ticket.id.desc()).limit(200))
    return [t for t in rows.scalars() if tickets.number_matches(t.number, ref)]


def handles(numbers: list[str]) -> dict[str, str]:
    """For each number, the shortest form that tells it from the others listed (notices.worker_ref:
    0001 when it is the only 0001, else 1124-0001, else the whole number)."""
    return {number: notices.worker_ref(number, numbers) for number in numbers}


def _ready(verb: str, ticket: Ticket, now: datetime) -> bool:
    """Whether the verb can act on the ticket now: its status allows it, and a booking is 办结
    only from its booked start on."""
    if ticket.status not in FROM_STATUSES.get(verb, dispatch.HELD):
        return False
    if verb == "resolve":
        start = dispatch.booked_start(ticket)
        return start is None or start <= now
    return True


def _booked(svc: Services, ticket: Ticket) -> str:
    """A booking's service and booked start (陪诊 11月24日 07:30): what tells a provider's bookings
    apart; '' for any other ticket."""
    start = dispatch.booked_start(ticket)
    if start is None:
        return ""
    service = (ticket.fields or {}).get("service")
    label = notices.safe_text(service.strip())[:12] if isinstance(service, str) and service.strip() else ""
    return f"{label} {notices.local_time(svc, start)}".strip()


def _about(svc: Services, ticket: Ticket) -> str:
    """A few words on what a ticket is about, to tell it from another: the resident's words (a
    booking: its service and time)."""
    booked = _booked(svc, ticket)
    if booked:
        return booked
    fields = ticket.fields or {}
    for key in ("description", "issue", "detail", "what", "service"):
        value = fields.get(key)
        if isinstance(value, str) and value.strip():
            text = value.strip()
            break
    else:
        text = notices.what_of(ticket) or notices.kind_label(svc, ticket.kind)
    text = notices.safe_text(text)
    return text if len(text) <= 12 else text[:11] + "…"


def _choices(svc: Services, found: list[Ticket]) -> str:
    """Tickets listed to choose from, each with the form that names it alone and what it is about."""
    short = handles([x.number for x in found])
    return "、".join(f"{short[x.number]}（{_about(svc, x)}）" for x in found[:8])


async def _find(svc: Services, session: AsyncSession, who: Person, verb: str, ref: str | None, *,
                soft: bool = False, place: str | None = None, offer: str | None = None,
                topic: str | None = None, kind_only: bool = False, note: str = "") -> Found:
    """find_ticket's search, without the lock (see find_ticket); place: a building said instead of
    the number, among the worker's jobs; topic: the kind of problem the words name, which picks
    the job among several of the worker's (kind_only: only a job of that kind); offer: the verb
    whose tickets a number naming none of the worker's lists (the verb's own by default); note:
    the words said with it (搞定了), kept in the example when several tickets could be meant."""
    t = svc.texts
    now = svc.clock.now()
    verb_name = t.get(f"wecom.verbs.{verb}")
    word = COMMAND_WORD.get(verb, verb_name)
    if ref is None:
        rows = await session.execute(
            select(Ticket)
            .where(
                Ticket.assignee == who.id, Ticket.status.in_(FROM_STATUSES.get(verb, dispatch.HELD)),
                Ticket.parent_id.is_(None),
            )
            .order_by(Ticket.id)
        )
        own = list(rows.scalars())
        if soft:  # 收到: only a ticket never taken since it was dispatched
            own = [x for x in own if x.status == "dispatched" or (x.status == "escalated" and x.accepted_at is None)]
        if not own:
            return Found(None, t.get("wecom.acknowledged" if soft else "wecom.none_open", verb=verb_name))
        if place is not None:  # 7号楼的灯修好了: the job there, never another one in hand
            here = [x for x in own if x.building is not None and roster.normalize_building(x.building) == place]
            if not here:
                example = f"{word} {handles([x.number for x in own])[own[0].number]}" + (" …" if verb in NEEDS_NOTE else "")
                return Found(None, t.get("wecom.none_at_place", place=place, verb=verb_name, numbers=_choices(svc, own),
                                         example=example))
            own = here
        if topic is not None:  # 下水道通了: the drain among the jobs (there), never the lamp beside it
            same = [x for x in own if x.category == topic]
            # None of that kind: a job of no named kind (其他) may be it, unless only 好了 was said
            pick = same or ([] if kind_only else [x for x in own if x.category not in _named_kinds()])
            if not pick:
                where = t.get("wecom.at_place", place=place) if place is not None else ""
                example = f"{word} {handles([x.number for x in own])[own[0].number]}" + (" …" if verb in NEEDS_NOTE else "")
                return Found(None, t.get("wecom.none_of_kind", where=where, kind=topic, verb=verb_name,
                                         numbers=_choices(svc, own), example=example))
            own = pick
        # Several: the ones the verb can act on now (a booking not yet started is not 办结).
        pick = [x for x in own if _ready(verb, x, now)] or own
        if len(pick) > 1:
            first = handles([x.number for x in pick])[pick[0].number]
            # 搞定了 with two jobs in hand: the words are in the example, not lost (办结 0008 搞定了)
            said = f" {notices.clip(note, 30)}" if note and verb in NEEDS_NOTE else ""
            example = f"{word} {first}" + (said or (" …" if verb in NEEDS_NOTE else ""))
            numbers = "、".join(f"{x.number}（{_about(svc, x)}）" for x in pick[:8])  # which is which
            return Found(None, t.get("wecom.several_open", verb=verb_name, numbers=numbers, example=example))
        return Found(pick[0])
    matches = await by_ref(session, ref)
    if not matches:
        return Found(None, t.get("wecom.no_ticket", ref=ref) + await _yours_instead(svc, session, who, offer or verb))
    active = [x for x in matches if x.status in tickets.ACTIVE]
    if verb not in ("reply", "reply_all") or not roster.is_staff(who):  # staff answer any ticket; an owner their own
        # The number's tickets this worker can act on with this verb first: 接单 0001 is the new
        # 0001 waiting to be taken, not yesterday's 0001 in hand.
        ready = [x for x in matches if x.assignee == who.id and _ready(verb, x, now)]
        if len(ready) == 1:
            return Found(ready[0])
        if len(ready) > 1:
            return Found(None, ambiguous(svc, ref, word, ready))
        meant = active or matches
        own = [x for x in meant if x.assignee == who.id]
        if not own:
            reply = await _not_theirs(svc, session, who, meant[0], verb)
            once_theirs = (t.get("dispatch.reassigned_away", number=meant[0].number),
                           t.get("wecom.returned_before", number=meant[0].number))
            if reply not in once_theirs:  # never theirs: a slip of the number?
                reply += await _yours_instead(svc, session, who, offer or verb)
            return Found(None, reply, refused=True, theirs=meant[0])
        matches, active = own, [x for x in own if x.status in tickets.ACTIVE]
    if len(matches) > 1:
        if len(active) == 1:
            return Found(active[0])
        return Found(None, ambiguous(svc, ref, word, matches))
    return Found(matches[0])


async def _yours_instead(svc: Services, session: AsyncSession, who: Person, verb: str) -> str:
    """After a number that names none of the worker's tickets (接单 0023 for 0003, a slip on the
    phone's keypad): a line listing the ones in their hands the verb can act on, each with what it
    is about, so the right number is in the answer; '' when they hold none."""
    own = list(await session.scalars(
        select(Ticket).where(Ticket.assignee == who.id, Ticket.status.in_(FROM_STATUSES.get(verb, dispatch.HELD)),
                             Ticket.parent_id.is_(None)).order_by(Ticket.due_at, Ticket.id).limit(9)
    ))
    if not own:
        return ""
    return "\n" + svc.texts.get("wecom.yours_instead", verb=svc.texts.get(f"wecom.verbs.{verb}"), numbers=_choices(svc, own))


_ASSIGNED_TO = select(Ticket.id).where(
    Ticket.id == bindparam("ticket_id"),
    exists().where(TicketEvent.ticket_id == Ticket.id, TicketEvent.action.in_(("assign", "return")),
                   or_(TicketEvent.actor == bindparam("who"), TicketEvent.data["assignee"].as_string() == bindparam("who"))),
)


async def _not_theirs(svc: Services, session: AsyncSession, who: Person, ticket: Ticket, verb: str | None = None) -> str:
    """Why a worker cannot act on a ticket that is not in their hands: one they held was
    reassigned (已改派他人) or handed back by them (已退回服务中心), as the push told them; a 接单
    of one a colleague took already names who took it; any other is someone else's."""
    t = svc.texts
    # A neighbour's report linked to a job went where the job went.
    job = await session.get(Ticket, ticket.parent_id) if ticket.parent_id is not None else None
    job = job or ticket
    if await session.scalar(_ASSIGNED_TO, {"ticket_id": job.id, "who": who.id}) is not None:
        if job.assignee is None and job.status == "open":
            return t.get("wecom.returned_before", number=ticket.number)
        if job.assignee is not None:
            return t.get("dispatch.reassigned_away", number=ticket.number)
    if verb == "accept" and job.status == "accepted" and job.assignee is not None:
        # 接单 of a job a colleague of the grid took first: who has it, not only 不是派给您的
        taker = await roster.person(session, job.assignee)
        return t.get("wecom.taken_by", number=ticket.number, name=taker.name if taker is not None else job.assignee)
    return t.get("wecom.not_yours", number=ticket.number)


async def _moved_away(session: AsyncSession, who: Person, cmd: Command) -> Ticket | None:
    """The one job of the kind and building a job's end said in words names (1号楼的电梯修好了;
    修好了 names none: any of the latest updated) that was the worker's and is now in a colleague's
    hands (staff reassigned it); None when there is none, or several."""
    stmt = select(Ticket).where(Ticket.assignee.is_not(None), Ticket.assignee != who.id,
                                Ticket.status.in_(dispatch.HELD), Ticket.parent_id.is_(None))
    if cmd.topic is not None:
        stmt = stmt.where(Ticket.category == cmd.topic)
    rows = list(await session.scalars(stmt.order_by(Ticket.updated_at.desc()).limit(20)))
    if cmd.place is not None:
        rows = [x for x in rows if x.building is not None and roster.normalize_building(x.building) == cmd.place]
    were = [x for x in rows if await session.scalar(_ASSIGNED_TO, {"ticket_id": x.id, "who": who.id}) is not None]
    return were[0] if len(were) == 1 else None


async def _pass_on(svc: Services, session: AsyncSession, who: Person, ticket: Ticket, note: str) -> str | None:
    """办结 N 疏通好了 from the worker a job was reassigned away from while they worked on it: their
    result is not lost — kept on the job (内部备注) and pushed to its owner now, so nobody goes
    there for nothing — and they hear who has it. None when the job was not theirs before, or is
    no longer in anyone's hands (the refusal stands alone then)."""
    job = await session.get(Ticket, ticket.parent_id) if ticket.parent_id is not None else None
    job = job or ticket
    if (job.assignee in (None, who.id) or job.status not in dispatch.HELD
            or await session.scalar(_ASSIGNED_TO, {"ticket_id": job.id, "who": who.id}) is None):
        return None
    t, now = svc.texts, svc.clock.now()
    owner = await roster.person(session, job.assignee or "")
    said = notices.clip(notices.safe_text(note), 200)
    await tickets.add_event(session, job, "note", who.id, now, note=t.get("wecom.passed_on_note", name=who.name, text=said),
                            data={"via": "wecom", "former_owner": who.id})
    _audit(session, who.id, "wecom.passed_on", job.number, now, note=said, to=job.assignee)
    await outbox.push_worker(session, job.assignee or "", t.get(
        "wecom.passed_on_push", number=job.number, name=who.name, text=said,
        place=notices.clip(notices.safe_text(notices.place_of(svc, job)), 30),
        short=await dispatch.worker_ref(session, job),
    ), now=now, ticket_id=job.id, not_before=dispatch.held_until(svc, job))
    return t.get("wecom.passed_on", number=job.number, name=owner.name if owner is not None else job.assignee)


def ambiguous(svc: Services, ref: str, word: str, found: list[Ticket]) -> str:
    """The answer to a number several tickets share: each listed with a number it alone has, and
    the command to type again (word: the verb as typed, 接单, 关闭 …)."""
    example = f"{word} {handles([x.number for x in found])[found[0].number]}"
    return svc.texts.get("wecom.ambiguous", ref=ref, numbers=_choices(svc, found), example=example)


async def find_ticket(svc: Services, session: AsyncSession, who: Person, cmd: Command) -> Found:
    """The ticket a command means: by number or last digits, or the one open ticket of the worker.

    A number typed is never dropped: when the ticket it names (an active one before a finished
    one) is someone else's, the command is refused, never carried out on another ticket. A
    number several tickets share (0001 of two days) means the worker's own one the verb can act
    on; when that is still several, they are listed with a number each of them alone has."""
    found = await _find(svc, session, who, cmd.verb, cmd.ref, soft=cmd.soft, place=cmd.place, topic=cmd.topic,
                        kind_only=cmd.kind_only, note=cmd.text)
    return Found(await _locked(session, found.ticket)) if found.ticket is not None else found


async def _locked(session: AsyncSession, ticket: Ticket) -> Ticket:
    locked = await tickets.get_by_number(session, ticket.number, for_update=True)
    assert locked is not None
    return locked


_LOOKALIKE = str.maketrans("OoDQlIi", "0000111")


def typo_reply(svc: Services, cmd: Command) -> str:
    """The answer to a number mistyped (接单 0O3): nothing done, how a number is written (the
    typed one with look-alike letters read as digits, when that makes one)."""
    word = COMMAND_WORD.get(cmd.verb, svc.texts.get(f"wecom.verbs.{cmd.verb}"))
    digits = cmd.typo.translate(_LOOKALIKE)
    example = f"{word} {digits if digits.isdigit() and len(digits) <= 4 else '0001'}" + (" …" if cmd.verb in NEEDS_NOTE else "")
    return svc.texts.get("wecom.bad_ref", ref=notices.clip(cmd.typo, 16), example=example)


async def hand_over(svc: Services, session: AsyncSession, who: Person, cmd: Command) -> str:
    """下午去不了 换个人吧: nothing is done (handing a job back is the worker's 退回); the reply gives
    the 退回 to send with those words as its reason, for the ticket named, else each one the
    worker could hand back."""
    t = svc.texts
    word = COMMAND_WORD["return"]
    _answered_as("answered")
    if cmd.ref is not None:
        found = await _find(svc, session, who, "return", cmd.ref)
        if found.ticket is None:
            _answered_as("refused")
            return found.reply
        own = [found.ticket]
    else:
        rows = await session.execute(
            select(Ticket).where(Ticket.assignee == who.id, Ticket.status.in_(FROM_STATUSES["return"]),
                                 Ticket.parent_id.is_(None)).order_by(Ticket.due_at, Ticket.id)
        )
        own = list(rows.scalars())
        if not own:
            return t.get("wecom.none_open", verb=t.get("wecom.verbs.return"))
    short = handles([x.number for x in own])
    reason = notices.clip(cmd.text, 60)
    lines = [t.get("wecom.hand_over_line", command=f"{word} {short[x.number]} {reason}", about=_about(svc, x))
             for x in own[:8]]
    said = t.get("wecom.hand_over", commands="\n".join(lines))
    if _CANNOT_SAID.search(cmd.text):  # beyond the worker: the street office may be what it needs
        said += "\n" + t.get("wecom.hand_over_whistle", command=f"{COMMAND_WORD['whistle']} {short[own[0].number]} …")
    return said


async def later(svc: Services, session: AsyncSession, who: Person, cmd: Command) -> str:
    """明天去 / 3 明天去 / 材料到了再修, or 办结 3 材料到了再修 (cmd.instead): nothing is done and nothing
    sent; the reply says so, gives the 接单 of each job not yet taken (its 接单 limit runs on words
    to the bot) and the 回复 that tells the resident when, for the tickets named, else each in hand."""
    t = svc.texts
    _answered_as("answered")
    if cmd.refs:
        own = []
        for ref in cmd.refs[:MAX_REFS]:
            found = await _find(svc, session, who, "return", ref, offer="later")
            if found.ticket is None:
                _answered_as("refused")
                return found.reply
            if found.ticket.status not in dispatch.HELD:
                return t.get("wecom.later_ended", number=found.ticket.number,
                             status=t.get(f"wecom.statuses.{found.ticket.status}"))
            own.append(found.ticket)
    else:
        own = list(await session.scalars(
            select(Ticket).where(Ticket.assignee == who.id, Ticket.status.in_(dispatch.HELD),
                                 Ticket.parent_id.is_(None)).order_by(Ticket.due_at, Ticket.id)
        ))
        if not own:
            return t.get("wecom.later_none")
        # 1号楼的灯明天修: the jobs there of that kind, when the worker holds any (else all, to pick from)
        here = [x for x in own if cmd.place is None
                or (x.building is not None and roster.normalize_building(x.building) == cmd.place)]
        own = [x for x in here if cmd.topic is None or x.category == cmd.topic] or here or own
    short = handles([x.number for x in own])
    words = notices.clip(cmd.text, 40)
    lines = [t.get("wecom.later_not_resolved", numbers="、".join(short[x.number] for x in own), words=words)
             if cmd.instead == "resolve" else t.get("wecom.later")]
    waiting = [x for x in own if x.status in ("dispatched", "reopened")]
    if waiting:
        lines.append(t.get("wecom.later_accept", commands="\n".join(
            t.get("wecom.later_line", command=f"{COMMAND_WORD['accept']} {short[x.number]}", about=_about(svc, x))
            for x in waiting[:8])))
    lines.append(t.get("wecom.later_tell", commands="\n".join(
        t.get("wecom.later_line", command=f"{COMMAND_WORD['reply']} {short[x.number]} {words}", about=_about(svc, x))
        for x in own[:8])))
    return "\n".join(lines)


async def hello(svc: Services, who: Person) -> str:
    """The answer to 在吗 / 你好: here, how many jobs the worker holds, and how to see them."""
    async with svc.sessions() as session:
        held = len(list(await session.scalars(
            select(Ticket.id).where(Ticket.assignee == who.id, Ticket.status.in_(dispatch.HELD),
                                    Ticket.parent_id.is_(None))
        )))
    return svc.texts.get("wecom.hello_jobs", count=held) if held else svc.texts.get("wecom.hello")


async def noted(svc: Services, who: Person, said: str = "", place: str | None = None) -> str:
    """The answer to 好的 / 到了 / 在路上了: with one ticket in hand, taken, what to send for it
    when done (its number as they type it); `said` telling where the worker is (到了, 在路上了, or
    `place`, the building said: 到3号楼了) with a job waiting for its 接单: with that job alone in
    hand, or the one at the building said, its 接单 first (到了 does not take it); with other jobs
    in hand too, which one is meant asked, each listed by its number, place and whether taken;
    else the general hint."""
    async with svc.sessions() as session:
        held = list(await session.scalars(
            select(Ticket).where(Ticket.assignee == who.id, Ticket.status.in_(dispatch.HELD),
                                 Ticket.parent_id.is_(None)).order_by(Ticket.id).limit(9)
        ))
        where = _ON_THE_WAY.search(said) is not None or place is not None
        if where and any(t.status in _UNTAKEN for t in held):
            here = [t for t in held if place is not None and t.building is not None
                    and roster.normalize_building(t.building) == place]
            meant = here if len(here) == 1 else held if len(held) == 1 else None
            if meant is not None:  # the one job there (or in hand): its 接单 first, or what to send when done
                return await _noted_job(svc, session, meant[0])
            return await _noted_which(svc, session, here or held)
        if place is not None and len(held) > 1:
            here = [t for t in held if t.building is not None and roster.normalize_building(t.building) == place]
            if len(here) == 1:  # 到3号楼了 with all jobs taken: the one there
                return await _noted_job(svc, session, here[0])
        if len(held) != 1 or held[0].status != "accepted":
            return svc.texts.get("wecom.noted")
        return await _noted_job(svc, session, held[0])


_UNTAKEN = ("dispatched", "reopened")


async def _noted_job(svc: Services, session: AsyncSession, ticket: Ticket) -> str:
    """到了 about one job: not yet taken, its 接单 first; taken, what to send when done."""
    key = "wecom.noted_untaken" if ticket.status in _UNTAKEN else "wecom.noted_one"
    return svc.texts.get(key, number=ticket.number, short=await dispatch.worker_ref(session, ticket),
                         place=notices.safe_text(notices.place_of(svc, ticket)))


async def _noted_which(svc: Services, session: AsyncSession, held: list[Ticket]) -> str:
    """到了 from a worker with a job not yet taken and others in hand: which one, each listed by
    the number they type, its place and whether it is taken."""
    t = svc.texts
    lines = [t.get("wecom.noted_which_line", short=await dispatch.worker_ref(session, x),
                   place=notices.clip(notices.safe_text(notices.place_of(svc, x)), 30),
                   state=t.get("wecom.noted_which_untaken" if x.status in _UNTAKEN else "wecom.noted_which_taken"))
             for x in held]
    return t.get("wecom.noted_which", count=len(held), lines="\n".join(lines))


async def called(svc: Services, who: Person, cmd: Command) -> str:
    """The answer to 电话打通了 / 电话打不通: nothing to do; a call that did not get through is
    offered the 回复 that reaches the resident in WeChat (with one job in hand, its number), one
    that did the answer to 好的."""
    if _CALL_FAILED.search(cmd.text) is None:
        return await noted(svc, who)
    async with svc.sessions() as session:
        held = list(await session.scalars(
            select(Ticket).where(Ticket.assignee == who.id, Ticket.status.in_(dispatch.HELD),
                                 Ticket.parent_id.is_(None)).limit(9)
        ))
        # several in hand: the one just acted on (接单 10, then 电话打不通), else N
        latest = await _acted_on_last(svc, session, who, [t.number for t in held]) if len(held) > 1 else None
        one = held[0] if len(held) == 1 else next((t for t in held if t.number == latest), None)
        short = await dispatch.worker_ref(session, one, who.id) if one is not None else "N"
    if not held:
        return svc.texts.get("wecom.noted")
    return svc.texts.get("wecom.call_failed", short=short)


def help_text(svc: Services, who: Person | None) -> str:
    """The command list (with the staff-only commands for staff, 取消活动 for a volunteer
    coordinator)."""
    text = svc.texts.get("wecom.help")
    if roster.is_staff(who):
        return text + "\n" + svc.texts.get("wecom.help_staff")
    if who is not None and "volunteer_coordinator" in (who.roles or []):
        return text + "\n" + svc.texts.get("wecom.help_coordinator")
    return text


async def mine(svc: Services, session: AsyncSession, who: Person) -> str:
    """The worker's tickets in hand, one line each (escalated ones, and those past a limit, marked)."""
    t = svc.texts
    rows = await session.execute(
        select(Ticket)
        .where(Ticket.assignee == who.id, Ticket.status.in_(dispatch.HELD), Ticket.parent_id.is_(None))
        .order_by(Ticket.due_at, Ticket.id)
    )
    own = list(rows.scalars())
    if not own:
        return t.get("wecom.mine_empty")
    from bot.console import queries

    # 超期 for a missed 办结 limit, 接单超时 for a missed 接单, by the figures' rule as the console says
    missed = await queries.missed_limits(session, own[:20], svc.clock.now())
    lines = [t.get("wecom.mine_head", count=len(own))]
    room = REPLY_MAX_BYTES - len(lines[0].encode()) - len(t.get("wecom.mine_more", count=len(own)).encode()) - 2
    for x in own[:20]:
        line = t.get(
            "wecom.mine_line", number=x.number, status=t.get(f"wecom.statuses.{x.status}"),
            overdue="".join(t.get(f"wecom.mine_missed.{limit}") for limit in missed.get(x.id, ())),
            kind=_booked(svc, x) or notices.topic_of(svc, x), place=notices.safe_text(notices.place_of(svc, x))[:20],
            due=notices.local_time(svc, x.due_at),
            reporters=t.get("wecom.mine_reporters", count=x.reporters) if x.reporters > 1 else "",
        )
        room -= len(line.encode()) + 1
        if room < 0:
            break
        lines.append(line)
    if len(lines) - 1 < len(own):  # WeCom cuts a reply past 2,048 bytes mid-line: the rest said, not cut
        lines.append(t.get("wecom.mine_more", count=len(own) - (len(lines) - 1)))
    return "\n".join(lines)


async def act(svc: Services, session: AsyncSession, who: Person, cmd: Command) -> str:
    """Carry out 接单 / 办结 / 退回 / 吹哨 for the ticket's assignee; the reply to the worker."""
    t = svc.texts
    if len(cmd.text) > MAX_NOTE:  # too long to reach the resident: nothing done, nothing lost
        return t.get("wecom.note_too_long", length=len(cmd.text), limit=MAX_NOTE)
    if cmd.more:
        return await _act_on_each(svc, session, who, cmd)
    found = await find_ticket(svc, session, who, cmd)
    if found.ticket is None and cmd.soft and not cmd.ref:
        # 收到 / 我去看看 with nothing waiting to be taken: with one job in hand, what to send for it
        _answered_as("answered")
        if found.reply == t.get("wecom.acknowledged") and len(await _jobs_in_hand(session, who)) == 1:
            return await noted(svc, who)
        return found.reply
    if found.ticket is None:
        if found.refused:
            _audit(session, who.id, f"wecom.{cmd.verb}.refused", cmd.ref or "", svc.clock.now(), reason="not assignee")
            if cmd.verb == "resolve" and cmd.text and found.theirs is not None:
                return await _pass_on(svc, session, who, found.theirs, cmd.text) or found.reply
        elif cmd.verb == "resolve" and cmd.ref is None and cmd.text and (
                cmd.topic or cmd.place or not await _jobs_in_hand(session, who)):
            # 1号楼的电梯修好了 (or 修好了, nothing left in hand) for the job staff gave a colleague
            # meanwhile: passed on, as 办结 3 … is
            moved = await _moved_away(session, who, cmd)
            if moved is not None:
                _audit(session, who.id, "wecom.resolve.refused", moved.number, svc.clock.now(), reason="not assignee")
                return await _pass_on(svc, session, who, moved, cmd.text) or found.reply
        return found.reply
    ticket = found.ticket
    done, reply = await _carry_out(svc, session, who, cmd, ticket)
    if done and _words_for_nobody(cmd):
        # 接单 1 明天去: the words reach nobody (a 接单 takes no note); the 回复 that tells the resident
        words = notices.clip(cmd.text, 40)
        command = f"{COMMAND_WORD['reply']} {await dispatch.worker_ref(session, ticket, who.id)} {words}"
        reply += "\n" + t.get("wecom.accept_words", words=words, command=command)
    if done and cmd.verb == "resolve" and ticket.kind != "volunteer_signup":  # a job: its photo may follow
        _photo_goes_to(svc, session, who, ticket)
        kept = await _attach_kept(svc, session, who, ticket)  # or was sent first
        return t.get("wecom.resolved", number=ticket.number) + (f"\n{kept}" if kept else "")
    return reply


def _words_for_nobody(cmd: Command) -> bool:
    """Whether a 接单 carries words the worker may believe the resident reads (接单 1 明天上午过去看看;
    not 接单 1，马上去): a 接单 takes no note, so they reach nobody."""
    return cmd.verb == "accept" and bool(cmd.text) and not (_ACK.match(cmd.text) or _NOTED.match(cmd.text))


async def _carry_out(svc: Services, session: AsyncSession, who: Person, cmd: Command, ticket: Ticket, *,
                     again: bool = False) -> tuple[bool, str]:
    """The verb on one ticket the worker named: (carried out, the line of the reply about it).
    again: decided a second time, on the ticket as another change left it (see dispatch.claim)."""
    t = svc.texts
    now = svc.clock.now()
    verb_name = t.get(f"wecom.verbs.{cmd.verb}")
    if ticket.assignee != who.id:  # changed hands since it was found (staff 改派 at that moment)
        _audit(session, who.id, f"wecom.{cmd.verb}.refused", ticket.number, now, reason="not assignee")
        if cmd.verb == "resolve" and cmd.text:  # a result is never lost: kept and passed to its owner
            passed = await _pass_on(svc, session, who, ticket, cmd.text)
            if passed is not None:
                return False, passed
        return False, await _not_theirs(svc, session, who, ticket)
    if ticket.parent_id is not None:
        # A neighbour's report linked to a job follows it (办结 of the job tells every reporter);
        # finishing it alone would tell that resident 已办结 while the problem is still there.
        job = await session.get(Ticket, ticket.parent_id)
        if job is not None and job.status not in tickets.ACTIVE and ticket.status not in tickets.ACTIVE:
            # ended with its job (办结, 关闭): nothing to do there, so no job to name for the command
            return False, t.get("wecom.linked_report_ended", number=ticket.number, parent=job.number,
                                status=t.get(f"wecom.statuses.{job.status}"))
        if job is not None:
            _audit(session, who.id, f"wecom.{cmd.verb}.refused", ticket.number, now, reason="linked report",
                   parent=job.number)
            word = COMMAND_WORD.get(cmd.verb, verb_name)
            example = f"{word} {await dispatch.worker_ref(session, job, who.id)}" + (" …" if cmd.verb in NEEDS_NOTE else "")
            return False, t.get("wecom.linked_report", number=ticket.number, parent=job.number, verb=verb_name,
                                example=example)
    if ticket.status == "cancelled":  # the resident withdrew it (or staff cancelled it): nothing to do
        return False, t.get("dispatch.cancelled_worker", number=ticket.number)
    if ticket.status == "closed" and ticket.resolved_at is None and cmd.verb in ("accept", "resolve", "return", "whistle"):
        # staff closed it unresolved (their push said 不用再去): nothing to do — not 不能办结, read as
        # a refusal. (One closed after its 办结 — the survey over, a signup approved — is said below.)
        return False, t.get("wecom.closed_before", number=ticket.number,
                            at=notices.local_time(svc, ticket.closed_at or ticket.updated_at))
    short = await dispatch.worker_ref(session, ticket, who.id)
    start = dispatch.booked_start(ticket) if cmd.verb == "resolve" else None
    if start is not None and now < start and ticket.status in FROM_STATUSES["resolve"]:
        # A booking is done once its service is given: not before the booked start.
        _audit(session, who.id, "wecom.resolve.refused", ticket.number, now, reason="before booked start")
        return False, t.get("wecom.before_service", number=ticket.number, when=notices.local_time(svc, start))
    if cmd.verb in NEEDS_NOTE and not cmd.text:
        what = t.get(f"wecom.{NEEDS_NOTE[cmd.verb]}")
        return False, t.get("wecom.need_note", what=what, example=f"{verb_name} {cmd.ref or short} …")
    if cmd.verb == "accept" and ticket.status == "accepted" and ticket.assignee == who.id:
        # 接单 again (sent twice, or 接单 1 2 3 after 接单 1): theirs already, what comes next
        return False, t.get("wecom.accepted_before", number=ticket.number, short=short)
    if cmd.verb == "resolve" and ticket.status in ("resolved", "closed") and ticket.resolved_at is not None:
        # 办结 again (its reply not seen, or sent twice): done already, and when — not 不能办结
        return False, t.get("wecom.resolved_before", number=ticket.number, at=notices.local_time(svc, ticket.resolved_at))
    if ticket.status not in FROM_STATUSES[cmd.verb]:
        return False, t.get("wecom.bad_status", number=ticket.number, status=t.get(f"wecom.statuses.{ticket.status}"), verb=verb_name)
    if not await dispatch.claim(session, ticket, who.id):  # changed since it was read: never written over
        if again:  # read again under this transaction's lock: nothing else can have changed it
            raise RuntimeError(f"ticket {ticket.number} changed under its lock")
        await session.refresh(ticket, with_for_update=True)  # as it now is, held from here on
        return await _carry_out(svc, session, who, cmd, ticket, again=True)
    action = "escalate" if cmd.verb == "whistle" else cmd.verb
    note = t.get("dispatch.reason_whistle", note=cmd.text) if cmd.verb == "whistle" else cmd.text
    data = {"via": "wecom", "whistle": True} if cmd.verb == "whistle" else {"via": "wecom"}
    try:
        if cmd.verb == "whistle" and ticket.status == "escalated":
            event = await dispatch.whistle_again(svc, session, ticket, who.id, note=note, data=data)
        else:
            event = await dispatch.apply_action(svc, session, ticket, action, who.id, note=note, data=data)
    except tickets.TransitionError:
        return False, t.get("wecom.bad_status", number=ticket.number, status=t.get(f"wecom.statuses.{ticket.status}"), verb=verb_name)
    _audit(session, who.id, f"wecom.{cmd.verb}", ticket.number, now, note=notices.safe_text(cmd.text)[:500])
    if cmd.verb == "accept":
        place = notices.safe_text(notices.place_of(svc, ticket))
        start = dispatch.booked_start(ticket)
        if ticket.kind == "volunteer_signup":  # a signup is decided, not gone to: how to decide it
            return True, t.get("wecom.accepted_signup", number=ticket.number, short=short)
        if start is not None:  # a booking: when to be there first (its 办结 limit is a day later)
            # 送到家: where to bring it, as the card says
            booked = "wecom.accepted_delivery" if notices.delivery_asked(ticket) else "wecom.accepted_booking"
            return True, t.get(booked, number=ticket.number, place=place,
                               when=notices.local_time(svc, start), short=short)
        # A job given on past its 办结 limit (reassigning keeps it): already late, as its card says.
        late = ticket.due_at is not None and ticket.due_at <= now
        return True, t.get("wecom.accepted_late" if late else "wecom.accepted", number=ticket.number,
                           place=place, due=notices.local_time(svc, ticket.due_at), short=short)
    if cmd.verb == "resolve":
        if (event.data or {}).get("decision") == "approved":  # a volunteer signup approved
            return True, t.get("wecom.signup_approved", number=ticket.number)
        return True, t.get("wecom.resolved_one", number=ticket.number)
    if cmd.verb == "return":
        if (event.data or {}).get("decision") == "rejected":  # a volunteer signup declined, not re-dispatched
            return True, t.get("wecom.signup_declined", number=ticket.number)
        return True, t.get("wecom.returned", number=ticket.number)
    return True, t.get("wecom.whistled", number=ticket.number)


async def _named(svc: Services, session: AsyncSession, who: Person, cmd: Command) -> tuple[list[Ticket], str | None]:
    """The tickets of every number in a command (接单 1 2 3), row-locked in id order; or, when a
    number names none of the worker's (unknown, someone else's, several), the refusal naming
    each such number — then nothing is done, so no number is dropped or read as a note."""
    t = svc.texts
    refs = list(dict.fromkeys(cmd.refs))
    if len(refs) > MAX_REFS:
        return [], t.get("wecom.too_many", count=MAX_REFS)
    found = [(ref, await _find(svc, session, who, cmd.verb, ref)) for ref in refs]
    failed = [(ref, f) for ref, f in found if f.ticket is None]
    if failed:
        for ref, f in failed:
            if f.refused:
                _audit(session, who.id, f"wecom.{cmd.verb}.refused", ref, svc.clock.now(), reason="not assignee")
        # each line once: the list of the worker's own tickets follows every number that named none
        said = dict.fromkeys(line for _, f in failed for line in f.reply.splitlines())
        return [], "\n".join([*said, t.get("wecom.none_done")])
    ids = {f.ticket.id: f.ticket for _, f in found if f.ticket is not None}
    locked = {tid: await _locked(session, ids[tid]) for tid in sorted(ids)}
    return [locked[tid] for tid in dict.fromkeys(f.ticket.id for _, f in found if f.ticket is not None)], None


async def _act_on_each(svc: Services, session: AsyncSession, who: Person, cmd: Command) -> str:
    """A verb on several numbers (接单 1 2 3, 办结 2 3 都调解好了): each ticket gets its own line; the
    note, if any, is each one's note."""
    t = svc.texts
    named, refusal = await _named(svc, session, who, cmd)
    if refusal is not None:
        return refusal
    if cmd.verb in NEEDS_NOTE and not cmd.text:
        what = t.get(f"wecom.{NEEDS_NOTE[cmd.verb]}")
        return t.get("wecom.need_note", what=what, example=f"{t.get(f'wecom.verbs.{cmd.verb}')} {' '.join(cmd.refs)} …")
    lines, resolved, taken, held = [], [], [], []
    for ticket in named:
        was = ticket.status
        done, line = await _carry_out(svc, session, who, cmd, ticket)
        lines.append(line)
        if done and cmd.verb == "resolve" and ticket.kind != "volunteer_signup":
            resolved.append(ticket)
        if done and cmd.verb == "accept":
            taken.append(ticket)
        if cmd.verb == "accept" and (done or (was == "accepted" and ticket.assignee == who.id)):
            held.append((len(lines) - 1, ticket, done))
    words = notices.clip(cmd.text, 40)
    if taken and _words_for_nobody(cmd):  # 接单 1 2 明天去: the 回复 for each, as for one number
        commands = [t.get("wecom.later_line", about=_about(svc, x),
                          command=f"{COMMAND_WORD['reply']} {await dispatch.worker_ref(session, x, who.id)} {words}")
                    for x in taken]
        lines.append(t.get("wecom.accept_words_each", words=words, commands="\n".join(commands)))
    if held and len("\n".join(lines).encode()) > REPLY_MAX_BYTES - 200:
        # 接单 of ten jobs after a water cut: WeCom would cut the full lines mid-ticket, without a
        # word; a short line a job, and how to 办结 said once
        for index, x, done in held:
            lines[index] = t.get("wecom.accepted_short" if done else "wecom.accepted_before_short", number=x.number,
                                 place=notices.clip(notices.safe_text(notices.place_of(svc, x)), 12),
                                 due=notices.local_time(svc, x.due_at))
        if taken and _words_for_nobody(cmd):
            lines[-1] = t.get("wecom.accept_words_short", words=words)
        lines.append(t.get("wecom.accepted_tail", short=await dispatch.worker_ref(session, held[0][1], who.id)))
    if resolved:  # a photo that follows goes to the last one finished, and the worker is told so
        _photo_goes_to(svc, session, who, resolved[-1])
        kept = await _attach_kept(svc, session, who, resolved[-1])  # … as do those sent first
        lines.append(kept or t.get("wecom.photo_goes_to", number=resolved[-1].number))
    return "\n".join(lines)


async def contact(svc: Services, session: AsyncSession, who: Person, cmd: Command) -> str:
    """电话 N: the resident's phone for the ticket's owner, whole (pushes show it masked), in the
    reply to the owner's own request only; every look is audited (without the number). Several
    numbers (电话 1 2): a line for each."""
    t = svc.texts
    if cmd.more:
        refs = list(dict.fromkeys(cmd.refs))
        if len(refs) > MAX_REFS:
            return t.get("wecom.too_many", count=MAX_REFS)
        return "\n".join([await contact(svc, session, who, Command("phone", ref)) for ref in refs])
    found = await find_ticket(svc, session, who, cmd)
    now = svc.clock.now()
    if found.ticket is None:
        if found.refused:
            _audit(session, who.id, "wecom.phone.refused", cmd.ref or "", now, reason="not assignee")
        return found.reply
    ticket = found.ticket
    if ticket.status not in FROM_STATUSES["phone"]:
        return t.get("wecom.phone_closed", number=ticket.number)
    phone = str((ticket.fields or {}).get("phone") or "")
    if not phone and ticket.resident:
        owner = await session.get(Resident, ticket.resident)
        phone = owner.phone if owner is not None and owner.phone else ""
    _audit(session, who.id, "wecom.phone", ticket.number, now, found=bool(phone))
    if not phone:
        return t.get("wecom.phone_none", number=ticket.number)
    return t.get("wecom.phone", number=ticket.number, phone=phone)


async def attach_photo(svc: Services, session: AsyncSession, who: Person, media: dict[str, Any]) -> str:
    """Attach a photo to the ticket the worker just finished (办结), if any; else keep it for the
    办结 that follows (a photo taken on the spot is sent first as often as after)."""
    t = svc.texts
    pending = await svc.store.get(svc.store.key("wecom-photo", who.id))
    number = pending.get("number") if isinstance(pending, dict) else None
    ticket = await tickets.get_by_number(session, str(number), for_update=True) if number else None
    if ticket is None or ticket.assignee != who.id:
        return await _keep_photo(svc, session, who, media)
    finished = _finished_at(pending)
    if finished is not None and svc.clock.now() - finished > timedelta(seconds=PHOTO_AFTER_S) \
            and await _jobs_in_hand(session, who):
        # Well after that 办结, with another job in hand: taken at the next job, kept for its 办结.
        return await _keep_photo(svc, session, who, media, after=ticket.number)
    await _attach(svc, session, who, ticket, media)
    return t.get("wecom.photo_attached", number=ticket.number)


def _finished_at(pending: dict[str, Any]) -> datetime | None:
    """When the 办结 a wecom-photo entry points to was committed (None: not recorded)."""
    try:
        at = datetime.fromisoformat(str(pending.get("at")))
    except ValueError:
        return None
    return at if at.tzinfo is not None else at.replace(tzinfo=timezone.utc)


async def _jobs_in_hand(session: AsyncSession, who: Person) -> list[Ticket]:
    """Up to two of the worker's jobs a 办结 would take a photo to (a coordinator's signups take none)."""
    return list(await session.scalars(
        select(Ticket).where(Ticket.assignee == who.id, Ticket.status.in_(FROM_STATUSES["resolve"]),
                             Ticket.parent_id.is_(None), Ticket.kind != "volunteer_signup").limit(2)
    ))


async def _attach(svc: Services, session: AsyncSession, who: Person, ticket: Ticket, media: dict[str, Any]) -> None:
    """A worker's photo on a ticket they finished, audited."""
    now = svc.clock.now()
    await tickets.add_event(session, ticket, "photo", who.id, now, data={"via": "wecom", **media})
    _audit(session, who.id, "wecom.photo", ticket.number, now, media_id=media.get("media_id"))


async def _keep_photo(svc: Services, session: AsyncSession, who: Person, media: dict[str, Any],
                      after: str | None = None) -> str:
    """A photo sent before the 办结 it belongs to: kept (at most KEPT_PHOTOS, for PHOTO_TTL_S) and
    attached by that 办结; the reply says so, naming the 办结 to send when one job is in hand. With
    no job in hand, nothing is kept and the reply says a photo follows a 办结. after: the job
    finished more than PHOTO_AFTER_S before, which the reply says the photo was not put on."""
    t = svc.texts
    held = await _jobs_in_hand(session, who)
    if not held:  # no job in hand that a 办结 would take it to
        return t.get("wecom.photo_unexpected")
    key = svc.store.key("wecom-photo-kept", who.id)
    async with svc.store.lock(f"wecom-photo-kept:{who.id}"):  # several photos picked arrive at once
        kept = await svc.store.get(key)
        photos = list(kept.get("photos") or []) if isinstance(kept, dict) else []
        if len(photos) >= KEPT_PHOTOS:
            return t.get("wecom.photo_kept_full", count=KEPT_PHOTOS)
        photos.append(media)
        await svc.store.set(key, {"photos": photos}, ttl=PHOTO_TTL_S)
    example = f"{COMMAND_WORD['resolve']} {await dispatch.worker_ref(session, held[0])} 说明" if len(held) == 1 else \
        f"{COMMAND_WORD['resolve']} N 说明"
    kept = t.get("wecom.photo_kept", count=len(photos), example=example, minutes=PHOTO_TTL_S // 60)
    if after is None:
        return kept
    return t.get("wecom.photo_not_to_done", number=after, minutes=PHOTO_AFTER_S // 60) + "\n" + kept


def _photo_goes_to(svc: Services, session: AsyncSession, who: Person, ticket: Ticket) -> None:
    """After the 办结 of ticket is committed, a photo that follows may go to it (attach_photo)."""
    number = ticket.number

    async def point() -> None:
        at = svc.clock.now().isoformat()
        await svc.store.set(svc.store.key("wecom-photo", who.id), {"number": number, "at": at}, ttl=PHOTO_TTL_S)

    _after_commit(session, point)


async def _attach_kept(svc: Services, session: AsyncSession, who: Person, ticket: Ticket) -> str:
    """The photos kept from before a 办结 attached to the ticket it finished; the line saying so
    ('' when none were kept)."""
    key = svc.store.key("wecom-photo-kept", who.id)
    async with svc.store.lock(f"wecom-photo-kept:{who.id}"):
        kept = await svc.store.get(key)
    photos = [p for p in (kept.get("photos") or []) if isinstance(p, dict)] if isinstance(kept, dict) else []
    if not photos:
        return ""
    for media in photos:
        await _attach(svc, session, who, ticket, media)

    async def taken() -> None:  # once the 办结 is committed: a failed commit keeps them for its retry
        async with svc.store.lock(f"wecom-photo-kept:{who.id}"):
            now_kept = await svc.store.get(key)
            rest = [p for p in (now_kept.get("photos") or []) if p not in photos] if isinstance(now_kept, dict) else []
            if rest:  # sent while the 办结 was being written: kept for the next one
                await svc.store.set(key, {"photos": rest}, ttl=PHOTO_TTL_S)
            else:
                await svc.store.delete(key)

    _after_commit(session, taken)
    return svc.texts.get("wecom.photo_kept_attached", count=len(photos), number=ticket.number)


def _after_commit(session: AsyncSession, hook: Callable[[], Awaitable[None]]) -> None:
    """Run hook once the command's transaction has committed (state-store writes that must not
    happen for a command rolled back); `run` runs them."""
    session.info.setdefault("wecom_after_commit", []).append(hook)


async def _committed(session: AsyncSession) -> None:
    """The hooks of a transaction just committed (`_after_commit`)."""
    for hook in session.info.pop("wecom_after_commit", []):
        await hook()


async def _answered_meanwhile(svc: Services, session: AsyncSession, who: Person, ticket: Ticket) -> str | None:
    """A colleague's answer to the ticket's resident (or any reporter of its job) that `who` has
    neither answered after nor been shown, in words; None when there is none. The staff group
    shows no answers, so two staff taking up one hand-off both reached the resident: the second
    answer is held back once, showing the first, as the console's answer form does."""
    from bot.console import queries

    key = svc.store.key("wecom-reply-seen", who.id, ticket.number)
    seen = await svc.store.get(key)
    shown = int(seen.get("id", 0)) if isinstance(seen, dict) else 0
    newer = await queries.answer_since(session, ticket, shown, who.id)
    if newer is None or await queries.answer_since(session, ticket, newer.id, "") is not None:
        return None  # nobody else answered, or `who` answered after them
    await svc.store.set(key, {"id": newer.id}, ttl=REPLY_SEEN_TTL_S)
    name = (await queries.names(session)).get(newer.author or "", newer.author or "")
    return svc.texts.get("wecom.answered_meanwhile", who=name, at=local(newer.created_at, svc.tz).strftime("%H:%M"),
                         text=notices.clip((newer.content or "").replace("\n", " "), 60))


async def staff_reply(svc: Services, who: Person, cmd: Command) -> str:
    """`回复 N 内容` from staff, or from the owner of a ticket in their hands (a mediator asking the
    resident a question): the answer reaches the resident exactly as a console answer does, and
    what the resident answers comes back to the owner (dialog's answer to staff); `回复全部 N 内容`
    (staff only) reaches every resident who reported the problem (staff_actions.staff_reply_all)."""
    t = svc.texts
    word = COMMAND_WORD[cmd.verb]
    staff = roster.is_staff(who)
    if not staff and cmd.verb == "reply_all":  # an owner answers only their own ticket's resident (below)
        async with svc.sessions() as session, session.begin():
            _audit(session, who.id, f"wecom.{cmd.verb}.refused", cmd.ref or "", svc.clock.now(), reason="not staff")
            delivery_record.record(session, t.get("wecom.staff_only"))
        return t.get("wecom.staff_only")
    if not cmd.text or cmd.ref is None:
        return t.get("wecom.need_note", what=t.get("wecom.note_reply"), example=f"{word} 0007 您好，……")
    if cmd.more:  # one answer is for one resident: never sent to several, nor a number dropped
        return t.get("wecom.reply_one", numbers="、".join(cmd.refs))
    async with svc.sessions() as session:
        found = await find_ticket(svc, session, who, cmd)
        number = found.ticket.number if found.ticket is not None else None
        held = await _answered_meanwhile(svc, session, who, found.ticket) if found.ticket is not None else None
    if number is None:
        if found.refused:  # an owner's 回复 of someone else's ticket
            async with svc.sessions() as session, session.begin():
                _audit(session, who.id, "wecom.reply.refused", cmd.ref or "", svc.clock.now(), reason="not assignee")
                delivery_record.record(session, found.reply)
        return found.reply
    if not staff and found.ticket is not None and found.ticket.status not in dispatch.HELD:
        return t.get("wecom.reply_closed", number=number)  # no longer in the owner's hands
    if held is not None:  # a colleague answered this resident: read theirs first; sent again, it goes
        return held
    try:
        from bot import staff_actions
    except ImportError:  # the console's staff_actions module is written alongside
        log.warning("bot.staff_actions not available; 回复 refused")
        return t.get("wecom.reply_unavailable")
    try:
        if cmd.verb == "reply_all":
            done = await staff_actions.staff_reply_all(svc, number, cmd.text, who.id)
            return t.get("wecom.replied_all", number=done.number, reached=done.reached, custom=done.custom,
                         template=done.template, missed=done.missed)
        via = await staff_actions.staff_reply(svc, number, cmd.text, who.id, source="wecom")
    except (ValueError, LookupError) as exc:  # refused: empty or too long, resident unreachable, unknown
        return t.get("wecom.reply_failed", reason=str(exc))
    return t.get("wecom.replied", number=number, via=t.get(f"wecom.via_{via}") if t.has(f"wecom.via_{via}") else via)


async def _acted_on_last(svc: Services, session: AsyncSession, who: Person, numbers: list[str]) -> str | None:
    """Of these tickets, the one the owner acted on last within LAST_ACTED_WITHIN (接单 9, then
    打了两次电话 对方没接): most likely what words with no number are about; None if none."""
    found: str | None = await session.scalar(
        select(Ticket.number).join(TicketEvent, TicketEvent.ticket_id == Ticket.id)
        .where(Ticket.number.in_(numbers), TicketEvent.actor == who.id,
               TicketEvent.created_at >= svc.clock.now() - LAST_ACTED_WITHIN)
        .order_by(TicketEvent.id.desc()).limit(1)
    )
    return found


async def _for_resident(svc: Services, who: Person, text: str) -> str:
    """After 没有看懂这条指令, for an owner with tickets in hand who wrote a sentence (周六上午十点在
    社区调解室, meant for the resident): the 回复 that sends it, with the number of their one ticket
    (else of the first, to change); '' otherwise."""
    said = _normal(text)
    if len(re.sub(r"[\W\d_a-z]", "", said, flags=re.IGNORECASE)) < 4:
        return ""
    async with svc.sessions() as session:
        held = list(await session.scalars(
            select(Ticket.number).where(Ticket.assignee == who.id, Ticket.status.in_(dispatch.HELD),
                                        Ticket.parent_id.is_(None)).order_by(Ticket.due_at, Ticket.id).limit(9)
        ))
        latest = await _acted_on_last(svc, session, who, held) if len(held) > 1 else None
    if not held:
        return ""
    if latest is not None:
        held.insert(0, held.pop(held.index(latest)))
    # 0003 周六上午十点在调解室: the sentence names its ticket first; the 回复 names it once
    named = _NAMED_FIRST.match(text.strip())
    ref = named and next((n for n in held if n == named[1] or n.endswith(f"-{named[1][-4:].zfill(4)}")), None)
    words = text.strip()[named.end():] if ref and named else text.strip()
    number = ref or held[0]
    example = f"{COMMAND_WORD['reply']} {handles(held)[number]} {notices.clip(words, 40)}"
    which = "wecom.for_resident" if len(held) == 1 or ref else "wecom.for_resident_which"
    return "\n" + svc.texts.get(which, example=example)


# A sentence for the resident that names its ticket first (0003 双方约好周六谈, 3号 …, 20261125-0003：…).
_NAMED_FIRST = re.compile(r"^(?:第)?(\d{8}-\d{1,4}|\d{1,4})(?:号单子?|号)?[\s:,;、。，：]+(?=\S)")


async def run(svc: Services, userid: str, text: str | None, media: dict[str, Any] | None = None) -> str:
    """Handle one message from a WeCom user (text or photo); returns the passive reply."""
    t = svc.texts
    async with svc.sessions() as session:
        who = await roster.person(session, userid)
    if who is None or not who.active:
        return t.get("wecom.not_on_roster")
    if media is not None:
        async with svc.sessions() as session, session.begin():
            reply = await attach_photo(svc, session, who, media)
            delivery_record.record(session, reply)
            return reply
    if not text:
        return t.get("wecom.text_only")
    if activities.asks_overview(text, who):  # 活动 / 报名情况: the coordinator's view of signups
        _read_as("activities")
        async with svc.sessions() as session:
            return await activities.overview(svc, session)
    call_off = activities.parse_cancel(text)
    if call_off is not None:  # 取消活动 楼道清洁 因下雨 (coordinator or staff)
        _read_as("cancel_activity")
        async with svc.sessions() as session, session.begin():
            reply = await activities.cancel_activity(svc, session, who, call_off)
            delivery_record.record(session, reply)
            return reply
    outage = outage_commands.parse(text)
    if outage is not None:  # 停水 3 4 5 预计15:00 管道抢修 / 恢复 停水 3 (staff only)
        _read_as(f"outage_{outage.action}")
        return await outage_commands.run(svc, who, outage)
    from bot import staff_actions

    closing = staff_actions.parse_close(text)
    if closing is not None:  # 关闭 N 原因: staff close a ticket unresolved, as in the console
        _read_as("close")
        return await staff_actions.close_from_wecom(svc, who, *closing)
    cmd = parse(text)
    if cmd is None and "volunteer_coordinator" in (who.roles or []):  # 通过 / 不通过 2 原因: a signup's decision
        cmd = decision(text)
    if cmd is None and (meant := misheard(text)) is not None:  # 办姐 2 好了: asked back, nothing done
        return t.get("wecom.misheard", meant=notices.clip(meant, 60))
    if cmd is None:  # words meant for the resident (周六上午十点在调解室) are shown as the 回复 to send
        suggested = await _for_resident(svc, who, text)
        if suggested:  # not 没有看懂 and the whole command list: the sentence was read, only not sent
            return t.get("wecom.not_sent") + suggested + "\n" + t.get("wecom.help_hint")
        return t.get("wecom.not_understood") + "\n" + help_text(svc, who)
    if cmd.typo:
        return typo_reply(svc, cmd)
    if cmd.verb == "help":
        return help_text(svc, who)
    if cmd.verb == "noted":
        _answered_as("answered")
        return await noted(svc, who, text, cmd.place)
    if cmd.verb == "hello":
        _answered_as("answered")
        return await hello(svc, who)
    if cmd.verb == "called":
        _answered_as("answered")
        return await called(svc, who, cmd)
    if cmd.verb in ("reply", "reply_all"):
        return await staff_reply(svc, who, cmd)
    if cmd.verb == "resolve" and not cmd.more:  # staff settle a staff-queue ticket (转人工) as in the console
        from bot import staff_actions

        settled = await staff_actions.settle_from_wecom(svc, who, cmd.ref, cmd.text)
        if settled is not None:
            return settled
    async with svc.sessions() as session:
        async with session.begin():
            if cmd.verb == "mine":
                reply = await mine(svc, session, who)
            elif cmd.verb == "hand_over":
                reply = await hand_over(svc, session, who, cmd)
            elif cmd.verb == "later":
                reply = await later(svc, session, who, cmd)
            elif cmd.verb == "phone":
                reply = await contact(svc, session, who, cmd)
            else:
                reply = await act(svc, session, who, cmd)
            delivery_record.record(session, reply)
        await _committed(session)
        return reply
