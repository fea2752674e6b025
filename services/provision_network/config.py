"""Settings of the national hub (simulated) (environment prefix ``RENKEI_``)."""

from shared.config import ServiceSettings


class Settings(ServiceSettings):
    service: str = "provision_network"
