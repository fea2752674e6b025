"""The addressee book (宛名台帳) of the integrated address system: assignment, the resident
feed and lookups, free of any transport.

- ``assign`` gives a person their integrated address number, once: the row is inserted
  with ``INSERT … ON CONFLICT DO NOTHING`` and then read back by My Number, so that of
  two simultaneous requests one inserts and the other reads the same row (on PostgreSQL
  the second insert waits for the first transaction and then does nothing; on SQLite
  writers are serialised).
- ``apply_resident_change`` keeps addressees current from the registry's changes (異動,
  M30): the same change applied twice, or an older change arriving after a newer one,
  changes nothing; people who moved out or died keep their row and number (M31).
- Each new number, and each resident code learnt for a number, is announced as the event
  ``number_assigned`` in the same transaction (outbox), so that the intermediate server
  obtains the person's symbol (flow [03]); the event carries no My Number.
- ``view`` answers exactly the items asked for, and ``check_entitled`` refuses anyone not
  entitled to My Numbers who asks by one or for one (M07).
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.integrated_address.models import Addressee, AppliedChange
from services.integrated_address.numbering import draw_number
from shared.contracts.address import MY_NUMBER_USERS, AddressLookupRequest, AddressView, PersonItems
from shared.contracts.network import NUMBER_ASSIGNED, NumberAssigned
from shared.contracts.residents import ResidentChanged
from shared.db import insert_ignoring_conflicts
from shared.errors import Conflict, Forbidden, NotFound, Problem
from shared.events import enqueue
from shared.models import as_utc, utcnow

#: How many fresh numbers to draw before giving up (a clash is one in a billion per draw).
MAX_DRAWS = 8

#: The status a change leaves the person in; the other kinds carry it in the record.
ITEM_COLUMNS = ("name", "name_kana", "sex", "birth_date", "address")



def by_my_number(session: Session, my_number: str) -> Addressee | None:
    return session.scalar(select(Addressee).where(Addressee.my_number == my_number))


def by_number(session: Session, number: str) -> Addressee | None:
    return session.get(Addressee, number)


def by_resident_code(session: Session, resident_code: str) -> Addressee | None:
    return session.scalar(select(Addressee).where(Addressee.resident_code == resident_code))


def insert_or_fetch(session: Session, city: str, my_number: str, values: dict) -> tuple[Addressee, bool]:
    """The addressee with ``my_number``, inserted with ``values`` and a fresh number if there
    was none; the flag says whether this call inserted it."""
    for _ in range(MAX_DRAWS):
        now = utcnow()
        row = {
            **values,
            "integrated_address_number": draw_number(city),
            "my_number": my_number,
            "created_at": now,
            "updated_at": now,
        }
        inserted = insert_ignoring_conflicts(session, Addressee.__table__, row)
        found = by_my_number(session, my_number)
        if found is not None:
            return found, inserted
        # Nothing under this My Number and nothing inserted: the number drawn was taken.
    raise Problem("no free integrated address number could be drawn")


def announce(session: Session, city: str, row: Addressee) -> None:
    """Tell the intermediate server, in this transaction, that ``row`` has a number (and which resident code)."""
    enqueue(session, NUMBER_ASSIGNED, city, NumberAssigned(integrated_address_number=row.integrated_address_number, resident_code=row.resident_code))


def _update(row: Addressee, values: dict) -> bool:
    """Set what differs; true when anything changed (and then ``updated_at`` moves)."""
    changed = False
    for column, value in values.items():
        if getattr(row, column) != value:
            setattr(row, column, value)
            changed = True
    if changed:
        row.updated_at = utcnow()
    return changed


# --- assignment (flow [03]) -----------------------------------------------------------


def assign(session: Session, city: str, my_number: str, items: PersonItems | None = None) -> tuple[Addressee, bool]:
    """The person's addressee, with a number assigned now if they had none.

    A person first known through ``assign`` is a non-resident (住登外) until the resident
    feed says otherwise; the ``items`` a caller gives are kept for non-residents only, as a
    resident's come from the register alone.
    """
    values = items.model_dump() if items is not None else {}
    row = by_my_number(session, my_number)
    if row is None:
        row, inserted = insert_or_fetch(session, city, my_number, {"status": "non_resident", **values})
        if inserted:
            announce(session, city, row)
            return row, True
    if values and row.status == "non_resident":
        _update(row, values)
    return row, False


# --- the resident feed (flows [01], [10]; M30, M31) ------------------------------------


def apply_resident_change(session: Session, city: str, change: ResidentChanged) -> str:
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
    by_mine, by_code = by_my_number(session, record.my_number), by_resident_code(session, record.resident_code)
    if by_mine is not None and by_code is not None and by_mine is not by_code:
        raise Conflict("the change's My Number and resident code belong to two different addressees")
    row = by_mine or by_code
    if row is None:
        row, inserted = insert_or_fetch(session, city, record.my_number, {**values, "last_change_at": recorded_at})
        if inserted:
            announce(session, city, row)
            return "created"
    last = as_utc(row.last_change_at)
    if last is not None and recorded_at < last:
        session.get(AppliedChange, change.change_id).outcome = "stale"
        return "stale"
    known_code = row.resident_code
    changed = _update(row, {**values, "my_number": record.my_number})  # a My Number can be changed (番号の変更)
    row.last_change_at = recorded_at
    if row.resident_code != known_code:
        announce(session, city, row)
    return "updated" if changed else "unchanged"


# --- lookups (M07) --------------------------------------------------------------------


def check_entitled(service: str, request: AddressLookupRequest) -> None:
    """Refuse a system that does not use My Numbers asking by one or asking for one (M07, M24)."""
    if service in MY_NUMBER_USERS:
        return
    if request.my_number is not None:
        raise Forbidden(f"{service} is not entitled to My Numbers and may not look people up by one")
    if "my_number" in request.items:
        raise Forbidden(f"{service} is not entitled to My Numbers and may not receive one")


def find(session: Session, request: AddressLookupRequest) -> Addressee:
    row = by_my_number(session, request.my_number) if request.my_number else by_number(session, request.integrated_address_number)
    if row is None:
        raise NotFound("no addressee with that number")
    return row


def view(row: Addressee, items) -> AddressView:
    """The addressee's number and exactly ``items``: nothing that was not asked for."""
    return AddressView(integrated_address_number=row.integrated_address_number, **{item: getattr(row, item) for item in items})


def lookup(session: Session, service: str, request: AddressLookupRequest) -> AddressView:
    check_entitled(service, request)
    return view(find(session, request), request.items)
