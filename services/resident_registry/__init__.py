"""住民記録システム — resident registry (simulated).

The existing resident registry (既存住基 / 住民記録システム), outside the assessment's
systems and simulated here: the source of residents, their My Numbers and their changes
(異動), which it publishes for the address systems and the Juki-net CS (flows [01], [10]).

- ``register``: the rules of each change (birth, move-in, special move-in, move-out,
  change of address, death, correction); checks on entry (M02, M04); deceased and
  moved-out people stay on file (M31); each accepted change goes to the outbox.
- ``api``: the counter's HTTP API for staff (M06, M08).
- ``seeding``: the synthetic population (``population``) put on the register in bulk,
  with one event per new person (``renkei seed``).
"""
