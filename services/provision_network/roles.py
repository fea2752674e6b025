"""Staff roles at the national hub and what each may do."""

ROLES: dict[str, frozenset[str]] = {
    # Reads the checkpoints and proofs of the hub's own records: the permits it issued or refused.
    "auditor": frozenset({"ledger.audit", "system.read"}),
    # 運用管理: the network's statistics and routes (no person in either).
    "administrator": frozenset({"system.read"}),
}
