"""How long provision records are kept: seven years (M28), counted from when each was sealed."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from shared.ledger.store import Ledger, PruneResult

RETENTION_YEARS = 7


def retention_cutoff(now: datetime) -> datetime:
    """The latest time before which records may be pruned at ``now``.

    Calendar years, not days: 29 February becomes 28 February, so a record is never
    dropped a day early.
    """
    year = now.year - RETENTION_YEARS
    try:
        return now.replace(year=year)
    except ValueError:
        return now.replace(year=year, day=28)


def prune_past_retention(ledger: Ledger, now: datetime) -> PruneResult:
    """The periodic deletion (M32): drop what is past retention at ``now``; the ledger
    records the pruning itself, and does nothing when nothing is due."""
    return ledger.prune(retention_cutoff(now))
