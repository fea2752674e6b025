"""``Recorder``: appends provision records from many concurrent requests as shared batches.

``record`` returns only once its record is durable, so that a service sends or answers
nothing before its record exists. Records arriving while a batch is being written wait and
go together into the next one (one transaction, one seal; ``shared.group_commit``). A batch
that fails is written not at all, and each of its callers gets the error.
"""

from __future__ import annotations

import asyncio

from shared.group_commit import GroupCommit
from shared.ledger.records import ProvisionRecord
from shared.ledger.store import AppendReceipt, Ledger


class Recorder:
    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger
        self._batches: GroupCommit[ProvisionRecord, AppendReceipt] = GroupCommit(ledger.append_many)

    async def record(self, record: ProvisionRecord) -> AppendReceipt:
        return await self._batches.submit(record)

    async def record_each(self, records: list[ProvisionRecord]) -> list[AppendReceipt | Exception]:
        """Each record's receipt, or the error that kept it out: a caller deciding many queries
        at once answers the recorded ones and fails only the others."""
        return await asyncio.gather(*(self.record(r) for r in records), return_exceptions=True)
