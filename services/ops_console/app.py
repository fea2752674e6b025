"""The Ops console as a FastAPI app: staff-terminal and ops API."""

from fastapi import FastAPI

from services.ops_console.bus import SERVED
from services.ops_console.config import Settings
from shared.service import ServiceSpec, build_app

SPEC = ServiceSpec(name="ops_console", summary="Ops console", served=SERVED)


def create_app(settings: Settings | None = None) -> FastAPI:
    return build_app(SPEC, settings or Settings())
