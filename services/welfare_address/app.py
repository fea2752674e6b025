"""The welfare address as a FastAPI app: staff-terminal and ops API."""

from pathlib import Path

from fastapi import FastAPI

from services.welfare_address.api import router
from services.welfare_address.bus import CONSUMED, SERVED
from services.welfare_address.config import Settings
from services.welfare_address.models import Base
from services.welfare_address.roles import ROLES
from shared.service import ServiceSpec, build_app

SPEC = ServiceSpec(
    name="welfare_address",
    summary="福祉宛名システム — welfare address",
    routers=[router()],
    served=SERVED,
    consumed=CONSUMED,
    metadata=[Base.metadata],
    migrations=[Path(__file__).parent / "migrations"],
    roles=ROLES,
)


def create_app(settings: Settings | None = None) -> FastAPI:
    return build_app(SPEC, settings or Settings())
