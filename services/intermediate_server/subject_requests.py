"""A person's requests about their information (本人からの請求, M34): disclosure (開示),
correction (訂正) and suspension of use (利用停止).

The counter receives a request (``disclosure_clerk``); a privacy officer decides it, with a
reason, accepted or refused (``privacy_officer``); nobody decides a request they received.
Every step is kept in ``subject_requests`` and in the operation log with the person's
integrated address number. What a decision does:
- disclosure: the records about the person come from the ledger (``GET /disclosure/…``);
- correction: the business system that holds the information corrects it, and the copy
  (副本) follows from there; the request and its decision are the record of it;
- suspension: while an accepted suspension stands, this city provides none of the person's
  information: every query about them is refused with that reason and recorded as refused
  (``providing.decide_many``), until the officer lifts it.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from services.intermediate_server.models import SubjectRequest
from services.intermediate_server.schemas import SubjectRequestIn, SubjectRequestView
from shared.db import rows_for
from shared.errors import Conflict, Forbidden, NotFound
from shared.models import utcnow

SUSPENDED = "use of this person's information is suspended at their request (利用停止)"


def receive(session: Session, tenant: str, request: SubjectRequestIn, received_by: str) -> SubjectRequest:
    row = SubjectRequest(
        tenant=tenant, kind=request.kind, integrated_address_number=request.integrated_address_number,
        details=request.details, received_by=received_by, received_at=utcnow(), state="received",
    )
    session.add(row)
    session.flush()
    return row


def decide(session: Session, tenant: str, request_id: int, accept: bool, reason: str, decided_by: str) -> SubjectRequest:
    row = _find(session, tenant, request_id)
    if row.state != "received":
        raise Conflict(f"request {request_id} was already {row.state}")
    if row.received_by == decided_by:
        raise Forbidden("the one who received a request does not decide it")
    row.state, row.decided_by, row.decided_at, row.decision_reason = ("accepted" if accept else "refused"), decided_by, utcnow(), reason
    return row


def lift(session: Session, tenant: str, request_id: int, lifted_by: str) -> SubjectRequest:
    row = _find(session, tenant, request_id)
    if row.kind != "suspension" or row.state != "accepted":
        raise Conflict("only an accepted suspension can be lifted")
    if row.lifted_at is None:
        row.lifted_by, row.lifted_at = lifted_by, utcnow()
    return row


def of_person(session: Session, tenant: str, number: str) -> list[SubjectRequest]:
    query = select(SubjectRequest).where(SubjectRequest.tenant == tenant, SubjectRequest.integrated_address_number == number)
    return list(session.scalars(query.order_by(SubjectRequest.id)))


_requests = SubjectRequest.__table__
#: Built once: every provision asks it, and only the parameters change.
_STANDING_SUSPENSIONS = (
    select(_requests.c.integrated_address_number)
    .where(
        _requests.c.tenant == bindparam("tenant"),
        _requests.c.integrated_address_number.in_(bindparam("keys", expanding=True)),
        _requests.c.kind == "suspension",
        _requests.c.state == "accepted",
        _requests.c.lifted_at.is_(None),
    )
    .distinct()
)


def suspended_among(session: Session, tenant: str, numbers: Iterable[str]) -> set[str]:
    """Those of the people for whom an accepted suspension of use stands (one statement)."""
    return {number for (number,) in rows_for(session, _STANDING_SUSPENSIONS, numbers, tenant=tenant)}


def view(row: SubjectRequest) -> SubjectRequestView:
    fields = {name: getattr(row, name) for name in SubjectRequestView.model_fields if name != "suspends_provision"}
    standing = row.kind == "suspension" and row.state == "accepted" and row.lifted_at is None
    return SubjectRequestView(**fields, suspends_provision=standing)


def _find(session: Session, tenant: str, request_id: int) -> SubjectRequest:
    row = session.get(SubjectRequest, request_id)
    if row is None or row.tenant != tenant:  # another city's request does not exist here
        raise NotFound(f"no request {request_id}")
    return row
