"""Residents' words read at the opening of a conversation (both backends): a haircut said the old
way is a booking."""

from __future__ import annotations

import uuid

import pytest

from tests.conftest import WeChat


def oid() -> str:
    return "o" + uuid.uuid4().hex[:20]


@pytest.mark.parametrize(("said", "asked"), [
    # 剪个头, 剃个头: 理发, booked
    ("俺想找人上门剪个头", "请问是给谁预约"),
    ("想剪个头发", "请问是给谁预约"),
    ("剃个头", "请问是给谁预约"),
])
async def test_the_first_message_opens_the_matter_the_resident_means(wx: WeChat, said: str, asked: str) -> None:
    reply = await wx.say(oid(), said)
    assert asked in reply, reply
