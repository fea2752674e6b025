"""情報照会 (function 2): a query of this city, from request to decrypted answer.

1. ``submit``: the caller's entitlement is checked (by the caller's route), the person's
   symbol looked up (no symbol: refused and recorded), the query stored as ``pending``, and
   its query id returned at once; the rest runs in the background.
2. ``dispatch``: the hub is asked for a permit; a refusal ends the query (recorded). With
   the permit, the query is recorded (``requested``) and sent; the hub relays it and brings
   back the provider's outcome.
3. ``conclude``: a provided answer is opened with this server's key under the query's own
   context (serial number, query id, item), checked to be exactly the item asked for in
   its layout, recorded (``answer_received``) and stored with the event that announces it.
   An answer that does not open or does not fit is refused and recorded as such. A held
   answer waits for the provider's staff and arrives later through the network listener.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import structlog
from pydantic import ValidationError
from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from services.intermediate_server import symbols
from services.intermediate_server.models import QueryRow
from services.intermediate_server.recorder import answer_record, query_record
from services.intermediate_server.runtime import Runtime
from shared.contracts.network import (
    FINAL_STATUSES,
    QUERY_ANSWERED,
    AnswerPlaintext,
    PermitRequest,
    ProvisionOutcome,
    QueryAccepted,
    QueryAnswered,
    QueryRequest,
    QueryResult,
    SentQuery,
    SignedPermit,
    answer_info,
    check_records,
)
from shared.crypto import OpenError, b64decode
from shared.db import rows_for
from shared.errors import Conflict, NotFound, Problem, Unavailable, returned
from shared.events import enqueue_many
from shared.ledger import ProvisionRecord
from shared.models import as_utc, utcnow

log = structlog.get_logger("renkei.intermediate_server.query")

PERMIT_ATTEMPTS = 5


@dataclass(frozen=True)
class QueryFacts:
    """What the records of one query repeat."""

    query_id: str
    integrated_address_number: str
    provider: str
    affair_code: str
    procedure_code: str
    item_code: str
    requested_at: datetime

    @classmethod
    def of(cls, row: QueryRow) -> QueryFacts:
        return cls(
            row.query_id,
            row.integrated_address_number,
            row.provider,
            row.affair_code,
            row.procedure_code,
            row.item_code,
            as_utc(row.requested_at),
        )

    def codes(self) -> dict[str, str]:
        return {"provider": self.provider, "affair_code": self.affair_code, "procedure_code": self.procedure_code, "item_code": self.item_code}

    def query_record(self, tenant: str, serial_number: str, refusal_reason: str | None = None) -> ProvisionRecord:
        """The record of this query going out (or, with a reason, of its being refused)."""
        return query_record(
            tenant, **self.codes(), serial_number=serial_number, requested_at=self.requested_at,
            person_key=self.integrated_address_number, refusal_reason=refusal_reason[:500] if refusal_reason else None,
        )


# Built once: every query runs them, and only their parameters change.
_QUERIES = QueryRow.__table__
_FINISH = (
    update(_QUERIES)
    # One statement for a batch's ends: the guard is spelt without IN, which cannot run per row.
    .where(_QUERIES.c.tenant == bindparam("tenant_"), _QUERIES.c.query_id == bindparam("query_id_"), *(_QUERIES.c.status != status for status in FINAL_STATUSES))
    .values({name: bindparam(name) for name in ("status", "serial_number", "records", "refusal_reason", "answered_at", "finished_at", "updated_at")})
)
_OPEN = (
    select(_QUERIES.c.query_id)
    .where(_QUERIES.c.tenant == bindparam("tenant"), _QUERIES.c.query_id.in_(bindparam("keys", expanding=True)), _QUERIES.c.status.not_in(FINAL_STATUSES))
    .with_for_update()
)
_INSERT = _QUERIES.insert()
_RESULTS = select(_QUERIES).where(_QUERIES.c.tenant == bindparam("tenant"), _QUERIES.c.query_id.in_(bindparam("keys", expanding=True)))


# --- 1. submit ------------------------------------------------------------------------


def _store_many(rt: Runtime, session: Session, rows: Sequence[dict]) -> list[str | None]:
    """Each query stored as pending if its person has a symbol: the symbol (or None) for each."""
    linked = symbols.symbols_of(session, rt.tenant, {row["integrated_address_number"] for row in rows})
    stored = [row for row in rows if row["integrated_address_number"] in linked]
    if stored:
        session.execute(_INSERT, stored)
    return [linked.get(row["integrated_address_number"]) for row in rows]


async def submit(rt: Runtime, request: QueryRequest, requested_by: str) -> QueryAccepted:
    query_id = uuid.uuid4().hex
    now = utcnow()
    row = {
        "tenant": rt.tenant,
        "query_id": query_id,
        "integrated_address_number": request.integrated_address_number,
        "requested_by": requested_by,
        "provider": request.provider,
        "affair_code": request.affair_code,
        "procedure_code": request.procedure_code,
        "item_code": request.item_code,
        "consent": request.consent.model_dump_json(),
        "status": "pending",
        "requested_at": now,
        "updated_at": now,
    }
    symbol = await rt.group_commit(_store_many).submit(row)
    if symbol is None:
        reason = "the person has no symbol yet: the query cannot go out"
        await rt.recorder.record(
            query_record(
                rt.tenant,
                provider=request.provider,
                affair_code=request.affair_code,
                procedure_code=request.procedure_code,
                item_code=request.item_code,
                serial_number=query_id,
                requested_at=now,
                person_key=request.integrated_address_number,
                refusal_reason=reason,
            )
        )
        raise Conflict(reason, query_id=query_id)
    facts = QueryFacts(query_id, request.integrated_address_number, request.provider, request.affair_code, request.procedure_code, request.item_code, now)
    rt.spawn(dispatch(rt, query_id, (facts, symbol)))
    return QueryAccepted(query_id=query_id, status="pending")


async def resume(rt: Runtime) -> None:
    """Dispatch again the queries a restart interrupted before they had a permit."""
    await rt.registered.wait()

    def pending() -> list[str]:
        with rt.ctx.db.session() as session:
            return list(session.scalars(select(QueryRow.query_id).where(QueryRow.tenant == rt.tenant, QueryRow.status == "pending")))

    for query_id in await asyncio.to_thread(pending):
        rt.spawn(dispatch(rt, query_id))


# --- 2. dispatch ----------------------------------------------------------------------


def _load(rt: Runtime, query_id: str) -> tuple[QueryRow | None, str | None]:
    with rt.ctx.db.session() as session:
        row = session.get(QueryRow, (rt.tenant, query_id))
        symbol = symbols.symbol_of(session, rt.tenant, row.integrated_address_number) if row else None
        return row, symbol


async def _permit(rt: Runtime, request: PermitRequest) -> SignedPermit:
    for attempt in range(PERMIT_ATTEMPTS):
        try:
            return await rt.hub.permit(request)
        except Unavailable:
            if attempt == PERMIT_ATTEMPTS - 1:
                raise
            await asyncio.sleep(min(5.0, 0.2 * 2**attempt))
    raise AssertionError("unreachable")


async def dispatch(rt: Runtime, query_id: str, known: tuple[QueryFacts, str] | None = None) -> None:
    """Carry a pending query to its end; ``known`` spares reading back a query just stored."""
    try:
        await _dispatch(rt, query_id, known)
    except asyncio.CancelledError:
        raise
    except Exception:  # the query must end somewhere: a bug leaves it failed, not pending
        log.exception("query dispatch failed", query_id=query_id)
        row, _ = await asyncio.to_thread(_load, rt, query_id)
        if row is not None and row.status not in FINAL_STATUSES:
            await _finish(rt, QueryFacts.of(row), "failed", refusal_reason="the query failed inside this server")


async def _dispatch(rt: Runtime, query_id: str, known: tuple[QueryFacts, str] | None) -> None:
    if known is None:
        row, symbol = await asyncio.to_thread(_load, rt, query_id)
        if row is None or row.status != "pending" or symbol is None:
            return
        facts = QueryFacts.of(row)
    else:
        facts, symbol = known
    request = PermitRequest(query_id=query_id, requester_symbol=symbol, **facts.codes())
    try:
        signed = await _permit(rt, request)
    except Problem as problem:
        reason = f"no permit: {problem.detail}" if problem.status < 500 else f"no permit: the network could not be reached ({problem.detail})"
        serial = str(problem.extensions.get("serial_number") or query_id)
        record = facts.query_record(rt.tenant, serial, reason)
        await _finish(rt, facts, "refused" if problem.status < 500 else "failed", serial_number=serial, refusal_reason=reason, record=record)
        return
    permit = signed.permit
    if (permit.query_id, permit.requester, permit.provider, permit.item_code) != (query_id, rt.tenant, facts.provider, facts.item_code):
        reason = "the hub's permit is for another query"
        record = facts.query_record(rt.tenant, permit.serial_number, reason)
        await _finish(rt, facts, "failed", serial_number=permit.serial_number, refusal_reason=reason, record=record)
        return
    await rt.recorder.record(facts.query_record(rt.tenant, permit.serial_number))
    try:
        outcome = await rt.hub.send(SentQuery(permit=signed))
    except Problem as problem:
        status = "refused" if problem.status < 500 else "failed"
        await _conclude(rt, facts, permit.serial_number, None, f"not answered: {problem.detail}", status)
        return
    await conclude(rt, facts, permit.serial_number, outcome)


# --- 3. conclude ----------------------------------------------------------------------


def open_answer(rt: Runtime, facts: QueryFacts, serial_number: str, outcome: ProvisionOutcome) -> list[dict]:
    """The records of a provided answer, or ``OpenError`` saying why it cannot be taken."""
    sealed = outcome.answer
    if sealed is None:
        raise OpenError("a provided answer without its sealed content")
    if sealed.key_id != rt.answer_keys.key_id:
        raise OpenError("the answer is sealed to another key")
    try:
        plaintext = rt.answer_keys.open(b64decode(sealed.ciphertext), answer_info(serial_number, facts.query_id, facts.item_code))
        answer = AnswerPlaintext.model_validate_json(plaintext)
    except (ValueError, ValidationError) as exc:
        raise OpenError(f"the answer does not open: {type(exc).__name__}") from None
    if (answer.serial_number, answer.query_id, answer.item_code) != (serial_number, facts.query_id, facts.item_code):
        raise OpenError("the answer is not the answer to this query")
    records, errors = check_records(facts.item_code, answer.records)
    if errors:
        raise OpenError(f"the answer does not fit the item's layout ({len(errors)} error(s))")
    return records


async def conclude(rt: Runtime, facts: QueryFacts, serial_number: str, outcome: ProvisionOutcome) -> None:
    if (outcome.serial_number, outcome.query_id) != (serial_number, facts.query_id):
        await _conclude(rt, facts, serial_number, None, "the network answered another query", "failed")
    elif outcome.status == "held":
        await _hold(rt, facts, serial_number)
    elif outcome.status == "refused":
        await _conclude(rt, facts, serial_number, None, f"refused by the provider: {outcome.refusal_reason or 'no reason given'}", "refused")
    else:
        try:
            # On the loop: opening takes about a tenth of a millisecond, less than a hand-off to a thread.
            records = open_answer(rt, facts, serial_number, outcome)
        except OpenError as error:
            await _conclude(rt, facts, serial_number, None, str(error), "failed")
            return
        await _conclude(rt, facts, serial_number, records, None, "answered")


async def _conclude(rt: Runtime, facts: QueryFacts, serial: str, records: list[dict] | None, reason: str | None, status: str) -> None:
    """The answer's arrival recorded, and the query ended, in one transaction."""
    received = utcnow()
    record = answer_record(
        rt.tenant,
        **facts.codes(),
        serial_number=serial,
        requested_at=facts.requested_at,
        received_at=received,
        person_key=facts.integrated_address_number,
        refusal_reason=reason[:500] if reason else None,
    )
    await _finish(rt, facts, status, serial_number=serial, records=records, refusal_reason=reason, at=received, record=record)


async def _hold(rt: Runtime, facts: QueryFacts, serial: str) -> None:
    def store() -> None:
        with rt.ctx.db.session() as session:
            session.execute(
                update(QueryRow)
                .where(QueryRow.tenant == rt.tenant, QueryRow.query_id == facts.query_id, QueryRow.status == "pending")
                .values(status="held", serial_number=serial, updated_at=utcnow())
            )

    await asyncio.to_thread(store)


async def _finish(
    rt: Runtime,
    facts: QueryFacts,
    status: str,
    *,
    serial_number: str | None = None,
    records: list[dict] | None = None,
    refusal_reason: str | None = None,
    at: datetime | None = None,
    record: ProvisionRecord | None = None,
) -> None:
    """Store the query's end with the event announcing it (and ``record``), in one transaction."""
    now = at or utcnow()
    end = {
        "tenant_": rt.tenant,
        "query_id_": facts.query_id,
        "status": status,
        "serial_number": serial_number,
        "records": json.dumps(records, ensure_ascii=False) if records is not None else None,
        "refusal_reason": refusal_reason[:500] if refusal_reason else None,
        "answered_at": now if status == "answered" else None,
        "finished_at": now,
        "updated_at": now,
    }
    announced = QueryAnswered(query_id=facts.query_id, status=status, item_code=facts.item_code, provider=facts.provider)
    announced_now = await rt.group_commit(_finish_many).submit((end, announced, record))
    if record is not None:
        rt.ctx.require_ledger().observed([record])
    if announced_now and rt.ctx.relay is not None:
        rt.ctx.relay.wake()


def _finish_many(rt: Runtime, session: Session, ends: Sequence[tuple[dict, QueryAnswered, ProvisionRecord | None]]) -> list[bool]:
    """Each query's end stored (unless it had ended already) with the event announcing it, and
    its record appended: whether the event was, for each."""
    records = [record for _, _, record in ends if record is not None]
    if records:
        rt.ctx.require_ledger().append_in(session, records)
    # The queries not ended yet, locked until the end of this transaction (on SQLite the
    # transaction holds the write lock from its start).
    ending = {query_id for (query_id,) in rows_for(session, _OPEN, (end["query_id_"] for end, _, _ in ends), tenant=rt.tenant)}
    changed = []
    for end, _, _ in ends:
        changed.append(end["query_id_"] in ending)
        ending.discard(end["query_id_"])  # the first of two ends of one query is its end
    ended = [(end, announced) for (end, announced, _), change in zip(ends, changed, strict=True) if change]
    if ended:
        session.execute(_FINISH, [end for end, _ in ended])
    if QUERY_ANSWERED.key not in rt.ctx.registry.events:
        return [False] * len(ends)
    enqueue_many(session, QUERY_ANSWERED, rt.tenant, [announced for _, announced in ended])
    return changed


# --- answers arriving later, and reading results ----------------------------------------


async def receive(rt: Runtime, outcome: ProvisionOutcome) -> None:
    """An answer released (or refused) by the provider's staff, delivered by the hub."""
    row, _ = await asyncio.to_thread(_load, rt, outcome.query_id)
    if row is None:
        raise NotFound("no such query here")
    if row.status != "held" or row.serial_number != outcome.serial_number:
        raise Conflict(f"the query is {row.status}, not waiting for this answer")
    if outcome.status == "held":
        raise Conflict("an answer, not another hold, was expected")
    await conclude(rt, QueryFacts.of(row), outcome.serial_number, outcome)


def result(rt: Runtime, query_id: str, requested_by: str | None) -> QueryResult:
    """The query's state and, once answered, its records; ``requested_by`` limits it to its asker."""
    return returned(results_of(rt, [(query_id, requested_by)])[0])


async def result_soon(rt: Runtime, query_id: str, requested_by: str | None) -> QueryResult:
    """``result``, read in one snapshot with those asked meanwhile (``Runtime.group_read``)."""
    return await rt.group_read(results_of).submit((query_id, requested_by))


def results_of(rt: Runtime, asked: Sequence[tuple[str, str | None]]) -> list[QueryResult | Problem]:
    """``result`` of each (query id, asker), read in one snapshot."""
    with rt.ctx.db.reading() as session:
        rows = {row.query_id: row for row in rows_for(session, _RESULTS, {q for q, _ in asked}, tenant=rt.tenant)}
    found: list[QueryResult | Problem] = []
    for query_id, requested_by in asked:
        row = rows.get(query_id)
        if row is None or (requested_by is not None and row.requested_by != requested_by):
            found.append(NotFound("no such query (it may have been deleted after its retention period)"))
        else:
            found.append(_result_of(row))
    return found


def _result_of(row) -> QueryResult:
    return QueryResult(
        query_id=row.query_id,
        integrated_address_number=row.integrated_address_number,
        provider=row.provider,
        affair_code=row.affair_code,
        procedure_code=row.procedure_code,
        item_code=row.item_code,
        status=row.status,
        serial_number=row.serial_number,
        records=json.loads(row.records) if row.records is not None else None,
        refusal_reason=row.refusal_reason,
        requested_at=as_utc(row.requested_at),
        answered_at=as_utc(row.answered_at),
    )
