"""The hub's provision records (情報提供等記録): the permits it issued or refused.

Every record goes through ``Recorder.record``, which appends to the hub's ledger and returns
only once the record is durable. Records arriving together are appended as one batch (one
transaction, one seal): concurrent permits share a commit instead of queueing for one each.
"""

from __future__ import annotations

import asyncio
from datetime import datetime

from shared.ledger import HUB_TENANT, AppendReceipt, Ledger, ProvisionRecord

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


def permit_record(
    *,
    requester: str,
    provider: str,
    affair_code: str,
    procedure_code: str,
    item_code: str,
    serial_number: str,
    requested_at: datetime,
    person_key: str,
    refusal_reason: str | None = None,
) -> ProvisionRecord:
    """A permit issued, or refused with its reason; the person is the requester's symbol."""
    return ProvisionRecord(
        tenant=HUB_TENANT,
        kind="permit",
        requester=requester,
        provider=provider,
        affair_code=affair_code,
        procedure_code=procedure_code,
        item_code=item_code,
        serial_number=serial_number,
        requested_at=requested_at,
        outcome="permit_refused" if refusal_reason else "permit_issued",
        refusal_reason=refusal_reason,
        person_key=person_key,
    )
