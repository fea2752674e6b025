"""Settings of the Juki-net community server (environment prefix ``RENKEI_``)."""

from __future__ import annotations

from pydantic import Field

from shared.config import ServiceSettings

#: The municipality named in residents' addresses, by local-government code; the 4-item
#: search drops it (and the prefecture) before comparing addresses.
MUNICIPALITIES: dict[str, str] = {"112224": "越谷市", "112216": "草加市"}


class Settings(ServiceSettings):
    service: str = "juki_cs"
    prefecture_url: str | None = Field(
        default=None, description="https URL of the prefecture server (都道府県サーバ); forwarding waits while unset"
    )
    municipality: str | None = Field(default=None, description="the city's name as written in addresses (越谷市)")
    forward_batch: int = Field(default=200, ge=1, le=500, description="records per request to the prefecture server")
    forward_retry_max_seconds: float = Field(default=30.0, gt=0, description="longest wait between forwarding attempts")
    prefecture_timeout_seconds: float = Field(default=10.0, gt=0)
    search_limit: int = Field(default=10, ge=1, le=50, description="candidates returned by a 4-item search")
    card_check_valid_minutes: int = Field(
        default=120, ge=1, le=1440, description="how long a card check vouches for the person at a business system's intake (M01)"
    )

    @property
    def municipality_name(self) -> str | None:
        return self.municipality or MUNICIPALITIES.get(self.city or "")
