"""The Juki-net community server as a FastAPI app: staff-terminal and ops API."""

from fastapi import FastAPI

from services.juki_cs.bus import SERVED
from services.juki_cs.config import Settings
from shared.service import ServiceSpec, build_app

SPEC = ServiceSpec(name="juki_cs", summary="住基ネット CS — Juki-net community server", served=SERVED)


def create_app(settings: Settings | None = None) -> FastAPI:
    return build_app(SPEC, settings or Settings())
