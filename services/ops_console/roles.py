"""Staff roles at the ops console and what each may do (M06).

The console shows the state of the systems, never anyone's personal data; still, only a
signed-in person holding ``ops.view`` sees it, and each sign-in is in the operation log.
"""

VIEW = "ops.view"

ROLES: dict[str, frozenset[str]] = {
    # 運用担当: watches the systems, the bus and the ledger checkpoints.
    "ops_operator": frozenset({VIEW}),
}
