"""bench/load.py: the closed loop's residents carry on from one phase to the next (the warm-up,
then the measured phase), so the measured workload is the scripts', not residents left waiting
for staff by a hand-off in the warm-up."""

from __future__ import annotations

import random
from typing import Any

from aiohttp.test_utils import TestClient
from sqlalchemy import func, select

from bench.conversations import SCRIPTS
from bench.load import Driver, Resident
from bot.services import Services
from bot.sim.wechat_client import WeChatSigner
from storage.models import Message, TicketEvent


def _driver(client: TestClient[Any, Any], services: Services) -> Driver:
    settings = services.settings
    signer = WeChatSigner(settings.wechat_token, settings.wechat_appid, settings.wechat_aes_key)
    return Driver(str(client.make_url("/wechat")), signer, encrypt=False, retry_share=0.0, seed=3)


def test_a_conversation_goes_on_where_it_stopped_and_a_hand_off_makes_a_new_resident() -> None:
    rng = random.Random(5)
    who = Resident(queue=["好了", "取消"])  # a conversation cut by the end of a phase
    assert who.next_message(rng) == "好了"
    who.answered(None)
    assert who.next_message(rng) == "取消"
    who.answered(None)
    assert who.generation == 0 and not who.queue

    who = Resident(queue=["转人工", "取消"], renews=True)
    who.next_message(rng)
    who.answered(None)
    assert who.generation == 0  # 取消 still goes under the openid that handed off
    who.next_message(rng)
    who.answered(None)
    assert who.generation == 1
    opening = who.next_message(rng)  # a new conversation, under the new openid
    assert opening in {script.messages[0] for script in SCRIPTS}
    who.answered("2")  # the script's answer to 是不是同一个问题 comes first
    assert who.next_message(rng) == "2"


async def test_a_hand_off_in_the_warm_up_leaves_nobody_waiting_for_staff_in_the_measured_phase(
    client: TestClient[Any, Any], services: Services
) -> None:
    driver = _driver(client, services)
    driver.residents[0] = Resident(queue=["转人工", "取消"], renews=True)
    warm_up = await driver.closed_loop(1, 0.3)
    assert warm_up.errors == 0 and warm_up.messages >= 2
    assert driver.residents[0].generation >= 1
    measured = await driver.closed_loop(1, 0.3)
    assert measured.errors == 0 and measured.messages > 0
    async with services.sessions() as session:
        waiting = await session.scalar(select(func.count()).select_from(TicketEvent)
                                       .where(TicketEvent.action == "resident_wrote"))
        staff_answers = await session.scalar(select(func.count()).select_from(Message).where(
            Message.direction == "out", Message.content.like("%转给工作人员%")))
    # Before, the measured phase began again under the warm-up's openid, whose every message went
    # to the staff awaited (resident_wrote) instead of to the flows.
    assert waiting == 0 and staff_answers == 0
