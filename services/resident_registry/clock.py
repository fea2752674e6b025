"""The register's calendar: dates are Japanese dates (JST), moments are stored in UTC."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

JST = timezone(timedelta(hours=9), "JST")


def today_in_japan() -> date:
    return datetime.now(JST).date()


def as_utc(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes; the register stored them in UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
