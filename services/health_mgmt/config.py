"""Settings of the health management (environment prefix ``RENKEI_``)."""

from shared.config import ServiceSettings


class Settings(ServiceSettings):
    service: str = "health_mgmt"
