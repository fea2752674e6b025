"""Staff roles at the intermediate server (中間サーバー端末) and what each may do (M06, M19)."""

ROLES: dict[str, frozenset[str]] = {
    # 監査: reads checkpoints and proofs of the provision records, makes a checkpoint on demand.
    "auditor": frozenset({"ledger.audit"}),
    # 開示請求窓口: answers a person's request to see who asked for their data.
    "disclosure_clerk": frozenset({"disclosure.read"}),
}
