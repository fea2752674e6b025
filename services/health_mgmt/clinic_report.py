"""Monthly clinic reports (原票, flow [12]): parse into a draft, report every bad row, commit the good.

The city defines the file (docs/clinic_report_format.md): CSV with a Japanese header row,
in Shift_JIS (CP932) as clinics' software writes it, or UTF-8 (with or without BOM). The
encoding is found from the bytes: a UTF-8 BOM, else strict UTF-8, else strict CP932.

``build_draft`` reads a file and checks every row against the register: the clinic master,
the person (voucher number and birth date), the catalogue's items (M02, M04), the calendar,
the routine schedule, and the records already stored or earlier in the same file. Each bad
row is reported with its line number and reason; nothing is written.

``commit`` stores the good rows of a draft in the caller's transaction, together with the
import's record, which is unique by the SHA-256 of the file: the same file again changes
nothing, and a row already stored (whatever file brought it) is refused by its natural key
(person, record type, date). Everything lands in one transaction, so an import that dies
midway leaves nothing behind.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import re
import unicodedata
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.health_mgmt import copies, register
from services.health_mgmt.catalogue import RecordType, load_catalogue
from services.health_mgmt.clinics import FeeTable, load_fee_table
from services.health_mgmt.fees import copayments, exemptions
from services.health_mgmt.models import Clinic, ClinicReportImport, Dose, Subject
from services.health_mgmt.schedule import RecordedDose, fiscal_year, judge
from services.health_mgmt.vouchers import is_valid_voucher_number
from shared.errors import InvalidRequest
from shared.models import utcnow

#: Header (after NFKC normalisation) → column key. The order in the file does not matter.
COLUMNS: dict[str, str] = {
    "医療機関コード": "clinic_code",
    "請求年月": "billing_month",
    "接種券番号": "voucher_number",
    "生年月日": "birth_date",
    "予防接種の種類": "record_type",
    "接種日": "inoculation_date",
    "診察区分": "examination_type",
    "ワクチン": "vaccine_product",
    "LOT-NO": "lot_number",
    "接種量": "dose_volume_ml",
    "体温": "body_temperature_c",
    "予診医師名": "screening_doctor_name",
    "接種医師名": "vaccinating_doctor_name",
    "製薬会社": "manufacturer",
    "備考": "remarks",
}
REQUIRED = ("clinic_code", "billing_month", "voucher_number", "birth_date", "record_type", "inoculation_date", "examination_type")
#: Columns copied into the record's items as written (when not empty).
ITEM_COLUMNS = (
    "lot_number", "dose_volume_ml", "body_temperature_c", "screening_doctor_name", "vaccinating_doctor_name",
    "manufacturer", "remarks",
)
#: Free text is kept as written; every other cell is NFKC-normalised (全角 digits and letters).
TEXT_COLUMNS = frozenset({"screening_doctor_name", "vaccinating_doctor_name", "manufacturer", "remarks"})
EXAMINATION = {"接種": "inoculated", "予診のみ": "screening_only", "inoculated": "inoculated", "screening_only": "screening_only"}

REASONS = {
    "wrong_column_count": "the row does not have one cell per column",
    "unknown_clinic": "the clinic is not in the clinic master, or not active",
    "bad_billing_month": "請求年月 is not a month",
    "unknown_person": "no person in the register has this voucher number",
    "wrong_voucher_number": "the voucher number is malformed or belongs to someone else",
    "unknown_vaccine_type": "not a vaccine type reported on this form",
    "impossible_date": "the date is not a calendar date, is in the future, or is before the person's birth",
    "invalid_item": "an item is refused by the record catalogue",
    "not_valid_by_schedule": "the routine schedule does not count this dose",
    "duplicate_dose": "this dose is already recorded",
    "duplicate_in_file": "the same dose appears earlier in this file",
}

_DATE = re.compile(r"^(\d{4})[-/]?(\d{1,2})[-/]?(\d{1,2})$")
_MONTH = re.compile(r"^(\d{4})[-/]?(\d{1,2})$")


class UnreadableReport(InvalidRequest):
    """The file as a whole cannot be read: encoding, header (422)."""

    type = "urn:renkei:problem:health-mgmt:unreadable-clinic-report"
    title = "The clinic report cannot be read"


@dataclass(frozen=True)
class RowProblem:
    line: int
    reason: str
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return {"line": self.line, "reason": self.reason, "detail": self.detail}


@dataclass
class GoodRow:
    line: int
    subject_number: str
    clinic_code: str
    record: register.CheckedRecord
    fee_yen: int | None


@dataclass
class Draft:
    """What a file would store, and every row it would refuse."""

    digest: str
    file_name: str
    encoding: str
    rows: int
    good: list[GoodRow] = field(default_factory=list)
    problems: list[RowProblem] = field(default_factory=list)
    already_imported: ClinicReportImport | None = None

    def fees(self) -> dict[tuple[str, str], tuple[int, int]]:
        """(clinic, billing month) → (records, yen) of the good rows."""
        out: dict[tuple[str, str], tuple[int, int]] = {}
        for row in self.good:
            key = (row.clinic_code, row.record.values["billing_month"])
            count, total = out.get(key, (0, 0))
            out[key] = (count + 1, total + (row.fee_yen or 0))
        return out


def decode(data: bytes) -> tuple[str, str]:
    """The text of the file and the encoding it was in."""
    if data.startswith(codecs.BOM_UTF8):
        return data[len(codecs.BOM_UTF8) :].decode("utf-8"), "utf-8-sig"
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp932"), "cp932"
    except UnicodeDecodeError as exc:
        raise UnreadableReport(f"the file is neither UTF-8 nor Shift_JIS (CP932): byte {exc.start} cannot be read") from None


def _nfkc(text: str) -> str:
    return unicodedata.normalize("NFKC", text).strip()


def read_rows(text: str) -> Iterator[tuple[int, dict[str, str] | None]]:
    """(line, cells by column key) for each non-empty row; ``None`` cells for a ragged row."""
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise UnreadableReport("the file is empty") from None
    keys = [COLUMNS.get(_nfkc(name)) for name in header]
    unknown = [name for name, key in zip(header, keys) if key is None and name.strip()]
    missing = [name for name, key in COLUMNS.items() if key in REQUIRED and key not in keys]
    if unknown or missing:
        parts = ([f"unknown columns: {', '.join(unknown)}"] if unknown else []) + ([f"missing columns: {', '.join(missing)}"] if missing else [])
        raise UnreadableReport("the header row is not the city's format: " + "; ".join(parts), unknown=unknown, missing=missing)
    line = reader.line_num + 1
    for cells in reader:
        start, line = line, reader.line_num + 1
        if not any(cell.strip() for cell in cells):
            continue
        if len(cells) != len(keys):
            yield start, None
            continue
        yield start, {key: (_one_line(cell) if key in TEXT_COLUMNS else _nfkc(cell)) for key, cell in zip(keys, cells) if key}


def _one_line(text: str) -> str:
    """Free text as written, but on one line: a quoted cell may hold line breaks."""
    return " ".join(part.strip() for part in text.splitlines() if part.strip())


def _parse_date(text: str) -> date | None:
    match = _DATE.match(text)
    if match is None:
        return None
    try:
        return date(*(int(part) for part in match.groups()))
    except ValueError:
        return None


def _parse_month(text: str) -> str | None:
    match = _MONTH.match(text)
    if match is None or not 1 <= int(match.group(2)) <= 12:
        return None
    return f"{int(match.group(1)):04d}-{int(match.group(2)):02d}"


class _Types:
    """Record types reported on the form (those with 診察区分), by name or code."""

    def __init__(self) -> None:
        catalogue = load_catalogue()
        self.by_name: dict[str, RecordType] = {}
        for code in catalogue.codes:
            rtype = catalogue.record_type(code)
            if "examination_type" in rtype.item_codes and "inoculation_date" in rtype.item_codes:
                self.by_name[_nfkc(rtype.name_ja)] = rtype
                self.by_name[code] = rtype
        self.products: dict[str, dict[str, str]] = {}
        for rtype in {t.code: t for t in self.by_name.values()}.values():
            if "vaccine_product" in rtype.item_codes:
                allowed = rtype.item("vaccine_product").allowed
                self.products[rtype.code] = {**{_nfkc(label): code for code, label in allowed.items()}, **{c: c for c in allowed}}


@dataclass
class _Context:
    clinics: dict[str, Clinic]
    subjects: dict[str, Any]
    fees: FeeTable
    as_of: date
    types: _Types
    exempt: dict[tuple[str, int], bool] = field(default_factory=dict)


def _chunks(values: list, size: int = 500) -> Iterator[list]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


_SUBJECT_COLUMNS = (
    Subject.integrated_address_number, Subject.voucher_number, Subject.birth_date, Subject.sex,
    Subject.heart_kidney_respiratory_disability, Subject.hiv_immune_disability, Subject.hbv_perinatal_prophylaxis,
)


def _subjects_by_voucher(session: Session, vouchers: Iterable[str]) -> dict[str, Any]:
    """The people the file names, as plain rows (with the attributes ``person_of`` reads)."""
    found: dict[str, Any] = {}
    for chunk in _chunks(sorted(set(vouchers)), 900):
        for row in session.execute(select(*_SUBJECT_COLUMNS).where(Subject.voucher_number.in_(chunk))):
            found[row.voucher_number] = row
    return found


def _doses_of(session: Session, numbers: Iterable[str]) -> dict[str, list[Dose]]:
    found: dict[str, list[Dose]] = {}
    for chunk in _chunks(sorted(set(numbers))):
        query = select(Dose.subject_number, Dose.record_type, Dose.dose_date, Dose.examination_type, Dose.product, Dose.id).where(
            Dose.subject_number.in_(chunk)
        )
        for row in session.execute(query):
            found.setdefault(row.subject_number, []).append(row)
    return found


def _check_row(line: int, cells: Mapping[str, str], ctx: _Context) -> GoodRow | RowProblem:
    def problem(reason: str, detail: str) -> RowProblem:
        return RowProblem(line, reason, detail)

    clinic = ctx.clinics.get(cells["clinic_code"])
    if clinic is None or not clinic.active:
        return problem("unknown_clinic", f"医療機関コード {cells['clinic_code']!r} is not a commissioned clinic")
    month = _parse_month(cells["billing_month"])
    if month is None:
        return problem("bad_billing_month", f"請求年月 {cells['billing_month']!r} is not a month (YYYYMM)")
    voucher = cells["voucher_number"]
    if not is_valid_voucher_number(voucher):
        return problem("wrong_voucher_number", f"接種券番号 {voucher!r} is malformed (10 digits with a check digit)")
    subject = ctx.subjects.get(voucher)
    if subject is None:
        return problem("unknown_person", f"接種券番号 {voucher} is not in the register")
    born = _parse_date(cells["birth_date"])
    if born is None:
        return problem("impossible_date", f"生年月日 {cells['birth_date']!r} is not a calendar date")
    if born != subject.birth_date:
        return problem("wrong_voucher_number", f"接種券番号 {voucher} belongs to a person with another birth date")
    rtype = ctx.types.by_name.get(cells["record_type"])
    if rtype is None:
        return problem("unknown_vaccine_type", f"予防接種の種類 {cells['record_type']!r} is not reported on this form")
    day = _parse_date(cells["inoculation_date"])
    if day is None:
        return problem("impossible_date", f"接種日 {cells['inoculation_date']!r} is not a calendar date")
    if day > ctx.as_of:
        return problem("impossible_date", f"接種日 {day} is in the future")
    if day < subject.birth_date:
        return problem("impossible_date", f"接種日 {day} is before the person's birth")
    examination = EXAMINATION.get(cells["examination_type"])
    if examination is None:
        return problem("invalid_item", f"診察区分 {cells['examination_type']!r} is neither 接種 nor 予診のみ")
    items: dict[str, Any] = {"inoculation_date": day.isoformat(), "examination_type": examination, "billing_month": month}
    for column in ITEM_COLUMNS:
        if cells.get(column):
            items[column] = cells[column]
    product = cells.get("vaccine_product")
    if product:
        items["vaccine_product"] = ctx.types.products.get(rtype.code, {}).get(product, product)
    fee = ctx.fees.fee(rtype.code, examination)
    derived = {
        "inoculation_place": clinic.name,
        "medical_institution_name": clinic.name,
        "age_at_inoculation": register.age_text(subject.birth_date, day),
        "funding_type": "public",
        "commission_fee_yen": fee,
        "fiscal_year": fiscal_year(day),
        "outside_city_visit": "in_city" if clinic.in_city else "outside_city",
        # 自己負担額 of B類: waived for people on public assistance or exempt from local tax (実費徴収)
        "copayment_yen": 0 if ctx.exempt.get((subject.integrated_address_number, fiscal_year(day))) else copayments().get(rtype.code),
    }
    items.update({code: value for code, value in derived.items() if code in rtype.item_code_set and value is not None})
    result = load_catalogue().validate(rtype.code, items)
    if not result.ok:
        return problem("invalid_item", "; ".join(e.message for e in result.errors))
    return GoodRow(line, subject.integrated_address_number, clinic.code, register.CheckedRecord(rtype.code, result.values), fee)


def _check_schedule(rows: list[GoodRow], ctx: _Context, stored: Mapping[str, list]) -> list[RowProblem]:
    """Refuse the given doses the routine schedule does not count (clinics bill routine doses only)."""
    by_subject: dict[str, list[GoodRow]] = {}
    for row in rows:
        if row.record.examination_type == "inoculated" and register.vaccine_of(row.record.record_type):
            by_subject.setdefault(row.subject_number, []).append(row)
    subjects = {s.integrated_address_number: s for s in ctx.subjects.values()}
    problems: list[RowProblem] = []
    for number, new_rows in by_subject.items():
        history = [
            RecordedDose(register.vaccine_of(d.record_type), d.dose_date, d.product)
            for d in stored.get(number, ())
            if d.examination_type == "inoculated" and register.vaccine_of(d.record_type)
        ]
        new = [RecordedDose(register.vaccine_of(r.record.record_type), r.record.dose_date, r.record.product, dose_id=str(r.line)) for r in new_rows]
        for verdict in judge(register.person_of(subjects[number]), history + new, ctx.as_of)[len(history) :]:
            if not verdict.valid:
                why = "; ".join(f"{r.message} ({r.rule})" for r in verdict.reasons)
                problems.append(RowProblem(int(verdict.dose.dose_id), "not_valid_by_schedule", why))
    return problems


def build_draft(session: Session, data: bytes, file_name: str, as_of: date) -> Draft:
    """Check every row of a clinic report against the register; writes nothing."""
    digest = hashlib.sha256(data).hexdigest()
    text, encoding = decode(data)
    rows = list(read_rows(text))
    draft = Draft(digest, file_name, encoding, len(rows))
    draft.already_imported = session.scalar(select(ClinicReportImport).where(ClinicReportImport.digest == digest))
    if draft.already_imported is not None:
        return draft
    ctx = _Context(
        clinics={c.code: c for c in session.scalars(select(Clinic))},
        subjects=_subjects_by_voucher(session, (cells["voucher_number"] for _, cells in rows if cells)),
        fees=load_fee_table(),
        as_of=as_of,
        types=_Types(),
    )
    ctx.exempt = exemptions(session, (s.integrated_address_number for s in ctx.subjects.values()))
    stored = _doses_of(session, (s.integrated_address_number for s in ctx.subjects.values()))
    recorded = {(n, d.record_type, d.dose_date) for n, doses in stored.items() for d in doses}
    seen: dict[tuple[str, str, date], int] = {}
    candidates: list[GoodRow] = []
    for line, cells in rows:
        checked = RowProblem(line, "wrong_column_count", f"expected {len(COLUMNS)} columns as in the header") if cells is None else _check_row(line, cells, ctx)
        if isinstance(checked, RowProblem):
            draft.problems.append(checked)
            continue
        key = (checked.subject_number, checked.record.record_type, checked.record.dose_date)
        if key in recorded:
            draft.problems.append(RowProblem(line, "duplicate_dose", f"{key[1]} on {key[2]} is already recorded for this person"))
        elif key in seen:
            draft.problems.append(RowProblem(line, "duplicate_in_file", f"the same dose is on line {seen[key]}"))
        else:
            seen[key] = line
            candidates.append(checked)
    schedule_problems = _check_schedule(candidates, ctx, stored)
    refused = {p.line for p in schedule_problems}
    draft.problems.extend(schedule_problems)
    draft.good = [row for row in candidates if row.line not in refused]
    draft.problems.sort(key=lambda p: p.line)
    return draft


@dataclass(frozen=True)
class ImportResult:
    import_id: int | None
    stored: int
    refused: int
    already_imported: bool


def commit(session: Session, draft: Draft, actor: str) -> ImportResult:
    """Store the draft's good rows and the import's record, in the caller's one transaction."""
    if draft.already_imported is not None:
        return ImportResult(draft.already_imported.id, 0, 0, True)
    record = ClinicReportImport(
        digest=draft.digest,
        file_name=draft.file_name[:255],
        encoding=draft.encoding,
        rows=draft.rows,
        stored=len(draft.good),
        refused=len(draft.problems),
        problems=[p.to_dict() for p in draft.problems],
        committed_by=actor,
        committed_at=utcnow(),
    )
    session.add(record)
    session.flush()
    values = [
        register.dose_row(row.subject_number, row.record, source="clinic_report", recorded_by=actor,
                          clinic_code=row.clinic_code, import_id=record.id, fee_yen=row.fee_yen)
        for row in draft.good
    ]
    connection = session.connection()
    for chunk in _chunks(values, 5000):
        connection.execute(Dose.__table__.insert(), chunk)
    copies.note_changed(session, (row.subject_number for row in draft.good))  # for the 副本, with the doses
    return ImportResult(record.id, len(draft.good), len(draft.problems), False)
