"""The national hub (simulated) as a FastAPI app, served over mutual TLS only.

The network API (``api.network_router``) is what the intermediate servers call; the staff
API reads statistics; the kernel adds the ledger's auditor API. The hub's ledger holds a
record of every permit issued or refused.
"""

import asyncio
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI

from services.provision_network.api import network_router, staff_router
from services.provision_network.bus import SERVED
from services.provision_network.config import Settings
from services.provision_network.hub import hub_of
from services.provision_network.models import Base
from services.provision_network.roles import ROLES
from shared.service import ServiceSpec, build_app

MIGRATIONS = Path(__file__).parent / "migrations"
WORKER_THREADS = 16  # about the database pool's size (5 + 10 overflow): more would queue for connections

SPEC = ServiceSpec(
    name="provision_network",
    summary="情報提供ネットワークシステム — national hub (simulated)",
    routers=[network_router(), staff_router()],
    served=SERVED,
    metadata=[Base.metadata],
    migrations=[MIGRATIONS],
    roles=ROLES,
    keeps_ledger=True,
)


def create_app(settings: Settings | None = None) -> FastAPI:
    app = build_app(SPEC, settings or Settings())
    hub = hub_of(app.state.context)
    kernel_lifespan = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        # Handlers wait on the database in worker threads: more of them than the default (cores + 4).
        asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(max_workers=WORKER_THREADS, thread_name_prefix="db"))
        async with kernel_lifespan(app) as state:
            try:
                yield state
            finally:
                await hub.close()

    app.router.lifespan_context = lifespan
    return app
