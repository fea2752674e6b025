"""``Recorder``: appends provision records from many concurrent requests as shared batches.

``record`` returns only once its record is durable, so that a service sends or answers
nothing before its record exists. Records arriving while a batch is being written wait and
go together into the next one (one transaction, one seal): concurrent requests share a
commit rather than queueing for one each. A batch that fails is written not at all, and
each of its callers gets the error.
"""

from __future__ import annotations

import asyncio

from shared.ledger.records import ProvisionRecord
from shared.ledger.store import AppendReceipt, Ledger

MAX_BATCH = 500


class Recorder:
    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger
        self._pending: list[tuple[ProvisionRecord, asyncio.Future]] = []
        self._flushing = False
        self._task: asyncio.Task | None = None

    async def record(self, record: ProvisionRecord) -> AppendReceipt:
        future = asyncio.get_running_loop().create_future()
        self._pending.append((record, future))
        if not self._flushing:
            self._flushing = True
            self._task = asyncio.create_task(self._flush())
        return await future

    async def _flush(self) -> None:
        try:
            while self._pending:
                batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
                try:
                    receipts = await asyncio.to_thread(self._ledger.append_many, [record for record, _ in batch])
                except Exception as exc:  # nothing of the batch was written: each caller learns it
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                for (_, future), receipt in zip(batch, receipts):
                    if not future.done():
                        future.set_result(receipt)
        finally:
            self._flushing = False
