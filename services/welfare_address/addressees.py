"""The welfare address book (福祉宛名台帳): registration, updates, the resident feed and
lookups, free of any transport.

The integrated address number of a person with a My Number is obtained by the caller
(``registration``) before any of these run, so that no transaction waits on the network.

- ``register_non_resident`` inserts with ``INSERT … ON CONFLICT DO NOTHING`` and reads back
  by My Number, or by the registration key when there is none: registering one person
  twice, even at the same moment, gives one welfare address number.
- ``apply_resident_change`` keeps residents current (M30); the same change twice, or an
  older one after a newer one, changes nothing; nobody is removed (M31).
- ``update_non_resident`` corrects a non-resident's items; a resident's come from the
  resident register alone.
- ``view`` answers exactly the items asked for.
"""

from __future__ import annotations

import hashlib

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.welfare_address.models import AppliedChange, WelfareAddressee
from services.welfare_address.numbering import draw_number
from shared.contracts.address import (
    MY_NUMBER_USERS,
    NonResidentRegistration,
    PersonItems,
    WelfareAddressView,
    WelfareLookupRequest,
)
from shared.contracts.residents import ResidentChanged
from shared.db import insert_ignoring_conflicts
from shared.errors import Conflict, Forbidden, NotFound, Problem
from shared.models import as_utc, utcnow

MAX_DRAWS = 8



def _by(session: Session, column, value) -> WelfareAddressee | None:
    return session.scalar(select(WelfareAddressee).where(column == value))


def by_number(session: Session, number: str) -> WelfareAddressee | None:
    return session.get(WelfareAddressee, number)


def by_my_number(session: Session, my_number: str) -> WelfareAddressee | None:
    return _by(session, WelfareAddressee.my_number, my_number)


def by_resident_code(session: Session, resident_code: str) -> WelfareAddressee | None:
    return _by(session, WelfareAddressee.resident_code, resident_code)


def insert_or_fetch(session: Session, key: str, key_value: str, values: dict) -> tuple[WelfareAddressee, bool]:
    """The addressee whose unique column ``key`` holds ``key_value``, inserted with ``values``
    and a fresh number if there was none; the flag says whether this call inserted it."""
    column = getattr(WelfareAddressee, key)
    for _ in range(MAX_DRAWS):
        now = utcnow()
        row = {**values, key: key_value, "welfare_address_number": draw_number(), "created_at": now, "updated_at": now}
        inserted = insert_ignoring_conflicts(session, WelfareAddressee.__table__, row)
        found = _by(session, column, key_value)
        if found is not None:
            return found, inserted
        # Nothing under this key and nothing inserted: the number drawn was taken.
    raise Problem("no free welfare address number could be drawn")


def _update(row: WelfareAddressee, values: dict) -> bool:
    changed = False
    for column, value in values.items():
        if getattr(row, column) != value:
            setattr(row, column, value)
            changed = True
    if changed:
        row.updated_at = utcnow()
    return changed


# --- non-residents (住登外者) ----------------------------------------------------------


def registration_key(items: PersonItems) -> str:
    """What identifies a registration without a My Number: all it said, canonically."""
    canonical = items.model_dump_json().encode()
    return hashlib.sha256(canonical).hexdigest()


def register_non_resident(
    session: Session, registration: NonResidentRegistration, integrated_address_number: str | None
) -> tuple[WelfareAddressee, bool]:
    """The addressee for this registration, registered now unless they were already known."""
    items = registration.items()
    values = {**items.model_dump(), "status": "non_resident"}
    if registration.my_number is None:
        return insert_or_fetch(session, "registration_key", registration_key(items), values)
    row = by_my_number(session, registration.my_number)
    inserted = False
    if row is None:
        row, inserted = insert_or_fetch(
            session, "my_number", registration.my_number, {**values, "integrated_address_number": integrated_address_number}
        )
    if row.integrated_address_number is None and integrated_address_number is not None:
        _update(row, {"integrated_address_number": integrated_address_number})
    return row, inserted


def editable_non_resident(session: Session, number: str) -> WelfareAddressee:
    """The non-resident with this number; a resident's items come from the resident register only."""
    row = by_number(session, number)
    if row is None:
        raise NotFound("no welfare addressee with that number")
    if row.status != "non_resident":
        raise Conflict("this person is on the resident register: their items change through it, not here")
    return row


def update_non_resident(session: Session, number: str, changes: dict) -> WelfareAddressee:
    """Correct a non-resident's items."""
    row = editable_non_resident(session, number)
    _update(row, changes)
    return row


# --- the resident feed (M30, M31) -----------------------------------------------------


def apply_resident_change(session: Session, change: ResidentChanged, integrated_address_number: str | None) -> str:
    """Apply one change; returns ``created``, ``updated``, ``unchanged``, ``stale`` or ``duplicate``.

    Its first statement is a write (the change's id), so that on SQLite the transaction
    holds the write lock before it reads anything.
    """
    recorded_at = as_utc(change.recorded_at)
    first_time = insert_ignoring_conflicts(
        session,
        AppliedChange.__table__,
        {"change_id": change.change_id, "kind": change.kind, "recorded_at": recorded_at, "outcome": "applied", "applied_at": utcnow()},
    )
    if not first_time:
        return "duplicate"
    record = change.resident
    values = record.address_items(change.status_after())
    if integrated_address_number is not None:
        values["integrated_address_number"] = integrated_address_number
    by_mine, by_code = by_my_number(session, record.my_number), by_resident_code(session, record.resident_code)
    if by_mine is not None and by_code is not None and by_mine is not by_code:
        raise Conflict("the change's My Number and resident code belong to two different welfare addressees")
    row = by_mine or by_code
    if row is None:
        row, inserted = insert_or_fetch(session, "my_number", record.my_number, {**values, "last_change_at": recorded_at})
        if inserted:
            return "created"
    last = as_utc(row.last_change_at)
    if last is not None and recorded_at < last:
        session.get(AppliedChange, change.change_id).outcome = "stale"
        return "stale"
    changed = _update(row, {**values, "my_number": record.my_number})
    row.last_change_at = recorded_at
    return "updated" if changed else "unchanged"


# --- lookups --------------------------------------------------------------------------


def check_entitled(service: str, request: WelfareLookupRequest) -> None:
    """Refuse a system that does not use My Numbers asking by one or asking for one (M07)."""
    if service in MY_NUMBER_USERS:
        return
    if request.my_number is not None or "my_number" in request.items:
        raise Forbidden(f"{service} is not entitled to My Numbers")


def find(session: Session, request: WelfareLookupRequest) -> WelfareAddressee:
    if request.welfare_address_number is not None:
        row = by_number(session, request.welfare_address_number)
    elif request.my_number is not None:
        row = by_my_number(session, request.my_number)
    else:
        row = _by(session, WelfareAddressee.integrated_address_number, request.integrated_address_number)
    if row is None:
        raise NotFound("no welfare addressee with that number")
    return row


def view(row: WelfareAddressee, items) -> WelfareAddressView:
    """The addressee's numbers and exactly ``items``: nothing that was not asked for."""
    return WelfareAddressView(
        welfare_address_number=row.welfare_address_number,
        integrated_address_number=row.integrated_address_number,
        **{item: getattr(row, item) for item in items},
    )
