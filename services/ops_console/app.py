"""The ops console as a FastAPI app: the page, its overview API, and the kernel's health routes."""

from fastapi import FastAPI

from services.ops_console.api import console_router
from services.ops_console.bus import SERVED
from services.ops_console.config import Settings
from services.ops_console.roles import ROLES
from shared.service import ServiceSpec, build_app

SPEC = ServiceSpec(name="ops_console", summary="Ops console", routers=[console_router()], served=SERVED, roles=ROLES)


def create_app(settings: Settings | None = None) -> FastAPI:
    return build_app(SPEC, settings or Settings())
