"""Every service of the suite and every contract between them."""

from __future__ import annotations

from collections.abc import Iterable

from shared.contracts import address, juki, ledger, network, residents, tax_welfare
from shared.contracts.base import Event, Operation
from shared.contracts.system import ping_operation

#: The systems each city runs (one process each per city).
CITY_SERVICES: tuple[str, ...] = (
    "resident_registry",
    "integrated_address",
    "welfare_address",
    "juki_cs",
    "health_mgmt",
    "intermediate_server",
    "tax_welfare",
)
#: The systems that exist once: the national hub, the Juki-net prefecture server (simulated;
#: reached over HTTPS with mutual TLS only, it serves nothing on the bus) and the ops console.
GLOBAL_SERVICES: tuple[str, ...] = ("provision_network", "juki_prefecture", "ops_console")


class Registry:
    """The operations and events of the suite, looked up by owner and name."""

    def __init__(self, operations: Iterable[Operation], events: Iterable[Event]) -> None:
        self.operations = {op.key: op for op in operations}
        self.events = {ev.key: ev for ev in events}

    def operation(self, owner: str, name: str) -> Operation:
        return self.operations[f"{owner}.{name}"]

    def served_by(self, service: str) -> list[Operation]:
        return [op for op in self.operations.values() if op.owner == service]

    def callable_by(self, service: str) -> list[Operation]:
        return [op for op in self.operations.values() if service in op.callers]

    def published_by(self, service: str) -> list[Event]:
        return [ev for ev in self.events.values() if ev.owner == service]

    def consumed_by(self, service: str) -> list[Event]:
        return [ev for ev in self.events.values() if service in ev.consumers]


def _ping_operations() -> list[Operation]:
    # In-house systems answer the ops console and each other; the hub, another organisation,
    # is on no city system's allowlist. The hub answers the ops console alone.
    in_house = frozenset(CITY_SERVICES) | {"ops_console"}
    operations = [ping_operation(service, in_house) for service in CITY_SERVICES]
    operations.append(ping_operation("provision_network", frozenset({"ops_console"})))
    operations.append(ping_operation("ops_console", frozenset({"ops_console"})))
    return operations


REGISTRY = Registry(
    operations=[*_ping_operations(), *address.OPERATIONS, *juki.OPERATIONS, *ledger.OPERATIONS, *network.OPERATIONS,
                *tax_welfare.OPERATIONS],
    events=[*residents.EVENTS, *network.EVENTS],
)
