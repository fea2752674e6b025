"""The Juki-net community server as a FastAPI app: the CS terminal's API and its administration.

Beyond what the kernel starts (migrations, NATS, the ``identity_lookup`` operation and the
consumer of resident changes), the CS builds its 4-item index from the database and starts
forwarding to the prefecture server before it serves; it stops forwarding before the
kernel closes the database.
"""

from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI

from services.juki_cs.api import administration_router, terminal_router
from services.juki_cs.bus import CONSUMED, SERVED
from services.juki_cs.config import Settings
from services.juki_cs.models import Base
from services.juki_cs.roles import ROLES
from services.juki_cs.runtime import runtime_of
from shared.service import ServiceSpec, build_app

MIGRATIONS = Path(__file__).parent / "migrations"

SPEC = ServiceSpec(
    name="juki_cs",
    summary="住基ネット CS — Juki-net community server",
    routers=[terminal_router(), administration_router()],
    served=SERVED,
    consumed=CONSUMED,
    metadata=[Base.metadata],
    migrations=[MIGRATIONS],
    roles=ROLES,
)


def create_app(settings: Settings | None = None) -> FastAPI:
    app = build_app(SPEC, settings or Settings())
    runtime = runtime_of(app.state.context)
    kernel_lifespan = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        async with kernel_lifespan(app) as state:
            await runtime.start()
            try:
                yield state
            finally:
                await runtime.stop()

    app.router.lifespan_context = lifespan
    return app
