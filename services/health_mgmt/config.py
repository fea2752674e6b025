"""Settings of the health management (environment prefix ``RENKEI_``)."""

from pydantic import Field

from shared.config import ServiceSettings


class Settings(ServiceSettings):
    service: str = "health_mgmt"
    statistics_min_cell: int = Field(
        default=10, ge=2, description="counts below this are suppressed in every statistic (M35)"
    )
