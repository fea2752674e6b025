"""The copy for provision (副本): the register's doses, kept in the intermediate server's
provision database as they change (flow [15]).

- **Noted with the change.** Whatever changes a person's doses (the counter, a committed
  clinic report, doses taken in on move-in, a correction) calls ``note_changed`` in the
  change's own transaction: the person's row in ``copy_outbox`` is added or its ``version``
  raised, and it is pending. A change that is not committed leaves no note; a committed one
  cannot be forgotten.
- **Sent by a job.** ``CopySender`` reads pending people in batches, sends each one's
  records as the register holds them then (``intermediate_server.register_copies``, item
  ``VACCINATION_RECORDS``: each person's records replace what the copy held), and marks a
  row sent only when the intermediate server has stored the batch and the row's version is
  still the one it read, so a change made during a send is sent again. While the
  intermediate server is away the rows stay pending and the job retries with a growing
  pause; sending a person twice changes nothing there.
- **Reconciled on demand.** ``reconcile`` reads the copy's per-person digests
  (``intermediate_server.copy_digests``), computes the same digests from the register, and
  queues every person whose copy is missing, differs, or holds records the register does
  not (sent as an empty list, which clears them).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog
from pydantic import ValidationError
from sqlalchemy import bindparam, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from services.health_mgmt.models import CopyOutbox, Dose
from shared.contracts.network import (
    VACCINATION_RECORDS,
    CopyDigestRequest,
    CopyImport,
    PersonCopy,
    VaccinationDose,
    check_records,
    copy_digest,
)
from shared.db import Database
from shared.errors import InvalidRequest
from shared.models import utcnow

log = structlog.get_logger("renkei.health_mgmt.copies")

ITEM = VACCINATION_RECORDS
#: The dose's items a provision of VACCINATION_RECORDS carries (``VaccinationDose``), as the register names them.
_CARRIED = ("lot_number", "manufacturer", "vaccine_product")
_PLACE_ITEMS = ("inoculation_place", "medical_institution_name")
_NOTE_CHUNK = 500


# --- noting changes --------------------------------------------------------------------


def _upsert(session: Session):
    dialect = session.get_bind().dialect.name
    insert = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}.get(dialect)
    if insert is None:  # pragma: no cover - the suite runs on SQLite and PostgreSQL only
        raise NotImplementedError(f"no upsert for {dialect}")
    return insert(CopyOutbox.__table__)


def note_changed(session: Session, numbers: Iterable[str]) -> int:
    """Queue the people whose doses changed, in the caller's transaction; returns how many."""
    unique = sorted(set(numbers))
    now = utcnow()
    table = CopyOutbox.__table__
    for start in range(0, len(unique), _NOTE_CHUNK):
        chunk = unique[start : start + _NOTE_CHUNK]
        statement = _upsert(session).values(
            [{"subject_number": n, "version": 1, "pending": True, "changed_at": now, "sent_version": 0, "attempts": 0} for n in chunk]
        )
        statement = statement.on_conflict_do_update(
            index_elements=["subject_number"],
            set_={"version": table.c.version + 1, "pending": True, "changed_at": statement.excluded.changed_at},
        )
        session.execute(statement)
    return len(unique)


# --- the records as a provision carries them ------------------------------------------


def copy_record(dose: Dose) -> dict[str, Any] | None:
    """One dose in the layout of ``VACCINATION_RECORDS`` (normal form), or None for a record
    a provision does not carry (an antibody test has no 接種日)."""
    items = dose.items or {}
    day = items.get("inoculation_date")
    if day is None or dose.examination_type not in ("inoculated", "screening_only"):
        return None
    record: dict[str, Any] = {"record_type": dose.record_type, "inoculation_date": day, "examination_type": dose.examination_type}
    for key in _CARRIED:
        if items.get(key) not in (None, ""):
            record[key] = str(items[key])
    place = next((items[k] for k in _PLACE_ITEMS if items.get(k) not in (None, "")), None)
    if place is not None:
        record["inoculation_place"] = str(place)[:60]
    for _ in range(2):  # a value the layout refuses is left out, never the dose
        try:
            return VaccinationDose.model_validate(record).model_dump(mode="json")
        except ValidationError as exc:
            bad = {str(error["loc"][0]) for error in exc.errors() if error["loc"]}
            if bad & {"record_type", "inoculation_date", "examination_type"}:
                log.warning("a dose cannot be carried in the copy", dose_id=dose.id, fields=sorted(bad))
                return None
            record = {k: v for k, v in record.items() if k not in bad}
    return None


def records_from(doses: Iterable[Dose]) -> list[dict[str, Any]]:
    """A person's records for the copy, in a fixed order (date, type), in normal form."""
    ordered = sorted(doses, key=lambda d: (d.dose_date, d.record_type, d.id))
    records = [r for r in (copy_record(d) for d in ordered) if r is not None]
    normal, errors = check_records(ITEM, records)
    if errors:  # pragma: no cover - copy_record gives only valid records
        raise InvalidRequest("the copy's records are off the item's layout", errors=errors)
    return normal


def records_of(session: Session, numbers: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
    """Each person's records for the copy (an empty list for someone with none)."""
    found: dict[str, list[Dose]] = {n: [] for n in numbers}
    for start in range(0, len(numbers), 500):
        chunk = list(numbers[start : start + 500])
        for dose in session.scalars(select(Dose).where(Dose.subject_number.in_(chunk))):
            found[dose.subject_number].append(dose)
    return {n: records_from(doses) for n, doses in found.items()}


def register_digests(db: Database) -> dict[str, str]:
    """The digest of every person's records for the copy, for each person who has any."""
    digests: dict[str, str] = {}
    current: str | None = None
    batch: list[Dose] = []

    def close() -> None:
        records = records_from(batch)
        if current is not None and records:
            digests[current] = copy_digest(records)

    with db.session() as session:
        query = select(Dose).order_by(Dose.subject_number, Dose.dose_date, Dose.id).execution_options(yield_per=2000)
        for dose in session.scalars(query):
            if dose.subject_number != current:
                close()
                current, batch = dose.subject_number, []
            batch.append(dose)
        close()
    return digests


# --- the outbox --------------------------------------------------------------------------


@dataclass(frozen=True)
class Backlog:
    pending: int
    sent: int
    oldest_pending_at: datetime | None
    last_error: str | None


def backlog(db: Database) -> Backlog:
    with db.session() as session:
        pending = session.scalar(select(func.count()).where(CopyOutbox.pending.is_(True))) or 0
        sent = session.scalar(select(func.count()).where(CopyOutbox.pending.is_(False))) or 0
        oldest = session.scalar(select(func.min(CopyOutbox.changed_at)).where(CopyOutbox.pending.is_(True)))
        error = session.scalar(
            select(CopyOutbox.last_error).where(CopyOutbox.pending.is_(True), CopyOutbox.last_error.is_not(None)).order_by(CopyOutbox.changed_at).limit(1)
        )
    return Backlog(pending, sent, oldest, error)


class CopySender:
    """Sends pending people's records to the intermediate server, one batch a step."""

    def __init__(self, ctx, batch: int = 200, timeout: float = 30.0) -> None:
        self.ctx = ctx
        self.db: Database = ctx.db
        self.batch = max(1, min(batch, 1000))  # a CopyImport holds at most 1000 people
        self.timeout = timeout

    def _pending(self) -> tuple[list[tuple[str, int]], dict[str, list[dict[str, Any]]]]:
        with self.db.session() as session:
            rows = session.execute(
                select(CopyOutbox.subject_number, CopyOutbox.version)
                .where(CopyOutbox.pending.is_(True))
                .order_by(CopyOutbox.changed_at, CopyOutbox.subject_number)
                .limit(self.batch)
            ).all()
            rows = [(n, v) for n, v in rows]
            return rows, records_of(session, [n for n, _ in rows])

    def _sent(self, rows: list[tuple[str, int]]) -> None:
        now = utcnow()
        table = CopyOutbox.__table__
        statement = (
            update(table)
            .where(table.c.subject_number == bindparam("n"), table.c.version == bindparam("v"))
            .values(pending=False, sent_version=bindparam("v"), sent_at=now, attempts=0, last_error=None)
        )
        with self.db.session() as session:
            session.connection().execute(statement, [{"n": n, "v": v} for n, v in rows])

    def _failed(self, numbers: list[str], error: str, give_up: bool = False) -> None:
        values: dict[str, Any] = {"attempts": CopyOutbox.attempts + 1, "last_error": error[:2000]}
        if give_up:
            values["pending"] = False
        with self.db.session() as session:
            session.execute(update(CopyOutbox).where(CopyOutbox.subject_number.in_(numbers)).values(**values))

    async def step(self) -> int:
        """Send one batch; returns how many people it sent (0: nothing pending). Raises when
        the intermediate server could not be reached or did not store the batch."""
        rows, records = await asyncio.to_thread(self._pending)
        if not rows:
            return 0
        numbers = [n for n, _ in rows]
        request = CopyImport(item_code=ITEM, people=[PersonCopy(integrated_address_number=n, records=records[n]) for n in numbers])
        operation = self.ctx.registry.operation("intermediate_server", "register_copies")
        try:
            await self.ctx.bus.request(operation, self.ctx.settings.city, request, timeout=self.timeout)
        except InvalidRequest as problem:
            # Refused as off the layout: set the people it names aside (reconciliation queues them
            # again), so that one bad person never holds up the others; the rest go next time.
            refused = {numbers[e["loc"][1]] for e in problem.extensions.get("errors", []) if len(e.get("loc", [])) > 1 and e["loc"][0] == "people"}
            await asyncio.to_thread(self._failed, sorted(refused) or numbers, f"refused: {problem.detail}", True)
            raise
        except Exception as exc:
            await asyncio.to_thread(self._failed, numbers, f"{type(exc).__name__}: {exc}")
            raise
        await asyncio.to_thread(self._sent, rows)
        return len(rows)


# --- reconciliation ------------------------------------------------------------------------


@dataclass(frozen=True)
class Reconciliation:
    in_register: int  # people with records for the copy
    in_copy: int  # people the copy holds, with records or not
    missing: int  # in the register, not in the copy
    differing: int  # in both, with other records
    extra: int  # records in the copy the register does not hold
    queued: int  # people queued to be sent again


async def copy_digests(ctx, timeout: float = 30.0) -> dict[str, str]:
    """Every person's digest in the copy, page by page."""
    operation = ctx.registry.operation("intermediate_server", "copy_digests")
    found: dict[str, str] = {}
    after = None
    while True:
        reply = await ctx.bus.request(operation, ctx.settings.city, CopyDigestRequest(item_code=ITEM, after=after, limit=5000), timeout=timeout)
        found.update({d.integrated_address_number: d.digest for d in reply.digests})
        if reply.next_after is None:
            return found
        after = reply.next_after


async def reconcile(ctx, timeout: float = 30.0) -> Reconciliation:
    """Compare the copy with the register and queue every person who differs."""
    copy = await copy_digests(ctx, timeout)
    register = await asyncio.to_thread(register_digests, ctx.db)
    empty = copy_digest([])
    missing = [n for n in register if n not in copy]
    differing = [n for n in register if n in copy and copy[n] != register[n]]
    extra = [n for n, digest in copy.items() if n not in register and digest != empty]

    def queue() -> int:
        with ctx.db.session() as session:
            return note_changed(session, [*missing, *differing, *extra])

    queued = await asyncio.to_thread(queue)
    return Reconciliation(len(register), len(copy), len(missing), len(differing), len(extra), queued)
