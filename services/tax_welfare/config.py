"""Settings of the tax and welfare systems (simulated) (environment prefix ``RENKEI_``)."""

from pydantic import Field

from shared.config import ServiceSettings


class Settings(ServiceSettings):
    service: str = "tax_welfare"
    assessed_years: int = Field(
        default=3, ge=1, le=10, description="fiscal years assessed for each person: the current one and the ones before it"
    )
