"""Settings: one class per service, all read from the environment with the prefix ``RENKEI_``."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.ids import is_valid_local_government_code
from shared.trust import Principal


class ServiceSettings(BaseSettings):
    """What every service needs: who it is, where its data lives, and how to reach NATS."""

    model_config = SettingsConfigDict(env_prefix="RENKEI_", extra="ignore")

    service: str = ""
    city: str | None = Field(default=None, description="six-digit local-government code; none for the hub and the ops console")
    data_dir: Path = Path("var")
    database_url: str | None = Field(default=None, description="PostgreSQL URL; SQLite under data_dir when unset")
    nats_url: str = "nats://127.0.0.1:14222"
    nats_user: str | None = None
    nats_password: str | None = None
    host: str = "127.0.0.1"
    port: int = 0
    tls_client_auth: bool = Field(
        default=False, description="serve HTTPS only, to peers holding a certificate of the local CA (mutual TLS)"
    )
    log_level: str = "INFO"
    token_lifetime_seconds: int = Field(default=60, ge=1, le=300)
    staff_idle_minutes: int = Field(default=15, ge=1, description="a staff session ends after this long unused (M09)")
    staff_session_hours: int = Field(default=8, ge=1, le=24)
    jetstream_replicas: int = Field(default=1, ge=1, le=5, description="copies of each event stream (3 on a three-server NATS cluster)")
    ledger_checkpoint_seconds: float = Field(default=60, gt=0, description="how often a kept ledger signs a checkpoint")
    ledger_retention_hours: float = Field(default=24, gt=0, description="how often records past retention are pruned")

    @field_validator("city")
    @classmethod
    def _city_code(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        if not is_valid_local_government_code(value):
            raise ValueError(f"{value!r} is not a local-government code (six digits with its check digit)")
        return value

    @property
    def principal(self) -> Principal:
        return Principal(self.service, self.city)

