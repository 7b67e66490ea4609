"""A ticket's summary in a resident's status line (我的工单), cut to 40 characters at its ｜-parts:
a booking's note was cut to 备注：少盐 不 (or a bare 备注：), a label saying nothing."""

from __future__ import annotations

from bot.flows.status import SUMMARY_SHOWN, shown_summary


def test_a_short_summary_is_shown_whole() -> None:
    said = "照明｜3栋2单元｜楼道的灯坏了三天了"
    assert shown_summary(said) == said


def test_a_note_that_would_say_next_to_nothing_is_left_out() -> None:
    summary = "助餐｜11月25日（周三）11:00｜张桂兰（85岁）｜送餐到家｜备注：少盐 不要辣 牙口不好要软一点"
    assert summary[:SUMMARY_SHOWN].endswith("备注：少盐 不")  # what the line showed
    assert shown_summary(summary) == "助餐｜11月25日（周三）11:00｜张桂兰（85岁）｜送餐到家…"


def test_a_long_last_part_is_cut_where_it_still_says_something() -> None:
    summary = "助浴｜11月24日（周二）09:00｜欧阳秀英（85岁）｜备注：坐轮椅 需要两个人扶着才能洗澡"
    shown = shown_summary(summary)
    assert shown == "助浴｜11月24日（周二）09:00｜欧阳秀英（85岁）｜备注：坐轮椅 需要两…"
    assert len(shown) == SUMMARY_SHOWN


def test_one_long_part_is_cut_with_an_ellipsis() -> None:
    said = "楼道的灯已经坏了三天了晚上老人下楼看不见特别危险希望尽快派人来修一修谢谢你们了辛苦"
    assert len(said) > SUMMARY_SHOWN
    assert shown_summary(said) == said[: SUMMARY_SHOWN - 1] + "…"
