"""The network endpoints, served on the network listener (mutual TLS) to the hub alone.

| route | what |
|---|---|
| ``POST /network/v1/queries`` | a query relayed by the hub with its permit: provided (sealed), held, or refused |
| ``POST /network/v1/queries/batch`` | the same for up to 200 queries at once: an outcome or a problem for each |
| ``POST /network/v1/answers`` | an answer the provider released after review, for one of this city's queries |

Every call must carry the hub's service token and request proof (``ServiceCaller``), and
is written to the operation log.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, FastAPI, Request

from services.intermediate_server import providing, querying
from services.intermediate_server.runtime import runtime_of
from shared.auth import Caller
from shared.contracts.network import (
    DELIVER_PATH,
    HUB_PRINCIPAL,
    PROVIDE_BATCH_PATH,
    PROVIDE_PATH,
    OutcomeBatchReply,
    ProvisionOutcome,
    RoutedQuery,
    RoutedQueryBatch,
)
from shared.http import Audited, OperationLogMiddleware, ServiceCaller, install_problem_handlers
from shared.observability import RequestContextMiddleware

HUB = {HUB_PRINCIPAL}


def network_router() -> APIRouter:
    router = APIRouter(tags=["network"])

    @router.post(PROVIDE_PATH, dependencies=[Depends(Audited("network.provide"))])
    async def provide(body: RoutedQuery, request: Request, caller: Caller = Depends(ServiceCaller("network.provide", HUB))) -> ProvisionOutcome:
        return await providing.provide(runtime_of(request.app.state.context), body)

    @router.post(PROVIDE_BATCH_PATH, dependencies=[Depends(Audited("network.provide"))])
    async def provide_batch(body: RoutedQueryBatch, request: Request, caller: Caller = Depends(ServiceCaller("network.provide", HUB))) -> OutcomeBatchReply:
        return OutcomeBatchReply.of(await providing.provide_many(runtime_of(request.app.state.context), body.queries))

    @router.post(DELIVER_PATH, dependencies=[Depends(Audited("network.answer"))])
    async def answer(body: ProvisionOutcome, request: Request, caller: Caller = Depends(ServiceCaller("network.answer", HUB))) -> ProvisionOutcome:
        await querying.receive(runtime_of(request.app.state.context), body)
        return body.model_copy(update={"answer": None})

    return router


def network_app(ctx) -> FastAPI:
    """The listener's app: the network routes only, with the service's own context."""
    app = FastAPI(title=f"中間サーバー network endpoint ({ctx.settings.city})", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.context = ctx
    install_problem_handlers(app)
    app.add_middleware(OperationLogMiddleware, oplog=ctx.oplog)
    app.add_middleware(RequestContextMiddleware, metrics=ctx.metrics)
    app.include_router(network_router())
    return app
