"""What the ledger holds: provision records (情報提供等記録) and the record of their pruning.

A provision record carries the items of My Number Act art. 23 — who asked (情報照会者), who
provided (情報提供者), when it was asked and when provided, which affair (事務), procedure
(事務手続) and item (特定個人情報), the serial number (処理通番), how it ended, and whether it
is withheld from disclosure (不開示) — plus the tenant's own key for the person, so that a
resident can be shown who asked for their data (M34). A My Number is never a person key.

The leaf data of the Merkle log is a record's canonical bytes: the JSON of the record in
RFC 8785 canonical form, with times as UTC ``YYYY-MM-DDTHH:MM:SS.ffffffZ``.
"""

from __future__ import annotations

import json
import re
import unicodedata
from datetime import UTC, datetime
from typing import Annotated, Literal

import rfc8785
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    TypeAdapter,
    model_validator,
)

from shared.ids import InvalidIdentifier, validate_local_government_code

HUB_TENANT = "hub"

#: What happened: a query sent (照会), a provision made (提供), a permit decided by the hub
#: (情報提供許可証), an answer received by the requester (回答受領).
RecordKind = Literal["query", "provision", "permit", "answer_received"]
#: How it ended. ``held_for_review`` waits for staff (M26); ``released`` is its release.
Outcome = Literal["requested", "provided", "refused", "held_for_review", "released", "permit_issued", "permit_refused"]

REFUSALS = frozenset({"refused", "permit_refused"})
PROVISIONS = frozenset({"provided", "released"})
PERMIT_OUTCOMES = frozenset({"permit_issued", "permit_refused"})


def _utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


def format_utc(value: datetime) -> str:
    """The one text form of a time in canonical bytes (microseconds, always UTC, ``Z``)."""
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


UtcTimestamp = Annotated[AwareDatetime, AfterValidator(_utc), PlainSerializer(format_utc, return_type=str, when_used="json")]


def check_tenant(value: str) -> str:
    """The tenant, if it is 'hub' or a local-government code written as six ASCII digits."""
    if value == HUB_TENANT:
        return value
    try:
        canonical = validate_local_government_code(value)
    except InvalidIdentifier:
        canonical = None
    if canonical != value:
        raise ValueError(f"{value!r} is neither 'hub' nor a local-government code (six digits with check digit)")
    return value


def _code(prefix: str, label: str):
    pattern = re.compile(rf"^{prefix}[0-9]{{14}}$")

    def check(value: str) -> str:
        if not pattern.match(value):
            raise ValueError(f"{label} must be {prefix} followed by 14 digits, not {value!r}")
        return value

    return AfterValidator(check)


_SEPARATOR_BETWEEN_DIGITS = re.compile(r"(?<=[0-9])[-._](?=[0-9])")
_DIGIT_RUN = re.compile(r"[0-9]+")


def looks_like_my_number(value: str) -> bool:
    """True when ``value`` holds a run of exactly 12 digits, separators between them ignored.

    A My Number is 12 digits; refusing every such run, check digit or not, keeps real
    numbers, mistyped ones and ones dressed up as ``1234-5678-9012``, ``mn:…`` or in
    full-width digits out of the ledger. Person keys are therefore never 12-digit numbers.
    """
    joined = _SEPARATOR_BETWEEN_DIGITS.sub("", unicodedata.normalize("NFKC", value))
    return any(len(run) == 12 for run in _DIGIT_RUN.findall(joined))


def _person_key(value: str) -> str:
    if looks_like_my_number(value):
        raise ValueError("a person key must be the tenant's own number or symbol, never a My Number")
    return value


def _single_line(value: str) -> str:
    if any(ord(c) < 0x20 or ord(c) == 0x7F or 0xD800 <= ord(c) <= 0xDFFF for c in value):
        raise ValueError("control characters and lone surrogates are not allowed")
    return value


Tenant = Annotated[str, AfterValidator(check_tenant)]
InstitutionCode = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")]
AffairCode = Annotated[str, _code("JM", "an affair code (事務コード)")]
ProcedureCode = Annotated[str, _code("JT", "a procedure code (事務手続コード)")]
ItemCode = Annotated[str, _code("TM", "an item code (特定個人情報名コード)")]
SerialNumber = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")]
PersonKey = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,63}$"), AfterValidator(_person_key)]
Reason = Annotated[str, Field(min_length=1, max_length=500), AfterValidator(_single_line)]


_SAFE_INTEGER = 2**53 - 1


def _flat_and_plain(document: dict) -> bool:
    """A flat object of ASCII keys and strings, safe integers, booleans and nulls."""
    for key, value in document.items():
        kind = type(value)
        if type(key) is not str or not key.isascii():
            return False
        if kind is int:
            if not -_SAFE_INTEGER <= value <= _SAFE_INTEGER:
                return False
        elif not (kind is str or kind is bool or value is None):
            return False
    return True


def canonical_json(document: dict) -> bytes:
    """RFC 8785 (JSON Canonicalization Scheme) bytes of a JSON-ready document.

    Every ledger entry is a flat object of ASCII keys and plain values. For those, RFC 8785
    says exactly what Python's C JSON encoder does with sorted keys, no whitespace and UTF-8
    output (same escapes, same integers, code-point order equals UTF-16 order for ASCII),
    at a fifth of the cost; anything else goes to the ``rfc8785`` reference encoder. A
    property test holds the two equal.
    """
    if _flat_and_plain(document):
        return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return rfc8785.dumps(document)


class _Entry(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    def canonical_bytes(self) -> bytes:
        """The leaf data: this entry in RFC 8785 canonical JSON."""
        return canonical_json(self.model_dump(mode="json"))


class ProvisionRecord(_Entry):
    """情報提供等記録: one query, provision or permit, as My Number Act art. 23 requires."""

    type: Literal["provision"] = "provision"
    tenant: Tenant
    kind: RecordKind
    requester: InstitutionCode = Field(description="情報照会者")
    provider: InstitutionCode = Field(description="情報提供者")
    affair_code: AffairCode = Field(description="事務コード")
    procedure_code: ProcedureCode = Field(description="事務手続コード")
    item_code: ItemCode = Field(description="特定個人情報名コード")
    serial_number: SerialNumber = Field(description="処理通番")
    requested_at: UtcTimestamp = Field(description="照会日時")
    provided_at: UtcTimestamp | None = Field(default=None, description="提供日時")
    outcome: Outcome
    refusal_reason: Reason | None = None
    non_disclosure: bool = Field(default=False, description="不開示: withheld from self-information disclosure")
    person_key: PersonKey = Field(description="the tenant's own key for the person (統合宛名番号 or 符号)")

    @model_validator(mode="after")
    def _coherent(self) -> ProvisionRecord:
        if (self.kind == "permit") != (self.outcome in PERMIT_OUTCOMES):
            raise ValueError("permit outcomes belong to permit records, and permit records have only those")
        if self.outcome == "requested" and self.kind != "query":
            raise ValueError("only a query can be left at 'requested'")
        if (self.refusal_reason is None) == (self.outcome in REFUSALS):
            raise ValueError("a refusal needs its reason, and only a refusal has one")
        if (self.provided_at is None) == (self.outcome in PROVISIONS):
            raise ValueError("a provision date-time belongs to provided or released records alone")
        if self.provided_at is not None and self.provided_at < self.requested_at:
            raise ValueError("provided before it was requested")
        return self


class RetentionPruning(_Entry):
    """The record that contents of provision records past retention were dropped (M32).

    Leaves ``first_index`` to ``end_index`` (exclusive) lost their contents; their hashes
    stay, so the tree and every signature over it still verify.
    """

    type: Literal["retention_pruning"] = "retention_pruning"
    tenant: Tenant
    pruned_before: UtcTimestamp = Field(description="records sealed before this time were pruned")
    first_index: int = Field(ge=0)
    end_index: int = Field(ge=0)
    records_pruned: int = Field(ge=0)
    pruned_at: UtcTimestamp

    @model_validator(mode="after")
    def _range(self) -> RetentionPruning:
        if self.end_index < self.first_index:
            raise ValueError("the pruned range ends before it starts")
        if self.records_pruned > self.end_index - self.first_index:
            raise ValueError("more records pruned than the range holds")
        return self


LedgerEntry = Annotated[ProvisionRecord | RetentionPruning, Field(discriminator="type")]
_ENTRY = TypeAdapter(LedgerEntry)


def parse_entry(canonical: bytes) -> ProvisionRecord | RetentionPruning:
    """An entry back from its canonical bytes, validated as strictly as when it was made."""
    return _ENTRY.validate_json(canonical)
