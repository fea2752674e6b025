"""Doses given before a move-in (転入前接種), taken from the answer to a move-in query.

The intermediate server announces that a query ended (``intermediate_server.events.answered``,
no personal data). The consumer notes the query in ``move_in_receipts`` in the event's own
inbox transaction; the ``move_in`` job reads the result (``intermediate_server.query_result``)
and, in one transaction, registers each dose received for the person as vaccinated before
the move-in (source ``transfer``, item 転入前接種 = true), notes the person for the copy, and
finishes the receipt. So each answer lands once: a redelivered event finds its receipt (or
the inbox entry) and changes nothing; a receipt is finished in the transaction that stores
its doses, never apart from it.

A dose is left out, with its reason in the receipt, when its type is not in the catalogue
or not recorded with a 接種日, when the catalogue refuses it, when it is dated before the
person's birth, or when the register already holds that dose (same type and date).
"""

from __future__ import annotations

import asyncio
from typing import Any

import structlog
from sqlalchemy import select
from sqlalchemy.orm import Session

from services.health_mgmt import copies, register
from services.health_mgmt.catalogue import UnknownRecordType, load_catalogue
from services.health_mgmt.models import MoveInReceipt, Subject
from shared.contracts.network import (
    FINAL_STATUSES,
    MOVE_IN_HISTORY_PROCEDURE,
    VACCINATION_RECORDS,
    QueryAnswered,
    QueryResult,
    QueryResultRequest,
)
from shared.db import Database, insert_ignoring_conflicts
from shared.models import utcnow

log = structlog.get_logger("renkei.health_mgmt.move_in")

SOURCE = "transfer"
FLAG = "vaccinated_before_move_in"  # 転入前接種
_OPTIONAL = ("lot_number", "manufacturer", "vaccine_product")
_PLACE_ITEMS = ("inoculation_place", "medical_institution_name")
_KEPT = frozenset({"inoculation_date", "examination_type"})


def note_answered(session: Session, event: QueryAnswered) -> bool:
    """The consumer: note a query about vaccination records that ended; True if it is new."""
    if event.item_code != VACCINATION_RECORDS:
        return False
    answered = event.status == "answered"
    return insert_ignoring_conflicts(
        session,
        MoveInReceipt.__table__,
        {
            "query_id": event.query_id,
            "provider": event.provider,
            "query_status": event.status,
            "outcome": "pending" if answered else "not_answered",
            "noted_at": utcnow(),
            "finished_at": None if answered else utcnow(),
            "attempts": 0,
        },
    )


def items_of(record: dict[str, Any]) -> tuple[str, dict[str, Any]] | str:
    """The catalogue's type and items for a received dose, or why it cannot be taken."""
    code = record.get("record_type")
    try:
        rtype = load_catalogue().record_type(str(code))
    except UnknownRecordType:
        return "unknown_record_type"
    if "inoculation_date" not in rtype.item_code_set:
        return "not_a_vaccination"
    items: dict[str, Any] = {"inoculation_date": record.get("inoculation_date"), "examination_type": record.get("examination_type") or "inoculated"}
    for key in _OPTIONAL:
        if record.get(key) not in (None, "") and key in rtype.item_code_set:
            items[key] = record[key]
    place = record.get("inoculation_place")
    target = next((k for k in _PLACE_ITEMS if k in rtype.item_code_set), None)
    if place not in (None, "") and target:
        items[target] = place
    if FLAG in rtype.item_code_set:
        items[FLAG] = True
    return rtype.code, items


def checked_record(record: dict[str, Any]) -> register.CheckedRecord | str:
    """The received dose as the register stores it; a value the catalogue refuses in an item
    the register can do without is left out (never the date or 診察区分)."""
    found = items_of(record)
    if isinstance(found, str):
        return found
    code, items = found
    catalogue = load_catalogue()
    for _ in range(2):
        result = catalogue.validate(code, items)
        if result.ok:
            return register.CheckedRecord(code, result.values)
        bad = {error.field for error in result.errors}
        if bad & _KEPT:
            break
        items = {k: v for k, v in items.items() if k not in bad}
    return "rejected"


def register_answer(session: Session, query_id: str, result: QueryResult) -> MoveInReceipt | None:
    """Register the answer's doses and finish the receipt, in the caller's one transaction.
    Returns the receipt, or None when it was finished already (nothing changes)."""
    receipt = session.get(MoveInReceipt, query_id)
    if receipt is None or receipt.outcome != "pending":
        return None
    receipt.finished_at = utcnow()
    receipt.subject_number = result.integrated_address_number
    receipt.query_status = result.status
    if result.status != "answered":
        receipt.outcome = "not_answered"
        return receipt
    if result.procedure_code != MOVE_IN_HISTORY_PROCEDURE:
        receipt.outcome = "other_procedure"
        return receipt
    subject = session.get(Subject, result.integrated_address_number)
    records = result.records or []
    receipt.received = len(records)
    if subject is None:
        receipt.outcome = "unknown_subject"
        receipt.registered = 0
        return receipt
    number = subject.integrated_address_number
    held = {(d.record_type, d.dose_date) for d in register.doses_of(session, number)}
    registered, skipped = 0, []
    for record in records:
        checked = checked_record(record)
        why = checked if isinstance(checked, str) else None
        if why is None:
            key = (checked.record_type, checked.dose_date)
            if key in held:
                why = "already_recorded"
            elif checked.dose_date < subject.birth_date:
                why = "before_birth"
        if why is not None:
            skipped.append({"record_type": record.get("record_type"), "inoculation_date": record.get("inoculation_date"), "reason": why})
            continue
        held.add((checked.record_type, checked.dose_date))
        session.add(register.new_dose(number, checked, source=SOURCE, recorded_by=f"move-in:{query_id}"))
        registered += 1
    session.flush()
    if registered:
        copies.note_changed(session, [number])
    receipt.outcome = "registered"
    receipt.registered = registered
    receipt.skipped = skipped
    return receipt


class MoveInTaker:
    """Reads the results of noted queries and registers their doses, a few a step."""

    def __init__(self, ctx, batch: int = 20, timeout: float = 30.0, on_registered=None) -> None:
        self.ctx = ctx
        self.db: Database = ctx.db
        self.batch = batch
        self.timeout = timeout
        self.on_registered = on_registered or (lambda: None)

    def _pending(self) -> list[str]:
        with self.db.session() as session:
            return list(
                session.scalars(
                    select(MoveInReceipt.query_id).where(MoveInReceipt.outcome == "pending").order_by(MoveInReceipt.noted_at).limit(self.batch)
                )
            )

    def _take(self, query_id: str, result: QueryResult) -> MoveInReceipt | None:
        with self.db.session() as session:
            receipt = register_answer(session, query_id, result)
            if receipt is not None:
                session.flush()
                session.expunge(receipt)
            return receipt

    def _failed(self, query_id: str, error: str) -> None:
        with self.db.session() as session:
            receipt = session.get(MoveInReceipt, query_id)
            if receipt is not None:
                receipt.attempts += 1
                receipt.last_error = error[:2000]

    async def step(self) -> int:
        """Take one batch of noted answers; returns how many were looked at. Raises when the
        intermediate server could not be asked (what is left stays noted)."""
        pending = await asyncio.to_thread(self._pending)
        operation = self.ctx.registry.operation("intermediate_server", "query_result")
        for query_id in pending:
            try:
                result = await self.ctx.bus.request(operation, self.ctx.settings.city, QueryResultRequest(query_id=query_id), timeout=self.timeout)
                if result.status not in FINAL_STATUSES:
                    raise RuntimeError(f"query {query_id} has not ended ({result.status})")
                receipt = await asyncio.to_thread(self._take, query_id, result)
            except Exception as exc:
                await asyncio.to_thread(self._failed, query_id, f"{type(exc).__name__}: {exc}")
                raise
            if receipt is not None:
                log.info("move-in answer taken", query_id=query_id, outcome=receipt.outcome, registered=receipt.registered)
                if receipt.registered:
                    self.on_registered()
        return len(pending)
