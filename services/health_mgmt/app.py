"""The health management as a FastAPI app: staff-terminal and ops API."""

from fastapi import FastAPI

from services.health_mgmt.bus import SERVED
from services.health_mgmt.config import Settings
from shared.service import ServiceSpec, build_app

SPEC = ServiceSpec(name="health_mgmt", summary="健康管理システム — health management", served=SERVED)


def create_app(settings: Settings | None = None) -> FastAPI:
    return build_app(SPEC, settings or Settings())
