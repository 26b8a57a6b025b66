"""crontab(5) lines → APScheduler CronTrigger fields, and the helpers that write value sets back as text.

Each line pins what crontab itself means (Vixie cron / cronie): 0 and 7 are Sunday, `a/n` is `a-max/n`,
a day-of-week range may wrap over Sunday, and a restricted day of month OR a restricted day of week fires.
"""

from __future__ import annotations

import pytest

from reconciler.crontab import (
    CrontabError,
    crontab_to_cron_fields,
    crontab_weekdays,
    format_values,
    format_weekdays,
    weekday_phrase,
)

M0 = {"minute": "0", "hour": "0"}


@pytest.mark.parametrize(
    ("line", "fields"),
    [
        ("5/15 * * * *", [{"minute": "5-50/15"}]),  # a/n = a-max/n
        ("*/15 * * * *", [{"minute": "*/15"}]),
        ("0,30 * * * 1,3,5", [{"minute": "*/30", "day_of_week": "mon,wed,fri"}]),
        ("0 9-17/2 * jan-mar *", [{"minute": "0", "hour": "9-17/2", "month": "1-3"}]),
        ("15 14 1 * *", [{"minute": "15", "hour": "14", "day": "1"}]),
        ("0 0 * 2 *", [{**M0, "month": "2"}]),
        ("0 0 * * *", [M0]),
        ("0 22 * * 1-5", [{"minute": "0", "hour": "22", "day_of_week": "mon-fri"}]),
        ("0 0 * * MON-Fri", [{**M0, "day_of_week": "mon-fri"}]),
        ("0 0 * * 0", [{**M0, "day_of_week": "sun"}]),
        ("0 0 * * 7", [{**M0, "day_of_week": "sun"}]),
        ("0 0 * * 0,7", [{**M0, "day_of_week": "sun"}]),
        ("0 0 * * sun", [{**M0, "day_of_week": "sun"}]),
        ("0 0 * * 6-7", [{**M0, "day_of_week": "sat-sun"}]),
        ("0 0 * * 7-7", [{**M0, "day_of_week": "sun"}]),
        ("0 0 * * 7/2", [{**M0, "day_of_week": "sun"}]),
        ("0 6 * * 7-2", [{"minute": "0", "hour": "6", "day_of_week": "mon-tue,sun"}]),  # Sunday..Tuesday
        ("0 6 * * 5-1", [{"minute": "0", "hour": "6", "day_of_week": "mon,fri-sun"}]),  # wraps over Sunday
        ("0 0 * * */2", [{**M0, "day_of_week": "tue,thu,sat-sun"}]),  # 0,2,4,6 in crontab numbering
        ("0 0 1 * 1", [{**M0, "day": "1"}, {**M0, "day_of_week": "mon"}]),  # either day rule: an OR
        ("0 0 */2 * 1", [{**M0, "day": "*/2", "day_of_week": "mon"}]),  # "*..." is not restricted: AND
        ("0 0 1-31 * 1", [M0]),  # one side matches every day, so the OR does too
        ("0 0 1 * 0-7", [M0]),
        ("@daily", [M0]),
        ("@midnight", [M0]),
        ("@HOURLY", [{"minute": "0"}]),
        ("@weekly", [{**M0, "day_of_week": "sun"}]),
        ("@monthly", [{**M0, "day": "1"}]),
        ("@yearly", [{**M0, "day": "1", "month": "1"}]),
        ("@annually", [{**M0, "day": "1", "month": "1"}]),
        ("  0 0 * * *  ", [M0]),
    ],
)
def test_lines_mean_what_crontab_means(line: str, fields: list[dict[str, str]]) -> None:
    assert crontab_to_cron_fields(line) == fields


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("*/0 * * * *", "minute '*/0': a step must be at least 1"),
        ("5-2 * * * *", "minute '5-2': range 5-2 is reversed"),
        ("0 5-2 * * *", "hour '5-2': range 5-2 is reversed"),
        ("1- * * * *", "minute '1-': cannot read '1-'"),
        ("60 * * * *", "minute '60': 60 is outside 0-59"),
        ("0 24 * * *", "hour '24': 24 is outside 0-23"),
        ("0 0 0 * *", "day of month '0': 0 is outside 1-31"),
        ("0 0 * 13 *", "month '13': 13 is outside 1-12"),
        ("0 0 * * 8", "day of week '8': 8 is outside 0-7"),
        ("x * * * *", "minute 'x': 'x' is not a number"),
        ("0 0 L * *", "day of month 'L': 'l' is not a number"),
        (
            "0 0 * foo *",
            "month 'foo': unknown name 'foo' (use jan, feb, mar, apr, may, jun, jul, aug, sep, oct, nov, dec)",
        ),
        ("0 0 * * funday", "day of week 'funday': unknown name 'funday' (use sun, mon, tue, wed, thu, fri, sat)"),
        ("0 0 * *", "a crontab line has 5 fields (minute hour day-of-month month day-of-week), got 4"),
        (
            "0 0 * * * *",
            "a crontab line has 5 fields (minute hour day-of-month month day-of-week), got 6; "
            "for seconds or years use cron fields instead of `crontab`",
        ),
        (
            "@never",
            "unknown crontab macro '@never' (use one of @yearly, @annually, @monthly, @weekly, @daily, "
            "@midnight, @hourly)",
        ),
    ],
)
def test_bad_lines_say_which_field_and_why(line: str, message: str) -> None:
    with pytest.raises(CrontabError) as caught:
        crontab_to_cron_fields(line)
    assert str(caught.value) == message


@pytest.mark.parametrize(
    ("text", "days"),
    [
        ("1-5", [0, 1, 2, 3, 4]),
        ("0", [6]),
        ("7", [6]),
        ("sun", [6]),
        ("SAT", [5]),
        ("5-1", [0, 4, 5, 6]),
        ("fri-mon", [0, 4, 5, 6]),
        ("*", [0, 1, 2, 3, 4, 5, 6]),
        ("*/2", [1, 3, 5, 6]),
        ("mon,wed", [0, 2]),
        ("1-7/3", [0, 3, 6]),
    ],
)
def test_crontab_weekdays_in_apscheduler_numbering(text: str, days: list[int]) -> None:
    assert sorted(crontab_weekdays(text)) == days


@pytest.mark.parametrize(
    ("values", "low", "high", "text"),
    [
        (set(range(60)), 0, 59, "*"),
        ({0, 30}, 0, 59, "*/30"),
        ({0, 2, 4}, 0, 59, "0-4/2"),
        ({5, 20, 35, 50}, 0, 59, "5-50/15"),
        ({1, 2}, 0, 59, "1-2"),
        ({1, 3}, 0, 59, "1,3"),
        ({1}, 0, 59, "1"),
        ({1, 2, 3, 7}, 0, 59, "1-3,7"),
        ({2, 4, 6, 8}, 0, 23, "2-8/2"),
        ({1, 2, 3, 5, 7, 9}, 1, 31, "1-3,5-9/2"),
        (set(range(1, 32)), 1, 31, "*"),
        ({1, 11, 21, 31}, 1, 31, "*/10"),
        ({0, 59}, 0, 59, "*/59"),
    ],
)
def test_format_values_writes_one_text_per_set(values: set[int], low: int, high: int, text: str) -> None:
    assert format_values(values, low, high) == text
    assert format_values(sorted(values, reverse=True), low, high) == text


def test_format_values_refuses_an_empty_set() -> None:
    with pytest.raises(ValueError, match="empty value set"):
        format_values(set(), 0, 59)


@pytest.mark.parametrize(
    ("days", "names", "phrase"),
    [
        ({0, 1, 2, 3, 4}, "mon-fri", "Monday–Friday"),
        ({0, 2, 6}, "mon,wed,sun", "Monday, Wednesday and Sunday"),
        (set(range(7)), "*", "every day"),
        ({0, 1}, "mon-tue", "Monday and Tuesday"),
        ({3}, "thu", "Thursday"),
        ({5, 6}, "sat-sun", "Saturday and Sunday"),
        ({0, 1, 2, 4, 5, 6}, "mon-wed,fri-sun", "Monday–Wednesday and Friday–Sunday"),
        ({0, 1, 2, 3}, "mon-thu", "Monday–Thursday"),
        ({1, 3, 4, 5}, "tue,thu-sat", "Tuesday and Thursday–Saturday"),
    ],
)
def test_weekdays_as_names_and_words(days: set[int], names: str, phrase: str) -> None:
    assert format_weekdays(days) == names
    assert weekday_phrase(days) == phrase


@pytest.mark.parametrize(
    ("line", "fields"),
    [
        ("0 */2 * * *", [{"minute": "0", "hour": "*/2"}]),
        ("0 0 1 */3 *", [{**M0, "day": "1", "month": "*/3"}]),
        ("0,10,15 * * * *", [{"minute": "0,10,15"}]),
        ("0 0 * * 5-1/2", [{**M0, "day_of_week": "fri,sun"}]),  # a wrapped range with a step
    ],
)
def test_steps_from_the_start_of_a_field(line: str, fields: list[dict[str, str]]) -> None:
    assert crontab_to_cron_fields(line) == fields


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("7-2 * * * *", "minute '7-2': range 7-2 is reversed"),  # only day of week treats 7 as Sunday
        ("1-x * * * *", "minute '1-x': 'x' is not a number"),
    ],
)
def test_more_bad_fields(line: str, message: str) -> None:
    with pytest.raises(CrontabError) as caught:
        crontab_to_cron_fields(line)
    assert str(caught.value) == message


def test_the_empty_set_message_is_exact() -> None:
    with pytest.raises(ValueError) as caught:
        format_values([], 0, 59)
    assert str(caught.value) == "empty value set"
