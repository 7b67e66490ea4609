"""Normalisation of residents' text before segmentation: script, width, emoji, fillers, typos."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.intents.normalize import Normalizer
from bot.intents.rules import load_ruleset

CONFIG_DIR = Path(__file__).resolve().parents[1] / "config"


@pytest.fixture(scope="module")
def normalize() -> Normalizer:
    return load_ruleset(CONFIG_DIR).normalizer


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("樓道燈壞了", "楼道灯坏了"),
        ("我要投訴物業", "我要投诉物业"),
        ("預約週六的助浴", "预约周六的助浴"),
        ("黨員報到", "党员报到"),
    ],
)
def test_traditional_becomes_simplified(normalize: Normalizer, raw: str, expected: str) -> None:
    assert normalize(raw) == expected


def test_full_width_digits_letters_and_punctuation_become_half_width(normalize: Normalizer) -> None:
    assert normalize("１２号楼３单元６０２，ＯＫ！") == "12号楼3单元602,ok!"


def test_emoji_are_dropped_or_read_as_words(normalize: Normalizer) -> None:
    assert normalize("楼下太吵了😤😤") == "楼下太吵了"
    assert normalize("谢谢👍") == "谢谢 好"
    assert normalize("🔥楼道冒烟了") == "着火 楼道冒烟了"
    assert normalize("😂😂😂") == ""


def test_fillers_are_removed(normalize: Normalizer) -> None:
    assert normalize("喂喂 你好") == "你好"
    assert normalize("嗯 那个 我们楼的灯啊 坏了") == "我们楼的灯 坏了"
    assert normalize("喂 那个 电梯又停了") == "电梯又停了"


def test_lead_fillers_stay_inside_a_sentence(normalize: Normalizer) -> None:
    assert normalize("楼下那个灯坏了") == "楼下那个灯坏了"
    assert normalize("有人喂流浪猫") == "有人喂流浪猫"


def test_known_typos_are_fixed(normalize: Normalizer) -> None:
    assert normalize("我要投述") == "我要投诉"
    assert normalize("电体坏了 报休") == "电梯坏了 报修"
    assert normalize("我想当志原者") == "我想当志愿者"
    assert normalize("转人功") == "转人工"


def test_voice_homophones_of_lift_and_stairwell_are_fixed_only_where_meant(normalize: Normalizer) -> None:
    assert normalize("俺老伴困在电题里了") == "我老伴困在电梯里了"
    assert normalize("电提坏了 楼到灯不亮") == "电梯坏了 楼道灯不亮"
    assert normalize("楼到里好大的煤气味") == "楼道里好大的煤气味"
    # the same sounds in other words stay
    assert normalize("停电提前通知一下 来电提醒") == "停电提前通知一下 来电提醒"
    assert normalize("从1楼到5楼都没灯 我上楼到家") == "从1楼到5楼都没灯 我上楼到家"


def test_voice_homophones_of_a_fall_or_a_stroke_are_fixed(normalize: Normalizer) -> None:
    assert normalize("我妈摔到了 跌到了") == "我妈摔倒了 跌倒了"
    assert normalize("老头子晕到了 老伴中疯了 喘不上起") == "老头子晕倒了 老伴中风了 喘不上气"
    assert normalize("在厕所摔交了") == "在厕所摔跤了"


def test_voice_text_without_punctuation_is_kept_whole(normalize: Normalizer) -> None:
    text = "我想反映个问题就是我们楼道灯不亮好几天了也没人修"
    assert normalize(text) == text


def test_whitespace_and_repeated_punctuation_collapse(normalize: Normalizer) -> None:
    assert normalize("  转人工！！！  ") == "转人工!"
    assert normalize("电梯\t坏了\n\n快来") == "电梯 坏了 快来"
    assert normalize("") == ""


def test_normaliser_without_word_lists_only_converts() -> None:
    plain = Normalizer()
    assert plain("喂 樓道ＡＢ") == "喂 楼道ab"


def test_dialect_words_are_read_as_plain_chinese(normalize: Normalizer) -> None:
    """俺/咋/啥 (北方话, and voice recognition of it) read as 我/怎么/什么: 给俺妈约个陪诊 is for 我妈."""
    assert normalize("给俺妈约个陪诊") == "给我妈约个陪诊"
    assert normalize("俺报的那个事咋样了") == "我报的那个事怎么样了"
    assert normalize("啥时候来") == "什么时候来"
    assert normalize("修灯的事儿") == "修灯的事"


def test_laughter_is_a_filler_a_word_holding_ha_is_kept(normalize: Normalizer) -> None:
    """哈哈 is laughter and goes; 哈喽 (hello) and 哈尔滨 keep their 哈."""
    assert normalize("哈哈 谢谢") == "谢谢"
    assert normalize("哈喽") == "哈喽"
    assert normalize("我女儿在哈尔滨") == "我女儿在哈尔滨"
