"""The staff terminal's API (中間サーバー端末): queries, the review queue, the provision
database, system management. Every route needs a signed-in staff member holding the
route's permission (M06, M19) and goes to the operation log, with whose data it touched.

| route | permission |
|---|---|
| ``POST /queries``, ``GET /queries/{query_id}`` | ``query.submit``, ``query.read`` |
| ``GET /review``, ``POST /review/{serial}/release``, ``POST /review/{serial}/refuse`` | ``review.read``, ``review.decide`` |
| ``GET /copies/{integrated_address_number}`` | ``copies.inspect`` |
| ``GET /copies?item_code=…`` (export, M10) | ``copies.export`` |
| ``GET /system/status`` | ``system.read`` |
| ``POST /subject-requests``, ``GET /subject-requests?integrated_address_number=…`` | ``subject_requests.receive``, ``subject_requests.read`` |
| ``POST /subject-requests/{id}/decision``, ``POST /subject-requests/{id}/lift`` | ``subject_requests.decide`` |
"""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Depends, Query, Request

from services.intermediate_server import copies, providing, querying, statistics, subject_requests
from services.intermediate_server.runtime import runtime_of
from services.intermediate_server.schemas import (
    CopyExport,
    DecisionReply,
    PersonCopyView,
    ReviewDecision,
    ReviewEntry,
    SubjectRequestDecision,
    SubjectRequestIn,
    SubjectRequestView,
)
from shared.contracts.network import QueryAccepted, QueryRequest, QueryResult, SystemStatus
from shared.contracts.types import IntegratedAddressNumber
from shared.http import Audited, audit_person
from shared.ledger.records import ItemCode
from shared.staff import SignedIn, StaffMember

STAFF_REQUESTER = "staff"


def router() -> APIRouter:
    api = APIRouter(tags=["terminal"])

    @api.post("/queries", status_code=202, dependencies=[Depends(Audited("terminal.query"))])
    async def submit(body: QueryRequest, request: Request, member: SignedIn = Depends(StaffMember("query.submit"))) -> QueryAccepted:
        audit_person(request, body.integrated_address_number)
        rt = runtime_of(request.app.state.context)
        return await querying.submit(rt, body, f"{STAFF_REQUESTER}:{member.user_id}")

    @api.get("/queries/{query_id}", dependencies=[Depends(Audited("terminal.query_result"))])
    async def follow(query_id: str, request: Request, member: SignedIn = Depends(StaffMember("query.read"))) -> QueryResult:
        rt = runtime_of(request.app.state.context)
        found = await asyncio.to_thread(querying.result, rt, query_id, None)
        audit_person(request, found.integrated_address_number)
        return found

    @api.get("/review", dependencies=[Depends(Audited("terminal.review.list"))])
    async def review_queue(request: Request, member: SignedIn = Depends(StaffMember("review.read"))) -> list[ReviewEntry]:
        rt = runtime_of(request.app.state.context)
        return [ReviewEntry(**entry) for entry in await asyncio.to_thread(providing.waiting, rt)]

    @api.post("/review/{serial_number}/release", dependencies=[Depends(Audited("terminal.review.release"))])
    async def release(serial_number: str, request: Request, member: SignedIn = Depends(StaffMember("review.decide"))) -> DecisionReply:
        rt = runtime_of(request.app.state.context)
        outcome = await providing.decide_review(rt, serial_number, member.user_id, release=True)
        return DecisionReply(serial_number=serial_number, status="released" if outcome.status == "provided" else outcome.status)

    @api.post("/review/{serial_number}/refuse", dependencies=[Depends(Audited("terminal.review.refuse"))])
    async def refuse(serial_number: str, body: ReviewDecision, request: Request, member: SignedIn = Depends(StaffMember("review.decide"))) -> DecisionReply:
        rt = runtime_of(request.app.state.context)
        outcome = await providing.decide_review(rt, serial_number, member.user_id, release=False, reason=body.reason)
        return DecisionReply(serial_number=serial_number, status="refused", refusal_reason=outcome.refusal_reason)

    @api.get("/copies/{integrated_address_number}", dependencies=[Depends(Audited("terminal.copies.inspect", person_param="integrated_address_number"))])
    async def inspect(integrated_address_number: IntegratedAddressNumber, request: Request, member: SignedIn = Depends(StaffMember("copies.inspect"))) -> PersonCopyView:
        rt = runtime_of(request.app.state.context)

        def read():
            with rt.ctx.db.session() as session:
                return copies.person_copy(session, rt.tenant, integrated_address_number)

        return PersonCopyView(integrated_address_number=integrated_address_number, items=await asyncio.to_thread(read))

    @api.get("/copies", dependencies=[Depends(Audited("terminal.copies.export"))])
    async def export(
        request: Request,
        item_code: ItemCode,
        after: IntegratedAddressNumber | None = None,
        limit: int = Query(default=1000, ge=1, le=5000),
        member: SignedIn = Depends(StaffMember("copies.export")),
    ) -> CopyExport:
        rt = runtime_of(request.app.state.context)

        def read():
            with rt.ctx.db.session() as session:
                return copies.export(session, rt.tenant, item_code, after, limit)

        people = await asyncio.to_thread(read)
        # What left, in the log (M10, M14): the item, where the page began, how many people.
        audit_person(request, None, f"terminal.copies.export item_code={item_code} after={after or '-'} people={len(people)}")
        next_after = people[-1]["integrated_address_number"] if len(people) == limit else None
        return CopyExport(item_code=item_code, people=people, next_after=next_after)

    @api.get("/system/status", dependencies=[Depends(Audited("terminal.system.status"))])
    async def status(request: Request, days: int = Query(default=7, ge=1, le=366), member: SignedIn = Depends(StaffMember("system.read"))) -> SystemStatus:
        return await asyncio.to_thread(statistics.system_status, runtime_of(request.app.state.context), days)

    # -- a person's requests (M34) ----------------------------------------------------

    def in_session(request: Request, work):
        rt = runtime_of(request.app.state.context)

        def run():
            with rt.ctx.db.session() as session:
                found = work(session, rt.tenant)
                return [subject_requests.view(r) for r in found] if isinstance(found, list) else subject_requests.view(found)

        return asyncio.to_thread(run)

    @api.post("/subject-requests", status_code=201, dependencies=[Depends(Audited("terminal.subject_requests.receive"))])
    async def receive_request(body: SubjectRequestIn, request: Request, member: SignedIn = Depends(StaffMember("subject_requests.receive"))) -> SubjectRequestView:
        audit_person(request, body.integrated_address_number, f"terminal.subject_requests.receive kind={body.kind}")
        return await in_session(request, lambda s, tenant: subject_requests.receive(s, tenant, body, member.user_id))

    @api.get("/subject-requests", dependencies=[Depends(Audited("terminal.subject_requests.read", person_param="integrated_address_number"))])
    async def person_requests(
        integrated_address_number: IntegratedAddressNumber, request: Request, member: SignedIn = Depends(StaffMember("subject_requests.read"))
    ) -> list[SubjectRequestView]:
        return await in_session(request, lambda s, tenant: subject_requests.of_person(s, tenant, integrated_address_number))

    @api.post("/subject-requests/{request_id}/decision", dependencies=[Depends(Audited("terminal.subject_requests.decide"))])
    async def decide_request(
        request_id: int, body: SubjectRequestDecision, request: Request, member: SignedIn = Depends(StaffMember("subject_requests.decide"))
    ) -> SubjectRequestView:
        decided = await in_session(request, lambda s, tenant: subject_requests.decide(s, tenant, request_id, body.accept, body.reason, member.user_id))
        audit_person(request, decided.integrated_address_number, f"terminal.subject_requests.decide {decided.kind} {decided.state}")
        return decided

    @api.post("/subject-requests/{request_id}/lift", dependencies=[Depends(Audited("terminal.subject_requests.lift"))])
    async def lift_suspension(request_id: int, request: Request, member: SignedIn = Depends(StaffMember("subject_requests.decide"))) -> SubjectRequestView:
        lifted = await in_session(request, lambda s, tenant: subject_requests.lift(s, tenant, request_id, member.user_id))
        audit_person(request, lifted.integrated_address_number)
        return lifted

    return api
