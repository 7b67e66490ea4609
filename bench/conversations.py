"""Residents' whole conversations for the load benchmark: mixed intents, flows to the end,
status queries, greetings and hand-offs, as residents type them.

Each script answers exactly the questions the current flows ask (config/messages.toml, bot/flows/):
complaints and bookings ask for photos (好了; a report), a phone and whether to bind it (否, so a
resident's next request asks again and the scripts stay in step), then the summary (确认); mediation asks whether the
parties talked, when, and a phone. `expect` is what the last reply must contain when the script
ran as written; check it against a running service with

    .venv/bin/python -m bench.conversations --check http://127.0.0.1:8080
"""

from __future__ import annotations

import argparse
import asyncio
import random
import secrets
import sys
from dataclasses import dataclass

TICKET = "工单号："
MENU = "请直接说您的事情，或回复数字。"


@dataclass(frozen=True)
class Script:
    """One conversation, and what its last reply contains when it went as written."""

    messages: tuple[str, ...]
    expect: str
    new_resident_after: bool = False  # see new_resident_after()


SCRIPTS: list[Script] = [
    Script(("3号楼2单元楼道灯坏了，晚上黑乎乎的", "好了", "13800138001", "否", "确认"), TICKET),
    # an emergency is submitted once its place and phone are known (no bind question, no summary)
    Script(("9栋1单元电梯卡住了有人出不来", "13800138002"), TICKET),
    Script(("小区东门垃圾好几天没人清了，臭得很", "好了", "13800138003", "否", "确认"), TICKET),
    Script(("12号楼3单元楼下下水道堵了，污水漫出来", "好了", "13800138008", "否", "确认"), TICKET),
    Script(("楼下有人天天把车停在消防通道上", "5号楼2单元", "好了", "13800138009", "否", "确认"), TICKET),
    Script(("楼上邻居天天半夜剁东西吵得睡不着，想请人来调解一下", "1", "周六上午", "13800138004", "确认"), TICKET),
    Script(("11栋3单元601家里水管爆了，水漫出来了", "13800138007"), TICKET),
    Script(("我的工单怎么样了",), "工单"),
    Script(("20261123-0001怎么样了",), "20261123-0001"),
    Script(("你好",), MENU),
    Script(("谢谢你们，上次路灯修好了很满意",), "不客气"),  # thanks are answered with a word, not the menu
    Script(("帮助",), MENU),
    Script(("转人工",), TICKET, new_resident_after=True),
    # An elderly-service booking and a volunteer signup, each to its ticket.
    Script(("明天中午给我妈订个助餐", "王秀英", "82", "5号楼1单元301", "少盐", "13800138005", "否", "确认"), TICKET),
    Script(("我想报名当志愿者", "李明", "13800138006", "会修电器", "周末", "1 3", "是", "同意", "确认"), TICKET,
           new_resident_after=True),
]

CONVERSATIONS: list[list[str]] = [list(s.messages) for s in SCRIPTS]


def hands_off(conversation: list[str]) -> bool:
    """Whether the conversation ends waiting for a person: for the next two hours the service puts
    that resident's new requests before staff instead of running a flow (bot.flows.handoff.
    with_staff), so a simulated resident continues under a new openid, as another resident would."""
    return bool(conversation) and conversation[0] == "转人工"


_NEW_RESIDENT_AFTER = frozenset(s.messages[0] for s in SCRIPTS if s.new_resident_after)


def new_resident_after(conversation: list[str]) -> bool:
    """Whether a simulated resident goes on under a new openid after this conversation, so that
    the next one runs as written: after a hand-off (hands_off), and after a volunteer signup — a
    resident registers once; to a second signup the bot answers with the registration it has, and
    the script's answers to questions no longer asked would each be 没太明白 and the menu (nine
    messages of every repeated signup)."""
    return bool(conversation) and conversation[0] in _NEW_RESIDENT_AFTER


# A report of what the resident or a neighbour reported already is first asked about (1 催一下 or
# 1 登记上我, 2 单独登记): the scripts answer 2, so the report is taken as written and each
# complaint script still ends in a ticket of its own, as the workload always measured.
ANOTHER = "2. 不是同一个问题"
SEPARATELY = "2"


def interjection(reply: str) -> str | None:
    """What a script says before its next message when the reply asks a question the script does
    not have (the report made already): 2, to register it separately; None otherwise."""
    return SEPARATELY if ANOTHER in reply else None


def pick(rng: random.Random) -> list[str]:
    """One conversation, with the closing 取消 so the next one starts clean."""
    return [*rng.choice(CONVERSATIONS), "取消"]


async def check(base: str, *, encrypt: bool = False) -> int:
    """Run every script once against a running service (fresh residents); print each last reply
    and return how many did not end as expected."""
    import aiohttp

    from bot.settings import load_settings
    from bot.sim.wechat_client import WeChatSigner, text_xml

    settings = load_settings()
    signer = WeChatSigner(settings.wechat_token, settings.wechat_appid, settings.wechat_aes_key)
    failed = 0
    async with aiohttp.ClientSession() as http:
        for script in SCRIPTS:
            openid = f"oCheck{secrets.token_hex(4)}"
            last = ""
            queue = list(script.messages)
            while queue:
                signed = signer.wrap(text_xml(openid, queue.pop(0)), encrypt=encrypt)
                async with http.post(f"{base}/wechat", params=signed.params, data=signed.body) as resp:
                    body = await resp.text()
                reply = signer.unwrap(body, signed.params) if resp.status == 200 else {"Content": body}
                last = str((reply or {}).get("Content", ""))
                extra = interjection(last)
                if extra is not None:
                    queue.insert(0, extra)
            ok = script.expect in last
            failed += not ok
            print(f"[{'ok' if ok else 'OFF-SCRIPT'}] {script.messages[0]} → {last.splitlines()[0] if last else '(none)'}")
    return failed


def main(argv: list[str] | None = None) -> int:
    """`python -m bench.conversations --check URL`: do the scripts still complete the flows?"""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--check", metavar="URL", required=True, help="base URL of a running service")
    parser.add_argument("--aes", action="store_true", help="safe mode (AES) messages")
    args = parser.parse_args(argv)
    return 1 if asyncio.run(check(args.check.rstrip("/"), encrypt=args.aes)) else 0


if __name__ == "__main__":
    sys.exit(main())
