"""Alembic revisions of the ledger's tables (branch ``ledger``)."""

from pathlib import Path

LEDGER_MIGRATIONS = Path(__file__).parent
