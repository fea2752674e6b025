"""The tax and welfare systems (simulated) as a FastAPI app: the staff terminal that reads a
person's records; on the bus, the status answers and the two feeds they rest on; beside
them, the yearly assessment (``runtime.py``)."""

from pathlib import Path

from fastapi import FastAPI

from services.tax_welfare.api import router
from services.tax_welfare.bus import CONSUMED, SERVED
from services.tax_welfare.config import Settings
from services.tax_welfare.models import Base
from services.tax_welfare.roles import ROLES
from services.tax_welfare.runtime import yearly_assessment_job
from shared.service import ServiceSpec, build_app

MIGRATIONS = Path(__file__).parent / "migrations"

SPEC = ServiceSpec(
    name="tax_welfare",
    summary="庁内業務システム (税務・福祉) — tax and welfare systems (simulated)",
    routers=[router()],
    served=SERVED,
    consumed=CONSUMED,
    jobs={"yearly_assessment": yearly_assessment_job},
    metadata=[Base.metadata],
    migrations=[MIGRATIONS],
    roles=ROLES,
)


def create_app(settings: Settings | None = None) -> FastAPI:
    return build_app(SPEC, settings or Settings())
