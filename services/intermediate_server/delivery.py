"""The job that delivers answers decided after review to the hub, which carries them to the
requester. A decision is delivered until the hub takes it; it is never decided again."""

from __future__ import annotations

import asyncio

from sqlalchemy import func, select, update

from services.intermediate_server.models import ReviewItem
from shared.contracts.network import ProvisionOutcome
from shared.errors import Conflict, NotFound, Problem
from shared.models import utcnow

BATCH = 100


async def deliver_all(rt) -> None:
    def due() -> list[tuple[str, str]]:
        with rt.ctx.db.session() as session:
            rows = session.execute(
                select(ReviewItem.serial_number, ReviewItem.outcome)
                .where(ReviewItem.tenant == rt.tenant, ReviewItem.state.in_(("released", "refused")), ReviewItem.delivered_at.is_(None))
                .order_by(ReviewItem.decided_at)
                .limit(BATCH)
            )
            return [tuple(row) for row in rows]

    def mark(serial: str, error: str | None) -> None:
        values = {"delivery_attempts": ReviewItem.delivery_attempts + 1, "delivery_error": error}
        if error is None:
            values["delivered_at"] = utcnow()
        with rt.ctx.db.session() as session:
            session.execute(update(ReviewItem).where(ReviewItem.tenant == rt.tenant, ReviewItem.serial_number == serial).values(**values))

    failure: Problem | None = None
    for serial, document in await asyncio.to_thread(due):
        try:
            await rt.hub.deliver(ProvisionOutcome.model_validate_json(document))
        except (Conflict, NotFound) as problem:  # the hub no longer waits for it: nothing to retry
            await asyncio.to_thread(mark, serial, f"not delivered: {problem.detail}")
            await asyncio.to_thread(_give_up, rt, serial)
        except Problem as problem:
            await asyncio.to_thread(mark, serial, f"{problem.type}: {problem.detail}"[:2000])
            failure = problem
        else:
            await asyncio.to_thread(mark, serial, None)
    if failure is not None:
        raise failure


def undelivered_count(rt) -> int:
    """Decisions taken and not yet handed to the hub."""
    with rt.ctx.db.session() as session:
        return session.scalar(
            select(func.count())
            .select_from(ReviewItem)
            .where(ReviewItem.tenant == rt.tenant, ReviewItem.state.in_(("released", "refused")), ReviewItem.delivered_at.is_(None))
        ) or 0


def _give_up(rt, serial: str) -> None:
    with rt.ctx.db.session() as session:
        session.execute(update(ReviewItem).where(ReviewItem.tenant == rt.tenant, ReviewItem.serial_number == serial).values(delivered_at=utcnow()))
