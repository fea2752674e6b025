"""The intermediate server's review queue (M26) and retention jobs (M21), per city.

Both come from one bus request a round, ``intermediate_server.system_status`` (batch status
and counts per day, never a person): the review queue is the number of answers waiting for
a reviewer and today's reviewed provisions; the retention job is the ``retention`` batch
(last run, last success, last error) and today's deletions by reason.
"""

from __future__ import annotations

from typing import Any

from shared.bus import Bus
from shared.contracts import Registry
from shared.contracts.network import SystemStatus, SystemStatusRequest
from shared.errors import Problem

OWNER, OPERATION = "intermediate_server", "system_status"
#: key → what the operators see
FEATURES: dict[str, str] = {
    "review_queue": "Review queue (保留: answers waiting for staff release)",
    "retention_jobs": "Retention jobs (deletion of query results past their period)",
}
RETENTION_BATCH = "retention"


def _row(key: str, available: bool, detail: str = "", figures: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"key": key, "title": FEATURES[key], "available": available, "detail": detail, "figures": figures}


def rows_of(status: SystemStatus) -> list[dict[str, Any]]:
    """The two panels' figures from one status reply."""
    today = max((f.day for f in status.figures), default=None)
    counts: dict[str, int] = {}
    for figure in status.figures:
        if figure.day == today:
            counts[figure.figure] = counts.get(figure.figure, 0) + figure.count
    reviewed = {name.split(".", 1)[1]: n for name, n in counts.items() if name.startswith("provision.") and name != "provision.provided"}
    deleted = {name.split(".", 1)[1]: n for name, n in counts.items() if name.startswith("deleted.")}
    batch = next((b for b in status.batches if b.name == RETENTION_BATCH), None)
    retention: dict[str, Any] = {"deleted_today": deleted}
    if batch is None:
        retention["last_run"] = "not run yet"
    else:
        retention.update(
            last_run=batch.last_run_at.isoformat(timespec="seconds") if batch.last_run_at else "not run yet",
            last_success=batch.last_success_at.isoformat(timespec="seconds") if batch.last_success_at else None,
            last_error=batch.last_error,
        )
    return [
        _row("review_queue", True, figures={"waiting": status.review_waiting, "today": reviewed}),
        _row("retention_jobs", True, detail=f"last error: {batch.last_error}" if batch and batch.last_error else "", figures=retention),
    ]


async def read(bus: Bus, registry: Registry, city: str, timeout: float = 2.0) -> list[dict[str, Any]]:
    operation = registry.operations.get(f"{OWNER}.{OPERATION}")
    if operation is None:
        return [_row(key, False, f"not available: {OWNER} offers no {OPERATION} operation") for key in FEATURES]
    try:
        status = await bus.request(operation, city, SystemStatusRequest(days=1), timeout=timeout)
    except Problem as problem:
        return [_row(key, True, f"{problem.title}: {problem.detail}") for key in FEATURES]
    return rows_of(status)
