"""Settings of the national hub (simulated) (environment prefix ``RENKEI_``)."""

from pydantic import Field

from shared.config import ServiceSettings


class Settings(ServiceSettings):
    service: str = "provision_network"
    #: Another organisation's system: served over HTTPS with client certificates required, whatever the environment says.
    tls_client_auth: bool = True
    permit_lifetime_seconds: float = Field(default=120, gt=0, description="how long a provision permit may be used")
    provider_timeout_seconds: float = Field(default=10, gt=0, description="how long the hub waits for a provider's answer")
