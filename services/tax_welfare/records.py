"""The tax and welfare systems' records, free of any transport: who they know, what they
record per fiscal year, how they answer the health management, and loading a file.

- ``apply_resident_change`` and ``apply_number_assigned`` keep the people known
  (``taxpayers``) from the resident feed and the integrated address system; once a person
  has both a birth date and an integrated address number, the recent fiscal years are
  assessed (``assessment``) and recorded, unless a record is already there: the same event
  again, or the events in another order, give the same records.
- ``local_tax_answers`` / ``assistance_answers`` answer a batch: a status only where number
  and birth date both agree with the record (突合 on this side too, so that nothing is said
  about somebody else); ``birth_date_mismatch`` without the status; ``not_held`` otherwise.
- ``load_file`` takes a file in the format the health management imports
  (``統合宛名番号,生年月日,区分``); a loaded record replaces what the assessment made.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.tax_welfare.assessment import assess, fiscal_year_of
from services.tax_welfare.models import AssistanceRecord, LocalTaxRecord, Taxpayer, YearAssessed
from shared.contracts.network import NumberAssigned
from shared.contracts.residents import ResidentChanged
from shared.contracts.tax_welfare import (
    LocalTaxAnswer,
    LocalTaxReply,
    PublicAssistanceAnswer,
    PublicAssistanceReply,
    StatusRequest,
)
from shared.db import insert_ignoring_conflicts
from shared.errors import InvalidRequest
from shared.ids import InvalidIdentifier, validate_birth_date, validate_integrated_address_number
from shared.models import as_utc, utcnow

#: The status a change leaves the person in; the other kinds carry it in the record.
STATUS_AFTER = {"birth": "resident", "move_in": "resident", "special_move_in": "resident", "move_out": "moved_out", "death": "deceased"}
#: Changes that start a stay in the city (the stay's first day is the change's effective date).
ARRIVALS = frozenset({"birth", "move_in", "special_move_in"})

#: The file format, as the health management imports it: 区分 per source.
HEADER = ["統合宛名番号", "生年月日", "区分"]
FILE_STATUS = {"tax": {"課税": "taxed", "非課税": "tax_exempt"}, "welfare": {"受給": "public_assistance"}}


def assessed_years(today: date, count: int) -> list[int]:
    """The current fiscal year and the ``count - 1`` before it."""
    current = fiscal_year_of(today)
    return [current - back for back in range(count)]


# --- who is known (the resident feed and number_assigned) ------------------------------


def _taxpayer(session: Session, resident_code: str) -> Taxpayer:
    """The person's row, made if new and locked for this transaction: the two feeds are
    applied concurrently, and each must see what the other committed before it decides
    whether the person can be assessed."""
    insert_ignoring_conflicts(session, Taxpayer.__table__, {"resident_code": resident_code, "updated_at": utcnow()})
    return session.get(Taxpayer, resident_code, populate_existing=True, with_for_update=True)


def apply_resident_change(session: Session, city: str, change: ResidentChanged, years: Iterable[int]) -> str:
    """Apply one resident change; returns ``applied`` or ``stale`` (an older change after a newer one)."""
    record = change.resident
    person = _taxpayer(session, record.resident_code)
    recorded_at = as_utc(change.recorded_at)
    if person.last_change_at is not None and recorded_at < as_utc(person.last_change_at):
        return "stale"
    person.birth_date, person.household_id = record.birth_date, record.household_id
    person.status = STATUS_AFTER.get(change.kind, record.status)
    if change.kind in ARRIVALS:
        person.resident_since = change.effective_date
    person.last_change_at, person.updated_at = recorded_at, utcnow()
    session.flush()
    seed_records(session, city, person, years)
    return "applied"


def apply_number_assigned(session: Session, city: str, event: NumberAssigned, years: Iterable[int]) -> str:
    """Key the person by their integrated address number; returns ``applied`` or ``ignored`` (no resident code)."""
    if event.resident_code is None:
        return "ignored"  # a non-resident (住登外者): not assessed here
    person = _taxpayer(session, event.resident_code)
    if person.integrated_address_number != event.integrated_address_number:
        # A resident code can change (住民票コードの変更); the number then follows the new one.
        for earlier in session.scalars(
            select(Taxpayer).where(Taxpayer.integrated_address_number == event.integrated_address_number).with_for_update()
        ):
            earlier.integrated_address_number, earlier.updated_at = None, utcnow()
        session.flush()
        person.integrated_address_number, person.updated_at = event.integrated_address_number, utcnow()
        session.flush()
    seed_records(session, city, person, years)
    return "applied"


def seed_records(session: Session, city: str, person: Taxpayer, years: Iterable[int]) -> int:
    """Record the person's assessments for ``years`` where none is recorded yet; returns how many were added."""
    if person.integrated_address_number is None or person.birth_date is None:
        return 0
    added = 0
    for fiscal_year in years:
        found = assess(city, person.resident_code, person.household_id, person.birth_date, person.resident_since, fiscal_year)
        if found is None:
            continue
        key = {"integrated_address_number": person.integrated_address_number, "fiscal_year": fiscal_year, "birth_date": person.birth_date}
        added += insert_ignoring_conflicts(
            session, LocalTaxRecord.__table__, {**key, "status": found.local_tax, "origin": "seeded", "recorded_at": utcnow()}
        )
        if found.public_assistance:
            insert_ignoring_conflicts(session, AssistanceRecord.__table__, {**key, "origin": "seeded", "recorded_at": utcnow()})
    return added


def years_not_assessed(session: Session, years: Iterable[int]) -> list[int]:
    """Of ``years``, those for which everyone known has not yet been assessed."""
    years = sorted(set(years))
    done = set(session.scalars(select(YearAssessed.fiscal_year).where(YearAssessed.fiscal_year.in_(years))))
    return [year for year in years if year not in done]


def assess_everyone(db, city: str, fiscal_year: int, batch: int = 1000) -> int:
    """Assess every known person for ``fiscal_year`` (where no record is there yet), in batches,
    then note the year as assessed; returns how many people were looked at."""
    after, seen = "", 0
    while True:
        with db.session() as session:
            people = list(
                session.scalars(
                    select(Taxpayer)
                    .where(Taxpayer.resident_code > after, Taxpayer.integrated_address_number.is_not(None), Taxpayer.birth_date.is_not(None))
                    .order_by(Taxpayer.resident_code)
                    .limit(batch)
                )
            )
            for person in people:
                seed_records(session, city, person, [fiscal_year])
        seen += len(people)
        if len(people) < batch:
            break
        after = people[-1].resident_code
    with db.session() as session:
        insert_ignoring_conflicts(session, YearAssessed.__table__, {"fiscal_year": fiscal_year, "people": seen, "finished_at": utcnow()})
    return seen


# --- answers (flow [06]) ---------------------------------------------------------------


def _held(session: Session, model, request: StatusRequest) -> dict[str, object]:
    numbers = [person.integrated_address_number for person in request.people]
    rows = session.scalars(select(model).where(model.fiscal_year == request.fiscal_year, model.integrated_address_number.in_(numbers)))
    return {row.integrated_address_number: row for row in rows}


def _outcome(row, birth_date: date) -> str:
    if row is None:
        return "not_held"
    return "held" if row.birth_date == birth_date else "birth_date_mismatch"


def local_tax_answers(session: Session, request: StatusRequest) -> LocalTaxReply:
    held = _held(session, LocalTaxRecord, request)
    answers = []
    for person in request.people:
        row = held.get(person.integrated_address_number)
        outcome = _outcome(row, person.birth_date)
        answers.append(LocalTaxAnswer(**person.model_dump(), outcome=outcome, status=row.status if outcome == "held" else None))
    return LocalTaxReply(fiscal_year=request.fiscal_year, answers=answers)


def assistance_answers(session: Session, request: StatusRequest) -> PublicAssistanceReply:
    held = _held(session, AssistanceRecord, request)
    answers = []
    for person in request.people:
        outcome = _outcome(held.get(person.integrated_address_number), person.birth_date)
        answers.append(PublicAssistanceAnswer(**person.model_dump(), outcome=outcome, status="public_assistance" if outcome == "held" else None))
    return PublicAssistanceReply(fiscal_year=request.fiscal_year, answers=answers)


# --- one person, for the staff terminal ------------------------------------------------


def local_tax_records(session: Session, number: str) -> list[dict]:
    rows = session.scalars(select(LocalTaxRecord).where(LocalTaxRecord.integrated_address_number == number).order_by(LocalTaxRecord.fiscal_year))
    return [{"fiscal_year": r.fiscal_year, "birth_date": r.birth_date, "status": r.status, "origin": r.origin} for r in rows]


def assistance_records(session: Session, number: str) -> list[dict]:
    query = select(AssistanceRecord).where(AssistanceRecord.integrated_address_number == number).order_by(AssistanceRecord.fiscal_year)
    return [{"fiscal_year": r.fiscal_year, "birth_date": r.birth_date, "origin": r.origin} for r in session.scalars(query)]


# --- loading a file ---------------------------------------------------------------------


@dataclass
class LoadReport:
    source: str
    fiscal_year: int
    rows: int = 0
    loaded: int = 0
    refused: list[dict] = field(default_factory=list)


def _row(cells: list[str], source: str) -> tuple[str, date, str]:
    if len(cells) != 3:
        raise ValueError("expected 統合宛名番号,生年月日,区分")
    number, born, kind = (cell.strip() for cell in cells)
    status = FILE_STATUS[source].get(kind)
    if status is None:
        raise ValueError(f"区分 must be one of {', '.join(FILE_STATUS[source])}")
    try:
        return validate_integrated_address_number(number), validate_birth_date(born), status
    except InvalidIdentifier as exc:
        raise ValueError(str(exc)) from None


def load_file(session: Session, text: str, source: str, fiscal_year: int) -> LoadReport:
    """Record each good row for ``fiscal_year`` (replacing what is there); refuse the rest with their line."""
    if source not in FILE_STATUS:
        raise InvalidRequest(f"source must be one of {', '.join(FILE_STATUS)}", field="source")
    reader = csv.reader(io.StringIO(text, newline=""))
    header = [cell.strip().lstrip("\ufeff") for cell in next(reader, [])]
    if header != HEADER:
        raise InvalidRequest(f"the header must be {','.join(HEADER)}", header=header)
    report = LoadReport(source, fiscal_year)
    model = LocalTaxRecord if source == "tax" else AssistanceRecord
    for cells in reader:
        if not any(cell.strip() for cell in cells):
            continue
        report.rows += 1
        try:
            number, born, status = _row(cells, source)
        except ValueError as exc:
            report.refused.append({"line": reader.line_num, "detail": str(exc)})
            continue
        row = session.get(model, (number, fiscal_year))
        if row is None:
            row = model(integrated_address_number=number, fiscal_year=fiscal_year)
            session.add(row)
        row.birth_date, row.origin, row.recorded_at = born, "loaded", utcnow()
        if source == "tax":
            row.status = status
        report.loaded += 1
    session.flush()
    return report


