"""The intermediate server's review queue (M26) and retention jobs (M21), per city.

Each is read over the bus by an operation of the intermediate server when the contracts
have one (``review_queue_status``, ``retention_status``), and its reply is shown as it is;
until then the console says plainly that it is not available.
"""

from __future__ import annotations

from typing import Any

from shared.bus import Bus
from shared.contracts import Registry
from shared.errors import Problem

OWNER = "intermediate_server"
#: key → (operation name, what the operators see)
FEATURES: dict[str, tuple[str, str]] = {
    "review_queue": ("review_queue_status", "Review queue (保留: answers waiting for staff release)"),
    "retention_jobs": ("retention_status", "Retention jobs (deletion of query results past their period)"),
}


async def read(bus: Bus, registry: Registry, key: str, city: str, timeout: float = 2.0) -> dict[str, Any]:
    name, title = FEATURES[key]
    operation = registry.operations.get(f"{OWNER}.{name}")
    if operation is None:
        return {"key": key, "title": title, "available": False, "detail": f"not available: {OWNER} offers no {name} operation yet", "figures": None}
    try:
        reply = await bus.request(operation, city, operation.request(), timeout=timeout)
    except Problem as problem:
        return {"key": key, "title": title, "available": True, "detail": f"{problem.title}: {problem.detail}", "figures": None}
    return {"key": key, "title": title, "available": True, "detail": "", "figures": reply.model_dump(mode="json")}
