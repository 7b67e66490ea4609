"""The words residents name an elderly service with are listed once (config/intents.toml
[slots.service]): the classifier reads them there, and so does the booking (both backends)."""

from __future__ import annotations

import tomllib
import uuid
from pathlib import Path

from bot.service_catalog import load_catalog
from tests.conftest import WeChat

CONFIG_DIR = Path(__file__).resolve().parents[1] / "config"

SERVICE = """
[[services]]
name = "理发"
aliases = ["理个发"]
slot_minutes = 30
slot_capacity = 1
daily_capacity = 10
book_ahead_days = 14
hours = [{ days = "daily", times = ["09:00-11:30"] }]
"""


def test_a_services_aliases_are_its_own_and_the_words_of_intents_toml(tmp_path: Path) -> None:
    (tmp_path / "services.toml").write_text(SERVICE, encoding="utf-8")
    assert load_catalog(tmp_path / "services.toml").get("理发").aliases == ("理个发",)
    (tmp_path / "intents.toml").write_text('[slots.service]\n"理发" = ["推个头", "理个发"]\n', encoding="utf-8")
    catalog = load_catalog(tmp_path / "services.toml")
    assert catalog.get("理发").aliases == ("理个发", "推个头")  # each word once
    assert catalog.find("想推个头").name == "理发"


def test_no_word_of_intents_toml_is_repeated_in_services_toml() -> None:
    named = tomllib.loads((CONFIG_DIR / "intents.toml").read_text(encoding="utf-8"))["slots"]["service"]
    services = tomllib.loads((CONFIG_DIR / "services.toml").read_text(encoding="utf-8"))["services"]
    repeated = {s["name"]: [a for a in s.get("aliases", ()) if a in named.get(s["name"], ())] for s in services}
    assert not any(repeated.values()), repeated


async def test_a_haircut_in_words_listed_only_for_the_classifier_picks_the_service(wx: WeChat) -> None:
    """推个头 / 理个头 / 剪剪头发 opened a haircut booking from the first message but at 请问要预约哪项服务
    were 请回复选项前面的数字: the booking read only services.toml's shorter list."""
    for said in ("推个头", "理个头", "剪剪头发"):
        openid = "o" + uuid.uuid4().hex[:20]
        assert "哪项服务" in await wx.say(openid, "3")
        assert "给谁预约" in await wx.say(openid, said), said
