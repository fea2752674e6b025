"""Japanese legal date arithmetic for the routine schedule (ages, intervals, fiscal years).

An age is attained on the day before the birthday (年齢計算ニ関スル法律, 民法第143条); an
upper age bound includes the day it is attained (厚生労働省事務連絡 平成26年3月11日);
intervals follow 「定期の予防接種における接種間隔の解釈について」. See docs/schedule.md.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache

# ---------------------------------------------------------------------------------------------
# Japanese legal date arithmetic


@dataclass(frozen=True)
class Period:
    """An age or interval as the law writes it: years, months, weeks, days, and 月半."""

    years: int = 0
    months: int = 0
    weeks: int = 0
    days: int = 0
    half_month: bool = False

    _FORM = re.compile(r"^(?:(\d+)y)?(?:(\d+)m)?(?:(\d+)w)?(?:(\d+)d)?(\+half)?$")

    @classmethod
    def parse(cls, text: str) -> Period:
        match = cls._FORM.match(text)
        if not text or match is None:
            raise ValueError(f"not a period: {text!r}")
        y, m, w, d, half = match.groups()
        return cls(int(y or 0), int(m or 0), int(w or 0), int(d or 0), half is not None)

    @property
    def calendar_months(self) -> int:
        return self.years * 12 + self.months

    def __str__(self) -> str:
        units = ((self.years, "y"), (self.months, "m"), (self.weeks, "w"), (self.days, "d"))
        parts = [f"{n}{unit}" for n, unit in units if n]
        return "".join(parts) + ("+half" if self.half_month else "") or "0d"


def _days_in_month(year: int, month: int) -> int:
    # what calendar.monthrange gives, without the weekday it also works out (called for
    # every age of every person)
    return 29 if month == 2 and calendar.isleap(year) else calendar.mdays[month]


def _shift_months(day: date, months: int) -> tuple[int, int, bool]:
    """Year and month ``months`` after ``day``'s month, and whether ``day.day`` exists there."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    return year, month + 1, day.day <= _days_in_month(year, month + 1)


@lru_cache(maxsize=1 << 16)  # a person's ages are asked for again and again, by every series
def attained_on(birth: date, age: Period) -> date:
    """The day an age is attained (…に達する日 / …に至った日).

    Years and months: the day before the corresponding day, or the month's last day when
    that day does not exist (born 31 July → 生後2月 on 30 September; born 29 February → an
    age in years on 28 February). Weeks and days count from birth as 出生0週0日 (rotavirus).
    """
    if age.half_month:
        raise ValueError("月半 is an interval, not an age")
    if age.calendar_months:
        year, month, exists = _shift_months(birth, age.calendar_months)
        if exists:
            reached = date(year, month, birth.day) - timedelta(days=1)
        else:
            reached = date(year, month, _days_in_month(year, month))
        return reached + timedelta(days=7 * age.weeks + age.days)
    return birth + timedelta(days=7 * age.weeks + age.days)


def earliest_after(previous: date, interval: Period) -> date:
    """The first day a dose may follow ``previous`` at the given minimum interval.

    N日以上の間隔 → day N+1 after; N月以上 → the same day N months later, or the 1st of the next
    month when that day does not exist; 月半 adds 14/15/15/16 days by the length of the month
    reached after the whole months.
    """
    day = previous
    if interval.calendar_months:
        year, month, exists = _shift_months(previous, interval.calendar_months)
        if exists:
            day = date(year, month, previous.day)
        else:
            day = date(year, month, _days_in_month(year, month)) + timedelta(days=1)
    if interval.half_month:
        day = day + timedelta(days={28: 14, 29: 15, 30: 15, 31: 16}[_days_in_month(day.year, day.month)])
    total_days = 7 * interval.weeks + interval.days
    if total_days:
        day = day + timedelta(days=total_days + 1)
    return day


def fiscal_year(day: date) -> int:
    """The fiscal year (年度, April–March) containing ``day``, named by its starting year."""
    return day.year if day.month >= 4 else day.year - 1


def fiscal_year_start(year: int) -> date:
    return date(year, 4, 1)


def fiscal_year_end(year: int) -> date:
    return date(year + 1, 3, 31)


def fiscal_year_of_age(birth: date, years: int) -> int:
    """The fiscal year in which a person attains ``years`` (…歳となる日の属する年度)."""
    return fiscal_year(attained_on(birth, _age_in_years(years)))


@lru_cache(maxsize=256)
def _age_in_years(years: int) -> Period:
    return Period(years=years)


def school_start(birth: date) -> date:
    """The start of primary school: the first 1 April after the day following the 6th year
    is attained (学校教育法 第17条第1項). Born 1 April → starts a year before those born 2 April."""
    day_after = attained_on(birth, Period(years=6)) + timedelta(days=1)
    start = date(day_after.year, 4, 1)
    return start if start >= day_after else date(day_after.year + 1, 4, 1)
