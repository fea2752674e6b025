"""Settings of the tax and welfare systems (simulated) (environment prefix ``RENKEI_``)."""

from pydantic import Field

from shared.config import ServiceSettings


class Settings(ServiceSettings):
    service: str = "tax_welfare"
    assessed_years: int = Field(
        default=3, ge=1, le=10, description="fiscal years assessed for each person: the current one and the ones before it"
    )
    assessment_check_hours: float = Field(default=1.0, gt=0, description="how often to look for a fiscal year not yet assessed for everyone")
