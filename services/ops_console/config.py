"""Settings of the Ops console (environment prefix ``RENKEI_``)."""

from shared.config import ServiceSettings


class Settings(ServiceSettings):
    service: str = "ops_console"
