"""The intermediate server as a FastAPI app: staff-terminal and ops API."""

from fastapi import FastAPI

from services.intermediate_server.bus import SERVED
from services.intermediate_server.config import Settings
from services.intermediate_server.roles import ROLES
from shared.service import ServiceSpec, build_app

SPEC = ServiceSpec(name="intermediate_server", summary="中間サーバー — intermediate server", served=SERVED, roles=ROLES, keeps_ledger=True)


def create_app(settings: Settings | None = None) -> FastAPI:
    return build_app(SPEC, settings or Settings())
