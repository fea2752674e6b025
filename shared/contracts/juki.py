"""The Juki-net community server's contracts.

- On the bus: ``juki_cs.identity_lookup``, identity information (本人確認情報) of residents
  and non-residents for the business systems (flow [04]); ``juki_cs.card_verification``,
  whether a card check made at the CS terminal verified the person a business system is
  about to take data in for (M01).
- Over HTTPS with mutual TLS between each city's CS and the prefecture server
  (都道府県サーバ, simulated; M17): the forwarded identity information, lookups across
  cities, and the consistency check (整合性確認) of the two copies by range digests.

Both ends of the HTTPS link validate these models and compute digests with the functions
below, so that equal records give equal digests on either side.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import UTC
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, Field, model_validator

from shared.contracts.base import Message, Operation
from shared.contracts.residents import ResidentStatus
from shared.contracts.types import BirthDate, KanaName, LocalGovernmentCode, MyNumber, PersonName, ResidentCode, Sex
from shared.models import as_utc

#: The four basic items (基本4情報).
FourItem = Literal["name", "address", "sex", "birth_date"]
Purpose = Annotated[str, Field(min_length=1, max_length=200, description="the affair the lookup serves; recorded with it")]
#: The leading digits of resident codes: a range of the code space ("" is every code).
CodePrefix = Annotated[str, Field(pattern=r"^\d{0,11}$")]
RESIDENT_CODE_LENGTH = 11


# --- on the bus: the business systems ask the CS -----------------------------------------


class IdentityQuery(Message):
    """Ask for the identity information of someone who may live elsewhere: by My Number,
    by resident code, or by the four basic items (基本4情報), of which a name (kanji or
    kana) and the birth date are needed."""

    my_number: MyNumber | None = None
    resident_code: ResidentCode | None = None
    name: PersonName | None = None
    name_kana: KanaName | None = None
    sex: Sex | None = None
    birth_date: BirthDate | None = None
    address: PersonName | None = None
    purpose: Purpose

    @model_validator(mode="after")
    def _enough(self) -> IdentityQuery:
        if self.my_number is not None and self.resident_code is not None:
            raise ValueError("give my_number or resident_code, not both")
        no_name = self.name is None and self.name_kana is None
        if not self.by_number and (no_name or self.birth_date is None):
            raise ValueError("give my_number, resident_code, or a name and birth_date")
        return self

    @property
    def by_number(self) -> bool:
        return self.my_number is not None or self.resident_code is not None


class IdentityCandidate(Message):
    """A person found; ``matched_items`` says which of the four items given agree. Found by
    number with none of the items given, the score is 1 and the list is empty; with some
    given, they are scored as a 4-item search would (M03: number plus the items)."""

    resident_code: ResidentCode
    name: str
    name_kana: str
    sex: Sex
    birth_date: BirthDate
    address: str
    city: LocalGovernmentCode
    status: ResidentStatus
    score: float = Field(ge=0, le=1)
    matched_items: list[FourItem]


class IdentityCandidates(Message):
    """Best first. ``prefecture_consulted`` says whether other cities' records were searched."""

    candidates: list[IdentityCandidate]
    prefecture_consulted: bool


class CardVerificationQuery(Message):
    """Did the card check ``verification_id`` verify the holder of ``my_number``?"""

    verification_id: Annotated[int, Field(ge=1)]
    my_number: MyNumber


class CardVerificationStatus(Message):
    """``verified`` only when the check verified the card, recently (``max_age_minutes``), and
    the card's holder is the person with that My Number; else ``reason`` says why not."""

    verified: bool
    checked_at: AwareDatetime
    max_age_minutes: int
    reason: Literal["not_verified", "another_person", "too_old"] | None = None


OPERATIONS = [
    Operation(
        owner="juki_cs",
        name="card_verification",
        request=CardVerificationQuery,
        reply=CardVerificationStatus,
        callers=frozenset({"health_mgmt", "welfare_address"}),
        summary="Whether a card check at the CS verified this person, for a system about to take their data in (M01).",
    ),
    Operation(
        owner="juki_cs",
        name="identity_lookup",
        request=IdentityQuery,
        reply=IdentityCandidates,
        callers=frozenset({"health_mgmt", "welfare_address"}),
        person_field="resident_code",
        summary="Identity information of residents and non-residents, ranked by how well they match (flow [04]).",
    ),
]


# --- over HTTPS: the CS and the prefecture server ----------------------------------------

PREFECTURE_PRINCIPAL = "juki_prefecture"
#: The only kind of peer the prefecture server serves, one per city.
CS_SERVICE = "juki_cs"

IDENTITIES_PATH = "/v1/cities/{city}/identities"
SEARCH_PATH = "/v1/identities/search"
RANGE_DIGESTS_PATH = "/v1/cities/{city}/consistency/digests"
RANGE_ENTRIES_PATH = "/v1/cities/{city}/consistency/entries"
MAX_BATCH = 500
MAX_PREFIXES = 2000
MAX_ENTRIES = 20_000  # record digests in one answer: ranges this large are compared by digest


class IdentityRecord(Message):
    """本人確認情報 as the CS holds it and forwards it: the numbers, the four items, the status
    and when the registry recorded the change (``updated_at``, UTC)."""

    resident_code: ResidentCode
    my_number: MyNumber
    family_name: PersonName
    given_name: PersonName
    family_name_kana: KanaName
    given_name_kana: KanaName
    sex: Sex
    birth_date: BirthDate
    address: PersonName
    status: ResidentStatus
    updated_at: AwareDatetime

    @property
    def name(self) -> str:
        return f"{self.family_name}\u3000{self.given_name}"

    @property
    def name_kana(self) -> str:
        return f"{self.family_name_kana}\u3000{self.given_name_kana}"

    def digest(self) -> str:
        return record_digest(self)

    @classmethod
    def of_row(cls, row: Any) -> IdentityRecord:
        """From a stored row with these columns (the CS's and the prefecture's tables)."""
        values = {name: getattr(row, name) for name in cls.model_fields}
        values["updated_at"] = as_utc(row.updated_at)
        return cls(**values)


class IdentityBatch(Message):
    """Forwarded records, oldest change first; the prefecture keeps the newest of each person."""

    records: list[IdentityRecord] = Field(min_length=1, max_length=MAX_BATCH)


class BatchReceipt(Message):
    received: int
    applied: int  # the rest were no newer than what the prefecture holds


class PrefectureQuery(Message):
    """A lookup across cities by exactly one key: My Number, resident code, or birth date
    (optionally with sex), which the CS then ranks by the four items itself."""

    my_number: MyNumber | None = None
    resident_code: ResidentCode | None = None
    birth_date: BirthDate | None = None
    sex: Sex | None = None

    @model_validator(mode="after")
    def _one_key(self) -> PrefectureQuery:
        keys = [self.my_number, self.resident_code, self.birth_date]
        if sum(key is not None for key in keys) != 1:
            raise ValueError("give exactly one of my_number, resident_code and birth_date")
        if self.sex is not None and self.birth_date is None:
            raise ValueError("sex narrows a birth-date lookup only")
        return self


class CityIdentity(Message):
    city: LocalGovernmentCode
    record: IdentityRecord


class PrefectureMatches(Message):
    """Other cities' records (never the asking city's own); ``truncated`` when more matched."""

    records: list[CityIdentity]
    truncated: bool


class RangeRequest(Message):
    prefixes: list[CodePrefix] = Field(min_length=1, max_length=MAX_PREFIXES)


class RangeDigest(Message):
    prefix: CodePrefix
    count: int
    digest: str


class RangeDigests(Message):
    ranges: list[RangeDigest]


class RecordDigest(Message):
    resident_code: ResidentCode
    digest: str


class RangeEntries(Message):
    entries: list[RecordDigest]


# --- digests: the same on both sides -----------------------------------------------------


def record_digest(record: IdentityRecord) -> str:
    """SHA-256 over the record's fields in a fixed order, the time in UTC to the microsecond."""
    moment = record.updated_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    fields = (
        record.resident_code,
        record.my_number,
        record.family_name,
        record.given_name,
        record.family_name_kana,
        record.given_name_kana,
        record.sex,
        record.birth_date.isoformat(),
        record.address,
        record.status,
        moment,
    )
    return hashlib.sha256("\x1f".join(fields).encode()).hexdigest()


def range_digest(entries: Iterable[tuple[str, str]]) -> str:
    """The digest of a range: SHA-256 over its (resident code, record digest) pairs in code order."""
    hasher = hashlib.sha256()
    for code, digest in sorted(entries):
        hasher.update(f"{code}:{digest}\n".encode())
    return hasher.hexdigest()


def prefix_bounds(prefix: str) -> tuple[str, str]:
    """The first and last resident code of a prefix, for ``BETWEEN`` (codes are 11 digits)."""
    pad = RESIDENT_CODE_LENGTH - len(prefix)
    return prefix + "0" * pad, prefix + "9" * pad
