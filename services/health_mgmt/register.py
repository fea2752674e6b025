"""The register (予防接種台帳): people, their dose records, and what the schedule makes of them.

Framework-free. A record's items are checked by the catalogue (M02, M04) and stored as the
JSON of their canonical text (dates ``YYYY-MM-DD``, decimals as written); the register
copies the few values it searches on into columns. The natural key of a record is
(person, record type, date): the same dose never lands twice (409 at the counter, a
refused row in a clinic report). Whatever stores or corrects a dose notes the person for
the copy for provision (``copies.note_changed``) in the same transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from functools import lru_cache
from typing import Any

from sqlalchemy import select, tuple_
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from services.health_mgmt import copies
from services.health_mgmt.catalogue import load_catalogue
from services.health_mgmt.models import Dose, Subject
from services.health_mgmt.schedule import Evaluation, Period, Person, RecordedDose, attained_on, evaluate, load_schedule
from services.health_mgmt.vouchers import draw_voucher_number
from shared.errors import Conflict, InvalidRequest, NotFound, Problem
from shared.models import utcnow

#: The item that dates each record: 接種日, or 検査日 for an antibody test.
DATE_ITEMS = ("inoculation_date", "test_date")
MAX_VOUCHER_DRAWS = 8
_SEX_CODE = {"male": "M", "female": "F"}


class SubjectNotFound(NotFound):
    type = "urn:renkei:problem:health-mgmt:unknown-subject"
    title = "No such person in the vaccination register"


class DuplicateDose(Conflict):
    type = "urn:renkei:problem:health-mgmt:duplicate-dose"
    title = "This dose is already recorded"


# --- items ----------------------------------------------------------------------------


def items_to_json(values: Mapping[str, Any]) -> dict[str, Any]:
    """The canonical JSON of parsed item values (the catalogue reads it back unchanged)."""
    out: dict[str, Any] = {}
    for code, value in values.items():
        if isinstance(value, date):
            out[code] = value.isoformat()
        elif isinstance(value, Decimal):
            out[code] = str(value)
        else:
            out[code] = value
    return out


def record_date(values: Mapping[str, Any]) -> date:
    for item in DATE_ITEMS:
        if item in values:
            return values[item]
    raise InvalidRequest("a record needs 接種日 or 検査日")


def examination_of(values: Mapping[str, Any]) -> str:
    """接種 / 予診のみ, or 検査 for a type without 診察区分 (an antibody test)."""
    return values.get("examination_type", "test")


@dataclass(frozen=True)
class CheckedRecord:
    """A record that passed the catalogue, ready to be stored."""

    record_type: str
    values: Mapping[str, Any]

    @property
    def dose_date(self) -> date:
        return record_date(self.values)

    @property
    def examination_type(self) -> str:
        return examination_of(self.values)

    @property
    def product(self) -> str | None:
        return self.values.get("vaccine_product")


def check_record(record_type: str, items: Mapping[str, Any]) -> CheckedRecord:
    """The catalogue's verdict; raises ``RecordRejected`` (422, every field) when refused."""
    return CheckedRecord(record_type, load_catalogue().parse(record_type, items))


def vaccine_of(record_type: str) -> str | None:
    """The schedule's vaccine for a record type; none for types the schedule has no series for."""
    return _vaccine_by_record_type().get(record_type)


@lru_cache(maxsize=1)
def _vaccine_by_record_type() -> dict[str, str]:
    return {v.record_type: v.code for v in load_schedule().vaccines.values() if v.record_type}


# --- people ---------------------------------------------------------------------------


def find_subject(session: Session, number: str) -> Subject:
    subject = session.get(Subject, number)
    if subject is None:
        raise SubjectNotFound(f"no person with integrated address number {number} in the register")
    return subject


def person_of(subject: Subject) -> Person:
    """The person as the schedule sees them."""
    return Person(
        birth_date=subject.birth_date,
        sex=_SEX_CODE[subject.sex],
        heart_kidney_respiratory_disability=subject.heart_kidney_respiratory_disability,
        hiv_immune_disability=subject.hiv_immune_disability,
        hbv_perinatal_prophylaxis=subject.hbv_perinatal_prophylaxis,
    )


def enrol(session: Session, number: str, details: Mapping[str, Any]) -> tuple[Subject, bool]:
    """Add the person under ``number`` with a fresh voucher number, or bring their details
    up to date; the flag says whether they are new. ``details`` are the address system's
    items (name, name_kana, sex, birth_date, address, status, resident_code) and flags."""
    subject = session.get(Subject, number)
    if subject is not None:
        changed = False
        for key, value in details.items():
            if getattr(subject, key) != value:
                setattr(subject, key, value)
                changed = True
        if changed:
            subject.updated_at = utcnow()
        return subject, False
    for _ in range(MAX_VOUCHER_DRAWS):
        voucher = draw_voucher_number()
        if session.scalar(select(Subject.voucher_number).where(Subject.voucher_number == voucher)) is None:
            break
    else:  # pragma: no cover - a clash is one in a hundred million per draw
        raise Problem("no free voucher number could be drawn")
    subject = Subject(integrated_address_number=number, voucher_number=voucher, **details)
    session.add(subject)
    try:
        session.flush()
    except IntegrityError:
        raise Conflict("the resident code or voucher number is already held by another person") from None
    return subject, True


# --- doses ----------------------------------------------------------------------------


def doses_of(session: Session, number: str) -> list[Dose]:
    return list(session.scalars(select(Dose).where(Dose.subject_number == number).order_by(Dose.dose_date, Dose.id)))


def recorded_doses(doses: Iterable[Dose]) -> list[RecordedDose]:
    """The doses the schedule judges: given (not 予診のみ), of a type it has series for."""
    out = []
    for dose in doses:
        vaccine = vaccine_of(dose.record_type)
        if vaccine is not None and dose.examination_type == "inoculated":
            out.append(RecordedDose(vaccine, dose.dose_date, dose.product, dose_id=str(dose.id)))
    return out


def evaluation(subject: Subject, doses: Sequence[Dose], as_of: date) -> Evaluation:
    return evaluate(person_of(subject), recorded_doses(doses), as_of)


def existing_keys(session: Session, keys: Iterable[tuple[str, str, date]]) -> set[tuple[str, str, date]]:
    """Which of the (person, record type, date) keys are already recorded."""
    keys = list(keys)
    found: set[tuple[str, str, date]] = set()
    for start in range(0, len(keys), 500):
        chunk = keys[start : start + 500]
        rows = session.execute(
            select(Dose.subject_number, Dose.record_type, Dose.dose_date).where(
                tuple_(Dose.subject_number, Dose.record_type, Dose.dose_date).in_(chunk)
            )
        )
        found.update((n, t, d) for n, t, d in rows)
    return found


def dose_row(
    subject_number: str,
    record: CheckedRecord,
    *,
    source: str,
    recorded_by: str,
    clinic_code: str | None = None,
    import_id: int | None = None,
    fee_yen: int | None = None,
) -> dict[str, Any]:
    """The columns of a dose record, for a bulk insert (the fee, if not given, from the items)."""
    values = record.values
    return {
        "subject_number": subject_number,
        "record_type": record.record_type,
        "dose_date": record.dose_date,
        "examination_type": record.examination_type,
        "product": record.product,
        "clinic_code": clinic_code,
        "billing_month": values.get("billing_month"),
        "commission_fee_yen": fee_yen if fee_yen is not None else values.get("commission_fee_yen"),
        "source": source,
        "import_id": import_id,
        "items": items_to_json(values),
        "recorded_by": recorded_by,
        "recorded_at": utcnow(),
    }


def new_dose(subject_number: str, record: CheckedRecord, *, source: str, recorded_by: str) -> Dose:
    return Dose(**dose_row(subject_number, record, source=source, recorded_by=recorded_by))


def record_dose(session: Session, subject: Subject, record: CheckedRecord, *, source: str, recorded_by: str) -> Dose:
    """Store one checked record for ``subject``; a second record of the same dose is refused."""
    key = (subject.integrated_address_number, record.record_type, record.dose_date)
    if record.dose_date < subject.birth_date:
        raise InvalidRequest(f"{record.dose_date} is before the person's birth", field=DATE_ITEMS[0])
    if existing_keys(session, [key]):
        raise DuplicateDose(f"{record.record_type} on {record.dose_date} is already recorded for this person")
    dose = new_dose(subject.integrated_address_number, record, source=source, recorded_by=recorded_by)
    session.add(dose)
    try:
        session.flush()
    except IntegrityError:  # recorded meanwhile by another terminal or an import
        raise DuplicateDose(f"{record.record_type} on {record.dose_date} is already recorded for this person") from None
    copies.note_changed(session, [subject.integrated_address_number])  # the 副本 follows, from this transaction
    return dose


def age_text(birth: date, on: date) -> str:
    """接種時年齢 as the register writes it, e.g. ``1歳2か月``: ages are attained on the day
    before the birthday (年齢計算ニ関スル法律), as the schedule counts them."""
    months = max(0, (on.year - birth.year) * 12 + on.month - birth.month + 1)
    while months > 0 and attained_on(birth, Period(months=months)) > on:
        months -= 1
    years, rest = divmod(months, 12)
    return f"{years}歳{rest}か月" if rest else f"{years}歳"


def find_dose(session: Session, number: str, dose_id: int) -> Dose:
    dose = session.get(Dose, dose_id)
    if dose is None or dose.subject_number != number:
        raise NotFound(f"no dose {dose_id} for this person")
    return dose


def correct_dose(session: Session, subject: Subject, dose: Dose, record: CheckedRecord, *, corrected_by: str) -> Dose:
    """Replace a stored record's items with a checked correction (same type); the natural key
    may change, but never onto another dose of the person. Where it came from stays."""
    if record.record_type != dose.record_type:
        raise InvalidRequest("a correction keeps the record's type: record the other type instead", field="record_type")
    if record.dose_date < subject.birth_date:
        raise InvalidRequest(f"{record.dose_date} is before the person's birth", field=DATE_ITEMS[0])
    key = (subject.integrated_address_number, record.record_type, record.dose_date)
    if record.dose_date != dose.dose_date and existing_keys(session, [key]):
        raise DuplicateDose(f"{record.record_type} on {record.dose_date} is already recorded for this person")
    row = dose_row(subject.integrated_address_number, record, source=dose.source, recorded_by=corrected_by,
                   clinic_code=dose.clinic_code, import_id=dose.import_id)
    for column in ("dose_date", "examination_type", "product", "billing_month", "commission_fee_yen", "items", "recorded_by", "recorded_at"):
        setattr(dose, column, row[column])
    try:
        session.flush()
    except IntegrityError:
        raise DuplicateDose(f"{record.record_type} on {record.dose_date} is already recorded for this person") from None
    copies.note_changed(session, [subject.integrated_address_number])
    return dose
