"""Each ledger's latest checkpoint, and whether it verifies.

The checkpoint is asked of the service that keeps the ledger, over the bus, by the
operation ``<service>.ledger_checkpoint`` when the contracts have it; the console trusts
nothing in the answer but checks the signature with the public key of that service from
the trust directory, and that the checkpoint is of the tenant it should be (the city, or
the hub's). A service that offers no such operation is shown as "not available".
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel

from shared.bus import Bus
from shared.contracts import Operation, Registry
from shared.errors import Problem
from shared.ledger import HUB_TENANT
from shared.ledger.signing import Checkpoint, SignatureError
from shared.trust import Principal, TrustDirectory

OPERATION = "ledger_checkpoint"


def checkpoint_operation(registry: Registry, service: str) -> Operation | None:
    return registry.operations.get(f"{service}.{OPERATION}")


def judge(document: dict[str, Any] | None, principal: Principal, directory: TrustDirectory, now: datetime) -> dict[str, Any]:
    """What the console shows of one checkpoint document (``Checkpoint.to_json``'s shape)."""
    if document is None:
        return {"available": True, "checkpoint": None, "verified": None, "detail": "no checkpoint yet"}
    try:
        checkpoint = Checkpoint.from_json(document)
    except (KeyError, TypeError, ValueError) as exc:
        return {"available": True, "checkpoint": None, "verified": False, "detail": f"not a checkpoint: {exc}"}
    shown = {
        "seq": checkpoint.seq,
        "tenant": checkpoint.tenant,
        "tree_size": checkpoint.tree_size,
        "time": document.get("time"),
        "age_seconds": max((now - checkpoint.made_at).total_seconds(), 0.0),
    }
    expected_tenant = principal.city or HUB_TENANT
    if checkpoint.tenant != expected_tenant:
        return {"available": True, "checkpoint": shown, "verified": False, "detail": f"a checkpoint of {checkpoint.tenant}, not of {expected_tenant}"}
    try:
        checkpoint.verify(directory.public_key(principal))
    except KeyError:
        return {"available": True, "checkpoint": shown, "verified": False, "detail": f"{principal} is not in the trust directory"}
    except SignatureError as exc:
        return {"available": True, "checkpoint": shown, "verified": False, "detail": str(exc)}
    return {"available": True, "checkpoint": shown, "verified": True, "detail": "signature verifies with the trust directory's key"}


async def latest(bus: Bus, registry: Registry, directory: TrustDirectory, principal: Principal, request: BaseModel | None = None, timeout: float = 2.0) -> dict[str, Any]:
    operation = checkpoint_operation(registry, principal.service)
    if operation is None:
        return {"available": False, "detail": f"{principal.service} offers no {OPERATION} operation"}
    try:
        reply = await bus.request(operation, principal.city, request or operation.request(), timeout=timeout)
    except Problem as problem:
        return {"available": True, "checkpoint": None, "verified": None, "detail": f"{problem.title}: {problem.detail}"}
    document = reply.model_dump(mode="json").get("checkpoint")
    return judge(document, principal, directory, datetime.now(UTC))
