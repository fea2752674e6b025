"""The NATS subjects the national hub (simulated) serves, beyond the ``ping`` every service answers.

Only the ops console calls the hub on the bus: for its statistics and its latest
checkpoint (served by the kernel). The network itself (registration, symbols, permits, relaying) is HTTPS with
mutual TLS (``api.py``): the hub is another organisation, not part of any city's bus.
"""

from __future__ import annotations

import asyncio

from services.provision_network.api import system_status
from shared.auth import Caller
from shared.contracts.network import SystemStatus, SystemStatusRequest
from shared.service import HandlerFactory, ServiceContext


def status(ctx: ServiceContext):
    async def handle(request: SystemStatusRequest, caller: Caller) -> SystemStatus:
        return await asyncio.to_thread(system_status, ctx, request.days)

    return handle


SERVED: dict[str, HandlerFactory] = {"system_status": status}  # and ledger_checkpoint, as every ledger keeper
