"""The prefecture server's logic: keep the newest record of each person of each city, look
people up across cities, and answer range digests for the consistency check.

A record replaces the one held only when it is at least as new (``updated_at``, the time
the registry recorded the change): a batch sent twice, or an old batch arriving after a
newer one, changes nothing.
"""

from __future__ import annotations

from datetime import UTC

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.juki_prefecture.models import IdentityCopy
from shared.contracts.juki import (
    MAX_ENTRIES,
    CityIdentity,
    IdentityRecord,
    PrefectureMatches,
    PrefectureQuery,
    RangeDigest,
    RecordDigest,
    prefix_bounds,
    range_digest,
)
from shared.errors import InvalidRequest
from shared.models import as_utc


def store(session: Session, city: str, records: list[IdentityRecord]) -> int:
    """Keep each record unless a newer one is held; returns how many were kept."""
    applied = 0
    codes = {record.resident_code for record in records}
    held = {
        row.resident_code: row
        for row in session.scalars(
            select(IdentityCopy).where(IdentityCopy.city == city, IdentityCopy.resident_code.in_(codes))
        )
    }
    for record in records:
        updated_at = record.updated_at.astimezone(UTC)
        row = held.get(record.resident_code)
        if row is not None and as_utc(row.updated_at) > updated_at:
            continue
        if row is None:
            row = held[record.resident_code] = IdentityCopy(city=city, resident_code=record.resident_code)
            session.add(row)
        row.my_number = record.my_number
        row.family_name = record.family_name
        row.given_name = record.given_name
        row.family_name_kana = record.family_name_kana
        row.given_name_kana = record.given_name_kana
        row.sex = record.sex
        row.birth_date = record.birth_date
        row.address = record.address
        row.status = record.status
        row.updated_at = updated_at
        row.digest = record.digest()
        applied += 1
    return applied


def record_of(row: IdentityCopy) -> IdentityRecord:
    return IdentityRecord.of_row(row)


def look_up(session: Session, asking_city: str, query: PrefectureQuery, limit: int) -> PrefectureMatches:
    """Other cities' records under the key; never the asking city's own."""
    statement = select(IdentityCopy).where(IdentityCopy.city != asking_city)
    if query.my_number is not None:
        statement = statement.where(IdentityCopy.my_number == query.my_number)
    elif query.resident_code is not None:
        statement = statement.where(IdentityCopy.resident_code == query.resident_code)
    else:
        statement = statement.where(IdentityCopy.birth_date == query.birth_date)
        if query.sex is not None:
            statement = statement.where(IdentityCopy.sex == query.sex)
    rows = session.scalars(statement.order_by(IdentityCopy.city, IdentityCopy.resident_code).limit(limit + 1)).all()
    return PrefectureMatches(
        records=[CityIdentity(city=row.city, record=record_of(row)) for row in rows[:limit]],
        truncated=len(rows) > limit,
    )


def _in_range(session: Session, city: str, prefix: str) -> list[tuple[str, str]]:
    low, high = prefix_bounds(prefix)
    statement = (
        select(IdentityCopy.resident_code, IdentityCopy.digest)
        .where(IdentityCopy.city == city, IdentityCopy.resident_code.between(low, high))
        .order_by(IdentityCopy.resident_code)
    )
    return [tuple(row) for row in session.execute(statement)]


def range_digests(session: Session, city: str, prefixes: list[str]) -> list[RangeDigest]:
    digests = []
    for prefix in dict.fromkeys(prefixes):
        entries = _in_range(session, city, prefix)
        digests.append(RangeDigest(prefix=prefix, count=len(entries), digest=range_digest(entries)))
    return digests


def range_entries(session: Session, city: str, prefixes: list[str], max_entries: int = MAX_ENTRIES) -> list[RecordDigest]:
    """The record digests under the prefixes; refused when they hold more than ``max_entries``
    (the check asks for small ranges only: whole ranges are compared by digest)."""
    entries: list[RecordDigest] = []
    for prefix in dict.fromkeys(prefixes):
        entries.extend(RecordDigest(resident_code=code, digest=digest) for code, digest in _in_range(session, city, prefix))
        if len(entries) > max_entries:
            raise InvalidRequest(f"these ranges hold more than {max_entries} records: ask for their digests instead")
    return entries
