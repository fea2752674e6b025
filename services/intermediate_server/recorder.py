"""Provision records (情報提供等記録, M28): the one way this server writes its ledger.

Every query, answer received, provision and refusal is made here into a ``ProvisionRecord``
and appended through the kernel's ``Recorder`` (``shared.ledger.recorder``), which returns
only once the record is durable, so that nothing is sent or answered before its record
exists; concurrent queries share a batch.

Who records what: the requester's server its query (``query``: requested, or refused with
the hub's reason) and the answer's arrival (``answer_received``: provided or refused); the
provider's server each provision (``provision``: provided, held_for_review, released or
refused). The hub records its permits in its own ledger.
"""

from __future__ import annotations

from datetime import datetime

from shared.ledger import ProvisionRecord


def query_record(
    tenant: str,
    *,
    provider: str,
    affair_code: str,
    procedure_code: str,
    item_code: str,
    serial_number: str,
    requested_at: datetime,
    person_key: str,
    refusal_reason: str | None = None,
) -> ProvisionRecord:
    """情報照会: sent with a permit (``requested``), or refused before it could be."""
    return ProvisionRecord(
        tenant=tenant,
        kind="query",
        requester=tenant,
        provider=provider,
        affair_code=affair_code,
        procedure_code=procedure_code,
        item_code=item_code,
        serial_number=serial_number,
        requested_at=requested_at,
        outcome="refused" if refusal_reason else "requested",
        refusal_reason=refusal_reason,
        person_key=person_key,
    )


def answer_record(
    tenant: str,
    *,
    provider: str,
    affair_code: str,
    procedure_code: str,
    item_code: str,
    serial_number: str,
    requested_at: datetime,
    received_at: datetime,
    person_key: str,
    refusal_reason: str | None = None,
) -> ProvisionRecord:
    """回答受領: the answer arrived and opened (``provided``), or was a refusal or unreadable."""
    return ProvisionRecord(
        tenant=tenant,
        kind="answer_received",
        requester=tenant,
        provider=provider,
        affair_code=affair_code,
        procedure_code=procedure_code,
        item_code=item_code,
        serial_number=serial_number,
        requested_at=requested_at,
        provided_at=None if refusal_reason else max(received_at, requested_at),
        outcome="refused" if refusal_reason else "provided",
        refusal_reason=refusal_reason,
        person_key=person_key,
    )


def provision_record(
    tenant: str,
    *,
    requester: str,
    affair_code: str,
    procedure_code: str,
    item_code: str,
    serial_number: str,
    requested_at: datetime,
    person_key: str,
    outcome: str,
    provided_at: datetime | None = None,
    refusal_reason: str | None = None,
) -> ProvisionRecord:
    """情報提供: ``provided``, ``held_for_review``, ``released`` (after review) or ``refused``."""
    return ProvisionRecord(
        tenant=tenant,
        kind="provision",
        requester=requester,
        provider=tenant,
        affair_code=affair_code,
        procedure_code=procedure_code,
        item_code=item_code,
        serial_number=serial_number,
        requested_at=requested_at,
        provided_at=max(provided_at, requested_at) if provided_at else None,
        outcome=outcome,
        refusal_reason=refusal_reason,
        person_key=person_key,
    )
