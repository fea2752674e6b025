"""Putting the synthetic population on the register in bulk (模擬住民データの投入).

``seed(db, city, people, seed)`` stores the people ``population.generate`` gives for
those arguments, each with the change that put them on the register and that change's
``ResidentChanged`` event in the outbox, so that a running stack's relay publishes them to
the address systems and the Juki CS (and, when the stack is down, they wait there).

- Deterministic: the same city, size and seed give the same people, the same kinds of
  change and the same change ids.
- Idempotent: a person whose resident code is already on the register is skipped, so a
  second run stores nothing and announces nothing. A person whose My Number another
  entry already holds (possible only across different seeds) is skipped and counted.
- Whole people: batches of ``batch`` people per transaction, each holding its residents,
  their changes and their events together; an interrupted run leaves whole people, and
  running it again completes it.
- Fast: one executemany of a Core ``INSERT`` per table and batch on SQLite, ``COPY`` on
  PostgreSQL (340,000 people in about half a minute on two cores; ``bench/seed.py``).

How a person came onto the register: each household arrived on a day drawn from its id
and the seed, between the day its head turned 18 and the population's reference date.
Members born after that day were born here (``birth``, effective on the birth date); the
others moved in with the household (``move_in``, effective on the arrival day).
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta

from pydantic import TypeAdapter
from sqlalchemy import Connection, Table, insert, select

from services.resident_registry.models import ResidentChange, ResidentEntry
from services.resident_registry.population import REFERENCE_DATE, Resident, generate
from shared.contracts.residents import RESIDENT_CHANGED, ResidentRecord
from shared.db import Database
from shared.models import OutboxMessage, utcnow

SEEDED_BY = "seed"
DEFAULT_BATCH = 20_000
ADULT_AGE = 18
#: Change ids of seeded people are uuid5 names in this namespace: the same person, the same id.
_CHANGE_NAMESPACE = uuid.UUID("6f1d3c52-8e0b-5b7e-9a51-2f0c4d7e1a90")
_RECORD_FIELDS = tuple(ResidentRecord.model_fields)
_MOMENT = TypeAdapter(datetime)


@dataclass(frozen=True)
class SeedReport:
    city: str
    people: int  # asked for
    seed: int
    added: int  # put on the register by this run
    already_present: int  # resident code already on the register
    my_number_taken: int  # skipped: another entry holds the My Number
    events: int  # ResidentChanged events written to the outbox
    births: int
    move_ins: int
    seconds: float

    def as_dict(self) -> dict:
        return asdict(self)


def seed(
    db: Database,
    city: str,
    people: int,
    seed: int,
    *,
    batch: int = DEFAULT_BATCH,
    progress: Callable[[int], None] | None = None,
) -> SeedReport:
    """Store the synthetic population of ``city`` on the register ``db`` (already migrated).

    ``progress(n)`` is called as people are handled, with how many since the last call.
    """
    started = time.perf_counter()
    known_codes, known_numbers = _known(db)
    stamp = utcnow()
    recorded_at = _MOMENT.dump_json(stamp).decode().strip('"')
    subject, stream = RESIDENT_CHANGED.subject(city), RESIDENT_CHANGED.stream(city)

    residents: list[tuple] = []
    changes: list[tuple] = []
    outbox: list[tuple] = []
    counts = {"already_present": 0, "my_number_taken": 0, "birth": 0, "move_in": 0}
    pending_progress = 0

    def flush() -> None:
        if residents:
            with db.session() as session:
                connection = session.connection()
                _prepare(connection)
                for table, rows in ((_RESIDENTS, residents), (_CHANGES, changes), (_OUTBOX, outbox)):
                    table.insert_many(connection, rows)
                    rows.clear()

    for person, kind, effective in _arrivals(generate(city, people, seed), seed):
        pending_progress += 1
        if person.resident_code in known_codes:
            counts["already_present"] += 1
        elif person.my_number in known_numbers:
            counts["my_number_taken"] += 1
        else:
            known_codes.add(person.resident_code)
            known_numbers.add(person.my_number)
            counts[kind] += 1
            row = tuple(getattr(person, name) for name in _RECORD_FIELDS)
            record = _record_json(row)
            change_id = uuid.uuid5(_CHANGE_NAMESPACE, f"{city}/{person.resident_code}/{kind}").hex
            residents.append(row)
            changes.append((change_id, person.resident_code, kind, effective, stamp, SEEDED_BY, record))
            payload = _event_json(change_id, kind, effective, recorded_at, record)
            outbox.append((uuid.uuid4().hex, subject, stream, payload, stamp))
            if len(residents) >= batch:
                flush()
        if progress is not None and pending_progress >= 1000:
            progress(pending_progress)
            pending_progress = 0
    flush()
    if progress is not None and pending_progress:
        progress(pending_progress)
    added = counts["birth"] + counts["move_in"]
    return SeedReport(
        city=city,
        people=people,
        seed=seed,
        added=added,
        already_present=counts["already_present"],
        my_number_taken=counts["my_number_taken"],
        events=added,
        births=counts["birth"],
        move_ins=counts["move_in"],
        seconds=time.perf_counter() - started,
    )


class _BulkInsert:
    """Many rows of fixed columns into one table, the fastest way the database offers.

    SQLite: an INSERT compiled once by SQLAlchemy Core and run as one executemany, the rows
    handed to the driver as tuples (converted only where the dialect needs it: dates as
    text), since SQLAlchemy's per-row parameter handling would cost more than SQLite does.
    PostgreSQL: ``COPY … FROM STDIN`` on the same connection and transaction, the bulk
    load PostgreSQL recommends; row-by-row executemany there took most of a minute for a
    city of 340,000.
    """

    def __init__(self, table: Table, columns: tuple[str, ...]) -> None:
        self.table = table
        self.columns = columns

    def insert_many(self, connection: Connection, rows: list[tuple]) -> None:
        if not rows:
            return
        if connection.dialect.name == "postgresql":
            self._copy(connection, rows)
        else:
            self._executemany(connection, rows)

    def _copy(self, connection: Connection, rows: list[tuple]) -> None:
        preparer = connection.dialect.identifier_preparer
        columns = ", ".join(preparer.quote(name) for name in self.columns)
        statement = f"COPY {preparer.format_table(self.table)} ({columns}) FROM STDIN"
        with connection.connection.driver_connection.cursor() as cursor, cursor.copy(statement) as copy:
            for row in rows:
                copy.write_row(row)

    def _executemany(self, connection: Connection, rows: list[tuple]) -> None:
        dialect = connection.dialect
        compiled = insert(self.table).compile(dialect=dialect, column_keys=list(self.columns))
        converters = [
            (index, processor)
            for index, name in enumerate(self.columns)
            if (processor := self.table.c[name].type.bind_processor(dialect)) is not None
        ]
        if converters:
            rows = [_converted(row, converters) for row in rows]
        if compiled.positional:
            order = [self.columns.index(name) for name in compiled.positiontup]
            if order != list(range(len(self.columns))):
                rows = [tuple(row[i] for i in order) for row in rows]
            connection.exec_driver_sql(compiled.string, rows)
        else:
            connection.exec_driver_sql(compiled.string, [dict(zip(self.columns, row)) for row in rows])


def _converted(row: tuple, converters) -> tuple:
    values = list(row)
    for index, processor in converters:
        values[index] = processor(values[index])
    return tuple(values)


_RESIDENTS = _BulkInsert(ResidentEntry.__table__, _RECORD_FIELDS)
_CHANGES = _BulkInsert(
    ResidentChange.__table__,
    ("change_id", "resident_code", "kind", "effective_date", "recorded_at", "recorded_by", "record"),
)
_OUTBOX = _BulkInsert(OutboxMessage.__table__, ("msg_id", "subject", "stream", "payload", "created_at"))


def _prepare(connection: Connection) -> None:
    """On SQLite, a page cache big enough that index pages of random keys stay in memory."""
    if connection.dialect.name == "sqlite":
        connection.exec_driver_sql("PRAGMA cache_size=-262144")  # KiB: 256 MiB, this connection only


def _known(db: Database) -> tuple[set[str], set[str]]:
    """The resident codes and My Numbers already on the register."""
    with db.session() as session:
        rows = session.execute(select(ResidentEntry.resident_code, ResidentEntry.my_number)).all()
    return {code for code, _ in rows}, {number for _, number in rows}


def _arrivals(people: Iterable[Resident], seed: int):
    """Each person with how they came onto the register: (person, kind, effective date)."""
    household, arrival = None, REFERENCE_DATE
    for person in people:
        if person.household_id != household:  # households come whole, head first
            household = person.household_id
            arrival = arrival_date(person.household_id, person.birth_date, seed)
        if person.birth_date > arrival:
            yield person, "birth", person.birth_date
        else:
            yield person, "move_in", arrival


def arrival_date(household_id: str, head_birth_date: date, seed: int) -> date:
    """The day a household came to the city: between its head's 18th birthday and the reference date."""
    earliest = min(_years_after(head_birth_date, ADULT_AGE), REFERENCE_DATE)
    span = (REFERENCE_DATE - earliest).days
    digest = hashlib.blake2b(f"{seed}/{household_id}".encode(), digest_size=8).digest()
    return earliest + timedelta(days=int.from_bytes(digest, "big") % (span + 1))


def _years_after(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28)


# The register's JSON of a record and of its event, byte for byte what pydantic writes for
# ResidentRecord and ResidentChanged (tests hold them to it); building them directly saves
# most of the seed's serialisation time.


def _record_json(row: tuple) -> str:
    return json.dumps(dict(zip(_RECORD_FIELDS, row)), ensure_ascii=False, separators=(",", ":"), default=date.isoformat)


def _event_json(change_id: str, kind: str, effective: date, recorded_at: str, record: str) -> bytes:
    return (
        f'{{"change_id":"{change_id}","kind":"{kind}","effective_date":"{effective.isoformat()}",'
        f'"recorded_at":"{recorded_at}","resident":{record}}}'
    ).encode()
