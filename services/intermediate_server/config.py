"""Settings of the intermediate server (environment prefix ``RENKEI_``)."""

from pydantic import Field

from shared.config import ServiceSettings
from shared.contracts.network import VACCINATION_AFFAIR

#: Which affairs (事務コード) each business system may query for: the caller's entitlement,
#: checked before anything goes to the network (M20).
QUERY_ENTITLEMENTS: dict[str, frozenset[str]] = {
    "health_mgmt": frozenset({VACCINATION_AFFAIR, "JM01400000000002", "JM01400000000003"}),
}


class Settings(ServiceSettings):
    service: str = "intermediate_server"
    hub_url: str | None = Field(default=None, description="https URL of the national hub; queries and symbols wait while unset")
    network_host: str = Field(default="127.0.0.1", description="where the mutual-TLS network listener binds")
    network_port: int = Field(default=0, ge=0, description="its port; 0 takes a free one (the hub learns it at registration)")
    hub_timeout_seconds: float = Field(default=15, gt=0)
    result_retention_hours: float = Field(default=72, gt=0, description="finished query results are deleted after this long (M21)")
    abandon_after_hours: float = Field(default=168, gt=0, description="a query without an end after this long is abandoned and deleted")
    sweep_interval_seconds: float = Field(default=300, gt=0, description="how often the retention sweep runs")
    registration_interval_seconds: float = Field(default=300, gt=0, description="how often the hub registration and list are renewed")
    symbol_batch: int = Field(default=500, ge=1, le=1000)
