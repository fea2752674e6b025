"""``Recorder``: appends provision records from many concurrent requests as shared batches.

``record`` returns only once its record is durable, so that a service sends or answers
nothing before its record exists. Records arriving while a batch is being written wait and
go together into the next one (one seal, in the transaction the database's other group
commits share; ``shared.group_commit``). A batch that fails is written not at all, and each
of its callers gets the error.
"""

from __future__ import annotations

from shared.group_commit import GroupCommit
from shared.ledger.records import ProvisionRecord
from shared.ledger.store import AppendReceipt, Ledger


class Recorder:
    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger
        self._batches: GroupCommit[ProvisionRecord, AppendReceipt] = GroupCommit(ledger.engine, ledger.append_in)

    async def record(self, record: ProvisionRecord) -> AppendReceipt:
        (receipt,) = await self.record_each([record])
        if isinstance(receipt, BaseException):
            raise receipt
        return receipt

    async def record_each(self, records: list[ProvisionRecord]) -> list[AppendReceipt | BaseException]:
        """Each record's receipt, or the error that kept it out: a caller deciding many queries
        at once answers the recorded ones and fails only the others."""
        receipts = await self._batches.submit_many(records)
        self._ledger.observed([r for r, receipt in zip(records, receipts, strict=True) if not isinstance(receipt, BaseException)])
        return receipts
