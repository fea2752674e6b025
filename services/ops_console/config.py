"""Settings of the ops console (environment prefix ``RENKEI_``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from shared.config import ServiceSettings


class Settings(ServiceSettings):
    service: str = "ops_console"
    members_file: Path | None = Field(
        default=None,
        description="the stack's members (JSON as DATA/run.json writes it); DATA/run.json when unset",
    )
    nats_monitor_url: str | None = Field(
        default=None, description="NATS monitoring endpoint; the members file's nats_monitor_url when unset"
    )
    scrape_timeout_seconds: float = Field(default=2.0, gt=0, le=30, description="how long one probe of a member may take")
    refresh_seconds: float = Field(
        default=1.0, ge=0, le=60, description="overviews asked for within this time share one round of probes"
    )

    def members_path(self) -> Path:
        return self.members_file or Path(self.data_dir) / "run.json"
