"""The NATS subjects the resident registry (simulated) serves, beyond the ``ping`` every service answers.

None: the registry speaks on the bus only through its change feed, the
``resident_registry.events.changed`` events its outbox relay publishes to JetStream. Other
systems learn of residents from those events and never ask the registry directly, so no
service can read the register over the bus.
"""

from shared.service import HandlerFactory

SERVED: dict[str, HandlerFactory] = {}
