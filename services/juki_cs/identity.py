"""Identity information (本人確認情報) kept current from the registry's changes (CS function 1).

A change from the resident registry (異動) replaces the person's identity information and,
in the same transaction, queues the new record for the prefecture server. Applying a
change is idempotent and never goes back in time:

- the same change again (same ``change_id``) changes nothing;
- a change recorded before the one already applied (a late redelivery) changes nothing;
- a change that contradicts itself (a death whose record says "resident") or gives a My
  Number another person holds is refused with a typed problem, and the kernel records the
  event as rejected.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.juki_cs.matching import Person
from services.juki_cs.models import IdentityInfo, PrefectureForwarding
from shared.contracts.juki import IdentityRecord
from shared.contracts.residents import ResidentChanged
from shared.db import SQLITE_BEGIN, Database
from shared.errors import Conflict, InvalidRequest
from shared.models import as_utc

#: The status a change of each kind leaves the person in.
STATUS_AFTER = {"move_out": "moved_out", "death": "deceased"}
RESIDENT = "resident"
#: A long read: on SQLite a deferred BEGIN (no write lock), streamed in chunks.
SNAPSHOT = {SQLITE_BEGIN: "BEGIN", "yield_per": 5000}


@dataclass(frozen=True)
class Applied:
    """A change that took effect: the person's record now."""

    record: IdentityRecord

    @property
    def is_resident(self) -> bool:
        return self.record.status == RESIDENT



def apply_change(session: Session, change: ResidentChanged) -> Applied | None:
    """Apply one registry change; ``None`` when it changes nothing."""
    resident = change.resident
    expected = STATUS_AFTER.get(change.kind, RESIDENT)
    if resident.status != expected:
        raise InvalidRequest(f"a {change.kind} change leaves the person {expected}, not {resident.status}")
    recorded_at = change.recorded_at.astimezone(UTC)
    row = session.get(IdentityInfo, resident.resident_code)
    if row is not None and (row.change_id == change.change_id or as_utc(row.updated_at) > recorded_at):
        return None
    if row is None or row.my_number != resident.my_number:
        holder = session.scalar(select(IdentityInfo.resident_code).where(IdentityInfo.my_number == resident.my_number))
        if holder is not None and holder != resident.resident_code:
            raise Conflict("the My Number of this change belongs to another resident code on file")
    record = IdentityRecord(
        resident_code=resident.resident_code,
        my_number=resident.my_number,
        family_name=resident.family_name,
        given_name=resident.given_name,
        family_name_kana=resident.family_name_kana,
        given_name_kana=resident.given_name_kana,
        sex=resident.sex,
        birth_date=resident.birth_date,
        address=resident.address,
        status=resident.status,
        updated_at=recorded_at,
    )
    if row is None:
        row = IdentityInfo(resident_code=record.resident_code)
        session.add(row)
    _store(row, record, change)
    session.add(PrefectureForwarding(resident_code=record.resident_code, record=record.model_dump_json()))
    return Applied(record)


def _store(row: IdentityInfo, record: IdentityRecord, change: ResidentChanged) -> None:
    row.my_number = record.my_number
    row.family_name = record.family_name
    row.given_name = record.given_name
    row.family_name_kana = record.family_name_kana
    row.given_name_kana = record.given_name_kana
    row.sex = record.sex
    row.birth_date = record.birth_date
    row.address = record.address
    row.status = record.status
    row.updated_at = record.updated_at
    row.change_id = change.change_id
    row.change_kind = change.kind
    row.digest = record.digest()


def record_of(row: IdentityInfo) -> IdentityRecord:
    return IdentityRecord.of_row(row)


def person_of(record: IdentityRecord | IdentityInfo, key: str | None = None) -> Person:
    """The four items as the index takes them, under ``key`` (the resident code by default)."""
    return Person(
        key=key or record.resident_code,
        name_kanji=f"{record.family_name}\u3000{record.given_name}",
        name_kana=f"{record.family_name_kana}\u3000{record.given_name_kana}",
        sex=record.sex,
        birth_date=record.birth_date,
        address=record.address,
    )


def find(session: Session, *, resident_code: str | None = None, my_number: str | None = None) -> IdentityInfo | None:
    if resident_code is not None:
        return session.get(IdentityInfo, resident_code)
    return session.scalar(select(IdentityInfo).where(IdentityInfo.my_number == my_number))


def resident_people(db: Database):
    """Every current resident's four items, for the index at start-up (a stream, not a list),
    read from one snapshot that does not hold up writers."""
    query = select(
        IdentityInfo.resident_code,
        IdentityInfo.family_name,
        IdentityInfo.given_name,
        IdentityInfo.family_name_kana,
        IdentityInfo.given_name_kana,
        IdentityInfo.sex,
        IdentityInfo.birth_date,
        IdentityInfo.address,
    ).where(IdentityInfo.status == RESIDENT)
    with db.engine.connect() as conn:
        rows = conn.execution_options(**SNAPSHOT).execute(query)
        for code, family, given, family_kana, given_kana, sex, birth, address in rows:
            yield Person(code, f"{family}\u3000{given}", f"{family_kana}\u3000{given_kana}", sex, birth, address)
