"""An hour said with no part of the day (七点, 两点, 2:30) is read in the half of the day the
service runs in (When.within): 七点以后 for a talk with a mediator is 19:00, not 07:00."""

from __future__ import annotations

from datetime import date, time

from bot.when import When, parse_when

TODAY = date(2026, 11, 23)


def _talk(t: time) -> bool:
    return time(8, 0) <= t <= time(21, 0)


def test_a_bare_hour_outside_the_hours_is_read_in_the_other_half_of_the_day() -> None:
    assert parse_when("七点以后", TODAY).within(_talk).at == time(19, 0)
    assert parse_when("明天7点半", TODAY).within(_talk).at == time(19, 30)
    assert parse_when("明天2:30", TODAY).within(_talk).at == time(14, 30)  # 02:30 is nobody's talk


def test_the_usual_reading_stays_when_it_fits_or_when_neither_does() -> None:
    assert parse_when("明天八点", TODAY).within(_talk).at == time(8, 0)  # both fit: the morning
    assert parse_when("明天两点", TODAY).within(_talk).at == time(14, 0)
    assert parse_when("明天十一点", TODAY).within(lambda t: False).at == time(11, 0)


def test_a_part_of_the_day_or_a_24_hour_clock_says_which() -> None:
    for said in ("早上七点", "晚上七点", "19:00", "凌晨两点", "十二点", "中午十二点"):
        when = parse_when(said, TODAY)
        assert when.other is None, said
        assert when.within(lambda t: True) == when and when.within(lambda t: False) == when


def test_the_other_reading_survives_a_merge_with_a_day() -> None:
    merged = When(day=TODAY).merged(parse_when("七点", TODAY))
    assert merged.within(_talk).at == time(19, 0)
    assert When(at=time(7, 0), other=time(19, 0)).merged(When(day=TODAY)).within(_talk).at == time(19, 0)
