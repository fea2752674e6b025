"""The NATS subjects the intermediate server serves, and the event it consumes.

Each entry maps an operation of ``shared.contracts.network`` owned by this service to the
factory of its handler; the allowlist of callers is part of the contract, not of this
module. Database work that could wait (on a lock, or a server's round trip) runs in worker
threads, so that the event loop keeps answering.
"""

from __future__ import annotations

import asyncio
import uuid

from sqlalchemy import event
from sqlalchemy.orm import Session

from services.intermediate_server import copies, querying, statistics, symbols
from services.intermediate_server.config import QUERY_ENTITLEMENTS
from services.intermediate_server.recorder import query_record
from services.intermediate_server.runtime import runtime_of
from shared.auth import Caller
from shared.contracts.network import (
    CopyDigestReply,
    CopyDigestRequest,
    CopyImport,
    CopyImportReply,
    NumberAssigned,
    QueryAccepted,
    QueryRequest,
    QueryResult,
    QueryResultRequest,
    SystemStatus,
    SystemStatusRequest,
)
from shared.errors import Forbidden
from shared.events import EventHandler
from shared.models import utcnow
from shared.service import ConsumerFactory, HandlerFactory, ServiceContext


async def check_entitled(rt, service: str, request: QueryRequest) -> None:
    """A business system may query only for the affairs it carries out; a refusal is recorded."""
    if request.affair_code in QUERY_ENTITLEMENTS.get(service, frozenset()):
        return
    reason = f"{service} is not entitled to query for the affair {request.affair_code}"
    await rt.recorder.record(
        query_record(
            rt.tenant,
            provider=request.provider,
            affair_code=request.affair_code,
            procedure_code=request.procedure_code,
            item_code=request.item_code,
            serial_number=uuid.uuid4().hex,
            requested_at=utcnow(),
            person_key=request.integrated_address_number,
            refusal_reason=reason,
        )
    )
    raise Forbidden(reason)


def query(ctx: ServiceContext):
    rt = runtime_of(ctx)

    async def handle(request: QueryRequest, caller: Caller) -> QueryAccepted:
        await check_entitled(rt, caller.principal.service, request)
        return await querying.submit(rt, request, caller.principal.service)

    return handle


def query_result(ctx: ServiceContext):
    rt = runtime_of(ctx)

    async def handle(request: QueryResultRequest, caller: Caller) -> QueryResult:
        return await querying.result_soon(rt, request.query_id, caller.principal.service)

    return handle


def register_copies(ctx: ServiceContext):
    rt = runtime_of(ctx)

    def register(request: CopyImport, by: str) -> CopyImportReply:
        with ctx.db.session() as session:
            stored = copies.register(session, rt.tenant, request, by)
        return CopyImportReply(item_code=request.item_code, people=len(request.people), records=stored)

    async def handle(request: CopyImport, caller: Caller) -> CopyImportReply:
        copies.check_import(request)  # refuse before taking the write lock
        return await asyncio.to_thread(register, request, str(caller.principal))

    return handle


def copy_digests(ctx: ServiceContext):
    rt = runtime_of(ctx)

    def read(request: CopyDigestRequest) -> CopyDigestReply:
        with ctx.db.session() as session:
            found = copies.digests(session, rt.tenant, request.item_code, request.after, request.limit)
        next_after = found[-1].integrated_address_number if len(found) == request.limit else None
        return CopyDigestReply(item_code=request.item_code, digests=found, next_after=next_after)

    async def handle(request: CopyDigestRequest, caller: Caller) -> CopyDigestReply:
        return await asyncio.to_thread(read, request)

    return handle


def system_status(ctx: ServiceContext):
    rt = runtime_of(ctx)

    async def handle(request: SystemStatusRequest, caller: Caller) -> SystemStatus:
        return await asyncio.to_thread(statistics.system_status, rt, request.days)

    return handle


def number_assigned(ctx: ServiceContext) -> EventHandler:
    rt = runtime_of(ctx)

    def apply(session: Session, payload: NumberAssigned) -> None:
        if symbols.queue(session, rt.tenant, payload):
            event.listen(session, "after_commit", lambda _s: rt.wake("symbols"), once=True)

    return apply


SERVED: dict[str, HandlerFactory] = {
    "query": query,
    "query_result": query_result,
    "register_copies": register_copies,
    "copy_digests": copy_digests,
    "system_status": system_status,
}

CONSUMED: dict[str, ConsumerFactory] = {"integrated_address.events.number_assigned": number_assigned}
