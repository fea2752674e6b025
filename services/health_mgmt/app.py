"""The health management as a FastAPI app: staff-terminal and ops API.

Beyond what the kernel starts (migrations, NATS, the consumer of the intermediate server's
``answered`` event), it runs two background jobs: ``copies`` keeps the provision database
(副本) up to date, ``move_in`` takes the doses of answered move-in queries (``runtime.py``).
"""

from pathlib import Path

from fastapi import FastAPI

from services.health_mgmt.api import router
from services.health_mgmt.bus import CONSUMED, SERVED
from services.health_mgmt.config import Settings
from services.health_mgmt.models import Base
from services.health_mgmt.roles import ROLES
from services.health_mgmt.runtime import copies_job, move_in_job
from shared.service import ServiceSpec, build_app

MIGRATIONS = Path(__file__).parent / "migrations"

SPEC = ServiceSpec(
    name="health_mgmt",
    summary="健康管理システム — health management",
    routers=[router()],
    served=SERVED,
    consumed=CONSUMED,
    jobs={"copies": copies_job, "move_in": move_in_job},
    metadata=[Base.metadata],
    migrations=[MIGRATIONS],
    roles=ROLES,
)


def create_app(settings: Settings | None = None) -> FastAPI:
    return build_app(SPEC, settings or Settings())
