"""Settings: one class per service, all read from the environment with the prefix ``RENKEI_``."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.trust import Principal


def is_local_government_code(code: str) -> bool:
    """A six-digit 全国地方公共団体コード whose sixth digit is its modulus-11 check digit."""
    if len(code) != 6 or not code.isdigit():
        return False
    remainder = sum(int(d) * w for d, w in zip(code[:5], (6, 5, 4, 3, 2))) % 11
    check = (11 - remainder) % 10 if remainder else 1
    return int(code[5]) == check


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
    log_level: str = "INFO"
    token_lifetime_seconds: int = Field(default=60, ge=1, le=300)
    staff_idle_minutes: int = Field(default=15, ge=1, description="a staff session ends after this long unused (M09)")
    staff_session_hours: int = Field(default=8, ge=1, le=24)

    @field_validator("city")
    @classmethod
    def _city_code(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        if not is_local_government_code(value):
            raise ValueError(f"{value!r} is not a local-government code (six digits with its check digit)")
        return value

    @property
    def principal(self) -> Principal:
        return Principal(self.service, self.city)
