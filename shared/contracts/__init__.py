"""What crosses a service boundary: every bus operation and event, its models and its allowlist.

Both sides of a subject validate against the same pydantic model from here, and the NATS
permissions of each service are derived from the same declarations, so an operation's
allowlist is stated once.
"""

from shared.contracts.base import Event, Operation, event_subject, operation_subject
from shared.contracts.registry import CITY_SERVICES, GLOBAL_SERVICES, REGISTRY, Registry

__all__ = [
    "CITY_SERVICES",
    "GLOBAL_SERVICES",
    "REGISTRY",
    "Event",
    "Operation",
    "Registry",
    "event_subject",
    "operation_subject",
]
