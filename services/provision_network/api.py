"""The hub's HTTPS API. It is served only over mutual TLS (a certificate of the local CA),
and every network call must also carry an intermediate server's service token and request
proof: the transport says the peer belongs to the network, the token says which server it is.

Network calls (callers: ``intermediate_server`` of any city, each for itself):

| route | what |
|---|---|
| ``PUT /v1/institutions/{city}`` | register the server's network address and answer key |
| ``GET /v1/permitted-queries`` | the permitted-query list, signed by the hub |
| ``POST /v1/symbols`` | symbols of the caller's people, from their resident codes |
| ``POST /v1/permits`` | a provision permit, or a refusal (403) — both recorded |
| ``POST /v1/queries`` | relay a query on the strength of its permit; the sealed answer comes back |
| ``POST /v1/permits/batch`` | the same for up to 200 requests at once: a permit or a problem for each |
| ``POST /v1/queries/batch`` | the same for up to 200 queries at once: an outcome or a problem for each |
| ``POST /v1/answers`` | the provider delivers an answer it released after review |

Staff: ``GET /system/status`` (``system.read``): permits and refusals per day and item.
"""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Depends, Query, Request

from services.provision_network.hub import hub_of
from services.provision_network.statistics import figures
from shared.auth import Caller
from shared.contracts.network import (
    ANSWERS_PATH,
    PERMITS_BATCH_PATH,
    PERMITS_PATH,
    PERMITTED_LIST_PATH,
    QUERIES_BATCH_PATH,
    QUERIES_PATH,
    REGISTRATION_PATH,
    SYMBOLS_PATH,
    OutcomeBatchReply,
    PermitBatch,
    PermitBatchReply,
    PermitRequest,
    ProvisionOutcome,
    Registration,
    RegistrationReply,
    SentQuery,
    SentQueryBatch,
    SignedPermit,
    SignedPermittedList,
    SymbolReply,
    SymbolRequest,
    SystemStatus,
)
from shared.http import Audited, ServiceCaller
from shared.ledger import HUB_TENANT
from shared.staff import StaffMember

SERVERS = {"intermediate_server"}


def _city(caller: Caller) -> str:
    return caller.principal.city or ""


def network_router() -> APIRouter:
    router = APIRouter(tags=["network"])

    @router.put(REGISTRATION_PATH, dependencies=[Depends(Audited("network.register"))])
    async def register(city: str, body: Registration, request: Request, caller: Caller = Depends(ServiceCaller("network.register", SERVERS))) -> RegistrationReply:
        hub = hub_of(request.app.state.context)
        return await asyncio.to_thread(hub.register, _city(caller), city, body)

    @router.get(PERMITTED_LIST_PATH)
    async def permitted_queries(request: Request, caller: Caller = Depends(ServiceCaller("network.list", SERVERS))) -> SignedPermittedList:
        return hub_of(request.app.state.context).permitted_list()

    @router.post(SYMBOLS_PATH, dependencies=[Depends(Audited("network.symbols"))])
    async def issue_symbols(body: SymbolRequest, request: Request, caller: Caller = Depends(ServiceCaller("network.symbols", SERVERS))) -> SymbolReply:
        hub = hub_of(request.app.state.context)
        return await asyncio.to_thread(hub.issue_symbols, _city(caller), body)

    @router.post(PERMITS_PATH, dependencies=[Depends(Audited("network.permit"))])
    async def permit(body: PermitRequest, request: Request, caller: Caller = Depends(ServiceCaller("network.permit", SERVERS))) -> SignedPermit:
        return await hub_of(request.app.state.context).permit(_city(caller), body)

    @router.post(QUERIES_PATH, dependencies=[Depends(Audited("network.relay"))])
    async def relay(body: SentQuery, request: Request, caller: Caller = Depends(ServiceCaller("network.relay", SERVERS))) -> ProvisionOutcome:
        return await hub_of(request.app.state.context).relay(_city(caller), body)

    @router.post(PERMITS_BATCH_PATH, dependencies=[Depends(Audited("network.permit"))])
    async def permit_batch(body: PermitBatch, request: Request, caller: Caller = Depends(ServiceCaller("network.permit", SERVERS))) -> PermitBatchReply:
        return PermitBatchReply.of(await hub_of(request.app.state.context).permit_many(_city(caller), body.requests))

    @router.post(QUERIES_BATCH_PATH, dependencies=[Depends(Audited("network.relay"))])
    async def relay_batch(body: SentQueryBatch, request: Request, caller: Caller = Depends(ServiceCaller("network.relay", SERVERS))) -> OutcomeBatchReply:
        return OutcomeBatchReply.of(await hub_of(request.app.state.context).relay_many(_city(caller), body.queries))

    @router.post(ANSWERS_PATH, dependencies=[Depends(Audited("network.deliver"))])
    async def deliver(body: ProvisionOutcome, request: Request, caller: Caller = Depends(ServiceCaller("network.deliver", SERVERS))) -> dict:
        await hub_of(request.app.state.context).deliver(_city(caller), body)
        return {"delivered": True, "serial_number": body.serial_number}

    return router


def system_status(ctx, days: int) -> SystemStatus:
    return SystemStatus(tenant=HUB_TENANT, batches=[], figures=figures(ctx.db.engine, HUB_TENANT, days), review_waiting=0)


def staff_router() -> APIRouter:
    router = APIRouter(tags=["system management"])

    @router.get("/system/status", dependencies=[Depends(StaffMember("system.read")), Depends(Audited("system.status"))])
    async def status(request: Request, days: int = Query(default=7, ge=1, le=366)) -> SystemStatus:
        return await asyncio.to_thread(system_status, request.app.state.context, days)

    @router.get("/system/routes", dependencies=[Depends(StaffMember("system.read")), Depends(Audited("system.routes"))])
    async def routes(request: Request) -> list[dict]:
        return await asyncio.to_thread(hub_of(request.app.state.context).routes)

    return router
