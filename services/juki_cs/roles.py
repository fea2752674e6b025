"""Staff roles at the community server's terminal and what each may do (M06).

- ``counter_clerk`` (窓口担当): checks My Number cards and searches identity information;
- ``juki_admin`` (住基ネット管理者): runs and reads consistency checks with the prefecture
  server and watches the forwarding; searches too.
"""

from __future__ import annotations

VERIFY = "identity.verify"
SEARCH = "identity.search"
CHECK = "consistency.run"
OPERATE = "forwarding.read"

ROLES: dict[str, frozenset[str]] = {
    "counter_clerk": frozenset({VERIFY, SEARCH}),
    "juki_admin": frozenset({SEARCH, CHECK, OPERATE}),
}
