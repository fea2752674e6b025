"""Forwarding identity information to the prefecture server (都道府県サーバへの通知, CS function 1).

Each applied change left a row in ``prefecture_forwarding`` in its own transaction. The
forwarder sends those rows in order, in batches, and marks them forwarded only once the
prefecture server has answered that it holds them; until then they stay, and the forwarder
tries again with a growing pause (capped). A batch that reached the prefecture server but
whose answer was lost is sent again: the prefecture server keeps the newest record of each
person, so a repeat changes nothing there.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime

import structlog
from sqlalchemy import func, select, update

from services.juki_cs.models import PrefectureForwarding
from services.juki_cs.prefecture import PrefectureClient
from shared.contracts.juki import IdentityRecord
from shared.db import Database
from shared.errors import Problem
from shared.models import utcnow

log = structlog.get_logger("renkei.juki_cs.forwarding")

IDLE_POLL_SECONDS = 5.0
FIRST_RETRY_SECONDS = 0.25


@dataclass(frozen=True)
class Backlog:
    pending: int
    forwarded: int
    oldest_pending_at: datetime | None
    last_error: str | None


class Forwarder:
    """Sends pending rows to the prefecture server until none is left; never drops one."""

    def __init__(self, db: Database, client: PrefectureClient | None, batch: int = 200, retry_max_seconds: float = 30.0) -> None:
        self._db = db
        self._client = client
        self._batch = batch
        self._retry_max = retry_max_seconds
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self.failures = 0

    def wake(self) -> None:
        """Ask for a prompt send; safe to call from any thread (event handlers run in workers)."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._wake.set)

    # -- the table -----------------------------------------------------------------------

    def _pending(self) -> list[tuple[int, str]]:
        query = (
            select(PrefectureForwarding.id, PrefectureForwarding.record)
            .where(PrefectureForwarding.forwarded_at.is_(None))
            .order_by(PrefectureForwarding.id)
            .limit(self._batch)
        )
        with self._db.session() as session:
            return [tuple(row) for row in session.execute(query)]

    def _mark(self, ids: list[int], error: str | None) -> None:
        values = {"attempts": PrefectureForwarding.attempts + 1, "last_error": error}
        if error is None:
            values["forwarded_at"] = utcnow()
        with self._db.session() as session:
            session.execute(update(PrefectureForwarding).where(PrefectureForwarding.id.in_(ids)).values(**values))

    def backlog(self) -> Backlog:
        with self._db.session() as session:
            pending = PrefectureForwarding.forwarded_at.is_(None)
            count = session.scalar(select(func.count()).where(pending)) or 0
            done = session.scalar(select(func.count()).where(PrefectureForwarding.forwarded_at.is_not(None))) or 0
            oldest = session.scalar(select(func.min(PrefectureForwarding.created_at)).where(pending))
            last_error = session.scalar(
                select(PrefectureForwarding.last_error).where(pending).order_by(PrefectureForwarding.id).limit(1)
            )
        return Backlog(count, done, oldest, last_error)

    # -- sending -------------------------------------------------------------------------

    async def forward_batch(self) -> int:
        """Send one batch; returns how many rows it forwarded. Raises when the send failed."""
        if self._client is None:
            return 0
        rows = await asyncio.to_thread(self._pending)
        if not rows:
            return 0
        ids = [row_id for row_id, _ in rows]
        records = [IdentityRecord.model_validate_json(text) for _, text in rows]
        try:
            await self._client.forward(records)
        except Problem as problem:
            await asyncio.to_thread(self._mark, ids, f"{problem.type}: {problem.detail}"[:2000])
            raise
        await asyncio.to_thread(self._mark, ids, None)
        return len(ids)

    async def run(self) -> None:
        self._loop = asyncio.get_running_loop()
        while True:
            try:
                sent = await self.forward_batch()
                self.failures = 0
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # prefecture server down, refusing, or our database away
                self.failures += 1
                pause = min(self._retry_max, FIRST_RETRY_SECONDS * 2 ** min(self.failures, 16))
                log.warning("forwarding paused", error=str(exc), retry_in=pause, failures=self.failures)
                await asyncio.sleep(pause)
                continue
            if sent < self._batch:
                try:
                    await asyncio.wait_for(self._wake.wait(), timeout=IDLE_POLL_SECONDS)
                except TimeoutError:
                    pass
                self._wake.clear()
