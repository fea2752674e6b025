"""The health management as a FastAPI app: staff-terminal and ops API."""

from pathlib import Path

from fastapi import FastAPI

from services.health_mgmt.api import router
from services.health_mgmt.bus import SERVED
from services.health_mgmt.config import Settings
from services.health_mgmt.models import Base
from services.health_mgmt.roles import ROLES
from shared.service import ServiceSpec, build_app

MIGRATIONS = Path(__file__).parent / "migrations"

SPEC = ServiceSpec(
    name="health_mgmt",
    summary="健康管理システム — health management",
    routers=[router()],
    served=SERVED,
    metadata=[Base.metadata],
    migrations=[MIGRATIONS],
    roles=ROLES,
)


def create_app(settings: Settings | None = None) -> FastAPI:
    return build_app(SPEC, settings or Settings())
