"""Settings of the health management (environment prefix ``RENKEI_``)."""

from pydantic import Field

from shared.config import ServiceSettings


class Settings(ServiceSettings):
    service: str = "health_mgmt"
    statistics_min_cell: int = Field(
        default=10, ge=2, description="counts below this are suppressed in every statistic (M35)"
    )
    copy_batch: int = Field(default=200, ge=1, le=1000, description="people sent to the provision database (副本) per request")
    intermediate_timeout_seconds: float = Field(default=30.0, gt=0, description="how long to wait for the intermediate server on the bus")
    fee_inquiry_timeout_seconds: float = Field(default=30.0, gt=0, description="how long to wait for the tax and welfare systems on the bus")
    job_idle_seconds: float = Field(default=5.0, gt=0, description="how often an idle background job looks for work it was not woken for")
    job_retry_max_seconds: float = Field(default=30.0, gt=0, description="the longest pause before a failed background step is tried again")
