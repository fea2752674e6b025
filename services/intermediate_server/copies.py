"""The provision database (情報提供データベース, 副本; function 6, M27).

A business system registers the copy of what it provides, per item and per person: each
person's records replace what the copy held for them. Every record of an import is checked
against the item's layout first (``shared.contracts.network.ITEM_LAYOUTS``); one bad record
refuses the whole import with every reason found, and nothing is stored. The copy can be
read per person, exported (administrators only, recorded), and reconciled with the
original by per-person digests.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from services.intermediate_server.models import ProvisionCopy
from shared.contracts.network import CopyDigest, CopyImport, check_records, copy_digest
from shared.db import rows_for
from shared.errors import InvalidRequest
from shared.models import utcnow

__all__ = ["check_import", "copy_digest", "digests", "export", "person_copy", "records_of", "records_of_many", "register"]


def check_import(request: CopyImport) -> list[list[dict[str, Any]]]:
    """Each person's records in normal form, or ``InvalidRequest`` listing every error."""
    normal, errors = [], []
    seen: set[str] = set()
    for index, person in enumerate(request.people):
        if person.integrated_address_number in seen:
            errors.append({"loc": ["people", index, "integrated_address_number"], "msg": "the person is named twice", "type": "duplicate"})
        seen.add(person.integrated_address_number)
        records, found = check_records(request.item_code, person.records, ("people", index, "records"))
        normal.append(records)
        errors.extend(found)
    if errors:
        raise InvalidRequest(f"{len(errors)} error(s) in the import of {request.item_code}; nothing was stored", errors=errors)
    return normal


def register(session: Session, tenant: str, request: CopyImport, registered_by: str) -> int:
    """Store a checked import (replacing each person's records of the item); returns the records stored."""
    checked = check_import(request)
    now = utcnow()
    stored = 0
    for person, records in zip(request.people, checked):
        key = (tenant, person.integrated_address_number, request.item_code)
        row = session.get(ProvisionCopy, key) or ProvisionCopy(tenant=tenant, integrated_address_number=person.integrated_address_number, item_code=request.item_code)
        row.records = json.dumps(records, ensure_ascii=False)
        row.record_count = len(records)
        row.digest = copy_digest(records)
        row.registered_by = registered_by
        row.registered_at = now
        session.merge(row)
        stored += len(records)
    return stored


_copies = ProvisionCopy.__table__
_RECORDS_OF = select(_copies.c.integrated_address_number, _copies.c.records).where(
    _copies.c.tenant == bindparam("tenant"),
    _copies.c.integrated_address_number.in_(bindparam("keys", expanding=True)),
    _copies.c.item_code == bindparam("item"),
)


def records_of(session: Session, tenant: str, integrated_address_number: str, item_code: str) -> list[dict[str, Any]]:
    """The person's records of the item: exactly what a provision of that item holds."""
    return records_of_many(session, tenant, item_code, [integrated_address_number])[integrated_address_number]


def records_of_many(session: Session, tenant: str, item_code: str, numbers: Iterable[str]) -> dict[str, list[dict[str, Any]]]:
    """``records_of`` each person for one item, in one statement (no records: an empty list)."""
    asked = list(numbers)
    found = {number: [] for number in asked}
    for number, records in rows_for(session, _RECORDS_OF, asked, tenant=tenant, item=item_code):
        found[number] = json.loads(records)
    return found


def person_copy(session: Session, tenant: str, integrated_address_number: str) -> list[dict[str, Any]]:
    """Everything the copy holds about one person, by item (for inspection)."""
    rows = session.scalars(
        select(ProvisionCopy)
        .where(ProvisionCopy.tenant == tenant, ProvisionCopy.integrated_address_number == integrated_address_number)
        .order_by(ProvisionCopy.item_code)
    )
    return [
        {
            "item_code": r.item_code,
            "records": json.loads(r.records),
            "digest": r.digest,
            "registered_by": r.registered_by,
            "registered_at": r.registered_at,
        }
        for r in rows
    ]


def export(session: Session, tenant: str, item_code: str, after: str | None, limit: int) -> list[dict[str, Any]]:
    query = select(ProvisionCopy).where(ProvisionCopy.tenant == tenant, ProvisionCopy.item_code == item_code)
    if after:
        query = query.where(ProvisionCopy.integrated_address_number > after)
    rows = session.scalars(query.order_by(ProvisionCopy.integrated_address_number).limit(limit))
    return [{"integrated_address_number": r.integrated_address_number, "records": json.loads(r.records), "digest": r.digest} for r in rows]


def digests(session: Session, tenant: str, item_code: str, after: str | None, limit: int) -> list[CopyDigest]:
    query = select(ProvisionCopy.integrated_address_number, ProvisionCopy.record_count, ProvisionCopy.digest).where(
        ProvisionCopy.tenant == tenant, ProvisionCopy.item_code == item_code
    )
    if after:
        query = query.where(ProvisionCopy.integrated_address_number > after)
    rows = session.execute(query.order_by(ProvisionCopy.integrated_address_number).limit(limit))
    return [CopyDigest(integrated_address_number=n, records=c, digest=d) for n, c, d in rows]
