"""Japanese era dates (和暦), as notices and certificates print them: 令和7年6月1日.

The first year of an era is 元年. Eras start on the day the law names (平成 on 1989-01-08,
令和 on 2019-05-01); a date before 明治 6 (the solar calendar) is refused.
"""

from __future__ import annotations

from datetime import date

ERAS: tuple[tuple[date, str], ...] = (
    (date(2019, 5, 1), "令和"),
    (date(1989, 1, 8), "平成"),
    (date(1926, 12, 25), "昭和"),
    (date(1912, 7, 30), "大正"),
    (date(1873, 1, 1), "明治"),  # 明治6年: the Gregorian calendar from 1 January 1873
)


def era_year(day: date) -> tuple[str, int]:
    for start, name in ERAS:
        if day >= start:
            return name, day.year - start.year + 1
    raise ValueError(f"{day} is before the solar calendar (明治6年)")


def wareki(day: date) -> str:
    """``令和7年6月1日``; the first year of an era is ``元年``."""
    name, year = era_year(day)
    if name == "明治":
        year = day.year - 1867
    return f"{name}{'元' if year == 1 else year}年{day.month}月{day.day}日"
