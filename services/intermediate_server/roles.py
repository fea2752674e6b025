"""Staff roles at the intermediate server (中間サーバー端末) and what each may do (M06, M19)."""

ROLES: dict[str, frozenset[str]] = {
    # 照会担当: sends queries from the terminal and follows them.
    "query_operator": frozenset({"query.submit", "query.read"}),
    # 提供審査担当: releases or refuses answers held for review (自動応答不可), seeing the copy they come from.
    "provision_reviewer": frozenset({"review.read", "review.decide", "copies.inspect"}),
    # 運用管理者: inspects and exports the provision database (exports only here, M10), reads the system's state.
    "administrator": frozenset({"copies.inspect", "copies.export", "system.read"}),
    # 監査: reads checkpoints and proofs of the provision records, makes a checkpoint on demand.
    "auditor": frozenset({"ledger.audit", "system.read"}),
    # 開示請求窓口: answers a person's request to see who asked for their data; takes in their
    # requests for disclosure, correction and suspension of use (M34).
    "disclosure_clerk": frozenset({"disclosure.read", "subject_requests.receive", "subject_requests.read"}),
    # 個人情報保護担当: decides those requests, and lifts a suspension.
    "privacy_officer": frozenset({"subject_requests.read", "subject_requests.decide"}),
}
