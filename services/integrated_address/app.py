"""The integrated address as a FastAPI app: staff-terminal and ops API."""

from fastapi import FastAPI

from services.integrated_address.bus import SERVED
from services.integrated_address.config import Settings
from shared.service import ServiceSpec, build_app

SPEC = ServiceSpec(name="integrated_address", summary="団体内統合宛名システム — integrated address", served=SERVED)


def create_app(settings: Settings | None = None) -> FastAPI:
    return build_app(SPEC, settings or Settings())
