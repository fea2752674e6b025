"""The register's calendar: dates are Japanese dates (JST), moments are stored in UTC."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

JST = timezone(timedelta(hours=9), "JST")


def today_in_japan() -> date:
    return datetime.now(JST).date()
