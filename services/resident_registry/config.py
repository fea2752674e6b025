"""Settings of the resident registry (simulated) (environment prefix ``RENKEI_``)."""

from shared.config import ServiceSettings


class Settings(ServiceSettings):
    service: str = "resident_registry"
