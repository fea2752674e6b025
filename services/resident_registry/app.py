"""The resident registry (simulated) as a FastAPI app: the counter's API, the change feed."""

from pathlib import Path

from fastapi import FastAPI

from services.resident_registry.api import counter_router
from services.resident_registry.bus import SERVED
from services.resident_registry.config import Settings
from services.resident_registry.models import Base
from services.resident_registry.roles import ROLES
from shared.service import ServiceSpec, build_app

MIGRATIONS = Path(__file__).parent / "migrations"

SPEC = ServiceSpec(
    name="resident_registry",
    summary="住民記録システム — resident registry (simulated)",
    routers=[counter_router()],
    served=SERVED,
    metadata=[Base.metadata],
    migrations=[MIGRATIONS],
    roles=ROLES,
)


def create_app(settings: Settings | None = None) -> FastAPI:
    return build_app(SPEC, settings or Settings())
