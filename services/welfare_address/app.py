"""The welfare address as a FastAPI app: staff-terminal and ops API."""

from fastapi import FastAPI

from services.welfare_address.bus import SERVED
from services.welfare_address.config import Settings
from shared.service import ServiceSpec, build_app

SPEC = ServiceSpec(name="welfare_address", summary="福祉宛名システム — welfare address", served=SERVED)


def create_app(settings: Settings | None = None) -> FastAPI:
    return build_app(SPEC, settings or Settings())
