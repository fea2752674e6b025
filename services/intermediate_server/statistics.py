"""System management (function 10): batch status and business statistics, never a person (M35).

Figures are counts per UTC day and item: ``<kind>.<outcome>`` straight from the provision
records (queries sent or refused, answers received, provisions made, held, released or
refused), ``deleted.<reason>`` from the retention sweep's own log; and the length of the
review queue.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from sqlalchemy import String, func, select

from services.intermediate_server import delivery, providing, symbols
from services.intermediate_server.models import ResultDeletion
from services.intermediate_server.runtime import Runtime
from shared.contracts.network import BatchStatus, DailyFigure, SystemStatus
from shared.ledger.models import provision_records
from shared.models import as_utc


def record_figures(engine, tenant: str, since: datetime) -> list[DailyFigure]:
    day = func.substr(provision_records.c.requested_at, 1, 10, type_=String)
    query = (
        select(day, provision_records.c.item_code, provision_records.c.kind, provision_records.c.outcome, func.count())
        .where(provision_records.c.tenant == tenant, provision_records.c.requested_at >= since, provision_records.c.kind.is_not(None))
        .group_by(day, provision_records.c.item_code, provision_records.c.kind, provision_records.c.outcome)
        .order_by(day, provision_records.c.item_code)
    )
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    return [DailyFigure(day=date.fromisoformat(d), item_code=item, figure=f"{kind}.{outcome}", count=n) for d, item, kind, outcome, n in rows]


def deletion_figures(session, tenant: str, since: datetime) -> list[DailyFigure]:
    rows = session.execute(
        select(ResultDeletion.deleted_at, ResultDeletion.reason).where(ResultDeletion.tenant == tenant, ResultDeletion.deleted_at >= since)
    ).all()
    counts: dict[tuple[date, str], int] = {}
    for deleted_at, reason in rows:
        key = (as_utc(deleted_at).astimezone(UTC).date(), reason)
        counts[key] = counts.get(key, 0) + 1
    return [DailyFigure(day=d, item_code=None, figure=f"deleted.{reason}", count=n) for (d, reason), n in sorted(counts.items())]


def system_status(rt: Runtime, days: int, now: datetime | None = None) -> SystemStatus:
    now = now or datetime.now(UTC)
    since = datetime.combine(now.date() - timedelta(days=days - 1), datetime.min.time(), tzinfo=UTC)
    figures = record_figures(rt.ctx.db.engine, rt.tenant, since)
    with rt.ctx.db.session() as session:
        figures += deletion_figures(session, rt.tenant, since)
        queued_symbols = symbols.pending_count(session, rt.tenant)
    waiting = providing.waiting_count(rt)
    pending = {"symbols": queued_symbols, "deliveries": delivery.undelivered_count(rt)}
    batches = [
        BatchStatus(
            name=row.name,
            last_run_at=as_utc(row.last_run_at),
            last_success_at=as_utc(row.last_success_at),
            last_error=row.last_error,
            pending=pending.get(row.name, 0),
        )
        for row in rt.batch_rows()
    ]
    return SystemStatus(tenant=rt.tenant, batches=batches, figures=figures, review_waiting=waiting)
