"""Settings of the prefecture server (environment prefix ``RENKEI_``)."""

from __future__ import annotations

from pydantic import Field

from shared.config import ServiceSettings


class Settings(ServiceSettings):
    service: str = "juki_prefecture"
    #: Served over HTTPS with client certificates required, whatever the environment says.
    tls_client_auth: bool = True
    lookup_limit: int = Field(default=500, ge=1, le=5000, description="records returned by one lookup across cities")
