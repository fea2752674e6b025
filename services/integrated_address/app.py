"""The integrated address as a FastAPI app: staff-terminal and ops API."""

from pathlib import Path

from fastapi import FastAPI

from services.integrated_address.api import router
from services.integrated_address.bus import CONSUMED, SERVED
from services.integrated_address.config import Settings
from services.integrated_address.models import Base
from services.integrated_address.roles import ROLES
from shared.service import ServiceSpec, build_app

SPEC = ServiceSpec(
    name="integrated_address",
    summary="団体内統合宛名システム — integrated address",
    routers=[router()],
    served=SERVED,
    consumed=CONSUMED,
    metadata=[Base.metadata],
    migrations=[Path(__file__).parent / "migrations"],
    roles=ROLES,
)


def create_app(settings: Settings | None = None) -> FastAPI:
    return build_app(SPEC, settings or Settings())
