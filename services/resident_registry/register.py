"""The register's rules: which changes (異動) it accepts, and what each does to a person.

- a birth (出生) puts a new person on the register; the registry assigns the resident code
  and My Number when the request brings none;
- a move-in (転入), or a special move-in with the card (特例転入), puts a person on the register
  or takes back one who had moved out, keeping their resident code and My Number;
- a move-out (転出) and a death (死亡) keep the person on file with their new status:
  nobody is ever removed (M31);
- a change of address within the city (転居) and a correction (職権修正) update the entry.

Every accepted change is stored with its record after the change and written, in the same
transaction, to the outbox as a ``ResidentChanged`` event, so that the address systems and
the Juki CS learn of exactly the changes the register holds. A refused change stores
nothing: the items are checked (422) and the transition is checked (409) before any write.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import date

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from services.resident_registry.models import ResidentChange, ResidentEntry
from services.resident_registry.schemas import PERSON_ITEMS, ChangeRequest, ChangeView
from shared.contracts.residents import RESIDENT_CHANGED, ResidentChanged, ResidentRecord
from shared.errors import Conflict, InvalidRequest, NotFound
from shared.events import enqueue
from shared.ids import generate_my_number, generate_resident_code
from shared.models import as_utc, utcnow

RESIDENT, MOVED_OUT, DECEASED = "resident", "moved_out", "deceased"

_DESCRIBING = frozenset(PERSON_ITEMS) - {"resident_code", "my_number"}  # the 4 items, household, relation


@dataclass(frozen=True)
class Items:
    """The items a kind of change needs, and those it may carry besides (M04: nothing else)."""

    required: frozenset[str]
    optional: frozenset[str] = frozenset()
    at_least_one: bool = False


ITEMS: dict[str, Items] = {
    "birth": Items(_DESCRIBING, frozenset({"resident_code", "my_number"})),
    "move_in": Items(frozenset(PERSON_ITEMS)),
    "special_move_in": Items(frozenset(PERSON_ITEMS)),
    "move_out": Items(frozenset({"resident_code"})),
    "death": Items(frozenset({"resident_code"})),
    "address_change": Items(frozenset({"resident_code", "address", "town"}), frozenset({"household_id", "relation"})),
    "correction": Items(frozenset({"resident_code"}), frozenset(PERSON_ITEMS) - {"resident_code"}, at_least_one=True),
}

#: Which statuses a kind of change may start from; a birth needs no entry at all.
_FROM_STATUS: dict[str, frozenset[str | None]] = {
    "birth": frozenset({None}),
    "move_in": frozenset({None, MOVED_OUT}),
    "special_move_in": frozenset({None, MOVED_OUT}),
    "move_out": frozenset({RESIDENT}),
    "death": frozenset({RESIDENT}),
    "address_change": frozenset({RESIDENT}),
    "correction": frozenset({RESIDENT, MOVED_OUT, DECEASED}),
}
_TO_STATUS = {"birth": RESIDENT, "move_in": RESIDENT, "special_move_in": RESIDENT, "move_out": MOVED_OUT, "death": DECEASED}

_codes = random.SystemRandom()


def _field_error(field: str, message: str, kind: str) -> dict:
    """One entry of a 422's ``errors``, in the shape FastAPI gives to a body it cannot read."""
    return {"loc": ["body", field], "msg": message, "type": kind}


def check_items(request: ChangeRequest) -> None:
    """Refuse (422) a change that lacks an item its kind needs or carries one it has no use for."""
    rule = ITEMS[request.kind]
    given = set(request.given_items())
    errors = [
        _field_error(name, f"a {request.kind} needs {name}", "missing") for name in sorted(rule.required - given)
    ]
    errors += [
        _field_error(name, f"a {request.kind} takes no {name}", "extra_forbidden")
        for name in sorted(given - rule.required - rule.optional)
    ]
    if rule.at_least_one and not given - rule.required:
        errors.append({"loc": ["body"], "msg": f"a {request.kind} needs at least one item to correct", "type": "missing"})
    if request.kind == "birth" and request.birth_date is not None and request.effective_date != request.birth_date:
        errors.append(_field_error("effective_date", "a birth takes effect on the birth date", "value_error"))
    if errors:
        raise InvalidRequest("the change is not valid for its kind", errors=errors)


def record_change(session: Session, city: str, request: ChangeRequest, recorded_by: str) -> ChangeView:
    """Apply one change to the register, store it and put its event in the outbox.

    Raises ``InvalidRequest`` (422) or ``Conflict`` (409) before writing anything.
    """
    check_items(request)
    items = request.given_items()
    entry = _find(session, request.resident_code)
    status = entry.status if entry is not None else None
    if status not in _FROM_STATUS[request.kind]:
        raise Conflict(_refusal(request.kind, status), resident_code=request.resident_code)
    if entry is not None:
        _check_update(session, entry, request, items)
    birth_date = items.get("birth_date") or entry.birth_date
    if request.effective_date < birth_date:
        raise InvalidRequest(
            "the change is not valid for its kind",
            errors=[_field_error("effective_date", "is before the person's birth date", "value_error")],
        )

    try:
        if entry is None:
            entry = _new_entry(session, items)
        else:
            for name, value in items.items():
                setattr(entry, name, value)
        entry.status = _TO_STATUS.get(request.kind, entry.status)
        session.flush()  # the entry first: its change refers to it
        record = resident_record(entry)
        event = ResidentChanged(
            change_id=uuid.uuid4().hex,
            kind=request.kind,
            effective_date=request.effective_date,
            recorded_at=utcnow(),
            resident=record,
        )
        session.add(
            ResidentChange(
                change_id=event.change_id,
                resident_code=entry.resident_code,
                kind=event.kind,
                effective_date=event.effective_date,
                recorded_at=event.recorded_at,
                recorded_by=recorded_by,
                record=record.model_dump_json(),
            )
        )
        enqueue(session, RESIDENT_CHANGED, city, event)
        session.flush()
    except IntegrityError:  # a concurrent change took the same resident code or My Number first
        raise Conflict("the resident code or My Number was taken meanwhile; nothing was recorded") from None
    return ChangeView(**event.model_dump(), recorded_by=recorded_by)


def read_resident(session: Session, resident_code: str) -> ResidentRecord:
    entry = session.get(ResidentEntry, resident_code)
    if entry is None:
        raise NotFound("no resident with this resident code")
    return resident_record(entry)


def list_changes(session: Session, resident_code: str) -> list[ChangeView]:
    """The person's changes, oldest first (異動履歴)."""
    if session.get(ResidentEntry, resident_code) is None:
        raise NotFound("no resident with this resident code")
    rows = session.scalars(
        select(ResidentChange).where(ResidentChange.resident_code == resident_code).order_by(ResidentChange.id)
    )
    return [
        ChangeView(
            change_id=row.change_id,
            kind=row.kind,
            effective_date=row.effective_date,
            recorded_at=as_utc(row.recorded_at),
            recorded_by=row.recorded_by,
            resident=ResidentRecord.model_validate_json(row.record),
        )
        for row in rows
    ]


def resident_record(entry: ResidentEntry) -> ResidentRecord:
    return ResidentRecord(**{name: getattr(entry, name) for name in ResidentRecord.model_fields})


# --- helpers ---------------------------------------------------------------------------


def _find(session: Session, resident_code: str | None) -> ResidentEntry | None:
    if resident_code is None:
        return None
    # FOR UPDATE on PostgreSQL: two changes to one person are decided one after the other.
    return session.get(ResidentEntry, resident_code, with_for_update=True)


def _refusal(kind: str, status: str | None) -> str:
    if status is None:
        return f"no resident with this resident code: a {kind} needs someone on the register"
    if kind == "birth":
        return "this resident code is already on the register"
    return f"a {kind} cannot be recorded for a person whose status is {status}"


def _check_update(session: Session, entry: ResidentEntry, request: ChangeRequest, items: dict[str, object]) -> None:
    """Refuse (409) a change to someone on file that contradicts what the register holds."""
    code = entry.resident_code
    if request.kind in ("move_in", "special_move_in") and items["my_number"] != entry.my_number:
        raise Conflict("a returning resident keeps their My Number; correct it separately", resident_code=code)
    if request.kind == "correction" and all(getattr(entry, name) == value for name, value in items.items()):
        raise Conflict("the correction changes nothing", resident_code=code)
    if "my_number" in items and items["my_number"] != entry.my_number:
        _check_my_number_free(session, items["my_number"])
    # A change may not take effect before the person's latest recorded change did.
    latest: date | None = session.scalar(
        select(ResidentChange.effective_date)
        .where(ResidentChange.resident_code == code)
        .order_by(ResidentChange.effective_date.desc())
        .limit(1)
    )
    if latest is not None and request.effective_date < latest:
        raise Conflict(
            f"the change would take effect before the person's latest change ({latest.isoformat()})", resident_code=code
        )


def _new_entry(session: Session, items: dict[str, object]) -> ResidentEntry:
    fields = dict(items)
    if "resident_code" not in fields:
        fields["resident_code"] = _unused(session, ResidentEntry.resident_code, generate_resident_code)
    if "my_number" in fields:
        _check_my_number_free(session, fields["my_number"])
    else:
        fields["my_number"] = _unused(session, ResidentEntry.my_number, generate_my_number)
    entry = ResidentEntry(**fields, status=RESIDENT)
    session.add(entry)
    return entry


def _unused(session: Session, column, generator) -> str:
    while True:
        candidate = generator(_codes)
        if session.scalar(select(column).where(column == candidate)) is None:
            return candidate


def _check_my_number_free(session: Session, my_number: str) -> None:
    holder = session.scalar(select(ResidentEntry.resident_code).where(ResidentEntry.my_number == my_number))
    if holder is not None:
        raise Conflict("this My Number belongs to another person on the register")
