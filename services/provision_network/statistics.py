"""Business statistics from the provision records themselves: counts per day, item and
outcome, never a person (M35). Days are UTC days, as the records' times are."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from sqlalchemy import Engine, String, func, select

from shared.contracts.network import DailyFigure
from shared.ledger.models import provision_records


def figures(engine: Engine, tenant: str, days: int, now: datetime | None = None) -> list[DailyFigure]:
    """``<kind>.<outcome>`` counts of the last ``days`` days, per day and item."""
    now = now or datetime.now(UTC)
    since = datetime.combine(now.date() - timedelta(days=days - 1), datetime.min.time(), tzinfo=UTC)
    day = func.substr(provision_records.c.requested_at, 1, 10, type_=String)
    query = (
        select(day, provision_records.c.item_code, provision_records.c.kind, provision_records.c.outcome, func.count())
        .where(provision_records.c.tenant == tenant, provision_records.c.requested_at >= since, provision_records.c.kind.is_not(None))
        .group_by(day, provision_records.c.item_code, provision_records.c.kind, provision_records.c.outcome)
        .order_by(day, provision_records.c.item_code)
    )
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    return [
        DailyFigure(day=date.fromisoformat(d), item_code=item, figure=f"{kind}.{outcome}", count=count)
        for d, item, kind, outcome, count in rows
    ]
