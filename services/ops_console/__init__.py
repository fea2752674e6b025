"""運用コンソール — the ops console.

One page for the operators who run the stack: the topology as the assessment draws it (the
systems of each city, the national hub, the links between them) with the live state of
every service (ready, request rate, error rate, p95 latency, outbox backlog), NATS health
(connections, JetStream streams, consumer lag and redeliveries), each city's latest ledger
checkpoint and whether its signature verifies, and the intermediate server's review queue
and retention jobs.

- ``members``: who is in the stack (``DATA/run.json``, or a file of the same shape).
- ``overview``: one round of probes; ``metrics``, ``nats_monitor``, ``ledgers`` and
  ``features`` read each source; ``topology`` builds the picture from the contracts.
- ``api``: the page (``static/``, no build step, nothing from elsewhere) and ``/api/overview``,
  for signed-in staff holding ``ops.view`` (``roles``).
"""
