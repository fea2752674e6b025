"""The intermediate server as a FastAPI app: the staff terminal's API on the service's port,
and the network endpoints on a second listener that speaks only mutual TLS.

Beyond what the kernel starts (migrations, NATS, the operations of ``bus.py``, the consumer
of ``number_assigned``, the ledger with its checkpoints and retention), the server opens its
network listener, registers with the hub and starts its jobs before it serves; it stops
them before the kernel closes the database.
"""

import asyncio
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI

from services.intermediate_server.api import router
from services.intermediate_server.bus import CONSUMED, SERVED
from services.intermediate_server.config import Settings
from services.intermediate_server.models import Base
from services.intermediate_server.network_api import network_app
from services.intermediate_server.roles import ROLES
from services.intermediate_server.runtime import runtime_of
from shared.service import ServiceSpec, build_app

MIGRATIONS = Path(__file__).parent / "migrations"
WORKER_THREADS = 16  # about the database pool's size (5 + 10 overflow): more would queue for connections

SPEC = ServiceSpec(
    name="intermediate_server",
    summary="中間サーバー — intermediate server",
    routers=[router()],
    served=SERVED,
    consumed=CONSUMED,
    metadata=[Base.metadata],
    migrations=[MIGRATIONS],
    roles=ROLES,
    keeps_ledger=True,
)


def create_app(settings: Settings | None = None) -> FastAPI:
    app = build_app(SPEC, settings or Settings())
    ctx = app.state.context
    runtime = runtime_of(ctx)
    kernel_lifespan = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        # Handlers wait on the database in worker threads: more of them than the default (cores + 4).
        asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(max_workers=WORKER_THREADS, thread_name_prefix="db"))
        async with kernel_lifespan(app) as state:
            await runtime.start(network_app(ctx))
            try:
                yield state
            finally:
                await runtime.stop()

    app.router.lifespan_context = lifespan
    return app
