"""Schema migrations: the kernel's tables and each service's own, as Alembic branches.

The kernel's revisions live in ``shared/migrations/versions`` (branch ``kernel``); the
ledger's in ``shared/ledger/migrations`` (branch ``ledger``, for the services that keep
one); a service with tables of its own keeps its revisions in ``services/<name>/migrations``
(branch named after the service). ``upgrade`` brings a database to every head.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import MetaData

from shared.db import Database

KERNEL_MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(db: Database, connection, versions: Path | Sequence[Path] | None, metadata: list[MetaData]) -> Config:
    """``versions``: the revision folders beyond the kernel's (one, several, or none)."""
    config = Config()
    config.set_main_option("script_location", str(KERNEL_MIGRATIONS))
    extra = [] if versions is None else [versions] if isinstance(versions, Path) else list(versions)
    locations = [str(KERNEL_MIGRATIONS / "versions"), *(str(p) for p in extra)]
    config.set_main_option("path_separator", "os")
    config.set_main_option("version_locations", ":".join(locations))
    config.attributes["connection"] = connection
    config.attributes["target_metadata"] = metadata
    return config


def upgrade(db: Database, versions: Path | Sequence[Path] | None = None, metadata: list[MetaData] | None = None) -> None:
    """Bring ``db`` to the newest revision of the kernel and of the other branches named."""
    with db.engine.begin() as connection:
        command.upgrade(alembic_config(db, connection, versions, metadata or []), "heads")
