"""The reminder batch (勧奨通知, flow [07]): who is due in a period, one notice per person.

A dose is *due in the period* when the schedule's forecast for it (``schedule.evaluate``)
says it may be given (status ``due`` or ``upcoming``), its recommended date (標準的な接種時期)
has come by the end of the period, and it can still be given on or after the period's
first day. Everyone on the register who lives in the city is read; each person with one
or more such doses gets one notice listing them all.

A due dose (person, series, dose) is noticed once: a second run for the same period, or a
later one, leaves it out. A run writes its files first (``notices.csv`` for the print
vendor, one PDF per person) into ``<output>/run-<id>/``, then records its notices and
marks itself finished in one transaction; a run that dies before that leaves an
unfinished run whose files are not delivered, and its doses are noticed by the next run.
Only runs with ``finished_at`` are handed to the vendor.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import closing
from dataclasses import dataclass
from datetime import date
from itertools import repeat
from pathlib import Path

from sqlalchemy import Connection, Select, String, func, insert, select, type_coerce

from services.health_mgmt import documents
from services.health_mgmt.models import Dose, ReminderNotice, ReminderRun, Subject
from services.health_mgmt.register import vaccine_of
from services.health_mgmt.schedule import Person, RecordedDose, evaluate, forecasts_within, series_due_within
from services.health_mgmt.wareki import wareki
from shared.db import SQLITE_BEGIN, Database, schema_name
from shared.models import utcnow

CHUNK = 2000
CSV_COLUMNS = ("通知番号", "接種券番号", "氏名", "氏名カナ", "住所", "生年月日", "予防接種", "最も早い接種期限", "PDF")
_SEX = {"male": "M", "female": "F"}


@dataclass(frozen=True)
class DueItem:
    series: str
    vaccine: str
    dose: str
    earliest: date
    recommended: date
    latest: date

    @property
    def label(self) -> str:
        """e.g. ``水痘 1回目``; a series named after its phase (``MR 第1期``) is not repeated."""
        return self.vaccine if self.dose in self.vaccine else f"{self.vaccine} {self.dose}"


@dataclass(frozen=True)
class Candidate:
    """One resident as the batch reads them."""

    number: str
    person: Person
    doses: tuple[RecordedDose, ...]


@dataclass(frozen=True)
class Notice:
    sequence: int
    number: str
    voucher: str
    name: str
    name_kana: str
    address: str
    birth_date: date
    items: tuple[DueItem, ...]

    @property
    def file_name(self) -> str:
        return f"{self.sequence:07d}-{self.voucher}.pdf"


@dataclass(frozen=True)
class RunSummary:
    run_id: int
    people_evaluated: int
    notices: int
    items: int
    already_sent: int
    output: Path


def due_in(person: Person, doses: Sequence[RecordedDose], start: date, end: date, as_of: date, prefilter: bool = True) -> list[DueItem]:
    """The doses due in ``start``–``end`` for one person, as of ``as_of``.

    Only the series that can fall due in the period for someone of the person's birth date,
    sex and flags are forecast (``schedule.series_due_within``); a person with none (most
    adults, in most months) is not evaluated at all. ``prefilter=False`` evaluates everything.
    """
    if prefilter:
        series = series_due_within(person, start, end)
        forecasts = forecasts_within(person, doses, as_of, start, end, series=series) if series else ()
    else:
        forecasts = evaluate(person, doses, as_of).forecasts
    due = []
    for forecast in forecasts:
        if forecast.status not in ("due", "upcoming") or forecast.earliest is None or forecast.latest is None:
            continue
        recommended = forecast.recommended or forecast.earliest
        if recommended > end or forecast.latest < start or forecast.earliest > end:
            continue
        due.append(DueItem(forecast.series, forecast.name_ja, forecast.next_dose or "", forecast.earliest, recommended, forecast.latest))
    return due


def _due_chunk(read: int, chunk: Sequence[Candidate], start: date, end: date, as_of: date) -> tuple[int, list[tuple[str, list[DueItem]]]]:
    found = []
    for candidate in chunk:
        items = due_in(candidate.person, candidate.doses, start, end, as_of)
        if items:
            found.append((candidate.number, items))
    return read, found


def may_be_due(start: date, end: date) -> Callable[[Person], bool]:
    """Whether anything can fall due in the period for a person, by birth date, sex and flags."""
    return lambda person: bool(series_due_within(person, start, end))


def residents(
    db: Database, chunk: int = CHUNK, born: tuple[date, date] | None = None, keep: Callable[[Person], bool] | None = None
) -> Iterator[tuple[int, list[Candidate]]]:
    """Every resident with their given doses, in chunks: (how many people were read, those
    kept). ``keep`` leaves people out before their doses are read into objects.

    People come in order of birth date: the schedule's work that depends on the birth date
    alone (eligible ranges, ages) is then done once for everyone born on the same day. The
    people and their doses are read as two streams in the same order and merged.
    """
    # SQLite keeps dates as text: read it as text and convert each distinct date once (a city
    # has a few tens of thousands), rather than parse every row (PostgreSQL gives dates)
    as_text = (lambda column: type_coerce(column, String)) if db.is_sqlite else (lambda column: column)
    people = (
        select(
            as_text(Subject.birth_date), Subject.integrated_address_number, Subject.sex, Subject.heart_kidney_respiratory_disability,
            Subject.hiv_immune_disability, Subject.hbv_perinatal_prophylaxis,
        )
        .where(Subject.status == "resident")
        .order_by(Subject.birth_date, Subject.integrated_address_number)
    )
    doses = (
        select(as_text(Subject.birth_date), Dose.subject_number, Dose.record_type, as_text(Dose.dose_date), Dose.product)
        .join(Subject, Subject.integrated_address_number == Dose.subject_number)
        .where(Subject.status == "resident", Dose.examination_type == "inoculated")
        .order_by(Subject.birth_date, Dose.subject_number)
    )
    if born is not None:
        people = people.where(Subject.birth_date.between(*born))
        doses = doses.where(Subject.birth_date.between(*born))
    days: dict = {}

    def day(value) -> date:
        found = days.get(value)
        if found is None:
            found = days[value] = value if isinstance(value, date) else date.fromisoformat(value)
        return found

    # a city has far fewer distinct people (birth date, sex, flags) and doses (type, date,
    # product) than residents and doses: each is made once and shared (both are immutable)
    persons: dict[tuple, Person] = {}
    given: dict[tuple, RecordedDose | None] = {}

    def person_of(row) -> Person:
        found = persons.get(row)
        if found is None:
            born, sex, heart, hiv, hbv = row
            found = persons[row] = Person(day(born), _SEX[sex], _flag(heart), _flag(hiv), _flag(hbv))
        return found

    def dose_of(row) -> RecordedDose | None:
        found = given.get(row, given)
        if found is given:
            record_type, dose_date, product = row
            vaccine = vaccine_of(record_type)
            found = given[row] = None if vaccine is None else RecordedDose(vaccine, day(dose_date), product)
        return found

    snapshot = {SQLITE_BEGIN: "BEGIN"}  # read-only: no write lock on SQLite
    with (
        db.engine.connect().execution_options(**snapshot) as people_conn,
        db.engine.connect().execution_options(**snapshot) as doses_conn,
        closing(_driver_rows(people_conn, people)) as people_rows,
        closing(_driver_rows(doses_conn, doses)) as dose_rows,
    ):
        pending = next(dose_rows, None)
        batch: list[Candidate] = []
        read = 0
        for row in people_rows:
            born, number = row[0], row[1]
            read += 1
            while pending is not None and (pending[0], pending[1]) < (born, number):
                pending = next(dose_rows, None)  # a dose of someone no longer read as resident
            person = person_of((born, row[2], row[3], row[4], row[5]))
            kept = keep is None or keep(person)
            history = []
            while pending is not None and pending[1] == number:  # the person's doses, read either way
                if kept and (dose := dose_of((pending[2], pending[3], pending[4]))) is not None:
                    history.append(dose)
                pending = next(dose_rows, None)
            if kept:
                batch.append(Candidate(number, person, tuple(history)))
            if len(batch) >= chunk:
                yield read, batch
                batch, read = [], 0
        if batch or read:
            yield read, batch


def _flag(value) -> bool | None:
    # SQLite gives a Boolean column as 0 or 1
    return None if value is None else bool(value)


def _driver_rows(conn: Connection, statement: Select, size: int = 5000) -> Iterator[tuple]:
    """The rows of ``statement`` as tuples straight from the driver's cursor, on ``conn``'s
    transaction: the values are the driver's own (no SQLAlchemy result types: SQLite gives
    dates as text and Booleans as 0 or 1). Building SQLAlchemy rows for every resident and
    dose costs more than reading them. PostgreSQL streams through a server-side cursor."""
    dialect = conn.dialect
    compiled = statement.compile(dialect=dialect)
    params = {}
    for name, value in compiled.construct_params().items():
        process = compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect)
        params[name] = value if process is None else process(value)
    arguments = [params[name] for name in compiled.positiontup] if compiled.positional else params
    if not conn.in_transaction():
        conn.begin()
    driver = conn.connection
    cursor = driver.cursor() if dialect.name == "sqlite" else driver.cursor(name="renkei_reminders")
    try:
        cursor.execute(compiled.string, arguments)
        while rows := cursor.fetchmany(size):
            yield from rows
    finally:
        cursor.close()


def birth_ranges(db: Database, parts: int) -> list[tuple[date, date]]:
    """Ranges of birth dates holding about the same number of residents each."""
    query = (
        select(Subject.birth_date, func.count())
        .where(Subject.status == "resident")
        .group_by(Subject.birth_date)
        .order_by(Subject.birth_date)
    )
    with db.engine.connect() as conn:
        days = list(conn.execution_options(**{SQLITE_BEGIN: "BEGIN"}).execute(query))
    total = sum(count for _, count in days)
    ranges, first, running = [], None, 0
    for day, count in days:
        first = first or day
        running += count
        if running >= total * (len(ranges) + 1) / parts:
            ranges.append((first, day))
            first = None
    if first is not None:
        ranges.append((first, days[-1][0]))
    return ranges


_WORKER_DATABASES: dict[tuple[str, str | None], Database] = {}


def _due_in_range(url: str, schema: str | None, born: tuple[date, date], start: date, end: date, as_of: date):
    """In a worker: read the residents born in ``born`` and find what is due (no data is
    shipped between processes but the answer)."""
    db = _WORKER_DATABASES.get((url, schema))
    if db is None:
        db = _WORKER_DATABASES[(url, schema)] = Database(url, schema)
    count, found = 0, []
    for read, chunk in residents(db, born=born, keep=may_be_due(start, end)):
        evaluated, due = _due_chunk(read, chunk, start, end, as_of)
        count += evaluated
        found.extend(due)
    return count, found


def _render(city: str, folder: str, notices: Sequence[Notice], issued: date) -> int:
    for notice in notices:
        person = documents.Addressee(notice.name, notice.address, notice.birth_date, notice.voucher)
        lines = [documents.DueLine(i.vaccine, i.dose, i.earliest, i.recommended, i.latest) for i in notice.items]
        Path(folder, notice.file_name).write_bytes(documents.reminder_notice(city, person, lines, issued))
    return len(notices)


def _details(db: Database, numbers: Sequence[str]) -> dict[str, tuple]:
    found: dict[str, tuple] = {}
    with db.session() as session:
        for start in range(0, len(numbers), 500):
            query = select(
                Subject.integrated_address_number, Subject.voucher_number, Subject.name, Subject.name_kana, Subject.address, Subject.birth_date
            ).where(Subject.integrated_address_number.in_(numbers[start : start + 500]))
            found.update({row[0]: tuple(row) for row in session.execute(query)})
    return found


def run_batch(
    db: Database,
    city: str,
    *,
    period_start: date,
    period_end: date,
    as_of: date,
    output: Path,
    started_by: str,
    workers: int = 1,
    pdf: bool = True,
    progress: Callable[[str, int], None] | None = None,
) -> RunSummary:
    """Find everyone due in the period, write the notices, record them; see the module's doc."""
    with db.session() as session:
        run = ReminderRun(period_start=period_start, period_end=period_end, as_of=as_of, started_by=started_by, started_at=utcnow())
        session.add(run)
        session.flush()
        run_id = run.id
        sent = {tuple(row) for row in session.execute(select(ReminderNotice.subject_number, ReminderNotice.series, ReminderNotice.next_dose))}
    report = progress or (lambda stage, n: None)

    evaluated, due_people, already = 0, [], 0
    pool = ProcessPoolExecutor(workers) if workers > 1 else None
    try:
        if pool is None:
            results = (
                _due_chunk(read, chunk, period_start, period_end, as_of)
                for read, chunk in residents(db, keep=may_be_due(period_start, period_end))
            )
        else:  # each worker reads its own residents, by ranges of birth dates
            schema = None if db.is_sqlite else schema_name("health_mgmt", city)
            # the youngest first: children cost several times what adults do, and a costly range
            # left to the end would keep one worker busy alone; the answers are put back in order
            ranges = birth_ranges(db, workers * 16)[::-1]
            results = reversed(list(pool.map(
                _due_in_range, repeat(db.url), repeat(schema), ranges, repeat(period_start), repeat(period_end), repeat(as_of)
            )))
        for count, found in results:
            evaluated += count
            report("evaluated", count)
            for number, items in found:
                fresh = [i for i in items if (number, i.series, i.dose) not in sent]
                already += len(items) - len(fresh)
                if fresh:
                    due_people.append((number, tuple(fresh)))
        details = _details(db, [number for number, _ in due_people])
        notices = [
            Notice(sequence, number, *details[number][1:], items)
            for sequence, (number, items) in enumerate(due_people, start=1)
        ]
        folder = Path(output) / f"run-{run_id}"
        folder.mkdir(parents=True, exist_ok=True)
        _write_csv(folder / "notices.csv", notices)
        if pdf:
            slices = [notices[i : i + 500] for i in range(0, len(notices), 500)]
            if pool is None:
                for piece in slices:
                    report("rendered", _render(city, str(folder), piece, as_of))
            else:
                for rendered in pool.map(_render, repeat(city), repeat(str(folder)), slices, repeat(as_of)):
                    report("rendered", rendered)
    finally:
        if pool is not None:
            pool.shutdown()

    rows = [
        {"run_id": run_id, "subject_number": n.number, "series": i.series, "next_dose": i.dose,
         "earliest": i.earliest, "recommended": i.recommended, "latest": i.latest}
        for n in notices for i in n.items
    ]
    with db.session() as session:
        for start in range(0, len(rows), 5000):
            session.execute(insert(ReminderNotice), rows[start : start + 5000])
        run = session.get(ReminderRun, run_id)
        run.people_evaluated, run.notices, run.items, run.already_sent = evaluated, len(notices), len(rows), already
        run.output, run.finished_at = str(folder), utcnow()
    return RunSummary(run_id, evaluated, len(notices), len(rows), already, folder)


def _write_csv(path: Path, notices: Sequence[Notice]) -> None:
    """The print vendor's file: UTF-8 with BOM (names may hold characters beyond Shift_JIS)."""
    with open(path, "w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\r\n")
        writer.writerow(CSV_COLUMNS)
        for n in notices:
            writer.writerow(
                [n.sequence, n.voucher, n.name, n.name_kana, n.address, wareki(n.birth_date),
                 "／".join(i.label for i in n.items), wareki(min(i.latest for i in n.items)), n.file_name]
            )


def default_workers() -> int:
    return max(1, min(4, os.cpu_count() or 1))
