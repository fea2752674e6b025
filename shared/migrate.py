"""Schema migrations: the kernel's tables and each service's own, as Alembic branches.

The kernel's revisions live in ``shared/migrations/versions`` (branch ``kernel``); a service
with tables of its own keeps its revisions in ``services/<name>/migrations`` (branch named
after the service). ``upgrade`` brings a database to every head.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import MetaData

from shared.db import Database

KERNEL_MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(db: Database, connection, service_versions: Path | None, metadata: list[MetaData]) -> Config:
    config = Config()
    config.set_main_option("script_location", str(KERNEL_MIGRATIONS))
    locations = [str(KERNEL_MIGRATIONS / "versions")]
    if service_versions is not None:
        locations.append(str(service_versions))
    config.set_main_option("path_separator", "os")
    config.set_main_option("version_locations", ":".join(locations))
    config.attributes["connection"] = connection
    config.attributes["target_metadata"] = metadata
    return config


def upgrade(db: Database, service_versions: Path | None = None, metadata: list[MetaData] | None = None) -> None:
    """Bring ``db`` to the newest revision of the kernel and of the service."""
    with db.engine.begin() as connection:
        command.upgrade(alembic_config(db, connection, service_versions, metadata or []), "heads")
