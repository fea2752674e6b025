"""Settings of the integrated address (environment prefix ``RENKEI_``)."""

from shared.config import ServiceSettings


class Settings(ServiceSettings):
    service: str = "integrated_address"
