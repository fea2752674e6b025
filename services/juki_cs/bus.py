"""The NATS subjects the Juki-net community server serves, beyond the ``ping`` every service answers.

Each entry maps an operation of ``shared.contracts`` owned by this service to the factory
of its handler; the allowlist of callers is part of the contract, not of this module.
"""

from shared.service import HandlerFactory

SERVED: dict[str, HandlerFactory] = {}
