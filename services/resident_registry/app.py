"""The resident registry (simulated) as a FastAPI app: staff-terminal and ops API."""

from fastapi import FastAPI

from services.resident_registry.bus import SERVED
from services.resident_registry.config import Settings
from shared.service import ServiceSpec, build_app

SPEC = ServiceSpec(name="resident_registry", summary="住民記録システム — resident registry (simulated)", served=SERVED)


def create_app(settings: Settings | None = None) -> FastAPI:
    return build_app(SPEC, settings or Settings())
