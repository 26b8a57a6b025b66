"""reconciler.triggers: real APScheduler 3.11 triggers from specs, checks, fire times, canonical form.

Every expected fire time below is written out by hand from what the spec means; nothing is compared
with itself. `NOW` is Saturday 2026-11-28 07:00 UTC (08:00 in Amsterdam, CET).
"""

from __future__ import annotations

import json
import pickle
import time
from datetime import UTC, date, datetime, timedelta
from datetime import timezone as dt_timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml
from apscheduler.triggers.calendarinterval import CalendarIntervalTrigger
from apscheduler.triggers.combining import AndTrigger, OrTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from reconciler.problems import Severity
from reconciler.triggers import (
    TriggerError,
    build_trigger,
    canonical_form,
    describe,
    next_fire_times,
    spec_from_trigger,
    trigger_problems,
)

NOW = datetime(2026, 11, 28, 7, 0, tzinfo=UTC)
AMS = "Europe/Amsterdam"


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def fires(trigger: str, kwargs: dict[str, Any], tz: str = "UTC", count: int = 5, now: datetime = NOW) -> list[datetime]:
    built = build_trigger(trigger, kwargs, tz, now=now)
    return [moment.astimezone(UTC) for moment in next_fire_times(built, count, now)]


def problems(trigger: str, kwargs: dict[str, Any], tz: str = "UTC", now: datetime = NOW) -> list[tuple[Any, ...]]:
    return trigger_problems(trigger, kwargs, tz, now=now)


def only(found: list[tuple[Any, ...]], severity: Severity) -> list[tuple[Any, ...]]:
    return [item for item in found if item[0] is severity]


def build_error(trigger: str, kwargs: dict[str, Any], tz: str = "UTC") -> TriggerError:
    with pytest.raises(TriggerError) as caught:
        build_trigger(trigger, kwargs, tz, now=NOW)
    return caught.value


def sub(trigger: str, **kwargs: Any) -> dict[str, Any]:
    return {"trigger": trigger, "trigger_kwargs": kwargs}


# ------------------------------------------------------------------------------ fire times per trigger type


class TestCron:
    def test_crontab_weekdays_mean_monday_to_friday(self) -> None:
        assert fires("cron", {"crontab": "30 2 * * 1-5"}, count=6) == [
            utc(2026, 11, 30, 2, 30),  # Monday
            utc(2026, 12, 1, 2, 30),
            utc(2026, 12, 2, 2, 30),
            utc(2026, 12, 3, 2, 30),
            utc(2026, 12, 4, 2, 30),  # Friday
            utc(2026, 12, 7, 2, 30),  # Monday again: no Saturday/Sunday
        ]

    def test_apscheduler_from_crontab_would_mean_tuesday_to_saturday(self) -> None:
        # Why the translation exists: APScheduler's own from_crontab keeps 0 = Monday numbering.
        theirs = CronTrigger.from_crontab("30 2 * * 1-5", timezone=ZoneInfo("UTC"))
        assert theirs.get_next_fire_time(None, NOW) == utc(2026, 11, 28, 2, 30) + timedelta(days=3)  # Tuesday

    @pytest.mark.parametrize("dow", ["0", "7", "sun", "SUN"])
    def test_crontab_zero_and_seven_are_sunday(self, dow: str) -> None:
        assert fires("cron", {"crontab": f"0 6 * * {dow}"}, count=2) == [utc(2026, 11, 29, 6), utc(2026, 12, 6, 6)]

    def test_crontab_ranges_through_sunday(self) -> None:
        # 5-7 = Friday..Sunday; fri-mon wraps over Sunday; sat-sun is the weekend (sun = 0 < sat = 6).
        assert fires("cron", {"crontab": "0 6 * * 5-7"}, count=4) == [
            utc(2026, 11, 28, 6) + timedelta(days=d) for d in (1, 6, 7, 8)
        ]
        assert fires("cron", {"crontab": "0 6 * * fri-mon"}, count=5) == [
            utc(2026, 11, 29, 6),  # Sun
            utc(2026, 11, 30, 6),  # Mon
            utc(2026, 12, 4, 6),  # Fri
            utc(2026, 12, 5, 6),  # Sat
            utc(2026, 12, 6, 6),  # Sun
        ]
        assert fires("cron", {"crontab": "0 6 * * sat-sun"}, count=3) == [
            utc(2026, 11, 29, 6),
            utc(2026, 12, 5, 6),
            utc(2026, 12, 6, 6),
        ]

    def test_crontab_steps_and_names(self) -> None:
        assert fires("cron", {"crontab": "*/20 9 * * *"}, count=4) == [
            utc(2026, 11, 28, 9, 0),
            utc(2026, 11, 28, 9, 20),
            utc(2026, 11, 28, 9, 40),
            utc(2026, 11, 29, 9, 0),
        ]
        assert fires("cron", {"crontab": "0 0 1 jan,jul *"}, count=2) == [utc(2027, 1, 1), utc(2027, 7, 1)]
        assert fires("cron", {"crontab": "@weekly"}, count=1) == [utc(2026, 11, 29)]  # Sunday 00:00

    def test_crontab_day_of_month_or_day_of_week(self) -> None:
        # crontab(5): both restricted -> runs on the 1st AND on every Monday.
        built = build_trigger("cron", {"crontab": "0 0 1 * 1"}, "UTC", now=NOW)
        assert isinstance(built, OrTrigger)
        assert fires("cron", {"crontab": "0 0 1 * 1"}, count=4) == [
            utc(2026, 11, 30),  # Monday
            utc(2026, 12, 1),  # the 1st (a Tuesday)
            utc(2026, 12, 7),  # Monday
            utc(2026, 12, 14),  # Monday
        ]
        # A star-prefixed day of month ("*/2") makes crontab AND the two, as Vixie cron does.
        assert fires("cron", {"crontab": "0 0 */2 * 1"}, count=2) == [utc(2026, 12, 7), utc(2026, 12, 21)]

    def test_crontab_keeps_jitter_and_dates(self) -> None:
        built = build_trigger(
            "cron", {"crontab": "0 3 * * *", "jitter": 30, "end_date": "2026-12-01T00:00:00"}, "UTC", now=NOW
        )
        assert built.jitter == 30
        assert next_fire_times(built, 5, NOW) == [utc(2026, 11, 29, 3), utc(2026, 11, 30, 3)]  # end_date stops it

    def test_cron_fields(self) -> None:
        assert fires("cron", {"hour": 3}, count=2) == [utc(2026, 11, 29, 3), utc(2026, 11, 30, 3)]
        assert fires("cron", {"minute": "*/15", "hour": "9-10", "day_of_week": "mon-fri"}, count=9)[-2:] == [
            utc(2026, 11, 30, 10, 45),
            utc(2026, 12, 1, 9, 0),
        ]
        assert fires("cron", {"day": "last", "hour": 12}, count=2) == [utc(2026, 11, 30, 12), utc(2026, 12, 31, 12)]

    def test_cron_wall_time_in_the_zone(self) -> None:
        # 02:30 in Amsterdam is 01:30 UTC in winter.
        assert fires("cron", {"hour": 2, "minute": 30}, AMS, count=1) == [utc(2026, 11, 29, 1, 30)]

    def test_numeric_day_of_week_is_apscheduler_numbering(self) -> None:
        # Accepted (with a warning): 1-5 in APScheduler numbering is Tuesday..Saturday.
        assert [d.weekday() for d in fires("cron", {"day_of_week": "1-5", "hour": 9}, count=5)] == [5, 1, 2, 3, 4]


class TestOtherTypes:
    def test_interval_accepts_floats_and_starts_one_interval_after_now(self) -> None:
        assert fires("interval", {"minutes": 0.5}, count=3) == [
            utc(2026, 11, 28, 7, 0, 30),
            utc(2026, 11, 28, 7, 1, 0),
            utc(2026, 11, 28, 7, 1, 30),
        ]

    def test_interval_start_date_is_wall_time_in_the_zone(self) -> None:
        # 2026-11-27 09:00 Amsterdam = 08:00 UTC; every 12 hours from there.
        assert fires("interval", {"hours": 12, "start_date": "2026-11-27T09:00:00"}, AMS, count=2) == [
            utc(2026, 11, 28, 8),
            utc(2026, 11, 28, 20),
        ]

    def test_interval_end_date_stops_early(self) -> None:
        kwargs = {"hours": 1, "start_date": "2026-11-28T08:00:00Z", "end_date": "2026-11-28T10:00:00Z"}
        assert fires("interval", kwargs, count=10) == [
            utc(2026, 11, 28, 8),
            utc(2026, 11, 28, 9),
            utc(2026, 11, 28, 10),
        ]

    def test_date_fires_once(self) -> None:
        assert fires("date", {"run_date": "2031-01-15T03:00:00"}, AMS, count=5) == [utc(2031, 1, 15, 2)]

    @pytest.mark.parametrize(
        "run_date",
        [
            "2031-01-15T03:00:00+01:00",
            "2031-01-15 02:00:00Z",
            datetime(2031, 1, 15, 2, tzinfo=UTC),
            datetime(2031, 1, 15, 3),  # naive: wall time in the zone
        ],
    )
    def test_date_like_values(self, run_date: object) -> None:
        assert fires("date", {"run_date": run_date}, AMS) == [utc(2031, 1, 15, 2)]

    def test_date_object_means_midnight_in_the_zone(self) -> None:
        assert fires("date", {"run_date": date(2031, 1, 15)}, AMS) == [utc(2031, 1, 14, 23)]

    def test_calendarinterval(self) -> None:
        # Monthly on the 31st at 04:00 Amsterdam: months without a 31st are skipped.
        kwargs = {"months": 1, "hour": 4, "start_date": "2026-12-31"}
        assert fires("calendarinterval", kwargs, AMS, count=3) == [
            utc(2026, 12, 31, 3),
            utc(2027, 1, 31, 3),
            utc(2027, 3, 31, 2),  # February skipped; CEST by then
        ]

    def test_calendarinterval_past_start_date_steps_forward(self) -> None:
        kwargs = {"months": 1, "hour": 4, "start_date": "2026-01-31"}
        built = build_trigger("calendarinterval", kwargs, AMS, now=NOW)
        # APScheduler itself answers with the past start date, whatever `now` is ...
        assert built.get_next_fire_time(None, NOW).astimezone(UTC) == utc(2026, 1, 31, 3)
        # ... the chain is Jan 31, Mar 31, May 31, Jul 31, Aug 31, Oct 31, Dec 31, ...
        assert fires("calendarinterval", kwargs, AMS, count=3) == [
            utc(2026, 12, 31, 3),
            utc(2027, 1, 31, 3),
            utc(2027, 3, 31, 2),
        ]

    def test_calendarinterval_days_from_long_ago(self) -> None:
        kwargs = {"days": 3, "hour": 6, "start_date": "2000-01-01"}  # 2026-11-28 is day 9828 = 3 * 3276
        assert fires("calendarinterval", kwargs, count=2) == [utc(2026, 12, 1, 6), utc(2026, 12, 4, 6)]

    def test_calendarinterval_without_start_date_starts_today_in_the_zone(self) -> None:
        built = build_trigger("calendarinterval", {"days": 1, "hour": 9}, AMS, now=NOW)
        assert built.start_date == date(2026, 11, 28)
        assert fires("calendarinterval", {"days": 1, "hour": 9}, AMS, count=2) == [
            utc(2026, 11, 28, 8),
            utc(2026, 11, 29, 8),
        ]

    def test_or(self) -> None:
        kwargs = {"triggers": [sub("cron", hour=3), sub("cron", hour=15, minute=30)]}
        assert fires("or", kwargs, count=3) == [
            utc(2026, 11, 28, 15, 30),
            utc(2026, 11, 29, 3),
            utc(2026, 11, 29, 15, 30),
        ]

    def test_and_that_converges(self) -> None:
        # A cron day and a date: runs once, on the date, if the cron agrees; then the date is spent.
        kwargs = {"triggers": [sub("cron", hour=3), sub("date", run_date="2026-12-07T03:00:00")]}
        assert fires("and", kwargs, count=3) == [utc(2026, 12, 7, 3)]

    def test_nested_combinations(self) -> None:
        inner = {"triggers": [sub("cron", hour=3), sub("date", run_date="2026-12-07T03:00:00")]}
        kwargs = {"triggers": [{"trigger": "and", "trigger_kwargs": inner}, sub("cron", hour=12, day=1)]}
        # APScheduler 3.11's OrTrigger shares `prev`: once the cron has run on 12-01, the `and` (a date inside)
        # answers None, so its 12-07 run is dropped. That is what the scheduler does, and it is warned about.
        assert fires("or", kwargs, count=3) == [utc(2026, 12, 1, 12), utc(2027, 1, 1, 12), utc(2027, 2, 1, 12)]
        assert [(s, w) for s, w, _ in problems("or", kwargs)] == [(Severity.WARNING, ("triggers", 0))]
        earlier = {"triggers": [{"trigger": "and", "trigger_kwargs": inner}, sub("cron", hour=12, day=10)]}
        assert fires("or", earlier, count=2) == [utc(2026, 12, 7, 3), utc(2026, 12, 10, 12)]


# ----------------------------------------------------------------------------------------- real objects


class TestRealTriggers:
    def test_every_zone_is_an_explicit_zoneinfo(self) -> None:
        kwargs = {
            "triggers": [
                sub("cron", hour=3),
                sub("interval", hours=1),
                sub("calendarinterval", days=1),
                {
                    "trigger": "and",
                    "trigger_kwargs": {"triggers": [sub("cron", hour=1), sub("date", run_date="2031-01-01")]},
                },
            ]
        }
        built = build_trigger("or", kwargs, AMS, now=NOW)
        assert isinstance(built, OrTrigger)
        cron, interval, calendar, combined = built.triggers
        assert isinstance(cron, CronTrigger) and cron.timezone == ZoneInfo(AMS)
        assert isinstance(interval, IntervalTrigger) and interval.timezone == ZoneInfo(AMS)
        assert isinstance(calendar, CalendarIntervalTrigger) and calendar.timezone == ZoneInfo(AMS)
        assert isinstance(combined, AndTrigger)
        assert combined.triggers[0].timezone == ZoneInfo(AMS)
        assert combined.triggers[1].run_date.tzinfo == ZoneInfo(AMS)

    def test_utc_is_zoneinfo_not_datetime_timezone(self) -> None:
        built = build_trigger("cron", {"hour": 3}, "UTC", now=NOW)
        assert isinstance(built.timezone, ZoneInfo) and built.timezone.key == "UTC"
        dated = build_trigger("date", {"run_date": "2031-01-15T03:00:00Z"}, "UTC", now=NOW)
        assert isinstance(dated.run_date.tzinfo, ZoneInfo)

    def test_built_triggers_pickle(self) -> None:
        cases: list[tuple[str, dict[str, Any]]] = [
            ("cron", {"crontab": "0 0 1 * 1", "jitter": 5}),
            ("interval", {"minutes": 5}),
            ("calendarinterval", {"months": 1}),
            ("or", {"triggers": [sub("cron", hour=1), sub("cron", hour=2)]}),
        ]
        for name, kwargs in cases:
            built = build_trigger(name, kwargs, AMS, now=NOW)
            again = pickle.loads(pickle.dumps(built, protocol=5))
            assert canonical_form(again) == canonical_form(built)


# -------------------------------------------------------------------------------------------- bad specs


class TestBuildErrors:
    def test_unknown_time_zone(self) -> None:
        error = build_error("cron", {"hour": 3}, "Europe/Amsterdamm")
        assert error.where == ()
        assert "unknown time zone 'Europe/Amsterdamm'" in str(error)
        assert "Europe/Amsterdam?" in str(error)

    @pytest.mark.parametrize("zone", ["localtime", "", "Factory", "../etc/passwd"])
    def test_host_and_junk_zones_are_refused(self, zone: str) -> None:
        assert "unknown time zone" in str(build_error("interval", {"hours": 1}, zone))

    def test_timezone_in_kwargs(self) -> None:
        error = build_error("cron", {"hour": 3, "timezone": AMS})
        assert str(error) == "use the schedule's `timezone` field, not trigger_kwargs.timezone"
        assert error.where == ("timezone",)
        nested = build_error("or", {"triggers": [sub("cron", hour=1), sub("cron", hour=2, timezone="UTC")]})
        assert nested.where == ("triggers", 1, "trigger_kwargs", "timezone")

    @pytest.mark.parametrize(
        ("trigger", "kwargs", "where", "text"),
        [
            ("cron", {"hour": 25}, ("hour",), "maximum value (23)"),
            ("cron", {"minute": "61"}, ("minute",), "maximum value (59)"),
            ("cron", {"day_of_week": 7}, ("day_of_week",), "0 = Monday"),
            ("cron", {"hour": True}, ("hour",), "bool"),
            ("cron", {"hour": 3.5}, ("hour",), "float"),
            ("cron", {"hourz": 3}, ("hourz",), "did you mean 'hour'"),
            ("cron", {"month": "jan-mar/2"}, ("month",), "silently ignore '/2'"),
            ("cron", {"day_of_week": "mon-fri/2"}, ("day_of_week",), "silently ignore"),
            ("cron", {"crontab": "0 0 * *"}, ("crontab",), "5 fields"),
            ("cron", {"crontab": "0 0 * * * 2027"}, ("crontab",), "5 fields"),
            ("cron", {"crontab": "0 25 * * *"}, ("crontab",), "hour"),
            ("cron", {"crontab": "0 0 * * 1", "hour": 3}, ("crontab",), "cannot be combined"),
            ("cron", {"crontab": "0 0 5-1 * *"}, ("crontab",), "reversed"),
            ("cron", {"start_date": "tomorrow"}, ("start_date",), "ISO"),
            ("interval", {"hours": True}, ("hours",), "boolean"),
            ("interval", {"hours": "1"}, ("hours",), "number"),
            ("interval", {"hours": -1}, ("hours",), "negative"),
            ("interval", {"hours": float("inf")}, ("hours",), "finite"),
            ("interval", {}, (), "above zero"),
            ("interval", {"minutes": 5, "jitter": True}, ("jitter",), "boolean"),
            ("date", {}, ("run_date",), "needs `run_date`"),
            ("date", {"run_date": 1795890374}, ("run_date",), "ISO"),
            ("calendarinterval", {"hour": 4}, (), "years, months, weeks or days"),
            ("calendarinterval", {"days": 1, "hour": 24}, ("hour",), "0-23"),
            ("calendarinterval", {"months": 0.5}, ("months",), "whole number"),
            (
                "calendarinterval",
                {"days": 1, "start_date": "2027-01-02", "end_date": "2027-01-01"},
                ("end_date",),
                "earlier",
            ),
            ("calendarinterval", {"days": 1, "start_date": "2027-01-02T03:00:00"}, ("start_date",), "is a date"),
            ("and", {"triggers": [sub("cron", hour=1)]}, ("triggers",), "at least 2"),
            ("or", {"triggers": "cron"}, ("triggers",), "at least 2"),
            ("or", {"triggers": [sub("cron", hour=1), sub("weekly")]}, ("triggers", 1, "trigger"), "unknown trigger"),
            (
                "or",
                {"triggers": [sub("cron", hour=1), {"trigger": "cron", "kwargs": {}}]},
                ("triggers", 1, "kwargs"),
                "unknown key",
            ),
        ],
    )
    def test_where_the_error_is(self, trigger: str, kwargs: dict[str, Any], where: tuple[Any, ...], text: str) -> None:
        error = build_error(trigger, kwargs)
        assert error.where == where
        assert text in str(error)

    def test_unknown_trigger(self) -> None:
        assert "unknown trigger 'weekly'" in str(build_error("weekly", {}))

    def test_nested_where_paths(self) -> None:
        inner = {"triggers": [sub("cron", hour=1), sub("cron", minute="x")]}
        kwargs = {"triggers": [sub("interval", hours=1), {"trigger": "and", "trigger_kwargs": inner}]}
        error = build_error("or", kwargs)
        assert error.where == ("triggers", 1, "trigger_kwargs", "triggers", 1, "trigger_kwargs", "minute")
        assert "minute 'x'" in str(error)
        deep = build_error("or", {"triggers": [sub("interval", hours=1), sub("interval", hours=-2)]})
        assert deep.where == ("triggers", 1, "trigger_kwargs", "hours")

    def test_trigger_error_is_a_value_error(self) -> None:
        assert isinstance(build_error("cron", {"hour": 25}), ValueError)

    def test_problems_report_build_errors(self) -> None:
        assert problems("cron", {"hour": 25}) == [
            (Severity.ERROR, ("hour",), build_error("cron", {"hour": 25}).message)
        ]


# --------------------------------------------------------------------------------------------- problems


class TestProblems:
    def test_clean_specs_have_no_problems(self) -> None:
        assert problems("cron", {"hour": 4, "day_of_week": "mon-fri"}, AMS) == []
        assert problems("cron", {"crontab": "30 2 * * 1-5"}) == []
        assert problems("interval", {"hours": 1}, AMS) == []
        assert problems("date", {"run_date": "2031-01-15T03:00:00"}, AMS) == []
        assert problems("calendarinterval", {"months": 1, "hour": 4}, AMS) == []
        assert problems("or", {"triggers": [sub("cron", hour=3), sub("cron", hour=15)]}) == []

    def test_numeric_day_of_week_warning_names_the_days(self) -> None:
        [(severity, where, message)] = problems("cron", {"day_of_week": "1-5", "hour": 9})
        assert severity is Severity.WARNING
        assert where == ("day_of_week",)
        assert "APScheduler numbering (0 = Monday): Tuesday–Saturday" in message
        assert "mon-fri" in message and "tue-sat" in message

    def test_numeric_day_of_week_single_day_and_nested(self) -> None:
        [(_, where, message)] = problems("or", {"triggers": [sub("cron", hour=1), sub("cron", day_of_week=0)]})
        assert where == ("triggers", 1, "trigger_kwargs", "day_of_week")
        assert "Monday" in message and "(0 = Monday): Monday;" in message

    def test_named_day_of_week_is_not_warned(self) -> None:
        assert problems("cron", {"day_of_week": "tue-sat", "hour": 9}) == []

    def test_dst_gap_warning_says_what_apscheduler_does(self) -> None:
        found = problems("cron", {"hour": 2, "minute": 30}, AMS)
        gap = [m for _, _, m in found if "does not exist" in m]
        assert gap == [
            "02:30 does not exist on 2027-03-28 in Europe/Amsterdam (clocks jump 02:00→03:00): "
            "APScheduler fires it at 03:30 instead"
        ]
        assert all(severity is Severity.WARNING for severity, _, _ in found)
        # Check the claim against APScheduler itself: the 02:30 run of that day happens at 01:30 UTC = 03:30 CEST.
        real = CronTrigger(hour=2, minute=30, timezone=ZoneInfo(AMS))
        day_before = real.get_next_fire_time(None, utc(2027, 3, 27, 0))
        assert day_before.astimezone(UTC) == utc(2027, 3, 27, 1, 30)
        gap_run = real.get_next_fire_time(day_before, day_before)
        assert gap_run.astimezone(UTC) == utc(2027, 3, 28, 1, 30)
        # APScheduler returns the non-existent wall time itself (02:30+01:00); as an instant it is 03:30 CEST.
        assert (gap_run.hour, gap_run.minute, gap_run.utcoffset()) == (2, 30, timedelta(hours=1))
        assert gap_run.astimezone(UTC).astimezone(ZoneInfo(AMS)).strftime("%H:%M") == "03:30"

    def test_dst_gap_with_several_slots(self) -> None:
        found = problems("cron", {"hour": 2, "minute": "*/20"}, AMS)
        assert (
            "02:00, 02:20 and 02:40 do not exist on 2027-03-28 in Europe/Amsterdam (clocks jump 02:00→03:00): "
            "APScheduler fires 02:00 at 03:00 and skips 02:20 and 02:40"
        ) in [m for _, _, m in found]
        real = CronTrigger(hour=2, minute="*/20", timezone=ZoneInfo(AMS))
        runs, prev = [], None
        current = utc(2027, 3, 27, 23)
        for _ in range(2):
            prev = current = real.get_next_fire_time(prev, current)
            runs.append(prev.astimezone(UTC))
        assert runs == [utc(2027, 3, 28, 1, 0), utc(2027, 3, 29, 0, 0)]  # one run (03:00 CEST), then next day

    def test_dst_fold_warning(self) -> None:
        october = datetime(2026, 10, 1, tzinfo=UTC)
        found = problems("cron", {"hour": 2, "minute": 30}, AMS, now=october)
        assert [(s, w, m) for s, w, m in found if "twice" in m] == [
            (
                Severity.WARNING,
                ("hour",),
                "02:30 occurs twice on 2026-10-25 in Europe/Amsterdam (clocks go back 03:00→02:00): "
                "APScheduler fires it twice",
            )
        ]
        real = CronTrigger(hour=2, minute=30, timezone=ZoneInfo(AMS))
        first = real.get_next_fire_time(None, utc(2026, 10, 24, 12))
        second = real.get_next_fire_time(first, first)
        assert [first.astimezone(UTC), second.astimezone(UTC)] == [utc(2026, 10, 25, 0, 30), utc(2026, 10, 25, 1, 30)]

    def test_dst_warning_for_crontab_points_at_crontab(self) -> None:
        found = problems("cron", {"crontab": "30 2 * * 0"}, AMS)  # Sundays; both changes are on a Sunday
        assert [w for _, w, m in found if "2027-03-28" in m] == [("crontab",)]

    def test_no_dst_warning_where_nothing_happens(self) -> None:
        assert problems("cron", {"hour": 2, "minute": 30}, "UTC") == []
        assert problems("cron", {"hour": 2, "minute": 30}, "Asia/Tokyo") == []
        assert problems("cron", {"hour": 4, "minute": 30}, AMS) == []
        assert problems("cron", {"minute": "*/30"}, AMS) == []  # every hour: no surprise
        assert problems("cron", {"hour": 2, "day_of_week": "mon-sat"}, AMS) == []  # changes are on Sundays
        assert problems("cron", {"hour": 2, "end_date": "2027-01-01"}, AMS) == []

    def test_dst_in_other_zones(self) -> None:
        # New York springs forward 2027-03-14 02:00 -> 03:00.
        [(_, _, message)] = problems("cron", {"hour": 2, "minute": 15}, "America/New_York")
        assert message.startswith("02:15 does not exist on 2027-03-14 in America/New_York")

    def test_calendarinterval_dst_gap_skips_the_day(self) -> None:
        found = problems("calendarinterval", {"days": 1, "hour": 2, "minute": 30}, AMS)
        assert [m for _, _, m in found] == [
            "02:30 does not exist on 2027-03-28 in Europe/Amsterdam (clocks jump 02:00→03:00): "
            "APScheduler's calendarinterval skips that day's run"
        ]
        built = build_trigger("calendarinterval", {"days": 1, "hour": 2, "minute": 30}, AMS, now=NOW)
        real = built.get_next_fire_time(datetime(2027, 3, 27, 2, 30, tzinfo=ZoneInfo(AMS)), NOW)
        assert real.date() == date(2027, 3, 29)
        # Every other day from an odd start: 2027-03-28 is not a run day, so nothing to say.
        assert problems("calendarinterval", {"days": 2, "hour": 2, "minute": 30, "start_date": "2026-11-29"}, AMS) == []

    def test_date_in_a_gap_or_fold(self) -> None:
        [(severity, where, message)] = problems("date", {"run_date": "2027-03-28T02:30:00"}, AMS)
        assert (severity, where) == (Severity.WARNING, ("run_date",))
        assert "runs it at 03:30" in message
        october = datetime(2026, 10, 1, tzinfo=UTC)
        [(_, _, message)] = problems("date", {"run_date": "2026-10-25T02:30:00"}, AMS, now=october)
        assert "occurs twice on 2026-10-25" in message
        assert problems("date", {"run_date": "2026-10-25T02:30:00+01:00"}, AMS, now=october) == []

    def test_and_of_crons_is_rejected_fast(self) -> None:
        kwargs = {"triggers": [sub("cron", hour=3), sub("cron", day_of_week="mon")]}
        started = time.perf_counter()
        [(severity, where, message)] = problems("and", kwargs)
        assert time.perf_counter() - started < 1
        assert (severity, where) == (Severity.ERROR, ())
        assert "APScheduler 3.11's AndTrigger loops forever" in message
        assert "two or more cron triggers" in message
        assert "one cron trigger with the fields combined" in message

    def test_and_of_crons_is_rejected_even_when_it_would_converge(self) -> None:
        same = {"triggers": [sub("cron", hour=3), sub("cron", hour=3, minute=0)]}
        assert len(next_fire_times(build_trigger("and", same, "UTC"), 3, NOW)) == 3  # no hang for this one ...
        assert [(s, w) for s, w, _ in problems("and", same)] == [(Severity.ERROR, ())]  # ... still refused

    def test_and_that_never_converges(self) -> None:
        kwargs = {"triggers": [sub("cron", hour=3), sub("interval", hours=1)]}
        [(severity, _, message)] = problems("and", kwargs)
        assert severity is Severity.ERROR and "never agree" in message

    def test_and_with_calendarinterval(self) -> None:
        kwargs = {"triggers": [sub("cron", hour=3), sub("calendarinterval", days=1)]}
        [(severity, _, message)] = problems("and", kwargs)
        assert severity is Severity.ERROR and "calendarinterval" in message

    def test_nested_and_error_points_at_it(self) -> None:
        bad = {"triggers": [sub("cron", hour=3), sub("cron", day_of_week="mon")]}
        kwargs = {"triggers": [sub("cron", hour=1), {"trigger": "and", "trigger_kwargs": bad}]}
        assert [(s, w) for s, w, _ in problems("or", kwargs)] == [(Severity.ERROR, ("triggers", 1))]

    def test_or_over_date_and_interval_is_warned(self) -> None:
        kwargs = {"triggers": [sub("date", run_date="2031-01-01"), sub("interval", hours=2), sub("cron", hour=3)]}
        found = problems("or", kwargs)
        assert [(s, w) for s, w, _ in found] == [
            (Severity.WARNING, ("triggers", 0)),
            (Severity.WARNING, ("triggers", 1)),
        ]
        assert "date" in found[0][2] and "runs every 2 s only" in found[1][2]

    def test_or_defects_are_real(self) -> None:
        # The warnings describe APScheduler 3.11 itself: Or(date, date) runs once ...
        first, second = utc(2031, 1, 1), utc(2031, 2, 1)
        both = OrTrigger([DateTrigger(first, timezone=UTC), DateTrigger(second, timezone=UTC)])
        once = both.get_next_fire_time(None, NOW)
        assert (once, both.get_next_fire_time(once, once)) == (first, None)
        # ... and Or(every 2 s, every 3 s) runs every 2 s only.
        start = utc(2026, 11, 28, 7, 0, 0)
        pair = OrTrigger([IntervalTrigger(seconds=2, start_date=start), IntervalTrigger(seconds=3, start_date=start)])
        runs, prev = [], None
        for _ in range(5):
            prev = pair.get_next_fire_time(prev, prev or NOW)
            runs.append(int((prev - start).total_seconds()))
        assert runs == [0, 2, 4, 6, 8]

    def test_past_dates(self) -> None:
        [(severity, where, message)] = problems("date", {"run_date": "2026-11-28T06:59:00Z"})
        assert (severity, where) == (Severity.ERROR, ("run_date",)) and "in the past" in message
        [(severity, where, _)] = problems("interval", {"hours": 1, "end_date": "2026-11-01"})
        assert (severity, where) == (Severity.ERROR, ("end_date",))
        [(severity, where, message)] = problems(
            "cron", {"hour": 1, "start_date": "2027-02-01", "end_date": "2027-01-01"}
        )
        assert (severity, where) == (Severity.ERROR, ("end_date",)) and "before start_date" in message
        [(severity, where, _)] = problems(
            "calendarinterval", {"days": 1, "start_date": "2026-01-01", "end_date": "2026-02-01"}
        )[:1]
        assert (severity, where) == (Severity.ERROR, ("end_date",))

    def test_calendarinterval_past_start_is_warned(self) -> None:
        [(severity, where, message)] = problems(
            "calendarinterval", {"months": 1, "hour": 4, "start_date": "2026-01-31"}, AMS
        )
        assert (severity, where) == (Severity.WARNING, ("start_date",))
        assert "next: 2026-12-31 04:00 Europe/Amsterdam" in message

    def test_cron_that_never_runs(self) -> None:
        [(severity, _, message)] = problems("cron", {"month": "feb", "day": 30})
        assert severity is Severity.ERROR and "never" in message
        [(severity, _, _)] = problems("cron", {"year": 2020})
        assert severity is Severity.ERROR
        assert problems("cron", {"month": "feb,mar", "day": 30}) == []

    def test_cron_without_fields_runs_every_second(self) -> None:
        [(severity, where, message)] = problems("cron", {})
        assert (severity, where) == (Severity.WARNING, ()) and "every second" in message
        assert fires("cron", {}, count=2) == [NOW, NOW + timedelta(seconds=1)]


# ----------------------------------------------------------------------------------------- fire-time bounds


class TestNextFireTimes:
    def test_and_of_crons_raises_instead_of_hanging(self) -> None:
        built = build_trigger("and", {"triggers": [sub("cron", hour=3), sub("cron", day_of_week="mon")]}, "UTC")
        started = time.perf_counter()
        with pytest.raises(TriggerError, match="never converges"):
            next_fire_times(built, 3, NOW)
        assert time.perf_counter() - started < 1

    def test_and_that_moves_but_never_meets_is_bounded(self) -> None:
        built = build_trigger("and", {"triggers": [sub("cron", hour=3), sub("cron", hour=4)]}, "UTC")
        started = time.perf_counter()
        with pytest.raises(TriggerError, match="never converges"):
            next_fire_times(built, 1, NOW)
        assert time.perf_counter() - started < 2

    def test_first_run_of_an_and_of_crons_is_what_apscheduler_computes(self) -> None:
        kwargs = {"triggers": [sub("cron", hour=3), sub("cron", day_of_week="mon", hour="*")]}
        built = build_trigger("and", kwargs, "UTC")
        assert built.get_next_fire_time(None, NOW) == utc(2026, 11, 30, 3)  # 3.11's AndTrigger, prev=None
        assert next_fire_times(built, 1, NOW) == [utc(2026, 11, 30, 3)]

    def test_previous_continues_the_chain(self) -> None:
        built = build_trigger("interval", {"minutes": 10, "start_date": "2026-11-28T06:55:00Z"}, "UTC")
        assert next_fire_times(built, 2, NOW, previous=utc(2026, 11, 28, 6, 58)) == [
            utc(2026, 11, 28, 7, 8),
            utc(2026, 11, 28, 7, 18),
        ]
        assert next_fire_times(built, 1, NOW) == [utc(2026, 11, 28, 7, 5)]

    def test_previous_in_the_future_gives_the_runs_after_it(self) -> None:
        cron = build_trigger("cron", {"hour": 3}, "UTC")
        assert next_fire_times(cron, 2, NOW, previous=utc(2026, 11, 29, 3)) == [
            utc(2026, 11, 30, 3),
            utc(2026, 12, 1, 3),
        ]
        # (APScheduler's own CronTrigger, asked with now < previous, answers `previous` again.)
        assert cron.get_next_fire_time(utc(2026, 11, 29, 3), NOW) == utc(2026, 11, 29, 3)

    def test_previous_long_ago_keeps_the_interval_phase(self) -> None:
        # Chained from a previous run at :58, not from start_date's :55 phase.
        built = build_trigger("interval", {"minutes": 10, "start_date": "2026-11-28T06:55:00Z"}, "UTC")
        assert next_fire_times(built, 1, NOW, previous=utc(2026, 11, 1, 6, 58)) == [utc(2026, 11, 28, 7, 8)]

    def test_calendarinterval_from_long_ago_steps_forward(self) -> None:
        built = build_trigger("calendarinterval", {"days": 1, "hour": 6, "start_date": "1971-01-01"}, "UTC")
        started = time.perf_counter()
        assert next_fire_times(built, 2, NOW) == [utc(2026, 11, 29, 6), utc(2026, 11, 30, 6)]
        assert time.perf_counter() - started < 1

    def test_previous_long_ago_does_not_hang(self) -> None:
        built = build_trigger("interval", {"seconds": 1, "start_date": "2000-01-01"}, "UTC")
        started = time.perf_counter()
        assert next_fire_times(built, 1, NOW, previous=utc(2000, 1, 1)) == [NOW]
        cron = build_trigger("cron", {"hour": 3}, "UTC")
        assert next_fire_times(cron, 1, NOW, previous=utc(1990, 1, 1, 3)) == [utc(2026, 11, 29, 3)]
        assert time.perf_counter() - started < 1

    def test_exhausted_triggers_stop(self) -> None:
        assert next_fire_times(build_trigger("date", {"run_date": "2031-01-01"}, "UTC"), 3, NOW) == [utc(2031, 1, 1)]
        assert next_fire_times(build_trigger("date", {"run_date": "2020-01-01"}, "UTC"), 3, NOW) == []
        assert (
            next_fire_times(build_trigger("date", {"run_date": "2031-01-01"}, "UTC"), 3, NOW, previous=utc(2031, 1, 1))
            == []
        )

    def test_jitter_is_left_out(self) -> None:
        built = build_trigger("cron", {"hour": 3, "jitter": 600}, "UTC")
        assert next_fire_times(built, 2, NOW) == [utc(2026, 11, 29, 3), utc(2026, 11, 30, 3)]
        assert built.jitter == 600  # the trigger itself is untouched


# ------------------------------------------------------------------------------------------ canonical form


def canon(trigger: str, kwargs: dict[str, Any], tz: str = "UTC", *, phase: bool = True) -> dict[str, Any]:
    return canonical_form(build_trigger(trigger, kwargs, tz, now=NOW), phase=phase)


START = {"start_date": "2026-01-01T00:00:00Z"}


class TestCanonicalForm:
    @pytest.mark.parametrize(
        ("a", "b"),
        [
            (("cron", {"hour": 3}), ("cron", {"hour": 3, "minute": 0})),
            (("cron", {"hour": 3}), ("cron", {"hour": "3", "minute": "0", "second": 0})),
            (("cron", {"hour": 3}, "UTC"), ("cron", {"hour": 3}, "Etc/UTC")),
            (("cron", {"hour": 3}, "UTC"), ("cron", {"hour": 3}, "Zulu")),
            (("interval", {"days": 1, **START}), ("interval", {"hours": 24, **START})),
            (("interval", {"weeks": 1, **START}), ("interval", {"days": 7, **START})),
            (("interval", {"minutes": 0.5, **START}), ("interval", {"seconds": 30, **START})),
            (("cron", {"minute": "*/1"}), ("cron", {"minute": "*"})),
            (("cron", {"minute": "0-59"}), ("cron", {"minute": "*"})),
            (("cron", {"day": "1-31", "hour": 1}), ("cron", {"hour": 1})),
            (("cron", {"minute": "*/15"}), ("cron", {"minute": "0,15,30,45"})),
            (("cron", {"day_of_week": "mon", "hour": 1}), ("cron", {"day_of_week": 0, "hour": 1})),
            (("cron", {"day_of_week": "mon-fri", "hour": 1}), ("cron", {"day_of_week": "0-4", "hour": 1})),
            (("cron", {"month": "jan", "hour": 1}), ("cron", {"month": 1, "hour": 1})),
            (("cron", {"month": "jan-mar", "hour": 1}), ("cron", {"month": "1,2,3", "hour": 1})),
            (("cron", {"hour": 1, "jitter": 0}), ("cron", {"hour": 1})),
            (("cron", {"crontab": "30 2 * * 1-5"}), ("cron", {"minute": 30, "hour": 2, "day_of_week": "mon-fri"})),
            (("cron", {"crontab": "0 0 * * 0"}), ("cron", {"crontab": "0 0 * * 7"})),
            (("date", {"run_date": "2031-01-15T04:00:00+01:00"}), ("date", {"run_date": "2031-01-15T03:00:00Z"})),
            (("date", {"run_date": "2031-01-15T04:00:00"}, AMS), ("date", {"run_date": "2031-01-15T03:00:00"}, "UTC")),
            (("interval", {"hours": 1, **START}, AMS), ("interval", {"hours": 1, **START}, "UTC")),
            (
                ("calendarinterval", {"years": 1, "start_date": "2027-01-01"}),
                ("calendarinterval", {"months": 12, "start_date": "2027-01-01"}),
            ),
            (
                ("calendarinterval", {"weeks": 1, "start_date": "2027-01-01"}),
                ("calendarinterval", {"days": 7, "start_date": "2027-01-01"}),
            ),
            (
                ("or", {"triggers": [sub("cron", hour=1), sub("cron", hour=2)]}),
                ("or", {"triggers": [sub("cron", hour=2), sub("cron", hour=1, minute=0)]}),
            ),
        ],
    )
    def test_equivalent(self, a: tuple[Any, ...], b: tuple[Any, ...]) -> None:
        assert canon(*a) == canon(*b)

    @pytest.mark.parametrize(
        ("a", "b"),
        [
            (("cron", {"hour": 3}), ("cron", {"hour": 4})),
            (("cron", {"hour": 3}), ("cron", {"hour": 3, "minute": 1})),
            (("cron", {"hour": 3}, "UTC"), ("cron", {"hour": 3}, AMS)),
            (("cron", {"hour": 3}), ("cron", {"hour": 3, "jitter": 5})),
            (("cron", {"day_of_week": "mon", "hour": 1}), ("cron", {"day_of_week": 1, "hour": 1})),
            (("cron", {"day": "last"}), ("cron", {"day": 31})),
            (("cron", {"crontab": "0 0 1 * 1"}), ("cron", {"day": 1, "day_of_week": "mon", "hour": 0})),
            (("cron", {"hour": 1}), ("cron", {"hour": 1, "end_date": "2030-01-01"})),
            (("interval", {"hours": 1, **START}), ("interval", {"hours": 2, **START})),
            (("interval", {"hours": 1, **START}), ("interval", {"hours": 1, "start_date": "2026-01-01T00:30:00Z"})),
            (("date", {"run_date": "2031-01-15T03:00:00"}, AMS), ("date", {"run_date": "2031-01-15T03:00:00"}, "UTC")),
            (("calendarinterval", {"months": 1}), ("calendarinterval", {"months": 2})),
            (("calendarinterval", {"months": 1}, "UTC"), ("calendarinterval", {"months": 1}, AMS)),
            (
                ("or", {"triggers": [sub("cron", hour=1), sub("cron", hour=2)]}),
                ("and", {"triggers": [sub("cron", hour=1), sub("cron", hour=2)]}),
            ),
        ],
    )
    def test_different(self, a: tuple[Any, ...], b: tuple[Any, ...]) -> None:
        assert canon(*a) != canon(*b)

    def test_phase_false_ignores_start_dates(self) -> None:
        early = {"hours": 1, "start_date": "2026-01-01T00:00:00Z"}
        late = {"hours": 1, "start_date": "2026-01-01T00:30:00Z"}
        assert canon("interval", early, phase=False) == canon("interval", late, phase=False)
        assert canon("interval", early, phase=False) != canon("interval", {"hours": 2}, phase=False)
        nested_a = {"triggers": [sub("interval", **early), sub("calendarinterval", days=1, start_date="2027-01-01")]}
        nested_b = {"triggers": [sub("interval", **late), sub("calendarinterval", days=1, start_date="2027-01-02")]}
        assert canon("or", nested_a, phase=False) == canon("or", nested_b, phase=False)
        assert canon("or", nested_a) != canon("or", nested_b)

    def test_live_orchestrator_trigger_matches_spec(self) -> None:
        # What orchestrator-core writes: zone ZoneInfo('Etc/UTC'), numeric weekday strings.
        live = CronTrigger(hour="1", minute="30", day_of_week="0-4", timezone=ZoneInfo("Etc/UTC"))
        assert canonical_form(live) == canon("cron", {"hour": 1, "minute": 30, "day_of_week": "mon-fri"})
        utc_alias = CronTrigger(hour=1, timezone=UTC)
        assert canonical_form(utc_alias) == canon("cron", {"hour": 1})

    def test_json_and_readable(self) -> None:
        form = canon("cron", {"minute": "*/15", "hour": "9-17", "day_of_week": "0-4"}, AMS)
        assert json.loads(json.dumps(form)) == form
        assert (form["minute"], form["hour"], form["day_of_week"], form["timezone"]) == (
            "*/15",
            "9-17",
            "mon-fri",
            "Europe/Amsterdam",
        )
        assert canon("date", {"run_date": "2031-01-15T04:00:00"}, AMS)["run_date"] == "2031-01-15T03:00:00+00:00"


# ------------------------------------------------------------------------------------------------- words


class TestDescribe:
    @pytest.mark.parametrize(
        ("trigger", "kwargs", "tz", "words"),
        [
            ("interval", {"hours": 1}, "UTC", "every 1 hour"),
            ("interval", {"seconds": 30}, "UTC", "every 30 seconds"),
            ("interval", {"minutes": 90}, "UTC", "every 90 minutes"),
            ("interval", {"days": 14}, "UTC", "every 2 weeks"),
            ("cron", {"hour": 2, "minute": 30}, AMS, "at 02:30 every day (Europe/Amsterdam)"),
            ("cron", {"hour": 9, "day_of_week": "mon-fri"}, "UTC", "at 09:00 Monday–Friday (UTC)"),
            ("cron", {"crontab": "0 9 * * 1-5"}, "Etc/UTC", "at 09:00 Monday–Friday (UTC)"),
            ("cron", {"minute": "*/15"}, "UTC", "every 15 minutes (UTC)"),
            ("cron", {"day": 1, "hour": 4}, "UTC", "at 04:00 on day 1 of every month (UTC)"),
            ("date", {"run_date": "2031-01-15T03:00:00Z"}, "UTC", "once at 2031-01-15 03:00 UTC"),
            ("calendarinterval", {"months": 1, "hour": 4}, AMS, "every 1 month at 04:00 (Europe/Amsterdam)"),
        ],
    )
    def test_words(self, trigger: str, kwargs: dict[str, Any], tz: str, words: str) -> None:
        assert describe(build_trigger(trigger, kwargs, tz, now=NOW)) == words

    def test_fallback_is_str(self) -> None:
        built = build_trigger("cron", {"hour": "9-17", "minute": "*/15", "month": "jan"}, "UTC", now=NOW)
        assert describe(built) == f"{built} (UTC)"
        combined = build_trigger("and", {"triggers": [sub("cron", hour=3), sub("date", run_date="2031-01-01")]}, "UTC")
        assert describe(combined) == str(combined)


# -------------------------------------------------------------------------------------------- round trips


ROUND_TRIPS = [
    ("interval", {"minutes": 0.5}, "UTC"),
    ("interval", {"hours": 12, "start_date": "2026-11-28T18:26:14.892816+00:00", "jitter": 5}, "Etc/UTC"),
    ("cron", {"hour": 1, "minute": 30}, AMS),
    ("cron", {"crontab": "30 2 * * 1-5"}, AMS),
    ("cron", {"crontab": "0 0 1 * 1"}, "UTC"),
    ("cron", {"day": "last", "month": "jan-mar", "day_of_week": 4, "end_date": "2031-01-01"}, "America/New_York"),
    ("date", {"run_date": "2031-01-15T03:00:00"}, AMS),
    ("calendarinterval", {"months": 1, "hour": 4, "minute": 15, "start_date": "2026-01-31"}, AMS),
    ("and", {"triggers": [sub("cron", hour=3), sub("date", run_date="2031-01-01")]}, AMS),
    ("or", {"triggers": [sub("cron", hour=3), sub("interval", hours=2)], "jitter": 10}, AMS),
]


class TestSpecFromTrigger:
    @pytest.mark.parametrize("spec", ROUND_TRIPS, ids=lambda spec: spec[0])
    def test_round_trip(self, spec: tuple[str, dict[str, Any], str]) -> None:
        built = build_trigger(*spec, now=NOW)
        name, kwargs, zone = spec_from_trigger(built)
        assert name == ("or" if spec[1].get("crontab") == "0 0 1 * 1" else spec[0])  # crontab's day OR weekday
        assert canonical_form(build_trigger(name, kwargs, zone)) == canonical_form(built)
        assert yaml.safe_load(yaml.safe_dump(kwargs)) == kwargs  # plain YAML values only

    def test_interval_keeps_its_phase(self) -> None:
        live = IntervalTrigger(
            hours=12, start_date=datetime(2026, 11, 28, 18, 26, 14, 892816, tzinfo=UTC), timezone=ZoneInfo("Etc/UTC")
        )
        assert spec_from_trigger(live) == (
            "interval",
            {"hours": 12, "start_date": "2026-11-28T18:26:14.892816+00:00"},
            "UTC",
        )

    def test_cron_uses_names_and_only_given_fields(self) -> None:
        live = CronTrigger(day_of_week="0-4", hour="1", minute="30", timezone=ZoneInfo("Etc/UTC"))
        assert spec_from_trigger(live) == ("cron", {"day_of_week": "mon-fri", "hour": 1, "minute": 30}, "UTC")

    def test_date_with_utc_alias(self) -> None:
        live = DateTrigger(run_date=datetime(2030, 1, 1, 10), timezone="UTC")  # datetime.timezone.utc inside
        assert spec_from_trigger(live) == ("date", {"run_date": "2030-01-01T10:00:00+00:00"}, "UTC")

    def test_zone_names(self) -> None:
        assert spec_from_trigger(CronTrigger(hour=1, timezone=ZoneInfo("Europe/Amsterdam")))[2] == AMS
        fixed = CronTrigger(hour=1, timezone=dt_timezone(timedelta(hours=2)))
        name, kwargs, zone = spec_from_trigger(fixed)
        assert zone == "Etc/GMT-2"
        assert canonical_form(build_trigger(name, kwargs, zone)) == canonical_form(fixed)


def test_the_trigger_names_built_are_the_ones_the_file_format_accepts() -> None:
    """building keeps its own table (so judging triggers loads no pydantic model); it must name the same ones."""
    from reconciler.spec import TRIGGER_NAMES
    from reconciler.triggers.building import _ALLOWED

    assert tuple(_ALLOWED) == TRIGGER_NAMES
    with pytest.raises(TriggerError, match="use one of interval, cron, date, calendarinterval, and, or"):
        build_trigger("weekly", {}, "UTC")
