"""The national hub (simulated) as a FastAPI app: staff-terminal and ops API."""

from fastapi import FastAPI

from services.provision_network.bus import SERVED
from services.provision_network.config import Settings
from services.provision_network.roles import ROLES
from shared.service import ServiceSpec, build_app

SPEC = ServiceSpec(name="provision_network", summary="情報提供ネットワークシステム — national hub (simulated)", served=SERVED, roles=ROLES, keeps_ledger=True)


def create_app(settings: Settings | None = None) -> FastAPI:
    return build_app(SPEC, settings or Settings())
