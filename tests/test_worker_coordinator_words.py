"""The volunteer coordinator's and a grid worker's day after others acted (found walking the
owners' day, session 17), on both backends: 通过 / 审核通过 / 同意 were 没有看懂这条指令 — and
审核通过 was offered as `回复 0001 审核通过`, which tells the resident 审核通过 while the signup stays
undecided; 收到 took a signup with 已接单：工单 0001（未说明）…办结后回复; and a command for a job staff
closed was answered 当前状态是“已关闭”，不能办结, read as a refusal."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from bot import worker_commands
from bot.services import Services
from tests.wecom_driver import WeCom, load_demo_roster, new_ticket, outbox_rows, ticket

Client = TestClient[Any, Any]
Command = worker_commands.Command


@pytest.mark.parametrize(("said", "expected"), [
    ("通过", Command("resolve", None, "审核通过")),
    ("审核通过", Command("resolve", None, "审核通过")),
    ("审核通过 2", Command("resolve", "2", "审核通过")),
    ("2号通过", Command("resolve", "2", "审核通过")),
    ("同意", Command("resolve", None, "审核通过")),
    ("通过，欢迎加入", Command("resolve", None, "欢迎加入")),
    ("不通过 2 年龄不符", Command("return", "2", "年龄不符")),
    ("不同意 人数已满", Command("return", None, "人数已满")),
    ("不通过", Command("return", None, "")),
])
def test_a_coordinators_decision_in_words(said: str, expected: Command) -> None:
    assert worker_commands.decision(said) == expected


@pytest.mark.parametrize("said", ["通过吗", "通过率", "2 通过 3", "审核"])
def test_words_that_decide_nothing(said: str) -> None:
    assert worker_commands.decision(said) is None


async def _signup(svc: Services, resident: str) -> str:
    made = await new_ticket(svc, kind="volunteer_signup", resident=resident, category=None, building=None,
                            summary="志愿者报名", fields={"name": "张三", "skills": "理发", "phone": "13800001111"})
    assert made.ticket.assignee == "zhouvol"
    return made.ticket.number


async def test_the_coordinator_decides_signups_in_words(client: Client, services: Services) -> None:
    await load_demo_roster(services)
    wc = WeCom(client, services)
    first = await _signup(services, "oVolA")
    assert await wc.say("zhouvol", "收到") == (
        f"已接单：工单 {first}（志愿者登记）。审核通过请回复“办结 0001 说明”或“通过 0001”；"
        "不通过请回复“退回 0001 原因”（原因会告诉居民）。")
    told = len(await outbox_rows(services, "wechat", "oVolA"))
    assert await wc.say("zhouvol", "审核通过") == f"已通过：工单 {first} 的志愿者登记已通过审核，已通知居民。"
    assert (await ticket(services, first)).status == "closed"  # an approved signup is done with
    assert len(await outbox_rows(services, "wechat", "oVolA")) > told
    assert await wc.say("zhouvol", "通过 1") == f"工单 {first} 已于 11月23日 10:00 办结，不用再发。"
    second = await _signup(services, "oVolB")
    assert await wc.say("zhouvol", "不通过 2") == "请写明退回原因，例如“退回 2 …”。"
    assert await wc.say("zhouvol", "不通过 2 本活动只招18岁以上") == (
        f"已退回：工单 {second} 的志愿者登记未通过，已把结果和原因告诉居民。")
    assert "本活动只招18岁以上" in str((await outbox_rows(services, "wechat", "oVolB"))[-1].payload)
    # From anyone but a coordinator, 通过 is words, as before.
    await new_ticket(services, resident="oGrid")
    assert (await wc.say("wangwei", "通过")).startswith("没有看懂这条指令。")
    assert (await ticket(services, "20261123-0003")).status == "dispatched"


async def test_a_command_for_a_job_staff_closed_says_it_was_closed(client: Client, services: Services) -> None:
    await load_demo_roster(services)
    wc = WeCom(client, services)
    job = (await new_ticket(services, resident="oShut", building="5", fields={"description": "垃圾没人清"})).ticket
    owner = job.assignee
    assert owner is not None and (await wc.say(owner, "接单 1")).startswith("已接单")
    assert (await wc.say("liustaff", "关闭 1 重复工单")).startswith(f"已关闭：工单 {job.number}")
    closed = f"工单 {job.number} 已由服务中心于 11月23日 10:00 关闭，不用再办理，也不用回复。"
    assert await wc.say(owner, "办结 1 清理干净了") == closed
    assert await wc.say(owner, "接单 1") == closed
    assert (await ticket(services, job.number)).status == "closed"


async def test_the_log_names_a_coordinators_decision_in_words(client: Client, services: Services, caplog: Any) -> None:
    """通过 carried out was logged as no command read (verb "-", "unknown"): the log read only what
    parse reads, not the coordinator's words that run() reads too."""
    import logging

    caplog.set_level(logging.INFO, logger="bot.channels.wecom")
    await load_demo_roster(services)
    wc = WeCom(client, services)
    await _signup(services, "oVolLog")
    await wc.say("zhouvol", "通过")
    await wc.say("wangwei", "通过")  # words from anyone else, as before
    lines = [r.fields for r in caplog.records if r.getMessage() == "wecom text"]  # type: ignore[attr-defined]
    assert [(f["user"], f["verb"], f["outcome"]) for f in lines] == [
        ("zhouvol", "resolve", "done"), ("wangwei", "-", "unknown"),
    ]
