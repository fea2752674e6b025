"""Settings of the welfare address (environment prefix ``RENKEI_``)."""

from shared.config import ServiceSettings


class Settings(ServiceSettings):
    service: str = "welfare_address"
