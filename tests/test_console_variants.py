"""The console search reads variant characters as the standard one (漏氺 as 漏水, 亊 as 事), on both
backends, in summaries and in what residents said, whichever of the two the clerk types."""

from __future__ import annotations

import re
from typing import Any

import yitizi
import zhconv
from aiohttp.test_utils import TestClient

from bot.console import auth
from bot.console.queries import FOLK_FORMS, _FOLD, fold
from bot.services import Services
from tests.staff_support import logged_in, make_ticket

Client = TestClient[Any, Any]


def _found(body: str) -> set[str]:
    return set(re.findall(r'<td><a href="/console/tickets/([0-9-]+)">', body))


async def test_a_variant_character_finds_the_standard_one_and_back(
    client: Client, services: Services, wx: Any,
) -> None:
    """漏氺 was not found by 漏水 (nor the other way round): 氺, the radical form of 水 that residents
    type, 亊 for 事 and 歳 for 岁 now read as the standard character in the search and in the text."""
    await auth.create_user(services, "liu", "staffpass1", "staff")
    folk = await make_ticket(services, None, status="open", summary="3号楼厨房漏氺")
    plain = await make_ticket(services, None, status="open", summary="5号楼卫生间漏水", building="5")
    dry = await make_ticket(services, None, status="open", summary="5号楼漏电", building="5")
    errand = await make_ticket(services, None, status="open", summary="老人的亊没人管")
    assert "转接人工服务" in await wx.say("o_var", "转人工")
    await wx.say("o_var", "阳台一直漏氺，歳数大了爬不上去")
    from tests.flow_helpers import tickets_of

    [handoff] = [t.number for t in await tickets_of(services, "o_var")]
    await logged_in(client, "liu", "staffpass1")
    for q in ("漏水", "漏氺", "漏⽔"):  # ⽔ is the Kangxi radical, what some input methods give
        body = await (await client.get("/console/tickets", params={"q": q})).text()
        assert _found(body) == {folk, plain, handoff}, (q, _found(body))
    body = await (await client.get("/console/tickets", params={"q": "岁数大了"})).text()
    assert _found(body) == {handoff}
    body = await (await client.get("/console/tickets", params={"q": "的事没人管"})).text()
    assert _found(body) == {errand} and dry not in _found(body)


def test_the_fold_is_one_character_for_one_and_settled() -> None:
    """Folding keeps every substring a substring (one character for one), folding twice changes
    nothing, and a standard character is never read as another one (干, 后, 于 stay)."""
    assert all(len(k) == 1 and len(v) == 1 for k, v in _FOLD.items())
    assert not set(_FOLD.values()) & set(_FOLD)
    assert fold("干后于里面发") == "干后于里面发"
    assert fold("漏氺 亊 歳 囯 7號樓 ７") == "漏水 事 岁 国 7号楼 7"


def test_the_hand_list_holds_only_what_the_tables_miss() -> None:
    """FOLK_FORMS is the last resort: none of its characters is in zhconv's or yitizi's table."""
    table = zhconv.zhconv.getdict("zh-cn")
    for char, plain in FOLK_FORMS.items():
        assert char not in table and not yitizi.get(char), char
        assert fold(char) == plain
