"""The hub's provision records (情報提供等記録): the permits it issued or refused.

Each is appended (``Ledger.append_in``) in the transaction that stores the decision it
records, so a permit and its record commit together, before the permit leaves; concurrent
permits share one batch (``Hub._decide_in``, ``Hub._honour_in``).
"""

from __future__ import annotations

from datetime import datetime

from shared.ledger import HUB_TENANT, ProvisionRecord


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
