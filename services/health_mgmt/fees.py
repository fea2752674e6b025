"""実費徴収: who pays the copayment (自己負担額) of B類 vaccinations, decided from local-tax
and public-assistance information (flow [06]), with every matching (突合) recorded.

The tax system sends, for a fiscal year, each person's local-tax status (住民税 課税 /
非課税); the welfare system, who receives public assistance (生活保護 受給). Each file is a
CSV with the header ``統合宛名番号,生年月日,区分``. Every row is matched against the register
by integrated address number *and* birth date: a row whose number is unknown, or whose
birth date differs, is set aside with its reason, never applied to somebody. Every row's
outcome is kept (``income_matches``), and the same file again changes nothing.

The determination (``fee_determinations``) for a person and fiscal year follows from the
matched rows: public assistance, else tax exemption, exempts; taxed pays; a person with no
matched row is ``unknown`` and pays unless they show otherwise. A clinic report's
自己負担額 for the elderly types is filled from it.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from importlib import resources

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.health_mgmt.models import FeeDetermination, IncomeMatch, Subject
from shared.errors import InvalidRequest
from shared.models import utcnow

STATUS = {
    "tax": {"課税": "taxed", "非課税": "tax_exempt"},
    "welfare": {"受給": "public_assistance"},
}
HEADER = ["統合宛名番号", "生年月日", "区分"]
_NUMBER = re.compile(r"^[0-9]{15}$")
_DATE = re.compile(r"^(\d{4})[-/](\d{1,2})[-/](\d{1,2})$")


@lru_cache(maxsize=1)
def copayments() -> dict[str, int]:
    text = resources.files("services.health_mgmt").joinpath("data", "commission_fees.json").read_text(encoding="utf-8")
    return dict(json.loads(text)["copayment_yen"])


@dataclass
class MatchReport:
    fiscal_year: int
    source: str
    rows: int = 0
    matched: int = 0
    set_aside: list[dict] = field(default_factory=list)
    already_matched: bool = False
    determined: int = 0


def _birth(text: str) -> date | None:
    match = _DATE.match(text.strip())
    if match is None:
        return None
    try:
        return date(*(int(part) for part in match.groups()))
    except ValueError:
        return None


def match_file(session: Session, data: bytes, text: str, source: str, fiscal_year: int, matched_by: str) -> MatchReport:
    """Match one file of tax or welfare information and redo the determinations it touches."""
    if source not in STATUS:
        raise InvalidRequest(f"source must be one of {', '.join(STATUS)}", field="source")
    digest = hashlib.sha256(data).hexdigest()
    report = MatchReport(fiscal_year, source)
    if session.scalar(select(IncomeMatch.id).where(IncomeMatch.file_digest == digest).limit(1)) is not None:
        report.already_matched = True
        return report
    reader = csv.reader(io.StringIO(text, newline=""))
    header = [cell.strip() for cell in next(reader, [])]
    if header != HEADER:
        raise InvalidRequest(f"the header must be {','.join(HEADER)}", header=header)
    rows = [(reader.line_num, cells) for cells in reader if any(c.strip() for c in cells)]
    numbers = {cells[0].strip() for _, cells in rows if cells}
    subjects = {
        s.integrated_address_number: s.birth_date
        for s in session.execute(select(Subject.integrated_address_number, Subject.birth_date).where(Subject.integrated_address_number.in_(numbers)))
    } if numbers else {}
    touched: set[str] = set()
    for line, cells in rows:
        report.rows += 1
        outcome, detail, subject, status = _match(cells, subjects, source)
        named = cells[0].strip() if cells and _NUMBER.match(cells[0].strip()) else None
        session.add(
            IncomeMatch(
                fiscal_year=fiscal_year, source=source, file_digest=digest, line=line, subject_number=subject, status=status,
                outcome=outcome, detail=detail, matched_by=matched_by, matched_at=utcnow(), channel="file", person_number=named,
            )
        )
        if outcome == "matched":
            report.matched += 1
            touched.add(subject)
        else:
            report.set_aside.append({"line": line, "outcome": outcome, "detail": detail})
    session.flush()
    report.determined = determine(session, fiscal_year, touched)
    return report


def _match(cells: list[str], subjects: dict[str, date], source: str) -> tuple[str, str | None, str | None, str | None]:
    if len(cells) != 3:
        return "invalid", "expected 統合宛名番号,生年月日,区分", None, None
    number, born, kind = (c.strip() for c in cells)
    status = STATUS[source].get(kind)
    if not _NUMBER.match(number) or status is None or _birth(born) is None:
        return "invalid", f"区分 must be one of {', '.join(STATUS[source])}; numbers and dates as written in the header", None, None
    if number not in subjects:
        return "unknown_person", f"{number} is not in the register", None, None
    if subjects[number] != _birth(born):
        return "birth_date_mismatch", "生年月日 differs from the register's: not applied", None, None
    return "matched", None, number, status


#: What the health management calls each system on the bus, for its reports.
SYSTEM_NAMES = {"tax": "the tax system (住民税)", "welfare": "the welfare system (生活保護)"}


@dataclass(frozen=True)
class Answer:
    """One answer of the tax or welfare system about one person (see ``shared.contracts.tax_welfare``)."""

    integrated_address_number: str
    birth_date: date
    outcome: str  # held | not_held | birth_date_mismatch
    status: str | None


def match_answers(
    session: Session, source: str, fiscal_year: int, asked: dict[str, date], answers: list[Answer], reply_digest: str, matched_by: str
) -> MatchReport:
    """Match one reply of the tax or welfare system with the register (突合), as ``match_file`` matches a file.

    An answer about a number that was not asked, or that the register does not hold, is set
    aside as ``unknown_person``; one whose birth date is not the register's (as the answer
    gives it, or as the system found it) as ``birth_date_mismatch``; ``not_held`` is kept as
    such. A person whose newest answer from the bus said the same is left as it is, so that
    asking again changes nothing; every other answer is recorded (``channel`` ``bus``) and the
    determinations of the people matched are redone.
    """
    if source not in STATUS:
        raise InvalidRequest(f"source must be one of {', '.join(STATUS)}", field="source")
    report = MatchReport(fiscal_year, source)
    numbers = sorted({answer.integrated_address_number for answer in answers})
    subjects: dict[str, date] = {}
    for start in range(0, len(numbers), 500):
        query = select(Subject.integrated_address_number, Subject.birth_date).where(Subject.integrated_address_number.in_(numbers[start : start + 500]))
        subjects.update({number: born for number, born in session.execute(query)})
    previous = _newest_from_the_bus(session, source, fiscal_year, numbers)
    touched: set[str] = set()
    for line, answer in enumerate(answers, start=1):
        report.rows += 1
        outcome, detail, subject, status = _match_answer(answer, asked, subjects, source)
        number = answer.integrated_address_number
        if previous.get(number) == (outcome, status):
            continue  # the system says what it said last time
        session.add(
            IncomeMatch(
                fiscal_year=fiscal_year, source=source, file_digest=reply_digest, line=line, subject_number=subject, status=status,
                outcome=outcome, detail=detail, matched_by=matched_by, matched_at=utcnow(), channel="bus", person_number=number,
            )
        )
        previous[number] = (outcome, status)
        if outcome == "matched":
            report.matched += 1
            touched.add(subject)
        else:
            report.set_aside.append({"line": line, "integrated_address_number": number, "outcome": outcome, "detail": detail})
    session.flush()
    report.determined = determine(session, fiscal_year, touched)
    return report


def _newest_from_the_bus(session: Session, source: str, fiscal_year: int, numbers: list[str]) -> dict[str, tuple[str, str | None]]:
    """(outcome, status) of the newest answer from the bus about each of ``numbers``."""
    newest: dict[str, tuple[str, str | None]] = {}
    for start in range(0, len(numbers), 500):
        rows = session.execute(
            select(IncomeMatch.person_number, IncomeMatch.outcome, IncomeMatch.status)
            .where(
                IncomeMatch.channel == "bus", IncomeMatch.source == source, IncomeMatch.fiscal_year == fiscal_year,
                IncomeMatch.person_number.in_(numbers[start : start + 500]),
            )
            .order_by(IncomeMatch.id)
        )
        newest.update({number: (outcome, status) for number, outcome, status in rows})
    return newest


def _match_answer(answer: Answer, asked: dict[str, date], subjects: dict[str, date], source: str) -> tuple[str, str | None, str | None, str | None]:
    number, system = answer.integrated_address_number, SYSTEM_NAMES[source]
    if number not in asked or number not in subjects:
        return "unknown_person", f"{number} is not in the register (or was not asked about)", None, None
    if subjects[number] != answer.birth_date:
        return "birth_date_mismatch", "生年月日 of the answer differs from the register's: not applied", None, None
    if answer.outcome == "birth_date_mismatch":
        return "birth_date_mismatch", f"{system} holds this number with another 生年月日: not applied", None, None
    if answer.outcome == "not_held":
        return "not_held", f"{system} holds no record of this person for the fiscal year", None, None
    if answer.status not in STATUS[source].values():
        return "invalid", f"{system} answered an unknown status {answer.status!r}", None, None
    return "matched", None, number, answer.status


def determine(session: Session, fiscal_year: int, numbers: Iterable[str]) -> int:
    """Recompute the determinations of ``numbers`` for ``fiscal_year`` from their matched rows."""
    numbers = sorted(set(numbers))
    count = 0
    for start in range(0, len(numbers), 500):
        chunk = numbers[start : start + 500]
        matches = session.scalars(
            select(IncomeMatch)
            .where(IncomeMatch.fiscal_year == fiscal_year, IncomeMatch.outcome == "matched", IncomeMatch.subject_number.in_(chunk))
            .order_by(IncomeMatch.id)
        )
        latest: dict[tuple[str, str], IncomeMatch] = {}
        for match in matches:
            latest[(match.subject_number, match.source)] = match  # the newest row of each source counts
        for number in chunk:
            welfare, tax = latest.get((number, "welfare")), latest.get((number, "tax"))
            basis = welfare or tax
            category = basis.status if basis is not None else "unknown"
            row = session.get(FeeDetermination, (number, fiscal_year))
            if row is None:
                row = FeeDetermination(subject_number=number, fiscal_year=fiscal_year)
                session.add(row)
            row.category, row.exempt = category, category in ("public_assistance", "tax_exempt")
            row.basis_match_id, row.decided_at = (basis.id if basis else None), utcnow()
            count += 1
    return count


@dataclass(frozen=True)
class Determination:
    fiscal_year: int
    category: str
    exempt: bool
    copayment_yen: dict[str, int]


def determination(session: Session, number: str, fiscal_year: int) -> Determination:
    row = session.get(FeeDetermination, (number, fiscal_year))
    category, exempt = (row.category, row.exempt) if row is not None else ("unknown", False)
    return Determination(fiscal_year, category, exempt, {k: 0 if exempt else v for k, v in copayments().items()})


def exemptions(session: Session, numbers: Iterable[str]) -> dict[tuple[str, int], bool]:
    """(person, fiscal year) → exempt, for every determination of ``numbers``."""
    numbers = sorted(set(numbers))
    found: dict[tuple[str, int], bool] = {}
    for start in range(0, len(numbers), 900):
        query = select(FeeDetermination.subject_number, FeeDetermination.fiscal_year, FeeDetermination.exempt).where(
            FeeDetermination.subject_number.in_(numbers[start : start + 900])
        )
        found.update({(n, y): e for n, y, e in session.execute(query)})
    return found
