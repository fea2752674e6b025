"""Deleting query results after their period (M21, M32).

A finished query (answered, refused, failed) is deleted ``result_retention_hours`` after it
ended; a query that never ended is abandoned and deleted ``abandon_after_hours`` after it
was asked. Each deletion leaves a row in ``result_deletions`` (which query, in which
state, why, when) in the same transaction as the deletion; the provision records of the
query stay in the ledger for their own seven years. Review items answered and delivered
are dropped after the same period.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, delete, or_, select

from services.intermediate_server.models import QueryRow, ResultDeletion, ReviewItem
from shared.contracts.network import FINAL_STATUSES
from shared.models import utcnow

BATCH = 1000


@dataclass(frozen=True)
class SweepResult:
    finished: int
    abandoned: int
    review_items: int


def sweep_once(db, tenant: str, retention: timedelta, abandon_after: timedelta, now: datetime) -> SweepResult:
    finished_before, asked_before = now - retention, now - abandon_after
    due = or_(
        and_(QueryRow.status.in_(FINAL_STATUSES), QueryRow.finished_at < finished_before),
        and_(QueryRow.status.not_in(FINAL_STATUSES), QueryRow.requested_at < asked_before),
    )
    counts = {"finished": 0, "abandoned": 0}
    with db.session() as session:
        rows = session.execute(
            select(QueryRow.query_id, QueryRow.status, QueryRow.requested_at).where(QueryRow.tenant == tenant, due).limit(BATCH)
        ).all()
        for query_id, status, requested_at in rows:
            reason = "finished" if status in FINAL_STATUSES else "abandoned"
            counts[reason] += 1
            session.add(ResultDeletion(tenant=tenant, query_id=query_id, status=status, reason=reason, requested_at=requested_at, deleted_at=now))
        if rows:
            session.execute(delete(QueryRow).where(QueryRow.tenant == tenant, QueryRow.query_id.in_([r[0] for r in rows])))
        reviewed = session.execute(
            delete(ReviewItem).where(ReviewItem.tenant == tenant, ReviewItem.delivered_at.is_not(None), ReviewItem.delivered_at < finished_before)
        ).rowcount
    return SweepResult(counts["finished"], counts["abandoned"], reviewed)


async def sweep(rt) -> SweepResult:
    """Sweep until nothing is due; returns what was deleted."""
    settings = rt.settings
    retention, abandon = timedelta(hours=settings.result_retention_hours), timedelta(hours=settings.abandon_after_hours)
    total = SweepResult(0, 0, 0)
    while True:
        result = await asyncio.to_thread(sweep_once, rt.ctx.db, rt.tenant, retention, abandon, utcnow())
        total = SweepResult(total.finished + result.finished, total.abandoned + result.abandoned, total.review_items + result.review_items)
        if result.finished + result.abandoned < BATCH:
            return total
