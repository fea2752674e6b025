"""情報提供 (function 3): answering another institution's query, relayed by the hub.

Before anything is read, the request is checked on its own merits (M25):
the permit's signature (the hub's key from the trust directory), that it names this city
as provider, that it has not expired, that it was never used before here (the serial
number is claimed in ``used_permits``), that this city's own copy of the permitted-query
list allows exactly this query, and that the requester's answer key is signed by the
requester's own intermediate server. Then the person is found by this city's symbol, and
the answer holds exactly the item asked for, from the provision database, sealed to the
requester's key (HPKE, ML-KEM-768 + X25519) under the query's context (M22).

Items flagged no-auto-response wait in the review queue until a reviewer releases or
refuses them (M26). Every outcome — provided, held, released, refused — is recorded before
it leaves (M28).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import structlog
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from services.intermediate_server import copies, permitted, subject_requests, symbols
from services.intermediate_server.models import ReviewItem, UsedPermit
from services.intermediate_server.recorder import provision_record
from services.intermediate_server.runtime import Runtime
from shared.contracts.network import (
    HUB_PRINCIPAL,
    KEY_STATEMENT_LABEL,
    AnswerPlaintext,
    PermittedQuery,
    ProvisionOutcome,
    ProvisionPermit,
    RoutedQuery,
    SealedAnswer,
    SignedKeyStatement,
    SignedPermit,
    answer_info,
    intermediate_server,
)
from shared.crypto import SUITE_NAME, SignatureMismatch, b64decode, b64encode, seal, verify_document
from shared.db import insert_ignoring_conflicts_many
from shared.errors import Conflict, InvalidRequest, NotFound, Problem, Unavailable, returned
from shared.ledger import ProvisionRecord
from shared.models import as_utc, utcnow

log = structlog.get_logger("renkei.intermediate_server.provide")


@dataclass(frozen=True)
class Decision:
    """What the checks decided about one routed query."""

    person_key: str  # the integrated address number, or this city's symbol if nobody has it
    refusal: str | None = None
    held: bool = False
    records: list[dict] | None = None


def check_permit(rt: Runtime, signed: SignedPermit, now: datetime) -> str | None:
    """The reason to refuse the permit without touching anything, or None."""
    permit = signed.permit
    try:
        signed.verify(rt.ctx.directory.public_key(HUB_PRINCIPAL))
    except SignatureMismatch:
        return "the permit's signature does not verify with the hub's key"
    if permit.provider != rt.tenant:
        return f"the permit is for the provider {permit.provider}, not for {rt.tenant}"
    if now >= permit.expires_at:
        return "the permit has expired"
    if permit.route[-1:] != [str(rt.ctx.principal)] or permit.route[:1] != [intermediate_server(permit.requester)]:
        return "the permit's route does not lead from its requester to this server"
    statement = permit.requester_key.statement
    if statement.principal != intermediate_server(permit.requester):
        return "the requester's key is not the requester's own"
    if not _signed_by_its_server(rt, permit.requester_key):
        return "the requester's key is not signed by the requester's intermediate server"
    return None


#: Key statements found signed by their server's key, as (that key, statement, signature): a
#: requester's statement comes with each of its permits and changes only when it renews its key.
_VERIFIED_STATEMENTS: set[tuple[bytes, str, str]] = set()
_VERIFIED_LIMIT = 1024


def _signed_by_its_server(rt: Runtime, signed: SignedKeyStatement) -> bool:
    """Whether the statement is signed by the key the trust directory holds for its server."""
    try:
        key = rt.ctx.directory.public_key(signed.statement.principal)
    except KeyError:
        return False
    seen = (key.public_bytes_raw(), signed.statement.model_dump_json(), signed.signature)
    if seen in _VERIFIED_STATEMENTS:
        return True
    try:
        verify_document(key, KEY_STATEMENT_LABEL, signed.statement.model_dump(mode="json"), signed.signature)
    except SignatureMismatch:
        return False
    if len(_VERIFIED_STATEMENTS) >= _VERIFIED_LIMIT:
        _VERIFIED_STATEMENTS.clear()
    _VERIFIED_STATEMENTS.add(seen)
    return True


def decide_many(rt: Runtime, session: Session, rows: list[PermittedQuery], asked: Sequence[tuple[RoutedQuery, datetime]]) -> list[Decision]:
    """Check each query (against ``rows``, this city's copy of the list), claim its permit, and
    find what to answer, in the caller's transaction. Each query is decided on its own, in
    this order; what a batch looks up is looked up in one statement per kind."""
    persons = symbols.persons_of(session, rt.tenant, {routed.provider_symbol for routed, _ in asked})
    checked: list[tuple[str | None, PermittedQuery | None]] = []
    for routed, received_at in asked:
        permit = routed.permit.permit
        refusal = check_permit(rt, routed.permit, received_at)
        row = permitted.find(rows, permit.requester, permit.provider, permit.affair_code, permit.procedure_code, permit.item_code)
        if refusal is None and row is None:
            refusal = "not on this city's copy of the permitted-query list" if rows else "this city holds no copy of the permitted-query list yet"
        checked.append((refusal, row))
    # The insert is the claim: a serial number goes in once, here or in any earlier request;
    # a second copy of a permit in the same batch is a replay of the first.
    claims: dict[str, dict] = {}
    for (routed, received_at), (refusal, _) in zip(asked, checked, strict=True):
        permit = routed.permit.permit
        if refusal is None and permit.serial_number not in claims:
            claims[permit.serial_number] = {"tenant": rt.tenant, "serial_number": permit.serial_number, "query_id": permit.query_id, "requester": permit.requester, "received_at": received_at}
    claimed = insert_ignoring_conflicts_many(session, UsedPermit.__table__, list(claims.values()), "serial_number")
    suspended = subject_requests.suspended_among(session, rt.tenant, {persons[r.provider_symbol] for r, _ in asked if r.provider_symbol in persons})
    decisions: list[Decision] = []
    for (routed, received_at), (refusal, row) in zip(asked, checked, strict=True):
        signed, permit = routed.permit, routed.permit.permit
        person = persons.get(routed.provider_symbol)
        person_key = person or routed.provider_symbol
        if refusal is None and permit.serial_number not in claimed:
            refusal = "the permit has already been used"
        claimed.discard(permit.serial_number)  # its first copy only
        if refusal is None and person is None:
            refusal = "no person of this city has that symbol"
        if refusal is None and person in suspended:  # M34: provided again only once lifted
            refusal = subject_requests.SUSPENDED
        if refusal is not None:
            decisions.append(Decision(person_key, refusal=refusal))
        elif not row.auto_response:
            session.add(
                ReviewItem(
                    tenant=rt.tenant,
                    **_permit_columns(permit),
                    integrated_address_number=person,
                    permit=signed.model_dump_json(),
                    state="waiting",
                    received_at=received_at,
                )
            )
            decisions.append(Decision(person_key, held=True))
        else:
            decisions.append(Decision(person_key, records=[]))
    _fill_records(rt, session, asked, decisions)
    return decisions


def _fill_records(rt: Runtime, session: Session, asked: Sequence[tuple[RoutedQuery, datetime]], decisions: list[Decision]) -> None:
    """The records of each query to answer now, read per item in one statement."""
    wanted: dict[str, list[int]] = {}
    for at, ((routed, _), decision) in enumerate(zip(asked, decisions, strict=True)):
        if decision.records is not None:
            wanted.setdefault(routed.permit.permit.item_code, []).append(at)
    for item_code, positions in wanted.items():
        found = copies.records_of_many(session, rt.tenant, item_code, {decisions[at].person_key for at in positions})
        for at in positions:
            decisions[at] = dataclasses.replace(decisions[at], records=found[decisions[at].person_key])


def seal_answer(public_key: str, key_id: str, serial: str, query_id: str, item_code: str, records: list[dict]) -> SealedAnswer:
    plaintext = AnswerPlaintext(serial_number=serial, query_id=query_id, item_code=item_code, records=records).model_dump_json().encode()
    ciphertext = seal(plaintext, b64decode(public_key), answer_info(serial, query_id, item_code))
    return SealedAnswer(suite=SUITE_NAME, key_id=key_id, ciphertext=b64encode(ciphertext))


def _sealed_for(signed: SignedPermit, records: list[dict]) -> SealedAnswer:
    permit = signed.permit
    statement = permit.requester_key.statement
    return seal_answer(statement.public_key, statement.key_id, permit.serial_number, permit.query_id, permit.item_code, records)


_PERMIT_COLUMNS = ("serial_number", "query_id", "requester", "affair_code", "procedure_code", "item_code")


def _permit_columns(asked: ProvisionPermit | ReviewItem) -> dict[str, str]:
    """What a held item keeps of its permit (and a permit or a held item gives its record)."""
    return {name: getattr(asked, name) for name in _PERMIT_COLUMNS}


def _provision_fields(asked: ProvisionPermit | ReviewItem, requested_at: datetime, person_key: str) -> tuple[dict, dict]:
    """The provision record's fields of what was asked (a permit, or a held item), and the ids
    of its outcome."""
    columns = _permit_columns(asked)
    ids = {"serial_number": columns["serial_number"], "query_id": columns.pop("query_id")}
    return {**columns, "requested_at": requested_at, "person_key": person_key}, ids


def _provide_in(rt: Runtime, session: Session, asked: Sequence[tuple[RoutedQuery, datetime]]) -> list[tuple[ProvisionOutcome, ProvisionRecord]]:
    """Each query decided on its own (its permit claimed), its answer sealed and its outcome
    recorded, all in one transaction: a claim, its answer and its record stand or fall
    together, and nothing sealed leaves unless they stood."""
    answered = []
    for (query, received_at), decision in zip(asked, decide_many(rt, session, rt.list_rows(), asked), strict=True):
        permit = query.permit.permit
        sealed = None
        if decision.refusal is None and not decision.held:
            try:
                sealed = _sealed_for(query.permit, decision.records or [])
            except ValueError as exc:  # e.g. a requester key that is not a key: this query is refused, not the batch
                decision = Decision(decision.person_key, refusal=f"the answer could not be sealed to the requester's key ({type(exc).__name__})")
        fields, ids = _provision_fields(permit, received_at, decision.person_key)
        if decision.refusal is not None:
            outcome = ProvisionOutcome(**ids, status="refused", refusal_reason=decision.refusal)
            record = provision_record(rt.tenant, **fields, outcome="refused", refusal_reason=decision.refusal)
        elif decision.held:
            outcome = ProvisionOutcome(**ids, status="held")
            record = provision_record(rt.tenant, **fields, outcome="held_for_review")
        else:
            outcome = ProvisionOutcome(**ids, status="provided", answer=sealed)
            record = provision_record(rt.tenant, **fields, outcome="provided", provided_at=utcnow())
        answered.append((outcome, record))
    rt.ctx.require_ledger().append_in(session, [record for _, record in answered])
    return answered


async def provide(rt: Runtime, routed: RoutedQuery) -> ProvisionOutcome:
    (outcome,) = await provide_many(rt, [routed])
    return returned(outcome)


async def provide_many(rt: Runtime, routed: list[RoutedQuery]) -> list[ProvisionOutcome | Problem]:
    """The outcome of each routed query, each recorded before it leaves (a query whose record
    could not be written gets a problem instead: nothing leaves unrecorded)."""
    received = utcnow()
    answered = await rt.group_commit(_provide_in).submit_many([(query, received) for query in routed])
    rt.ctx.require_ledger().observed([a[1] for a in answered if not isinstance(a, BaseException)])
    results: list[ProvisionOutcome | Problem] = []
    for query, result in zip(routed, answered, strict=True):
        if isinstance(result, BaseException):
            serial = query.permit.permit.serial_number
            log.error("provision not decided or not recorded", serial_number=serial, error=repr(result))
            results.append(Problem("the provision could not be recorded", serial_number=serial))
        else:
            results.append(result[0])
    return results


# --- the review queue (自動応答不可, M26) -------------------------------------------------


def waiting(rt: Runtime, limit: int = 200) -> list[dict]:
    with rt.ctx.db.session() as session:
        rows = session.scalars(
            select(ReviewItem)
            .where(ReviewItem.tenant == rt.tenant, ReviewItem.state == "waiting")
            .order_by(ReviewItem.received_at)
            .limit(limit)
        )
        return [
            {
                "serial_number": r.serial_number,
                "requester": r.requester,
                "affair_code": r.affair_code,
                "procedure_code": r.procedure_code,
                "item_code": r.item_code,
                "integrated_address_number": r.integrated_address_number,
                "state": r.state,
                "received_at": as_utc(r.received_at),
            }
            for r in rows
        ]


def waiting_count(rt: Runtime) -> int:
    with rt.ctx.db.session() as session:
        return session.scalar(
            select(func.count()).select_from(ReviewItem).where(ReviewItem.tenant == rt.tenant, ReviewItem.state == "waiting")
        ) or 0


@dataclass(frozen=True)
class Verdict:
    """A reviewer's decision on a held item: release it, or refuse it with a reason."""

    serial_number: str
    reviewer: str
    release: bool
    reason: str | None = None


def _decide_reviews_in(rt: Runtime, session: Session, verdicts: Sequence[Verdict]) -> list[tuple[ProvisionOutcome, ProvisionRecord] | Problem]:
    """Each verdict applied to its item if it is still waiting: the answer read and sealed (or
    the refusal written), the item settled and the decision recorded, in one transaction, so
    that an item is decided with its record or not at all (a failure leaves it waiting)."""
    serials = {verdict.serial_number for verdict in verdicts}
    items = {
        item.serial_number: item
        for item in session.scalars(select(ReviewItem).where(ReviewItem.tenant == rt.tenant, ReviewItem.serial_number.in_(serials)).with_for_update())
    }
    now = utcnow()
    decided: list[tuple[ProvisionOutcome, ProvisionRecord] | Problem] = []
    for verdict in verdicts:
        item = items.get(verdict.serial_number)
        if item is None:
            decided.append(NotFound("no such item in the review queue"))
            continue
        if item.state != "waiting":
            decided.append(Conflict(f"the item is {item.state}: already decided"))
            continue
        fields, ids = _provision_fields(item, as_utc(item.received_at), item.integrated_address_number)
        if verdict.release:
            records = copies.records_of(session, rt.tenant, item.integrated_address_number, item.item_code)
            try:
                sealed = _sealed_for(SignedPermit.model_validate_json(item.permit), records)
            except ValueError as exc:  # the item stays waiting; the reviewer may refuse it instead
                decided.append(Problem(f"the answer could not be sealed to the requester's key ({type(exc).__name__})"))
                continue
            outcome = ProvisionOutcome(**ids, status="provided", answer=sealed)
            record = provision_record(rt.tenant, **fields, outcome="released", provided_at=now)
        else:
            outcome = ProvisionOutcome(**ids, status="refused", refusal_reason=verdict.reason)
            record = provision_record(rt.tenant, **fields, outcome="refused", refusal_reason=verdict.reason)
        item.state = "released" if verdict.release else "refused"
        item.outcome = outcome.model_dump_json()
        item.refusal_reason = verdict.reason
        item.decided_by = verdict.reviewer
        item.decided_at = now
        decided.append((outcome, record))
    records = [result[1] for result in decided if not isinstance(result, Problem)]
    if records:
        rt.ctx.require_ledger().append_in(session, records)
    return decided


async def decide_review(rt: Runtime, serial: str, reviewer: str, release: bool, reason: str | None = None) -> ProvisionOutcome:
    """Release (answer) or refuse a held item, recorded with it; then handed to the delivery job."""
    if not release and not reason:
        raise InvalidRequest("a refusal needs its reason")
    try:
        outcome, record = await rt.group_commit(_decide_reviews_in).submit(Verdict(serial, reviewer, release, reason))
    except Problem:
        raise
    except Exception as exc:  # nothing changed: the item is still waiting
        log.error("review decision not recorded", serial_number=serial, error=repr(exc))
        raise Unavailable("the decision could not be recorded: nothing changed, try again", serial_number=serial) from None
    rt.ctx.require_ledger().observed([record])
    rt.wake("deliveries")
    return outcome
